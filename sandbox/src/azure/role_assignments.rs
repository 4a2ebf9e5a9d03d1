//! Microsoft.Authorization/roleAssignments at any scope in a subscription (the
//! subscription, a resource group, or any resource id under an existing resource group):
//! create (PUT: 201, 200 for the same name again), get, delete (200 with the assignment,
//! 204 when absent) and list with `$filter=atScope()`, `principalId eq '…'` or both.
//!
//! The rules are the service's: the name is a GUID; the role definition must exist; the
//! principal must be a service principal the directory knows — one created less than
//! `settings.principalReplicationMs` ago is not known yet (`PrincipalNotFound`, as during
//! Entra replication); the same principal, role and scope under another name is
//! `RoleAssignmentExists` (409); the same name with another principal, role or scope is
//! `RoleAssignmentUpdateNotPermitted` (400).

use http::StatusCode;
use serde_json::{Value, json};

use super::arm::{self, ArmError, ArmResult, Req, reply};
use super::model::RoleAssignment;
use super::resources::{group, subscription, subscription_mut};
use super::role_definitions;
use crate::{Shared, State};

const TYPE: &str = "Microsoft.Authorization/roleAssignments";
const PRINCIPAL_TYPES: &[&str] = &[
    "User",
    "Group",
    "ServicePrincipal",
    "ForeignGroup",
    "Device",
];

fn invalid_scope(scope: &[String]) -> ArmError {
    ArmError::bad_request(
        "InvalidScope",
        format!(
            "The scope '/{}' is not valid: the sandbox serves role assignments at a subscription, a resource group or a resource in a resource group.",
            scope.join("/")
        ),
    )
}

/// Checks that a scope names an existing subscription (and resource group), and returns
/// the subscription's id.
fn check_scope(state: &State, scope: &[String]) -> Result<String, ArmError> {
    let (sub, rest) = match scope {
        [s, sub, rest @ ..] if s.eq_ignore_ascii_case("subscriptions") => (sub, rest),
        _ => return Err(invalid_scope(scope)),
    };
    let id = subscription(state, sub)?.id.clone();
    match rest {
        [] => Ok(id),
        [g, rg, more @ ..] if g.eq_ignore_ascii_case("resourceGroups") => {
            group(state, sub, rg)?;
            match more {
                [] => Ok(id),
                [p, _ns, _t, _n, ..] if p.eq_ignore_ascii_case("providers") => Ok(id),
                _ => Err(invalid_scope(scope)),
            }
        }
        _ => Err(invalid_scope(scope)),
    }
}

fn scope_text(scope: &[String]) -> String {
    format!("/{}", scope.join("/"))
}

fn render(ra: &RoleAssignment) -> Value {
    json!({
        "properties": {
            "roleDefinitionId": ra.role_definition_id,
            "principalId": ra.principal_id,
            "principalType": ra.principal_type,
            "scope": ra.scope,
            "condition": ra.condition,
            "conditionVersion": ra.condition_version,
            "createdOn": ra.created_on,
            "updatedOn": ra.updated_on,
            "createdBy": ra.created_by,
            "updatedBy": ra.updated_by,
            "delegatedManagedIdentityResourceId": ra.delegated_managed_identity_resource_id,
            "description": ra.description,
        },
        "id": format!("{}/providers/{TYPE}/{}", ra.scope, ra.name),
        "type": TYPE,
        "name": ra.name,
    })
}

fn not_found(name: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

/// Whether an identity with this principal id exists and has replicated: `Some(true)`
/// when known, `Some(false)` when created too recently, `None` when unknown.
fn principal_known(state: &State, principal: &str) -> Option<bool> {
    let replication = state.azure.settings.principal_replication_ms;
    let now = arm::now_ms();
    state
        .azure
        .subscriptions
        .values()
        .flat_map(|s| s.resource_groups.values())
        .flat_map(|g| g.identities.values())
        .find(|i| i.principal_id.eq_ignore_ascii_case(principal))
        .map(|i| now.saturating_sub(i.created_ms) >= replication)
}

fn optional(props: &Value, field: &str) -> Result<Option<String>, ArmError> {
    match &props[field] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ArmError::invalid_content(format!(
            "{field} must be a string"
        ))),
    }
}

fn required(props: &Value, field: &str) -> Result<String, ArmError> {
    optional(props, field)?
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ArmError::bad_request(
                "InvalidRoleAssignmentRequest",
                format!("The role assignment property '{field}' is required."),
            )
            .with_target(format!("properties.{field}"))
        })
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
pub(crate) fn put(shared: &Shared, req: &Req, scope: &[String], name: &str) -> ArmResult {
    if !arm::is_guid(name) {
        return Err(ArmError::bad_request(
            "InvalidRoleAssignmentId",
            format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        ));
    }
    let body = req.json()?;
    let props = &body["properties"];
    let role_definition_id = required(props, "roleDefinitionId")?;
    let principal_id = required(props, "principalId")?;
    let principal_type = optional(props, "principalType")?;
    let description = optional(props, "description")?;
    let condition = optional(props, "condition")?;
    let condition_version = optional(props, "conditionVersion")?
        .or_else(|| condition.as_ref().map(|_| "2.0".to_owned()));
    let delegated = optional(props, "delegatedManagedIdentityResourceId")?;
    let role_guid = role_definitions::guid_of(&role_definition_id)
        .filter(|g| role_definitions::by_guid(g).is_some())
        .ok_or_else(|| {
            let guid = role_definition_id.rsplit('/').next().unwrap_or_default();
            ArmError::bad_request(
                "RoleDefinitionDoesNotExist",
                format!("The specified role definition with ID '{guid}' does not exist."),
            )
        })?
        .to_ascii_lowercase();
    if let Some(t) = principal_type
        .as_deref()
        .filter(|t| !PRINCIPAL_TYPES.contains(t))
    {
        return Err(ArmError::invalid_content(format!(
            "'{t}' is not a valid principalType"
        )));
    }
    let scope_str = scope_text(scope);
    shared.write(|state| {
        let sub_id = check_scope(state, scope)?;
        let tenant = subscription(state, &sub_id)?.tenant_id.clone();
        match principal_known(state, &principal_id) {
            Some(true) => {}
            _ => {
                return Err(ArmError::bad_request(
                    "PrincipalNotFound",
                    format!(
                        "Principal {} does not exist in the directory {tenant}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                        principal_id.replace('-', "")
                    ),
                ));
            }
        }
        if let Some(t) = principal_type.as_deref().filter(|t| *t != "ServicePrincipal") {
            return Err(ArmError::bad_request(
                "UnmatchedPrincipalType",
                format!("The PrincipalId '{}' has type 'ServicePrincipal' , which is different from specified PrincipalType '{t}'.", principal_id.replace('-', "")),
            ));
        }
        let now = arm::now_rfc3339();
        let s = subscription_mut(state, &sub_id)?;
        let key = name.to_ascii_lowercase();
        let same_target = |ra: &RoleAssignment| {
            ra.scope.eq_ignore_ascii_case(&scope_str)
                && ra.principal_id.eq_ignore_ascii_case(&principal_id)
                && role_definitions::guid_of(&ra.role_definition_id)
                    .is_some_and(|g| g.eq_ignore_ascii_case(&role_guid))
        };
        if let Some(existing) = s.role_assignments.get_mut(&key) {
            if !same_target(existing) {
                return Err(ArmError::bad_request(
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                ));
            }
            let changed = existing.description != description
                || existing.condition != condition
                || existing.condition_version != condition_version;
            if changed {
                existing.description = description;
                existing.condition = condition;
                existing.condition_version = condition_version;
                existing.updated_on = now;
                existing.updated_by = req.caller.clone();
            }
            return Ok(reply(StatusCode::OK, render(existing)));
        }
        if s.role_assignments.values().any(same_target) {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "RoleAssignmentExists",
                "The role assignment already exists.",
            ));
        }
        let ra = RoleAssignment {
            name: name.to_owned(),
            scope: scope_str.clone(),
            role_definition_id,
            principal_id,
            principal_type: principal_type.unwrap_or_else(|| "ServicePrincipal".to_owned()),
            description,
            condition,
            condition_version,
            delegated_managed_identity_resource_id: delegated,
            created_on: now.clone(),
            updated_on: now,
            created_by: req.caller.clone(),
            updated_by: req.caller.clone(),
        };
        let body = render(&ra);
        s.role_assignments.insert(key, ra);
        Ok(reply(StatusCode::CREATED, body))
    })
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
pub(crate) fn get(shared: &Shared, scope: &[String], name: &str) -> ArmResult {
    let scope_str = scope_text(scope);
    shared.read(|state| {
        let sub_id = check_scope(state, scope)?;
        let ra = subscription(state, &sub_id)?
            .role_assignments
            .get(&name.to_ascii_lowercase())
            .filter(|ra| ra.scope.eq_ignore_ascii_case(&scope_str))
            .ok_or_else(|| not_found(name))?;
        Ok(reply(StatusCode::OK, render(ra)))
    })
}

/// `DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`: 200 with the
/// deleted assignment, or 204.
pub(crate) fn delete(shared: &Shared, scope: &[String], name: &str) -> ArmResult {
    let scope_str = scope_text(scope);
    shared.write(|state| {
        let sub_id = check_scope(state, scope)?;
        let s = subscription_mut(state, &sub_id)?;
        let key = name.to_ascii_lowercase();
        let here = s
            .role_assignments
            .get(&key)
            .is_some_and(|ra| ra.scope.eq_ignore_ascii_case(&scope_str));
        let removed = if here {
            s.role_assignments.remove(&key)
        } else {
            None
        };
        match removed {
            Some(ra) => Ok(reply(StatusCode::OK, render(&ra))),
            None => Ok(axum::response::IntoResponse::into_response(
                StatusCode::NO_CONTENT,
            )),
        }
    })
}

/// A role assignment list `$filter`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    /// `atScope()`: only assignments at or above the scope.
    at_scope: bool,
    /// `principalId eq '…'` or `assignedTo('…')`.
    principal: Option<String>,
}

fn parse_filter(filter: Option<&str>) -> Result<Filter, ArmError> {
    let mut out = Filter::default();
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(out);
    };
    let unsupported = || {
        ArmError::bad_request(
            "UnsupportedQuery",
            format!(
                "The filter '{filter}' is not supported. Supported filters are atScope(), principalId eq '{{id}}' and assignedTo('{{id}}'), alone or joined with 'and'."
            ),
        )
    };
    for clause in filter.split(" and ").map(str::trim) {
        let lower = clause.to_ascii_lowercase();
        if lower == "atscope()" {
            out.at_scope = true;
        } else if let Some(rest) = lower.strip_prefix("principalid eq ") {
            let v = rest.trim().trim_matches('\'');
            out.principal = Some(v.to_owned());
        } else if let Some(rest) = lower.strip_prefix("assignedto(") {
            let v = rest.trim_end_matches(')').trim().trim_matches('\'');
            out.principal = Some(v.to_owned());
        } else {
            return Err(unsupported());
        }
    }
    Ok(out)
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments`: assignments at, above
/// or below the scope (`atScope()`: at or above only), optionally of one principal.
pub(crate) fn list(shared: &Shared, req: &Req, scope: &[String]) -> ArmResult {
    let filter = parse_filter(req.param("$filter"))?;
    let here = scope_text(scope).to_ascii_lowercase();
    shared.read(|state| {
        let sub_id = check_scope(state, scope)?;
        let value: Vec<Value> = subscription(state, &sub_id)?
            .role_assignments
            .values()
            .filter(|ra| {
                let theirs = ra.scope.to_ascii_lowercase();
                let at_or_above = here == theirs || here.starts_with(&format!("{theirs}/"));
                let below = theirs.starts_with(&format!("{here}/"));
                (at_or_above || (below && !filter.at_scope))
                    && filter
                        .principal
                        .as_ref()
                        .is_none_or(|p| ra.principal_id.eq_ignore_ascii_case(p))
            })
            .map(render)
            .collect();
        Ok(reply(StatusCode::OK, json!({ "value": value })))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(parse_filter(None), Ok(Filter::default()));
        assert_eq!(
            parse_filter(Some("atScope()")),
            Ok(Filter {
                at_scope: true,
                principal: None
            })
        );
        assert_eq!(
            parse_filter(Some("atScope() and principalId eq 'ABC'")),
            Ok(Filter {
                at_scope: true,
                principal: Some("abc".into())
            })
        );
        assert_eq!(
            parse_filter(Some("assignedTo('x')")),
            Ok(Filter {
                at_scope: false,
                principal: Some("x".into())
            })
        );
        assert!(parse_filter(Some("roleName eq 'x'")).is_err());
    }
}
