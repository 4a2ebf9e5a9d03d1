//! The provider against API servers that misbehave: one that accepts and never answers,
//! one that streams an endless body, and one that rejects the first call the way API
//! Priority and Fairness does (429, plain text, `Retry-After`). Every call ends within its
//! deadline or at the size cap with an error that says which, and the rejected read is
//! retried no sooner than the server asked.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wid_core::{Bounds, CallCounter, ErrorKind, Limits, Owner, Provider, Resource, RetryPolicy};
use wid_kubernetes::{ClusterConn, KubernetesProvider, namespace_id};

/// A server on loopback that answers each connection with `serve(stream, index)`.
fn server(serve: impl Fn(TcpStream, usize) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serve = Arc::new(serve);
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (serve, n) = (serve.clone(), count.fetch_add(1, Ordering::SeqCst));
            std::thread::spawn(move || serve(stream, n));
        }
    });
    url
}

/// Reads a request head (wid's LISTs have no body).
fn read_head(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return,
        }
    }
}

fn limits(call_timeout: Duration, max_response_bytes: usize) -> Limits {
    Limits {
        bounds: Bounds {
            max_response_bytes,
            ..Bounds::with_call_timeout(call_timeout)
        },
        retry: RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(20),
        },
        parallelism: None,
    }
}

async fn observe(
    url: String,
    limits: Limits,
) -> Result<wid_core::Observed, wid_core::ProviderError> {
    let p = KubernetesProvider::connect_with(
        BTreeMap::from([("dev".to_owned(), ClusterConn::Url(url))]),
        CallCounter::default(),
        &limits,
    )
    .await
    .expect("connect");
    let ns = Resource::new(namespace_id("dev", "apps"));
    let owner = Owner {
        plan: "p".into(),
        prune: false,
    };
    p.observe(&[&ns], &owner).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_api_server_fails_within_the_deadline() {
    let url = server(|mut s, _| {
        read_head(&mut s);
        std::thread::sleep(Duration::from_secs(120));
    });
    let start = Instant::now();
    let e = observe(url, limits(Duration::from_secs(1), 1 << 20))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(e.attempts, 2);
    assert!(
        e.to_string()
            .contains("no complete answer from the API server within 1s"),
        "{e}"
    );
    assert!(e.to_string().contains("cluster dev"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_named_when_the_read_timeout_ends_the_call_first() {
    let url = server(|mut s, _| {
        read_head(&mut s);
        std::thread::sleep(Duration::from_secs(120));
    });
    let mut limits = limits(Duration::from_secs(3), 1 << 20);
    limits.bounds.read_timeout = Duration::from_millis(500);
    let start = Instant::now();
    let e = observe(url, limits).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.to_string().contains(
            "the API server stopped answering (nothing received within the read timeout)"
        ),
        "{e}"
    );
    assert!(
        e.hint
            .as_deref()
            .is_some_and(|h| h.contains("--call-timeout"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_forever_ends_at_the_deadline() {
    let url = server(|mut s, _| {
        read_head(&mut s);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = s.write_all(head.as_bytes());
        while s.write_all(b"1\r\n \r\n").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let start = Instant::now();
    let e = observe(url, limits(Duration::from_secs(1), 1 << 20))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(e.to_string().contains("within 1s"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_limit() {
    let url = server(|mut s, _| {
        read_head(&mut s);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = s.write_all(head.as_bytes());
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        while s.write_all(chunk.as_bytes()).is_ok() {}
    });
    let e = observe(url, limits(Duration::from_secs(30), 1 << 20))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(e.to_string().contains("cut at 1048576 bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_text_429_is_retried_after_the_wait_it_asks_for() {
    let url = server(|mut s, n| {
        read_head(&mut s);
        let answer = if n == 0 {
            let body = "Too many requests, please try again later.\n";
            format!(
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            let body = r#"{"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let _ = s.write_all(answer.as_bytes());
    });
    let start = Instant::now();
    let observed = observe(url, limits(Duration::from_secs(10), 1 << 20))
        .await
        .expect("the retry succeeds");
    assert!(observed.resources.is_empty());
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "retried after {:?}, before the second the server asked for",
        start.elapsed()
    );
}
