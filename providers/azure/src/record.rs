//! wid's marks on an identity: who owns it, what wid last applied, and which tag keys
//! wid set. Azure tag names may not contain `/`, so the marks other clouds carry as
//! `wid.dev/plan` are `wid.dev.plan` here.
//!
//! - `wid.dev.plan = PLAN`: created by wid for PLAN (owned: prune deletes it).
//! - `wid.dev.adopted-by = PLAN`: an existing identity PLAN adopted. wid manages its own
//!   federated credentials, role assignments and tags on it, and never deletes it.
//! - `wid.dev.applied`: the [`applied_hash`](wid_core::applied_hash) of what wid last
//!   applied, or an incomplete one (see [`AppliedRecord`]).
//! - `wid.dev.tags`: the plan's tag keys wid set, as a JSON list, so that a key the plan
//!   drops is removed and no tag someone else set is touched.

use std::collections::{BTreeMap, BTreeSet};

use wid_core::{AppliedRecord, Change, Ownership, applied_hash};

/// The prefix of every tag wid sets for itself; plans may not use it.
pub const RESERVED_PREFIX: &str = "wid.dev.";
/// Created by wid for the plan named in the value.
pub const TAG_PLAN: &str = "wid.dev.plan";
/// Adopted by the plan named in the value.
pub const TAG_ADOPTED: &str = "wid.dev.adopted-by";
/// The applied record.
pub const TAG_APPLIED: &str = "wid.dev.applied";
/// The plan's tag keys wid set.
pub const TAG_KEYS: &str = "wid.dev.tags";
/// How many tags wid itself sets at most (an identity carries either the plan or the
/// adopted mark, plus the record and the key list).
pub const WID_TAGS: usize = 3;

/// How this plan stands to a live identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Ownership as the diff sees it: an identity this plan adopted is `Ours` too.
    pub ownership: Ownership,
    /// Adopted rather than created: wid never deletes it.
    pub adopted: bool,
}

/// Reads an identity's marks.
pub fn standing(tags: &BTreeMap<String, String>, plan: &str) -> Standing {
    let of = |key: &str| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    match (of(TAG_PLAN), of(TAG_ADOPTED)) {
        (Some(p), _) if p == plan => Standing {
            ownership: Ownership::Ours,
            adopted: false,
        },
        (_, Some(p)) if p == plan => Standing {
            ownership: Ownership::Ours,
            adopted: true,
        },
        (Some(p), _) | (None, Some(p)) => Standing {
            ownership: Ownership::OtherPlan(p.to_owned()),
            adopted: false,
        },
        (None, None) => Standing {
            ownership: Ownership::Unowned,
            adopted: false,
        },
    }
}

/// The plan tag keys wid recorded on an identity.
pub fn recorded_keys(tags: &BTreeMap<String, String>) -> BTreeSet<String> {
    tags.get(TAG_KEYS)
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The record to write after a complete apply of `change` (`None` while a value is still
/// unknown, which the executor rules out).
pub fn complete(change: &Change) -> Option<String> {
    let desired = change.desired.as_ref()?;
    applied_hash(&desired.attrs).map(|h| AppliedRecord::Complete(h).to_text())
}

/// The record to write while an apply of `change` is under way or stopped part-way.
pub fn incomplete(change: &Change) -> Option<String> {
    let desired = change.desired.as_ref()?;
    applied_hash(&desired.attrs).map(|h| AppliedRecord::Incomplete(h).to_text())
}

/// The full tag set to write on an identity: the live tags without the keys wid set
/// earlier and no longer wants, plus the plan's tags and wid's marks. Tags others set
/// survive byte for byte.
pub fn merged_tags(
    live: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
    plan: &str,
    adopted: bool,
    record: Option<&str>,
) -> BTreeMap<String, String> {
    let stale = recorded_keys(live);
    let mut out: BTreeMap<String, String> = live
        .iter()
        .filter(|(k, _)| {
            (!stale.contains(*k) || want.contains_key(*k)) && !k.starts_with(RESERVED_PREFIX)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(want.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mark = if adopted { TAG_ADOPTED } else { TAG_PLAN };
    out.insert(mark.to_owned(), plan.to_owned());
    if let Some(record) = record {
        out.insert(TAG_APPLIED.to_owned(), record.to_owned());
    }
    if !want.is_empty() {
        let keys: Vec<&String> = want.keys().collect();
        out.insert(
            TAG_KEYS.to_owned(),
            serde_json::to_string(&keys).unwrap_or_default(),
        );
    }
    out
}

/// The tags an identity keeps when wid lets go of it (an adopted identity that left the
/// plan): everything but wid's marks and the tag keys wid set.
pub fn released_tags(live: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let stale = recorded_keys(live);
    live.iter()
        .filter(|(k, _)| !stale.contains(*k) && !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The plan tags wid manages on a live identity, as compile writes them: the live values
/// of the keys the plan wants or wid recorded, nothing else.
pub fn managed_tags(
    live: &BTreeMap<String, String>,
    want: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let recorded = recorded_keys(live);
    live.iter()
        .filter(|(k, _)| {
            !k.starts_with(RESERVED_PREFIX) && (want.contains(*k) || recorded.contains(*k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn standing_reads_both_marks() {
        assert_eq!(
            standing(&tags(&[(TAG_PLAN, "p")]), "p"),
            Standing {
                ownership: Ownership::Ours,
                adopted: false
            }
        );
        assert!(standing(&tags(&[(TAG_ADOPTED, "p")]), "p").adopted);
        assert_eq!(
            standing(&tags(&[(TAG_ADOPTED, "q")]), "p").ownership,
            Ownership::OtherPlan("q".into())
        );
        assert_eq!(
            standing(&tags(&[("team", "x")]), "p").ownership,
            Ownership::Unowned
        );
    }

    #[test]
    fn merging_keeps_foreign_tags_and_drops_only_wids_stale_keys() {
        let live = tags(&[
            ("owner", "sre"),
            ("team", "old"),
            ("gone", "x"),
            (TAG_KEYS, r#"["gone","team"]"#),
            (TAG_PLAN, "p"),
            (TAG_APPLIED, "0"),
        ]);
        let want = tags(&[("team", "payments")]);
        let out = merged_tags(&live, &want, "p", false, Some("abc"));
        assert_eq!(
            out,
            tags(&[
                ("owner", "sre"),
                ("team", "payments"),
                (TAG_KEYS, r#"["team"]"#),
                (TAG_PLAN, "p"),
                (TAG_APPLIED, "abc"),
            ])
        );
        assert_eq!(
            managed_tags(&live, &["team".to_owned()].into()),
            tags(&[("gone", "x"), ("team", "old")])
        );
        assert_eq!(released_tags(&live), tags(&[("owner", "sre")]));
    }
}
