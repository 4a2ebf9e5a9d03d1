//! Faults below HTTP semantics: hung requests, dropped connections, truncated bodies and
//! lost answers, for every server of the sandbox.
//!
//! Each server's listener is wrapped in [`WireListener`], whose connections carry a
//! [`Conn`] handle that can kill them: once killed, the connection fails every write and
//! reads end, so hyper closes it without sending a byte more. [`layer`] wraps every
//! router: it gives each request a slot, in a task-local, where a handler's fault hook
//! ([`Decision::outcome`]) says what should happen to the answer, and then does it after
//! the handler returns: hang, drop the connection, cut the body, or send another answer.
//! Handlers thus stay plain request-to-response functions; only their hook knows about
//! faults, and it knows only the API's error shapes.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::injector::Decision;
use crate::{FaultAction, LostAs, Shared};

/// An error answer a fault hook asks its API for, in that API's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Throttling.
    Throttle,
    /// A server-side failure.
    ServerError,
    /// A concurrent-modification conflict.
    Conflict,
    /// Credentials refused.
    Unauthorized,
    /// A missing permission.
    Forbidden,
    /// A quota reached.
    LimitExceeded,
}

/// What happens to a request's answer once the handler returned it.
#[derive(Debug)]
enum After {
    /// Keep the connection open and silent until the sandbox stops.
    Hang,
    /// Close the connection without answering.
    Drop,
    /// Send the head and half the body, then close.
    Truncate,
    /// Send this answer instead.
    Replace(Response),
}

type Slot = Arc<Mutex<Option<After>>>;

tokio::task_local! {
    static SLOT: Slot;
}

/// Asks [`layer`] to do `after` with this request's answer. Outside a request served
/// through the layer (a handler called directly), there is no connection to act on, and
/// the handler's own answer goes out.
fn set_after(after: After) {
    let set = SLOT.try_with(|slot| {
        *slot.lock().expect("fault slot lock is never poisoned") = Some(after);
    });
    if set.is_err() {
        tracing::debug!("sandbox: a connection-level fault outside a served request");
    }
}

impl Decision {
    /// Plays the decided fault, latency aside (the caller sleeps for it): `Err` with the
    /// API's error answer to return at once, or `Ok` to carry out the request. A hang or a
    /// dropped connection also returns `Err`, so nothing is carried out; the answer is
    /// then never sent. A truncated or lost answer returns `Ok`: the request is carried
    /// out and its answer spoiled afterwards.
    pub(crate) fn outcome<E: IntoResponse>(&self, error: impl Fn(Failure) -> E) -> Result<(), E> {
        let failure = match &self.action {
            None | Some(FaultAction::Latency { .. }) => return Ok(()),
            Some(FaultAction::Throttle) => Failure::Throttle,
            Some(FaultAction::ServerError) => Failure::ServerError,
            Some(FaultAction::Conflict) => Failure::Conflict,
            Some(FaultAction::Unauthorized) => Failure::Unauthorized,
            Some(FaultAction::Forbidden) => Failure::Forbidden,
            Some(FaultAction::LimitExceeded) => Failure::LimitExceeded,
            Some(FaultAction::Hang) => {
                set_after(After::Hang);
                Failure::ServerError
            }
            Some(FaultAction::Drop) => {
                set_after(After::Drop);
                Failure::ServerError
            }
            Some(FaultAction::Truncate) => {
                set_after(After::Truncate);
                return Ok(());
            }
            Some(FaultAction::LostResponse { response }) => {
                set_after(match response {
                    LostAs::ServerError => {
                        After::Replace(error(Failure::ServerError).into_response())
                    }
                    LostAs::Drop => After::Drop,
                    LostAs::Hang => After::Hang,
                });
                return Ok(());
            }
        };
        Err(error(failure))
    }
}

/// The middleware every server's router goes through (see the module docs).
pub(crate) async fn layer(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    request: Request,
    next: Next,
) -> Response {
    let slot = Slot::default();
    let response = SLOT.scope(slot.clone(), next.run(request)).await;
    let after = slot
        .lock()
        .expect("fault slot lock is never poisoned")
        .take();
    match after {
        None => response,
        Some(After::Replace(replacement)) => replacement,
        Some(After::Drop) => {
            conn.kill();
            response
        }
        Some(After::Hang) => {
            shared.stopped().await;
            conn.kill();
            response
        }
        Some(After::Truncate) => truncate(response, &conn).await,
    }
}

/// The answer with its full `Content-Length` but half its body, followed by an error that
/// makes hyper close the connection. An answer without a body is dropped instead.
async fn truncate(response: Response, conn: &Conn) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        conn.kill();
        return Response::default();
    };
    if bytes.is_empty() {
        conn.kill();
        return Response::from_parts(parts, Body::empty());
    }
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, bytes.len().into());
    let cut = bytes.slice(..bytes.len() / 2);
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(cut) });
    let end = futures::stream::once(async {
        // Give hyper a turn to flush the head and the partial body before the error
        // closes the connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::other("body cut by an injected fault"))
    });
    Response::from_parts(
        parts,
        Body::from_stream(futures::StreamExt::chain(head, end)),
    )
}

/// A connection's kill switch, handed to every request on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conn(Arc<AtomicBool>);

impl Conn {
    fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A listener whose connections can be killed by a fault.
pub(crate) struct WireListener<L>(pub(crate) L);

impl<L: Listener> Listener for WireListener<L> {
    type Io = WireIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (
            WireIo {
                io,
                conn: Conn::default(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl<L: Listener> axum::extract::connect_info::Connected<IncomingStream<'_, WireListener<L>>>
    for Conn
{
    fn connect_info(stream: IncomingStream<'_, WireListener<L>>) -> Self {
        stream.io().conn.clone()
    }
}

/// A connection that fails once its [`Conn`] is killed.
pub(crate) struct WireIo<I> {
    io: I,
    conn: Conn,
}

fn killed_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "connection dropped by an injected fault",
    )
}

impl<I: AsyncRead + Unpin> AsyncRead for WireIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.conn.killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WireIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.conn.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.conn.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.conn.killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Sends what a connection writes at once (`TCP_NODELAY`). Without it, a response
/// written in two parts (TLS writes each record on its own) waits for the client's
/// delayed acknowledgement, 40 ms on Linux, after the first: the sandbox's latency is
/// the one it is given, not the TCP stack's.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("sandbox: TCP_NODELAY not set: {e}");
    }
}

/// Serves `router` on `listener` until the task is aborted, with every request going
/// through [`layer`].
pub(crate) async fn serve<L>(listener: L, router: axum::Router, shared: Arc<Shared>)
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let app = router.layer(axum::middleware::from_fn_with_state(shared, layer));
    let _ = axum::serve(
        WireListener(listener),
        app.into_make_service_with_connect_info::<Conn>(),
    )
    .await;
}
