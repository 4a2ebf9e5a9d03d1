//! Renderer tests: insta snapshots of the human and JSON outputs, SARIF validated against
//! the SARIF 2.1.0 JSON schema (vendored: tests/data/sarif-2.1.0.json, the schemastore
//! 2.1.0-rtm.5 schema shipped by the npm package @microsoft/jest-sarif, MIT), and the
//! committed JSON output schema checked for staleness.

use std::path::Path;

use wid_audit::render::{human, json, json_schema, sarif};
use wid_audit::{Context, Report, Snapshot, run_all};

const MIXED: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ops, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops-admin}
subjects:
- {kind: ServiceAccount, name: ops, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
---
apiVersion: v1
kind: Pod
metadata: {name: ops, namespace: shop}
spec:
  serviceAccountName: ops
  containers:
  - {name: app, image: ops:1.0}
";

fn report(path: Option<&str>) -> Report {
    let snap = match path {
        Some(p) => Snapshot::from_yaml_file(MIXED, p),
        None => Snapshot::from_yaml(MIXED),
    }
    .expect("valid manifests");
    run_all(&snap, &Context::default())
}

#[test]
fn human_output_groups_by_severity() {
    insta::assert_snapshot!(human(&report(Some("cluster.yaml")), false));
}

#[test]
fn human_output_without_findings() {
    let r = run_all(&Snapshot::default(), &Context::default());
    insta::assert_snapshot!(human(&r, false), @"No findings from 9 checks.\n");
}

#[test]
fn human_color_wraps_headers_only_when_asked() {
    let r = report(None);
    assert!(human(&r, true).contains("\x1b[1;35mCRITICAL (1)\x1b[0m"));
    assert!(!human(&r, false).contains('\x1b'));
}

#[test]
fn json_output_is_versioned() {
    insta::assert_json_snapshot!(json(&report(Some("cluster.yaml"))));
}

#[test]
fn json_output_validates_against_the_committed_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&json_schema()).expect("generated schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let doc = json(&report(Some("cluster.yaml")));
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

fn sarif_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-2.1.0.json");
    let text = std::fs::read_to_string(path).expect("vendored SARIF schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("SARIF schema compiles")
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let validator = sarif_validator();
    for r in [
        report(None),
        report(Some("cluster.yaml")),
        run_all(&Snapshot::default(), &Context::default()),
    ] {
        let doc = sarif(&r);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

#[test]
fn sarif_validator_rejects_a_broken_log() {
    // Proves the schema is really enforced: a wrong level and a missing version fail.
    let validator = sarif_validator();
    let mut doc = sarif(&report(None));
    doc["runs"][0]["results"][0]["level"] = serde_json::json!("critical");
    assert!(!validator.is_valid(&doc));
    let mut doc = sarif(&report(None));
    doc.as_object_mut().expect("object").remove("version");
    assert!(!validator.is_valid(&doc));
}

#[test]
fn sarif_maps_levels_rules_and_locations() {
    let doc = sarif(&report(Some("cluster.yaml")));
    let run = &doc["runs"][0];
    assert_eq!(doc["version"], "2.1.0");
    // No made-up links: the driver names the tool and its version, nothing that is not
    // true.
    let driver = run["tool"]["driver"].as_object().expect("driver");
    assert_eq!(driver["name"], "wid");
    assert!(!driver.contains_key("informationUri"), "{driver:?}");
    assert!(!doc.to_string().contains("example.invalid"));
    assert_eq!(
        run["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules")
            .len(),
        9
    );
    let results = run["results"].as_array().expect("results");
    let crit = results
        .iter()
        .find(|r| r["ruleId"] == "SA005")
        .expect("SA005 result");
    assert_eq!(crit["level"], "error");
    assert_eq!(
        crit["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "shop/Pod/ops"
    );
    assert_eq!(
        crit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "cluster.yaml"
    );
    let live = sarif(&report(None));
    assert!(
        live["runs"][0]["results"][0]["locations"][0]
            .get("physicalLocation")
            .is_none()
    );
}

#[test]
fn committed_json_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/audit-output.schema.json");
    let generated = json_schema();
    if std::env::var_os("WID_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/audit-output.schema.json is stale; regenerate with WID_UPDATE_SCHEMAS=1 cargo test -p wid-audit --test renderers committed_json_schema_is_current"
    );
}

/// The MIXED report with one finding accepted by an annotation-style rule, one by a file
/// rule that expired, a stale file rule, and the cluster set.
fn accepted_report() -> Report {
    use wid_audit::accept::{Scope, apply, parse_exceptions};
    use wid_audit::{Date, ObjectRef};
    let mut r = report(Some("k8s/cluster.yaml"));
    for f in &mut r.findings {
        f.cluster = Some("prod".into());
    }
    r.clusters = vec!["prod".into()];
    let text = "[[accept]]\ncheck = \"SA001\"\nnamespace = \"shop\"\nreason = \"kept for the batch runner\"\nexpires = 2027-03-31\n\n[[accept]]\ncheck = \"SA002\"\nname = \"ops\"\nreason = \"old\"\nexpires = 2020-01-31\n\n[[accept]]\ncheck = \"SA006\"\nname = \"gone\"\nreason = \"stale\"\nexpires = 2027-03-31\n";
    let mut rules = parse_exceptions(text, "audit-exceptions.toml").expect("valid");
    let (annotated, _) = wid_audit::accept::from_snapshot(
        &Snapshot::from_yaml_file(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ops\n  namespace: shop\n  annotations:\n    wid.dev/audit-accept: \"SA005 until 2027-01-01: break-glass console; SEC-7\"\nspec:\n  containers: []\n",
            "k8s/cluster.yaml",
        )
        .expect("valid"),
        Some("prod"),
        |_| true,
    );
    rules.extend(annotated);
    let today: Date = "2026-06-01".parse().expect("date");
    let r = apply(r, &rules, today, &Scope::default());
    assert!(
        r.accepted
            .iter()
            .any(|a| a.finding.resource == ObjectRef::namespaced("Pod", "shop", "ops"))
    );
    r
}

#[test]
fn sarif_with_suppressions_notifications_and_clusters_validates() {
    let validator = sarif_validator();
    let doc = sarif(&accepted_report());
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let kinds: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|r| {
            Some((
                r["ruleId"].as_str()?,
                r.get("suppressions")?[0]["kind"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(kinds, vec![("SA005", "inSource"), ("SA001", "external")]);
    let sa005 = results
        .iter()
        .find(|r| r["ruleId"] == "SA005")
        .expect("SA005");
    // The inSource suppression points at the annotation's line.
    assert_eq!(
        sa005["suppressions"][0]["location"]["physicalLocation"]["region"]["startLine"],
        7
    );
    let sa002 = results
        .iter()
        .find(|r| r["ruleId"] == "SA002")
        .expect("SA002");
    assert!(
        sa002.get("suppressions").is_none(),
        "expired: not suppressed"
    );
    assert!(
        sa002["message"]["text"]
            .as_str()
            .expect("text")
            .ends_with("(its acceptance expired on 2020-01-31: old)")
    );
    assert_eq!(sa002["properties"]["cluster"], "prod");
    let notes = doc["runs"][0]["invocations"][0]["toolConfigurationNotifications"]
        .as_array()
        .expect("notifications");
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes
            .iter()
            .any(|n| n["descriptor"]["id"] == "stale_acceptance")
    );
}

#[test]
fn json_with_acceptances_validates_against_the_committed_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&json_schema()).expect("generated schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let doc = json(&accepted_report());
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["accepted"][0]["acceptance"]["source"], "annotation");
    assert_eq!(doc["counts"]["accepted"], 2);
}
