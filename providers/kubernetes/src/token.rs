//! Short-lived KSA tokens through the TokenRequest API (`wid token`, and tests that
//! exchange a projected-style token with a cloud). The token itself is never logged.

use std::fmt;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use wid_core::{ErrorKind, ProviderError};

use crate::errors::{Call, map_error};
use crate::provider::KubernetesProvider;

/// What to ask the API server for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOptions {
    /// Requested validity; the server may shorten it (read [`IssuedToken::expiration`]).
    /// The API rejects less than 600.
    pub expiration_seconds: Option<i64>,
    /// The token's `aud` claims (`sts.amazonaws.com`); empty means the API server's own.
    pub audiences: Vec<String>,
    /// Bind the token to this pod in the same namespace: it dies with the pod.
    pub bound_pod: Option<String>,
}

/// A token the API server issued.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The JWT. Never log or print it.
    pub token: String,
    /// When it expires, RFC 3339, as the server reports it.
    pub expiration: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl KubernetesProvider {
    /// Requests a token for KSA `sa` in `namespace` of `cluster`.
    pub async fn create_token(
        &self,
        cluster: &str,
        namespace: &str,
        sa: &str,
        opts: &TokenOptions,
    ) -> Result<IssuedToken, ProviderError> {
        let client = self.client_for(cluster)?.clone();
        let bound_object_ref = match &opts.bound_pod {
            None => None,
            Some(pod) => {
                let call = Call {
                    verb: "get",
                    action: "get",
                    resource: "pods",
                    cluster,
                    namespace: Some(namespace),
                    object: Some(format!("{namespace}/{pod}")),
                    id: None,
                };
                self.counter.count(&call.operation());
                let live = Api::<Pod>::namespaced(client.clone(), namespace)
                    .get(pod)
                    .await
                    .map_err(|e| map_error(e, &call))?;
                Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.clone()),
                    uid: live.metadata.uid,
                })
            }
        };
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: opts.audiences.clone(),
                expiration_seconds: opts.expiration_seconds,
                bound_object_ref,
            },
            ..TokenRequest::default()
        };
        let call = Call {
            verb: "create",
            action: "create",
            resource: "serviceaccounts/token",
            cluster,
            namespace: Some(namespace),
            object: Some(format!("{namespace}/{sa}")),
            id: None,
        };
        self.counter.count(&call.operation());
        // The request carries no secret; the response's token is never logged.
        tracing::debug!(cluster, namespace, sa, audiences = ?opts.audiences, "token request");
        let issued = Api::<ServiceAccount>::namespaced(client, namespace)
            .create_token_request(sa, &PostParams::default(), &request)
            .await
            .map_err(|e| map_error(e, &call))?;
        let missing = || {
            ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "the token request for {namespace}/{sa} in cluster {cluster} returned no token"
                ),
            )
        };
        let status = issued.status.ok_or_else(missing)?;
        if status.token.is_empty() {
            return Err(missing());
        }
        // Time serializes as RFC 3339, which is what callers print and parse.
        let expiration = serde_json::to_value(&status.expiration_timestamp)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(IssuedToken {
            token: status.token,
            expiration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let t = IssuedToken {
            token: "eyJhbGciOi.secret".into(),
            expiration: "2030-01-01T00:00:00Z".into(),
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("2030"));
    }
}
