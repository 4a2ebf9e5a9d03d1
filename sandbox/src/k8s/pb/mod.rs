//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's typed
//! clients send for `create serviceaccount|namespace|role|rolebinding|clusterrole|
//! clusterrolebinding|configmap|secret|deployment|job|cronjob|token`, `auth can-i` and
//! `auth whoami` (API-NOTES §4.5).
//!
//! A body is the magic `k8s\0` then a `runtime.Unknown` envelope whose `typeMeta` names the
//! kind and whose `raw` is the message. The message is decoded with k8s-pb's generated
//! types and turned into the JSON the same object would have been sent as, so everything
//! after decoding is shared with JSON bodies. [`generated`] holds the JSON form of every
//! message a served kind reaches (written by `gen.py`); the few messages with a JSON form
//! of their own (times, quantities, int-or-string, raw JSON) are below.
//!
//! Go writes every non-pointer field, so a decoded message has `Some("")`, `Some(false)`
//! and `Some(0)` where the JSON had nothing. The generated code knows, from the Go types,
//! which fields are pointers (`*bool`: a set `false` is kept) and which are values with
//! `omitempty` (`bool`: Go leaves `false` out of JSON), and wraps the latter in
//! [`OmitZero`].

mod generated;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_pb as pb;
use prost::Message;
use serde_json::{Map, Value, json};

/// The Content-Type of a protobuf body.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic k8s\\0")]
    Magic,
    /// The envelope or the message is not valid protobuf.
    #[error("protobuf body could not be decoded: {0}")]
    Wire(String),
    /// The envelope's raw bytes are compressed or otherwise encoded.
    #[error("protobuf body has content encoding {0:?}, which is not supported")]
    Encoding(String),
    /// The envelope names a kind this server does not decode.
    #[error("no protobuf decoding for kind {kind} of {api_version}")]
    Kind {
        /// `typeMeta.apiVersion`.
        api_version: String,
        /// `typeMeta.kind`.
        kind: String,
    },
}

/// The JSON form of a decoded message or field.
pub trait ToJson {
    /// The value.
    fn json(&self) -> Value;

    /// Whether the field is left out of its object: Go's `omitempty` for strings, lists
    /// and maps, and absent optional fields.
    fn omitted(&self) -> bool {
        false
    }
}

/// Values Go's `omitempty` (or `omitzero`) leaves out of JSON.
pub trait IsZero {
    /// Whether this is the zero value.
    fn is_zero(&self) -> bool;
}

impl IsZero for String {
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl IsZero for bool {
    fn is_zero(&self) -> bool {
        !*self
    }
}

macro_rules! numeric_zero {
    ($($ty:ty),*) => {$(
        impl IsZero for $ty {
            fn is_zero(&self) -> bool {
                *self == <$ty>::default()
            }
        }
    )*};
}
numeric_zero!(i32, i64, u32, u64, f32, f64);

/// A value field with `omitempty`: left out when absent or zero.
pub struct OmitZero<'a, T>(pub &'a Option<T>);

impl<T: ToJson + IsZero> ToJson for OmitZero<'_, T> {
    fn json(&self) -> Value {
        self.0.json()
    }
    fn omitted(&self) -> bool {
        self.0.as_ref().is_none_or(IsZero::is_zero)
    }
}

/// An object of the fields not [`ToJson::omitted`]; a field named `""` is a Go struct
/// embedded inline, whose fields are merged in.
pub(crate) fn object(fields: &[(&str, &dyn ToJson)]) -> Value {
    let mut map = Map::new();
    for (name, value) in fields {
        if value.omitted() {
            continue;
        }
        match (name.is_empty(), value.json()) {
            (true, Value::Object(inline)) => map.extend(inline),
            (_, json) => {
                map.insert((*name).to_owned(), json);
            }
        }
    }
    Value::Object(map)
}

impl ToJson for String {
    fn json(&self) -> Value {
        json!(self)
    }
}

macro_rules! plain {
    ($($ty:ty),*) => {$(
        impl ToJson for $ty {
            fn json(&self) -> Value {
                json!(self)
            }
        }
    )*};
}
plain!(bool, i32, i64, u32, u64, f32, f64);

/// Bytes are base64 in JSON (Secret `data`, ConfigMap `binaryData`).
impl ToJson for Vec<u8> {
    fn json(&self) -> Value {
        json!(STANDARD.encode(self))
    }
    fn omitted(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::json)
    }
    fn omitted(&self) -> bool {
        self.is_none()
    }
}

/// A list keeps every element, empty strings included.
impl<T: ToJson> ToJson for Vec<T> {
    fn json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::json).collect())
    }
    fn omitted(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson> ToJson for BTreeMap<String, T> {
    fn json(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.clone(), v.json())).collect())
    }
    fn omitted(&self) -> bool {
        self.is_empty()
    }
}

fn utc(seconds: i64, nanos: i32) -> Option<time::OffsetDateTime> {
    let at = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    Some(at + time::Duration::nanoseconds(i64::from(nanos)))
}

/// `metav1.Time`: RFC 3339 in whole seconds, UTC; Go writes the zero time as an empty
/// message and JSON as `null`.
impl ToJson for pb::apimachinery::pkg::apis::meta::v1::Time {
    fn json(&self) -> Value {
        let Self { seconds, nanos } = self;
        if self.is_zero() {
            return Value::Null;
        }
        utc(seconds.unwrap_or(0), nanos.unwrap_or(0))
            .map_or(Value::Null, |at| json!(super::store::rfc3339(at)))
    }
}

impl IsZero for pb::apimachinery::pkg::apis::meta::v1::Time {
    fn is_zero(&self) -> bool {
        self.seconds.is_none() && self.nanos.is_none()
    }
}

/// `metav1.MicroTime`: RFC 3339 with microseconds, UTC.
impl ToJson for pb::apimachinery::pkg::apis::meta::v1::MicroTime {
    fn json(&self) -> Value {
        let Self { seconds, nanos } = self;
        if self.is_zero() {
            return Value::Null;
        }
        let Some(at) = utc(seconds.unwrap_or(0), nanos.unwrap_or(0)) else {
            return Value::Null;
        };
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        at.format(&format).map_or(Value::Null, |s| json!(s))
    }
}

impl IsZero for pb::apimachinery::pkg::apis::meta::v1::MicroTime {
    fn is_zero(&self) -> bool {
        self.seconds.is_none() && self.nanos.is_none()
    }
}

/// `metav1.Duration`: Go's duration text (`1h0m0s`, `30s`, `1.5s`).
impl ToJson for pb::apimachinery::pkg::apis::meta::v1::Duration {
    fn json(&self) -> Value {
        let Self { duration } = self;
        json!(go_duration(duration.unwrap_or(0)))
    }
}

/// Go's `time.Duration.String()` for whole and fractional seconds.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let total = nanos.unsigned_abs();
    if total < 1_000_000_000 {
        let (unit, div) = match total {
            n if n < 1_000 => ("ns", 1),
            n if n < 1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", trim_fraction(total, div));
    }
    let hours = total / 3_600_000_000_000;
    let minutes = total / 60_000_000_000 % 60;
    let seconds = trim_fraction(total % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `value / div` with its fraction, trailing zeros trimmed (`1500, 1000` → `1.5`).
fn trim_fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let fraction = value % div;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Raw JSON carried as bytes: the value itself (base64 if it is not JSON).
fn raw_json(raw: Option<&Vec<u8>>) -> Value {
    let raw = raw.map(Vec::as_slice).unwrap_or_default();
    if raw.is_empty() {
        return json!({});
    }
    serde_json::from_slice(raw).unwrap_or_else(|_| json!(STANDARD.encode(raw)))
}

/// `metav1.FieldsV1`: its raw JSON.
impl ToJson for pb::apimachinery::pkg::apis::meta::v1::FieldsV1 {
    fn json(&self) -> Value {
        let Self { raw } = self;
        raw_json(raw.as_ref())
    }
}

/// `runtime.RawExtension`: its raw JSON.
impl ToJson for pb::apimachinery::pkg::runtime::RawExtension {
    fn json(&self) -> Value {
        let Self { raw } = self;
        raw_json(raw.as_ref())
    }
}

/// `intstr.IntOrString`: a number (type 0) or a string (type 1).
impl ToJson for pb::apimachinery::pkg::util::intstr::IntOrString {
    fn json(&self) -> Value {
        let Self {
            r#type,
            int_val,
            str_val,
        } = self;
        match r#type {
            Some(1) => json!(str_val.clone().unwrap_or_default()),
            _ => json!(int_val.unwrap_or(0)),
        }
    }
}

/// `resource.Quantity`: its canonical text.
impl ToJson for pb::apimachinery::pkg::api::resource::Quantity {
    fn json(&self) -> Value {
        let Self { string } = self;
        json!(string.clone().unwrap_or_default())
    }
}

/// `ExtraValue` (`[]string` in Go): a plain list.
impl ToJson for pb::api::authentication::v1::ExtraValue {
    fn json(&self) -> Value {
        let Self { items } = self;
        items.json()
    }
}

/// `ExtraValue` (`[]string` in Go): a plain list.
impl ToJson for pb::api::authorization::v1::ExtraValue {
    fn json(&self) -> Value {
        let Self { items } = self;
        items.json()
    }
}

fn message<M: Message + Default + ToJson>(raw: &[u8]) -> Result<Value, DecodeError> {
    M::decode(raw)
        .map(|m| m.json())
        .map_err(|e| DecodeError::Wire(e.to_string()))
}

/// Decodes one message of `kind` in `api_version` into its JSON form.
fn decode_kind(api_version: &str, kind: &str, raw: &[u8]) -> Result<Value, DecodeError> {
    use pb::api::{apps, authentication, authorization, batch, core, rbac};
    use pb::apimachinery::pkg::apis::meta;
    match (api_version, kind) {
        ("v1", "ServiceAccount") => message::<core::v1::ServiceAccount>(raw),
        ("v1", "Namespace") => message::<core::v1::Namespace>(raw),
        ("v1", "ConfigMap") => message::<core::v1::ConfigMap>(raw),
        ("v1", "Secret") => message::<core::v1::Secret>(raw),
        ("v1", "Pod") => message::<core::v1::Pod>(raw),
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => message::<meta::v1::DeleteOptions>(raw),
        ("apps/v1", "Deployment") => message::<apps::v1::Deployment>(raw),
        ("apps/v1", "ReplicaSet") => message::<apps::v1::ReplicaSet>(raw),
        ("apps/v1", "DaemonSet") => message::<apps::v1::DaemonSet>(raw),
        ("apps/v1", "StatefulSet") => message::<apps::v1::StatefulSet>(raw),
        ("batch/v1", "Job") => message::<batch::v1::Job>(raw),
        ("batch/v1", "CronJob") => message::<batch::v1::CronJob>(raw),
        ("rbac.authorization.k8s.io/v1", "Role") => message::<rbac::v1::Role>(raw),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => message::<rbac::v1::RoleBinding>(raw),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => message::<rbac::v1::ClusterRole>(raw),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            message::<rbac::v1::ClusterRoleBinding>(raw)
        }
        ("authentication.k8s.io/v1", "TokenRequest") => {
            message::<authentication::v1::TokenRequest>(raw)
        }
        ("authentication.k8s.io/v1", "TokenReview") => {
            message::<authentication::v1::TokenReview>(raw)
        }
        ("authentication.k8s.io/v1", "SelfSubjectReview") => {
            message::<authentication::v1::SelfSubjectReview>(raw)
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            message::<authorization::v1::SelfSubjectAccessReview>(raw)
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => {
            message::<authorization::v1::SelfSubjectRulesReview>(raw)
        }
        ("authorization.k8s.io/v1", "SubjectAccessReview") => {
            message::<authorization::v1::SubjectAccessReview>(raw)
        }
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview") => {
            message::<authorization::v1::LocalSubjectAccessReview>(raw)
        }
        _ => Err(DecodeError::Kind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        }),
    }
}

/// Decodes a protobuf request body into the JSON document it stands for, `apiVersion`
/// and `kind` first.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let envelope = body.strip_prefix(b"k8s\0").ok_or(DecodeError::Magic)?;
    let unknown = pb::apimachinery::pkg::runtime::Unknown::decode(envelope)
        .map_err(|e| DecodeError::Wire(e.to_string()))?;
    let pb::apimachinery::pkg::runtime::Unknown {
        type_meta,
        raw,
        content_encoding,
        content_type: _,
    } = unknown;
    if let Some(encoding) = content_encoding.filter(|e| !e.is_empty()) {
        return Err(DecodeError::Encoding(encoding));
    }
    let type_meta = type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let fields = decode_kind(&api_version, &kind, raw.as_deref().unwrap_or_default())?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    if let Value::Object(fields) = fields {
        out.extend(fields);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests;
