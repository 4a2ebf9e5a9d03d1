//! `wid-audit`: the service-account hardening checks behind `wid audit`.
//!
//! The crate is pure: it reads a [`Snapshot`] of cluster objects (k8s-openapi types, from
//! the live cluster via `wid-kubernetes` or from YAML manifests) and an optional
//! [`Context`] (plan expectations, cloud trust facts, policy), and returns a [`Report`].
//! No I/O, no clients. Renderers turn the report into human text, JSON (schema in
//! `schema/audit-output.schema.json`) or SARIF 2.1.0.
//!
//! Check ids (stable): SA001 default-sa-automount, SA002 token-automounted, SA003
//! default-sa-used, SA004 default-sa-rbac, SA005 dangerous-rbac, SA006 legacy-token-secrets,
//! SA007 projected-tokens, SA008 cloud-credentials, SA009 identity-annotations.

pub mod accept;
pub mod checks;
pub mod context;
pub mod danger;
pub mod date;
pub mod model;
pub mod page;
pub mod positions;
pub mod rbac;
pub mod render;
pub mod snapshot;
pub mod workload;

pub use accept::{Acceptance, AcceptanceSource, AcceptedFinding, Scope, Warning, WarningKind};
pub use checks::{Check, checks, explain};
pub use context::{
    AwsRoleTrust, CloudTrust, Context, Expected, ExpectedWorkload, GcpSaBinding, Policy,
};
pub use date::Date;
pub use model::{Counts, Finding, ObjectRef, Report, Severity, SourceLocation};
pub use snapshot::{Snapshot, SnapshotError};

/// Runs every check and attaches manifest locations to the findings.
pub fn run_all(snap: &Snapshot, ctx: &Context) -> Report {
    run_checks(snap, ctx, checks())
}

/// Runs the given checks (e.g. one check in a fixture test).
pub fn run_checks(snap: &Snapshot, ctx: &Context, selected: &[&Check]) -> Report {
    let mut findings = Vec::new();
    for c in selected {
        for mut f in (c.run)(snap, ctx) {
            if f.location.is_none() {
                f.location = snap.locate(&f.resource, f.field.as_deref());
            }
            findings.push(f);
        }
    }
    Report::new(findings, selected.iter().map(|c| c.id.to_owned()).collect())
}

/// Whether the report has a finding at or above `fail_on` (the CLI then exits 3);
/// accepted findings never count.
pub fn exceeds(report: &Report, fail_on: Severity) -> bool {
    report.exceeds(fail_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceeds_compares_at_or_above() {
        let snap = Snapshot::from_yaml(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: a}\n",
        )
        .expect("valid");
        let r = run_all(&snap, &Context::default());
        assert_eq!(r.counts.total, 1, "{r:?}");
        assert!(exceeds(&r, Severity::Medium));
        assert!(exceeds(&r, Severity::Low));
        assert!(!exceeds(&r, Severity::High));
    }
}
