//! Starting, addressing and stopping the sandbox's servers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{ClusterDecl, Fault, Shared, aws, azure, gcp, k8s};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Another process serves this directory (`wid sandbox serve`).
    #[error(
        "the sandbox in {dir} is being served by process {pid}; use that server, or stop it first"
    )]
    Served {
        /// The sandbox directory.
        dir: String,
        /// The serving process.
        pid: u32,
    },
    /// The state directory or one of its files could not be read or written.
    #[error("sandbox directory {dir}: {source}")]
    Io {
        /// The sandbox directory.
        dir: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A running sandbox: one Kubernetes API server per cluster, one cloud API server and one
/// Azure Resource Manager server (HTTPS), all on 127.0.0.1 with ports chosen by the OS.
/// Dropping it stops the servers.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    kube: BTreeMap<String, SocketAddr>,
    cloud: SocketAddr,
    azure: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    advertised: bool,
}

impl Sandbox {
    /// Loads (or creates) the sandbox in `dir`, makes sure every declared cluster exists
    /// (a new cluster starts like a real one: `default`, `kube-system`, `kube-public`),
    /// and starts the servers. Clusters already in the state are served too.
    pub async fn start(dir: &Path, clusters: &[ClusterDecl]) -> Result<Self, SandboxError> {
        let io = |source| SandboxError::Io {
            dir: dir.display().to_string(),
            source,
        };
        if let Some(other) = crate::served(dir) {
            return Err(SandboxError::Served {
                dir: dir.display().to_string(),
                pid: other.pid,
            });
        }
        let shared = Arc::new(Shared::load(dir).map_err(io)?);
        shared.write(|state| {
            for decl in clusters {
                k8s::ensure_cluster(state, decl);
                aws::ensure_cluster(state, decl);
                azure::ensure_cluster(state, decl);
                gcp::ensure_cluster(state, decl);
                k8s::adopt_cloud_issuer(state, decl);
            }
        });
        let names: Vec<String> = shared.read(|s| s.clusters.keys().cloned().collect());
        let mut tasks = Vec::new();
        let mut kube = BTreeMap::new();
        for name in names {
            let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
            kube.insert(name.clone(), listener.local_addr().map_err(io)?);
            let app = k8s::router(shared.clone(), name);
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let cloud = listener.local_addr().map_err(io)?;
        let app = aws::routes()
            .merge(gcp::routes())
            .fallback(aws::not_found)
            .with_state(shared.clone());
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        let tls = azure::tls::server_config(dir).map_err(io)?;
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let azure = listener.local_addr().map_err(io)?;
        let app = azure::router(shared.clone());
        let listener = azure::tls::TlsListener::new(listener, tls);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(Self {
            shared,
            kube,
            cloud,
            azure,
            tasks,
            advertised: false,
        })
    }

    /// The state, counters and faults shared by the servers.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The base URL of a cluster's Kubernetes API (`http://127.0.0.1:PORT`).
    pub fn kube_url(&self, cluster: &str) -> Option<String> {
        self.kube.get(cluster).map(|a| format!("http://{a}"))
    }

    /// The clusters served, by name.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.kube.keys().map(String::as_str)
    }

    /// The base URL of the cloud APIs (`AWS_ENDPOINT_URL`; the GCP APIs are under
    /// `/gcp/iam`, `/gcp/crm` and `/gcp/container`).
    pub fn cloud_url(&self) -> String {
        format!("http://{}", self.cloud)
    }

    /// The base URL of Azure Resource Manager (`https://127.0.0.1:PORT`).
    pub fn azure_url(&self) -> String {
        format!("https://{}", self.azure)
    }

    /// The CA certificate (PEM) that signs the Azure endpoint's certificate:
    /// `DIR/azure-ca.pem`, generated once per directory.
    pub fn azure_ca_path(&self) -> PathBuf {
        azure::tls::ca_path(self.shared.dir())
    }

    /// Calls per API so far.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.calls()
    }

    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// A kubeconfig with one context per cluster, named after the cluster.
    pub fn kubeconfig(&self) -> String {
        let mut clusters = String::new();
        let mut contexts = String::new();
        let mut current = None;
        for (name, addr) in &self.kube {
            current.get_or_insert(name.clone());
            let _ = write!(
                clusters,
                "- name: {name}\n  cluster:\n    server: http://{addr}\n"
            );
            let _ = write!(
                contexts,
                "- name: {name}\n  context:\n    cluster: {name}\n    user: sandbox\n"
            );
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{contexts}current-context: {}\nusers:\n- name: sandbox\n  user:\n    token: sandbox\npreferences: {{}}\n",
            current.unwrap_or_default()
        )
    }

    /// Shell lines that point the aws CLI, gcloud and the SDKs at the sandbox with dummy
    /// credentials, and name the Azure endpoint and its CA.
    ///
    /// The AWS access key id carries the account the emulator acts in (`SANDBOX` and the
    /// account of the first EKS cluster), since the sandbox derives the caller's account
    /// from it. gcloud gets endpoint overrides, an access token file and a scratch
    /// configuration directory in the sandbox directory (see [`gcp::env_lines`]). For
    /// Azure: `WID_SANDBOX_AZURE_URL` and `WID_SANDBOX_AZURE_CA` (for an SDK's `base_url`
    /// and `connection_verify`), `AZURE_SUBSCRIPTION_ID` and `AZURE_TENANT_ID` of the first
    /// AKS cluster, and `AZURE_CONFIG_DIR` pointing the Azure CLI at an empty profile in
    /// the sandbox directory, so it holds no login to the real cloud. Variables that could
    /// send an AWS call elsewhere (a profile, per-service endpoints, an instruction to
    /// ignore the endpoint) are unset first: a shell that sources this file reaches the
    /// sandbox and nothing else.
    pub fn env_script(&self) -> String {
        let url = self.cloud_url();
        let account = self.shared.read(aws::default_account);
        let project = self.shared.read(gcp::default_project);
        let mut script = format!(
            "unset AWS_PROFILE AWS_SESSION_TOKEN AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_EKS AWS_ENDPOINT_URL_STS\nexport AWS_ENDPOINT_URL={url}\nexport AWS_ACCESS_KEY_ID=SANDBOX{account}\nexport AWS_SECRET_ACCESS_KEY=sandbox\nexport AWS_REGION=us-east-1\nexport AWS_DEFAULT_REGION=us-east-1\nexport AWS_EC2_METADATA_DISABLED=true\n{}",
            gcp::env_lines(&url, self.shared.dir(), project.as_deref())
        );
        let _ = write!(
            script,
            "export WID_SANDBOX_AZURE_URL={}\nexport WID_SANDBOX_AZURE_CA={}\nexport AZURE_CONFIG_DIR={}\n",
            self.azure_url(),
            shell_quote(&self.azure_ca_path().display().to_string()),
            shell_quote(&self.shared.dir().join("azure-cli").display().to_string()),
        );
        if let Some((sub, tenant)) = self.shared.read(azure::default_subscription) {
            let _ = write!(
                script,
                "export AZURE_SUBSCRIPTION_ID={sub}\nexport AZURE_TENANT_ID={tenant}\n"
            );
        }
        script
    }

    /// Advertises these servers in `DIR/serve.json` so other wid commands pointed at the
    /// directory use them (removed again when the sandbox is dropped).
    pub fn advertise(&mut self) -> Result<(), SandboxError> {
        let served = crate::Served {
            pid: std::process::id(),
            kube: self
                .kube
                .keys()
                .map(|name| (name.clone(), format!("http://{}", self.kube[name])))
                .collect(),
            cloud: self.cloud_url(),
            azure: Some(self.azure_url()),
            azure_ca: Some(self.azure_ca_path()),
        };
        let dir = self.shared.dir();
        let json = serde_json::to_vec_pretty(&served).map_err(|e| SandboxError::Io {
            dir: dir.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&crate::served::path(dir), &json).map_err(|source| SandboxError::Io {
            dir: dir.display().to_string(),
            source,
        })?;
        self.advertised = true;
        Ok(())
    }

    /// Writes `DIR/kubeconfig`, `DIR/env`, and the gcloud token file and scratch
    /// configuration directory `DIR/env` names.
    pub fn write_client_files(&self) -> Result<(), SandboxError> {
        let dir = self.shared.dir();
        let io = |source| SandboxError::Io {
            dir: dir.display().to_string(),
            source,
        };
        write_atomic(&dir.join("kubeconfig"), self.kubeconfig().as_bytes()).map_err(io)?;
        gcp::write_client_files(dir).map_err(io)?;
        write_atomic(&dir.join("env"), self.env_script().as_bytes()).map_err(io)?;
        Ok(())
    }
}

/// `text` as one shell word (single-quoted when it holds anything but safe characters).
fn shell_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if self.advertised {
            let _ = std::fs::remove_file(crate::served::path(self.shared.dir()));
        }
    }
}

/// Writes `path` whole or not at all (a temporary file renamed over it), so a reader that
/// waits for the file never sees half of it.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
