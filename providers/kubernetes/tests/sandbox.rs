//! The provider against the embedded sandbox's Kubernetes API: create then no-op, labels
//! others set survive, drift is shown and fixed, the applied record tells drift from a plan
//! change (also on GitOps-applied manifests), prune deletes only what this plan marked,
//! missing namespaces and unowned KSAs block, tokens carry the requested audience, and
//! observe makes the fewest calls.

mod common;

use std::sync::Arc;

use base64::Engine;
use common::*;
use serde_json::json;
use wid_core::{APPLIED_KEY, ChangeKind, ErrorKind, Provider, Reason, applied_hash};
use wid_kubernetes::{TokenOptions, compile, manifests};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_observe_is_a_noop() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", false);
    let k = annotate(
        label(with_rules(ksa("apps", "orders")), "team", "payments"),
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::111122223333:role/orders",
    );
    let desired = compile(&[cluster(false, true)], vec![k]);
    let changes = plan(&e.provider, &desired, &own).await;
    assert_eq!(
        kinds(&changes),
        [
            (
                "k8s/default-serviceaccount/dev/apps".to_owned(),
                ChangeKind::Update
            ),
            (
                "k8s/role/dev/apps/wid-orders".to_owned(),
                ChangeKind::Create
            ),
            (
                "k8s/rolebinding/dev/apps/wid-orders".to_owned(),
                ChangeKind::Create
            ),
            (
                "k8s/serviceaccount/dev/apps/orders".to_owned(),
                ChangeKind::Create
            ),
        ]
    );
    apply(&e.provider, &changes, &own).await;

    let again = plan(&e.provider, &desired, &own).await;
    assert!(all_noop(&again), "{again:#?}");

    let sa = e.get_sa("apps", "orders").await.expect("orders exists");
    assert_eq!(sa["automountServiceAccountToken"], json!(false));
    assert_eq!(
        sa["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "wid"
    );
    assert_eq!(sa["metadata"]["labels"]["wid.dev/plan"], "payments");
    let default = e.get_sa("apps", "default").await.expect("default exists");
    assert_eq!(default["automountServiceAccountToken"], json!(false));
    assert!(
        default["metadata"]["labels"]["app.kubernetes.io/managed-by"].is_null(),
        "the default SA is hardened, never marked: {default}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_others_set_survive_and_dropped_ones_go() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", false);
    let first = compile(
        &[cluster(false, false)],
        vec![label(
            label(ksa("apps", "orders"), "team", "payments"),
            "tier",
            "gold",
        )],
    );
    apply(&e.provider, &plan(&e.provider, &first, &own).await, &own).await;
    e.merge_patch_sa(
        "apps",
        "orders",
        json!({"metadata": {"labels": {"cost-center": "42"}}}),
    )
    .await;

    // The plan drops `tier`: the diff shows its removal and nothing about `cost-center`.
    let second = compile(
        &[cluster(false, false)],
        vec![label(ksa("apps", "orders"), "team", "payments")],
    );
    let changes = plan(&e.provider, &second, &own).await;
    assert_eq!(changes.len(), 1);
    let keys: Vec<_> = changes[0].attr_changes().map(|a| a.key).collect();
    assert_eq!(keys, ["labels.tier"], "{changes:#?}");
    assert_eq!(changes[0].owned_attr_changes()[0].after, None);
    apply(&e.provider, &changes, &own).await;

    let labels = &e.get_sa("apps", "orders").await.unwrap()["metadata"]["labels"];
    assert_eq!(labels["cost-center"], "42", "{labels}");
    assert_eq!(labels["team"], "payments");
    assert!(labels["tier"].is_null(), "{labels}");
    assert!(all_noop(&plan(&e.provider, &second, &own).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_automount_shows_before_and_after_and_apply_fixes_it() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, false)], vec![ksa("apps", "orders")]);
    apply(&e.provider, &plan(&e.provider, &desired, &own).await, &own).await;

    e.merge_patch_sa(
        "apps",
        "orders",
        json!({"automountServiceAccountToken": true}),
    )
    .await;
    let changes = plan(&e.provider, &desired, &own).await;
    assert_eq!(
        (changes[0].kind, &changes[0].reason),
        (ChangeKind::Update, &Reason::Drift),
        "wid applied this same plan, so the change is drift"
    );
    let a = &changes[0].owned_attr_changes()[0];
    assert_eq!(a.key, "automountServiceAccountToken");
    assert_eq!(a.before, Some(json!(true)));
    assert_eq!(a.after, Some(json!(false).into()));
    apply(&e.provider, &changes, &own).await;

    let sa = e.get_sa("apps", "orders").await.unwrap();
    assert_eq!(sa["automountServiceAccountToken"], json!(false));
    assert!(all_noop(&plan(&e.provider, &desired, &own).await));
}

/// The `wid.dev/applied` record of every object `desired` names, by id, as the cluster has it.
async fn records(e: &Env, desired: &[Arc<wid_core::Resource>]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for r in desired {
        let object = e.get(&r.id).await.expect("object exists");
        let record = object["metadata"]["annotations"][APPLIED_KEY]
            .as_str()
            .map(str::to_owned);
        out.push((r.id.to_string(), record));
    }
    out
}

/// What the records must be: the hash of each resource's attributes, none on `Fields`.
fn expected_records(desired: &[Arc<wid_core::Resource>]) -> Vec<(String, Option<String>)> {
    desired
        .iter()
        .map(|r| {
            let record = (r.mode != wid_core::Mode::Fields)
                .then(|| applied_hash(&r.attrs))
                .flatten();
            (r.id.to_string(), record)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applied_record_tells_drift_from_a_plan_change() {
    let e = env().await;
    let own = owner("payments", false);
    let k = annotate(
        with_rules(ksa("apps", "orders")),
        "eks.amazonaws.com/role-arn",
        "arn:aws:iam::111122223333:role/orders",
    );
    let desired = compile(&[cluster(true, true)], vec![k.clone()]);
    let changes = plan(&e.provider, &desired, &own).await;
    let writes = changes
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::Create | ChangeKind::Update))
        .count() as u64;
    let before = e.counter.total();
    apply(&e.provider, &changes, &own).await;
    assert_eq!(
        e.counter.total() - before,
        writes,
        "the record rides in the one apply per object: {:?}",
        e.counter.snapshot()
    );
    // Namespace, SA, Role and RoleBinding carry the hash of what was applied; the
    // `default` SA (hardened, not owned) carries none.
    assert_eq!(records(&e, &desired).await, expected_records(&desired));
    let recorded = expected_records(&desired)
        .into_iter()
        .filter(|(_, r)| r.is_some())
        .count();
    assert_eq!((desired.len(), recorded), (5, 4));

    // The record itself never causes a diff.
    let again = plan(&e.provider, &desired, &own).await;
    assert!(all_noop(&again), "{again:#?}");

    // Someone widens the Role behind wid's back: drift.
    let roles = kube::Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(e.kube.clone(), "apps");
    roles
        .patch(
            "wid-orders",
            &kube::api::PatchParams {
                field_manager: Some("someone-else".into()),
                ..kube::api::PatchParams::default()
            },
            &kube::api::Patch::Merge(&json!({"rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
            ]})),
        )
        .await
        .expect("role patched");
    let changes = plan(&e.provider, &desired, &own).await;
    let updates: Vec<_> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| (c.id.to_string(), c.kind, c.reason.clone()))
        .collect();
    assert_eq!(
        updates,
        [(
            "k8s/role/dev/apps/wid-orders".to_owned(),
            ChangeKind::Update,
            Reason::Drift
        )]
    );
    apply(&e.provider, &changes, &own).await;
    assert!(all_noop(&plan(&e.provider, &desired, &own).await));

    // The plan changes the KSA: a plan change, and the record follows the new plan.
    let changed = compile(&[cluster(true, true)], vec![label(k, "team", "payments")]);
    let changes = plan(&e.provider, &changed, &own).await;
    let updates: Vec<_> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| (c.id.to_string(), c.kind, c.reason.clone()))
        .collect();
    assert_eq!(
        updates,
        [(
            "k8s/serviceaccount/dev/apps/orders".to_owned(),
            ChangeKind::Update,
            Reason::PlanChanged
        )]
    );
    apply(&e.provider, &changes, &own).await;
    assert_eq!(records(&e, &changed).await, expected_records(&changed));
    assert!(all_noop(&plan(&e.provider, &changed, &own).await));

    // An object without a record (applied by an older wid, or the record removed): its
    // absence is no diff, and a difference cannot be told apart, so it stays `Differs`.
    e.merge_patch_sa(
        "apps",
        "orders",
        json!({"metadata": {"annotations": {APPLIED_KEY: null}}}),
    )
    .await;
    assert!(all_noop(&plan(&e.provider, &changed, &own).await));
    e.merge_patch_sa(
        "apps",
        "orders",
        json!({"automountServiceAccountToken": true}),
    )
    .await;
    let changes = plan(&e.provider, &changed, &own).await;
    let sa = changes
        .iter()
        .find(|c| c.id.kind() == "serviceaccount")
        .expect("the KSA");
    assert_eq!(
        (sa.kind, &sa.reason),
        (ChangeKind::Update, &Reason::Differs)
    );
    apply(&e.provider, &changes, &own).await;
    assert_eq!(records(&e, &changed).await, expected_records(&changed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_applied_manifests_carry_the_record() {
    let e = env().await;
    let own = owner("payments", false);
    let desired = compile(
        &[cluster(true, true)],
        vec![label(with_rules(ksa("apps", "orders")), "team", "payments")],
    );
    // A GitOps tool applies the rendered manifests under its own field manager.
    let rendered = manifests(&desired, &own).expect("render");
    for object in &rendered[CLUSTER] {
        e.apply_as("argocd", object).await;
    }
    assert_eq!(records(&e, &desired).await, expected_records(&desired));
    let again = plan(&e.provider, &desired, &own).await;
    assert!(all_noop(&again), "{again:#?}");

    e.merge_patch_sa(
        "apps",
        "orders",
        json!({"automountServiceAccountToken": true}),
    )
    .await;
    let changes = plan(&e.provider, &desired, &own).await;
    let sa = changes
        .iter()
        .find(|c| c.id.kind() == "serviceaccount")
        .expect("the KSA");
    assert_eq!((sa.kind, &sa.reason), (ChangeKind::Update, &Reason::Drift));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_objects_this_plan_marked() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", true);
    let both = compile(
        &[cluster(false, false)],
        vec![with_rules(ksa("apps", "orders")), ksa("apps", "billing")],
    );
    apply(&e.provider, &plan(&e.provider, &both, &own).await, &own).await;
    e.create_sa("apps", "manual", json!({})).await;
    e.create_sa(
        "apps",
        "theirs",
        json!({"app.kubernetes.io/managed-by": "wid", "wid.dev/plan": "other-team"}),
    )
    .await;

    let one = compile(&[cluster(false, false)], vec![ksa("apps", "billing")]);
    let changes = plan(&e.provider, &one, &own).await;
    assert_eq!(
        kinds(&changes),
        [
            (
                "k8s/role/dev/apps/wid-orders".to_owned(),
                ChangeKind::Delete
            ),
            (
                "k8s/rolebinding/dev/apps/wid-orders".to_owned(),
                ChangeKind::Delete
            ),
            (
                "k8s/serviceaccount/dev/apps/billing".to_owned(),
                ChangeKind::NoOp
            ),
            (
                "k8s/serviceaccount/dev/apps/orders".to_owned(),
                ChangeKind::Delete
            ),
        ]
    );
    let binding = &changes[1];
    assert_eq!(binding.depends_on().len(), 2, "deletes run binding first");
    apply(&e.provider, &changes, &own).await;

    assert!(e.get_sa("apps", "orders").await.is_none());
    assert!(e.get_sa("apps", "manual").await.is_some());
    assert!(e.get_sa("apps", "theirs").await.is_some());
    assert!(e.get_sa("apps", "billing").await.is_some());
    assert!(all_noop(&plan(&e.provider, &one, &own).await));

    // Without --prune the same plan deletes nothing.
    let keep = owner("payments", false);
    let two = compile(
        &[cluster(false, false)],
        vec![ksa("apps", "billing"), ksa("apps", "gone")],
    );
    apply(&e.provider, &plan(&e.provider, &two, &keep).await, &keep).await;
    let changes = plan(&e.provider, &one, &keep).await;
    assert!(all_noop(&changes), "{changes:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_refuses_an_object_changed_since_the_plan() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", true);
    let first = compile(&[cluster(false, false)], vec![ksa("apps", "orders")]);
    apply(&e.provider, &plan(&e.provider, &first, &own).await, &own).await;
    let changes = plan(&e.provider, &[], &own).await;
    assert_eq!(changes[0].kind, ChangeKind::Delete);
    // Someone edits the object between plan and apply: the precondition fails.
    e.merge_patch_sa(
        "apps",
        "orders",
        json!({"metadata": {"annotations": {"x": "y"}}}),
    )
    .await;
    let err = e.provider.apply(&changes[0], &own).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err} {:?}", err.detail);
    assert!(e.get_sa("apps", "orders").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_namespace_is_a_blocker_unless_wid_creates_it() {
    let e = env().await;
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, true)], vec![ksa("nope", "orders")]);
    let changes = plan(&e.provider, &desired, &own).await;
    assert!(changes.iter().all(|c| c.kind == ChangeKind::Conflict));
    let Reason::Blocked(why) = &changes[0].reason else {
        panic!("{changes:#?}")
    };
    assert_eq!(
        why,
        "namespace nope does not exist in cluster dev; create it or set create_namespaces = true on the cluster"
    );

    let created = compile(&[cluster(true, true)], vec![ksa("nope", "orders")]);
    let changes = plan(&e.provider, &created, &own).await;
    assert_eq!(
        kinds(&changes),
        [
            (
                "k8s/default-serviceaccount/dev/nope".to_owned(),
                ChangeKind::Create
            ),
            ("k8s/namespace/dev/nope".to_owned(), ChangeKind::Create),
            (
                "k8s/serviceaccount/dev/nope/orders".to_owned(),
                ChangeKind::Create
            ),
        ]
    );
    apply(&e.provider, &changes, &own).await;
    let again = plan(&e.provider, &created, &own).await;
    assert!(all_noop(&again), "{again:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unowned_existing_ksa_is_a_conflict_until_adopted() {
    let e = env().await;
    e.create_namespace("apps").await;
    e.create_sa("apps", "orders", json!({"team": "legacy"}))
        .await;
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, false)], vec![ksa("apps", "orders")]);
    let changes = plan(&e.provider, &desired, &own).await;
    assert_eq!(changes[0].kind, ChangeKind::Conflict);
    // The message names the key the next step sets: the workload's own `adopt`.
    let Reason::Blocked(why) = &changes[0].reason else {
        panic!("{:?}", changes[0].reason)
    };
    assert!(why.contains("set `adopt = true` in workload"), "{why}");
    let err = e.provider.apply(&changes[0], &own).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let mut adopt = ksa("apps", "orders");
    adopt.adopt = true;
    let desired = compile(&[cluster(false, false)], vec![adopt]);
    let changes = plan(&e.provider, &desired, &own).await;
    assert_eq!(
        (changes[0].kind, &changes[0].reason),
        (ChangeKind::Update, &Reason::Adopt)
    );
    apply(&e.provider, &changes, &own).await;
    let labels = &e.get_sa("apps", "orders").await.unwrap()["metadata"]["labels"];
    assert_eq!(labels["wid.dev/plan"], "payments");
    assert_eq!(labels["team"], "legacy", "adopting keeps others' labels");
    assert!(all_noop(&plan(&e.provider, &desired, &own).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_carry_the_requested_audience() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, false)], vec![ksa("apps", "orders")]);
    apply(&e.provider, &plan(&e.provider, &desired, &own).await, &own).await;

    let opts = TokenOptions {
        expiration_seconds: Some(3600),
        audiences: vec!["sts.amazonaws.com".into()],
        bound_pod: None,
    };
    let issued = e
        .provider
        .create_token("dev", "apps", "orders", &opts)
        .await
        .expect("token");
    let payload = issued.token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json claims");
    let aud = &claims["aud"];
    assert!(
        aud == &json!(["sts.amazonaws.com"]) || aud == &json!("sts.amazonaws.com"),
        "{claims}"
    );
    assert_eq!(claims["sub"], "system:serviceaccount:apps:orders");
    assert!(issued.expiration.contains('T'), "{}", issued.expiration);
    assert!(!format!("{issued:?}").contains(&issued.token));

    let missing = e
        .provider
        .create_token("dev", "apps", "nobody", &opts)
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(missing.to_string().contains("apps/nobody"), "{missing}");
}

/// KSAs named `names` in each of `namespaces`, each with its Role.
fn ksas_with_rules(namespaces: &[&str], names: &[&str]) -> Vec<wid_kubernetes::KsaSpec> {
    namespaces
        .iter()
        .flat_map(|ns| names.iter().map(|n| with_rules(ksa(ns, n))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_makes_one_list_per_namespace_and_kind() {
    let e = env().await;
    e.create_namespace("one").await;
    e.create_namespace("two").await;
    let own = owner("payments", false);
    let ksas = ksas_with_rules(&["one", "two"], &["a", "b", "c"]);
    let desired = compile(&[cluster(false, false)], ksas.clone());
    assert_eq!(desired.len(), 18);
    apply(&e.provider, &plan(&e.provider, &desired, &own).await, &own).await;

    let before = e.counter.total();
    let again = plan(&e.provider, &desired, &own).await;
    assert!(all_noop(&again));
    let calls = e.counter.total() - before;
    let lower_bound = 1 + 2 * 3;
    eprintln!(
        "observe of 2 namespaces x 3 KSAs with roles: {calls} calls (lower bound {lower_bound}): {:?}",
        e.counter.snapshot()
    );
    assert_eq!(calls, lower_bound);

    let before = e.counter.total();
    plan(&e.provider, &desired, &owner("payments", true)).await;
    let with_prune = e.counter.total() - before;
    eprintln!("with prune: {with_prune} calls");
    assert_eq!(with_prune, lower_bound + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_ahead_serves_observe_once_without_a_second_list() {
    use std::sync::Arc;
    use wid_core::{Limits, RetryPolicy};
    use wid_sandbox::{Fault, FaultAction};
    let e = env().await;
    e.create_namespace("one").await;
    e.create_namespace("two").await;
    let own = owner("payments", true);
    let ksas = ksas_with_rules(&["one", "two"], &["a", "b"]);
    let desired = compile(&[cluster(false, true)], ksas);
    apply(&e.provider, &plan(&e.provider, &desired, &own).await, &own).await;
    e.create_sa("one", "someone-elses", json!({})).await;
    let wanted: Vec<&wid_core::Resource> = desired.iter().map(|r| &**r).collect();
    let ids: Vec<_> = desired.iter().map(|r| r.id.clone()).collect();
    let read = e.provider.observe(&wanted, &own).await.expect("observe");

    let (ahead, counter) = e.provider_with(&Limits::default()).await;
    let ahead = Arc::new(ahead);
    // Observe is polled first: the lists were registered when the read-ahead was made,
    // so it waits for them instead of listing again.
    let reads = Arc::clone(&ahead).read_ahead(ids.clone(), own.clone());
    let (observed, ()) = tokio::join!(ahead.observe(&wanted, &own), reads);
    let observed = observed.expect("observe after a read-ahead");
    assert_eq!(observed.resources, read.resources);
    assert_eq!(observed.blockers, read.blockers);
    // One LIST of namespaces, one per namespace and kind (serviceaccounts, roles,
    // rolebindings), one per prunable kind across namespaces: no list twice.
    let once = 1 + 2 * 3 + 3;
    assert_eq!(counter.total(), once, "{:?}", counter.snapshot());

    // What a read-ahead read serves one observe: the next reads the world again, and
    // so does one after a read-ahead was forgotten.
    ahead.observe(&wanted, &own).await.expect("observe");
    assert_eq!(counter.total(), 2 * once);
    Arc::clone(&ahead)
        .read_ahead(ids.clone(), own.clone())
        .await;
    ahead.forget_read_ahead();
    ahead.observe(&wanted, &own).await.expect("observe");
    assert_eq!(counter.total(), 4 * once);

    // A list that failed during the read-ahead fails the observe that needed it, as if
    // observe had made it (no second try hidden behind the first), and is not kept.
    let (single, counter) = e
        .provider_with(&Limits {
            retry: RetryPolicy {
                max_attempts: 1,
                ..Default::default()
            },
            ..Default::default()
        })
        .await;
    let single = Arc::new(single);
    e.sandbox.inject(Fault {
        api: "k8s:list serviceaccounts".into(),
        action: FaultAction::ServerError,
        times: Some(1),
    });
    Arc::clone(&single)
        .read_ahead(ids.clone(), own.clone())
        .await;
    let err = single.observe(&wanted, &own).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(counter.total(), once);
    let again = single.observe(&wanted, &own).await.expect("read again");
    assert_eq!(again.resources, read.resources);
    assert_eq!(counter.total(), 2 * once);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_a_pod_names_the_pod() {
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, false)], vec![ksa("apps", "orders")]);
    apply(&e.provider, &plan(&e.provider, &desired, &own).await, &own).await;
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "orders-0"},
        "spec": {"serviceAccountName": "orders", "containers": [{"name": "app", "image": "busybox"}]}
    }))
    .unwrap();
    let created = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(e.kube.clone(), "apps")
        .create(&kube::api::PostParams::default(), &pod)
        .await
        .expect("pod created");

    let opts = TokenOptions {
        expiration_seconds: None,
        audiences: vec!["api://AzureADTokenExchange".into()],
        bound_pod: Some("orders-0".into()),
    };
    let issued = e
        .provider
        .create_token("dev", "apps", "orders", &opts)
        .await
        .expect("token");
    let payload = issued.token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json claims");
    let bound = &claims["kubernetes.io"]["pod"];
    assert_eq!(bound["name"], "orders-0", "{claims}");
    assert_eq!(bound["uid"].as_str(), created.metadata.uid.as_deref());
    let calls = e.counter.snapshot();
    assert_eq!(calls.get("k8s:get pods"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("k8s:create serviceaccounts/token"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_faults_map_to_kinds_without_hidden_retries() {
    use wid_sandbox::{Fault, FaultAction};
    let e = env().await;
    e.create_namespace("apps").await;
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, false)], vec![ksa("apps", "orders")]);
    let wanted: Vec<&wid_core::Resource> = desired.iter().map(|r| &**r).collect();

    // A provider that reads once: the error's kind shows instead of a retry.
    let once = wid_core::Limits {
        retry: wid_core::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let (single, counter) = e.provider_with(&once).await;
    for (action, kind) in [
        (FaultAction::Throttle, ErrorKind::Throttled),
        (FaultAction::ServerError, ErrorKind::Transient),
    ] {
        e.sandbox.inject(Fault {
            api: "k8s:list serviceaccounts".into(),
            action,
            times: Some(1),
        });
        let before = counter.total();
        let err = single.observe(&wanted, &own).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err} {:?}", err.detail);
        assert_eq!(
            err.to_string(),
            "failed to list serviceaccounts in namespace apps in cluster dev"
        );
        // kube's own retry is off: one LIST of namespaces, one of serviceaccounts.
        assert_eq!(counter.total() - before, 2);
    }
    // With the default policy, the one read that failed is read again: no hidden retry
    // in kube, one visible retry in wid.
    e.sandbox.inject(Fault {
        api: "k8s:list serviceaccounts".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    let before = e.counter.total();
    e.provider
        .observe(&wanted, &own)
        .await
        .expect("a throttled read is retried");
    assert_eq!(e.counter.total() - before, 3);

    let changes = plan(&e.provider, &desired, &own).await;
    e.sandbox.inject(Fault {
        api: "k8s:apply serviceaccounts".into(),
        action: FaultAction::Conflict,
        times: Some(1),
    });
    let err = e.provider.apply(&changes[0], &own).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Contended);
    assert_eq!(
        err.to_string(),
        "failed to apply serviceaccount apps/orders in cluster dev"
    );
    assert_eq!(err.resource.as_ref(), Some(&changes[0].id));
    assert_eq!(err.operation.as_deref(), Some("k8s:apply serviceaccounts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubeconfig_context_reaches_the_cluster() {
    let e = env().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, e.sandbox.kubeconfig()).unwrap();
    let conn = wid_kubernetes::ClusterConn::Kubeconfig {
        path: Some(path),
        context: Some(CLUSTER.into()),
    };
    let counter = wid_core::CallCounter::default();
    let p = wid_kubernetes::KubernetesProvider::connect(
        std::collections::BTreeMap::from([(CLUSTER.to_owned(), conn)]),
        counter.clone(),
    )
    .await
    .expect("connect through the kubeconfig");
    let own = owner("payments", false);
    let desired = compile(&[cluster(false, false)], vec![ksa("default", "orders")]);
    let changes = plan(&p, &desired, &own).await;
    assert_eq!(changes[0].kind, ChangeKind::Create, "{changes:#?}");
    assert_eq!(counter.total(), 2);
}
