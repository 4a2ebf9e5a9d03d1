//! Changes: the diff's output and the executor's input.

use std::borrow::Cow;
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

/// One attribute's before and after, borrowed from its change: what
/// [`Change::attr_changes`] yields, and serialized exactly like an [`AttrChange`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AttrChangeRef<'a> {
    /// The attribute path.
    pub key: &'a str,
    /// The live value; `None` when unset or the object is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<&'a Value>,
    /// The wanted value; `None` when wid removes it.
    pub after: Option<&'a AttrValue>,
}

impl<'a> From<&'a AttrChange> for AttrChangeRef<'a> {
    fn from(a: &'a AttrChange) -> Self {
        AttrChangeRef {
            key: &a.key,
            before: a.before.as_ref(),
            after: a.after.as_ref(),
        }
    }
}

impl AttrChangeRef<'_> {
    /// An owned copy.
    pub fn to_owned(self) -> AttrChange {
        AttrChange {
            key: self.key.to_owned(),
            before: self.before.cloned(),
            after: self.after.cloned(),
        }
    }
}

// Serialized with every attribute change under `attrs`, a create's included, so a saved
// plan reads the same whatever holds them in memory.
/// One step of an apply.
#[derive(Debug, Clone, schemars::JsonSchema)]
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
    // In memory, a create made by the diff holds none: its attribute changes are its
    // desired attributes, which `attr_changes` reads without copying them.
    /// The attributes that differ, sorted by key (all of them for a create).
    #[schemars(with = "Vec<AttrChange>")]
    #[schemars(rename = "attrs")]
    pub changed: Vec<AttrChange>,
}

/// A change's fields as they are written and read.
#[derive(Serialize)]
struct ChangeOut<'a> {
    id: &'a ResourceId,
    kind: ChangeKind,
    reason: &'a Reason,
    desired: &'a Option<Arc<Resource>>,
    observed: &'a Option<Arc<ObservedResource>>,
    #[serde(serialize_with = "attr_seq")]
    attrs: &'a Change,
}

fn attr_seq<S: serde::Serializer>(change: &&Change, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(change.attr_changes())
}

#[derive(Deserialize)]
struct ChangeIn {
    id: ResourceId,
    kind: ChangeKind,
    reason: Reason,
    desired: Option<Arc<Resource>>,
    observed: Option<Arc<ObservedResource>>,
    attrs: Vec<AttrChange>,
}

/// Equal when they say the same: a create that lists its desired attributes equals one
/// that reads them from its desired resource.
impl PartialEq for Change {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.reason == other.reason
            && self.desired == other.desired
            && self.observed == other.observed
            && self.attr_changes().eq(other.attr_changes())
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ChangeOut {
            id: &self.id,
            kind: self.kind,
            reason: &self.reason,
            desired: &self.desired,
            observed: &self.observed,
            attrs: self,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let c = ChangeIn::deserialize(d)?;
        let mut change = Change {
            id: c.id,
            kind: c.kind,
            reason: c.reason,
            desired: c.desired,
            observed: c.observed,
            changed: Vec::new(),
        };
        // A create's attribute changes are its desired attributes; held once, as the diff
        // holds them, when they are exactly those.
        let derived = change.kind == ChangeKind::Create
            && change
                .attr_changes()
                .map(AttrChangeRef::to_owned)
                .eq(c.attrs.iter().cloned());
        if !derived {
            change.changed = c.attrs;
        }
        Ok(change)
    }
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

    /// The attributes that differ, sorted by key: `changed`, or for a create that holds
    /// none, every attribute of its desired resource (which it does not copy).
    pub fn attr_changes(&self) -> impl Iterator<Item = AttrChangeRef<'_>> {
        let derived = match (&self.desired, self.kind) {
            (Some(d), ChangeKind::Create) if self.changed.is_empty() => Some(d.attrs.iter()),
            _ => None,
        };
        self.changed
            .iter()
            .map(AttrChangeRef::from)
            .chain(
                derived
                    .into_iter()
                    .flatten()
                    .map(|(key, after)| AttrChangeRef {
                        key,
                        before: None,
                        after: Some(after),
                    }),
            )
    }

    /// [`attr_changes`](Self::attr_changes), copied.
    pub fn owned_attr_changes(&self) -> Vec<AttrChange> {
        self.attr_changes().map(AttrChangeRef::to_owned).collect()
    }

    /// Whether attribute `key` differs.
    pub fn changes_attr(&self, key: &str) -> bool {
        self.attr_changes().any(|a| a.key == key)
    }

    /// A known desired attribute: borrowed, or parsed from its text (see
    /// [`AttrValue::Json`]).
    pub fn desired_attr(&self, key: &str) -> Option<Cow<'_, Value>> {
        self.desired.as_ref()?.attrs.get(key)?.known()
    }

    /// A desired attribute that is a string.
    pub fn desired_str(&self, key: &str) -> Option<&str> {
        self.desired.as_ref()?.attrs.get(key)?.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Observed;

    #[test]
    fn a_create_lists_its_desired_attributes_without_copying_them() {
        let id = ResourceId::new("k8s", "serviceaccount", ["c", "ns", "a"]);
        let desired: Arc<Resource> = Resource::new(id).attr("b", 1).attr("a", "x").into();
        let changes = crate::diff(&[desired], &Observed::default(), false);
        let c = &changes[0];
        assert_eq!(c.kind, ChangeKind::Create);
        assert!(
            c.changed.is_empty(),
            "the diff copies nothing: {:?}",
            c.changed
        );
        let keys: Vec<&str> = c.attr_changes().map(|a| a.key).collect();
        assert_eq!(keys, ["a", "b"]);
        assert!(c.changes_attr("b") && !c.changes_attr("z"));

        // Written with every attribute, as an `AttrChange` list would be; read back equal.
        let text = serde_json::to_value(c).unwrap();
        assert_eq!(
            text["attrs"],
            serde_json::to_value(c.owned_attr_changes()).unwrap()
        );
        assert_eq!(text["attrs"][0]["key"], "a");
        let back: Change = serde_json::from_value(text).unwrap();
        assert_eq!(&back, c);
        assert!(back.changed.is_empty());
        let mut listed = c.clone();
        listed.changed = c.owned_attr_changes();
        assert_eq!(&listed, c, "the same change, however it holds them");

        // A create whose listed attributes are not its desired ones keeps its list.
        let mut odd = c.clone();
        odd.changed = vec![AttrChange {
            key: "z".into(),
            before: None,
            after: Some(AttrValue::Known(Value::Bool(true))),
        }];
        let back: Change = serde_json::from_value(serde_json::to_value(&odd).unwrap()).unwrap();
        assert_eq!(back, odd);
    }
}
