//! What `wid import` hands each cloud: the cluster's name in the plan, what is known of
//! its cloud coordinates before any cloud call (flags, the sandbox's declaration, the
//! kubeconfig context), and its KSAs. And the small rules every cloud uses to pick a
//! coordinate from those sources and say where it came from.

use wid_core::import::KsaFacts;
use wid_kubernetes::import::ContextInfo;
use wid_sandbox::ClusterDecl;

use crate::cli::CliError;
use crate::plan::ClusterKind;

/// Cloud coordinates given on the command line, named after the plan's cluster keys.
#[derive(Debug, Clone, Default)]
pub struct Coordinates {
    /// `--kind`.
    pub kind: Option<ClusterKind>,
    /// `--account` (EKS).
    pub account: Option<String>,
    /// `--region` (EKS).
    pub region: Option<String>,
    /// `--project` (GKE).
    pub project: Option<String>,
    /// `--project-number` (GKE).
    pub project_number: Option<String>,
    /// `--location` (GKE).
    pub location: Option<String>,
    /// `--subscription` (AKS).
    pub subscription: Option<String>,
    /// `--resource-group` (AKS).
    pub resource_group: Option<String>,
    /// `--tenant` (AKS).
    pub tenant: Option<String>,
    /// `--cloud-name`: the cluster's name in its cloud.
    pub name: Option<String>,
    /// `--issuer`: the cluster's OIDC issuer, when it should not be looked up.
    pub issuer: Option<String>,
}

/// Everything known of a cluster before its cloud is asked.
#[derive(Debug, Clone, Default)]
pub struct ClusterHints {
    /// The kubeconfig context used, for a real cluster.
    pub context: Option<ContextInfo>,
    /// The sandbox's declaration of the cluster (its cloud side), in sandbox mode.
    pub decl: Option<ClusterDecl>,
    /// What the command line says.
    pub flags: Coordinates,
}

/// One import.
pub struct ImportRequest<'a> {
    /// The cluster's name in the plan.
    pub cluster: &'a str,
    /// The plan's name (ownership scope).
    pub plan: &'a str,
    /// What is known of the cluster.
    pub hints: &'a ClusterHints,
    /// Every KSA of the cluster (in the namespaces imported).
    pub ksas: &'a [KsaFacts],
}

/// A coordinate and where it came from.
pub type Sourced = (String, String);

/// The first known of `candidates` (value, source), in order of trust.
pub fn pick(candidates: impl IntoIterator<Item = (Option<String>, String)>) -> Option<Sourced> {
    candidates
        .into_iter()
        .find_map(|(v, why)| v.filter(|v| !v.is_empty()).map(|v| (v, why)))
}

/// The error for coordinates import cannot find out: names each missing one with the
/// flag that gives it.
pub fn missing(kind: &str, what: &[(&str, &str)]) -> CliError {
    let list: Vec<String> = what
        .iter()
        .map(|(name, flag)| format!("its {name} ({flag})"))
        .collect();
    CliError::Usage(format!(
        "cannot tell which {kind} cluster this is: pass {}",
        list.join(", ")
    ))
}

/// One comment line per coordinate: `account 111122223333: from the context name`.
pub fn notes(coords: &[(&str, &Sourced)]) -> Vec<String> {
    coords
        .iter()
        .map(|(k, (v, why))| format!("{k} {v}: {why}"))
        .collect()
}
