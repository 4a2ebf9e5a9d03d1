//! Faults below HTTP, on every emulator (Kubernetes, IAM, EKS, GCP, ARM over TLS), driven
//! with raw requests on loopback: a dropped connection answers nothing and applies
//! nothing, a hang answers nothing until the sandbox stops, a truncated answer carries
//! its status, headers and full `Content-Length` but half the body, and a lost answer
//! applies the write and answers a server error (or nothing).

mod arm;
mod common;

use std::path::Path;
use std::time::Duration;

use common::{ACCOUNT, TRUST, authorization};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wid_sandbox::{ClusterDecl, FaultAction, FaultRule, LostAs, Sandbox};

/// A sandbox with an EKS, a GKE and an AKS cluster (so every emulator has something to
/// serve).
async fn start(dir: &Path) -> Sandbox {
    let mut decls: Vec<ClusterDecl> = common::eks_dev();
    decls.extend(common::gke_prod());
    decls.extend(arm::aks_dev());
    Sandbox::start(dir, &decls).await.expect("sandbox")
}

/// One write per emulator: its API name, what a rule's `object` sees, and how to send it.
#[derive(Debug, Clone, Copy)]
enum Write {
    K8s,
    Iam,
    Eks,
    Gcp,
    Arm,
}

const ALL: [Write; 5] = [Write::K8s, Write::Iam, Write::Eks, Write::Gcp, Write::Arm];

impl Write {
    fn api(self) -> &'static str {
        match self {
            Self::K8s => "k8s:create serviceaccounts",
            Self::Iam => "iam:CreateRole",
            Self::Eks => "eks:CreatePodIdentityAssociation",
            Self::Gcp => "gcp:iam.serviceAccounts.create",
            Self::Arm => "azure:userAssignedIdentities.createOrUpdate",
        }
    }

    /// The HTTP/1.1 request (with `Connection: close`) creating an object named `name`.
    fn request(self, sb: &Sandbox, name: &str) -> String {
        let (method, path, headers, body) = match self {
            Self::K8s => (
                "POST",
                "/api/v1/namespaces/default/serviceaccounts".to_owned(),
                vec![("Content-Type".to_owned(), "application/json".to_owned())],
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
                    .to_string(),
            ),
            Self::Iam => (
                "POST",
                "/".to_owned(),
                vec![
                    (
                        "Content-Type".to_owned(),
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                    ("Authorization".to_owned(), authorization(ACCOUNT, "iam")),
                ],
                serde_urlencoded::to_string([
                    ("Action", "CreateRole"),
                    ("Version", "2010-05-08"),
                    ("RoleName", name),
                    ("AssumeRolePolicyDocument", TRUST),
                ])
                .expect("form"),
            ),
            Self::Eks => (
                "POST",
                "/clusters/dev/pod-identity-associations".to_owned(),
                vec![
                    ("Content-Type".to_owned(), "application/json".to_owned()),
                    ("Authorization".to_owned(), authorization(ACCOUNT, "eks")),
                ],
                json!({"namespace": "default", "serviceAccount": name,
                       "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{name}")})
                .to_string(),
            ),
            Self::Gcp => (
                "POST",
                "/gcp/iam/v1/projects/acme-prod/serviceAccounts".to_owned(),
                vec![
                    ("Content-Type".to_owned(), "application/json".to_owned()),
                    (
                        "Authorization".to_owned(),
                        "Bearer sandbox-token".to_owned(),
                    ),
                ],
                json!({"accountId": name}).to_string(),
            ),
            Self::Arm => (
                "PUT",
                format!("{}?api-version={}", arm::identity_path(name), arm::MSI),
                vec![
                    ("Content-Type".to_owned(), "application/json".to_owned()),
                    (
                        "Authorization".to_owned(),
                        "Bearer sandbox-token".to_owned(),
                    ),
                ],
                json!({"location": "westeurope"}).to_string(),
            ),
        };
        let host = self.addr(sb);
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        request
    }

    fn addr(self, sb: &Sandbox) -> String {
        let url = match self {
            Self::K8s => sb.kube_url("eks-dev").expect("cluster"),
            Self::Iam | Self::Eks | Self::Gcp => sb.cloud_url(),
            Self::Arm => sb.azure_url(),
        };
        url.split("://").nth(1).expect("a URL").to_owned()
    }

    /// Whether the object named `name` exists, read from the state.
    fn exists(self, sb: &Sandbox, name: &str) -> bool {
        let state = sb.snapshot();
        match self {
            Self::K8s => {
                state["clusters"]["eks-dev"]["objects"]["serviceaccounts"][format!("default/{name}")]
                    .is_object()
            }
            Self::Iam => state["aws"]["accounts"][ACCOUNT]["roles"][name].is_object(),
            Self::Eks => state["aws"]["accounts"][ACCOUNT]["eks"]["us-east-1"]["dev"]
                ["pod_identity_associations"]
                .as_object()
                .is_some_and(|all| all.values().any(|a| a["service_account"] == name)),
            Self::Gcp => {
                state["gcp"]["projects"]["acme-prod"]["service_accounts"][name].is_object()
            }
            Self::Arm => state["azure"]["subscriptions"][arm::SUB]["resourceGroups"][arm::RG]
                ["identities"][name]
                .is_object(),
        }
    }
}

/// What came back on one connection.
#[derive(Debug)]
struct Wire {
    bytes: Vec<u8>,
    /// The server closed the connection (rather than the read timing out).
    closed: bool,
}

impl Wire {
    fn head(&self) -> &str {
        let text = std::str::from_utf8(&self.bytes).expect("UTF-8");
        text.split("\r\n\r\n").next().unwrap_or_default()
    }

    fn status(&self) -> u16 {
        self.head()
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.head()))
    }

    fn body(&self) -> &[u8] {
        let split = self
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end");
        &self.bytes[split + 4..]
    }

    fn content_length(&self) -> usize {
        self.head()
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("Content-Length")
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
    wait: Duration,
) -> Wire {
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => {
                return Wire {
                    bytes,
                    closed: false,
                };
            }
            // A reset, or a TLS stream cut without close_notify, is a close too.
            Ok(Ok(0) | Err(_)) => {
                return Wire {
                    bytes,
                    closed: true,
                };
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Opens a connection for `write` (TLS for ARM) and sends `request`.
async fn send(sb: &Sandbox, write: Write, request: &str, wait: Duration) -> Wire {
    let tcp = TcpStream::connect(write.addr(sb)).await.expect("connect");
    match write {
        Write::Arm => {
            drop(tcp);
            let tls = arm::Arm::new(sb).connect().await.expect("TLS");
            exchange(tls, request, wait).await
        }
        _ => exchange(tcp, request, wait).await,
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_dropped_connection_answers_nothing_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    for write in ALL {
        sb.inject(FaultRule::new(write.api(), FaultAction::Drop).times(1));
        let wire = send(&sb, write, &write.request(&sb, "dropped"), WAIT).await;
        assert!(wire.closed, "{write:?}: the connection is closed");
        assert!(
            wire.bytes.is_empty(),
            "{write:?}: no answer: {:?}",
            wire.head()
        );
        assert!(!write.exists(&sb, "dropped"), "{write:?}: nothing applied");
        // The next request on a new connection is served.
        let served = send(&sb, write, &write.request(&sb, "served"), WAIT).await;
        assert!(
            (200..300).contains(&served.status()),
            "{write:?}: {:?}",
            String::from_utf8_lossy(&served.bytes)
        );
        assert!(write.exists(&sb, "served"), "{write:?}");
    }
}

#[tokio::test]
async fn a_lost_answer_applies_the_write_and_answers_a_server_error_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    for write in ALL {
        sb.inject(
            FaultRule::new(
                write.api(),
                FaultAction::LostResponse {
                    response: LostAs::ServerError,
                },
            )
            .times(1),
        );
        let wire = send(&sb, write, &write.request(&sb, "lost-a"), WAIT).await;
        let status = wire.status();
        assert!(
            status == 500 || status == 503,
            "{write:?}: a server error, not {status}"
        );
        assert!(
            write.exists(&sb, "lost-a"),
            "{write:?}: the write went through"
        );

        sb.inject(
            FaultRule::new(
                write.api(),
                FaultAction::LostResponse {
                    response: LostAs::Drop,
                },
            )
            .times(1),
        );
        let wire = send(&sb, write, &write.request(&sb, "lost-b"), WAIT).await;
        assert!(wire.closed && wire.bytes.is_empty(), "{write:?}: no answer");
        assert!(
            write.exists(&sb, "lost-b"),
            "{write:?}: the write went through"
        );
    }
    let state = sb.snapshot();
    assert_eq!(
        state["aws"]["accounts"][ACCOUNT]["roles"]["lost-a"]["name"],
        Value::from("lost-a")
    );
}

#[tokio::test]
async fn a_truncated_answer_has_its_head_and_half_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    for write in ALL {
        sb.inject(FaultRule::new(write.api(), FaultAction::Truncate).times(1));
        let wire = send(&sb, write, &write.request(&sb, "truncated"), WAIT).await;
        assert!(wire.closed, "{write:?}");
        assert!(
            (200..300).contains(&wire.status()),
            "{write:?}: {}",
            wire.head()
        );
        let full = wire.content_length();
        let got = wire.body().len();
        assert!(
            got > 0 && got < full,
            "{write:?}: {got} of {full} bytes arrived"
        );
        assert_eq!(got, full / 2, "{write:?}");
        let cut = match write {
            Write::Iam => !String::from_utf8_lossy(wire.body()).contains("</CreateRoleResponse>"),
            _ => serde_json::from_slice::<Value>(wire.body()).is_err(),
        };
        assert!(cut, "{write:?}: the body is cut");
        assert!(
            write.exists(&sb, "truncated"),
            "{write:?}: the write went through"
        );
    }
}

#[tokio::test]
async fn a_hang_answers_nothing_until_the_sandbox_stops() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let mut hung = Vec::new();
    for write in ALL {
        sb.inject(FaultRule::new(write.api(), FaultAction::Hang).times(1));
        let request = write.request(&sb, "hung");
        let addr = write.addr(&sb);
        let tls = matches!(write, Write::Arm).then(|| arm::Arm::new(&sb));
        hung.push(tokio::spawn(async move {
            let wire = match tls {
                Some(arm) => exchange(arm.connect().await.expect("TLS"), &request, WAIT * 3).await,
                None => {
                    exchange(
                        TcpStream::connect(addr).await.expect("connect"),
                        &request,
                        WAIT * 3,
                    )
                    .await
                }
            };
            (write, wire)
        }));
    }
    // Every request is hanging: it counted, and nothing came back yet.
    let deadline = tokio::time::Instant::now() + WAIT;
    while ALL
        .iter()
        .any(|w| sb.calls().get(w.api()).copied().unwrap_or(0) == 0)
    {
        assert!(tokio::time::Instant::now() < deadline, "requests arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hung.iter().all(|h| !h.is_finished()), "no answer yet");
    for write in ALL {
        assert!(!write.exists(&sb, "hung"), "{write:?}: nothing applied");
    }
    drop(sb);
    for task in hung {
        let (write, wire) = task.await.expect("task");
        assert!(wire.closed, "{write:?}: closed when the sandbox stops");
        assert!(wire.bytes.is_empty(), "{write:?}: {:?}", wire.head());
    }
}

#[tokio::test]
async fn a_lost_answer_can_hang_too() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    sb.inject(
        FaultRule::new(
            "iam:CreateRole",
            FaultAction::LostResponse {
                response: LostAs::Hang,
            },
        )
        .times(1),
    );
    let wire = send(
        &sb,
        Write::Iam,
        &Write::Iam.request(&sb, "silent"),
        Duration::from_millis(500),
    )
    .await;
    assert!(!wire.closed && wire.bytes.is_empty(), "still waiting");
    assert!(Write::Iam.exists(&sb, "silent"), "the write went through");
}
