//! `wid import`: read a cluster's KSAs that carry workload identity annotations (and its
//! EKS Pod Identity associations), follow each to its cloud identity, and write the plan
//! that reproduces them, with `adopt = true` on everything wid did not create, so that
//! `wid plan` on it changes nothing. The cluster's cloud decides how: this file names no
//! cloud; each entry of [`clouds::ALL`] recognizes its clusters and reads its side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use wid_core::import::{ImportWarning, Imported, KsaFacts};
use wid_kubernetes::import::{ContextInfo, LiveKsa, context_info};

use super::cluster::ClusterArgs;
use super::{CliError, ColorChoice, ExitCode};
use crate::clouds::import::{ClusterHints, Coordinates, ImportRequest};
use crate::clouds::{self, Cloud, ConnectEnv};
use crate::output::{ImportedCluster, ImportedPlan, PlanWorkload, render_imported_plan};
use crate::plan::ClusterKind;

/// Arguments of `wid import`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  wid import --context prod --out identities/prod.toml --name payments
  wid import --sandbox --cluster eks-dev --namespace shop
  wid import --context gke_acme-prod_us-central1_prod --namespace shop --out -
  wid import --context aks-prod --subscription SUB --resource-group rg-aks-prod

The plan it writes validates, and `wid plan` on it shows no change: objects wid did not
create carry `adopt = true` and are used as they are until an apply has to change them.
Warnings (on stderr, and as comments in the plan) say what a plan would change: a role
that trusts more KSAs than the cluster shows, an identity that does not trust the KSA.")]
pub struct ImportArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only KSAs in this namespace (repeatable). Default: every namespace.
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Write the plan to FILE; `-` (or no --out) prints it on stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The plan's name, its ownership scope. Default: the plan named by wid's marks on
    /// the cluster's annotated KSAs when they name one, else the cluster's name.
    #[arg(long, value_name = "PLAN")]
    pub name: Option<String>,
    #[command(flatten)]
    pub coordinates: CoordinateArgs,
}

/// A cluster kind import can read.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Amazon EKS.
    Eks,
    /// Google Kubernetes Engine.
    Gke,
    /// Azure Kubernetes Service.
    Aks,
}

/// Where the cluster is in its cloud, when the context, the sandbox and the KSAs do not
/// say. Named after the plan's cluster keys.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cloud coordinates (when the context and the KSAs do not tell)")]
pub struct CoordinateArgs {
    /// The cluster's kind.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// EKS: the AWS account that holds the cluster.
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
    /// EKS: the cluster's region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// GKE: the cluster's project id.
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
    /// GKE: the project's number.
    #[arg(long, value_name = "NUMBER")]
    pub project_number: Option<String>,
    /// GKE: the cluster's location (region or zone).
    #[arg(long, value_name = "LOCATION")]
    pub location: Option<String>,
    /// AKS: the subscription that holds the cluster and its identities.
    #[arg(long, value_name = "SUBSCRIPTION_ID")]
    pub subscription: Option<String>,
    /// AKS: the managed cluster's resource group.
    #[arg(long, value_name = "RG")]
    pub resource_group: Option<String>,
    /// AKS: the Microsoft Entra tenant.
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<String>,
    /// The cluster's name in its cloud (EKS, GKE or AKS).
    #[arg(
        long = "cloud-name",
        visible_aliases = ["eks-cluster", "gke-cluster", "aks-cluster"],
        value_name = "NAME"
    )]
    pub cloud_name: Option<String>,
    /// The cluster's OIDC issuer, when wid should not look it up.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
}

impl CoordinateArgs {
    fn coordinates(&self) -> Coordinates {
        Coordinates {
            kind: self.kind.map(|k| match k {
                KindArg::Eks => ClusterKind::Eks,
                KindArg::Gke => ClusterKind::Gke,
                KindArg::Aks => ClusterKind::Aks,
            }),
            account: self.account.clone(),
            region: self.region.clone(),
            project: self.project.clone(),
            project_number: self.project_number.clone(),
            location: self.location.clone(),
            subscription: self.subscription.clone(),
            resource_group: self.resource_group.clone(),
            tenant: self.tenant.clone(),
            name: self.cloud_name.clone(),
            issuer: self.issuer.clone(),
        }
    }
}

/// Runs `wid import`.
pub async fn run(args: ImportArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let conn = args.cluster.connect(None).await?;
    let target = args.cluster.target.target()?;
    let context = match &conn.sandbox {
        Some(_) => None,
        None => context_info(
            args.cluster.kubeconfig.as_deref(),
            args.cluster.context.as_deref(),
        ),
    };
    let cluster = plan_cluster_name(&args, &conn.name, conn.sandbox.is_some(), context.as_ref())?;
    let decl = conn
        .sandbox
        .as_ref()
        .and_then(|s| s.cluster_decl(&conn.name));
    let live = conn
        .provider
        .service_accounts(&conn.name, &args.namespaces)
        .await?;
    let ksas: Vec<KsaFacts> = live
        .iter()
        .map(|k| KsaFacts {
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            annotations: k.annotations.clone(),
        })
        .collect();
    let hints = ClusterHints {
        context: context.clone(),
        decl,
        flags: args.coordinates.coordinates(),
    };
    let (cloud, why) = choose_cloud(&cluster, &hints, &ksas)?;
    let plan_name = plan_name(&args, &cluster, &live)?;
    let env = ConnectEnv {
        target: &target,
        sandbox: conn.sandbox.as_ref(),
        counter: &conn.counter,
    };
    let request = ImportRequest {
        cluster: &cluster,
        plan: &plan_name,
        hints: &hints,
        ksas: &ksas,
    };
    let imported = cloud.import(&request, &env).await?;
    let source = match (&conn.sandbox, &context) {
        (Some(_), _) => "the sandbox".to_owned(),
        (None, Some(c)) => format!("kubeconfig context {}", c.name),
        (None, None) => "the current kubeconfig context".to_owned(),
    };
    let mut plan = assemble(imported, &live, &plan_name, &cluster, cloud, &why);
    plan.header.insert(
        0,
        format!("Imported by `wid import` from cluster {cluster} ({source})."),
    );
    if conn.sandbox.is_none() {
        plan.cluster.context = context.map(|c| c.name);
        plan.cluster.kubeconfig = args
            .cluster
            .kubeconfig
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .map(|p| p.display().to_string());
    }
    let text = render_imported_plan(&plan);
    let style = color.style(true);
    let mut warnings: Vec<String> = plan.warnings.clone();
    for w in &plan.workloads {
        warnings.extend(
            w.warnings
                .iter()
                .map(|m| format!("{}/{}: {m}", w.namespace, w.service_account)),
        );
    }
    crate::output::warn(&warnings, style);
    let adopted = plan
        .workloads
        .iter()
        .filter(|w| w.adopt || w.block.get("adopt").is_some_and(|v| v == true))
        .count();
    let summary = format!(
        "{} workload(s) from cluster {cluster} ({} adopting objects wid did not create), {} warning(s), {} API call(s)",
        plan.workloads.len(),
        adopted,
        warnings.len(),
        conn.counter.total()
    );
    match args.out.as_deref() {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::write(path, &text)
                .map_err(|e| CliError::Io(format!("failed to write {}: {e}", path.display())))?;
            crate::output::import_summary(
                &format!("wrote plan {plan_name:?} to {}: {summary}", path.display()),
                style,
            );
        }
        _ => {
            crate::output::emit(&text);
            crate::output::import_summary(&format!("plan {plan_name:?}: {summary}"), style);
        }
    }
    Ok(ExitCode::Success)
}

/// The cluster's name in the plan: `--cluster`, the sandbox's name, or the context's
/// last part as a DNS label (`prod` of `gke_acme_us-central1_prod`).
fn plan_cluster_name(
    args: &ImportArgs,
    connected: &str,
    sandbox: bool,
    context: Option<&ContextInfo>,
) -> Result<String, CliError> {
    let name = match (&args.cluster.cluster, sandbox, context) {
        (Some(n), _, _) => n.clone(),
        (None, true, _) => connected.to_owned(),
        (None, false, Some(c)) => dns_label(&c.name),
        (None, false, None) => connected.to_owned(),
    };
    match wid_core::names::dns1123_label(&name) {
        None => Ok(name),
        Some(why) => Err(CliError::Usage(format!(
            "cannot name the cluster `{name}` in the plan ({why}); pass --cluster NAME"
        ))),
    }
}

/// A DNS-1123 label from a context name: the cluster part of `gke_P_L_NAME` or
/// `arn:…:cluster/NAME`, the host before the first dot after an `@` (eksctl's
/// `user@NAME.REGION.eksctl.io`), lowercase, other characters as `-`.
fn dns_label(context: &str) -> String {
    let last = if context.starts_with("gke_") {
        context.rsplit('_').next()
    } else {
        context.rsplit(['/', ':']).next()
    }
    .unwrap_or(context);
    let last = last.rsplit('@').next().unwrap_or(last);
    let last = last.split('.').next().unwrap_or(last);
    let mapped: String = last
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    let trimmed: String = mapped.trim_matches('-').chars().take(63).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if trimmed.is_empty() {
        "cluster".to_owned()
    } else {
        trimmed
    }
}

/// The plan's name: `--name`, else the one plan wid's marks name on the annotated KSAs,
/// else the cluster's name.
fn plan_name(args: &ImportArgs, cluster: &str, live: &[LiveKsa]) -> Result<String, CliError> {
    let marked: BTreeSet<&str> = live.iter().filter_map(|k| k.marked_by.as_deref()).collect();
    let name = match (&args.name, marked.len()) {
        (Some(n), _) => n.clone(),
        (None, 1) => marked
            .iter()
            .next()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
        _ => cluster.to_owned(),
    };
    match wid_core::names::label_value(&name) {
        None => Ok(name),
        Some(why) => Err(CliError::Usage(format!(
            "invalid plan name `{name}`: {why}; pass --name PLAN"
        ))),
    }
}

/// The cluster's cloud: `--kind`, the sandbox's declaration, or the one cloud that
/// recognizes the cluster; with why.
fn choose_cloud(
    cluster: &str,
    hints: &ClusterHints,
    ksas: &[KsaFacts],
) -> Result<(&'static dyn Cloud, String), CliError> {
    let declared = hints.decl.as_ref().map(|d| match d.kind {
        wid_sandbox::ClusterKind::Eks => ClusterKind::Eks,
        wid_sandbox::ClusterKind::Gke => ClusterKind::Gke,
        wid_sandbox::ClusterKind::Aks => ClusterKind::Aks,
        wid_sandbox::ClusterKind::Generic => ClusterKind::Generic,
    });
    let chosen = match (hints.flags.kind, declared) {
        (Some(k), _) => Some((k, "from --kind".to_owned())),
        (None, Some(k)) => Some((k, "as the sandbox declares it".to_owned())),
        (None, None) => None,
    };
    if let Some((kind, why)) = chosen {
        return clouds::ALL
            .iter()
            .copied()
            .find(|c| c.cluster_kind() == kind)
            .map(|c| (c, why))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "cluster {cluster} is a {} cluster: it has no cloud identities to import (import reads EKS, GKE and AKS clusters)",
                    kind.as_str()
                ))
            });
    }
    let claims: Vec<(&'static dyn Cloud, String)> = clouds::ALL
        .iter()
        .copied()
        .filter_map(|c| c.recognizes(hints, ksas).map(|why| (c, why)))
        .collect();
    match claims.as_slice() {
        [(cloud, why)] => Ok((*cloud, why.clone())),
        [] => Err(CliError::Usage(format!(
            "cannot tell what kind of cluster {cluster} is: neither its context nor its KSAs say; pass --kind eks, gke or aks"
        ))),
        many => Err(CliError::Usage(format!(
            "cluster {cluster} looks like {}; pass --kind eks, gke or aks",
            many.iter()
                .map(|(c, why)| format!("{} ({why})", c.cluster_kind().as_str()))
                .collect::<Vec<_>>()
                .join(" and like ")
        ))),
    }
}

/// The plan from what the cloud found and the KSAs as they are.
fn assemble(
    imported: Imported,
    live: &[LiveKsa],
    plan_name: &str,
    cluster: &str,
    cloud: &dyn Cloud,
    why: &str,
) -> ImportedPlan {
    let by_path: BTreeMap<String, &LiveKsa> = live
        .iter()
        .map(|k| (format!("{}/{}", k.namespace, k.name), k))
        .collect();
    let mut warnings_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut top: Vec<String> = Vec::new();
    for ImportWarning { ksa, message } in imported.warnings {
        match ksa {
            Some(path) => warnings_of.entry(path).or_default().push(message),
            None => top.push(message),
        }
    }
    let mut workloads = Vec::new();
    for w in imported.workloads {
        let path = format!("{}/{}", w.namespace, w.service_account);
        let Some(ksa) = by_path.get(&path) else {
            top.push(format!("{path}: the cluster has no such KSA; not imported"));
            continue;
        };
        if let Some(other) = ksa.marked_by.as_deref().filter(|p| *p != plan_name) {
            top.push(format!(
                "{path}: the KSA belongs to wid plan {other:?}: not imported (import it into that plan with --name {other})"
            ));
            continue;
        }
        let mut notes = w.notes;
        if ksa.automount.is_none() {
            notes.push("automountServiceAccountToken is unset (the API mounts the token then): automount_token = true keeps it as it is".into());
        }
        workloads.push(PlanWorkload {
            warnings: warnings_of.remove(&path).unwrap_or_default(),
            namespace: w.namespace,
            service_account: w.service_account,
            automount: ksa.automount.unwrap_or(true),
            adopt: ksa.marked_by.as_deref() != Some(plan_name),
            cloud: cloud.name().to_owned(),
            block: w.block,
            notes,
        });
    }
    // Warnings about KSAs that were not imported go to the top.
    for (path, messages) in warnings_of {
        top.extend(messages.into_iter().map(|m| format!("{path}: {m}")));
    }
    workloads.sort_by(|a, b| {
        (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account))
    });
    if workloads.is_empty() {
        top.push(format!(
            "no KSA of cluster {cluster} carries a workload identity of its cloud that could be imported"
        ));
    }
    let mut cluster_notes = vec![format!("kind {}: {why}", cloud.cluster_kind().as_str())];
    cluster_notes.extend(imported.cluster_notes);
    ImportedPlan {
        name: plan_name.to_owned(),
        header: vec![
            "Objects wid did not create carry `adopt = true`: wid uses them as they are, and they become this plan's (get its mark) only with the first apply that has to change them. `wid plan` on this file changes nothing unless a warning below says otherwise.".into(),
            "Labels and annotations others set on the KSAs are not part of the plan: wid leaves them as they are.".into(),
        ],
        warnings: top,
        cluster: ImportedCluster {
            name: cluster.to_owned(),
            kind: cloud.cluster_kind().as_str().to_owned(),
            context: None,
            kubeconfig: None,
            fields: imported.cluster,
            notes: cluster_notes,
        },
        workloads,
        notes: imported.notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_become_dns_labels() {
        assert_eq!(dns_label("gke_acme-prod_us-central1_prod"), "prod");
        assert_eq!(
            dns_label("arn:aws:eks:us-east-1:111122223333:cluster/Prod_1"),
            "prod-1"
        );
        assert_eq!(dns_label("alice@prod.us-east-1.eksctl.io"), "prod");
        assert_eq!(dns_label("aks-prod"), "aks-prod");
        assert_eq!(dns_label("___"), "cluster");
    }
}
