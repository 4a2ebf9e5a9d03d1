//! Digests of the files a plan was computed from: every `*.toml` plan file the loader
//! read, and every file a plan file names that compile reads (inline policy documents).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::cli::CliError;
use crate::clouds;
use crate::plan::{self, Plan};

/// What a recorded file is to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// A TOML plan file.
    Plan,
    /// A file a plan file names (an inline policy document).
    Referenced,
}

/// One file's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// The path relative to the plan's directory (the plan path itself when it is a
    /// directory, else the plan file's directory), `/`-separated as written.
    pub path: String,
    /// What the file is to the plan.
    pub role: FileRole,
    /// SHA-256 of the file's bytes, in hex.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
}

impl FileDigest {
    fn of(path: String, role: FileRole, content: &[u8]) -> Self {
        Self {
            path,
            role,
            sha256: hex::encode(Sha256::digest(content)),
            bytes: content.len() as u64,
        }
    }
}

/// How one file differs from when the plan was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Its content changed.
    Changed(String),
    /// It is new (a plan file added to the directory).
    Added(String),
    /// It is gone, or cannot be read.
    Removed(String),
}

impl std::fmt::Display for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Changed(p) => write!(f, "{p} (changed)"),
            Self::Added(p) => write!(f, "{p} (new)"),
            Self::Removed(p) => write!(f, "{p} (removed)"),
        }
    }
}

/// The directory plan-relative paths are relative to.
pub fn root_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// The digests of a loaded plan: the text of every plan file exactly as it was parsed, and
/// every file its blocks name, sorted by path.
pub fn digests(plan: &Plan, path: &Path) -> Result<Vec<FileDigest>, CliError> {
    let root = root_of(path);
    let mut out: BTreeMap<String, FileDigest> = BTreeMap::new();
    for file in &plan.files {
        let rel = relative(&root, Path::new(&*file.path));
        out.insert(
            rel.clone(),
            FileDigest::of(rel, FileRole::Plan, file.text.as_bytes()),
        );
    }
    for w in &plan.workloads {
        for cloud in clouds::ALL.iter().filter(|c| c.used_by(&w.spec)) {
            for file in cloud.referenced_files(w) {
                let content = std::fs::read(&file)
                    .map_err(|e| CliError::Io(format!("failed to read {}: {e}", file.display())))?;
                let rel = relative(&root, &file);
                out.entry(rel.clone())
                    .or_insert_with(|| FileDigest::of(rel, FileRole::Referenced, &content));
            }
        }
    }
    Ok(out.into_values().collect())
}

/// The digests of the files at `path` now, read without parsing them: the plan files the
/// loader would read, and the referenced files `saved` names (a new reference can only
/// come from a changed plan file, which shows already).
fn current(path: &Path, saved: &[FileDigest]) -> BTreeMap<String, Option<FileDigest>> {
    let root = root_of(path);
    let mut out = BTreeMap::new();
    for file in plan::plan_files(path).unwrap_or_default() {
        let rel = relative(&root, &file);
        let digest = std::fs::read(&file)
            .ok()
            .map(|content| FileDigest::of(rel.clone(), FileRole::Plan, &content));
        out.insert(rel, digest);
    }
    for d in saved.iter().filter(|d| d.role == FileRole::Referenced) {
        let digest = std::fs::read(root.join(&d.path))
            .ok()
            .map(|content| FileDigest::of(d.path.clone(), FileRole::Referenced, &content));
        out.insert(d.path.clone(), digest);
    }
    out
}

/// How the files at `path` differ from `saved`, sorted by path; empty when they are the
/// same.
pub fn compare_now(path: &Path, saved: &[FileDigest]) -> Vec<FileChange> {
    compare(saved, &current(path, saved))
}

/// How `now` differs from `saved`.
pub fn compare_loaded(saved: &[FileDigest], now: &[FileDigest]) -> Vec<FileChange> {
    let now = now
        .iter()
        .map(|d| (d.path.clone(), Some(d.clone())))
        .collect();
    compare(saved, &now)
}

fn compare(saved: &[FileDigest], now: &BTreeMap<String, Option<FileDigest>>) -> Vec<FileChange> {
    let mut out = Vec::new();
    let before: BTreeMap<&str, &FileDigest> = saved.iter().map(|d| (d.path.as_str(), d)).collect();
    for (path, d) in &before {
        match now.get(*path) {
            Some(Some(n)) if n.sha256 == d.sha256 => {}
            Some(Some(_)) => out.push(FileChange::Changed((*path).to_owned())),
            Some(None) | None => out.push(FileChange::Removed((*path).to_owned())),
        }
    }
    for (path, d) in now {
        if d.is_some() && !before.contains_key(path.as_str()) {
            out.push(FileChange::Added(path.clone()));
        }
    }
    out.sort_by(|a, b| name(a).cmp(name(b)));
    out
}

fn name(c: &FileChange) -> &str {
    match c {
        FileChange::Changed(p) | FileChange::Added(p) | FileChange::Removed(p) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(path: &str, sha: &str) -> FileDigest {
        FileDigest {
            path: path.into(),
            role: FileRole::Plan,
            sha256: sha.into(),
            bytes: 1,
        }
    }

    #[test]
    fn every_kind_of_file_change_is_named() {
        let saved = vec![d("a.toml", "1"), d("b.toml", "2"), d("c.toml", "3")];
        let now = vec![d("a.toml", "1"), d("b.toml", "9"), d("d.toml", "4")];
        assert_eq!(
            compare_loaded(&saved, &now),
            vec![
                FileChange::Changed("b.toml".into()),
                FileChange::Removed("c.toml".into()),
                FileChange::Added("d.toml".into()),
            ]
        );
        assert!(compare_loaded(&saved, &saved).is_empty());
    }
}
