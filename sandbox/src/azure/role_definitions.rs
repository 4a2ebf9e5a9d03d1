//! Microsoft.Authorization/roleDefinitions: Azure's built-in roles with their real GUIDs,
//! names and descriptions (from learn.microsoft.com's built-in roles reference), listed at
//! any scope (`$filter=roleName eq '…'` or `type eq 'BuiltInRole'`) and read by id.
//!
//! Ids are `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`
//! for scopes in a subscription, `/providers/…` at the tenant root.

use http::StatusCode;
use serde_json::{Value, json};

use super::arm::{ArmError, ArmResult, Req, reply};
use super::resources::subscription;
use crate::Shared;

/// A built-in role.
pub(crate) struct BuiltIn {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    description: &'static str,
    actions: &'static [&'static str],
    not_actions: &'static [&'static str],
    data_actions: &'static [&'static str],
}

const fn role(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    actions: &'static [&'static str],
    data_actions: &'static [&'static str],
) -> BuiltIn {
    BuiltIn {
        id,
        name,
        description,
        actions,
        not_actions: &[],
        data_actions,
    }
}

/// The built-in roles the sandbox knows.
pub(crate) const BUILT_IN: &[BuiltIn] = &[
    role(
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        &["*"],
        &[],
    ),
    BuiltIn {
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
        ],
        data_actions: &[],
    },
    role(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        &["*/read"],
        &[],
    ),
    role(
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        &[],
    ),
    role(
        "f1a07417-d97a-45cb-824c-7a7467783830",
        "Managed Identity Operator",
        "Read and Assign User Assigned Identity",
        &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        &[],
    ),
    role(
        "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        "Managed Identity Contributor",
        "Create, Read, Update, and Delete User Assigned Identity",
        &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        &[],
    ),
    role(
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "Storage Blob Data Reader",
        "Allows for read access to Azure Storage blob containers and data",
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    ),
    role(
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Storage Blob Data Contributor",
        "Allows for read, write and delete access to Azure Storage blob containers and data",
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    ),
    role(
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "Storage Blob Data Owner",
        "Allows for full access to Azure Storage blob containers and data, including assigning POSIX access control.",
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/*",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
    ),
    role(
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "Storage Queue Data Contributor",
        "Allows for read, write, and delete access to Azure Storage queues and queue messages",
        &[
            "Microsoft.Storage/storageAccounts/queueServices/queues/delete",
            "Microsoft.Storage/storageAccounts/queueServices/queues/read",
            "Microsoft.Storage/storageAccounts/queueServices/queues/write",
        ],
        &[
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/read",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/write",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action",
        ],
    ),
    role(
        "19e7f393-937e-4f77-808e-94535e297925",
        "Storage Queue Data Reader",
        "Allows for read access to Azure Storage queues and queue messages",
        &["Microsoft.Storage/storageAccounts/queueServices/queues/read"],
        &["Microsoft.Storage/storageAccounts/queueServices/queues/messages/read"],
    ),
    role(
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        &[],
        &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    role(
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "Key Vault Secrets Officer",
        "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        &["Microsoft.KeyVault/vaults/secrets/*"],
    ),
    role(
        "21090545-7ca7-4776-b22c-e363652d74d2",
        "Key Vault Reader",
        "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        &[
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    role(
        "7f951dda-4ed3-4680-a7ca-43fe172d538d",
        "AcrPull",
        "acr pull",
        &["Microsoft.ContainerRegistry/registries/pull/read"],
        &[],
    ),
    role(
        "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
        "Azure Service Bus Data Receiver",
        "Allows for receive access to Azure Service Bus resources.",
        &[
            "Microsoft.ServiceBus/*/queues/read",
            "Microsoft.ServiceBus/*/topics/read",
            "Microsoft.ServiceBus/*/topics/subscriptions/read",
        ],
        &["Microsoft.ServiceBus/*/receive/action"],
    ),
    role(
        "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
        "Azure Service Bus Data Sender",
        "Allows for send access to Azure Service Bus resources.",
        &[
            "Microsoft.ServiceBus/*/queues/read",
            "Microsoft.ServiceBus/*/topics/read",
            "Microsoft.ServiceBus/*/topics/subscriptions/read",
        ],
        &["Microsoft.ServiceBus/*/send/action"],
    ),
    role(
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "Monitoring Metrics Publisher",
        "Enables publishing metrics against Azure resources",
        &[
            "Microsoft.Insights/Register/Action",
            "Microsoft.Support/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        &[
            "Microsoft.Insights/Metrics/Write",
            "Microsoft.Insights/Telemetry/Write",
        ],
    ),
    role(
        "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
        "Monitoring Reader",
        "Can read all monitoring data.",
        &[
            "*/read",
            "Microsoft.OperationalInsights/workspaces/search/action",
            "Microsoft.Support/*",
        ],
        &[],
    ),
];

/// The built-in role with this GUID.
pub(crate) fn by_guid(guid: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

/// The GUID of a role definition id in either form ARM accepts
/// (`/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}` or
/// `/providers/Microsoft.Authorization/roleDefinitions/{guid}`); `None` for anything else.
pub(crate) fn guid_of(role_definition_id: &str) -> Option<&str> {
    let parts: Vec<&str> = role_definition_id.trim_matches('/').split('/').collect();
    let tail = match parts.as_slice() {
        [s, _, rest @ ..] if s.eq_ignore_ascii_case("subscriptions") => rest,
        rest => rest,
    };
    match tail {
        [p, ns, t, guid]
            if p.eq_ignore_ascii_case("providers")
                && ns.eq_ignore_ascii_case("Microsoft.Authorization")
                && t.eq_ignore_ascii_case("roleDefinitions") =>
        {
            Some(guid)
        }
        _ => None,
    }
}

/// `/subscriptions/{sub}` for scopes in a subscription, `""` at the tenant root.
fn id_prefix(shared: &Shared, scope: &[String]) -> Result<String, ArmError> {
    match scope {
        [] => Ok(String::new()),
        [s, sub, ..] if s.eq_ignore_ascii_case("subscriptions") => shared
            .read(|state| subscription(state, sub).map(|s| format!("/subscriptions/{}", s.id))),
        _ => Err(ArmError::bad_request(
            "InvalidScope",
            format!(
                "The scope '/{}' is not valid for role definitions.",
                scope.join("/")
            ),
        )),
    }
}

fn render(prefix: &str, r: &BuiltIn) -> Value {
    json!({
        "id": format!("{prefix}/providers/Microsoft.Authorization/roleDefinitions/{}", r.id),
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": r.id,
        "properties": {
            "roleName": r.name,
            "type": "BuiltInRole",
            "description": r.description,
            "assignableScopes": ["/"],
            "permissions": [{
                "actions": r.actions,
                "notActions": r.not_actions,
                "dataActions": r.data_actions,
                "notDataActions": [],
            }],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-04-25T15:46:12.5472331Z",
            "createdBy": null,
            "updatedBy": null,
        },
    })
}

/// What a `$filter` keeps.
enum Filter {
    All,
    RoleName(String),
    BuiltIn(bool),
}

fn parse_filter(filter: Option<&str>) -> Result<Filter, ArmError> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(Filter::All);
    };
    let quoted = |rest: &str| {
        let rest = rest.trim();
        rest.strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .map(|v| v.replace("''", "'"))
    };
    let lower = filter.to_ascii_lowercase();
    let value = if lower.starts_with("rolename eq ") {
        quoted(&filter["rolename eq ".len()..]).map(Filter::RoleName)
    } else if lower.starts_with("type eq ") {
        quoted(&filter["type eq ".len()..])
            .map(|t| Filter::BuiltIn(t.eq_ignore_ascii_case("BuiltInRole")))
    } else {
        None
    };
    value.ok_or_else(|| {
        ArmError::bad_request(
            "InvalidFilterInQueryString",
            format!("The filter '{filter}' is not supported. Supported filters are roleName eq '{{name}}' and type eq '{{type}}'."),
        )
    })
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions`.
pub(crate) fn list(shared: &Shared, req: &Req, scope: &[String]) -> ArmResult {
    let filter = parse_filter(req.param("$filter"))?;
    let prefix = id_prefix(shared, scope)?;
    let value: Vec<Value> = BUILT_IN
        .iter()
        .filter(|r| match &filter {
            Filter::All => true,
            Filter::RoleName(name) => r.name.eq_ignore_ascii_case(name),
            Filter::BuiltIn(builtin) => *builtin,
        })
        .map(|r| render(&prefix, r))
        .collect();
    Ok(reply(StatusCode::OK, json!({ "value": value })))
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
pub(crate) fn get(shared: &Shared, scope: &[String], guid: &str) -> ArmResult {
    let prefix = id_prefix(shared, scope)?;
    let role = by_guid(guid).ok_or_else(|| {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{guid}' does not exist."),
        )
    })?;
    Ok(reply(StatusCode::OK, render(&prefix, role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_are_unique_guids() {
        let mut ids: Vec<&str> = BUILT_IN.iter().map(|r| r.id).collect();
        assert!(ids.iter().all(|id| super::super::arm::is_guid(id)));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), BUILT_IN.len());
    }

    #[test]
    fn definition_ids_parse_in_both_forms() {
        let g = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
        assert_eq!(
            guid_of(&format!(
                "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{g}"
            )),
            Some(g)
        );
        assert_eq!(
            guid_of(&format!(
                "/providers/microsoft.authorization/roledefinitions/{g}"
            )),
            Some(g)
        );
        assert_eq!(guid_of(g), None);
        assert_eq!(guid_of("/subscriptions/s/resourceGroups/rg"), None);
    }

    #[test]
    fn filters_by_role_name() {
        assert!(
            matches!(parse_filter(Some("roleName eq 'Storage Blob Data Reader'")), Ok(Filter::RoleName(n)) if n == "Storage Blob Data Reader")
        );
        assert!(matches!(
            parse_filter(Some("type eq 'BuiltInRole'")),
            Ok(Filter::BuiltIn(true))
        ));
        assert!(matches!(parse_filter(None), Ok(Filter::All)));
        assert!(parse_filter(Some("roleName eq Reader")).is_err());
    }
}
