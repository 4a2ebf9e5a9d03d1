//! What `wid import` starts from on the Kubernetes side: every ServiceAccount of a cluster
//! (or of some namespaces) with the metadata import reads, and which kubeconfig context
//! and API server a connection uses (a context's name and server host say what kind of
//! cluster it is: `gke_PROJECT_LOCATION_NAME`, `arn:aws:eks:…`, `….azmk8s.io`).

use std::collections::BTreeMap;
use std::path::Path;

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use wid_core::{ErrorKind, MANAGED_BY_KEY, MANAGED_BY_VALUE, PLAN_KEY, ProviderError};

use crate::errors::{Call, map_error};
use crate::kinds::{AUTOMOUNT, Kind};
use crate::provider::KubernetesProvider;

/// Page size of the LIST: large clusters are read in pages.
const PAGE_SIZE: u32 = 500;

/// One live ServiceAccount as import sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKsa {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Every annotation.
    pub annotations: BTreeMap<String, String>,
    /// `automountServiceAccountToken` as set; `None` when unset (the API mounts then).
    pub automount: Option<bool>,
    /// The plan whose mark it carries (`app.kubernetes.io/managed-by: wid` with
    /// `wid.dev/plan`); `None` when it carries no complete wid mark.
    pub marked_by: Option<String>,
}

impl LiveKsa {
    fn from_object(object: &Value) -> Self {
        let meta = &object["metadata"];
        let strings = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let labels = strings(&meta["labels"]);
        let marked_by = (labels.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE))
            .then(|| labels.get(PLAN_KEY).cloned())
            .flatten();
        Self {
            namespace: meta["namespace"].as_str().unwrap_or_default().to_owned(),
            name: meta["name"].as_str().unwrap_or_default().to_owned(),
            annotations: strings(&meta["annotations"]),
            automount: object[AUTOMOUNT].as_bool(),
            marked_by,
        }
    }
}

impl KubernetesProvider {
    /// Every ServiceAccount of `cluster`, or of the given namespaces only, sorted by
    /// namespace and name: one paged LIST across namespaces, or one per namespace.
    pub async fn service_accounts(
        &self,
        cluster: &str,
        namespaces: &[String],
    ) -> Result<Vec<LiveKsa>, ProviderError> {
        let client = self.client_for(cluster)?.clone();
        let ar = Kind::ServiceAccount.api_resource();
        let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().map(|n| Some(n.as_str())).collect()
        };
        let mut out = Vec::new();
        for namespace in scopes {
            let api: Api<DynamicObject> = match namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            let call = Call {
                verb: "list",
                action: "list",
                resource: Kind::ServiceAccount.plural(),
                cluster,
                namespace,
                object: None,
                id: None,
            };
            let mut params = ListParams::default().limit(PAGE_SIZE);
            loop {
                self.counter.count(&call.operation());
                let page = api.list(&params).await.map_err(|e| map_error(e, &call))?;
                for item in &page.items {
                    let value = serde_json::to_value(item).map_err(|e| {
                        ProviderError::new(
                            ErrorKind::Invalid,
                            format!("failed to read serviceaccounts in cluster {cluster}"),
                        )
                        .with_detail(e.to_string())
                    })?;
                    out.push(LiveKsa::from_object(&value));
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
        }
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        Ok(out)
    }
}

/// A kubeconfig context as import reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInfo {
    /// The context's name (the current context's when none was asked for).
    pub name: String,
    /// The API server URL of its cluster.
    pub server: String,
}

/// The context `context` (default: the current one) of the kubeconfig at `path` (default:
/// `$KUBECONFIG` or `~/.kube/config`); `None` when it cannot be read. Reads the file only.
pub fn context_info(path: Option<&Path>, context: Option<&str>) -> Option<ContextInfo> {
    let config = match path {
        Some(p) => kube::config::Kubeconfig::read_from(p).ok()?,
        None => kube::config::Kubeconfig::read().ok()?,
    };
    let name = context
        .map(str::to_owned)
        .or_else(|| config.current_context.clone())?;
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == name)?
        .context
        .as_ref()?;
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    Some(ContextInfo { name, server })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_live_ksa_keeps_its_annotations_automount_and_mark() {
        let ksa = LiveKsa::from_object(&json!({
            "metadata": {
                "namespace": "shop", "name": "orders",
                "labels": {"app.kubernetes.io/managed-by": "wid", "wid.dev/plan": "p"},
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"},
            },
            "automountServiceAccountToken": false,
        }));
        assert_eq!(ksa.marked_by.as_deref(), Some("p"));
        assert_eq!(ksa.automount, Some(false));
        assert_eq!(ksa.annotations.len(), 1);
        let bare = LiveKsa::from_object(&json!({
            "metadata": {"namespace": "shop", "name": "x", "labels": {"wid.dev/plan": "p"}},
        }));
        assert_eq!((bare.marked_by, bare.automount), (None, None));
    }

    #[test]
    fn the_current_context_and_its_server_are_read_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c1\n  cluster:\n    server: https://ABC.gr7.us-east-1.eks.amazonaws.com\ncontexts:\n- name: arn:aws:eks:us-east-1:111122223333:cluster/prod\n  context:\n    cluster: c1\n    user: u\ncurrent-context: arn:aws:eks:us-east-1:111122223333:cluster/prod\nusers:\n- name: u\n  user: {}\n",
        )
        .expect("write");
        let info = context_info(Some(&path), None).expect("read");
        assert_eq!(info.name, "arn:aws:eks:us-east-1:111122223333:cluster/prod");
        assert_eq!(info.server, "https://ABC.gr7.us-east-1.eks.amazonaws.com");
        assert_eq!(context_info(Some(&path), Some("nope")), None);
    }
}
