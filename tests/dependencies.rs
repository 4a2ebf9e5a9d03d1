//! The lean build stays lean: one maintained YAML stack (serde-saphyr, which kube brings;
//! not the deprecated serde_yaml and its unsafe-libyaml), and rustls with ring as the only
//! TLS stack (no aws-lc, no OpenSSL).

#[test]
fn the_lockfile_has_one_yaml_stack_and_one_tls_stack() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock");
    let packages: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    for banned in [
        "serde_yaml",
        "unsafe-libyaml",
        "aws-lc-rs",
        "aws-lc-sys",
        "openssl",
        "openssl-sys",
        "native-tls",
    ] {
        assert!(!packages.contains(&banned), "{banned} is in Cargo.lock");
    }
    for wanted in ["serde-saphyr", "rustls", "ring"] {
        assert!(packages.contains(&wanted), "{wanted} is not in Cargo.lock");
    }
}
