//! Bounds on every Kubernetes API call, as a tower layer on kube's own client stack (no
//! second HTTP stack): a deadline over the whole call (response headers and body), a cap
//! on the response body, and `Retry-After` carried into the error kube builds.
//!
//! kube's `Config` already bounds connecting and silences (connect and read timeouts,
//! set in [`crate::provider`]); this layer adds what those cannot: a body that trickles
//! forever, or one that never ends, fails at [`Bounds::call_timeout`] or at
//! [`Bounds::max_response_bytes`] with a [`BodyLimit`] the error mapping recognizes.
//!
//! The API server answers a rejected request (API Priority and Fairness, max-in-flight)
//! with 429, a `Retry-After` header and a plain-text body, from which kube builds a
//! `Status` without `retryAfterSeconds`. The layer rewrites such error bodies into a
//! `Status` that carries the header's wait, so [`crate::errors`] can honour it.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;
use wid_core::{BodyLimit, BoundedBody, Bounds, parse_retry_after};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The layer: bounds every call of the service it wraps.
#[derive(Debug, Clone)]
pub(crate) struct BoundLayer {
    bounds: Bounds,
}

impl BoundLayer {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self { bounds }
    }
}

impl<S> Layer<S> for BoundLayer {
    type Service = Bound<S>;

    fn layer(&self, inner: S) -> Bound<S> {
        Bound {
            inner,
            bounds: self.bounds,
        }
    }
}

/// A service whose calls are bounded.
#[derive(Debug, Clone)]
pub(crate) struct Bound<S> {
    inner: S,
    bounds: Bounds,
}

impl<S, Req, B> Service<Request<Req>> for Bound<S>
where
    S: Service<Request<Req>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoundBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        let bounds = self.bounds;
        let deadline = Instant::now() + bounds.call_timeout;
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match tokio::time::timeout_at(deadline, response).await {
                Ok(r) => r.map_err(Into::into)?,
                Err(_) => return Err(Box::new(BodyLimit::TimedOut(bounds.call_timeout)) as _),
            };
            let (parts, body) = response.into_parts();
            let body = BoundedBody::new(
                body,
                bounds.max_response_bytes,
                Some((deadline, bounds.call_timeout)),
            );
            let wait = parts
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let Some(wait) =
                wait.filter(|_| parts.status.is_client_error() || parts.status.is_server_error())
            else {
                return Ok(Response::from_parts(parts, BoundBody::Stream(body)));
            };
            // An error answer asked for a wait: read it (bounded) and make sure the Status
            // kube will parse says so.
            let bytes = body.collect().await?.to_bytes();
            let status = with_retry_after(&bytes, parts.status, wait.as_secs());
            Ok(Response::from_parts(parts, BoundBody::Full(Some(status))))
        })
    }
}

/// The Status document for an error answer, with `details.retryAfterSeconds` set to
/// `seconds` unless the server already set it: the answer itself when it is a Status, or
/// a Status built around its text.
fn with_retry_after(body: &[u8], code: StatusCode, seconds: u64) -> Bytes {
    let mut status = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["kind"] == "Status" => v,
        _ => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": if code == StatusCode::TOO_MANY_REQUESTS { "TooManyRequests" } else { "" },
            "code": code.as_u16(),
        }),
    };
    if !status["details"].is_object() {
        status["details"] = json!({});
    }
    if status["details"]["retryAfterSeconds"].as_u64().unwrap_or(0) == 0 {
        status["details"]["retryAfterSeconds"] = json!(seconds.max(1));
    }
    Bytes::from(status.to_string())
}

/// A bounded response body, or an error answer already read and rewritten.
pub(crate) enum BoundBody<B> {
    /// Streamed from the server, bounded.
    Stream(BoundedBody<B>),
    /// Read already.
    Full(Option<Bytes>),
}

impl<B> Body for BoundBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Stream(body) => Pin::new(body).poll_frame(cx),
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Stream(body) => body.is_end_stream(),
            Self::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Stream(body) => body.size_hint(),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_text_429_becomes_a_status_with_the_wait() {
        let out = with_retry_after(
            b"Too many requests, please try again later.\n",
            StatusCode::TOO_MANY_REQUESTS,
            3,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["code"], 429);
        assert_eq!(v["reason"], "TooManyRequests");
        assert_eq!(v["details"]["retryAfterSeconds"], 3);
        assert_eq!(v["message"], "Too many requests, please try again later.");
    }

    #[test]
    fn a_status_keeps_its_own_wait() {
        let body = json!({"kind": "Status", "code": 429, "details": {"retryAfterSeconds": 5}});
        let out = with_retry_after(
            body.to_string().as_bytes(),
            StatusCode::TOO_MANY_REQUESTS,
            1,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["details"]["retryAfterSeconds"], 5);
        let body = json!({"kind": "Status", "code": 503, "message": "x"});
        let out = with_retry_after(
            body.to_string().as_bytes(),
            StatusCode::SERVICE_UNAVAILABLE,
            2,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (
                v["details"]["retryAfterSeconds"].as_u64(),
                v["message"].as_str()
            ),
            (Some(2), Some("x"))
        );
    }
}
