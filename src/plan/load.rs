//! Reading plan files: one file or a directory of `*.toml`, each parsed with spans, each
//! cluster and workload deserialized on its own so that one bad entry does not hide the
//! problems of the others.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml_edit::Item;

use super::diagnostic::{Diagnostics, PlanDiagnostic, SourceFile};
use super::spec::{AwsSettings, ClusterSpec, WorkloadSpec};
use super::toml_spans::{Seg, entry_key_span, entry_value_span};

/// A cluster or workload entry as read, with where it came from.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// The deserialized entry.
    pub spec: T,
    /// Its file.
    pub file: SourceFile,
    /// Where its table is in its file (`clusters.NAME`, `workload.INDEX`): fields are
    /// located by parsing the file again when a diagnostic needs them, so an entry never
    /// holds a copy of its TOML.
    at: At,
    /// The span of its header or first key.
    pub span: Range<usize>,
    /// The directory of its file (relative paths in it are relative to this), shared by
    /// the file's entries.
    pub dir: Arc<Path>,
}

/// Where an entry's table is in its file.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum At {
    /// `clusters.NAME`.
    Cluster(String),
    /// `workload.INDEX`: a plan of thousands of workloads holds one number each rather
    /// than a path of two keys.
    Workload(usize),
}

impl At {
    /// The path of keys and indexes.
    pub(super) fn segs(&self) -> [Seg; 2] {
        match self {
            Self::Cluster(name) => [Seg::Key("clusters".into()), Seg::Key(name.clone())],
            Self::Workload(index) => [Seg::Key("workload".into()), Seg::Index(*index)],
        }
    }
}

impl<T> Entry<T> {
    /// An entry read from `file` at `at` (`clusters.NAME`, `workload.INDEX`).
    pub(super) fn new(
        spec: T,
        file: SourceFile,
        at: At,
        span: Range<usize>,
        dir: Arc<Path>,
    ) -> Self {
        Self {
            spec,
            file,
            at,
            span,
            dir,
        }
    }

    /// Where its table is in its file.
    #[cfg(test)]
    pub(super) fn at(&self) -> [Seg; 2] {
        self.at.segs()
    }

    /// `file:line:col` of the entry.
    pub fn origin(&self) -> String {
        self.file.location(self.span.start)
    }

    /// The span of the value at `path` under the entry (or of the deepest key or value
    /// found on the way, or of the entry).
    pub(crate) fn value_span(&self, path: &[Seg]) -> Range<usize> {
        match self.file.document() {
            Some(doc) => entry_value_span(doc.as_table(), &self.at.segs(), path, self.span.clone()),
            None => self.span.clone(),
        }
    }

    /// The span of the last key of `path` under the entry.
    pub(crate) fn key_span(&self, path: &[Seg]) -> Range<usize> {
        match self.file.document() {
            Some(doc) => entry_key_span(doc.as_table(), &self.at.segs(), path, self.span.clone()),
            None => self.span.clone(),
        }
    }
}

/// Everything read from the plan's files, before cross-file validation.
#[derive(Debug, Default)]
pub struct Raw {
    /// `(name, where)` per file that declares one.
    pub names: Vec<(String, SourceFile, Range<usize>)>,
    /// Files without a `name` (clusters and settings shared by every scope).
    pub shared: Vec<SourceFile>,
    /// Clusters by name, in file order (duplicates kept for the duplicate check).
    pub clusters: Vec<(String, Entry<ClusterSpec>)>,
    /// Workloads in file order.
    pub workloads: Vec<Entry<WorkloadSpec>>,
    /// AWS settings, merged.
    pub aws: AwsSettings,
    /// The files read.
    pub files: Vec<SourceFile>,
    /// Clusters declared with an entry that does not deserialize (already reported):
    /// workloads naming them are not also told the cluster is undeclared.
    pub broken_clusters: std::collections::BTreeSet<String>,
    /// Whether some file could not be read or parsed (plan-wide checks then stay quiet,
    /// since what they would miss may be in that file).
    pub incomplete: bool,
}

pub(super) const TOP_KEYS: &[&str] = &["version", "name", "clusters", "aws", "workload"];

/// Reads `path` (a file, or a directory whose `*.toml` files are read in name order).
pub fn read(path: &Path, diags: &mut Diagnostics) -> Raw {
    let mut raw = Raw::default();
    let files = match plan_files(path) {
        Ok(files) => files,
        Err(message) => {
            diags.push(PlanDiagnostic::general(message));
            return raw;
        }
    };
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                diags.push(PlanDiagnostic::general(format!(
                    "failed to read {}: {e}",
                    file.display()
                )));
                raw.incomplete = true;
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                // Located at the first bad byte: what comes before it is valid, so the
                // lossy text has the same offsets up to there.
                let at = e.utf8_error().valid_up_to();
                let bad = e.as_bytes()[at];
                let source = SourceFile::new(
                    file.display().to_string(),
                    String::from_utf8_lossy(e.as_bytes()).into_owned(),
                );
                diags.push(
                    PlanDiagnostic::at(
                        &source,
                        at..at + 1,
                        format!("the file is not valid UTF-8 (byte 0x{bad:02X})"),
                    )
                    .label("not UTF-8")
                    .help("plan files are UTF-8 text; re-save the file as UTF-8"),
                );
                raw.incomplete = true;
                continue;
            }
        };
        let source = SourceFile::new(file.display().to_string(), text);
        let dir: Arc<Path> = file.parent().unwrap_or(Path::new("")).into();
        if !super::fast::read_file(&source, &dir, &mut raw) {
            read_file(&source, dir, &mut raw, diags);
        }
        raw.files.push(source);
    }
    raw
}

/// The plan files at `path`: the file itself, or the directory's `*.toml` files in name
/// order.
pub fn plan_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("failed to read plan {}: {e}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("failed to read plan directory {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.toml plan files in {}", path.display()));
    }
    Ok(files)
}

/// The careful path: every problem of the file reported, each located.
pub(super) fn read_file(file: &SourceFile, dir: Arc<Path>, raw: &mut Raw, diags: &mut Diagnostics) {
    let doc = match toml_edit::Document::parse(file.text.as_str().to_owned()) {
        Ok(doc) => doc,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim_end().to_owned();
            diags.push(PlanDiagnostic::at(
                file,
                span,
                format!("invalid TOML: {message}"),
            ));
            raw.incomplete = true;
            return;
        }
    };
    let root = doc.as_table();
    for (key, _) in root.iter() {
        if !TOP_KEYS.contains(&key) {
            let span = root.key(key).and_then(toml_edit::Key::span).unwrap_or(0..0);
            let help = match super::messages::did_you_mean(key, TOP_KEYS) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("the top level takes {}", TOP_KEYS.join(", ")),
            };
            diags.push(
                PlanDiagnostic::at(file, span, format!("unknown field `{key}`"))
                    .label("not a plan field")
                    .help(help),
            );
        }
    }
    let whole = 0..file.text.len().min(1);
    match root.get("version") {
        None => diags.push(
            PlanDiagnostic::at(file, whole.clone(), "missing `version`")
                .help("start the file with `version = 1`"),
        ),
        Some(item) => {
            if item.as_integer() != Some(1) {
                let span = item.span().unwrap_or(whole.clone());
                diags.push(
                    PlanDiagnostic::at(file, span, "unsupported plan version")
                        .label("expected 1")
                        .help("this wid reads `version = 1` plans"),
                );
            }
        }
    }
    match root.get("name") {
        Some(item) => {
            let span = item.span().unwrap_or(whole.clone());
            match item.as_str() {
                Some(name) => raw.names.push((name.to_owned(), file.clone(), span)),
                None => diags.push(PlanDiagnostic::at(file, span, "`name` must be a string")),
            }
        }
        // A file of clusters and settings only may leave the scope out: it is shared by
        // every scope of the directory.
        None if root.contains_key("workload") => diags.push(
            PlanDiagnostic::at(file, whole.clone(), "missing `name`")
                .help("a file with workloads names its ownership scope, the team that owns everything wid creates for them: add `name = \"TEAM\"`"),
        ),
        None => raw.shared.push(file.clone()),
    }
    if let Some(item) = root.get("aws")
        && let Some(settings) = deserialize::<AwsSettings>(item, file, diags, whole.clone())
    {
        raw.aws.profiles.extend(settings.profiles);
        if let Some(limit) = settings.trust_policy_limit {
            let span = root
                .get("aws")
                .and_then(|a| a.get("trust_policy_limit"))
                .and_then(Item::span)
                .unwrap_or(whole.clone());
            if !(2048..=8192).contains(&limit) {
                diags.push(
                    PlanDiagnostic::at(file, span, format!("trust_policy_limit {limit} is outside IAM's range"))
                        .label("expected 2048 to 8192")
                        .help("IAM's role trust policy quota is 2048 characters by default and can be raised to 8192"),
                );
            } else if raw.aws.trust_policy_limit.is_some_and(|l| l != limit) {
                diags.push(PlanDiagnostic::at(
                    file,
                    span,
                    "trust_policy_limit is set differently in another file",
                ));
            } else {
                raw.aws.trust_policy_limit = Some(limit);
            }
        }
    }
    if let Some(item) = root.get("clusters") {
        match item.as_table_like() {
            Some(clusters) => {
                for (name, item) in clusters.iter() {
                    let span = clusters
                        .get_key_value(name)
                        .and_then(|(k, _)| k.span())
                        .or_else(|| item.span())
                        .unwrap_or(whole.clone());
                    let Some(spec) = deserialize::<ClusterSpec>(item, file, diags, span.clone())
                    else {
                        raw.broken_clusters.insert(name.to_owned());
                        continue;
                    };
                    raw.clusters.push((
                        name.to_owned(),
                        Entry {
                            spec,
                            file: file.clone(),
                            at: At::Cluster(name.to_owned()),
                            span,
                            dir: dir.clone(),
                        },
                    ));
                }
            }
            None => diags.push(PlanDiagnostic::at(
                file,
                item.span().unwrap_or(whole.clone()),
                "`clusters` must be a table of clusters: [clusters.NAME]",
            )),
        }
    }
    if let Some(item) = root.get("workload") {
        match item.as_array_of_tables() {
            Some(tables) => {
                for (index, table) in tables.iter().enumerate() {
                    let span = table.span().unwrap_or(whole.clone());
                    let item = Item::Table(table.clone());
                    if let Some(spec) =
                        deserialize::<WorkloadSpec>(&item, file, diags, span.clone())
                    {
                        raw.workloads.push(Entry {
                            spec,
                            file: file.clone(),
                            at: At::Workload(index),
                            span,
                            dir: dir.clone(),
                        });
                    }
                }
            }
            None => diags.push(
                PlanDiagnostic::at(
                    file,
                    item.span().unwrap_or(whole),
                    "`workload` must be an array of tables",
                )
                .help("write each workload as a [[workload]] section"),
            ),
        }
    }
}

/// Deserializes one entry; a serde error becomes a located diagnostic.
fn deserialize<T: for<'de> Deserialize<'de>>(
    item: &Item,
    file: &SourceFile,
    diags: &mut Diagnostics,
    fallback: Range<usize>,
) -> Option<T> {
    let value = match item.clone().into_value() {
        Ok(value) => value,
        Err(item) => {
            diags.push(PlanDiagnostic::at(
                file,
                item.span().unwrap_or(fallback),
                "expected a table",
            ));
            return None;
        }
    };
    let mut value = value;
    // Serde stops at the first error. An unknown key is reported, removed, and the entry
    // read again, so that every unknown key of an entry is reported at once; any other
    // error ends the entry (removing a mistyped value would only add a "missing field").
    for _ in 0..MAX_UNKNOWN_KEYS {
        let e = match T::deserialize(value.clone().into_deserializer()) {
            Ok(spec) => return Some(spec),
            Err(e) => e,
        };
        let span = e.span().unwrap_or(fallback.clone());
        let unknown = e.message().starts_with("unknown field");
        let (message, help) = super::messages::serde_error(e.message());
        let mut d = PlanDiagnostic::at(file, span.clone(), message);
        if let Some(help) = help {
            d = d.help(help);
        }
        diags.push(d);
        if !(unknown && remove_key_at(&mut value, &span)) {
            return None;
        }
    }
    None
}

/// How many unknown keys of one entry are reported before giving up on it.
const MAX_UNKNOWN_KEYS: usize = 32;

/// Removes the key whose span is `span` anywhere under `value`; false if there is none.
fn remove_key_at(value: &mut toml_edit::Value, span: &Range<usize>) -> bool {
    match value {
        toml_edit::Value::InlineTable(t) => {
            let found = t.iter().find_map(|(k, _)| {
                let key = t.key(k)?;
                (key.span().as_ref() == Some(span)).then(|| k.to_owned())
            });
            if let Some(k) = found {
                t.remove(&k);
                return true;
            }
            t.iter_mut().any(|(_, v)| remove_key_at(v, span))
        }
        toml_edit::Value::Array(a) => a.iter_mut().any(|v| remove_key_at(v, span)),
        _ => false,
    }
}
