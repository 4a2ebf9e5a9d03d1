//! `wid audit`: the service-account hardening checklist, measured on a live cluster (or
//! on manifests), with each finding tied to its fix.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use std::collections::BTreeSet;

use wid_audit::{
    AwsRoleTrust, CloudTrust, Context, Expected, ExpectedWorkload, Severity, Snapshot,
};
use wid_aws::{AwsOptions, AwsProvider};

use super::cluster::ClusterArgs;
use super::validate::load_checked;
use super::{CliError, ColorChoice, ExitCode};
use crate::model;
use crate::plan::Plan;

/// `--output` of `wid audit`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuditFormat {
    /// Grouped by severity, with counts.
    Human,
    /// Described by schema/audit-output.schema.json.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// Arguments of `wid audit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  wid audit --context prod --fail-on high\n  wid audit --sandbox --cluster shop --output sarif > audit.sarif\n  wid audit --manifests k8s/*.yaml\n  wid audit --explain SA002\n\nExit codes: 0 no finding at or above --fail-on (or no --fail-on); 1 error; 3 findings at or above --fail-on."
)]
pub struct AuditArgs {
    /// Print what a check looks for, why it matters, an example and the fix, and exit.
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
    /// Audit these manifest files instead of a live cluster (no network).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub manifests: Vec<PathBuf>,
    /// A wid plan: flag identity annotations that disagree with it.
    #[arg(long, value_name = "PATH")]
    pub plan: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = AuditFormat::Human)]
    pub output: AuditFormat,
    /// Exit 3 when a finding at or above this severity exists.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
    /// Also read the cloud side of the identities KSAs are annotated with (AWS: each
    /// role's trust policy, one iam:GetRole per role) to flag trust that is too broad.
    #[arg(long)]
    pub cloud: bool,
    /// Also report findings in kube-system, kube-public and kube-node-lease (the control
    /// plane's own namespaces, excluded by default).
    #[arg(long)]
    pub include_system_namespaces: bool,
    /// Longest acceptable lifetime of a projected token, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub max_token_expiration: i64,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The control plane's namespaces, whose pods legitimately use API tokens.
const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse::<Severity>()
        .map_err(|_| format!("unknown severity {s:?}: use low, medium, high or critical"))
}

/// Runs `wid audit`.
pub async fn run(args: AuditArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    if let Some(id) = &args.explain {
        let text = wid_audit::explain(id).ok_or_else(|| {
            let ids: Vec<String> = wid_audit::checks()
                .iter()
                .map(|c| format!("{} {}", c.id, c.name))
                .collect();
            CliError::Usage(format!(
                "no check {id:?}; the checks are: {}",
                ids.join(", ")
            ))
        })?;
        crate::output::emit(&text);
        return Ok(ExitCode::Success);
    }
    let plan = args.plan.as_deref().map(load_checked).transpose()?;
    let mut ctx = Context::default();
    let (snapshot, cluster) = if args.manifests.is_empty() {
        let one = args.cluster.connect(plan.as_ref()).await?;
        let client = one
            .provider
            .client(&one.name)
            .ok_or_else(|| CliError::Usage(format!("no client for cluster {}", one.name)))?;
        let objects = wid_kubernetes::snapshot::list_objects(&client).await.map_err(|e| {
            CliError::from(
                wid_core::ProviderError::new(wid_core::ErrorKind::Transient, format!("failed to read cluster {}: {e}", one.name))
                    .with_hint("the audit needs list on the core, apps, batch and rbac kinds in every namespace"),
            )
        })?;
        let snapshot = snapshot_of(objects);
        if args.cloud {
            let endpoint = args.cluster.target.aws_endpoint_url.clone();
            let opts = AwsOptions {
                sandbox: one.sandbox.is_some() && endpoint.is_none(),
                endpoint_url: endpoint.or_else(|| one.sandbox.as_ref().map(|s| s.cloud_url())),
                profiles: plan
                    .as_ref()
                    .map(|p| p.aws.profiles.clone())
                    .unwrap_or_default(),
                limits: args.cluster.target.target()?.limits,
            };
            ctx.cloud = cloud_trust(&snapshot, opts, one.counter.clone()).await?;
        }
        (snapshot, Some(one.name))
    } else {
        let mut snapshot = Snapshot::default();
        for file in &args.manifests {
            let text = std::fs::read_to_string(file)
                .map_err(|e| CliError::Io(format!("failed to read {}: {e}", file.display())))?;
            snapshot
                .add_yaml(&text, Some(&file.display().to_string()))
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
        }
        (snapshot, args.cluster.cluster.clone())
    };
    ctx.policy.max_token_expiration_seconds = args.max_token_expiration;
    if let Some(plan) = &plan {
        ctx.expected = Some(expected(plan, cluster.as_deref())?);
    }
    let mut report = wid_audit::run_all(&snapshot, &ctx);
    if !args.include_system_namespaces {
        let findings = report
            .findings
            .into_iter()
            .filter(|f| {
                !f.resource
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| SYSTEM_NAMESPACES.contains(&ns))
            })
            .collect();
        report = wid_audit::Report::new(findings, report.checks_run);
    }
    let text = match args.output {
        AuditFormat::Human => wid_audit::render::human(&report, color.style(false).color()),
        AuditFormat::Json => pretty(&wid_audit::render::json(&report))?,
        AuditFormat::Sarif => pretty(&wid_audit::render::sarif(&report))?,
    };
    crate::output::emit(&text);
    Ok(match args.fail_on {
        Some(level) if wid_audit::exceeds(&report, level) => ExitCode::Findings,
        _ => ExitCode::Success,
    })
}

/// The trust policy of every IAM role a KSA of the snapshot is annotated with.
async fn cloud_trust(
    snapshot: &Snapshot,
    opts: AwsOptions,
    counter: wid_core::CallCounter,
) -> Result<CloudTrust, CliError> {
    let arns: BTreeSet<&str> = snapshot
        .service_accounts
        .iter()
        .filter_map(|sa| {
            sa.metadata
                .annotations
                .as_ref()?
                .get("eks.amazonaws.com/role-arn")
        })
        .map(String::as_str)
        .collect();
    let mut trust = CloudTrust::default();
    if arns.is_empty() {
        return Ok(trust);
    }
    let aws = AwsProvider::new(opts, counter).await?;
    for arn in arns {
        match aws.role_trust(arn).await? {
            Some(policy) => trust.aws_roles.push(AwsRoleTrust {
                role_arn: arn.to_owned(),
                trust_policy: policy,
            }),
            None => trust.aws_missing_roles.push(arn.to_owned()),
        }
    }
    Ok(trust)
}

fn pretty(v: &serde_json::Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Io(e.to_string()))
}

fn snapshot_of(o: wid_kubernetes::snapshot::ClusterObjects) -> Snapshot {
    Snapshot {
        namespaces: o.namespaces,
        service_accounts: o.service_accounts,
        pods: o.pods,
        deployments: o.deployments,
        replica_sets: o.replica_sets,
        stateful_sets: o.stateful_sets,
        daemon_sets: o.daemon_sets,
        jobs: o.jobs,
        cron_jobs: o.cron_jobs,
        roles: o.roles,
        role_bindings: o.role_bindings,
        cluster_roles: o.cluster_roles,
        cluster_role_bindings: o.cluster_role_bindings,
        secrets: o.secrets,
        config_maps: o.config_maps,
        ..Snapshot::default()
    }
}

/// The identity annotations the plan writes on each KSA of the audited cluster.
fn expected(plan: &Plan, cluster: Option<&str>) -> Result<Expected, CliError> {
    let cluster = match cluster {
        Some(c) if plan.clusters.contains_key(c) => c.to_owned(),
        Some(c) => {
            return Err(CliError::Usage(format!(
                "the plan declares no cluster `{c}`; pass --cluster with one of: {}",
                plan.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        None if plan.clusters.len() == 1 => {
            plan.clusters.keys().next().cloned().unwrap_or_default()
        }
        None => {
            return Err(CliError::Usage(
                "the plan has several clusters; say which one this is with --cluster".into(),
            ));
        }
    };
    let desired = model::compile(plan, &model::offline(plan)).map_err(CliError::Plan)?;
    const IDENTITY: &[&str] = &[
        "annotations.eks.amazonaws.com/role-arn",
        "annotations.iam.gke.io/gcp-service-account",
        "annotations.azure.workload.identity/client-id",
    ];
    let workloads = desired
        .resources
        .iter()
        .filter(|r| r.id.kind() == wid_kubernetes::SERVICEACCOUNT && r.id.part(0) == cluster)
        .map(|r| ExpectedWorkload {
            cluster: cluster.clone(),
            namespace: r.id.part(1).to_owned(),
            service_account: r.id.part(2).to_owned(),
            annotations: IDENTITY
                .iter()
                .filter_map(|k| {
                    let v = r.str_attr(k)?;
                    Some((
                        k.trim_start_matches("annotations.").to_owned(),
                        v.to_owned(),
                    ))
                })
                .collect(),
        })
        .collect();
    Ok(Expected { workloads })
}
