//! Keeping a `wid render` out dir exact. wid lists what it wrote, with each file's
//! SHA-256, in `DIR/.wid-render.json`; the next render removes the files of that list
//! whose objects left the plan, overwrites the ones that changed, and leaves every other
//! file alone. A listed file whose content is no longer what wid wrote (someone edited
//! it), or a file in the way that wid never wrote, stops the render before anything is
//! written: wid neither loses a person's edit nor takes over a file it did not make.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::CliError;

/// The list of rendered files, in the out dir.
pub const MANIFEST: &str = ".wid-render.json";

/// `DIR/.wid-render.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// Always 1.
    format_version: u32,
    /// "wid render".
    generator: String,
    /// Each file wid wrote (relative, `/`-separated) and the SHA-256 of what it wrote.
    files: BTreeMap<String, String>,
}

/// What a render did to its out dir.
#[derive(Debug, Default)]
pub struct Written {
    /// Files written (new or changed).
    pub written: usize,
    /// Files already up to date.
    pub unchanged: usize,
    /// Files removed because their objects left the plan (relative paths).
    pub removed: Vec<String>,
}

impl Written {
    /// One line per effect, for stdout.
    pub fn summary(&self, dir: &Path) -> String {
        let mut out = format!(
            "wrote {} manifest(s) under {} ({} unchanged)\n",
            self.written,
            dir.display(),
            self.unchanged
        );
        for rel in &self.removed {
            out.push_str(&format!("removed {rel} (its object left the plan)\n"));
        }
        out
    }
}

fn digest(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

fn key(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Io(format!("failed to write {}: {e}", path.display()))
}

/// Makes `dir` hold exactly `files` (relative path → content) among the files wid
/// rendered there, as the module describes.
pub fn write_exact(dir: &Path, files: &BTreeMap<PathBuf, String>) -> Result<Written, CliError> {
    let manifest_path = dir.join(MANIFEST);
    let old: Manifest = match std::fs::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Io(format!(
                "{} is not a list wid render can read ({e}); it is how render knows which files it wrote: restore it, or render into an empty directory",
                manifest_path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => {
            return Err(CliError::Io(format!(
                "failed to read {}: {e}",
                manifest_path.display()
            )));
        }
    };
    let mut problems = Vec::new();
    let mut out = Written::default();
    let mut to_write = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(current) if current == text.as_bytes() => out.unchanged += 1,
            Ok(current) => match old.files.get(&key(rel)) {
                Some(wrote) if *wrote == digest(&current) => to_write.push((path, text)),
                Some(_) => problems.push(format!(
                    "{} was edited since wid rendered it",
                    path.display()
                )),
                None => problems.push(format!(
                    "{} exists and was not written by wid render",
                    path.display()
                )),
            },
            Err(_) => to_write.push((path, text)),
        }
    }
    let wanted: std::collections::BTreeSet<String> = files.keys().map(|p| key(p)).collect();
    let mut stale = Vec::new();
    for (rel, wrote) in &old.files {
        if wanted.contains(rel) {
            continue;
        }
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(current) if digest(&current) == *wrote => stale.push((rel.clone(), path)),
            Ok(_) => problems.push(format!(
                "{} was edited since wid rendered it, and its object left the plan",
                path.display()
            )),
            Err(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(CliError::Usage(format!(
            "render changed nothing in {}: {}. wid never overwrites or deletes a file it did not write as it is: move the change into the plan, then delete or restore the file, and render again",
            dir.display(),
            problems.join("; ")
        )));
    }
    for (path, text) in to_write {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        out.written += 1;
    }
    for (rel, path) in stale {
        std::fs::remove_file(&path).map_err(io(&path))?;
        remove_empty_parents(dir, &path);
        out.removed.push(rel);
    }
    let manifest = Manifest {
        format_version: 1,
        generator: "wid render".to_owned(),
        files: files
            .iter()
            .map(|(rel, text)| (key(rel), digest(text.as_bytes())))
            .collect(),
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| CliError::Io(e.to_string()))?;
    std::fs::write(&manifest_path, format!("{text}\n")).map_err(io(&manifest_path))?;
    Ok(out)
}

/// Removes the directories between `file` and `root` that the removal left empty.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut at = file.parent();
    while let Some(dir) = at {
        if dir == root || !dir.starts_with(root) || std::fs::remove_dir(dir).is_err() {
            break;
        }
        at = dir.parent();
    }
}
