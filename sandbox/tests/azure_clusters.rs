//! The ARM emulator over HTTPS, continued: managed clusters, resource groups and
//! subscriptions, faults and call counters, and AKS clusters issuing Kubernetes tokens with
//! their OIDC issuer.

mod arm;
mod common;

use arm::{AKS, AUTHZ, Arm, RESOURCES, RG, SUB, TENANT, create_identity, start};
use base64::Engine;
use serde_json::{Value, json};
use wid_sandbox::{Fault, FaultAction, azure};

#[tokio::test]
async fn managed_clusters_resource_groups_and_subscriptions_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/dev"
    );
    let cluster = arm.call("GET", &path, AKS, None).await.json();
    assert_eq!(
        cluster["id"],
        format!(
            "/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ContainerService/managedClusters/dev"
        )
    );
    assert_eq!(
        (cluster["location"].as_str(), cluster["type"].as_str()),
        (
            Some("westeurope"),
            Some("Microsoft.ContainerService/ManagedClusters")
        )
    );
    let props = &cluster["properties"];
    assert_eq!(props["provisioningState"], "Succeeded");
    assert!(
        props["fqdn"]
            .as_str()
            .unwrap()
            .ends_with(".hcp.westeurope.azmk8s.io")
    );
    assert_eq!(props["oidcIssuerProfile"]["enabled"], true);
    let issuer = props["oidcIssuerProfile"]["issuerURL"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = format!("https://westeurope.oic.prod-aks.azure.com/{TENANT}/");
    assert!(
        issuer.starts_with(&prefix) && issuer.ends_with('/'),
        "{issuer}"
    );
    assert!(uuid::Uuid::parse_str(issuer[prefix.len()..].trim_end_matches('/')).is_ok());
    assert_eq!(
        props["securityProfile"],
        json!({ "workloadIdentity": { "enabled": true } })
    );

    sb.shared().write(|state| {
        assert!(azure::set_oidc_issuer(state, SUB, RG, "dev", false));
        assert!(azure::set_workload_identity(state, SUB, RG, "dev", false));
    });
    let cluster = arm.call("GET", &path, AKS, None).await.json();
    assert_eq!(
        cluster["properties"]["oidcIssuerProfile"],
        json!({ "enabled": false })
    );
    assert_eq!(cluster["properties"]["securityProfile"], json!({}));
    let missing = arm
        .call("GET", &path.replace("/dev", "/prod"), AKS, None)
        .await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (404, "ResourceNotFound")
    );

    let rg = arm
        .call(
            "GET",
            &format!("/subscriptions/{SUB}/resourcegroups/RG-DEV"),
            RESOURCES,
            None,
        )
        .await
        .json();
    assert_eq!(
        rg,
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/{RG}"), "name": RG,
            "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
            "properties": { "provisioningState": "Succeeded" },
        })
    );
    let new_rg = arm
        .call(
            "PUT",
            &format!("/subscriptions/{SUB}/resourcegroups/rg-shared"),
            RESOURCES,
            Some(&json!({ "location": "eastus", "tags": { "a": "b" } })),
        )
        .await;
    assert_eq!(
        (new_rg.status, new_rg.json()["tags"].clone()),
        (201, json!({ "a": "b" }))
    );
    assert_eq!(
        arm.call(
            "PUT",
            &format!("/subscriptions/{SUB}/resourcegroups/rg-shared"),
            RESOURCES,
            Some(&json!({ "location": "eastus" }))
        )
        .await
        .status,
        200
    );
    let moved = arm
        .call(
            "PUT",
            &format!("/subscriptions/{SUB}/resourcegroups/rg-shared"),
            RESOURCES,
            Some(&json!({ "location": "westus" })),
        )
        .await;
    assert_eq!(
        (moved.status, moved.code().as_str()),
        (409, "InvalidResourceGroupLocation")
    );
    let gone = arm
        .call(
            "GET",
            &format!("/subscriptions/{SUB}/resourcegroups/nope"),
            RESOURCES,
            None,
        )
        .await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (404, "ResourceGroupNotFound")
    );
    sb.shared()
        .write(|state| azure::ensure_resource_group(state, SUB, "rg-extra", "North Europe"));
    let extra = arm
        .call(
            "GET",
            &format!("/subscriptions/{SUB}/resourcegroups/rg-extra"),
            RESOURCES,
            None,
        )
        .await
        .json();
    assert_eq!(extra["location"], "northeurope");

    let sub = arm
        .call("GET", &format!("/subscriptions/{SUB}"), "2022-12-01", None)
        .await
        .json();
    assert_eq!(
        (
            sub["subscriptionId"].as_str(),
            sub["tenantId"].as_str(),
            sub["state"].as_str()
        ),
        (Some(SUB), Some(TENANT), Some("Enabled"))
    );
    let calls = sb.calls();
    assert_eq!(
        (
            calls["azure:managedClusters.get"],
            calls["azure:resourceGroups.get"],
            calls["azure:subscriptions.get"]
        ),
        (3, 3, 1)
    );
}

#[tokio::test]
async fn faults_answer_as_arm_does() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    create_identity(&arm, "orders").await;
    let path = arm::identity_path("orders");
    sb.inject(Fault {
        api: "azure:userAssignedIdentities.get".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    let throttled = arm.call("GET", &path, arm::MSI, None).await;
    assert_eq!(
        (
            throttled.status,
            throttled.code().as_str(),
            throttled.header("retry-after")
        ),
        (429, "SubscriptionRequestsThrottled", Some("1"))
    );
    assert_eq!(arm.call("GET", &path, arm::MSI, None).await.status, 200);

    sb.inject(Fault {
        api: "azure:roleDefinitions".into(),
        action: FaultAction::ServerError,
        times: Some(1),
    });
    let failed = arm
        .call(
            "GET",
            &format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"),
            AUTHZ,
            None,
        )
        .await;
    assert_eq!(
        (failed.status, failed.code().as_str()),
        (500, "InternalServerError")
    );

    let fic = format!("{path}/federatedIdentityCredentials/fic-1");
    sb.inject(Fault {
        api: "azure:federatedIdentityCredentials.createOrUpdate".into(),
        action: FaultAction::Conflict,
        times: Some(1),
    });
    let conflict = arm
        .call(
            "PUT",
            &fic,
            arm::MSI,
            Some(&arm::fic_body("https://i/", "s")),
        )
        .await;
    assert_eq!(
        (conflict.status, conflict.code().as_str()),
        (
            409,
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
        )
    );

    // Latency on a FIC write keeps the identity busy: a write meanwhile is refused.
    sb.inject(Fault {
        api: "azure:federatedIdentityCredentials.createOrUpdate".into(),
        action: FaultAction::Latency { ms: 300 },
        times: Some(1),
    });
    let body = arm::fic_body("https://i/", "s");
    let (slow, overlapping) = tokio::join!(arm.call("PUT", &fic, arm::MSI, Some(&body)), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        arm.call("DELETE", &fic, arm::MSI, None).await
    });
    assert_eq!((slow.status, overlapping.status), (201, 409));
    assert_eq!(
        azure::fic_stats(sb.shared()).rejected_concurrent,
        1,
        "injected conflicts are not counted"
    );
    let calls = sb.calls();
    assert_eq!(calls["azure:userAssignedIdentities.get"], 2);
    assert_eq!(
        calls["azure:federatedIdentityCredentials.createOrUpdate"],
        2
    );
    assert_eq!(calls["azure:federatedIdentityCredentials.delete"], 1);
}

#[tokio::test]
async fn aks_clusters_issue_tokens_with_their_oidc_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let issuer = sb.shared().read(|state| {
        state.azure.subscriptions[SUB].resource_groups[RG].managed_clusters["dev"]
            .issuer_url
            .clone()
    });
    let body = json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": { "audiences": ["api://AzureADTokenExchange"] } });
    let reply = common::send(
        &sb.kube_url("aks-dev").unwrap(),
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.json()["status"]["token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], json!(["api://AzureADTokenExchange"]));
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
}
