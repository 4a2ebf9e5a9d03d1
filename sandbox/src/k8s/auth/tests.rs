//! Authentication, impersonation and authorization of requests.

use super::*;
use crate::k8s::bootstrap;
use axum::http::HeaderValue;
use serde_json::json;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(*k, HeaderValue::from_str(v).expect("header value"));
    }
    map
}

fn cluster_with_app() -> ClusterState {
    let mut c = bootstrap::new_cluster();
    let sa = catalog::by_plural("serviceaccounts").expect("served");
    c.create(
        sa,
        Some("default"),
        &json!({ "metadata": { "name": "app" } }),
        "t",
        true,
    )
    .expect("sa");
    c
}

#[test]
fn the_kubeconfig_token_and_no_token_are_the_admin() {
    let c = cluster_with_app();
    let admin = admin();
    assert_eq!(authenticate(&c, &headers(&[]), 0), Ok(admin.clone()));
    let bearer = headers(&[("authorization", "Bearer sandbox")]);
    assert_eq!(authenticate(&c, &bearer, 0), Ok(admin));
}

#[test]
fn issued_tokens_authenticate_as_their_service_account() {
    let c = cluster_with_app();
    let issued = token::issue(&c, "default", "app", &json!({}), 1_000).expect("token");
    let value = issued["status"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let bearer = headers(&[("authorization", &format!("Bearer {value}"))]);
    let user = authenticate(&c, &bearer, 1_001).expect("valid");
    assert_eq!(user.name, "system:serviceaccount:default:app");
    assert!(
        user.groups
            .contains(&"system:serviceaccounts:default".to_owned())
    );
    assert_eq!(
        authenticate(&c, &bearer, 999_999)
            .expect_err("expired")
            .code,
        401
    );
    let mut tampered = value.clone();
    tampered.push('x');
    let bad = headers(&[("authorization", &format!("Bearer {tampered}"))]);
    assert_eq!(
        authenticate(&c, &bad, 1_001)
            .expect_err("bad signature")
            .code,
        401
    );
    let mut other = bootstrap::new_cluster();
    let sa = catalog::by_plural("serviceaccounts").expect("served");
    other
        .create(
            sa,
            Some("default"),
            &json!({ "metadata": { "name": "app" } }),
            "t",
            true,
        )
        .expect("sa");
    assert_eq!(
        authenticate(&other, &bearer, 1_001)
            .expect_err("another cluster's")
            .code,
        401
    );
}

#[test]
fn impersonating_a_service_account_brings_its_groups() {
    let c = cluster_with_app();
    let as_sa = headers(&[("impersonate-user", "system:serviceaccount:default:app")]);
    let user = impersonate(&c, admin(), &as_sa).expect("admins may impersonate");
    assert_eq!(user.name, "system:serviceaccount:default:app");
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ]
    );
    let as_jane = headers(&[("impersonate-user", "jane"), ("impersonate-group", "ops")]);
    let jane = impersonate(&c, admin(), &as_jane).expect("allowed");
    assert_eq!(jane.groups, ["ops", "system:authenticated"]);
    // A ServiceAccount may not impersonate anyone.
    let app = UserInfo::service_account("default", "app", "");
    let err = impersonate(&c, app, &as_jane).expect_err("forbidden");
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "users \"jane\" is forbidden: User \"system:serviceaccount:default:app\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
}

#[test]
fn denials_are_403_with_the_real_wording() {
    let c = cluster_with_app();
    let app = UserInfo::service_account("default", "app", "");
    let attributes = Attributes::Resource {
        verb: "get".into(),
        group: String::new(),
        resource: "secrets".into(),
        subresource: String::new(),
        name: "s".into(),
        namespace: "default".into(),
    };
    let err = authorize(&c, &app, &attributes).expect_err("denied");
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "secrets \"s\" is forbidden: User \"system:serviceaccount:default:app\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    assert!(authorize(&c, &admin(), &attributes).is_ok());
}
