//! The options of a write, as the real server reads and validates them: `dryRun` (in the
//! query of create, update, patch and apply; in the query or the `DeleteOptions` body of a
//! delete), and the rest of `DeleteOptions` (`propagationPolicy`, `orphanDependents`,
//! `preconditions`, `gracePeriodSeconds`).
//!
//! Invalid options are refused before anything is read or written, with the real
//! server's `422 XOptions.meta.k8s.io "" is invalid` answer.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::status::ApiError;

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents lose their reference to the owner and stay.
    Orphan,
    /// The owner goes at once; the garbage collector then deletes the dependents.
    Background,
    /// The dependents go first, then the owner (which carries a `foregroundDeletion`
    /// finalizer and a `deletionTimestamp` meanwhile).
    Foreground,
}

/// What a DELETE asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `dryRun: ["All"]`: validate and answer, change nothing.
    pub dry_run: bool,
    /// `propagationPolicy` (or the deprecated `orphanDependents`); `None` means the
    /// kind's default (background for every kind served here).
    pub propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    /// The propagation in effect.
    pub fn propagation(&self) -> Propagation {
        self.propagation.unwrap_or(Propagation::Background)
    }
}

/// `metav1` option kinds, as invalid-option errors name them.
#[derive(Debug, Clone, Copy)]
pub enum OptionsKind {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH, apply included.
    Patch,
    /// DELETE.
    Delete,
}

impl OptionsKind {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "CreateOptions",
            Self::Update => "UpdateOptions",
            Self::Patch => "PatchOptions",
            Self::Delete => "DeleteOptions",
        }
    }
}

fn invalid(kind: OptionsKind, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "meta.k8s.io",
        kind.name(),
        "",
        &[(field.to_owned(), message)],
    )
}

/// Go's `%#v` of a `[]string`, which the real server prints for an unsupported dryRun.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Whether `values` (the `dryRun` list) asks for a dry run; `All` is the only value.
fn dry_run_of(kind: OptionsKind, values: &[String]) -> Result<bool, ApiError> {
    if values.iter().any(|v| v != "All") {
        return Err(invalid(
            kind,
            "dryRun",
            format!(
                "Unsupported value: {}: supported values: \"All\"",
                go_string_slice(values)
            ),
        ));
    }
    Ok(!values.is_empty())
}

/// The `dryRun` of a create, update, patch or apply (from the query).
pub fn write_dry_run(
    kind: OptionsKind,
    query: &BTreeMap<String, String>,
) -> Result<bool, ApiError> {
    let values: Vec<String> = query.get("dryRun").into_iter().cloned().collect();
    dry_run_of(kind, &values)
}

/// The options of a DELETE: from its body when it has one (a `DeleteOptions` document),
/// otherwise from the query, as the real server reads them.
pub fn delete_options(
    body: Option<&Value>,
    query: &BTreeMap<String, String>,
) -> Result<DeleteOptions, ApiError> {
    let from_query;
    let doc = match body {
        Some(doc) => {
            if !doc.is_object() {
                return Err(ApiError::bad_request(
                    "the body of the request was in an unknown format - it must be a DeleteOptions object",
                ));
            }
            doc
        }
        None => {
            let mut doc = json!({});
            if let Some(dry) = query.get("dryRun") {
                doc["dryRun"] = json!([dry]);
            }
            if let Some(policy) = query.get("propagationPolicy") {
                doc["propagationPolicy"] = json!(policy);
            }
            if let Some(orphan) = query.get("orphanDependents") {
                doc["orphanDependents"] = json!(orphan == "true");
            }
            if let Some(grace) = query.get("gracePeriodSeconds") {
                let seconds: i64 = grace.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value {grace:?} for gracePeriodSeconds: not an integer"
                    ))
                })?;
                doc["gracePeriodSeconds"] = json!(seconds);
            }
            from_query = doc;
            &from_query
        }
    };
    let kind = OptionsKind::Delete;
    let dry_values: Vec<String> = match &doc["dryRun"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        other => {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.dryRun must be a list of strings, got {other}"
            )));
        }
    };
    let dry_run = dry_run_of(kind, &dry_values)?;
    let policy = doc["propagationPolicy"].as_str();
    let orphan = doc["orphanDependents"].as_bool();
    if let (Some(policy), Some(_)) = (policy, orphan) {
        return Err(invalid(
            kind,
            "propagationPolicy",
            format!(
                "Invalid value: {policy:?}: orphanDependents and deletionPropagation cannot be both set"
            ),
        ));
    }
    let propagation = match (policy, orphan) {
        (Some("Orphan"), _) | (None, Some(true)) => Some(Propagation::Orphan),
        (Some("Background"), _) => Some(Propagation::Background),
        (Some("Foreground"), _) | (None, Some(false)) => Some(Propagation::Foreground),
        (None, None) => None,
        (Some(other), _) => {
            return Err(invalid(
                kind,
                "propagationPolicy",
                format!(
                    "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            ));
        }
    };
    if let Some(grace) = doc["gracePeriodSeconds"].as_i64()
        && grace < 0
    {
        return Err(invalid(
            kind,
            "gracePeriodSeconds",
            format!("Invalid value: {grace}: must be greater than or equal to 0"),
        ));
    }
    let pre = &doc["preconditions"];
    Ok(DeleteOptions {
        dry_run,
        propagation,
        uid: pre["uid"].as_str().map(str::to_owned),
        resource_version: pre["resourceVersion"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn dry_run_comes_from_the_body_or_else_the_query() {
        let body = json!({ "kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"] });
        let options = delete_options(Some(&body), &query(&[])).expect("valid");
        assert!(options.dry_run);
        assert_eq!(options.propagation(), Propagation::Background);
        let options = delete_options(None, &query(&[("dryRun", "All")])).expect("valid");
        assert!(options.dry_run);
        // A body wins over the query, as on the real server.
        let options =
            delete_options(Some(&json!({})), &query(&[("dryRun", "All")])).expect("valid");
        assert!(!options.dry_run);
    }

    #[test]
    fn invalid_options_are_refused_like_the_real_server() {
        let err = delete_options(Some(&json!({ "dryRun": ["Yes"] })), &query(&[]))
            .expect_err("bad dryRun");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Yes\"}: supported values: \"All\""
        );
        let err = delete_options(Some(&json!({ "propagationPolicy": "Later" })), &query(&[]))
            .expect_err("bad policy");
        assert!(err.message.contains(
            "propagationPolicy: Unsupported value: \"Later\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        ));
        let both = json!({ "propagationPolicy": "Orphan", "orphanDependents": true });
        assert_eq!(
            delete_options(Some(&both), &query(&[]))
                .expect_err("both")
                .code,
            422
        );
        let err = write_dry_run(OptionsKind::Create, &query(&[("dryRun", "true")]))
            .expect_err("bad dryRun");
        assert!(
            err.message
                .starts_with("CreateOptions.meta.k8s.io \"\" is invalid: dryRun")
        );
    }

    #[test]
    fn preconditions_and_policies_are_read() {
        let body = json!({
            "propagationPolicy": "Foreground",
            "preconditions": { "uid": "u", "resourceVersion": "7" },
        });
        let options = delete_options(Some(&body), &query(&[])).expect("valid");
        assert_eq!(options.propagation, Some(Propagation::Foreground));
        assert_eq!(options.uid.as_deref(), Some("u"));
        assert_eq!(options.resource_version.as_deref(), Some("7"));
        let orphan =
            delete_options(Some(&json!({ "orphanDependents": true })), &query(&[])).expect("valid");
        assert_eq!(orphan.propagation(), Propagation::Orphan);
        let orphan =
            delete_options(None, &query(&[("propagationPolicy", "Orphan")])).expect("valid");
        assert_eq!(orphan.propagation(), Propagation::Orphan);
    }
}
