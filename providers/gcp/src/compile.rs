//! Compiling `gcp` blocks into resources (pure: no I/O).
//!
//! Per workload in impersonate mode: the Google service account (when wid creates it),
//! the `roles/iam.workloadIdentityUser` binding on it for the KSA's member in the
//! *cluster's* project pool, each role binding for the account, and the KSA annotation.
//! In direct mode: each role binding for the KSA's `principal://` identifier. Every IAM
//! policy is ONE resource whose attributes are wid's bindings on it (`ROLE MEMBER` →
//! resource), so a run reads each policy once and writes it at most once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use wid_core::{Contribution, FieldIssue, Mode, Resource, ResourceId, WorkloadRef};

use crate::block::{GcpBlock, target};
use crate::ids;
use crate::names::{
    KSA_ANNOTATION, WORKLOAD_IDENTITY_USER, account_id_of, expand_service_account, ksa_member,
    ksa_principal, sa_member,
};
use crate::record::user_description_limit;

/// IAM's limit of principals in one allow policy (every occurrence counts).
pub const PRINCIPALS_PER_POLICY: usize = 1500;

/// A GKE cluster as this provider needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeCluster {
    /// The plan's name for the cluster.
    pub plan_name: String,
    /// The project id (its pool is `PROJECT.svc.id.goog`).
    pub project: String,
    /// The project number, from the plan or preflight.
    pub project_number: Option<String>,
    /// The cluster's location (region or zone).
    pub location: String,
    /// The GKE cluster name.
    pub name: String,
}

/// One workload's `gcp` block with its context.
#[derive(Debug, Clone)]
pub struct GcpWorkload<'a> {
    /// The block.
    pub block: &'a GcpBlock,
    /// Its cluster.
    pub cluster: &'a GkeCluster,
    /// The KSA.
    pub workload: WorkloadRef,
    /// `cluster/ns/sa (file:line:col)`, for messages and grouping.
    pub origin: std::sync::Arc<str>,
}

/// What compile produces.
#[derive(Debug, Default)]
pub struct Compiled {
    /// Service accounts and policies, in a fixed order. Not sorted by id: the plan's
    /// compile sorts every cloud's resources together, once.
    pub resources: Vec<Resource>,
    /// One contribution per workload, in input order.
    pub contributions: Vec<Contribution>,
}

/// What a shared service account must agree on across the workloads that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AccountSpec {
    create: bool,
    display_name: Option<String>,
    description: Option<String>,
    adopt: bool,
    roles: BTreeSet<(String, String)>,
}

/// One policy's lines as compile collects them.
#[derive(Default)]
struct PolicyLines {
    lines: BTreeMap<String, String>,
    depends_on: BTreeSet<ResourceId>,
    origins: BTreeSet<std::sync::Arc<str>>,
    /// Some workload adding lines to it says `adopt`: lines that already exist without
    /// wid's record are used as they are.
    adopt: bool,
    /// The workload that added each line first, for limit messages.
    first: BTreeMap<String, usize>,
}

/// Compiles every workload's block. Issues carry the workload's index and a path
/// relative to its `gcp` block.
pub fn compile(items: &[GcpWorkload], plan: &str) -> Result<Compiled, Vec<(usize, FieldIssue)>> {
    let mut issues = Vec::new();
    let mut accounts: BTreeMap<String, (usize, AccountSpec, Resource)> = BTreeMap::new();
    let mut policies: BTreeMap<String, PolicyLines> = BTreeMap::new();
    let mut contributions = Vec::new();
    let desc_limit = user_description_limit(plan);
    let created = created_accounts(items);

    for (i, item) in items.iter().enumerate() {
        let block = item.block;
        let cluster = item.cluster;
        let w = &item.workload;
        let mut contribution = Contribution::default();
        let add = |policies: &mut BTreeMap<String, PolicyLines>,
                   resource: String,
                   role: &str,
                   member: String,
                   dep: Option<&ResourceId>| {
            let entry = policies.entry(resource.clone()).or_default();
            let key = ids::line_key(role, &member);
            entry.first.entry(key.clone()).or_insert(i);
            entry.lines.insert(key, resource);
            entry.origins.insert(item.origin.clone());
            entry.adopt |= block.adopt;
            if let Some(d) = dep {
                entry.depends_on.insert(d.clone());
            }
        };
        // Resolve every role's target first; a bad one stops this workload only.
        let mut grants = Vec::new();
        let mut bad = false;
        for (k, grant) in block.roles.iter().enumerate() {
            match target(grant, &cluster.project) {
                Ok(t) => grants.push((grant.role().to_owned(), t)),
                Err(mut issue) => {
                    let mut path = vec!["roles".to_owned(), k.to_string()];
                    path.append(&mut issue.path);
                    issue.path = path;
                    issues.push((i, issue));
                    bad = true;
                }
            }
        }
        if bad {
            contributions.push(contribution);
            continue;
        }
        if block.direct {
            let Some(number) = cluster.project_number.as_deref() else {
                issues.push((
                    i,
                    FieldIssue::new(
                        &["direct"],
                        format!(
                            "direct mode needs the project number of cluster `{}`",
                            cluster.plan_name
                        ),
                    )
                    .help("set `project_number` on the cluster in the plan"),
                ));
                contributions.push(contribution);
                continue;
            };
            let member = ksa_principal(&cluster.project, number, &w.namespace, &w.service_account);
            for (role, t) in &grants {
                let dep = created_target(t, &created);
                add(
                    &mut policies,
                    t.resource(),
                    role,
                    member.clone(),
                    dep.as_ref(),
                );
            }
            contributions.push(contribution);
            continue;
        }
        let Some(name) = &block.service_account else {
            contributions.push(contribution);
            continue;
        };
        let (project, email) = match expand_service_account(name, &cluster.project) {
            Ok(x) => x,
            Err(why) => {
                issues.push((i, FieldIssue::new(&["service_account"], why)));
                contributions.push(contribution);
                continue;
            }
        };
        let create = block.create.unwrap_or(true);
        if let Some(d) = &block.description
            && d.len() > desc_limit
        {
            issues.push((i, FieldIssue::new(&["description"], format!(
                "description is {} bytes; with wid's ownership mark for plan {plan:?} the service account allows {desc_limit}",
                d.len()
            ))));
        }
        let spec = AccountSpec {
            create,
            display_name: block.display_name.clone(),
            description: block.description.clone(),
            adopt: block.adopt,
            roles: grants
                .iter()
                .map(|(r, t)| (r.clone(), t.resource()))
                .collect(),
        };
        let sa_id = ids::sa_id(&project, account_id_of(&email));
        match accounts.get(&email) {
            Some((first, earlier, _)) => {
                let differs = disagreements(earlier, &spec);
                if !differs.is_empty() {
                    issues.push((i, FieldIssue::new(&["service_account"], format!(
                        "service account {email} is shared with workload {} but this workload differs in {}",
                        items[*first].origin,
                        differs.join(", ")
                    )).help("workloads that share a service account must describe it the same way (the roles are the account's, not the KSA's)")));
                }
            }
            None => {
                let mut r = Resource::new(sa_id.clone())
                    .attr(
                        "display_name",
                        block
                            .display_name
                            .clone()
                            .map_or(Value::Null, Value::String),
                    )
                    .attr(
                        "description",
                        block.description.clone().map_or(Value::Null, Value::String),
                    )
                    .mode(Mode::Owned)
                    .adoptable("gcp.adopt", block.adopt);
                r.origin = Some(item.origin.clone());
                accounts.insert(email.clone(), (i, spec, r));
            }
        }
        let own_dep = create.then_some(&sa_id);
        let sa_policy = crate::block::Target::ServiceAccount {
            project: project.clone(),
            email: email.clone(),
        }
        .resource();
        add(
            &mut policies,
            sa_policy.clone(),
            WORKLOAD_IDENTITY_USER,
            ksa_member(&cluster.project, &w.namespace, &w.service_account),
            own_dep,
        );
        for (role, t) in &grants {
            let dep = created_target(t, &created);
            add(
                &mut policies,
                t.resource(),
                role,
                sa_member(&email),
                own_dep,
            );
            if let Some(d) = dep {
                policies
                    .entry(t.resource())
                    .or_default()
                    .depends_on
                    .insert(d);
            }
        }
        contribution
            .ksa_annotations
            .insert(KSA_ANNOTATION.to_owned(), email.clone().into());
        if create {
            contribution.ksa_depends_on.push(sa_id.clone());
        }
        contribution.ksa_depends_on.push(ids::policy_id(&sa_policy));
        contributions.push(contribution);
    }

    let mut resources: Vec<Resource> = Vec::new();
    for (_, (_, spec, r)) in accounts {
        if spec.create {
            resources.push(r);
        }
    }
    for (resource, p) in policies {
        if p.lines.len() > PRINCIPALS_PER_POLICY {
            let last = p.first.values().copied().max().unwrap_or(0);
            issues.push((last, FieldIssue::new(&["roles"], format!(
                "the plan grants {} principals on the IAM policy of {resource}; IAM allows {PRINCIPALS_PER_POLICY} in one policy, counting every occurrence",
                p.lines.len()
            )).help("grant roles through fewer service accounts (several KSAs may share one), or on narrower resources")));
        }
        let id = ids::policy_id(&resource);
        let mut r = Resource::new(id.clone())
            .mode(Mode::Owned)
            .adoptable("gcp.adopt", p.adopt);
        for (key, value) in p.lines {
            r = r.attr(key, value);
        }
        // Already a set: one push each, not a search of the list per dependency (a
        // project's policy waits for up to a thousand accounts).
        r.depends_on = p.depends_on.into_iter().filter(|dep| dep != &id).collect();
        if p.origins.len() == 1 {
            r.origin = p.origins.into_iter().next();
        }
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

/// The service account a role's target is, when this plan creates it.
fn created_target(
    t: &crate::block::Target,
    created: &BTreeMap<String, ResourceId>,
) -> Option<ResourceId> {
    match t {
        crate::block::Target::ServiceAccount { email, .. } => created.get(email).cloned(),
        crate::block::Target::Project(_) => None,
    }
}

/// The emails of the service accounts the plan creates (impersonate mode, `create` not
/// false), with their resource ids: a role granted on one of them waits for it.
fn created_accounts(items: &[GcpWorkload]) -> BTreeMap<String, ResourceId> {
    items
        .iter()
        .filter(|item| !item.block.direct && item.block.create.unwrap_or(true))
        .filter_map(|item| {
            let name = item.block.service_account.as_deref()?;
            let (project, email) = expand_service_account(name, &item.cluster.project).ok()?;
            let id = ids::sa_id(&project, account_id_of(&email));
            Some((email, id))
        })
        .collect()
}

fn disagreements(a: &AccountSpec, b: &AccountSpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.create != b.create {
        out.push("create");
    }
    if a.display_name != b.display_name {
        out.push("display_name");
    }
    if a.description != b.description {
        out.push("description");
    }
    if a.adopt != b.adopt {
        out.push("adopt");
    }
    if a.roles != b.roles {
        out.push("roles");
    }
    out
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
