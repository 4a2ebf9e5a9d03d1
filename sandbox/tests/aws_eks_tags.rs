//! EKS tagging over HTTP (`TagResource`, `UntagResource`, `ListTagsForResource` on
//! `/tags/{resourceArn}`): clusters and Pod Identity associations, the errors the EKS
//! model declares for these operations, faults, and persistence across restarts.

mod common;

use common::{ACCOUNT, Reply, TRUST, authorization, eks, eks_as, send, start};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use wid_sandbox::{Fault, FaultAction, Sandbox};

const CLUSTER_ARN: &str = "arn:aws:eks:us-east-1:111122223333:cluster/dev";

impl Reply {
    /// Asserts an EKS error: status, `X-Amzn-Errortype`, and a `{"message"}` body.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("x-amzn-errortype"), Some(code), "{}", self.body);
        assert!(self.json()["message"].is_string(), "{}", self.body);
    }
}

/// `/tags/{resourceArn}` with the ARN encoded as the SDKs encode labels (`:` and `/` too).
fn tags_path(arn: &str) -> String {
    format!("/tags/{}", utf8_percent_encode(arn, NON_ALPHANUMERIC))
}

async fn tag(sb: &Sandbox, arn: &str, tags: Value) -> Reply {
    eks(sb, "POST", &tags_path(arn), Some(json!({ "tags": tags }))).await
}

async fn list_tags(sb: &Sandbox, arn: &str) -> Reply {
    eks(sb, "GET", &tags_path(arn), None).await
}

async fn untag(sb: &Sandbox, arn: &str, keys: &[&str]) -> Reply {
    let query: Vec<String> = keys.iter().map(|k| format!("tagKeys={k}")).collect();
    let path = format!("{}?{}", tags_path(arn), query.join("&"));
    eks(sb, "DELETE", &path, None).await
}

/// Creates role `orders` and an association for `prod/orders` tagged `a=b`; returns its
/// id and ARN.
async fn association(sb: &Sandbox) -> (String, String) {
    let form = serde_urlencoded::to_string([
        ("Action", "CreateRole"),
        ("RoleName", "orders"),
        ("AssumeRolePolicyDocument", TRUST),
        ("Version", "2010-05-08"),
    ])
    .unwrap();
    let auth = authorization(ACCOUNT, "iam");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", auth.as_str()),
    ];
    let role = send(&sb.cloud_url(), "POST", "/", &headers, form.as_bytes()).await;
    assert_eq!(role.status, 200, "{}", role.body);
    let body = json!({
        "namespace": "prod",
        "serviceAccount": "orders",
        "roleArn": "arn:aws:iam::111122223333:role/orders",
        "tags": {"a": "b"},
    });
    let created = eks(
        sb,
        "POST",
        "/clusters/dev/pod-identity-associations",
        Some(body),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let a = &created.json()["association"];
    (
        a["associationId"].as_str().unwrap().to_owned(),
        a["associationArn"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn association_tags_are_added_listed_removed_and_described() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let (id, arn) = association(&sb).await;
    assert_eq!(
        list_tags(&sb, &arn).await.json(),
        json!({"tags": {"a": "b"}})
    );

    // New keys are added and existing ones overwritten; the answer is an empty object.
    let tagged = tag(&sb, &arn, json!({"team": "payments", "a": "c"})).await;
    assert_eq!(tagged.status, 200, "{}", tagged.body);
    assert_eq!(tagged.json(), json!({}));
    let listed = list_tags(&sb, &arn).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.json(),
        json!({"tags": {"a": "c", "team": "payments"}})
    );
    let described = eks(
        &sb,
        "GET",
        &format!("/clusters/dev/pod-identity-associations/{id}"),
        None,
    )
    .await;
    assert_eq!(
        described.json()["association"]["tags"],
        json!({"a": "c", "team": "payments"})
    );

    // Keys that are not there are no error.
    let untagged = untag(&sb, &arn, &["a", "missing"]).await;
    assert_eq!(untagged.status, 200, "{}", untagged.body);
    assert_eq!(untagged.json(), json!({}));
    assert_eq!(
        list_tags(&sb, &arn).await.json(),
        json!({"tags": {"team": "payments"}})
    );
    assert_eq!(sb.calls()["eks:TagResource"], 1);
    assert_eq!(sb.calls()["eks:UntagResource"], 1);
    assert_eq!(sb.calls()["eks:ListTagsForResource"], 3);

    // Tags persist with the association.
    drop(sb);
    let sb = start(dir.path()).await;
    assert_eq!(
        list_tags(&sb, &arn).await.json(),
        json!({"tags": {"team": "payments"}})
    );

    // Deleting the association takes its tags along.
    let path = format!("/clusters/dev/pod-identity-associations/{id}");
    assert_eq!(eks(&sb, "DELETE", &path, None).await.status, 200);
    list_tags(&sb, &arn)
        .await
        .assert_error(404, "NotFoundException");
    tag(&sb, &arn, json!({"k": "v"}))
        .await
        .assert_error(404, "NotFoundException");
    untag(&sb, &arn, &["k"])
        .await
        .assert_error(404, "NotFoundException");
}

#[tokio::test]
async fn cluster_tags_show_in_describe_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    assert_eq!(
        list_tags(&sb, CLUSTER_ARN).await.json(),
        json!({"tags": {}})
    );
    let tagged = tag(&sb, CLUSTER_ARN, json!({"env": "dev", "cost": ""})).await;
    assert_eq!(tagged.status, 200, "{}", tagged.body);
    let described = eks(&sb, "GET", "/clusters/dev", None).await;
    assert_eq!(
        described.json()["cluster"]["tags"],
        json!({"cost": "", "env": "dev"})
    );

    // A hand-written path that leaves the ARN's slash unencoded names the same cluster.
    let raw = eks(
        &sb,
        "GET",
        "/tags/arn:aws:eks:us-east-1:111122223333:cluster/dev",
        None,
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(raw.json(), json!({"tags": {"cost": "", "env": "dev"}}));

    assert_eq!(untag(&sb, CLUSTER_ARN, &["env", "cost"]).await.status, 200);
    assert_eq!(
        list_tags(&sb, CLUSTER_ARN).await.json(),
        json!({"tags": {}})
    );
}

#[tokio::test]
async fn unknown_resources_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let (_, arn) = association(&sb).await;
    for missing in [
        "arn:aws:eks:us-east-1:111122223333:cluster/prod",
        "arn:aws:eks:us-west-2:111122223333:cluster/dev",
        "arn:aws:eks:us-east-1:444455556666:cluster/dev",
        "arn:aws:eks:us-east-1:111122223333:podidentityassociation/dev/a-00000000000000000",
        "arn:aws:eks:us-east-1:111122223333:nodegroup/dev/ng/0",
    ] {
        let reply = list_tags(&sb, missing).await;
        reply.assert_error(404, "NotFoundException");
        assert!(
            reply.json()["message"].as_str().unwrap().contains(missing),
            "{}",
            reply.body
        );
        tag(&sb, missing, json!({"k": "v"}))
            .await
            .assert_error(404, "NotFoundException");
    }
    // The association's own ARN, asked for by another account.
    eks_as(&sb, "444455556666", "GET", &tags_path(&arn), None)
        .await
        .assert_error(404, "NotFoundException");
}

#[tokio::test]
async fn malformed_requests_are_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    for arn in [
        "dev",
        "arn:aws:iam::111122223333:role/orders",
        "arn:aws:eks:us-east-1:111122223333:cluster",
    ] {
        list_tags(&sb, arn)
            .await
            .assert_error(400, "BadRequestException");
    }
    let path = tags_path(CLUSTER_ARN);
    for body in [json!({}), json!({"tags": {}}), json!({"tags": {"k": 1}})] {
        eks(&sb, "POST", &path, Some(body))
            .await
            .assert_error(400, "BadRequestException");
    }
    tag(&sb, CLUSTER_ARN, json!({"aws:owner": "x"}))
        .await
        .assert_error(400, "BadRequestException");
    eks(&sb, "DELETE", &path, None)
        .await
        .assert_error(400, "BadRequestException");

    // At most 50 tags on a resource: a request that would exceed it changes nothing.
    let many: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(tag(&sb, CLUSTER_ARN, Value::Object(many)).await.status, 200);
    tag(&sb, CLUSTER_ARN, json!({"one-more": "v"}))
        .await
        .assert_error(400, "BadRequestException");
    let tags = list_tags(&sb, CLUSTER_ARN).await.json();
    assert_eq!(tags["tags"].as_object().unwrap().len(), 50);
}

#[tokio::test]
async fn injected_faults_answer_before_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    sb.inject(Fault {
        api: "eks:TagResource".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    tag(&sb, CLUSTER_ARN, json!({"k": "v"}))
        .await
        .assert_error(429, "ThrottlingException");
    assert_eq!(
        list_tags(&sb, CLUSTER_ARN).await.json(),
        json!({"tags": {}})
    );
    assert_eq!(tag(&sb, CLUSTER_ARN, json!({"k": "v"})).await.status, 200);
    assert_eq!(sb.calls()["eks:TagResource"], 2);

    sb.inject(Fault {
        api: "eks:UntagResource".into(),
        action: FaultAction::ServerError,
        times: Some(1),
    });
    untag(&sb, CLUSTER_ARN, &["k"])
        .await
        .assert_error(500, "ServerException");
    sb.inject(Fault {
        api: "eks:ListTagsForResource".into(),
        action: FaultAction::Conflict,
        times: Some(1),
    });
    list_tags(&sb, CLUSTER_ARN)
        .await
        .assert_error(409, "ResourceInUseException");
    assert_eq!(
        list_tags(&sb, CLUSTER_ARN).await.json(),
        json!({"tags": {"k": "v"}})
    );
}
