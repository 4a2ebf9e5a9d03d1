//! Checking a saved plan before it is applied: the target, the plan files, what preflight
//! finds, every live object the diff read, and the changes recomputed from all of them.
//! Each difference is named; any difference refuses the apply.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;
use wid_core::{Change, ObservedResource, Ownership, ResourceId};

use super::digest::{FileChange, FileDigest, compare_loaded, compare_now};
use super::document::{LiveState, SavedPlan, SavedPreflight, SavedTarget, fingerprint};
use crate::cli::CliError;
use crate::session::{Planned, Target};

/// Characters of a value quoted in a message.
const VALUE_CHARS: usize = 120;

/// Why a saved plan may not be applied: everything that differs from when it was saved.
#[derive(Debug, Default)]
pub struct Stale {
    /// The saved plan's file.
    pub file: String,
    /// The plan path it was computed from.
    pub source: String,
    /// Plan files that changed, appeared or went.
    pub files: Vec<FileChange>,
    /// What preflight finds differently (a cluster's issuer).
    pub preflight: Vec<String>,
    /// Live objects that changed, one line each.
    pub objects: Vec<String>,
    /// Changes that come out differently although their inputs are the same (another
    /// wid version).
    pub recomputed: Vec<String>,
}

impl Stale {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.preflight.is_empty()
            && self.objects.is_empty()
            && self.recomputed.is_empty()
    }
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "refusing to apply {}: what it was computed from changed since it was saved; nothing was applied",
            self.file
        )?;
        if !self.files.is_empty() {
            writeln!(f, "  plan files changed (in {}):", self.source)?;
            for c in &self.files {
                writeln!(f, "    {c}")?;
            }
        }
        if !self.preflight.is_empty() {
            writeln!(f, "  clusters changed:")?;
            for line in &self.preflight {
                writeln!(f, "    {line}")?;
            }
        }
        if !self.objects.is_empty() {
            writeln!(f, "  live objects changed:")?;
            for line in &self.objects {
                writeln!(f, "    {line}")?;
            }
        }
        if !self.recomputed.is_empty() {
            writeln!(
                f,
                "  this wid ({}) computes different changes from the same inputs:",
                env!("CARGO_PKG_VERSION")
            )?;
            for line in &self.recomputed {
                writeln!(f, "    {line}")?;
            }
        }
        write!(
            f,
            "hint: run `wid plan {} --out {}` again and review the new plan",
            self.source, self.file
        )
    }
}

/// The target to apply on: the saved one, unless the command line points elsewhere
/// (which is refused).
pub fn check_target(saved: &SavedPlan, given: &Target, file: &str) -> Result<Target, CliError> {
    let given_target = SavedTarget::of(given);
    let mut differs = Vec::new();
    if given.sandbox.is_some() && given_target.sandbox != saved.target.sandbox {
        differs.push("sandbox directory");
    }
    if given.aws_endpoint.is_some()
        && given_target.aws_endpoint_url != saved.target.aws_endpoint_url
    {
        differs.push("AWS endpoint");
    }
    if !given.contexts.is_empty() && given_target.contexts != saved.target.contexts {
        differs.push("cluster contexts");
    }
    if given.kubeconfig.is_some() && given_target.kubeconfig != saved.target.kubeconfig {
        differs.push("kubeconfig");
    }
    if !differs.is_empty() {
        return Err(CliError::Usage(format!(
            "{file} was computed for {}, and the command line points at {} (the {} {}); apply it without target flags, or plan again for that target",
            saved.target.describe(),
            given_target.describe(),
            differs.join(" and the "),
            if differs.len() == 1 {
                "differs"
            } else {
                "differ"
            }
        )));
    }
    // Where to run comes from the saved plan; how (timeouts, parallelism) from this
    // command line.
    let mut target = saved.target.target();
    target.limits = given.limits.clone();
    Ok(target)
}

/// The plan files at `path` against the saved digests, read without parsing.
pub fn check_files(saved: &SavedPlan, path: &Path) -> Vec<FileChange> {
    compare_now(path, &saved.source.files)
}

/// Everything a fresh plan read against the saved plan: plan-file digests of what was
/// loaded (`loaded`), preflight, the live objects, and the recomputed changes.
pub fn check_world(saved: &SavedPlan, loaded: &[FileDigest], planned: &Planned) -> Stale {
    let mut stale = Stale {
        files: compare_loaded(&saved.source.files, loaded),
        ..Stale::default()
    };
    stale.preflight = preflight(&saved.preflight, &SavedPreflight::of(&planned.preflight));
    let now = fingerprint(planned, saved.options.prune);
    stale.objects = objects(&saved.observed, &now);
    if stale.is_empty() {
        stale.recomputed = recomputed(&saved.changes, &planned.changes);
    }
    stale
}

fn preflight(saved: &SavedPreflight, now: &SavedPreflight) -> Vec<String> {
    let mut out = Vec::new();
    let clusters: std::collections::BTreeSet<&String> =
        saved.issuers.keys().chain(now.issuers.keys()).collect();
    for c in clusters {
        let (a, b) = (saved.issuers.get(c), now.issuers.get(c));
        if a != b {
            out.push(format!("cluster {c}: issuer {} → {}", opt(a), opt(b)));
        }
    }
    let clusters: std::collections::BTreeSet<&String> =
        saved.facts.keys().chain(now.facts.keys()).collect();
    let empty = BTreeMap::new();
    for c in clusters {
        let (a, b) = (
            saved.facts.get(c).unwrap_or(&empty),
            now.facts.get(c).unwrap_or(&empty),
        );
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for n in names {
            if a.get(n) != b.get(n) {
                out.push(format!(
                    "cluster {c}: {n} {} → {}",
                    opt(a.get(n)),
                    opt(b.get(n))
                ));
            }
        }
    }
    out
}

fn opt(v: Option<&String>) -> String {
    v.map_or_else(|| "(none)".to_owned(), Clone::clone)
}

fn objects(
    saved: &BTreeMap<ResourceId, LiveState>,
    now: &BTreeMap<ResourceId, LiveState>,
) -> Vec<String> {
    let ids: std::collections::BTreeSet<&ResourceId> = saved.keys().chain(now.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        match (saved.get(id), now.get(id)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(LiveState::Present(a)), Some(LiveState::Present(b))) => {
                out.push(format!("{id}: {}", object_diff(a, b).join("; ")));
            }
            (_, Some(LiveState::Blocked(why))) => out.push(format!("{id}: now blocked: {why}")),
            (_, Some(LiveState::Present(_))) => {
                out.push(format!(
                    "{id}: now exists (it did not when the plan was saved)"
                ));
            }
            (_, Some(LiveState::Absent) | None) => {
                out.push(format!("{id}: no longer exists"));
            }
        }
    }
    out
}

/// What differs between two observations of one object, one fragment per attribute.
fn object_diff(a: &ObservedResource, b: &ObservedResource) -> Vec<String> {
    let mut out = Vec::new();
    if a.ownership != b.ownership {
        out.push(format!(
            "ownership {} → {}",
            owner(&a.ownership),
            owner(&b.ownership)
        ));
    }
    let keys: std::collections::BTreeSet<&String> = a.attrs.keys().chain(b.attrs.keys()).collect();
    for k in keys {
        let (x, y) = (a.attrs.get(k), b.attrs.get(k));
        if x != y {
            out.push(format!("{k} {} → {}", value(x), value(y)));
        }
    }
    if a.applied != b.applied {
        out.push(format!(
            "{} record {} → {}",
            wid_core::APPLIED_KEY,
            a.applied.as_deref().unwrap_or("(none)"),
            b.applied.as_deref().unwrap_or("(none)")
        ));
    }
    if a.depends_on != b.depends_on {
        out.push("dependencies changed".to_owned());
    }
    out
}

fn owner(o: &Ownership) -> String {
    match o {
        Ownership::Ours => "this plan".to_owned(),
        Ownership::OtherPlan(p) => format!("plan {p:?}"),
        Ownership::Unowned => "no wid mark".to_owned(),
    }
}

fn value(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "(unset)".to_owned();
    };
    let text = v.to_string();
    let total = text.chars().count();
    if total <= VALUE_CHARS {
        return text;
    }
    let head: String = text.chars().take(VALUE_CHARS).collect();
    format!("{head}… ({} more characters)", total - VALUE_CHARS)
}

fn recomputed(saved: &[Change], now: &[Change]) -> Vec<String> {
    let a: BTreeMap<&ResourceId, &Change> = saved.iter().map(|c| (&c.id, c)).collect();
    let b: BTreeMap<&ResourceId, &Change> = now.iter().map(|c| (&c.id, c)).collect();
    let ids: std::collections::BTreeSet<&&ResourceId> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        match (a.get(*id), b.get(*id)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(_), Some(_)) => out.push(format!("{id}: the change differs")),
            (Some(_), None) => out.push(format!("{id}: no longer part of the plan")),
            (None, _) => out.push(format!("{id}: newly part of the plan")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(name: &str) -> ResourceId {
        ResourceId::new("k8s", "serviceaccount", ["c", "ns", name])
    }

    #[test]
    fn each_changed_object_is_named_with_its_attributes() {
        let mut a = ObservedResource::new(id("a"), Ownership::Ours);
        a.attrs.insert("automount".into(), json!(false));
        a.applied = Some("abc".into());
        let mut b = a.clone();
        b.attrs.insert("automount".into(), json!(true));
        b.ownership = Ownership::Unowned;
        let saved = BTreeMap::from([
            (id("a"), LiveState::Present(a.clone())),
            (id("new"), LiveState::Absent),
            (id("gone"), LiveState::Present(a)),
        ]);
        let now = BTreeMap::from([
            (id("a"), LiveState::Present(b)),
            (
                id("new"),
                LiveState::Present(ObservedResource::new(id("new"), Ownership::Unowned)),
            ),
            (id("gone"), LiveState::Absent),
        ]);
        assert_eq!(
            objects(&saved, &now),
            vec![
                "k8s/serviceaccount/c/ns/a: ownership this plan → no wid mark; automount false → true",
                "k8s/serviceaccount/c/ns/gone: no longer exists",
                "k8s/serviceaccount/c/ns/new: now exists (it did not when the plan was saved)",
            ]
        );
        assert!(objects(&saved, &saved).is_empty());
    }

    #[test]
    fn a_changed_issuer_is_named() {
        let mut a = SavedPreflight::default();
        a.issuers.insert("prod".into(), "https://one".into());
        let mut b = a.clone();
        b.issuers.insert("prod".into(), "https://two".into());
        assert_eq!(
            preflight(&a, &b),
            vec!["cluster prod: issuer https://one → https://two"]
        );
    }
}
