//! JSON output: the report with a `format_version`, and the JSON Schema of that document
//! (generated with schemars; committed as `schema/audit-output.schema.json` and tested to
//! be current).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::accept::{AcceptedFinding, Warning};
use crate::model::{Counts, Finding, Report};

/// Bumped on any incompatible change of the JSON document. Fields added since version 1
/// came out (`clusters`, `accepted`, `warnings`, `counts.accepted`, and per finding
/// `cluster`, `field`, `location.column`, `expired_acceptance`) are additions: a reader of
/// version 1 keeps working, and `findings` still lists only what needs fixing.
pub const FORMAT_VERSION: u32 = 1;

/// The `wid audit --output json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "wid audit output")]
pub struct JsonDocument {
    /// Version of this document's shape; 1.
    pub format_version: u32,
    /// Ids of the checks that ran.
    pub checks_run: Vec<String>,
    /// The clusters audited, in the order given; empty for manifests without `--cluster`.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Findings per severity (accepted ones excluded), and the number accepted.
    pub counts: Counts,
    /// The findings no acceptance covers, by cluster, most severe first. These decide
    /// `--fail-on`.
    pub findings: Vec<Finding>,
    /// Findings an acceptance covers, each with its reason, expiry and origin.
    #[serde(default)]
    pub accepted: Vec<AcceptedFinding>,
    /// Stale, expired and invalid acceptances.
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

/// Renders the report as the versioned JSON document.
pub fn json(report: &Report) -> serde_json::Value {
    let doc = JsonDocument {
        format_version: FORMAT_VERSION,
        checks_run: report.checks_run.clone(),
        clusters: report.clusters.clone(),
        counts: report.counts.clone(),
        findings: report.findings.clone(),
        accepted: report.accepted.clone(),
        warnings: report.warnings.clone(),
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
