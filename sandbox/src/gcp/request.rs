//! One HTTP request to a Google API as the handlers see it: the percent-decoded path
//! segments after the service prefix, the query, and the JSON body checked against the
//! request message's fields the way Google's front end checks it (unknown names are a
//! 400; proto `snake_case` names are accepted beside the JSON `camelCase` ones).

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::error::GcpError;

/// The fields of a JSON message, for rejecting unknown names.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A scalar or a message whose fields are not checked.
    Any,
    /// A message with these fields (JSON names).
    Message(&'static [(&'static str, &'static Shape)]),
    /// A repeated field of this shape.
    List(&'static Shape),
}

/// An IAM condition (`google.type.Expr`).
pub(crate) const EXPR: Shape = Shape::Message(&[
    ("expression", &Shape::Any),
    ("title", &Shape::Any),
    ("description", &Shape::Any),
    ("location", &Shape::Any),
]);
/// A role binding.
pub(crate) const BINDING: Shape = Shape::Message(&[
    ("role", &Shape::Any),
    ("members", &Shape::List(&Shape::Any)),
    ("condition", &EXPR),
]);
/// One `auditLogConfigs` entry.
pub(crate) const AUDIT_LOG_CONFIG: Shape = Shape::Message(&[
    ("logType", &Shape::Any),
    ("exemptedMembers", &Shape::List(&Shape::Any)),
]);
/// One `auditConfigs` entry.
pub(crate) const AUDIT_CONFIG: Shape = Shape::Message(&[
    ("service", &Shape::Any),
    ("auditLogConfigs", &Shape::List(&AUDIT_LOG_CONFIG)),
]);
/// An IAM policy.
pub(crate) const POLICY: Shape = Shape::Message(&[
    ("version", &Shape::Any),
    ("bindings", &Shape::List(&BINDING)),
    ("auditConfigs", &Shape::List(&AUDIT_CONFIG)),
    ("etag", &Shape::Any),
]);
/// `SetIamPolicyRequest`.
pub(crate) const SET_IAM_POLICY: Shape = Shape::Message(&[
    ("resource", &Shape::Any),
    ("policy", &POLICY),
    ("updateMask", &Shape::Any),
]);
/// `GetIamPolicyRequest` as a body (Resource Manager).
pub(crate) const GET_IAM_POLICY: Shape = Shape::Message(&[
    ("resource", &Shape::Any),
    (
        "options",
        &Shape::Message(&[("requestedPolicyVersion", &Shape::Any)]),
    ),
]);
/// A service account as a request body.
pub(crate) const SERVICE_ACCOUNT: Shape = Shape::Message(&[
    ("name", &Shape::Any),
    ("projectId", &Shape::Any),
    ("uniqueId", &Shape::Any),
    ("email", &Shape::Any),
    ("displayName", &Shape::Any),
    ("etag", &Shape::Any),
    ("description", &Shape::Any),
    ("oauth2ClientId", &Shape::Any),
    ("disabled", &Shape::Any),
]);
/// `CreateServiceAccountRequest`.
pub(crate) const CREATE_SERVICE_ACCOUNT: Shape = Shape::Message(&[
    ("name", &Shape::Any),
    ("accountId", &Shape::Any),
    ("serviceAccount", &SERVICE_ACCOUNT),
]);
/// `PatchServiceAccountRequest`.
pub(crate) const PATCH_SERVICE_ACCOUNT: Shape = Shape::Message(&[
    ("serviceAccount", &SERVICE_ACCOUNT),
    ("updateMask", &Shape::Any),
]);
/// A request without a body (`{}` is accepted, as the Rust clients send it on POST).
pub(crate) const EMPTY: Shape = Shape::Message(&[]);

/// One request, after the service prefix (`/gcp/iam`) was taken off its path.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) method: Method,
    /// Percent-decoded path segments (`["v1", "projects", "p", "serviceAccounts"]`).
    pub(crate) segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Bytes,
    pub(crate) headers: HeaderMap,
}

impl Call {
    /// Splits `uri`'s path after `prefix` into decoded segments and decodes its query.
    pub(crate) fn new(
        method: Method,
        uri: &Uri,
        prefix: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        let path = uri.path().strip_prefix(prefix).unwrap_or(uri.path());
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let query = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .unwrap_or_default();
        Self {
            method,
            segments,
            query,
            body,
            headers,
        }
    }

    /// The first value of a query parameter.
    /// A top-level string field of the JSON body, read leniently (for fault rules, before
    /// the body is checked).
    pub(crate) fn peek(&self, field: &str) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body.get(field)?.as_str().map(str::to_owned)
    }

    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked for enums as numbers (`$alt=json;enum-encoding=int`,
    /// which the google-cloud-rust clients send; gcloud asks for names).
    pub(crate) fn int_enums(&self) -> bool {
        self.query
            .iter()
            .filter(|(k, _)| k == "$alt" || k == "alt")
            .any(|(_, v)| v.split(';').any(|p| p.trim() == "enum-encoding=int"))
    }

    /// The JSON body as an object checked against `shape` (an empty body is `{}`).
    pub(crate) fn body(&self, shape: &Shape) -> Result<Map<String, Value>, GcpError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            GcpError::bad_payload(format!(
                "Invalid JSON payload received. Unexpected token. {e}"
            ))
        })?;
        let Value::Object(object) = value else {
            return Err(GcpError::bad_payload(
                "Invalid JSON payload received. Expected an object.",
            ));
        };
        check(&object, shape, "")?;
        Ok(object)
    }
}

/// `snake_case` to `camelCase` (proto field names to JSON names).
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn check(object: &Map<String, Value>, shape: &Shape, at: &str) -> Result<(), GcpError> {
    let Shape::Message(fields) = shape else {
        return Ok(());
    };
    for (key, value) in object {
        let name = camel(key);
        let Some((_, field)) = fields.iter().find(|(f, _)| *f == name) else {
            let location = if at.is_empty() {
                String::new()
            } else {
                format!(" at '{at}'")
            };
            return Err(GcpError::bad_payload(format!(
                "Invalid JSON payload received. Unknown name \"{key}\"{location}: Cannot find field."
            )));
        };
        let path = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}.{name}")
        };
        match (field, value) {
            (Shape::Message(_), Value::Object(inner)) => check(inner, field, &path)?,
            (Shape::List(item), Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    if let Value::Object(inner) = v {
                        check(inner, item, &format!("{path}[{i}]"))?;
                    }
                }
            }
            (Shape::List(_), v) if !v.is_null() => {
                return Err(GcpError::bad_payload(format!(
                    "Invalid value at '{path}', {v}: a list was expected."
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A field of a checked message by its JSON name, or by its proto name.
pub(crate) fn field<'a>(object: &'a Map<String, Value>, json_name: &str) -> Option<&'a Value> {
    object
        .get(json_name)
        .or_else(|| {
            object
                .iter()
                .find(|(k, _)| camel(k) == json_name)
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// A string field (absent or null is empty; a non-string is a 400).
pub(crate) fn string_field(
    object: &Map<String, Value>,
    json_name: &str,
    at: &str,
) -> Result<String, GcpError> {
    match field(object, json_name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(GcpError::bad_payload(format!(
            "Invalid value at '{at}{json_name}' (TYPE_STRING), {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(uri: &str, body: &str) -> Call {
        Call::new(
            Method::POST,
            &uri.parse().expect("uri"),
            "/gcp/iam",
            HeaderMap::new(),
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn paths_and_queries_are_decoded() {
        let c = call(
            "/gcp/iam/v1/projects/-/serviceAccounts/a%40p.iam.gserviceaccount.com%3AgetIamPolicy?%24alt=json%3Benum-encoding%3Dint&options.requestedPolicyVersion=3",
            "",
        );
        assert_eq!(
            c.segments,
            [
                "v1",
                "projects",
                "-",
                "serviceAccounts",
                "a@p.iam.gserviceaccount.com:getIamPolicy"
            ]
        );
        assert_eq!(c.query("options.requestedPolicyVersion"), Some("3"));
        assert!(c.int_enums());
        assert!(!call("/gcp/iam/v1?alt=json", "").int_enums());
    }

    #[test]
    fn unknown_names_are_rejected_where_they_are() {
        let c = call(
            "/",
            r#"{"policy":{"bindings":[{"role":"roles/viewer","members":[],"conditon":{}}]}}"#,
        );
        let err = c.body(&SET_IAM_POLICY).expect_err("unknown name");
        assert_eq!(
            err.message,
            "Invalid JSON payload received. Unknown name \"conditon\" at 'policy.bindings[0]': Cannot find field."
        );
        let c = call("/", r#"{"options":{"requestedPolicyVersion":3}}"#);
        let err = c.body(&EMPTY).expect_err("a body where none is taken");
        assert_eq!(
            err.message,
            "Invalid JSON payload received. Unknown name \"options\": Cannot find field."
        );
        assert!(call("/", "{}").body(&EMPTY).is_ok());
        assert!(call("/", "").body(&EMPTY).is_ok());
    }

    #[test]
    fn proto_names_are_accepted() {
        let c = call(
            "/",
            r#"{"account_id":"abcdef","service_account":{"display_name":"x"}}"#,
        );
        let body = c.body(&CREATE_SERVICE_ACCOUNT).expect("valid");
        assert_eq!(
            string_field(&body, "accountId", "").expect("string"),
            "abcdef"
        );
    }
}
