//! Microsoft.Resources: subscriptions (GET) and resource groups (GET, PUT), and the lookups
//! every other operation makes through them (`SubscriptionNotFound`,
//! `ResourceGroupNotFound`).

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{Value, json};

use super::arm::{self, ArmError, ArmResult, Req, reply};
use super::model::{ResourceGroup, Subscription};
use crate::State;

/// The subscription `sub`, or `SubscriptionNotFound`.
pub(crate) fn subscription<'a>(state: &'a State, sub: &str) -> Result<&'a Subscription, ArmError> {
    state
        .azure
        .subscriptions
        .get(&sub.to_ascii_lowercase())
        .ok_or_else(|| ArmError::subscription_not_found(sub))
}

/// The subscription `sub` for writing, or `SubscriptionNotFound`.
pub(crate) fn subscription_mut<'a>(
    state: &'a mut State,
    sub: &str,
) -> Result<&'a mut Subscription, ArmError> {
    state
        .azure
        .subscriptions
        .get_mut(&sub.to_ascii_lowercase())
        .ok_or_else(|| ArmError::subscription_not_found(sub))
}

/// The resource group `rg` of `sub`, or the 404 ARM answers.
pub(crate) fn group<'a>(
    state: &'a State,
    sub: &str,
    rg: &str,
) -> Result<&'a ResourceGroup, ArmError> {
    subscription(state, sub)?
        .resource_groups
        .get(&rg.to_ascii_lowercase())
        .ok_or_else(|| ArmError::resource_group_not_found(rg))
}

/// The resource group `rg` of `sub` for writing, or the 404 ARM answers.
pub(crate) fn group_mut<'a>(
    state: &'a mut State,
    sub: &str,
    rg: &str,
) -> Result<&'a mut ResourceGroup, ArmError> {
    subscription_mut(state, sub)?
        .resource_groups
        .get_mut(&rg.to_ascii_lowercase())
        .ok_or_else(|| ArmError::resource_group_not_found(rg))
}

/// The tenant a subscription declared without one belongs to: derived from its id, so the
/// same subscription always lands in the same tenant.
pub(crate) fn default_tenant(sub: &str) -> String {
    arm::stable_guid(&format!("tenant/{}", sub.to_ascii_lowercase()))
}

/// Creates subscription `sub` if missing (with `tenant`, else [`default_tenant`]).
pub(crate) fn ensure_subscription<'a>(
    state: &'a mut State,
    sub: &str,
    tenant: Option<&str>,
) -> &'a mut Subscription {
    state
        .azure
        .subscriptions
        .entry(sub.to_ascii_lowercase())
        .or_insert_with(|| Subscription {
            id: sub.to_owned(),
            tenant_id: tenant.map_or_else(|| default_tenant(sub), str::to_owned),
            display_name: format!("wid sandbox {sub}"),
            resource_groups: BTreeMap::new(),
            role_assignments: BTreeMap::new(),
        })
}

/// Creates resource group `rg` in `sub` if missing (the subscription too).
pub(crate) fn ensure_group<'a>(
    state: &'a mut State,
    sub: &str,
    rg: &str,
    location: &str,
) -> &'a mut ResourceGroup {
    ensure_subscription(state, sub, None)
        .resource_groups
        .entry(rg.to_ascii_lowercase())
        .or_insert_with(|| ResourceGroup {
            name: rg.to_owned(),
            location: arm::normalize_location(location),
            tags: BTreeMap::new(),
            identities: BTreeMap::new(),
            managed_clusters: BTreeMap::new(),
        })
}

fn render_subscription(s: &Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.id,
        "tenantId": s.tenant_id,
        "displayName": s.display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

fn render_group(sub: &str, g: &ResourceGroup) -> Value {
    let mut body = json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{}", g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
    });
    if !g.tags.is_empty() {
        body["tags"] = json!(g.tags);
    }
    body["properties"] = json!({ "provisioningState": "Succeeded" });
    body
}

/// `GET /subscriptions/{sub}`.
pub(crate) fn get_subscription(shared: &crate::Shared, sub: &str) -> ArmResult {
    shared.read(|state| {
        Ok(reply(
            StatusCode::OK,
            render_subscription(subscription(state, sub)?),
        ))
    })
}

/// `GET /subscriptions/{sub}/resourcegroups/{rg}`.
pub(crate) fn get_resource_group(shared: &crate::Shared, sub: &str, rg: &str) -> ArmResult {
    shared.read(|state| {
        let s = subscription(state, sub)?;
        Ok(reply(
            StatusCode::OK,
            render_group(&s.id, group(state, sub, rg)?),
        ))
    })
}

/// `PUT /subscriptions/{sub}/resourcegroups/{rg}`: 201 when created, 200 when updated; the
/// location cannot change.
pub(crate) fn put_resource_group(
    shared: &crate::Shared,
    req: &Req,
    sub: &str,
    rg: &str,
) -> ArmResult {
    let body = req.json()?;
    let location = match body["location"].as_str() {
        Some(l) if !l.trim().is_empty() => arm::normalize_location(l),
        _ => {
            return Err(ArmError::bad_request(
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        }
    };
    let valid = (1..=90).contains(&rg.len())
        && !rg.ends_with('.')
        && rg
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    if !valid {
        return Err(ArmError::bad_request(
            "InvalidResourceGroupName",
            format!(
                "The resource group name '{rg}' is invalid. The name can include alphanumeric, underscore, parentheses, hyphen, period (except at end), and Unicode characters that match the allowed characters."
            ),
        ));
    }
    let tags = arm::tags(&body)?;
    shared.write(|state| {
        let s = subscription_mut(state, sub)?;
        let sub_id = s.id.clone();
        let key = rg.to_ascii_lowercase();
        let status = match s.resource_groups.get_mut(&key) {
            Some(existing) if existing.location != location => {
                return Err(ArmError::new(
                    StatusCode::CONFLICT,
                    "InvalidResourceGroupLocation",
                    format!(
                        "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                        existing.location
                    ),
                ));
            }
            Some(existing) => {
                if let Some(tags) = tags {
                    existing.tags = tags;
                }
                StatusCode::OK
            }
            None => {
                s.resource_groups.insert(
                    key.clone(),
                    ResourceGroup {
                        name: rg.to_owned(),
                        location,
                        tags: tags.unwrap_or_default(),
                        identities: BTreeMap::new(),
                        managed_clusters: BTreeMap::new(),
                    },
                );
                StatusCode::CREATED
            }
        };
        Ok(reply(status, render_group(&sub_id, &s.resource_groups[&key])))
    })
}
