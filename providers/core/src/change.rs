//! Changes: the diff's output and the executor's input.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AttrValue, ObservedResource, Resource, ResourceId};

/// What a change does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The object does not exist; create it.
    Create,
    /// The object exists and some managed attribute differs (or it is being adopted).
    Update,
    /// The object carries this plan's mark but left the plan (`--prune` only).
    Delete,
    /// Nothing to do.
    NoOp,
    /// The object exists but wid may not touch it; apply refuses this change.
    Conflict,
}

/// Why a change is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum Reason {
    /// The object is missing.
    Missing,
    /// The live object differs from the plan, and the object does not say what wid last
    /// applied to it, so it cannot tell drift from a plan change.
    Differs,
    /// The object was changed behind wid's back: it differs from the plan wid last applied
    /// to it, and that plan has not changed since.
    Drift,
    /// The plan changed since wid last applied this object.
    PlanChanged,
    /// wid's last apply of this object stopped part-way (a call failed after others had
    /// changed it); applying again finishes it. Never reported as drift.
    Incomplete,
    /// An existing object without wid's mark is being taken over (`adopt = true`).
    Adopt,
    /// The object carries this plan's mark but is no longer in the plan.
    LeftPlan,
    /// Already as the plan says.
    UpToDate,
    /// Why wid refuses to touch it.
    Blocked(String),
}

/// One attribute's before and after.
///
/// Serialized exactly: an absent `before` means `None`, and a present `null` means a live
/// value that is JSON null, so a saved plan reads back equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttrChange {
    /// The attribute path.
    pub key: String,
    /// The live value; `None` when unset or the object is missing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_exact::present"
    )]
    pub before: Option<Value>,
    /// The wanted value; `None` when wid removes it.
    pub after: Option<AttrValue>,
}

/// One step of an apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    /// The resource.
    pub id: ResourceId,
    /// What to do.
    pub kind: ChangeKind,
    /// Why.
    pub reason: Reason,
    // Shared with the plan's resources, and `observed` with what observe returned.
    /// The wanted state (absent for deletes).
    pub desired: Option<Arc<Resource>>,
    /// The live state (absent for creates).
    pub observed: Option<Arc<ObservedResource>>,
    /// The attributes that differ, sorted by key (all of them for a create).
    pub attrs: Vec<AttrChange>,
}

impl Change {
    /// The resources this change waits for before it runs.
    pub fn depends_on(&self) -> &[ResourceId] {
        match (&self.desired, &self.observed) {
            (Some(d), _) => &d.depends_on,
            (None, Some(o)) => &o.depends_on,
            (None, None) => &[],
        }
    }

    /// The serialization key the change runs under: the desired resource's, or for a
    /// delete the live object's.
    pub fn serialize_key(&self) -> Option<&str> {
        self.desired
            .as_ref()
            .and_then(|d| d.serialize_key.as_deref())
            .or_else(|| self.observed.as_ref()?.serialize_key.as_deref())
    }

    /// A known desired attribute.
    pub fn desired_attr(&self, key: &str) -> Option<&Value> {
        self.desired.as_ref()?.attrs.get(key)?.known()
    }
}
