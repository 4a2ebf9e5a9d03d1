//! SARIF 2.1.0 output for code-scanning UIs: one run, one rule per check (its help is the
//! check's page, `docs/checks/SA00N.md`), one result per finding.
//!
//! - Locations: every result has a logical location (`cluster/namespace/Kind/name`);
//!   findings from manifest files also carry a physical one (the file as given, relative to
//!   the working directory, and the line and column of the offending field or of the
//!   object's document), which is what lets GitHub code scanning annotate manifest lines.
//! - Several clusters stay one run, with the cluster in each result's properties and
//!   logical location: GitHub stopped combining several runs of one tool and category in
//!   one upload (upload fails since June 2025), and one run keeps one rule table.
//! - Accepted findings are results with `suppressions` (`inSource` for the annotation on the
//!   object, `external` for the exceptions file), so viewers hide them and keep the
//!   justification; stale, expired and invalid acceptances are tool configuration
//!   notifications of the run's invocation.
//! - Levels: critical and high are `error`, medium `warning`, low `note`; the numeric
//!   `security-severity` property is what GitHub code scanning ranks by.

use serde_json::{Value, json};

use crate::accept::{Acceptance, AcceptanceSource};
use crate::checks::{checks, page, page_path};
use crate::model::{Finding, Report, Severity, SourceLocation};

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

/// A relative URI reference for a path: `/` separators, and the characters a URI may not
/// hold percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for c in path.replace('\\', "/").chars() {
        if c.is_ascii_alphanumeric() || "-._~/:@!$&'()*+,;=".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A physical location, for locations in real files (not `<stdin>`).
fn physical(loc: &SourceLocation) -> Option<Value> {
    if loc.path.starts_with('<') {
        return None;
    }
    Some(json!({
        "artifactLocation": { "uri": uri(&loc.path) },
        "region": { "startLine": loc.line, "startColumn": loc.column },
    }))
}

fn suppression(a: &Acceptance) -> Value {
    let kind = match a.source {
        AcceptanceSource::Annotation => "inSource",
        AcceptanceSource::File => "external",
    };
    let justification = match a.expires {
        Some(d) => format!("{} (accepted until {d})", a.reason),
        None => a.reason.clone(),
    };
    let mut s = json!({
        "kind": kind,
        "status": "accepted",
        "justification": justification,
        "properties": { "origin": a.origin },
    });
    if let Some(d) = a.expires {
        s["properties"]["expires"] = json!(d.to_string());
    }
    if let Some(p) = a.location.as_ref().and_then(physical) {
        s["location"] = json!({ "physicalLocation": p });
    }
    s
}

fn result(f: &Finding, acceptance: Option<&Acceptance>, rule_index: Option<usize>) -> Value {
    let qualified = match &f.cluster {
        Some(c) => format!("{c}/{}", f.resource.qualified_name()),
        None => f.resource.qualified_name(),
    };
    let mut location = json!({
        "logicalLocations": [{
            "name": f.resource.name,
            "fullyQualifiedName": qualified,
            "kind": "object",
        }],
    });
    if let Some(p) = f.location.as_ref().and_then(physical) {
        location["physicalLocation"] = p;
    }
    let mut message = f.message.clone();
    if let Some(a) = &f.expired_acceptance {
        message.push_str(&format!(
            " (its acceptance expired on {}: {})",
            a.expires.map(|d| d.to_string()).unwrap_or_default(),
            a.reason
        ));
    }
    let mut result = json!({
        "ruleId": f.check_id,
        "level": level(f.severity),
        "message": { "text": message },
        "locations": [location],
        "properties": {
            "severity": f.severity.as_str(),
            "security-severity": security_severity(f.severity),
            "fix": f.fix,
            "details": f.details,
        },
    });
    if let Some(c) = &f.cluster {
        result["properties"]["cluster"] = json!(c);
    }
    if let Some(field) = &f.field {
        result["properties"]["field"] = json!(field);
    }
    if let Some(a) = &f.expired_acceptance {
        result["properties"]["expiredAcceptance"] = json!(a);
    }
    if let Some(idx) = rule_index {
        result["ruleIndex"] = json!(idx);
    }
    if let Some(a) = acceptance {
        result["suppressions"] = json!([suppression(a)]);
    }
    result
}

/// Renders the report as a SARIF 2.1.0 log.
pub fn sarif(report: &Report) -> Value {
    let all = checks();
    let rules: Vec<Value> = all
        .iter()
        .map(|c| {
            let text = page(c);
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": { "text": c.summary },
                "fullDescription": { "text": c.why },
                "help": { "text": text, "markdown": text },
                "defaultConfiguration": { "level": level(c.severity) },
                "properties": {
                    "security-severity": security_severity(c.severity),
                    "tags": ["security", "kubernetes", "service-account"],
                    "page": page_path(c.id),
                },
            })
        })
        .collect();
    let index = |id: &str| all.iter().position(|c| c.id == id);
    let mut results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(f, None, index(&f.check_id)))
        .collect();
    results.extend(
        report
            .accepted
            .iter()
            .map(|a| result(&a.finding, Some(&a.acceptance), index(&a.finding.check_id))),
    );
    let notifications: Vec<Value> = report
        .warnings
        .iter()
        .map(|w| {
            let mut n = json!({
                "level": "warning",
                "message": { "text": w.message },
                "descriptor": { "id": serde_json::to_value(w.kind).unwrap_or_default() },
                "properties": { "origin": w.origin },
            });
            if let Some(p) = w.location.as_ref().and_then(physical) {
                n["locations"] = json!([{ "physicalLocation": p }]);
            }
            n
        })
        .collect();
    let mut run = json!({
        "tool": {
            "driver": {
                "name": "wid",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }
        },
        "invocations": [{
            "executionSuccessful": true,
            "toolConfigurationNotifications": notifications,
        }],
        "results": results,
    });
    if !report.clusters.is_empty() {
        run["properties"] = json!({ "clusters": report.clusters });
    }
    json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [run],
    })
}
