//! `wid import` on EKS: from the KSAs of a cluster (their `eks.amazonaws.com/role-arn`
//! annotations) and the cluster's EKS Pod Identity associations to the `aws` blocks that
//! reproduce them, read with this provider's own readers.
//!
//! Calls: `eks:DescribeCluster` (the issuer) unless known; one paged
//! `eks:ListPodIdentityAssociations` for the cluster and one
//! `eks:DescribePodIdentityAssociation` per association; per role `iam:GetRole`,
//! `iam:ListAttachedRolePolicies`, `iam:ListRolePolicies` and `iam:GetRolePolicy` per inline
//! policy; `iam:ListOpenIDConnectProviders` once per account with IRSA roles.
//!
//! A role's trust policy is not imported as text: wid writes trust from the plan's KSAs.
//! Import reads what the trust grants and says, loudly, what a plan would add or take away
//! (a role that also trusts KSAs of another cluster, or `StringLike` subjects).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use wid_core::import::{ImportWarning, Imported, ImportedWorkload, KsaFacts};
use wid_core::{Ownership, ProviderError};

use crate::client::AwsProvider;
use crate::compile::ROLE_ARN_ANNOTATION;
use crate::error::{Call, is_not_found};
use crate::ids;
use crate::import_trust::{Grants, grants};
use crate::observe::ownership;
use crate::observe_other::LiveAssociation;
use crate::policy::{irsa_statement, normalize_policy, pod_identity_statement, trust_document};
use crate::{EksCluster, Mechanism};

/// IAM's default maximum session duration, which the plan leaves unsaid.
const DEFAULT_MAX_SESSION: i32 = 3600;

/// A role as import reads it.
struct LiveRole {
    arn: String,
    path: String,
    managed: BTreeSet<String>,
    inline: Map<String, Value>,
    boundary: Option<String>,
    max_session: i32,
    tags: BTreeMap<String, String>,
    ownership: Ownership,
    trust: Value,
}

/// One KSA's use of a role.
struct Use<'a> {
    ksa: &'a KsaFacts,
    mechanism: Mechanism,
    association: Option<(String, LiveAssociation)>,
}

impl AwsProvider {
    /// The `aws` blocks that reproduce the workload identities of `cluster`'s KSAs: IRSA
    /// from their annotations, EKS Pod Identity from the cluster's associations.
    pub async fn import(
        &self,
        cluster: &EksCluster,
        ksas: &[KsaFacts],
        plan: &str,
    ) -> Result<Imported, ProviderError> {
        let issuer = match &cluster.issuer {
            Some(i) => i.clone(),
            None => self.discover_issuer(cluster).await?,
        };
        let host_path = ids::issuer_host_path(&issuer).to_owned();
        let by_path: BTreeMap<String, &KsaFacts> = ksas.iter().map(|k| (k.path(), k)).collect();
        let mut out = Imported::default();
        let mut uses: BTreeMap<String, Vec<Use>> = BTreeMap::new();
        for ksa in ksas {
            let Some(arn) = ksa.annotations.get(ROLE_ARN_ANNOTATION) else {
                continue;
            };
            if ids::parse_role_arn(arn).is_none() {
                out.warnings.push(ImportWarning::ksa(
                    &ksa.namespace,
                    &ksa.name,
                    format!("{ROLE_ARN_ANNOTATION} is {arn:?}, not an IAM role ARN: not imported"),
                ));
                continue;
            }
            uses.entry(arn.clone()).or_default().push(Use {
                ksa,
                mechanism: Mechanism::Irsa,
                association: None,
            });
        }
        for (ns, name, assoc_id, live) in self.cluster_associations(cluster, plan).await? {
            let Some(ksa) = by_path.get(&format!("{ns}/{name}")) else {
                out.warnings.push(ImportWarning::cluster(format!(
                    "EKS Pod Identity association {assoc_id} gives {ns}/{name} role {}, but the cluster has no such KSA (or it is outside the namespaces imported): not imported",
                    live.role_arn
                )));
                continue;
            };
            if ksa.annotations.contains_key(ROLE_ARN_ANNOTATION) {
                out.warnings.push(ImportWarning::ksa(&ns, &name, format!(
                    "the KSA also has EKS Pod Identity association {assoc_id} (role {}); a workload has one mechanism, so only its IRSA annotation is imported",
                    live.role_arn
                )));
                continue;
            }
            uses.entry(live.role_arn.clone()).or_default().push(Use {
                ksa,
                mechanism: Mechanism::PodIdentity,
                association: Some((assoc_id, live)),
            });
        }
        let mut providers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (arn, uses) in uses {
            let (account, name) = ids::parse_role_arn(&arn).expect("only role ARNs are collected");
            let Some(role) = self.import_role(account, name, plan).await? else {
                for u in &uses {
                    out.warnings.push(ImportWarning::ksa(
                        &u.ksa.namespace,
                        &u.ksa.name,
                        format!("role {arn} does not exist: not imported"),
                    ));
                }
                continue;
            };
            let irsa = uses.iter().any(|u| u.mechanism == Mechanism::Irsa);
            let oidc = if irsa {
                let arns = match providers.get(account) {
                    Some(a) => a,
                    None => providers
                        .entry(account.to_owned())
                        .or_insert(self.oidc_provider_arns(account).await?),
                };
                Some(arns.contains(&ids::oidc_arn(
                    ids::partition(&cluster.region),
                    &ids::oidc_id(account, &issuer),
                )))
            } else {
                None
            };
            let facts = RoleFacts {
                arn: &arn,
                account,
                name,
                role: &role,
                cluster,
                host_path: &host_path,
                oidc_exists: oidc,
            };
            facts.workloads(&uses, &by_path, plan, &mut out);
        }
        out.workloads.sort_by(|a, b| {
            (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account))
        });
        Ok(out)
    }

    /// Every Pod Identity association of `cluster`, described: (namespace, KSA,
    /// association id, what it says).
    async fn cluster_associations(
        &self,
        cluster: &EksCluster,
        plan: &str,
    ) -> Result<Vec<(String, String, String, LiveAssociation)>, ProviderError> {
        let eks = self.account(&cluster.account).await?.eks(&cluster.region);
        let list = Call::new(
            "eks:ListPodIdentityAssociations",
            format!(
                "list the pod identity associations of EKS cluster {} in account {}",
                cluster.eks_name, cluster.account
            ),
            ids::cluster_arn(&cluster.account, &cluster.region, &cluster.eks_name),
        );
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.counter.count(list.op);
            let page = eks
                .list_pod_identity_associations()
                .cluster_name(&cluster.eks_name)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| list.fail(&e))?;
            for s in page.associations() {
                if let (Some(ns), Some(ksa), Some(id)) =
                    (s.namespace(), s.service_account(), s.association_id())
                {
                    found.push((ns.to_owned(), ksa.to_owned(), id.to_owned()));
                }
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        let mut out = Vec::new();
        for (ns, ksa, assoc_id) in found {
            let id = ids::association_id(
                &cluster.account,
                &cluster.region,
                &cluster.eks_name,
                &ns,
                &ksa,
            );
            if let Some(live) = self.describe_association(&id, &assoc_id, plan).await? {
                out.push((ns, ksa, assoc_id, live));
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(out)
    }

    /// The ARNs of the IAM OIDC providers of `account` (one list).
    async fn oidc_provider_arns(
        &self,
        account_id: &str,
    ) -> Result<BTreeSet<String>, ProviderError> {
        let account = self.account(account_id).await?;
        let list = Call::new(
            "iam:ListOpenIDConnectProviders",
            format!("list the OIDC providers of account {account_id}"),
            format!("arn:aws:iam::{account_id}:oidc-provider/*"),
        );
        self.counter.count(list.op);
        let out = account
            .iam
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(|e| list.fail(&e))?;
        Ok(out
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn().map(str::to_owned))
            .collect())
    }

    /// Reads one role whole: `None` when it does not exist.
    async fn import_role(
        &self,
        account_id: &str,
        name: &str,
        plan: &str,
    ) -> Result<Option<LiveRole>, ProviderError> {
        let account = self.account(account_id).await?;
        let id = ids::role_id(account_id, name);
        let arn = format!("arn:aws:iam::{account_id}:role/{name}");
        let call = Call::new(
            "iam:GetRole",
            format!("read role {name} in account {account_id}"),
            &arn,
        )
        .id(&id);
        self.counter.count(call.op);
        let role = match account.iam.get_role().role_name(name).send().await {
            Ok(out) => match out.role {
                Some(role) => role,
                None => return Ok(None),
            },
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(call.fail(&e)),
        };
        let tags: Vec<(&str, &str)> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
        // An unparsable trust policy is kept as text: it then grants nothing wid can
        // read, and the warnings say the plan rewrites it.
        let trust = role
            .assume_role_policy_document()
            .map(|doc| normalize_policy(doc).unwrap_or_else(|_| Value::String(doc.to_owned())))
            .unwrap_or(Value::Null);
        let inline = match self.inline(&account, account_id, name, &id).await? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Ok(Some(LiveRole {
            arn: role.arn().to_owned(),
            path: role.path().to_owned(),
            managed: self.attached(&account, account_id, name, &id).await?,
            inline,
            boundary: role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_owned),
            max_session: role.max_session_duration().unwrap_or(DEFAULT_MAX_SESSION),
            ownership: ownership(tags.iter().copied(), plan),
            tags: tags
                .iter()
                .filter(|(k, _)| *k != wid_core::MANAGED_BY_KEY && !k.starts_with("wid.dev/"))
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            trust,
        }))
    }
}

/// One live role and what import knows around it.
struct RoleFacts<'a> {
    /// The ARN the KSAs name.
    arn: &'a str,
    account: &'a str,
    name: &'a str,
    role: &'a LiveRole,
    cluster: &'a EksCluster,
    host_path: &'a str,
    /// Whether the IAM OIDC provider of the cluster's issuer exists in the role's account
    /// (`None`: no KSA uses the role through IRSA).
    oidc_exists: Option<bool>,
}

impl RoleFacts<'_> {
    /// Adds the workloads of the role's `uses` to `out`, with warnings for what a plan
    /// would change.
    fn workloads(
        &self,
        uses: &[Use],
        in_cluster: &BTreeMap<String, &KsaFacts>,
        plan: &str,
        out: &mut Imported,
    ) {
        let warn = |out: &mut Imported, u: &Use, m: String| {
            out.warnings
                .push(ImportWarning::ksa(&u.ksa.namespace, &u.ksa.name, m));
        };
        if let Ownership::OtherPlan(other) = &self.role.ownership {
            for u in uses {
                warn(
                    out,
                    u,
                    format!(
                        "role {} belongs to wid plan {other:?}: not imported (import it into that plan with --name {other})",
                        self.name
                    ),
                );
            }
            return;
        }
        let mut kept: Vec<&Use> = Vec::new();
        for u in uses {
            match &u.association {
                Some((id, a)) => {
                    if let Ownership::OtherPlan(other) = &a.ownership {
                        warn(
                            out,
                            u,
                            format!(
                                "EKS Pod Identity association {id} belongs to wid plan {other:?}: not imported"
                            ),
                        );
                    } else if self.account != self.cluster.account {
                        warn(
                            out,
                            u,
                            format!(
                                "EKS Pod Identity association {id} names role {} of account {}, not the cluster's: wid does not manage cross-account Pod Identity; not imported",
                                self.name, self.account
                            ),
                        );
                    } else {
                        kept.push(u);
                    }
                }
                None => kept.push(u),
            }
        }
        if kept.is_empty() {
            return;
        }
        let adopt = self.role.ownership != Ownership::Ours
            || kept.iter().any(|u| {
                u.association
                    .as_ref()
                    .is_some_and(|(_, a)| a.ownership != Ownership::Ours)
            });
        let problems = self.trust_problems(&kept, in_cluster);
        if !problems.is_empty() {
            let first = kept[0];
            warn(
                out,
                first,
                format!(
                    "role {}: the plan rewrites its trust policy from the imported KSAs, and would {}; review it before applying",
                    self.name,
                    problems.join("; ")
                ),
            );
        }
        if let Some(false) = self.oidc_exists {
            warn(
                out,
                kept[0],
                format!(
                    "the IAM OIDC provider for the cluster's issuer does not exist in account {}: the plan creates it (today no KSA can assume role {})",
                    self.account, self.name
                ),
            );
        }
        for u in &kept {
            let mut w = ImportedWorkload {
                namespace: u.ksa.namespace.clone(),
                service_account: u.ksa.name.clone(),
                block: self.block(u.mechanism, adopt),
                notes: Vec::new(),
            };
            match &u.association {
                None => {
                    w.notes.push(format!("{ROLE_ARN_ANNOTATION}: {}", self.arn));
                    if self.arn != self.role.arn {
                        warn(
                            out,
                            u,
                            format!(
                                "the KSA names {} but the role's ARN is {}: the plan rewrites the annotation",
                                self.arn, self.role.arn
                            ),
                        );
                    }
                }
                Some((id, a)) => w.notes.push(format!(
                    "EKS Pod Identity association {id} on EKS cluster {} ({})",
                    self.cluster.eks_name,
                    made_by(&a.ownership, plan)
                )),
            }
            w.notes.push(format!(
                "role {} ({})",
                self.role.arn,
                made_by(&self.role.ownership, plan)
            ));
            out.workloads.push(w);
        }
    }

    /// The aws block of one workload of the role.
    fn block(&self, mechanism: Mechanism, adopt: bool) -> Map<String, Value> {
        let r = self.role;
        let mut b = Map::new();
        b.insert("role".into(), json!(self.name));
        if self.account != self.cluster.account {
            b.insert("account".into(), json!(self.account));
        }
        if mechanism == Mechanism::PodIdentity {
            b.insert("mechanism".into(), json!("pod-identity"));
        }
        if !r.managed.is_empty() {
            b.insert("managed_policies".into(), json!(r.managed));
        }
        if !r.inline.is_empty() {
            let docs: Map<String, Value> = r
                .inline
                .iter()
                .map(|(k, doc)| {
                    let text = match doc {
                        Value::String(s) => s.clone(),
                        other => serde_json::to_string_pretty(other).unwrap_or_default(),
                    };
                    (k.clone(), Value::String(text))
                })
                .collect();
            b.insert("inline_policies".into(), Value::Object(docs));
        }
        if let Some(boundary) = &r.boundary {
            b.insert("permissions_boundary".into(), json!(boundary));
        }
        if r.max_session != DEFAULT_MAX_SESSION {
            b.insert("max_session_duration".into(), json!(r.max_session));
        }
        if r.path != "/" {
            b.insert("path".into(), json!(r.path));
        }
        if !r.tags.is_empty() {
            b.insert("tags".into(), json!(r.tags));
        }
        if adopt {
            b.insert("adopt".into(), json!(true));
        }
        b
    }

    /// The trust policy wid writes for `grants` (as compile does), normalized.
    fn wid_trust(&self, grants: &Grants) -> Value {
        let partition = ids::partition(&self.cluster.region);
        let mut statements = Vec::new();
        for (host_path, subjects) in &grants.irsa {
            let provider = ids::oidc_arn(partition, &ids::oidc_id(self.account, host_path));
            statements.push(irsa_statement(&provider, host_path, subjects));
        }
        for ((cluster_arn, namespace), ksas) in &grants.pods {
            statements.push(pod_identity_statement(cluster_arn, namespace, ksas));
        }
        trust_document(statements).value()
    }

    /// What the trust policy wid would write for `kept` adds to or takes from the live
    /// one, one phrase each; empty when they are the same document.
    fn trust_problems(
        &self,
        kept: &[&Use],
        in_cluster: &BTreeMap<String, &KsaFacts>,
    ) -> Vec<String> {
        let live = grants(&self.role.trust);
        let mut want = Grants::default();
        for u in kept {
            match u.mechanism {
                Mechanism::Irsa => {
                    want.irsa
                        .entry(self.host_path.to_owned())
                        .or_default()
                        .insert(u.ksa.subject());
                }
                Mechanism::PodIdentity => {
                    want.pods
                        .entry((
                            ids::cluster_arn(
                                &self.cluster.account,
                                &self.cluster.region,
                                &self.cluster.eks_name,
                            ),
                            u.ksa.namespace.clone(),
                        ))
                        .or_default()
                        .insert(u.ksa.name.clone());
                }
            }
        }
        let mut problems = Vec::new();
        let describe = |subject: &str| -> String {
            let path = subject
                .strip_prefix("system:serviceaccount:")
                .map(|p| p.replacen(':', "/", 1))
                .unwrap_or_else(|| subject.to_owned());
            if in_cluster.contains_key(&path) {
                format!("{path} (in this cluster, but not annotated with the role)")
            } else {
                format!("{path} (no such KSA in this cluster)")
            }
        };
        let none = BTreeSet::new();
        let here_live = live.irsa.get(self.host_path).unwrap_or(&none);
        let here_want = want.irsa.get(self.host_path).unwrap_or(&none);
        let dropped: Vec<String> = here_live
            .difference(here_want)
            .map(|s| describe(s))
            .collect();
        if !dropped.is_empty() {
            problems.push(format!("stop trusting {}", dropped.join(", ")));
        }
        let added: Vec<&String> = here_want.difference(here_live).collect();
        if !added.is_empty() {
            problems.push(format!(
                "add {} (annotated with the role, but not in its trust policy today)",
                added
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (hp, subjects) in live
            .irsa
            .iter()
            .filter(|(hp, _)| hp.as_str() != self.host_path)
        {
            problems.push(format!(
                "stop trusting KSAs of another cluster (issuer https://{hp}): {} (import that cluster into the same plan to keep them)",
                subjects.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        for (key, ksas) in &live.pods {
            let kept_ksas = want.pods.get(key).cloned().unwrap_or_default();
            let gone: Vec<&String> = ksas.difference(&kept_ksas).collect();
            if !gone.is_empty() {
                problems.push(format!(
                    "stop trusting Pod Identity sessions of {} in namespace {} of {}",
                    gone.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    key.1,
                    key.0
                ));
            }
        }
        for (key, ksas) in &want.pods {
            let had = live.pods.get(key).cloned().unwrap_or_default();
            let new: Vec<&String> = ksas.difference(&had).collect();
            if !new.is_empty() {
                problems.push(format!(
                    "trust Pod Identity sessions of {}/{} only through session tags (today: {})",
                    key.1,
                    new.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if live.other.is_empty() {
                        "not at all"
                    } else {
                        "through a broader statement"
                    }
                ));
            }
        }
        for other in &live.other {
            problems.push(format!("drop a statement wid does not write ({other})"));
        }
        if problems.is_empty() && self.wid_trust(&want) != self.role.trust {
            problems.push("rewrite it in wid's form (one statement per issuer, and per cluster and namespace; the same KSAs)".into());
        }
        problems
    }
}

/// Who made an object, for the plan's comments.
fn made_by(ownership: &Ownership, plan: &str) -> String {
    match ownership {
        Ownership::Ours => format!("made by wid for plan {plan}"),
        Ownership::OtherPlan(p) => format!("made by wid for plan {p}"),
        Ownership::Unowned => "made outside wid: adopted as it is".to_owned(),
    }
}
