//! Plans: reading TOML plan files and validating them, before any network call.
//!
//! [`load`] returns a [`Plan`] only when every rule holds; otherwise it returns every
//! problem found, each located by file, line and column.

mod diagnostic;
mod fast;
mod load;
mod messages;
mod sections;
pub mod spec;
mod toml_spans;
mod validate;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

pub use diagnostic::{Diagnostics, PlanDiagnostic, Rendered, SourceFile};
pub use load::{Entry, plan_files};
pub use spec::{AwsSettings, ClusterKind, ClusterSpec, PlanFile, WorkloadSpec};
pub use validate::field_issue;

/// A validated plan.
///
/// A directory whose files declare different `name`s holds several ownership scopes (one
/// per team): each scope owns the workloads of its files, and the clusters and settings
/// of every file are shared. Files without a `name` declare only shared clusters and
/// settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The ownership scope; with several scopes, their names joined by `, ` (for display
    /// only: each scope is planned with its own name, see [`Plan::scope`]).
    pub name: String,
    /// Every ownership scope, sorted.
    pub scopes: Vec<String>,
    /// The scope of each plan file that names one, by file path.
    pub file_scopes: BTreeMap<String, String>,
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

impl Plan {
    /// Whether the plan holds more than one ownership scope.
    pub fn is_multi_scope(&self) -> bool {
        self.scopes.len() > 1
    }

    /// The scope that owns a workload: the `name` of its file.
    pub fn scope_of(&self, w: &Entry<WorkloadSpec>) -> &str {
        self.file_scopes
            .get(&*w.file.path)
            .map_or(self.name.as_str(), String::as_str)
    }

    /// One scope of the plan: its workloads, every cluster and the shared settings,
    /// named as that scope (the plan itself, not a copy, when it is that one scope).
    pub fn scope(&self, scope: &str) -> Cow<'_, Plan> {
        if self.scopes.len() == 1 && self.scopes[0] == scope && self.name == scope {
            return Cow::Borrowed(self);
        }
        let mut out = self.clone();
        out.workloads.retain(|w| self.scope_of(w) == scope);
        out.name = scope.to_owned();
        out.scopes = vec![scope.to_owned()];
        Cow::Owned(out)
    }

    /// How the output labels a group of one scope: the label itself in a single-scope
    /// plan, `[scope] label` otherwise (so the output reads scope by scope).
    pub fn group_label(&self, scope: &str, label: &str) -> String {
        if self.is_multi_scope() {
            format!("[{scope}] {label}")
        } else {
            label.to_owned()
        }
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
    let scopes = validate::plan(&raw, &mut diags);
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    let mut clusters = BTreeMap::new();
    for (cluster_name, entry) in raw.clusters {
        clusters.entry(cluster_name).or_insert(entry);
    }
    let file_scopes = raw
        .names
        .iter()
        .map(|(n, file, _)| (file.path.to_string(), n.clone()))
        .collect();
    Ok(Plan {
        name: scopes.join(", "),
        scopes,
        file_scopes,
        clusters,
        workloads: raw.workloads,
        aws: raw.aws,
        files: raw.files,
    })
}

#[cfg(test)]
mod tests;
