//! Unit tests of policy reads and writes.

use serde_json::json;

use super::*;

fn body(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn write(stored: &Policy, policy: Value) -> Result<Policy, GcpError> {
    set(
        &GcpState::default(),
        stored,
        &body(json!({ "policy": policy })),
        Resource::Project("acme"),
    )
}

const COND: &str = r#"{"title":"until 2030","expression":"request.time < timestamp(\"2030-01-01T00:00:00Z\")","description":"d"}"#;

#[test]
fn an_empty_policy_is_just_an_etag() {
    assert_eq!(render(&Policy::default(), false), json!({ "etag": "ACAB" }));
}

#[test]
fn every_write_has_a_new_base64_etag_and_a_stale_one_is_aborted() {
    let one = write(
        &Policy::default(),
        json!({ "bindings": [{ "role": "roles/viewer", "members": ["user:b@x.com", "user:a@x.com", "user:a@x.com"] }], "etag": "ACAB" }),
    )
    .expect("first write");
    assert_eq!(STANDARD.decode(&one.etag).expect("base64").len(), 8);
    assert_eq!(one.bindings[0].members, ["user:a@x.com", "user:b@x.com"]);
    let two = write(&one, json!({ "bindings": [], "etag": one.etag })).expect("second write");
    assert_ne!(two.etag, one.etag);
    assert_eq!(render(&two, false), json!({ "etag": two.etag }));

    let stale = write(&two, json!({ "bindings": [], "etag": one.etag })).expect_err("stale");
    assert_eq!((stale.code.as_u16(), stale.status), (409, "ABORTED"));
    assert_eq!(
        stale.message,
        format!(
            "{CONCURRENT_CHANGE} The request's ETag '{}' did not match the current policy's ETag '{}'.",
            one.etag, two.etag
        )
    );
    // The same bytes URL-safe and unpadded, as gcloud sends them back, are the same etag.
    let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(&two.etag).expect("base64"));
    let three = write(&two, json!({ "bindings": [], "etag": url_safe })).expect("url-safe etag");
    // No etag: a blind overwrite.
    assert!(write(&three, json!({ "bindings": [] })).is_ok());
    let bad = write(&three, json!({ "etag": "v1!" })).expect_err("not base64");
    assert_eq!(bad.status, "INVALID_ARGUMENT");
}

#[test]
fn conditions_need_version_3_and_come_back_as_written() {
    let condition: Value = serde_json::from_str(COND).expect("json");
    let binding =
        json!({ "role": "roles/viewer", "members": ["user:a@x.com"], "condition": condition });
    let v1 = write(
        &Policy::default(),
        json!({ "version": 1, "bindings": [binding] }),
    )
    .expect_err("conditions in a v1 policy");
    assert_eq!(v1.status, "INVALID_ARGUMENT");
    let stored = write(
        &Policy::default(),
        json!({ "version": 3, "bindings": [binding] }),
    )
    .expect("v3");
    let read = get(&stored, 3, false).expect("v3 read");
    assert_eq!(read["version"], 3);
    assert_eq!(
        serde_json::to_string(&read["bindings"][0]["condition"]).expect("json"),
        COND
    );
    assert_eq!(
        get(&stored, 1, false).expect_err("v1 read").message,
        "Requested policy version (1) cannot be less than the existing policy version (3). For more information, please refer to https://cloud.google.com/iam/docs/policies#versions."
    );
    let downgrade = write(
        &stored,
        json!({ "version": 1, "bindings": [], "etag": stored.etag }),
    )
    .expect_err("a v1 write over a v3 policy with an etag");
    assert!(
        downgrade
            .message
            .starts_with("Specified policy version (1) cannot be less")
    );
    // Without an etag the API lets a v1 policy overwrite a v3 one.
    assert!(write(&stored, json!({ "version": 1, "bindings": [] })).is_ok());
}

#[test]
fn version_3_of_a_policy_without_conditions_reads_as_1() {
    let stored = write(
        &Policy::default(),
        json!({ "version": 3, "bindings": [{ "role": "roles/viewer", "members": ["user:a@x.com"] }] }),
    )
    .expect("write");
    assert_eq!(get(&stored, 3, false).expect("read")["version"], 1);
    for bad in [json!(2), json!(4), json!("x")] {
        assert_eq!(
            version(Some(&bad), "options.requestedPolicyVersion")
                .expect_err("bad version")
                .code
                .as_u16(),
            400
        );
    }
    assert_eq!(version(Some(&json!("3")), "v").expect("string"), 3);
}

#[test]
fn audit_configs_survive_a_write_that_leaves_them_out() {
    let audit = json!([{ "service": "allServices", "auditLogConfigs": [{ "logType": 3, "exemptedMembers": ["user:a@x.com"] }] }]);
    let stored = set(
        &GcpState::default(),
        &Policy::default(),
        &body(json!({ "policy": { "auditConfigs": audit }, "updateMask": "auditConfigs,bindings,etag" })),
        Resource::Project("acme"),
    )
    .expect("write audit configs");
    assert_eq!(
        stored.audit_configs[0]["auditLogConfigs"][0]["logType"],
        "DATA_READ"
    );
    let next = write(
        &stored,
        json!({ "bindings": [{ "role": "roles/viewer", "members": ["user:a@x.com"] }] }),
    )
    .expect("write bindings");
    assert_eq!(next.audit_configs, stored.audit_configs);
    let read = render(&next, true);
    assert_eq!(read["auditConfigs"][0]["auditLogConfigs"][0]["logType"], 3);
    assert_eq!(
        render(&next, false)["auditConfigs"][0]["auditLogConfigs"][0]["logType"],
        "DATA_READ"
    );
}

#[test]
fn bindings_are_merged_and_sorted() {
    let stored = write(
        &Policy::default(),
        json!({ "bindings": [
            { "role": "roles/viewer", "members": ["user:b@x.com"] },
            { "role": "roles/editor", "members": ["user:a@x.com"] },
            { "role": "roles/viewer", "members": ["user:a@x.com"] },
            { "role": "roles/browser", "members": [] },
        ] }),
    )
    .expect("write");
    let roles: Vec<&str> = stored.bindings.iter().map(|b| b.role.as_str()).collect();
    assert_eq!(roles, ["roles/editor", "roles/viewer"]);
    assert_eq!(stored.bindings[1].members, ["user:a@x.com", "user:b@x.com"]);
}

#[test]
fn at_most_1500_principals() {
    let members: Vec<String> = (0..1501).map(|i| format!("user:u{i}@x.com")).collect();
    let err = write(
        &Policy::default(),
        json!({ "bindings": [{ "role": "roles/viewer", "members": members }] }),
    )
    .expect_err("too many");
    assert_eq!(
        err.message,
        "The number of members in the policy (1,501) is larger than the maximum allowed size 1,500."
    );
    let members: Vec<String> = (0..1500).map(|i| format!("user:u{i}@x.com")).collect();
    assert!(
        write(
            &Policy::default(),
            json!({ "bindings": [{ "role": "roles/viewer", "members": members }] })
        )
        .is_ok()
    );
}

#[test]
fn deleted_accounts_become_deleted_members() {
    let mut stored = write(
        &Policy::default(),
        json!({ "bindings": [{ "role": "roles/viewer", "members": ["serviceAccount:x@gcp-sa-a.iam.gserviceaccount.com"] }] }),
    )
    .expect("write");
    let before = stored.etag.clone();
    assert!(mark_deleted(
        &mut stored,
        "x@gcp-sa-a.iam.gserviceaccount.com",
        "42"
    ));
    assert_eq!(
        stored.bindings[0].members,
        ["deleted:serviceAccount:x@gcp-sa-a.iam.gserviceaccount.com?uid=42"]
    );
    assert_ne!(stored.etag, before);
}
