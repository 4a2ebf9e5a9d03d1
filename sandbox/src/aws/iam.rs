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
            let pad = "x".repeat(n - r#"{"Statement":[],"S":""}"#.len());
            format!("{{\"Statement\": [],\n  \"S\": \"{pad}\"}}")
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
