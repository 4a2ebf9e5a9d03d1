//! Resource ids: what a resource is, stable across runs.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Identifies one managed object: the provider, its kind and a key unique within the kind.
///
/// The `Display` form (`aws/iam-role/111122223333/orders-prod`,
/// `k8s/serviceaccount/eks-prod/production/orders`) is stable and is what users see in
/// plans, reports and JSON. Ordering is by provider, kind, then key, so every collection
/// of ids prints in the same order on every run.
///
/// An id is shared: a clone (a dependency, a map key, a group label's key) is a reference
/// count, not a copy of its parts, since a plan of 10,000 workloads names each of its
/// 25,000 resources several times over.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ResourceId(Arc<Parts>);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Parts {
    provider: String,
    kind: String,
    key: Vec<String>,
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceId")
            .field("provider", &self.0.provider)
            .field("kind", &self.0.kind)
            .field("key", &self.0.key)
            .finish()
    }
}

impl ResourceId {
    /// Builds an id from its provider (`k8s`, `aws`), kind (`serviceaccount`) and key parts.
    pub fn new(
        provider: impl Into<String>,
        kind: impl Into<String>,
        key: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self(Arc::new(Parts {
            provider: provider.into(),
            kind: kind.into(),
            key: key.into_iter().map(Into::into).collect(),
        }))
    }

    /// The provider prefix, e.g. `k8s` or `aws`.
    pub fn provider(&self) -> &str {
        &self.0.provider
    }

    /// The resource kind, e.g. `serviceaccount` or `iam-role`.
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The key parts after the kind.
    pub fn key(&self) -> &[String] {
        &self.0.key
    }

    /// One key part by position, or "" when the id has fewer parts.
    pub fn part(&self, index: usize) -> &str {
        self.0.key.get(index).map_or("", String::as_str)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.provider, self.0.kind)?;
        for part in &self.0.key {
            write!(f, "/{part}")?;
        }
        Ok(())
    }
}

impl From<ResourceId> for String {
    fn from(id: ResourceId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for ResourceId {
    type Error = String;

    /// Parses the `Display` form. Key parts never contain `/` except the last, which may
    /// (an OIDC issuer host and path), so everything after the kind's slash count is kept
    /// in order.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let mut parts = value.splitn(3, '/');
        let provider = parts.next().filter(|s| !s.is_empty());
        let kind = parts.next().filter(|s| !s.is_empty());
        match (provider, kind) {
            (Some(p), Some(k)) => Ok(Self(Arc::new(Parts {
                provider: p.to_owned(),
                kind: k.to_owned(),
                key: parts
                    .next()
                    .map(|rest| rest.split('/').map(str::to_owned).collect())
                    .unwrap_or_default(),
            }))),
            _ => Err(format!("not a resource id: {value:?}")),
        }
    }
}

impl schemars::JsonSchema for ResourceId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ResourceId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "provider/kind/key..., e.g. k8s/serviceaccount/eks-prod/production/orders"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = ResourceId::new("k8s", "serviceaccount", ["c", "ns", "sa"]);
        assert_eq!(id.to_string(), "k8s/serviceaccount/c/ns/sa");
        assert_eq!(ResourceId::try_from(id.to_string()).unwrap(), id);
    }

    #[test]
    fn order_is_provider_kind_key() {
        let a = ResourceId::new("aws", "iam-role", ["1", "z"]);
        let b = ResourceId::new("k8s", "namespace", ["a"]);
        let c = ResourceId::new("k8s", "serviceaccount", ["a", "b", "c"]);
        let mut v = vec![c.clone(), b.clone(), a.clone()];
        v.sort();
        assert_eq!(v, vec![a, b, c]);
    }
}
