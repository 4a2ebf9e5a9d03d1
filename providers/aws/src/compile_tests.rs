//! Tests of compilation: resources, shared roles, cross-workload checks.

use serde_json::json;
use wid_core::{AttrValue, Mode};

use super::*;
use crate::block::InlinePolicy;
use crate::policy::trust_policy_irsa;

/// [`super::compile`] with its resources sorted by id, as the plan's compile sorts them.
fn compile(items: &[AwsWorkload], plan: &str) -> Result<Compiled, Vec<(usize, FieldIssue)>> {
    super::compile(items, plan).map(|mut c| {
        c.resources.sort_by(|a, b| a.id.cmp(&b.id));
        c
    })
}

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";

fn cluster(name: &str, account: &str) -> EksCluster {
    EksCluster {
        plan_name: name.into(),
        account: account.into(),
        region: "us-east-1".into(),
        eks_name: name.into(),
        issuer: Some(format!("{ISSUER}{name}")),
    }
}

fn block(role: &str) -> AwsBlock {
    AwsBlock {
        role: role.into(),
        account: None,
        mechanism: Mechanism::Irsa,
        managed_policies: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        inline_policies: wid_core::AttrMap::new(),
        permissions_boundary: None,
        max_session_duration: None,
        path: None,
        tags: [("team".to_owned(), "orders".to_owned())]
            .into_iter()
            .collect(),
        adopt: false,
        normalized: Default::default(),
    }
}

fn item<'a>(block: &'a AwsBlock, cluster: &'a EksCluster, ns: &str, ksa: &str) -> AwsWorkload<'a> {
    AwsWorkload {
        block,
        cluster,
        workload: WorkloadRef {
            cluster: cluster.plan_name.clone(),
            namespace: ns.into(),
            service_account: ksa.into(),
        },
        plan_dir: std::path::Path::new(".").into(),
        origin: format!("plan.toml:{ksa}").into(),
    }
}

fn ids(c: &Compiled) -> Vec<String> {
    c.resources.iter().map(|r| r.id.to_string()).collect()
}

#[test]
fn one_irsa_workload_compiles_to_provider_role_and_annotation() {
    let c = cluster("prod", "111122223333");
    let b = block("orders-prod");
    let out = compile(&[item(&b, &c, "production", "orders")], "payments").unwrap();
    assert_eq!(
        ids(&out),
        [
            "aws/iam-oidc-provider/111122223333/oidc.eks.us-east-1.amazonaws.com/id/ABCprod",
            "aws/iam-role/111122223333/orders-prod",
        ]
    );
    let provider = &out.resources[0];
    assert_eq!(provider.mode, Mode::Shared);
    assert_eq!(
        provider.attrs["client_ids"],
        AttrValue::Known(json!(["sts.amazonaws.com"]))
    );
    let role = &out.resources[1];
    let host = "oidc.eks.us-east-1.amazonaws.com/id/ABCprod";
    let documented = trust_policy_irsa(
        &format!("arn:aws:iam::111122223333:oidc-provider/{host}"),
        host,
        &["system:serviceaccount:production:orders".into()],
    );
    assert_eq!(
        role.attrs["trust_policy"],
        AttrValue::Known(normalize_policy(&documented.to_string()).unwrap())
    );
    assert_eq!(role.depends_on, vec![provider.id.clone()]);
    assert_eq!(
        role.attrs["max_session_duration"],
        AttrValue::Known(json!(3600))
    );
    assert_eq!(
        role.attrs["permissions_boundary"],
        AttrValue::Known(json!(null))
    );
    assert_eq!(
        role.attrs["tags"],
        AttrValue::Known(json!({"team": "orders"}))
    );
    let contribution = &out.contributions[0];
    assert_eq!(
        contribution.ksa_annotations[ROLE_ARN_ANNOTATION],
        AttrValue::Known(json!("arn:aws:iam::111122223333:role/orders-prod"))
    );
    assert_eq!(contribution.ksa_depends_on, vec![role.id.clone()]);
}

#[test]
fn a_shared_role_gets_one_statement_per_provider() {
    let (a, b) = (cluster("a", "111122223333"), cluster("b", "111122223333"));
    let blk = block("shared");
    let out = compile(
        &[
            item(&blk, &a, "ns", "x"),
            item(&blk, &a, "ns", "y"),
            item(&blk, &b, "ns", "x"),
        ],
        "p",
    )
    .unwrap();
    let role = out
        .resources
        .iter()
        .find(|r| r.id.kind() == "iam-role")
        .unwrap();
    let trust = role.attrs["trust_policy"].known().unwrap();
    let statements = trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    let subs: Vec<&Value> = statements
        .iter()
        .map(|s| {
            let eq = s["Condition"]["StringEquals"].as_object().unwrap();
            eq.iter().find(|(k, _)| k.ends_with(":sub")).unwrap().1
        })
        .collect();
    assert!(subs.contains(&&json!([
        "system:serviceaccount:ns:x",
        "system:serviceaccount:ns:y"
    ])));
    assert_eq!(role.depends_on.len(), 2);
    assert_eq!(out.contributions.len(), 3);
}

#[test]
fn cross_account_roles_get_a_provider_in_the_role_account() {
    let c = cluster("prod", "111122223333");
    let mut b = block("data-reader");
    b.account = Some("444455556666".into());
    let out = compile(&[item(&b, &c, "ns", "sa")], "p").unwrap();
    assert_eq!(out.resources[0].id.part(0), "444455556666");
    assert_eq!(
        out.resources[1].id.to_string(),
        "aws/iam-role/444455556666/data-reader"
    );
}

#[test]
fn pod_identity_compiles_to_an_association_and_a_pods_trust() {
    let c = cluster("prod", "111122223333");
    let mut b = block("orders");
    b.mechanism = Mechanism::PodIdentity;
    let out = compile(&[item(&b, &c, "production", "orders")], "p").unwrap();
    assert_eq!(
        ids(&out),
        [
            "aws/eks-pod-identity-association/111122223333/us-east-1/prod/production/orders",
            "aws/iam-role/111122223333/orders",
        ]
    );
    let assoc = &out.resources[0];
    assert!(
        !assoc.adopt,
        "only `aws.adopt = true` takes over an association"
    );
    assert_eq!(assoc.adopt_key.as_deref(), Some("aws.adopt"));
    assert_eq!(
        assoc.attrs["role_arn"],
        AttrValue::Known(json!("arn:aws:iam::111122223333:role/orders"))
    );
    let trust = out.resources[1].attrs["trust_policy"]
        .known()
        .unwrap()
        .clone();
    let s = &trust["Statement"][0];
    assert_eq!(
        s["Principal"],
        json!({"Service": ["pods.eks.amazonaws.com"]})
    );
    assert_eq!(s["Action"], json!(["sts:AssumeRole", "sts:TagSession"]));
    let eq = &s["Condition"]["StringEquals"];
    assert_eq!(
        eq["aws:RequestTag/kubernetes-namespace"],
        json!(["production"])
    );
    assert_eq!(
        eq["aws:RequestTag/kubernetes-service-account"],
        json!(["orders"])
    );
    assert_eq!(
        eq["aws:RequestTag/eks-cluster-arn"],
        json!(["arn:aws:eks:us-east-1:111122223333:cluster/prod"])
    );
    assert!(out.contributions[0].ksa_annotations.is_empty());
}

#[test]
fn cross_account_pod_identity_is_rejected() {
    let c = cluster("prod", "111122223333");
    let mut b = block("orders");
    b.mechanism = Mechanism::PodIdentity;
    b.account = Some("444455556666".into());
    let errs = compile(&[item(&b, &c, "ns", "sa")], "p").unwrap_err();
    assert_eq!(errs[0].1.path, ["account"]);
}

#[test]
fn forty_ksas_sharing_a_role_exceed_the_trust_size() {
    let c = cluster("prod", "111122223333");
    let b = block("everyone");
    let names: Vec<String> = (0..40).map(|i| format!("service-account-{i:02}")).collect();
    let items: Vec<AwsWorkload> = names
        .iter()
        .map(|n| item(&b, &c, "production", n))
        .collect();
    let errs = compile(&items, "p").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, 0);
    assert!(
        errs[0].1.message.contains("IAM allows 2048"),
        "{}",
        errs[0].1.message
    );
    assert!(errs[0].1.help.as_deref().unwrap().contains("pod-identity"));
    // A raised quota lets the same plan through.
    let raised = CompileOptions {
        trust_policy_limit: 8192,
    };
    assert!(compile_with(&items, "p", &raised).is_ok());
    // And a handful of KSAs fit the default.
    assert!(compile(&items[..5], "p").is_ok());
}

#[test]
fn conflicting_shared_role_blocks_are_rejected_at_the_later_workload() {
    let c = cluster("prod", "111122223333");
    let a = block("shared");
    let mut b = block("shared");
    b.managed_policies
        .push("arn:aws:iam::aws:policy/AdministratorAccess".into());
    b.path = Some("/x/".into());
    b.inline_policies
        .insert("p".into(), InlinePolicy::Json(r#"{"Statement":[]}"#.into()));
    let errs = compile(&[item(&a, &c, "ns", "x"), item(&b, &c, "ns", "y")], "p").unwrap_err();
    let fields: Vec<(usize, String)> = errs.iter().map(|(i, e)| (*i, e.path.join("."))).collect();
    assert_eq!(
        fields,
        [
            (1, "managed_policies".to_owned()),
            (1, "inline_policies".to_owned()),
            (1, "path".to_owned())
        ]
    );
    assert!(errs[0].1.message.contains("plan.toml:x"));
}

#[test]
fn equal_policies_in_different_formatting_agree() {
    let c = cluster("prod", "111122223333");
    let mut a = block("shared");
    a.inline_policies.insert(
        "p".into(),
        InlinePolicy::Json(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#.into(),
        ),
    );
    let mut b = block("shared");
    b.inline_policies.insert(
        "p".into(),
        InlinePolicy::Json(
            r#"{ "Statement": [ {"Action":["s3:*"],"Resource":"*","Effect":"Allow"} ] }"#.into(),
        ),
    );
    assert!(compile(&[item(&a, &c, "ns", "x"), item(&b, &c, "ns", "y")], "p").is_ok());
}

#[test]
fn a_missing_issuer_is_reported() {
    let mut c = cluster("prod", "111122223333");
    c.issuer = None;
    let b = block("r");
    let errs = compile(&[item(&b, &c, "ns", "sa")], "p").unwrap_err();
    assert!(errs[0].1.message.contains("no OIDC issuer"));
}

#[test]
fn compile_uses_the_inline_policies_validation_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("read.json");
    let text = r#"{"Statement":[{"Resource":"*","Action":["s3:GetObject"],"Effect":"Allow"}],"Version":"2012-10-17"}"#;
    std::fs::write(&file, text).expect("write policy");
    let c = cluster("prod", "111122223333");
    let mut b = block("reader");
    b.inline_policies.insert(
        "read".into(),
        InlinePolicy::File {
            file: "read.json".into(),
        },
    );
    let unvalidated = b.clone();
    assert!(!b.normalized.is_set());
    assert!(crate::block::validate_block(&b, dir.path()).is_empty());
    assert!(b.normalized.is_set(), "validation keeps what it read");
    assert_eq!(
        b, unvalidated,
        "what validation keeps is not part of the block"
    );
    // The file changes after validation: compile uses what validation read.
    std::fs::remove_file(&file).expect("remove policy");
    let at = |block| AwsWorkload {
        plan_dir: dir.path().into(),
        ..item(block, &c, "ns", "sa")
    };
    let out = compile(&[at(&b)], "p").expect("compiles from what validation read");
    let role = out
        .resources
        .iter()
        .find(|r| r.id.kind() == "iam-role")
        .expect("a role");
    assert_eq!(
        role.attrs["inline_policies"],
        AttrValue::Known(json!({ "read": normalize_policy(text).expect("valid") }))
    );
    // The first compile took them; a later one, like one of a block never validated,
    // reads the policies itself.
    assert!(!b.normalized.is_set());
    for block in [&b, &unvalidated] {
        let errs = compile(&[at(block)], "p").expect_err("the file is gone");
        assert_eq!(errs[0].1.path, ["inline_policies", "read"]);
    }
}
