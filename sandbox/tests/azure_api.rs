//! The ARM emulator over HTTPS: TLS with the directory's CA (kept across restarts), the
//! bearer token and api-version checks, identities and federated identity credentials
//! with the service's rules, and FIC write concurrency with real parallel requests.
//! Role assignments and definitions are in `azure_rbac.rs`; managed clusters, resource
//! groups, faults and tokens in `azure_clusters.rs`.

mod arm;

use arm::{Arm, MSI, RG, SUB, TENANT, create_identity, fic_body, identity_path, start};
use futures::future::join_all;
use serde_json::json;
use wid_sandbox::azure;

const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/t/g/";

#[tokio::test]
async fn arm_is_served_over_tls_with_a_ca_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    assert!(sb.azure_url().starts_with("https://127.0.0.1:"));
    assert_eq!(sb.azure_ca_path(), dir.path().join("azure-ca.pem"));
    let reply = Arm::new(&sb)
        .call("GET", &format!("/subscriptions/{SUB}"), "2022-12-01", None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["tenantId"], TENANT);

    // A client that does not trust the CA cannot connect.
    let untrusted = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let stranger = Arm::with_config(&sb.azure_url(), std::sync::Arc::new(untrusted));
    assert!(stranger.connect().await.is_err());

    // The CA a client trusted before a restart still verifies the new server certificate.
    let ca = std::fs::read(sb.azure_ca_path()).unwrap();
    let key = std::fs::read(dir.path().join("azure-ca-key.pem")).unwrap();
    let old_trust = arm::client_config(&sb.azure_ca_path());
    drop(sb);
    let sb = start(dir.path()).await;
    assert_eq!(std::fs::read(sb.azure_ca_path()).unwrap(), ca);
    assert_eq!(
        std::fs::read(dir.path().join("azure-ca-key.pem")).unwrap(),
        key
    );
    let reply = Arm::with_config(&sb.azure_url(), old_trust)
        .call("GET", &format!("/subscriptions/{SUB}"), "2022-12-01", None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn every_request_needs_a_bearer_token_and_a_supported_api_version() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let mut anonymous = Arm::new(&sb);
    anonymous.token = None;
    let reply = anonymous.call("GET", &identity_path("x"), MSI, None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.code(), "AuthenticationFailed");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer ")
    );
    anonymous.token = Some(String::new());
    assert_eq!(
        anonymous
            .call("GET", &identity_path("x"), MSI, None)
            .await
            .status,
        401
    );

    let arm = Arm::new(&sb);
    let reply = arm.send("GET", &identity_path("x"), None).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "MissingApiVersionParameter")
    );
    assert_eq!(
        reply.json()["error"]["message"],
        "The api-version query parameter (?api-version=) is required for all requests."
    );

    let reply = arm
        .call("GET", &identity_path("x"), "2019-01-01", None)
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "NoRegisteredProviderFound")
    );
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("No registered resource provider found for location 'westeurope' and API version '2019-01-01' for type 'userAssignedIdentities'. The supported api-versions are '2015-08-31-preview, 2018-11-30,"), "{message}");
    // Federated credentials arrived in 2022-01-31-preview.
    let fics = format!("{}/federatedIdentityCredentials", identity_path("x"));
    assert_eq!(
        arm.call("GET", &fics, "2018-11-30", None).await.code(),
        "NoRegisteredProviderFound"
    );
    let ra = format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments");
    let reply = arm.call("GET", &ra, "2015-07-01", None).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (404, "InvalidResourceType")
    );
    let reply = arm
        .call("GET", &format!("/subscriptions/{SUB}"), "2099-01-01", None)
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "InvalidApiVersionParameter")
    );

    for version in ["2023-01-31", "2024-11-30", "2026-05-31"] {
        assert_eq!(
            arm.call("GET", &identity_path("x"), version, None)
                .await
                .code(),
            "ResourceNotFound",
            "{version}"
        );
    }
    assert_eq!(arm.call("GET", &ra, "2022-04-01", None).await.status, 200);
}

#[tokio::test]
async fn identities_are_created_read_updated_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    let body = json!({ "location": "West Europe", "tags": { "owner": "payments" } });
    let created = arm
        .call("PUT", &identity_path("orders"), MSI, Some(&body))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let identity = created.json();
    assert_eq!(
        identity["id"],
        format!(
            "/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders"
        )
    );
    assert_eq!(identity["name"], "orders");
    assert_eq!(
        identity["type"],
        "Microsoft.ManagedIdentity/userAssignedIdentities"
    );
    assert_eq!(identity["location"], "westeurope");
    assert_eq!(identity["tags"], json!({ "owner": "payments" }));
    let props = &identity["properties"];
    assert_eq!(props["tenantId"], TENANT);
    assert_eq!(props["isolationScope"], "None");
    let (principal, client) = (props["principalId"].clone(), props["clientId"].clone());
    assert!(uuid::Uuid::parse_str(principal.as_str().unwrap()).is_ok());
    assert_ne!(principal, client);

    // The same PUT again updates (200); the GUIDs are minted once.
    let again = arm
        .call(
            "PUT",
            &identity_path("orders"),
            MSI,
            Some(&json!({ "location": "westeurope" })),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["properties"]["clientId"], client);
    assert_eq!(again.json()["tags"], json!({}));

    // Segment names and resource names are case-insensitive.
    let path = format!(
        "/SUBSCRIPTIONS/{SUB}/resourcegroups/RG-DEV/providers/microsoft.managedidentity/userassignedidentities/ORDERS"
    );
    let got = arm.call("GET", &path, "2023-01-31", None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["name"], "orders");
    assert_eq!(got.json()["properties"]["principalId"], principal);
    assert!(got.json()["properties"].get("isolationScope").is_none());

    let patched = arm
        .call(
            "PATCH",
            &identity_path("orders"),
            MSI,
            Some(&json!({ "tags": { "team": "a" } })),
        )
        .await;
    assert_eq!(
        (patched.status, patched.json()["tags"].clone()),
        (200, json!({ "team": "a" }))
    );
    let moved = arm
        .call(
            "PUT",
            &identity_path("orders"),
            MSI,
            Some(&json!({ "location": "eastus" })),
        )
        .await;
    assert_eq!(
        (moved.status, moved.code().as_str()),
        (400, "InvalidResourceLocation")
    );

    create_identity(&arm, "billing").await;
    let list = arm.call("GET", &format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"), MSI, None).await.json();
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing", "orders"]);
    assert!(list.get("nextLink").is_none());
    let by_sub = arm
        .call(
            "GET",
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
            ),
            MSI,
            None,
        )
        .await;
    assert_eq!(by_sub.json()["value"].as_array().unwrap().len(), 2);

    let missing_location = arm
        .call("PUT", &identity_path("ident-1"), MSI, Some(&json!({})))
        .await;
    assert_eq!(
        (missing_location.status, missing_location.code().as_str()),
        (400, "LocationRequired")
    );
    let bad_name = arm
        .call(
            "PUT",
            &identity_path("x.y"),
            MSI,
            Some(&json!({ "location": "eastus" })),
        )
        .await;
    assert_eq!(bad_name.code(), "InvalidResourceName");
    let elsewhere = identity_path("ident-x").replace(RG, "rg-missing");
    let reply = arm
        .call(
            "PUT",
            &elsewhere,
            MSI,
            Some(&json!({ "location": "eastus" })),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (404, "ResourceGroupNotFound")
    );
    assert_eq!(
        reply.json()["error"]["message"],
        "Resource group 'rg-missing' could not be found."
    );
    let other_sub = identity_path("x").replace(SUB, "00000000-0000-0000-0000-000000000009");
    assert_eq!(
        arm.call("GET", &other_sub, MSI, None).await.code(),
        "SubscriptionNotFound"
    );

    let deleted = arm
        .call("DELETE", &identity_path("orders"), MSI, None)
        .await;
    assert_eq!((deleted.status, deleted.body.as_str()), (200, ""));
    assert_eq!(
        arm.call("DELETE", &identity_path("orders"), MSI, None)
            .await
            .status,
        204
    );
    let gone = arm.call("GET", &identity_path("orders"), MSI, None).await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (404, "ResourceNotFound")
    );
    assert_eq!(sb.calls()["azure:userAssignedIdentities.createOrUpdate"], 7);
    assert_eq!(sb.calls()["azure:userAssignedIdentities.delete"], 2);
}

#[tokio::test]
async fn federated_credentials_follow_the_service_rules() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    create_identity(&arm, "orders").await;
    let fics = format!("{}/federatedIdentityCredentials", identity_path("orders"));
    let put = |name: &str, subject: &str| {
        let (arm, path, body) = (
            arm.clone(),
            format!("{fics}/{name}"),
            fic_body(ISSUER, subject),
        );
        async move { arm.call("PUT", &path, MSI, Some(&body)).await }
    };

    let created = put("aks-dev-prod-orders", "system:serviceaccount:prod:orders").await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.json(),
        json!({
            "id": format!("/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders/federatedIdentityCredentials/aks-dev-prod-orders"),
            "name": "aks-dev-prod-orders",
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
            "properties": { "issuer": ISSUER, "subject": "system:serviceaccount:prod:orders", "audiences": ["api://AzureADTokenExchange"] },
        })
    );
    assert_eq!(
        put("aks-dev-prod-orders", "system:serviceaccount:prod:orders2")
            .await
            .status,
        200
    );
    let got = arm
        .call(
            "GET",
            &format!("{fics}/AKS-DEV-PROD-ORDERS"),
            "2023-01-31",
            None,
        )
        .await;
    assert_eq!(
        got.json()["properties"]["subject"],
        "system:serviceaccount:prod:orders2"
    );

    let duplicate = put("other", "system:serviceaccount:prod:orders2").await;
    assert_eq!(duplicate.status, 400);
    assert_eq!(
        duplicate.json()["error"]["message"],
        "Issuer and subject combination already exists for this Managed Identity."
    );
    let mut two = fic_body(ISSUER, "system:serviceaccount:a:b");
    two["properties"]["audiences"] = json!(["a", "b"]);
    let reply = arm
        .call("PUT", &format!("{fics}/two"), MSI, Some(&two))
        .await;
    assert_eq!(
        reply.json()["error"]["message"],
        "Federated identity credentials must have exactly one audience."
    );
    let reply = put("_bad", "system:serviceaccount:a:b").await;
    assert_eq!(
        reply.json()["error"]["message"],
        "Federated Identity Credential name '_bad' is invalid."
    );
    let reply = arm
        .call(
            "PUT",
            &format!("{fics}/nosubject"),
            MSI,
            Some(&json!({ "properties": { "issuer": ISSUER, "audiences": ["x"] } })),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()["error"]["target"].clone()),
        (400, json!("properties.subject"))
    );

    // At most 20 per identity.
    for i in 1..20 {
        assert_eq!(
            put(
                &format!("fic-{i:02}"),
                &format!("system:serviceaccount:ns:sa{i}")
            )
            .await
            .status,
            201
        );
    }
    let over = put("fic-20", "system:serviceaccount:ns:sa20").await;
    assert_eq!(over.status, 400, "{}", over.body);
    assert!(
        over.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 20")
    );
    assert_eq!(
        put("fic-01", "system:serviceaccount:ns:moved").await.status,
        200,
        "updates stay allowed at the cap"
    );

    // Pages of $top, linked by nextLink.
    let mut names = Vec::new();
    let mut page = arm
        .call("GET", &format!("{fics}?$top=8"), MSI, None)
        .await
        .json();
    loop {
        names.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_owned()),
        );
        match page["nextLink"].as_str() {
            Some(link) => page = arm.next(link).await.json(),
            None => break,
        }
    }
    assert_eq!(names.len(), 20);
    assert_eq!(
        names.first().map(String::as_str),
        Some("aks-dev-prod-orders")
    );
    assert_eq!(sb.calls()["azure:federatedIdentityCredentials.list"], 3);

    assert_eq!(
        arm.call("DELETE", &format!("{fics}/fic-01"), MSI, None)
            .await
            .status,
        200
    );
    assert_eq!(
        arm.call("DELETE", &format!("{fics}/fic-01"), MSI, None)
            .await
            .status,
        204
    );
    assert_eq!(
        arm.call("GET", &format!("{fics}/fic-01"), MSI, None)
            .await
            .status,
        404
    );

    let orphan = format!(
        "{}/federatedIdentityCredentials/fic-1",
        identity_path("nobody")
    );
    let reply = arm
        .call("PUT", &orphan, MSI, Some(&fic_body(ISSUER, "s")))
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (404, "ParentResourceNotFound")
    );
    assert_eq!(arm.call("DELETE", &orphan, MSI, None).await.status, 404);
    assert_eq!(
        arm.call("GET", &orphan.replace("/fic-1", ""), MSI, None)
            .await
            .status,
        404
    );
    let stats = azure::fic_stats(sb.shared());
    assert_eq!((stats.writes, stats.rejected_concurrent), (24, 0));
}

#[tokio::test]
async fn overlapping_fic_writes_on_one_identity_conflict_while_other_identities_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    sb.shared()
        .write(|state| azure::set_fic_write_ms(state, 300));
    let arm = Arm::new(&sb);
    for name in ["id-a1", "id-a2", "id-a3", "id-a4", "id-a5"] {
        create_identity(&arm, name).await;
    }
    let fic = |identity: &str, name: &str| {
        format!(
            "{}/federatedIdentityCredentials/{name}",
            identity_path(identity)
        )
    };

    // Five writes at once on one identity: one wins, four are refused.
    let same = join_all((0..5).map(|i| {
        let (arm, path) = (arm.clone(), fic("id-a1", &format!("fic{i}")));
        async move {
            arm.call(
                "PUT",
                &path,
                MSI,
                Some(&fic_body(ISSUER, &format!("sub{i}"))),
            )
            .await
        }
    }))
    .await;
    let (ok, refused): (Vec<_>, Vec<_>) = same.iter().partition(|r| r.status == 201);
    assert_eq!(
        (ok.len(), refused.len()),
        (1, 4),
        "{:?}",
        same.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in &refused {
        assert_eq!(
            (r.status, r.code().as_str()),
            (
                409,
                "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
            )
        );
        assert_eq!(
            r.json()["error"]["message"],
            format!(
                "Too many Federated Identity Credentials are written concurrently for the managed identity '/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.managedidentity/userassignedidentities/id-a1'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported."
            )
        );
    }
    // A delete overlapping a write is refused too.
    let (path, body) = (fic("id-a2", "fic-w"), fic_body(ISSUER, "w"));
    let (write, delete) = tokio::join!(arm.call("PUT", &path, MSI, Some(&body)), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        arm.call("DELETE", &path, MSI, None).await
    });
    assert_eq!((write.status, delete.status), (201, 409));
    assert_eq!(azure::fic_stats(sb.shared()).rejected_concurrent, 5);

    // One write per identity, all at once: no conflict, and they overlapped in time.
    let spread = join_all(
        ["id-a1", "id-a2", "id-a3", "id-a4", "id-a5"].map(|identity| {
            let (arm, path) = (arm.clone(), fic(identity, "spread"));
            async move {
                arm.call("PUT", &path, MSI, Some(&fic_body(ISSUER, "spread")))
                    .await
            }
        }),
    )
    .await;
    assert!(
        spread.iter().all(|r| r.status == 201),
        "{:?}",
        spread.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let stats = azure::fic_stats(sb.shared());
    assert_eq!(stats.rejected_concurrent, 5);
    assert!(stats.max_parallel_identities >= 4, "{stats:?}");

    // Writes one after another on one identity never conflict.
    for i in 0..3 {
        let reply = arm
            .call(
                "PUT",
                &fic("id-a3", &format!("seq{i}")),
                MSI,
                Some(&fic_body(ISSUER, &format!("seq{i}"))),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    assert_eq!(azure::fic_stats(sb.shared()).rejected_concurrent, 5);
}
