//! The engine: observing through providers, and executing changes as a dependency graph
//! with bounded concurrency, retries, and a report of what was done.

mod execute;
mod retry;
mod spawned;
mod stop;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use execute::{
    ExecuteOptions, Outcome, Owners, Progress, Report, Step, execute, execute_scoped, execute_with,
};
pub use retry::{RetryPolicy, retried};
pub(crate) use spawned::Spawned;
pub use stop::{Stop, StopLevel, StopReason};
use wid_core::{Observed, Owner, Provider, ProviderError, Resource, ResourceId};

/// The providers of one run, by the id prefix they serve (`k8s`, `aws`).
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
    retry: RetryPolicy,
}

impl Providers {
    /// Registers a provider under its name.
    pub fn add(&mut self, provider: Arc<dyn Provider>) {
        self.by_name.insert(provider.name().to_owned(), provider);
    }

    /// Sets how whole reads (observe) are retried when a retryable error escapes the
    /// provider's own retries.
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// The same providers but the one named `name` (`--cloud-only` leaves Kubernetes
    /// out).
    pub fn without(&self, name: &str) -> Providers {
        let mut out = self.clone();
        out.by_name.remove(name);
        out
    }

    /// Only the provider with this name (none if there is none).
    pub fn only(&self, name: &str) -> Providers {
        let mut out = self.clone();
        out.by_name.retain(|n, _| n == name);
        out
    }

    /// The provider serving ids with this prefix.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    /// Starts each provider's [`read_ahead`](Provider::read_ahead) of the ids it serves,
    /// one set per ownership scope, apart from the caller (compile, which does not yield,
    /// does not hold them up), where `on` says. What they read serves the observes until
    /// the returned guard is dropped, which stops them and drops what is left.
    pub fn read_ahead(&self, scopes: Vec<(Vec<ResourceId>, Owner)>, on: ReadAheadOn) -> ReadAheads {
        let mut out = ReadAheads::default();
        for (name, provider) in &self.by_name {
            let mut started = false;
            for (ids, owner) in &scopes {
                let ids: Vec<ResourceId> = ids
                    .iter()
                    .filter(|id| id.provider() == name.as_str())
                    .cloned()
                    .collect();
                if ids.is_empty() && !owner.prune {
                    continue;
                }
                let reads = Arc::clone(provider).read_ahead(ids, owner.clone());
                out.tasks.push(match on {
                    ReadAheadOn::Workers => Spawned::on_workers(reads),
                    ReadAheadOn::OwnThreads => Spawned::start(reads),
                });
                started = true;
            }
            if started {
                out.providers.push(Arc::clone(provider));
            }
        }
        out
    }

    /// Observes every desired resource, each provider with its whole share at once (so it
    /// can batch), all providers concurrently. A provider's observe that fails with a
    /// retryable error its own retries did not spend is run again ([`retried`]).
    pub async fn observe(
        &self,
        desired: &[impl Borrow<Resource>],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let mut by_provider: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
        for r in desired {
            let r: &Resource = r.borrow();
            by_provider.entry(r.id.provider()).or_default().push(r);
        }
        let mut calls = Vec::new();
        for (name, provider) in &self.by_name {
            let wanted = by_provider.remove(name.as_str()).unwrap_or_default();
            if wanted.is_empty() && !owner.prune {
                continue;
            }
            let retry = &self.retry;
            calls.push(async move { retried(retry, || provider.observe(&wanted, owner)).await });
        }
        if let Some((name, _)) = by_provider.into_iter().next() {
            return Err(ProviderError::new(
                wid_core::ErrorKind::Invalid,
                format!("no provider serves {name} resources in this run"),
            ));
        }
        let mut observed = Observed::default();
        for result in futures::future::join_all(calls).await {
            observed.extend(result?);
        }
        Ok(observed)
    }
}

/// Where read-aheads run ([`Providers::read_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAheadOn {
    /// Tasks on the runtime's workers, started at once: reads that do little between
    /// their calls (the Kubernetes lists, the plan's longest leg).
    Workers,
    /// A thread of its own each ([`Spawned`]), on a multi-threaded runtime: reads that
    /// compute without yielding (building a cloud's clients, parsing a bulk read), which
    /// on a worker would hold up the answers of the reads in flight there.
    OwnThreads,
}

/// Read-aheads under way ([`Providers::read_ahead`]); dropping it stops them and makes
/// the providers forget what they read.
#[derive(Default)]
#[must_use = "dropping the guard drops what was read ahead"]
pub struct ReadAheads {
    tasks: Vec<Spawned<()>>,
    providers: Vec<Arc<dyn Provider>>,
}

impl Drop for ReadAheads {
    fn drop(&mut self) {
        // Dropping a task stops it.
        self.tasks.clear();
        for provider in &self.providers {
            provider.forget_read_ahead();
        }
    }
}
