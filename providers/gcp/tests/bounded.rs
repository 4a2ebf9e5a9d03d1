//! The provider against Google endpoints that misbehave, on loopback: one that accepts and
//! never answers, and one that trickles a body that never ends. The Google clients take
//! no custom HTTP client or body hook, so both end at the per-call deadline (there is no
//! size cap while a body is read; docs/gcp.md, "Bounds"), with an error that names it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use wid_core::{Bounds, CallCounter, ErrorKind, Limits, Provider, RetryPolicy};
use wid_gcp::{Endpoints, GcpOptions, GcpProvider, GkeCluster};

/// A server on loopback that runs `serve` on a thread for each connection.
fn server(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    url
}

/// Reads a request head (wid's reads send no body, or one the server need not read).
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

/// Accepts, reads the request, and never answers.
fn stall(mut stream: TcpStream) {
    read_head(&mut stream);
    std::thread::sleep(Duration::from_secs(120));
}

/// Answers 200 with a JSON body that never ends, 4 KiB every 20 ms.
fn trickle(mut stream: TcpStream) {
    read_head(&mut stream);
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let first = "1\r\n[\r\n";
    if stream.write_all(first.as_bytes()).is_err() {
        return;
    }
    let chunk = format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096));
    while stream.write_all(chunk.as_bytes()).is_ok() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn provider(url: &str, call_timeout: Duration) -> GcpProvider {
    let p = GcpProvider::new(
        GcpOptions {
            endpoints: Some(Endpoints::sandbox(url)),
            sandbox: true,
            limits: Limits {
                bounds: Bounds::with_call_timeout(call_timeout),
                retry: RetryPolicy {
                    max_attempts: 2,
                    base: Duration::from_millis(10),
                    cap: Duration::from_millis(20),
                },
                parallelism: None,
            },
        },
        CallCounter::default(),
    );
    p.know_plan(
        &[GkeCluster {
            plan_name: "gke-dev".into(),
            project: "acme-dev".into(),
            project_number: Some("123456789012".into()),
            location: "europe-west1".into(),
            name: "dev".into(),
        }],
        [],
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_endpoint_fails_within_the_deadline() {
    let url = server(stall);
    let p = provider(&url, Duration::from_secs(1));
    let start = Instant::now();
    let e = p.preflight(&["gke-dev".to_owned()]).await.unwrap_err();
    let took = start.elapsed();
    // Two attempts of one second each, plus a short backoff.
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert_eq!(e.attempts, 2);
    assert_eq!(e.operation.as_deref(), Some("container.clusters.get"));
    assert!(e.to_string().contains("did not answer"), "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_deadline() {
    let url = server(trickle);
    let p = provider(&url, Duration::from_secs(1));
    let start = Instant::now();
    let e = p.preflight(&["gke-dev".to_owned()]).await.unwrap_err();
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert_eq!(e.attempts, 2);
    assert!(e.to_string().contains("did not answer"), "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
}
