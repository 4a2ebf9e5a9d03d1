//! The provider against moto_server: create, no-op, drift, fix, prune, conflict and adopt,
//! through `AwsProvider`, `wid_core::diff` and a small sequential apply loop.
//!
//! moto differs from AWS in ways the provider must tolerate: `LimitExceeded` is 400 (AWS:
//! 409), and policy documents come back as sent rather than URL-encoded.

mod common;

use common::*;
use wid_aws::{AwsOptions, AwsProvider, EksCluster};
use wid_core::{CallCounter, Provider};

fn cluster() -> EksCluster {
    EksCluster {
        plan_name: "eks-dev".into(),
        account: MOTO_ACCOUNT.into(),
        region: "us-east-1".into(),
        eks_name: "dev".into(),
        issuer: Some("https://oidc.eks.us-east-1.amazonaws.com/id/MOTOEXAMPLE0001".into()),
    }
}

async fn provider(url: &str, counter: CallCounter) -> AwsProvider {
    let opts = AwsOptions {
        endpoint_url: Some(url.to_owned()),
        sandbox: true,
        ..AwsOptions::default()
    };
    AwsProvider::new(opts, counter).await.expect("provider")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_flow_against_moto() {
    let Some(moto) = Moto::start() else { return };
    let counter = CallCounter::default();
    let p = provider(&moto.url, counter.clone()).await;
    assert_eq!(p.name(), "aws");
    let iam = iam(&moto.url, MOTO_ACCOUNT).await;
    irsa_flow(&p, &iam, &[cluster()], MOTO_ACCOUNT).await;
    // Providers are listed once per observe (the flow observes 14 times), never once
    // per workload.
    let calls = counter.snapshot();
    let lists = calls
        .get("iam:ListOpenIDConnectProviders")
        .copied()
        .unwrap_or(0);
    assert!(lists > 0 && lists <= 14, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_counts_the_fewest_calls() {
    let Some(moto) = Moto::start() else { return };
    let counter = CallCounter::default();
    let p = provider(&moto.url, counter.clone()).await;
    let iam = iam(&moto.url, MOTO_ACCOUNT).await;
    let policy = managed_policy(&iam, "wid-count").await;
    let desired = compile_plan(&scenario(&policy), &[cluster()], "count");
    let own = owner("count", false);
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;
    let before = counter.snapshot();
    let (_, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes));
    let after = counter.snapshot();
    let delta =
        |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
    // One provider list for the account, one read of the one provider; per role (2):
    // GetRole, ListAttachedRolePolicies, ListRolePolicies, and one GetRolePolicy per
    // inline policy (1 each).
    assert_eq!(delta("iam:ListOpenIDConnectProviders"), 1);
    assert_eq!(delta("iam:GetOpenIDConnectProvider"), 1);
    assert_eq!(delta("iam:GetRole"), 2);
    assert_eq!(delta("iam:ListAttachedRolePolicies"), 2);
    assert_eq!(delta("iam:ListRolePolicies"), 2);
    assert_eq!(delta("iam:GetRolePolicy"), 2);
    assert_eq!(counter.total() - before.values().sum::<u64>(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_provider_with_another_owner_is_used_not_touched() {
    let Some(moto) = Moto::start() else { return };
    let p = provider(&moto.url, CallCounter::default()).await;
    let iam = iam(&moto.url, MOTO_ACCOUNT).await;
    // Someone else registered the issuer already, with an extra audience.
    iam.create_open_id_connect_provider()
        .url(cluster().issuer.unwrap_or_default())
        .client_id_list("sts.amazonaws.com")
        .client_id_list("other-audience")
        .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
        .send()
        .await
        .expect("create provider");
    let desired = compile_plan(
        &[wl(0, "ns", "sa", block("wid-shared-user"))],
        &[cluster()],
        "s",
    );
    let own = owner("s", true);
    let (observed, changes) = plan(&p, &desired, &own).await;
    let provider_id = &desired[0].id;
    assert_eq!(
        observed.resources[provider_id].ownership,
        wid_core::Ownership::Unowned
    );
    let kinds = kinds(&changes);
    assert_eq!(
        kinds[0],
        (provider_id.to_string(), wid_core::ChangeKind::NoOp)
    );
    apply(&p, &changes, &own).await;
    // Prune with an empty plan deletes the role but never the provider it did not create.
    // The engine tells the provider the plan's clusters, so prune knows which accounts
    // to scan even when no workload is left in one.
    p.know_clusters(&[cluster()]);
    let (_, changes) = plan(&p, &[], &own).await;
    assert_eq!(
        common::kinds(&changes),
        [(
            wid_aws::ids::role_id(MOTO_ACCOUNT, "wid-shared-user").to_string(),
            wid_core::ChangeKind::Delete
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_errors_map_to_kinds_with_the_role_named() {
    let Some(moto) = Moto::start() else { return };
    let p = provider(&moto.url, CallCounter::default()).await;
    let iam = iam(&moto.url, MOTO_ACCOUNT).await;
    // A managed policy that does not exist: moto answers NoSuchEntity on attach.
    let desired = compile_plan(
        &[wl(0, "ns", "sa", {
            let mut b = block("wid-bad-attach");
            b.managed_policies = vec![format!("arn:aws:iam::{MOTO_ACCOUNT}:policy/does-not-exist")];
            b
        })],
        &[cluster()],
        "e",
    );
    let own = owner("e", false);
    let (_, changes) = plan(&p, &desired, &own).await;
    let role = changes
        .iter()
        .find(|c| c.id.kind() == "iam-role")
        .expect("role change");
    let err = expect_kind(
        wid_core::Provider::apply(&p, role, &own).await,
        wid_core::ErrorKind::Invalid,
    );
    assert!(err.to_string().contains("wid-bad-attach"), "{err}");
    assert!(
        err.to_string().contains("the policy does not exist"),
        "{err}"
    );
    assert!(
        err.hint
            .as_deref()
            .is_some_and(|h| h.contains("`aws.managed_policies`")),
        "{:?}",
        err.hint
    );
    assert_eq!(err.operation.as_deref(), Some("iam:AttachRolePolicy"));
    // The role was created before the attach failed: it is left partly applied.
    assert!(err.partial);
    // The role itself was created before the attach failed: a re-run sees it as ours.
    let got = iam
        .get_role()
        .role_name("wid-bad-attach")
        .send()
        .await
        .expect("role exists");
    assert!(got.role().is_some());
    // Creating it again is a conflict (EntityAlreadyExists).
    let err = expect_kind(
        wid_core::Provider::apply(&p, role, &own).await,
        wid_core::ErrorKind::Conflict,
    );
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_what_was_applied_costs_a_call_only_when_the_plan_changed() {
    let Some(moto) = Moto::start() else { return };
    let counter = CallCounter::default();
    let p = provider(&moto.url, counter.clone()).await;
    let iam = iam(&moto.url, MOTO_ACCOUNT).await;
    let policy = managed_policy(&iam, "wid-record").await;
    let mut workloads = scenario(&policy);
    let desired = compile_plan(&workloads, &[cluster()], "record");
    let own = owner("record", false);
    let orders = wid_aws::ids::role_id(MOTO_ACCOUNT, "wid-orders");
    let delta = |before: &std::collections::BTreeMap<String, u64>, op: &str| {
        counter.snapshot().get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0)
    };

    // Creates carry the record in the create call. A role with policies to attach starts
    // with an incomplete record and is sealed by one TagRole after the last one: both
    // scenario roles have policies, so two TagRole calls; the provider needs none.
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;
    let calls = counter.snapshot();
    assert_eq!(calls.get("iam:TagRole"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("iam:TagOpenIDConnectProvider"), None, "{calls:?}");
    assert_eq!(
        role_record(&iam, "wid-orders").await,
        Some(wanted_record(&desired, &orders))
    );
    let provider_id = &desired[0].id;
    assert_eq!(provider_id.kind(), "iam-oidc-provider");
    let providers = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("list providers");
    let provider_arn = providers.open_id_connect_provider_list()[0]
        .arn()
        .expect("provider arn")
        .to_owned();
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider_arn)
        .send()
        .await
        .expect("get provider");
    assert_eq!(
        got.tags()
            .iter()
            .find(|t| t.key() == wid_core::APPLIED_KEY)
            .map(|t| t.value().to_owned()),
        Some(wanted_record(&desired, provider_id))
    );

    // Drift: fixing it leaves the record as it is, so it costs no tagging call.
    iam.update_role()
        .role_name("wid-orders")
        .max_session_duration(3600)
        .send()
        .await
        .expect("edit behind wid's back");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(
        reasons(&changes),
        [(orders.to_string(), wid_core::Reason::Drift)]
    );
    let before = counter.snapshot();
    apply(&p, &changes, &own).await;
    assert_eq!(delta(&before, "iam:UpdateRole"), 1);
    assert_eq!(delta(&before, "iam:TagRole"), 0);

    // A plan change that sets no tag: one TagRole more, for the record.
    workloads[0].block.max_session_duration = Some(3600);
    let desired = compile_plan(&workloads, &[cluster()], "record");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(
        reasons(&changes),
        [(orders.to_string(), wid_core::Reason::PlanChanged)]
    );
    let before = counter.snapshot();
    apply(&p, &changes, &own).await;
    assert_eq!(delta(&before, "iam:UpdateRole"), 1);
    assert_eq!(delta(&before, "iam:TagRole"), 1);
    assert_eq!(
        role_record(&iam, "wid-orders").await,
        Some(wanted_record(&desired, &orders))
    );

    // A plan change of the tags: the record rides in the same TagRole.
    workloads[0].block.tags.insert("tier".into(), "gold".into());
    let desired = compile_plan(&workloads, &[cluster()], "record");
    let (_, changes) = plan(&p, &desired, &own).await;
    assert_eq!(
        reasons(&changes),
        [(orders.to_string(), wid_core::Reason::PlanChanged)]
    );
    let before = counter.snapshot();
    apply(&p, &changes, &own).await;
    assert_eq!(delta(&before, "iam:TagRole"), 1);
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        observed.resources[&orders].applied,
        Some(wanted_record(&desired, &orders))
    );
    assert_eq!(
        observed.resources[&orders].attrs["tags"],
        serde_json::json!({"team": "orders", "tier": "gold"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_role_read_agrees_with_per_role_reads_on_moto() {
    let Some(moto) = Moto::start() else { return };
    let counter = CallCounter::default();
    let p = provider(&moto.url, counter.clone()).await;
    let iam = iam(&moto.url, MOTO_ACCOUNT).await;
    let policy = managed_policy(&iam, "wid-bulk").await;
    let workloads: Vec<Wl> = (0..24)
        .map(|i| {
            let mut b = block(&format!("wid-bulk-{i:02}"));
            if i % 3 == 0 {
                b.inline_policies
                    .insert("s3".into(), wid_aws::InlinePolicy::Json(S3_READ.into()));
            }
            if i % 4 == 0 {
                b.managed_policies.push(policy.clone());
                b.tags.insert("team".into(), format!("t{i}"));
            }
            wl(0, "apps", &format!("sa{i}"), b)
        })
        .collect();
    let desired = compile_plan(&workloads, &[cluster()], "bulk");
    let own = owner("bulk", false);
    let (_, changes) = plan(&p, &desired, &own).await;
    apply(&p, &changes, &own).await;

    let before = counter.snapshot();
    let (observed, changes) = plan(&p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    let after = counter.snapshot();
    let delta =
        |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
    assert_eq!(delta("iam:GetAccountAuthorizationDetails"), 1);
    assert_eq!(delta("iam:GetRole"), 0);
    // Below the bulk threshold (one role at a time) the same roles are read one by one.
    for r in desired
        .iter()
        .filter(|r| r.id.kind() == wid_aws::ids::KIND_ROLE)
    {
        let alone = p.observe(&[r], &own).await.expect("observe one role");
        assert_eq!(
            format!("{:?}", alone.resources.get(&r.id)),
            format!("{:?}", observed.resources.get(&r.id)),
            "{}",
            r.id
        );
    }
}
