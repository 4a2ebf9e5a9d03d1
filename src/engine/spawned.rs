//! Work started beside the caller and stopped when dropped: each cloud's preflight, and
//! every provider's read-ahead.

use std::future::Future;

/// A task that is stopped when dropped unfinished (a plan that fails stops the reads it
/// no longer needs); [`join`](Self::join) is its result, a panic in it resumed here.
pub(crate) struct Spawned<T> {
    task: tokio::task::JoinHandle<Result<T, futures::future::Aborted>>,
    stop: futures::future::AbortHandle,
}

impl<T: Send + 'static> Spawned<T> {
    /// Starts `work` beside the caller. On a multi-threaded runtime it runs on a thread of
    /// its own (from the blocking pool) instead of a worker: what a cloud does before its
    /// first call (building its clients; the Google ones load the system's root
    /// certificates, about 5 ms each) is synchronous, and on a worker it would hold back
    /// the answers of calls already in flight, such as the Kubernetes lists read ahead.
    pub(crate) fn start(work: impl Future<Output = T> + Send + 'static) -> Self {
        let (work, stop) = futures::future::abortable(work);
        let handle = tokio::runtime::Handle::current();
        let task = match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::spawn_blocking(move || handle.block_on(work))
            }
            _ => tokio::spawn(work),
        };
        Self { task, stop }
    }

    /// Starts `work` as a task on the runtime's workers, for work that yields between its
    /// calls and should start at once.
    pub(crate) fn on_workers(work: impl Future<Output = T> + Send + 'static) -> Self {
        let (work, stop) = futures::future::abortable(work);
        Self {
            task: tokio::spawn(work),
            stop,
        }
    }

    pub(crate) async fn join(mut self) -> T {
        self.wait().await
    }

    /// [`join`](Self::join), leaving the task to its owner when the wait is dropped.
    pub(crate) async fn wait(&mut self) -> T {
        match (&mut self.task).await {
            Ok(Ok(out)) => out,
            Ok(Err(futures::future::Aborted)) => unreachable!("only dropping stops the work"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.stop.abort();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    fn runtime(workers: usize) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn spawned_work_leaves_the_workers_to_the_calls_in_flight() {
        runtime(1).block_on(async {
            // Work that holds its thread, as building a cloud's clients does.
            let busy = Spawned::start(async {
                std::thread::sleep(Duration::from_millis(300));
                7
            });
            let start = Instant::now();
            // A task on the only worker, as a call in flight is.
            tokio::spawn(tokio::time::sleep(Duration::from_millis(5)))
                .await
                .expect("the timer task");
            assert!(
                start.elapsed() < Duration::from_millis(200),
                "the worker waited for the spawned work: {:?}",
                start.elapsed()
            );
            assert_eq!(busy.join().await, 7);
        });
    }

    #[test]
    fn dropping_spawned_work_stops_it_on_either_runtime() {
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for rt in [runtime(2), current] {
            rt.block_on(async {
                let ticks = Arc::new(AtomicUsize::new(0));
                let counted = Arc::clone(&ticks);
                let work = Spawned::start(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                });
                tokio::time::sleep(Duration::from_millis(30)).await;
                drop(work);
                tokio::time::sleep(Duration::from_millis(10)).await;
                let stopped = ticks.load(Ordering::SeqCst);
                assert!(stopped > 0, "the work never ran");
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert_eq!(ticks.load(Ordering::SeqCst), stopped, "the work went on");
            });
        }
    }
}
