//! The fast path of reading a plan file: parsed once and every entry deserialized
//! straight out of what was parsed, without a copy. Each `[[workload]]` section is read
//! by the section reader (`sections.rs`) when it is written in the TOML that reader
//! knows, by `toml`'s borrowing parser otherwise; the rest of the file by `toml`.
//!
//! Only a file that reads cleanly takes this path. At the first thing that would become a
//! diagnostic it gives up, having changed nothing, and the careful path (`load.rs`:
//! `toml_edit`, each entry on its own, every unknown key reported) reads the file again.
//! So diagnostics are exactly the careful path's, and a valid file of 10,000 workloads is
//! read in a fraction of the time and memory (see `benches/RESULTS.md`).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::SourceFile;
use super::load::{At, Entry, Raw, TOP_KEYS};
use super::sections::{self, Val};
use super::spec::{AwsSettings, ClusterSpec, WorkloadSpec};

/// What one file adds to [`Raw`], committed only once the whole file has read cleanly.
struct FileParts {
    version_ok: bool,
    name: Option<(String, Range<usize>)>,
    aws: Option<AwsSettings>,
    clusters: Vec<(String, Entry<ClusterSpec>)>,
    workloads: Vec<Entry<WorkloadSpec>>,
}

impl FileParts {
    /// The parts, if they make a whole file: a version, and a file with workloads must
    /// name its scope (one without may leave it out).
    fn complete(self) -> Option<Self> {
        let complete = self.version_ok && (self.name.is_some() || self.workloads.is_empty());
        complete.then_some(self)
    }

    /// Adds the file's next workload, its header at `span`.
    fn push_workload(
        &mut self,
        file: &SourceFile,
        dir: &Arc<Path>,
        spec: WorkloadSpec,
        span: Range<usize>,
    ) {
        let index = self.workloads.len();
        self.workloads.push(Entry::new(
            spec,
            file.clone(),
            At::Workload(index),
            span,
            Arc::clone(dir),
        ));
    }
}

/// Reads `file` into `raw` if nothing in it needs a diagnostic; returns false (and leaves
/// `raw` as it was) otherwise, for the careful path to report.
pub(super) fn read_file(file: &SourceFile, dir: &Arc<Path>, raw: &mut Raw) -> bool {
    let Some(parts) = parts(file, dir, raw) else {
        return false;
    };
    match parts.name {
        Some((name, span)) => raw.names.push((name, file.clone(), span)),
        None => raw.shared.push(file.clone()),
    }
    if let Some(settings) = parts.aws {
        raw.aws.profiles.extend(settings.profiles);
        if let Some(limit) = settings.trust_policy_limit {
            raw.aws.trust_policy_limit = Some(limit);
        }
    }
    raw.clusters.extend(parts.clusters);
    raw.workloads.extend(parts.workloads);
    true
}

fn parts(file: &SourceFile, dir: &Arc<Path>, raw: &Raw) -> Option<FileParts> {
    in_parts(file, dir, raw).or_else(|| whole(file, file.text.as_str(), dir, raw))
}

/// Reads the file one `[[workload]]` section at a time, so the parser's tokens and tables
/// never exist for the whole file at once: each section becomes its spec, and its memory
/// is reused for the next.
///
/// The file is cut only where a line starts with the header. A cut inside a multi-line
/// string or array leaves that value unterminated in the part before it, which then does
/// not parse; so when every part parses, and the parts after the first hold nothing but
/// `workload` tables, the parts together say exactly what the file says. Otherwise the
/// file is read whole.
fn in_parts(file: &SourceFile, dir: &Arc<Path>, raw: &Raw) -> Option<FileParts> {
    let text = file.text.as_str();
    let mut cuts: Vec<usize> = Vec::new();
    if text.starts_with(WORKLOAD_HEADER) {
        cuts.push(0);
    }
    cuts.extend(
        text.match_indices(&format!("\n{WORKLOAD_HEADER}"))
            .map(|(at, _)| at + 1),
    );
    let head_end = cuts.first().copied().unwrap_or(text.len());
    let mut out = whole(file, &text[..head_end], dir, raw)?;
    for (i, &start) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).copied().unwrap_or(text.len());
        // Most sections are read by the section reader; what it leaves, `toml` reads.
        if let Some(root) = sections::parse(&text[start..end], start) {
            sectioned(file, dir, root, &mut out)?;
            continue;
        }
        let mut root = DeTable::parse(&text[start..end]).ok()?.into_inner();
        let value = root.remove("workload")?;
        if !root.is_empty() {
            return None;
        }
        workloads(file, dir, value, start, &mut out)?;
    }
    out.complete()
}

/// The line that opens a workload: where the file is cut into parts.
const WORKLOAD_HEADER: &str = "[[workload]]";

/// What `text`, the whole file or the part before its first `[[workload]]` line, says.
fn whole(file: &SourceFile, text: &str, dir: &Arc<Path>, raw: &Raw) -> Option<FileParts> {
    let root = DeTable::parse(text).ok()?.into_inner();
    if root
        .keys()
        .any(|k| !TOP_KEYS.contains(&k.get_ref().as_ref()))
    {
        return None;
    }
    let mut out = FileParts {
        version_ok: false,
        name: None,
        aws: None,
        clusters: Vec::new(),
        workloads: Vec::new(),
    };
    for (key, value) in root {
        let span = value.span();
        match key.get_ref().as_ref() {
            "version" => {
                out.version_ok = value
                    .get_ref()
                    .as_integer()
                    .is_some_and(|i| i.as_str() == "1" && i.radix() == 10);
            }
            "name" => out.name = Some((value.get_ref().as_str()?.to_owned(), span)),
            "aws" => {
                let settings: AwsSettings = deserialize(value)?;
                if let Some(limit) = settings.trust_policy_limit
                    && (!(2048..=8192).contains(&limit)
                        || raw.aws.trust_policy_limit.is_some_and(|l| l != limit))
                {
                    return None;
                }
                out.aws = Some(settings);
            }
            "clusters" => {
                let DeValue::Table(clusters) = value.into_inner() else {
                    return None;
                };
                for (name, item) in clusters {
                    let name_span = name.span();
                    let name = name.into_inner().into_owned();
                    let spec: ClusterSpec = deserialize(item)?;
                    out.clusters.push((
                        name.clone(),
                        Entry::new(
                            spec,
                            file.clone(),
                            At::Cluster(name),
                            name_span,
                            Arc::clone(dir),
                        ),
                    ));
                }
            }
            "workload" => workloads(file, dir, value, 0, &mut out)?,
            _ => return None,
        }
    }
    out.complete()
}

/// Adds the `[[workload]]` tables of `value`, the `workload` key of the part of the file
/// that starts at byte `offset`.
fn workloads(
    file: &SourceFile,
    dir: &Arc<Path>,
    value: Spanned<DeValue<'_>>,
    offset: usize,
    out: &mut FileParts,
) -> Option<()> {
    let DeValue::Array(tables) = value.into_inner() else {
        return None;
    };
    out.workloads.reserve(tables.len());
    for table in tables {
        let span = table.span();
        let span = span.start + offset..span.end + offset;
        // `[[workload]]` sections only: an inline array of tables is an error the
        // careful path reports.
        if !table.get_ref().is_table()
            || !file
                .text
                .get(span.clone())
                .is_some_and(|h| h.starts_with("[["))
        {
            return None;
        }
        out.push_workload(file, dir, deserialize(table)?, span);
    }
    Some(())
}

/// Adds the `[[workload]]` tables of a part the section reader read: the part must hold
/// nothing else.
fn sectioned(
    file: &SourceFile,
    dir: &Arc<Path>,
    mut root: sections::Table<'_>,
    out: &mut FileParts,
) -> Option<()> {
    let Val::Array(tables, true) = root.remove("workload")? else {
        return None;
    };
    if !root.entries.is_empty() {
        return None;
    }
    out.workloads.reserve(tables.len());
    for table in tables {
        let Val::Table(table) = table else {
            return None;
        };
        let (start, end) = table.header?;
        let spec = WorkloadSpec::deserialize(Val::Table(table)).ok()?;
        out.push_workload(file, dir, spec, start..end);
    }
    Some(())
}

fn deserialize<'a, T: Deserialize<'a>>(value: Spanned<DeValue<'a>>) -> Option<T> {
    T::deserialize(value.into_deserializer()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Diagnostics;

    /// What an entry holds, minus the shared file handle.
    fn shape<T: std::fmt::Debug>(e: &Entry<T>) -> String {
        format!("{:?} {:?} {:?} {:?}", e.spec, e.span, e.at(), e.dir)
    }

    fn both(text: &str) -> (Option<Raw>, Raw) {
        let file = SourceFile::new("plan.toml", text.to_owned());
        let dir: Arc<Path> = Path::new("d").into();
        let mut fast = Raw::default();
        let fast = read_file(&file, &dir, &mut fast).then_some(fast);
        let mut careful = Raw::default();
        let mut diags = Diagnostics::default();
        super::super::load::read_file(&file, dir, &mut careful, &mut diags);
        (fast, careful)
    }

    fn same(a: &Raw, b: &Raw) {
        let entries = |r: &Raw| {
            let clusters = r.clusters.iter().map(|(n, e)| format!("{n} {}", shape(e)));
            let workloads = r.workloads.iter().map(shape);
            clusters.chain(workloads).collect::<Vec<_>>()
        };
        assert_eq!(entries(a), entries(b));
        let names = |r: &Raw| {
            r.names
                .iter()
                .map(|(n, f, s)| format!("{n} {} {s:?}", f.path))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(a), names(b));
        assert_eq!(a.shared.len(), b.shared.len());
        assert_eq!(format!("{:?}", a.aws), format!("{:?}", b.aws));
    }

    #[test]
    fn the_fast_path_reads_every_example_exactly_as_the_careful_one() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d)
                .expect("examples are readable")
                .flatten()
            {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "toml") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 6, "examples found: {files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).expect("example is readable");
            let (fast, careful) = both(&text);
            let fast = fast.unwrap_or_else(|| panic!("{} took the careful path", path.display()));
            same(&fast, &careful);
        }
    }

    #[test]
    fn spans_of_every_entry_shape_match() {
        let text = "version = 1\nname = \"t\"\naws = { profiles = { \"1\" = \"p\" }, trust_policy_limit = 4096 }\n\
            clusters.inline = { kind = \"generic\", issuer = \"https://i\" }\n\n\
            [clusters.dev]\nkind = \"eks\"\naccount = \"111122223333\"\n\n\
            [[workload]]\ncluster = \"dev\"\nnamespace = \"n\"\nservice_account = \"a\"\naws.role = \"r\"\n\n\
            [[workload]] # second\n  cluster = \"inline\"\nnamespace = \"n\"\nservice_account = \"b\"\n\
            [workload.kubernetes]\nrules = []\n";
        let (fast, careful) = both(text);
        same(&fast.expect("a valid file takes the fast path"), &careful);
    }

    /// Reads `text` both ways: what the fast path made of it (if it took it), what the
    /// careful path made of it, and whether the careful path had anything to report.
    fn both_checked(text: &str) -> (Option<Raw>, Raw, bool) {
        let file = SourceFile::new("plan.toml", text.to_owned());
        let mut fast = Raw::default();
        let dir: Arc<Path> = Path::new("d").into();
        let fast = read_file(&file, &dir, &mut fast).then_some(fast);
        let mut careful = Raw::default();
        let mut diags = Diagnostics::default();
        super::super::load::read_file(&file, dir, &mut careful, &mut diags);
        (fast, careful, diags.is_empty())
    }

    #[test]
    fn cutting_the_file_at_workload_headers_never_changes_what_it_says() {
        let head =
            "version = 1\nname = \"t\"\n[clusters.c]\nkind = \"generic\"\nissuer = \"https://i\"\n";
        let w = |sa: &str| {
            format!(
                "[[workload]]\ncluster = \"c\"\nnamespace = \"n\"\nservice_account = \"{sa}\"\n"
            )
        };
        let spaced = |sa: &str| w(sa).replace("[[workload]]", "[[ workload ]] # spaced");
        // Each clean file, and whether it can be read in parts.
        let clean = [
            (format!("{head}{}{}", w("a"), w("b")), true),
            // Tables after a workload belong to it, or to the file (read whole).
            (
                format!(
                    "{head}{}[workload.kubernetes]\nrules = []\n{}",
                    w("a"),
                    w("b")
                ),
                true,
            ),
            (
                format!(
                    "{head}{}[clusters.d]\nkind = \"generic\"\nissuer = \"https://j\"\n{}",
                    w("a"),
                    w("b")
                ),
                false,
            ),
            // Headers the cut does not see, before and between the ones it does.
            (
                format!("{head}{}{}{}{}", spaced("s"), w("a"), spaced("t"), w("b")),
                true,
            ),
            // Windows line ends, a header with a comment, a header inside a string value.
            (
                format!("{head}{}{}", w("a"), w("b")).replace('\n', "\r\n"),
                true,
            ),
            (
                format!("{head}{}", w("a").replace("]]\n", "]] # first\n")),
                true,
            ),
            (
                format!(
                    "{head}{}annotations.x = \"\\n[[workload]]\"\n{}",
                    w("a"),
                    w("b")
                ),
                true,
            ),
            // A header line inside a multi-line string or array: the part before the cut
            // does not parse, so the file is read whole.
            (
                format!(
                    "{head}{}annotations.a = '''\n[[workload]]\ncluster = \"x\"\n'''\n{}",
                    w("a"),
                    w("b")
                ),
                false,
            ),
            (
                format!(
                    "{head}{}annotations.a = \"\"\"\n'''\n[[workload]]\n'''\n\"\"\"\n",
                    w("a")
                ),
                false,
            ),
        ];
        for (text, parts) in clean {
            let (fast, careful, ok) = both_checked(&text);
            assert!(ok, "the careful path reports on a clean file:\n{text}");
            same(&fast.expect("a clean file takes the fast path"), &careful);
            let file = SourceFile::new("plan.toml", text.clone());
            let read = in_parts(&file, &Path::new("d").into(), &Raw::default()).is_some();
            assert_eq!(read, parts, "read in parts: {read}\n{text}");
        }
        // Whatever is wrong across or within parts is the careful path's to report.
        let wrong = [
            format!("{head}{}labels.x = [\n[[workload]]\n]\n", w("a")),
            format!("{}{head}", w("a")),
            format!("{head}{}namespace = \"m\"\n", w("a")),
            format!("{head}{}[workload]\nx = 1\n", w("a")),
            format!("{head}{}[clusters.c]\nkind = \"generic\"\n", w("a")),
        ];
        for text in wrong {
            let (fast, _, ok) = both_checked(&text);
            assert!(!ok, "the careful path found nothing in:\n{text}");
            assert!(fast.is_none(), "read fast:\n{text}");
        }
    }

    #[test]
    fn anything_the_careful_path_would_report_sends_the_file_there() {
        let head = "version = 1\nname = \"t\"\n";
        let workload =
            "[[workload]]\ncluster = \"c\"\nnamespace = \"n\"\nservice_account = \"a\"\n";
        for text in [
            format!("{head}{workload}typo = 1\n"),
            format!("{head}extra = 1\n"),
            format!("version = 2\nname = \"t\"\n{workload}"),
            format!("version = 1\n{workload}"),
            "version = 1\nname = 3\n".to_owned(),
            format!("{head}aws.trust_policy_limit = 10\n"),
            format!(
                "{head}workload = [{{ cluster = \"c\", namespace = \"n\", service_account = \"a\" }}]\n"
            ),
            format!("{head}[clusters.c]\nkind = \"nope\"\n"),
            format!("{head}clusters = 1\n"),
            format!("{head}[[workload]\n"),
        ] {
            let (fast, _) = both(&text);
            assert!(fast.is_none(), "took the fast path:\n{text}");
        }
    }
}
