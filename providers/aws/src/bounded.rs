//! Bounds on every AWS call: the SDK's own timeouts (connect, read, one attempt), and a
//! cap on each response body, applied where the body comes off the wire.
//!
//! The cap wraps the SDK's one HTTP client ([`BoundedHttpClient`]) rather than adding a
//! second HTTP stack: every response body of every service (IAM, EKS, STS and the
//! credential providers) becomes a [`BoundedBody`] that fails once it passes
//! [`Bounds::max_response_bytes`], so the SDK, which reads bodies to the end before
//! parsing, never buffers an endless one. The attempt timeout covers reading the body
//! too (the SDK reads it inside the attempt), so a body that trickles forever ends at
//! [`Bounds::call_timeout`].

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::timeout::TimeoutConfig;
use wid_core::{BoundedBody, Bounds};

/// The SDK timeouts for `bounds`: connect, read (silence), and one attempt from request to
/// the end of the body. There is no operation timeout beyond the attempt's, since the
/// SDK's own retries are off (the engine retries).
pub(crate) fn timeout_config(bounds: &Bounds) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(bounds.connect_timeout)
        .read_timeout(bounds.read_timeout)
        .operation_attempt_timeout(bounds.call_timeout)
        .build()
}

/// An HTTP client whose response bodies are capped.
#[derive(Debug, Clone)]
pub(crate) struct BoundedHttpClient {
    inner: SharedHttpClient,
    max: usize,
}

impl BoundedHttpClient {
    /// Caps the bodies `inner` returns at `bounds.max_response_bytes`.
    pub(crate) fn shared(inner: SharedHttpClient, bounds: &Bounds) -> SharedHttpClient {
        SharedHttpClient::new(Self {
            inner,
            max: bounds.max_response_bytes,
        })
    }
}

impl HttpClient for BoundedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector {
            inner: self.inner.http_connector(settings, components),
            max: self.max,
        })
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
    max: usize,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let response = self.inner.call(request);
        let max = self.max;
        HttpConnectorFuture::new(async move {
            let response = response.await?;
            Ok(response.map(|body| SdkBody::from_body_1_x(BoundedBody::new(body, max, None))))
        })
    }
}
