//! `wid sandbox serve` as a long-running process: how it stops.

mod common;

use common::*;

/// A service manager or container runtime stops `serve` with SIGTERM, a closed terminal
/// with SIGHUP: both must stop it as Ctrl-C does, leaving no `serve.json` behind (a stale
/// one names a dead process) and every write on disk.
#[test]
fn sandbox_serve_stops_cleanly_on_sigterm_and_sighup() {
    let kubectl = have("kubectl");
    for signal in ["TERM", "HUP", "INT"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sb");
        // A cluster to serve: `load` creates it.
        let seed = tmp.path().join("seed.yaml");
        std::fs::write(
            &seed,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seed\n  namespace: default\n",
        )
        .unwrap();
        let dir_arg = dir.display().to_string();
        let load = wid(
            tmp.path(),
            &[
                "sandbox",
                "load",
                &seed.display().to_string(),
                "--dir",
                &dir_arg,
            ],
        );
        expect_code(&load, 0);
        let mut serve = Serve::start(&dir);
        assert!(dir.join("serve.json").exists(), "serve advertises itself");
        if kubectl {
            let manifest = tmp.path().join("ns.yaml");
            std::fs::write(
                &manifest,
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: before-stop\n",
            )
            .unwrap();
            serve.kubectl(&["create", "-f", &manifest.display().to_string()]);
        }
        assert!(serve.stop_with(signal), "serve exits 0 on SIG{signal}");
        assert!(
            !dir.join("serve.json").exists(),
            "serve.json is left behind after SIG{signal}"
        );
        let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
        if kubectl {
            assert!(
                state.contains("before-stop"),
                "the write survives SIG{signal}"
            );
        }
    }
    // A signal as soon as the kubeconfig exists is caught too.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let mut serve = Serve::start(&dir);
    assert!(serve.stop_with("TERM"), "serve exits 0 on an early SIGTERM");
    assert!(!dir.join("serve.json").exists());
}
