//! The saved-plan document: what it records, how it is written (atomically, checked to
//! read back equal) and how a file is recognized as one by its content.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wid_core::{Change, ObservedResource, ResourceId};

use super::digest::FileDigest;
use crate::cli::CliError;
use crate::model::Desired;
use crate::output::Places;
use crate::session::{Planned, Target};

/// The value of [`SavedPlan::kind`]: how wid recognizes a saved plan by its content.
pub const KIND: &str = "wid-saved-plan";
/// The document's format version; bumped on any incompatible change.
pub const SAVED_FORMAT_VERSION: u32 = 1;

/// A plan saved by `wid plan --out`, described by `schema/saved-plan.schema.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Always `wid-saved-plan`.
    pub kind: String,
    /// Always 1 for this format.
    pub format_version: u32,
    /// The version of wid that computed the plan.
    pub wid_version: String,
    /// The plan's name (ownership scope).
    pub plan: String,
    /// The plan files it was computed from.
    pub source: Source,
    /// Where it was computed for.
    pub target: SavedTarget,
    /// The options that change what the plan means.
    pub options: SavedOptions,
    /// What preflight found (cluster issuers and facts), which compile used.
    pub preflight: SavedPreflight,
    /// Every change exactly as computed, no-ops included, sorted by id.
    pub changes: Vec<Change>,
    /// The fingerprint of the live world: the state of every object the diff read, by id.
    pub observed: BTreeMap<ResourceId, LiveState>,
    /// How the output groups each resource (by workload, or cluster).
    pub groups: BTreeMap<ResourceId, Arc<str>>,
    /// Where each group is written in the plan files.
    pub places: Places,
    /// Preflight warnings.
    pub warnings: Vec<String>,
    /// API calls made to compute the plan.
    pub api_calls: u64,
    /// API calls by operation.
    pub api_calls_by_operation: BTreeMap<String, u64>,
}

/// The plan files a saved plan was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The plan path as given to `wid plan` (a file or directory, relative to where wid
    /// ran); `wid apply` reads the plan files there again.
    pub path: String,
    /// Every plan file read and every file they name, sorted by path.
    pub files: Vec<FileDigest>,
}

/// Where a plan was computed for. Flags that point a run somewhere else are recorded
/// here, and applying the saved plan refuses a command line that points elsewhere. (The
/// plan files name each cluster's kubeconfig context; they are digested, so a changed
/// context shows as a changed file.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SavedTarget {
    /// The embedded sandbox's directory (absolute), or none for real clusters and clouds.
    pub sandbox: Option<String>,
    /// `--aws-endpoint-url`, when set.
    pub aws_endpoint_url: Option<String>,
    /// `--context CLUSTER=CTX` overrides of the plan's kubeconfig contexts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
    /// `--kubeconfig`, when set (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
}

impl SavedTarget {
    /// Records a run's target.
    pub fn of(target: &Target) -> Self {
        Self {
            sandbox: target.sandbox.as_ref().map(|d| absolute(d)),
            aws_endpoint_url: target.aws_endpoint.clone(),
            contexts: target.contexts.clone(),
            kubeconfig: target.kubeconfig.as_ref().map(|p| absolute(p)),
        }
    }

    /// The run's target, with default limits (the applying command line sets its own).
    pub fn target(&self) -> Target {
        Target {
            sandbox: self.sandbox.as_ref().map(Into::into),
            aws_endpoint: self.aws_endpoint_url.clone(),
            limits: wid_core::Limits::default(),
            contexts: self.contexts.clone(),
            kubeconfig: self.kubeconfig.as_ref().map(Into::into),
        }
    }

    /// How people read it: `the sandbox at DIR`, `real clusters and clouds`.
    pub fn describe(&self) -> String {
        let mut out = match &self.sandbox {
            Some(dir) => format!("the sandbox at {dir}"),
            None => "real clusters and clouds".to_owned(),
        };
        if let Some(url) = &self.aws_endpoint_url {
            out.push_str(&format!(", AWS at {url}"));
        }
        if let Some(path) = &self.kubeconfig {
            out.push_str(&format!(", kubeconfig {path}"));
        }
        for (cluster, ctx) in &self.contexts {
            out.push_str(&format!(", cluster {cluster} at context {ctx}"));
        }
        out
    }
}

fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// The options that change what a plan means. A selection of the plan (`--target`) is
/// recorded in `targets`, so applying the saved plan applies that selection only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SavedOptions {
    /// Deletes of objects that left the plan were computed (`--prune`).
    pub prune: bool,
    /// The parts of the plan selected (`--target`); empty for the whole plan.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Deletes over the mass-delete guard were allowed when planning
    /// (`--allow-mass-delete`).
    #[serde(default)]
    pub allow_mass_delete: bool,
    /// Only the cloud side was planned (`--cloud-only`); Kubernetes objects are left to
    /// a GitOps controller.
    #[serde(default)]
    pub cloud_only: bool,
}

/// What preflight found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SavedPreflight {
    /// The OIDC issuer of each cluster, by the plan's cluster name.
    pub issuers: BTreeMap<String, String>,
    /// Other facts by cluster and name (a GKE project number).
    pub facts: BTreeMap<String, BTreeMap<String, String>>,
}

impl SavedPreflight {
    /// Records what a preflight found.
    pub fn of(found: &wid_core::Preflight) -> Self {
        Self {
            issuers: found.issuers.clone(),
            facts: found.facts.clone(),
        }
    }
}

/// The state of one object the diff read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LiveState {
    /// The plan wants it and it did not exist.
    Absent,
    /// It existed: its managed attributes, ownership, dependencies and applied record.
    Present(ObservedResource),
    /// The plan wants it and something blocked it (a missing namespace).
    Blocked(String),
}

/// The fingerprint of what a plan read: every wanted id (present, absent or blocked) and,
/// when deletes were computed, every other object observe returned (the candidates for
/// deletion). Objects the diff ignores are left out, so they cannot make a saved plan
/// stale.
pub fn fingerprint(planned: &Planned, prune: bool) -> BTreeMap<ResourceId, LiveState> {
    let observed = &planned.observed;
    let mut out = BTreeMap::new();
    for r in &planned.desired.resources {
        let state = if let Some(why) = observed.blockers.get(&r.id) {
            LiveState::Blocked(why.clone())
        } else if let Some(live) = observed.resources.get(&r.id) {
            LiveState::Present((**live).clone())
        } else {
            LiveState::Absent
        };
        out.insert(r.id.clone(), state);
    }
    if prune {
        for (id, live) in &observed.resources {
            out.entry(id.clone())
                .or_insert_with(|| LiveState::Present((**live).clone()));
        }
    }
    out
}

impl SavedPlan {
    /// Records a plan just computed.
    pub fn new(
        name: &str,
        source: Source,
        target: &Target,
        options: SavedOptions,
        planned: &Planned,
        places: &Places,
        calls: &BTreeMap<String, u64>,
    ) -> Self {
        Self {
            kind: KIND.to_owned(),
            format_version: SAVED_FORMAT_VERSION,
            wid_version: env!("CARGO_PKG_VERSION").to_owned(),
            plan: name.to_owned(),
            source,
            target: SavedTarget::of(target),
            preflight: SavedPreflight::of(&planned.preflight),
            observed: fingerprint(planned, options.prune),
            options,
            changes: planned.changes.clone(),
            groups: planned.desired.groups.clone(),
            places: places.clone(),
            warnings: planned.warnings.clone(),
            api_calls: calls.values().sum(),
            api_calls_by_operation: calls.clone(),
        }
    }

    /// The changes, groups and warnings as a [`Planned`], for the renderers. The desired
    /// resources are those of the changes.
    pub fn planned(&self) -> Planned {
        Planned {
            desired: Desired {
                resources: self
                    .changes
                    .iter()
                    .filter_map(|c| c.desired.clone())
                    .collect(),
                groups: self.groups.clone(),
            },
            changes: self.changes.clone(),
            warnings: self.warnings.clone(),
            preflight: wid_core::Preflight {
                issuers: self.preflight.issuers.clone(),
                facts: self.preflight.facts.clone(),
                warnings: self.warnings.clone(),
            },
            observed: wid_core::Observed::default(),
            ..Planned::default()
        }
    }

    /// The document as written: pretty JSON and a final newline. Fails (naming the
    /// resource) if it would not read back exactly as it is, so a saved plan never applies
    /// anything but what was computed.
    pub fn to_text(&self) -> Result<String, CliError> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| CliError::Io(format!("failed to encode the plan: {e}")))?;
        text.push('\n');
        let back: Self = serde_json::from_str(&text)
            .map_err(|e| CliError::Io(format!("a saved plan does not read back: {e}")))?;
        if back != *self {
            let id = self
                .changes
                .iter()
                .zip(&back.changes)
                .find(|(a, b)| a != b)
                .map_or_else(|| "its metadata".to_owned(), |(a, _)| a.id.to_string());
            return Err(CliError::Io(format!(
                "refusing to save the plan: {id} does not read back exactly as computed"
            )));
        }
        Ok(text)
    }

    /// Writes the document to `path` atomically (a temporary file beside it, renamed).
    pub fn write(&self, path: &Path) -> Result<(), CliError> {
        let text = self.to_text()?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map_or_else(|| "plan".to_owned(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let fail = |e: std::io::Error| {
            CliError::Io(format!(
                "failed to write the plan to {}: {e}",
                path.display()
            ))
        };
        std::fs::write(&tmp, text).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })
    }

    /// Reads a saved plan, or returns `None` when `path` is not one (a directory, or a
    /// file that does not start with `{`: TOML never does). A file that starts like JSON
    /// must be a saved plan this wid reads, or it is an error.
    pub fn detect(path: &Path) -> Result<Option<Self>, CliError> {
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(path)
            .map_err(|e| CliError::Io(format!("failed to read {}: {e}", path.display())))?;
        let start = bytes
            .strip_prefix("\u{feff}".as_bytes())
            .unwrap_or(&bytes)
            .iter()
            .find(|b| !b.is_ascii_whitespace());
        if start != Some(&b'{') {
            return Ok(None);
        }
        Self::parse(path, &bytes).map(Some)
    }

    /// Reads a file that must be a saved plan.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let bytes = std::fs::read(path)
            .map_err(|e| CliError::Io(format!("failed to read {}: {e}", path.display())))?;
        Self::parse(path, &bytes)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, CliError> {
        let shown = path.display();
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            CliError::Usage(format!(
                "{shown} is not a saved plan (not JSON: {e}); save one with `wid plan PATH --out {shown}`"
            ))
        })?;
        if value.get("kind").and_then(serde_json::Value::as_str) != Some(KIND) {
            return Err(CliError::Usage(format!(
                "{shown} is JSON but not a saved wid plan (no \"kind\": \"{KIND}\"); save one with `wid plan PATH --out FILE`"
            )));
        }
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(SAVED_FORMAT_VERSION)) {
            let by = value
                .get("wid_version")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("an unknown version");
            return Err(CliError::Usage(format!(
                "{shown} was saved by wid {by} in format {}, and this wid ({}) reads format {SAVED_FORMAT_VERSION}; plan again with this wid",
                version.map_or_else(|| "?".to_owned(), |v| v.to_string()),
                env!("CARGO_PKG_VERSION")
            )));
        }
        serde_json::from_value(value).map_err(|e| {
            CliError::Usage(format!(
                "{shown} is a damaged saved plan ({e}); plan again with `wid plan PATH --out FILE`"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wid_core::{AttrChange, AttrValue, ChangeKind, Ownership, Reason, Resource};

    use super::*;

    fn saved(changes: Vec<Change>) -> SavedPlan {
        SavedPlan {
            kind: KIND.to_owned(),
            format_version: SAVED_FORMAT_VERSION,
            wid_version: "0.0.0".into(),
            plan: "p".into(),
            source: Source {
                path: "plan".into(),
                files: Vec::new(),
            },
            target: SavedTarget::default(),
            options: SavedOptions::default(),
            preflight: SavedPreflight::default(),
            observed: changes
                .iter()
                .map(|c| (c.id.clone(), LiveState::Absent))
                .collect(),
            changes,
            groups: BTreeMap::new(),
            places: Places::new(),
            warnings: Vec::new(),
            api_calls: 0,
            api_calls_by_operation: BTreeMap::new(),
        }
    }

    fn create(id: ResourceId, value: AttrValue) -> Change {
        Change {
            id: id.clone(),
            kind: ChangeKind::Create,
            reason: Reason::Missing,
            desired: Some(Resource::new(id).attr("a", value.clone()).into()),
            observed: None,
            changed: vec![AttrChange {
                key: "a".into(),
                before: None,
                after: Some(value),
            }],
        }
    }

    #[test]
    fn saved_changes_load_back_equal() {
        let id = ResourceId::new("k8s", "serviceaccount", ["c", "ns", "a"]);
        let unknown = AttrValue::Unknown {
            from: ResourceId::new("azure", "identity", ["s", "rg", "x"]),
            output: "client_id".into(),
        };
        let mut plan = saved(vec![
            create(id.clone(), unknown),
            create(
                ResourceId::new("k8s", "serviceaccount", ["c", "ns", "b"]),
                AttrValue::Known(json!({"from": "x", "output": "y", "f": 0.1})),
            ),
        ]);
        let mut live = ObservedResource::new(id.clone(), Ownership::OtherPlan("q".into()));
        live.attrs.insert("n".into(), json!(null));
        plan.observed.insert(id, LiveState::Present(live));
        let text = plan.to_text().unwrap();
        let back: SavedPlan = serde_json::from_str(&text).unwrap();
        assert_eq!(back.changes, plan.changes);
        assert_eq!(back, plan);
    }

    /// Ids are written in their text form; one that would read back as another id (a key
    /// part holding a `/`) is refused rather than saved wrong.
    #[test]
    fn a_plan_that_would_not_read_back_exactly_is_not_saved() {
        let id = ResourceId::new("aws", "iam-oidc-provider", ["1", "host/id/AB"]);
        let plan = saved(vec![create(id, AttrValue::Known(json!(1)))]);
        let err = plan.to_text().unwrap_err().to_string();
        assert!(
            err.contains("aws/iam-oidc-provider/1/host/id/AB does not read back exactly"),
            "{err}"
        );
    }

    #[test]
    fn files_are_recognized_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("plan.wid");
        std::fs::write(&toml, "version = 1\n").unwrap();
        assert!(SavedPlan::detect(&toml).unwrap().is_none());
        assert!(SavedPlan::detect(dir.path()).unwrap().is_none());
        let file = dir.path().join("reviewed.toml");
        saved(Vec::new()).write(&file).unwrap();
        assert!(SavedPlan::detect(&file).unwrap().is_some());
    }
}
