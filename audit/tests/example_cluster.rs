//! The deliberately bad example cluster (examples/audit/cluster.yaml) yields exactly the
//! findings listed in examples/audit/expected-findings.txt, and its human report is
//! snapshotted.

use std::collections::BTreeSet;
use std::path::Path;

use wid_audit::{Context, Snapshot, run_all};

fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/audit")
        .join(name);
    std::fs::read_to_string(p).expect("example file")
}

#[test]
fn example_cluster_yields_exactly_the_seeded_findings() {
    let snap = Snapshot::from_yaml_file(&example("cluster.yaml"), "examples/audit/cluster.yaml")
        .expect("example manifests parse");
    let report = run_all(&snap, &Context::default());
    let got: BTreeSet<String> = report
        .findings
        .iter()
        .map(|f| {
            let ns = f
                .resource
                .namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!(
                "{} {} {}/{ns}{}",
                f.check_id, f.severity, f.resource.kind, f.resource.name
            )
        })
        .collect();
    // The live cluster's own `default` namespace is not in the manifests.
    let want: BTreeSet<String> = example("expected-findings.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter(|l| !l.contains("(live cluster)"))
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        got,
        want,
        "missing: {:?}\nunexpected: {:?}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>()
    );
    insta::assert_snapshot!(wid_audit::render::human(&report, false));
}
