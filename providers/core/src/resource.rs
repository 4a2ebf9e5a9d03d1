//! Desired and observed resources: the two inputs of the diff.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AttrMap, JsonText, ResourceId};

/// One attribute of a desired resource: a value known now, or one that only exists after
/// a dependency is applied (an Azure identity's client id).
///
/// Serialized tagged (`{"known": VALUE}` or `{"unknown": {"from": ID, "output": NAME}}`):
/// an untagged form could not tell an unknown value from a known JSON object that has the
/// same two keys, and a saved plan must read back exactly as it was computed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AttrValue {
    /// A value known at plan time, in the provider's normalized form.
    Known(Value),
    /// A known value held as its compact text, as a provider keeps its large documents
    /// (an IAM role's policies): the same value as [`Known`](Self::Known) in every way but
    /// memory, equal to it, written as it (and so read back as it).
    #[serde(rename = "known", skip_deserializing)]
    #[schemars(skip)]
    Json(JsonText),
    /// Filled in by the executor from `output` of resource `from` once it is applied.
    Unknown {
        /// The resource whose output this is.
        from: ResourceId,
        /// The output's name in that resource's [`Outputs`](crate::Outputs).
        output: String,
    },
}

impl AttrValue {
    /// A known value to be held as its text (see [`AttrValue::Json`]).
    pub fn json(value: &Value) -> Self {
        Self::Json(JsonText::new(value))
    }

    /// The known value, if any: borrowed, or parsed from its text.
    pub fn known(&self) -> Option<Cow<'_, Value>> {
        match self {
            Self::Known(v) => Some(Cow::Borrowed(v)),
            Self::Json(text) => Some(Cow::Owned(text.value())),
            Self::Unknown { .. } => None,
        }
    }

    /// Whether the value is known and is JSON null (unset).
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Known(Value::Null))
    }

    /// The known value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Known(v) => v.as_str(),
            // Only documents are held as text; a string never is.
            Self::Json(_) | Self::Unknown { .. } => None,
        }
    }
}

/// A value held as text equals the same value held as a tree.
impl PartialEq for AttrValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Known(a), Self::Known(b)) => a == b,
            (Self::Json(a), Self::Json(b)) => a == b || a.value() == b.value(),
            (Self::Known(v), Self::Json(t)) | (Self::Json(t), Self::Known(v)) => t.equals(v),
            (
                Self::Unknown { from, output },
                Self::Unknown {
                    from: from_b,
                    output: output_b,
                },
            ) => from == from_b && output == output_b,
            _ => false,
        }
    }
}

impl<T: Into<Value>> From<T> for AttrValue {
    fn from(v: T) -> Self {
        Self::Known(v.into())
    }
}

/// Desired attributes, keyed by a flat attribute path (`automountServiceAccountToken`,
/// `annotations.eks.amazonaws.com/role-arn`, `trust_policy`).
pub type Attrs = AttrMap<AttrValue>;
/// Observed attributes, always known. A missing key means the field is unset.
pub type ObservedAttrs = AttrMap<Value>;

/// How much of an object wid manages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// wid creates, updates and (with prune) deletes it. An existing object without this
    /// plan's mark is a conflict unless the plan adopts it.
    #[default]
    Owned,
    /// Shared by plans (one IAM OIDC provider per account and issuer): created when
    /// missing, used as-is when it exists and matches, deleted only if this plan owns it.
    Shared,
    /// wid sets only the listed fields of an object it never owns (the `default` SA's
    /// automount flag): never created as wid's, never deleted, never marked.
    Fields,
}

/// Who the live object belongs to, read from its marks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "owner", content = "plan", rename_all = "kebab-case")]
pub enum Ownership {
    /// Marked with this plan's name.
    Ours,
    /// Marked by wid, for another plan.
    OtherPlan(String),
    /// No wid mark.
    Unowned,
}

/// One resource a plan wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Resource {
    /// What it is.
    pub id: ResourceId,
    /// Every attribute wid manages, normalized.
    pub attrs: Attrs,
    /// Resources that must exist before this one is created or updated.
    pub depends_on: Vec<ResourceId>,
    /// How much of it wid manages.
    pub mode: Mode,
    /// Take over an existing object that carries no wid mark.
    pub adopt: bool,
    /// The plan key that sets [`adopt`](Self::adopt) for this resource (`adopt`,
    /// `aws.adopt`), named in the conflict message of an object wid did not create;
    /// `None` when the plan cannot adopt it.
    pub adopt_key: Option<Cow<'static, str>>,
    /// Attributes that carry wid's ownership mark rather than anything the plan describes
    /// (an AWS role's description `Managed by wid (plan NAME)`, by which prune finds it):
    /// written whenever wid writes the object, but never by themselves a reason to write
    /// an object the plan adopts as it is.
    // Sorted, without repeats: a resource has one or none, and a set would allocate a
    // tree node for eleven.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "std::collections::BTreeSet<String>")]
    pub marks: Vec<String>,
    /// Changes with the same key run one after another (Azure allows one federated
    /// credential write per identity at a time).
    pub serialize_key: Option<String>,
    /// Where in the plan this resource comes from (`identities/payments.toml:12`), for
    /// messages.
    pub origin: Option<Arc<str>>,
}

impl Resource {
    /// An owned resource with no attributes yet.
    pub fn new(id: ResourceId) -> Self {
        Self {
            id,
            attrs: Attrs::new(),
            depends_on: Vec::new(),
            mode: Mode::Owned,
            adopt: false,
            adopt_key: None,
            marks: Vec::new(),
            serialize_key: None,
            origin: None,
        }
    }

    /// Sets one attribute.
    #[must_use]
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }

    /// Adds a dependency.
    #[must_use]
    pub fn depends_on(mut self, id: &ResourceId) -> Self {
        if !self.depends_on.contains(id) {
            self.depends_on.push(id.clone());
        }
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Lets the plan adopt the object when `adopt` is set, through the plan key `key`.
    #[must_use]
    pub fn adoptable(mut self, key: impl Into<Cow<'static, str>>, adopt: bool) -> Self {
        self.adopt_key = Some(key.into());
        self.adopt = adopt;
        self
    }

    /// Sets an attribute that is part of wid's mark (see [`Resource::marks`]).
    #[must_use]
    pub fn mark(mut self, key: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        let key = key.into();
        if let Err(i) = self.marks.binary_search(&key) {
            self.marks.reserve_exact(1);
            self.marks.insert(i, key.clone());
        }
        self.attrs.insert(key, value.into());
        self
    }

    /// A known attribute as a string.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key)?.as_str()
    }
}

/// The live state of one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObservedResource {
    /// What it is.
    pub id: ResourceId,
    /// The attributes wid manages, normalized exactly as the provider's compile step
    /// writes them, plus attributes wid set earlier but no longer wants (so their removal
    /// shows in the diff).
    pub attrs: ObservedAttrs,
    /// Who owns it.
    pub ownership: Ownership,
    /// What it depends on, when known; deletes run in the reverse order.
    pub depends_on: Vec<ResourceId>,
    /// The record wid left on the object (the [`APPLIED_KEY`](crate::APPLIED_KEY)
    /// annotation or tag) when it last applied it, as stored: an [`applied_hash`], or an
    /// incomplete one (see [`AppliedRecord`]). With it the diff tells drift (the live
    /// object changed since wid applied this same plan) from a plan change and from wid's
    /// own unfinished apply.
    pub applied: Option<String>,
    /// What the live object hands its dependents, as [`Provider::apply`](crate::Provider::apply)
    /// would return it (an Azure identity's `client_id`): the diff fills a dependent's
    /// [`AttrValue::Unknown`] from it, so only what does not exist yet shows as "known
    /// after apply".
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outputs: crate::Outputs,
    /// The [`Resource::serialize_key`] of the object, for a delete (which has no desired
    /// side): deleting two federated credentials of one Azure identity at once fails
    /// just as creating them does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serialize_key: Option<String>,
}

impl ObservedResource {
    /// A live object with no attributes yet.
    pub fn new(id: ResourceId, ownership: Ownership) -> Self {
        Self {
            id,
            attrs: ObservedAttrs::new(),
            ownership,
            depends_on: Vec::new(),
            applied: None,
            outputs: crate::Outputs::new(),
            serialize_key: None,
        }
    }
}

/// What an object's [`APPLIED_KEY`](crate::APPLIED_KEY) record says about wid's last
/// apply of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliedRecord {
    /// wid finished applying the attributes whose [`applied_hash`] this is.
    Complete(String),
    /// wid started applying the attributes whose hash this is and did not finish (a call
    /// failed after others had changed the object). The next plan says "incomplete
    /// apply", never drift.
    Incomplete(String),
}

impl AppliedRecord {
    const INCOMPLETE: &'static str = "incomplete:";

    /// Reads a record as stored on an object.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix(Self::INCOMPLETE) {
            Some(hash) => Self::Incomplete(hash.to_owned()),
            None => Self::Complete(text.to_owned()),
        }
    }

    /// The text to store on the object.
    pub fn to_text(&self) -> String {
        match self {
            Self::Complete(hash) => hash.clone(),
            Self::Incomplete(hash) => format!("{}{hash}", Self::INCOMPLETE),
        }
    }

    /// The hash, complete or not.
    pub fn hash(&self) -> &str {
        match self {
            Self::Complete(h) | Self::Incomplete(h) => h,
        }
    }
}

/// A short, stable fingerprint of the attributes wid applies, recorded on the object so a
/// later plan can tell drift from a plan change without any state file. `None` while an
/// attribute is still unknown.
///
/// FNV-1a (64 bit) over the canonical JSON of the sorted attributes: collisions only blur
/// the drift/plan-change label, never what is applied.
pub fn applied_hash(attrs: &Attrs) -> Option<String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in attrs {
        // A value held as text is the text its value writes, so either hashes the same.
        let text = match value {
            AttrValue::Known(v) => Cow::Owned(v.to_string()),
            AttrValue::Json(text) => Cow::Borrowed(text.as_str()),
            AttrValue::Unknown { .. } => return None,
        };
        for byte in key.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Some(format!("{hash:016x}"))
}

/// What a provider saw: the live state of every wanted id that exists, and every object
/// that carries this plan's mark (so prune can find what left the plan).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Live objects by id. A wanted id that is absent here does not exist. Shared with
    /// the changes that describe them.
    pub resources: BTreeMap<ResourceId, Arc<ObservedResource>>,
    /// Problems found while observing that are not errors of the call (a namespace the
    /// plan needs that does not exist): each one blocks its resource.
    pub blockers: BTreeMap<ResourceId, String>,
}

impl Observed {
    /// Records one live object.
    pub fn insert(&mut self, resource: ObservedResource) {
        self.resources
            .insert(resource.id.clone(), Arc::new(resource));
    }

    /// Merges another provider's or call's observations.
    pub fn extend(&mut self, other: Observed) {
        self.resources.extend(other.resources);
        self.blockers.extend(other.blockers);
    }
}

/// The Kubernetes side of one workload, as cloud providers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadRef {
    /// The plan's cluster name.
    pub cluster: String,
    /// The KSA's namespace.
    pub namespace: String,
    /// The KSA's name.
    pub service_account: String,
}

impl WorkloadRef {
    /// The id of the KSA resource for this workload.
    pub fn ksa_id(&self) -> ResourceId {
        ResourceId::new(
            "k8s",
            "serviceaccount",
            [
                self.cluster.as_str(),
                self.namespace.as_str(),
                self.service_account.as_str(),
            ],
        )
    }

    /// `system:serviceaccount:NS:KSA`, the subject every cloud federates on.
    pub fn subject(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }
}

/// What a cloud provider's compile step adds for one workload: its own resources, and the
/// annotations it needs on the KSA (with the ids the KSA must then wait for).
#[derive(Debug, Clone, Default)]
pub struct Contribution {
    /// Cloud resources (roles, policies, associations).
    pub resources: Vec<Resource>,
    /// KSA annotations, e.g. `eks.amazonaws.com/role-arn`.
    pub ksa_annotations: Attrs,
    /// Resources the KSA depends on (the role its annotation names).
    pub ksa_depends_on: Vec<ResourceId>,
}
