//! Rules shared by the IAM actions: reaching an account's state, finding roles, and
//! validating names, paths and policy documents the way IAM does.

use super::model::{Account, Role};
use super::query::QueryError;
use crate::Shared;

/// The trust policy quota (`ACLSizePerRole`), in characters without whitespace.
pub(crate) const TRUST_POLICY_QUOTA: usize = 2048;

/// Runs `f` on the account's state (empty if the account has none yet).
pub(crate) fn read<R>(shared: &Shared, account: &str, f: impl FnOnce(&Account) -> R) -> R {
    shared.read(|state| match state.aws.accounts.get(account) {
        Some(acct) => f(acct),
        None => f(&Account::default()),
    })
}

/// Runs `f` on the account's state, creating it if needed, and persists the result.
pub(crate) fn write<R>(shared: &Shared, account: &str, f: impl FnOnce(&mut Account) -> R) -> R {
    shared.write(|state| f(state.aws.accounts.entry(account.to_owned()).or_default()))
}

/// The role named `name` (case-insensitively), or `NoSuchEntity`.
pub(crate) fn role<'a>(acct: &'a Account, name: &str) -> Result<&'a Role, QueryError> {
    acct.roles
        .get(&name.to_lowercase())
        .ok_or_else(|| no_such_role(name))
}

/// The role named `name` (case-insensitively), mutable, or `NoSuchEntity`.
pub(crate) fn role_mut<'a>(acct: &'a mut Account, name: &str) -> Result<&'a mut Role, QueryError> {
    acct.roles
        .get_mut(&name.to_lowercase())
        .ok_or_else(|| no_such_role(name))
}

fn no_such_role(name: &str) -> QueryError {
    QueryError::no_such_entity(format!("The role with name {name} cannot be found."))
}

/// `arn:aws:iam::ACCOUNT:role{path}{name}`.
pub(crate) fn role_arn(account: &str, role: &Role) -> String {
    format!("arn:aws:iam::{account}:role{}{}", role.path, role.name)
}

/// Checks an IAM entity name: `[\w+=,.@-]{1,max}` (`\w` being ASCII letters, digits and
/// `_`), answering with the `ValidationError` IAM sends.
pub(crate) fn validate_name(member: &str, name: &str, max: usize) -> Result<(), QueryError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if name.is_empty() || name.chars().count() > max {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    if !name.chars().all(allowed) {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(())
}

/// Checks an IAM path: `/` alone or `/…/`, at most 512 printable ASCII characters.
pub(crate) fn validate_path(path: &str) -> Result<(), QueryError> {
    let printable = path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if path.len() > 512 || !path.starts_with('/') || !path.ends_with('/') || !printable {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
        )));
    }
    Ok(())
}

/// Checks that a policy document is a JSON object with a `Statement`, as IAM's parser
/// insists, answering `MalformedPolicyDocument` otherwise.
pub(crate) fn validate_document(document: &str) -> Result<(), QueryError> {
    let value: serde_json::Value = serde_json::from_str(document)
        .map_err(|_| QueryError::malformed_policy("This policy contains invalid Json"))?;
    let Some(object) = value.as_object() else {
        return Err(QueryError::malformed_policy(
            "This policy contains invalid Json",
        ));
    };
    if !object.contains_key("Statement") {
        return Err(QueryError::malformed_policy(
            "Syntax errors in policy. The policy is missing the required \"Statement\" field.",
        ));
    }
    check_grammar(object)
}

/// IAM's policy grammar, as its parser applies it to every document: only `Version`,
/// `Id` and `Statement` at the top, a known `Version`, statements that are objects with
/// only statement elements, an `Effect` of `Allow` or `Deny`, and either `Action` or
/// `NotAction`.
fn check_grammar(object: &serde_json::Map<String, serde_json::Value>) -> Result<(), QueryError> {
    const TOP: [&str; 3] = ["Version", "Id", "Statement"];
    const STATEMENT: [&str; 9] = [
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    ];
    let syntax = || QueryError::malformed_policy("Syntax errors in policy.");
    if object.keys().any(|k| !TOP.contains(&k.as_str())) {
        return Err(syntax());
    }
    if let Some(version) = object.get("Version")
        && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(QueryError::malformed_policy(
            "The policy failed legacy parsing",
        ));
    }
    for statement in statements(object) {
        let statement = statement.as_object().ok_or_else(syntax)?;
        if statement.keys().any(|k| !STATEMENT.contains(&k.as_str())) {
            return Err(syntax());
        }
        if !matches!(
            statement.get("Effect").and_then(|e| e.as_str()),
            Some("Allow" | "Deny")
        ) {
            return Err(syntax());
        }
        match (
            statement.contains_key("Action"),
            statement.contains_key("NotAction"),
        ) {
            (false, false) => {
                return Err(QueryError::malformed_policy(
                    "Policy statement must contain actions.",
                ));
            }
            (true, true) => return Err(syntax()),
            _ => {}
        }
    }
    Ok(())
}

/// A document's statements: `Statement` is one object or a list.
fn statements(object: &serde_json::Map<String, serde_json::Value>) -> Vec<&serde_json::Value> {
    match object.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    }
}

/// Checks an identity policy (a role's inline policy, a managed policy): the grammar,
/// then what only identity policies must obey: no principal, and resources.
pub(crate) fn validate_identity_document(document: &str) -> Result<(), QueryError> {
    validate_document(document)?;
    let value: serde_json::Value = serde_json::from_str(document)
        .map_err(|_| QueryError::malformed_policy("This policy contains invalid Json"))?;
    let object = value.as_object().cloned().unwrap_or_default();
    for statement in statements(&object) {
        let statement = statement.as_object().cloned().unwrap_or_default();
        if statement.contains_key("Principal") || statement.contains_key("NotPrincipal") {
            return Err(QueryError::malformed_policy(
                "Policy document should not specify a principal.",
            ));
        }
        match (
            statement.contains_key("Resource"),
            statement.contains_key("NotResource"),
        ) {
            (false, false) => {
                return Err(QueryError::malformed_policy(
                    "Policy statement must contain resources.",
                ));
            }
            (true, true) => {
                return Err(QueryError::malformed_policy("Syntax errors in policy."));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The length IAM quotas count: characters other than whitespace.
pub(crate) fn quota_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// Checks a trust policy: valid JSON, then the `ACLSizePerRole` quota.
pub(crate) fn validate_trust_policy(document: &str) -> Result<(), QueryError> {
    validate_document(document)?;
    if quota_size(document) > TRUST_POLICY_QUOTA {
        return Err(QueryError::limit_exceeded(format!(
            "Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA}"
        )));
    }
    Ok(())
}

/// Adds `new` tags to `tags` (replacing values of existing keys), refusing to go over
/// IAM's 50 tags per entity; `tags` is unchanged on error.
pub(crate) fn merge_tags(
    tags: &mut std::collections::BTreeMap<String, String>,
    new: impl IntoIterator<Item = (String, String)>,
) -> Result<(), QueryError> {
    let mut merged = tags.clone();
    merged.extend(new);
    if merged.len() > 50 {
        return Err(QueryError::limit_exceeded(
            "Cannot exceed quota for TagsPerEntity: 50",
        ));
    }
    *tags = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_size_ignores_whitespace() {
        assert_eq!(quota_size("{ \"a\" :\n\t[ 1, 2 ] }"), 11);
        assert_eq!(quota_size("é é"), 2);
    }

    #[test]
    fn trust_policy_quota_is_2048_characters_without_whitespace() {
        let doc = |n: usize| {
            let pad = "x".repeat(n - r#"{"Statement":[],"Id":""}"#.len());
            format!("{{\"Statement\": [],\n  \"Id\": \"{pad}\"}}")
        };
        assert_eq!(quota_size(&doc(2048)), 2048);
        assert!(validate_trust_policy(&doc(2048)).is_ok());
        let e = validate_trust_policy(&doc(2049)).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (409, "LimitExceeded"));
        assert_eq!(e.message, "Cannot exceed quota for ACLSizePerRole: 2048");
    }

    #[test]
    fn documents_must_be_json_objects_with_statements() {
        for bad in ["{", "[]", "{\"Version\":\"2012-10-17\"}"] {
            let e = validate_document(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "MalformedPolicyDocument"),
                "{bad}"
            );
        }
        assert!(validate_document("{\"Statement\":[]}").is_ok());
    }

    #[test]
    fn documents_follow_the_policy_grammar() {
        let allow = r#""Effect":"Allow","Action":"s3:GetObject","Resource":"*""#;
        assert!(
            validate_identity_document(&format!(
                r#"{{"Version":"2012-10-17","Statement":{{{allow}}}}}"#
            ))
            .is_ok()
        );
        assert!(
            validate_identity_document(&format!(
                r#"{{"Version":"2008-10-17","Id":"i","Statement":[{{"Sid":"s",{allow}}}]}}"#
            ))
            .is_ok()
        );
        for (bad, message) in [
            (
                format!(r#"{{"Version":"default","Statement":{{{allow}}}}}"#),
                "The policy failed legacy parsing",
            ),
            (
                format!(r#"{{"Statment":{{{allow}}},"Statement":[]}}"#),
                "Syntax errors in policy.",
            ),
            (
                r#"{"Statement":{"Effect":"allow","Action":"s3:*","Resource":"*"}}"#.into(),
                "Syntax errors in policy.",
            ),
            (
                format!(r#"{{"Statement":{{{allow},"Actions":"x"}}}}"#),
                "Syntax errors in policy.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#.into(),
                "Policy statement must contain actions.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*"}}"#.into(),
                "Policy statement must contain resources.",
            ),
            (
                format!(r#"{{"Statement":{{{allow},"Principal":"*"}}}}"#),
                "Policy document should not specify a principal.",
            ),
        ] {
            let e = validate_identity_document(&bad).expect_err(&bad);
            assert_eq!(
                (e.status.as_u16(), e.code, e.message.as_str()),
                (400, "MalformedPolicyDocument", message),
                "{bad}"
            );
        }
        // A trust policy names its principal and has no resources.
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
        assert!(validate_trust_policy(trust).is_ok());
    }

    #[test]
    fn names_follow_the_iam_pattern() {
        assert!(validate_name("roleName", "orders-prod_1+=,.@", 64).is_ok());
        assert!(validate_name("roleName", &"a".repeat(64), 64).is_ok());
        assert!(validate_name("roleName", &"a".repeat(65), 64).is_err());
        assert!(validate_name("roleName", "", 64).is_err());
        let e = validate_name("roleName", "a/b", 64).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "ValidationError"));
    }

    #[test]
    fn paths_start_and_end_with_a_slash() {
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/teams/payments/").is_ok());
        assert!(validate_path("teams/").is_err());
        assert!(validate_path("/teams").is_err());
        assert!(validate_path("/a b/").is_err());
    }
}
