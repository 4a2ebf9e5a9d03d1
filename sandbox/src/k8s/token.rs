//! TokenRequest (`POST .../serviceaccounts/{name}/token`): validation as the real server
//! does it, and JWT-shaped ServiceAccount tokens signed with HMAC-SHA256 over the
//! cluster's key (real clusters use RS256; nothing in the sandbox verifies signatures
//! with a public key, and a symmetric key keeps the state file self-contained).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ClusterState;
use super::catalog;
use super::status::ApiError;
use super::store;

/// The issuer and default audience of an in-cluster API server.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Bounds of `spec.expirationSeconds` (pkg/apis/authentication/validation).
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;
const DEFAULT_EXPIRATION: i64 = 3600;

fn invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "authentication.k8s.io",
        "TokenRequest",
        name,
        &[(field.to_owned(), message)],
    )
}

/// Answers a TokenRequest for ServiceAccount `name` in `namespace` at unix time `now`.
pub fn issue(
    cluster: &ClusterState,
    namespace: &str,
    name: &str,
    request: &Value,
    now: i64,
) -> Result<Value, ApiError> {
    let accounts = catalog::by_plural("serviceaccounts").expect("serviceaccounts are served");
    let account = cluster.get(accounts, Some(namespace), name)?;
    let spec = &request["spec"];
    let expiration = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("spec.expirationSeconds: not an integer: {v}"))
        })?,
    };
    if expiration < MIN_EXPIRATION {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            format!(
                "Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let mut audiences: Vec<String> = spec["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    if audiences.is_empty() {
        audiences.push(DEFAULT_ISSUER.to_owned());
    }
    let issuer = if cluster.issuer.is_empty() {
        DEFAULT_ISSUER
    } else {
        &cluster.issuer
    };
    let mut identity = json!({
        "namespace": namespace,
        "serviceaccount": { "name": name, "uid": account["metadata"]["uid"] },
    });
    let bound = &spec["boundObjectRef"];
    if bound.is_object() {
        let kind = bound["kind"].as_str().unwrap_or_default();
        let resource = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            other => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount \"{name}\" to object of kind \"{other}\""
                )));
            }
        };
        let info = catalog::by_plural(resource).expect("pods and secrets are served");
        let object_name = bound["name"].as_str().unwrap_or_default();
        let object = cluster.get(info, Some(namespace), object_name)?;
        let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
        if let Some(wanted) = bound["uid"].as_str().filter(|u| !u.is_empty())
            && wanted != uid
        {
            return Err(ApiError::conflict(
                info,
                object_name,
                &format!(
                    "the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        identity[kind.to_lowercase()] = json!({ "name": object_name, "uid": uid });
    }
    let exp = now + expiration;
    let claims = json!({
        "aud": audiences,
        "exp": exp,
        "iat": now,
        "iss": issuer,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": identity,
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    });
    let token = sign(&cluster.signing_key, &claims);
    let expires_at = time::OffsetDateTime::from_unix_timestamp(exp)
        .map(store::rfc3339)
        .unwrap_or_default();
    let mut out_spec = json!({ "audiences": audiences, "expirationSeconds": expiration });
    out_spec["boundObjectRef"] = if bound.is_object() {
        bound.clone()
    } else {
        Value::Null
    };
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": { "name": name, "namespace": namespace, "creationTimestamp": null },
        "spec": out_spec,
        "status": { "token": token, "expirationTimestamp": expires_at },
    }))
}

/// `base64url(header).base64url(claims).base64url(HMAC-SHA256(key, header.claims))`.
fn sign(hex_key: &str, claims: &Value) -> String {
    let key = hex::decode(hex_key).unwrap_or_else(|_| hex_key.as_bytes().to_vec());
    let kid = hex::encode(&Sha256::digest(&key)[..8]);
    let header = json!({ "alg": "HS256", "kid": kid });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = hmac_sha256(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Whether `token` was signed by this cluster's key (the expiry is the caller's check).
pub fn verify(hex_key: &str, token: &str) -> bool {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let key = hex::decode(hex_key).unwrap_or_else(|_| hex_key.as_bytes().to_vec());
    URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|given| given == hmac_sha256(&key, input.as_bytes()))
}

/// HMAC (RFC 2104) over SHA-256, which sha2 alone does not provide.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_of(token: &str) -> Value {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "JWT-shaped");
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url");
        serde_json::from_slice(&payload).expect("json claims")
    }

    fn cluster() -> ClusterState {
        super::super::bootstrap::new_cluster()
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn token_claims_name_the_service_account() {
        let c = cluster();
        let request =
            json!({ "spec": { "audiences": ["sts.amazonaws.com"], "expirationSeconds": 600 } });
        let answer = issue(&c, "default", "default", &request, 1_700_000_000).expect("issued");
        let claims = claims_of(answer["status"]["token"].as_str().expect("token"));
        assert_eq!(claims["sub"], "system:serviceaccount:default:default");
        assert_eq!(claims["aud"], json!(["sts.amazonaws.com"]));
        assert_eq!(claims["iss"], DEFAULT_ISSUER);
        assert_eq!(
            claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
            600
        );
        assert_eq!(claims["kubernetes.io"]["namespace"], "default");
        let uid = &c.objects["serviceaccounts"]["default/default"]["metadata"]["uid"];
        assert_eq!(&claims["kubernetes.io"]["serviceaccount"]["uid"], uid);
        assert_eq!(
            answer["status"]["expirationTimestamp"],
            "2023-11-14T22:23:20Z"
        );
        assert_eq!(answer["spec"]["expirationSeconds"], 600);
    }

    #[test]
    fn defaults_and_signature() {
        let c = cluster();
        let answer = issue(&c, "default", "default", &json!({}), 1_700_000_000).expect("issued");
        let token = answer["status"]["token"].as_str().expect("token");
        let claims = claims_of(token);
        assert_eq!(claims["aud"], json!([DEFAULT_ISSUER]));
        assert_eq!(claims["exp"].as_i64().expect("exp") - 1_700_000_000, 3600);
        let (input, signature) = token.rsplit_once('.').expect("three parts");
        let key = hex::decode(&c.signing_key).expect("hex key");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
            hmac_sha256(&key, input.as_bytes())
        );
    }

    #[test]
    fn validation_errors_match_the_real_server() {
        let c = cluster();
        let short = json!({ "spec": { "expirationSeconds": 599 } });
        let err = issue(&c, "default", "default", &short, 0).expect_err("too short");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "TokenRequest.authentication.k8s.io \"default\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
        );
        let long = json!({ "spec": { "expirationSeconds": (1i64 << 32) + 1 } });
        let err = issue(&c, "default", "default", &long, 0).expect_err("too long");
        assert!(
            err.message
                .ends_with("may not specify a duration larger than 2^32 seconds")
        );
        let err = issue(&c, "default", "ghost", &json!({}), 0).expect_err("no sa");
        assert_eq!(err.message, "serviceaccounts \"ghost\" not found");
        let bound = json!({ "spec": { "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "p" } } });
        let err = issue(&c, "default", "default", &bound, 0).expect_err("no pod");
        assert_eq!(err.message, "pods \"p\" not found");
    }

    #[test]
    fn bound_pod_is_named_in_the_claims() {
        let mut c = cluster();
        let pods = catalog::by_plural("pods").expect("served");
        let pod = c
            .create(
                pods,
                Some("default"),
                &json!({ "metadata": { "name": "p" }, "spec": { "containers": [] } }),
                "t",
                true,
            )
            .expect("pod");
        let uid = pod["metadata"]["uid"].as_str().expect("uid").to_owned();
        let bound = json!({ "spec": { "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "p", "uid": uid } } });
        let answer = issue(&c, "default", "default", &bound, 0).expect("issued");
        let claims = claims_of(answer["status"]["token"].as_str().expect("token"));
        assert_eq!(
            claims["kubernetes.io"]["pod"],
            json!({ "name": "p", "uid": uid })
        );
        let stale =
            json!({ "spec": { "boundObjectRef": { "kind": "Pod", "name": "p", "uid": "other" } } });
        assert_eq!(
            issue(&c, "default", "default", &stale, 0)
                .expect_err("uid")
                .code,
            409
        );
    }
}
