//! The sandbox's shared state, counters and fault list, and their persistence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Fault, FaultAction, aws, azure, gcp, k8s};

/// Everything the emulators remember, persisted as `DIR/state.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Kubernetes clusters by the plan's cluster name.
    #[serde(default)]
    pub clusters: BTreeMap<String, k8s::ClusterState>,
    /// AWS accounts: IAM, EKS clusters.
    #[serde(default)]
    pub aws: aws::AwsState,
    /// Azure subscriptions: resource groups, identities, role assignments, AKS clusters.
    #[serde(default)]
    pub azure: azure::AzureState,
    /// GCP projects: IAM policies, service accounts, GKE clusters.
    #[serde(default)]
    pub gcp: gcp::GcpState,
    /// Every cluster as it was declared, with its cloud side (which EKS, GKE or AKS
    /// cluster it is), by name: what `wid import` asks the sandbox about a cluster.
    #[serde(default)]
    pub decls: BTreeMap<String, ClusterDecl>,
}

/// The kind of a declared cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Google Kubernetes Engine.
    Gke,
    /// Amazon EKS.
    Eks,
    /// Azure Kubernetes Service.
    Aks,
    /// Any conformant cluster.
    Generic,
}

/// EKS facts of a declared cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksDecl {
    /// The AWS account that holds the cluster.
    pub account: String,
    /// The region.
    pub region: String,
    /// The EKS cluster name.
    pub name: String,
}

/// GKE facts of a declared cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GkeDecl {
    /// The project id that holds the cluster (its workload pool is `PROJECT.svc.id.goog`).
    pub project: String,
    /// The project number, when the plan gives it.
    pub project_number: Option<String>,
    /// The cluster's location (region or zone).
    pub location: String,
    /// The GKE cluster name.
    pub name: String,
}

/// AKS facts of a declared cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AksDecl {
    /// The subscription id.
    pub subscription: String,
    /// The managed cluster's resource group.
    pub resource_group: String,
    /// The managed cluster's name.
    pub name: String,
    /// The tenant of the subscription; derived from the subscription id when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The location of the resource group and cluster; `eastus` when absent.
    #[serde(default)]
    pub location: Option<String>,
}

/// A cluster the sandbox must emulate (one per cluster declared in a plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDecl {
    /// The plan's cluster name; also the kubeconfig context name.
    pub name: String,
    /// Its kind.
    pub kind: ClusterKind,
    /// For EKS clusters, the EKS side (so `eks:DescribeCluster` knows it).
    pub eks: Option<EksDecl>,
    /// For GKE clusters, the GKE side (so `clusters.get` knows it).
    #[serde(default)]
    pub gke: Option<GkeDecl>,
    /// For AKS clusters, the AKS side (so the managed cluster can be read).
    #[serde(default)]
    pub aks: Option<AksDecl>,
}

/// State shared by every server of one sandbox.
#[derive(Debug)]
pub struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    calls: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Vec<Fault>>,
}

impl Shared {
    pub(crate) fn load(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let state = read_json(&dir.join("state.json"))?.unwrap_or_default();
        let calls = read_json(&dir.join("calls.json"))?.unwrap_or_default();
        let faults = read_json(&dir.join("faults.json"))?.unwrap_or_default();
        Ok(Self {
            dir: dir.to_owned(),
            state: Mutex::new(state),
            calls: Mutex::new(calls),
            faults: Mutex::new(faults),
        })
    }

    /// The sandbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self
            .state
            .lock()
            .expect("sandbox state lock is never poisoned"))
    }

    /// Changes the state and persists it.
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self
            .state
            .lock()
            .expect("sandbox state lock is never poisoned");
        let out = f(&mut state);
        if let Err(e) = write_json(&self.dir.join("state.json"), &*state) {
            tracing::error!("sandbox: failed to persist state: {e}");
        }
        out
    }

    /// Counts one call of `api` and returns the fault to inject for it, if any.
    ///
    /// Every handler calls this first, with its API name (`iam:CreateRole`,
    /// `eks:DescribeCluster`, `k8s:get serviceaccounts`).
    pub fn call(&self, api: &str) -> Option<FaultAction> {
        {
            let mut calls = self
                .calls
                .lock()
                .expect("sandbox calls lock is never poisoned");
            *calls.entry(api.to_owned()).or_default() += 1;
            if let Err(e) = write_json(&self.dir.join("calls.json"), &*calls) {
                tracing::error!("sandbox: failed to persist call counts: {e}");
            }
        }
        let mut faults = self
            .faults
            .lock()
            .expect("sandbox faults lock is never poisoned");
        let index = faults.iter().position(|f| api.starts_with(&f.api))?;
        let action = faults[index].action.clone();
        if let Some(times) = faults[index].times.as_mut() {
            *times -= 1;
            if *times == 0 {
                faults.remove(index);
            }
        }
        Some(action)
    }

    /// Calls per API so far (persisted across runs in `calls.json`).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .lock()
            .expect("sandbox calls lock is never poisoned")
            .clone()
    }

    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        self.faults
            .lock()
            .expect("sandbox faults lock is never poisoned")
            .push(fault);
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(tmp, path)
}
