//! Compiling the `aws` blocks of a plan into resources: one shared IAM OIDC provider per
//! account and issuer, one role per account and name (its trust policy gathers every
//! workload that names it), and one Pod Identity association per pod-identity workload.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use wid_core::{
    AttrMap, AttrValue, Contribution, JsonText, Mode, Resource, ResourceId, WorkloadRef,
};

use crate::block::{AwsBlock, EksCluster, FieldIssue, Mechanism};
use crate::ids;
use crate::policy::{
    self, DEFAULT_TRUST_POLICY_LIMIT, STS_AUDIENCE, irsa_statement, normalize_policy,
    pod_identity_statement,
};

/// The KSA annotation IRSA's webhook reads.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The start of the description wid gives its roles; prune looks for it to find candidate
/// roles without reading every role's tags.
pub const DESCRIPTION_PREFIX: &str = "Managed by wid";

/// The description of a role owned by `plan`.
pub fn role_description(plan: &str) -> String {
    format!("{DESCRIPTION_PREFIX} (plan {plan})")
}

/// One workload's aws block with its cluster.
#[derive(Debug, Clone)]
pub struct AwsWorkload<'a> {
    /// The block.
    pub block: &'a AwsBlock,
    /// The workload's cluster, with its issuer resolved.
    pub cluster: &'a EksCluster,
    /// The workload's KSA.
    pub workload: WorkloadRef,
    /// The directory of the plan file that holds the block (inline policy files are
    /// relative to it).
    pub plan_dir: Arc<Path>,
    /// Where the block is (`identities/orders.toml:12`), for messages.
    pub origin: Arc<str>,
}

/// What the aws blocks of a plan compile to.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Every AWS resource, deduplicated (a shared role or provider appears once): the OIDC
    /// providers, the roles and the associations, each in the order workloads first name
    /// them. Not sorted: the plan's compile sorts every cloud's resources together, once.
    pub resources: Vec<Resource>,
    /// One per input workload, in the same order: the KSA annotation (IRSA) and the role
    /// the KSA waits for. Their `resources` are empty: every resource is in
    /// [`Compiled::resources`] once.
    pub contributions: Vec<Contribution>,
}

/// Plan-level settings of compilation.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The trust policy size limit (IAM's default 2048 unless the account's quota was
    /// raised).
    pub trust_policy_limit: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            trust_policy_limit: DEFAULT_TRUST_POLICY_LIMIT,
        }
    }
}

/// [`compile_with`] with the default options.
pub fn compile(items: &[AwsWorkload], plan: &str) -> Result<Compiled, Vec<(usize, FieldIssue)>> {
    compile_with(items, plan, &CompileOptions::default())
}

/// The role as one block describes it; blocks that name the same role must agree.
#[derive(Debug, Clone, PartialEq)]
struct RoleSpec {
    managed: BTreeSet<String>,
    inline: AttrMap<JsonText>,
    boundary: Option<String>,
    max_session: u32,
    path: String,
    tags: AttrMap<String>,
    adopt: bool,
}

/// A role as compile gathers it: the first block that names it (the one others must
/// agree with) and who it trusts.
#[derive(Debug)]
struct RoleAcc {
    first: usize,
    spec: RoleSpec,
    origin: std::sync::Arc<str>,
    trust: Trust,
}

/// Who a role trusts, gathered over the workloads that name it. Lists, not B-trees: a
/// role has a statement or two, and a tree allocates a node for eleven (at 10,000
/// workloads that was 4 MB gone by the end of compile, but not from the process).
#[derive(Debug, Default)]
struct Trust {
    /// The OIDC provider (its place in [`Oidc`]) and its subjects.
    irsa: Vec<(usize, Vec<String>)>,
    /// Cluster ARN, namespace and that namespace's KSAs.
    pods: Vec<(String, String, Vec<String>)>,
}

impl Trust {
    /// The subjects of the provider at `at`.
    fn irsa(&mut self, at: usize) -> &mut Vec<String> {
        let i = match self.irsa.iter().position(|(p, _)| *p == at) {
            Some(i) => i,
            None => {
                self.irsa.push((at, Vec::new()));
                self.irsa.len() - 1
            }
        };
        &mut self.irsa[i].1
    }

    /// The KSAs of `namespace` in the cluster `cluster_arn`.
    fn pods(&mut self, cluster_arn: String, namespace: &str) -> &mut Vec<String> {
        let i = match self
            .pods
            .iter()
            .rposition(|(c, n, _)| *c == cluster_arn && n == namespace)
        {
            Some(i) => i,
            None => {
                self.pods
                    .push((cluster_arn, namespace.to_owned(), Vec::new()));
                self.pods.len() - 1
            }
        };
        &mut self.pods[i].2
    }

    /// Sorts every list and drops repeats: the sets the statements are made of.
    fn finish(&mut self) {
        for list in self
            .irsa
            .iter_mut()
            .map(|(_, l)| l)
            .chain(self.pods.iter_mut().map(|(_, _, l)| l))
        {
            list.sort_unstable();
            list.dedup();
        }
    }

    /// How many service accounts it trusts.
    fn subjects(&self) -> usize {
        self.irsa.iter().map(|(_, l)| l.len()).sum::<usize>()
            + self.pods.iter().map(|(_, _, l)| l.len()).sum::<usize>()
    }
}

/// Compiles every aws block of a plan at once, so roles shared by several workloads get
/// one trust policy. Checks what needs more than one block: shared role blocks must agree,
/// each role's trust policy must fit IAM's limit, Pod Identity roles must live in the
/// cluster's account. Every issue is reported with the index of its workload.
pub fn compile_with(
    items: &[AwsWorkload],
    plan: &str,
    options: &CompileOptions,
) -> Result<Compiled, Vec<(usize, FieldIssue)>> {
    let mut issues = Vec::new();
    // Roles in the order workloads first name them, found by a hashed id: a B-tree keyed
    // by id compared its strings a dozen times per workload.
    let mut roles: Vec<(ResourceId, RoleAcc)> = Vec::new();
    let mut role_at: HashMap<ResourceId, usize> = HashMap::with_capacity(items.len());
    let mut providers: BTreeMap<ResourceId, usize> = BTreeMap::new();
    let mut associations = Vec::new();
    let mut contributions = Vec::new();
    let mut oidc = Oidc::default();
    for (index, item) in items.iter().enumerate() {
        let block = item.block;
        let cluster = item.cluster;
        let account: &str = block.account.as_deref().unwrap_or(&cluster.account);
        let partition = ids::partition(&cluster.region);
        let role_id = ids::role_id(account, &block.role);
        let role_arn = ids::role_arn(partition, account, block.path_or_default(), &block.role);
        let spec = match role_spec(item) {
            Ok(spec) => spec,
            Err(mut errs) => {
                issues.extend(errs.drain(..).map(|e| (index, e)));
                contributions.push(Contribution::default());
                continue;
            }
        };
        let acc = match role_at.entry(role_id.clone()) {
            Entry::Vacant(e) => {
                e.insert(roles.len());
                roles.push((
                    role_id.clone(),
                    RoleAcc {
                        first: index,
                        spec,
                        origin: item.origin.clone(),
                        trust: Trust::default(),
                    },
                ));
                &mut roles.last_mut().expect("just pushed").1
            }
            Entry::Occupied(e) => {
                let acc = &mut roles[*e.get()].1;
                let origin = &acc.origin;
                for field in disagreements(&acc.spec, &spec) {
                    issues.push((
                        index,
                        FieldIssue::new(
                            &[field],
                            format!(
                                "role {} is also declared at {origin} with a different {field}",
                                block.role
                            ),
                        )
                        .help("every workload that names a role must describe it the same way; make the blocks agree or use another role"),
                    ));
                }
                acc
            }
        };
        let trust = &mut acc.trust;
        let mut contribution = Contribution::default();
        match block.mechanism {
            Mechanism::Irsa => {
                let Some(issuer) = cluster.issuer.as_deref() else {
                    issues.push((
                        index,
                        FieldIssue::new(
                            &[],
                            format!("cluster {} has no OIDC issuer", cluster.plan_name),
                        )
                        .help(format!(
                            "set `issuer = \"https://...\"` in [clusters.{}], or let wid discover it with eks:DescribeCluster",
                            cluster.plan_name
                        )),
                    ));
                    contributions.push(contribution);
                    continue;
                };
                let at = oidc.at(account, issuer, partition, |id| {
                    providers.entry(id.clone()).or_insert(index);
                });
                trust.irsa(at).push(item.workload.subject());
                contribution
                    .ksa_annotations
                    .insert(ROLE_ARN_ANNOTATION.to_owned(), role_arn.into());
                contribution.ksa_depends_on.push(role_id.clone());
            }
            Mechanism::PodIdentity => {
                if account != cluster.account {
                    issues.push((
                        index,
                        FieldIssue::new(
                            &["account"],
                            format!(
                                "pod identity needs the role in the cluster's account {} (role account is {account})",
                                cluster.account
                            ),
                        )
                        .help("set `aws.mechanism = \"irsa\"` for a cross-account role, or remove `aws.account` to use a role in the cluster's account"),
                    ));
                }
                trust
                    .pods(
                        ids::cluster_arn(&cluster.account, &cluster.region, &cluster.eks_name),
                        &item.workload.namespace,
                    )
                    .push(item.workload.service_account.clone());
                let mut assoc = Resource::new(ids::association_id(
                    &cluster.account,
                    &cluster.region,
                    &cluster.eks_name,
                    &item.workload.namespace,
                    &item.workload.service_account,
                ))
                .attr("role_arn", role_arn)
                .depends_on(&role_id);
                // An association this plan did not make (by hand, by eksctl) is taken
                // over only when the plan says so, like a role.
                assoc = assoc.adoptable("aws.adopt", block.adopt);
                assoc.origin = Some(item.origin.clone());
                associations.push(assoc);
            }
        }
        contributions.push(contribution);
    }

    let mut resources = Vec::new();
    for (id, first) in &providers {
        let mut r = Resource::new(id.clone())
            .attr("client_ids", json!([STS_AUDIENCE]))
            .mode(Mode::Shared);
        r.origin = Some(items[*first].origin.clone());
        resources.push(r);
    }
    let description = role_description(plan);
    for (id, acc) in roles {
        let RoleAcc {
            first,
            spec,
            origin,
            mut trust,
        } = acc;
        trust.finish();
        // Held as its text (a few hundred bytes rather than a tree of a few KB), whose
        // characters are what IAM counts: serde_json writes no whitespace.
        let doc = trust_document(&trust, &oidc);
        let size = doc.as_str().chars().count();
        if size > options.trust_policy_limit {
            let subjects = trust.subjects();
            issues.push((
                first,
                FieldIssue::new(
                    &["role"],
                    format!(
                        "the trust policy of role {} would be {size} characters for {subjects} service accounts; IAM allows {} (whitespace not counted)",
                        id.part(1),
                        options.trust_policy_limit
                    ),
                )
                .help("split the workloads across several `aws.role`s, set `aws.mechanism = \"pod-identity\"`, or raise the IAM quota L-C07B4B0D and set `trust_policy_limit` under [aws] to match"),
            ));
        }
        let mut r = Resource::new(id.clone())
            .attr("trust_policy", AttrValue::Json(doc))
            // The role's lists and maps, like its policies, held as text.
            .attr(
                "managed_policies",
                AttrValue::Json(JsonText::strings(spec.managed.iter().map(String::as_str))),
            )
            .attr(
                "inline_policies",
                AttrValue::Json(JsonText::object(
                    spec.inline.iter().map(|(name, doc)| (name.as_str(), doc)),
                )),
            )
            .attr(
                "permissions_boundary",
                spec.boundary.map_or(Value::Null, Value::String),
            )
            .attr("max_session_duration", spec.max_session)
            .attr("path", spec.path)
            // The description is how prune finds wid's roles without reading every
            // role's tags: part of the mark, never a reason to touch an adopted role.
            .mark("description", description.clone())
            .attr(
                "tags",
                AttrValue::Json(JsonText::string_map(
                    spec.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )),
            );
        // Its OIDC providers, in id order.
        let mut providers: Vec<&ResourceId> =
            trust.irsa.iter().map(|(at, _)| &oidc.0[*at].id).collect();
        providers.sort_unstable();
        for p in providers {
            r = r.depends_on(p);
        }
        r = r.adoptable("aws.adopt", spec.adopt);
        r.origin = Some(origin);
        resources.push(r);
    }
    resources.extend(associations);
    if !issues.is_empty() {
        issues.sort_by_key(|(i, _)| *i);
        return Err(issues);
    }
    Ok(Compiled {
        resources,
        contributions,
    })
}

fn role_spec(item: &AwsWorkload) -> Result<RoleSpec, Vec<FieldIssue>> {
    let block = item.block;
    let inline = match block.normalized.take() {
        // Validation read and normalized them.
        Some(docs) => docs,
        None => {
            let mut inline = AttrMap::new();
            let mut errs = Vec::new();
            for (name, policy) in &block.inline_policies {
                match policy
                    .text(&item.plan_dir)
                    .and_then(|t| normalize_policy(&t))
                {
                    Ok(doc) => {
                        inline.insert(name.clone(), JsonText::new(&doc));
                    }
                    Err(e) => errs.push(FieldIssue::new(&["inline_policies", name], e)),
                }
            }
            if !errs.is_empty() {
                return Err(errs);
            }
            inline
        }
    };
    Ok(RoleSpec {
        managed: block.managed_policies.iter().cloned().collect(),
        inline,
        boundary: block.permissions_boundary.clone(),
        max_session: block.max_session_or_default(),
        path: block.path_or_default().to_owned(),
        tags: block.tags.clone(),
        adopt: block.adopt,
    })
}

fn disagreements(a: &RoleSpec, b: &RoleSpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.managed != b.managed {
        out.push("managed_policies");
    }
    if a.inline != b.inline {
        out.push("inline_policies");
    }
    if a.boundary != b.boundary {
        out.push("permissions_boundary");
    }
    if a.max_session != b.max_session {
        out.push("max_session_duration");
    }
    if a.path != b.path {
        out.push("path");
    }
    if a.tags != b.tags {
        out.push("tags");
    }
    if a.adopt != b.adopt {
        out.push("adopt");
    }
    out
}

/// The OIDC providers a compile names, each made once per (account, issuer): a plan
/// names few, and its IRSA workloads name them thousands of times.
#[derive(Default)]
struct Oidc<'a>(Vec<OidcProvider<'a>>);

struct OidcProvider<'a> {
    account: &'a str,
    issuer: &'a str,
    id: ResourceId,
    arn: String,
    host_path: &'a str,
}

impl<'a> Oidc<'a> {
    /// The place of the provider of `account` and `issuer`; `made` sees it when it is new.
    fn at(
        &mut self,
        account: &'a str,
        issuer: &'a str,
        partition: &str,
        made: impl FnOnce(&ResourceId),
    ) -> usize {
        if let Some(at) = self
            .0
            .iter()
            .position(|p| p.account == account && p.issuer == issuer)
        {
            return at;
        }
        let id = ids::oidc_id(account, issuer);
        made(&id);
        self.0.push(OidcProvider {
            account,
            issuer,
            arn: ids::oidc_arn(partition, &id),
            id,
            host_path: ids::issuer_host_path(issuer),
        });
        self.0.len() - 1
    }
}

/// The role's trust policy, normalized: one IRSA statement per OIDC provider (its subjects
/// listed under `StringEquals`, with the audience), one Pod Identity statement per cluster
/// and namespace.
fn trust_document(trust: &Trust, oidc: &Oidc<'_>) -> JsonText {
    let mut statements = Vec::with_capacity(trust.irsa.len() + trust.pods.len());
    for (at, subjects) in &trust.irsa {
        let p = &oidc.0[*at];
        statements.push(irsa_statement(&p.arn, p.host_path, subjects));
    }
    for (cluster_arn, namespace, ksas) in &trust.pods {
        statements.push(pod_identity_statement(cluster_arn, namespace, ksas));
    }
    policy::trust_document(statements)
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
