//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Ownership is tracked at the granularity wid and kubectl need: each top-level field
//! (`automountServiceAccountToken`, `rules`, `roleRef`, `spec`: nested maps and lists are
//! one atomic field), each `metadata.labels` and `metadata.annotations` key, and the other
//! user-settable metadata fields (`finalizers`, `ownerReferences`) as atomic fields. The
//! real server tracks every leaf; this coarser model gives the same answers for the
//! fields wid writes and errs towards reporting a conflict for deeper ones.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::status::ApiError;

/// A field: `["automountServiceAccountToken"]`, `["metadata", "labels", "app"]`.
pub type FieldPath = Vec<String>;

/// A set of fields.
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata the server owns or that identifies the object, never tracked.
const UNTRACKED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Whether `operation` is `Apply` (server-side apply) or `Update` (any other write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// POST, PUT or a non-apply PATCH.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// The field manager name.
    pub name: String,
    /// Apply or Update; `(name, operation)` identifies the entry.
    pub operation: Operation,
    /// The API version the manager wrote with.
    pub api_version: String,
    /// When it last changed its fields (RFC 3339).
    pub time: String,
    /// The fields it owns.
    pub fields: FieldSet,
}

impl Manager {
    /// How conflicts name this manager: `"kubectl"` for an applier,
    /// `"kubectl-patch" using v1` for an updater (as the real server prints it).
    fn display(&self) -> String {
        match self.operation {
            Operation::Apply => format!("{:?}", self.name),
            Operation::Update => format!("{:?} using {}", self.name, self.api_version),
        }
    }
}

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager, as printed (`"kubectl-patch" using v1`).
    pub manager: String,
    /// The field, as printed (`.automountServiceAccountToken`).
    pub field: String,
}

/// The fields an object (or an applied configuration) sets.
pub fn fields_of(object: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = object.as_object() else {
        return set;
    };
    for (key, value) in map {
        if value.is_null() || matches!(key.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        if key != "metadata" {
            set.insert(vec![key.clone()]);
            continue;
        }
        for (meta_key, meta_value) in value.as_object().into_iter().flatten() {
            if meta_value.is_null() || UNTRACKED_METADATA.contains(&meta_key.as_str()) {
                continue;
            }
            if matches!(meta_key.as_str(), "labels" | "annotations") {
                for (k, v) in meta_value.as_object().into_iter().flatten() {
                    if !v.is_null() {
                        set.insert(vec!["metadata".into(), meta_key.clone(), k.clone()]);
                    }
                }
            } else {
                set.insert(vec!["metadata".into(), meta_key.clone()]);
            }
        }
    }
    set
}

/// The value at a field, if set.
pub fn get<'a>(object: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn set(object: &mut Value, path: &FieldPath, value: Value) {
    let mut cursor = object;
    for key in path {
        if !cursor.is_object() {
            *cursor = Value::Object(Map::new());
        }
        let Value::Object(map) = cursor else {
            return;
        };
        cursor = map.entry(key.clone()).or_insert(Value::Null);
    }
    *cursor = value;
}

fn remove(object: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(Value::Object(map)) = parents.iter().try_fold(&mut *object, |v, k| v.get_mut(k))
    else {
        return;
    };
    map.remove(last);
    // An emptied label or annotation map disappears, as it does on the real server.
    if map.is_empty()
        && parents.len() == 2
        && let Some(Value::Object(meta)) = object.get_mut(&parents[0])
    {
        meta.remove(&parents[1]);
    }
}

/// `.metadata.labels.app`, as conflicts print a field.
pub fn path_string(path: &FieldPath) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// Encodes a field set as `FieldsV1` (`{"f:metadata":{"f:labels":{"f:app":{}}}}`).
pub fn to_fields_v1(fields: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in fields {
        let keyed: FieldPath = path.iter().map(|p| format!("f:{p}")).collect();
        set(&mut root, &keyed, json!({}));
    }
    root
}

/// Decodes `FieldsV1` written by [`to_fields_v1`] (ignoring `.` self-markers).
pub fn from_fields_v1(value: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix("f:").map(str::to_owned))
            .collect()
    };
    for top in keys(value) {
        if top != "metadata" {
            set.insert(vec![top]);
            continue;
        }
        let meta = &value["f:metadata"];
        for meta_key in keys(meta) {
            if matches!(meta_key.as_str(), "labels" | "annotations") {
                for key in keys(&meta[format!("f:{meta_key}")]) {
                    set.insert(vec!["metadata".into(), meta_key.clone(), key]);
                }
            } else {
                set.insert(vec!["metadata".into(), meta_key]);
            }
        }
    }
    set
}

/// Reads `metadata.managedFields`.
pub fn read_managers(object: &Value) -> Vec<Manager> {
    let entries = object["metadata"]["managedFields"].as_array();
    entries
        .into_iter()
        .flatten()
        .map(|e| Manager {
            name: e["manager"].as_str().unwrap_or_default().to_owned(),
            operation: if e["operation"] == "Apply" {
                Operation::Apply
            } else {
                Operation::Update
            },
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
            time: e["time"].as_str().unwrap_or_default().to_owned(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Writes `metadata.managedFields` (removing it when no manager is left).
pub fn write_managers(object: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            json!({
                "manager": m.name,
                "operation": m.operation.as_str(),
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&m.fields),
            })
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (`{}` when the object does not
/// exist yet), updating `managers`. Returns the new object, or the conflicts when another
/// manager owns a field this apply would change and `force` is off.
pub fn apply(
    live: &Value,
    managers: &mut Vec<Manager>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let applied_fields = fields_of(applied);
    let is_me = |m: &Manager| m.name == manager && m.operation == Operation::Apply;
    let mut next = managers.clone();
    let mut conflicts = Vec::new();
    for path in &applied_fields {
        if get(live, path) == get(applied, path) {
            // The same value as the live one: ownership is shared, never a conflict.
            continue;
        }
        for other in next.iter_mut().filter(|m| !is_me(m)) {
            if other.fields.contains(path) {
                if force {
                    other.fields.remove(path);
                } else {
                    conflicts.push(Conflict {
                        manager: other.display(),
                        field: path_string(path),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let previous = next
        .iter()
        .find(|m| is_me(m))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    let mut object = live.clone();
    for path in previous.difference(&applied_fields) {
        let owned_elsewhere = next.iter().any(|m| !is_me(m) && m.fields.contains(path));
        if !owned_elsewhere {
            remove(&mut object, path);
        }
    }
    for path in &applied_fields {
        if let Some(value) = get(applied, path) {
            set(&mut object, path, value.clone());
        }
    }
    match next.iter_mut().find(|m| is_me(m)) {
        // A no-op apply keeps the entry's time, so the object does not change at all.
        Some(entry) if entry.fields == applied_fields => {}
        Some(entry) => {
            entry.fields = applied_fields;
            entry.time = now.to_owned();
            entry.api_version = api_version.to_owned();
        }
        None => next.push(Manager {
            name: manager.to_owned(),
            operation: Operation::Apply,
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            fields: applied_fields,
        }),
    }
    next.retain(|m| !m.fields.is_empty());
    *managers = next;
    Ok(object)
}

/// Records a non-apply write from `old` to `new` by `manager`: it takes ownership of the
/// fields it changed, and fields it changed or removed leave every other manager's set.
pub fn record_update(
    old: &Value,
    new: &Value,
    managers: &mut Vec<Manager>,
    manager: &str,
    api_version: &str,
    now: &str,
) {
    let old_fields = fields_of(old);
    let new_fields = fields_of(new);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| get(old, p) != get(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_fields.difference(&new_fields).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    for m in managers.iter_mut() {
        m.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let is_me = |m: &Manager| m.name == manager && m.operation == Operation::Update;
    match managers.iter_mut().find(|m| is_me(m)) {
        Some(entry) => {
            entry.fields.extend(changed);
            entry.time = now.to_owned();
            entry.api_version = api_version.to_owned();
        }
        None => managers.push(Manager {
            name: manager.to_owned(),
            operation: Operation::Update,
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            fields: changed,
        }),
    }
    managers.retain(|m| !m.fields.is_empty());
}

/// The 409 the real server answers for apply conflicts:
/// `Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .automountServiceAccountToken`.
pub fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager),
                "field": c.field,
            })
        })
        .collect();
    let detail = if let [only] = conflicts {
        format!("conflict with {}: {}", only.manager, only.field)
    } else {
        let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in conflicts {
            by_manager.entry(&c.manager).or_default().push(&c.field);
        }
        let mut lines = Vec::new();
        for (manager, fields) in by_manager {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(fields.iter().map(|f| format!("- {f}")));
        }
        lines.join("\n")
    };
    let plural = if conflicts.len() == 1 { "" } else { "s" };
    ApiError::apply_conflict(
        format!(
            "Apply failed with {} conflict{plural}: {detail}",
            conflicts.len()
        ),
        causes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2025-01-01T00:00:00Z";
    const T1: &str = "2025-01-01T00:01:00Z";

    fn sa(extra: Value) -> Value {
        let mut base = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": { "name": "app", "namespace": "prod" },
        });
        super::super::patch::merge_patch(&mut base, &extra);
        base
    }

    fn path(parts: &[&str]) -> FieldPath {
        parts.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn fields_cover_top_level_and_label_keys() {
        let obj = sa(json!({
            "metadata": { "labels": { "a": "1" }, "annotations": { "b": "2" }, "uid": "u" },
            "automountServiceAccountToken": false,
            "status": { "x": 1 },
        }));
        let fields = fields_of(&obj);
        let expected: FieldSet = [
            path(&["automountServiceAccountToken"]),
            path(&["metadata", "annotations", "b"]),
            path(&["metadata", "labels", "a"]),
        ]
        .into();
        assert_eq!(fields, expected);
        let v1 = to_fields_v1(&fields);
        assert_eq!(
            v1,
            json!({
                "f:automountServiceAccountToken": {},
                "f:metadata": { "f:annotations": { "f:b": {} }, "f:labels": { "f:a": {} } },
            })
        );
        assert_eq!(from_fields_v1(&v1), fields);
    }

    #[test]
    fn apply_creates_then_removes_fields_it_stopped_applying() {
        let mut managers = Vec::new();
        let first = sa(
            json!({ "metadata": { "labels": { "a": "1", "b": "2" } }, "automountServiceAccountToken": false }),
        );
        let obj = apply(&json!({}), &mut managers, &first, "wid", "v1", false, T0)
            .expect("no conflict on create");
        assert_eq!(obj["metadata"]["labels"], json!({ "a": "1", "b": "2" }));
        assert_eq!(managers.len(), 1);
        assert_eq!(managers[0].operation, Operation::Apply);
        let second = sa(json!({ "metadata": { "labels": { "a": "1" } } }));
        let obj = apply(&obj, &mut managers, &second, "wid", "v1", false, T1).expect("no conflict");
        assert_eq!(obj["metadata"]["labels"], json!({ "a": "1" }));
        assert!(obj.get("automountServiceAccountToken").is_none());
        let third = sa(json!({}));
        let obj = apply(&obj, &mut managers, &third, "wid", "v1", false, T1).expect("no conflict");
        assert!(obj["metadata"].get("labels").is_none(), "{obj}");
        assert!(managers.is_empty());
    }

    #[test]
    fn fields_another_manager_owns_are_kept_when_dropped() {
        let mut managers = Vec::new();
        let applied = sa(json!({ "metadata": { "labels": { "a": "1" } } }));
        let obj =
            apply(&json!({}), &mut managers, &applied, "wid", "v1", false, T0).expect("create");
        // Another applier sets the same value: shared ownership, no conflict.
        let obj = apply(&obj, &mut managers, &applied, "other", "v1", false, T0)
            .expect("same value is shared");
        assert_eq!(managers.len(), 2);
        let obj = apply(&obj, &mut managers, &sa(json!({})), "wid", "v1", false, T1).expect("drop");
        assert_eq!(obj["metadata"]["labels"]["a"], "1", "still owned by other");
    }

    #[test]
    fn conflicting_value_is_refused_unless_forced() {
        let mut managers = Vec::new();
        let created = sa(json!({ "automountServiceAccountToken": false }));
        let obj =
            apply(&json!({}), &mut managers, &created, "wid", "v1", false, T0).expect("create");
        let patched = sa(json!({ "automountServiceAccountToken": true }));
        record_update(&obj, &patched, &mut managers, "kubectl-patch", "v1", T1);
        assert_eq!(managers.len(), 1, "the patch took the only field from wid");
        assert_eq!(managers[0].name, "kubectl-patch");

        let conflicts =
            apply(&patched, &mut managers, &created, "wid", "v1", false, T1).expect_err("conflict");
        let err = conflict_error(&conflicts);
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .automountServiceAccountToken"
        );
        let details = err.details.expect("details");
        assert_eq!(details["causes"][0]["reason"], "FieldManagerConflict");
        assert_eq!(
            details["causes"][0]["field"],
            ".automountServiceAccountToken"
        );

        let obj =
            apply(&patched, &mut managers, &created, "wid", "v1", true, T1).expect("force wins");
        assert_eq!(obj["automountServiceAccountToken"], false);
        assert_eq!(managers.len(), 1);
        assert_eq!(managers[0].name, "wid");
    }

    #[test]
    fn several_conflicts_are_grouped_by_manager() {
        let conflicts = vec![
            Conflict {
                manager: "\"b\"".into(),
                field: ".x".into(),
            },
            Conflict {
                manager: "\"a\"".into(),
                field: ".y".into(),
            },
            Conflict {
                manager: "\"b\"".into(),
                field: ".z".into(),
            },
        ];
        assert_eq!(
            conflict_error(&conflicts).message,
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .y\nconflicts with \"b\":\n- .x\n- .z"
        );
    }

    #[test]
    fn managers_round_trip_through_metadata() {
        let mut obj = sa(json!({ "automountServiceAccountToken": true }));
        let mut managers = Vec::new();
        record_update(&json!({}), &obj, &mut managers, "kubectl-create", "v1", T0);
        write_managers(&mut obj, &managers);
        assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Update");
        assert_eq!(read_managers(&obj), managers);
        write_managers(&mut obj, &[]);
        assert!(obj["metadata"].get("managedFields").is_none());
    }
}
