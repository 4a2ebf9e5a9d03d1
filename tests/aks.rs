//! AKS through the CLI: examples/aks converges on the sandbox with the identity's real
//! client id on its KSAs (and in `wid render`), what wid made reads back through
//! Microsoft's Python SDKs against `wid sandbox serve`, and the 20-credential cap is caught
//! before any call.

mod common;
#[path = "aks/flow.rs"]
mod flow;

use common::*;
use flow::{SUB, TENANT, plan_text, workload};
use serde_json::Value;

const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

/// Runs `wid ARGS --sandbox-dir SB` from the repo root.
fn sandboxed(sb: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    all.extend(["--sandbox-dir", sb]);
    wid(&root(), &all)
}

fn state(sb: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(sb.join("state.json")).unwrap()).unwrap()
}

#[test]
fn the_aks_example_converges_and_the_ksas_carry_the_identitys_real_client_id() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_path = tmp.path().join("sb");
    let sb = sb_path.display().to_string();
    let first = sandboxed(&sb, &["plan", "examples/aks", "--detailed-exitcode"]);
    expect_code(&first, 2);
    let text = stdout(&first);
    assert!(text.contains("(known after apply)"), "{text}");
    insta::assert_snapshot!("aks_first_plan", text);
    let apply = sandboxed(&sb, &["apply", "examples/aks", "--auto-approve"]);
    expect_code(&apply, 0);
    let again = sandboxed(&sb, &["plan", "examples/aks", "--detailed-exitcode"]);
    expect_code(&again, 0);
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));

    let s = state(&sb_path);
    let identity =
        &s["azure"]["subscriptions"][SUB]["resourceGroups"]["rg-aks-prod"]["identities"]["orders"];
    let client_id = identity["clientId"].as_str().expect("the identity exists");
    assert_eq!(
        identity["federatedCredentials"].as_object().unwrap().len(),
        2
    );
    for cluster in ["aks-prod", "aks-dr"] {
        let sa = &s["clusters"][cluster]["objects"]["serviceaccounts"]["orders/orders-api"];
        let annotations = &sa["metadata"]["annotations"];
        assert_eq!(
            annotations["azure.workload.identity/client-id"], client_id,
            "{cluster}: {sa}"
        );
        assert_eq!(annotations["azure.workload.identity/tenant-id"], TENANT);
    }

    // Render reads the client id from the cloud and reminds of the pod label.
    let out = tmp.path().join("k8s");
    let render = sandboxed(
        &sb,
        &[
            "render",
            "examples/aks",
            "--out-dir",
            &out.display().to_string(),
        ],
    );
    expect_code(&render, 0);
    let sa = std::fs::read_to_string(out.join("aks-prod/orders/serviceaccount-orders-api.yaml"))
        .unwrap();
    assert!(
        sa.contains(&format!("azure.workload.identity/client-id: {client_id}")),
        "{sa}"
    );
    assert!(
        sa.contains("# Note: pods that use this service account need the label azure.workload.identity/use: \"true\""),
        "{sa}"
    );
}

#[test]
fn what_wid_made_reads_back_through_microsofts_python_sdks() {
    let sdks = std::process::Command::new("python3")
        .args(["-c", "import azure.mgmt.msi, azure.mgmt.authorization"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !sdks {
        println!(
            "SKIPPED: azure-mgmt-msi and azure-mgmt-authorization are not importable; run `python3 -m pip install azure-mgmt-msi azure-mgmt-authorization` (as .ci/run does)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    std::fs::create_dir_all(&dir).unwrap();
    let plan = root().join("examples/aks");
    let serve = Serve::start_with(&dir, &["--plan", &plan.display().to_string()]);
    let sb = serve.dir.display().to_string();
    expect_code(
        &sandboxed(&sb, &["apply", "examples/aks", "--auto-approve"]),
        0,
    );
    let s = state(&dir);
    let rg = &s["azure"]["subscriptions"][SUB]["resourceGroups"];
    let issuer = |group: &str, cluster: &str| {
        rg[group]["managedClusters"][cluster]["issuerUrl"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let subject = "system:serviceaccount:orders:orders-api";
    let fics = serde_json::json!({
        wid_azure::names::fic_name("aks-example", "aks-prod", "orders", "orders-api"):
            [issuer("rg-aks-prod", "aks-prod"), subject],
        wid_azure::names::fic_name("aks-example", "aks-dr", "orders", "orders-api"):
            [issuer("rg-aks-dr", "aks-dr"), subject],
    });
    let group = format!("/subscriptions/{SUB}/resourceGroups/rg-aks-prod");
    let roles = serde_json::json!([
        [group, READER],
        [
            format!("{group}/providers/Microsoft.Storage/storageAccounts/ordersdata"),
            BLOB_READER
        ],
    ]);
    let script = root().join("tests/aks_sdk.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .envs(env_file(&dir.join("env")))
        .env("EXPECT_RG", "rg-aks-prod")
        .env("EXPECT_IDENTITY", "orders")
        .env("EXPECT_PLAN", "aks-example")
        .env("EXPECT_FICS", fics.to_string())
        .env("EXPECT_ROLES", roles.to_string())
        // The SDKs must reach the sandbox only: no proxy, no ambient Azure login.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "aks_sdk.py failed\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("all checks passed"));
}

#[test]
fn twenty_one_ksas_on_one_identity_fail_validation_naming_them_with_no_call() {
    let tmp = tempfile::tempdir().unwrap();
    let workloads: String = (0..21)
        .map(|i| workload(&format!("ksa-{i:02}"), "shared", ""))
        .collect();
    std::fs::write(tmp.path().join("plan.toml"), plan_text("cap", &workloads)).unwrap();
    let sb = tmp.path().join("sb");
    let out = wid(
        tmp.path(),
        &[
            "plan",
            "plan.toml",
            "--sandbox-dir",
            &sb.display().to_string(),
        ],
    );
    expect_code(&out, 1);
    let err = stderr(&out);
    // The diagnostic wraps long lines; compare without the wrapping.
    let flat: String = err
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(flat.contains("21federatedcredentials"), "{err}");
    assert!(flat.contains("atmost20peridentity"), "{err}");
    for i in 0..21 {
        assert!(
            flat.contains(&format!("aks/apps/ksa-{i:02}(plan.toml:")),
            "ksa-{i:02}:\n{err}"
        );
    }
    assert!(
        err.contains("plan.toml:12:"),
        "located at the first workload: {err}"
    );
    assert_eq!(sandbox_calls(&sb), 0, "no API call");
    let validate = wid(tmp.path(), &["validate", "plan.toml"]);
    expect_code(&validate, 1);
}
