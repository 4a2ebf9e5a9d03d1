//! Plan diagnostics: every problem in a plan, located by file, line and column, with a
//! caret under the offending text (rendered by miette).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// One plan file's text, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (relative paths stay relative), shared by every clone
    /// (each entry of the file holds one).
    pub path: Arc<str>,
    /// The file's text.
    pub text: Arc<String>,
    /// Byte offsets where lines start, built on first use and shared by every clone: a
    /// location is one binary search, not a count of the lines before it.
    lines: Arc<OnceLock<Vec<usize>>>,
    /// The parsed document, built again on first use (only diagnostics need it: an
    /// entry keeps its span, not its TOML table) and shared by every clone.
    doc: Arc<OnceLock<Option<toml_edit::Document<String>>>>,
}

impl SourceFile {
    /// A file read from `path` with its text.
    pub fn new(path: impl Into<String>, text: String) -> Self {
        Self {
            path: Arc::from(path.into()),
            text: Arc::new(text),
            lines: Arc::default(),
            doc: Arc::default(),
        }
    }

    /// `(line, column)`, both 1-based, of a byte offset (the column counts bytes).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', self.text.as_bytes()).map(|i| i + 1))
                .collect()
        });
        // The last line start at or before `offset`; `starts[0]` is 0, so there is one.
        let line = starts.partition_point(|&s| s <= offset).max(1);
        (line, offset - starts[line - 1] + 1)
    }

    /// The file parsed as TOML, for locating keys and values; `None` if it does not
    /// parse (then no entry of it was read).
    pub fn document(&self) -> Option<&toml_edit::Document<String>> {
        self.doc
            .get_or_init(|| toml_edit::Document::parse(self.text.as_str().to_owned()).ok())
            .as_ref()
    }

    /// `path:line:col` of a byte offset.
    pub fn location(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.path)
    }
}

/// One problem in a plan.
#[derive(Debug, Clone)]
pub struct PlanDiagnostic {
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// The file and span it concerns; `None` for problems of the plan as a whole.
    pub at: Option<(SourceFile, Range<usize>)>,
    /// The text under the caret.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl PlanDiagnostic {
    /// A problem at `span` of `file`.
    pub fn at(file: &SourceFile, span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: Some((file.clone(), span)),
            label: None,
            help: None,
        }
    }

    /// A problem with no location.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: None,
            label: None,
            help: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the text under the caret.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// `path:line:col`, when located.
    pub fn location(&self) -> Option<String> {
        self.at.as_ref().map(|(f, s)| f.location(s.start))
    }

    fn source(&self) -> Option<NamedSource<String>> {
        self.at
            .as_ref()
            .map(|(f, _)| NamedSource::new(f.path.clone(), f.text.as_str().to_owned()))
    }
}

impl fmt::Display for PlanDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanDiagnostic {}

/// miette wants the source to outlive the diagnostic; this wrapper owns both.
pub struct Rendered {
    diagnostic: PlanDiagnostic,
    source: Option<NamedSource<String>>,
}

impl From<PlanDiagnostic> for Rendered {
    fn from(diagnostic: PlanDiagnostic) -> Self {
        let source = diagnostic.source();
        Self { diagnostic, source }
    }
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.diagnostic, f)
    }
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.diagnostic, f)
    }
}

impl std::error::Error for Rendered {}

impl Diagnostic for Rendered {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span) = self.diagnostic.at.as_ref()?;
        let len = span.end.saturating_sub(span.start).max(1);
        let label = LabeledSpan::new(self.diagnostic.label.clone(), span.start, len);
        Some(Box::new(std::iter::once(label)))
    }
}

/// Every problem found in a plan, in file order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<PlanDiagnostic>);

impl Diagnostics {
    /// Adds one.
    pub fn push(&mut self, d: PlanDiagnostic) {
        self.0.push(d);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sorts by file, then position, so output is deterministic.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let key = |d: &PlanDiagnostic| {
                d.at.as_ref()
                    .map(|(f, s)| (f.path.clone(), s.start))
                    .unwrap_or_default()
            };
            key(a).cmp(&key(b)).then_with(|| a.message.cmp(&b.message))
        });
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            match d.location() {
                Some(loc) => writeln!(f, "{loc}: {}", d.message)?,
                None => writeln!(f, "{}", d.message)?,
            }
        }
        Ok(())
    }
}
