//! The executor: runs changes in dependency order, independent ones concurrently under
//! each provider's limit, changes sharing a serialization key one at a time, retrying
//! retryable errors. A failure stops only what depends on it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use tokio::sync::Semaphore;
use wid_core::{
    AttrValue, Change, ChangeKind, ErrorKind, Outputs, Owner, ProviderError, ResourceId,
};

use super::{Providers, RetryPolicy};

/// How one change ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Applied, after this many attempts.
    Done {
        /// Attempts made (1 when the first succeeded).
        attempts: u32,
    },
    /// Failed for good.
    Failed {
        /// The last error.
        error: ProviderError,
        /// Attempts made.
        attempts: u32,
        /// Some attempt changed the object before failing: it is left partly applied.
        partial: bool,
    },
    /// Not attempted because something it depends on failed or was skipped.
    Skipped {
        /// The dependency that did not happen.
        because: ResourceId,
    },
}

/// One change's result.
#[derive(Debug, Clone)]
pub struct Step {
    /// The resource.
    pub id: ResourceId,
    /// What was to be done.
    pub kind: ChangeKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time from start to end, retries included.
    pub elapsed: Duration,
}

/// What an apply did, sorted by resource id.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One step per actionable change.
    pub steps: Vec<Step>,
}

impl Report {
    /// Counts of done, failed and skipped steps.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for s in &self.steps {
            match s.outcome {
                Outcome::Done { .. } => counts.0 += 1,
                Outcome::Failed { .. } => counts.1 += 1,
                Outcome::Skipped { .. } => counts.2 += 1,
            }
        }
        counts
    }

    /// The resources a failed step left partly applied.
    pub fn partial(&self) -> impl Iterator<Item = &ResourceId> {
        self.steps.iter().filter_map(|s| match s.outcome {
            Outcome::Failed { partial: true, .. } => Some(&s.id),
            _ => None,
        })
    }

    /// Whether every step was done.
    pub fn succeeded(&self) -> bool {
        let (_, failed, skipped) = self.counts();
        failed == 0 && skipped == 0
    }
}

/// Receives progress events; the CLI prints them on stderr.
pub trait Progress: Send + Sync {
    /// A change starts.
    fn started(&self, change: &Change);
    /// A retryable error; the change is retried after `delay`.
    fn retrying(&self, id: &ResourceId, attempt: u32, error: &ProviderError, delay: Duration);
    /// A change ended; `finished` of `total` are done.
    fn finished(&self, step: &Step, finished: usize, total: usize);
}

/// Runs every create, update and delete in `changes`. No-ops and conflicts are not run
/// (the caller refuses to apply a plan with conflicts).
pub async fn execute(
    providers: &Providers,
    changes: &[Change],
    owner: &Owner,
    retry: &RetryPolicy,
    progress: &dyn Progress,
) -> Report {
    let actionable: BTreeMap<&ResourceId, &Change> = changes
        .iter()
        .filter(|c| {
            matches!(
                c.kind,
                ChangeKind::Create | ChangeKind::Update | ChangeKind::Delete
            )
        })
        .map(|c| (&c.id, c))
        .collect();
    let deps = dependencies(&actionable);
    let total = actionable.len();
    let limits: BTreeMap<String, Arc<Semaphore>> = actionable
        .keys()
        .map(|id| id.provider().to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|p| {
            let n = providers.get(&p).map_or(1, |x| x.concurrency().max(1));
            (p, Arc::new(Semaphore::new(n)))
        })
        .collect();
    let keys: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>> = Mutex::default();
    let outputs: Mutex<BTreeMap<ResourceId, Outputs>> = Mutex::default();

    let mut finished: BTreeMap<ResourceId, Step> = BTreeMap::new();
    let mut started: BTreeSet<&ResourceId> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    loop {
        // Skip whatever waits on something that failed or was skipped; start whatever is
        // ready. Repeat until nothing changes, since a skip can make others skippable.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (id, change) in &actionable {
                if started.contains(id) {
                    continue;
                }
                let wait = &deps[*id];
                if let Some(bad) = wait.iter().find(|d| {
                    finished
                        .get(*d)
                        .is_some_and(|s| !matches!(s.outcome, Outcome::Done { .. }))
                }) {
                    started.insert(id);
                    let step = Step {
                        id: (*id).clone(),
                        kind: change.kind,
                        outcome: Outcome::Skipped {
                            because: bad.clone(),
                        },
                        elapsed: Duration::ZERO,
                    };
                    progress.finished(&step, finished.len() + 1, total);
                    finished.insert((*id).clone(), step);
                    progressed = true;
                    continue;
                }
                if wait.iter().all(|d| finished.contains_key(d)) {
                    started.insert(id);
                    let change = resolve(
                        change,
                        &outputs.lock().expect("outputs lock is never poisoned"),
                    );
                    let limit = limits[id.provider()].clone();
                    let key_lock = change.serialize_key().map(|k| {
                        keys.lock()
                            .expect("key lock map is never poisoned")
                            .entry(k.to_owned())
                            .or_default()
                            .clone()
                    });
                    running.push(run_one(
                        providers, change, owner, retry, progress, limit, key_lock,
                    ));
                    progressed = true;
                }
            }
        }
        let Some((step, out)) = running.next().await else {
            break;
        };
        if let Some(out) = out {
            outputs
                .lock()
                .expect("outputs lock is never poisoned")
                .insert(step.id.clone(), out);
        }
        progress.finished(&step, finished.len() + 1, total);
        finished.insert(step.id.clone(), step);
    }
    Report {
        steps: finished.into_values().collect(),
    }
}

/// What each actionable change waits for. Creates and updates wait for the creates and
/// updates of what they depend on; a delete waits for the deletes of everything that
/// depends on it (the reverse order).
fn dependencies<'a>(
    actionable: &BTreeMap<&'a ResourceId, &'a Change>,
) -> BTreeMap<&'a ResourceId, Vec<ResourceId>> {
    let mut deps: BTreeMap<&ResourceId, Vec<ResourceId>> =
        actionable.keys().map(|id| (*id, Vec::new())).collect();
    for (id, change) in actionable {
        if change.kind == ChangeKind::Delete {
            continue;
        }
        for dep in change.depends_on() {
            if actionable
                .get(dep)
                .is_some_and(|d| d.kind != ChangeKind::Delete)
            {
                deps.get_mut(*id)
                    .expect("every actionable id has an entry")
                    .push(dep.clone());
            }
        }
    }
    for (id, change) in actionable {
        if change.kind != ChangeKind::Delete {
            continue;
        }
        for dep in change.depends_on() {
            if actionable
                .get(dep)
                .is_some_and(|d| d.kind == ChangeKind::Delete)
            {
                // `id` depends on `dep`: delete `id` first.
                if let Some(list) = deps.get_mut(dep) {
                    list.push((*id).clone());
                }
            }
        }
    }
    deps
}

/// Fills unknown attribute values from the outputs of applied dependencies.
fn resolve(change: &Change, outputs: &BTreeMap<ResourceId, Outputs>) -> Change {
    let mut change = change.clone();
    let fill = |value: &mut AttrValue| {
        if let AttrValue::Unknown { from, output } = value
            && let Some(v) = outputs.get(from).and_then(|o| o.get(output.as_str()))
        {
            *value = AttrValue::Known(Value::String(v.clone()));
        }
    };
    if let Some(desired) = change.desired.as_mut() {
        desired.attrs.values_mut().for_each(fill);
    }
    for attr in &mut change.attrs {
        if let Some(after) = attr.after.as_mut() {
            fill(after);
        }
    }
    change
}

async fn run_one(
    providers: &Providers,
    change: Change,
    owner: &Owner,
    retry: &RetryPolicy,
    progress: &dyn Progress,
    limit: Arc<Semaphore>,
    key_lock: Option<Arc<tokio::sync::Mutex<()>>>,
) -> (Step, Option<Outputs>) {
    let _permit = limit
        .acquire_owned()
        .await
        .expect("semaphores are never closed");
    let _key = match &key_lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    let start = Instant::now();
    progress.started(&change);
    // The step reports the change as planned, even when a retry re-planned it.
    let (id, kind) = (change.id.clone(), change.kind);
    let step = |outcome| Step {
        id: id.clone(),
        kind,
        outcome,
        elapsed: start.elapsed(),
    };
    let Some(provider) = providers.get(change.id.provider()) else {
        let error = ProviderError::new(
            ErrorKind::Invalid,
            format!("no provider serves {}", change.id),
        );
        return (
            step(Outcome::Failed {
                error,
                attempts: 0,
                partial: false,
            }),
            None,
        );
    };
    let unresolved = change.desired.as_ref().and_then(|d| {
        d.attrs
            .iter()
            .find(|(_, v)| matches!(v, AttrValue::Unknown { .. }))
    });
    if let Some((key, _)) = unresolved {
        let error = ProviderError::new(
            ErrorKind::Invalid,
            format!(
                "{key} of {} is not known: the resource it comes from produced no such output",
                change.id
            ),
        );
        return (
            step(Outcome::Failed {
                error,
                attempts: 0,
                partial: false,
            }),
            None,
        );
    }
    let mut change = change;
    let mut attempt = 0;
    // Whether some attempt changed the object before failing.
    let mut partial = false;
    loop {
        attempt += 1;
        let error = match provider.apply(&change, owner).await {
            Ok(out) => return (step(Outcome::Done { attempts: attempt }), Some(out)),
            Err(error) => error,
        };
        partial |= error.partial;
        if !error.kind().is_retryable() || attempt >= retry.max_attempts {
            return (
                step(Outcome::Failed {
                    error,
                    attempts: attempt,
                    partial,
                }),
                None,
            );
        }
        // Full jitter, but never sooner than the API asked.
        let delay = retry
            .delay(attempt)
            .max(error.retry_after.unwrap_or_default());
        progress.retrying(&change.id, attempt, &error, delay);
        tokio::time::sleep(delay).await;
        // A change can fail half-way (a role created, its policy not yet attached), so
        // the retry starts from the live state, not from the plan's old picture of it.
        match refresh(provider.as_ref(), &change, owner).await {
            Some(fresh) if fresh.kind == ChangeKind::NoOp => {
                return (
                    step(Outcome::Done { attempts: attempt }),
                    Some(Outputs::new()),
                );
            }
            Some(fresh) if fresh.kind == ChangeKind::Conflict => {
                let why = match &fresh.reason {
                    wid_core::Reason::Blocked(why) => why.clone(),
                    _ => format!("{} changed while wid was applying it", fresh.id),
                };
                let error = ProviderError::new(ErrorKind::Conflict, why).with_resource(&fresh.id);
                return (
                    step(Outcome::Failed {
                        error,
                        attempts: attempt,
                        partial,
                    }),
                    None,
                );
            }
            Some(fresh) => change = fresh,
            None => {}
        }
    }
}

/// Re-observes one create or update and diffs it again; `None` when that is not possible
/// (a delete, or the observation failed too), in which case the change is retried as is.
async fn refresh(
    provider: &dyn wid_core::Provider,
    change: &Change,
    owner: &Owner,
) -> Option<Change> {
    let desired = change.desired.as_ref()?;
    let scope = Owner {
        plan: owner.plan.clone(),
        prune: false,
    };
    let observed = provider.observe(&[desired], &scope).await.ok()?;
    wid_core::diff(std::slice::from_ref(desired), &observed, false)
        .into_iter()
        .find(|c| c.id == change.id)
}

#[cfg(test)]
mod tests;
