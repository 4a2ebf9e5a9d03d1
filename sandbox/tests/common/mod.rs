//! What the HTTP-level tests share: a tiny HTTP/1.1 client for loopback, the AWS
//! `Authorization` header the cloud emulator reads the account from, EKS requests, a
//! sandbox with the one EKS cluster `dev` in account [`ACCOUNT`], and GCP requests shaped
//! as the google-cloud-rust clients and gcloud send them.

#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wid_sandbox::{ClusterDecl, ClusterKind, EksDecl, Sandbox};

pub const ACCOUNT: &str = "111122223333";
pub const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
/// An identity policy (inline or managed): actions on resources, no principal.
pub const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

/// One HTTP answer, its body as text (de-chunked if it came chunked).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`, read to the end. `Host`, `Connection` and
/// `Content-Length` are set here; `headers` come after them.
pub async fn send(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let host = url.strip_prefix("http://").expect("an http:// URL");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..line_end]).expect("ascii").trim(),
            16,
        )
        .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 4 + size..];
    }
}

/// A SigV4-shaped `Authorization` header whose access key names `account`; the emulator
/// does not check the signature.
pub fn authorization(account: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=SANDBOX{account}/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
    )
}

/// An EKS (REST-JSON) request made as `account`.
pub async fn eks_as(
    sb: &Sandbox,
    account: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let auth = authorization(account, "eks");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    send(&sb.cloud_url(), method, path, &headers, body.as_bytes()).await
}

/// An EKS request made as [`ACCOUNT`].
pub async fn eks(sb: &Sandbox, method: &str, path: &str, body: Option<Value>) -> Reply {
    eks_as(sb, ACCOUNT, method, path, body).await
}

/// The EKS cluster `dev` in [`ACCOUNT`], `us-east-1`.
pub fn eks_dev() -> Vec<ClusterDecl> {
    vec![ClusterDecl {
        name: "eks-dev".into(),
        kind: ClusterKind::Eks,
        eks: Some(EksDecl {
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            name: "dev".into(),
        }),
        gke: None,
        aks: None,
    }]
}

/// A sandbox in `dir` declaring [`eks_dev`].
pub async fn start(dir: &Path) -> Sandbox {
    Sandbox::start(dir, &eks_dev()).await.unwrap()
}

/// The GKE cluster `prod` in project [`GCP_PROJECT`] (number [`GCP_NUMBER`]),
/// `us-central1`, declared as the plan cluster `gke-prod`.
pub fn gke_prod() -> Vec<ClusterDecl> {
    vec![ClusterDecl {
        name: "gke-prod".into(),
        kind: ClusterKind::Gke,
        eks: None,
        gke: Some(wid_sandbox::GkeDecl {
            project: GCP_PROJECT.into(),
            project_number: Some(GCP_NUMBER.into()),
            location: "us-central1".into(),
            name: "prod".into(),
        }),
        aks: None,
    }]
}

pub const GCP_PROJECT: &str = "acme-prod";
pub const GCP_NUMBER: &str = "123456789012";

/// The query every google-cloud-rust request carries (`$alt=json;enum-encoding=int`,
/// form-encoded as reqwest encodes it).
pub const RUST_ALT: &str = "%24alt=json%3Benum-encoding%3Dint";

/// A GCP request as the google-cloud-rust clients send it: a bearer token, the
/// `x-goog-api-client` header, `$alt=json;enum-encoding=int` appended to the query, and
/// a JSON body (`{}` for a POST without one).
pub async fn gcp(sb: &Sandbox, method: &str, path: &str, body: Option<&str>) -> Reply {
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{separator}{RUST_ALT}");
    let body = body.unwrap_or(if method == "POST" || method == "PUT" {
        "{}"
    } else {
        ""
    });
    let headers = [
        ("Authorization", "Bearer sandbox-token"),
        ("Content-Type", "application/json"),
        ("x-goog-api-client", "gl-rust/1.95.0 gax/1.0.0 gapic/1.11.0"),
    ];
    send(&sb.cloud_url(), method, &path, &headers, body.as_bytes()).await
}

/// A GCP request as gcloud sends it: `alt=json`, enums as names.
pub async fn gcloud_like(sb: &Sandbox, method: &str, path: &str, body: &str) -> Reply {
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{separator}alt=json");
    let headers = [
        ("Authorization", "Bearer sandbox-token"),
        ("Content-Type", "application/json"),
    ];
    send(&sb.cloud_url(), method, &path, &headers, body.as_bytes()).await
}
