//! Injected latency that lasts what the fault rule says.
//!
//! tokio's timer rounds a deadline up to its next millisecond tick and wakes on that
//! tick: a 20 ms `tokio::time::sleep` took 21.1 ms on average on the benchmark machine.
//! Every emulated call was then 5% slower than its rule said, and no client could reach
//! the benchmark's ideal (calls × latency ÷ concurrency). Here tokio sleeps all but the
//! last [`FINE`], and a thread of tokio's blocking pool sleeps the rest, waking within
//! about 0.2 ms of the deadline.

use std::time::{Duration, Instant};

/// The part of a wait slept by a thread rather than by tokio's timer: more than its one
/// tick of rounding.
const FINE: Duration = Duration::from_millis(2);

/// Waits `latency`.
pub(crate) async fn wait(latency: Duration) {
    wait_until(Instant::now() + latency).await;
}

/// Waits until `deadline`.
pub(crate) async fn wait_until(deadline: Instant) {
    let coarse = deadline.checked_sub(FINE).filter(|t| *t > Instant::now());
    if let Some(coarse) = coarse {
        tokio::time::sleep_until(coarse.into()).await;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    // A runtime shutting down takes no blocking task: then tokio sleeps the rest,
    // rounded up, never shorter.
    match tokio::task::spawn_blocking(move || std::thread::sleep(left)).await {
        Ok(()) => {}
        Err(_) => tokio::time::sleep_until(deadline.into()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_shorter_than_the_latency() {
        // How close to the deadline it wakes is measured by the benchmark, not here: a
        // test run on a loaded machine would make a bound on it flaky.
        for ms in [0, 1, 2, 3, 20] {
            let latency = Duration::from_millis(ms);
            let start = Instant::now();
            wait(latency).await;
            let took = start.elapsed();
            assert!(took >= latency, "waited {took:?} for {latency:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn works_on_a_current_thread_runtime() {
        let latency = Duration::from_millis(5);
        let start = Instant::now();
        wait(latency).await;
        assert!(start.elapsed() >= latency);
    }
}
