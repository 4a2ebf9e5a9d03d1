//! Who owns a sandbox directory: one sandbox per directory per process, a served
//! directory is used rather than loaded, and an advertisement left by a dead server is
//! ignored and removed.

use wid_sandbox::{Opened, Sandbox, SandboxError};

#[tokio::test]
async fn a_directory_open_in_this_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = Sandbox::start(dir.path(), &[]).await.unwrap();
    let second = Sandbox::start(dir.path(), &[]).await;
    assert!(
        matches!(second, Err(SandboxError::Busy { .. })),
        "{second:?}"
    );
    drop(first);
    Sandbox::start(dir.path(), &[])
        .await
        .expect("free once the first stops");
}

#[tokio::test]
async fn a_served_directory_is_used_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Sandbox::start(dir.path(), &[]).await.unwrap();
    server.advertise().unwrap();
    // Another process would see the advertisement; in this one, `open` says the same.
    match Sandbox::open(dir.path(), &[]).await.unwrap() {
        Opened::Served(served) => {
            assert_eq!(served.pid, std::process::id());
            assert_eq!(served.cloud, server.cloud_url());
        }
        Opened::Started(_) => panic!("a served directory must not be loaded again"),
    }
    let err = Sandbox::start(dir.path(), &[]).await.unwrap_err();
    assert!(matches!(err, SandboxError::Served { .. }), "{err}");
    server.stop().unwrap();
    assert!(!dir.path().join("serve.json").exists());
    assert!(matches!(
        Sandbox::open(dir.path(), &[]).await.unwrap(),
        Opened::Started(_)
    ));
}

#[tokio::test]
async fn an_advertisement_without_a_server_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let ad = r#"{"pid": 1, "kube": {}, "cloud": "http://127.0.0.1:9"}"#;
    std::fs::write(dir.path().join("serve.json"), ad).unwrap();
    let sb = Sandbox::start(dir.path(), &[]).await.unwrap();
    assert!(!dir.path().join("serve.json").exists());
    drop(sb);
}
