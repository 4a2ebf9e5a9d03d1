//! Stopping a run part-way: the first Ctrl-C (or SIGTERM) drains it (no new change
//! starts, calls in flight finish), a second one or the `--timeout` deadline aborts it
//! (calls in flight are dropped). The executor watches a [`Stop`]; the CLI pulls it.

use std::time::Duration;

use tokio::sync::watch;

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The run's `--timeout` passed.
    TimedOut(Duration),
}

/// How far a stop goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    /// Keep going.
    Run,
    /// Start nothing new; let what is in flight finish.
    Drain,
    /// Drop what is in flight now.
    Abort,
}

/// A stop switch shared by the CLI (which pulls it) and the executor (which watches it).
/// Cheap to clone; clones share the switch.
#[derive(Debug, Clone)]
pub struct Stop {
    tx: watch::Sender<State>,
}

/// The level, the first reason, and what raised it to [`StopLevel::Abort`].
#[derive(Debug, Clone, Copy)]
struct State {
    level: StopLevel,
    reason: Option<StopReason>,
    aborted_by: Option<StopReason>,
}

impl Default for Stop {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(State {
                level: StopLevel::Run,
                reason: None,
                aborted_by: None,
            }),
        }
    }
}

impl Stop {
    /// A switch that is not pulled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the stop to `level` for `reason` (a stop never goes back down, and the
    /// first reason stays).
    pub fn request(&self, level: StopLevel, reason: StopReason) {
        self.tx.send_if_modified(|state| {
            if level <= state.level {
                return false;
            }
            state.level = level;
            state.reason.get_or_insert(reason);
            if level == StopLevel::Abort {
                state.aborted_by = Some(reason);
            }
            true
        });
    }

    /// The level now.
    pub fn level(&self) -> StopLevel {
        self.tx.borrow().level
    }

    /// Why the run stops, once it does.
    pub fn reason(&self) -> Option<StopReason> {
        self.tx.borrow().reason
    }

    /// What aborted the run (a second Ctrl-C, the `--timeout` deadline), once something
    /// did; the first reason may be another (Ctrl-C drained it, then the deadline passed).
    pub fn aborted_by(&self) -> Option<StopReason> {
        self.tx.borrow().aborted_by
    }

    /// Waits until the level is at least `level`.
    pub async fn reached(&self, level: StopLevel) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = rx.wait_for(|state| state.level >= level).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_only_rises_and_keeps_its_first_reason() {
        let stop = Stop::new();
        assert_eq!(stop.level(), StopLevel::Run);
        stop.request(StopLevel::Drain, StopReason::Interrupted);
        stop.request(
            StopLevel::Abort,
            StopReason::TimedOut(Duration::from_secs(1)),
        );
        stop.request(StopLevel::Drain, StopReason::Interrupted);
        assert_eq!(stop.level(), StopLevel::Abort);
        assert_eq!(stop.reason(), Some(StopReason::Interrupted));
        assert_eq!(
            stop.aborted_by(),
            Some(StopReason::TimedOut(Duration::from_secs(1)))
        );
        stop.reached(StopLevel::Drain).await;
        stop.reached(StopLevel::Abort).await;
    }
}
