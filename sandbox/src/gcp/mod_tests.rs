//! Unit tests of the GCP state helpers and the gcloud environment.

use super::*;
use crate::{ClusterKind, GkeDecl};

fn decl(project: &str, number: Option<&str>) -> ClusterDecl {
    ClusterDecl {
        name: format!("gke-{project}"),
        kind: ClusterKind::Gke,
        eks: None,
        gke: Some(GkeDecl {
            project: project.to_owned(),
            project_number: number.map(str::to_owned),
            location: "us-central1".to_owned(),
            name: "prod".to_owned(),
        }),
        aks: None,
    }
}

#[test]
fn clusters_come_with_their_project_and_workload_identity() {
    let mut state = State::default();
    ensure_cluster(&mut state, &decl("acme-prod", Some("123456789012")));
    let project = &state.gcp.projects["acme-prod"];
    assert_eq!(project.number, "123456789012");
    let cluster = &project.clusters["us-central1"]["prod"];
    assert_eq!(
        cluster.workload_pool.as_deref(),
        Some("acme-prod.svc.id.goog")
    );
    assert_eq!(
        cluster.node_pools,
        [NodePool {
            name: "default-pool".into(),
            mode: "GKE_METADATA".into()
        }]
    );
    assert!(state.gcp.pool_exists("acme-prod.svc.id.goog"));
    assert!(!state.gcp.pool_exists("other.svc.id.goog"));

    // A second start leaves the cluster as it was edited.
    assert!(set_workload_identity(
        &mut state,
        "acme-prod",
        "us-central1",
        "prod",
        false
    ));
    ensure_cluster(&mut state, &decl("acme-prod", Some("123456789012")));
    assert_eq!(
        state.gcp.projects["acme-prod"].clusters["us-central1"]["prod"].workload_pool,
        None
    );
    assert!(!state.gcp.pool_exists("acme-prod.svc.id.goog"));
    assert!(!set_workload_identity(
        &mut state,
        "acme-prod",
        "us-east1",
        "prod",
        true
    ));
}

#[test]
fn undeclared_numbers_are_derived_and_stable() {
    let mut state = State::default();
    ensure_cluster(&mut state, &decl("acme-dev", None));
    let number = &state.gcp.projects["acme-dev"].number;
    assert_eq!(number, &derived_project_number("acme-dev"));
    assert_eq!(number.len(), 12);
    assert_ne!(
        derived_project_number("acme-dev"),
        derived_project_number("acme-dew")
    );
}

#[test]
fn node_pools_are_added_or_changed() {
    let mut state = State::default();
    ensure_cluster(&mut state, &decl("acme-prod", None));
    assert!(add_node_pool(
        &mut state,
        "acme-prod",
        "us-central1",
        "prod",
        "legacy",
        "GCE_METADATA"
    ));
    assert!(add_node_pool(
        &mut state,
        "acme-prod",
        "us-central1",
        "prod",
        "default-pool",
        "GCE_METADATA"
    ));
    let pools = &state.gcp.projects["acme-prod"].clusters["us-central1"]["prod"].node_pools;
    let modes: Vec<(&str, &str)> = pools
        .iter()
        .map(|p| (p.name.as_str(), p.mode.as_str()))
        .collect();
    assert_eq!(
        modes,
        [("default-pool", "GCE_METADATA"), ("legacy", "GCE_METADATA")]
    );
    assert!(!add_node_pool(
        &mut state,
        "nope-project",
        "us-central1",
        "prod",
        "x",
        "GKE_METADATA"
    ));
}

#[test]
fn project_ids() {
    for ok in ["acme-prod", "abcdef", "a12345", &"a".repeat(30)] {
        assert!(is_project_id(ok), "{ok}");
    }
    for bad in [
        "acme",
        "1acme-prod",
        "acme-prod-",
        "Acme-prod",
        "acme_prod",
        &"a".repeat(31),
        "-",
        "123456789012",
    ] {
        assert!(!is_project_id(bad), "{bad}");
    }
}

#[test]
fn gcloud_environment() {
    let env = env_lines(
        "http://127.0.0.1:4000",
        Path::new("/tmp/sb"),
        Some("acme-prod"),
    );
    assert_eq!(
        env,
        "export CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM=http://127.0.0.1:4000/gcp/iam/\n\
         export CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER=http://127.0.0.1:4000/gcp/crm/\n\
         export CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER=http://127.0.0.1:4000/gcp/container/\n\
         export CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=/tmp/sb/gcloud-token\n\
         export CLOUDSDK_CONFIG=/tmp/sb/gcloud\n\
         export CLOUDSDK_CORE_PROJECT=acme-prod\n\
         export CLOUDSDK_CORE_DISABLE_PROMPTS=1\n\
         export CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true\n\
         export CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true\n\
         export CLOUDSDK_CORE_CHECK_GCE_METADATA=false\n\
         export CLOUDSDK_SURVEY_DISABLE_PROMPTS=true\n"
    );
    let spaced = env_lines("http://127.0.0.1:4000", Path::new("/tmp/my sb"), None);
    assert!(
        spaced.contains("export CLOUDSDK_CONFIG='/tmp/my sb/gcloud'\n"),
        "{spaced}"
    );
    assert!(!spaced.contains("CLOUDSDK_CORE_PROJECT"));
}
