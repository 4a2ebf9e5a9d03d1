//! The resource kinds this provider manages: their id shapes, API types, and the one
//! function that builds the object wid sends for a resource (used by apply and render).

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::ApiResource;
use serde_json::{Map, Value, json};
use wid_core::{
    APPLIED_KEY, ErrorKind, MANAGED_BY_KEY, MANAGED_BY_VALUE, Mode, PLAN_KEY, ProviderError,
    Resource, ResourceId, applied_hash,
};

/// `k8s/namespace/CLUSTER/NS`.
pub const NAMESPACE: &str = "namespace";
/// `k8s/serviceaccount/CLUSTER/NS/NAME`.
pub const SERVICEACCOUNT: &str = "serviceaccount";
/// `k8s/role/CLUSTER/NS/wid-KSA`.
pub const ROLE: &str = "role";
/// `k8s/rolebinding/CLUSTER/NS/wid-KSA`.
pub const ROLEBINDING: &str = "rolebinding";
/// `k8s/default-serviceaccount/CLUSTER/NS`: the automount flag of the SA named `default`.
pub const DEFAULT_SA: &str = "default-serviceaccount";
/// The ServiceAccount attribute that turns token automounting on or off.
pub const AUTOMOUNT: &str = "automountServiceAccountToken";

/// One Kubernetes API type wid reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Namespace,
    ServiceAccount,
    Role,
    RoleBinding,
}

impl Kind {
    /// Every kind that carries wid's ownership marks and may be pruned.
    pub(crate) const PRUNABLE: [Kind; 3] = [Kind::ServiceAccount, Kind::Role, Kind::RoleBinding];

    /// The URL plural, also used in call counts and permission hints.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Self::Namespace => "namespaces",
            Self::ServiceAccount => "serviceaccounts",
            Self::Role => "roles",
            Self::RoleBinding => "rolebindings",
        }
    }

    pub(crate) fn api_resource(self) -> ApiResource {
        match self {
            Self::Namespace => ApiResource::erase::<Namespace>(&()),
            Self::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
            Self::Role => ApiResource::erase::<Role>(&()),
            Self::RoleBinding => ApiResource::erase::<RoleBinding>(&()),
        }
    }

    pub(crate) fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Self::Namespace => ("v1", "Namespace"),
            Self::ServiceAccount => ("v1", "ServiceAccount"),
            Self::Role => ("rbac.authorization.k8s.io/v1", "Role"),
            Self::RoleBinding => ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        }
    }
}

/// Where a resource id lives in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub kind: Kind,
    pub cluster: String,
    /// `None` for namespaces (cluster-scoped).
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// The id's API object, or `None` when the id is not one of this provider's shapes.
    pub(crate) fn of(id: &ResourceId) -> Option<Self> {
        let (kind, cluster, namespace, name) = Self::parts(id)?;
        Some(Self {
            kind,
            cluster: cluster.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// The kind, cluster and namespace of the id's object (`None` for a namespace, which
    /// is cluster-scoped), borrowed from the id: what decides the LIST that reads it.
    /// `None` when the id is not one of this provider's shapes, as for [`of`](Self::of).
    pub(crate) fn list_key(id: &ResourceId) -> Option<(Kind, &str, Option<&str>)> {
        Self::parts(id).map(|(kind, cluster, namespace, _)| (kind, cluster, namespace))
    }

    /// Kind, cluster, namespace and name of the id's object, borrowed from the id: the
    /// id shapes this provider serves, in one place.
    fn parts(id: &ResourceId) -> Option<(Kind, &str, Option<&str>, &str)> {
        let in_namespace = |kind, name| Some((kind, id.part(0), Some(id.part(1)), name));
        match (id.kind(), id.key_len()) {
            (NAMESPACE, 2) => Some((Kind::Namespace, id.part(0), None, id.part(1))),
            (SERVICEACCOUNT, 3) => in_namespace(Kind::ServiceAccount, id.part(2)),
            (ROLE, 3) => in_namespace(Kind::Role, id.part(2)),
            (ROLEBINDING, 3) => in_namespace(Kind::RoleBinding, id.part(2)),
            (DEFAULT_SA, 2) => in_namespace(Kind::ServiceAccount, "default"),
            _ => None,
        }
    }

    /// `production/orders` or `production` for messages.
    pub(crate) fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The object wid sends for `resource`: apiVersion, kind, name, namespace, wid's labels
/// and annotations (plus, unless the mode is [`Mode::Fields`], the ownership marks and the
/// [`APPLIED_KEY`] annotation recording the [`applied_hash`] of the attributes) and the
/// attribute fields, and nothing else, so that server-side apply gives wid ownership of
/// exactly these fields and drops the ones wid applied before but no longer sends.
///
/// An unknown attribute is an error: the executor fills them in before apply, and render
/// cannot know them.
pub(crate) fn build(resource: &Resource, plan: &str) -> Result<Value, ProviderError> {
    let id = &resource.id;
    let target = Target::of(id).ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Invalid,
            format!("{id} is not a kubernetes resource wid manages"),
        )
        .with_resource(id)
    })?;
    let (api_version, kind) = target.kind.type_meta();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut fields = Map::new();
    for (key, value) in &resource.attrs {
        let Some(value) = value.known() else {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!("{id} has attribute {key} whose value is only known after apply"),
            )
            .with_resource(id)
            .with_hint("apply the plan, or render after the cloud resources exist"));
        };
        // A null value means "unset": omitting the field makes SSA remove it if wid owned it.
        if value.is_null() {
            continue;
        }
        if let Some(k) = key.strip_prefix("labels.") {
            labels.insert(k.to_owned(), value.into_owned());
        } else if let Some(k) = key.strip_prefix("annotations.") {
            annotations.insert(k.to_owned(), value.into_owned());
        } else {
            fields.insert(key.clone(), value.into_owned());
        }
    }
    if resource.mode != Mode::Fields {
        labels.insert(MANAGED_BY_KEY.into(), json!(MANAGED_BY_VALUE));
        labels.insert(PLAN_KEY.into(), json!(plan));
        // The record rides in the same apply (no extra call) and in rendered manifests, so
        // the next plan tells drift from a plan change whoever applied the object. Never on
        // `Fields` objects: wid does not own them, and the record would be someone else's.
        if let Some(hash) = applied_hash(&resource.attrs) {
            annotations.insert(APPLIED_KEY.into(), json!(hash));
        }
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(target.name));
    if let Some(ns) = &target.namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    object.insert("metadata".into(), Value::Object(metadata));
    object.extend(fields);
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wid_core::AttrValue;

    #[test]
    fn ids_map_to_api_objects() {
        let t = Target::of(&ResourceId::new("k8s", DEFAULT_SA, ["c", "ns"])).unwrap();
        assert_eq!(
            (t.kind, t.name.as_str(), t.display()),
            (Kind::ServiceAccount, "default", "ns/default".to_owned())
        );
        let n = Target::of(&ResourceId::new("k8s", NAMESPACE, ["c", "ns"])).unwrap();
        assert_eq!((n.kind, n.namespace), (Kind::Namespace, None));
        assert!(Target::of(&ResourceId::new("k8s", ROLE, ["c", "ns"])).is_none());
        assert!(Target::of(&ResourceId::new("k8s", "pod", ["c", "ns", "p"])).is_none());
    }

    #[test]
    fn an_owned_serviceaccount_carries_marks_labels_annotations_and_fields() {
        let r = Resource::new(ResourceId::new(
            "k8s",
            SERVICEACCOUNT,
            ["c", "prod", "orders"],
        ))
        .attr(AUTOMOUNT, false)
        .attr("labels.team", "payments")
        .attr(
            "annotations.eks.amazonaws.com/role-arn",
            "arn:aws:iam::1:role/x",
        )
        .attr("annotations.gone", Value::Null);
        let body = build(&r, "payments").unwrap();
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": "orders",
                    "namespace": "prod",
                    "labels": {"team": "payments", MANAGED_BY_KEY: "wid", PLAN_KEY: "payments"},
                    "annotations": {
                        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x",
                        APPLIED_KEY: applied_hash(&r.attrs).unwrap()
                    }
                },
                "automountServiceAccountToken": false
            })
        );
    }

    #[test]
    fn the_record_follows_the_attributes_not_the_plan_name() {
        let id = ResourceId::new("k8s", ROLE, ["c", "prod", "wid-orders"]);
        let r = Resource::new(id).attr("rules", json!([]));
        let record = |r: &Resource, plan| {
            build(r, plan).unwrap()["metadata"]["annotations"][APPLIED_KEY].clone()
        };
        assert_eq!(record(&r, "a"), json!(applied_hash(&r.attrs).unwrap()));
        assert_eq!(record(&r, "a"), record(&r, "b"));
        assert_ne!(
            record(&r, "a"),
            record(&r.clone().attr("rules", json!([{}])), "a")
        );
    }

    #[test]
    fn a_shared_namespace_without_attributes_still_carries_the_record() {
        let r = Resource::new(ResourceId::new("k8s", NAMESPACE, ["c", "prod"])).mode(Mode::Shared);
        let body = build(&r, "p").unwrap();
        assert_eq!(
            body["metadata"]["annotations"][APPLIED_KEY],
            json!(applied_hash(&r.attrs).unwrap())
        );
        assert_eq!(body["metadata"]["labels"][PLAN_KEY], "p");
    }

    #[test]
    fn fields_mode_sends_no_marks() {
        let r = Resource::new(ResourceId::new("k8s", DEFAULT_SA, ["c", "prod"]))
            .attr(AUTOMOUNT, false)
            .mode(Mode::Fields);
        assert_eq!(
            build(&r, "p").unwrap(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "default", "namespace": "prod"},
                   "automountServiceAccountToken": false})
        );
    }

    #[test]
    fn unknown_values_are_refused_naming_the_resource() {
        let id = ResourceId::new("k8s", SERVICEACCOUNT, ["c", "prod", "orders"]);
        let r = Resource::new(id.clone()).attr(
            "annotations.x",
            AttrValue::Unknown {
                from: ResourceId::new("aws", "iam-role", ["1", "r"]),
                output: "arn".into(),
            },
        );
        let err = build(&r, "p").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.resource, Some(id));
        assert!(err.message().contains("annotations.x"));
    }
}
