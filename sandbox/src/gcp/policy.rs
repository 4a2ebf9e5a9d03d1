//! IAM allow policies as the API reads and writes them, shared by service accounts and
//! projects: policy versions (0, 1, 3) and conditions, etags (standard padded base64,
//! new on every write, a stale one is `ABORTED`, none is a blind overwrite), update
//! masks (`auditConfigs` survive a write whose mask leaves them out), the server's
//! normal form (bindings merged and sorted by role, members sorted) and the limits.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::error::{CONCURRENT_CHANGE, GcpError};
use super::members::{self, Resource};
use super::model::{Binding, GcpState, Policy};
use super::request::{field, string_field};

/// The etag of a policy that was never written.
pub(crate) const EMPTY_ETAG: &str = "ACAB";
/// Principals one policy may hold (every occurrence counts).
const MAX_PRINCIPALS: usize = 1500;
/// Of those, Google groups and domains.
const MAX_GROUPS_AND_DOMAINS: usize = 250;
const VERSIONS_DOC: &str =
    "For more information, please refer to https://cloud.google.com/iam/docs/policies#versions.";
const LOG_TYPES: [&str; 4] = [
    "LOG_TYPE_UNSPECIFIED",
    "ADMIN_READ",
    "DATA_WRITE",
    "DATA_READ",
];

/// A fresh etag: 8 bytes, the first one `0x07` like the API's (`BwX…`).
fn new_etag() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill(&mut bytes[1..]);
    bytes[0] = 0x07;
    STANDARD.encode(bytes)
}

/// A proto3 JSON `bytes` value: standard or URL-safe base64, padded or not (gcloud
/// sends back the etag it read re-encoded URL-safe).
fn decode_bytes(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
}

/// The current etag of a stored policy.
fn etag(policy: &Policy) -> &str {
    if policy.etag.is_empty() {
        EMPTY_ETAG
    } else {
        &policy.etag
    }
}

fn has_conditions(policy: &Policy) -> bool {
    policy.bindings.iter().any(|b| b.condition.is_some())
}

/// `1,501`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A policy version from JSON (a number, or a string as proto3 JSON allows), checked to
/// be one IAM knows. `at` names the field for the error.
pub(crate) fn version(value: Option<&Value>, at: &str) -> Result<i64, GcpError> {
    let parsed = match value {
        None => Some(0),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(v @ (0 | 1 | 3)) => Ok(v),
        Some(v) => Err(GcpError::invalid(format!(
            "Invalid {at}: {v}. Policy versions must be 0, 1 or 3."
        ))),
        None => Err(GcpError::bad_payload(format!(
            "Invalid value at '{at}' (TYPE_INT32), {}",
            value.map(Value::to_string).unwrap_or_default()
        ))),
    }
}

fn log_type_out(value: &Value, int_enums: bool) -> Value {
    match (value, int_enums) {
        (Value::String(name), true) => LOG_TYPES
            .iter()
            .position(|t| t == name)
            .map_or_else(|| value.clone(), |i| json!(i)),
        _ => value.clone(),
    }
}

/// The JSON of `auditConfigs` entries, with `logType` as a number when asked for.
fn audit_configs_out(configs: &[Value], int_enums: bool) -> Value {
    let mut out = configs.to_vec();
    for config in &mut out {
        if let Some(logs) = config
            .get_mut("auditLogConfigs")
            .and_then(Value::as_array_mut)
        {
            for log in logs {
                if let Some(t) = log.get("logType").cloned() {
                    log["logType"] = log_type_out(&t, int_enums);
                }
            }
        }
    }
    Value::Array(out)
}

/// The stored policy as the API returns it: `version` 3 when it has conditions, else 1
/// (absent for an empty policy, which is just `{"etag": "ACAB"}` until written).
pub(crate) fn render(policy: &Policy, int_enums: bool) -> Value {
    let mut out = Map::new();
    if !policy.bindings.is_empty() || !policy.audit_configs.is_empty() {
        out.insert(
            "version".into(),
            json!(if has_conditions(policy) { 3 } else { 1 }),
        );
    }
    if !policy.bindings.is_empty() {
        let bindings: Vec<Value> = policy
            .bindings
            .iter()
            .map(|b| {
                let mut binding = json!({ "role": b.role, "members": b.members });
                if let Some(condition) = &b.condition {
                    binding["condition"] = condition.clone();
                }
                binding
            })
            .collect();
        out.insert("bindings".into(), Value::Array(bindings));
    }
    if !policy.audit_configs.is_empty() {
        out.insert(
            "auditConfigs".into(),
            audit_configs_out(&policy.audit_configs, int_enums),
        );
    }
    out.insert("etag".into(), json!(etag(policy)));
    Value::Object(out)
}

/// getIamPolicy: the policy at `requested` version. A policy with conditions can only
/// be read at version 3.
pub(crate) fn get(policy: &Policy, requested: i64, int_enums: bool) -> Result<Value, GcpError> {
    if requested < 3 && has_conditions(policy) {
        return Err(GcpError::invalid(format!(
            "Requested policy version ({}) cannot be less than the existing policy version (3). {VERSIONS_DOC}",
            requested.max(1)
        )));
    }
    Ok(render(policy, int_enums))
}

/// The fields an update mask names (default `bindings,etag`).
fn mask_paths(mask: &str) -> Result<Vec<&'static str>, GcpError> {
    if mask.trim().is_empty() {
        return Ok(vec!["bindings", "etag"]);
    }
    mask.split(',')
        .map(str::trim)
        .map(|path| match path {
            "bindings" => Ok("bindings"),
            "etag" => Ok("etag"),
            "version" => Ok("version"),
            "auditConfigs" | "audit_configs" => Ok("auditConfigs"),
            other => Err(GcpError::invalid(format!(
                "Invalid field mask path \"{other}\": the policy has no such field."
            ))),
        })
        .collect()
}

fn condition(value: &Value, at: &str) -> Result<Value, GcpError> {
    let Value::Object(expr) = value else {
        return Err(GcpError::bad_payload(format!(
            "Invalid value at '{at}', {value}: a message was expected."
        )));
    };
    for name in ["expression", "title"] {
        if string_field(expr, name, &format!("{at}."))?
            .trim()
            .is_empty()
        {
            return Err(GcpError::invalid(format!(
                "Condition {name} is required: {at}.{name} is empty."
            )));
        }
    }
    Ok(value.clone())
}

fn bindings(
    state: &GcpState,
    stored: &Policy,
    policy: &Map<String, Value>,
    resource: Resource<'_>,
    version: i64,
) -> Result<Vec<Binding>, GcpError> {
    let mut out: Vec<Binding> = Vec::new();
    let items = field(policy, "bindings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        let at = format!("policy.bindings[{i}]");
        let Value::Object(binding) = item else {
            return Err(GcpError::bad_payload(format!(
                "Invalid value at '{at}', {item}: a message was expected."
            )));
        };
        let role = string_field(binding, "role", &format!("{at}."))?;
        members::check_role(&role, resource)?;
        let condition = match field(binding, "condition") {
            None => None,
            Some(_) if version < 3 => {
                return Err(GcpError::invalid(format!(
                    "Conditions are only supported in policy version 3; {at} has a condition in a version {version} policy."
                )));
            }
            Some(c) => Some(condition(c, &format!("{at}.condition"))?),
        };
        let mut list = Vec::new();
        for (j, member) in field(binding, "members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Value::String(member) = member else {
                return Err(GcpError::bad_payload(format!(
                    "Invalid value at '{at}.members[{j}]' (TYPE_STRING), {member}"
                )));
            };
            let is_new = !stored.bindings.iter().any(|b| b.members.contains(member));
            members::check_member(state, member, &role, resource, is_new)?;
            list.push(member.clone());
        }
        match out
            .iter_mut()
            .find(|b| b.role == role && b.condition == condition)
        {
            Some(existing) => existing.members.extend(list),
            None => out.push(Binding {
                role,
                members: list,
                condition,
            }),
        }
    }
    for binding in &mut out {
        binding.members.sort();
        binding.members.dedup();
    }
    out.retain(|b| !b.members.is_empty());
    out.sort_by(|a, b| a.role.cmp(&b.role));
    Ok(out)
}

fn audit_configs(policy: &Map<String, Value>) -> Result<Vec<Value>, GcpError> {
    let mut out = field(policy, "auditConfigs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, config) in out.iter_mut().enumerate() {
        let Some(logs) = config
            .get_mut("auditLogConfigs")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for (j, log) in logs.iter_mut().enumerate() {
            let name = match log.get("logType") {
                None | Some(Value::Null) => continue,
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| LOG_TYPES.get(usize::try_from(n).ok()?))
                    .map(|s| (*s).to_owned()),
                Some(Value::String(s)) => LOG_TYPES.contains(&s.as_str()).then(|| s.clone()),
                Some(_) => None,
            };
            let Some(name) = name else {
                return Err(GcpError::bad_payload(format!(
                    "Invalid value at 'policy.audit_configs[{i}].audit_log_configs[{j}].log_type' (type.googleapis.com/google.iam.v1.AuditLogConfig.LogType), {}",
                    log["logType"]
                )));
            };
            log["logType"] = json!(name);
        }
    }
    Ok(out)
}

/// setIamPolicy: checks `body` (`{"policy", "updateMask"?}`) against the stored policy
/// and returns the policy to store, with a new etag.
pub(crate) fn set(
    state: &GcpState,
    stored: &Policy,
    body: &Map<String, Value>,
    resource: Resource<'_>,
) -> Result<Policy, GcpError> {
    let Some(Value::Object(policy)) = field(body, "policy") else {
        return Err(GcpError::invalid(
            "Request contains an invalid argument: policy is required.",
        ));
    };
    let version = version(field(policy, "version"), "policy.version")?;
    let sent_etag = string_field(policy, "etag", "policy.")?;
    if !sent_etag.is_empty() {
        let Some(sent) = decode_bytes(&sent_etag) else {
            return Err(GcpError::bad_payload(format!(
                "Invalid value at 'policy.etag' (TYPE_BYTES), Base64 decoding failed for \"{sent_etag}\""
            )));
        };
        if decode_bytes(etag(stored)) != Some(sent) {
            return Err(GcpError::aborted(format!(
                "{CONCURRENT_CHANGE} The request's ETag '{sent_etag}' did not match the current policy's ETag '{}'.",
                etag(stored)
            )));
        }
        // Without an etag a version 1 policy may overwrite a version 3 one (and drop its
        // conditions); with one, the client must have read version 3.
        if version < 3 && has_conditions(stored) {
            return Err(GcpError::invalid(format!(
                "Specified policy version ({}) cannot be less than the existing policy version (3). {VERSIONS_DOC}",
                version.max(1)
            )));
        }
    }
    let mask = mask_paths(&string_field(body, "updateMask", "")?)?;
    let mut next = stored.clone();
    if mask.contains(&"bindings") {
        next.bindings = bindings(state, stored, policy, resource, version)?;
    }
    if mask.contains(&"auditConfigs") {
        next.audit_configs = audit_configs(policy)?;
    }
    let principals = next.bindings.iter().map(|b| b.members.len()).sum::<usize>();
    if principals > MAX_PRINCIPALS {
        return Err(GcpError::invalid(format!(
            "The number of members in the policy ({}) is larger than the maximum allowed size {}.",
            thousands(principals),
            thousands(MAX_PRINCIPALS)
        )));
    }
    let groups = next
        .bindings
        .iter()
        .flat_map(|b| &b.members)
        .filter(|m| m.starts_with("group:") || m.starts_with("domain:"))
        .count();
    if groups > MAX_GROUPS_AND_DOMAINS {
        return Err(GcpError::invalid(format!(
            "The number of group and domain members in the policy ({groups}) is larger than the maximum allowed size {MAX_GROUPS_AND_DOMAINS}."
        )));
    }
    next.etag = new_etag();
    Ok(next)
}

/// After a service account is deleted its members read `deleted:serviceAccount:EMAIL?uid=ID`
/// in every policy that named it. Returns whether `policy` changed (it then has a new etag).
pub(crate) fn mark_deleted(policy: &mut Policy, email: &str, unique_id: &str) -> bool {
    let member = format!("serviceAccount:{email}");
    let deleted = format!("deleted:serviceAccount:{email}?uid={unique_id}");
    let mut changed = false;
    for binding in &mut policy.bindings {
        for m in &mut binding.members {
            if *m == member {
                m.clone_from(&deleted);
                changed = true;
            }
        }
        binding.members.sort();
        binding.members.dedup();
    }
    if changed {
        policy.etag = new_etag();
    }
    changed
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
