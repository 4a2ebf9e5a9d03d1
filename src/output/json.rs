//! The JSON plan document (`wid plan --output json`), versioned and described by
//! `schema/plan-output.schema.json`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use wid_core::{AttrValue, ChangeKind, Reason};

use crate::session::Planned;

/// The document's format version; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// A plan, for machines (CI drift gates, PR comments).
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanDocument {
    /// Always 1 for this format.
    pub format_version: u32,
    /// The plan's name (ownership scope).
    pub plan: String,
    /// Every change, no-ops included, sorted by id.
    pub changes: Vec<ChangeDoc>,
    /// Counts by kind.
    pub summary: Summary,
    /// API calls made to compute the plan.
    pub api_calls: u64,
    /// API calls by operation.
    pub api_calls_by_operation: BTreeMap<String, u64>,
}

/// One change.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangeDoc {
    /// The resource id, `provider/kind/key...`.
    pub id: String,
    /// create, update, delete, no-op or conflict.
    pub kind: ChangeKind,
    /// Why: missing, differs, drift, plan-changed, incomplete, adopt, left-plan,
    /// up-to-date or blocked.
    pub reason: Reason,
    /// The workload (`cluster/namespace/sa (file:line:col)`) or cluster the resource serves.
    pub group: String,
    /// The attributes that change.
    pub attributes: Vec<AttrDoc>,
}

/// One attribute's change.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AttrDoc {
    /// The attribute path.
    pub key: String,
    /// The live value; absent when unset.
    pub before: Option<Value>,
    /// The wanted value; absent when removed or not known until apply.
    pub after: Option<Value>,
    /// False when the value is only known after apply.
    pub after_known: bool,
}

/// Counts by kind.
#[derive(Debug, Default, Serialize, JsonSchema, PartialEq, Eq)]
pub struct Summary {
    /// Resources to create.
    pub create: usize,
    /// Resources to update.
    pub update: usize,
    /// Resources to delete.
    pub delete: usize,
    /// Resources already as planned.
    pub unchanged: usize,
    /// Resources wid refuses to touch.
    pub conflict: usize,
}

impl Summary {
    /// Counts the changes.
    pub fn of(changes: &[wid_core::Change]) -> Self {
        let mut s = Self::default();
        for c in changes {
            match c.kind {
                ChangeKind::Create => s.create += 1,
                ChangeKind::Update => s.update += 1,
                ChangeKind::Delete => s.delete += 1,
                ChangeKind::NoOp => s.unchanged += 1,
                ChangeKind::Conflict => s.conflict += 1,
            }
        }
        s
    }

    /// Whether anything would change.
    pub fn pending(&self) -> bool {
        self.create + self.update + self.delete > 0
    }
}

/// Builds the document.
pub fn plan_document(plan: &str, planned: &Planned, calls: &BTreeMap<String, u64>) -> PlanDocument {
    let changes = planned
        .changes
        .iter()
        .map(|c| ChangeDoc {
            id: c.id.to_string(),
            kind: c.kind,
            reason: c.reason.clone(),
            group: planned
                .desired
                .groups
                .get(&c.id)
                .map_or_else(|| "left the plan".into(), |g| g.to_string()),
            attributes: c
                .attr_changes()
                .map(|a| AttrDoc {
                    key: a.key.to_owned(),
                    before: a.before.cloned(),
                    after: a.after.and_then(|v| v.known().map(Cow::into_owned)),
                    after_known: !matches!(a.after, Some(AttrValue::Unknown { .. })),
                })
                .collect(),
        })
        .collect();
    PlanDocument {
        format_version: FORMAT_VERSION,
        plan: plan.to_owned(),
        changes,
        summary: Summary::of(&planned.changes),
        api_calls: calls.values().sum(),
        api_calls_by_operation: calls.clone(),
    }
}
