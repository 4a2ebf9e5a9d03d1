//! IAM policies as wid edits them: which bindings are wid's (proved by the plan's
//! record), member-level edits that leave everything else byte for byte, and the record
//! itself (see [`crate::record`] for its format).

use std::collections::{BTreeMap, BTreeSet};

use google_cloud_iam_v1::model::{Binding, Policy};

use crate::ids::parse_line;
use crate::record::{self, ENTRIES_PER_RECORD};

/// One record account of the plan and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The project that holds it.
    pub project: String,
    /// Its account id (`wid-rec-HASH-N`).
    pub account_id: String,
    /// Its entries, in description order.
    pub entries: Vec<String>,
}

/// The plan's record of the bindings it added, as observe found it and apply keeps it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    /// Whether observe has read it (apply never writes a record it has not read).
    pub loaded: bool,
    /// Every record account of the plan, wherever it lives.
    pub chunks: Vec<Chunk>,
}

/// One write that brings the record up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordWrite {
    /// Create record account `account_id` in `project` with these entries.
    Create {
        project: String,
        account_id: String,
        entries: Vec<String>,
    },
    /// Rewrite the entries of an existing record account.
    Update {
        project: String,
        account_id: String,
        entries: Vec<String>,
    },
    /// Delete a record account that holds nothing any more.
    Delete { project: String, account_id: String },
}

impl Record {
    /// Brings `self` up to date with a write that succeeded.
    pub fn apply(&mut self, write: &RecordWrite) {
        match write {
            RecordWrite::Create {
                project,
                account_id,
                entries,
            }
            | RecordWrite::Update {
                project,
                account_id,
                entries,
            } => {
                match self
                    .chunks
                    .iter_mut()
                    .find(|c| &c.project == project && &c.account_id == account_id)
                {
                    Some(c) => c.entries.clone_from(entries),
                    None => self.chunks.push(Chunk {
                        project: project.clone(),
                        account_id: account_id.clone(),
                        entries: entries.clone(),
                    }),
                }
            }
            RecordWrite::Delete {
                project,
                account_id,
            } => self
                .chunks
                .retain(|c| !(&c.project == project && &c.account_id == account_id)),
        }
    }

    /// Whether the binding's entry is in the record.
    pub fn has(&self, entry: &str) -> bool {
        self.chunks
            .iter()
            .any(|c| c.entries.iter().any(|e| e == entry))
    }

    /// The writes that add `add` and drop `remove`; new entries go to record accounts in
    /// `home`. Applies them to `self` (call it again with nothing to add or remove and it
    /// plans nothing). A record account left empty is deleted.
    pub fn plan_writes(
        &mut self,
        plan: &str,
        home: &str,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Vec<RecordWrite> {
        let mut changed: BTreeSet<usize> = BTreeSet::new();
        for (i, chunk) in self.chunks.iter_mut().enumerate() {
            let before = chunk.entries.len();
            chunk
                .entries
                .retain(|e| !remove.contains(e) || add.contains(e));
            if chunk.entries.len() != before {
                changed.insert(i);
            }
        }
        let mut created: Vec<usize> = Vec::new();
        for entry in add {
            if self.has(entry) {
                continue;
            }
            let slot = self
                .chunks
                .iter()
                .position(|c| c.project == home && c.entries.len() < ENTRIES_PER_RECORD);
            let i = match slot {
                Some(i) => i,
                None => {
                    let used: BTreeSet<&str> =
                        self.chunks.iter().map(|c| c.account_id.as_str()).collect();
                    let n = (0..)
                        .find(|n| !used.contains(record::record_account(plan, *n).as_str()))
                        .expect("some index is free");
                    self.chunks.push(Chunk {
                        project: home.to_owned(),
                        account_id: record::record_account(plan, n),
                        entries: Vec::new(),
                    });
                    created.push(self.chunks.len() - 1);
                    self.chunks.len() - 1
                }
            };
            self.chunks[i].entries.push(entry.clone());
            changed.insert(i);
        }
        let mut writes = Vec::new();
        for i in changed {
            let c = &self.chunks[i];
            let w = if created.contains(&i) {
                RecordWrite::Create {
                    project: c.project.clone(),
                    account_id: c.account_id.clone(),
                    entries: c.entries.clone(),
                }
            } else if c.entries.is_empty() {
                RecordWrite::Delete {
                    project: c.project.clone(),
                    account_id: c.account_id.clone(),
                }
            } else {
                RecordWrite::Update {
                    project: c.project.clone(),
                    account_id: c.account_id.clone(),
                    entries: c.entries.clone(),
                }
            };
            writes.push(w);
        }
        self.chunks.retain(|c| !c.entries.is_empty());
        writes
    }
}

/// The unconditional bindings of a policy as `(role, member)` pairs. Conditional bindings
/// are never wid's: wid writes none.
pub(crate) fn lines(policy: &Policy) -> BTreeSet<(String, String)> {
    policy
        .bindings
        .iter()
        .filter(|b| b.condition.is_none())
        .flat_map(|b| b.members.iter().map(|m| (b.role.clone(), m.clone())))
        .collect()
}

/// Adds and removes members of unconditional bindings; every other binding, member,
/// condition, audit config and unknown field stays as it was, in its order. A binding
/// wid empties is dropped. Returns whether the policy changed.
pub(crate) fn edit(
    policy: &mut Policy,
    add: &[(String, String)],
    remove: &[(String, String)],
) -> bool {
    let mut changed = false;
    for (role, member) in remove {
        for b in policy
            .bindings
            .iter_mut()
            .filter(|b| b.condition.is_none() && &b.role == role)
        {
            let before = b.members.len();
            b.members.retain(|m| m != member);
            changed |= b.members.len() != before;
        }
    }
    let before = policy.bindings.len();
    policy
        .bindings
        .retain(|b| !(b.condition.is_none() && b.members.is_empty()));
    changed |= policy.bindings.len() != before;
    for (role, member) in add {
        match policy
            .bindings
            .iter_mut()
            .find(|b| b.condition.is_none() && &b.role == role)
        {
            Some(b) if b.members.contains(member) => {}
            Some(b) => {
                b.members.push(member.clone());
                changed = true;
            }
            None => {
                policy.bindings.push(
                    Binding::new()
                        .set_role(role.clone())
                        .set_members([member.clone()]),
                );
                changed = true;
            }
        }
    }
    changed
}

/// Splits line keys (`ROLE MEMBER`) into pairs.
pub(crate) fn pairs<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<(String, String)> {
    keys.into_iter()
        .filter_map(|k| parse_line(k).map(|(r, m)| (r.to_owned(), m.to_owned())))
        .collect()
}

/// The record entries of line keys on `resource`.
pub(crate) fn entries<'a>(
    resource: &str,
    keys: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<String> {
    pairs(keys)
        .iter()
        .map(|(r, m)| record::entry(resource, r, m))
        .collect()
}

/// wid's lines in a live policy: the unconditional bindings the record proves wid added,
/// as attributes (`ROLE MEMBER` → resource).
pub(crate) fn wid_lines(
    policy: &Policy,
    resource: &str,
    record: &Record,
) -> BTreeMap<String, String> {
    lines(policy)
        .into_iter()
        .filter(|(r, m)| record.has(&record::entry(resource, r, m)))
        .map(|(r, m)| (crate::ids::line_key(&r, &m), resource.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_iam_v1::model::AuditConfig;

    fn policy() -> Policy {
        serde_json::from_value(serde_json::json!({
            "version": 3,
            "bindings": [
                {"role": "roles/viewer", "members": ["user:alice@example.com", "group:ops@example.com"]},
                {"role": "roles/viewer", "members": ["user:bob@example.com"],
                 "condition": {"title": "weekdays", "expression": "request.time.getDayOfWeek() < 5"}},
                {"role": "roles/pubsub.subscriber", "members": ["serviceAccount:a@p.iam.gserviceaccount.com"]}
            ],
            "auditConfigs": [{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}],
            "etag": "BwYAAAAAAAE="
        }))
        .unwrap()
    }

    fn p(r: &str, m: &str) -> (String, String) {
        (r.to_owned(), m.to_owned())
    }

    #[test]
    fn edits_touch_only_the_members_wid_changes() {
        let mut pol = policy();
        let before = serde_json::to_value(&pol).unwrap();
        assert!(edit(
            &mut pol,
            &[
                p("roles/viewer", "serviceAccount:w@p.iam.gserviceaccount.com"),
                p(
                    "roles/logging.logWriter",
                    "serviceAccount:w@p.iam.gserviceaccount.com"
                )
            ],
            &[p(
                "roles/pubsub.subscriber",
                "serviceAccount:a@p.iam.gserviceaccount.com"
            )],
        ));
        let after = serde_json::to_value(&pol).unwrap();
        assert_eq!(
            after["bindings"][0]["members"],
            serde_json::json!([
                "user:alice@example.com",
                "group:ops@example.com",
                "serviceAccount:w@p.iam.gserviceaccount.com"
            ])
        );
        assert_eq!(
            after["bindings"][1], before["bindings"][1],
            "conditional binding untouched"
        );
        assert_eq!(
            after["bindings"][2]["role"], "roles/logging.logWriter",
            "emptied binding dropped"
        );
        assert_eq!(after["auditConfigs"], before["auditConfigs"]);
        assert_eq!(after["etag"], before["etag"]);
        let _: Vec<AuditConfig> = pol.audit_configs.clone();
        // Adding what is there changes nothing.
        assert!(!edit(
            &mut pol,
            &[p("roles/viewer", "user:alice@example.com")],
            &[]
        ));
        // A conditional member is not removed by an unconditional removal.
        assert!(!edit(
            &mut pol,
            &[],
            &[p("roles/viewer", "user:bob@example.com")]
        ));
    }

    #[test]
    fn wid_lines_are_only_the_recorded_ones() {
        let pol = policy();
        let mut record = Record {
            loaded: true,
            chunks: Vec::new(),
        };
        let entry = record::entry(
            "projects/p",
            "roles/pubsub.subscriber",
            "serviceAccount:a@p.iam.gserviceaccount.com",
        );
        record.plan_writes("plan", "p", &BTreeSet::from([entry]), &BTreeSet::new());
        let mine = wid_lines(&pol, "projects/p", &record);
        assert_eq!(
            mine.keys().collect::<Vec<_>>(),
            ["roles/pubsub.subscriber serviceAccount:a@p.iam.gserviceaccount.com"]
        );
        assert!(wid_lines(&pol, "projects/other", &record).is_empty());
    }

    #[test]
    fn the_record_fills_accounts_and_deletes_empty_ones() {
        let mut record = Record {
            loaded: true,
            chunks: Vec::new(),
        };
        let many: BTreeSet<String> = (0..30)
            .map(|i| record::entry("r", "x", &i.to_string()))
            .collect();
        let writes = record.plan_writes("plan", "home-proj", &many, &BTreeSet::new());
        assert_eq!(writes.len(), 2);
        assert!(
            matches!(&writes[0], RecordWrite::Create { entries, .. } if entries.len() == ENTRIES_PER_RECORD)
        );
        assert!(matches!(&writes[1], RecordWrite::Create { entries, .. } if entries.len() == 2));
        assert!(
            record
                .plan_writes("plan", "home-proj", &many, &BTreeSet::new())
                .is_empty()
        );
        let two: BTreeSet<String> = match &writes[1] {
            RecordWrite::Create { entries, .. } => entries.iter().cloned().collect(),
            _ => unreachable!(),
        };
        let writes = record.plan_writes("plan", "home-proj", &BTreeSet::new(), &two);
        assert!(
            matches!(&writes[0], RecordWrite::Delete { account_id, .. } if account_id.ends_with("-1"))
        );
        assert_eq!(record.chunks.len(), 1);
    }

    #[test]
    fn applying_the_planned_writes_gives_the_planned_record() {
        let empty = Record {
            loaded: true,
            chunks: Vec::new(),
        };
        let many: BTreeSet<String> = (0..30)
            .map(|i| record::entry("r", "x", &i.to_string()))
            .collect();
        let mut planned = empty.clone();
        let writes = planned.plan_writes("plan", "home-proj", &many, &BTreeSet::new());
        let mut applied = empty.clone();
        for w in &writes {
            applied.apply(w);
        }
        assert_eq!(applied.chunks, planned.chunks);
        // A removal that empties an account, then an update of the other.
        let first: BTreeSet<String> = planned.chunks[0].entries.iter().take(3).cloned().collect();
        let second: BTreeSet<String> = planned.chunks[1].entries.iter().cloned().collect();
        let gone: BTreeSet<String> = first.union(&second).cloned().collect();
        let writes = planned.plan_writes("plan", "home-proj", &BTreeSet::new(), &gone);
        assert_eq!(writes.len(), 2);
        for w in &writes {
            applied.apply(w);
        }
        assert_eq!(applied.chunks, planned.chunks);
        assert_eq!(applied.chunks.len(), 1);
        assert_eq!(applied.chunks[0].entries.len(), ENTRIES_PER_RECORD - 3);
    }
}
