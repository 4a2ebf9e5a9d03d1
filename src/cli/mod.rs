//! The command line: clap types, the top-level error with its exit codes, and one file
//! per subcommand.

mod apply;
mod audit;
mod cluster;
mod error;
mod plan;
mod render;
mod run;
mod sandbox;
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

const EXAMPLES: &str = "\
Examples:
  wid validate identities/
  wid plan identities/ --sandbox
  wid apply identities/ --sandbox --auto-approve
  wid plan identities/ --detailed-exitcode --output json   # CI drift gate
  wid render identities/ -o k8s/
  wid sandbox serve --dir /tmp/wid --plan identities/";

/// Kubernetes workload identity across GKE, EKS and AKS from a declarative plan.
#[derive(Debug, Parser)]
#[command(name = "wid", version, about, after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"))]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// When to use colour (auto: only on a terminal, never with NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
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
    /// Print the plan, ask, apply it, and report.
    #[command(after_help = EXIT_CODES)]
    Apply(apply::ApplyArgs),
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
    /// The embedded sandbox: emulated clusters and clouds on loopback.
    Sandbox(sandbox::SandboxArgs),
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
        })
    }
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let color = cli.color;
    match cli.command {
        Command::Validate(args) => validate::run(args, color),
        Command::Plan(args) => plan::run(args, color).await,
        Command::Apply(args) => apply::run(args, color).await,
        Command::Destroy(args) => apply::destroy(args, color).await,
        Command::Render(args) => render::run(args),
        Command::Audit(args) => audit::run(*args, color).await,
        Command::Token(args) => token::run(args).await,
        Command::Sandbox(args) => sandbox::run(args).await,
    }
}
