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
///
/// Equality, ordering and hashing use one byte string made when the id is (`order`), so
/// comparing two ids is one comparison of bytes rather than one per part: sorting and
/// looking up 25,000 ids of a large plan compared their parts a string at a time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ResourceId(Arc<Parts>);

#[derive(Debug)]
struct Parts {
    provider: String,
    kind: String,
    key: Vec<String>,
    /// Provider, kind and key parts, each ended by a 0 byte, their own 0 and 1 bytes
    /// escaped (as 1 1 and 1 2): ordered as the parts are (provider, then kind, then the
    /// key part by part, a shorter key first), and equal only when they are.
    order: Box<[u8]>,
}

impl Parts {
    fn new(provider: String, kind: String, key: Vec<String>) -> Self {
        let len = provider.len() + kind.len() + key.iter().map(|k| k.len() + 1).sum::<usize>();
        let mut order = Vec::with_capacity(len + 2);
        for part in [&provider, &kind].into_iter().chain(&key) {
            let bytes = part.as_bytes();
            if bytes.iter().all(|&b| b > 1) {
                order.extend_from_slice(bytes);
            } else {
                for &b in bytes {
                    match b {
                        0 | 1 => order.extend_from_slice(&[1, b + 1]),
                        _ => order.push(b),
                    }
                }
            }
            order.push(0);
        }
        Self {
            provider,
            kind,
            key,
            order: order.into_boxed_slice(),
        }
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.order == other.0.order
    }
}

impl Eq for ResourceId {}

impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ResourceId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.order.cmp(&other.0.order)
    }
}

impl std::hash::Hash for ResourceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.order.hash(state);
    }
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
        Self(Arc::new(Parts::new(
            provider.into(),
            kind.into(),
            key.into_iter().map(Into::into).collect(),
        )))
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
            (Some(p), Some(k)) => Ok(Self(Arc::new(Parts::new(
                p.to_owned(),
                k.to_owned(),
                parts
                    .next()
                    .map(|rest| rest.split('/').map(str::to_owned).collect())
                    .unwrap_or_default(),
            )))),
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

    /// The byte string ids compare by orders them exactly as their parts, and equals
    /// only what has equal parts: on every id made of a few awkward parts (prefixes, the
    /// escaped bytes, a separator inside a part).
    #[test]
    fn ids_compare_as_their_parts_do() {
        let pieces = [
            "",
            "a",
            "ab",
            "a-b",
            "b",
            "a\0",
            "\0",
            "\u{1}",
            "\u{1}\u{2}",
            "\u{2}",
        ];
        let mut ids = Vec::new();
        for provider in ["a", "a\0"] {
            for kind in ["", "b"] {
                ids.push((provider, kind, Vec::new()));
                for x in pieces {
                    ids.push((provider, kind, vec![x]));
                    for y in pieces {
                        ids.push((provider, kind, vec![x, y]));
                    }
                }
            }
        }
        let made: Vec<ResourceId> = ids
            .iter()
            .map(|(p, k, key)| ResourceId::new(*p, *k, key.iter().copied()))
            .collect();
        for (i, a) in ids.iter().enumerate() {
            for (j, b) in ids.iter().enumerate() {
                assert_eq!(made[i].cmp(&made[j]), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(made[i] == made[j], a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
