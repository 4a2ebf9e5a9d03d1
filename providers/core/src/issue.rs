//! Plan-time problems a provider finds in its own block of a workload.

/// One problem in a provider's plan block, located by a path relative to the block.
///
/// The engine turns it into a located diagnostic (file, line, column) by finding the path
/// under the workload's `aws`, `gcp` or `azure` table, so providers never deal with files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// The field, relative to the block (`["inline_policies", "s3"]`,
    /// `["roles", "2", "role"]`); empty for the block as a whole.
    pub path: Vec<String>,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl FieldIssue {
    /// An issue at `path` (relative to the block).
    pub fn new(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
            help: None,
        }
    }

    /// Adds what to do about it.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}
