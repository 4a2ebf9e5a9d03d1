//! Reading a sandbox directory's whole state and comparing two readings, so a test can
//! prove what a run changed and what it left alone.

use std::path::Path;

use serde_json::Value;

/// The state of the sandbox in `dir` as its last owner left it (`state.json`; `null` when
/// there is none). While another process holds the directory, this may lag its last
/// changes by a fraction of a second; read it after that process stops.
pub fn read_state(dir: &Path) -> std::io::Result<Value> {
    Ok(crate::persist::read_json(&dir.join("state.json"))?.unwrap_or(Value::Null))
}

/// One difference between two JSON documents.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonChange {
    /// Where, as a JSON Pointer (`/aws/accounts/111122223333/roles/orders-prod/tags`).
    pub path: String,
    /// The value before; `None` when it was added.
    pub before: Option<Value>,
    /// The value after; `None` when it was removed.
    pub after: Option<Value>,
}

/// Every difference between `before` and `after`, deepest first where both sides are
/// objects (or arrays) and as whole values elsewhere; in document order.
pub fn json_diff(before: &Value, after: &Value) -> Vec<JsonChange> {
    let mut out = Vec::new();
    diff(before, after, &mut String::new(), &mut out);
    out
}

fn diff(before: &Value, after: &Value, path: &mut String, out: &mut Vec<JsonChange>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(x, y, path, out),
                    (x, y) => out.push(JsonChange {
                        path: path.clone(),
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff(x, y, path, out),
                    (x, y) => out.push(JsonChange {
                        path: path.clone(),
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                }
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(JsonChange {
            path: path.clone(),
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_listed_by_pointer() {
        let before = json!({"a": {"x": 1, "y/z": [1, 2]}, "gone": true, "same": "s"});
        let after = json!({"a": {"x": 2, "y/z": [1, 2, 3]}, "new": null, "same": "s"});
        let changes = json_diff(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/a/x", "/a/y~1z/2", "/gone", "/new"]);
        assert_eq!(changes[0].before, Some(json!(1)));
        assert_eq!(changes[1].before, None);
        assert_eq!(changes[2].after, None);
        assert_eq!(changes[3].after, Some(Value::Null));
        assert!(json_diff(&after, &after).is_empty());
    }

    #[test]
    fn a_directory_without_state_reads_as_null() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_state(dir.path()).expect("read"), Value::Null);
    }
}
