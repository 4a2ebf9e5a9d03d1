//! One process owns a sandbox directory at a time. `wid sandbox serve` advertises its
//! servers in `DIR/serve.json`; other wid commands pointed at the same directory talk to
//! those servers instead of loading the state themselves (two processes writing one
//! `state.json` would lose each other's changes).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A sandbox being served by another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The serving process.
    pub pid: u32,
    /// Kubernetes API base URLs by cluster name.
    pub kube: BTreeMap<String, String>,
    /// The cloud APIs' base URL.
    pub cloud: String,
    /// The Azure Resource Manager base URL (`https://127.0.0.1:PORT`).
    #[serde(default)]
    pub azure: Option<String>,
    /// The CA certificate (PEM) the Azure endpoint's certificate is signed by.
    #[serde(default)]
    pub azure_ca: Option<PathBuf>,
    /// Every cluster's declaration (its kind and cloud side), by name.
    #[serde(default)]
    pub clusters: BTreeMap<String, crate::ClusterDecl>,
}

/// The cloud server's path that makes a serving process write its state to disk now.
pub(crate) const FLUSH_PATH: &str = "/_sandbox/flush";

impl Served {
    /// Asks the serving process to write its state to `DIR/state.json` now (it otherwise
    /// writes a burst of changes a few milliseconds after it ends), so what a command just
    /// did through its servers is on disk when the command returns.
    pub fn flush(&self) -> std::io::Result<()> {
        use std::io::{Read as _, Write as _};
        let addr: SocketAddr = self
            .cloud
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| std::io::Error::other(format!("bad cloud address {}: {e}", self.cloud)))?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "POST {FLUSH_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        if head.starts_with(b"HTTP/1.1 204") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "the sandbox served by process {} could not write its state: {}",
                self.pid,
                String::from_utf8_lossy(&head)
            )))
        }
    }
}

/// The advertisement file of a sandbox directory.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("serve.json")
}

/// The sandbox served from `dir` by a live process, if any. A file left by a process that
/// died is ignored: the cloud server must accept a connection.
pub fn served(dir: &Path) -> Option<Served> {
    let bytes = std::fs::read(path(dir)).ok()?;
    let served: Served = serde_json::from_slice(&bytes).ok()?;
    let addr: SocketAddr = served.cloud.trim_start_matches("http://").parse().ok()?;
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    Some(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_live_server_is_not_a_served_sandbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(served(dir.path()), None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ad = Served {
            pid: 1,
            kube: BTreeMap::new(),
            cloud: format!("http://{addr}"),
            azure: None,
            azure_ca: None,
            clusters: BTreeMap::new(),
        };
        std::fs::write(path(dir.path()), serde_json::to_vec(&ad).expect("json")).expect("write");
        assert_eq!(served(dir.path()), Some(ad));
        drop(listener);
        assert_eq!(served(dir.path()), None);
    }

    #[test]
    fn files_without_the_azure_endpoint_still_parse() {
        let old = r#"{"pid":7,"kube":{},"cloud":"http://127.0.0.1:1"}"#;
        let served: Served = serde_json::from_str(old).expect("old serve.json");
        assert_eq!((served.azure, served.azure_ca), (None, None));
    }
}
