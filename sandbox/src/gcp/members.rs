//! What IAM checks in a binding before it accepts a policy: the role name's shape and
//! where a custom role may be used, each member's syntax, and that the service accounts
//! and GKE workload pools that new members name exist.

use serde_json::json;

use super::error::GcpError;
use super::model::GcpState;

/// The answer to a member that is not `type:value`.
const MEMBER_FORM: &str = "Policy members must be of the form \"<type>:<value>\".";

/// What a policy is attached to, which decides the roles it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource<'a> {
    /// A project's policy (Resource Manager).
    Project(&'a str),
    /// A service account's policy, in this project.
    ServiceAccount(&'a str),
}

impl Resource<'_> {
    fn project(&self) -> &str {
        match self {
            Resource::Project(p) | Resource::ServiceAccount(p) => p,
        }
    }
}

fn role_not_supported(role: &str) -> GcpError {
    GcpError::invalid(format!("Role {role} is not supported for this resource."))
}

fn is_role_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Checks a binding's role: `roles/…` (on a service account only the basic roles and
/// `roles/iam.*`, the roles that can be granted on one), `projects/P/roles/…` of the
/// policy's own project, or `organizations/O/roles/…`.
pub(crate) fn check_role(role: &str, resource: Resource<'_>) -> Result<(), GcpError> {
    let parts: Vec<&str> = role.split('/').collect();
    match parts.as_slice() {
        ["roles", id] if is_role_id(id) => match resource {
            Resource::Project(_) => Ok(()),
            Resource::ServiceAccount(_) => {
                if matches!(*id, "owner" | "editor" | "viewer") || id.starts_with("iam.") {
                    Ok(())
                } else {
                    Err(role_not_supported(role))
                }
            }
        },
        ["projects", project, "roles", id] if is_role_id(id) && (3..=64).contains(&id.len()) => {
            if *project == resource.project() {
                Ok(())
            } else {
                Err(GcpError::invalid(format!(
                    "Role ({role}) does not exist in the resource's hierarchy."
                )))
            }
        }
        ["organizations", org, "roles", id]
            if !org.is_empty()
                && org.chars().all(|c| c.is_ascii_digit())
                && is_role_id(id)
                && (3..=64).contains(&id.len()) =>
        {
            Ok(())
        }
        _ => Err(role_not_supported(role)),
    }
}

fn is_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn pool_missing(pool: &str) -> GcpError {
    GcpError::invalid(format!(
        "Identity Pool does not exist ({pool}). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API."
    ))
}

/// `PROJECT.svc.id.goog[NAMESPACE/KSA]`: the pool, if `value` has that form.
fn gke_pool_member(value: &str) -> Option<Result<&str, ()>> {
    let open = value.find(".svc.id.goog[")?;
    let pool = &value[..open + ".svc.id.goog".len()];
    let inner = value[open + ".svc.id.goog[".len()..].strip_suffix(']');
    let valid = inner
        .and_then(|i| i.split_once('/'))
        .is_some_and(|(ns, ksa)| !ns.is_empty() && !ksa.is_empty() && !ksa.contains('/'));
    Some(if valid && open > 0 { Ok(pool) } else { Err(()) })
}

/// Checks a `principal://` or `principalSet://` identifier (after the `principal:`
/// prefix): its host, and for a GKE pool (`….svc.id.goog`) that the pool exists in the
/// project whose number is in the path.
fn check_principal(state: &GcpState, set: bool, rest: &str, is_new: bool) -> Result<(), GcpError> {
    let path = rest
        .strip_prefix("//iam.googleapis.com/")
        .ok_or_else(|| GcpError::invalid(MEMBER_FORM))?;
    let parts: Vec<&str> = path.splitn(7, '/').collect();
    match parts.as_slice() {
        [
            "projects",
            number,
            "locations",
            "global",
            "workloadIdentityPools",
            pool,
            tail,
        ] => {
            let subject_ok = if set {
                *tail == "*"
                    || ["namespace/", "kubernetes.cluster/", "attribute.", "group/"]
                        .iter()
                        .any(|p| tail.starts_with(p) && tail.len() > p.len())
            } else {
                ["subject/", "kubernetes.serviceaccount.uid/"]
                    .iter()
                    .any(|p| tail.starts_with(p) && tail.len() > p.len())
            };
            if !subject_ok || number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                return Err(GcpError::invalid(MEMBER_FORM));
            }
            if is_new && pool.ends_with(".svc.id.goog") {
                let project = pool.trim_end_matches(".svc.id.goog");
                let number_matches = state
                    .projects
                    .get(project)
                    .is_some_and(|p| p.number == *number);
                if !number_matches || !state.pool_exists(pool) {
                    return Err(pool_missing(pool));
                }
            }
            Ok(())
        }
        ["locations", "global", "workforcePools", pool, ..] if !pool.is_empty() => Ok(()),
        _ => Err(GcpError::invalid(MEMBER_FORM)),
    }
}

/// Checks one member of a binding on `resource`. Members already in the stored policy
/// (`is_new == false`) are checked for syntax only; new ones must also name service
/// accounts and GKE workload pools that exist, as IAM checks when a member is added.
pub(crate) fn check_member(
    state: &GcpState,
    member: &str,
    role: &str,
    resource: Resource<'_>,
    is_new: bool,
) -> Result<(), GcpError> {
    let Some((kind, value)) = member.split_once(':') else {
        return match member {
            "allUsers" | "allAuthenticatedUsers" => match resource {
                // Resource Manager: "Project does not support allUsers and
                // allAuthenticatedUsers as members in a Binding of a Policy."
                Resource::Project(_) => {
                    Err(GcpError::invalid("Request contains an invalid argument."))
                }
                Resource::ServiceAccount(_) => Ok(()),
            },
            _ => Err(GcpError::invalid(MEMBER_FORM)),
        };
    };
    match kind {
        "user" | "group" => {
            if !is_email(value) {
                return Err(GcpError::invalid(MEMBER_FORM));
            }
            if is_new
                && kind == "user"
                && role == "roles/owner"
                && matches!(resource, Resource::Project(_))
            {
                // Owners of a project must accept an invitation first.
                return Err(
                    GcpError::invalid("Request contains an invalid argument.").with_detail(json!({
                        "@type": "type.googleapis.com/google.cloudresourcemanager.v1.ProjectIamPolicyError",
                        "type": "SOLO_MUST_INVITE_OWNERS",
                        "member": member,
                        "role": role,
                    })),
                );
            }
            Ok(())
        }
        "serviceAccount" => {
            if let Some(pool) = gke_pool_member(value) {
                let pool = pool.map_err(|()| GcpError::invalid(MEMBER_FORM))?;
                if is_new && !state.pool_exists(pool) {
                    return Err(pool_missing(pool));
                }
                return Ok(());
            }
            if !is_email(value) {
                return Err(GcpError::invalid(MEMBER_FORM));
            }
            // Service agents (`gcp-sa-…`) and default accounts on other domains are
            // Google's; the sandbox knows only the accounts created in it.
            let sandbox_account = value
                .split_once('@')
                .and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"))
                .is_some_and(|project| !project.starts_with("gcp-sa-"));
            if is_new && sandbox_account && state.account(value).is_none() {
                return Err(GcpError::invalid(format!(
                    "Service account {value} does not exist."
                )));
            }
            Ok(())
        }
        "domain" => {
            if value.contains('.') && !value.contains('@') {
                Ok(())
            } else {
                Err(GcpError::invalid(MEMBER_FORM))
            }
        }
        "principal" => check_principal(state, false, value, is_new),
        "principalSet" => check_principal(state, true, value, is_new),
        "deleted" => {
            let ok = value
                .split_once(':')
                .filter(|(k, _)| matches!(*k, "user" | "group" | "serviceAccount"))
                .and_then(|(_, v)| v.split_once("?uid="))
                .is_some_and(|(email, uid)| is_email(email) && !uid.is_empty());
            if ok {
                Ok(())
            } else {
                Err(GcpError::invalid(MEMBER_FORM))
            }
        }
        _ => Err(GcpError::invalid(MEMBER_FORM)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcp::model::{GkeCluster, Project, ServiceAccount};

    fn state() -> GcpState {
        let mut state = GcpState::default();
        let mut project = Project {
            number: "123456789012".into(),
            ..Project::default()
        };
        project.service_accounts.insert(
            "orders".into(),
            ServiceAccount {
                email: "orders@acme.iam.gserviceaccount.com".into(),
                unique_id: "100000000000000000001".into(),
                ..ServiceAccount::default()
            },
        );
        project
            .clusters
            .entry("us-central1".into())
            .or_default()
            .insert(
                "prod".into(),
                GkeCluster {
                    name: "prod".into(),
                    location: "us-central1".into(),
                    workload_pool: Some("acme.svc.id.goog".into()),
                    node_pools: Vec::new(),
                    status: "RUNNING".into(),
                    endpoint: "34.0.0.1".into(),
                    version: "1.33".into(),
                    create_time: String::new(),
                    id: String::new(),
                },
            );
        state.projects.insert("acme".into(), project);
        state.projects.insert(
            "other".into(),
            Project {
                number: "222233334444".into(),
                ..Project::default()
            },
        );
        state
    }

    #[test]
    fn role_shapes() {
        let p = Resource::Project("acme");
        let sa = Resource::ServiceAccount("acme");
        assert!(check_role("roles/storage.objectViewer", p).is_ok());
        assert!(check_role("projects/acme/roles/custom_1", p).is_ok());
        assert!(check_role("organizations/123/roles/custom", p).is_ok());
        assert!(check_role("roles/iam.workloadIdentityUser", sa).is_ok());
        assert_eq!(
            check_role("roles/storage.admin", sa).unwrap_err().message,
            "Role roles/storage.admin is not supported for this resource."
        );
        assert_eq!(
            check_role("storage.admin", p).unwrap_err().message,
            "Role storage.admin is not supported for this resource."
        );
        assert_eq!(
            check_role("projects/other/roles/custom", p)
                .unwrap_err()
                .message,
            "Role (projects/other/roles/custom) does not exist in the resource's hierarchy."
        );
    }

    #[test]
    fn members_are_checked_for_syntax_and_existence() {
        let s = state();
        let p = Resource::Project("acme");
        let ok = |m: &str| check_member(&s, m, "roles/viewer", p, true);
        assert!(ok("user:a@example.com").is_ok());
        assert!(ok("group:g@example.com").is_ok());
        assert!(ok("domain:example.com").is_ok());
        assert!(ok("serviceAccount:orders@acme.iam.gserviceaccount.com").is_ok());
        assert!(ok("serviceAccount:service-1@gcp-sa-gkehub.iam.gserviceaccount.com").is_ok());
        assert!(ok("serviceAccount:acme.svc.id.goog[prod/api]").is_ok());
        assert!(ok("principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme.svc.id.goog/subject/ns/prod/sa/api").is_ok());
        assert!(ok("principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme.svc.id.goog/namespace/prod").is_ok());
        assert!(ok("deleted:serviceAccount:x@acme.iam.gserviceaccount.com?uid=123").is_ok());
        for bad in [
            "alice@example.com",
            "user:alice",
            "robot:x",
            "serviceAccount:acme.svc.id.goog[prod]",
        ] {
            assert_eq!(ok(bad).unwrap_err().message, MEMBER_FORM, "{bad}");
        }
        assert_eq!(
            ok("serviceAccount:nope@acme.iam.gserviceaccount.com")
                .unwrap_err()
                .message,
            "Service account nope@acme.iam.gserviceaccount.com does not exist."
        );
        let pool = "Identity Pool does not exist (other.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API.";
        assert_eq!(
            ok("serviceAccount:other.svc.id.goog[a/b]")
                .unwrap_err()
                .message,
            pool
        );
        assert_eq!(
            ok("principal://iam.googleapis.com/projects/222233334444/locations/global/workloadIdentityPools/other.svc.id.goog/subject/ns/a/sa/b").unwrap_err().message,
            pool
        );
        // The pool exists, but not under this project number.
        assert!(ok("principal://iam.googleapis.com/projects/999/locations/global/workloadIdentityPools/acme.svc.id.goog/subject/ns/a/sa/b").is_err());
        // Members already in the policy are not looked up again.
        assert!(
            check_member(
                &s,
                "serviceAccount:gone@acme.iam.gserviceaccount.com",
                "roles/viewer",
                p,
                false
            )
            .is_ok()
        );
        assert!(ok("allUsers").is_err());
        assert!(
            check_member(
                &s,
                "allUsers",
                "roles/iam.serviceAccountUser",
                Resource::ServiceAccount("acme"),
                true
            )
            .is_ok()
        );
        let owner = check_member(&s, "user:a@example.com", "roles/owner", p, true).unwrap_err();
        assert_eq!(owner.details[0]["type"], "SOLO_MUST_INVITE_OWNERS");
    }
}
