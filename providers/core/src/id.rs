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
/// An id is one string, its parts each ended by a 0 byte (`order`): equality, ordering
/// and hashing compare it whole, and the parts are read out of it. Comparing two ids is
/// one comparison of bytes rather than one per part, and an id is two allocations (a
/// plan of 10,000 workloads makes about 60,000 ids; as a provider, a kind and a vector
/// of key strings each id was seven).
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ResourceId(Arc<Parts>);

struct Parts {
    /// Provider, kind and key parts, each ended by a 0 byte, their own 0 and 1 bytes
    /// escaped (as 1 1 and 1 2): ordered as the parts are (provider, then kind, then the
    /// key part by part, a shorter key first), and equal only when they are.
    order: Box<str>,
    /// Where each part ends in `order` (at its 0 byte), for the first `cut` parts.
    ends: [u16; MAX_CUT],
    cut: u8,
    /// The parts as given, only when `order` cannot be cut into them: a part held a 0 or
    /// 1 byte (no name a cloud or Kubernetes accepts does), or there are more than
    /// [`MAX_CUT`] parts, or the id is longer than 65,535 bytes.
    spelled: Option<Box<[String]>>,
}

/// How many parts an id keeps as positions in `order`: wid's ids have two to eight
/// (provider, kind, up to six key parts).
const MAX_CUT: usize = 8;

/// How many key parts [`ResourceId::new`] holds without allocating.
const KEY_ON_STACK: usize = MAX_CUT - 2;

impl Parts {
    fn new<'a>(parts: impl Iterator<Item = &'a str> + Clone) -> Self {
        let len: usize = parts.clone().map(|p| p.len() + 1).sum();
        let mut order = String::with_capacity(len);
        let mut ends = [0u16; MAX_CUT];
        let mut cut = 0;
        let mut spelled = false;
        for part in parts.clone() {
            if part.bytes().all(|b| b > 1) {
                order.push_str(part);
            } else {
                spelled = true;
                for c in part.chars() {
                    match c {
                        '\0' => order.push_str("\u{1}\u{1}"),
                        '\u{1}' => order.push_str("\u{1}\u{2}"),
                        c => order.push(c),
                    }
                }
            }
            match (ends.get_mut(cut), u16::try_from(order.len())) {
                (Some(end), Ok(at)) => {
                    *end = at;
                    cut += 1;
                }
                _ => spelled = true,
            }
            order.push('\0');
        }
        Self {
            order: order.into_boxed_str(),
            ends,
            cut: u8::try_from(cut).unwrap_or_default(),
            spelled: spelled.then(|| parts.map(str::to_owned).collect()),
        }
    }

    /// Part `index`: 0 the provider, 1 the kind, then the key parts.
    fn part(&self, index: usize) -> Option<&str> {
        if let Some(parts) = &self.spelled {
            return parts.get(index).map(String::as_str);
        }
        let end = usize::from(*self.ends[..usize::from(self.cut)].get(index)?);
        let start = match index {
            0 => 0,
            i => usize::from(self.ends[i - 1]) + 1,
        };
        self.order.get(start..end)
    }

    /// How many parts there are.
    fn len(&self) -> usize {
        self.spelled
            .as_ref()
            .map_or(usize::from(self.cut), |parts| parts.len())
    }

    /// Every part, provider and kind first.
    fn all(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.part(i))
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
            .field("provider", &self.provider())
            .field("kind", &self.kind())
            .field("key", &self.key())
            .finish()
    }
}

impl ResourceId {
    /// Builds an id from its provider (`k8s`, `aws`), kind (`serviceaccount`) and key parts.
    pub fn new<K: AsRef<str>>(
        provider: impl AsRef<str>,
        kind: impl AsRef<str>,
        key: impl IntoIterator<Item = K>,
    ) -> Self {
        // The parts are read twice (their length, then their bytes): held on the stack
        // for the ids wid makes, in a vector beyond that.
        let mut key = key.into_iter();
        let mut held: [Option<K>; KEY_ON_STACK] = Default::default();
        for slot in &mut held {
            *slot = key.next();
        }
        let rest: Vec<K> = key.collect();
        let parts = [provider.as_ref(), kind.as_ref()]
            .into_iter()
            .chain(held.iter().flatten().chain(&rest).map(AsRef::as_ref));
        Self(Arc::new(Parts::new(parts)))
    }

    /// The provider prefix, e.g. `k8s` or `aws`.
    pub fn provider(&self) -> &str {
        self.0.part(0).unwrap_or_default()
    }

    /// The resource kind, e.g. `serviceaccount` or `iam-role`.
    pub fn kind(&self) -> &str {
        self.0.part(1).unwrap_or_default()
    }

    /// The key parts after the kind.
    pub fn key(&self) -> Vec<&str> {
        self.0.all().skip(2).collect()
    }

    /// How many key parts the id has (what [`key`](Self::key)`.len()` is, without
    /// collecting them).
    pub fn key_len(&self) -> usize {
        self.0.all().count().saturating_sub(2)
    }

    /// One key part by position, or "" when the id has fewer parts.
    pub fn part(&self, index: usize) -> &str {
        self.0.part(index + 2).unwrap_or_default()
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.all().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(part)?;
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
            (Some(p), Some(k)) => {
                let key = parts.next().map(|rest| rest.split('/'));
                let all = [p, k].into_iter().chain(key.into_iter().flatten());
                Ok(Self(Arc::new(Parts::new(all))))
            }
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
        // More parts than an id keeps positions for.
        ids.push(("a", "b", vec!["a"; 9]));
        ids.push(("a", "b", vec!["a", "b", "c", "d", "e", "f", "g"]));
        ids.push(("a", "b", vec!["a", "b", "c", "d", "e", "f", "g", "\0"]));
        let made: Vec<ResourceId> = ids
            .iter()
            .map(|(p, k, key)| ResourceId::new(*p, *k, key.iter().copied()))
            .collect();
        for ((provider, kind, key), id) in ids.iter().zip(&made) {
            assert_eq!(id.provider(), *provider);
            assert_eq!(id.kind(), *kind);
            assert_eq!(id.key(), *key);
            for (i, part) in key.iter().enumerate() {
                assert_eq!(id.part(i), *part);
            }
            assert_eq!(id.part(key.len()), "");
            // The text form names no empty kind; every other id reads back as itself.
            if !kind.is_empty() {
                let back = ResourceId::try_from(id.to_string()).expect("parses");
                assert_eq!(&back, id, "{id:?}");
            }
        }
        for (i, a) in ids.iter().enumerate() {
            for (j, b) in ids.iter().enumerate() {
                assert_eq!(made[i].cmp(&made[j]), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(made[i] == made[j], a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
