//! The record across one apply run: the entries of every binding the run adds are
//! written *ahead*, in one batch before the first policy write (one write per record
//! account touched), and the entries of bindings the run then did not make are removed
//! after its last change (one write per record account again).
//!
//! Writing ahead is what keeps the record exact under failure: a binding is only ever
//! in a policy after its entry is in the record, so wid never loses the proof that it
//! added a binding. The other way round, an entry written ahead for a binding that was
//! never made would claim a binding wid did not add, so [`GcpProvider::compensate`]
//! removes it once the run ends:
//!
//! - a change that never sent its policy write (it failed before, was skipped because a
//!   dependency failed, or never started because the run was drained by Ctrl-C or passed
//!   its `--timeout`): its entries go, with no read;
//! - a change whose policy write was sent but did not succeed (an error, or a response
//!   that never came: the binding may have landed): its policy is read again, and only
//!   the entries of lines absent from it go; when that read fails they stay, and the run
//!   reports the error.
//!
//! After a second Ctrl-C the run is dropped at once and nothing is removed: entries
//! written ahead for changes that had not made their policy write stay in the record. The
//! next plan reads them as bindings of the plan that are missing from their policies, so
//! an apply of the same plan makes them; a binding that the plan no longer wants stays
//! recorded without existing, and would be taken as wid's if someone later added exactly
//! that role for that member on that resource.

use std::collections::{BTreeMap, BTreeSet};

use wid_core::{Change, ChangeKind, ErrorKind, Owner, ProviderError, ResourceId};

use crate::bindings::{Record, entries, lines, pairs};
use crate::client::GcpProvider;
use crate::ids::{self, KIND_POLICY};
use crate::record;

/// How far a policy change of the run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached {
    /// It has not sent its policy write: its bindings are not in the policy by wid's hand.
    NotSent,
    /// It sent a policy write that did not succeed (yet): the bindings may be there.
    Sent,
    /// Its bindings are in the policy (written, or already there).
    Made,
}

/// A policy change of the run that adds bindings.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    /// Its plan.
    pub plan: String,
    /// The project that holds the plan's new record accounts.
    pub home: String,
    /// Its lines, `(role, member)`.
    pub adds: Vec<(String, String)>,
    /// How far it got.
    pub reached: Reached,
}

/// The record state of the run in progress.
#[derive(Debug, Default)]
pub(crate) struct RunRecord {
    /// Entries still to write ahead, by plan and home project (some may be in the record
    /// already: they are not written again).
    pub pending: BTreeMap<(String, String), BTreeSet<String>>,
    /// Entries this run sent in a record write that were not in the record before, by
    /// plan: the only ones compensation may remove.
    pub ahead: BTreeMap<String, BTreeSet<String>>,
    /// A record write was sent whose outcome wid does not know (it failed or was dropped):
    /// the record is read again before the next write.
    pub uncertain: BTreeSet<String>,
    /// The run's policy changes that add bindings, by id.
    pub changes: BTreeMap<ResourceId, Tracked>,
}

impl GcpProvider {
    /// The project new record accounts of a binding on `resource` go to.
    fn home_for(&self, resource: &str) -> String {
        self.home_project(resource.split('/').nth(1).unwrap_or_default())
    }

    /// Starts a run: notes the entries of every binding its policy changes add.
    pub(crate) fn start_run(&self, changes: &[(&Change, &Owner)]) {
        let mut run = RunRecord::default();
        for (change, owner) in changes {
            if change.id.kind() != KIND_POLICY || change.kind == ChangeKind::Delete {
                continue;
            }
            let Some(desired) = &change.desired else {
                continue;
            };
            let resource = ids::policy_resource(&change.id);
            let adds = pairs(desired.attrs.keys());
            if adds.is_empty() {
                continue;
            }
            let home = self.home_for(&resource);
            run.pending
                .entry((owner.plan.clone(), home.clone()))
                .or_default()
                .extend(entries(&resource, desired.attrs.keys()));
            run.changes.insert(
                change.id.clone(),
                Tracked {
                    plan: owner.plan.clone(),
                    home,
                    adds,
                    reached: Reached::NotSent,
                },
            );
        }
        *self.run_state() = run;
    }

    pub(crate) fn run_state(&self) -> std::sync::MutexGuard<'_, RunRecord> {
        self.run.lock().expect("run record lock is never poisoned")
    }

    /// Notes how far policy change `id` got.
    pub(crate) fn reached(&self, id: &ResourceId, reached: Reached) {
        if let Some(t) = self.run_state().changes.get_mut(id) {
            t.reached = reached;
        }
    }

    /// Makes sure the entries of `adds` (lines of `id` on `resource`) are in the record
    /// before its policy is written, writing every entry the run still has to write ahead
    /// with them: the first policy change of a run writes the whole batch, one write per
    /// record account, and the others find nothing left. A change the run did not announce
    /// (a direct apply) is tracked from here on.
    pub(crate) async fn write_ahead(
        &self,
        id: &ResourceId,
        owner: &Owner,
        resource: &str,
        adds: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let home = self.home_for(resource);
        if !adds.is_empty() {
            // Noted before waiting for the record, so that whoever writes next writes
            // these too: changes that arrive together share one write.
            let mut run = self.run_state();
            run.pending
                .entry((owner.plan.clone(), home.clone()))
                .or_default()
                .extend(adds.iter().map(|(r, m)| record::entry(resource, r, m)));
            run.changes.entry(id.clone()).or_insert_with(|| Tracked {
                plan: owner.plan.clone(),
                home: home.clone(),
                adds: adds.to_vec(),
                reached: Reached::NotSent,
            });
        }
        let mut record = self.record_to_write().await;
        if !record.loaded {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                "the plan's record of bindings was not read before apply",
            ));
        }
        let batch: Vec<((String, String), BTreeSet<String>)> = self
            .run_state()
            .pending
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((plan, home), wanted) in batch {
            if self.run_state().uncertain.contains(&plan) {
                *record = self.reread_record(&plan, &record, &home).await?;
                self.run_state().uncertain.remove(&plan);
            }
            let fresh: BTreeSet<String> =
                wanted.iter().filter(|e| !record.has(e)).cloned().collect();
            if !fresh.is_empty() {
                let mut draft = record.clone();
                let writes = draft.plan_writes(&plan, &home, &fresh, &BTreeSet::new());
                {
                    let mut run = self.run_state();
                    run.ahead
                        .entry(plan.clone())
                        .or_default()
                        .extend(fresh.iter().cloned());
                    // Until every write is confirmed, a dropped or failed one leaves the
                    // record unknown.
                    run.uncertain.insert(plan.clone());
                }
                for w in writes {
                    self.send_record_write(&plan, &w).await?;
                    record.apply(&w);
                }
                self.run_state().uncertain.remove(&plan);
            }
            // Entries noted while these writes were in flight wait for the next.
            let mut run = self.run_state();
            let key = (plan, home);
            if let Some(left) = run.pending.get_mut(&key) {
                left.retain(|e| !wanted.contains(e));
                if left.is_empty() {
                    run.pending.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// The record as the record accounts hold it now, in the projects `record` knows of
    /// and `home`.
    async fn reread_record(
        &self,
        plan: &str,
        record: &Record,
        home: &str,
    ) -> Result<Record, ProviderError> {
        let mut projects: BTreeSet<String> =
            record.chunks.iter().map(|c| c.project.clone()).collect();
        projects.insert(home.to_owned());
        self.read_record(plan, projects).await
    }

    /// Ends a run: removes the entries written ahead for bindings the run did not make
    /// (see the module docs), one write per record account.
    pub(crate) async fn compensate(&self) -> Result<(), ProviderError> {
        let run = std::mem::take(&mut *self.run_state());
        let mut stale: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        let mut errors: Vec<ProviderError> = Vec::new();
        for (id, t) in &run.changes {
            let Some(ahead) = run.ahead.get(&t.plan) else {
                continue;
            };
            let resource = ids::policy_resource(id);
            let candidates: Vec<&(String, String)> = t
                .adds
                .iter()
                .filter(|(r, m)| ahead.contains(&record::entry(&resource, r, m)))
                .collect();
            if candidates.is_empty() || t.reached == Reached::Made {
                continue;
            }
            let absent: Vec<&(String, String)> = match t.reached {
                Reached::NotSent => candidates,
                Reached::Sent => match self.read_policy(id).await {
                    Ok(Some(policy)) => {
                        let live = lines(&policy);
                        candidates
                            .into_iter()
                            .filter(|line| !live.contains(line))
                            .collect()
                    }
                    // The resource is gone, and its bindings with it.
                    Ok(None) => candidates,
                    Err(e) => {
                        errors.push(e.with_resource(id));
                        continue;
                    }
                },
                Reached::Made => continue,
            };
            stale
                .entry((t.plan.clone(), t.home.clone()))
                .or_default()
                .extend(absent.iter().map(|(r, m)| record::entry(&resource, r, m)));
        }
        stale.retain(|_, entries| !entries.is_empty());
        if !stale.is_empty() {
            let mut record = self.record_to_write().await;
            for ((plan, home), entries) in stale {
                if let Err(e) = self
                    .drop_entries(
                        &mut record,
                        &plan,
                        &home,
                        &entries,
                        run.uncertain.contains(&plan),
                    )
                    .await
                {
                    errors.push(e);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            n => {
                let first = errors.swap_remove(0);
                let more = if n > 1 {
                    format!(" (and {} more)", n - 1)
                } else {
                    String::new()
                };
                Err(ProviderError::new(
                    first.kind(),
                    format!(
                        "failed to remove from the plan's record the bindings this run did not make{more}: {}",
                        first.message()
                    ),
                )
                .with_hint(
                    "the record still lists bindings that are not in their policies; run apply again: it makes the ones the plan wants and the record is right again",
                ))
            }
        }
    }

    /// Removes `entries` from the plan's record (reading it again first when a write of
    /// the run left it unknown).
    async fn drop_entries(
        &self,
        record: &mut Record,
        plan: &str,
        home: &str,
        entries: &BTreeSet<String>,
        uncertain: bool,
    ) -> Result<(), ProviderError> {
        if uncertain {
            *record = self.reread_record(plan, record, home).await?;
        }
        let mut draft = record.clone();
        for w in draft.plan_writes(plan, home, &BTreeSet::new(), entries) {
            self.send_record_write(plan, &w).await?;
            record.apply(&w);
        }
        Ok(())
    }
}
