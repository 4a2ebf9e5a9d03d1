//! Conformance with Microsoft's own Python management SDKs: the sandbox is started and
//! advertised exactly as `wid sandbox serve` does (serve.json, DIR/env), then
//! `azure_sdk.py` drives `azure-mgmt-msi` and `azure-mgmt-authorization` over the TLS
//! endpoint with the variables of DIR/env. `.ci/run` installs the packages; without them
//! the test says SKIPPED.

mod arm;

use std::path::Path;
use std::process::Command;

use arm::{RG, SUB, TENANT};

/// The `export NAME=value` lines of a DIR/env file, unquoted.
fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("DIR/env")
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.to_owned(), v.replace("'\\''", "'"))
        })
        .collect()
}

fn sdks_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import azure.mgmt.msi, azure.mgmt.authorization"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn microsofts_python_sdks_create_read_list_and_delete_through_the_sandbox() {
    if !sdks_installed() {
        println!(
            "SKIPPED: azure-mgmt-msi and azure-mgmt-authorization are not importable; run `python3 -m pip install azure-mgmt-msi azure-mgmt-authorization` (as .ci/run does)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut sb = arm::start(dir.path()).await;
    sb.advertise().unwrap();
    sb.write_client_files().unwrap();
    let served = wid_sandbox::served(dir.path()).expect("serve.json");
    assert_eq!(served.azure.as_deref(), Some(sb.azure_url().as_str()));
    assert_eq!(
        served.azure_ca.as_deref(),
        Some(sb.azure_ca_path().as_path())
    );

    let env = env_file(&dir.path().join("env"));
    let get = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("WID_SANDBOX_AZURE_URL"), Some(sb.azure_url()));
    assert_eq!(
        get("WID_SANDBOX_AZURE_CA"),
        Some(sb.azure_ca_path().display().to_string())
    );
    assert_eq!(get("AZURE_SUBSCRIPTION_ID").as_deref(), Some(SUB));
    assert_eq!(get("AZURE_TENANT_ID").as_deref(), Some(TENANT));
    assert_eq!(
        get("AZURE_CONFIG_DIR"),
        Some(dir.path().join("azure-cli").display().to_string())
    );

    let issuer = sb.shared().read(|state| {
        state.azure.subscriptions[SUB].resource_groups[RG].managed_clusters["dev"]
            .issuer_url
            .clone()
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure_sdk.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .envs(env)
            .env("SANDBOX_RG", RG)
            .env("SANDBOX_AKS_ISSUER", issuer)
            // The SDKs must reach the sandbox only: no proxy, no ambient Azure login.
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("REQUESTS_CA_BUNDLE")
            .output()
    })
    .await
    .unwrap()
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "azure_sdk.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");

    let calls = sb.calls();
    for api in [
        "azure:userAssignedIdentities.createOrUpdate",
        "azure:userAssignedIdentities.get",
        "azure:userAssignedIdentities.update",
        "azure:userAssignedIdentities.listByResourceGroup",
        "azure:userAssignedIdentities.listBySubscription",
        "azure:userAssignedIdentities.delete",
        "azure:federatedIdentityCredentials.createOrUpdate",
        "azure:federatedIdentityCredentials.get",
        "azure:federatedIdentityCredentials.list",
        "azure:federatedIdentityCredentials.delete",
        "azure:roleDefinitions.list",
        "azure:roleDefinitions.get",
        "azure:roleAssignments.create",
        "azure:roleAssignments.get",
        "azure:roleAssignments.list",
        "azure:roleAssignments.delete",
    ] {
        assert!(
            calls.get(api).copied().unwrap_or(0) > 0,
            "{api} was never called: {calls:?}"
        );
    }
    // `list(top=1)` over three credentials follows two nextLinks.
    assert!(
        calls["azure:federatedIdentityCredentials.list"] >= 4,
        "{calls:?}"
    );
}
