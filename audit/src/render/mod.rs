//! Renderers of a [`crate::Report`]: human text, JSON (versioned, with a generated schema)
//! and SARIF 2.1.0. Each returns a value; printing is the CLI's job.

mod human;
mod json;
mod sarif;

pub use human::{HumanOptions, human, human_with};
pub use json::{FORMAT_VERSION, JsonDocument, json, json_schema};
pub use sarif::{SARIF_SCHEMA_URI, sarif};
