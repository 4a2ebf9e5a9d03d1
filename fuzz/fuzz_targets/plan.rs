//! Plan parsing, validation and compilation on arbitrary input: `wid validate` on any
//! bytes must end with a plan or located diagnostics (rendered with their source
//! snippets), never a panic, a hang or unbounded memory.

#![no_main]

use std::io::Write as _;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use miette::{GraphicalReportHandler, GraphicalTheme};

/// One scratch directory per fuzzing process; the plan file is rewritten per input.
fn plan_file() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wid-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir.join("plan.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = plan_file();
    let mut file = std::fs::File::create(path).expect("write the plan");
    file.write_all(data).expect("write the plan");
    drop(file);
    let diagnostics = match wid::plan::load(path) {
        Ok(plan) => match wid::model::compile(&plan, &wid::model::offline(&plan)) {
            Ok(_) => return,
            Err(d) => d,
        },
        Err(d) => d,
    };
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor());
    let mut out = String::new();
    for d in diagnostics.0 {
        let rendered = wid::plan::Rendered::from(d);
        let _ = handler.render_report(&mut out, &rendered);
    }
});
