//! Table-driven fixture tests, kubescape style: `tests/fixtures/<check-name>/<case>/`
//! holds `input.yaml` (manifests), `expected.json` (the exact set of findings as
//! check id, severity and `Kind/namespace/name`, optionally with a message fragment) and
//! an optional `context.json` (policy, plan expectations, cloud trust). Each case runs
//! only its own check and must produce exactly the expected set.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use wid_audit::checks::find;
use wid_audit::{Context, Finding, Snapshot, run_checks};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    check_id: String,
    severity: String,
    object: String,
    #[serde(default)]
    message_contains: Option<String>,
}

fn object_key(f: &Finding) -> String {
    match &f.resource.namespace {
        Some(ns) => format!("{}/{ns}/{}", f.resource.kind, f.resource.name),
        None => format!("{}/{}", f.resource.kind, f.resource.name),
    }
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn sorted_dirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(p)
        .expect("fixture dir readable")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Values planted in the credential fixtures that must never reach any output.
const SECRET_VALUES: [&str; 4] = [
    "wJalrXUtnFEMI",
    "PRIVATE KEY",
    "MIIEexample",
    "example-not-a-real-secret",
];

#[test]
fn every_fixture_case_yields_exactly_its_expected_findings() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for check_dir in sorted_dirs(&fixtures_root()) {
        let check_name = check_dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let check =
            find(&check_name).unwrap_or_else(|| panic!("fixture dir {check_name} names no check"));
        for case_dir in sorted_dirs(&check_dir) {
            cases += 1;
            let case = format!(
                "{check_name}/{}",
                case_dir.file_name().expect("name").to_string_lossy()
            );
            let input = fs::read_to_string(case_dir.join("input.yaml")).expect("input.yaml");
            let snap = Snapshot::from_yaml_file(&input, &format!("{case}/input.yaml"))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let ctx: Context = match fs::read_to_string(case_dir.join("context.json")) {
                Ok(text) => serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{case}: context.json: {e}")),
                Err(_) => Context::default(),
            };
            let expected: Vec<Expected> = serde_json::from_str(
                &fs::read_to_string(case_dir.join("expected.json")).expect("expected.json"),
            )
            .unwrap_or_else(|e| panic!("{case}: expected.json: {e}"));
            let report = run_checks(&snap, &ctx, &[check]);
            let got: BTreeSet<(String, String, String)> = report
                .findings
                .iter()
                .map(|f| (f.check_id.clone(), f.severity.to_string(), object_key(f)))
                .collect();
            let want: BTreeSet<(String, String, String)> = expected
                .iter()
                .map(|e| (e.check_id.clone(), e.severity.clone(), e.object.clone()))
                .collect();
            if got != want {
                let msgs: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
                failures.push(format!(
                    "{case}:\n  missing:    {:?}\n  unexpected: {:?}\n  messages:   {msgs:#?}",
                    want.difference(&got).collect::<Vec<_>>(),
                    got.difference(&want).collect::<Vec<_>>()
                ));
                continue;
            }
            for e in &expected {
                let Some(fragment) = &e.message_contains else {
                    continue;
                };
                let hit = report.findings.iter().any(|f| {
                    f.check_id == e.check_id
                        && object_key(f) == e.object
                        && f.message.contains(fragment.as_str())
                });
                if !hit {
                    let msgs: Vec<&str> =
                        report.findings.iter().map(|f| f.message.as_str()).collect();
                    failures.push(format!(
                        "{case}: no message for {} contains {fragment:?}; messages: {msgs:#?}",
                        e.object
                    ));
                }
            }
            let rendered = serde_json::to_string(&wid_audit::render::json(&report)).expect("json")
                + &wid_audit::render::human(&report, false)
                + &serde_json::to_string(&wid_audit::render::sarif(&report)["runs"][0]["results"])
                    .expect("sarif");
            for secret in SECRET_VALUES {
                if rendered.contains(secret) {
                    failures.push(format!("{case}: output leaks secret material {secret:?}"));
                }
            }
            for f in &report.findings {
                let loc = f.location.as_ref();
                if f.resource.kind != "IAMRole"
                    && f.resource.kind != "GCPServiceAccount"
                    && f.resource.name != "default"
                    && !f.message.contains("does not exist")
                    && loc.is_none()
                {
                    failures.push(format!(
                        "{case}: finding on {} has no manifest location",
                        object_key(f)
                    ));
                }
            }
        }
    }
    assert!(cases >= 60, "only {cases} fixture cases found");
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_check_has_a_passing_and_a_failing_fixture() {
    for check in wid_audit::checks() {
        let dir = fixtures_root().join(check.name);
        let mut pass = false;
        let mut fail = false;
        for case in sorted_dirs(&dir) {
            let text = fs::read_to_string(case.join("expected.json")).expect("expected.json");
            let v: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
            if v.is_empty() {
                pass = true
            } else {
                fail = true
            }
        }
        assert!(
            pass && fail,
            "{} needs pass and fail fixtures (pass={pass}, fail={fail})",
            check.id
        );
    }
}

#[test]
fn the_automount_matrix_is_complete() {
    let dir = fixtures_root().join("token-automounted");
    for pod in ["unset", "true", "false"] {
        for sa in ["unset", "true", "false"] {
            assert!(
                dir.join(format!("pod-{pod}-sa-{sa}"))
                    .join("input.yaml")
                    .is_file(),
                "pod-{pod}-sa-{sa}"
            );
        }
    }
}
