//! The provider trait and what flows through it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::{Change, Observed, ProviderError, Resource, ResourceId};

/// The reads [`Provider::read_ahead`] started, to be driven to their end on their own task.
pub type ReadAhead = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Values an applied resource hands to its dependents (`arn`, `client_id`).
pub type Outputs = BTreeMap<String, String>;

/// The ownership scope: the plan's name. Every object wid creates carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The plan's `name`.
    pub plan: String,
    /// Whether observe must also find objects that carry this plan's mark but left the
    /// plan (`--prune`). Providers whose APIs cannot filter by mark (IAM roles) only scan
    /// for them when this is set.
    pub prune: bool,
}

/// What a provider learns about the plan's clusters before anything is observed: the
/// issuers the plan does not spell out, and whether the clusters can serve workload
/// identity at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preflight {
    /// The OIDC issuer URL of each plan cluster (by the plan's name) that the provider
    /// looked up.
    pub issuers: BTreeMap<String, String>,
    /// Other facts compile needs, by plan cluster name and fact name (a GKE cluster's
    /// `project_number`).
    pub facts: BTreeMap<String, BTreeMap<String, String>>,
    /// Problems that do not stop the plan but will bite at run time (a node pool whose
    /// pods get the node's identity), each naming what it is about.
    pub warnings: Vec<String>,
}

impl Preflight {
    /// Adds another provider's findings.
    pub fn extend(&mut self, other: Preflight) {
        self.issuers.extend(other.issuers);
        for (cluster, facts) in other.facts {
            self.facts.entry(cluster).or_default().extend(facts);
        }
        self.warnings.extend(other.warnings);
    }

    /// One fact of one cluster.
    pub fn fact(&self, cluster: &str, name: &str) -> Option<&str> {
        self.facts.get(cluster)?.get(name).map(String::as_str)
    }
}

/// Counts API calls by operation, so every plan and apply can say how many it made, and
/// knows which calls are in flight, so a deadline can say what it was waiting for.
///
/// Cheap to clone; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<std::sync::Mutex<BTreeMap<String, Arc<AtomicU64>>>>,
    in_flight: Arc<std::sync::Mutex<InFlight>>,
}

#[derive(Debug, Default)]
struct InFlight {
    calls: BTreeMap<String, usize>,
    last: Option<String>,
}

impl CallCounter {
    /// Counts one call of `operation` (`iam:GetRole`, `k8s:LIST serviceaccounts`).
    pub fn count(&self, operation: &str) {
        let counter = {
            let mut map = self
                .counts
                .lock()
                .expect("call counter lock is never poisoned");
            map.entry(operation.to_owned()).or_default().clone()
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.in_flight().last = Some(operation.to_owned());
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .expect("in-flight lock is never poisoned")
    }

    /// Counts one call of `operation` and marks it in flight until the guard is dropped.
    pub fn start(&self, operation: &str) -> CallGuard {
        self.count(operation);
        *self
            .in_flight()
            .calls
            .entry(operation.to_owned())
            .or_default() += 1;
        CallGuard {
            counter: self.clone(),
            operation: operation.to_owned(),
        }
    }

    /// The calls in flight now, by operation, with how many of each; when none is marked
    /// (a provider that only counts), the last call counted.
    pub fn waiting_on(&self) -> Vec<String> {
        let state = self.in_flight();
        if state.calls.is_empty() {
            return state
                .last
                .iter()
                .map(|op| format!("{op} (the last call started)"))
                .collect();
        }
        state
            .calls
            .iter()
            .map(|(op, n)| {
                if *n == 1 {
                    op.clone()
                } else {
                    format!("{op} ({n} calls)")
                }
            })
            .collect()
    }

    /// Total calls so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Calls per operation, sorted.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let map = self
            .counts
            .lock()
            .expect("call counter lock is never poisoned");
        map.iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// A call in flight (see [`CallCounter::start`]); dropping it ends the call.
#[derive(Debug)]
pub struct CallGuard {
    counter: CallCounter,
    operation: String,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let mut state = self.counter.in_flight();
        if let Some(n) = state.calls.get_mut(&self.operation) {
            *n -= 1;
            if *n == 0 {
                state.calls.remove(&self.operation);
            }
        }
    }
}

/// One cloud or cluster API family. The engine owns the plan, the diff and the schedule;
/// a provider only reads and writes.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The id prefix this provider serves (`k8s`, `aws`).
    fn name(&self) -> &'static str;

    /// How many of this provider's changes may run at once.
    fn concurrency(&self) -> usize {
        8
    }

    /// Reads what the plan's clusters of this provider's kind need before compile:
    /// issuers to discover, and checks that fail the plan (naming the cluster) when a
    /// cluster cannot serve workload identity. `clusters` are the plan's names of the
    /// clusters whose workloads use this provider. Most providers need nothing.
    async fn preflight(&self, clusters: &[String]) -> Result<Preflight, ProviderError> {
        let _ = clusters;
        Ok(Preflight::default())
    }

    /// Reads the live state of every wanted resource, plus every object that carries this
    /// plan's mark (for prune). Takes the whole set so the provider can batch reads.
    async fn observe(&self, wanted: &[&Resource], owner: &Owner)
    -> Result<Observed, ProviderError>;

    /// Starts the reads [`observe`](Self::observe) will make for `owner` when it is asked
    /// for objects with these ids, before compile knows their attributes (the plan names
    /// the ids; only a cloud's answers fill in the attributes), and keeps what they return
    /// for that observe, which waits for a read still under way rather than making it
    /// again. A read that failed here fails that observe as if observe had made it (the
    /// engine's retry of observe then reads afresh). Every read is registered before this
    /// returns, so an observe that starts before the future is polled never reads twice;
    /// one observe takes all it needs, and nothing read ahead serves two. Providers whose
    /// reads need compiled attributes keep the default: nothing.
    fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        let _ = (ids, owner);
        Box::pin(async {})
    }

    /// Drops whatever [`read_ahead`](Self::read_ahead) kept that observe did not use, so
    /// that a later observe reads the world again.
    fn forget_read_ahead(&self) {}

    /// Carries out one change (never a no-op or a conflict) and returns the outputs
    /// dependents need. Unknown attributes of `change.desired` are already filled in.
    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError>;

    /// Learns, before the first change of an apply run is scheduled, every change of this
    /// provider the run will carry out, each with its owner (attributes that come from
    /// other changes' outputs may still be unknown). A provider whose changes share
    /// bookkeeping (a record of what it added) can plan it for the whole run here and
    /// write it once, from its first [`apply`](Self::apply). It must not call any API
    /// here. A run is bracketed by this and [`run_ended`](Self::run_ended); runs of one
    /// provider never overlap.
    fn run_starting(&self, changes: &[(&Change, &Owner)]) {
        let _ = changes;
    }

    /// Called once the run's last change has ended (after a run to the end, a drain by
    /// Ctrl-C and a `--timeout`; not after a second Ctrl-C, which drops everything):
    /// undoes bookkeeping the provider wrote ahead for changes that did not happen. An
    /// error is reported as an error of the run.
    async fn run_ended(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}
