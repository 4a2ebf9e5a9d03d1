//! Plans: reading TOML plan files and validating them, before any network call.
//!
//! [`load`] returns a [`Plan`] only when every rule holds; otherwise it returns every
//! problem found, each located by file, line and column.

mod diagnostic;
mod load;
mod messages;
pub mod spec;
mod toml_spans;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

pub use diagnostic::{Diagnostics, PlanDiagnostic, Rendered, SourceFile};
pub use load::{Entry, plan_files};
pub use spec::{AwsSettings, ClusterKind, ClusterSpec, PlanFile, WorkloadSpec};
pub use validate::field_issue;

/// A validated plan.
#[derive(Debug)]
pub struct Plan {
    /// The ownership scope.
    pub name: String,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Entry<ClusterSpec>>,
    /// Workloads in file order.
    pub workloads: Vec<Entry<WorkloadSpec>>,
    /// Plan-wide AWS settings.
    pub aws: AwsSettings,
    /// Every plan file read, with the exact text that was parsed (a saved plan records
    /// their digests).
    pub files: Vec<SourceFile>,
}

impl Plan {
    /// The workloads of one cluster.
    pub fn workloads_of<'a>(
        &'a self,
        cluster: &'a str,
    ) -> impl Iterator<Item = &'a Entry<WorkloadSpec>> {
        self.workloads
            .iter()
            .filter(move |w| w.spec.cluster == cluster)
    }
}

/// Reads and validates the plan at `path` (a file or a directory of `*.toml`).
pub fn load(path: &Path) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::default();
    let raw = load::read(path, &mut diags);
    let kinds: BTreeMap<String, ClusterKind> = raw
        .clusters
        .iter()
        .map(|(name, entry)| (name.clone(), entry.spec.kind))
        .collect();
    for (name, entry) in &raw.clusters {
        validate::cluster(name, entry, &mut diags);
    }
    for entry in &raw.workloads {
        validate::workload(entry, &kinds, &raw.broken_clusters, &mut diags);
    }
    let name = validate::plan(&raw, &mut diags);
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    let mut clusters = BTreeMap::new();
    for (cluster_name, entry) in raw.clusters {
        clusters.entry(cluster_name).or_insert(entry);
    }
    Ok(Plan {
        name: name.unwrap_or_default(),
        clusters,
        workloads: raw.workloads,
        aws: raw.aws,
        files: raw.files,
    })
}

#[cfg(test)]
mod tests;
