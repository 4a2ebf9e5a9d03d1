//! [`JsonText`]: a JSON value held as its compact text.
//!
//! A policy document parsed into a `serde_json::Value` is a tree of small maps, strings
//! and lists, each its own allocation: an IAM role's trust policy takes about 2.5 KB that
//! way and 300 bytes as text. A plan of thousands of roles holds one or two documents per
//! role from compile to the end of the run, and reads them only to compare them with what
//! the cloud returned (once per role), to write them (once), and to show the few that
//! change. So a provider may hold such a value as its text ([`AttrValue::Json`]), made
//! once from the normalized value, and everything else sees the value it stands for.
//!
//! [`AttrValue::Json`]: crate::AttrValue::Json

use std::fmt;
use std::io;

use serde::{Serialize, Serializer};
use serde_json::Value;

/// A JSON value as its compact text: what `serde_json::to_string` writes for it, made
/// by `serde_json` or by the writers here that write as it does (tests hold each to it),
/// so the text always parses and always equals the text of the value it stands for.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// The compact text of `value`.
    pub fn new(value: &Value) -> Self {
        // Written to bytes: the same text as `Value`'s `Display`, which goes through a
        // formatter call per token and costs several times more.
        let text = serde_json::to_string(value).expect("a JSON value always serializes");
        Self(text.into_boxed_str())
    }

    /// Text a provider wrote itself, exactly as `serde_json` writes the value it stands
    /// for, so that it equals (and hashes as) [`new`](Self::new) of that value; checked in
    /// debug builds. For documents of a fixed shape, written without building a tree.
    pub fn written(text: String) -> Self {
        debug_assert_eq!(
            serde_json::from_str::<Value>(&text)
                .map(|v| v.to_string())
                .ok()
                .as_deref(),
            Some(text.as_str()),
            "not JSON as serde_json writes it"
        );
        Self(text.into_boxed_str())
    }

    /// The list of `items`, in their order, written as [`new`](Self::new) would write
    /// it, without building it.
    pub fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Self {
        Self::joined(b'[', items, b']', quote)
    }

    /// The object of string `entries` (in their order, keys not repeated), written as
    /// [`new`](Self::new) would write it, without building it.
    pub fn string_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::joined(b'{', entries, b'}', |out, (key, value)| {
            quote(out, key);
            out.push(b':');
            quote(out, value);
        })
    }

    /// The object of `entries` (in their order, keys not repeated), written as
    /// [`new`](Self::new) would write it, from the entries' texts without parsing them.
    pub fn object<'a>(entries: impl IntoIterator<Item = (&'a str, &'a JsonText)>) -> Self {
        Self::joined(b'{', entries, b'}', |out, (key, value)| {
            quote(out, key);
            out.push(b':');
            out.extend_from_slice(value.0.as_bytes());
        })
    }

    /// `items` written by `each`, separated by commas, between `open` and `close`.
    fn joined<T>(
        open: u8,
        items: impl IntoIterator<Item = T>,
        close: u8,
        mut each: impl FnMut(&mut Vec<u8>, T),
    ) -> Self {
        let mut out = vec![open];
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            each(&mut out, item);
        }
        out.push(close);
        let text = String::from_utf8(out).expect("serde_json writes UTF-8");
        Self(text.into_boxed_str())
    }

    /// The text, as `serde_json` writes the value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value it stands for.
    pub fn value(&self) -> Value {
        // Written as serde_json writes, so it parses; a failure would be a bug here.
        serde_json::from_str(&self.0).expect("JsonText holds JSON as serde_json writes it")
    }

    /// Whether `value` is the value this text stands for, by `Value`'s equality (object
    /// keys in any order). Decided without parsing when `value` writes as exactly this
    /// text, as a value normalized the same way does.
    pub fn equals(&self, value: &Value) -> bool {
        let mut same = SamePrefix(self.0.as_bytes());
        let written = serde_json::to_writer(&mut same, value).is_ok();
        if written && same.0.is_empty() {
            return true;
        }
        self.value() == *value
    }
}

/// `s` as a JSON string, as serde_json writes it.
fn quote(out: &mut Vec<u8>, s: &str) {
    write_string(out, s, "");
}

/// Writes the JSON string of `head` followed by `tail`, as serde_json writes it, without
/// joining them first. Text that needs no escape (nearly all wid writes: names, ARNs,
/// issuers, subjects) is copied between quotes; other text goes through serde_json.
pub fn write_string(out: &mut Vec<u8>, head: &str, tail: &str) {
    // serde_json escapes `"`, `\` and the control characters below a space, nothing else.
    let verbatim = |s: &str| s.bytes().all(|b| b >= b' ' && b != b'"' && b != b'\\');
    if verbatim(head) && verbatim(tail) {
        out.reserve(head.len() + tail.len() + 2);
        out.push(b'"');
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(tail.as_bytes());
        out.push(b'"');
    } else if tail.is_empty() {
        serde_json::to_writer(out, head).expect("writing to memory cannot fail");
    } else {
        serde_json::to_writer(out, &format!("{head}{tail}"))
            .expect("writing to memory cannot fail");
    }
}

/// A writer that accepts only what `self.0` starts with, consuming it.
struct SamePrefix<'a>(&'a [u8]);

impl io::Write for SamePrefix<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.strip_prefix(buf) {
            Some(rest) => {
                self.0 = rest;
                Ok(buf.len())
            }
            None => Err(io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serialized as the value it stands for, so a document reads the same whichever way
/// it was held.
impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_to_the_value_it_was_made_from_in_any_key_order() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"]}], "Version": "2012-10-17"});
        let text = JsonText::new(&doc);
        assert_eq!(text.as_str(), doc.to_string());
        assert!(text.equals(&doc));
        assert_eq!(text.value(), doc);
        let reordered = json!({"Version": "2012-10-17", "Statement": [{"Action": ["s3:GetObject"], "Effect": "Allow"}]});
        assert!(text.equals(&reordered), "object keys in another order");
        for other in [
            json!({"Version": "2012-10-17"}),
            json!({"Statement": [{"Effect": "Deny", "Action": ["s3:GetObject"]}], "Version": "2012-10-17"}),
            json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"]}], "Version": "2012-10-17", "Id": "x"}),
            json!(null),
            json!("{\"Statement\":[]}"),
        ] {
            assert!(!text.equals(&other), "{other}");
        }
    }

    #[test]
    fn an_object_of_texts_is_the_text_of_the_object() {
        let a = json!({"Statement": [{"Effect": "Allow"}]});
        let b = json!([1, "x\"y"]);
        let (ta, tb) = (JsonText::new(&a), JsonText::new(&b));
        let built = JsonText::object([("a", &ta), ("b \"quoted\"\n", &tb)]);
        let want = json!({"a": a, "b \"quoted\"\n": b});
        assert_eq!(built, JsonText::new(&want));
        assert_eq!(built.value(), want);
        assert_eq!(JsonText::object([]), JsonText::new(&json!({})));
    }

    #[test]
    fn lists_and_maps_of_strings_are_written_as_their_values_are() {
        let odd = "q\"uote \\ \n \u{1} é 🦀";
        assert_eq!(
            JsonText::strings(["a", odd]),
            JsonText::new(&json!(["a", odd]))
        );
        assert_eq!(JsonText::strings([]), JsonText::new(&json!([])));
        assert_eq!(
            JsonText::string_map([("a", odd), (odd, "b")]),
            JsonText::new(&json!({"a": odd, odd: "b"}))
        );
        assert_eq!(
            JsonText::string_map([]).as_str(),
            JsonText::new(&json!({})).as_str()
        );
    }

    #[test]
    fn serialized_as_the_value() {
        let doc = json!({"b": [1, 2.5, "x"], "a": {"c": null}});
        assert_eq!(
            serde_json::to_value(JsonText::new(&doc)).unwrap(),
            doc,
            "the same JSON, not a string of it"
        );
        assert_eq!(format!("{:?}", JsonText::new(&json!([1]))), "[1]");
    }
}
