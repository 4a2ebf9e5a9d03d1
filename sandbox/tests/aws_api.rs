//! The AWS emulator over HTTP: IAM and STS (Query protocol), EKS (REST-JSON), faults and
//! persistence across restarts, driven with raw requests on loopback.

mod common;

use common::{ACCOUNT, POLICY, Reply, TRUST, authorization, eks, eks_as, send, start};
use serde_json::json;
use wid_sandbox::{Fault, FaultAction, Sandbox};

impl Reply {
    /// The text of the first `<tag>` element.
    fn xml(&self, tag: &str) -> &str {
        let open = format!("<{tag}>");
        let start = self
            .body
            .find(&open)
            .unwrap_or_else(|| panic!("no <{tag}> in {}", self.body))
            + open.len();
        let end = self.body[start..].find(&format!("</{tag}>")).unwrap() + start;
        &self.body[start..end]
    }
}

async fn query(sb: &Sandbox, service: &str, params: &[(&str, &str)]) -> Reply {
    let mut all = params.to_vec();
    all.push((
        "Version",
        if service == "sts" {
            "2011-06-15"
        } else {
            "2010-05-08"
        },
    ));
    let body = serde_urlencoded::to_string(&all).unwrap();
    let auth = authorization(ACCOUNT, service);
    send(
        &sb.cloud_url(),
        "POST",
        "/",
        &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    )
    .await
}

async fn iam(sb: &Sandbox, params: &[(&str, &str)]) -> Reply {
    query(sb, "iam", params).await
}

async fn create_role(sb: &Sandbox, name: &str) -> Reply {
    iam(
        sb,
        &[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", TRUST),
            ("Tags.member.1.Key", "owner"),
            ("Tags.member.1.Value", "payments & co"),
        ],
    )
    .await
}

#[tokio::test]
async fn roles_are_created_read_and_protected() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;

    let created = create_role(&sb, "orders-prod").await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("<CreateRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><CreateRoleResult><Role>"));
    assert_eq!(created.header("content-type"), Some("text/xml"));
    assert_eq!(
        created.xml("Arn"),
        "arn:aws:iam::111122223333:role/orders-prod"
    );
    assert!(created.xml("RoleId").starts_with("AROA"));
    assert_eq!(created.xml("Value"), "payments &amp; co");

    let got = iam(&sb, &[("Action", "GetRole"), ("RoleName", "orders-prod")]).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let encoded = got.xml("AssumeRolePolicyDocument");
    assert!(
        encoded.starts_with("%7B%22Version%22%3A%222012-10-17%22"),
        "{encoded}"
    );
    let decoded: String = percent_decode(encoded);
    assert_eq!(decoded, TRUST);
    assert_eq!(got.xml("MaxSessionDuration"), "3600");
    assert!(got.xml("RequestId").len() == 36);

    let duplicate = create_role(&sb, "ORDERS-prod").await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);
    assert_eq!(duplicate.xml("Code"), "EntityAlreadyExists");
    assert_eq!(
        duplicate.xml("Message"),
        "Role with name ORDERS-prod already exists."
    );
    assert_eq!(duplicate.xml("Type"), "Sender");

    let missing = iam(&sb, &[("Action", "GetRole"), ("RoleName", "nope")]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.xml("Code"), "NoSuchEntity");
    assert_eq!(
        missing.xml("Message"),
        "The role with name nope cannot be found."
    );

    let bad_trust = iam(
        &sb,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "bad"),
            ("AssumeRolePolicyDocument", "{not json"),
        ],
    )
    .await;
    assert_eq!(
        (bad_trust.status, bad_trust.xml("Code")),
        (400, "MalformedPolicyDocument")
    );

    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Sid":"{}","Principal":{{"Service":"x"}},"Action":"sts:AssumeRole"}}]}}"#,
        "a".repeat(2000)
    );
    let too_big = iam(
        &sb,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "big"),
            ("AssumeRolePolicyDocument", &big),
        ],
    )
    .await;
    assert_eq!(
        (too_big.status, too_big.xml("Code")),
        (409, "LimitExceeded")
    );
    assert_eq!(
        too_big.xml("Message"),
        "Cannot exceed quota for ACLSizePerRole: 2048"
    );

    let listed = iam(&sb, &[("Action", "ListRoles")]).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.xml("RoleName"), "orders-prod");
    assert_eq!(listed.xml("IsTruncated"), "false");
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn managed_policies_attach_up_to_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    assert_eq!(create_role(&sb, "r").await.status, 200);

    let attach = |arn: String| {
        let sb = &sb;
        async move {
            iam(
                sb,
                &[
                    ("Action", "AttachRolePolicy"),
                    ("RoleName", "r"),
                    ("PolicyArn", &arn),
                ],
            )
            .await
        }
    };
    let missing = attach("arn:aws:iam::aws:policy/NoSuchPolicy".into()).await;
    assert_eq!((missing.status, missing.xml("Code")), (404, "NoSuchEntity"));

    let mut arns = Vec::new();
    for i in 0..11 {
        let name = format!("p{i}");
        let created = iam(
            &sb,
            &[
                ("Action", "CreatePolicy"),
                ("PolicyName", &name),
                ("PolicyDocument", POLICY),
            ],
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.body);
        arns.push(created.xml("Arn").to_owned());
    }
    assert_eq!(arns[0], "arn:aws:iam::111122223333:policy/p0");
    let s3 = attach("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into()).await;
    assert_eq!(s3.status, 200, "{}", s3.body);
    for arn in &arns[..9] {
        assert_eq!(attach(arn.clone()).await.status, 200);
    }
    let eleventh = attach(arns[9].clone()).await;
    assert_eq!(
        (eleventh.status, eleventh.xml("Code")),
        (409, "LimitExceeded")
    );
    assert_eq!(
        eleventh.xml("Message"),
        "Cannot exceed quota for PoliciesPerRole: 10"
    );

    let listed = iam(
        &sb,
        &[
            ("Action", "ListAttachedRolePolicies"),
            ("RoleName", "r"),
            ("MaxItems", "1"),
        ],
    )
    .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.xml("PolicyName"), "AmazonS3ReadOnlyAccess");
    assert_eq!(listed.xml("IsTruncated"), "true");
    let marker = listed.xml("Marker").to_owned();
    let next = iam(
        &sb,
        &[
            ("Action", "ListAttachedRolePolicies"),
            ("RoleName", "r"),
            ("Marker", &marker),
        ],
    )
    .await;
    assert_eq!(next.body.matches("<PolicyArn>").count(), 9);

    let conflict = iam(&sb, &[("Action", "DeleteRole"), ("RoleName", "r")]).await;
    assert_eq!(
        (conflict.status, conflict.xml("Code")),
        (409, "DeleteConflict")
    );
    assert_eq!(
        conflict.xml("Message"),
        "Cannot delete entity, must detach all policies first."
    );

    let inline = iam(
        &sb,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "r"),
            ("PolicyName", "inline"),
            ("PolicyDocument", POLICY),
        ],
    )
    .await;
    assert_eq!(inline.status, 200, "{}", inline.body);
    assert!(inline.body.contains("<PutRolePolicyResponse"));
    assert!(!inline.body.contains("<PutRolePolicyResult>"));
    let got = iam(
        &sb,
        &[
            ("Action", "GetRolePolicy"),
            ("RoleName", "r"),
            ("PolicyName", "inline"),
        ],
    )
    .await;
    assert_eq!(percent_decode(got.xml("PolicyDocument")), POLICY);
}

#[tokio::test]
async fn oidc_providers_are_unique_per_url() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let url = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";
    let create = [
        ("Action", "CreateOpenIDConnectProvider"),
        ("Url", url),
        ("ClientIDList.member.1", "sts.amazonaws.com"),
    ];
    let created = iam(&sb, &create).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";
    assert_eq!(created.xml("OpenIDConnectProviderArn"), arn);

    let listed = iam(&sb, &[("Action", "ListOpenIDConnectProviders")]).await;
    assert_eq!(listed.xml("Arn"), arn);

    let duplicate = iam(&sb, &create).await;
    assert_eq!(
        (duplicate.status, duplicate.xml("Code")),
        (409, "EntityAlreadyExists")
    );

    let got = iam(
        &sb,
        &[
            ("Action", "GetOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", arn),
        ],
    )
    .await;
    assert_eq!(got.xml("Url"), "oidc.eks.us-east-1.amazonaws.com/id/ABC");
    assert_eq!(got.xml("member"), "sts.amazonaws.com");

    let bad = iam(
        &sb,
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", "https://x.example:8443"),
        ],
    )
    .await;
    assert_eq!((bad.status, bad.xml("Code")), (400, "InvalidInput"));
}

#[tokio::test]
async fn cluster_issuer_is_stable_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let described = eks(&sb, "GET", "/clusters/dev", None).await;
    assert_eq!(described.status, 200, "{}", described.body);
    let cluster = &described.json()["cluster"];
    let issuer = cluster["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        issuer.starts_with("https://oidc.eks.us-east-1.amazonaws.com/id/"),
        "{issuer}"
    );
    assert_eq!(
        cluster["arn"],
        "arn:aws:eks:us-east-1:111122223333:cluster/dev"
    );
    assert_eq!(cluster["status"], "ACTIVE");
    assert!(cluster["createdAt"].is_number());
    drop(sb);

    let sb = start(dir.path()).await;
    let again = eks(&sb, "GET", "/clusters/dev", None).await;
    assert_eq!(
        again.json()["cluster"]["identity"]["oidc"]["issuer"],
        issuer.as_str()
    );
    let other = tempfile::tempdir().unwrap();
    let fresh = start(other.path()).await;
    let elsewhere = eks(&fresh, "GET", "/clusters/dev", None).await;
    assert_eq!(
        elsewhere.json()["cluster"]["identity"]["oidc"]["issuer"],
        issuer.as_str()
    );

    let listed = eks(&sb, "GET", "/clusters", None).await;
    assert_eq!(listed.json(), json!({"clusters": ["dev"]}));

    let wrong_account = eks_as(&sb, "999999999999", "GET", "/clusters/dev", None).await;
    assert_eq!(wrong_account.status, 404);
    assert_eq!(
        wrong_account.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert!(wrong_account.json()["message"].is_string());
}

#[tokio::test]
async fn pod_identity_associations_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    assert_eq!(create_role(&sb, "orders").await.status, 200);
    let role_arn = "arn:aws:iam::111122223333:role/orders";
    let path = "/clusters/dev/pod-identity-associations";
    let body = json!({"namespace": "prod", "serviceAccount": "orders", "roleArn": role_arn, "tags": {"a": "b"}});

    let created = eks(&sb, "POST", path, Some(body.clone())).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let association = created.json()["association"].clone();
    let id = association["associationId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("a-") && id.len() == 19, "{id}");
    assert_eq!(
        association["associationArn"],
        format!("arn:aws:eks:us-east-1:111122223333:podidentityassociation/dev/{id}")
    );
    assert_eq!(association["roleArn"], role_arn);
    assert_eq!(association["disableSessionTags"], false);
    assert!(association["createdAt"].is_i64());
    assert!(association.get("ownerArn").is_none());

    let retried = json!({"namespace": "prod", "serviceAccount": "retried", "roleArn": role_arn, "clientRequestToken": "token-1"});
    let first = eks(&sb, "POST", path, Some(retried.clone())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = eks(&sb, "POST", path, Some(retried)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.json()["association"]["associationId"],
        first.json()["association"]["associationId"]
    );

    let duplicate = eks(&sb, "POST", path, Some(body)).await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.header("x-amzn-errortype"),
        Some("ResourceInUseException")
    );
    assert_eq!(
        duplicate.json()["message"],
        format!("Association already exists: {id}")
    );

    let no_role = json!({"namespace": "prod", "serviceAccount": "other", "roleArn": "arn:aws:iam::111122223333:role/missing"});
    let rejected = eks(&sb, "POST", path, Some(no_role)).await;
    assert_eq!(rejected.status, 400);
    assert_eq!(
        rejected.header("x-amzn-errortype"),
        Some("InvalidParameterException")
    );

    let listed = eks(
        &sb,
        "GET",
        &format!("{path}?namespace=prod&serviceAccount=orders"),
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let summaries = listed.json()["associations"].as_array().unwrap().clone();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["associationId"], id.as_str());
    assert!(summaries[0].get("roleArn").is_none());
    let none = eks(&sb, "GET", &format!("{path}?namespace=other"), None).await;
    assert_eq!(none.json()["associations"], json!([]));

    let described = eks(&sb, "GET", &format!("{path}/{id}"), None).await;
    assert_eq!(described.json()["association"]["roleArn"], role_arn);

    let deleted = eks(&sb, "DELETE", &format!("{path}/{id}"), None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["association"]["associationId"], id.as_str());
    let gone = eks(&sb, "GET", &format!("{path}/{id}"), None).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn a_throttle_fault_is_answered_once_then_served() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    assert_eq!(create_role(&sb, "r").await.status, 200);
    sb.inject(Fault {
        api: "iam:GetRole".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    let throttled = iam(&sb, &[("Action", "GetRole"), ("RoleName", "r")]).await;
    assert_eq!(throttled.status, 400);
    assert!(throttled.body.contains("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>"));
    let served = iam(&sb, &[("Action", "GetRole"), ("RoleName", "r")]).await;
    assert_eq!(served.status, 200);
    assert_eq!(sb.calls()["iam:GetRole"], 2);

    sb.inject(Fault {
        api: "eks:".into(),
        action: FaultAction::Throttle,
        times: Some(1),
    });
    let throttled = eks(&sb, "GET", "/clusters/dev", None).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(
        throttled.header("x-amzn-errortype"),
        Some("ThrottlingException")
    );
    assert_eq!(eks(&sb, "GET", "/clusters/dev", None).await.status, 200);
    assert_eq!(sb.calls()["eks:DescribeCluster"], 2);
}

#[tokio::test]
async fn latency_faults_delay_then_serve() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    sb.inject(Fault {
        api: "sts:".into(),
        action: FaultAction::Latency { ms: 100 },
        times: Some(1),
    });
    let started = std::time::Instant::now();
    let identity = query(&sb, "sts", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(identity.status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
}

#[tokio::test]
async fn sts_names_the_account_of_the_access_key() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let identity = query(&sb, "sts", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(identity.status, 200, "{}", identity.body);
    assert!(identity.body.contains(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    assert_eq!(identity.xml("Account"), ACCOUNT);
    assert_eq!(
        identity.xml("Arn"),
        "arn:aws:iam::111122223333:user/sandbox"
    );
    assert_eq!(sb.calls()["sts:GetCallerIdentity"], 1);
}

#[tokio::test]
async fn unknown_paths_and_actions_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path()).await;
    let path = eks(&sb, "GET", "/nothing/here", None).await;
    assert_eq!(path.status, 404);
    assert!(path.json()["message"].is_string());
    let action = iam(&sb, &[("Action", "CreateUser")]).await;
    assert_eq!((action.status, action.xml("Code")), (400, "InvalidAction"));
}
