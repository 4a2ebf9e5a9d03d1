//! Reads started before the observe that wants them ([`Provider::read_ahead`]), kept by
//! key until that observe takes them.
//!
//! The rules every provider's read-ahead follows, in one place: a read is registered
//! before it starts, so an observe that comes early waits for it rather than making it
//! again; observe takes a read once (nothing read ahead serves two observes); a read that
//! failed is observe's error, as if observe had made it; [`Ahead::forget`] drops what is
//! left, and a read dropped unmade is made by observe itself.
//!
//! [`Provider::read_ahead`]: crate::Provider::read_ahead

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::OwnedMutexGuard;

use crate::ProviderError;

type Slot<V> = Arc<tokio::sync::Mutex<Option<Result<V, ProviderError>>>>;

/// Reads under way or done, by key (a list's project, a policy's id).
pub struct Ahead<K, V> {
    slots: Mutex<BTreeMap<K, Slot<V>>>,
}

impl<K, V> Default for Ahead<K, V> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<K: std::fmt::Debug, V> std::fmt::Debug for Ahead<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.slots.try_lock() {
            Ok(slots) => f.debug_set().entries(slots.keys()).finish(),
            Err(_) => f.write_str("Ahead { .. }"),
        }
    }
}

/// A registered read, held locked until [`fill`](Self::fill)ed; dropping it unfilled
/// leaves the read to observe.
pub struct Pending<V>(OwnedMutexGuard<Option<Result<V, ProviderError>>>);

impl<V> Pending<V> {
    /// Hands the read's result to the observe that takes it.
    pub fn fill(mut self, read: Result<V, ProviderError>) {
        *self.0 = Some(read);
    }
}

/// A read observe took: done, under way, or dropped unmade.
pub struct Taken<V>(Option<Slot<V>>);

impl<V> Default for Taken<V> {
    /// Nothing read ahead: [`or_read`](Self::or_read) reads.
    fn default() -> Self {
        Self(None)
    }
}

impl<V> Taken<V> {
    /// What was read ahead (waiting for a read under way), or, when nothing was, what
    /// `read` reads now.
    pub async fn or_read<F>(self, read: impl FnOnce() -> F) -> Result<V, ProviderError>
    where
        F: Future<Output = Result<V, ProviderError>>,
    {
        let ahead = match self.0 {
            Some(slot) => slot.lock().await.take(),
            None => None,
        };
        match ahead {
            Some(done) => done,
            None => read().await,
        }
    }
}

impl<K: Ord + Clone, V> Ahead<K, V> {
    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<K, Slot<V>>> {
        self.slots
            .lock()
            .expect("read-ahead lock is never poisoned")
    }

    /// Registers the reads of `keys` that are not registered yet and returns them, each
    /// locked until filled: an observe that takes one meanwhile waits for it.
    pub fn register(&self, keys: impl IntoIterator<Item = K>) -> Vec<(K, Pending<V>)> {
        let mut slots = self.slots();
        let mut out = Vec::new();
        for key in keys {
            if slots.contains_key(&key) {
                continue;
            }
            let slot = Slot::default();
            let guard = Arc::clone(&slot)
                .try_lock_owned()
                .expect("a slot nobody has seen is free");
            slots.insert(key.clone(), slot);
            out.push((key, Pending(guard)));
        }
        out
    }

    /// Takes the reads of `keys`, all at once, so that nothing read ahead for this
    /// observe is left for a later one even when this one fails half-way.
    pub fn take(&self, keys: impl IntoIterator<Item = K>) -> Vec<(K, Taken<V>)> {
        let mut slots = self.slots();
        keys.into_iter()
            .map(|key| {
                let slot = slots.remove(&key);
                (key, Taken(slot))
            })
            .collect()
    }

    /// Drops every read not taken.
    pub fn forget(&self) {
        self.slots().clear();
    }
}

/// Runs `write` with what was read ahead dropped (by `forget`) before and after it:
/// nothing read while wid writes is used by a later observe.
pub async fn writing<T>(forget: impl Fn(), write: impl Future<Output = T>) -> T {
    forget();
    let out = write.await;
    forget();
    out
}

/// Makes registered reads, `concurrency` at a time, filling each with what `read`
/// returns for its key.
pub async fn fill_all<K, V, F>(
    pending: Vec<(K, Pending<V>)>,
    concurrency: usize,
    read: impl Fn(K) -> F,
) where
    F: Future<Output = Result<V, ProviderError>>,
{
    futures::stream::iter(pending)
        .for_each_concurrent(concurrency.max(1), |(key, pending)| {
            let read = read(key);
            async move { pending.fill(read.await) }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ErrorKind;

    async fn counted(reads: &AtomicUsize, key: u32) -> Result<u32, ProviderError> {
        reads.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if key == 0 {
            return Err(ProviderError::new(ErrorKind::Throttled, "slow down"));
        }
        Ok(key * 10)
    }

    #[tokio::test]
    async fn a_read_serves_one_taker_once_and_a_failure_is_its_error() {
        let ahead = Ahead::<u32, u32>::default();
        let reads = AtomicUsize::new(0);
        let pending = ahead.register([0, 1, 2]);
        // Registered twice: the second registration starts nothing.
        assert!(ahead.register([1, 2]).is_empty());
        // Taken before the reads run: the taker waits for them.
        let taken = ahead.take([0, 1, 3]);
        let fill = fill_all(pending, 2, |k| counted(&reads, k));
        let take = async {
            let mut out = Vec::new();
            for (key, taken) in taken {
                out.push(
                    taken
                        .or_read(|| counted(&reads, key))
                        .await
                        .map_err(|e| e.kind()),
                );
            }
            out
        };
        let ((), got) = futures::join!(fill, take);
        assert_eq!(
            got,
            vec![Err(ErrorKind::Throttled), Ok(10), Ok(30)],
            "0 failed ahead, 1 was read ahead, 3 was never registered"
        );
        // 0, 1, 2 ahead and 3 by the taker: nothing twice.
        assert_eq!(reads.load(Ordering::SeqCst), 4);
        // Taken once: a second observe reads afresh.
        let again = ahead.take([1]).pop().unwrap().1;
        assert_eq!(again.or_read(|| counted(&reads, 1)).await.unwrap(), 10);
        assert_eq!(reads.load(Ordering::SeqCst), 5);
        // Forgotten: 2 is read afresh too.
        ahead.forget();
        let forgotten = ahead.take([2]).pop().unwrap().1;
        assert_eq!(forgotten.or_read(|| counted(&reads, 2)).await.unwrap(), 20);
        assert_eq!(reads.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_read_dropped_unmade_is_made_by_the_taker() {
        let ahead = Ahead::<u32, u32>::default();
        let reads = AtomicUsize::new(0);
        drop(ahead.register([4]));
        let taken = ahead.take([4]).pop().unwrap().1;
        assert_eq!(taken.or_read(|| counted(&reads, 4)).await.unwrap(), 40);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }
}
