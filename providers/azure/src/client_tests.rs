//! The ARM call machinery against a scripted transport: long-running operations, paging,
//! error bodies and `Retry-After`.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use azure_core::http::headers::Headers;
use azure_core::http::{AsyncRawResponse, HttpClient, StatusCode};
use serde_json::json;

use super::*;
use crate::error::{IDENTITY_DELETE, IDENTITY_LIST_SUB, IDENTITY_PUT};

/// One scripted answer: status, headers, JSON body.
type Answer = (u16, Vec<(&'static str, String)>, Value);

/// Answers requests from a script and records them.
#[derive(Debug, Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl HttpClient for Script {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        assert!(
            request
                .headers()
                .get_optional_str(&HeaderName::from_static("authorization"))
                .is_some_and(|v| v == "Bearer test-token"),
            "every request carries the bearer token"
        );
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method(), request.url()));
        let (status, headers, body) = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted answer");
        let mut h = Headers::new();
        for (k, v) in headers {
            h.insert(k, v);
        }
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::from(status),
            h,
            body.to_string().into_bytes(),
        ))
    }
}

fn provider(script: Arc<Script>) -> AzureProvider {
    AzureProvider::with_transport(
        "https://arm.test",
        Transport::new(script),
        Some(Arc::new(StaticToken("test-token"))),
        CallCounter::default(),
    )
}

fn call(op: crate::error::Op) -> Call<'static> {
    Call::new(op, "do it", "/subscriptions/s")
}

#[tokio::test]
async fn a_202_is_polled_through_azure_async_operation_then_the_resource_is_read() {
    let script = Arc::new(Script::default());
    let op = "https://arm.test/operations/1?api-version=2024-11-30";
    script.answers.lock().unwrap().extend([
        (
            202,
            vec![
                ("azure-asyncoperation", op.to_owned()),
                ("retry-after", "0".into()),
            ],
            Value::Null,
        ),
        (
            200,
            vec![("retry-after", "0".into())],
            json!({"status": "InProgress"}),
        ),
        (200, vec![], json!({"status": "Succeeded"})),
        (
            200,
            vec![],
            json!({"id": "/x", "properties": {"clientId": "c"}}),
        ),
    ]);
    let p = provider(script.clone());
    let reply = p
        .send(
            &call(IDENTITY_PUT),
            Method::Put,
            "/x",
            "2024-11-30",
            Some(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(reply.body["properties"]["clientId"], "c");
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "PUT https://arm.test/x?api-version=2024-11-30",
            &format!("GET {op}"),
            &format!("GET {op}"),
            "GET https://arm.test/x?api-version=2024-11-30",
        ]
    );
    let calls = p.counter.snapshot();
    assert_eq!(calls["azure:userAssignedIdentities.createOrUpdate"], 2);
    assert_eq!(calls["azure:operations.get"], 2);
}

#[tokio::test]
async fn a_202_with_location_is_polled_until_it_stops_answering_202() {
    let script = Arc::new(Script::default());
    let loc = "https://arm.test/operationResults/2";
    script.answers.lock().unwrap().extend([
        (
            202,
            vec![("location", loc.to_owned()), ("retry-after", "0".into())],
            Value::Null,
        ),
        (202, vec![("retry-after", "0".into())], Value::Null),
        (200, vec![], Value::Null),
    ]);
    let p = provider(script.clone());
    p.send(
        &call(IDENTITY_DELETE),
        Method::Delete,
        "/x",
        "2024-11-30",
        None,
    )
    .await
    .unwrap();
    assert_eq!(script.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_failed_operation_is_an_arm_failure_with_its_code() {
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().extend([
        (
            202,
            vec![
                ("azure-asyncoperation", "https://arm.test/op".to_owned()),
                ("retry-after", "0".into()),
            ],
            Value::Null,
        ),
        (
            200,
            vec![],
            json!({"status": "Failed", "error": {"code": "Boom", "message": "no"}}),
        ),
    ]);
    let err = provider(script)
        .send(
            &call(IDENTITY_DELETE),
            Method::Delete,
            "/x",
            "2024-11-30",
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "Boom");
}

#[tokio::test]
async fn lists_follow_next_links_retry_throttled_pages_and_errors_keep_retry_after() {
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().extend([
        (
            200,
            vec![],
            json!({"value": [{"name": "a"}], "nextLink": "https://arm.test/page2?$skiptoken=x"}),
        ),
        (
            429,
            vec![("retry-after", "1".into())],
            json!({"error": {"code": "SubscriptionRequestsThrottled", "message": "slow down"}}),
        ),
        (200, vec![], json!({"value": [{"name": "b"}]})),
        (
            429,
            vec![("retry-after", "7".into())],
            json!({"error": {"code": "SubscriptionRequestsThrottled", "message": "slow down"}}),
        ),
    ]);
    let p = provider(script.clone());
    let started = std::time::Instant::now();
    let items = p
        .list(
            &call(IDENTITY_LIST_SUB),
            "/list",
            &[("api-version", "2024-11-30")],
        )
        .await
        .unwrap();
    assert_eq!(items, [json!({"name": "a"}), json!({"name": "b"})]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the throttled page is read again no sooner than its Retry-After"
    );
    assert_eq!(
        p.counter.snapshot()["azure:userAssignedIdentities.listBySubscription"],
        3,
        "two pages, one of them read twice"
    );
    // A write is not retried here (the engine does it, after observing again): its
    // error keeps the Retry-After.
    let failure = p
        .send(
            &call(IDENTITY_PUT),
            Method::Put,
            "/x",
            "2024-11-30",
            Some(&json!({})),
        )
        .await
        .unwrap_err();
    let err = call(IDENTITY_PUT).fail(&failure);
    assert_eq!(err.kind(), wid_core::ErrorKind::Throttled);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
}
