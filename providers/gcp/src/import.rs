//! `wid import` on GKE: from the KSAs of a cluster (their `iam.gke.io/gcp-service-account`
//! annotations) and the cluster project's IAM policy (direct-mode principals) to the `gcp`
//! blocks that reproduce them.
//!
//! Calls: one `iam.serviceAccounts.list` per project holding an annotated account or the
//! plan's record (the cluster's project), one `getIamPolicy` per annotated account, and the
//! cluster project's `getIamPolicy` once. Roles granted on other resources (buckets, other
//! projects) cannot be discovered from here; the plan says so in a closing comment.

use std::collections::{BTreeMap, BTreeSet};

use google_cloud_iam_admin_v1::model::ServiceAccount;
use google_cloud_iam_v1::model::Policy;
use serde_json::{Map, Value, json};
use wid_core::ProviderError;
use wid_core::import::{ImportWarning, Imported, ImportedWorkload, KsaFacts};

use crate::bindings::lines;
use crate::client::GcpProvider;
use crate::compile::GkeCluster;
use crate::ids;
use crate::names::{
    KSA_ANNOTATION, SA_DOMAIN, WORKLOAD_IDENTITY_USER, account_id_of, expand_service_account,
    ksa_member, sa_member, workload_pool,
};
use crate::record;

/// The prefix of every direct-mode principal of a KSA.
const PRINCIPAL_PREFIX: &str = "principal://iam.googleapis.com/projects/";

/// A KSA's direct-mode principal, split: (project number, pool, namespace, KSA).
fn parse_principal(member: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = member.strip_prefix(PRINCIPAL_PREFIX)?;
    let (number, rest) = rest.split_once("/locations/global/workloadIdentityPools/")?;
    let (pool, rest) = rest.split_once("/subject/ns/")?;
    let (ns, ksa) = rest.split_once("/sa/")?;
    (!ksa.contains('/')).then_some((number, pool, ns, ksa))
}

/// What import read once for the whole cluster.
struct Context<'a> {
    cluster: &'a GkeCluster,
    plan: &'a str,
    /// Every account of the listed projects, by email.
    accounts: BTreeMap<String, ServiceAccount>,
    /// The plan's record entries: the bindings wid added for the plan.
    record: BTreeSet<String>,
    /// The cluster project's policy, its resource name, and its unconditional lines.
    project_resource: String,
    project_lines: BTreeSet<(String, String)>,
    project_policy: Policy,
}

impl Context<'_> {
    fn recorded(&self, resource: &str, role: &str, member: &str) -> bool {
        self.record.contains(&record::entry(resource, role, member))
    }

    /// The roles `member` holds on the cluster's project (unconditional), and the
    /// conditional bindings it is in, as notes.
    fn project_roles(&self, member: &str) -> (BTreeSet<String>, Vec<String>) {
        let roles = self
            .project_lines
            .iter()
            .filter(|(_, m)| m == member)
            .map(|(r, _)| r.clone())
            .collect();
        let conditional = self
            .project_policy
            .bindings
            .iter()
            .filter(|b| b.condition.is_some() && b.members.iter().any(|m| m == member))
            .map(|b| {
                let title = b.condition.as_ref().map(|c| c.title.as_str()).unwrap_or("");
                format!(
                    "{} on project {} under condition {title:?} is not imported: wid writes no conditional bindings",
                    b.role, self.cluster.project
                )
            })
            .collect();
        (roles, conditional)
    }
}

impl GcpProvider {
    /// The `gcp` blocks that reproduce the workload identities of `cluster`'s KSAs:
    /// impersonation from their annotations, direct mode from the principals that hold
    /// roles on the cluster's project.
    pub async fn import(
        &self,
        cluster: &GkeCluster,
        ksas: &[KsaFacts],
        plan: &str,
    ) -> Result<Imported, ProviderError> {
        let mut out = Imported::default();
        let by_path: BTreeMap<String, &KsaFacts> = ksas.iter().map(|k| (k.path(), k)).collect();
        let mut by_email: BTreeMap<String, Vec<&KsaFacts>> = BTreeMap::new();
        let mut projects = BTreeSet::from([cluster.project.clone()]);
        for ksa in ksas {
            let Some(email) = ksa.annotations.get(KSA_ANNOTATION) else {
                continue;
            };
            match expand_service_account(email, &cluster.project) {
                Ok((project, full)) if email.contains('@') => {
                    projects.insert(project);
                    by_email.entry(full).or_default().push(ksa);
                }
                Ok(_) | Err(_) => out.warnings.push(ImportWarning::ksa(
                    &ksa.namespace,
                    &ksa.name,
                    format!("{KSA_ANNOTATION} is {email:?}, not a service account email (ID@PROJECT.{SA_DOMAIN}): not imported"),
                )),
            }
        }
        let mut accounts = BTreeMap::new();
        let mut record_entries = BTreeSet::new();
        let record_prefix = record::record_account(plan, 0);
        let record_prefix = record_prefix.trim_end_matches('0');
        for project in &projects {
            for sa in self.list_accounts(project).await? {
                if account_id_of(&sa.email).starts_with(record_prefix)
                    && sa.display_name == record::record_display_name(plan)
                {
                    record_entries.extend(record::parse_entries(&sa.description));
                }
                accounts.insert(sa.email.clone(), sa);
            }
        }
        let project_resource = format!("projects/{}", cluster.project);
        let project_policy = self
            .read_policy(&ids::policy_id(&project_resource))
            .await?
            .unwrap_or_default();
        let ctx = Context {
            cluster,
            plan,
            accounts,
            record: record_entries,
            project_lines: lines(&project_policy),
            project_resource,
            project_policy,
        };
        for (email, users) in &by_email {
            self.import_account(&ctx, email, users, &by_path, &mut out)
                .await?;
        }
        import_direct(&ctx, &by_path, &mut out);
        out.notes.push(format!(
            "Roles granted on other resources (buckets, datasets, other projects, service accounts) cannot be discovered from project {}: add them to the workloads' roles as {{ role = \"...\", project = \"...\" }} or {{ role = \"...\", service_account = \"...\" }}.",
            cluster.project
        ));
        out.workloads.sort_by(|a, b| {
            (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account))
        });
        Ok(out)
    }

    /// The impersonate-mode workloads of the KSAs annotated with `email`.
    async fn import_account(
        &self,
        ctx: &Context<'_>,
        email: &str,
        users: &[&KsaFacts],
        in_cluster: &BTreeMap<String, &KsaFacts>,
        out: &mut Imported,
    ) -> Result<(), ProviderError> {
        let warn_all = |out: &mut Imported, message: &str| {
            for k in users {
                out.warnings
                    .push(ImportWarning::ksa(&k.namespace, &k.name, message));
            }
        };
        let Some(sa) = ctx.accounts.get(email) else {
            warn_all(
                out,
                &format!("service account {email} does not exist: not imported"),
            );
            return Ok(());
        };
        let parsed = record::parse(&sa.description);
        let ours = match parsed.plan.as_deref() {
            Some(p) if p == ctx.plan => true,
            Some(other) => {
                warn_all(
                    out,
                    &format!(
                        "service account {email} belongs to wid plan {other:?}: not imported (import it into that plan with --name {other})"
                    ),
                );
                return Ok(());
            }
            None => false,
        };
        let (project, _) = expand_service_account(email, &ctx.cluster.project)
            .unwrap_or_else(|_| (ctx.cluster.project.clone(), email.to_owned()));
        let sa_resource = format!("projects/{project}/serviceAccounts/{email}");
        let sa_policy = self
            .read_policy(&ids::policy_id(&sa_resource))
            .await?
            .unwrap_or_default();
        let sa_lines = lines(&sa_policy);
        let member = sa_member(email);
        let (roles, conditional) = ctx.project_roles(&member);
        let mut recorded = roles
            .iter()
            .all(|r| ctx.recorded(&ctx.project_resource, r, &member));
        let pool = workload_pool(&ctx.cluster.project);
        let imported: BTreeSet<String> = users
            .iter()
            .map(|k| ksa_member(&ctx.cluster.project, &k.namespace, &k.name))
            .collect();
        for k in users {
            let m = ksa_member(&ctx.cluster.project, &k.namespace, &k.name);
            if !sa_lines.contains(&(WORKLOAD_IDENTITY_USER.to_owned(), m.clone())) {
                out.warnings.push(ImportWarning::ksa(&k.namespace, &k.name, format!(
                    "{email} has no {WORKLOAD_IDENTITY_USER} binding for {m}: the KSA cannot act as it today, and the plan adds the binding"
                )));
            }
            recorded &= ctx.recorded(&sa_resource, WORKLOAD_IDENTITY_USER, &m);
        }
        let mut others = Vec::new();
        for (role, m) in &sa_lines {
            if role != WORKLOAD_IDENTITY_USER || imported.contains(m) {
                continue;
            }
            let Some(path) = m
                .strip_prefix(&format!("serviceAccount:{pool}["))
                .and_then(|r| r.strip_suffix(']'))
            else {
                continue;
            };
            let r#where = if in_cluster.contains_key(path) {
                "in this cluster, not annotated with it"
            } else {
                "not in this cluster"
            };
            others.push(format!("{path} ({where})"));
        }
        let adopt = !ours || !recorded;
        let first = users[0];
        if !others.is_empty() {
            out.warnings.push(ImportWarning::ksa(&first.namespace, &first.name, format!(
                "{email} also lets {} act as it; the plan leaves those bindings as they are (they are not wid's)",
                others.join(", ")
            )));
        }
        let user_description = parsed.user.clone().unwrap_or_default();
        let limit = record::user_description_limit(ctx.plan);
        let create = if !ours && user_description.len() > limit {
            warn_all(
                out,
                &format!(
                    "the description of {email} is {} bytes, more than the {limit} that fit beside wid's mark for plan {:?}: imported with create = false (wid adds bindings and never changes the account)",
                    user_description.len(),
                    ctx.plan
                ),
            );
            false
        } else {
            true
        };
        let mut block = Map::new();
        let name = if project == ctx.cluster.project {
            account_id_of(email).to_owned()
        } else {
            email.to_owned()
        };
        block.insert("service_account".into(), json!(name));
        if !create {
            block.insert("create".into(), json!(false));
        } else {
            if !sa.display_name.is_empty() {
                block.insert("display_name".into(), json!(sa.display_name));
            }
            if !user_description.is_empty() {
                block.insert("description".into(), json!(user_description));
            }
        }
        if !roles.is_empty() {
            block.insert("roles".into(), json!(roles));
        }
        if adopt {
            block.insert("adopt".into(), json!(true));
        }
        for k in users {
            let mut notes = vec![format!("{KSA_ANNOTATION}: {email}")];
            notes.push(if ours {
                format!(
                    "service account {email} (made by wid for plan {})",
                    ctx.plan
                )
            } else {
                format!("service account {email} (made outside wid: adopted as it is)")
            });
            if !roles.is_empty() {
                notes.push(format!(
                    "roles: its bindings on project {}",
                    ctx.cluster.project
                ));
            }
            notes.extend(conditional.iter().cloned());
            out.workloads.push(ImportedWorkload {
                namespace: k.namespace.clone(),
                service_account: k.name.clone(),
                block: block.clone(),
                notes,
            });
        }
        Ok(())
    }
}

/// The direct-mode workloads: KSAs of the cluster whose own principal holds roles on the
/// cluster's project.
fn import_direct(ctx: &Context<'_>, in_cluster: &BTreeMap<String, &KsaFacts>, out: &mut Imported) {
    let pool = workload_pool(&ctx.cluster.project);
    let mut principals: BTreeMap<(String, String), (String, BTreeSet<String>)> = BTreeMap::new();
    for (role, member) in &ctx.project_lines {
        let Some((number, p, ns, ksa)) = parse_principal(member) else {
            if member.starts_with("principalSet://") && member.contains(&pool) {
                out.notes.push(format!(
                    "{role} is granted on project {} to {member}, a set of this project's workload identities: wid grants roles to single KSAs only, so it is not imported",
                    ctx.cluster.project
                ));
            }
            continue;
        };
        if p != pool {
            continue;
        }
        principals
            .entry((ns.to_owned(), ksa.to_owned()))
            .or_insert_with(|| (number.to_owned(), BTreeSet::new()))
            .1
            .insert(role.clone());
    }
    let mut learned_number: Option<String> = None;
    for ((ns, name), (number, roles)) in principals {
        let path = format!("{ns}/{name}");
        let Some(ksa) = in_cluster.get(&path) else {
            out.notes.push(format!(
                "the principal of {path} holds {} on project {}; the cluster has no such KSA (or it is outside the namespaces imported), so it is not imported",
                roles.iter().cloned().collect::<Vec<_>>().join(", "),
                ctx.cluster.project
            ));
            continue;
        };
        let known = ctx
            .cluster
            .project_number
            .clone()
            .or_else(|| learned_number.clone());
        if known.as_deref().is_some_and(|n| n != number) {
            out.warnings.push(ImportWarning::ksa(&ns, &name, format!(
                "the principal of {path} names project number {number}, not project {}'s: not imported",
                ctx.cluster.project
            )));
            continue;
        }
        learned_number.get_or_insert(number.clone());
        if ksa.annotations.contains_key(KSA_ANNOTATION) {
            out.warnings.push(ImportWarning::ksa(&ns, &name, format!(
                "the KSA's own principal also holds {} on project {}; a workload has one mode, so only its service account is imported",
                roles.iter().cloned().collect::<Vec<_>>().join(", "),
                ctx.cluster.project
            )));
            continue;
        }
        let member = crate::names::ksa_principal(&ctx.cluster.project, &number, &ns, &name);
        let recorded = roles
            .iter()
            .all(|r| ctx.recorded(&ctx.project_resource, r, &member));
        let mut block = Map::new();
        block.insert("direct".into(), Value::Bool(true));
        block.insert("roles".into(), json!(roles));
        if !recorded {
            block.insert("adopt".into(), Value::Bool(true));
        }
        let (_, conditional) = ctx.project_roles(&member);
        let mut notes = vec![format!(
            "direct mode: the KSA's principal holds these roles on project {}",
            ctx.cluster.project
        )];
        notes.extend(conditional);
        out.workloads.push(ImportedWorkload {
            namespace: ns,
            service_account: name,
            block,
            notes,
        });
    }
    if ctx.cluster.project_number.is_none()
        && let Some(number) = learned_number
    {
        out.cluster
            .insert("project_number".into(), Value::String(number));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_splits_into_number_pool_namespace_and_ksa() {
        let m = crate::names::ksa_principal("acme", "123", "shop", "orders");
        assert_eq!(
            parse_principal(&m),
            Some(("123", "acme.svc.id.goog", "shop", "orders"))
        );
        assert_eq!(
            parse_principal(
                "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/x"
            ),
            None
        );
        assert_eq!(
            parse_principal("serviceAccount:a@b.iam.gserviceaccount.com"),
            None
        );
    }
}
