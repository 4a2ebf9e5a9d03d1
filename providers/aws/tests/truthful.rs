//! What the provider leaves behind is what it says: an apply that stops part-way leaves an
//! incomplete record (the next plan says "incomplete apply", never drift) and a
//! partly-applied error; tags others set survive adoption, applies and prunes; an
//! association wid did not make is never taken over, re-pointed or deleted without
//! `aws.adopt = true`; a prune keeps the OIDC provider another plan's roles still trust.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::json;
use wid_aws::Mechanism;
use wid_core::{
    APPLIED_KEY, AppliedRecord, ChangeKind, ErrorKind, MANAGED_BY_KEY, PLAN_KEY, Provider, Reason,
};
use wid_sandbox::{Fault, FaultAction};

const ACCOUNT: &str = SANDBOX_ACCOUNT;

/// Every tag of a role, read straight from IAM.
async fn role_tags(iam: &aws_sdk_iam::Client, name: &str) -> BTreeMap<String, String> {
    iam.list_role_tags()
        .role_name(name)
        .send()
        .await
        .expect("list role tags")
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn fault(api: &str, times: u32) -> Fault {
    Fault {
        api: api.into(),
        action: FaultAction::ServerError,
        times: Some(times),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_failing_on_attach_is_an_incomplete_apply_then_converges_and_drift_is_drift() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let iam = iam(&sandbox.cloud_url(), ACCOUNT).await;
    let policy = managed_policy(&iam, "wid-half-read").await;
    let mut b = block("wid-half");
    b.managed_policies = vec![policy.clone()];
    b.inline_policies
        .insert("s3".into(), wid_aws::InlinePolicy::Json(S3_READ.into()));
    let desired = compile_plan(&[wl(0, "ns", "sa", b)], &[cluster], "half");
    let own = owner("half", false);
    let role = wid_aws::ids::role_id(ACCOUNT, "wid-half");
    let (_, changes) = plan(&p, &desired, &own).await;
    // The OIDC provider first (the role trusts it), then the role, whose attach fails.
    let provider = changes.iter().find(|c| c.id.kind() == "iam-oidc-provider");
    apply(
        &p,
        provider.into_iter().cloned().collect::<Vec<_>>().as_slice(),
        &own,
    )
    .await;
    sandbox.inject(fault("iam:AttachRolePolicy", 1));
    let change = changes.iter().find(|c| c.id == role).expect("role change");
    let err = expect_kind(p.apply(change, &own).await, ErrorKind::Transient);
    assert!(err.partial, "the role exists without its policy: {err}");
    assert_eq!(err.operation.as_deref(), Some("iam:AttachRolePolicy"));
    let hash = wanted_record(&desired, &role);
    assert_eq!(
        role_record(&iam, "wid-half").await,
        Some(AppliedRecord::Incomplete(hash.clone()).to_text())
    );

    // The next plan calls it what it is.
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(reasons(&changes), [(role.to_string(), Reason::Incomplete)]);
    let keys: Vec<&str> = changes
        .iter()
        .find(|c| c.id == role)
        .expect("role change")
        .attr_changes()
        .map(|a| a.key)
        .collect();
    assert_eq!(keys, ["inline_policies", "managed_policies"]);

    // Applying again finishes it and seals the record; the next plan is clean.
    apply(&p, &changes, &own).await;
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));
    assert_eq!(role_record(&iam, "wid-half").await, Some(hash));

    // Real drift later is drift again.
    iam.detach_role_policy()
        .role_name("wid-half")
        .policy_arn(&policy)
        .send()
        .await
        .expect("detach behind wid's back");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(reasons(&changes), [(role.to_string(), Reason::Drift)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_seal_is_an_incomplete_apply_finished_by_one_tag_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let iam = iam(&sandbox.cloud_url(), ACCOUNT).await;
    let mut b = block("wid-seal");
    b.inline_policies
        .insert("s3".into(), wid_aws::InlinePolicy::Json(S3_READ.into()));
    let desired = compile_plan(&[wl(0, "ns", "sa", b)], &[cluster], "seal");
    let own = owner("seal", false);
    let role = wid_aws::ids::role_id(ACCOUNT, "wid-seal");
    let (_, changes) = plan(&p, &desired, &own).await;
    let provider = changes.iter().find(|c| c.id.kind() == "iam-oidc-provider");
    apply(
        &p,
        provider.into_iter().cloned().collect::<Vec<_>>().as_slice(),
        &own,
    )
    .await;
    sandbox.inject(fault("iam:TagRole", 1));
    let change = changes.iter().find(|c| c.id == role).expect("role change");
    let err = expect_kind(p.apply(change, &own).await, ErrorKind::Transient);
    assert!(err.partial, "{err}");

    // Every attribute is right, but the record says the apply did not finish.
    let (_, changes) = plan(&p, &desired, &own).await;
    let c = changes.iter().find(|c| c.id == role).expect("role change");
    assert_eq!(
        (c.kind, &c.reason),
        (ChangeKind::Update, &Reason::Incomplete)
    );
    assert!(c.changed.is_empty(), "{:?}", c.changed);
    let tags_before = sandbox.calls().get("iam:TagRole").copied().unwrap_or(0);
    apply(&p, &changes, &own).await;
    assert_eq!(
        sandbox.calls().get("iam:TagRole").copied(),
        Some(tags_before + 1)
    );
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));
    assert_eq!(
        role_record(&iam, "wid-seal").await,
        Some(wanted_record(&desired, &role))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_stopped_by_a_misspelt_policy_is_incomplete_and_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let iam = iam(&sandbox.cloud_url(), ACCOUNT).await;
    let good = managed_policy(&iam, "a-good").await;
    let clusters = [cluster];
    let own = owner("upd", false);
    let role = wid_aws::ids::role_id(ACCOUNT, "wid-upd");
    let desired = compile_plan(&[wl(0, "ns", "sa", block("wid-upd"))], &clusters, "upd");
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;

    // Two policies added; the second (in attach order) is misspelt.
    let mut b = block("wid-upd");
    let misspelt = format!("arn:aws:iam::{ACCOUNT}:policy/z-misspelt");
    b.managed_policies = vec![good.clone(), misspelt.clone()];
    let desired = compile_plan(&[wl(0, "ns", "sa", b)], &clusters, "upd");
    let (_, changes) = plan(&p, &desired, &own).await;
    let change = changes.iter().find(|c| c.id == role).expect("role change");
    assert_eq!(change.reason, Reason::PlanChanged);
    let err = expect_kind(p.apply(change, &own).await, ErrorKind::Invalid);
    assert!(err.partial, "{good} was attached before: {err}");
    assert!(err.to_string().contains(&misspelt), "{err}");
    let hint = err.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("`aws.managed_policies` of workload plan.toml:sa"),
        "{hint}"
    );
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(reasons(&changes), [(role.to_string(), Reason::Incomplete)]);

    // The fix the hint names: correct the ARN. Still the unfinished apply; it converges.
    let mut b = block("wid-upd");
    b.managed_policies = vec![good];
    let desired = compile_plan(&[wl(0, "ns", "sa", b)], &clusters, "upd");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(reasons(&changes), [(role.to_string(), Reason::Incomplete)]);
    apply(&p, &changes, &own).await;
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_role_keeps_foreign_tags_and_wid_removes_only_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let iam = iam(&sandbox.cloud_url(), ACCOUNT).await;
    let clusters = [cluster];
    iam.create_role()
        .role_name("legacy")
        .assume_role_policy_document(S3_READ.replace("s3:GetObject", "sts:AssumeRole"))
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("alpha.eksctl.io/cluster-name")
                .value("dev")
                .build()
                .expect("tag"),
        )
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("owner")
                .value("ops")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("hand-made role");
    let own = owner("tags", true);
    let role = wid_aws::ids::role_id(ACCOUNT, "legacy");
    let mut b = block("legacy");
    b.tags.insert("team".into(), "orders".into());
    b.tags.insert("cost".into(), "42".into());

    // Without `aws.adopt` it is a conflict; the refusal of a hand-built update names the
    // key that clears it.
    let desired = compile_plan(&[wl(0, "ns", "sa", b.clone())], &clusters, "tags");
    let (_, changes) = plan(&p, &desired, &own).await;
    let conflict = changes.iter().find(|c| c.id == role).expect("role");
    assert_eq!(conflict.kind, ChangeKind::Conflict);
    let mut forced = conflict.clone();
    forced.kind = ChangeKind::Update;
    let err = expect_kind(p.apply(&forced, &own).await, ErrorKind::Conflict);
    assert_eq!(
        err.hint.as_deref(),
        Some("set `aws.adopt = true` in workload plan.toml:sa to take it over")
    );

    // With it, adopting adds wid's tags and touches nobody else's.
    b.adopt = true;
    let desired = compile_plan(&[wl(0, "ns", "sa", b.clone())], &clusters, "tags");
    let (_, changes) = plan(&p, &desired, &own).await;
    let adopt = changes.iter().find(|c| c.id == role).expect("role");
    assert_eq!(adopt.reason, Reason::Adopt);
    let tags = adopt
        .attr_changes()
        .find(|a| a.key == "tags")
        .expect("tags");
    assert_eq!(tags.before, Some(&json!({})), "foreign tags are not wid's");
    apply(&p, &changes, &own).await;
    let live = role_tags(&iam, "legacy").await;
    assert_eq!(live["alpha.eksctl.io/cluster-name"], "dev");
    assert_eq!(live["owner"], "ops");
    assert_eq!(live["team"], "orders");
    assert_eq!(live[PLAN_KEY], "tags");
    assert_eq!(live["wid.dev/tag-keys"], "cost team");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));

    // A foreign tag added later is not drift.
    iam.tag_role()
        .role_name("legacy")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("backup")
                .value("daily")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag behind wid's back");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));

    // The plan drops `cost` and adds `tier`: wid removes its own `cost`, and only that.
    b.tags.remove("cost");
    b.tags.insert("tier".into(), "gold".into());
    let desired = compile_plan(&[wl(0, "ns", "sa", b.clone())], &clusters, "tags");
    let (_, changes) = plan(&p, &desired, &own).await;
    let c = changes.iter().find(|c| c.id == role).expect("role");
    assert_eq!(c.reason, Reason::PlanChanged);
    let tags = c.attr_changes().find(|a| a.key == "tags").expect("tags");
    assert_eq!(tags.before, Some(&json!({"cost": "42", "team": "orders"})));
    apply(&p, &changes, &own).await;
    let live = role_tags(&iam, "legacy").await;
    assert!(!live.contains_key("cost"), "{live:?}");
    for (k, v) in [
        ("alpha.eksctl.io/cluster-name", "dev"),
        ("owner", "ops"),
        ("backup", "daily"),
        ("team", "orders"),
        ("tier", "gold"),
        ("wid.dev/tag-keys", "team tier"),
    ] {
        assert_eq!(live.get(k).map(String::as_str), Some(v), "{k}: {live:?}");
    }
    assert!(live.contains_key(MANAGED_BY_KEY) && live.contains_key(APPLIED_KEY));

    // Someone edits one of wid's tags: that is drift, fixed without touching the rest.
    iam.tag_role()
        .role_name("legacy")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("tier")
                .value("bronze")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("edit wid's tag");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(reasons(&changes), [(role.to_string(), Reason::Drift)]);
    apply(&p, &changes, &own).await;
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));
    let live = role_tags(&iam, "legacy").await;
    assert_eq!(live["tier"], "gold");
    assert_eq!(live["owner"], "ops");
    assert_eq!(live["backup"], "daily");

    // The plan drops every tag: the record goes with them, foreign tags stay.
    b.tags = wid_core::AttrMap::new();
    let desired = compile_plan(&[wl(0, "ns", "sa", b)], &clusters, "tags");
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;
    let live = role_tags(&iam, "legacy").await;
    for gone in ["team", "tier", "wid.dev/tag-keys"] {
        assert!(!live.contains_key(gone), "{gone}: {live:?}");
    }
    for kept in ["alpha.eksctl.io/cluster-name", "owner", "backup"] {
        assert!(live.contains_key(kept), "{kept}: {live:?}");
    }
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));
}

async fn hand_made_association(
    sandbox: &wid_sandbox::Sandbox,
    role: &str,
) -> (aws_sdk_eks::Client, String) {
    iam(&sandbox.cloud_url(), ACCOUNT)
        .await
        .create_role()
        .role_name(role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#)
        .send()
        .await
        .expect("hand-made role");
    let eks = aws_sdk_eks::Client::new(&sdk_config(&sandbox.cloud_url(), ACCOUNT).await);
    let out = eks
        .create_pod_identity_association()
        .cluster_name("dev")
        .namespace("production")
        .service_account("orders")
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
        .tags("owner", "ops")
        .send()
        .await
        .expect("hand-made association");
    let arn = out
        .association()
        .and_then(|a| a.association_arn())
        .expect("association arn")
        .to_owned();
    (eks, arn)
}

async fn association_state(eks: &aws_sdk_eks::Client) -> Vec<(String, BTreeMap<String, String>)> {
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name("dev")
        .send()
        .await
        .expect("list");
    let mut out = Vec::new();
    for a in listed.associations() {
        let got = eks
            .describe_pod_identity_association()
            .cluster_name("dev")
            .association_id(a.association_id().expect("id"))
            .send()
            .await
            .expect("describe");
        let a = got.association().expect("association");
        let tags: BTreeMap<String, String> = a
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        out.push((a.role_arn().unwrap_or_default().to_owned(), tags));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_association_made_after_observe_is_never_taken_over_without_aws_adopt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let clusters = [cluster];
    let mut b = block("wid-pods");
    b.mechanism = Mechanism::PodIdentity;
    let desired = compile_plan(
        &[wl(0, "production", "orders", b.clone())],
        &clusters,
        "race",
    );
    let own = owner("race", false);
    let (_, changes) = plan(&p, &desired, &own).await;
    // Between observe and apply, someone makes the association by hand.
    let (eks, _) = hand_made_association(&sandbox, "hand-made").await;
    let assoc = changes
        .iter()
        .find(|c| c.id.kind() == "eks-pod-identity-association")
        .expect("association change");
    assert_eq!(assoc.kind, ChangeKind::Create);
    let role = changes
        .iter()
        .find(|c| c.id.kind() == "iam-role")
        .expect("role change");
    p.apply(role, &own).await.expect("role");
    let err = expect_kind(p.apply(assoc, &own).await, ErrorKind::Conflict);
    assert!(err.to_string().contains("not created by wid"), "{err}");
    assert_eq!(
        err.hint.as_deref(),
        Some("set `aws.adopt = true` in workload plan.toml:orders to take it over")
    );
    let state = association_state(&eks).await;
    assert_eq!(state.len(), 1);
    assert!(state[0].0.ends_with(":role/hand-made"), "{state:?}");
    assert!(!state[0].1.contains_key(PLAN_KEY), "{state:?}");

    // Applying the hint: with `aws.adopt = true` the same race takes it over, and its
    // own tags stay.
    b.adopt = true;
    let desired = compile_plan(&[wl(0, "production", "orders", b)], &clusters, "race");
    let mut create = desired
        .iter()
        .find(|r| r.id == assoc.id)
        .map(|r| {
            let mut c = assoc.clone();
            c.desired = Some(r.clone().into());
            c
        })
        .expect("association");
    create.kind = ChangeKind::Create;
    p.apply(&create, &own)
        .await
        .expect("adopted after the race");
    let state = association_state(&eks).await;
    assert_eq!(state.len(), 1);
    assert!(state[0].0.ends_with(":role/wid-pods"), "{state:?}");
    assert_eq!(state[0].1.get(PLAN_KEY).map(String::as_str), Some("race"));
    assert_eq!(state[0].1.get("owner").map(String::as_str), Some("ops"));
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", reasons(&changes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_association_survives_prune_and_an_adopted_one_keeps_its_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let clusters = [cluster];
    let (eks, _) = hand_made_association(&sandbox, "hand-made").await;
    let mut b = block("wid-pods");
    b.mechanism = Mechanism::PodIdentity;
    let pruning = owner("keep", true);
    let desired = compile_plan(
        &[wl(0, "production", "orders", b.clone())],
        &clusters,
        "keep",
    );
    let (_, changes) = plan(&p, &desired, &pruning).await;
    let conflicts: Vec<_> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Conflict)
        .map(|c| c.id.kind().to_owned())
        .collect();
    assert_eq!(conflicts, ["eks-pod-identity-association"]);
    // The workload leaves the plan: prune has nothing of this plan's to delete there.
    p.know_clusters(&clusters);
    let (_, changes) = plan(&p, &[], &pruning).await;
    assert!(changes.is_empty(), "{:?}", kinds(&changes));
    assert_eq!(association_state(&eks).await.len(), 1);

    // Adopted, it keeps the tags others set on it.
    b.adopt = true;
    let desired = compile_plan(&[wl(0, "production", "orders", b)], &clusters, "keep");
    let (_, changes) = plan(&p, &desired, &pruning).await;
    apply(&p, &changes, &pruning).await;
    let state = association_state(&eks).await;
    assert_eq!(state[0].1.get("owner").map(String::as_str), Some("ops"));
    assert_eq!(state[0].1.get(PLAN_KEY).map(String::as_str), Some("keep"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_an_oidc_provider_another_plans_role_still_trusts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, p, cluster) = start(dir.path()).await;
    let clusters = [cluster];
    let (a, b) = (owner("team-a", true), owner("team-b", true));
    let desired_a = compile_plan(&[wl(0, "a", "sa", block("role-a"))], &clusters, "team-a");
    let (_, changes) = plan(&p, &desired_a, &a).await;
    apply(&p, &changes, &a).await;
    let desired_b = compile_plan(&[wl(0, "b", "sa", block("role-b"))], &clusters, "team-b");
    let (_, changes) = plan(&p, &desired_b, &b).await;
    // The provider plan A made is shared: B uses it as it is.
    assert_eq!(
        kinds(
            &changes
                .iter()
                .filter(|c| c.kind != ChangeKind::NoOp)
                .cloned()
                .collect::<Vec<_>>()
        ),
        [(
            wid_aws::ids::role_id(ACCOUNT, "role-b").to_string(),
            ChangeKind::Create
        )]
    );
    apply(&p, &changes, &b).await;

    // Plan A is emptied: its role goes, the provider stays while B's role trusts it.
    p.know_clusters(&clusters);
    let (_, changes) = plan(&p, &[], &a).await;
    assert_eq!(
        kinds(&changes),
        [(
            wid_aws::ids::role_id(ACCOUNT, "role-a").to_string(),
            ChangeKind::Delete
        )]
    );
    apply(&p, &changes, &a).await;
    let (_, changes) = plan(&p, &desired_b, &b).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));

    // Once B is emptied too, A's next prune deletes the provider.
    let (_, changes) = plan(&p, &[], &b).await;
    apply(&p, &changes, &b).await;
    let (_, changes) = plan(&p, &[], &a).await;
    assert_eq!(
        kinds(&changes),
        [(desired_a[0].id.to_string(), ChangeKind::Delete)]
    );
}
