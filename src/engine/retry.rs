//! Retries around whole provider reads (observe, preflight).
//!
//! The policy itself lives in `wid_core` ([`RetryPolicy`]), because providers retry each
//! of their reads with it ([`wid_core::Calls::read`]); the engine re-exports it. What the
//! engine adds is a second line: a provider read that still fails with a retryable error
//! that was not already retried where it was made is run again as a whole, so a provider
//! that makes its calls without [`wid_core::Calls`] still survives one throttle.

use std::future::Future;

use wid_core::ProviderError;
pub use wid_core::RetryPolicy;

/// Runs `read` until it succeeds, fails for good, or has had the policy's attempts. An
/// error whose attempts were already spent inside the provider is returned as is.
pub async fn retried<T, F, Fut>(policy: &RetryPolicy, mut read: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read().await {
            Ok(value) => return Ok(value),
            Err(e)
                if e.kind().is_retryable()
                    && e.attempts < policy.max_attempts
                    && attempt < policy.max_attempts =>
            {
                tracing::debug!("retrying a read after: {e}");
                tokio::time::sleep(policy.wait(attempt, &e)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use wid_core::ErrorKind;

    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn a_throttled_read_is_run_again() {
        let tries = AtomicU32::new(0);
        let out = retried(&fast(), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(ProviderError::new(ErrorKind::Throttled, "slow down")),
                _ => Ok(1),
            }
        })
        .await;
        assert_eq!(out.unwrap(), 1);
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn reads_retried_inside_the_provider_are_not_retried_again() {
        let tries = AtomicU32::new(0);
        let mut spent = ProviderError::new(ErrorKind::Transient, "5xx");
        spent.attempts = 6;
        let out: Result<(), _> = retried(&fast(), || {
            tries.fetch_add(1, Ordering::SeqCst);
            let e = spent.clone();
            async move { Err(e) }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        let out: Result<(), _> = retried(&fast(), || async {
            Err(ProviderError::new(ErrorKind::Permission, "no"))
        })
        .await;
        assert_eq!(out.unwrap_err().kind(), ErrorKind::Permission);
    }
}
