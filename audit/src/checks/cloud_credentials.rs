//! SA008 cloud-credentials: static cloud credentials stored in Secrets, ConfigMaps or
//! literal container env values, where workload identity should be used instead.
//!
//! Detectors (AUDIT-NOTES SA-011): AWS access key ids by value pattern; AWS secret keys by
//! key name plus a 40-character value, or inside a credentials file; GCP service-account
//! key JSON by parsing it (so any whitespace or key order matches, unlike Trivy's regex)
//! and requiring `type: service_account` and a `private_key`; Azure client secrets by key
//! name (`AZURE_CLIENT_SECRET`, `clientSecret`, `aadClientSecret`, also inside azure.json)
//! and by the Entra secret value pattern. Findings name the key, never the value.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::Check;
use crate::context::Context;
use crate::model::{Finding, ObjectRef, Severity};
use crate::positions::child;
use crate::snapshot::{Snapshot, name_of, ns_of};
use crate::workload::workloads;

/// The check.
pub static CHECK: Check = Check {
    id: "SA008",
    name: "cloud-credentials",
    severity: Severity::High,
    summary: "No Secret, ConfigMap or container env value holds static cloud credentials (AWS access keys, GCP \
service-account key JSON, Azure client secrets).",
    why: "Static keys do not expire, are copied into every pod and backup that touches them, and are readable by \
anyone with `get secrets` in the namespace. Workload identity (IRSA or EKS Pod Identity, GKE Workload Identity, \
AKS Workload Identity) gives pods short-lived cloud credentials bound to their ServiceAccount instead, with nothing \
to leak. Secret material (an AWS secret key, a GCP private key, an Azure client secret) is critical; an AWS key id \
alone is high.",
    example: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: aws-creds\n  namespace: shop\nstringData:\n  AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLE\n  AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    fix: "Move the workload to workload identity with wid, then delete the Secret and revoke the key:\n\n  [[workload]]\n  cluster = \"eks-prod\"\n  namespace = \"shop\"\n  service_account = \"orders\"\n  aws.role = \"orders-prod\"\n\n  wid apply identities/\n  kubectl delete secret NAME -n NAMESPACE\n",
    guide: "Use workload identity federation instead of storing cloud credentials as Secrets.",
    others: "No established Kubernetes scanner reads Secret objects for cloud keys. Trivy's `gcp-service-account` secret rule matches the literal text `\"type\": \"service_account\"` with exactly one space, so reformatted key files slip through; wid parses the JSON instead. kubescape C-0012 and C-0259 and Polaris look at ConfigMaps and env values by key name. wid names the key that holds a credential, never the value.",
    references: &[
        (
            "gitleaks rules (GCP, Azure)",
            "https://github.com/gitleaks/gitleaks",
        ),
        (
            "Trivy secret rules",
            "https://github.com/aquasecurity/trivy",
        ),
        (
            "kubescape regolibrary (C-0012, C-0259)",
            "https://github.com/kubescape/regolibrary",
        ),
    ],
    example_context: "",
    run,
};

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CredentialKind {
    /// An AWS access key id (`AKIA…`, `ASIA…`, …).
    AwsAccessKeyId,
    /// An AWS secret access key.
    AwsSecretAccessKey,
    /// A GCP service-account key file.
    GcpServiceAccountKey,
    /// An Azure (Entra) client secret.
    AzureClientSecret,
}

impl CredentialKind {
    /// Human name.
    pub fn label(self) -> &'static str {
        match self {
            CredentialKind::AwsAccessKeyId => "AWS access key id",
            CredentialKind::AwsSecretAccessKey => "AWS secret access key",
            CredentialKind::GcpServiceAccountKey => "GCP service-account key",
            CredentialKind::AzureClientSecret => "Azure client secret",
        }
    }

    fn severity(self) -> Severity {
        match self {
            CredentialKind::AwsAccessKeyId => Severity::High,
            _ => Severity::Critical,
        }
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("detector patterns are valid regexes")
}

static AWS_KEY_ID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}\b")
});
static AWS_SECRET_KEY_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^aws_?secret_?(?:access_?)?key$"));
static AWS_SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z0-9/+]{40}$"));
static AWS_SECRET_IN_FILE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"(?i)aws_?secret_?access_?key\s*[=:]\s*["']?[A-Za-z0-9/+]{40}\b"#));
static AZURE_KEY_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^(?:azure_client_secret|clientsecret|aadclientsecret)$"));
static AZURE_SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:^|[^A-Za-z0-9_~.-])[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}(?:$|[^A-Za-z0-9_~.-])")
});

/// The credentials in one key/value pair.
pub fn detect(key: &str, value: &str) -> BTreeSet<CredentialKind> {
    let mut found = BTreeSet::new();
    if AWS_KEY_ID.is_match(value) {
        found.insert(CredentialKind::AwsAccessKeyId);
    }
    if (AWS_SECRET_KEY_NAME.is_match(key) && AWS_SECRET_VALUE.is_match(value.trim()))
        || AWS_SECRET_IN_FILE.is_match(value)
    {
        found.insert(CredentialKind::AwsSecretAccessKey);
    }
    if AZURE_KEY_NAME.is_match(key) && !value.trim().is_empty() {
        found.insert(CredentialKind::AzureClientSecret);
    }
    if AZURE_SECRET_VALUE.is_match(value) {
        found.insert(CredentialKind::AzureClientSecret);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(value) {
        let s = |k: &str| map.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        if s("type") == "service_account" && s("private_key").contains("PRIVATE KEY") {
            found.insert(CredentialKind::GcpServiceAccountKey);
        }
        for (k, v) in &map {
            if AZURE_KEY_NAME.is_match(k) && v.as_str().is_some_and(|v| !v.trim().is_empty()) {
                found.insert(CredentialKind::AzureClientSecret);
            }
        }
    }
    found
}

fn finding(resource: ObjectRef, what: &str, hits: &[(String, CredentialKind)]) -> Option<Finding> {
    let worst = hits.iter().map(|(_, k)| k.severity()).max()?;
    let listed: Vec<String> = hits
        .iter()
        .map(|(where_, k)| format!("{} ({where_})", k.label()))
        .collect();
    let fix = match resource.kind.as_str() {
        "Secret" | "ConfigMap" => format!(
            "switch the workloads that read {} {}/{} to workload identity (declare them in a wid plan and wid apply), then delete it and revoke the keys",
            resource.kind.to_ascii_lowercase(),
            resource.namespace.as_deref().unwrap_or(""),
            resource.name
        ),
        _ => format!(
            "remove the literal credentials from {resource}'s env and give it workload identity through wid; revoke the keys"
        ),
    };
    let mut f = Finding::new(
        CHECK.id,
        worst,
        resource.clone(),
        format!("{resource} {what} cloud credentials: {}", listed.join(", ")),
        fix,
    );
    for (where_, k) in hits {
        f = f.detail(where_, k.label());
    }
    Some(f)
}

fn scan<'a>(
    pairs: impl IntoIterator<Item = (String, &'a str, String)>,
) -> Vec<(String, CredentialKind)> {
    let mut hits = Vec::new();
    for (key, value, where_) in pairs {
        for kind in detect(&key, value) {
            hits.push((where_.clone(), kind));
        }
    }
    hits.sort();
    hits.dedup();
    hits
}

/// The data key of the first hit (hits are labelled `key K`).
fn first_key(hits: &[(String, CredentialKind)]) -> Option<&str> {
    hits.iter().find_map(|(w, _)| w.strip_prefix("key "))
}

fn run(snap: &Snapshot, _ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &snap.secrets {
        let decoded: Vec<(String, String)> = s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .chain(
                s.string_data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone())),
            )
            .collect();
        let hits = scan(
            decoded
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str(), format!("key {k}"))),
        );
        let r = ObjectRef::namespaced("Secret", ns_of(&s.metadata), name_of(&s.metadata));
        let in_data = |k: &str| s.data.as_ref().is_some_and(|d| d.contains_key(k));
        out.extend(finding(r, "stores", &hits).map(|f| match first_key(&hits) {
            Some(k) if in_data(k) => f.at(child("data", k)),
            Some(k) => f.at(child("stringData", k)),
            None => f,
        }));
    }
    for c in &snap.config_maps {
        let hits = scan(
            c.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str(), format!("key {k}"))),
        );
        let r = ObjectRef::namespaced("ConfigMap", ns_of(&c.metadata), name_of(&c.metadata));
        out.extend(finding(r, "stores", &hits).map(|f| match first_key(&hits) {
            Some(k) => f.at(child("data", k)),
            None => f,
        }));
    }
    for w in workloads(snap) {
        let containers = w
            .spec
            .containers
            .iter()
            .chain(w.spec.init_containers.iter().flatten());
        let pairs = containers.flat_map(|c| {
            c.env.iter().flatten().filter_map(move |e| {
                e.value.as_deref().map(|v| {
                    (
                        e.name.clone(),
                        v,
                        format!("container {} env {}", c.name, e.name),
                    )
                })
            })
        });
        let hits = scan(pairs);
        out.extend(finding(w.object_ref(), "sets in literal env values", &hits));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcp_key_matches_minified_and_pretty_but_not_without_private_key() {
        let min = r#"{"type":"service_account","project_id":"p","private_key":"-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----\n"}"#;
        let pretty = "{\n  \"project_id\" : \"p\",\n  \"type\"  :\n    \"service_account\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\"\n}";
        let no_key =
            r#"{"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com"}"#;
        assert!(detect("key.json", min).contains(&CredentialKind::GcpServiceAccountKey));
        assert!(detect("key.json", pretty).contains(&CredentialKind::GcpServiceAccountKey));
        assert!(detect("key.json", no_key).is_empty());
    }

    #[test]
    fn aws_pair_and_credentials_file() {
        let id = detect("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            id.into_iter().collect::<Vec<_>>(),
            vec![CredentialKind::AwsAccessKeyId]
        );
        let secret = detect(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert!(secret.contains(&CredentialKind::AwsSecretAccessKey));
        let file = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
        assert_eq!(detect("credentials", file).len(), 2);
        // A 40-character value under an unrelated key is not an AWS secret.
        assert!(detect("checksum", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_empty());
    }

    #[test]
    fn azure_by_key_name_by_value_and_in_azure_json() {
        assert!(!detect("AZURE_CLIENT_SECRET", "anything").is_empty());
        assert!(!detect("password", "abc8Q~abcdefghijklmnopqrstuvwxyz0123456").is_empty());
        assert!(
            !detect(
                "azure.json",
                r#"{"aadClientId": "x", "aadClientSecret": "s3cr3t"}"#
            )
            .is_empty()
        );
        assert!(
            detect(
                "azure.json",
                r#"{"aadClientId": "x", "aadClientSecret": ""}"#
            )
            .is_empty()
        );
    }
}
