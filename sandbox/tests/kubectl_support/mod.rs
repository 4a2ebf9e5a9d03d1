//! What the kubectl conformance tests share: a sandbox with one generic cluster `dev`,
//! its kubeconfig, the real kubectl run against it off the async runtime, and
//! [`fixtures`].

#![allow(dead_code)]

pub mod fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use wid_sandbox::{ClusterDecl, ClusterKind, Sandbox};

/// Whether kubectl is installed; says so loudly when it is not.
pub fn kubectl_available(test: &str) -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: kubectl not found on PATH; {test} did not run");
    }
    found
}

/// kubectl pointed at one sandbox cluster.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
}

/// What one kubectl run printed.
#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// Runs kubectl off the async runtime (the sandbox serves on this test's runtime).
    pub async fn run(&self, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(&args)
                .output()
                .expect("kubectl runs");
            Output {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .expect("kubectl task")
    }

    /// Runs kubectl and requires success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs kubectl and requires failure; returns stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.ok,
            "kubectl {args:?} succeeded:\nstdout: {}",
            out.stdout
        );
        out.stderr
    }

    /// `kubectl get ARGS -o json`, parsed.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.ok(&all).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Writes a manifest file and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, yaml).expect("manifest");
        path.display().to_string()
    }
}

/// A sandbox with the generic cluster `dev`, and kubectl for it.
pub async fn start(dir: &Path) -> (Sandbox, Kubectl) {
    let decl = ClusterDecl {
        name: "dev".into(),
        kind: ClusterKind::Generic,
        eks: None,
        gke: None,
        aks: None,
    };
    let sandbox = Sandbox::start(dir, &[decl]).await.expect("sandbox starts");
    sandbox.write_client_files().expect("client files");
    let kubectl = Kubectl {
        kubeconfig: dir.join("kubeconfig"),
        dir: dir.to_owned(),
    };
    (sandbox, kubectl)
}
