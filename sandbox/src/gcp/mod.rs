//! The GCP API emulator, on the sandbox's cloud endpoint under one path prefix per
//! service (the request path a client appends to its endpoint follows the prefix):
//!
//! | prefix | API | served |
//! | --- | --- | --- |
//! | `/gcp/iam` | IAM v1 | service accounts (create, get, list, patch, update, delete) and their `getIamPolicy`/`setIamPolicy` |
//! | `/gcp/crm` | Cloud Resource Manager v1 and v3 | `projects.get`, `getIamPolicy`, `setIamPolicy` |
//! | `/gcp/container` | GKE v1 | `projects.locations.clusters.get` and `list` |
//!
//! So a client's endpoint is `{cloud_url}/gcp/iam` (the Rust clients' `with_endpoint`),
//! or `{cloud_url}/gcp/iam/` for gcloud's `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM`.
//!
//! - [`model`]: the persisted state; [`policy`] and [`members`]: IAM policy semantics
//!   and validation; [`iam`], [`crm`] and [`container`]: the operations;
//!   [`request`] and [`error`]: the request and error shapes every operation shares.
//! - Every request needs `Authorization: Bearer <anything>` (401 `UNAUTHENTICATED`
//!   otherwise), is counted as `gcp:iam.serviceAccounts.create`, `gcp:crm.projects.get`,
//!   `gcp:container.clusters.get`, … and takes injected faults by those names.
//! - Enums come back as names, or as numbers when the client asks for
//!   `$alt=json;enum-encoding=int` (as the google-cloud-rust clients do).
//!
//! # Projects
//!
//! A project exists when a GKE cluster declares it (with the plan's project number, if
//! given), or else from the first request that names it by a valid project id: the
//! sandbox's stand-in for "the organisation has that project". Its number is then a
//! stable 12-digit number derived from the id. A project named only by a number it does
//! not know does not exist (Resource Manager answers 403, as it does for projects the
//! caller cannot see).
//!
//! # State (`DIR/state.json`, key `gcp`)
//!
//! Users may edit it while no `wid sandbox serve` runs:
//!
//! ```json
//! "gcp": { "projects": { "acme-prod": {
//!   "number": "123456789012",
//!   "display_name": "acme-prod",
//!   "create_time": "2026-01-01T00:00:00Z",
//!   "policy": { "bindings": [ { "role": "roles/viewer", "members": ["user:a@example.com"],
//!                               "condition": { "title": "…", "expression": "…" } } ],
//!               "audit_configs": [ { "service": "allServices", "auditLogConfigs": [ … ] } ],
//!               "etag": "BwYAAAAAAAE=" },
//!   "service_accounts": { "orders": {
//!       "email": "orders@acme-prod.iam.gserviceaccount.com",
//!       "unique_id": "112233445566778899001", "display_name": "", "description": "",
//!       "disabled": false, "policy": { "bindings": [], "etag": "" } } },
//!   "clusters": { "us-central1": { "prod": {
//!       "name": "prod", "location": "us-central1",
//!       "workload_pool": "acme-prod.svc.id.goog",
//!       "node_pools": [ { "name": "default-pool", "mode": "GKE_METADATA" } ],
//!       "status": "RUNNING", "endpoint": "34.1.2.3", "version": "1.33.5-gke.1201000",
//!       "create_time": "…", "id": "…" } } } } } }
//! ```
//!
//! An empty `etag` is a policy never written (it reads as `ACAB`); a cluster without
//! `workload_pool` has Workload Identity disabled. [`set_workload_identity`] and
//! [`add_node_pool`] make those edits in-process.

mod container;
mod crm;
mod error;
mod iam;
mod members;
mod model;
mod policy;
mod request;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use sha2::{Digest, Sha256};

pub use model::{Binding, GcpState, GkeCluster, NodePool, Policy, Project, ServiceAccount};

use crate::{ClusterDecl, Shared, State};

/// The file `DIR/env` points gcloud's access token at.
pub const TOKEN_FILE: &str = "gcloud-token";
/// gcloud's scratch configuration directory in the sandbox directory.
pub const CONFIG_DIR: &str = "gcloud";
/// The Kubernetes version new clusters report.
const CLUSTER_VERSION: &str = "1.33.5-gke.1201000";

/// The GCP routes without a fallback (the cloud router merges them with the AWS ones).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/gcp/iam/{*path}", any(iam::handle))
        .route("/gcp/crm/{*path}", any(crm::handle))
        .route("/gcp/container/{*path}", any(container::handle))
}

/// Whether `id` is a valid project id: 6–30 characters, lower-case letters, digits and
/// hyphens, starting with a letter and not ending with a hyphen.
pub fn is_project_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (6..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// The stable 12-digit number of a project no declaration numbers.
pub fn derived_project_number(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let mut n = 0u64;
    for byte in &digest[..8] {
        n = (n << 8) | u64::from(*byte);
    }
    (100_000_000_000 + n % 900_000_000_000).to_string()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The project `id`, created if missing with `number` (else a derived one, moved on
/// if another project already has it).
fn ensure_project<'a>(state: &'a mut State, id: &str, number: Option<&str>) -> &'a mut Project {
    if !state.gcp.projects.contains_key(id) {
        let mut n = number.map_or_else(|| derived_project_number(id), str::to_owned);
        while number.is_none() && state.gcp.project_id_by_number(&n).is_some() {
            n = (n.parse::<u64>().unwrap_or(100_000_000_000) + 1).to_string();
        }
        state.gcp.projects.insert(
            id.to_owned(),
            Project {
                number: n,
                display_name: id.to_owned(),
                create_time: now(),
                ..Project::default()
            },
        );
    }
    let project = state
        .gcp
        .projects
        .get_mut(id)
        .expect("the project was just ensured");
    if let Some(number) = number {
        // The plan's number is the sandbox's truth for a declared project.
        if project.number != number {
            number.clone_into(&mut project.number);
        }
    }
    project
}

/// The project a path segment names (id or number): an existing one, or one created
/// now for a valid project id. `None` for a number no project has, or an invalid id.
pub(crate) fn resolve_project(shared: &Shared, segment: &str) -> Option<String> {
    let known = shared.read(|state| {
        if state.gcp.projects.contains_key(segment) {
            Some(segment.to_owned())
        } else {
            state.gcp.project_id_by_number(segment).map(str::to_owned)
        }
    });
    if known.is_some() {
        return known;
    }
    if !is_project_id(segment) {
        return None;
    }
    shared.write(|state| {
        ensure_project(state, segment, None);
    });
    Some(segment.to_owned())
}

/// The issuer of a GKE cluster's ServiceAccount tokens.
pub fn issuer(project: &str, location: &str, cluster: &str) -> String {
    format!(
        "https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{cluster}"
    )
}

/// Creates the GCP side of a GKE cluster declaration if the state does not have it yet:
/// the project (numbered as declared, else derived) and the cluster, with Workload
/// Identity on `PROJECT.svc.id.goog` and one node pool `default-pool` in
/// `GKE_METADATA` mode. An existing cluster is left as it is.
pub fn ensure_cluster(state: &mut State, decl: &ClusterDecl) {
    let Some(gke) = &decl.gke else {
        return;
    };
    let project = ensure_project(state, &gke.project, gke.project_number.as_deref());
    let clusters = project.clusters.entry(gke.location.clone()).or_default();
    if clusters.contains_key(&gke.name) {
        return;
    }
    let digest = Sha256::digest(format!("{}/{}/{}", gke.project, gke.location, gke.name));
    let mut id = String::with_capacity(64);
    for byte in digest.iter() {
        let _ = write!(id, "{byte:02x}");
    }
    clusters.insert(
        gke.name.clone(),
        GkeCluster {
            name: gke.name.clone(),
            location: gke.location.clone(),
            workload_pool: Some(format!("{}.svc.id.goog", gke.project)),
            node_pools: vec![NodePool {
                name: "default-pool".to_owned(),
                mode: "GKE_METADATA".to_owned(),
            }],
            status: "RUNNING".to_owned(),
            endpoint: format!("34.{}.{}.{}", digest[0], digest[1], digest[2].max(1)),
            version: CLUSTER_VERSION.to_owned(),
            create_time: now(),
            id,
        },
    );
}

fn cluster_mut<'a>(
    state: &'a mut State,
    project: &str,
    location: &str,
    cluster: &str,
) -> Option<&'a mut GkeCluster> {
    state
        .gcp
        .projects
        .get_mut(project)?
        .clusters
        .get_mut(location)?
        .get_mut(cluster)
}

/// Turns Workload Identity on (`workloadPool = PROJECT.svc.id.goog`) or off (no
/// `workloadIdentityConfig`) for a cluster. Returns whether the cluster exists.
#[must_use]
pub fn set_workload_identity(
    state: &mut State,
    project: &str,
    location: &str,
    cluster: &str,
    enabled: bool,
) -> bool {
    let Some(c) = cluster_mut(state, project, location, cluster) else {
        return false;
    };
    c.workload_pool = enabled.then(|| format!("{project}.svc.id.goog"));
    true
}

/// Adds a node pool whose `workloadMetadataConfig.mode` is `mode` (`GKE_METADATA`,
/// `GCE_METADATA`), or sets the mode of the pool of that name. Returns whether the
/// cluster exists.
#[must_use]
pub fn add_node_pool(
    state: &mut State,
    project: &str,
    location: &str,
    cluster: &str,
    pool: &str,
    mode: &str,
) -> bool {
    let Some(c) = cluster_mut(state, project, location, cluster) else {
        return false;
    };
    match c.node_pools.iter_mut().find(|p| p.name == pool) {
        Some(existing) => mode.clone_into(&mut existing.mode),
        None => c.node_pools.push(NodePool {
            name: pool.to_owned(),
            mode: mode.to_owned(),
        }),
    }
    true
}

/// The project of the first GKE cluster in the state (by project id), for gcloud's
/// default project.
pub fn default_project(state: &State) -> Option<String> {
    state
        .gcp
        .projects
        .iter()
        .find(|(_, p)| p.clusters.values().any(|c| !c.is_empty()))
        .map(|(id, _)| id.clone())
}

/// A value for a shell `export` line, single-quoted when it needs to be.
fn shell_word(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:=@+,".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The `export` lines that point gcloud at the sandbox (and keep it from reaching
/// Google for anything else): endpoint overrides with the prefixed URLs, a token file,
/// a scratch configuration directory, the default project, and no prompts, usage
/// reporting, update checks or metadata-server probes.
pub fn env_lines(cloud_url: &str, dir: &Path, default_project: Option<&str>) -> String {
    let mut lines = String::new();
    for (api, prefix) in [
        ("IAM", "iam"),
        ("CLOUDRESOURCEMANAGER", "crm"),
        ("CONTAINER", "container"),
    ] {
        let _ = writeln!(
            lines,
            "export CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}={}",
            shell_word(&format!("{cloud_url}/gcp/{prefix}/"))
        );
    }
    let token = dir.join(TOKEN_FILE);
    let config = dir.join(CONFIG_DIR);
    let _ = writeln!(
        lines,
        "export CLOUDSDK_AUTH_ACCESS_TOKEN_FILE={}",
        shell_word(&token.display().to_string())
    );
    let _ = writeln!(
        lines,
        "export CLOUDSDK_CONFIG={}",
        shell_word(&config.display().to_string())
    );
    if let Some(project) = default_project {
        let _ = writeln!(
            lines,
            "export CLOUDSDK_CORE_PROJECT={}",
            shell_word(project)
        );
    }
    for setting in [
        "CLOUDSDK_CORE_DISABLE_PROMPTS=1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
        "CLOUDSDK_SURVEY_DISABLE_PROMPTS=true",
    ] {
        let _ = writeln!(lines, "export {setting}");
    }
    lines
}

/// Writes what `DIR/env` points gcloud at: the access token file and the (empty)
/// configuration directory.
pub fn write_client_files(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(TOKEN_FILE), "sandbox-gcloud-token\n")?;
    std::fs::create_dir_all(dir.join(CONFIG_DIR))
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
