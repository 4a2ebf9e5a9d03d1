//! Compiling a plan: each provider turns its part of every workload into resources, and
//! the cloud providers' KSA annotations flow into the Kubernetes side.

use std::collections::BTreeMap;
use std::sync::Arc;

use wid_core::{AttrValue, Contribution, Mode, Preflight, Resource, ResourceId, WorkloadRef};

use crate::clouds::{self, Cloud};
use crate::plan::{Diagnostics, Entry, Plan, PlanDiagnostic, WorkloadSpec, field_issue};

/// The OIDC issuer of each cluster that needs one, by cluster name.
pub type Issuers = BTreeMap<String, String>;

/// Everything a plan wants.
#[derive(Debug, Default)]
pub struct Desired {
    /// The resources, sorted by id; shared with the changes that describe them.
    pub resources: Vec<Arc<Resource>>,
    /// The workload each resource serves (`cluster/namespace/sa`), or `cluster NAME` for
    /// cluster-wide resources; used to group the plan's output.
    pub groups: BTreeMap<ResourceId, Arc<str>>,
}

/// What compile would learn from preflight, with stand-ins of the real shape and length,
/// so that every plan-time check (IAM's trust policy quota, policy sizes) runs before any
/// network call: the plan's own issuers, else each cloud's stand-in for its kind of
/// cluster, and each cloud's stand-in facts.
pub fn offline(plan: &Plan) -> Preflight {
    let mut out = Preflight::default();
    for (name, c) in &plan.clusters {
        for cloud in clouds::ALL
            .iter()
            .filter(|cloud| cloud.cluster_kind() == c.spec.kind)
        {
            if let Some(issuer) = cloud.offline_issuer(&c.spec) {
                out.issuers.insert(name.clone(), issuer);
            }
            let facts = cloud.offline_facts(&c.spec);
            if !facts.is_empty() {
                out.facts.entry(name.clone()).or_default().extend(facts);
            }
        }
        if let Some(issuer) = &c.spec.issuer {
            out.issuers.insert(name.clone(), issuer.clone());
        }
    }
    out
}

/// The KSA side of a workload entry.
pub fn workload_ref(w: &Entry<WorkloadSpec>) -> WorkloadRef {
    WorkloadRef {
        cluster: w.spec.cluster.clone(),
        namespace: w.spec.namespace.clone(),
        service_account: w.spec.service_account.clone(),
    }
}

/// `cluster/namespace/sa (file:line:col)`: how messages and the plan output name a
/// workload.
pub fn workload_origin(w: &Entry<WorkloadSpec>) -> String {
    use std::fmt::Write;
    let (line, col) = w.file.line_col(w.span.start);
    let s = &w.spec;
    // Built piece by piece at its final size: `format!` guesses and grows (a plan of
    // 10,000 workloads makes one each).
    let mut out = String::with_capacity(
        s.cluster.len() + s.namespace.len() + s.service_account.len() + w.file.path.len() + 30,
    );
    for part in [
        &s.cluster,
        "/",
        &s.namespace,
        "/",
        &s.service_account,
        " (",
        &w.file.path,
    ] {
        out.push_str(part);
    }
    let _ = write!(out, ":{line}:{col})");
    out
}

/// How compile runs the clouds' compiles, which need nothing of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// One after another on the caller's thread: the least memory (validate, render, the
    /// parse benchmark).
    One,
    /// Each cloud on a thread of its own beside the others, for a plan of at least
    /// [`PER_CLOUD_MIN`] workloads: the plan's wall time, on a machine with cores to spare.
    PerCloud,
}

/// The fewest workloads [`Threads::PerCloud`] starts threads for: below it a compile takes
/// less than starting them.
pub const PER_CLOUD_MIN: usize = 500;

/// What each cloud's compile knows of preflight.
#[derive(Clone, Copy)]
pub enum Found<'a> {
    /// Everything preflight found (or the [`offline`] stand-ins), known before compile.
    All(&'a Preflight),
    /// Each cloud's own findings, which its compile waits for (on a thread of its own
    /// with [`Threads::PerCloud`]): a cloud compiles as soon as its preflight answers,
    /// not after the slowest cloud's. `None`: that cloud's preflight failed, and it is
    /// not compiled (the caller reports the failure).
    PerCloud(&'a (dyn Fn(&dyn Cloud) -> Option<Arc<Preflight>> + Sync)),
}

/// Compiles the plan with what preflight found (or [`offline`] stand-ins). Errors are
/// plan diagnostics (a shared role whose workloads disagree, a trust policy over IAM's
/// size limit).
pub fn compile(plan: &Plan, found: &Preflight) -> Result<Desired, Diagnostics> {
    compile_on(plan, found, Threads::One)
}

/// [`compile`], the clouds run as `threads` says.
pub fn compile_on(
    plan: &Plan,
    found: &Preflight,
    threads: Threads,
) -> Result<Desired, Diagnostics> {
    compile_found(plan, Found::All(found), threads)
}

/// [`compile_on`], each cloud with what `found` gives it.
pub fn compile_found(
    plan: &Plan,
    found: Found<'_>,
    threads: Threads,
) -> Result<Desired, Diagnostics> {
    let mut diags = Diagnostics::default();
    // One text per workload, shared by each resource it compiles to.
    let origins: Vec<Arc<str>> = plan
        .workloads
        .iter()
        .map(|w| Arc::from(workload_origin(w)))
        .collect();

    // Cloud side first: it decides the KSA annotations.
    let mut contributions: Vec<Vec<Contribution>> = vec![Vec::new(); plan.workloads.len()];
    // Shared from the start: sorting moves pointers, not resources.
    let mut resources: Vec<Arc<Resource>> = Vec::new();
    let used: Vec<&dyn Cloud> = clouds::ALL
        .iter()
        .copied()
        .filter(|cloud| plan.workloads.iter().any(|w| cloud.used_by(&w.spec)))
        .collect();
    let run = |cloud: &dyn Cloud| match found {
        Found::All(found) => cloud.compile(plan, found, &origins),
        Found::PerCloud(found) => match found(cloud) {
            Some(found) => cloud.compile(plan, &found, &origins),
            None => Ok(clouds::Compiled::default()),
        },
    };
    let compiled: Vec<_> = match threads {
        Threads::PerCloud if used.len() > 1 && plan.workloads.len() >= PER_CLOUD_MIN => {
            std::thread::scope(|s| {
                let others: Vec<_> = used[1..]
                    .iter()
                    .map(|cloud| s.spawn(move || run(*cloud)))
                    .collect();
                let mut out = vec![run(used[0])];
                for other in others {
                    out.push(
                        other
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    );
                }
                out
            })
        }
        _ => used.iter().map(|cloud| run(*cloud)).collect(),
    };
    for (cloud, compiled) in used.iter().zip(compiled) {
        match compiled {
            Ok(compiled) => {
                resources.extend(compiled.resources.into_iter().map(Arc::new));
                for (i, c) in compiled.contributions {
                    // Most workloads have one cloud: no room kept for four.
                    contributions[i].reserve_exact(1);
                    contributions[i].push(c);
                }
            }
            Err(issues) => {
                for (i, issue) in issues {
                    diags.push(field_issue(&plan.workloads[i], cloud.name(), &issue));
                }
            }
        }
    }

    // Kubernetes side: every workload's KSA, with the clouds' annotations.
    // One spec at a time: the specs of a whole plan never exist at once.
    let ksas = plan
        .workloads
        .iter()
        .zip(contributions)
        .zip(&origins)
        .map(|((w, c), origin)| ksa_spec(w, origin.clone(), c));
    resources.extend(wid_kubernetes::compile(&cluster_options(plan), ksas));
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    // Ids are unique (a repeat is refused below, and sorts next to its twin either way).
    resources.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    if let Some(dup) = resources.windows(2).find(|w| w[0].id == w[1].id) {
        diags.push(PlanDiagnostic::general(format!(
            "two workloads compile to the same resource {}",
            dup[0].id
        )));
        return Err(diags);
    }
    let groups = resources
        .iter()
        .map(|r| {
            let cluster_wide = matches!(r.id.kind(), "namespace" | "default-serviceaccount");
            let shared = clouds::by_name(r.id.provider()).and_then(|c| c.group(r));
            // A workload's resources share its origin text, the label of its group.
            let group: Arc<str> = match (&r.origin, r.id.provider()) {
                (_, "k8s") if cluster_wide => format!("cluster {}", r.id.part(0)).into(),
                _ if shared.is_some() => shared.unwrap_or_default().into(),
                (Some(origin), _) => origin.clone(),
                (None, "k8s") => format!("cluster {}", r.id.part(0)).into(),
                (None, provider) => format!("{provider} shared").into(),
            };
            (r.id.clone(), group)
        })
        .collect();
    Ok(Desired { resources, groups })
}

/// One id of each Kubernetes list the plan's objects are in
/// ([`wid_kubernetes::list_ids`]). The objects follow from the plan alone (the clouds add
/// only annotations and dependencies), so a plan starts reading their lists before
/// preflight and compile, as soon as it can: a few dozen ids, not one per object.
pub fn kubernetes_read_ahead_ids(plan: &Plan) -> Vec<ResourceId> {
    let ksas = plan.workloads.iter().map(|w| wid_kubernetes::KsaKey {
        cluster: &w.spec.cluster,
        namespace: &w.spec.namespace,
        service_account: &w.spec.service_account,
        has_rules: w
            .spec
            .kubernetes
            .as_ref()
            .is_some_and(|k| !k.rules.is_empty()),
    });
    wid_kubernetes::list_ids(&cluster_options(plan), ksas)
}

/// The ids of the clouds' resources the plan names without compile or preflight
/// ([`Cloud::read_ahead_ids`](crate::clouds::Cloud::read_ahead_ids)), for the clouds it
/// uses.
pub fn cloud_read_ahead_ids(plan: &Plan) -> Vec<ResourceId> {
    clouds::ALL
        .iter()
        .filter(|cloud| plan.workloads.iter().any(|w| cloud.used_by(&w.spec)))
        .flat_map(|cloud| cloud.read_ahead_ids(plan))
        .collect()
}

/// The plan's clusters as the Kubernetes side compiles them.
fn cluster_options(plan: &Plan) -> Vec<wid_kubernetes::ClusterOptions> {
    plan.clusters
        .iter()
        .map(|(name, c)| wid_kubernetes::ClusterOptions {
            name: name.clone(),
            create_namespaces: c.spec.create_namespaces,
            harden_default_service_accounts: c.spec.harden_default_service_accounts,
        })
        .collect()
}

/// A workload's KSA with what the clouds contribute to it (annotations, dependencies).
fn ksa_spec(
    w: &Entry<WorkloadSpec>,
    origin: Arc<str>,
    contributions: Vec<Contribution>,
) -> wid_kubernetes::KsaSpec {
    let mut annotations: wid_core::Attrs = w
        .spec
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), AttrValue::from(v.clone())))
        .collect();
    let mut depends_on = Vec::new();
    for c in contributions {
        annotations.extend(c.ksa_annotations);
        depends_on.extend(c.ksa_depends_on);
    }
    wid_kubernetes::KsaSpec {
        workload: workload_ref(w),
        labels: w.spec.labels.clone(),
        annotations,
        automount: w.spec.automount_token,
        rules: w
            .spec
            .kubernetes
            .as_ref()
            .map(|k| k.rules.clone())
            .unwrap_or_default(),
        adopt: w.spec.adopt,
        depends_on,
        origin,
    }
}

/// Compiles each ownership scope of the plan on its own (each with its own name, which
/// the cloud objects it creates carry), and checks that no two scopes want one object
/// differently: an object wid owns belongs to one scope; a shared one (a namespace, an
/// OIDC provider) is fine when every scope that needs it wants the same. With several
/// scopes, each group label names its scope.
pub fn compile_scopes(
    plan: &Plan,
    found: &Preflight,
) -> Result<Vec<(String, Desired)>, Diagnostics> {
    compile_scopes_on(plan, found, Threads::One)
}

/// [`compile_scopes`], the clouds of each scope run as `threads` says.
pub fn compile_scopes_on(
    plan: &Plan,
    found: &Preflight,
    threads: Threads,
) -> Result<Vec<(String, Desired)>, Diagnostics> {
    compile_scopes_found(plan, Found::All(found), threads)
}

/// [`compile_scopes_on`], each cloud with what `found` gives it.
pub fn compile_scopes_found(
    plan: &Plan,
    found: Found<'_>,
    threads: Threads,
) -> Result<Vec<(String, Desired)>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out: Vec<(String, Desired)> = Vec::new();
    for scope in &plan.scopes {
        match compile_found(&plan.scope(scope), found, threads) {
            Ok(mut desired) => {
                for label in desired.groups.values_mut() {
                    *label = plan.group_label(scope, label).into();
                }
                out.push((scope.clone(), desired));
            }
            Err(d) => diags.0.extend(d.0),
        }
    }
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    let mut first: BTreeMap<&ResourceId, (&str, &Resource)> = BTreeMap::new();
    for (scope, desired) in &out {
        for r in &desired.resources {
            let Some((other, seen)) = first.get(&r.id) else {
                first.insert(&r.id, (scope, r));
                continue;
            };
            let owned = r.mode == Mode::Owned || seen.mode == Mode::Owned;
            if !owned && r.attrs == seen.attrs && r.mode == seen.mode {
                continue;
            }
            let at = |r: &Resource| r.origin.as_deref().unwrap_or("the plan").to_owned();
            let why = if owned {
                "an object wid owns belongs to one scope: declare it in one team's file only"
            } else {
                "a shared object must be wanted the same by every scope that needs it"
            };
            diags.push(PlanDiagnostic::general(format!(
                "{} is wanted by scope `{other}` ({}) and by scope `{scope}` ({}): {why}",
                r.id,
                at(seen),
                at(r)
            )));
        }
    }
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::scale_plan;

    use super::*;

    /// A compile with each cloud on its own thread is the sequential compile, resource
    /// for resource, and fails the same way.
    #[test]
    fn per_cloud_threads_compile_what_one_thread_does() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("plan.toml");
        let text = scale_plan::plan_text("t", PER_CLOUD_MIN);
        std::fs::write(&path, &text).unwrap();
        let plan = crate::plan::load(&path).unwrap();
        let found = offline(&plan);
        let one = compile_on(&plan, &found, Threads::One).unwrap();
        let each = compile_on(&plan, &found, Threads::PerCloud).unwrap();
        assert_eq!(one.resources, each.resources);
        assert_eq!(one.groups, each.groups);
        let clouds: BTreeSet<&str> = one.resources.iter().map(|r| r.id.provider()).collect();
        assert!(clouds.len() >= 4, "every cloud and Kubernetes: {clouds:?}");

        // Two workloads that share a GCP account but describe it differently: the same
        // diagnostics either way.
        let mut broken = plan.clone();
        let i = broken
            .workloads
            .iter()
            .position(|w| w.spec.gcp.is_some())
            .unwrap();
        let mut twin = broken.workloads[i].clone();
        twin.spec.service_account.push_str("-twin");
        if let Some(gcp) = twin.spec.gcp.as_mut() {
            gcp.display_name = Some("another name".into());
        }
        broken.workloads.push(twin);
        let one = compile_on(&broken, &found, Threads::One).unwrap_err();
        let each = compile_on(&broken, &found, Threads::PerCloud).unwrap_err();
        assert_eq!(one.to_string(), each.to_string());
    }

    /// The clouds' read-ahead ids are compile's, on every example plan and a generated
    /// one: a missing id would be read after compile, an extra one read for nothing.
    #[test]
    fn cloud_read_ahead_ids_are_compiles_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let generated = tmp.path().join("plan.toml");
        std::fs::write(&generated, scale_plan::plan_text("t", 60)).unwrap();
        let mut paths = vec![generated];
        paths.extend(crate::example_plan_files());
        let mut checked = 0;
        for path in paths {
            let Ok(plan) = crate::plan::load(&path) else {
                continue;
            };
            let Ok(desired) = compile(&plan, &offline(&plan)) else {
                continue;
            };
            // The clouds that name their ids ahead (others keep the default: none).
            let ahead: BTreeSet<ResourceId> = cloud_read_ahead_ids(&plan).into_iter().collect();
            let providers: BTreeSet<&str> = ahead.iter().map(|id| id.provider()).collect();
            let compiled: BTreeSet<ResourceId> = desired
                .resources
                .iter()
                .map(|r| r.id.clone())
                .filter(|id| providers.contains(id.provider()))
                .collect();
            assert_eq!(ahead, compiled, "{}", path.display());
            checked += usize::from(!ahead.is_empty());
        }
        assert!(checked >= 2, "the generated plan and the GKE example");
    }
}
