//! Table columns and cells against the real server's printers.

use super::*;
use crate::k8s::catalog;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-01-02 03:04:05 UTC);

fn table_of(resource: &str, objects: &[Value]) -> Value {
    let info = catalog::by_plural(resource).expect("served");
    table(info, objects, "42", IncludeObject::Metadata, "v1", NOW)
}

fn headers(t: &Value) -> Vec<(String, u64)> {
    t["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["priority"].as_u64().expect("priority"),
            )
        })
        .collect()
}

fn names(t: &Value) -> Vec<String> {
    headers(t).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn ages_read_like_kubectl() {
    for (seconds, text) in [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (10 * 3600, "10h"),
        (3 * 86400 + 3600 * 4, "3d4h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400 + 86400 * 10, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ] {
        assert_eq!(human_duration(seconds), text, "{seconds}");
    }
}

#[test]
fn accept_asks_for_a_table_before_json() {
    let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    assert_eq!(requested(kubectl), Some("v1"));
    assert_eq!(
        requested("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
        Some("v1beta1")
    );
    assert_eq!(requested("application/json"), None);
    assert_eq!(requested("application/json, */*"), None);
    assert_eq!(
        requested("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
        None
    );
}

#[test]
fn columns_are_the_real_servers() {
    assert_eq!(names(&table_of("serviceaccounts", &[])), ["Name", "Age"]);
    assert_eq!(
        names(&table_of("namespaces", &[])),
        ["Name", "Status", "Age"]
    );
    assert_eq!(
        names(&table_of("secrets", &[])),
        ["Name", "Type", "Data", "Age"]
    );
    assert_eq!(names(&table_of("configmaps", &[])), ["Name", "Data", "Age"]);
    assert_eq!(names(&table_of("roles", &[])), ["Name", "Created At"]);
    assert_eq!(
        names(&table_of("clusterroles", &[])),
        ["Name", "Created At"]
    );
    assert_eq!(
        headers(&table_of("rolebindings", &[])),
        [
            ("Name".into(), 0),
            ("Role".into(), 0),
            ("Age".into(), 0),
            ("Users".into(), 1),
            ("Groups".into(), 1),
            ("ServiceAccounts".into(), 1),
        ]
    );
    assert_eq!(
        names(&table_of("pods", &[]))[..5],
        ["Name", "Ready", "Status", "Restarts", "Age"]
    );
    assert_eq!(
        names(&table_of("deployments", &[])),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let t = table_of("jobs", &[]);
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], "42");
}

fn meta(name: &str) -> Value {
    json!({ "name": name, "creationTimestamp": "2026-01-02T03:00:00Z", "labels": { "a": "b" } })
}

#[test]
fn cells_of_the_identity_kinds() {
    let t = table_of(
        "secrets",
        &[json!({ "metadata": meta("s"), "type": "Opaque", "data": { "a": "", "b": "" } })],
    );
    assert_eq!(t["rows"][0]["cells"], json!(["s", "Opaque", 2, "4m5s"]));
    assert_eq!(
        t["rows"][0]["object"],
        json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta("s") })
    );
    let t = table_of(
        "namespaces",
        &[json!({ "metadata": meta("n"), "status": { "phase": "Active" } })],
    );
    assert_eq!(t["rows"][0]["cells"], json!(["n", "Active", "4m5s"]));
    let t = table_of(
        "configmaps",
        &[json!({ "metadata": meta("c"), "data": { "a": "1" }, "binaryData": { "b": "" } })],
    );
    assert_eq!(t["rows"][0]["cells"], json!(["c", 2, "4m5s"]));
    let t = table_of("roles", &[json!({ "metadata": meta("r") })]);
    assert_eq!(t["rows"][0]["cells"], json!(["r", "2026-01-02T03:00:00Z"]));
    let binding = json!({
        "metadata": meta("b"),
        "roleRef": { "kind": "ClusterRole", "name": "view" },
        "subjects": [
            { "kind": "User", "name": "jane" },
            { "kind": "Group", "name": "ops" },
            { "kind": "ServiceAccount", "name": "app", "namespace": "prod" },
            { "kind": "ServiceAccount", "name": "ci", "namespace": "ci" },
        ],
    });
    let t = table_of("clusterrolebindings", &[binding]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "b",
            "ClusterRole/view",
            "4m5s",
            "jane",
            "ops",
            "prod/app, ci/ci"
        ])
    );
}

#[test]
fn cells_of_workloads() {
    let deployment = json!({
        "metadata": meta("api"),
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "api" }, "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["web", "edge"] }] },
            "template": { "spec": { "containers": [{ "name": "a", "image": "nginx" }, { "name": "b", "image": "envoy" }] } },
        },
        "status": { "readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1 },
    });
    let t = table_of("deployments", &[deployment]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "api",
            "1/3",
            2,
            1,
            "4m5s",
            "a,b",
            "nginx,envoy",
            "app=api,tier in (edge,web)"
        ])
    );
    let job = json!({
        "metadata": meta("once"),
        "spec": { "completions": 1, "template": { "spec": { "containers": [] } } },
        "status": { "succeeded": 1, "startTime": "2026-01-02T03:00:00Z", "completionTime": "2026-01-02T03:00:09Z", "conditions": [{ "type": "Complete", "status": "True" }] },
    });
    let t = table_of("jobs", &[job]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["once", "Complete", "1/1", "9s", "4m5s", "", "", "<none>"])
    );
    let cron = json!({ "metadata": meta("tick"), "spec": { "schedule": "* * * * *", "suspend": false, "jobTemplate": { "spec": { "template": { "spec": { "containers": [{ "name": "t", "image": "busybox" }] } } } } } });
    let t = table_of("cronjobs", &[cron]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "tick",
            "* * * * *",
            "<none>",
            "False",
            0,
            "<none>",
            "4m5s",
            "t",
            "busybox",
            "<none>"
        ])
    );
}

#[test]
fn pod_status_follows_the_containers() {
    let pending = json!({
        "metadata": meta("p"),
        "spec": { "containers": [{ "name": "a" }, { "name": "b" }] },
        "status": { "phase": "Pending" },
    });
    let t = table_of("pods", &[pending]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "p", "0/2", "Pending", "0", "4m5s", "<none>", "<none>", "<none>", "<none>"
        ])
    );
    let crashing = json!({
        "metadata": meta("c"),
        "spec": { "containers": [{ "name": "a" }, { "name": "b" }], "nodeName": "n1" },
        "status": {
            "phase": "Running",
            "podIPs": [{ "ip": "10.0.0.7" }],
            "containerStatuses": [
                { "name": "a", "ready": true, "restartCount": 0, "state": { "running": {} } },
                { "name": "b", "ready": false, "restartCount": 3, "state": { "waiting": { "reason": "CrashLoopBackOff" } }, "lastState": { "terminated": { "finishedAt": "2026-01-02T03:02:05Z", "exitCode": 1 } } },
            ],
        },
    });
    let t = table_of("pods", &[crashing]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "c",
            "1/2",
            "CrashLoopBackOff",
            "3 (2m ago)",
            "4m5s",
            "10.0.0.7",
            "n1",
            "<none>",
            "<none>"
        ])
    );
    let init = json!({
        "metadata": meta("i"),
        "spec": { "initContainers": [{ "name": "setup" }], "containers": [{ "name": "a" }] },
        "status": { "phase": "Pending", "initContainerStatuses": [{ "name": "setup", "state": { "running": {} } }] },
    });
    assert_eq!(table_of("pods", &[init])["rows"][0]["cells"][2], "Init:0/1");
    let done = json!({
        "metadata": meta("d"),
        "spec": { "containers": [{ "name": "a" }] },
        "status": { "phase": "Succeeded", "containerStatuses": [{ "name": "a", "state": { "terminated": { "reason": "Completed", "exitCode": 0 } } }] },
    });
    let t = table_of("pods", &[done]);
    assert_eq!(t["rows"][0]["cells"][2], "Completed");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    let mut deleting = json!({ "metadata": meta("x"), "spec": { "containers": [] }, "status": { "phase": "Running" } });
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T03:04:00Z");
    assert_eq!(
        table_of("pods", &[deleting])["rows"][0]["cells"][2],
        "Terminating"
    );
}

#[test]
fn include_object_modes() {
    let info = catalog::by_plural("serviceaccounts").expect("served");
    let sa = json!({ "metadata": meta("a"), "secrets": [] });
    let none = table(
        info,
        std::slice::from_ref(&sa),
        "1",
        IncludeObject::None,
        "v1",
        NOW,
    );
    assert!(none["rows"][0].get("object").is_none());
    let full = table(
        info,
        std::slice::from_ref(&sa),
        "1",
        IncludeObject::Object,
        "v1beta1",
        NOW,
    );
    assert_eq!(full["rows"][0]["object"], sa);
    assert_eq!(full["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
    assert!(IncludeObject::parse(Some("All")).is_err());
}
