use super::*;
use crate::block::{RoleGrant, RoleOn};
use serde_json::json;
use wid_core::AttrValue;

fn cluster() -> GkeCluster {
    GkeCluster {
        plan_name: "gke-prod".into(),
        project: "acme-prod".into(),
        project_number: Some("123456789012".into()),
        location: "us-central1".into(),
        name: "prod".into(),
    }
}

fn block(sa: Option<&str>, roles: Vec<RoleGrant>) -> GcpBlock {
    GcpBlock {
        service_account: sa.map(str::to_owned),
        create: None,
        display_name: None,
        description: None,
        direct: sa.is_none(),
        roles,
        adopt: false,
    }
}

fn item<'a>(b: &'a GcpBlock, c: &'a GkeCluster, ns: &str, ksa: &str) -> GcpWorkload<'a> {
    GcpWorkload {
        block: b,
        cluster: c,
        workload: WorkloadRef {
            cluster: c.plan_name.clone(),
            namespace: ns.into(),
            service_account: ksa.into(),
        },
        origin: format!("{}/{ns}/{ksa} (plan.toml:1:1)", c.plan_name).into(),
    }
}

fn role(r: &str) -> RoleGrant {
    RoleGrant::OnClusterProject(r.into())
}

fn find<'a>(c: &'a Compiled, id: &str) -> &'a Resource {
    c.resources
        .iter()
        .find(|r| r.id.to_string() == id)
        .unwrap_or_else(|| {
            panic!(
                "no {id} in {:?}",
                c.resources
                    .iter()
                    .map(|r| r.id.to_string())
                    .collect::<Vec<_>>()
            )
        })
}

fn known(r: &Resource) -> BTreeMap<String, Value> {
    r.attrs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.known()
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[test]
fn impersonation_compiles_to_the_documented_strings() {
    let c = cluster();
    let b = block(Some("orders-app"), vec![role("roles/pubsub.subscriber")]);
    let out = compile(&[item(&b, &c, "production", "orders")], "payments").unwrap();
    let sa = find(&out, "gcp/service-account/acme-prod/orders-app");
    assert_eq!(sa.adopt_key.as_deref(), Some("gcp.adopt"));
    let own = find(
        &out,
        "gcp/iam-policy/projects/acme-prod/serviceAccounts/orders-app@acme-prod.iam.gserviceaccount.com",
    );
    assert_eq!(
        known(own),
        BTreeMap::from([(
            "roles/iam.workloadIdentityUser serviceAccount:acme-prod.svc.id.goog[production/orders]".to_owned(),
            json!("projects/acme-prod/serviceAccounts/orders-app@acme-prod.iam.gserviceaccount.com")
        )])
    );
    assert_eq!(own.depends_on, vec![sa.id.clone()]);
    let project = find(&out, "gcp/iam-policy/projects/acme-prod");
    assert_eq!(
        known(project),
        BTreeMap::from([(
            "roles/pubsub.subscriber serviceAccount:orders-app@acme-prod.iam.gserviceaccount.com"
                .to_owned(),
            json!("projects/acme-prod")
        )])
    );
    let k = &out.contributions[0];
    assert_eq!(
        k.ksa_annotations.get("iam.gke.io/gcp-service-account"),
        Some(&AttrValue::Known(json!(
            "orders-app@acme-prod.iam.gserviceaccount.com"
        )))
    );
    assert_eq!(k.ksa_depends_on, vec![sa.id.clone(), own.id.clone()]);
}

#[test]
fn direct_mode_grants_to_the_principal_with_no_account_and_no_annotation() {
    let c = cluster();
    let b = block(None, vec![role("roles/storage.objectViewer")]);
    let out = compile(&[item(&b, &c, "analytics", "reports")], "payments").unwrap();
    assert_eq!(out.resources.len(), 1);
    assert_eq!(
        known(&out.resources[0]),
        BTreeMap::from([(
            "roles/storage.objectViewer principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/analytics/sa/reports".to_owned(),
            json!("projects/acme-prod")
        )])
    );
    assert!(out.contributions[0].ksa_annotations.is_empty());
}

#[test]
fn an_account_in_another_project_is_bound_for_the_clusters_pool() {
    let c = cluster();
    let mut b = block(
        Some("batch-jobs@acme-shared.iam.gserviceaccount.com"),
        vec![RoleGrant::On(RoleOn {
            role: "roles/bigquery.dataViewer".into(),
            project: Some("acme-data".into()),
            service_account: None,
        })],
    );
    b.create = Some(false);
    let out = compile(&[item(&b, &c, "jobs", "batch")], "payments").unwrap();
    let ids: Vec<String> = out.resources.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "gcp/iam-policy/projects/acme-data",
            "gcp/iam-policy/projects/acme-shared/serviceAccounts/batch-jobs@acme-shared.iam.gserviceaccount.com"
        ]
    );
    assert!(out.resources[1].attrs.contains_key(
        "roles/iam.workloadIdentityUser serviceAccount:acme-prod.svc.id.goog[jobs/batch]"
    ));
    assert!(
        out.resources[1].depends_on.is_empty(),
        "wid does not create it"
    );
}

#[test]
fn a_shared_account_gets_one_resource_and_one_binding_per_ksa() {
    let c = cluster();
    let b = block(Some("workers"), vec![role("roles/pubsub.subscriber")]);
    let out = compile(
        &[item(&b, &c, "jobs", "a"), item(&b, &c, "jobs", "b")],
        "payments",
    )
    .unwrap();
    let own = find(
        &out,
        "gcp/iam-policy/projects/acme-prod/serviceAccounts/workers@acme-prod.iam.gserviceaccount.com",
    );
    assert_eq!(own.attrs.len(), 2);
    assert_eq!(own.origin, None, "serves two workloads");
    assert_eq!(
        find(&out, "gcp/iam-policy/projects/acme-prod").attrs.len(),
        1
    );
    let mut other = b.clone();
    other.roles.push(role("roles/logging.logWriter"));
    other.display_name = Some("x".into());
    let err = compile(
        &[item(&b, &c, "jobs", "a"), item(&other, &c, "jobs", "b")],
        "payments",
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].0, 1);
    assert!(
        err[0].1.message.contains("display_name, roles"),
        "{}",
        err[0].1.message
    );
}

#[test]
fn a_role_on_an_account_the_plan_creates_waits_for_it() {
    let c = cluster();
    let caller = block(
        Some("caller-app"),
        vec![RoleGrant::On(RoleOn {
            role: "roles/iam.serviceAccountTokenCreator".into(),
            project: None,
            service_account: Some("signer-app".into()),
        })],
    );
    let signer = block(Some("signer-app"), vec![]);
    let out = compile(
        &[
            item(&caller, &c, "a", "caller"),
            item(&signer, &c, "a", "signer"),
        ],
        "p",
    )
    .unwrap();
    let policy = find(
        &out,
        "gcp/iam-policy/projects/acme-prod/serviceAccounts/signer-app@acme-prod.iam.gserviceaccount.com",
    );
    let deps: Vec<String> = policy.depends_on.iter().map(ToString::to_string).collect();
    assert_eq!(
        deps,
        [
            "gcp/service-account/acme-prod/caller-app",
            "gcp/service-account/acme-prod/signer-app"
        ]
    );
}

#[test]
fn the_principal_limit_counts_the_whole_plan() {
    let c = cluster();
    let b = block(None, vec![role("roles/viewer")]);
    let names: Vec<String> = (0..=PRINCIPALS_PER_POLICY)
        .map(|i| format!("ksa-{i}"))
        .collect();
    let items: Vec<GcpWorkload> = names.iter().map(|n| item(&b, &c, "ns", n)).collect();
    let err = compile(&items, "p").unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].0, PRINCIPALS_PER_POLICY);
    assert!(
        err[0].1.message.contains("1501 principals"),
        "{}",
        err[0].1.message
    );
    assert!(compile(&items[..PRINCIPALS_PER_POLICY], "p").is_ok());
}

#[test]
fn a_description_must_leave_room_for_the_mark() {
    let c = cluster();
    let mut b = block(Some("orders-app"), vec![]);
    b.description = Some("d".repeat(250));
    let err = compile(&[item(&b, &c, "a", "b")], "payments").unwrap_err();
    assert_eq!(err[0].1.path, ["description"]);
}
