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
            let mut sandbox = Sandbox::start(&dir, &clusters)
                .await
                .map_err(CliError::sandbox)?;
            // Other wid commands pointed at this directory use these servers from now on;
            // advertise before writing the kubeconfig, which is what users wait for.
            sandbox.advertise().map_err(CliError::sandbox)?;
            sandbox.write_client_files().map_err(CliError::sandbox)?;
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
            stopped().await?;
            // Stopping writes what is still in memory, then frees the directory.
            sandbox.stop().map_err(CliError::sandbox)?;
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

/// Waits for Ctrl-C, or SIGTERM (how service managers and test harnesses stop a server).
async fn stopped() -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Io(format!("failed to wait for a signal: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(failed)?;
        tokio::select! {
            done = tokio::signal::ctrl_c() => done.map_err(failed),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(failed)
    }
}
