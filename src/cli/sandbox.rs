//! `wid sandbox ...`: run the embedded sandbox as servers for kubectl, the aws CLI and
//! gcloud, and seed it with manifests.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use wid_sandbox::{ClusterDecl, ClusterKind, Sandbox};

use super::validate::load_checked;
use super::{CliError, ExitCode};
use crate::session::sandbox_clusters;

/// Arguments of `wid sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Serve the sandbox until interrupted; writes DIR/kubeconfig (one context per
    /// cluster) and DIR/env (endpoints and dummy credentials for the aws CLI, gcloud and
    /// the SDKs, and the Azure Resource Manager URL with the CA to trust for it).
    #[command(
        after_help = "Then: kubectl --kubeconfig DIR/kubeconfig get sa -A;  . DIR/env && aws iam list-roles;  . DIR/env && gcloud iam service-accounts list"
    )]
    Serve {
        /// The sandbox's state directory.
        #[arg(long, value_name = "DIR", default_value = ".wid/sandbox")]
        dir: PathBuf,
        /// Also create the clusters this plan declares.
        #[arg(long, value_name = "PATH")]
        plan: Option<PathBuf>,
    },
    /// Wait until a `wid sandbox serve` for DIR answers (its kubeconfig and env are written
    /// by then), for scripts that start one in the background.
    #[command(
        after_help = "Example: wid sandbox serve --dir .wid/sandbox & wid sandbox wait --dir .wid/sandbox"
    )]
    Wait {
        /// The sandbox's state directory.
        #[arg(long, value_name = "DIR", default_value = ".wid/sandbox")]
        dir: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        timeout: u64,
    },
    /// Load Kubernetes manifests (multi-document YAML) into a sandbox cluster, creating
    /// the cluster and missing namespaces.
    Load {
        /// YAML files to load.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The sandbox's state directory.
        #[arg(long, value_name = "DIR", default_value = ".wid/sandbox")]
        dir: PathBuf,
        /// The cluster to load into.
        #[arg(long, default_value = "sandbox")]
        cluster: String,
    },
}

/// Runs `wid sandbox`.
pub async fn run(args: SandboxArgs) -> Result<ExitCode, CliError> {
    match args.command {
        SandboxCommand::Serve { dir, plan } => {
            let clusters = match plan {
                Some(path) => sandbox_clusters(&load_checked(&path)?),
                None => Vec::new(),
            };
            // Listen before anything is advertised: a stop signal that comes as soon as the
            // kubeconfig exists must find the handlers in place, not kill the process.
            let signals = StopSignals::listen()
                .map_err(|e| CliError::Io(format!("failed to listen for stop signals: {e}")))?;
            let mut sandbox = Sandbox::start(&dir, &clusters)
                .await
                .map_err(CliError::sandbox)?;
            // The client files first, then the advertisement other wid commands (and
            // `wid sandbox wait`) look for: once it is there, everything is.
            sandbox.write_client_files().map_err(CliError::sandbox)?;
            sandbox.advertise().map_err(CliError::sandbox)?;
            eprintln!(
                "sandbox serving {} cluster(s) from {}",
                sandbox.clusters().count(),
                dir.display()
            );
            for name in sandbox.clusters() {
                eprintln!(
                    "  cluster {name}: {}",
                    sandbox.kube_url(name).unwrap_or_default()
                );
            }
            eprintln!("  clouds: {}", sandbox.cloud_url());
            eprintln!(
                "  azure: {} (CA {})",
                sandbox.azure_url(),
                sandbox.azure_ca_path().display()
            );
            eprintln!(
                "kubectl --kubeconfig {0}/kubeconfig get sa -A   |   . {0}/env && aws iam list-roles   |   . {0}/env && gcloud iam service-accounts list",
                dir.display()
            );
            eprintln!("press Ctrl-C to stop");
            let signal = signals.wait().await;
            eprintln!("sandbox stopping ({signal})");
            // Stopping writes what is still in memory, stops the servers, removes
            // serve.json, then frees the directory.
            sandbox.stop().map_err(CliError::sandbox)?;
            Ok(ExitCode::Success)
        }
        SandboxCommand::Wait { dir, timeout } => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
            while wid_sandbox::served(&dir).is_none() {
                if std::time::Instant::now() >= deadline {
                    return Err(CliError::Usage(format!(
                        "no sandbox is served from {} after {timeout} s; start one with `wid sandbox serve --dir {} &`",
                        dir.display(),
                        dir.display()
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(ExitCode::Success)
        }
        SandboxCommand::Load {
            files,
            dir,
            cluster,
        } => {
            let decl = ClusterDecl {
                name: cluster.clone(),
                kind: ClusterKind::Generic,
                eks: None,
                gke: None,
                aks: None,
            };
            let sandbox = Sandbox::start(&dir, &[decl])
                .await
                .map_err(CliError::sandbox)?;
            let mut loaded = 0;
            for file in files {
                let yaml = std::fs::read_to_string(&file)
                    .map_err(|e| CliError::Io(format!("failed to read {}: {e}", file.display())))?;
                let ids = wid_sandbox::k8s::load_manifests(sandbox.shared(), &cluster, &yaml)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
                loaded += ids.len();
            }
            sandbox.stop().map_err(CliError::sandbox)?;
            eprintln!(
                "loaded {loaded} object(s) into sandbox cluster {cluster} ({})",
                dir.display()
            );
            Ok(ExitCode::Success)
        }
    }
}

/// SIGINT (Ctrl-C), SIGTERM (`kill`, service managers, container runtimes) and SIGHUP (a
/// closed terminal): each stops `serve` the same orderly way.
#[cfg(unix)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    /// Installs the handlers now (signals that come later are caught, not fatal).
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the first stop signal and names it.
    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// Ctrl-C, the only stop signal off Unix.
#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn wait(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
