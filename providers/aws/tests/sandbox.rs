//! The provider against wid's own sandbox: the IRSA flow (as against moto) with the issuer
//! discovered by `eks:DescribeCluster`, EKS Pod Identity, and injected throttling.

mod common;

use common::*;
use wid_aws::Mechanism;
use wid_core::{ChangeKind, ErrorKind, Provider};
use wid_sandbox::{Fault, FaultAction};

const ACCOUNT: &str = SANDBOX_ACCOUNT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_flow_against_the_sandbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let iam = iam(&sandbox.cloud_url(), ACCOUNT).await;
    irsa_flow(&p, &iam, &[cluster], ACCOUNT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_is_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sandbox, p, mut cluster) = start(dir.path()).await;
    cluster.eks_name = "nope".into();
    let err = p
        .discover_issuer(&cluster)
        .await
        .expect_err("no such cluster");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_identity_creates_updates_and_prunes_the_association() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let clusters = [cluster];
    let mut b = block("wid-pods");
    b.mechanism = Mechanism::PodIdentity;
    let workloads = vec![wl(0, "production", "orders", b.clone())];
    let desired = compile_plan(&workloads, &clusters, "pods");
    let own = owner("pods", false);
    let (_, changes) = plan(&p, &desired, &own).await;
    let assoc_id =
        wid_aws::ids::association_id(ACCOUNT, "us-east-1", "dev", "production", "orders");
    assert_eq!(
        kinds(&changes),
        [
            (assoc_id.to_string(), ChangeKind::Create),
            (
                wid_aws::ids::role_id(ACCOUNT, "wid-pods").to_string(),
                ChangeKind::Create
            ),
        ]
    );
    let out = apply(&p, &changes, &own).await;
    assert!(
        out[&assoc_id]["arn"].contains(":podidentityassociation/"),
        "{out:?}"
    );
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        observed.resources[&assoc_id].ownership,
        wid_core::Ownership::Ours
    );
    // The create carried the record; it never became a tagging call.
    assert_eq!(
        observed.resources[&assoc_id].applied,
        Some(wanted_record(&desired, &assoc_id))
    );
    assert_eq!(sandbox.calls().get("eks:TagResource"), None);
    let tag_calls = || sandbox.calls().get("eks:TagResource").copied().unwrap_or(0);

    // Point the KSA at another role: the association is updated in place.
    let mut other = b.clone();
    other.role = "wid-pods-v2".into();
    let desired = compile_plan(&[wl(0, "production", "orders", other)], &clusters, "pods");
    let (_, changes) = plan(&p, &desired, &own).await;
    let c = changes
        .iter()
        .find(|c| c.id == assoc_id)
        .expect("association change");
    assert_eq!(c.kind, ChangeKind::Update);
    assert_eq!(c.reason, wid_core::Reason::PlanChanged);
    assert_eq!(c.owned_attr_changes()[0].key, "role_arn");
    apply(&p, &changes, &own).await;
    // The update call takes no tags: recording the new plan is one TagResource.
    assert_eq!(tag_calls(), 1);
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        observed.resources[&assoc_id].applied,
        Some(wanted_record(&desired, &assoc_id))
    );

    // Someone points it back at the old role: drift, fixed without a TagResource.
    let eks = aws_sdk_eks::Client::new(&sdk_config(&sandbox.cloud_url(), ACCOUNT).await);
    let live = eks
        .list_pod_identity_associations()
        .cluster_name("dev")
        .send()
        .await
        .expect("list");
    eks.update_pod_identity_association()
        .cluster_name("dev")
        .association_id(live.associations()[0].association_id().expect("id"))
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/wid-pods"))
        .send()
        .await
        .expect("update behind wid's back");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(
        reasons(&changes),
        [(assoc_id.to_string(), wid_core::Reason::Drift)]
    );
    apply(&p, &changes, &own).await;
    assert_eq!(tag_calls(), 1);
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    let pruning = owner("pods", true);
    let (_, changes) = plan(&p, &desired, &pruning).await;
    // The old role left the plan; prune deletes it, the association stays.
    assert_eq!(
        kinds(
            &changes
                .iter()
                .filter(|c| c.kind != ChangeKind::NoOp)
                .cloned()
                .collect::<Vec<_>>()
        ),
        [(
            wid_aws::ids::role_id(ACCOUNT, "wid-pods").to_string(),
            ChangeKind::Delete
        )]
    );
    apply(&p, &changes, &pruning).await;

    // An empty plan with prune deletes the association, then its role.
    p.know_clusters(&clusters);
    let (_, changes) = plan(&p, &[], &pruning).await;
    assert_eq!(
        kinds(&changes),
        [
            (assoc_id.to_string(), ChangeKind::Delete),
            (
                wid_aws::ids::role_id(ACCOUNT, "wid-pods-v2").to_string(),
                ChangeKind::Delete
            ),
        ]
    );
    apply(&p, &changes, &pruning).await;
    let (_, changes) = plan(&p, &[], &pruning).await;
    assert!(changes.is_empty(), "{:?}", kinds(&changes));
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_association_is_a_conflict_until_aws_adopt_then_adopted_not_duplicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let eks = aws_sdk_eks::Client::new(&sdk_config(&sandbox.cloud_url(), ACCOUNT).await);
    iam(&sandbox.cloud_url(), ACCOUNT)
        .await
        .create_role()
        .role_name("hand-made")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#)
        .send()
        .await
        .expect("hand-made role");
    eks.create_pod_identity_association()
        .cluster_name("dev")
        .namespace("production")
        .service_account("orders")
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/hand-made"))
        .send()
        .await
        .expect("hand-made association");
    let mut b = block("wid-pods");
    b.mechanism = Mechanism::PodIdentity;
    let assoc_id =
        wid_aws::ids::association_id(ACCOUNT, "us-east-1", "dev", "production", "orders");
    let own = owner("pods", false);
    // Without `aws.adopt` the hand-made association is someone else's: a conflict whose
    // message names the key that clears it.
    let desired = compile_plan(
        &[wl(0, "production", "orders", b.clone())],
        std::slice::from_ref(&cluster),
        "pods",
    );
    let (_, changes) = plan(&p, &desired, &own).await;
    let c = changes
        .iter()
        .find(|c| c.id == assoc_id)
        .expect("association");
    assert_eq!(c.kind, wid_core::ChangeKind::Conflict);
    let wid_core::Reason::Blocked(why) = &c.reason else {
        panic!("{c:?}")
    };
    assert!(why.contains("`aws.adopt = true`"), "{why}");
    b.adopt = true;
    let desired = compile_plan(&[wl(0, "production", "orders", b)], &[cluster], "pods");
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name("dev")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.associations().len(), 1);
    // Adopting tagged the hand-made association with this plan's marks.
    let arn = listed.associations()[0]
        .association_arn()
        .expect("association ARN");
    let tags = eks
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("list tags");
    let tags = tags.tags().expect("tags");
    assert_eq!(
        tags.get(wid_core::PLAN_KEY).map(String::as_str),
        Some("pods")
    );
    assert!(tags.contains_key(wid_core::MANAGED_BY_KEY), "{tags:?}");
    // The record came in the same TagResource as the marks.
    assert_eq!(
        tags.get(wid_core::APPLIED_KEY),
        Some(&wanted_record(&desired, &assoc_id))
    );
    assert_eq!(sandbox.calls().get("eks:TagResource").copied(), Some(1));
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        observed.resources[&assoc_id].applied,
        Some(wanted_record(&desired, &assoc_id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_throttling_surfaces_as_throttled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let desired = compile_plan(
        &[wl(0, "ns", "sa", block("wid-throttled"))],
        &[cluster],
        "t",
    );
    let own = owner("t", false);
    let (_, changes) = plan(&p, &desired, &own).await;
    let role = changes
        .iter()
        .find(|c| c.id.kind() == "iam-role")
        .expect("role change");
    sandbox.inject(Fault {
        api: "iam:CreateRole".into(),
        action: FaultAction::Throttle,
        times: Some(2),
    });
    for _ in 0..2 {
        let err = expect_kind(p.apply(role, &own).await, ErrorKind::Throttled);
        assert!(err.to_string().contains("wid-throttled"), "{err}");
        assert!(err.kind().is_retryable());
    }
    // The SDK's own retries are off: each attempt was exactly one call, and the third
    // goes through.
    p.apply(role, &own).await.expect("third attempt succeeds");
    assert_eq!(sandbox.calls().get("iam:CreateRole").copied(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_oidc_provider_records_what_was_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let iam = iam(&sandbox.cloud_url(), ACCOUNT).await;
    let desired = compile_plan(&[wl(0, "ns", "sa", block("wid-oidc"))], &[cluster], "o");
    let own = owner("o", false);
    let provider_id = desired[0].id.clone();
    assert_eq!(provider_id.kind(), "iam-oidc-provider");
    let (_, changes) = plan(&p, &desired, &own).await;
    let outputs = apply(&p, &changes, &own).await;
    let arn = outputs[&provider_id]["arn"].clone();
    let remove_audience = || async {
        iam.remove_client_id_from_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .client_id("sts.amazonaws.com")
            .send()
            .await
            .expect("remove audience");
    };
    let tag_calls = || {
        sandbox
            .calls()
            .get("iam:TagOpenIDConnectProvider")
            .copied()
            .unwrap_or(0)
    };
    let (observed, _) = plan(&p, &desired, &own).await;
    assert_eq!(
        observed.resources[&provider_id].applied,
        Some(wanted_record(&desired, &provider_id))
    );

    // Someone removes wid's audience: drift, fixed without touching the record.
    remove_audience().await;
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(
        reasons(&changes),
        [(provider_id.to_string(), wid_core::Reason::Drift)]
    );
    apply(&p, &changes, &own).await;
    assert_eq!(tag_calls(), 0);

    // Without a record wid cannot tell; the fix writes the record back.
    remove_audience().await;
    iam.untag_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .tag_keys(wid_core::APPLIED_KEY)
        .send()
        .await
        .expect("untag record");
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert_eq!(observed.resources[&provider_id].applied, None);
    assert_eq!(
        reasons(&changes),
        [(provider_id.to_string(), wid_core::Reason::Differs)]
    );
    apply(&p, &changes, &own).await;
    assert_eq!(tag_calls(), 1);
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        observed.resources[&provider_id].applied,
        Some(wanted_record(&desired, &provider_id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_several_associations_is_listed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let clusters = [cluster];
    let mut b = block("wid-pods");
    b.mechanism = Mechanism::PodIdentity;
    // Four in `batch` (listed whole), one in `web` (found by its own filtered list).
    let mut workloads: Vec<_> = (0..4)
        .map(|i| wl(0, "batch", &format!("job{i}"), b.clone()))
        .collect();
    workloads.push(wl(0, "web", "front", b.clone()));
    let desired = compile_plan(&workloads, &clusters, "pods");
    let own = owner("pods", false);
    let lists = || {
        sandbox
            .calls()
            .get("eks:ListPodIdentityAssociations")
            .copied()
            .unwrap_or(0)
    };
    let describes = || {
        sandbox
            .calls()
            .get("eks:DescribePodIdentityAssociation")
            .copied()
            .unwrap_or(0)
    };
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(lists(), 2, "one list per namespace");
    assert_eq!(describes(), 0);
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Create)
            .count(),
        6
    );
    apply(&p, &changes, &own).await;
    // A hand-made association in the listed namespace is not the plan's business.
    let eks = aws_sdk_eks::Client::new(&sdk_config(&sandbox.cloud_url(), ACCOUNT).await);
    eks.create_pod_identity_association()
        .cluster_name("dev")
        .namespace("batch")
        .service_account("other")
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/wid-pods"))
        .send()
        .await
        .expect("hand-made association");
    let (before_lists, before_describes) = (lists(), describes());
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(lists() - before_lists, 2);
    assert_eq!(describes() - before_describes, 5, "one describe per wanted");
    for w in &workloads {
        let id = wid_aws::ids::association_id(ACCOUNT, "us-east-1", "dev", &w.namespace, &w.ksa);
        assert_eq!(
            observed.resources[&id].ownership,
            wid_core::Ownership::Ours,
            "{id}"
        );
    }
    let other = wid_aws::ids::association_id(ACCOUNT, "us-east-1", "dev", "batch", "other");
    assert!(!observed.resources.contains_key(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_ahead_serves_observe_once_and_a_write_drops_it() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, p, cluster) = start(dir.path()).await;
    let p = Arc::new(p);
    let clusters = [cluster];
    // 24 IRSA roles (read in bulk) and 4 associations in one namespace (listed whole).
    let mut workloads: Vec<_> = (0..24)
        .map(|i| {
            wl(
                0,
                "apps",
                &format!("sa{i}"),
                block(&format!("ahead-{i:02}")),
            )
        })
        .collect();
    let mut pods = block("ahead-pods");
    pods.mechanism = Mechanism::PodIdentity;
    workloads.extend((0..4).map(|i| wl(0, "batch", &format!("job{i}"), pods.clone())));
    let desired = compile_plan(&workloads, &clusters, "ahead");
    let own = owner("ahead", false);
    let (_, changes) = plan(p.as_ref(), &desired, &own).await;
    apply(p.as_ref(), &changes, &own).await;
    let wanted: Vec<&wid_core::Resource> = desired.iter().collect();
    let ids: Vec<wid_core::ResourceId> = desired.iter().map(|r| r.id.clone()).collect();
    let calls = || sandbox.calls().values().sum::<u64>();

    let before = calls();
    let read = p.observe(&wanted, &own).await.expect("observe");
    let per_observe = calls() - before;
    // The OIDC list and its provider, the bulk read (two calls), one listing, 4 describes.
    assert_eq!(per_observe, 2 + 2 + 1 + 4);

    // Observe polled first waits for the reads registered ahead of it: nothing twice.
    let before = calls();
    let reads = Arc::clone(&p).read_ahead(ids.clone(), own.clone());
    let (observed, ()) = tokio::join!(p.observe(&wanted, &own), reads);
    let observed = observed.expect("observe after a read-ahead");
    assert_eq!(observed.resources, read.resources);
    assert_eq!(observed.blockers, read.blockers);
    assert_eq!(calls() - before, per_observe);

    // Taken once: the next observe reads again.
    let before = calls();
    p.observe(&wanted, &own).await.expect("observe");
    assert_eq!(calls() - before, per_observe);

    // A write after the reads ahead: observe reads it all again.
    let mut more = workloads.clone();
    more.push(wl(0, "apps", "late", block("ahead-late")));
    let more = compile_plan(&more, &clusters, "ahead");
    let (_, changes) = plan(p.as_ref(), &more, &own).await;
    Arc::clone(&p).read_ahead(ids.clone(), own.clone()).await;
    apply(p.as_ref(), &changes, &own).await;
    let before = calls();
    p.observe(&wanted, &own).await.expect("observe");
    assert_eq!(calls() - before, per_observe);

    // Forgotten: observe reads again what was read ahead.
    let before = calls();
    Arc::clone(&p).read_ahead(ids, own.clone()).await;
    let ahead = calls() - before;
    assert_eq!(
        ahead,
        2 + 1 + 1,
        "the OIDC list, the bulk read, the listing"
    );
    p.forget_read_ahead();
    p.observe(&wanted, &own).await.expect("observe");
    assert_eq!(calls() - before, ahead + per_observe);
}
