//! A response body with bounds: it ends in an error once more than a set number of bytes
//! arrived, or once the call's deadline passed, so a client reading it to the end (every
//! SDK does) never buffers an endless body or waits on a stalled one.
//!
//! Providers wrap each response body of their HTTP client in a [`BoundedBody`] (kube: a
//! tower layer; the AWS SDK: its HTTP client) and recognize the two errors by walking the
//! client error's sources ([`BodyLimit::find`]).

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Which bound a body ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// More than this many bytes arrived.
    TooLarge(usize),
    /// The call's deadline (this long after it started) passed before the body ended.
    TimedOut(Duration),
}

impl fmt::Display for BodyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge(limit) => write!(f, "the response body exceeded {limit} bytes"),
            Self::TimedOut(after) => write!(
                f,
                "the call did not complete within {}",
                crate::human_duration(*after)
            ),
        }
    }
}

impl StdError for BodyLimit {}

impl BodyLimit {
    /// The bound an error (or any of its sources) ran into, if it is one of these.
    pub fn find(error: &(dyn StdError + 'static)) -> Option<Self> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(limit) = e.downcast_ref::<Self>() {
                return Some(*limit);
            }
            next = e.source();
        }
        None
    }
}

/// A body that fails with [`BodyLimit`] past `max` bytes or past its deadline.
pub struct BoundedBody<B> {
    inner: B,
    max: usize,
    read: usize,
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
}

impl<B> fmt::Debug for BoundedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedBody")
            .field("max", &self.max)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl<B> BoundedBody<B> {
    /// Bounds `inner` to `max` bytes, and, with `deadline`, to the instant the call must
    /// be over by (with the call's timeout, for the message).
    pub fn new(inner: B, max: usize, deadline: Option<(Instant, Duration)>) -> Self {
        Self {
            inner,
            max,
            read: 0,
            deadline: deadline.map(|(at, after)| (Box::pin(tokio::time::sleep_until(at)), after)),
        }
    }
}

impl<B> Body for BoundedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some((sleep, after)) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Box::new(BodyLimit::TimedOut(*after)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len());
                    if this.read > this.max {
                        return Poll::Ready(Some(Err(Box::new(BodyLimit::TooLarge(this.max)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    #[tokio::test]
    async fn a_body_past_the_limit_fails_and_a_short_one_passes() {
        let ok = BoundedBody::new(Full::new(Bytes::from_static(b"0123456789")), 10, None);
        assert_eq!(ok.collect().await.unwrap().to_bytes().len(), 10);
        let big = BoundedBody::new(Full::new(Bytes::from_static(b"0123456789")), 9, None);
        let e = big.collect().await.unwrap_err();
        assert_eq!(BodyLimit::find(e.as_ref()), Some(BodyLimit::TooLarge(9)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_trickle_is_cut_at_the_deadline() {
        let chunks = Box::pin(futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"x"))),
                (),
            ))
        }));
        let after = Duration::from_secs(1);
        let body = BoundedBody::new(
            StreamBody::new(chunks),
            usize::MAX,
            Some((Instant::now() + after, after)),
        );
        let e = body.collect().await.unwrap_err();
        assert_eq!(
            BodyLimit::find(e.as_ref()),
            Some(BodyLimit::TimedOut(after))
        );
        assert!(e.to_string().contains("within 1s"), "{e}");
    }
}
