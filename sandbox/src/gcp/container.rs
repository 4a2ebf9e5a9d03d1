//! GKE v1 `projects.locations.clusters.get` and `list` (`-` as the location lists every
//! location, as gcloud does when a cluster is not where it looked). Clusters carry what
//! wid's pre-flight reads — `workloadIdentityConfig.workloadPool` and each node pool's
//! `config.workloadMetadataConfig.mode` — among the usual fields.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

use super::error::{GcpError, GcpResult, admit};
use super::model::{GkeCluster, NodePool};
use super::request::Call;
use crate::Shared;

const CLUSTER_STATUSES: [&str; 7] = [
    "STATUS_UNSPECIFIED",
    "PROVISIONING",
    "RUNNING",
    "RECONCILING",
    "STOPPING",
    "ERROR",
    "DEGRADED",
];
const NODE_POOL_STATUSES: [&str; 7] = [
    "STATUS_UNSPECIFIED",
    "PROVISIONING",
    "RUNNING",
    "RUNNING_WITH_ERROR",
    "RECONCILING",
    "STOPPING",
    "ERROR",
];
const METADATA_MODES: [&str; 3] = ["MODE_UNSPECIFIED", "GCE_METADATA", "GKE_METADATA"];

/// The GKE endpoint (`/gcp/container/…`).
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::new(method, &uri, "/gcp/container", headers, body);
    match route(&shared, &call).await {
        Ok(json) => json.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn route(shared: &Shared, call: &Call) -> GcpResult {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match (&call.method, segments.as_slice()) {
        (&Method::GET, ["v1", "projects", project, "locations", location, "clusters"]) => {
            admit(shared, "container.clusters.list", call).await?;
            list(shared, call, project, location)
        }
        (
            &Method::GET,
            [
                "v1",
                "projects",
                project,
                "locations",
                location,
                "clusters",
                name,
            ],
        ) => {
            admit(shared, "container.clusters.get", call).await?;
            get(shared, call, project, location, name)
        }
        _ => Err(GcpError::not_found(format!(
            "The sandbox's GKE API has no method {} /{}.",
            call.method,
            call.segments.join("/")
        ))),
    }
}

/// An enum as its name, or its number when the client asked for numbers.
fn enum_value(names: &[&str], name: &str, ints: bool) -> Value {
    match names.iter().position(|n| *n == name) {
        Some(i) if ints => json!(i),
        _ => json!(name),
    }
}

/// A zone (`us-central1-a`) has one location; a region three zones.
fn zones(location: &str) -> Vec<String> {
    let zonal = location
        .rsplit_once('-')
        .is_some_and(|(_, z)| z.len() == 1 && z.chars().all(|c| c.is_ascii_lowercase()));
    if zonal {
        vec![location.to_owned()]
    } else {
        ["a", "b", "c"]
            .iter()
            .map(|z| format!("{location}-{z}"))
            .collect()
    }
}

fn node_pool(link: &str, cluster: &GkeCluster, pool: &NodePool, ints: bool) -> Value {
    json!({
        "name": pool.name,
        "config": {
            "machineType": "e2-medium",
            "diskSizeGb": 100,
            "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "metadata": { "disable-legacy-endpoints": "true" },
            "imageType": "COS_CONTAINERD",
            "serviceAccount": "default",
            "diskType": "pd-balanced",
            "workloadMetadataConfig": { "mode": enum_value(&METADATA_MODES, &pool.mode, ints) },
        },
        "initialNodeCount": 1,
        "locations": zones(&cluster.location),
        "selfLink": format!("{link}/nodePools/{}", pool.name),
        "version": cluster.version,
        "status": enum_value(&NODE_POOL_STATUSES, "RUNNING", ints),
        "management": { "autoUpgrade": true, "autoRepair": true },
        "podIpv4CidrSize": 24,
    })
}

/// The JSON of a cluster.
fn render(project: &str, cluster: &GkeCluster, ints: bool) -> Value {
    let link = super::issuer(project, &cluster.location, &cluster.name);
    let pools: Vec<Value> = cluster
        .node_pools
        .iter()
        .map(|p| node_pool(&link, cluster, p, ints))
        .collect();
    let mut out = json!({
        "name": cluster.name,
        "loggingService": "logging.googleapis.com/kubernetes",
        "monitoringService": "monitoring.googleapis.com/kubernetes",
        "network": "default",
        "clusterIpv4Cidr": "10.4.0.0/14",
        "nodePools": pools,
        "locations": zones(&cluster.location),
        "selfLink": link,
        "zone": cluster.location,
        "endpoint": cluster.endpoint,
        "initialClusterVersion": cluster.version,
        "currentMasterVersion": cluster.version,
        "currentNodeVersion": cluster.version,
        "createTime": cluster.create_time,
        "status": enum_value(&CLUSTER_STATUSES, &cluster.status, ints),
        "servicesIpv4Cidr": "34.118.224.0/20",
        "currentNodeCount": cluster.node_pools.len() * zones(&cluster.location).len(),
        "location": cluster.location,
        "id": cluster.id,
    });
    if let Some(pool) = &cluster.workload_pool {
        out["workloadIdentityConfig"] = json!({ "workloadPool": pool });
    }
    out
}

fn get(shared: &Shared, call: &Call, project: &str, location: &str, name: &str) -> GcpResult {
    let not_found = || {
        GcpError::not_found(format!(
            "Not found: projects/{project}/locations/{location}/clusters/{name}."
        ))
    };
    let id = super::resolve_project(shared, project).ok_or_else(not_found)?;
    shared.read(|state| {
        let cluster = state
            .gcp
            .projects
            .get(&id)
            .ok_or_else(not_found)?
            .clusters
            .get(location)
            .and_then(|c| c.get(name))
            .ok_or_else(not_found)?;
        Ok(Json(render(&id, cluster, call.int_enums())))
    })
}

fn list(shared: &Shared, call: &Call, project: &str, location: &str) -> GcpResult {
    let id = super::resolve_project(shared, project).ok_or_else(|| {
        GcpError::permission_denied(format!(
            "Permission 'container.clusters.list' denied on resource 'projects/{project}' (or it may not exist)."
        ))
    })?;
    shared.read(|state| {
        let clusters: Vec<Value> = state
            .gcp
            .projects
            .get(&id)
            .into_iter()
            .flat_map(|p| &p.clusters)
            .filter(|(l, _)| location == "-" || *l == location)
            .flat_map(|(_, by_name)| by_name.values())
            .map(|c| render(&id, c, call.int_enums()))
            .collect();
        Ok(Json(if clusters.is_empty() {
            json!({})
        } else {
            json!({ "clusters": clusters })
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_of_regions_and_zones() {
        assert_eq!(zones("us-central1-a"), ["us-central1-a"]);
        assert_eq!(
            zones("europe-west4"),
            ["europe-west4-a", "europe-west4-b", "europe-west4-c"]
        );
    }

    #[test]
    fn enums_as_names_or_numbers() {
        assert_eq!(enum_value(&METADATA_MODES, "GKE_METADATA", true), json!(2));
        assert_eq!(enum_value(&METADATA_MODES, "GCE_METADATA", true), json!(1));
        assert_eq!(
            enum_value(&METADATA_MODES, "GKE_METADATA", false),
            json!("GKE_METADATA")
        );
        assert_eq!(enum_value(&CLUSTER_STATUSES, "RUNNING", true), json!(2));
        assert_eq!(enum_value(&NODE_POOL_STATUSES, "RUNNING", true), json!(2));
    }
}
