//! What the emulators remember ([`State`], persisted as `DIR/state.json`) and the clusters
//! a sandbox is asked to emulate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{aws, azure, gcp, k8s};

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
