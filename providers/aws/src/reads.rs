//! Every read the provider makes goes through here: counted, paced and retried by the
//! run's [`wid_core::Calls`] (throttling, 5xx and timeouts are retried, never sooner
//! than `Retry-After`), with the SDK error mapped by the call's [`Call`].
//!
//! Writes do not: the engine retries a whole change after re-reading the object, which a
//! blind retry of one write could not do.

use std::future::Future;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use wid_core::{ErrorKind, ProviderError};

use crate::client::AwsProvider;
use crate::error::Call;

impl AwsProvider {
    /// One read: `Ok(None)` when the service says the object does not exist.
    pub(crate) async fn read<T, E, F, Fut>(
        &self,
        call: &Call<'_>,
        mut send: F,
    ) -> Result<Option<T>, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let result = self
            .calls
            .read(call.op, || {
                let sent = send();
                async move { sent.await.map_err(|e| call.fail(&e)) }
            })
            .await;
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One read of something that must exist: "not found" is an error like any other.
    pub(crate) async fn fetch<T, E, F, Fut>(
        &self,
        call: &Call<'_>,
        mut send: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.calls
            .read(call.op, || {
                let sent = send();
                async move { sent.await.map_err(|e| call.fail(&e)) }
            })
            .await
    }
}
