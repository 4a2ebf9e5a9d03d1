//! The committed JSON Schemas in schema/ match the Rust types. Regenerate with
//! `WID_UPDATE_SCHEMAS=1 cargo test --test schemas`.

#[test]
fn committed_schemas_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let update = std::env::var_os("WID_UPDATE_SCHEMAS").is_some();
    for (name, schema) in wid::schema::all() {
        let path = dir.join(name);
        let text = format!("{}\n", serde_json::to_string_pretty(&schema).unwrap());
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "schema/{name} is stale; run WID_UPDATE_SCHEMAS=1 cargo test --test schemas and commit it"
        );
    }
}

#[test]
fn the_examples_validate_against_the_plan_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = wid::schema::plan_file();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for dir in ["examples/quickstart", "examples/eks", "examples/audit"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let value: serde_json::Value = toml_edit::de::from_str(&text).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
}

#[test]
fn the_schema_and_validation_agree_on_which_files_name_a_scope() {
    let schema = wid::schema::plan_file();
    assert_eq!(schema["required"], serde_json::json!(["version"]));
    let validator = jsonschema::validator_for(&schema).unwrap();
    // A file of shared clusters may leave `name` out; a file with workloads may not.
    let shared = serde_json::json!({"version": 1, "clusters": {"dev": {"kind": "generic"}}});
    assert!(validator.is_valid(&shared));
    let workloads = serde_json::json!({"version": 1, "workload": [
        {"cluster": "dev", "namespace": "web", "service_account": "api"}
    ]});
    assert!(!validator.is_valid(&workloads));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "version = 1\n[[workload]]\ncluster = \"dev\"\nnamespace = \"web\"\nservice_account = \"api\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "version = 1\nname = \"team\"\n[clusters.dev]\nkind = \"generic\"\n",
    )
    .unwrap();
    let diags = wid::plan::load(dir.path()).unwrap_err();
    assert!(
        diags.to_string().contains("a.toml:1:1: missing `name`"),
        "{diags}"
    );
    std::fs::write(
        dir.path().join("a.toml"),
        "version = 1\n[clusters.prod]\nkind = \"generic\"\n",
    )
    .unwrap();
    assert!(wid::plan::load(dir.path()).is_ok());
}
