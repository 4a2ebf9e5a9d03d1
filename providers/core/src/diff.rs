//! The diff: one pure function from desired and observed resources to changes.
//!
//! Providers normalize what they read so that values compare exactly; the diff then only
//! compares what wid manages, decides ownership conflicts, and lists deletes for prune.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::{
    AppliedRecord, AttrChange, AttrValue, Change, ChangeKind, Mode, Observed, ObservedResource,
    Ownership, Reason, Resource, ResourceId,
};

/// A desired resource as the diff takes it: a plan's shared resource, which every change
/// about it shares, or a lone one, copied once into its change.
pub trait Wanted: Borrow<Resource> {
    /// The resource as its change holds it.
    fn share(&self) -> Arc<Resource>;
}

impl Wanted for Arc<Resource> {
    fn share(&self) -> Arc<Resource> {
        Arc::clone(self)
    }
}

impl Wanted for Resource {
    fn share(&self) -> Arc<Resource> {
        Arc::new(self.clone())
    }
}

/// Diffs every desired resource against its live state, and (with `prune`) lists a delete
/// for each observed object owned by this plan that the plan no longer has.
///
/// The result is sorted by id. Resources with a blocker become conflicts. An unknown
/// attribute whose source object exists is filled from that object's observed outputs
/// first, so it compares (and shows) as the real value.
pub fn diff<W: Wanted>(desired: &[W], observed: &Observed, prune: bool) -> Vec<Change> {
    let mut changes: Vec<Change> = desired
        .iter()
        .map(|r| {
            let want = match resolve_observed(r.borrow(), observed) {
                Cow::Borrowed(_) => r.share(),
                Cow::Owned(filled) => Arc::new(filled),
            };
            let id = &want.id;
            diff_one(
                &want,
                observed,
                observed.resources.get(id),
                observed.blockers.get(id),
            )
        })
        .collect();
    if prune {
        let wanted: BTreeSet<&ResourceId> = desired.iter().map(|r| &r.borrow().id).collect();
        for (id, live) in &observed.resources {
            if !wanted.contains(id) && live.ownership == Ownership::Ours {
                changes.push(Change {
                    id: id.clone(),
                    kind: ChangeKind::Delete,
                    reason: Reason::LeftPlan,
                    desired: None,
                    observed: Some(Arc::clone(live)),
                    changed: live
                        .attrs
                        .iter()
                        .map(|(k, v)| AttrChange {
                            key: k.clone(),
                            before: Some(v.clone()),
                            after: None,
                        })
                        .collect(),
                });
            }
        }
    }
    // A plan's resources come sorted; only a prune's deletes (or a caller's own order)
    // need the sort.
    if !changes.is_sorted_by(|a, b| a.id <= b.id) {
        changes.sort_by(|a, b| a.id.cmp(&b.id));
    }
    changes
}

/// `desired` with every unknown attribute whose source exists filled from the source's
/// observed outputs; borrowed as it is when there is nothing to fill (nearly always).
pub fn resolve_observed<'a>(desired: &'a Resource, observed: &Observed) -> Cow<'a, Resource> {
    let output_of = |value: &AttrValue| match value {
        AttrValue::Unknown { from, output } => observed
            .resources
            .get(from)
            .and_then(|o| o.outputs.get(output.as_str())),
        AttrValue::Known(_) | AttrValue::Json(_) => None,
    };
    if !desired.attrs.values().any(|v| output_of(v).is_some()) {
        return Cow::Borrowed(desired);
    }
    let mut out = desired.clone();
    for value in out.attrs.values_mut() {
        if let Some(v) = output_of(value) {
            *value = AttrValue::Known(Value::String(v.clone()));
        }
    }
    Cow::Owned(out)
}

fn diff_one(
    shared: &Arc<Resource>,
    observed: &Observed,
    live: Option<&Arc<ObservedResource>>,
    blocker: Option<&String>,
) -> Change {
    let desired: &Resource = shared;
    let change = |kind, reason, changed| Change {
        id: desired.id.clone(),
        kind,
        reason,
        desired: Some(Arc::clone(shared)),
        observed: live.cloned(),
        changed,
    };
    if let Some(why) = blocker {
        return change(
            ChangeKind::Conflict,
            Reason::Blocked(why.clone()),
            Vec::new(),
        );
    }
    let Some(live) = live else {
        // Every desired attribute, read from the desired resource (`attr_changes`).
        return change(ChangeKind::Create, Reason::Missing, Vec::new());
    };
    let attrs = attr_changes(desired, live, observed);
    let adopting = match (&live.ownership, desired.mode) {
        (Ownership::Ours, _) | (_, Mode::Fields) => false,
        (Ownership::Unowned, Mode::Owned) if desired.adopt => true,
        (Ownership::OtherPlan(plan), Mode::Owned) => {
            let why = format!(
                "{} exists and belongs to wid plan {plan:?}; remove it from that plan first",
                desired.id
            );
            return change(ChangeKind::Conflict, Reason::Blocked(why), attrs);
        }
        (Ownership::Unowned, Mode::Owned) => {
            let why = match (&desired.adopt_key, &desired.origin) {
                (Some(key), Some(origin)) => format!(
                    "{} exists but was not created by wid; set `{key} = true` in workload {origin} to take it over",
                    desired.id
                ),
                (Some(key), None) => format!(
                    "{} exists but was not created by wid; set `{key} = true` on the workload to take it over",
                    desired.id
                ),
                (None, _) => format!(
                    "{} exists but was not created by wid, and the plan has no way to take it over",
                    desired.id
                ),
            };
            return change(ChangeKind::Conflict, Reason::Blocked(why), attrs);
        }
        (_, Mode::Shared) if attrs.is_empty() => false,
        (_, Mode::Shared) => {
            let keys: Vec<&str> = attrs.iter().map(|a| a.key.as_str()).collect();
            let why = format!(
                "{} exists, is not owned by this plan, and differs in {}",
                desired.id,
                keys.join(", ")
            );
            return change(ChangeKind::Conflict, Reason::Blocked(why), attrs);
        }
    };
    let record = live.applied.as_deref().map(AppliedRecord::parse);
    if adopting && attrs.iter().all(|a| desired.marks.contains(&a.key)) {
        // Adopting an object that is already as the plan says is no change: wid uses it
        // as it is, unmarked, and marks it with the first apply that has to change it.
        // So a plan that describes existing objects exactly (`wid import`) writes nothing.
        change(ChangeKind::NoOp, Reason::UpToDate, Vec::new())
    } else if adopting {
        change(ChangeKind::Update, Reason::Adopt, attrs)
    } else if matches!(record, Some(AppliedRecord::Incomplete(_))) {
        // Even when every attribute already matches (the failing call was the last one),
        // the apply is finished only once the record says so: otherwise later drift
        // would be labelled an incomplete apply for ever.
        change(ChangeKind::Update, Reason::Incomplete, attrs)
    } else if attrs.is_empty() {
        change(ChangeKind::NoOp, Reason::UpToDate, attrs)
    } else {
        let reason = match (record, crate::applied_hash(&desired.attrs)) {
            (Some(AppliedRecord::Complete(recorded)), Some(wanted)) if recorded == wanted => {
                Reason::Drift
            }
            (Some(_), Some(_)) => Reason::PlanChanged,
            _ => Reason::Differs,
        };
        change(ChangeKind::Update, reason, attrs)
    }
}

/// Attribute differences: every desired attribute whose live value differs, and every
/// live attribute wid set earlier that the plan no longer has. An unknown value (its
/// source's outputs could not fill it) differs from a missing one, and from any value
/// when its source does not exist yet (a recreated Azure identity gets a new client id);
/// when the source exists but names no such output it is assumed unchanged.
fn attr_changes(
    desired: &Resource,
    live: &ObservedResource,
    observed: &Observed,
) -> Vec<AttrChange> {
    let mut out = Vec::new();
    for (key, want) in &desired.attrs {
        let have = live.attrs.get(key).filter(|v| !v.is_null());
        let differs = match want {
            AttrValue::Known(Value::Null) => have.is_some(),
            AttrValue::Known(v) => have != Some(v),
            AttrValue::Json(text) => !have.is_some_and(|v| text.equals(v)),
            AttrValue::Unknown { from, .. } => {
                have.is_none() || !observed.resources.contains_key(from)
            }
        };
        if differs {
            out.push(AttrChange {
                key: key.clone(),
                before: have.cloned(),
                after: Some(want.clone()),
            });
        }
    }
    for (key, have) in &live.attrs {
        if !desired.attrs.contains_key(key) && !have.is_null() {
            out.push(AttrChange {
                key: key.clone(),
                before: Some(have.clone()),
                after: None,
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sa(name: &str) -> ResourceId {
        ResourceId::new("k8s", "serviceaccount", ["c", "ns", name])
    }

    fn live(id: ResourceId, ownership: Ownership, attrs: &[(&str, Value)]) -> ObservedResource {
        let mut o = ObservedResource::new(id, ownership);
        for (k, v) in attrs {
            o.attrs.insert((*k).into(), v.clone());
        }
        o
    }

    fn observed(items: Vec<ObservedResource>) -> Observed {
        let mut o = Observed::default();
        for i in items {
            o.insert(i);
        }
        o
    }

    #[test]
    fn unknown_values_come_from_the_observed_outputs_of_their_source() {
        let role = ResourceId::new("azure", "managed-identity", ["s", "rg", "orders"]);
        let want = Resource::new(sa("a")).attr(
            "annotations.client-id",
            AttrValue::Unknown {
                from: role.clone(),
                output: "client_id".into(),
            },
        );
        // The source does not exist yet: the value stays unknown.
        let changes = diff(std::slice::from_ref(&want), &Observed::default(), false);
        assert!(matches!(
            changes[0].owned_attr_changes()[0].after,
            Some(AttrValue::Unknown { .. })
        ));
        // It exists: the KSA is compared with the real value, which differs.
        let mut source = ObservedResource::new(role, Ownership::Ours);
        source.outputs.insert("client_id".into(), "cid-1".into());
        let have = live(
            sa("a"),
            Ownership::Ours,
            &[("annotations.client-id", json!("cid-0"))],
        );
        let changes = diff(&[want], &observed(vec![source, have]), false);
        let ksa = changes.iter().find(|c| c.id == sa("a")).unwrap();
        assert_eq!(ksa.kind, ChangeKind::Update);
        assert_eq!(
            ksa.owned_attr_changes()[0].after,
            Some(AttrValue::Known(json!("cid-1")))
        );
        assert_eq!(
            ksa.desired
                .as_ref()
                .unwrap()
                .str_attr("annotations.client-id"),
            Some("cid-1")
        );
    }

    #[test]
    fn missing_object_is_a_create_with_every_attribute() {
        let want = Resource::new(sa("a")).attr("automount", false);
        let changes = diff(&[want], &Observed::default(), false);
        assert_eq!(changes[0].kind, ChangeKind::Create);
        assert_eq!(changes[0].attr_changes().count(), 1);
        assert_eq!(changes[0].owned_attr_changes()[0].before, None);
    }

    #[test]
    fn equal_attributes_are_a_noop() {
        let want = Resource::new(sa("a")).attr("automount", false);
        let have = live(sa("a"), Ownership::Ours, &[("automount", json!(false))]);
        let changes = diff(&[want], &observed(vec![have]), false);
        assert_eq!(changes[0].kind, ChangeKind::NoOp);
        assert!(changes[0].attr_changes().next().is_none());
    }

    #[test]
    fn drifted_attribute_shows_before_and_after() {
        let want = Resource::new(sa("a")).attr("automount", false);
        let have = live(sa("a"), Ownership::Ours, &[("automount", json!(true))]);
        let changes = diff(&[want], &observed(vec![have]), false);
        assert_eq!(changes[0].kind, ChangeKind::Update);
        assert_eq!(changes[0].reason, Reason::Differs);
        assert_eq!(changes[0].owned_attr_changes()[0].before, Some(json!(true)));
        assert_eq!(
            changes[0].owned_attr_changes()[0].after,
            Some(AttrValue::Known(json!(false)))
        );
    }

    #[test]
    fn the_recorded_hash_tells_drift_from_a_plan_change() {
        let want = Resource::new(sa("a")).attr("automount", false);
        let mut have = live(sa("a"), Ownership::Ours, &[("automount", json!(true))]);
        have.applied = crate::applied_hash(&want.attrs);
        let o = observed(vec![have.clone()]);
        assert_eq!(
            diff(std::slice::from_ref(&want), &o, false)[0].reason,
            Reason::Drift
        );
        let changed = Resource::new(sa("a")).attr("automount", false).attr("x", 1);
        assert_eq!(diff(&[changed], &o, false)[0].reason, Reason::PlanChanged);
    }

    #[test]
    fn an_incomplete_record_is_never_drift() {
        let want = Resource::new(sa("a")).attr("automount", false);
        let mut have = live(sa("a"), Ownership::Ours, &[("automount", json!(true))]);
        let hash = crate::applied_hash(&want.attrs).unwrap();
        have.applied = Some(AppliedRecord::Incomplete(hash.clone()).to_text());
        let o = observed(vec![have.clone()]);
        assert_eq!(
            diff(std::slice::from_ref(&want), &o, false)[0].reason,
            Reason::Incomplete
        );
        // Every attribute is right (the last call failed after the object was complete):
        // still an update, with nothing to change but the record, so that later drift is
        // called drift again.
        have.attrs.insert("automount".into(), json!(false));
        let c = &diff(&[want], &observed(vec![have]), false)[0];
        assert_eq!(
            (c.kind, &c.reason),
            (ChangeKind::Update, &Reason::Incomplete)
        );
        assert!(c.attr_changes().next().is_none());
        assert_eq!(
            AppliedRecord::parse(&AppliedRecord::Incomplete(hash.clone()).to_text()),
            AppliedRecord::Incomplete(hash.clone())
        );
        assert_eq!(AppliedRecord::parse(&hash), AppliedRecord::Complete(hash));
    }

    #[test]
    fn the_conflict_message_names_the_key_that_adopts() {
        let want = Resource::new(sa("a")).adoptable("aws.adopt", false);
        let have = live(sa("a"), Ownership::Unowned, &[]);
        let c = &diff(&[want], &observed(vec![have.clone()]), false)[0];
        let Reason::Blocked(why) = &c.reason else {
            panic!("not blocked: {c:?}")
        };
        assert!(why.contains("set `aws.adopt = true`"), "{why}");
        let fixed = Resource::new(sa("a"))
            .attr("x", 1)
            .adoptable("aws.adopt", true);
        let c = &diff(&[fixed], &observed(vec![have.clone()]), false)[0];
        assert_eq!(c.reason, Reason::Adopt);
        let never = Resource::new(sa("a"));
        let c = &diff(&[never], &observed(vec![have]), false)[0];
        let Reason::Blocked(why) = &c.reason else {
            panic!("not blocked: {c:?}")
        };
        assert!(why.contains("no way to take it over"), "{why}");
    }

    #[test]
    fn applied_hashes_are_stable_and_need_known_values() {
        let a = Resource::new(sa("a")).attr("x", 1).attr("y", "z");
        let b = Resource::new(sa("b")).attr("y", "z").attr("x", 1);
        assert_eq!(crate::applied_hash(&a.attrs), crate::applied_hash(&b.attrs));
        assert_ne!(
            crate::applied_hash(&a.attrs),
            crate::applied_hash(&a.clone().attr("x", 2).attrs)
        );
        // A document held as text hashes as the same document held as a tree, so the
        // records of objects applied before wid held it as text still match.
        let doc = json!({"Statement": [{"Effect": "Allow"}], "Version": "2012-10-17"});
        assert_eq!(
            crate::applied_hash(&a.clone().attr("d", doc.clone()).attrs),
            crate::applied_hash(&a.clone().attr("d", AttrValue::json(&doc)).attrs)
        );
        let unknown = a.attr(
            "u",
            AttrValue::Unknown {
                from: sa("c"),
                output: "id".into(),
            },
        );
        assert_eq!(crate::applied_hash(&unknown.attrs), None);
    }

    #[test]
    fn a_document_held_as_text_compares_as_its_value() {
        let doc = json!({"b": [1, {"y": 2, "x": 3}], "a": "t"});
        let want = Resource::new(sa("a")).attr("d", AttrValue::json(&doc));
        let same = json!({"a": "t", "b": [1, {"x": 3, "y": 2}]});
        let have = live(sa("a"), Ownership::Ours, &[("d", same)]);
        let changes = diff(std::slice::from_ref(&want), &observed(vec![have]), false);
        assert_eq!(changes[0].kind, ChangeKind::NoOp, "keys in another order");
        let other = live(sa("a"), Ownership::Ours, &[("d", json!({"a": "t"}))]);
        let changes = diff(&[want], &observed(vec![other]), false);
        assert_eq!(changes[0].kind, ChangeKind::Update);
        let after = changes[0].owned_attr_changes()[0].after.clone().unwrap();
        assert_eq!(after.known().unwrap().into_owned(), doc);
    }

    #[test]
    fn attribute_wid_set_but_no_longer_wants_is_removed() {
        let want = Resource::new(sa("a"));
        let have = live(sa("a"), Ownership::Ours, &[("labels.team", json!("x"))]);
        let changes = diff(&[want], &observed(vec![have]), false);
        assert_eq!(changes[0].kind, ChangeKind::Update);
        assert_eq!(changes[0].owned_attr_changes()[0].after, None);
    }

    #[test]
    fn unset_and_null_are_the_same() {
        let want = Resource::new(sa("a")).attr("x", Value::Null);
        let have = live(sa("a"), Ownership::Ours, &[]);
        assert_eq!(
            diff(&[want], &observed(vec![have]), false)[0].kind,
            ChangeKind::NoOp
        );
    }

    #[test]
    fn unowned_object_is_a_conflict_unless_adopted() {
        let want = Resource::new(sa("a")).attr("automount", false);
        let have = live(sa("a"), Ownership::Unowned, &[("automount", json!(false))]);
        let o = observed(vec![have]);
        assert_eq!(
            diff(std::slice::from_ref(&want), &o, false)[0].kind,
            ChangeKind::Conflict
        );
        let mut adopt = want;
        adopt.adopt = true;
        let c = &diff(std::slice::from_ref(&adopt), &o, false)[0];
        assert_eq!((c.kind, &c.reason), (ChangeKind::NoOp, &Reason::UpToDate));
        let changed = adopt.attr("automount", true);
        let c = &diff(&[changed], &o, false)[0];
        assert_eq!((c.kind, &c.reason), (ChangeKind::Update, &Reason::Adopt));
        assert_eq!(c.attr_changes().count(), 1);
    }

    #[test]
    fn adopting_an_object_as_it_is_writes_nothing_not_even_the_mark() {
        let want = Resource::new(sa("a"))
            .attr("automount", false)
            .mark("description", "Managed by wid (plan p)")
            .adoptable("aws.adopt", true);
        let have = live(
            sa("a"),
            Ownership::Unowned,
            &[
                ("automount", json!(false)),
                ("description", json!("made by hand")),
            ],
        );
        let o = observed(vec![have]);
        let c = &diff(std::slice::from_ref(&want), &o, false)[0];
        assert_eq!((c.kind, &c.reason), (ChangeKind::NoOp, &Reason::UpToDate));
        assert!(c.attr_changes().next().is_none());
        // Once something else must change, the mark is written with it.
        let changed = want.attr("automount", true);
        let c = &diff(&[changed], &o, false)[0];
        assert_eq!((c.kind, &c.reason), (ChangeKind::Update, &Reason::Adopt));
        let keys: Vec<&str> = c.attr_changes().map(|a| a.key).collect();
        assert_eq!(keys, ["automount", "description"]);
        // On an object wid owns, a changed mark is a change like any other.
        let mut ours = live(sa("a"), Ownership::Ours, &[("automount", json!(false))]);
        ours.attrs.insert("description".into(), json!("edited"));
        let owned = Resource::new(sa("a"))
            .attr("automount", false)
            .mark("description", "Managed by wid (plan p)");
        let c = &diff(&[owned], &observed(vec![ours]), false)[0];
        assert_eq!(c.kind, ChangeKind::Update);
    }

    #[test]
    fn other_plans_objects_are_conflicts_even_with_adopt() {
        let mut want = Resource::new(sa("a"));
        want.adopt = true;
        let have = live(sa("a"), Ownership::OtherPlan("team-b".into()), &[]);
        assert_eq!(
            diff(&[want], &observed(vec![have]), false)[0].kind,
            ChangeKind::Conflict
        );
    }

    #[test]
    fn fields_mode_edits_objects_it_does_not_own() {
        let want = Resource::new(sa("default"))
            .attr("automount", false)
            .mode(Mode::Fields);
        let have = live(sa("default"), Ownership::Unowned, &[]);
        assert_eq!(
            diff(&[want], &observed(vec![have]), false)[0].kind,
            ChangeKind::Update
        );
    }

    #[test]
    fn shared_objects_are_used_when_they_match() {
        let want = Resource::new(sa("p"))
            .attr("aud", json!(["sts"]))
            .mode(Mode::Shared);
        let same = live(
            sa("p"),
            Ownership::OtherPlan("x".into()),
            &[("aud", json!(["sts"]))],
        );
        assert_eq!(
            diff(std::slice::from_ref(&want), &observed(vec![same]), false)[0].kind,
            ChangeKind::NoOp
        );
        let other = live(sa("p"), Ownership::Unowned, &[("aud", json!(["x"]))]);
        assert_eq!(
            diff(&[want], &observed(vec![other]), false)[0].kind,
            ChangeKind::Conflict
        );
    }

    #[test]
    fn prune_deletes_only_owned_objects_that_left_the_plan() {
        let o = observed(vec![
            live(sa("gone"), Ownership::Ours, &[]),
            live(sa("theirs"), Ownership::Unowned, &[]),
            live(sa("other"), Ownership::OtherPlan("b".into()), &[]),
        ]);
        assert!(diff::<Resource>(&[], &o, false).is_empty());
        let changes = diff::<Resource>(&[], &o, true);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].id.clone(), changes[0].kind),
            (sa("gone"), ChangeKind::Delete)
        );
    }

    #[test]
    fn blockers_become_conflicts() {
        let want = Resource::new(sa("a"));
        let mut o = Observed::default();
        o.blockers
            .insert(sa("a"), "namespace ns does not exist".into());
        let c = &diff(&[want], &o, false)[0];
        assert_eq!(c.kind, ChangeKind::Conflict);
    }

    #[test]
    fn unknown_values_differ_from_missing_ones_and_when_their_source_is_new() {
        let unknown = AttrValue::Unknown {
            from: sa("x"),
            output: "id".into(),
        };
        let want = Resource::new(sa("a")).attr("ann", unknown);
        let have = live(sa("a"), Ownership::Ours, &[("ann", json!("abc"))]);
        // The source exists but gives no such output: assumed unchanged.
        let source = live(sa("x"), Ownership::Ours, &[]);
        let both = observed(vec![have.clone(), source]);
        let changes = diff(std::slice::from_ref(&want), &both, false);
        let c = changes.iter().find(|c| c.id == sa("a")).unwrap();
        assert_eq!(c.kind, ChangeKind::NoOp);
        // The source is about to be created: its output will be new.
        assert_eq!(
            diff(std::slice::from_ref(&want), &observed(vec![have]), false)[0].kind,
            ChangeKind::Update
        );
        let empty = live(sa("a"), Ownership::Ours, &[]);
        assert_eq!(
            diff(&[want], &observed(vec![empty]), false)[0].kind,
            ChangeKind::Update
        );
    }
}
