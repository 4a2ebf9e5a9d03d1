//! Mapping kube-rs errors to [`ProviderError`]s: a kind the engine branches on, a message
//! naming the cluster, object and operation, and an RBAC hint on 403.

use kube::Error;
use wid_core::{ErrorKind, ProviderError, ResourceId};

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

/// Classifies `err` and names what failed.
pub(crate) fn map_error(err: Error, call: &Call<'_>) -> ProviderError {
    let message = format!(
        "failed to {} {} in cluster {}",
        call.action,
        call.what(),
        call.cluster
    );
    let (kind, detail) = match &err {
        Error::Api(status) => {
            let kind = match status.code {
                401 => ErrorKind::Auth,
                403 => ErrorKind::Permission,
                404 => ErrorKind::NotFound,
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
        // Connection refused or reset, timeouts, dropped streams: worth another try.
        Error::HyperError(_) | Error::Service(_) | Error::ReadEvents(_) => {
            (ErrorKind::Transient, err.to_string())
        }
        Error::Auth(_) => (ErrorKind::Auth, err.to_string()),
        _ => (ErrorKind::Invalid, err.to_string()),
    };
    let mut out = ProviderError::new(kind, message)
        .with_operation(call.operation())
        .with_detail(detail);
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
            (409, ErrorKind::Conflict),
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
