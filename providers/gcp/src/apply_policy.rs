//! Applying a policy change: one read-modify-write of the whole policy with its etag.
//!
//! The policy observe read (and its etag) is the starting point, so a run reads each
//! policy once and writes it at most once; the policy of a service account this run
//! creates starts from the empty policy and its known etag, so it is not read at all. Only wid's member changes are made; on
//! `ABORTED` (someone wrote the policy between wid's read and write) wid re-reads it and
//! re-applies just those member changes, a bounded number of times.
//!
//! Before the first policy write of a run, the plan's record gains the entries of every
//! binding the run adds, in one batch ([`crate::record_run`]); a change whose batch write
//! fails fails without touching its policy, and the next one tries the batch again.
//! After the write, the record loses the bindings wid removed (changes that finish while
//! a record write is in flight share the next one); a record write that fails there
//! leaves the change partly applied.

use std::collections::{BTreeMap, BTreeSet};

use google_cloud_iam_admin_v1::model::ServiceAccount;
use google_cloud_iam_v1::model::Policy;
use wid_core::{Change, ChangeKind, ErrorKind, Outputs, Owner, ProviderError};

use crate::bindings::{RecordWrite, edit, entries, pairs};
use crate::client::GcpProvider;
use crate::error::Call;
use crate::ids::{self, PolicyOf};
use crate::record;
use crate::record_run::Reached;

/// How many times a write that lost an etag race is re-read and retried.
const ABORTED_ATTEMPTS: usize = 5;

impl GcpProvider {
    pub(crate) async fn apply_policy(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let id = &change.id;
        let resource = ids::policy_resource(id);
        let Some(of) = ids::policy_of(id) else {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!("{id} is not a policy wid knows how to edit"),
            ));
        };
        let wanted: BTreeSet<String> = match change.kind {
            ChangeKind::Delete => BTreeSet::new(),
            _ => change
                .desired
                .as_ref()
                .map(|d| d.attrs.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let have: BTreeSet<String> = change
            .observed
            .as_ref()
            .map(|o| o.attrs.keys().cloned().collect())
            .unwrap_or_default();
        // Every wanted line is (re)asserted, so a line that exists without wid's record is
        // taken over; removals are only lines observe proved are wid's.
        let add = pairs(&wanted);
        let remove = pairs(have.difference(&wanted));
        // The record holds every binding wid adds before any policy does.
        self.write_ahead(id, owner, &resource, &add)
            .await
            .map_err(|e| e.with_resource(id))?;
        let cached = self
            .policies
            .lock()
            .expect("policy cache lock is never poisoned")
            .remove(id)
            .map(|r| r.policy);
        let mut policy = match cached {
            Some(p) => Some(p),
            // The plan saw no such account: this run creates it (the policy change depends
            // on the create), and a new account's policy is empty, etag `ACAB`. Writing
            // with that etag is the read-modify-write without the read: if anything wrote
            // the policy since, the etag no longer matches, the write is `ABORTED`, and the
            // loop below re-reads it.
            None if fresh_account(change, &of) => Some(empty_policy()),
            None => self.read_policy(id).await?,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(mut current) = policy.take() else {
                if change.kind == ChangeKind::Delete {
                    // The resource is gone, and its policy with it.
                    break;
                }
                return Err(ProviderError::new(
                    ErrorKind::NotFound,
                    format!("failed to edit the IAM policy of {resource}: it does not exist"),
                )
                .with_resource(id));
            };
            if !edit(&mut current, &add, &remove) {
                break;
            }
            self.reached(id, Reached::Sent);
            match self.write_policy(&of, &resource, id, current).await {
                Ok(()) => break,
                Err(WriteError::Aborted(e)) if attempt < ABORTED_ATTEMPTS => {
                    tracing::debug!("{resource}: etag conflict, re-reading: {e}");
                    policy = self.read_policy(id).await?;
                }
                Err(WriteError::Aborted(e)) => {
                    return Err(e.with_hint("the policy kept changing under wid; run apply again"));
                }
                Err(WriteError::Gone) if change.kind == ChangeKind::Delete => break,
                Err(WriteError::Gone) => {
                    return Err(ProviderError::new(
                        ErrorKind::NotFound,
                        format!("failed to edit the IAM policy of {resource}: it does not exist"),
                    )
                    .with_resource(id));
                }
                Err(WriteError::Other(e)) => return Err(e),
            }
        }
        self.reached(id, Reached::Made);
        let removed = entries(&resource, have.difference(&wanted));
        if !removed.is_empty() {
            self.write_record(owner, &resource, &BTreeSet::new(), &removed)
                .await
                .map_err(|e| e.partly_applied().with_resource(id))?;
        }
        Ok(Outputs::new())
    }

    async fn write_policy(
        &self,
        of: &PolicyOf,
        resource: &str,
        id: &wid_core::ResourceId,
        policy: Policy,
    ) -> Result<(), WriteError> {
        let clients = self.clients().await.map_err(WriteError::Other)?;
        let op = match of {
            PolicyOf::Project(_) => "resourcemanager.projects.setIamPolicy",
            PolicyOf::ServiceAccount { .. } => "iam.serviceAccounts.setIamPolicy",
        };
        let call = Call::new(op, format!("write the IAM policy of {resource}"), resource).id(id);
        self.counter.count(op);
        let result = match of {
            PolicyOf::Project(_) => {
                let sent = clients
                    .projects
                    .set_iam_policy()
                    .set_resource(resource)
                    .set_policy(policy)
                    .send();
                self.call(&call, sent).await.map(drop)
            }
            PolicyOf::ServiceAccount { .. } => {
                let sent = clients
                    .iam
                    .set_iam_policy()
                    .set_resource(resource)
                    .set_policy(policy)
                    .send();
                self.call(&call, sent).await.map(drop)
            }
        };
        match result {
            Ok(()) => Ok(()),
            // A stale etag (`ABORTED`) is the only contended error of a policy write.
            Err(e) if e.kind() == ErrorKind::Contended => Err(WriteError::Aborted(e)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(WriteError::Gone),
            Err(e) => Err(WriteError::Other(e)),
        }
    }

    /// Brings the plan's record up to date with the bindings just added and removed on
    /// `resource`, and returns once a record write that includes them has succeeded (or
    /// failed). Record writes are serialized (they share the record's accounts) and
    /// grouped: the updates that arrive while one record write is in flight are written
    /// together by the next, so a burst of policy changes costs a few record writes, not
    /// one each. Every change of a group gets the group's result.
    pub(crate) async fn write_record(
        &self,
        owner: &Owner,
        resource: &str,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Result<(), ProviderError> {
        let fallback = resource.split('/').nth(1).unwrap_or_default();
        let (done, result) = tokio::sync::oneshot::channel();
        self.record_queue
            .lock()
            .expect("record queue lock is never poisoned")
            .push(RecordUpdate {
                plan: owner.plan.clone(),
                home: self.home_project(fallback),
                add: add.clone(),
                remove: remove.clone(),
                done,
            });
        {
            let mut record = self.record_to_write().await;
            let batch = std::mem::take(
                &mut *self
                    .record_queue
                    .lock()
                    .expect("record queue lock is never poisoned"),
            );
            let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
            for u in batch {
                let g = groups.entry((u.plan, u.home)).or_default();
                g.add.extend(u.add);
                g.remove.extend(u.remove);
                g.waiting.push(u.done);
            }
            for ((plan, home), g) in groups {
                let outcome = if record.loaded {
                    let mut draft = record.clone();
                    let writes = draft.plan_writes(&plan, &home, &g.add, &g.remove);
                    let mut outcome = Ok(());
                    for w in writes {
                        if let Err(e) = self.send_record_write(&plan, &w).await {
                            outcome = Err(e);
                            break;
                        }
                        record.apply(&w);
                    }
                    outcome
                } else {
                    Err(ProviderError::new(
                        ErrorKind::Invalid,
                        "the plan's record of bindings was not read before apply",
                    ))
                };
                for w in g.waiting {
                    // A waiter that is gone (its run was cancelled) needs no answer.
                    let _ = w.send(outcome.clone());
                }
            }
        }
        match result.await {
            Ok(outcome) => outcome,
            Err(_) => Err(ProviderError::new(
                ErrorKind::Transient,
                "the record write that carried this change was cancelled",
            )),
        }
    }

    /// Makes one record write of a plan.
    pub(crate) async fn send_record_write(
        &self,
        plan: &str,
        write: &RecordWrite,
    ) -> Result<(), ProviderError> {
        let clients = self.clients().await?;
        {
            match write.clone() {
                RecordWrite::Create {
                    project,
                    account_id,
                    entries,
                } => {
                    let call = Call::new(
                        "iam.serviceAccounts.create",
                        format!("create record account {account_id} of plan {plan}"),
                        format!("projects/{project}"),
                    );
                    self.counter.count(call.op);
                    let sent = clients
                        .iam
                        .create_service_account()
                        .set_name(format!("projects/{project}"))
                        .set_account_id(&account_id)
                        .set_service_account(
                            ServiceAccount::new()
                                .set_display_name(record::record_display_name(plan))
                                .set_description(entries.join(" ")),
                        )
                        .send();
                    self.call(&call, sent).await?;
                }
                RecordWrite::Update {
                    project,
                    account_id,
                    entries,
                } => {
                    let name = format!(
                        "projects/{project}/serviceAccounts/{account_id}@{project}.{}",
                        crate::names::SA_DOMAIN
                    );
                    let call = Call::new(
                        "iam.serviceAccounts.update",
                        format!("update record account {account_id} of plan {}", plan),
                        &name,
                    );
                    self.counter.count(call.op);
                    let sent = clients
                        .iam
                        .patch_service_account()
                        .set_service_account(
                            ServiceAccount::new()
                                .set_name(&name)
                                .set_description(entries.join(" ")),
                        )
                        .set_update_mask(
                            google_cloud_wkt::FieldMask::default().set_paths(["description"]),
                        )
                        .send();
                    self.call(&call, sent).await?;
                }
                RecordWrite::Delete {
                    project,
                    account_id,
                } => {
                    let name = format!(
                        "projects/{project}/serviceAccounts/{account_id}@{project}.{}",
                        crate::names::SA_DOMAIN
                    );
                    let call = Call::new(
                        "iam.serviceAccounts.delete",
                        format!(
                            "delete the emptied record account {account_id} of plan {}",
                            plan
                        ),
                        &name,
                    );
                    self.counter.count(call.op);
                    let sent = clients.iam.delete_service_account().set_name(&name).send();
                    match self.call(&call, sent).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}

/// The etag of a policy never written (`ACAB` in base64), as IAM returns it for a new
/// service account.
const EMPTY_POLICY_ETAG: [u8; 3] = [0x00, 0x20, 0x01];

/// A policy never written: no bindings, [`EMPTY_POLICY_ETAG`].
fn empty_policy() -> Policy {
    Policy::new().set_etag(bytes::Bytes::from_static(&EMPTY_POLICY_ETAG))
}

/// Whether `change` adds to the policy of a service account the plan saw no trace of (its
/// policy was not observed, so the account did not exist).
fn fresh_account(change: &Change, of: &PolicyOf) -> bool {
    matches!(of, PolicyOf::ServiceAccount { .. })
        && change.kind == ChangeKind::Create
        && change.observed.is_none()
}

/// One change's record update, waiting for the next record write.
#[derive(Debug)]
pub(crate) struct RecordUpdate {
    plan: String,
    /// The project new record accounts go to.
    home: String,
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
    done: tokio::sync::oneshot::Sender<Result<(), ProviderError>>,
}

/// The updates of one plan and home project written together.
#[derive(Default)]
struct Group {
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
    waiting: Vec<tokio::sync::oneshot::Sender<Result<(), ProviderError>>>,
}

/// How a policy write failed.
enum WriteError {
    /// The etag was stale.
    Aborted(ProviderError),
    /// The resource does not exist (any more).
    Gone,
    /// Anything else.
    Other(ProviderError),
}
