//! Properties of the one diff function, over generated plans and live states:
//! - applying the diff to the observed state gives the desired state (a second diff is
//!   all no-ops);
//! - desired against itself (as a provider would observe it) is empty;
//! - prune never selects an object without this plan's mark, nor one the plan wants;
//! - the order is deterministic: sorted by id, whatever the input order.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use wid_core::{
    AttrValue, Change, ChangeKind, Observed, ObservedAttrs, ObservedResource, Ownership, Resource,
    ResourceId, diff,
};

fn id(name: &str) -> ResourceId {
    ResourceId::new("t", "thing", [name])
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0i64..4).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::from),
        proptest::collection::vec(0i64..3, 0..3).prop_map(|v| json!(v)),
        proptest::collection::btree_map("[x-z]", 0i64..2, 0..3).prop_map(|m| json!(m)),
    ]
}

fn attrs() -> impl Strategy<Value = BTreeMap<String, Value>> {
    proptest::collection::btree_map("[k-n]", value(), 0..4)
}

/// Desired attributes, each held as a tree or (documents, as a provider may hold them)
/// as its text.
fn desired_attrs() -> impl Strategy<Value = BTreeMap<String, AttrValue>> {
    proptest::collection::btree_map("[k-n]", (value(), any::<bool>()), 0..4).prop_map(|m| {
        m.into_iter()
            .map(|(k, (v, as_text))| {
                let v = if as_text && (v.is_object() || v.is_array()) {
                    AttrValue::json(&v)
                } else {
                    AttrValue::Known(v)
                };
                (k, v)
            })
            .collect()
    })
}

/// Resources with distinct ids from a small set, so desired and observed overlap.
fn desired() -> impl Strategy<Value = Vec<Resource>> {
    proptest::collection::btree_map("[a-f]", desired_attrs(), 0..6).prop_map(|m| {
        m.into_iter()
            .map(|(name, attrs)| {
                let mut r = Resource::new(id(&name));
                for (k, v) in attrs {
                    r = r.attr(k, v);
                }
                r
            })
            .collect()
    })
}

fn ownership() -> impl Strategy<Value = Ownership> {
    prop_oneof![
        Just(Ownership::Ours),
        Just(Ownership::Unowned),
        Just(Ownership::OtherPlan("other".into())),
    ]
}

fn observed(ownership: impl Strategy<Value = Ownership>) -> impl Strategy<Value = Observed> {
    proptest::collection::btree_map("[a-h]", (attrs(), ownership), 0..8).prop_map(|m| {
        let mut o = Observed::default();
        for (name, (attrs, own)) in m {
            let mut live = ObservedResource::new(id(&name), own);
            live.attrs = attrs.into_iter().collect();
            o.insert(live);
        }
        o
    })
}

/// What a provider would observe after applying `changes` to `observed`.
fn apply(observed: &Observed, changes: &[Change]) -> Observed {
    let mut out = observed.clone();
    for c in changes {
        match c.kind {
            ChangeKind::Create => {
                let mut live = ObservedResource::new(c.id.clone(), Ownership::Ours);
                for a in c.owned_attr_changes() {
                    if let Some(v) = a.after.as_ref().and_then(AttrValue::known)
                        && !v.is_null()
                    {
                        live.attrs.insert(a.key.clone(), v.into_owned());
                    }
                }
                out.insert(live);
            }
            ChangeKind::Update => {
                let live = std::sync::Arc::make_mut(
                    out.resources
                        .get_mut(&c.id)
                        .expect("an update has a live object"),
                );
                live.ownership = Ownership::Ours;
                for a in c.owned_attr_changes() {
                    match a.after.as_ref().and_then(AttrValue::known) {
                        Some(v) if !v.is_null() => {
                            live.attrs.insert(a.key.clone(), v.into_owned());
                        }
                        _ => {
                            live.attrs.remove(&a.key);
                        }
                    }
                }
            }
            ChangeKind::Delete => {
                out.resources.remove(&c.id);
            }
            ChangeKind::NoOp | ChangeKind::Conflict => {}
        }
    }
    out
}

/// `desired` as a provider observes it once applied: owned, nulls absent.
fn as_observed(desired: &[Resource]) -> Observed {
    let mut o = Observed::default();
    for r in desired {
        let mut live = ObservedResource::new(r.id.clone(), Ownership::Ours);
        for (k, v) in &r.attrs {
            if let Some(v) = v.known().filter(|v| !v.is_null()) {
                live.attrs.insert(k.clone(), v.into_owned());
            }
        }
        o.insert(live);
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_the_diff_gives_the_desired_state(
        want in desired(),
        live in observed(Just(Ownership::Ours)),
        prune in any::<bool>(),
    ) {
        let changes = diff(&want, &live, prune);
        prop_assert!(changes.iter().all(|c| c.kind != ChangeKind::Conflict));
        let after = apply(&live, &changes);
        let again = diff(&want, &after, prune);
        prop_assert!(
            again.iter().all(|c| c.kind == ChangeKind::NoOp),
            "{:?}",
            again.iter().filter(|c| c.kind != ChangeKind::NoOp).collect::<Vec<_>>()
        );
        // A live null is an absent attribute, as the diff reads it.
        let present = |m: &ObservedAttrs| -> ObservedAttrs {
            m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for r in &want {
            let wanted = as_observed(std::slice::from_ref(r));
            prop_assert_eq!(present(&after.resources[&r.id].attrs), wanted.resources[&r.id].attrs.clone());
        }
    }

    #[test]
    fn desired_against_itself_is_empty(want in desired(), prune in any::<bool>()) {
        let changes = diff(&want, &as_observed(&want), prune);
        prop_assert!(changes.iter().all(|c| c.kind == ChangeKind::NoOp && c.attr_changes().next().is_none()));
        prop_assert_eq!(changes.len(), want.len());
    }

    #[test]
    fn prune_selects_only_objects_with_this_plans_mark(
        want in desired(),
        live in observed(ownership()),
    ) {
        for c in diff(&want, &live, true) {
            if c.kind == ChangeKind::Delete {
                let observed = c.observed.as_ref().expect("a delete has its live object");
                prop_assert_eq!(&observed.ownership, &Ownership::Ours);
                prop_assert!(!want.iter().any(|r| r.id == c.id), "{} is wanted", c.id);
            }
        }
        prop_assert!(diff(&want, &live, false).iter().all(|c| c.kind != ChangeKind::Delete));
    }

    #[test]
    fn the_order_is_deterministic(
        want in desired(),
        live in observed(ownership()),
        prune in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let first = diff(&want, &live, prune);
        prop_assert!(first.windows(2).all(|w| w[0].id < w[1].id));
        let mut shuffled = want.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.rotate_left(i as u32) as usize) % (i + 1);
            shuffled.swap(i, j);
        }
        let second = diff(&shuffled, &live, prune);
        prop_assert_eq!(format!("{first:?}"), format!("{second:?}"));
    }
}
