//! The executor: runs changes in dependency order, independent ones concurrently under
//! each provider's adaptive limit, changes sharing a serialization key one at a time,
//! retrying retryable errors after re-reading the object. A failure stops only what
//! depends on it. A [`Stop`] ends the run early (Ctrl-C drains it, `--timeout` or a second
//! Ctrl-C aborts it) and the report still says what was done and what was not.
//!
//! Scheduling is [`schedule::Schedule`]'s: O(1) amortized per finished change, on integer
//! indices. This task only starts ready changes and records finished ones; the calls run
//! as futures it polls, so no scan ever holds them up.

mod schedule;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use wid_core::{
    AttrValue, Change, ChangeKind, ErrorKind, Outputs, Owner, Pace, PacePermit, ProviderError,
    ResourceId,
};

use self::schedule::Schedule;
use super::stop::{Stop, StopLevel, StopReason};
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
    /// Not started: the run was stopped first.
    NotStarted,
    /// In flight when the run was aborted: it may or may not have happened, in part or in
    /// whole; the next plan shows where it stands.
    Abandoned,
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
    /// Why the run stopped early, if it was asked to.
    pub stopped: Option<StopReason>,
    /// Errors of the run itself rather than of one change: a provider's clean-up after
    /// the last change (see [`wid_core::Provider::run_ended`]) that failed.
    pub errors: Vec<ProviderError>,
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
                Outcome::NotStarted | Outcome::Abandoned => {}
            }
        }
        counts
    }

    /// Counts of steps never started and steps abandoned in flight.
    pub fn not_run(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for s in &self.steps {
            match s.outcome {
                Outcome::NotStarted => counts.0 += 1,
                Outcome::Abandoned => counts.1 += 1,
                _ => {}
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

    /// Whether every step was done and the run had no error of its own.
    pub fn succeeded(&self) -> bool {
        self.errors.is_empty()
            && self
                .steps
                .iter()
                .all(|s| matches!(s.outcome, Outcome::Done { .. }))
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

/// How to run: retries, the concurrency cap, and the stop switch.
#[derive(Debug, Clone, Default)]
pub struct ExecuteOptions {
    /// How retryable errors are retried.
    pub retry: RetryPolicy,
    /// At most this many changes of any one provider at once (`--parallelism`), below the
    /// provider's own limit.
    pub parallelism: Option<usize>,
    /// The switch that stops the run early; `None` runs to the end.
    pub stop: Option<Stop>,
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
    let options = ExecuteOptions {
        retry: retry.clone(),
        ..ExecuteOptions::default()
    };
    execute_with(providers, changes, owner, &options, progress).await
}

/// Who owns each change: one scope for all, or a scope per change when a plan directory
/// holds several teams.
#[derive(Debug, Clone)]
pub struct Owners {
    default: Owner,
    by_id: std::collections::HashMap<wid_core::ResourceId, Owner>,
}

impl Owners {
    /// Every change owned by `default`.
    pub fn new(default: Owner) -> Self {
        Self {
            default,
            by_id: std::collections::HashMap::new(),
        }
    }

    /// Sets the owner of one change.
    pub fn set(&mut self, id: wid_core::ResourceId, owner: Owner) {
        self.by_id.insert(id, owner);
    }

    /// The owner of a change.
    pub fn of(&self, id: &wid_core::ResourceId) -> &Owner {
        self.by_id.get(id).unwrap_or(&self.default)
    }
}

/// [`execute`] with a concurrency cap and a stop switch.
pub async fn execute_with(
    providers: &Providers,
    changes: &[Change],
    owner: &Owner,
    options: &ExecuteOptions,
    progress: &dyn Progress,
) -> Report {
    execute_scoped(
        providers,
        changes,
        &Owners::new(owner.clone()),
        options,
        progress,
    )
    .await
}

/// [`execute_with`] where each change may belong to another ownership scope.
pub async fn execute_scoped(
    providers: &Providers,
    changes: &[Change],
    owners: &Owners,
    options: &ExecuteOptions,
    progress: &dyn Progress,
) -> Report {
    let mut schedule = Schedule::new(changes);
    let total = schedule.len();
    // Each provider learns its share of the run before anything is scheduled.
    for name in schedule.providers() {
        let Some(provider) = providers.get(name) else {
            continue;
        };
        let mine: Vec<(&Change, &Owner)> = (0..total)
            .map(|i| schedule.change(i))
            .filter(|c| c.id.provider() == *name)
            .map(|c| (c, owners.of(&c.id)))
            .collect();
        provider.run_starting(&mine);
    }
    // One adaptive limit per provider: halved by throttles, grown by successes, never
    // above the provider's concurrency or --parallelism.
    let paces: Vec<Arc<Pace>> = schedule
        .providers()
        .iter()
        .map(|name| {
            let own = providers.get(name).map_or(1, |p| p.concurrency());
            Pace::new(cap(own, options.parallelism))
        })
        .collect();
    let stop = options.stop.clone().unwrap_or_default();
    let mut steps: Vec<Option<Step>> = vec![None; total];
    let mut outputs: Vec<Option<Outputs>> = vec![None; total];
    let mut reported = 0;
    let mut running = FuturesUnordered::new();
    loop {
        if stop.level() == StopLevel::Run {
            for (p, pace) in paces.iter().enumerate() {
                while schedule.has_ready(p) {
                    let Some(permit) = pace.try_acquire() else {
                        break;
                    };
                    let Some(i) = schedule.start(p) else { break };
                    let change = resolve(schedule.change(i), &schedule, &outputs);
                    let run = Run {
                        providers,
                        owners,
                        retry: &options.retry,
                        progress,
                        pace,
                        stop: &stop,
                    };
                    running.push(run.one(i, change, permit));
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let next = tokio::select! {
            biased;
            () = stop.reached(StopLevel::Abort) => None,
            next = running.next() => next,
        };
        let Some((i, step, out)) = next else { break };
        let ok = matches!(step.outcome, Outcome::Done { .. });
        outputs[i] = out;
        reported += 1;
        progress.finished(&step, reported, total);
        steps[i] = Some(step);
        for (j, because) in schedule.finish(i, ok) {
            let change = schedule.change(j);
            let step = Step {
                id: change.id.clone(),
                kind: change.kind,
                outcome: Outcome::Skipped {
                    because: schedule.change(because).id.clone(),
                },
                elapsed: Duration::ZERO,
            };
            reported += 1;
            progress.finished(&step, reported, total);
            steps[j] = Some(step);
        }
    }
    // Whatever is still in flight was aborted: dropping the futures cancels the calls.
    drop(running);
    let (never, in_flight) = schedule.unfinished();
    for (list, outcome) in [
        (never, Outcome::NotStarted),
        (in_flight, Outcome::Abandoned),
    ] {
        for i in list {
            let change = schedule.change(i);
            steps[i] = Some(Step {
                id: change.id.clone(),
                kind: change.kind,
                outcome: outcome.clone(),
                elapsed: Duration::ZERO,
            });
        }
    }
    Report {
        steps: steps.into_iter().flatten().collect(),
        stopped: stop.reason(),
        errors: run_ended(providers, &schedule, &stop).await,
    }
}

/// Lets each provider of the run clean up after its last change, unless a second Ctrl-C
/// aborted the run (it wants out at once: nothing more is sent). A second Ctrl-C during
/// the clean-up stops waiting for it.
async fn run_ended(
    providers: &Providers,
    schedule: &Schedule<'_>,
    stop: &Stop,
) -> Vec<ProviderError> {
    if stop.aborted_by() == Some(StopReason::Interrupted) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for name in schedule.providers() {
        let Some(provider) = providers.get(name) else {
            continue;
        };
        let ended = tokio::select! {
            biased;
            () = interrupted_abort(stop) => return errors,
            ended = provider.run_ended() => ended,
        };
        if let Err(e) = ended {
            errors.push(e);
        }
    }
    errors
}

/// Resolves once a second Ctrl-C aborts the run (never when `--timeout` does).
async fn interrupted_abort(stop: &Stop) {
    stop.reached(StopLevel::Abort).await;
    if stop.aborted_by() != Some(StopReason::Interrupted) {
        std::future::pending::<()>().await;
    }
}

/// A provider's limit under the run's cap.
fn cap(own: usize, parallelism: Option<usize>) -> usize {
    parallelism.map_or(own, |p| own.min(p)).max(1)
}

/// Fills unknown attribute values from the outputs of applied dependencies.
fn resolve(change: &Change, schedule: &Schedule<'_>, outputs: &[Option<Outputs>]) -> Change {
    let mut change = change.clone();
    let fill = |value: &mut AttrValue| {
        if let AttrValue::Unknown { from, output } = value
            && let Some(v) = schedule
                .index_of(from)
                .and_then(|i| outputs[i].as_ref())
                .and_then(|o| o.get(output.as_str()))
        {
            *value = AttrValue::Known(Value::String(v.clone()));
        }
    };
    if let Some(desired) = change.desired.as_mut()
        && desired
            .attrs
            .values()
            .any(|v| matches!(v, AttrValue::Unknown { .. }))
    {
        Arc::make_mut(desired).attrs.values_mut().for_each(fill);
    }
    for attr in &mut change.changed {
        if let Some(after) = attr.after.as_mut() {
            fill(after);
        }
    }
    change
}

/// What every running change shares.
struct Run<'r> {
    providers: &'r Providers,
    owners: &'r Owners,
    retry: &'r RetryPolicy,
    progress: &'r dyn Progress,
    pace: &'r Arc<Pace>,
    stop: &'r Stop,
}

impl Run<'_> {
    /// Applies change `i`, retrying retryable errors, holding a place in its provider's
    /// pace until it ends (backoff included, so a throttled provider really slows down).
    async fn one(
        self,
        i: usize,
        change: Change,
        permit: PacePermit,
    ) -> (usize, Step, Option<Outputs>) {
        let _permit = permit;
        let start = Instant::now();
        self.progress.started(&change);
        // The step reports the change as planned, even when a retry re-planned it.
        let (id, kind) = (change.id.clone(), change.kind);
        let step = |outcome| Step {
            id: id.clone(),
            kind,
            outcome,
            elapsed: start.elapsed(),
        };
        let failed = |error, attempts, partial| {
            (
                i,
                step(Outcome::Failed {
                    error,
                    attempts,
                    partial,
                }),
                None,
            )
        };
        let Some(provider) = self.providers.get(change.id.provider()) else {
            let error = ProviderError::new(
                ErrorKind::Invalid,
                format!("no provider serves {}", change.id),
            );
            return failed(error, 0, false);
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
            return failed(error, 0, false);
        }
        let mut change = change;
        let mut attempt = 0;
        // Whether some attempt changed the object before failing.
        let mut partial = false;
        loop {
            attempt += 1;
            let result = provider.apply(&change, self.owners.of(&change.id)).await;
            self.pace.record(&result);
            let error = match result {
                Ok(out) => return (i, step(Outcome::Done { attempts: attempt }), Some(out)),
                Err(error) => error,
            };
            partial |= error.partial;
            if !error.kind().is_retryable() || attempt >= self.retry.max_attempts {
                return failed(error, attempt, partial);
            }
            // Full jitter, but never sooner than the API asked.
            let delay = self.retry.wait(attempt, &error);
            self.progress.retrying(&change.id, attempt, &error, delay);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // Stopping: a retry would be a new call, so the change ends here.
                () = self.stop.reached(StopLevel::Drain) => {
                    return failed(error, attempt, partial);
                }
            }
            // A change can fail half-way (a role created, its policy not yet attached),
            // so the retry starts from the live state, not from the plan's old picture.
            match refresh(provider.as_ref(), &change, self.owners.of(&change.id)).await {
                Some(fresh) if fresh.kind == ChangeKind::NoOp => {
                    return (
                        i,
                        step(Outcome::Done { attempts: attempt }),
                        Some(Outputs::new()),
                    );
                }
                Some(fresh) if fresh.kind == ChangeKind::Conflict => {
                    let why = match &fresh.reason {
                        wid_core::Reason::Blocked(why) => why.clone(),
                        _ => format!("{} changed while wid was applying it", fresh.id),
                    };
                    let error =
                        ProviderError::new(ErrorKind::Conflict, why).with_resource(&fresh.id);
                    return failed(error, attempt, partial);
                }
                Some(fresh) => change = fresh,
                None => {}
            }
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
