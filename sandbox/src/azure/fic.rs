//! Federated identity credentials of a user-assigned identity: create or update (PUT, 201
//! or 200), get, delete (200, or 204 when absent) and list (`$top`, `$skiptoken`,
//! `nextLink`), with the service's rules: the name pattern, all three properties
//! required, exactly one audience, issuer and subject unique per identity, at most 20 per
//! identity, and no two writes on one identity at the same time.
//!
//! Every write (PUT or DELETE) keeps its identity busy for `settings.ficWriteMs` plus any
//! injected latency; a write arriving while another is in flight on the same identity is
//! refused with 409 `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`,
//! as the service refuses it. Writes on different identities proceed in parallel, and the
//! emulator records the most identities ever written at once (`fic_stats`).

use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::{Value, json};

use super::arm::{self, ArmError, ArmResult, Req, reply};
use super::identities;
use super::model::{FederatedCredential, Identity};
use super::resources::{group, group_mut};
use crate::{Shared, State};

/// The resource type.
const TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
/// The child type as ARM names it in `ParentResourceNotFound`.
const CHILD_TYPE: &str = "userAssignedIdentities/federatedIdentityCredentials";
/// Credentials per identity.
pub(crate) const MAX_PER_IDENTITY: usize = 20;
/// The longest issuer or subject the service accepts.
const MAX_CLAIM_LEN: usize = 600;
/// Credentials per page when the client gives no `$top`.
const DEFAULT_PAGE: usize = 50;

/// The 409 for a write overlapping another on the same identity; the message names the
/// identity's id in lower case, as the service does.
pub(crate) fn concurrent_write(identity_id: &str) -> ArmError {
    ArmError::new(
        StatusCode::CONFLICT,
        "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
        format!(
            "Too many Federated Identity Credentials are written concurrently for the managed identity '{}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.",
            identity_id.to_lowercase()
        ),
    )
}

fn render(identity_id: &str, fic: &FederatedCredential) -> Value {
    json!({
        "id": format!("{identity_id}/federatedIdentityCredentials/{}", fic.name),
        "name": fic.name,
        "type": TYPE,
        "properties": {
            "issuer": fic.issuer,
            "subject": fic.subject,
            "audiences": fic.audiences,
        },
    })
}

/// The service's name rule: `^[a-zA-Z0-9]{1}[a-zA-Z0-9-_]{2,119}$`.
fn valid_name(name: &str) -> bool {
    (3..=120).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn bad(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("BadRequest", message)
}

/// The credential a PUT body describes, or the 400 the service answers.
fn parse(name: &str, body: &Value) -> Result<FederatedCredential, ArmError> {
    let properties = &body["properties"];
    let text = |field: &str| -> Result<String, ArmError> {
        match properties[field].as_str().map(str::trim) {
            Some(v) if !v.is_empty() => {
                Ok(properties[field].as_str().unwrap_or_default().to_owned())
            }
            _ => Err(bad(format!(
                "The federated identity credential property '{field}' is required."
            ))
            .with_target(format!("properties.{field}"))),
        }
    };
    let issuer = text("issuer")?;
    let subject = text("subject")?;
    let audiences: Vec<String> = match &properties["audiences"] {
        Value::Array(items) => items
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ArmError::invalid_content("audiences must be strings"))?,
        Value::Null => Vec::new(),
        _ => return Err(ArmError::invalid_content("audiences must be an array")),
    };
    if audiences.len() != 1 || audiences[0].trim().is_empty() {
        return Err(
            bad("Federated identity credentials must have exactly one audience.")
                .with_target("properties.audiences"),
        );
    }
    for (field, value) in [("issuer", &issuer), ("subject", &subject)] {
        if value.len() > MAX_CLAIM_LEN {
            return Err(bad(format!(
                "The federated identity credential property '{field}' must not be longer than {MAX_CLAIM_LEN} characters."
            ))
            .with_target(format!("properties.{field}")));
        }
    }
    Ok(FederatedCredential {
        name: name.to_owned(),
        issuer,
        subject,
        audiences,
    })
}

fn identity<'a>(
    state: &'a State,
    sub: &str,
    rg: &str,
    name: &str,
) -> Result<(&'a str, &'a Identity), ArmError> {
    let g = group(state, sub, rg)?;
    let identity = g
        .identities
        .get(&name.to_ascii_lowercase())
        .ok_or_else(|| ArmError::resource_not_found(identities::TYPE, name, rg))?;
    Ok((&g.name, identity))
}

/// `GET …/federatedIdentityCredentials/{name}`.
pub(crate) fn get(
    shared: &Shared,
    sub: &str,
    rg: &str,
    identity_name: &str,
    name: &str,
) -> ArmResult {
    shared.read(|state| {
        let (rg_name, identity) = identity(state, sub, rg, identity_name)?;
        let id = identities::id(sub, rg_name, &identity.name);
        let fic = identity
            .federated_credentials
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| {
                ArmError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("Federated Identity Credential '{name}' was not found under the managed identity '{}'.", id.to_lowercase()),
                )
            })?;
        Ok(reply(StatusCode::OK, render(&id, fic)))
    })
}

/// `GET …/federatedIdentityCredentials`, `$top` per page (default 50).
pub(crate) fn list(
    shared: &Shared,
    req: &Req,
    sub: &str,
    rg: &str,
    identity_name: &str,
) -> ArmResult {
    let size = match req.param("$top") {
        None => DEFAULT_PAGE,
        Some(top) => match top.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ArmError::bad_request(
                    "InvalidParameter",
                    format!(
                        "The value '{top}' of query parameter '$top' is invalid: it must be a positive integer."
                    ),
                ));
            }
        },
    };
    shared.read(|state| {
        let (rg_name, identity) = identity(state, sub, rg, identity_name)?;
        let id = identities::id(sub, rg_name, &identity.name);
        let items = identity
            .federated_credentials
            .iter()
            .map(|(key, fic)| (key.clone(), render(&id, fic)))
            .collect();
        Ok(reply(StatusCode::OK, arm::page(req, items, size)))
    })
}

/// One FIC write.
pub(crate) struct Write<'a> {
    pub(crate) sub: &'a str,
    pub(crate) rg: &'a str,
    pub(crate) identity: &'a str,
    pub(crate) name: &'a str,
    /// PUT, else DELETE.
    pub(crate) put: bool,
    /// Injected latency, added to the time the write keeps its identity busy.
    pub(crate) latency_ms: u64,
}

/// `PUT` or `DELETE …/federatedIdentityCredentials/{name}`.
pub(crate) async fn write(shared: &Shared, req: &Req, w: Write<'_>) -> ArmResult {
    let wanted = if w.put {
        if !valid_name(w.name) {
            return Err(bad(format!(
                "Federated Identity Credential name '{}' is invalid.",
                w.name
            )));
        }
        Some(parse(w.name, &req.json()?)?)
    } else {
        None
    };
    let key = w.name.to_ascii_lowercase();
    let (busy_key, until, response) = shared.write(|state| {
        let write_ms = state.azure.settings.fic_write_ms;
        let verb = if w.put { "write" } else { "delete" };
        let (rg_name, identity_name) = {
            let g = group(state, w.sub, w.rg)?;
            let parent_id = identities::id(w.sub, &g.name, w.identity);
            let identity = g
                .identities
                .get(&w.identity.to_ascii_lowercase())
                .ok_or_else(|| ArmError::parent_not_found(verb, CHILD_TYPE, &parent_id))?;
            (g.name.clone(), identity.name.clone())
        };
        let id = identities::id(w.sub, &rg_name, &identity_name);
        let busy_key = id.to_lowercase();
        let now = Instant::now();
        state.azure.busy.retain(|_, until| *until > now);
        if state.azure.busy.contains_key(&busy_key) {
            state.azure.fic_stats.rejected_concurrent += 1;
            return Err(concurrent_write(&id));
        }
        let identity = group_mut(state, w.sub, w.rg)?
            .identities
            .get_mut(&w.identity.to_ascii_lowercase())
            .ok_or_else(|| ArmError::parent_not_found(verb, CHILD_TYPE, &id))?;
        let response = match wanted {
            Some(fic) => {
                check_rules(identity, &key, &fic, &id)?;
                let status = if identity.federated_credentials.contains_key(&key) {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                let body = render(&id, &fic);
                identity.federated_credentials.insert(key.clone(), fic);
                reply(status, body)
            }
            None => match identity.federated_credentials.remove(&key) {
                Some(_) => StatusCode::OK.into_response(),
                None => StatusCode::NO_CONTENT.into_response(),
            },
        };
        let until = now + Duration::from_millis(write_ms.saturating_add(w.latency_ms));
        let azure = &mut state.azure;
        azure.busy.insert(busy_key.clone(), until);
        azure.fic_stats.writes += 1;
        let parallel = u64::try_from(azure.busy.len()).unwrap_or(u64::MAX);
        azure.fic_stats.max_parallel_identities =
            azure.fic_stats.max_parallel_identities.max(parallel);
        Ok((busy_key, until, response))
    })?;
    crate::latency::wait_until(until).await;
    shared.write(|state| {
        if state.azure.busy.get(&busy_key) == Some(&until) {
            state.azure.busy.remove(&busy_key);
        }
    });
    Ok(response)
}

/// The service's rules for a credential about to be written under `key`.
fn check_rules(
    identity: &Identity,
    key: &str,
    fic: &FederatedCredential,
    id: &str,
) -> Result<(), ArmError> {
    let duplicate = identity
        .federated_credentials
        .iter()
        .any(|(k, other)| k != key && other.issuer == fic.issuer && other.subject == fic.subject);
    if duplicate {
        return Err(bad(
            "Issuer and subject combination already exists for this Managed Identity.",
        ));
    }
    if !identity.federated_credentials.contains_key(key)
        && identity.federated_credentials.len() >= MAX_PER_IDENTITY
    {
        return Err(limit_reached(id));
    }
    Ok(())
}

/// The 400 for a credential beyond the limit per identity; the message names the
/// identity's id in lower case.
pub(crate) fn limit_reached(identity_id: &str) -> ArmError {
    bad(format!(
        "The number of Federated Identity Credentials for the managed identity '{}' has reached the limit of {MAX_PER_IDENTITY}.",
        identity_id.to_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_service_pattern() {
        assert!(valid_name("abc"));
        assert!(valid_name("aks-dev_prod-orders"));
        assert!(valid_name(&"a".repeat(120)));
        assert!(!valid_name("ab"));
        assert!(!valid_name(&"a".repeat(121)));
        assert!(!valid_name("_abc"));
        assert!(!valid_name("a.bc"));
    }

    #[test]
    fn bodies_need_all_properties_and_one_audience() {
        let ok = json!({ "properties": { "issuer": "https://i/", "subject": "system:serviceaccount:a:b", "audiences": ["api://AzureADTokenExchange"] } });
        assert_eq!(parse("f", &ok).map(|f| f.audiences.len()), Ok(1));
        let mut two = ok.clone();
        two["properties"]["audiences"] = json!(["a", "b"]);
        assert_eq!(
            parse("f", &two).unwrap_err().message,
            "Federated identity credentials must have exactly one audience."
        );
        let mut none = ok.clone();
        none["properties"]["audiences"] = json!([]);
        assert!(parse("f", &none).is_err());
        let mut no_issuer = ok;
        no_issuer["properties"]["issuer"] = Value::Null;
        assert_eq!(
            parse("f", &no_issuer).unwrap_err().target.as_deref(),
            Some("properties.issuer")
        );
    }

    #[test]
    fn the_concurrency_error_names_the_identity_in_lower_case() {
        let e = concurrent_write(
            "/subscriptions/S/resourcegroups/Rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/Id",
        );
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.message.contains("'/subscriptions/s/resourcegroups/rg/providers/microsoft.managedidentity/userassignedidentities/id'"), "{}", e.message);
    }
}
