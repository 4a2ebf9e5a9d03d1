//! Rendering plans and reports for people (human) and machines (json). Only this module
//! and the CLI's entry point write to stdout.

mod human;
mod json;
mod style;

pub use human::{ApplyProgress, render_error, render_plan, render_report};
pub use json::{AttrDoc, ChangeDoc, PlanDocument, Summary, plan_document};
pub use style::Style;
