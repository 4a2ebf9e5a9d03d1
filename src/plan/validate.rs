//! Plan validation: every rule a cluster, a workload or the plan as a whole must satisfy
//! before wid makes a single network call. All problems are collected, never just the
//! first.

use std::collections::{BTreeMap, HashMap, hash_map};
use std::sync::LazyLock;

use regex::Regex;
use wid_core::names;

use super::diagnostic::{Diagnostics, PlanDiagnostic};
use super::load::{Entry, Raw};
use super::spec::{ClusterKind, ClusterSpec, WorkloadSpec};
use super::toml_spans::{Seg, segs};

static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9]{12}$"));
static REGION: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]{1,2}$"));
static EKS_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$"));
static PROJECT: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9]{1,20}$"));
static GKE_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"));
static GKE_LOCATION: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z]+-[a-z]+[0-9]{1,2}(-[a-z])?$"));
static GUID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
});
static AKS_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,61}[a-zA-Z0-9]$|^[a-zA-Z0-9]$"));

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("validation regexes are valid")
}

/// Which optional cluster fields each kind takes, and which it requires.
fn cluster_fields(kind: ClusterKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ClusterKind::Generic => (&[], &[]),
        ClusterKind::Eks => (
            &["name", "account", "region"],
            &["name", "account", "region"],
        ),
        ClusterKind::Gke => (
            &["name", "project", "project_number", "location"],
            &["project", "location", "name"],
        ),
        ClusterKind::Aks => (
            &["name", "subscription", "resource_group", "tenant"],
            &["name", "subscription", "resource_group", "tenant"],
        ),
    }
}

const CLOUD_FIELDS: &[&str] = &[
    "name",
    "account",
    "region",
    "project",
    "project_number",
    "location",
    "subscription",
    "resource_group",
    "tenant",
];

fn cloud_field<'a>(spec: &'a ClusterSpec, field: &str) -> Option<&'a str> {
    match field {
        "name" => spec.name.as_deref(),
        "account" => spec.account.as_deref(),
        "region" => spec.region.as_deref(),
        "project" => spec.project.as_deref(),
        "project_number" => spec.project_number.as_deref(),
        "location" => spec.location.as_deref(),
        "subscription" => spec.subscription.as_deref(),
        "resource_group" => spec.resource_group.as_deref(),
        "tenant" => spec.tenant.as_deref(),
        _ => None,
    }
}

/// Checks one cluster entry.
pub fn cluster(name: &str, entry: &Entry<ClusterSpec>, diags: &mut Diagnostics) {
    let spec = &entry.spec;
    let at = |path: &[&str]| entry.value_span(&segs(path, []));
    let key_at = |path: &[&str]| entry.key_span(&segs(path, []));
    if let Some(why) = names::dns1123_label(name) {
        diags.push(
            PlanDiagnostic::at(
                &entry.file,
                entry.span.clone(),
                format!("invalid cluster name `{name}`: {why}"),
            )
            .help("cluster names are used in resource ids and must be DNS-1123 labels"),
        );
    }
    let kind = spec.kind.as_str();
    let (allowed, required) = cluster_fields(spec.kind);
    for field in CLOUD_FIELDS {
        if cloud_field(spec, field).is_some() && !allowed.contains(field) {
            diags.push(
                PlanDiagnostic::at(&entry.file, key_at(&[field]), format!("`{field}` does not apply to {kind} clusters"))
                    .label("not a field of this kind")
                    .help(if allowed.is_empty() {
                        format!("{kind} clusters take only context, kubeconfig, issuer, create_namespaces and harden_default_service_accounts")
                    } else {
                        format!("{kind} clusters take {}", allowed.join(", "))
                    }),
            );
        }
    }
    for field in required {
        if cloud_field(spec, field).is_none() {
            diags.push(
                PlanDiagnostic::at(
                    &entry.file,
                    entry.span.clone(),
                    format!("{kind} cluster `{name}` needs `{field}`"),
                )
                .label("declared here"),
            );
        }
    }
    let mut check = |field: &str, ok: &dyn Fn(&str) -> bool, what: &str| {
        if let Some(v) = cloud_field(spec, field)
            && allowed.contains(&field)
            && !ok(v)
        {
            diags.push(
                PlanDiagnostic::at(&entry.file, at(&[field]), format!("invalid {field} `{v}`"))
                    .label(format!("expected {what}")),
            );
        }
    };
    check(
        "account",
        &|v| ACCOUNT.is_match(v),
        "a 12-digit AWS account id",
    );
    check(
        "region",
        &|v| REGION.is_match(v),
        "an AWS region such as us-east-1",
    );
    check(
        "project",
        &|v| PROJECT.is_match(v),
        "a GCP project id: 6-30 lowercase letters, digits and hyphens",
    );
    check(
        "project_number",
        &|v| DIGITS.is_match(v),
        "the numeric GCP project number",
    );
    check(
        "subscription",
        &|v| GUID.is_match(v),
        "an Azure subscription GUID",
    );
    check(
        "tenant",
        &|v| GUID.is_match(v),
        "a Microsoft Entra tenant GUID",
    );
    check(
        "resource_group",
        &|v| wid_azure::names::resource_group_issue(v).is_none(),
        "an Azure resource group name (1-90 characters)",
    );
    match spec.kind {
        ClusterKind::Eks => check(
            "name",
            &|v| EKS_NAME.is_match(v),
            "an EKS cluster name (letters, digits, - and _, up to 100)",
        ),
        ClusterKind::Aks => check(
            "name",
            &|v| AKS_NAME.is_match(v),
            "an AKS cluster name (letters, digits, - and _, up to 63)",
        ),
        ClusterKind::Gke => {
            check(
                "name",
                &|v| GKE_NAME.is_match(v),
                "a GKE cluster name (lowercase letters, digits and -, up to 40, starting with a letter)",
            );
            check(
                "location",
                &|v| GKE_LOCATION.is_match(v),
                "a GCP region or zone such as us-central1 or us-central1-a",
            );
        }
        ClusterKind::Generic => {}
    }
    if let Some(issuer) = &spec.issuer
        && let Some(why) = issuer_problem(issuer)
    {
        diags.push(PlanDiagnostic::at(
            &entry.file,
            at(&["issuer"]),
            format!("invalid issuer `{issuer}`: {why}"),
        ));
    }
}

/// Why an OIDC issuer URL is unusable, if it is.
pub fn issuer_problem(issuer: &str) -> Option<&'static str> {
    let Some(rest) = issuer.strip_prefix("https://") else {
        return Some("must start with https://");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Some("must name a host");
    }
    if rest.contains(['?', '#', ' ']) {
        return Some("must not contain a query, a fragment or spaces");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains(':') {
        return Some("must not contain a port");
    }
    None
}

/// The annotations cloud blocks write on the KSA; the plan may not set them by hand.
const CLOUD_ANNOTATIONS: &[(&str, &str)] = &[
    ("eks.amazonaws.com/role-arn", "aws"),
    ("iam.gke.io/gcp-service-account", "gcp"),
    ("azure.workload.identity/client-id", "azure"),
];

/// The most bytes of annotation keys and values a Kubernetes object may carry.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;
/// What wid keeps of that for the annotations it writes itself (its applied record, the
/// cloud identity annotations): a few hundred bytes, rounded up.
const ANNOTATIONS_RESERVED: usize = 1024;

/// Checks one workload entry on its own and its reference to a cluster. A cluster whose
/// own entry is broken (`broken`, reported already) is declared, only not usable.
pub fn workload(
    entry: &Entry<WorkloadSpec>,
    clusters: &BTreeMap<String, ClusterKind>,
    broken: &std::collections::BTreeSet<String>,
    diags: &mut Diagnostics,
) {
    let spec = &entry.spec;
    let file = &entry.file;
    let at = |path: Vec<Seg>| entry.value_span(&path);
    let key_at = |path: Vec<Seg>| entry.key_span(&path);
    match clusters.get(&spec.cluster) {
        None if broken.contains(&spec.cluster) => {}
        None => {
            let declared: Vec<&str> = clusters.keys().map(String::as_str).collect();
            let mut names = declared.clone();
            names.extend(broken.iter().map(String::as_str));
            let help = match super::messages::did_you_mean(&spec.cluster, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => {
                    format!("declare it in a [clusters.{}] section", spec.cluster)
                }
                None => {
                    names.sort_unstable();
                    format!("declared clusters: {}", names.join(", "))
                }
            };
            diags.push(
                PlanDiagnostic::at(
                    file,
                    at(segs(&["cluster"], [])),
                    format!("cluster `{}` is not declared", spec.cluster),
                )
                .label("undeclared cluster")
                .help(help),
            );
        }
        Some(kind) => {
            for cloud in crate::clouds::ALL {
                let wants = cloud.cluster_kind();
                if cloud.used_by(spec) && *kind != wants {
                    diags.push(
                        PlanDiagnostic::at(
                            file,
                            key_at(segs(&[cloud.name()], [])),
                            format!(
                                "the {} block needs a cluster of kind {}, and `{}` is {}",
                                cloud.name(),
                                wants.as_str(),
                                spec.cluster,
                                kind.as_str()
                            ),
                        )
                        .help("workload identity is a feature of the cluster's own cloud; use the block of this cluster's cloud"),
                    );
                }
            }
        }
    }
    if let Some(why) = names::dns1123_label(&spec.namespace) {
        diags.push(
            PlanDiagnostic::at(
                file,
                at(segs(&["namespace"], [])),
                format!("invalid namespace `{}`: {why}", spec.namespace),
            )
            .label("not a DNS-1123 label"),
        );
    }
    if let Some(why) = names::dns1123_subdomain(&spec.service_account) {
        diags.push(
            PlanDiagnostic::at(
                file,
                at(segs(&["service_account"], [])),
                format!(
                    "invalid service account name `{}`: {why}",
                    spec.service_account
                ),
            )
            .label("not a DNS-1123 subdomain"),
        );
    } else if wid_kubernetes::role_name(&spec.service_account).len() > 253 {
        diags.push(PlanDiagnostic::at(
            file,
            at(segs(&["service_account"], [])),
            "service account name too long for its Role name (wid-NAME must fit in 253 characters)",
        ));
    }
    for (key, value) in &spec.labels {
        let reserved = key == wid_core::MANAGED_BY_KEY || key.starts_with("wid.dev/");
        if reserved {
            diags.push(
                PlanDiagnostic::at(
                    file,
                    key_at(segs(&["labels", key], [])),
                    format!("label `{key}` is reserved for wid's ownership marks"),
                )
                .help("wid sets it on every object it creates; remove it from the plan"),
            );
        } else if let Some(why) = names::qualified_key(key) {
            diags.push(PlanDiagnostic::at(
                file,
                key_at(segs(&["labels", key], [])),
                format!("invalid label key `{key}`: {why}"),
            ));
        }
        if let Some(why) = names::label_value(value) {
            diags.push(PlanDiagnostic::at(
                file,
                at(segs(&["labels", key], [])),
                format!("invalid value for label `{key}`: {why}"),
            ));
        }
    }
    for key in spec.annotations.keys() {
        if key.starts_with("wid.dev/") {
            diags.push(
                PlanDiagnostic::at(
                    file,
                    key_at(segs(&["annotations", key], [])),
                    format!("annotation `{key}` is reserved for wid's own bookkeeping"),
                )
                .help("wid records what it applied under wid.dev/; remove it from the plan"),
            );
        } else if let Some(why) = names::qualified_key(key) {
            diags.push(PlanDiagnostic::at(
                file,
                key_at(segs(&["annotations", key], [])),
                format!("invalid annotation key `{key}`: {why}"),
            ));
        }
        if let Some((_, block)) = CLOUD_ANNOTATIONS.iter().find(|(k, _)| k == key) {
            diags.push(
                PlanDiagnostic::at(
                    file,
                    key_at(segs(&["annotations", key], [])),
                    format!("annotation `{key}` is written by wid from the {block} block"),
                )
                .help(format!(
                    "declare the identity in `{block}.*` instead of annotating by hand"
                )),
            );
        }
    }
    let annotations: usize = spec
        .annotations
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if annotations > ANNOTATIONS_LIMIT - ANNOTATIONS_RESERVED {
        diags.push(
            PlanDiagnostic::at(
                file,
                key_at(segs(&["annotations"], [])),
                format!(
                    "annotations total {annotations} bytes; Kubernetes allows {ANNOTATIONS_LIMIT} per object, and wid needs {ANNOTATIONS_RESERVED} of them for its own"
                ),
            )
            .label("too large")
            .help("keep large data in a ConfigMap and reference it from an annotation"),
        );
    }
    if let Some(block) = &spec.kubernetes {
        for issue in wid_kubernetes::validate_rules(&block.rules) {
            let index = issue.index.to_string();
            let path = segs(&["kubernetes", "rules"], [index.as_str(), issue.field]);
            diags.push(PlanDiagnostic::at(
                file,
                at(path),
                format!("invalid RBAC rule: {}", issue.message),
            ));
        }
    }
    for cloud in crate::clouds::ALL {
        if cloud.used_by(spec) {
            for issue in cloud.validate(entry) {
                diags.push(field_issue(entry, cloud.name(), &issue));
            }
        }
    }
}

/// A provider's field problem, located under the workload's `block` (`aws`, `gcp`).
pub fn field_issue(
    entry: &Entry<WorkloadSpec>,
    block: &str,
    issue: &wid_core::FieldIssue,
) -> PlanDiagnostic {
    let path = segs(&[block], issue.path.iter().map(String::as_str));
    let span = entry.value_span(&path);
    let mut d = PlanDiagnostic::at(&entry.file, span, issue.message.clone());
    if let Some(help) = &issue.help {
        d = d.help(help.clone());
    }
    d
}

/// Cross-file rules: one name, no cluster declared twice, no KSA declared twice.
pub fn plan(raw: &Raw, diags: &mut Diagnostics) -> Vec<String> {
    // Each distinct `name` is an ownership scope; files that share a name are one scope.
    let mut scopes: BTreeMap<&str, ()> = BTreeMap::new();
    for (n, file, span) in &raw.names {
        if scopes.insert(n.as_str(), ()).is_some() {
            continue;
        }
        if let Some(why) =
            names::label_value(n).or_else(|| n.is_empty().then(|| "must not be empty".to_owned()))
        {
            diags.push(
                PlanDiagnostic::at(
                    file,
                    span.clone(),
                    format!("invalid plan name `{n}`: {why}"),
                )
                .help("the name is written as a label value on every object wid creates"),
            );
        }
    }
    if scopes.is_empty()
        && !raw.incomplete
        && let Some(file) = raw.shared.first()
    {
        diags.push(
            PlanDiagnostic::at(file, 0..file.text.len().min(1), "missing `name`").help(
                "no file of this plan names an ownership scope: add `name = \"TEAM\"` to the files that declare workloads",
            ),
        );
    }
    let mut seen: BTreeMap<&str, &Entry<ClusterSpec>> = BTreeMap::new();
    for (cluster_name, entry) in &raw.clusters {
        if let Some(first) = seen.get(cluster_name.as_str()) {
            diags.push(
                PlanDiagnostic::at(
                    &entry.file,
                    entry.span.clone(),
                    format!("cluster `{cluster_name}` is declared twice"),
                )
                .label("second declaration")
                .help(format!("first declared at {}", first.origin())),
            );
        } else {
            seen.insert(cluster_name, entry);
        }
    }
    // Hashed, each workload looked up once: a B-tree of 10,000 string triples cost 5% of
    // reading a plan that size.
    let mut ksas: HashMap<(&str, &str, &str), &Entry<WorkloadSpec>> =
        HashMap::with_capacity(raw.workloads.len());
    for entry in &raw.workloads {
        let s = &entry.spec;
        let key = (
            s.cluster.as_str(),
            s.namespace.as_str(),
            s.service_account.as_str(),
        );
        let first = match ksas.entry(key) {
            hash_map::Entry::Vacant(e) => {
                e.insert(entry);
                continue;
            }
            hash_map::Entry::Occupied(e) => *e.get(),
        };
        let span = entry.value_span(&segs(&["service_account"], []));
        diags.push(
            PlanDiagnostic::at(
                &entry.file,
                span,
                format!(
                    "service account {}/{} in cluster `{}` is declared twice",
                    s.namespace, s.service_account, s.cluster
                ),
            )
            .label("second declaration")
            .help(format!(
                "first declared at {}; a KSA belongs to one workload",
                first.origin()
            )),
        );
    }
    scopes.into_keys().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers() {
        assert!(issuer_problem("https://oidc.eks.us-east-1.amazonaws.com/id/ABC").is_none());
        assert!(issuer_problem("http://x").is_some());
        assert!(issuer_problem("https://x:443/").is_some());
        assert!(issuer_problem("https://x/?a=b").is_some());
        assert!(issuer_problem("https://").is_some());
    }

    #[test]
    fn regions_and_accounts() {
        assert!(REGION.is_match("us-east-1"));
        assert!(REGION.is_match("us-gov-west-1"));
        assert!(REGION.is_match("ap-southeast-2"));
        assert!(!REGION.is_match("useast1"));
        assert!(ACCOUNT.is_match("111122223333"));
        assert!(!ACCOUNT.is_match("11112222333"));
    }
}
