//! The command line: clap types, the top-level error with its exit codes, and one file
//! per subcommand.

mod apply;
mod apply_report;
mod apply_saved;
mod audit;
mod cluster;
mod error;
mod import;
mod meta;
mod plan;
mod render;
mod render_dir;
mod run;
mod sandbox;
mod show;
mod token;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wid_core::{Bounds, Limits};

pub use error::{CliError, ExitCode, print_error};
pub use run::{Control, RunArgs};

use crate::output::Style;
use crate::session::Target;

const EXIT_CODES: &str = "\
Exit codes:
  0  success; with --detailed-exitcode, nothing pending
  1  error: invalid plan, API failure, conflicts, partial apply
  2  --detailed-exitcode: changes pending or drift found
  3  audit: a finding at or above --fail-on
  130  interrupted (Ctrl-C or SIGTERM); apply prints what it did and did not start";

const LOGGING: &str = "\
Logging (stderr):
  wid logs only its own warnings by default; -v adds its progress, -vv its debug details,
  -vvv everything at debug level including libraries. WID_LOG=FILTER replaces all of it
  (tracing-subscriber syntax, e.g. WID_LOG=wid=debug,kube_client=info or WID_LOG=trace).";

const EXAMPLES: &str = "\
Examples:
  wid validate identities/
  wid plan identities/ --sandbox
  wid apply identities/ --sandbox --auto-approve
  wid plan identities/ --detailed-exitcode --output json   # CI drift gate
  wid plan identities/ --out plan.wid --output markdown     # PR comment, saved plan
  wid apply plan.wid                                       # exactly what was reviewed
  wid render identities/ --out-dir k8s/
  wid sandbox serve --dir /tmp/wid --plan identities/";

/// Kubernetes workload identity across GKE, EKS and AKS from a declarative plan.
#[derive(Debug, Parser)]
#[command(name = "wid", version = meta::VERSION, about, after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}\n\n{LOGGING}"))]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// When to use colour (auto: only on a terminal, never with NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Log more on stderr: -v progress, -vv debug details, -vvv libraries too. WID_LOG
    /// (a tracing filter such as `wid=debug`) overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The log filter of a run: `WID_LOG` when set, else wid's own warnings only, raised by
/// each `-v`. Libraries (kube, the AWS SDK) stay silent below `-vvv`: their errors reach
/// the user as wid's own, with context and a hint.
pub fn log_filter(
    verbose: u8,
    wid_log: Option<&str>,
) -> Result<tracing_subscriber::EnvFilter, String> {
    // A directive's target matches every target it prefixes, so `wid` covers the
    // provider crates (`wid_aws`, `wid_kubernetes`, ...) too.
    let directives = match (wid_log.filter(|s| !s.trim().is_empty()), verbose) {
        (Some(custom), _) => custom,
        (None, 0) => "wid=warn",
        (None, 1) => "wid=info",
        (None, 2) => "wid=debug",
        (None, 3) => "debug",
        (None, _) => "trace",
    };
    tracing_subscriber::EnvFilter::try_new(directives).map_err(|e| e.to_string())
}

/// `--color`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// The style for stdout or stderr.
    pub fn style(self, stderr: bool) -> Style {
        let choice = match self {
            Self::Auto => None,
            Self::Always => Some(true),
            Self::Never => Some(false),
        };
        Style::detect(choice, stderr)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check a plan; no network.
    #[command(
        after_help = "Exits 0 when the plan is valid, 1 with every problem located by file:line:col."
    )]
    Validate(validate::ValidateArgs),
    /// Read the live state and print what apply would change.
    #[command(after_help = EXIT_CODES)]
    Plan(plan::PlanArgs),
    /// Print the plan, ask, apply it, and report; or apply a plan saved with
    /// `wid plan --out` exactly, refusing if anything it was computed from changed.
    #[command(after_help = EXIT_CODES)]
    Apply(apply::ApplyArgs),
    /// Print a plan saved with `wid plan --out` again (human, json, markdown, github).
    Show(show::ShowArgs),
    /// Delete everything that carries the plan's mark, in every cluster, account and
    /// project the plan names: shown first, confirmed like apply, in reverse dependency
    /// order.
    #[command(after_help = EXIT_CODES)]
    Destroy(apply::DestroyArgs),
    /// Write the Kubernetes manifests of a plan, for clusters whose KSAs a GitOps
    /// controller (Argo CD, Flux) applies.
    Render(render::RenderArgs),
    /// Check a cluster (or manifests) against the service-account hardening checklist.
    Audit(Box<audit::AuditArgs>),
    /// Print a short-lived, audience-bound token for a service account (TokenRequest).
    Token(token::TokenArgs),
    /// Write the plan that reproduces a cluster's existing workload identities (KSA
    /// annotations, EKS Pod Identity associations), adopting what wid did not create.
    Import(Box<import::ImportArgs>),
    /// The embedded sandbox: emulated clusters and clouds on loopback.
    Sandbox(sandbox::SandboxArgs),
    /// Print wid's version and the git revision it was built from.
    Version,
    /// Print a shell completion script: `wid completions bash > /etc/bash_completion.d/wid`.
    Completions(meta::CompletionsArgs),
    /// Print the man page (roff): `wid man > /usr/local/share/man/man1/wid.1`.
    Man,
}

/// Where commands that talk to clusters and clouds point.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Use the embedded sandbox with state in .wid/sandbox under the current directory.
    #[arg(long)]
    pub sandbox: bool,
    /// Use the embedded sandbox with state in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "sandbox")]
    pub sandbox_dir: Option<PathBuf>,
    /// Send AWS API calls to this endpoint (an emulator such as moto); also read from
    /// WID_AWS_ENDPOINT_URL. Without it the SDK's own settings apply (AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL", env = "WID_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// The longest one API call may take, from sending it to the last byte of the answer
    /// (e.g. 30s, 2m). A call that runs out of time is retried like a 5xx.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = run::duration_arg)]
    pub call_timeout: Duration,
}

impl TargetArgs {
    /// The target these flags select.
    pub fn target(&self) -> Result<Target, CliError> {
        let sandbox = match (&self.sandbox_dir, self.sandbox) {
            (Some(dir), _) => Some(dir.clone()),
            (None, true) => {
                let cwd = std::env::current_dir().map_err(|e| {
                    CliError::Usage(format!("cannot read the current directory: {e}"))
                })?;
                Some(cwd.join(".wid").join("sandbox"))
            }
            (None, false) => None,
        };
        Ok(Target {
            sandbox,
            aws_endpoint: self.aws_endpoint_url.clone(),
            limits: Limits {
                bounds: Bounds::with_call_timeout(self.call_timeout),
                ..Limits::default()
            },
            ..Target::default()
        })
    }
}

/// Where a plan's clusters are, from the command line, over the plan's own settings.
#[derive(Debug, Clone, Args)]
pub struct ContextArgs {
    /// Use kubeconfig context CTX for plan cluster CLUSTER instead of the plan's
    /// `context` (repeatable), so one plan serves CI and laptops.
    #[arg(long = "context", value_name = "CLUSTER=CTX", value_parser = context_arg)]
    pub contexts: Vec<(String, String)>,
    /// Read every cluster's context from this kubeconfig file instead of the plan's
    /// `kubeconfig` (or $KUBECONFIG, ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

impl ContextArgs {
    /// Puts the overrides into `target`.
    pub fn apply_to(&self, target: &mut Target) -> Result<(), CliError> {
        if target.sandbox.is_some() && (!self.contexts.is_empty() || self.kubeconfig.is_some()) {
            return Err(CliError::Usage(
                "--context and --kubeconfig point at real clusters; the sandbox has its own (drop them, or --sandbox)".into(),
            ));
        }
        target.contexts = self.contexts.iter().cloned().collect();
        target.kubeconfig.clone_from(&self.kubeconfig);
        Ok(())
    }
}

/// Parses `--context CLUSTER=CTX`.
fn context_arg(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((cluster, ctx)) if !cluster.is_empty() && !ctx.is_empty() => {
            Ok((cluster.to_owned(), ctx.to_owned()))
        }
        _ => Err(format!(
            "expected CLUSTER=CONTEXT (a plan cluster's name and a kubeconfig context), got `{text}`"
        )),
    }
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let color = cli.color;
    match cli.command {
        Command::Validate(args) => validate::run(args, color),
        Command::Plan(args) => plan::run(args, color).await,
        Command::Apply(args) => apply::run(args, color).await,
        Command::Show(args) => show::run(args, color),
        Command::Destroy(args) => apply::destroy(args, color).await,
        Command::Render(args) => render::run(args).await,
        Command::Audit(args) => audit::run(*args, color).await,
        Command::Token(args) => token::run(args).await,
        Command::Import(args) => import::run(*args, color).await,
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Version => meta::version(),
        Command::Completions(args) => meta::completions(&args),
        Command::Man => meta::man(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: tracing_subscriber::EnvFilter, target: &str, level: Level) -> bool {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || match (target, level) {
            ("wid_aws", Level::WARN) => tracing::enabled!(target: "wid_aws", Level::WARN),
            ("wid_aws", Level::INFO) => tracing::enabled!(target: "wid_aws", Level::INFO),
            ("wid::cli", Level::DEBUG) => tracing::enabled!(target: "wid::cli", Level::DEBUG),
            ("kube_client::client::builder", Level::ERROR) => {
                tracing::enabled!(target: "kube_client::client::builder", Level::ERROR)
            }
            other => panic!("no probe for {other:?}"),
        })
    }

    #[test]
    fn logs_are_wids_own_warnings_unless_asked_for_more() {
        let quiet = || log_filter(0, None).unwrap();
        assert!(enabled(quiet(), "wid_aws", Level::WARN));
        assert!(!enabled(quiet(), "wid_aws", Level::INFO));
        assert!(!enabled(
            quiet(),
            "kube_client::client::builder",
            Level::ERROR
        ));
        assert!(enabled(
            log_filter(1, None).unwrap(),
            "wid_aws",
            Level::INFO
        ));
        assert!(enabled(
            log_filter(2, None).unwrap(),
            "wid::cli",
            Level::DEBUG
        ));
        assert!(!enabled(
            log_filter(2, None).unwrap(),
            "kube_client::client::builder",
            Level::ERROR
        ));
        assert!(enabled(
            log_filter(3, None).unwrap(),
            "kube_client::client::builder",
            Level::ERROR
        ));
        let custom = log_filter(0, Some("kube_client=error")).unwrap();
        assert!(enabled(
            custom,
            "kube_client::client::builder",
            Level::ERROR
        ));
        assert!(log_filter(0, Some("wid=loud")).is_err());
        assert!(enabled(
            log_filter(0, Some("  ")).unwrap(),
            "wid_aws",
            Level::WARN
        ));
    }
}
