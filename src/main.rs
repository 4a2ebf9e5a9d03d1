//! The `wid` binary: parse the command line, run it on a tokio runtime, map the result to
//! an exit code.

use clap::Parser as _;
use wid::cli::{self, Cli};

/// mimalloc rather than the system allocator: a plan of thousands of workloads is
/// hundreds of thousands of small allocations, which glibc's allocator spends about a
/// third of wid's CPU on (`benches/RESULTS.md`). Its version 2 (see the workspace's
/// `Cargo.toml`), which keeps fewer pages around the heap than version 3.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Usage errors exit 1, not clap's default 2: 2 means "changes pending" here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let style = cli.color.style(true);
    let wid_log = std::env::var("WID_LOG").ok();
    let filter = match cli::log_filter(cli.verbose, wid_log.as_deref()) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!(
                "warning: ignoring WID_LOG={}: {e}",
                wid_log.unwrap_or_default()
            );
            cli::log_filter(cli.verbose, None).expect("the built-in log filters parse")
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(style.color())
        .init();
    // The runtime's threads (workers, and the blocking pool where each cloud's preflight
    // runs) get the main thread's stack: setting up the Google clients nests futures deep
    // enough to overflow tokio's default 2 MiB in a debug build.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            cli::print_error(&error, style);
            error.exit_code()
        }
    };
    // Everything worth waiting for is done; a prompt's blocked stdin read or a call
    // dropped by an interrupt must not hold the exit.
    runtime.shutdown_background();
    std::process::ExitCode::from(code as u8)
}
