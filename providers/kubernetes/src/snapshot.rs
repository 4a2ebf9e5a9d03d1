//! The live read for `wid audit`: every object kind the audit checks, listed across all
//! namespaces with one paginated LIST per kind. The result has the same field names as
//! `wid_audit::Snapshot`, so the CLI moves the vectors across. Secret data stays in
//! memory only; nothing here logs object contents.

use std::fmt::Debug;

use futures::try_join;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Page size of each LIST; large clusters are read in pages instead of one huge response.
const PAGE_SIZE: u32 = 500;

/// Every object kind `wid audit` reads, cluster-wide.
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// ServiceAccounts.
    pub service_accounts: Vec<ServiceAccount>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// StatefulSets.
    pub stateful_sets: Vec<StatefulSet>,
    /// DaemonSets.
    pub daemon_sets: Vec<DaemonSet>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// CronJobs.
    pub cron_jobs: Vec<CronJob>,
    /// Roles.
    pub roles: Vec<Role>,
    /// RoleBindings.
    pub role_bindings: Vec<RoleBinding>,
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Secrets (data in memory only; the audit reports key names, never values).
    pub secrets: Vec<Secret>,
    /// ConfigMaps.
    pub config_maps: Vec<ConfigMap>,
}

/// Lists every object of kind `K` in all namespaces, following continue tokens.
async fn list_all<K>(client: &Client) -> Result<Vec<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Reads every kind the audit needs; the LISTs run concurrently.
pub async fn list_objects(client: &Client) -> Result<ClusterObjects, kube::Error> {
    let (namespaces, service_accounts, pods, deployments, replica_sets) = try_join!(
        list_all::<Namespace>(client),
        list_all::<ServiceAccount>(client),
        list_all::<Pod>(client),
        list_all::<Deployment>(client),
        list_all::<ReplicaSet>(client),
    )?;
    let (stateful_sets, daemon_sets, jobs, cron_jobs, roles) = try_join!(
        list_all::<StatefulSet>(client),
        list_all::<DaemonSet>(client),
        list_all::<Job>(client),
        list_all::<CronJob>(client),
        list_all::<Role>(client),
    )?;
    let (role_bindings, cluster_roles, cluster_role_bindings, secrets, config_maps) = try_join!(
        list_all::<RoleBinding>(client),
        list_all::<ClusterRole>(client),
        list_all::<ClusterRoleBinding>(client),
        list_all::<Secret>(client),
        list_all::<ConfigMap>(client),
    )?;
    Ok(ClusterObjects {
        namespaces,
        service_accounts,
        pods,
        deployments,
        replica_sets,
        stateful_sets,
        daemon_sets,
        jobs,
        cron_jobs,
        roles,
        role_bindings,
        cluster_roles,
        cluster_role_bindings,
        secrets,
        config_maps,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback server that answers every LIST: ServiceAccounts in two pages (to
    /// exercise the continue token), every other kind empty. It records request paths.
    async fn serve(listener: TcpListener, seen: Arc<Mutex<Vec<String>>>) {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let target = req.split_whitespace().nth(1).unwrap_or("").to_owned();
                seen.lock().expect("lock").push(target.clone());
                let body = if target.starts_with("/api/v1/serviceaccounts") {
                    if target.contains("continue=page2") {
                        r#"{"apiVersion":"v1","kind":"ServiceAccountList","metadata":{},"items":[{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"b","namespace":"y"}}]}"#
                    } else {
                        r#"{"apiVersion":"v1","kind":"ServiceAccountList","metadata":{"continue":"page2"},"items":[{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"a","namespace":"x"}}]}"#
                    }
                } else {
                    r#"{"apiVersion":"v1","kind":"List","metadata":{},"items":[]}"#
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    }

    #[tokio::test]
    async fn lists_every_kind_cluster_wide_and_follows_continue_tokens() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(serve(listener, seen.clone()));
        let uri: http::Uri = format!("http://127.0.0.1:{port}").parse().expect("uri");
        let mut cfg = kube::Config::new(uri);
        cfg.default_retry = false;
        let client = Client::try_from(cfg).expect("client");
        let objs = list_objects(&client).await.expect("list");
        let names: Vec<_> = objs
            .service_accounts
            .iter()
            .map(|s| s.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        let paths: BTreeSet<String> = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|t| t.split('?').next().unwrap_or("").to_owned())
            .collect();
        let want: BTreeSet<String> = [
            "/api/v1/namespaces",
            "/api/v1/serviceaccounts",
            "/api/v1/pods",
            "/api/v1/secrets",
            "/api/v1/configmaps",
            "/apis/apps/v1/deployments",
            "/apis/apps/v1/replicasets",
            "/apis/apps/v1/statefulsets",
            "/apis/apps/v1/daemonsets",
            "/apis/batch/v1/jobs",
            "/apis/batch/v1/cronjobs",
            "/apis/rbac.authorization.k8s.io/v1/roles",
            "/apis/rbac.authorization.k8s.io/v1/rolebindings",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(paths, want);
        // 15 kinds, plus one extra page for ServiceAccounts.
        assert_eq!(seen.lock().expect("lock").len(), 16);
    }
}
