//! The provider against endpoints that misbehave: one that accepts and never answers,
//! one that streams an endless body, and a proxy to the sandbox that denies the bulk role
//! read. Every call must end within its deadline or at the size cap, with an error that
//! says which, and a denied bulk read must fall back to reading roles one by one. The
//! bulk read itself: it observes exactly what per-role reads observe, and the no-op plan
//! of 1,000 IRSA roles costs a handful of calls instead of thousands.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use wid_aws::{AwsOptions, AwsProvider, EksCluster};
use wid_core::{Bounds, CallCounter, ErrorKind, Limits, Provider, RetryPolicy};
use wid_sandbox::{ClusterDecl, ClusterKind, EksDecl, Sandbox};

const ACCOUNT: &str = "111122223333";

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

/// Reads one request's head and body (by Content-Length).
fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return buf;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return buf;
        }
    }
}

/// Accepts, reads the request, and never answers.
fn stall(mut stream: TcpStream) {
    read_request(&mut stream);
    std::thread::sleep(Duration::from_secs(120));
}

/// Answers 200 with a body that never ends.
fn endless(mut stream: TcpStream) {
    read_request(&mut stream);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
    while stream.write_all(chunk.as_bytes()).is_ok() {}
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

async fn provider(url: &str, limits: Limits, counter: CallCounter) -> AwsProvider {
    let opts = AwsOptions {
        endpoint_url: Some(url.to_owned()),
        sandbox: true,
        limits,
        ..AwsOptions::default()
    };
    AwsProvider::new(opts, counter).await.expect("provider")
}

fn cluster() -> EksCluster {
    EksCluster {
        plan_name: "eks-dev".into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        eks_name: "dev".into(),
        issuer: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_endpoint_fails_within_the_deadline() {
    let url = server(stall);
    let p = provider(
        &url,
        limits(Duration::from_secs(1), 1 << 20),
        CallCounter::default(),
    )
    .await;
    let start = Instant::now();
    let e = p.discover_issuer(&cluster()).await.unwrap_err();
    let took = start.elapsed();
    // Two attempts of one second each, plus a short backoff.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(e.attempts, 2);
    // The read timeout or the attempt's deadline ends it, whichever comes first.
    assert!(e.to_string().contains("AWS did not answer"), "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("--call-timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_limit() {
    let url = server(endless);
    let p = provider(
        &url,
        limits(Duration::from_secs(30), 1 << 20),
        CallCounter::default(),
    )
    .await;
    let start = Instant::now();
    let e = p.discover_issuer(&cluster()).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(
        e.to_string().contains("cut at 1048576 bytes"),
        "{e}: {:?}",
        e.detail
    );
}

/// A proxy to the sandbox at `upstream` that answers `GetAccountAuthorizationDetails` with
/// IAM's AccessDenied and forwards everything else, one request per connection.
fn denying_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || proxy_one(stream, &upstream));
        }
    });
    url
}

fn proxy_one(mut client: TcpStream, upstream: &str) {
    let request = read_request(&mut client);
    if request.is_empty() {
        return;
    }
    if String::from_utf8_lossy(&request).contains("Action=GetAccountAuthorizationDetails") {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: iam:GetAccountAuthorizationDetails</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(answer.as_bytes());
        return;
    }
    // Ask the sandbox to close after answering, so its answer can be relayed to the end.
    let text =
        String::from_utf8_lossy(&request).replacen("\r\n\r\n", "\r\nconnection: close\r\n\r\n", 1);
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    if server.write_all(text.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    let _ = client.write_all(&answer);
}

async fn sandbox(dir: &std::path::Path) -> Sandbox {
    let decl = ClusterDecl {
        name: "eks-dev".into(),
        kind: ClusterKind::Eks,
        eks: Some(EksDecl {
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            name: "dev".into(),
        }),
        gke: None,
        aks: None,
    };
    Sandbox::start(dir, &[decl]).await.expect("sandbox starts")
}

/// A plan of `n` IRSA roles on the sandbox's cluster, applied; returns the desired
/// resources and the issuer-resolved cluster.
async fn applied_roles(p: &AwsProvider, n: usize, plan_name: &str) -> Vec<wid_core::Resource> {
    let mut cluster = cluster();
    cluster.issuer = Some(p.discover_issuer(&cluster).await.expect("issuer"));
    let workloads: Vec<Wl> = (0..n)
        .map(|i| {
            let mut b = block(&format!("bulk-{i:03}"));
            if i % 3 == 0 {
                b.inline_policies
                    .insert("s3".into(), wid_aws::InlinePolicy::Json(S3_READ.into()));
            }
            if i % 4 == 0 {
                b.managed_policies
                    .push("arn:aws:iam::aws:policy/ReadOnlyAccess".into());
                b.tags.insert("team".into(), format!("t{i}"));
            }
            wl(0, "apps", &format!("sa{i}"), b)
        })
        .collect();
    let desired = compile_plan(&workloads, &[cluster], plan_name);
    let own = owner(plan_name, false);
    let (_, changes) = plan(p, &desired, &own).await;
    apply(p, &changes, &own).await;
    desired
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_read_sees_exactly_what_per_role_reads_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = sandbox(dir.path()).await;
    let counter = CallCounter::default();
    let p = provider(&sb.cloud_url(), Limits::default(), counter.clone()).await;
    let desired = applied_roles(&p, 24, "bulk").await;
    let own = owner("bulk", false);
    let wanted: Vec<&wid_core::Resource> = desired.iter().collect();

    // Each bulk read is throttled once, and retried.
    for api in ["iam:GetAccountAuthorizationDetails", "iam:ListRoles"] {
        sb.inject(wid_sandbox::Fault {
            api: api.into(),
            action: wid_sandbox::FaultAction::Throttle,
            times: Some(1),
        });
    }
    let before = counter.snapshot();
    let bulk = p.observe(&wanted, &own).await.expect("bulk observe");
    let after = counter.snapshot();
    let delta =
        |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
    assert_eq!(delta("iam:GetAccountAuthorizationDetails"), 2);
    assert_eq!(delta("iam:ListRoles"), 2);
    assert_eq!(delta("iam:GetRole"), 0, "{after:?}");

    // The same roles through a proxy that denies the bulk read: one by one.
    let proxied = denying_proxy(sb.cloud_url());
    let counter = CallCounter::default();
    let q = provider(&proxied, Limits::default(), counter.clone()).await;
    let one_by_one = q.observe(&wanted, &own).await.expect("per-role observe");
    let calls = counter.snapshot();
    assert_eq!(calls.get("iam:GetAccountAuthorizationDetails"), Some(&1));
    assert_eq!(calls.get("iam:GetRole"), Some(&24), "{calls:?}");

    let roles = |o: &wid_core::Observed| {
        o.resources
            .values()
            .filter(|r| r.id.kind() == wid_aws::ids::KIND_ROLE)
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(roles(&bulk).len(), 24);
    assert_eq!(roles(&bulk), roles(&one_by_one));
    let changes = wid_core::diff(&desired, &bulk, false);
    assert!(all_noop(&changes), "{:?}", kinds(&changes));
}

/// Seeds the sandbox with every role of `desired` exactly as wid would have applied it
/// (tags with wid's marks and applied record), in one state write: applying 1,000 roles
/// call by call would only measure the emulator.
fn seed_roles(sb: &Sandbox, desired: &[wid_core::Resource], plan: &str) {
    use serde_json::Value;
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    sb.shared().write(|state| {
        for r in desired
            .iter()
            .filter(|r| r.id.kind() == wid_aws::ids::KIND_ROLE)
        {
            let attr = |k: &str| {
                r.attrs
                    .get(k)
                    .and_then(|v| v.known())
                    .map(std::borrow::Cow::into_owned)
                    .filter(|v| !v.is_null())
            };
            let mut tags: std::collections::BTreeMap<String, String> = attr("tags")
                .as_ref()
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), text(Some(v)))).collect())
                .unwrap_or_default();
            tags.insert(
                wid_core::MANAGED_BY_KEY.into(),
                wid_core::MANAGED_BY_VALUE.into(),
            );
            tags.insert(wid_core::PLAN_KEY.into(), plan.into());
            tags.insert(wid_core::APPLIED_KEY.into(), wanted_record(desired, &r.id));
            let name = r.id.part(1).to_owned();
            let role = wid_sandbox::aws::Role {
                name: name.clone(),
                path: text(attr("path").as_ref()),
                role_id: format!("AROA{:017}", name.len()),
                create_date: "2026-01-01T00:00:00Z".into(),
                assume_role_policy: text(attr("trust_policy").as_ref()),
                description: attr("description").map(|d| text(Some(&d))),
                max_session_duration: attr("max_session_duration")
                    .as_ref()
                    .and_then(Value::as_u64)
                    .unwrap_or(3600) as u32,
                permissions_boundary: attr("permissions_boundary").map(|b| text(Some(&b))),
                tags,
                inline_policies: attr("inline_policies")
                    .as_ref()
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                    .unwrap_or_default(),
                attached_policies: attr("managed_policies")
                    .as_ref()
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|v| text(Some(v))).collect())
                    .unwrap_or_default(),
            };
            state
                .aws
                .accounts
                .entry(r.id.part(0).to_owned())
                .or_default()
                .roles
                .insert(name.to_lowercase(), role);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_no_op_plan_of_1000_irsa_roles_reads_iam_in_a_handful_of_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = sandbox(dir.path()).await;
    let counter = CallCounter::default();
    let p = provider(&sb.cloud_url(), Limits::default(), counter.clone()).await;
    let mut cluster = cluster();
    cluster.issuer = Some(p.discover_issuer(&cluster).await.expect("issuer"));
    let workloads: Vec<Wl> = (0..1000)
        .map(|i| {
            let mut b = block(&format!("irsa-{i:04}"));
            b.managed_policies
                .push("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into());
            wl(0, &format!("team{}", i % 10), &format!("sa{i:04}"), b)
        })
        .collect();
    let desired = compile_plan(&workloads, std::slice::from_ref(&cluster), "irsa");
    let own = owner("irsa", false);
    // The shared OIDC provider through wid itself, the roles seeded.
    let oidc: Vec<wid_core::Resource> = desired
        .iter()
        .filter(|r| r.id.kind() == wid_aws::ids::KIND_OIDC)
        .cloned()
        .collect();
    let (_, changes) = plan(&p, &oidc, &own).await;
    apply(&p, &changes, &own).await;
    seed_roles(&sb, &desired, "irsa");

    let before = counter.total();
    let (_, changes) = plan(&p, &desired, &own).await;
    let bulk_calls = counter.total() - before;
    assert_eq!(changes.len(), 1001);
    let odd = changes
        .iter()
        .find(|c| c.kind != wid_core::ChangeKind::NoOp);
    assert!(
        odd.is_none(),
        "{:#?}",
        odd.map(|c| (&c.id, &c.reason, c.owned_attr_changes()))
    );
    // One provider listing and read, one page of role details, one page of ListRoles.
    assert!(
        bulk_calls < 100,
        "{bulk_calls} calls: {:?}",
        counter.snapshot()
    );
    assert_eq!(bulk_calls, 4, "{:?}", counter.snapshot());

    // Without the bulk permission the same plan reads role by role.
    let per_role = CallCounter::default();
    let q = provider(
        &denying_proxy(sb.cloud_url()),
        Limits::default(),
        per_role.clone(),
    )
    .await;
    let (_, changes) = plan(&q, &desired, &own).await;
    assert!(all_noop(&changes));
    let calls = per_role.total();
    assert!(
        calls >= 3000,
        "{calls} calls one by one: {:?}",
        per_role.snapshot()
    );
    eprintln!("1,000 IRSA roles, no-op: {bulk_calls} calls in bulk, {calls} one by one");
}
