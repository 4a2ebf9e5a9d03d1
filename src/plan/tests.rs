//! Validation tests: each rule, located by file:line:col, all errors at once.

use std::path::Path;

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test plan");
}

/// Loads the files and returns the diagnostics as `file:line:col: message` lines with the
/// temp dir stripped.
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    match load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(diags) => diags
            .to_string()
            .lines()
            .map(|l| l.replace(&format!("{}/", dir.path().display()), ""))
            .collect(),
    }
}

const HEAD: &str = "version = 1\nname = \"team\"\n[clusters.dev]\nkind = \"generic\"\n";

#[test]
fn a_valid_plan_loads() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.toml",
        &format!(
            "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nlabels = {{ team = \"x\" }}\n"
        ),
    );
    let plan = load(dir.path()).unwrap();
    assert_eq!(plan.name, "team");
    assert_eq!(plan.workloads.len(), 1);
    assert!(
        !plan.workloads[0].spec.automount_token,
        "automount defaults to false"
    );
}

#[test]
fn unknown_keys_are_located_everywhere() {
    let text = format!(
        "{HEAD}colour = 1\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nautomount = true\n"
    );
    let errs = errors(&[("a.toml", &text)]);
    assert_eq!(
        errs,
        vec![
            "a.toml:5:1: unknown field `colour`",
            "a.toml:10:1: unknown field `automount`"
        ],
    );
}

#[test]
fn unknown_key_in_a_cluster_and_a_nested_rule() {
    let text = "version = 1\nname = \"t\"\n[clusters.dev]\nkind = \"generic\"\nzone = \"x\"\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nkubernetes.rules = [{ apiGroups = [\"\"], resources = [\"pods\"], verbs = [\"get\"], verb = [] }]\n";
    let errs = errors(&[("a.toml", text)]);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("a.toml:5:1: unknown field `zone`"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("a.toml:10:") && errs[1].contains("unknown field `verb`"),
        "{errs:?}"
    );
}

#[test]
fn invalid_names_undeclared_clusters_and_labels_all_at_once() {
    let text = format!(
        "{HEAD}[[workload]]\ncluster = \"prod\"\nnamespace = \"Web_1\"\nservice_account = \"-api\"\nlabels = {{ \"bad key!\" = \"ok\", good = \"bad value!\" }}\n"
    );
    let errs = errors(&[("a.toml", &text)]);
    assert_eq!(errs.len(), 5, "{errs:?}");
    assert!(
        errs[0].starts_with("a.toml:6:11: cluster `prod` is not declared"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("a.toml:7:13: invalid namespace `Web_1`"),
        "{errs:?}"
    );
    assert!(
        errs[2].starts_with("a.toml:8:19: invalid service account name `-api`"),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("invalid label key `bad key!`")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("invalid value for label `good`")),
        "{errs:?}"
    );
}

#[test]
fn a_ksa_declared_in_two_files_names_both_places() {
    let w = "[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\n";
    let errs = errors(&[
        ("a.toml", &format!("{HEAD}{w}")),
        ("b.toml", &format!("version = 1\nname = \"team\"\n{w}")),
    ]);
    assert_eq!(
        errs,
        vec!["b.toml:6:19: service account web/api in cluster `dev` is declared twice"]
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", &format!("{HEAD}{w}"));
    write(
        dir.path(),
        "b.toml",
        &format!("version = 1\nname = \"team\"\n{w}"),
    );
    let diags = load(dir.path()).unwrap_err();
    let help = diags.0[0].help.clone().unwrap();
    assert!(help.contains("a.toml:5:1"), "{help}");
}

#[test]
fn a_cluster_declared_in_two_files_is_an_error() {
    let errs = errors(&[
        ("a.toml", HEAD),
        (
            "b.toml",
            "version = 1\nname = \"team\"\n[clusters.dev]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"x\"\n",
        ),
    ]);
    assert_eq!(errs, vec!["b.toml:3:11: cluster `dev` is declared twice"]);
}

#[test]
fn cluster_kinds_check_their_fields() {
    let text = "version = 1\nname = \"t\"\n[clusters.prod]\nkind = \"eks\"\naccount = \"1234\"\nregion = \"us-east-1\"\nproject = \"acme\"\n";
    let errs = errors(&[("a.toml", text)]);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("a.toml:3:11: eks cluster `prod` needs `name`")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("a.toml:5:11: invalid account `1234`")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("a.toml:7:1: `project` does not apply to eks clusters")),
        "{errs:?}"
    );
}

#[test]
fn cloud_blocks_need_their_clouds_kind_of_cluster() {
    for (block, kind) in [("azure.identity", "aks"), ("gcp.service_account", "gke")] {
        let text = format!(
            "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\n{block} = \"api-app\"\n"
        );
        let errs = errors(&[("a.toml", &text)]);
        let cloud = block.split('.').next().unwrap_or_default();
        assert!(
            errs.iter()
                .any(|e| e.contains(&format!("the {cloud} block needs a cluster of kind {kind}"))),
            "{errs:?}"
        );
    }
}

#[test]
fn aws_blocks_need_an_eks_cluster() {
    let text = format!(
        "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\naws.role = \"api\"\n"
    );
    let errs = errors(&[("a.toml", &text)]);
    assert!(
        errs.iter()
            .any(|e| e.contains("the aws block needs a cluster of kind eks")),
        "{errs:?}"
    );
}

#[test]
fn files_with_different_names_are_scopes_sharing_the_clusters() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "clusters.toml",
        "version = 1\n[clusters.dev]\nkind = \"generic\"\n",
    );
    let ksa = |sa: &str| {
        format!(
            "[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"{sa}\"\n"
        )
    };
    write(
        dir.path(),
        "a.toml",
        &format!("version = 1\nname = \"alpha\"\n{}", ksa("api")),
    );
    write(
        dir.path(),
        "b.toml",
        &format!(
            "version = 1\nname = \"beta\"\n{}{}",
            ksa("web"),
            ksa("worker")
        ),
    );
    let plan = super::load(dir.path()).unwrap();
    assert_eq!(plan.scopes, ["alpha", "beta"]);
    assert_eq!(plan.name, "alpha, beta");
    let of: Vec<&str> = plan.workloads.iter().map(|w| plan.scope_of(w)).collect();
    assert_eq!(of, ["alpha", "beta", "beta"]);
    let beta = plan.scope("beta");
    assert_eq!(beta.name, "beta");
    assert_eq!(beta.workloads.len(), 2);
    assert_eq!(beta.clusters.len(), 1);
    assert_eq!(
        plan.group_label("beta", "cluster dev"),
        "[beta] cluster dev"
    );
}

#[test]
fn a_file_with_workloads_names_its_scope_and_some_file_names_one() {
    let errs = errors(&[
        ("a.toml", HEAD),
        (
            "b.toml",
            "version = 1\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\n",
        ),
    ]);
    assert_eq!(errs, vec!["b.toml:1:1: missing `name`"]);
    let errs = errors(&[(
        "a.toml",
        "version = 1\n[clusters.prod]\nkind = \"generic\"\n",
    )]);
    assert_eq!(errs, vec!["a.toml:1:1: missing `name`"]);
    let errs = errors(&[
        ("a.toml", HEAD),
        ("b.toml", "version = 1\nname = \"Bad Name\"\n"),
    ]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("b.toml:2:8: invalid plan name `Bad Name`"),
        "{errs:?}"
    );
}

#[test]
fn reserved_labels_and_cloud_annotations_are_refused() {
    let text = format!(
        "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nlabels = {{ \"app.kubernetes.io/managed-by\" = \"me\" }}\nannotations = {{ \"eks.amazonaws.com/role-arn\" = \"arn:aws:iam::1:role/x\", \"wid.dev/applied\" = \"x\" }}\n"
    );
    let errs = errors(&[("a.toml", &text)]);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[2].contains("reserved for wid's own bookkeeping"),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("reserved for wid's ownership marks"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("written by wid from the aws block"),
        "{errs:?}"
    );
}

#[test]
fn bad_toml_is_located() {
    let errs = errors(&[("a.toml", "version = 1\nname = \n")]);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("a.toml:2:"), "{errs:?}");
}

#[test]
fn every_unknown_key_of_an_entry_is_reported() {
    let text = format!(
        "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nautomount = true\nowner = \"me\"\naws.rolee = \"x\"\n"
    );
    let errs = errors(&[("a.toml", &text)]);
    assert_eq!(
        errs,
        vec![
            "a.toml:9:1: unknown field `automount`",
            "a.toml:10:1: unknown field `owner`",
            // With the misspelt key gone, the block really does lack its role.
            "a.toml:11:1: missing field `role`",
            "a.toml:11:5: unknown field `rolee`",
        ]
    );
}

#[test]
fn many_ksas_sharing_a_role_fit_once_the_trust_limit_is_raised() {
    let mut text = String::from(
        "version = 1\nname = \"t\"\n[clusters.prod]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"prod\"\n",
    );
    for i in 0..80 {
        text.push_str(&format!(
            "[[workload]]\ncluster = \"prod\"\nnamespace = \"team\"\nservice_account = \"app-{i}\"\naws.role = \"shared\"\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", &text);
    let plan = load(dir.path()).expect("valid on its own");
    let Err(err) = crate::model::compile(&plan, &crate::model::offline(&plan)) else {
        panic!("80 subjects must not fit IAM's default trust policy size");
    };
    assert!(err.to_string().contains("2048"), "{err}");
    write(
        dir.path(),
        "a.toml",
        &format!("{text}[aws]\ntrust_policy_limit = 8192\n"),
    );
    let plan = load(dir.path()).unwrap();
    assert!(
        crate::model::compile(&plan, &crate::model::offline(&plan)).is_ok(),
        "80 subjects fit in 8192 characters"
    );
    write(
        dir.path(),
        "a.toml",
        &format!("{text}[aws]\ntrust_policy_limit = 100000\n"),
    );
    let errs = load(dir.path()).unwrap_err().to_string();
    assert!(errs.contains("outside IAM's range"), "{errs}");
}

#[test]
fn aks_clusters_need_a_tenant_and_azure_blocks_are_checked_in_place() {
    let text = "version = 1\nname = \"team\"\n[clusters.aks]\nkind = \"aks\"\nsubscription = \"00000000-0000-0000-0000-000000000001\"\nresource_group = \"rg\"\nname = \"aks\"\ntenant = \"not-a-guid\"\n[[workload]]\ncluster = \"aks\"\nnamespace = \"web\"\nservice_account = \"api\"\nazure.identity = \"x\"\nazure.roles = [{ role = \"Reader\", scope = \"/subscriptions/nope\" }]\nazure.tags = { \"a/b\" = \"v\" }\n";
    let errs = errors(&[("a.toml", text)]);
    let located: Vec<&str> = errs
        .iter()
        .filter(|l| l.starts_with("a.toml:"))
        .map(String::as_str)
        .collect();
    assert!(
        located
            .iter()
            .any(|l| l.starts_with("a.toml:8:") && l.contains("invalid tenant")),
        "{errs:#?}"
    );
    assert!(
        located
            .iter()
            .any(|l| l.starts_with("a.toml:13:") && l.contains("identity name \"x\"")),
        "{errs:#?}"
    );
    assert!(
        located
            .iter()
            .any(|l| l.starts_with("a.toml:14:") && l.contains("is not an ARM scope")),
        "{errs:#?}"
    );
    assert!(
        located
            .iter()
            .any(|l| l.starts_with("a.toml:15:") && l.contains("must not contain '/'")),
        "{errs:#?}"
    );
    let missing = text.replace("tenant = \"not-a-guid\"\n", "");
    let errs = errors(&[("a.toml", &missing)]);
    assert!(
        errs.iter()
            .any(|l| l.contains("aks cluster `aks` needs `tenant`")),
        "{errs:#?}"
    );
}

#[test]
fn a_file_that_is_not_utf8_is_located_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        b"version = 1\nname = \"t\"\n# caf\xe9 cr\xe8me\n",
    )
    .unwrap();
    let diags = load(dir.path()).unwrap_err();
    let text = diags
        .to_string()
        .replace(&format!("{}/", dir.path().display()), "");
    assert_eq!(
        text,
        "a.toml:3:6: the file is not valid UTF-8 (byte 0xE9)\n"
    );
}

#[test]
fn a_cluster_with_a_type_error_is_not_also_undeclared() {
    let text = "version = 1\nname = \"t\"\n[clusters.prod]\nkind = \"eks\"\naccount = 111122223333\nregion = \"us-east-1\"\nname = \"prod\"\n[[workload]]\ncluster = \"prod\"\nnamespace = \"web\"\nservice_account = \"api\"\naws.role = \"r\"\n";
    let errs = errors(&[("a.toml", text)]);
    assert_eq!(
        errs,
        vec!["a.toml:5:11: expected a string, found the number 111122223333"]
    );
}

#[test]
fn misspelt_keys_values_and_cluster_names_get_a_suggestion_when_close() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.toml",
        "version = 1\nname = \"t\"\nworkloads = []\n[clusters.prod]\nkind = \"generic\"\n[clusters.staging]\nkind = \"genric\"\n[[workload]]\ncluster = \"prd\"\nnamespace = \"web\"\nservice_account = \"api\"\n[[workload]]\ncluster = \"prod\"\nnamespace = \"web\"\nservice_acount = \"api\"\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nowner = \"me\"\n",
    );
    let diags = load(dir.path()).unwrap_err();
    let got: Vec<(String, Option<String>)> = diags
        .0
        .iter()
        .map(|d| (d.message.clone(), d.help.clone()))
        .collect();
    let want = |m: &str, h: &str| (m.to_owned(), Some(h.to_owned()));
    assert_eq!(
        got,
        vec![
            want("unknown field `workloads`", "did you mean `workload`?"),
            want("unknown value `genric`", "did you mean `generic`?"),
            want("cluster `prd` is not declared", "did you mean `prod`?"),
            (
                "missing field `service_account`".to_owned(),
                None
            ),
            want("unknown field `service_acount`", "did you mean `service_account`?"),
            // Nothing close: the choices, not a far-fetched guess.
            want("cluster `dev` is not declared", "declared clusters: prod, staging"),
            (
                "unknown field `owner`".to_owned(),
                Some("expected `cluster`, `namespace`, `service_account`, `labels`, `annotations`, `automount_token`, `adopt`, `kubernetes`, `aws`, `gcp`, `azure`".to_owned())
            ),
        ]
    );
}

#[test]
fn annotations_over_the_kubernetes_limit_are_refused() {
    let big = "v".repeat(256 * 1024);
    let text = format!(
        "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nannotations = {{ note = \"{big}\" }}\n"
    );
    let errs = errors(&[("a.toml", &text)]);
    assert_eq!(
        errs,
        vec![
            "a.toml:9:1: annotations total 262148 bytes; Kubernetes allows 262144 per object, and wid needs 1024 of them for its own"
        ]
    );
    let fits = "v".repeat(255 * 1024 - 4);
    let text = format!(
        "{HEAD}[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\nannotations = {{ note = \"{fits}\" }}\n"
    );
    assert_eq!(errors(&[("a.toml", &text)]), Vec::<String>::new());
}

#[test]
fn inline_policies_iam_would_refuse_are_located() {
    let text = "version = 1\nname = \"team\"\n[clusters.prod]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"prod\"\n\
        [[workload]]\ncluster = \"prod\"\nnamespace = \"web\"\nservice_account = \"api\"\naws.role = \"api\"\n\
        aws.inline_policies.a = '{\"Version\":\"default\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}}'\n\
        aws.inline_policies.b = '{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Alow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}}'\n\
        aws.inline_policies.c = '{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resources\":\"*\"}}'\n";
    let errs = errors(&[("a.toml", text)]);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with(
            "a.toml:13:25: policy \"a\" would be refused by IAM: \"Version\" is \"default\""
        ),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("a.toml:14:25: policy \"b\" would be refused by IAM: statement 0 has \"Effect\": \"Alow\""),
        "{errs:#?}"
    );
    assert!(
        errs[2].starts_with("a.toml:15:25: policy \"c\" would be refused by IAM: statement 0 has unknown element \"Resources\""),
        "{errs:#?}"
    );
}

#[test]
fn locations_are_exact_at_any_line_of_a_large_plan() {
    let mut text = HEAD.to_owned();
    for i in 0..2000 {
        text.push_str(&format!(
            "[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"sa{i}\"\n"
        ));
    }
    text.push_str(
        "[[workload]]\ncluster = \"dev\"\nnamespace = \"Bad\"\nservice_account = \"x\"\n",
    );
    let errs = errors(&[("a.toml", &text)]);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let line = 4 + 2000 * 4 + 3;
    assert!(
        errs[0].starts_with(&format!("a.toml:{line}:13: invalid namespace `Bad`")),
        "{errs:#?}"
    );
    let file = SourceFile::new("f", "ab\ncd\n\né".to_owned());
    assert_eq!(file.line_col(0), (1, 1));
    assert_eq!(file.line_col(2), (1, 3));
    assert_eq!(file.line_col(3), (2, 1));
    assert_eq!(file.line_col(6), (3, 1));
    assert_eq!(file.line_col(7), (4, 1));
    assert_eq!(file.line_col(99), (4, 3));
}
