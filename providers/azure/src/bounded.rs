//! Bounds on every ARM call, where the provider owns the HTTP stack: azure_core's pipeline
//! sends through [`BoundedClient`], wid's own `HttpClient` over its one reqwest client (no
//! second HTTP stack). The same client carries the credential chain's token requests.
//!
//! - connect and read (silence) timeouts: reqwest's own, from [`Bounds::connect_timeout`]
//!   and [`Bounds::read_timeout`] (set where the client is built, in [`crate::client`]);
//! - the per-call deadline ([`Bounds::call_timeout`]) from the first byte sent to the last
//!   byte of the body: the response head must come within it, and the body is a
//!   [`BoundedBody`] that fails once it passes;
//! - the response cap ([`Bounds::max_response_bytes`]): the body fails as soon as it grows
//!   past it, while it is read, never after buffering it.
//!
//! Both failures are [`BodyLimit`]s in the error's sources, which [`crate::client`] turns
//! into [`crate::error::Failure::TimedOut`] and [`crate::error::Failure::TooLarge`].

use async_trait::async_trait;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::request::Body;
use azure_core::http::{AsyncRawResponse, HttpClient, Method, Request};
use futures::TryStreamExt;
use tokio::time::Instant;
use wid_core::{BodyLimit, BoundedBody, Bounds};

/// wid's HTTP client for azure_core: reqwest, with every call bounded.
#[derive(Debug, Clone)]
pub(crate) struct BoundedClient {
    inner: reqwest::Client,
    bounds: Bounds,
}

impl BoundedClient {
    /// Bounds the calls of `inner` (built with the connect and read timeouts of `bounds`).
    pub(crate) fn new(inner: reqwest::Client, bounds: Bounds) -> Self {
        Self { inner, bounds }
    }
}

fn method(m: Method) -> Option<reqwest::Method> {
    Some(match m {
        Method::Delete => reqwest::Method::DELETE,
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Patch => reqwest::Method::PATCH,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        // A method azure_core adds later; wid sends only the ones above.
        _ => return None,
    })
}

fn headers_of(map: &reqwest::header::HeaderMap) -> Headers {
    let mut out = Headers::new();
    for (k, v) in map {
        if let Ok(v) = v.to_str() {
            out.insert(
                HeaderName::from(k.as_str().to_owned()),
                HeaderValue::from(v.to_owned()),
            );
        }
    }
    out
}

#[async_trait]
impl HttpClient for BoundedClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let bounds = self.bounds;
        let deadline = Instant::now() + bounds.call_timeout;
        let verb = method(request.method()).ok_or_else(|| {
            Error::with_message(ErrorKind::Other, "wid sends no requests of this method")
        })?;
        let mut builder = self.inner.request(verb, request.url().clone());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            // wid sends JSON documents only.
            Body::SeekableStream(_) => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "wid sends no streamed request bodies",
                ));
            }
        };
        let sent = builder
            .build()
            .map_err(|e| Error::with_error(ErrorKind::Other, e, "failed to build the request"))?;
        let response = match tokio::time::timeout_at(deadline, self.inner.execute(sent)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                let kind = if e.is_connect() {
                    ErrorKind::Connection
                } else {
                    ErrorKind::Io
                };
                return Err(Error::with_error(kind, e, "the request failed"));
            }
            Err(_) => {
                return Err(Error::with_error(
                    ErrorKind::Io,
                    BodyLimit::TimedOut(bounds.call_timeout),
                    "no response",
                ));
            }
        };
        let status = response.status().as_u16();
        let headers = headers_of(response.headers());
        let body = BoundedBody::new(
            http::Response::from(response).into_body(),
            bounds.max_response_bytes,
            Some((deadline, bounds.call_timeout)),
        );
        let stream = http_body_util::BodyDataStream::new(body)
            .map_err(|e| Error::with_error(ErrorKind::Io, e, "reading the response failed"));
        Ok(AsyncRawResponse::new(
            status.into(),
            headers,
            Box::pin(stream),
        ))
    }
}
