//! `wid render PATH --out-dir DIR`: the Kubernetes manifests of a plan, for clusters whose
//! KSAs a GitOps controller applies (the out dir is kept exact by [`super::render_dir`]).
//! Cloud resources are applied by `wid apply --cloud-only`; render makes no call unless a value exists only in the cloud (an Azure identity's client id), which
//! it then reads from there (or from the sandbox with `--sandbox`), never touching a
//! cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use wid_core::Owner;

use super::validate::load_checked;
use super::{CliError, ExitCode, TargetArgs};
use crate::model::{self, Desired};
use crate::session::Session;

/// Arguments of `wid render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A plan file or a directory of *.toml plan files.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Directory to write to: one file per object, DIR/CLUSTER/NAMESPACE/KIND-NAME.yaml,
    /// kept exact: files wid rendered there before for objects that left the plan are
    /// removed (it lists what it wrote in DIR/.wid-render.json); files it did not write
    /// are never touched, and a rendered file edited since is refused, not overwritten.
    /// `-` writes one multi-document YAML stream to stdout instead.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub contexts: super::ContextArgs,
}

/// Whether a Kubernetes object of the plan carries a value only the cloud knows.
fn needs_cloud(desired: &Desired) -> bool {
    desired.resources.iter().any(|r| {
        r.id.provider() == "k8s"
            && r.attrs
                .values()
                .any(|v| matches!(v, wid_core::AttrValue::Unknown { .. }))
    })
}

/// Runs `wid render`.
pub async fn run(args: RenderArgs) -> Result<ExitCode, CliError> {
    let plan = load_checked(&args.path)?;
    let offline = model::offline(&plan);
    let mut scopes = model::compile_scopes(&plan, &offline).map_err(CliError::Plan)?;
    if scopes.iter().any(|(_, d)| needs_cloud(d)) {
        // Read what the clouds already hold (an identity's client id); a value whose
        // object does not exist yet stays unknown and fails below, naming it.
        let mut target = args.target.target()?;
        args.contexts.apply_to(&mut target)?;
        let session = Session::open(plan, &target).await?;
        let found = session.preflight().await?;
        scopes = model::compile_scopes(&session.plan, &found).map_err(CliError::Plan)?;
        for (scope, desired) in &mut scopes {
            let owner = Owner {
                plan: scope.clone(),
                prune: false,
            };
            let cloud: Vec<&wid_core::Resource> = desired
                .resources
                .iter()
                .filter(|r| r.id.provider() != "k8s")
                .map(|r| &**r)
                .collect();
            let observed = session.providers.observe(&cloud, &owner).await?;
            for r in &mut desired.resources {
                if let std::borrow::Cow::Owned(resolved) = wid_core::resolve_observed(r, &observed)
                {
                    *r = resolved.into();
                }
            }
        }
    }
    // Every object once, under the first scope that wants it (a shared namespace).
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (scope, desired) in scopes {
        let owner = Owner {
            plan: scope,
            prune: false,
        };
        let k8s: Vec<Arc<wid_core::Resource>> = desired
            .resources
            .into_iter()
            .filter(|r| r.id.provider() == "k8s" && seen.insert(r.id.clone()))
            .collect();
        for (cluster, objects) in wid_kubernetes::manifests(&k8s, &owner)? {
            for object in objects {
                files.insert(object_path(&cluster, &object), yaml_text(&object)?);
            }
        }
    }
    if args.out_dir == Path::new("-") {
        let docs: Vec<&str> = files.values().map(String::as_str).collect();
        crate::output::emit(&stream(&docs));
        return Ok(ExitCode::Success);
    }
    let written = super::render_dir::write_exact(&args.out_dir, &files)?;
    crate::output::emit(&written.summary(&args.out_dir));
    Ok(ExitCode::Success)
}

/// One multi-document YAML stream: each document after a `---` line.
fn stream(docs: &[&str]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Where an object goes, relative to the out dir: CLUSTER/NAMESPACE/KIND-NAME.yaml.
fn object_path(cluster: &str, object: &serde_json::Value) -> PathBuf {
    let meta = &object["metadata"];
    let kind = object["kind"]
        .as_str()
        .unwrap_or("object")
        .to_ascii_lowercase();
    let name = meta["name"].as_str().unwrap_or("unnamed");
    let ns = meta["namespace"].as_str().unwrap_or("_cluster");
    Path::new(cluster)
        .join(ns)
        .join(format!("{kind}-{name}.yaml"))
}

fn yaml_text(object: &serde_json::Value) -> Result<String, CliError> {
    let yaml = serde_saphyr::to_string(object).map_err(|e| CliError::Io(e.to_string()))?;
    let mut text = String::from("# Generated by wid render; edit the plan, not this file.\n");
    for note in wid_kubernetes::notes(object) {
        text.push_str(&format!("# Note: {note}\n"));
    }
    text.push_str(&yaml);
    Ok(text)
}
