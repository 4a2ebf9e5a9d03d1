//! Resource ids of the objects this provider manages, and the attribute keys of IAM
//! policy resources.

use wid_core::ResourceId;

/// Kind of a Google service account resource: `gcp/service-account/PROJECT/ACCOUNT_ID`.
pub const KIND_SA: &str = "service-account";
/// Kind of an IAM policy resource (wid's bindings on one resource's policy):
/// `gcp/iam-policy/` and the resource name (`projects/P`,
/// `projects/P/serviceAccounts/EMAIL`).
pub const KIND_POLICY: &str = "iam-policy";

/// `gcp/service-account/PROJECT/ACCOUNT_ID`.
pub fn sa_id(project: &str, account_id: &str) -> ResourceId {
    ResourceId::new("gcp", KIND_SA, [project, account_id])
}

/// The email of a service account resource.
pub fn sa_email(id: &ResourceId) -> String {
    format!("{}@{}.{}", id.part(1), id.part(0), crate::names::SA_DOMAIN)
}

/// `gcp/iam-policy/RESOURCE_NAME`, one key part per segment of the resource name.
pub fn policy_id(resource: &str) -> ResourceId {
    ResourceId::new("gcp", KIND_POLICY, resource.split('/'))
}

/// The resource name of a policy id.
pub fn policy_resource(id: &ResourceId) -> String {
    id.key().join("/")
}

/// What a policy resource is: a project's or a service account's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOf {
    /// `projects/P`.
    Project(String),
    /// `projects/P/serviceAccounts/EMAIL`.
    ServiceAccount {
        /// The account's project.
        project: String,
        /// The account's email.
        email: String,
    },
}

/// Which resource a policy id's policy belongs to; `None` for a kind wid does not know.
pub fn policy_of(id: &ResourceId) -> Option<PolicyOf> {
    match id.key()[..] {
        ["projects", project] => Some(PolicyOf::Project(project.to_owned())),
        ["projects", project, "serviceAccounts", email] => Some(PolicyOf::ServiceAccount {
            project: project.to_owned(),
            email: email.to_owned(),
        }),
        _ => None,
    }
}

/// The attribute key of one binding in a policy resource: `ROLE MEMBER`. Its value is the
/// resource the role is granted on, so the plan shows role, member and resource on one
/// line.
pub fn line_key(role: &str, member: &str) -> String {
    format!("{role} {member}")
}

/// The role and member of a line key.
pub fn parse_line(key: &str) -> Option<(&str, &str)> {
    key.split_once(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = policy_id(
            "projects/acme-prod/serviceAccounts/orders@acme-prod.iam.gserviceaccount.com",
        );
        assert_eq!(
            id.to_string(),
            "gcp/iam-policy/projects/acme-prod/serviceAccounts/orders@acme-prod.iam.gserviceaccount.com"
        );
        assert_eq!(ResourceId::try_from(id.to_string()).unwrap(), id);
        assert_eq!(
            policy_of(&id),
            Some(PolicyOf::ServiceAccount {
                project: "acme-prod".into(),
                email: "orders@acme-prod.iam.gserviceaccount.com".into()
            })
        );
        assert_eq!(
            policy_of(&policy_id("projects/p1")),
            Some(PolicyOf::Project("p1".into()))
        );
        assert_eq!(
            sa_email(&sa_id("acme-prod", "orders")),
            "orders@acme-prod.iam.gserviceaccount.com"
        );
        assert_eq!(
            parse_line(&line_key("roles/x", "principal://a/b c")),
            Some(("roles/x", "principal://a/b c"))
        );
    }
}
