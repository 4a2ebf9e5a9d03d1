//! Mapping kube-rs errors to [`ProviderError`]s: a kind the engine branches on, a message
//! naming the cluster, object and operation, and an RBAC hint on 403.

use std::time::Duration;

use kube::Error;
use wid_core::{BodyLimit, ErrorKind, ProviderError, ResourceId, human_duration};

/// The call that failed, for the message and the hint.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// The RBAC verb the call needs (`list`, `patch`, `delete`, `get`, `create`).
    pub verb: &'static str,
    /// What the message says wid was doing (`apply`, `list`, `delete`).
    pub action: &'static str,
    /// The API resource (`serviceaccounts`, `serviceaccounts/token`).
    pub resource: &'a str,
    /// The cluster's plan name.
    pub cluster: &'a str,
    /// The namespace, when the call is namespaced.
    pub namespace: Option<&'a str>,
    /// The object (`production/orders`); `None` for lists.
    pub object: Option<String>,
    /// The resource id the call concerns.
    pub id: Option<&'a ResourceId>,
}

impl Call<'_> {
    /// `k8s:list serviceaccounts`, the name calls are counted and reported under.
    pub(crate) fn operation(&self) -> String {
        format!("k8s:{} {}", self.action, self.resource)
    }

    fn what(&self) -> String {
        let singular = self.resource.strip_suffix('s').unwrap_or(self.resource);
        match (&self.object, self.namespace) {
            (Some(object), _) => format!("{singular} {object}"),
            (None, Some(ns)) => format!("{} in namespace {ns}", self.resource),
            (None, None) => self.resource.to_owned(),
        }
    }
}

/// Whether a transport timeout (connect, read or write) is anywhere in `err`'s chain.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        let io = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        let text = e.to_string();
        if io || text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        next = e.source();
    }
    false
}

/// Classifies `err` and names what failed.
///
/// A 409 on a write that replaces the object's state (server-side apply, patch, update)
/// means the object changed under the write ("the object has been modified; please apply
/// your changes to the latest version and try again"): contended, retried after a
/// re-read. A 409 on a delete is a failed precondition (the object is not the one the plan
/// showed) and on a create an object that exists: conflicts, not retried.
pub(crate) fn map_error(err: Error, call: &Call<'_>) -> ProviderError {
    let mut message = format!(
        "failed to {} {} in cluster {}",
        call.action,
        call.what(),
        call.cluster
    );
    let mut retry_after = None;
    let mut hint = None;
    let (kind, detail) = match &err {
        _ if BodyLimit::find(&err).is_some() => {
            let limit = BodyLimit::find(&err).expect("just found");
            let kind = match limit {
                BodyLimit::TooLarge(max) => {
                    message.push_str(&format!(
                        ": the response was cut at {max} bytes, the most wid accepts for one call"
                    ));
                    hint = Some("no Kubernetes API answers one of wid's calls with this much; check the server URL (a proxy, a wrong endpoint)".to_owned());
                    ErrorKind::Invalid
                }
                BodyLimit::TimedOut(after) => {
                    message.push_str(&format!(
                        ": no complete answer from the API server within {} (the per-call deadline)",
                        human_duration(after)
                    ));
                    hint = Some("the API server accepted the call but stalled; check it is reachable and healthy, or raise --call-timeout".to_owned());
                    ErrorKind::Transient
                }
            };
            (kind, err.to_string())
        }
        Error::Api(status) => {
            retry_after = status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s)));
            let kind = match status.code {
                401 => ErrorKind::Auth,
                403 => ErrorKind::Permission,
                404 => ErrorKind::NotFound,
                409 if matches!(call.verb, "patch" | "update") => ErrorKind::Contended,
                409 => ErrorKind::Conflict,
                400 | 422 => ErrorKind::Invalid,
                429 => ErrorKind::Throttled,
                // 410 Gone on a list means our resourceVersion expired; reading again works.
                410 | 500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Invalid,
            };
            let detail = match (status.reason.as_str(), status.message.as_str()) {
                ("", m) => format!("{}: {m}", status.code),
                (r, m) => format!("{} {r}: {m}", status.code),
            };
            (kind, detail)
        }
        // A read or connect timeout: said as such, not as an opaque transport error.
        Error::HyperError(_) | Error::Service(_) | Error::ReadEvents(_) if timed_out(&err) => {
            message.push_str(
                ": the API server stopped answering (nothing received within the read timeout)",
            );
            hint = Some("the API server accepted the call but stalled; check it is reachable and healthy, or raise --call-timeout (it also sets the read timeout, at most 30s)".to_owned());
            (ErrorKind::Transient, err.to_string())
        }
        // Connection refused or reset, dropped streams: worth another try.
        Error::HyperError(_) | Error::Service(_) | Error::ReadEvents(_) => {
            (ErrorKind::Transient, err.to_string())
        }
        Error::Auth(_) => (ErrorKind::Auth, err.to_string()),
        _ => (ErrorKind::Invalid, err.to_string()),
    };
    let mut out = ProviderError::new(kind, message)
        .with_operation(call.operation())
        .with_detail(detail);
    if let Some(wait) = retry_after {
        out = out.with_retry_after(wait);
    }
    if let Some(hint) = hint {
        out = out.with_hint(hint);
    }
    if let Some(id) = call.id {
        out = out.with_resource(id);
    }
    match kind {
        ErrorKind::Permission => {
            let scope = call
                .namespace
                .map_or_else(|| "cluster-wide".to_owned(), |ns| format!("in {ns}"));
            let verbs = if call.verb == "patch" {
                // Server-side apply of a missing object creates it, which needs create too.
                "patch and create"
            } else {
                call.verb
            };
            out = out.with_hint(format!("wid needs {verbs} on {} {scope}", call.resource));
        }
        ErrorKind::Auth => {
            out = out.with_hint(format!(
                "check the credentials of cluster {} in the kubeconfig (expired token, missing login)",
                call.cluster
            ));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> Error {
        Error::Api(Box::new(
            Status::failure("serviceaccounts \"orders\" is forbidden", "Forbidden").with_code(code),
        ))
    }

    fn call() -> Call<'static> {
        Call {
            verb: "patch",
            action: "apply",
            resource: "serviceaccounts",
            cluster: "eks-prod",
            namespace: Some("production"),
            object: Some("production/orders".into()),
            id: None,
        }
    }

    #[test]
    fn status_codes_map_to_kinds() {
        for (code, kind) in [
            (401, ErrorKind::Auth),
            (403, ErrorKind::Permission),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::Contended),
            (422, ErrorKind::Invalid),
            (400, ErrorKind::Invalid),
            (429, ErrorKind::Throttled),
            (500, ErrorKind::Transient),
            (503, ErrorKind::Transient),
        ] {
            assert_eq!(map_error(api(code), &call()).kind(), kind, "{code}");
        }
    }

    #[test]
    fn a_409_is_contended_on_writes_and_a_conflict_on_deletes() {
        let delete = Call {
            verb: "delete",
            action: "delete",
            ..call()
        };
        assert_eq!(map_error(api(409), &delete).kind(), ErrorKind::Conflict);
        assert_eq!(map_error(api(409), &call()).kind(), ErrorKind::Contended);
    }

    #[test]
    fn retry_after_seconds_become_the_wait() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "status": "Failure", "code": 429, "reason": "TooManyRequests",
            "message": "too many requests", "details": {"retryAfterSeconds": 2}
        }))
        .unwrap();
        let e = map_error(Error::Api(Box::new(status)), &call());
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(map_error(api(429), &call()).retry_after, None);
    }

    #[test]
    fn a_call_cut_at_a_bound_says_which() {
        let e = map_error(
            Error::Service(Box::new(BodyLimit::TimedOut(Duration::from_secs(3)))),
            &call(),
        );
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert!(e.to_string().contains("within 3s"), "{e}");
        assert!(e.hint.unwrap().contains("--call-timeout"));
        let e = map_error(Error::Service(Box::new(BodyLimit::TooLarge(1024))), &call());
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("cut at 1024 bytes"), "{e}");
    }

    #[test]
    fn forbidden_names_the_call_and_the_rbac_needed() {
        let e = map_error(api(403), &call());
        assert_eq!(
            e.to_string(),
            "failed to apply serviceaccount production/orders in cluster eks-prod"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("wid needs patch and create on serviceaccounts in production")
        );
        assert_eq!(e.operation.as_deref(), Some("k8s:apply serviceaccounts"));
        assert!(e.detail.unwrap().contains("Forbidden"));
    }

    #[test]
    fn lists_name_the_namespace() {
        let c = Call {
            verb: "list",
            action: "list",
            resource: "roles",
            object: None,
            ..call()
        };
        let e = map_error(api(403), &c);
        assert_eq!(
            e.to_string(),
            "failed to list roles in namespace production in cluster eks-prod"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("wid needs list on roles in production")
        );
    }
}
