//! The JSON Schemas wid publishes in `schema/`: the plan file, the plan output, the apply
//! report and the saved plan. They are generated from the Rust types and a test keeps the
//! committed copies current.

use schemars::schema_for;

/// The schema of a plan file.
pub fn plan_file() -> serde_json::Value {
    serde_json::to_value(schema_for!(crate::plan::PlanFile)).expect("schemas serialize")
}

/// The schema of `wid plan --output json`.
pub fn plan_output() -> serde_json::Value {
    serde_json::to_value(schema_for!(crate::output::PlanDocument)).expect("schemas serialize")
}

/// The schema of `wid apply --output json`.
pub fn apply_report() -> serde_json::Value {
    serde_json::to_value(schema_for!(crate::output::ReportDocument)).expect("schemas serialize")
}

/// The schema of a plan saved by `wid plan --out`.
pub fn saved_plan() -> serde_json::Value {
    serde_json::to_value(schema_for!(crate::saved::SavedPlan)).expect("schemas serialize")
}

/// Every published schema with its file name under `schema/`.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("plan.schema.json", plan_file()),
        ("plan-output.schema.json", plan_output()),
        ("apply-report.schema.json", apply_report()),
        ("saved-plan.schema.json", saved_plan()),
    ]
}
