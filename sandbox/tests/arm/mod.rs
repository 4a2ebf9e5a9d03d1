//! What the Azure tests share: an HTTPS client for the sandbox's ARM endpoint that trusts
//! only the sandbox directory's CA, and a sandbox with one AKS cluster.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wid_sandbox::{AksDecl, ClusterDecl, ClusterKind, Sandbox};

pub const SUB: &str = "6f1c2b3a-0000-4000-8000-000000000001";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const RG: &str = "rg-dev";
pub const MSI: &str = "2024-11-30";
pub const AUTHZ: &str = "2022-04-01";
pub const AKS: &str = "2025-10-01";
pub const RESOURCES: &str = "2021-04-01";

/// One HTTP answer.
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

    /// The ARM error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A client of one sandbox's ARM endpoint.
#[derive(Clone)]
pub struct Arm {
    addr: String,
    connector: TlsConnector,
    pub token: Option<String>,
}

/// A rustls client configuration trusting the certificates in `ca` only.
pub fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

impl Arm {
    pub fn new(sb: &Sandbox) -> Self {
        Self::with_config(&sb.azure_url(), client_config(&sb.azure_ca_path()))
    }

    pub fn with_config(url: &str, config: Arc<rustls::ClientConfig>) -> Self {
        Self {
            addr: url
                .strip_prefix("https://")
                .expect("an https:// URL")
                .to_owned(),
            connector: TlsConnector::from(config),
            token: Some("sandbox-token".to_owned()),
        }
    }

    /// Opens a TLS connection (for tests of the handshake itself).
    pub async fn connect(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(&self.addr).await?;
        let name = ServerName::try_from("127.0.0.1")
            .expect("server name")
            .to_owned();
        self.connector.connect(name, tcp).await
    }

    /// One request; `path` includes the query.
    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut stream = self.connect().await.expect("TLS connection");
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
            self.addr,
            body.len()
        );
        if let Some(token) = &self.token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        // A server may close without close_notify once the response is complete.
        let _ = stream.read_to_end(&mut raw).await;
        parse(&raw)
    }

    /// A request with `api-version` added to `path`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        version: &str,
        body: Option<&Value>,
    ) -> Reply {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.send(method, &format!("{path}{sep}api-version={version}"), body)
            .await
    }

    /// Follows an absolute `nextLink`.
    pub async fn next(&self, link: &str) -> Reply {
        let path = link
            .strip_prefix(&format!("https://{}", self.addr))
            .unwrap_or_else(|| panic!("nextLink {link} is not on this server"));
        self.send("GET", path, None).await
    }
}

fn parse(raw: &[u8]) -> Reply {
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
    let body = raw[split + 4..].to_vec();
    Reply {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

/// The AKS cluster `dev` in [`SUB`] / [`RG`], tenant [`TENANT`].
pub fn aks_dev() -> Vec<ClusterDecl> {
    vec![ClusterDecl {
        name: "aks-dev".into(),
        kind: ClusterKind::Aks,
        eks: None,
        gke: None,
        aks: Some(AksDecl {
            subscription: SUB.into(),
            resource_group: RG.into(),
            name: "dev".into(),
            tenant: Some(TENANT.into()),
            location: Some("westeurope".into()),
        }),
    }]
}

/// A sandbox in `dir` declaring [`aks_dev`].
pub async fn start(dir: &Path) -> Sandbox {
    Sandbox::start(dir, &aks_dev()).await.expect("sandbox")
}

/// `/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME`.
pub fn identity_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// Creates identity `name` in [`RG`] and returns its JSON.
pub async fn create_identity(arm: &Arm, name: &str) -> Value {
    let reply = arm
        .call(
            "PUT",
            &identity_path(name),
            MSI,
            Some(&serde_json::json!({ "location": "westeurope" })),
        )
        .await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
    reply.json()
}

/// A FIC body.
pub fn fic_body(issuer: &str, subject: &str) -> Value {
    serde_json::json!({ "properties": {
        "issuer": issuer,
        "subject": subject,
        "audiences": ["api://AzureADTokenExchange"],
    }})
}
