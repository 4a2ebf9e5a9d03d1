//! Compiling the `azure` blocks of a plan into resources: one identity per subscription,
//! resource group and name (its role assignments gathered over every workload that names
//! it), one federated credential per KSA, and the KSA annotations.
//!
//! Federated credential writes on one identity must not overlap (Azure answers 409
//! `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`), so every
//! credential carries its identity as serialization key: the engine runs them one at a
//! time per identity and in parallel across identities.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use wid_core::{AttrMap, AttrValue, Contribution, JsonText, Resource, ResourceId, WorkloadRef};

use crate::block::{AksCluster, AzureBlock, FieldIssue, RoleAssignment};
use crate::ids;
use crate::names::{self, AUDIENCE, FIC_LIMIT, RoleRef};

/// The KSA annotation the workload identity webhook reads the client id from.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// The KSA annotation naming the identity's tenant.
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// The pod label the webhook needs to inject the token (wid does not own pods).
pub const USE_LABEL: &str = "azure.workload.identity/use";
/// The plan key that lets wid use an existing identity.
pub const ADOPT_KEY: &str = "azure.adopt";

/// One workload's azure block with its cluster.
#[derive(Debug, Clone)]
pub struct AzureWorkload<'a> {
    /// The block.
    pub block: &'a AzureBlock,
    /// The workload's cluster, with its issuer resolved.
    pub cluster: &'a AksCluster,
    /// The workload's KSA.
    pub workload: WorkloadRef,
    /// Where the block is (`identities/orders.toml:12`), for messages.
    pub origin: std::sync::Arc<str>,
}

/// What the azure blocks of a plan compile to.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Every Azure resource, each once: the federated credentials, then the identities,
    /// in the order workloads name them. Not sorted: the plan's compile sorts every
    /// cloud's resources together, once.
    pub resources: Vec<Resource>,
    /// One per input workload, in the same order: the KSA annotations and what the KSA
    /// waits for.
    pub contributions: Vec<Contribution>,
}

/// The fact (of the workload's cluster) holding the location of a resource group, as
/// preflight reads it: `location:RG` with the group's name in lowercase.
pub fn location_fact(resource_group: &str) -> String {
    format!("location:{}", resource_group.to_ascii_lowercase())
}

/// The scope a role of `block` is assigned at: as the plan writes it (normalized), or the
/// identity's resource group.
pub fn role_scope(role: &RoleAssignment, cluster: &AksCluster, block: &AzureBlock) -> String {
    role.scope.as_deref().map_or_else(
        || ids::resource_group_scope(&cluster.subscription, block.resource_group_or(cluster)),
        names::normalize_scope,
    )
}

/// The roles `block` assigns, (scope, role as written), as observe looks them up; a role
/// that is invalid (validation reports it) is left out.
pub fn block_roles<'a>(
    block: &'a AzureBlock,
    cluster: &'a AksCluster,
) -> impl Iterator<Item = (String, String)> + 'a {
    block.roles.iter().filter_map(move |r| {
        let role = RoleRef::parse(&r.role).ok()?;
        Some((role_scope(r, cluster, block), role.text().to_owned()))
    })
}

/// The identity as one block describes it; blocks naming the same identity must agree on
/// everything but roles, which add up.
#[derive(Debug, Clone, PartialEq)]
struct IdentitySpec {
    location: AttrValue,
    tags: AttrMap<String>,
    adopt: bool,
}

struct IdentityAcc {
    first: usize,
    spec: IdentitySpec,
    /// (scope, role text) as written, without repeats (compared case-insensitively). A
    /// list: an identity has a role or two, and a B-tree allocates a node for eleven.
    roles: Vec<(String, String)>,
    /// Workloads with a credential on it, by origin.
    workloads: Vec<std::sync::Arc<str>>,
}

/// Compiles every azure block at once. `location` answers a resource group's location
/// (by cluster plan name and fact name, see [`location_fact`]) when a block does not set
/// one; `None` leaves it unknown (offline validation). Checks what needs more than one
/// block: shared identities must agree, and no identity may need more than Azure's 20
/// federated credentials. Every issue comes with the index of its workload.
pub fn compile(
    items: &[AzureWorkload],
    plan: &str,
    location: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Compiled, Vec<(usize, FieldIssue)>> {
    let mut issues = Vec::new();
    // Identities in the order workloads first name them, found by a hashed id.
    let mut identities: Vec<(ResourceId, IdentityAcc)> = Vec::new();
    let mut identity_at: HashMap<ResourceId, usize> = HashMap::with_capacity(items.len());
    let mut valid_defaults: BTreeSet<String> = BTreeSet::new();
    let mut fics: Vec<Resource> = Vec::new();
    let mut contributions = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let (block, cluster) = (item.block, item.cluster);
        let rg = block.resource_group_or(cluster);
        let identity = ids::identity_id(&cluster.subscription, rg, &block.identity);
        let loc = match &block.location {
            Some(l) => AttrValue::from(names::normalize_location(l)),
            None => match location(&cluster.plan_name, &location_fact(rg)) {
                Some(l) => AttrValue::from(names::normalize_location(&l)),
                None => AttrValue::Unknown {
                    from: ids::resource_group_id(&cluster.subscription, rg),
                    output: "location".into(),
                },
            },
        };
        let spec = IdentitySpec {
            location: loc,
            tags: block.tags.clone(),
            adopt: block.adopt,
        };
        let at = *identity_at.entry(identity.clone()).or_insert_with(|| {
            identities.push((
                identity.clone(),
                IdentityAcc {
                    first: index,
                    spec: spec.clone(),
                    roles: Vec::new(),
                    workloads: Vec::new(),
                },
            ));
            identities.len() - 1
        });
        let acc = &mut identities[at].1;
        if acc.first != index {
            let origin = &items[acc.first].origin;
            for field in disagreements(&acc.spec, &spec, block.location.is_some()) {
                issues.push((
                    index,
                    FieldIssue::new(
                        &[field],
                        format!(
                            "identity {} is also declared at {origin} with a different {field}",
                            block.identity
                        ),
                    )
                    .help("every workload that names an identity must describe it the same way; make the blocks agree or use another identity"),
                ));
            }
        }
        for (i, r) in block.roles.iter().enumerate() {
            let Ok(role) = RoleRef::parse(&r.role) else {
                // validate_block reported it.
                continue;
            };
            let scope = role_scope(r, cluster, block);
            // A scope the plan wrote was checked by validate_block; a default one is
            // checked here, once per scope.
            if r.scope.is_none() && !valid_defaults.contains(&scope) {
                if names::scope_issue(&scope).is_some() {
                    issues.push((
                        index,
                        FieldIssue::new(
                            &["roles", &i.to_string(), "scope"],
                            format!("the default scope {scope:?} is not a valid ARM scope"),
                        ),
                    ));
                    continue;
                }
                valid_defaults.insert(scope.clone());
            }
            if !acc
                .roles
                .iter()
                .any(|(s, r)| s.eq_ignore_ascii_case(&scope) && r.eq_ignore_ascii_case(role.text()))
            {
                acc.roles.push((scope, role.text().to_owned()));
            }
        }
        acc.workloads.push(item.origin.clone());

        let mut contribution = Contribution::default();
        let Some(issuer) = cluster.issuer.as_deref() else {
            issues.push((
                index,
                FieldIssue::new(
                    &[],
                    format!("cluster {} has no OIDC issuer", cluster.plan_name),
                )
                .help("set `issuer` on the cluster or let wid read it from the managed cluster"),
            ));
            contributions.push(contribution);
            continue;
        };
        let w = &item.workload;
        let fic_name = block
            .credential
            .clone()
            .unwrap_or_else(|| names::fic_name(plan, &w.cluster, &w.namespace, &w.service_account));
        let fic_id = ids::fic_id(&identity, &fic_name);
        let mut fic = Resource::new(fic_id.clone())
            .attr("issuer", issuer)
            .attr("subject", w.subject())
            .attr("audiences", json!([AUDIENCE]))
            .depends_on(&identity)
            .adoptable(ADOPT_KEY, block.adopt);
        fic.serialize_key = Some(identity.to_string());
        fic.origin = Some(item.origin.clone());
        fics.push(fic);
        contribution.ksa_annotations.insert(
            CLIENT_ID_ANNOTATION.to_owned(),
            AttrValue::Unknown {
                from: identity.clone(),
                output: "client_id".into(),
            },
        );
        contribution.ksa_annotations.insert(
            TENANT_ID_ANNOTATION.to_owned(),
            AttrValue::from(cluster.tenant.to_ascii_lowercase()),
        );
        contribution.ksa_depends_on.push(identity.clone());
        contribution.ksa_depends_on.push(fic_id);
        contributions.push(contribution);
    }

    let mut resources = fics;
    for (id, acc) in identities {
        if acc.workloads.len() > FIC_LIMIT {
            issues.push((
                acc.first,
                FieldIssue::new(
                    &["identity"],
                    format!(
                        "identity {} would need {} federated credentials, one per service account; Azure allows at most {FIC_LIMIT} per identity. The workloads: {}",
                        id.part(2),
                        acc.workloads.len(),
                        acc.workloads.join(", ")
                    ),
                )
                .help("split these workloads across several identities"),
            ));
        }
        let mut r = Resource::new(id.clone())
            .attr("location", acc.spec.location.clone())
            // Held as text: a few hundred bytes each as trees, for thousands of
            // identities.
            .attr(
                "tags",
                AttrValue::Json(JsonText::string_map(
                    acc.spec.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )),
            )
            .attr("role_assignments", AttrValue::json(&roles_value(acc.roles)))
            .adoptable(ADOPT_KEY, acc.spec.adopt);
        r.origin = Some(items[acc.first].origin.clone());
        resources.push(r);
    }
    if !issues.is_empty() {
        issues.sort_by_key(|(i, _)| *i);
        return Err(issues);
    }
    Ok(Compiled {
        resources,
        contributions,
    })
}

fn disagreements(a: &IdentitySpec, b: &IdentitySpec, explicit_location: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.location != b.location && (explicit_location || a.location.known().is_some()) {
        out.push("location");
    }
    if a.tags != b.tags {
        out.push("tags");
    }
    if a.adopt != b.adopt {
        out.push("adopt");
    }
    out
}

/// The `role_assignments` attribute: `{role, scope}` objects sorted by scope, then role,
/// case-insensitively (compile and observe write it alike).
pub fn roles_value(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut sorted: Vec<((String, String), (String, String))> = pairs
        .into_iter()
        .map(|(scope, role)| {
            (
                (scope.to_ascii_lowercase(), role.to_ascii_lowercase()),
                (scope, role),
            )
        })
        .collect();
    // Stable: of pairs equal but for case, the last one given is kept.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(&mut later.1, &mut kept.1);
        }
        same
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|(_, (scope, role))| json!({"role": role, "scope": scope}))
            .collect(),
    )
}

/// The role assignments of a compiled identity: (scope, role text) pairs.
pub fn wanted_roles(identity: &Resource) -> BTreeSet<(String, String)> {
    roles_of(
        identity
            .attrs
            .get("role_assignments")
            .and_then(AttrValue::known)
            .as_deref(),
    )
}

/// Role assignment pairs from an attribute value.
pub fn roles_of(value: Option<&Value>) -> BTreeSet<(String, String)> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some((
                v["scope"].as_str()?.to_owned(),
                v["role"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
