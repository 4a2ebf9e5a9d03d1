//! The ARM emulator over HTTPS, continued: role assignments (scopes, filters, conflicts,
//! the replication delay) and built-in role definitions.

mod arm;

use arm::{AUTHZ, Arm, RG, SUB, TENANT, create_identity, start};
use serde_json::{Value, json};
use wid_sandbox::azure;

const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const NAME_1: &str = "0b8c7f4e-5c2a-4d6e-9f10-000000000001";
const NAME_2: &str = "0b8c7f4e-5c2a-4d6e-9f10-000000000002";
const NAME_3: &str = "0b8c7f4e-5c2a-4d6e-9f10-000000000003";

fn rg_scope() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}

fn assignment(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}")
}

fn grant(role: &str, principal: &Value) -> Value {
    json!({ "properties": {
        "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": principal,
        "principalType": "ServicePrincipal",
    }})
}

fn names(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn role_assignments_are_created_read_listed_and_deleted_at_any_scope() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    let principal = create_identity(&arm, "orders").await["properties"]["principalId"].clone();
    let other = create_identity(&arm, "billing").await["properties"]["principalId"].clone();

    let created = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let ra = created.json();
    assert_eq!(ra["id"], assignment(&rg_scope(), NAME_1));
    assert_eq!(
        (ra["name"].as_str(), ra["type"].as_str()),
        (
            Some(NAME_1),
            Some("Microsoft.Authorization/roleAssignments")
        )
    );
    let p = &ra["properties"];
    assert_eq!(p["scope"], rg_scope());
    assert_eq!(
        p["roleDefinitionId"],
        format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}"
        )
    );
    assert_eq!(
        (&p["principalId"], p["principalType"].as_str()),
        (&principal, Some("ServicePrincipal"))
    );
    for field in ["createdOn", "updatedOn", "createdBy", "updatedBy"] {
        assert!(p[field].is_string(), "{field}: {p}");
    }
    assert!(p["condition"].is_null() && p["description"].is_null());

    // The same PUT again: 200. The same grant under another name: 409. The same name
    // with another principal: 400.
    assert_eq!(
        arm.call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal))
        )
        .await
        .status,
        200
    );
    let exists = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_2),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(
        (exists.status, exists.code().as_str()),
        (409, "RoleAssignmentExists")
    );
    assert_eq!(
        exists.json()["error"]["message"],
        "The role assignment already exists."
    );
    let update = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant(BLOB_READER, &other)),
        )
        .await;
    assert_eq!(
        (update.status, update.code().as_str()),
        (400, "RoleAssignmentUpdateNotPermitted")
    );
    assert_eq!(
        update.json()["error"]["message"],
        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."
    );

    // Other scopes: the subscription, and a resource in the resource group.
    let sub_scope = format!("/subscriptions/{SUB}");
    assert_eq!(
        arm.call(
            "PUT",
            &assignment(&sub_scope, NAME_2),
            AUTHZ,
            Some(&grant(CONTRIBUTOR, &other))
        )
        .await
        .status,
        201
    );
    let account = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/acct",
        rg_scope()
    );
    let on_resource = arm
        .call(
            "PUT",
            &assignment(&account, NAME_3),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(on_resource.status, 201, "{}", on_resource.body);
    assert_eq!(on_resource.json()["properties"]["scope"], account);
    let missing_rg = account.replace(RG, "rg-missing");
    let reply = arm
        .call(
            "PUT",
            &assignment(&missing_rg, NAME_3),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (404, "ResourceGroupNotFound")
    );

    // Lists: at, above and below by default; at or above with atScope(); per principal.
    let list = |scope: String, filter: Option<String>| {
        let arm = arm.clone();
        async move {
            let path = match filter {
                Some(f) => format!(
                    "{scope}/providers/Microsoft.Authorization/roleAssignments?$filter={}",
                    f.replace(' ', "%20").replace('\'', "%27")
                ),
                None => format!("{scope}/providers/Microsoft.Authorization/roleAssignments"),
            };
            let reply = arm.call("GET", &path, AUTHZ, None).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            names(&reply.json())
        }
    };
    assert_eq!(list(rg_scope(), None).await, [NAME_1, NAME_2, NAME_3]);
    assert_eq!(
        list(rg_scope(), Some("atScope()".into())).await,
        [NAME_1, NAME_2]
    );
    assert_eq!(
        list(account.clone(), Some("atScope()".into())).await,
        [NAME_1, NAME_2, NAME_3]
    );
    assert_eq!(
        list(
            sub_scope.clone(),
            Some(format!("principalId eq '{}'", principal.as_str().unwrap()))
        )
        .await,
        [NAME_1, NAME_3]
    );
    assert_eq!(
        list(
            rg_scope(),
            Some(format!(
                "atScope() and principalId eq '{}'",
                other.as_str().unwrap()
            ))
        )
        .await,
        [NAME_2]
    );
    let lower = rg_scope()
        .replace("resourceGroups", "resourcegroups")
        .replace(RG, "RG-DEV");
    assert_eq!(
        list(lower, Some("atScope()".into())).await,
        [NAME_1, NAME_2]
    );

    let got = arm
        .call("GET", &assignment(&rg_scope(), NAME_1), AUTHZ, None)
        .await;
    assert_eq!(got.json()["properties"]["principalId"], principal);
    let elsewhere = arm
        .call("GET", &assignment(&sub_scope, NAME_1), AUTHZ, None)
        .await;
    assert_eq!(
        (elsewhere.status, elsewhere.code().as_str()),
        (404, "RoleAssignmentNotFound")
    );

    // The name at another scope is not there.
    let elsewhere = arm
        .call("DELETE", &assignment(&sub_scope, NAME_1), AUTHZ, None)
        .await;
    assert_eq!(elsewhere.status, 204);
    let deleted = arm
        .call("DELETE", &assignment(&rg_scope(), NAME_1), AUTHZ, None)
        .await;
    assert_eq!(
        (deleted.status, deleted.json()["name"].as_str()),
        (200, Some(NAME_1))
    );
    assert_eq!(
        arm.call("DELETE", &assignment(&rg_scope(), NAME_1), AUTHZ, None)
            .await
            .status,
        204
    );
    assert_eq!(list(rg_scope(), None).await, [NAME_2, NAME_3]);

    let not_guid = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), "orders-reader"),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(not_guid.code(), "InvalidRoleAssignmentId");
    let unknown_role = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant("00000000-1111-2222-3333-444444444444", &principal)),
        )
        .await;
    assert_eq!(
        (unknown_role.status, unknown_role.code().as_str()),
        (400, "RoleDefinitionDoesNotExist")
    );
    let calls = sb.calls();
    assert_eq!(
        (
            calls["azure:roleAssignments.create"],
            calls["azure:roleAssignments.list"]
        ),
        (9, 7)
    );
}

#[tokio::test]
async fn unknown_and_newly_created_principals_are_not_found_until_replicated() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    let stranger = json!("11111111-2222-3333-4444-555555555555");
    let reply = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant(BLOB_READER, &stranger)),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "PrincipalNotFound")
    );
    assert_eq!(
        reply.json()["error"]["message"],
        format!(
            "Principal 11111111222233334444555555555555 does not exist in the directory {TENANT}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype"
        )
    );

    sb.shared()
        .write(|state| azure::set_principal_replication_ms(state, 400));
    let principal = create_identity(&arm, "fresh").await["properties"]["principalId"].clone();
    let early = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(early.code(), "PrincipalNotFound");
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let later = arm
        .call(
            "PUT",
            &assignment(&rg_scope(), NAME_1),
            AUTHZ,
            Some(&grant(BLOB_READER, &principal)),
        )
        .await;
    assert_eq!(later.status, 201, "{}", later.body);
}

#[tokio::test]
async fn built_in_role_definitions_are_found_by_name_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let arm = Arm::new(&sb);
    let expected = [
        ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
        ("Contributor", CONTRIBUTOR),
        ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        ("Storage Blob Data Reader", BLOB_READER),
        (
            "Storage Blob Data Contributor",
            "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        ),
        (
            "Storage Queue Data Contributor",
            "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        ),
        (
            "Key Vault Secrets User",
            "4633458b-17de-408a-b874-0445c86b69e6",
        ),
        ("Key Vault Reader", "21090545-7ca7-4776-b22c-e363652d74d2"),
        ("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
        (
            "Azure Service Bus Data Receiver",
            "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
        ),
        (
            "Monitoring Metrics Publisher",
            "3913510d-42f4-4e42-8a64-420c390055eb",
        ),
    ];
    for (name, guid) in expected {
        let filter = format!("roleName eq '{name}'")
            .replace(' ', "%20")
            .replace('\'', "%27");
        let reply = arm
            .call(
                "GET",
                &format!(
                    "{}/providers/Microsoft.Authorization/roleDefinitions?$filter={filter}",
                    rg_scope()
                ),
                AUTHZ,
                None,
            )
            .await;
        let list = reply.json();
        assert_eq!(
            list["value"].as_array().map(Vec::len),
            Some(1),
            "{name}: {}",
            reply.body
        );
        let role = &list["value"][0];
        assert_eq!(
            role["id"],
            format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
            )
        );
        assert_eq!(
            (
                role["name"].as_str(),
                role["properties"]["roleName"].as_str()
            ),
            (Some(guid), Some(name))
        );
        assert_eq!(role["properties"]["type"], "BuiltInRole");
    }
    let got = arm.call("GET", &format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}"), AUTHZ, None).await;
    assert_eq!(
        got.json()["properties"]["permissions"][0]["dataActions"][0],
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    );
    let missing = arm
        .call(
            "GET",
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{NAME_1}"
            ),
            AUTHZ,
            None,
        )
        .await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (404, "RoleDefinitionDoesNotExist")
    );
    let none = arm.call("GET", &format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20%27Nope%27"), AUTHZ, None).await;
    assert_eq!(none.json(), json!({ "value": [] }));
    assert_eq!(sb.calls()["azure:roleDefinitions.list"], 12);
}
