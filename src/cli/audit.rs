//! `wid audit`: the service-account hardening checklist, measured on live clusters (one or
//! several in one run) or on manifests (files or stdin), with each finding tied to its fix
//! and its check's page, and findings accepted with a reason (annotation on the object or
//! an exceptions file) shown as suppressed.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use miette::{GraphicalReportHandler, GraphicalTheme};
use wid_audit::accept::{self, Rule, Scope};
use wid_audit::{
    AwsRoleTrust, CloudTrust, Context, Date, Expected, ExpectedWorkload, Finding, Report, Severity,
    Snapshot,
};
use wid_aws::{AwsOptions, AwsProvider};

use super::cluster::ClustersArgs;
use super::validate::load_checked;
use super::{CliError, ColorChoice, ExitCode};
use crate::model;
use crate::plan::{Plan, PlanDiagnostic, Rendered, SourceFile};

/// `--output` of `wid audit`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuditFormat {
    /// Grouped by cluster and severity, with counts.
    Human,
    /// Described by schema/audit-output.schema.json.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// Arguments of `wid audit`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  wid audit --context prod --fail-on high
  wid audit --context prod-eu --context prod-us --namespace shop --output json
  wid audit --sandbox --cluster shop --output sarif > audit.sarif
  wid audit --manifests k8s/*.yaml --exceptions audit-exceptions.toml --output sarif
  helm template chart/ | wid audit --manifests -
  wid audit --explain SA002

Accepting a finding: annotate the object with
  wid.dev/audit-accept: \"SA003 until 2027-03-31: why; ticket\"
or list it in the --exceptions file (docs/ci.md). Accepted findings never count toward --fail-on.

Exit codes: 0 no finding at or above --fail-on (or no --fail-on); 1 error; 3 findings at or above --fail-on.")]
pub struct AuditArgs {
    /// Print a check's page (what it checks, why, an example, the fix, how to accept it;
    /// the same text as docs/checks/ID.md) and exit.
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
    /// Audit these manifest files instead of a live cluster (no network); `-` reads a
    /// multi-document YAML stream from stdin.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub manifests: Vec<PathBuf>,
    /// A wid plan: flag identity annotations that disagree with it.
    #[arg(long, value_name = "PATH")]
    pub plan: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = AuditFormat::Human)]
    pub output: AuditFormat,
    /// Exit 3 when a finding at or above this severity exists (accepted findings never
    /// count).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
    /// Only report findings about objects in this namespace (repeatable). Cluster-wide
    /// bindings are reported when they name a ServiceAccount of one of these namespaces.
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Accepted findings, with reasons and expiry dates (TOML, `[[accept]]` tables; see
    /// docs/ci.md).
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// List accepted findings in human output (they are always counted).
    #[arg(long)]
    pub show_accepted: bool,
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
    pub cluster: ClustersArgs,
}

/// The control plane's namespaces, whose pods legitimately use API tokens.
const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// How `--manifests -` names stdin in locations.
const STDIN: &str = "<stdin>";

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse::<Severity>()
        .map_err(|_| format!("unknown severity {s:?}: use low, medium, high or critical"))
}

/// One audited cluster's (or the manifests') report before acceptances, and the
/// acceptances annotated on its objects.
struct Audited {
    report: Report,
    rules: Vec<Rule>,
    warnings: Vec<wid_audit::Warning>,
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
    // Bad input stops the run before any cluster is read.
    let file_rules = match &args.exceptions {
        Some(path) => exceptions(path, color)?,
        None => Vec::new(),
    };
    let plan = args.plan.as_deref().map(load_checked).transpose()?;
    let (audited, clusters) = if args.manifests.is_empty() {
        live(&args, plan.as_ref()).await?
    } else {
        manifests(&args, plan.as_ref())?
    };
    let mut rules = file_rules;
    let mut reports = Vec::new();
    let mut warnings = Vec::new();
    for (name, a) in clusters.iter().zip(audited) {
        rules.extend(a.rules);
        warnings.extend(a.warnings);
        reports.push((name.clone(), a.report));
    }
    let mut report = if clusters.iter().all(Option::is_some) && !clusters.is_empty() {
        Report::merge(
            reports
                .into_iter()
                .map(|(n, r)| (n.unwrap_or_default(), r))
                .collect(),
        )
    } else {
        let (_, r) = reports
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Usage("nothing to audit".into()))?;
        r
    };
    report.warnings.extend(warnings);
    let scope = Scope {
        clusters: report.clusters.clone(),
        namespaces: args.namespaces.clone(),
        excluded_namespaces: if args.include_system_namespaces {
            Vec::new()
        } else {
            SYSTEM_NAMESPACES.iter().map(|s| (*s).to_owned()).collect()
        },
        cloud: args.cloud,
    };
    let report = accept::apply(report, &rules, Date::today_utc(), &scope);
    let style = color.style(true);
    let lines: Vec<String> = report
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.origin, w.message))
        .collect();
    crate::output::warn(&lines, style);
    let text = match args.output {
        AuditFormat::Human => wid_audit::render::human_with(
            &report,
            wid_audit::render::HumanOptions {
                color: color.style(false).color(),
                show_accepted: args.show_accepted,
            },
        ),
        AuditFormat::Json => pretty(&wid_audit::render::json(&report))?,
        AuditFormat::Sarif => pretty(&wid_audit::render::sarif(&report))?,
    };
    crate::output::emit(&text);
    Ok(match args.fail_on {
        Some(level) if report.exceeds(level) => ExitCode::Findings,
        _ => ExitCode::Success,
    })
}

/// Reads and checks the exceptions file; every problem located by file, line and column.
fn exceptions(path: &Path, color: ColorChoice) -> Result<Vec<Rule>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Io(format!("failed to read {}: {e}", path.display())))?;
    let shown = display_path(path);
    let errors = match accept::parse_exceptions(&text, &shown) {
        Ok(rules) => return Ok(rules),
        Err(errors) => errors,
    };
    let file = SourceFile::new(shown.clone(), text);
    let theme = if color.style(true).color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    let count = errors.len();
    for e in errors {
        let mut d = PlanDiagnostic::at(&file, e.span, e.message);
        if let Some(h) = e.help {
            d = d.help(h);
        }
        out.push('\n');
        let _ = handler.render_report(&mut out, &Rendered::from(d));
    }
    Err(CliError::Usage(format!(
        "the exceptions file {shown} has {count} problem(s); nothing was audited\n{}",
        out.trim_end()
    )))
}

/// A path as findings cite it: relative to the working directory when it is inside it,
/// with `/` separators, so SARIF artifact URIs resolve from the repository root.
fn display_path(path: &Path) -> String {
    let rel = match std::env::current_dir() {
        Ok(cwd) if path.is_absolute() => path.strip_prefix(&cwd).unwrap_or(path).to_path_buf(),
        _ => path.to_path_buf(),
    };
    let text = rel.display().to_string().replace('\\', "/");
    text.strip_prefix("./").map(str::to_owned).unwrap_or(text)
}

/// Audits manifests: files, or a YAML stream on stdin for `-`.
fn manifests(
    args: &AuditArgs,
    plan: Option<&Plan>,
) -> Result<(Vec<Audited>, Vec<Option<String>>), CliError> {
    if !args.cluster.contexts.is_empty() {
        return Err(CliError::Usage(
            "--context reads a live cluster; with --manifests, name the cluster with --cluster"
                .into(),
        ));
    }
    let cluster = match args.cluster.clusters.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        _ => {
            return Err(CliError::Usage(
                "manifests are one cluster's: give at most one --cluster with --manifests".into(),
            ));
        }
    };
    let mut snapshot = Snapshot::default();
    let mut stdin_read = false;
    for file in &args.manifests {
        let (text, shown) = if file.as_os_str() == "-" {
            if stdin_read {
                return Err(CliError::Usage("`--manifests -` can be given once".into()));
            }
            stdin_read = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Io(format!("failed to read manifests from stdin: {e}")))?;
            (text, STDIN.to_owned())
        } else {
            let text = std::fs::read_to_string(file)
                .map_err(|e| CliError::Io(format!("failed to read {}: {e}", file.display())))?;
            (text, display_path(file))
        };
        snapshot
            .add_yaml(&text, Some(&shown))
            .map_err(|e| CliError::Usage(format!("{shown}: {e}")))?;
    }
    let mut ctx = Context::default();
    ctx.policy.max_token_expiration_seconds = args.max_token_expiration;
    if let Some(plan) = plan {
        ctx.expected = Some(expected(plan, cluster.as_deref())?);
    }
    let audited = audit_snapshot(args, &snapshot, &ctx, cluster.as_deref());
    Ok((vec![audited], vec![cluster]))
}

/// Audits every cluster named, reading them concurrently.
async fn live(
    args: &AuditArgs,
    plan: Option<&Plan>,
) -> Result<(Vec<Audited>, Vec<Option<String>>), CliError> {
    let conn = args.cluster.connect(plan).await?;
    let reads = conn.names.iter().map(|name| {
        let provider = &conn.provider;
        async move {
            let client = provider
                .client(name)
                .ok_or_else(|| CliError::Usage(format!("no client for cluster {name}")))?;
            let objects = wid_kubernetes::snapshot::list_objects(&client).await.map_err(|e| {
                CliError::from(
                    wid_core::ProviderError::new(
                        wid_core::ErrorKind::Transient,
                        format!("failed to read cluster {name}: {e}"),
                    )
                    .with_hint("the audit needs list on the core, apps, batch and rbac kinds in every namespace"),
                )
            })?;
            Ok::<_, CliError>(snapshot_of(objects))
        }
    });
    let snapshots = futures::future::try_join_all(reads).await?;
    let mut audited = Vec::new();
    for (name, snapshot) in conn.names.iter().zip(&snapshots) {
        let mut ctx = Context::default();
        ctx.policy.max_token_expiration_seconds = args.max_token_expiration;
        if args.cloud {
            let endpoint = args.cluster.target.aws_endpoint_url.clone();
            let opts = AwsOptions {
                sandbox: conn.sandbox.is_some() && endpoint.is_none(),
                endpoint_url: endpoint.or_else(|| conn.sandbox.as_ref().map(|s| s.cloud_url())),
                profiles: plan.map(|p| p.aws.profiles.clone()).unwrap_or_default(),
                limits: args.cluster.target.target()?.limits,
            };
            ctx.cloud = cloud_trust(snapshot, opts, conn.counter.clone()).await?;
        }
        if let Some(plan) = plan {
            ctx.expected = Some(expected(plan, Some(name))?);
        }
        audited.push(audit_snapshot(args, snapshot, &ctx, Some(name)));
    }
    Ok((audited, conn.names.iter().cloned().map(Some).collect()))
}

/// Runs the checks on one snapshot, tags the findings with the cluster, applies the
/// namespace filters, and reads the acceptances annotated on its objects.
fn audit_snapshot(
    args: &AuditArgs,
    snap: &Snapshot,
    ctx: &Context,
    cluster: Option<&str>,
) -> Audited {
    let report = wid_audit::run_all(snap, ctx);
    let findings = report
        .findings
        .into_iter()
        .filter(|f| args.include_system_namespaces || !in_system_namespace(f))
        // Findings on objects outside the audited namespaces are left out.
        .filter(|f| args.namespaces.is_empty() || about_namespaces(f, &args.namespaces))
        .map(|mut f| {
            f.cluster = cluster.map(str::to_owned);
            f
        })
        .collect();
    let report = Report::new(findings, report.checks_run);
    // Annotations on objects outside the audited namespaces are not this run's business.
    let (rules, warnings) = accept::from_snapshot(snap, cluster, |r| {
        let ns = r.namespace.as_deref();
        (args.include_system_namespaces || !ns.is_some_and(|n| SYSTEM_NAMESPACES.contains(&n)))
            && (args.namespaces.is_empty()
                || ns.is_none_or(|n| args.namespaces.iter().any(|x| x == n)))
    });
    Audited {
        report,
        rules,
        warnings,
    }
}

fn in_system_namespace(f: &Finding) -> bool {
    f.resource
        .namespace
        .as_deref()
        .is_some_and(|ns| SYSTEM_NAMESPACES.contains(&ns))
}

/// Whether a finding is about one of `namespaces`: its object is in one, or (for
/// cluster-scoped bindings) the ServiceAccount or group it names belongs to one.
fn about_namespaces(f: &Finding, namespaces: &[String]) -> bool {
    match &f.resource.namespace {
        Some(ns) => namespaces.contains(ns),
        None => {
            let subject_ns = f
                .details
                .get("subject")
                .and_then(|s| s.split_once('/'))
                .map(|(ns, _)| ns);
            let group_ns = f
                .details
                .get("group")
                .and_then(|g| g.strip_prefix("system:serviceaccounts:"));
            [subject_ns, group_ns]
                .into_iter()
                .flatten()
                .any(|ns| namespaces.iter().any(|n| n == ns))
        }
    }
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
    // Every scope of the plan (each team's workloads), compiled as it is applied.
    let resources: Vec<std::sync::Arc<wid_core::Resource>> =
        model::compile_scopes(plan, &model::offline(plan))
            .map_err(CliError::Plan)?
            .into_iter()
            .flat_map(|(_, d)| d.resources)
            .collect();
    const IDENTITY: &[&str] = &[
        "annotations.eks.amazonaws.com/role-arn",
        "annotations.iam.gke.io/gcp-service-account",
        "annotations.azure.workload.identity/client-id",
    ];
    let workloads = resources
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
