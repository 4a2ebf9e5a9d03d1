//! Microsoft.ManagedIdentity/userAssignedIdentities: create or update (PUT, 201 or 200),
//! get, update (PATCH: tags), delete (200, or 204 when absent) and list by resource group
//! or subscription.
//!
//! The tenant, principal and client ids are minted once, when the identity is created. Ids
//! are written with `resourcegroups` in lower case, as the service writes them.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{Value, json};

use super::arm::{self, ArmError, ArmResult, Req, reply};
use super::model::Identity;
use super::resources::{group, group_mut, subscription};
use crate::Shared;

/// The resource type.
pub(crate) const TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
/// Identities per page of a list.
const PAGE: usize = 100;

/// An identity's ARM id.
pub(crate) fn id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/{TYPE}/{name}")
}

/// An identity as ARM returns it at `api_version`.
pub(crate) fn render(sub: &str, rg: &str, identity: &Identity, api_version: &str) -> Value {
    let mut properties = json!({
        "tenantId": identity.tenant_id,
        "principalId": identity.principal_id,
        "clientId": identity.client_id,
    });
    // `isolationScope` appears in 2024-11-30, `assignmentRestrictions` in 2026-05-31
    // (azure-rest-api-specs examples); date-named versions compare as text.
    if api_version >= "2024-11-30" {
        properties["isolationScope"] = json!("None");
    }
    if api_version >= "2026-05-31" {
        properties["assignmentRestrictions"] = json!({ "providers": [] });
    }
    json!({
        "id": id(sub, rg, &identity.name),
        "name": identity.name,
        "type": TYPE,
        "location": identity.location,
        "tags": identity.tags,
        "properties": properties,
    })
}

/// Azure's rule for identity names: 3 to 128 letters, digits, hyphens and underscores,
/// starting with a letter or digit.
fn valid_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `GET …/userAssignedIdentities/{name}`.
pub(crate) fn get(shared: &Shared, req: &Req, sub: &str, rg: &str, name: &str) -> ArmResult {
    shared.read(|state| {
        let g = group(state, sub, rg)?;
        let identity = g
            .identities
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| ArmError::resource_not_found(TYPE, name, rg))?;
        Ok(reply(
            StatusCode::OK,
            render(sub, &g.name, identity, &req.api_version),
        ))
    })
}

/// `PUT …/userAssignedIdentities/{name}`: 201 when created, 200 when updated. `location`
/// is required and cannot change; `tags` replace the identity's tags.
pub(crate) fn put(shared: &Shared, req: &Req, sub: &str, rg: &str, name: &str) -> ArmResult {
    let body = req.json()?;
    if !valid_name(name) {
        return Err(ArmError::bad_request(
            "InvalidResourceName",
            format!(
                "Resource name '{name}' is invalid. The name can be between 3 and 128 characters long and can contain only letters, numbers, hyphens and underscores. It must start with a letter or a number."
            ),
        )
        .with_target("resourceName"));
    }
    let location = match body["location"].as_str() {
        Some(l) if !l.trim().is_empty() => arm::normalize_location(l),
        _ => {
            return Err(ArmError::bad_request(
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        }
    };
    let tags = arm::tags(&body)?.unwrap_or_default();
    shared.write(|state| {
        let tenant = subscription(state, sub)?.tenant_id.clone();
        let g = group_mut(state, sub, rg)?;
        let rg_name = g.name.clone();
        let key = name.to_ascii_lowercase();
        let status = match g.identities.get_mut(&key) {
            Some(existing) => {
                if existing.location != location {
                    return Err(ArmError::bad_request(
                        "InvalidResourceLocation",
                        format!(
                            "The resource '{name}' already exists in location '{}' in resource group '{rg_name}'. A resource with the same name cannot be created in location '{location}'. Please select a new resource name.",
                            existing.location
                        ),
                    ));
                }
                existing.tags = tags;
                StatusCode::OK
            }
            None => {
                g.identities.insert(
                    key.clone(),
                    Identity {
                        name: name.to_owned(),
                        location,
                        tags,
                        tenant_id: tenant,
                        principal_id: arm::new_guid(),
                        client_id: arm::new_guid(),
                        created_ms: arm::now_ms(),
                        federated_credentials: BTreeMap::new(),
                    },
                );
                StatusCode::CREATED
            }
        };
        let identity = &g.identities[&key];
        Ok(reply(status, render(sub, &rg_name, identity, &req.api_version)))
    })
}

/// `PATCH …/userAssignedIdentities/{name}`: replaces the tags when the body has them.
pub(crate) fn patch(shared: &Shared, req: &Req, sub: &str, rg: &str, name: &str) -> ArmResult {
    let body = req.json()?;
    let tags = arm::tags(&body)?;
    let location = body["location"].as_str().map(arm::normalize_location);
    shared.write(|state| {
        let g = group_mut(state, sub, rg)?;
        let rg_name = g.name.clone();
        let identity = g
            .identities
            .get_mut(&name.to_ascii_lowercase())
            .ok_or_else(|| ArmError::resource_not_found(TYPE, name, rg))?;
        if let Some(location) = location.filter(|l| *l != identity.location) {
            return Err(ArmError::bad_request(
                "InvalidResourceLocation",
                format!(
                    "The resource '{name}' already exists in location '{}' in resource group '{rg_name}'. A resource with the same name cannot be created in location '{location}'. Please select a new resource name.",
                    identity.location
                ),
            ));
        }
        if let Some(tags) = tags {
            identity.tags = tags;
        }
        Ok(reply(
            StatusCode::OK,
            render(sub, &rg_name, identity, &req.api_version),
        ))
    })
}

/// `DELETE …/userAssignedIdentities/{name}`: 200, or 204 when there is no such identity.
/// Its federated credentials go with it; role assignments naming it stay, as in Azure.
pub(crate) fn delete(shared: &Shared, sub: &str, rg: &str, name: &str) -> ArmResult {
    shared.write(|state| {
        let g = group_mut(state, sub, rg)?;
        let status = match g.identities.remove(&name.to_ascii_lowercase()) {
            Some(_) => StatusCode::OK,
            None => StatusCode::NO_CONTENT,
        };
        Ok(axum::response::IntoResponse::into_response(status))
    })
}

/// `GET …/userAssignedIdentities` in a resource group (`rg`) or the whole subscription.
pub(crate) fn list(shared: &Shared, req: &Req, sub: &str, rg: Option<&str>) -> ArmResult {
    shared.read(|state| {
        let s = subscription(state, sub)?;
        let groups: Vec<_> = match rg {
            Some(rg) => vec![group(state, sub, rg)?],
            None => s.resource_groups.values().collect(),
        };
        let items = groups
            .iter()
            .flat_map(|g| {
                g.identities.iter().map(|(key, identity)| {
                    (
                        format!("{}/{key}", g.name.to_ascii_lowercase()),
                        render(sub, &g.name, identity, &req.api_version),
                    )
                })
            })
            .collect();
        Ok(reply(StatusCode::OK, arm::page(req, items, PAGE)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azure_rules() {
        assert!(valid_name("orders-prod_1"));
        assert!(valid_name(&"a".repeat(128)));
        assert!(!valid_name("ab"));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(!valid_name("-orders"));
        assert!(!valid_name("orders.prod"));
    }

    #[test]
    fn newer_versions_add_properties() {
        let identity = Identity {
            name: "id".into(),
            location: "eastus".into(),
            tags: BTreeMap::new(),
            tenant_id: "t".into(),
            principal_id: "p".into(),
            client_id: "c".into(),
            created_ms: 0,
            federated_credentials: BTreeMap::new(),
        };
        let old = render("s", "rg", &identity, "2023-01-31");
        assert_eq!(
            old["properties"],
            json!({ "tenantId": "t", "principalId": "p", "clientId": "c" })
        );
        assert_eq!(
            old["id"],
            "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
        );
        assert_eq!(
            render("s", "rg", &identity, "2024-11-30")["properties"]["isolationScope"],
            "None"
        );
        let newest = render("s", "rg", &identity, "2026-05-31");
        assert_eq!(
            newest["properties"]["assignmentRestrictions"],
            json!({ "providers": [] })
        );
    }
}
