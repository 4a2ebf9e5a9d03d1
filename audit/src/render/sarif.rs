//! SARIF 2.1.0 output for code-scanning UIs: one run, one rule per check, one result per
//! finding. Live clusters have no files, so every result carries a logical location
//! (`namespace/Kind/name`); findings from manifest files also carry a physical location.
//! Levels: critical and high are `error`, medium `warning`, low `note`; the numeric
//! `security-severity` property is what GitHub code scanning ranks by.

use serde_json::{Value, json};

use crate::checks::checks;
use crate::model::{Report, Severity};

/// The `$schema` written into SARIF documents.
pub const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub's buckets: >= 9.0 critical, >= 7.0 high, >= 4.0 medium, else low.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// Renders the report as a SARIF 2.1.0 log.
pub fn sarif(report: &Report) -> Value {
    let all = checks();
    let rules: Vec<Value> = all
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": { "text": c.summary },
                "fullDescription": { "text": c.why },
                "help": {
                    "text": c.fix,
                    "markdown": format!("{}\n\n**Example that fails**\n\n```yaml\n{}```\n\n**Fix**\n\n```\n{}```\n", c.why, c.example, c.fix),
                },
                "defaultConfiguration": { "level": level(c.severity) },
                "properties": {
                    "security-severity": security_severity(c.severity),
                    "tags": ["security", "kubernetes", "service-account"],
                },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut location = json!({
                "logicalLocations": [{
                    "name": f.resource.name,
                    "fullyQualifiedName": f.resource.qualified_name(),
                    "kind": "object",
                }],
            });
            if let Some(loc) = &f.location {
                location["physicalLocation"] = json!({
                    "artifactLocation": { "uri": loc.path },
                    "region": { "startLine": loc.line },
                });
            }
            let mut result = json!({
                "ruleId": f.check_id,
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [location],
                "properties": {
                    "severity": f.severity.as_str(),
                    "security-severity": security_severity(f.severity),
                    "fix": f.fix,
                    "details": f.details,
                },
            });
            if let Some(idx) = all.iter().position(|c| c.id == f.check_id) {
                result["ruleIndex"] = json!(idx);
            }
            result
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "wid",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }],
    })
}
