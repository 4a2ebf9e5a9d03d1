//! The `gcp` block of a workload (its serde and JSON Schema types) and the checks that
//! need nothing but the block itself: names, roles, modes.

use schemars::JsonSchema;
use serde::Deserialize;
use wid_core::FieldIssue;

use crate::names::{expand_service_account, project_id_issue, role_issue};

/// The longest display name Google accepts (UTF-8 bytes).
pub const DISPLAY_NAME_LIMIT: usize = 100;

/// The GCP side of a workload on a GKE cluster.
///
/// Impersonate mode (the default): the KSA acts as a Google service account through a
/// `roles/iam.workloadIdentityUser` binding and the `iam.gke.io/gcp-service-account`
/// annotation. Direct mode (`direct = true`): no service account; roles are granted to
/// the KSA's own `principal://` identifier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpBlock {
    /// Impersonate mode: the Google service account, as an account id (6-30 characters,
    /// created in the cluster's project) or a full `ID@PROJECT.iam.gserviceaccount.com`
    /// email (any project).
    #[serde(default)]
    pub service_account: Option<String>,
    /// Impersonate mode: wid creates and owns the service account (default true); false:
    /// it must already exist and wid only adds bindings.
    #[serde(default)]
    pub create: Option<bool>,
    /// Impersonate mode: the service account's display name (at most 100 bytes).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Impersonate mode: the service account's description; wid appends its ownership mark
    /// on a line of its own, within Google's 256-byte limit.
    #[serde(default)]
    pub description: Option<String>,
    /// Direct mode: grant `roles` to the KSA's `principal://` identifier, with no Google
    /// service account and no annotation.
    #[serde(default)]
    pub direct: bool,
    /// Roles to grant: a role name (granted on the cluster's project), or a table with the
    /// role and exactly one resource it is granted on (`project` or `service_account`).
    #[serde(default)]
    pub roles: Vec<RoleGrant>,
    /// Take over an existing service account that wid did not create (it gets wid's mark
    /// with the first apply that changes it); without it such an account is a conflict.
    /// Also, in every mode: bindings the workload asks for that already exist without
    /// wid's record are used as they are (wid records them, and may later remove them,
    /// only once it writes that policy).
    #[serde(default)]
    pub adopt: bool,
}

/// One role and what it is granted on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RoleGrant {
    /// A role name granted on the cluster's project, e.g. `roles/storage.objectViewer`.
    OnClusterProject(String),
    /// A role granted on a named resource.
    On(RoleOn),
}

/// A role granted on one named resource. Exactly one resource key may be set; none means
/// the cluster's project.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleOn {
    /// The role: `roles/NAME`, `projects/PROJECT/roles/NAME` or
    /// `organizations/ORG/roles/NAME`.
    pub role: String,
    /// Grant it on this project (its id).
    #[serde(default)]
    pub project: Option<String>,
    /// Grant it on this service account: an account id in the cluster's project, or a
    /// full email.
    #[serde(default)]
    pub service_account: Option<String>,
}

impl RoleGrant {
    /// The role name.
    pub fn role(&self) -> &str {
        match self {
            Self::OnClusterProject(r) => r,
            Self::On(on) => &on.role,
        }
    }
}

/// What a role is granted on, resolved against the cluster's project. New resource kinds
/// (buckets, secrets, folders) are new variants with their own policy resource name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A project's IAM policy.
    Project(String),
    /// A service account's IAM policy.
    ServiceAccount {
        /// The account's project.
        project: String,
        /// The account's email.
        email: String,
    },
}

impl Target {
    /// The resource name whose IAM policy holds the binding (`projects/P`,
    /// `projects/P/serviceAccounts/EMAIL`).
    pub fn resource(&self) -> String {
        match self {
            Self::Project(p) => format!("projects/{p}"),
            Self::ServiceAccount { project, email } => {
                format!("projects/{project}/serviceAccounts/{email}")
            }
        }
    }
}

/// Resolves a grant's target; `Err` carries the issue (path relative to the grant).
pub fn target(grant: &RoleGrant, cluster_project: &str) -> Result<Target, FieldIssue> {
    let on = match grant {
        RoleGrant::OnClusterProject(_) => return Ok(Target::Project(cluster_project.to_owned())),
        RoleGrant::On(on) => on,
    };
    match (&on.project, &on.service_account) {
        (None, None) => Ok(Target::Project(cluster_project.to_owned())),
        (Some(p), None) => Ok(Target::Project(p.clone())),
        (None, Some(sa)) => expand_service_account(sa, cluster_project)
            .map(|(project, email)| Target::ServiceAccount { project, email })
            .map_err(|e| FieldIssue::new(&["service_account"], e)),
        (Some(_), Some(_)) => Err(FieldIssue::new(
            &[],
            "a role is granted on one resource: set `project` or `service_account`, not both",
        )),
    }
}

/// Checks everything about one block that needs no other block and no network: the
/// mode's keys, names, role shapes, project ids. Returns every issue, in field order.
pub fn validate_block(block: &GcpBlock) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if block.direct {
        for (key, set) in [
            ("service_account", block.service_account.is_some()),
            ("create", block.create.is_some()),
            ("display_name", block.display_name.is_some()),
            ("description", block.description.is_some()),
        ] {
            if set {
                issues.push(
                    FieldIssue::new(&[key], format!("`{key}` does not apply in direct mode"))
                        .help("direct mode grants roles to the KSA itself, with no Google service account; remove the key or `direct = true`"),
                );
            }
        }
        if block.roles.is_empty() {
            issues.push(
                FieldIssue::new(&["direct"], "direct mode without roles grants nothing")
                    .help("list the roles the KSA needs in `gcp.roles`"),
            );
        }
    } else {
        match &block.service_account {
            None => issues.push(
                FieldIssue::new(&[], "the gcp block needs `service_account` (or `direct = true`)")
                    .help("name the Google service account the KSA acts as, e.g. service_account = \"orders\", or grant roles to the KSA itself with direct = true"),
            ),
            Some(sa) => {
                if let Err(why) = expand_service_account(sa, "placeholder-project") {
                    issues.push(FieldIssue::new(&["service_account"], why));
                }
            }
        }
        if block.create == Some(false) {
            for (key, set) in [
                ("display_name", block.display_name.is_some()),
                ("description", block.description.is_some()),
            ] {
                if set {
                    issues.push(
                        FieldIssue::new(&[key], format!("`{key}` needs `create = true`"))
                            .help("with create = false wid only adds bindings to an existing service account and never changes it"),
                    );
                }
            }
        }
        if let Some(name) = &block.display_name
            && name.len() > DISPLAY_NAME_LIMIT
        {
            issues.push(FieldIssue::new(
                &["display_name"],
                format!(
                    "display name is {} bytes; Google allows {DISPLAY_NAME_LIMIT}",
                    name.len()
                ),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, grant) in block.roles.iter().enumerate() {
        let index = i.to_string();
        if let Some(why) = role_issue(grant.role()) {
            let path: &[&str] = match grant {
                RoleGrant::OnClusterProject(_) => &["roles", &index],
                RoleGrant::On(_) => &["roles", &index, "role"],
            };
            issues.push(FieldIssue::new(path, why));
        }
        if let RoleGrant::On(on) = grant
            && let Some(p) = &on.project
            && let Some(why) = project_id_issue(p)
        {
            issues.push(FieldIssue::new(&["roles", &index, "project"], why));
        }
        match target(grant, "placeholder-project") {
            Err(mut issue) => {
                let mut path = vec!["roles".to_owned(), index.clone()];
                path.append(&mut issue.path);
                issue.path = path;
                issues.push(issue);
            }
            Ok(t) => {
                if !seen.insert((grant.role().to_owned(), t)) {
                    issues.push(FieldIssue::new(
                        &["roles", &index],
                        format!("{} is listed twice on the same resource", grant.role()),
                    ));
                }
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> GcpBlock {
        let v: serde_json::Value = toml_to_json(toml_text);
        serde_json::from_value(v).expect("valid block")
    }

    /// A tiny TOML-ish helper: the tests write blocks as JSON instead.
    fn toml_to_json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).expect("test block is JSON")
    }

    fn paths(issues: &[FieldIssue]) -> Vec<String> {
        issues.iter().map(|i| i.path.join(".")).collect()
    }

    #[test]
    fn an_impersonating_block_with_every_kind_of_role_is_valid() {
        let b = parse(
            r#"{"service_account": "orders-app", "display_name": "Orders",
                "roles": ["roles/pubsub.subscriber",
                          {"role": "roles/storage.objectViewer", "project": "acme-data"},
                          {"role": "roles/iam.serviceAccountTokenCreator", "service_account": "signer@acme-shared.iam.gserviceaccount.com"}]}"#,
        );
        assert_eq!(validate_block(&b), Vec::new());
        assert_eq!(
            target(&b.roles[2], "acme-prod").unwrap().resource(),
            "projects/acme-shared/serviceAccounts/signer@acme-shared.iam.gserviceaccount.com"
        );
        assert_eq!(
            target(&b.roles[0], "acme-prod").unwrap().resource(),
            "projects/acme-prod"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let v = serde_json::json!({"service_account": "orders-app", "rolez": []});
        assert!(serde_json::from_value::<GcpBlock>(v).is_err());
        let v = serde_json::json!({"direct": true, "roles": [{"role": "roles/x", "bucket": "b"}]});
        assert!(serde_json::from_value::<GcpBlock>(v).is_err());
    }

    #[test]
    fn bad_names_and_roles_are_located() {
        let b = parse(
            r#"{"service_account": "ord", "roles": ["storage.admin", {"role": "roles/x", "project": "P"},
                {"role": "roles/y", "project": "acme-data", "service_account": "signer-1"}, "roles/z", "roles/z"]}"#,
        );
        assert_eq!(
            paths(&validate_block(&b)),
            [
                "service_account",
                "roles.0",
                "roles.1.project",
                "roles.2",
                "roles.4"
            ]
        );
    }

    #[test]
    fn modes_take_their_own_keys() {
        let b = parse(r#"{"direct": true, "service_account": "orders-app"}"#);
        assert_eq!(paths(&validate_block(&b)), ["service_account", "direct"]);
        // Adopting existing bindings applies in every mode.
        let b = parse(r#"{"direct": true, "roles": ["roles/x"], "adopt": true}"#);
        assert!(validate_block(&b).is_empty());
        let b = parse(r#"{"service_account": "orders-app", "create": false, "adopt": true}"#);
        assert!(validate_block(&b).is_empty());
        let b = parse(r#"{"service_account": "orders-app", "create": false, "description": "x"}"#);
        assert_eq!(paths(&validate_block(&b)), ["description"]);
        let b = parse(r#"{"roles": ["roles/x"]}"#);
        assert_eq!(paths(&validate_block(&b)), [""]);
    }
}
