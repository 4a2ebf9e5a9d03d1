//! What the PR-facing renderers (markdown, GitHub annotations) read from a plan, fresh or
//! saved: the changes grouped by workload with where each workload is written, counts per
//! cluster and per cloud, and why each change happens.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wid_core::{Change, ChangeKind, Reason};

use super::json::Summary;
use crate::model::workload_origin;
use crate::plan::Plan;
use crate::session::Planned;

/// Where a group of the plan output (a workload, or a cluster's own resources) is written
/// in the plan files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Place {
    /// How the output names it: `cluster/namespace/service-account`, or `cluster NAME`.
    pub name: String,
    /// The plan file, as the path was given to wid (relative to where it ran).
    pub file: String,
    /// 1-based line of the `[[workload]]` or `[clusters.NAME]` header.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Places by the group name the plan output uses (`dev/payments/orders (file:5:1)`,
/// `cluster dev`).
pub type Places = BTreeMap<String, Place>;

/// The place of every workload and cluster of a plan, keyed as compile names groups.
pub fn places(plan: &Plan) -> Places {
    let mut out = Places::new();
    for w in &plan.workloads {
        let (line, column) = w.file.line_col(w.span.start);
        let s = &w.spec;
        out.insert(
            plan.group_label(plan.scope_of(w), &workload_origin(w)),
            Place {
                name: format!("{}/{}/{}", s.cluster, s.namespace, s.service_account),
                file: w.file.path.to_string(),
                line,
                column,
            },
        );
    }
    for (name, c) in &plan.clusters {
        let (line, column) = c.file.line_col(c.span.start);
        for scope in &plan.scopes {
            out.insert(
                plan.group_label(scope, &format!("cluster {name}")),
                Place {
                    name: format!("cluster {name}"),
                    file: c.file.path.to_string(),
                    line,
                    column,
                },
            );
        }
    }
    out
}

/// A plan as the PR renderers see it.
pub struct PlanView<'a> {
    /// The plan's name.
    pub plan: &'a str,
    /// Its changes, groups and warnings.
    pub planned: &'a Planned,
    /// Where each group is written.
    pub places: &'a Places,
    /// API calls made to compute it, by operation.
    pub calls: &'a BTreeMap<String, u64>,
}

/// Where a resource lives: a cluster's Kubernetes API, or a cloud's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Kubernetes objects of one cluster.
    Cluster(String),
    /// A cloud's objects (`aws`).
    Cloud(String),
}

impl Scope {
    /// The scope of a change.
    pub fn of(change: &Change) -> Self {
        match change.id.provider() {
            "k8s" => Self::Cluster(change.id.part(0).to_owned()),
            cloud => Self::Cloud(cloud.to_owned()),
        }
    }
}

/// Why a change happens, as a reviewer tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// The live object differs from what wid applied with this same plan.
    Drift,
    /// An earlier apply stopped part-way.
    Incomplete,
    /// wid refuses to touch it.
    Conflict,
    /// The plan changed since wid applied the object.
    PlanChanged,
    /// The object differs and carries no record of wid's last apply.
    Differs,
    /// The object is missing.
    New,
    /// An unmarked object is taken over.
    Adopt,
    /// The object left the plan.
    LeftPlan,
}

impl Why {
    /// The class of a change; `None` for no-ops.
    pub fn of(change: &Change) -> Option<Self> {
        Some(match &change.reason {
            Reason::Drift => Self::Drift,
            Reason::Incomplete => Self::Incomplete,
            Reason::Blocked(_) => Self::Conflict,
            Reason::PlanChanged => Self::PlanChanged,
            Reason::Differs => Self::Differs,
            Reason::Missing => Self::New,
            Reason::Adopt => Self::Adopt,
            Reason::LeftPlan => Self::LeftPlan,
            Reason::UpToDate => return None,
        })
    }

    /// `N label`, singular or plural.
    pub fn count(self, n: usize) -> String {
        let (one, many) = match self {
            Self::Drift => ("drift", "drifts"),
            Self::Incomplete => ("incomplete apply", "incomplete applies"),
            Self::Conflict => ("conflict", "conflicts"),
            Self::PlanChanged => ("plan change", "plan changes"),
            Self::Differs => ("differs from the plan", "differ from the plan"),
            Self::New => ("new", "new"),
            Self::Adopt => ("adoption", "adoptions"),
            Self::LeftPlan => ("left the plan", "left the plan"),
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }
}

/// The short label of one change: `create`, `update (drift)`, `conflict`.
pub fn label(change: &Change) -> &'static str {
    match (&change.kind, &change.reason) {
        (ChangeKind::Conflict, _) => "conflict",
        (_, Reason::Drift) => "update (drift)",
        (_, Reason::Incomplete) => "update (incomplete apply)",
        (_, Reason::PlanChanged) => "update (plan changed)",
        (_, Reason::Adopt) => "adopt",
        (ChangeKind::Create, _) => "create",
        (ChangeKind::Delete, _) => "delete (left the plan)",
        (ChangeKind::Update, _) => "update",
        (ChangeKind::NoOp, _) => "no change",
    }
}

/// One group of changes (a workload, a cluster's own objects, a shared cloud object).
pub struct Group<'a> {
    /// The group's key in the plan output.
    pub key: String,
    /// Where it is written, when it is in the plan.
    pub place: Option<&'a Place>,
    /// Its changes, no-ops left out, sorted by id.
    pub changes: Vec<&'a Change>,
}

impl Group<'_> {
    /// The name to show: the place's name, else the group key.
    pub fn name(&self) -> &str {
        self.place.map_or(&self.key, |p| &p.name)
    }

    /// How urgent it is for a reviewer: conflicts, then drift and incomplete applies, then
    /// the rest.
    pub fn rank(&self) -> u8 {
        let whys: Vec<Option<Why>> = self.changes.iter().map(|c| Why::of(c)).collect();
        if whys.contains(&Some(Why::Conflict)) {
            0
        } else if whys.contains(&Some(Why::Drift)) || whys.contains(&Some(Why::Incomplete)) {
            1
        } else {
            2
        }
    }

    /// `1 to create, 2 to update (drift)`: counts by label.
    pub fn summary(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &self.changes {
            *counts.entry(label(c)).or_default() += 1;
        }
        counts
            .iter()
            .map(|(label, n)| match *label {
                "conflict" => format!("{n} conflict{}", if *n == 1 { "" } else { "s" }),
                "adopt" => format!("{n} to adopt"),
                other => format!("{n} to {other}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<'a> PlanView<'a> {
    /// API calls made to compute the plan.
    pub fn api_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// The group key of a change, as the human plan groups it.
    pub fn group_of(&self, change: &Change) -> String {
        self.planned
            .desired
            .groups
            .get(&change.id)
            .map_or_else(|| "left the plan".to_owned(), |g| g.to_string())
    }

    /// Counts for the whole plan.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.planned.changes)
    }

    /// Counts per cluster (its Kubernetes objects), then per cloud.
    pub fn by_scope(&self) -> Vec<(Scope, Summary)> {
        let mut out: BTreeMap<Scope, Summary> = BTreeMap::new();
        for c in &self.planned.changes {
            let s = out.entry(Scope::of(c)).or_default();
            match c.kind {
                ChangeKind::Create => s.create += 1,
                ChangeKind::Update => s.update += 1,
                ChangeKind::Delete => s.delete += 1,
                ChangeKind::NoOp => s.unchanged += 1,
                ChangeKind::Conflict => s.conflict += 1,
            }
        }
        out.into_iter().collect()
    }

    /// How many changes of each kind of reason, most urgent first.
    pub fn whys(&self) -> Vec<(Why, usize)> {
        let mut out: BTreeMap<Why, usize> = BTreeMap::new();
        for c in &self.planned.changes {
            if let Some(why) = Why::of(c) {
                *out.entry(why).or_default() += 1;
            }
        }
        out.into_iter().collect()
    }

    /// The changes of one kind of reason.
    pub fn with_why(&self, why: Why) -> Vec<&'a Change> {
        self.planned
            .changes
            .iter()
            .filter(|c| Why::of(c) == Some(why))
            .collect()
    }

    /// Every group with something to do or a conflict: most urgent first, then by name.
    pub fn groups(&self) -> Vec<Group<'a>> {
        let mut by_key: BTreeMap<String, Vec<&'a Change>> = BTreeMap::new();
        for c in &self.planned.changes {
            if c.kind != ChangeKind::NoOp {
                by_key.entry(self.group_of(c)).or_default().push(c);
            }
        }
        let mut groups: Vec<Group<'a>> = by_key
            .into_iter()
            .map(|(key, changes)| Group {
                place: self.places.get(&key),
                key,
                changes,
            })
            .collect();
        groups.sort_by(|a, b| (a.rank(), a.name()).cmp(&(b.rank(), b.name())));
        groups
    }
}
