//! [`Shared`]: what every server of one sandbox shares — the state, the per-API call
//! counters and the fault rules — and their persistence (see [`crate::persist`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::injector::{Decision, Injector, RuleUse, USED_FILE};
use crate::persist::{self, MIN_GAP, Part, Persist, PersistStats};
use crate::wire::Failure;
use crate::{FaultAction, FaultRule, State};

/// State shared by every server of one sandbox.
#[derive(Debug)]
pub struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    calls: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Injector>,
    persist: Persist,
    stop: watch::Sender<bool>,
}

impl Shared {
    /// Loads the state, counters and fault rules of `dir` (created if missing). The caller
    /// must hold the directory's lock.
    pub(crate) fn load(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let state = persist::read_json(&dir.join("state.json"))?.unwrap_or_default();
        let calls = persist::read_json(&dir.join("calls.json"))?.unwrap_or_default();
        let faults = Injector::load(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            state: Mutex::new(state),
            calls: Mutex::new(calls),
            faults: Mutex::new(faults),
            persist: Persist::default(),
            stop: watch::Sender::new(false),
        })
    }

    /// The sandbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("sandbox state lock is never poisoned")
    }

    fn injector(&self) -> std::sync::MutexGuard<'_, Injector> {
        self.faults
            .lock()
            .expect("sandbox faults lock is never poisoned")
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state())
    }

    /// Changes the state. The change reaches `state.json` with the next flush (within a
    /// fraction of a second, and always before the sandbox stops).
    pub fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let out = f(&mut self.state());
        self.persist.mark(Part::State);
        out
    }

    /// The whole state as JSON, as `state.json` holds it (for tests that compare the world
    /// before and after a run).
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&*self.state()).unwrap_or_default()
    }

    /// Counts one call of `api` on `object` (`""` when the request names none) and
    /// decides what fault, if any, to inject into it.
    ///
    /// Every handler calls this (through its API's fault hook) before anything else, with
    /// its API name (`iam:CreateRole`, `eks:DescribeCluster`, `k8s:get serviceaccounts`)
    /// and the object the request names.
    pub fn call_on(&self, api: &str, object: &str) -> Decision {
        {
            let mut calls = self
                .calls
                .lock()
                .expect("sandbox calls lock is never poisoned");
            *calls.entry(api.to_owned()).or_default() += 1;
        }
        self.persist.mark(Part::Calls);
        let (decision, file_changed) = self.injector().decide(api, object);
        if file_changed {
            self.persist.mark(Part::Faults);
        }
        decision
    }

    /// Counts one call of `api` naming no object and returns the fault to inject, if any:
    /// the action, else the latency to add. Prefer [`Self::call_on`], which matches
    /// rules by object too and keeps latency and a fault apart.
    pub fn call(&self, api: &str) -> Option<FaultAction> {
        let decision = self.call_on(api, "");
        decision.action.or(match decision.latency_ms {
            0 => None,
            ms => Some(FaultAction::Latency { ms }),
        })
    }

    /// The fault hook of a handler: counts the call, sleeps for injected latency, and
    /// plays the decided fault (see [`Decision::outcome`]); `error` builds the API's own
    /// error answer for a failure.
    pub(crate) async fn admit<E: IntoResponse>(
        &self,
        api: &str,
        object: &str,
        error: impl Fn(Failure) -> E,
    ) -> Result<(), E> {
        let decision = self.call_on(api, object);
        if decision.latency_ms > 0 {
            crate::latency::wait(Duration::from_millis(decision.latency_ms)).await;
        }
        decision.outcome(error)
    }

    /// Calls per API so far (persisted across runs in `calls.json`).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .lock()
            .expect("sandbox calls lock is never poisoned")
            .clone()
    }

    /// Adds a fault rule after the others (in memory: it is not written to
    /// `faults.json`, and its use is not counted across runs).
    pub fn inject(&self, rule: impl Into<FaultRule>) {
        self.injector().push(rule.into(), false);
    }

    /// Sets the seed of the rules' probabilities (the `seed` of `faults.json`).
    pub fn set_fault_seed(&self, seed: u64) {
        self.injector().set_seed(seed);
    }

    /// Every fault rule in force, with what it did so far.
    pub fn faults(&self) -> Vec<(FaultRule, RuleUse)> {
        self.injector().rules()
    }

    /// What persistence has done so far.
    pub fn persist_stats(&self) -> PersistStats {
        self.persist.io().stats
    }

    /// Writes every part changed since the last flush; a no-op when nothing changed or
    /// after [`Self::close`].
    pub fn flush(&self) -> std::io::Result<()> {
        let mut io = self.persist.io();
        self.flush_locked(&mut io)
    }

    /// The last flush: later changes stay in memory, so nothing this process still does
    /// can overwrite what the directory's next owner writes. Wakes hung requests.
    pub(crate) fn close(&self) -> std::io::Result<()> {
        let mut io = self.persist.io();
        let result = self.flush_locked(&mut io);
        io.closed = true;
        self.stop.send_replace(true);
        result
    }

    fn flush_locked(&self, io: &mut persist::Io) -> std::io::Result<()> {
        if io.closed {
            return Ok(());
        }
        let before = io.stats.bytes;
        let generation = self.persist.generation(Part::State);
        if io.dirty(Part::State, generation) {
            // Serialised under the state lock so the bytes and generation agree; written
            // outside it.
            let (generation, bytes) = {
                let state = self.state();
                (
                    self.persist.generation(Part::State),
                    serde_json::to_vec(&*state)?,
                )
            };
            persist::write_atomic(&self.dir.join("state.json"), &bytes)?;
            io.wrote(Part::State, generation, bytes.len());
        }
        let generation = self.persist.generation(Part::Calls);
        if io.dirty(Part::Calls, generation) {
            let (generation, bytes) = {
                let calls = self
                    .calls
                    .lock()
                    .expect("sandbox calls lock is never poisoned");
                (
                    self.persist.generation(Part::Calls),
                    serde_json::to_vec_pretty(&*calls)?,
                )
            };
            persist::write_atomic(&self.dir.join("calls.json"), &bytes)?;
            io.wrote(Part::Calls, generation, bytes.len());
        }
        let generation = self.persist.generation(Part::Faults);
        if io.dirty(Part::Faults, generation) {
            let (generation, bytes) = {
                let faults = self.injector();
                (self.persist.generation(Part::Faults), faults.used_json())
            };
            persist::write_atomic(&self.dir.join(USED_FILE), &bytes)?;
            io.wrote(Part::Faults, generation, bytes.len());
        }
        if io.stats.bytes > before {
            io.stats.flushes += 1;
        }
        Ok(())
    }

    /// Resolves once the sandbox stops (hung requests wait for this).
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Starts the task that flushes each burst of changes (see [`crate::persist`]).
    pub(crate) fn spawn_flusher(self: &Arc<Self>) -> JoinHandle<()> {
        let shared = self.clone();
        tokio::spawn(async move {
            loop {
                shared.persist.settled().await;
                let flushing = shared.clone();
                match tokio::task::spawn_blocking(move || flushing.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!("sandbox: failed to write {}: {e}", shared.dir.display())
                    }
                    // The runtime is shutting down (the process is exiting): stopping
                    // or dropping the sandbox writes what is pending, so this is no
                    // failure to report (it printed an ERROR line under a CLI error).
                    Err(e) if e.is_cancelled() => return,
                    Err(e) => tracing::error!("sandbox: flush task failed: {e}"),
                }
                tokio::time::sleep(MIN_GAP).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Role;

    /// An IRSA role as wid creates it: trust policy, ownership tags, one managed policy.
    fn role(name: &str) -> Role {
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF:sub":"system:serviceaccount:production:{name}","oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF:aud":"sts.amazonaws.com"}}}}}}]}}"#
        );
        serde_json::from_value(serde_json::json!({
            "name": name,
            "path": "/",
            "role_id": "AROA0123456789ABCDEFG",
            "create_date": "2026-01-01T00:00:00Z",
            "assume_role_policy": trust,
            "max_session_duration": 3600,
            "tags": {"wid.dev/managed-by": "wid", "wid.dev/plan": "payments",
                     "wid.dev/applied": "c0ffee0123456789c0ffee0123456789"},
            "attached_policies": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
        }))
        .expect("a role")
    }

    fn add_role(state: &mut State, name: &str) {
        state
            .aws
            .accounts
            .entry("111122223333".into())
            .or_default()
            .roles
            .insert(name.to_owned(), role(name));
    }

    #[test]
    fn writes_serialise_nothing_until_a_flush_and_a_flush_writes_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = Shared::load(dir.path()).expect("load");
        for i in 0..3000 {
            shared.write(|state| add_role(state, &format!("role-{i:04}")));
            shared.call_on("iam:CreateRole", &format!("role-{i:04}"));
        }
        assert_eq!(shared.persist_stats(), PersistStats::default());
        assert!(!dir.path().join("state.json").exists());

        shared.flush().expect("flush");
        let stats = shared.persist_stats();
        assert_eq!((stats.flushes, stats.state_writes), (1, 1));
        shared.flush().expect("flush again");
        assert_eq!(
            shared.persist_stats(),
            stats,
            "nothing changed, nothing written"
        );

        let on_disk: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("state.json")).expect("state.json"),
        )
        .expect("json");
        assert_eq!(on_disk, shared.snapshot());
        assert_eq!(
            on_disk["aws"]["accounts"]["111122223333"]["roles"]
                .as_object()
                .map(|r| r.len()),
            Some(3000)
        );
        assert_eq!(
            stats.state_bytes as usize,
            serde_json::to_vec(&on_disk).expect("json").len()
        );
        let calls: BTreeMap<String, u64> = serde_json::from_slice(
            &std::fs::read(dir.path().join("calls.json")).expect("calls.json"),
        )
        .expect("json");
        assert_eq!(calls["iam:CreateRole"], 3000);
    }

    #[test]
    fn reads_leave_the_state_file_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = Shared::load(dir.path()).expect("load");
        shared.write(|state| add_role(state, "a"));
        shared.flush().expect("flush");
        shared.call_on("iam:GetRole", "a");
        shared.read(|state| state.aws.accounts.len());
        shared.flush().expect("flush");
        assert_eq!(shared.persist_stats().state_writes, 1);
        assert_eq!(
            shared.persist_stats().flushes,
            2,
            "the call count was written"
        );
    }

    #[test]
    fn after_closing_changes_stay_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = Shared::load(dir.path()).expect("load");
        shared.write(|state| add_role(state, "kept"));
        shared.close().expect("close");
        shared.write(|state| add_role(state, "late"));
        shared.flush().expect("flush");
        let text = std::fs::read_to_string(dir.path().join("state.json")).expect("state.json");
        assert!(text.contains("kept") && !text.contains("late"), "{text}");
    }

    #[tokio::test]
    async fn a_burst_of_writes_is_flushed_in_few_serialisations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = Arc::new(Shared::load(dir.path()).expect("load"));
        let flusher = shared.spawn_flusher();
        let start = Instant::now();
        for i in 0..3000 {
            shared.write(|state| add_role(state, &format!("role-{i:04}")));
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let elapsed = start.elapsed();
        // Wait for the flusher to catch up with the last write.
        while shared.persist_stats().state_writes == 0
            || shared.snapshot() != read_state(dir.path())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        flusher.abort();
        let writes = shared.persist_stats().state_writes;
        // By construction, flushes are at least MIN_GAP apart: one for the burst so far
        // per gap, plus the last.
        let bound = 2 + (start.elapsed().as_millis() / MIN_GAP.as_millis()) as u64;
        assert!(
            writes <= bound,
            "{writes} serialisations for 3000 writes in {elapsed:?}"
        );
        assert!(
            writes < 3000 / 10,
            "{writes} serialisations for 3000 writes"
        );
    }

    use tokio::time::Instant;

    fn read_state(dir: &Path) -> serde_json::Value {
        std::fs::read(dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}
