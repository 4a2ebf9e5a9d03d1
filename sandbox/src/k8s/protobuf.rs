//! Decoding of the one protobuf body the emulator receives: kubectl's TokenRequest
//! (`kubectl create token` sends `application/vnd.kubernetes.protobuf`, API-NOTES §4.5).
//!
//! The body is the magic `k8s\0` then a `runtime.Unknown` {1: typeMeta {1 apiVersion,
//! 2 kind}, 2: raw, 3: contentEncoding, 4: contentType}; `raw` is the TokenRequest
//! {1 metadata {1 name, 3 namespace}, 2 spec {1 audiences, 3 boundObjectRef {1 kind,
//! 2 apiVersion, 3 name, 4 uid}, 4 expirationSeconds}, 3 status}. Hand-decoded (varints and
//! length-delimited fields) rather than pulling in a protobuf code generator for five
//! fields.

use serde_json::{Map, Value, json};

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic k8s\\0")]
    Magic,
    /// A varint or length runs past the end.
    #[error("protobuf body is truncated")]
    Truncated,
    /// A wire type this decoder does not know (groups).
    #[error("unsupported protobuf wire type {0}")]
    WireType(u64),
    /// A string field is not UTF-8.
    #[error("protobuf string field is not UTF-8")]
    Utf8,
    /// The envelope holds another kind.
    #[error("expected an authentication.k8s.io/v1 TokenRequest, got {0}")]
    WrongKind(String),
}

/// One field's payload.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Truncated)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next `(field number, payload)`, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Wire<'a>)>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            other => return Err(DecodeError::WireType(other)),
        };
        Ok(Some((tag >> 3, wire)))
    }
}

/// Visits every field of a message.
fn fields<'a>(
    buf: &'a [u8],
    mut visit: impl FnMut(u64, Wire<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut reader = Reader { buf };
    while let Some((number, wire)) = reader.field()? {
        visit(number, wire)?;
    }
    Ok(())
}

fn text(bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8)
}

/// Reads the string fields of a message into JSON keys by field number.
fn strings(buf: &[u8], names: &[(u64, &str)]) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    fields(buf, |number, wire| {
        if let (Some((_, name)), Wire::Bytes(b)) = (names.iter().find(|(n, _)| *n == number), wire)
        {
            out.insert((*name).to_owned(), json!(text(b)?));
        }
        Ok(())
    })?;
    Ok(out)
}

fn decode_spec(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut audiences = Vec::new();
    let mut spec = Map::new();
    fields(buf, |number, wire| {
        match (number, wire) {
            (1, Wire::Bytes(b)) => audiences.push(json!(text(b)?)),
            (3, Wire::Bytes(b)) => {
                let names = [(1, "kind"), (2, "apiVersion"), (3, "name"), (4, "uid")];
                spec.insert("boundObjectRef".into(), Value::Object(strings(b, &names)?));
            }
            // int64 on the wire is the two's complement varint.
            (4, Wire::Varint(v)) => {
                spec.insert("expirationSeconds".into(), json!(v as i64));
            }
            _ => {}
        }
        Ok(())
    })?;
    spec.insert("audiences".into(), Value::Array(audiences));
    Ok(Value::Object(spec))
}

/// Decodes kubectl's protobuf TokenRequest into its JSON form
/// (`{"apiVersion","kind","metadata":{...},"spec":{...}}`).
pub fn decode_token_request(body: &[u8]) -> Result<Value, DecodeError> {
    let envelope = body.strip_prefix(b"k8s\0").ok_or(DecodeError::Magic)?;
    let mut type_meta = Map::new();
    let mut raw: &[u8] = &[];
    fields(envelope, |number, wire| {
        match (number, wire) {
            (1, Wire::Bytes(b)) => type_meta = strings(b, &[(1, "apiVersion"), (2, "kind")])?,
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
        Ok(())
    })?;
    let api_version = type_meta
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = type_meta
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != "authentication.k8s.io/v1" || kind != "TokenRequest" {
        return Err(DecodeError::WrongKind(format!("{kind} of {api_version}")));
    }
    let mut request = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {},
        "spec": { "audiences": [] },
    });
    fields(raw, |number, wire| {
        match (number, wire) {
            (1, Wire::Bytes(b)) => {
                request["metadata"] = Value::Object(strings(b, &[(1, "name"), (3, "namespace")])?);
            }
            (2, Wire::Bytes(b)) => request["spec"] = decode_spec(b)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut type_meta = Vec::new();
        bytes_field(1, api_version.as_bytes(), &mut type_meta);
        bytes_field(2, kind.as_bytes(), &mut type_meta);
        let mut body = b"k8s\0".to_vec();
        bytes_field(1, &type_meta, &mut body);
        bytes_field(2, raw, &mut body);
        bytes_field(3, b"", &mut body);
        bytes_field(4, b"", &mut body);
        body
    }

    /// The bytes `kubectl create token app --duration 10m --audience https://example.com
    /// --audience sts.amazonaws.com --bound-object-kind Pod --bound-object-name web`
    /// would send, built field by field.
    fn kubectl_body() -> Vec<u8> {
        let mut bound = Vec::new();
        bytes_field(1, b"Pod", &mut bound);
        bytes_field(2, b"v1", &mut bound);
        bytes_field(3, b"web", &mut bound);
        let mut spec = Vec::new();
        bytes_field(1, b"https://example.com", &mut spec);
        bytes_field(1, b"sts.amazonaws.com", &mut spec);
        bytes_field(3, &bound, &mut spec);
        varint(4 << 3, &mut spec);
        varint(600, &mut spec);
        let mut meta = Vec::new();
        bytes_field(1, b"app", &mut meta);
        let mut raw = Vec::new();
        bytes_field(1, &meta, &mut raw);
        bytes_field(2, &spec, &mut raw);
        bytes_field(3, b"", &mut raw);
        envelope("authentication.k8s.io/v1", "TokenRequest", &raw)
    }

    #[test]
    fn decodes_kubectls_token_request() {
        let request = decode_token_request(&kubectl_body()).expect("decodes");
        assert_eq!(
            request,
            json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "metadata": { "name": "app" },
                "spec": {
                    "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "web" },
                    "expirationSeconds": 600,
                    "audiences": ["https://example.com", "sts.amazonaws.com"],
                },
            })
        );
    }

    #[test]
    fn empty_spec_has_no_expiration() {
        let body = envelope("authentication.k8s.io/v1", "TokenRequest", &[]);
        let request = decode_token_request(&body).expect("decodes");
        assert_eq!(request["spec"], json!({ "audiences": [] }));
    }

    #[test]
    fn rejects_bad_bodies() {
        assert_eq!(decode_token_request(b"{}"), Err(DecodeError::Magic));
        let body = kubectl_body();
        assert_eq!(
            decode_token_request(&body[..body.len() - 3]),
            Err(DecodeError::Truncated)
        );
        let other = envelope("v1", "Pod", &[]);
        assert!(matches!(
            decode_token_request(&other),
            Err(DecodeError::WrongKind(_))
        ));
    }
}
