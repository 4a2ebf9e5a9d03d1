//! JSON output: the report with a `format_version`, and the JSON Schema of that document
//! (generated with schemars; committed as `schema/audit-output.schema.json` and tested to
//! be current).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Counts, Finding, Report};

/// Bumped on any incompatible change of the JSON document.
pub const FORMAT_VERSION: u32 = 1;

/// The `wid audit --output json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "wid audit output")]
pub struct JsonDocument {
    /// Version of this document's shape; 1.
    pub format_version: u32,
    /// Ids of the checks that ran.
    pub checks_run: Vec<String>,
    /// Findings per severity.
    pub counts: Counts,
    /// All findings, most severe first.
    pub findings: Vec<Finding>,
}

/// Renders the report as the versioned JSON document.
pub fn json(report: &Report) -> serde_json::Value {
    let doc = JsonDocument {
        format_version: FORMAT_VERSION,
        checks_run: report.checks_run.clone(),
        counts: report.counts.clone(),
        findings: report.findings.clone(),
    };
    serde_json::to_value(doc).expect("report types serialize to JSON without fallible parts")
}

/// The JSON Schema of [`JsonDocument`], pretty-printed with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(JsonDocument);
    let mut text =
        serde_json::to_string_pretty(&schema).expect("a generated schema serializes to JSON");
    text.push('\n');
    text
}
