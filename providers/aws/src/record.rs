//! The applied record: the [`APPLIED_KEY`] tag wid writes on the roles, OIDC providers and
//! Pod Identity associations it applies, holding the [`applied_hash`] of the desired
//! attributes, and reads back on observe so the diff tells drift from a plan change.
//!
//! The tag is bookkeeping, never an attribute: observe leaves it out of a role's `tags`
//! (like the ownership marks), so it never shows in a diff nor causes one.

use std::collections::BTreeMap;

use wid_core::{APPLIED_KEY, Change, Mode, Ownership, applied_hash};

/// The record to write for a create or update: the hash of the desired attributes (the
/// executor has filled unknown values in by now). `None` for a delete, for a resource wid
/// only sets fields of (it is not wid's object to mark), or while a value is unknown.
pub(crate) fn to_write(change: &Change) -> Option<String> {
    let desired = change.desired.as_ref()?;
    if desired.mode == Mode::Fields {
        return None;
    }
    applied_hash(&desired.attrs)
}

/// The record an update still has to write: none when the object already holds this
/// hash (the update corrects drift), so such an update costs no tagging call.
pub(crate) fn to_rewrite(change: &Change, live: Option<&str>) -> Option<String> {
    to_write(change).filter(|hash| live != Some(hash.as_str()))
}

/// The record on a live object, from its tags. Only an object this plan owns counts: a
/// record another plan (or a hand-made copy of a tag) left says nothing about this plan.
pub(crate) fn read<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ownership: &Ownership,
) -> Option<String> {
    if *ownership != Ownership::Ours {
        return None;
    }
    let tags: BTreeMap<&str, &str> = tags.into_iter().collect();
    tags.get(APPLIED_KEY).map(|v| (*v).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wid_core::{ChangeKind, ObservedResource, Reason, Resource, ResourceId};

    fn change(mode: Mode, applied: Option<&str>) -> Change {
        let id = ResourceId::new("aws", "iam-role", ["1", "r"]);
        let mut live = ObservedResource::new(id.clone(), Ownership::Ours);
        live.applied = applied.map(str::to_owned);
        Change {
            id: id.clone(),
            kind: ChangeKind::Update,
            reason: Reason::Differs,
            desired: Some(Resource::new(id).attr("path", "/").mode(mode).into()),
            observed: Some(live.into()),
            changed: Vec::new(),
        }
    }

    #[test]
    fn the_record_is_the_hash_of_the_desired_attributes() {
        let c = change(Mode::Owned, None);
        let want = applied_hash(&c.desired.as_ref().map(|d| d.attrs.clone()).unwrap());
        assert!(want.is_some());
        assert_eq!(to_write(&c), want);
        assert_eq!(to_write(&change(Mode::Shared, None)), want);
        assert_eq!(to_write(&change(Mode::Fields, None)), None);
    }

    #[test]
    fn an_unchanged_record_is_not_rewritten() {
        let c = change(Mode::Owned, None);
        let hash = to_write(&c).unwrap();
        assert_eq!(to_rewrite(&c, Some(&hash)), None);
        assert_eq!(to_rewrite(&c, Some("0000000000000000")), Some(hash.clone()));
        assert_eq!(to_rewrite(&c, None), Some(hash));
    }

    #[test]
    fn only_this_plans_objects_have_a_record() {
        let tags = [(APPLIED_KEY, "abc"), ("team", "x")];
        assert_eq!(read(tags, &Ownership::Ours), Some("abc".into()));
        assert_eq!(read(tags, &Ownership::OtherPlan("p".into())), None);
        assert_eq!(read(tags, &Ownership::Unowned), None);
        assert_eq!(read([("team", "x")], &Ownership::Ours), None);
    }
}
