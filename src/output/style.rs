//! Colour: on a terminal only, never with NO_COLOR, overridable with `--color`.

use std::io::IsTerminal;

/// Whether to colour, decided once per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Decides for stdout (`stderr = false`) or stderr. `choice` is `--color`:
    /// `Some(true)` always, `Some(false)` never, `None` auto.
    pub fn detect(choice: Option<bool>, stderr: bool) -> Self {
        let color = choice.unwrap_or_else(|| {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let tty = if stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
            tty && !no_color
        });
        Self { color }
    }

    /// No colour.
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Whether colour is on.
    pub fn color(self) -> bool {
        self.color
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Green.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Yellow.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Red.
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Bold.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}
