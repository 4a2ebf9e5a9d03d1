//! TLS for the Azure endpoint: a CA generated once per sandbox directory
//! (`DIR/azure-ca.pem`, its key in `DIR/azure-ca-key.pem`, both kept across restarts), a
//! server certificate for `127.0.0.1` and `localhost` signed by it at every start, and a
//! listener that hands axum connections whose TLS handshake already finished.
//!
//! Azure's SDKs refuse to send bearer tokens over plain HTTP, so ARM is served over TLS;
//! clients trust `DIR/azure-ca.pem` in sandbox mode only. Only the CA's key and
//! distinguished name are needed to sign, so a restart rebuilds the issuer from the key
//! file and leaves the CA certificate, which clients already trust, untouched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The CA certificate's file name in the sandbox directory.
pub const CA_FILE: &str = "azure-ca.pem";
/// The CA key's file name in the sandbox directory.
pub const CA_KEY_FILE: &str = "azure-ca-key.pem";

const CA_NAME: &str = "wid sandbox Azure CA";
/// A handshake that takes longer than this is dropped, so a silent client cannot hold a
/// task for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of a sandbox directory's CA certificate.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join(CA_FILE)
}

/// The CA's subject and usages; the same on every start, so a rebuilt issuer matches the
/// certificate written the first time.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "wid sandbox");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

/// Loads the directory's CA key, or generates the CA (certificate and key) when either
/// file is missing, and returns its issuer.
fn load_or_create_ca(dir: &Path) -> std::io::Result<Issuer<'static, KeyPair>> {
    let cert_path = ca_path(dir);
    let key_path = dir.join(CA_KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)?;
        let key = KeyPair::from_pem(&pem).map_err(|e| invalid(&key_path, e))?;
        return Ok(Issuer::new(ca_params(), key));
    }
    let key = KeyPair::generate().map_err(std::io::Error::other)?;
    let params = ca_params();
    let cert = params.self_signed(&key).map_err(std::io::Error::other)?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem())?;
    Ok(Issuer::new(params, key))
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}

/// Writes a key file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The rustls configuration of the Azure endpoint: a fresh server certificate for
/// `127.0.0.1` and `localhost`, signed by the directory's CA (created on first use).
pub fn server_config(dir: &Path) -> std::io::Result<Arc<ServerConfig>> {
    let ca = load_or_create_ca(dir)?;
    let key = KeyPair::generate().map_err(std::io::Error::other)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "127.0.0.1");
    params.distinguished_name = name;
    params.subject_alt_names = vec![
        SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
        SanType::DnsName("localhost".try_into().map_err(std::io::Error::other)?),
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params.signed_by(&key, &ca).map_err(std::io::Error::other)?;
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(std::io::Error::other)?;
    Ok(Arc::new(config))
}

/// A listener whose connections completed their TLS handshake. Handshakes run in their own
/// tasks, so a slow or failing client never holds up the others; dropping the listener
/// closes the port and aborts handshakes in progress.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, tcp: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        self.handshakes.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                Ok(Err(e)) => {
                    tracing::debug!("sandbox azure: TLS handshake with {peer} failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!("sandbox azure: TLS handshake with {peer} timed out");
                    None
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((mut tcp, peer)) => {
                        crate::wire::no_delay(&mut tcp);
                        self.start_handshake(tcp, peer);
                    }
                    Err(e) => {
                        tracing::debug!("sandbox azure: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        server_config(dir.path()).expect("first start");
        let ca = std::fs::read(ca_path(dir.path())).expect("ca");
        let key = std::fs::read(dir.path().join(CA_KEY_FILE)).expect("key");
        server_config(dir.path()).expect("second start");
        assert_eq!(std::fs::read(ca_path(dir.path())).expect("ca"), ca);
        assert_eq!(
            std::fs::read(dir.path().join(CA_KEY_FILE)).expect("key"),
            key
        );
        assert!(
            String::from_utf8(ca)
                .expect("utf8")
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }
}
