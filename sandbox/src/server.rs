//! Starting, addressing and stopping the sandbox's servers, and who owns a sandbox
//! directory.
//!
//! # One owner per directory
//!
//! A process that starts a sandbox takes the directory's lock ([`crate::lock`]) first and
//! holds it until the sandbox stops, after its last write. Every other wid process pointed
//! at the directory either uses the servers of a `wid sandbox serve` that owns it
//! (advertised in `DIR/serve.json`, see [`crate::served`]) or waits for the lock. So no
//! two processes ever load the same `state.json` and write it back over each other.
//!
//! A wid command with an in-process sandbox holds the directory for the length of the
//! command and does not advertise its servers: another command waits for it rather than
//! using them. Waiting costs at most one command's run, while using them would tie the
//! second command to a process that exits when its own command is done, and to the
//! clusters that process happened to declare. `wid sandbox serve` is the way to share
//! one sandbox between concurrent commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::lock::{Busy, DirLock};
use crate::{ClusterDecl, FaultRule, Served, Shared, aws, azure, gcp, k8s, wire};

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
    /// This process already runs a sandbox on this directory.
    #[error("the sandbox in {dir} is already open in this process")]
    Busy {
        /// The sandbox directory.
        dir: String,
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
///
/// It holds the directory's lock for as long as it lives, so no other process loads the
/// same state meanwhile. Dropping it stops the servers, writes every change still in
/// memory, and releases the lock, in that order.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    kube: BTreeMap<String, SocketAddr>,
    cloud: SocketAddr,
    azure: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    flusher: JoinHandle<()>,
    advertised: bool,
    lock: Option<DirLock>,
}

/// What a process gets when it asks for a sandbox directory.
#[derive(Debug)]
pub enum Opened {
    /// The directory was free: the sandbox runs in this process.
    Started(Sandbox),
    /// `wid sandbox serve` serves the directory from another process: use its servers.
    Served(Served),
}

/// How long a process waits for a sandbox directory before saying so.
const WAIT_NOTICE: Duration = Duration::from_secs(1);
/// How often a waiting process looks again.
const WAIT_POLL: Duration = Duration::from_millis(50);

impl Sandbox {
    /// Loads (or creates) the sandbox in `dir`, makes sure every declared cluster exists
    /// (a new cluster starts like a real one: `default`, `kube-system`, `kube-public`),
    /// and starts the servers. Clusters already in the state are served too.
    ///
    /// When another process holds the directory, waits for it (saying so on stderr after
    /// a second); when a `wid sandbox serve` serves it, fails with
    /// [`SandboxError::Served`]. [`Sandbox::open`] uses the served one instead.
    pub async fn start(dir: &Path, clusters: &[ClusterDecl]) -> Result<Self, SandboxError> {
        match Self::open(dir, clusters).await? {
            Opened::Started(sandbox) => Ok(sandbox),
            Opened::Served(other) => Err(SandboxError::Served {
                dir: dir.display().to_string(),
                pid: other.pid,
            }),
        }
    }

    /// The sandbox of `dir`: the servers of the `wid sandbox serve` that serves it, or,
    /// once the directory is free, one started in this process (see [`Sandbox::start`]).
    /// While another process holds the directory without serving it (a wid command with
    /// an in-process sandbox), waits, and says so on stderr after a second:
    /// `waiting for the sandbox in DIR, held by process N`.
    ///
    /// An in-process sandbox is waited for rather than shared: it lives only as long as
    /// its command, and serves only the clusters that command declared, so a second
    /// command could not rely on it; waiting costs at most the first command's run, and
    /// the second then loads everything the first wrote. `wid sandbox serve` is the way to
    /// share one sandbox between concurrent commands.
    pub async fn open(dir: &Path, clusters: &[ClusterDecl]) -> Result<Opened, SandboxError> {
        let io = |source| SandboxError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let started = tokio::time::Instant::now();
        let mut told = false;
        let lock = loop {
            if let Some(other) = crate::served(dir) {
                return Ok(Opened::Served(other));
            }
            match DirLock::try_acquire(dir).map_err(io)? {
                Ok(lock) => break lock,
                Err(Busy::ThisProcess) => {
                    return Err(SandboxError::Busy {
                        dir: dir.display().to_string(),
                    });
                }
                Err(Busy::Other(pid)) => {
                    if !told && started.elapsed() >= WAIT_NOTICE {
                        told = true;
                        let pid = pid.map_or_else(
                            || "another process".to_owned(),
                            |p| format!("process {p}"),
                        );
                        eprintln!(
                            "waiting for the sandbox in {}, held by {pid}",
                            dir.display()
                        );
                    }
                    tokio::time::sleep(WAIT_POLL).await;
                }
            }
        };
        // Whoever advertised servers here is gone: it held the lock while serving.
        let _ = std::fs::remove_file(crate::served::path(dir));
        Self::start_locked(dir, clusters, lock)
            .await
            .map(Opened::Started)
    }

    async fn start_locked(
        dir: &Path,
        clusters: &[ClusterDecl],
        lock: DirLock,
    ) -> Result<Self, SandboxError> {
        let io = |source| SandboxError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let shared = Arc::new(Shared::load(dir).map_err(io)?);
        shared.write(|state| {
            for decl in clusters {
                k8s::ensure_cluster(state, decl);
                aws::ensure_cluster(state, decl);
                azure::ensure_cluster(state, decl);
                gcp::ensure_cluster(state, decl);
                k8s::adopt_cloud_issuer(state, decl);
                remember_decl(state, decl);
            }
        });
        let flusher = shared.spawn_flusher();
        let names: Vec<String> = shared.read(|s| s.clusters.keys().cloned().collect());
        let mut tasks = Vec::new();
        let mut kube = BTreeMap::new();
        for name in names {
            let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
            kube.insert(name.clone(), listener.local_addr().map_err(io)?);
            let app = k8s::router(shared.clone(), name);
            let listener = listener.tap_io(wire::no_delay);
            tasks.push(tokio::spawn(wire::serve(listener, app, shared.clone())));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let cloud = listener.local_addr().map_err(io)?;
        let app = aws::routes()
            .merge(gcp::routes())
            .route(crate::served::FLUSH_PATH, axum::routing::post(flush_now))
            .fallback(aws::not_found)
            .with_state(shared.clone());
        let listener = listener.tap_io(wire::no_delay);
        tasks.push(tokio::spawn(wire::serve(listener, app, shared.clone())));
        let tls = azure::tls::server_config(dir).map_err(io)?;
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let azure = listener.local_addr().map_err(io)?;
        let app = azure::router(shared.clone());
        let listener = azure::tls::TlsListener::new(listener, tls);
        tasks.push(tokio::spawn(wire::serve(listener, app, shared.clone())));
        Ok(Self {
            shared,
            kube,
            cloud,
            azure,
            tasks,
            flusher,
            advertised: false,
            lock: Some(lock),
        })
    }

    /// Every cluster's declaration (its kind and cloud side), by name.
    pub fn cluster_decls(&self) -> BTreeMap<String, ClusterDecl> {
        self.shared.read(|s| s.decls.clone())
    }

    /// Writes every change not yet on disk (`state.json`, `calls.json`, the fault
    /// counts). Changes reach disk on their own within a fraction of a second; a command
    /// that is about to exit calls this so that nothing depends on timing.
    pub fn flush(&self) -> Result<(), SandboxError> {
        self.shared.flush().map_err(|source| SandboxError::Io {
            dir: self.shared.dir().display().to_string(),
            source,
        })
    }

    /// Stops the servers, writes every change still in memory and releases the
    /// directory, reporting a failure to write (dropping does the same, logging it).
    pub fn stop(mut self) -> Result<(), SandboxError> {
        self.shutdown().map_err(|source| SandboxError::Io {
            dir: self.shared.dir().display().to_string(),
            source,
        })
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        for task in &self.tasks {
            task.abort();
        }
        self.flusher.abort();
        let result = self.shared.close();
        if self.advertised {
            self.advertised = false;
            let _ = std::fs::remove_file(crate::served::path(self.shared.dir()));
        }
        // Last: the next owner may load the state as soon as this is released.
        self.lock.take();
        result
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

    /// Adds a fault rule after those of `faults.json` (in memory only).
    pub fn inject(&self, rule: impl Into<FaultRule>) {
        self.shared.inject(rule);
    }

    /// The whole state as JSON (see [`Shared::snapshot`]).
    pub fn snapshot(&self) -> serde_json::Value {
        self.shared.snapshot()
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
            clusters: self.cluster_decls(),
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

/// Keeps a cluster's declaration. A declaration with a cloud side replaces one without
/// (a cluster first seeded by `wid sandbox load`, later declared by a plan), never the
/// other way round.
fn remember_decl(state: &mut crate::State, decl: &ClusterDecl) {
    let has_side = |d: &ClusterDecl| d.eks.is_some() || d.gke.is_some() || d.aks.is_some();
    match state.decls.get(&decl.name) {
        Some(known) if has_side(known) && !has_side(decl) => {}
        _ => {
            state.decls.insert(decl.name.clone(), decl.clone());
        }
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
        if self.lock.is_some()
            && let Err(e) = self.shutdown()
        {
            tracing::error!(
                "sandbox: failed to write {}: {e}",
                self.shared.dir().display()
            );
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

/// `POST /_sandbox/flush`: writes the state to disk now, so another process (the CLI that
/// just applied through `wid sandbox serve`, a test) reads it from `DIR/state.json` at
/// once instead of after the next debounced write.
async fn flush_now(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
) -> http::StatusCode {
    match shared.flush() {
        Ok(()) => http::StatusCode::NO_CONTENT,
        Err(e) => {
            tracing::error!("sandbox: failed to write the state: {e}");
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
