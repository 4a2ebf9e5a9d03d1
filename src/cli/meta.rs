//! `wid version`, `wid completions SHELL` and `wid man`: facts about wid itself, all
//! generated from the clap definition so they never disagree with `--help`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{CliError, ExitCode};

/// The version and the git revision the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("WID_GIT_REVISION"),
    ")"
);

/// Arguments of `wid completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Runs `wid version`.
pub fn version() -> Result<ExitCode, CliError> {
    crate::output::emit(&format!("wid {VERSION}\n"));
    Ok(ExitCode::Success)
}

/// Runs `wid completions SHELL`: the completion script on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode, CliError> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut super::Cli::command(), "wid", &mut out);
    emit_bytes(out)
}

/// Runs `wid man`: the roff man page of `wid` (wid(1)) on stdout.
pub fn man() -> Result<ExitCode, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::Cli::command())
        .render(&mut out)
        .map_err(|e| CliError::Io(format!("failed to render the man page: {e}")))?;
    emit_bytes(out)
}

fn emit_bytes(out: Vec<u8>) -> Result<ExitCode, CliError> {
    let text = String::from_utf8(out)
        .map_err(|e| CliError::Io(format!("generated text is not UTF-8: {e}")))?;
    crate::output::emit(&text);
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_name_every_subcommand() {
        let mut out = Vec::new();
        clap_complete::generate(
            Shell::Bash,
            &mut super::super::Cli::command(),
            "wid",
            &mut out,
        );
        let bash = String::from_utf8(out).unwrap();
        let mut man = Vec::new();
        clap_mangen::Man::new(super::super::Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        for sub in [
            "plan",
            "apply",
            "destroy",
            "render",
            "audit",
            "version",
            "completions",
        ] {
            assert!(bash.contains(sub), "bash completion lacks {sub}");
            assert!(man.contains(sub), "man page lacks {sub}");
        }
        assert!(man.starts_with(".ie") || man.contains(".TH wid"), "{man}");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::super::Cli::command().debug_assert();
    }

    #[test]
    fn the_version_names_a_revision() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains("(git "));
    }
}
