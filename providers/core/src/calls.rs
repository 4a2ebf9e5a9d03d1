//! The call discipline every provider shares: retries with backoff and full jitter that
//! never come sooner than the API's `Retry-After`, and adaptive concurrency (AIMD) so
//! that wid slows down under sustained throttling.
//!
//! - [`RetryPolicy`]: how often and how patiently to retry; the executor uses it for
//!   changes, [`Calls::read`] for single reads.
//! - [`Pace`]: a concurrency limit that halves on every throttle and grows by one on every
//!   success, never above its hard limit (the provider's, capped by `--parallelism`).
//! - [`Calls`]: what a provider holds to make reads: the run's [`CallCounter`], the retry
//!   policy and the provider's read [`Pace`].

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;

use crate::bounds::MAX_RETRY_AFTER;
use crate::{CallCounter, ErrorKind, ProviderError};

/// How often and how patiently to retry retryable errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt; doubles each time.
    pub base: Duration,
    /// The longest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (`attempt` counts from 1): a random duration
    /// between zero and the exponential bound ("full jitter"), so that many clients
    /// throttled together do not retry together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let bound = exp.min(self.cap);
        let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// The wait before retrying after `error` on attempt `attempt`: the jittered backoff,
    /// but never less than the API asked for (`Retry-After`, capped at two minutes).
    pub fn wait(&self, attempt: u32, error: &ProviderError) -> Duration {
        let asked = error.retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
        self.delay(attempt).max(asked)
    }
}

/// Adaptive concurrency for one provider: additive increase, multiplicative decrease.
///
/// At most `window` calls hold a permit at once. A throttle halves the window (never
/// below one); a success grows it by one (never above the hard limit). Waiters are woken
/// all at once, so a pace suits the handful of concurrent callers a provider's reads have;
/// the executor, which may have thousands of ready changes, only ever uses
/// [`Pace::try_acquire`].
#[derive(Debug)]
pub struct Pace {
    limit: usize,
    state: Mutex<PaceState>,
    freed: Notify,
}

#[derive(Debug)]
struct PaceState {
    window: usize,
    in_flight: usize,
    throttles: u64,
}

impl Pace {
    /// A pace with this hard limit (at least one), starting wide open.
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        Arc::new(Self {
            limit,
            state: Mutex::new(PaceState {
                window: limit,
                in_flight: 0,
                throttles: 0,
            }),
            freed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state.lock().expect("pace lock is never poisoned")
    }

    /// The hard limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many calls may run at once now.
    pub fn window(&self) -> usize {
        self.state().window
    }

    /// How many throttles were reported.
    pub fn throttles(&self) -> u64 {
        self.state().throttles
    }

    /// A permit if the window has room, without waiting.
    pub fn try_acquire(self: &Arc<Self>) -> Option<PacePermit> {
        let mut state = self.state();
        if state.in_flight < state.window {
            state.in_flight += 1;
            Some(PacePermit { pace: self.clone() })
        } else {
            None
        }
    }

    /// Waits for room in the window.
    pub async fn acquire(self: &Arc<Self>) -> PacePermit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Register before checking, so a release between the check and the wait is
            // not missed.
            freed.as_mut().enable();
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            freed.await;
        }
    }

    /// The API throttled a call: halve the window.
    pub fn throttled(&self) {
        let mut state = self.state();
        state.window = (state.window / 2).max(1);
        state.throttles += 1;
    }

    /// A call succeeded: grow the window by one, up to the limit.
    pub fn succeeded(&self) {
        let grew = {
            let mut state = self.state();
            let before = state.window;
            state.window = (state.window + 1).min(self.limit);
            state.window > before
        };
        if grew {
            self.freed.notify_waiters();
        }
    }

    /// Reports how a call ended: throttles halve the window, successes grow it, other
    /// errors leave it.
    pub fn record<T>(&self, result: &Result<T, ProviderError>) {
        match result {
            Ok(_) => self.succeeded(),
            Err(e) if e.kind() == ErrorKind::Throttled => self.throttled(),
            Err(_) => {}
        }
    }
}

/// A place in a [`Pace`]'s window; dropping it frees the place.
#[derive(Debug)]
pub struct PacePermit {
    pace: Arc<Pace>,
}

impl Drop for PacePermit {
    fn drop(&mut self) {
        self.pace.state().in_flight -= 1;
        self.pace.freed.notify_waiters();
    }
}

/// What the engine tells every provider about a run when it connects: the bounds of one
/// call, how to retry, and the cap on concurrency (`--parallelism`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Timeouts and the response size cap every client applies.
    pub bounds: crate::Bounds,
    /// How reads (and, in the executor, changes) are retried.
    pub retry: RetryPolicy,
    /// At most this many calls of one provider at once, whatever its own limit.
    pub parallelism: Option<usize>,
}

impl Limits {
    /// A provider's concurrency under the run's cap.
    pub fn concurrency(&self, own: usize) -> usize {
        self.parallelism.map_or(own, |p| own.min(p)).max(1)
    }

    /// The [`Calls`] for a provider whose own read concurrency is `own`.
    pub fn calls(&self, counter: CallCounter, own: usize) -> Calls {
        Calls::new(counter, self.retry.clone(), self.concurrency(own))
    }
}

/// How a provider makes its reads: counted, paced and retried.
///
/// The engine gives each provider one when it connects (see `docs/engine.md`); a provider
/// built without one gets [`Calls::new`] with the default policy.
#[derive(Debug, Clone)]
pub struct Calls {
    counter: CallCounter,
    retry: RetryPolicy,
    pace: Arc<Pace>,
}

impl Calls {
    /// Reads counted in `counter`, retried by `retry`, at most `concurrency` at once.
    pub fn new(counter: CallCounter, retry: RetryPolicy, concurrency: usize) -> Self {
        Self {
            counter,
            retry,
            pace: Pace::new(concurrency),
        }
    }

    /// The run's call counter.
    pub fn counter(&self) -> &CallCounter {
        &self.counter
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The read pace (its limit is how many reads a provider should keep in flight).
    pub fn pace(&self) -> &Arc<Pace> {
        &self.pace
    }

    /// How many reads to run at once at most (for `buffer_unordered`).
    pub fn concurrency(&self) -> usize {
        self.pace.limit()
    }

    /// Makes one read: each attempt waits for room in the pace, is counted as `op` and
    /// marked in flight; a throttled, transient or contended error is retried after
    /// [`RetryPolicy::wait`] (so never sooner than `Retry-After`), up to the policy's
    /// attempts. The error that ends it carries the attempts made.
    pub async fn read<T, F, Fut>(&self, op: &str, mut attempt: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            let result = {
                let _permit = self.pace.acquire().await;
                let _call = self.counter.start(op);
                attempt().await
            };
            self.pace.record(&result);
            match result {
                Ok(value) => return Ok(value),
                Err(e) if e.kind().is_retryable() && n < self.retry.max_attempts => {
                    tokio::time::sleep(self.retry.wait(n, &e)).await;
                }
                Err(mut e) => {
                    if n > 1 {
                        e.attempts = n;
                    }
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn delays_stay_within_the_exponential_bound_and_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        for _ in 0..200 {
            assert!(p.delay(1) <= Duration::from_millis(100));
            assert!(p.delay(3) <= Duration::from_millis(400));
            assert!(p.delay(9) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn the_wait_is_never_shorter_than_retry_after() {
        let p = RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
        };
        let e = ProviderError::new(ErrorKind::Throttled, "slow down")
            .with_retry_after(Duration::from_secs(1));
        for _ in 0..50 {
            assert!(p.wait(1, &e) >= Duration::from_secs(1));
        }
        let e = e.with_retry_after(Duration::from_secs(3600));
        assert_eq!(p.wait(1, &e), MAX_RETRY_AFTER);
    }

    #[test]
    fn the_pace_halves_on_throttles_and_grows_by_one() {
        let pace = Pace::new(8);
        assert_eq!(pace.window(), 8);
        pace.throttled();
        assert_eq!(pace.window(), 4);
        pace.throttled();
        pace.throttled();
        pace.throttled();
        assert_eq!(pace.window(), 1, "never below one");
        let a = pace.try_acquire().expect("one fits");
        assert!(pace.try_acquire().is_none(), "the window is full");
        drop(a);
        for _ in 0..20 {
            pace.succeeded();
        }
        assert_eq!(pace.window(), 8, "never above the limit");
        let permits: Vec<_> = (0..8).filter_map(|_| pace.try_acquire()).collect();
        assert_eq!(permits.len(), 8);
        assert!(pace.try_acquire().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_retried_and_honour_retry_after() {
        let calls = Calls::new(CallCounter::default(), RetryPolicy::default(), 2);
        let tries = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let out = calls
            .read("x:Get", || async {
                if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(ProviderError::new(ErrorKind::Throttled, "slow down")
                        .with_retry_after(Duration::from_secs(1)))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
        assert!(start.elapsed() >= Duration::from_secs(1), "waited as asked");
        assert_eq!(calls.counter().snapshot()["x:Get"], 2);
        assert_eq!(calls.pace().throttles(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_give_up_on_errors_that_are_not_retryable_and_after_the_attempts() {
        let calls = Calls::new(CallCounter::default(), RetryPolicy::default(), 2);
        let e = calls
            .read("x:Get", || async {
                Err::<(), _>(ProviderError::new(ErrorKind::Permission, "no"))
            })
            .await
            .unwrap_err();
        assert_eq!((e.kind(), e.attempts), (ErrorKind::Permission, 0));
        let e = calls
            .read("x:List", || async {
                Err::<(), _>(ProviderError::new(ErrorKind::Transient, "5xx"))
            })
            .await
            .unwrap_err();
        assert_eq!(e.attempts, 6);
        assert_eq!(calls.counter().snapshot()["x:List"], 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_never_exceed_the_pace() {
        let calls = Calls::new(CallCounter::default(), RetryPolicy::default(), 3);
        let running = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (calls, running, max) = (calls.clone(), running.clone(), max.clone());
                tokio::spawn(async move {
                    calls
                        .read("x:Get", || async {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, ProviderError>(())
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let max = max.load(Ordering::SeqCst);
        assert!((2..=3).contains(&max), "{max}");
    }
}
