//! How long and how wide a plan or apply runs, and how it stops: `--timeout`,
//! `--parallelism`, and Ctrl-C / SIGTERM.
//!
//! [`Control::install`] starts a watcher: the first interrupt drains the run (apply
//! starts nothing new and lets calls in flight finish, plan stops at once), a second one
//! aborts it (apply drops the calls in flight), and if the process is still running a
//! second after that it exits 130 regardless. The `--timeout` deadline aborts like a
//! second interrupt. Steps that change nothing (reading live state, the prompt) end at
//! the first stop of any kind.

use std::future::Future;
use std::time::Duration;

use clap::Args;
use wid_core::human_duration;

use super::CliError;
use crate::engine::{Stop, StopLevel, StopReason};
use crate::session::Target;

/// Parses a `--timeout`/`--call-timeout` value.
pub(crate) fn duration_arg(text: &str) -> Result<Duration, String> {
    let d = wid_core::parse_duration(text)?;
    if d.is_zero() {
        return Err("a timeout must be longer than zero".into());
    }
    Ok(d)
}

/// `--timeout` and `--parallelism`, for the commands that plan and apply.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Stop after DURATION (e.g. 10m, 1h30m). A plan fails naming the calls it was
    /// waiting for; an apply drops the calls in flight and prints what it did and what it
    /// did not start. Default: no limit (each call is still bounded by --call-timeout).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub timeout: Option<Duration>,
    /// At most N calls at once to any one API (a cluster's, a cloud's), below each
    /// provider's own limit. Under throttling wid slows down further by itself.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// Plan and apply only the workloads under CLUSTER, CLUSTER/NAMESPACE or
    /// CLUSTER/NAMESPACE/SERVICE_ACCOUNT (repeatable). What they depend on (a namespace, a
    /// cluster's OIDC provider) comes along and is named on stderr. Deletes stay inside
    /// the targets and never touch what another workload of the plan wants.
    #[arg(long = "target", value_name = "CLUSTER[/NS[/KSA]]")]
    pub targets: Vec<String>,
}

impl RunArgs {
    /// Puts `--parallelism` into the target's limits.
    pub fn apply_to(&self, target: &mut Target) {
        target.limits.parallelism = self.parallelism.map(usize::from);
    }
}

/// Selects `targets` (`--target`) in the session's plan.
pub fn select(session: &mut crate::session::Session, targets: &[String]) -> Result<(), CliError> {
    session.selection =
        crate::select::Selection::new(targets, &session.plan).map_err(CliError::Usage)?;
    Ok(())
}

/// Says on stderr which part of the plan a targeted run covers, and what came along
/// because the selected workloads depend on it.
pub fn note_selection(session: &crate::session::Session, planned: &crate::session::Planned) {
    let selection = &session.selection;
    if selection.is_all() {
        return;
    }
    let plan = &session.plan;
    let groups: std::collections::BTreeSet<String> = plan
        .workloads
        .iter()
        .filter(|w| selection.selects(w))
        .map(|w| plan.group_label(plan.scope_of(w), &crate::model::workload_origin(w)))
        .collect();
    let mut text = format!(
        "--target {}: {} of the plan's {} workload(s) selected.\n",
        selection.texts().join(", "),
        groups.len(),
        plan.workloads.len()
    );
    let pulled = crate::select::pulled_in(planned, &groups);
    if !pulled.is_empty() {
        let ids: Vec<String> = pulled.iter().map(ToString::to_string).collect();
        text.push_str(&format!(
            "Also planned, because the selected workloads depend on them: {}\n",
            ids.join(", ")
        ));
    }
    crate::output::emit_stderr(&text);
}

/// The run's stop switch, pulled by signals and the deadline.
pub struct Control {
    stop: Stop,
}

impl Control {
    /// Starts watching Ctrl-C and SIGTERM, and the deadline `timeout` from now.
    pub fn install(timeout: Option<Duration>) -> Self {
        let stop = Stop::new();
        let watcher = stop.clone();
        let signals = Signals::new();
        tokio::spawn(async move {
            let Ok(mut signals) = signals else { return };
            signals.next().await;
            watcher.request(StopLevel::Drain, StopReason::Interrupted);
            crate::output::notice(
                "interrupted: starting nothing new and letting calls in flight finish; press Ctrl-C again to abort now",
            );
            signals.next().await;
            watcher.request(StopLevel::Abort, StopReason::Interrupted);
            crate::output::notice("interrupted again: aborting");
            tokio::time::sleep(Duration::from_secs(1)).await;
            // Whatever did not notice the abort in a second is not waited for.
            std::process::exit(super::ExitCode::Interrupted as i32);
        });
        if let Some(after) = timeout {
            let timer = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                timer.request(StopLevel::Abort, StopReason::TimedOut(after));
            });
        }
        Self { stop }
    }

    /// The switch, for the executor.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// Runs a step that changes nothing; it ends with [`CliError::Interrupted`] or
    /// [`CliError::TimedOut`] as soon as the run is asked to stop. `doing` names the step
    /// ("plan"), `waiting` says what was in flight when it stopped.
    pub async fn step<T>(
        &self,
        doing: &'static str,
        work: impl Future<Output = Result<T, CliError>>,
        waiting: impl FnOnce() -> Vec<String>,
    ) -> Result<T, CliError> {
        tokio::select! {
            biased;
            () = self.stop.reached(StopLevel::Drain) => Err(self.stopped(doing, waiting())),
            out = work => out,
        }
    }

    /// The error for a run stopped while `doing`.
    pub fn stopped(&self, doing: &'static str, waiting: Vec<String>) -> CliError {
        match self.stop.reason() {
            Some(StopReason::TimedOut(after)) => CliError::TimedOut {
                doing,
                after: human_duration(after),
                waiting,
            },
            _ => CliError::Interrupted(doing),
        }
    }
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM, registered once when the run starts so that
/// none is missed between two waits.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
