//! The IRSA flow every emulator must pass: create, no-op, drift (labelled drift), fix, a
//! plan change (labelled so), prune, conflict and adopt.

use std::collections::BTreeSet;

use serde_json::json;
use wid_aws::EksCluster;
use wid_core::{APPLIED_KEY, ChangeKind, Provider, Reason};

use super::*;

/// The IRSA flow against any emulator: create, no-op, drift, fix, prune, adopt.
pub async fn irsa_flow(
    p: &dyn Provider,
    iam: &aws_sdk_iam::Client,
    clusters: &[EksCluster],
    account: &str,
) {
    let plan_name = "flow";
    let policy = managed_policy(iam, "wid-flow-read").await;
    let extra = managed_policy(iam, "wid-flow-extra").await;
    let workloads = scenario(&policy);
    let desired = compile_plan(&workloads, clusters, plan_name);
    let own = owner(plan_name, false);

    // 1. Everything is created.
    let (_, changes) = plan(p, &desired, &own).await;
    assert!(
        changes.iter().all(|c| c.kind == ChangeKind::Create),
        "{:?}",
        kinds(&changes)
    );
    assert_eq!(changes.len(), 3, "{:?}", kinds(&changes));
    let outputs = apply(p, &changes, &own).await;
    let orders = wid_aws::ids::role_id(account, "wid-orders");
    assert_eq!(
        outputs[&orders]["arn"],
        format!("arn:aws:iam::{account}:role/wid-orders")
    );

    // 2. A second plan is all no-ops.
    let (observed, changes) = plan(p, &desired, &own).await;
    assert!(
        all_noop(&changes),
        "{:#?}",
        changes
            .iter()
            .filter(|c| c.kind != ChangeKind::NoOp)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        observed.resources[&orders].ownership,
        wid_core::Ownership::Ours
    );
    // Every object carries the record of what was applied; it is no attribute.
    for r in &desired {
        assert_eq!(
            observed.resources[&r.id].applied.as_deref(),
            Some(wanted_record(&desired, &r.id).as_str()),
            "{}",
            r.id
        );
        assert!(
            !observed.resources[&r.id]
                .attrs
                .values()
                .any(|v| v.to_string().contains(APPLIED_KEY)),
            "{}: {:?}",
            r.id,
            observed.resources[&r.id].attrs
        );
    }
    assert_eq!(
        role_record(iam, "wid-orders").await,
        Some(wanted_record(&desired, &orders))
    );

    // 3. Drift behind wid's back.
    iam.attach_role_policy()
        .role_name("wid-orders")
        .policy_arn(&extra)
        .send()
        .await
        .expect("attach extra");
    let hijack = wid_aws::trust_policy_irsa(
        &format!(
            "arn:aws:iam::{account}:oidc-provider/{}",
            wid_aws::ids::issuer_host_path(clusters[0].issuer.as_deref().unwrap_or_default())
        ),
        wid_aws::ids::issuer_host_path(clusters[0].issuer.as_deref().unwrap_or_default()),
        &["system:serviceaccount:production:attacker".into()],
    );
    iam.update_assume_role_policy()
        .role_name("wid-orders")
        .policy_document(hijack.to_string())
        .send()
        .await
        .expect("edit trust");
    iam.untag_role()
        .role_name("wid-shared-reader")
        .tag_keys("team")
        .send()
        .await
        .expect("untag");

    // 4. The plan shows exactly those attributes.
    let (_, changes) = plan(p, &desired, &own).await;
    let drifted: Vec<(String, Vec<String>)> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| {
            (
                c.id.to_string(),
                c.attr_changes().map(|a| a.key.to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(
        drifted,
        [
            (
                orders.to_string(),
                vec!["managed_policies".to_owned(), "trust_policy".to_owned()]
            ),
            (
                wid_aws::ids::role_id(account, "wid-shared-reader").to_string(),
                vec!["tags".to_owned()]
            ),
        ]
    );
    // wid applied this same plan, so the differences are drift, not a plan change.
    assert!(
        reasons(&changes).iter().all(|(_, r)| *r == Reason::Drift),
        "{:?}",
        reasons(&changes)
    );
    let managed = changes
        .iter()
        .find(|c| c.id == orders)
        .expect("orders change")
        .owned_attr_changes()[0]
        .clone();
    assert_eq!(
        managed.before,
        Some(json!(
            [extra.clone(), policy.clone()]
                .into_iter()
                .collect::<BTreeSet<_>>()
        ))
    );
    assert_eq!(
        managed
            .after
            .and_then(|a| a.known().map(std::borrow::Cow::into_owned)),
        Some(json!([policy.clone()]))
    );
    let trust = changes
        .iter()
        .find(|c| c.id == orders)
        .expect("orders change")
        .owned_attr_changes()[1]
        .clone();
    assert!(
        trust
            .before
            .expect("live trust")
            .to_string()
            .contains("attacker")
    );
    let tags = &changes
        .iter()
        .find(|c| c.id.part(1) == "wid-shared-reader")
        .expect("shared change")
        .owned_attr_changes()[0];
    assert_eq!(tags.before, Some(json!({})));
    assert_eq!(
        tags.after
            .as_ref()
            .and_then(|a| a.known().map(std::borrow::Cow::into_owned)),
        Some(json!({"team": "platform"}))
    );

    // 5. Apply fixes it; then nothing is pending, and the record is unchanged.
    apply(p, &changes, &own).await;
    let (_, changes) = plan(p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        role_record(iam, "wid-orders").await,
        Some(wanted_record(&desired, &orders))
    );

    // 5b. The plan changes: a plan change, not drift; apply records the new plan.
    let mut changed = workloads.clone();
    changed[0].block.max_session_duration = Some(3600);
    changed[0].block.tags.insert("tier".into(), "gold".into());
    let desired_changed = compile_plan(&changed, clusters, plan_name);
    let (_, changes) = plan(p, &desired_changed, &own).await;
    assert_eq!(
        reasons(&changes),
        [(orders.to_string(), Reason::PlanChanged)]
    );
    apply(p, &changes, &own).await;
    let (observed, changes) = plan(p, &desired_changed, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    let new_record = wanted_record(&desired_changed, &orders);
    assert_ne!(new_record, wanted_record(&desired, &orders));
    assert_eq!(
        observed.resources[&orders].applied.as_deref(),
        Some(new_record.as_str())
    );
    // Drift on top of the new plan is drift again.
    iam.untag_role()
        .role_name("wid-orders")
        .tag_keys("tier")
        .send()
        .await
        .expect("untag tier");
    let (_, changes) = plan(p, &desired_changed, &own).await;
    assert_eq!(reasons(&changes), [(orders.to_string(), Reason::Drift)]);
    apply(p, &changes, &own).await;
    let (_, changes) = plan(p, &desired_changed, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));

    // 6. A workload leaves the plan: with prune its role is deleted, the others stay.
    let remaining: Vec<Wl> = workloads[1..].to_vec();
    let desired = compile_plan(&remaining, clusters, plan_name);
    let (_, changes) = plan(p, &desired, &owner(plan_name, false)).await;
    assert!(
        all_noop(&changes),
        "without prune nothing is deleted: {:?}",
        kinds(&changes)
    );
    let pruning = owner(plan_name, true);
    let (_, changes) = plan(p, &desired, &pruning).await;
    let deletes: Vec<String> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Delete)
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(deletes, [orders.to_string()], "{:?}", kinds(&changes));
    apply(p, &changes, &pruning).await;
    let gone = iam.get_role().role_name("wid-orders").send().await;
    assert!(gone.is_err(), "the pruned role is gone");
    let (_, changes) = plan(p, &desired, &pruning).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));

    // 7. An existing role wid did not create: a conflict, until the plan adopts it.
    iam.create_role()
        .role_name("legacy-app")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .tags(aws_sdk_iam::types::Tag::builder().key("owner").value("legacy").build().expect("tag"))
        .send()
        .await
        .expect("create legacy role");
    let mut legacy = remaining.clone();
    let mut b = block("legacy-app");
    b.tags.insert("owner".into(), "legacy".into());
    legacy.push(wl(0, "legacy", "app", b.clone()));
    let desired = compile_plan(&legacy, clusters, plan_name);
    let legacy_id = wid_aws::ids::role_id(account, "legacy-app");
    let (_, changes) = plan(p, &desired, &own).await;
    let c = changes
        .iter()
        .find(|c| c.id == legacy_id)
        .expect("legacy change");
    assert_eq!(c.kind, ChangeKind::Conflict, "{:?}", c.reason);
    let untouched: Vec<String> = iam
        .list_role_tags()
        .role_name("legacy-app")
        .send()
        .await
        .expect("tags")
        .tags()
        .iter()
        .map(|t| t.key().to_owned())
        .collect();
    assert_eq!(untouched, ["owner"]);
    b.adopt = true;
    legacy.last_mut().expect("legacy workload").block = b;
    let desired = compile_plan(&legacy, clusters, plan_name);
    let (_, changes) = plan(p, &desired, &own).await;
    let c = changes
        .iter()
        .find(|c| c.id == legacy_id)
        .expect("legacy change");
    assert_eq!(
        (c.kind, &c.reason),
        (ChangeKind::Update, &wid_core::Reason::Adopt)
    );
    apply(p, &changes, &own).await;
    let (observed, changes) = plan(p, &desired, &own).await;
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
    assert_eq!(
        observed.resources[&legacy_id].ownership,
        wid_core::Ownership::Ours
    );
    // Adopting recorded the plan too, in the same TagRole as the marks.
    assert_eq!(
        observed.resources[&legacy_id].applied,
        Some(wanted_record(&desired, &legacy_id))
    );
}
