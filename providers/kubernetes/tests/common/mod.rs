//! Shared setup for the sandbox tests: one generic cluster `dev`, a provider pointed at
//! it, a plain kube client for arranging state behind wid's back, and a small apply loop
//! that honours dependencies the way the engine does.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wid_core::{
    AttrValue, CallCounter, Change, ChangeKind, Owner, Provider, Resource, ResourceId, WorkloadRef,
    diff,
};
use wid_kubernetes::{ClusterConn, ClusterOptions, KsaSpec, KubernetesProvider, PolicyRule};
use wid_sandbox::{ClusterDecl, ClusterKind, Sandbox};

pub const CLUSTER: &str = "dev";

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub sandbox: Sandbox,
    pub provider: KubernetesProvider,
    pub counter: CallCounter,
    /// A client that is not wid, for changes behind wid's back.
    pub kube: kube::Client,
}

pub async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::start(
        dir.path(),
        &[ClusterDecl {
            name: CLUSTER.into(),
            kind: ClusterKind::Generic,
            eks: None,
            gke: None,
            aks: None,
        }],
    )
    .await
    .expect("sandbox starts");
    let url = sandbox.kube_url(CLUSTER).expect("cluster is served");
    let counter = CallCounter::default();
    let provider = KubernetesProvider::connect(
        BTreeMap::from([(CLUSTER.to_owned(), ClusterConn::Url(url.clone()))]),
        counter.clone(),
    )
    .await
    .expect("connect");
    let mut config = kube::Config::new(url.parse().expect("url"));
    config.default_retry = false;
    let kube = kube::Client::try_from(config).expect("client");
    Env {
        _dir: dir,
        sandbox,
        provider,
        counter,
        kube,
    }
}

impl Env {
    /// Another provider for the same cluster, with its own limits and call counter.
    pub async fn provider_with(
        &self,
        limits: &wid_core::Limits,
    ) -> (KubernetesProvider, CallCounter) {
        let url = self.sandbox.kube_url(CLUSTER).expect("cluster is served");
        let counter = CallCounter::default();
        let provider = KubernetesProvider::connect_with(
            BTreeMap::from([(CLUSTER.to_owned(), ClusterConn::Url(url))]),
            counter.clone(),
            limits,
        )
        .await
        .expect("connect");
        (provider, counter)
    }

    pub async fn create_namespace(&self, name: &str) {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.kube.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
    }

    pub async fn create_sa(&self, ns: &str, name: &str, labels: Value) {
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        Api::<ServiceAccount>::namespaced(self.kube.clone(), ns)
            .create(&PostParams::default(), &sa)
            .await
            .expect("service account created");
    }

    pub async fn get_sa(&self, ns: &str, name: &str) -> Option<Value> {
        Api::<ServiceAccount>::namespaced(self.kube.clone(), ns)
            .get_opt(name)
            .await
            .expect("get")
            .map(|sa| serde_json::to_value(sa).unwrap())
    }

    /// The live object of a wid resource id (namespace, SA, `default` SA, Role or
    /// RoleBinding), or `None` when it does not exist.
    pub async fn get(&self, id: &ResourceId) -> Option<Value> {
        let key = id.key();
        let (kind, namespace, name) = match (id.kind(), key.len()) {
            ("namespace", 2) => ("Namespace", None, key[1]),
            ("default-serviceaccount", 2) => ("ServiceAccount", Some(key[1]), "default"),
            (kind, 3) => (
                match kind {
                    "serviceaccount" => "ServiceAccount",
                    "role" => "Role",
                    _ => "RoleBinding",
                },
                Some(key[1]),
                key[2],
            ),
            _ => panic!("not a kubernetes id: {id}"),
        };
        self.dynamic(kind, namespace)
            .get_opt(name)
            .await
            .expect("get")
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// Server-side applies `object` as field manager `manager`, as a GitOps tool does with
    /// rendered manifests.
    pub async fn apply_as(&self, manager: &str, object: &Value) {
        let kind = object["kind"].as_str().expect("kind");
        let name = object["metadata"]["name"].as_str().expect("name");
        let namespace = object["metadata"]["namespace"].as_str();
        self.dynamic(kind, namespace)
            .patch(name, &PatchParams::apply(manager), &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }

    fn dynamic(&self, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = match kind {
            "Namespace" => ApiResource::erase::<Namespace>(&()),
            "ServiceAccount" => ApiResource::erase::<ServiceAccount>(&()),
            "Role" => ApiResource::erase::<Role>(&()),
            "RoleBinding" => ApiResource::erase::<RoleBinding>(&()),
            other => panic!("unexpected kind {other}"),
        };
        match namespace {
            Some(ns) => Api::namespaced_with(self.kube.clone(), ns, &ar),
            None => Api::all_with(self.kube.clone(), &ar),
        }
    }

    /// A JSON merge patch by another field manager, as `kubectl patch` or a controller.
    pub async fn merge_patch_sa(&self, ns: &str, name: &str, patch: Value) {
        let params = PatchParams {
            field_manager: Some("someone-else".into()),
            ..PatchParams::default()
        };
        Api::<ServiceAccount>::namespaced(self.kube.clone(), ns)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .expect("merge patch");
    }
}

pub fn owner(plan: &str, prune: bool) -> Owner {
    Owner {
        plan: plan.into(),
        prune,
    }
}

pub fn cluster(create_namespaces: bool, harden: bool) -> ClusterOptions {
    ClusterOptions {
        name: CLUSTER.into(),
        create_namespaces,
        harden_default_service_accounts: harden,
    }
}

pub fn ksa(ns: &str, name: &str) -> KsaSpec {
    KsaSpec {
        workload: WorkloadRef {
            cluster: CLUSTER.into(),
            namespace: ns.into(),
            service_account: name.into(),
        },
        labels: BTreeMap::new(),
        annotations: wid_core::Attrs::new(),
        automount: false,
        rules: Vec::new(),
        adopt: false,
        depends_on: Vec::new(),
        origin: "plans/test.toml:1".into(),
    }
}

pub fn with_rules(mut k: KsaSpec) -> KsaSpec {
    k.rules = vec![PolicyRule {
        api_groups: vec![String::new()],
        resources: vec!["configmaps".into()],
        verbs: vec!["watch".into(), "get".into(), "list".into()],
        resource_names: Vec::new(),
    }];
    k
}

pub fn annotate(mut k: KsaSpec, key: &str, value: &str) -> KsaSpec {
    k.annotations
        .insert(key.into(), AttrValue::Known(json!(value)));
    k
}

pub fn label(mut k: KsaSpec, key: &str, value: &str) -> KsaSpec {
    k.labels.insert(key.into(), value.into());
    k
}

/// Observe and diff, as `wid plan` does.
pub async fn plan(p: &KubernetesProvider, desired: &[Arc<Resource>], own: &Owner) -> Vec<Change> {
    let wanted: Vec<&Resource> = desired.iter().map(|r| &**r).collect();
    let observed = p.observe(&wanted, own).await.expect("observe");
    diff(desired, &observed, own.prune)
}

/// Applies every create, update and delete in dependency order: a create or update after
/// what it depends on, a delete after the deletes of what depends on it.
pub async fn apply(p: &KubernetesProvider, changes: &[Change], own: &Owner) {
    let pending: Vec<&Change> = changes
        .iter()
        .filter(|c| !matches!(c.kind, ChangeKind::NoOp | ChangeKind::Conflict))
        .collect();
    let ids: BTreeSet<&ResourceId> = pending.iter().map(|c| &c.id).collect();
    let mut done: BTreeSet<&ResourceId> = BTreeSet::new();
    while done.len() < pending.len() {
        let before = done.len();
        for c in &pending {
            if done.contains(&c.id) {
                continue;
            }
            let ready = if c.kind == ChangeKind::Delete {
                pending.iter().all(|o| {
                    o.kind != ChangeKind::Delete
                        || done.contains(&o.id)
                        || !o.depends_on().contains(&c.id)
                })
            } else {
                c.depends_on()
                    .iter()
                    .all(|d| !ids.contains(d) || done.contains(d))
            };
            if ready {
                p.apply(c, own).await.unwrap_or_else(|e| {
                    panic!("apply {} {:?}: {e} ({:?})", c.id, c.kind, e.detail)
                });
                done.insert(&c.id);
            }
        }
        assert!(done.len() > before, "dependency cycle in {pending:#?}");
    }
}

pub fn kinds(changes: &[Change]) -> Vec<(String, ChangeKind)> {
    changes.iter().map(|c| (c.id.to_string(), c.kind)).collect()
}

pub fn all_noop(changes: &[Change]) -> bool {
    changes.iter().all(|c| c.kind == ChangeKind::NoOp)
}
