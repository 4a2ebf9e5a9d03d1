//! The exact strings GKE Workload Identity is made of: service account emails, IAM
//! members, the workload pool, `principal://` identifiers, the KSA annotation, and the
//! name rules the plan is checked against before any call.
//!
//! Sources: <https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity>,
//! <https://cloud.google.com/iam/docs/principal-identifiers>,
//! <https://cloud.google.com/iam/docs/service-accounts-create>.

use std::sync::LazyLock;

use regex::Regex;

/// The KSA annotation that names the Google service account a KSA impersonates.
pub const KSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// The role that lets a KSA impersonate a Google service account.
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// The domain of user-managed service account emails.
pub const SA_DOMAIN: &str = "iam.gserviceaccount.com";

static ACCOUNT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").expect("static regex is valid"));
static PROJECT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$").expect("static regex is valid"));
static PREDEFINED_ROLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^roles/[A-Za-z0-9_.]{1,128}$").expect("static regex is valid"));
static CUSTOM_ROLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]|organizations/[0-9]{1,20})/roles/[A-Za-z0-9_.]{3,64}$")
        .expect("static regex is valid")
});

/// Why a service account id is invalid (6-30 characters, `[a-z]([-a-z0-9]*[a-z0-9])`), or
/// `None`.
pub fn account_id_issue(id: &str) -> Option<String> {
    if !(6..=30).contains(&id.len()) {
        return Some(format!(
            "service account id {id:?} is {} characters; Google allows 6 to 30",
            id.len()
        ));
    }
    if !ACCOUNT_ID.is_match(id) {
        return Some(format!(
            "service account id {id:?} must start with a lowercase letter and contain only lowercase letters, digits and hyphens, ending with a letter or digit"
        ));
    }
    None
}

/// Why a project id is invalid (6-30 characters: lowercase letters, digits, hyphens,
/// starting with a letter, not ending with a hyphen), or `None`.
pub fn project_id_issue(id: &str) -> Option<String> {
    (!PROJECT_ID.is_match(id)).then(|| {
        format!("{id:?} is not a project id: 6-30 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen")
    })
}

/// Why a role name is invalid, or `None`: `roles/NAME` (predefined),
/// `projects/PROJECT/roles/NAME` or `organizations/ORG/roles/NAME` (custom).
pub fn role_issue(role: &str) -> Option<String> {
    if PREDEFINED_ROLE.is_match(role) || CUSTOM_ROLE.is_match(role) {
        return None;
    }
    Some(format!(
        "{role:?} is not a role name: use roles/NAME, projects/PROJECT/roles/NAME or organizations/ORG/roles/NAME"
    ))
}

/// A service account as the plan names it: an account id (in `default_project`) or a
/// full `ID@PROJECT.iam.gserviceaccount.com` email. Returns the project and the email.
pub fn expand_service_account(
    name: &str,
    default_project: &str,
) -> Result<(String, String), String> {
    match name.split_once('@') {
        None => {
            if let Some(why) = account_id_issue(name) {
                return Err(why);
            }
            Ok((
                default_project.to_owned(),
                format!("{name}@{default_project}.{SA_DOMAIN}"),
            ))
        }
        Some((id, domain)) => {
            let Some(project) = domain.strip_suffix(&format!(".{SA_DOMAIN}")) else {
                return Err(format!(
                    "{name:?} is not a user-managed service account email (ID@PROJECT.{SA_DOMAIN})"
                ));
            };
            if let Some(why) = account_id_issue(id) {
                return Err(why);
            }
            if let Some(why) = project_id_issue(project) {
                return Err(why);
            }
            Ok((project.to_owned(), name.to_owned()))
        }
    }
}

/// The account id of an email (`orders` of `orders@p.iam.gserviceaccount.com`).
pub fn account_id_of(email: &str) -> &str {
    email.split('@').next().unwrap_or(email)
}

/// `PROJECT_ID.svc.id.goog`: the workload identity pool of every GKE cluster in a project.
pub fn workload_pool(project: &str) -> String {
    format!("{project}.svc.id.goog")
}

/// `serviceAccount:EMAIL`: a Google service account as an IAM member.
pub fn sa_member(email: &str) -> String {
    format!("serviceAccount:{email}")
}

/// `serviceAccount:PROJECT_ID.svc.id.goog[NAMESPACE/KSA]`: a KSA as the member of the
/// `roles/iam.workloadIdentityUser` binding on the service account it impersonates.
pub fn ksa_member(project: &str, namespace: &str, ksa: &str) -> String {
    format!(
        "serviceAccount:{}[{namespace}/{ksa}]",
        workload_pool(project)
    )
}

/// The `principal://` identifier of one KSA (Workload Identity Federation for GKE, no
/// service account): the project NUMBER in the `projects/` segment, the project ID in the
/// pool name.
pub fn ksa_principal(project: &str, project_number: &str, namespace: &str, ksa: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{}/subject/ns/{namespace}/sa/{ksa}",
        workload_pool(project)
    )
}

/// The GKE cluster's OIDC issuer.
pub fn gke_issuer(project: &str, location: &str, cluster: &str) -> String {
    format!(
        "https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{cluster}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_the_documented_strings() {
        assert_eq!(workload_pool("acme-prod"), "acme-prod.svc.id.goog");
        assert_eq!(
            ksa_member("acme-prod", "production", "orders"),
            "serviceAccount:acme-prod.svc.id.goog[production/orders]"
        );
        assert_eq!(
            sa_member("orders@acme-prod.iam.gserviceaccount.com"),
            "serviceAccount:orders@acme-prod.iam.gserviceaccount.com"
        );
        assert_eq!(
            ksa_principal("acme-prod", "123456789012", "production", "reports"),
            "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme-prod.svc.id.goog/subject/ns/production/sa/reports"
        );
        assert_eq!(KSA_ANNOTATION, "iam.gke.io/gcp-service-account");
        assert_eq!(WORKLOAD_IDENTITY_USER, "roles/iam.workloadIdentityUser");
        assert_eq!(
            gke_issuer("acme-prod", "us-central1", "prod"),
            "https://container.googleapis.com/v1/projects/acme-prod/locations/us-central1/clusters/prod"
        );
    }

    #[test]
    fn account_ids_follow_googles_rules() {
        assert!(account_id_issue("orders").is_none());
        assert!(account_id_issue("a-23456").is_none());
        assert!(account_id_issue(&"a".repeat(30)).is_none());
        assert!(account_id_issue("short").is_some());
        assert!(account_id_issue(&"a".repeat(31)).is_some());
        assert!(account_id_issue("1orders").is_some());
        assert!(account_id_issue("orders-").is_some());
        assert!(account_id_issue("Orders").is_some());
        assert!(account_id_issue("ord_ers").is_some());
    }

    #[test]
    fn roles_and_projects() {
        assert!(role_issue("roles/storage.objectViewer").is_none());
        assert!(role_issue("projects/acme-prod/roles/orderReader").is_none());
        assert!(role_issue("organizations/123456/roles/x_y.z").is_none());
        assert!(role_issue("storage.objectViewer").is_some());
        assert!(role_issue("roles/").is_some());
        assert!(role_issue("projects/x/roles/y").is_some());
        assert!(project_id_issue("acme-prod").is_none());
        assert!(project_id_issue("acme-").is_some());
        assert!(project_id_issue("Acme-prod").is_some());
    }

    #[test]
    fn service_accounts_expand_in_the_clusters_project() {
        assert_eq!(
            expand_service_account("orders", "acme-prod").unwrap(),
            (
                "acme-prod".into(),
                "orders@acme-prod.iam.gserviceaccount.com".into()
            )
        );
        assert_eq!(
            expand_service_account("signer@acme-shared.iam.gserviceaccount.com", "acme-prod")
                .unwrap(),
            (
                "acme-shared".into(),
                "signer@acme-shared.iam.gserviceaccount.com".into()
            )
        );
        assert!(expand_service_account("x@gmail.com", "acme-prod").is_err());
        assert!(expand_service_account("a@acme-prod.iam.gserviceaccount.com", "p").is_err());
        assert_eq!(
            account_id_of("orders@acme-prod.iam.gserviceaccount.com"),
            "orders"
        );
    }
}
