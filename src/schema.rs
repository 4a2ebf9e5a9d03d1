//! The JSON Schemas wid publishes in `schema/`: the plan file and the plan output. They
//! are generated from the Rust types and a test keeps the committed copies current.

use schemars::schema_for;

/// The schema of a plan file.
pub fn plan_file() -> serde_json::Value {
    serde_json::to_value(schema_for!(crate::plan::PlanFile)).expect("schemas serialize")
}

/// The schema of `wid plan --output json`.
pub fn plan_output() -> serde_json::Value {
    serde_json::to_value(schema_for!(crate::output::PlanDocument)).expect("schemas serialize")
}

/// Every published schema with its file name under `schema/`.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("plan.schema.json", plan_file()),
        ("plan-output.schema.json", plan_output()),
    ]
}
