//! Non-apply patches: JSON merge patch (RFC 7386; strategic merge patches are treated as
//! merge patches, which is exact for the kinds wid writes) and JSON patch (RFC 6902).

use serde_json::Value;

use super::status::ApiError;

/// Applies an RFC 7386 merge patch: objects merge key by key, `null` deletes, anything
/// else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies a strategic merge patch as a merge patch, dropping its `$`-directives
/// (`$patch`, `$retainKeys`, `$setElementOrder/...`), which only matter for merging lists
/// by key.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    merge_patch(target, &strip_directives(patch));
}

fn strip_directives(patch: &Value) -> Value {
    match patch {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies an RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`).
/// A failed operation leaves `target` unchanged.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops = patch.as_array().ok_or_else(|| {
        ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    })?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = op["path"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request(format!("missing path in operation {op}")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("missing value in operation {op}")))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request(format!("missing from in operation {op}")))
        };
        match kind {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, from()?)?;
                add(&mut doc, path, moved)?;
            }
            "copy" => {
                let copied = doc
                    .pointer(&pointer(from()?)?)
                    .cloned()
                    .ok_or_else(|| missing(from().unwrap_or_default()))?;
                add(&mut doc, path, copied)?;
            }
            "test" => {
                if doc.pointer(&pointer(path)?) != Some(&value()?) {
                    return Err(ApiError::bad_request(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!("Unexpected kind: {other}")));
            }
        }
    }
    *target = doc;
    Ok(())
}

fn missing(path: &str) -> ApiError {
    ApiError::bad_request(format!(
        "the server rejected our request due to an error in our request: doc is missing path: \"{path}\""
    ))
}

/// Validates a JSON pointer (it must be empty or start with `/`).
fn pointer(path: &str) -> Result<String, ApiError> {
    if path.is_empty() || path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid JSON pointer: {path}"
        )))
    }
}

/// Splits a pointer into its parent pointer and its unescaped last token.
fn split_last(path: &str) -> Result<(String, String), ApiError> {
    let path = pointer(path)?;
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| ApiError::bad_request("cannot operate on the document root"))?;
    Ok((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, key) = split_last(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            let index = if key == "-" {
                list.len()
            } else {
                key.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= list.len())
                    .ok_or_else(|| missing(path))?
            };
            list.insert(index, value);
            Ok(())
        }
        _ => Err(missing(path)),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent, key) = split_last(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&key).ok_or_else(|| missing(path)),
        Some(Value::Array(list)) => {
            let index = key
                .parse::<usize>()
                .ok()
                .filter(|i| *i < list.len())
                .ok_or_else(|| missing(path))?;
            Ok(list.remove(index))
        }
        _ => Err(missing(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_examples() {
        // The examples of RFC 7386 appendix A.
        for (target, patch, result) in [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ] {
            let mut doc = target.clone();
            merge_patch(&mut doc, &patch);
            assert_eq!(doc, result, "{target} + {patch}");
        }
    }

    #[test]
    fn strategic_merge_drops_directives() {
        let mut doc = json!({"metadata": {"labels": {"a": "1"}}});
        strategic_merge_patch(
            &mut doc,
            &json!({"metadata": {"labels": {"b": "2", "$patch": "merge"}}}),
        );
        assert_eq!(doc, json!({"metadata": {"labels": {"a": "1", "b": "2"}}}));
    }

    #[test]
    fn json_patch_operations() {
        let mut doc = json!({"metadata": {"labels": {"a/b": "1"}}, "list": [1, 3]});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/list/1", "value": 2},
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "replace", "path": "/metadata/labels/a~1b", "value": "x"},
                {"op": "add", "path": "/automountServiceAccountToken", "value": false},
                {"op": "test", "path": "/list/0", "value": 1},
                {"op": "copy", "from": "/list/0", "path": "/first"},
                {"op": "move", "from": "/first", "path": "/moved"},
                {"op": "remove", "path": "/list/3"},
            ]),
        )
        .expect("valid patch");
        assert_eq!(
            doc,
            json!({
                "metadata": {"labels": {"a/b": "x"}},
                "list": [1, 2, 3],
                "automountServiceAccountToken": false,
                "moved": 1,
            })
        );
    }

    #[test]
    fn failed_json_patch_changes_nothing() {
        let mut doc = json!({"a": 1});
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/b", "value": 2},
                {"op": "remove", "path": "/missing"},
            ]),
        )
        .expect_err("missing path");
        assert_eq!(err.code, 400);
        assert_eq!(doc, json!({"a": 1}));
        let err = json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 2}]))
            .expect_err("test fails");
        assert!(err.message.contains("test failed"));
    }
}
