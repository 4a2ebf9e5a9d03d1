//! The provider against ARM endpoints that misbehave, on loopback over TLS (Azure's SDK
//! sends bearer tokens over HTTPS only): one that accepts and never answers, one that
//! streams an endless body, and one that trickles an endless body. Every call ends within
//! its deadline or at the size cap, with an error that says which.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use wid_azure::{AksCluster, AzureOptions, AzureProvider};
use wid_core::{Bounds, CallCounter, ErrorKind, Limits, Provider, RetryPolicy};

/// What the server does with a connection once its TLS handshake is done.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers.
    Stall,
    /// Answers 200 with a body that never ends, as fast as it can.
    Endless,
    /// Answers 200 with a body that never ends, a byte every 50 ms.
    Trickle,
}

/// A TLS server on loopback with a fresh self-signed certificate for 127.0.0.1; returns
/// its URL and the certificate (PEM) to trust.
async fn server(behaviour: Behaviour) -> (String, Vec<u8>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let pem = cert.cert.pem().into_bytes();
    let chain: Vec<CertificateDer<'static>> = vec![cert.cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, behaviour).await;
                }
            });
        }
    });
    (url, pem)
}

async fn serve(mut tls: TlsStream<tokio::net::TcpStream>, behaviour: Behaviour) {
    // Read the request head (wid's reads have no body).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let start =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    match behaviour {
        Behaviour::Stall => tokio::time::sleep(Duration::from_secs(120)).await,
        Behaviour::Endless => {
            if tls.write_all(start.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            while tls.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        Behaviour::Trickle => {
            if tls.write_all(start.as_bytes()).await.is_err() {
                return;
            }
            loop {
                if tls.write_all(b"1\r\n \r\n").await.is_err() || tls.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
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

/// A sandbox-mode provider (static token, trusting only `ca`) pointed at `url`, knowing
/// one AKS cluster, `aks-dev`.
fn provider(url: String, ca: Vec<u8>, limits: Limits) -> AzureProvider {
    let p = AzureProvider::new(
        AzureOptions {
            endpoint: Some(url),
            sandbox_ca: Some(ca),
            limits,
        },
        CallCounter::default(),
    )
    .expect("provider");
    p.know_plan(
        &[AksCluster {
            plan_name: "aks-dev".into(),
            subscription: "00000000-0000-0000-0000-000000000001".into(),
            resource_group: "rg-dev".into(),
            name: "dev".into(),
            tenant: "00000000-0000-0000-0000-0000000000aa".into(),
            issuer: None,
        }],
        BTreeMap::new(),
        BTreeMap::new(),
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_endpoint_fails_within_the_deadline() {
    let (url, ca) = server(Behaviour::Stall).await;
    let p = provider(url, ca, limits(Duration::from_secs(1), 1 << 20));
    let start = Instant::now();
    let e = p.preflight(&["aks-dev".to_owned()]).await.unwrap_err();
    let took = start.elapsed();
    // Two attempts of one second each, plus a short backoff.
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert_eq!(e.attempts, 2);
    assert_eq!(e.operation.as_deref(), Some("azure:managedClusters.get"));
    assert!(
        e.to_string().contains("Azure did not answer in time"),
        "{e}"
    );
    assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_limit() {
    let (url, ca) = server(Behaviour::Endless).await;
    let p = provider(url, ca, limits(Duration::from_secs(30), 1 << 20));
    let start = Instant::now();
    let e = p.preflight(&["aks-dev".to_owned()]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert_eq!(e.attempts, 0, "a response too large is not retried");
    assert!(e.to_string().contains("cut at 1048576 bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_trickle_is_cut_at_the_deadline() {
    let (url, ca) = server(Behaviour::Trickle).await;
    // The read timeout never fires (a byte comes every 50 ms): the deadline ends each
    // attempt.
    let p = provider(url, ca, limits(Duration::from_secs(1), 1 << 20));
    let start = Instant::now();
    let e = p.preflight(&["aks-dev".to_owned()]).await.unwrap_err();
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(
        e.to_string().contains("within 1s (the per-call deadline)"),
        "{e}"
    );
    assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
}
