//! The object store of one cluster: GET, LIST, create, replace, patch, server-side apply
//! and delete, with the metadata the server owns (uid, resourceVersion,
//! creationTimestamp, generation, managedFields).

use serde_json::{Map, Value, json};

use super::catalog::{self, ResourceInfo};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::{ClusterState, LoadError, admission, patch, ssa};

/// How a PATCH body is to be applied (by its Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
}

/// The current time as the API server writes it (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Formats a time as the API server writes it.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The store key of an object: `namespace/name` or `name`.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// Fields a client may not set: the server owns them.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
];

impl ClusterState {
    pub(super) fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// The current resourceVersion, for list metadata.
    pub fn current_resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    /// One object.
    pub fn get(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<&Value, ApiError> {
        self.objects
            .get(info.resource)
            .and_then(|objects| objects.get(&key(namespace, name)))
            .ok_or_else(|| ApiError::not_found(info, name))
    }

    /// A LIST answer: every matching object of `info` (in `namespace` or in all of them),
    /// ordered by namespace then name.
    pub fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Value {
        let items: Vec<Value> = self
            .objects
            .get(info.resource)
            .into_iter()
            .flatten()
            .filter(|(k, _)| namespace.is_none_or(|ns| k.starts_with(&format!("{ns}/"))))
            .map(|(_, v)| v)
            .filter(|v| labels.matches(v) && fields.matches(v))
            .cloned()
            .collect();
        json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": { "resourceVersion": self.current_resource_version() },
            "items": items,
        })
    }

    pub(super) fn namespace_exists(&self, name: &str) -> bool {
        self.objects
            .get("namespaces")
            .is_some_and(|ns| ns.contains_key(name))
    }

    /// POST: creates an object; `check_service_account` is off only for fixtures.
    pub fn create(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        body: &Value,
        manager: &str,
        check_service_account: bool,
    ) -> Result<Value, ApiError> {
        let mut object = sanitize(info, namespace, body)?;
        let name = match object["metadata"]["name"].as_str() {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => match object["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    format!("{prefix}{}", admission::random_suffix())
                }
                _ => return Err(admission::name_required(info)),
            },
        };
        object["metadata"]["name"] = json!(name);
        admission::validate_name(info, &name)?;
        if let Some(ns) = namespace
            && !self.namespace_exists(ns)
        {
            let namespaces = catalog::by_plural("namespaces").expect("namespaces are served");
            return Err(ApiError::not_found(namespaces, ns));
        }
        if self.get(info, namespace, &name).is_ok() {
            return Err(ApiError::already_exists(info, &name));
        }
        admission::default(info, &mut object);
        if info.resource == "pods" {
            self.admit_pod(
                namespace.unwrap_or("default"),
                &mut object,
                check_service_account,
            )?;
        }
        let mut managers = Vec::new();
        let now = now();
        ssa::record_update(
            &json!({}),
            &object,
            &mut managers,
            manager,
            &info.api_version(),
            &now,
        );
        let created = self.commit(info, namespace, None, object, &managers);
        if info.resource == "namespaces" {
            self.populate_namespace(&name);
        }
        Ok(created)
    }

    /// PUT: replaces an object; a stale `metadata.resourceVersion` is a conflict.
    pub fn replace(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        body: &Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let old = self.get(info, namespace, name)?.clone();
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::modified(info, name));
        }
        let mut object = sanitize(info, namespace, body)?;
        match object["metadata"]["name"].as_str() {
            None | Some("") => object["metadata"]["name"] = json!(name),
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            Some(_) => {}
        }
        admission::default(info, &mut object);
        self.update(info, namespace, &old, object, manager)
    }

    /// PATCH with a merge, strategic merge or JSON patch.
    pub fn patch(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let old = self.get(info, namespace, name)?.clone();
        let mut object = old.clone();
        match kind {
            PatchKind::Merge => patch::merge_patch(&mut object, body),
            PatchKind::Strategic => patch::strategic_merge_patch(&mut object, body),
            PatchKind::Json => patch::json_patch(&mut object, body)?,
        }
        // A resourceVersion in the patch is a precondition, as on the real server.
        if object["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"] {
            return Err(ApiError::modified(info, name));
        }
        for field in ["name", "namespace", "uid", "creationTimestamp"] {
            if object["metadata"].get(field) != old["metadata"].get(field) {
                return Err(ApiError::bad_request(format!(
                    "metadata.{field}: the patch may not change it"
                )));
            }
        }
        let object = sanitize(info, namespace, &object)?;
        self.update(info, namespace, &old, object, manager)
    }

    /// Server-side apply: creates the object when missing (`true`) or merges into it.
    pub fn apply(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        body: &Value,
        manager: &str,
        force: bool,
    ) -> Result<(bool, Value), ApiError> {
        if body["metadata"]
            .get("managedFields")
            .is_some_and(|m| !m.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let applied = sanitize(info, namespace, body)?;
        if applied["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                applied["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        let old = self.get(info, namespace, name).ok().cloned();
        if old.is_none() {
            admission::validate_name(info, name)?;
            if let Some(ns) = namespace
                && !self.namespace_exists(ns)
            {
                let namespaces = catalog::by_plural("namespaces").expect("namespaces are served");
                return Err(ApiError::not_found(namespaces, ns));
            }
        }
        let mut live = old.clone().unwrap_or_else(|| json!({}));
        let mut managers = ssa::read_managers(&live);
        if let Some(meta) = live.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        let mut object = ssa::apply(
            &live,
            &mut managers,
            &applied,
            manager,
            &info.api_version(),
            force,
            &now(),
        )
        .map_err(|conflicts| ssa::conflict_error(&conflicts))?;
        object["apiVersion"] = json!(info.api_version());
        object["kind"] = json!(info.kind);
        object["metadata"]["name"] = json!(name);
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        admission::default(info, &mut object);
        match old {
            Some(old) => Ok((
                false,
                self.commit(info, namespace, Some(&old), object, &managers),
            )),
            None => {
                if info.resource == "pods" {
                    self.admit_pod(namespace.unwrap_or("default"), &mut object, true)?;
                }
                let created = self.commit(info, namespace, None, object, &managers);
                if info.resource == "namespaces" {
                    self.populate_namespace(name);
                }
                Ok((true, created))
            }
        }
    }

    /// Seeds one fixture document (see [`super::load_manifests`]).
    pub(super) fn load(&mut self, index: usize, value: Value) -> Result<String, LoadError> {
        let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let info = catalog::by_kind(&api_version, &kind)
            .filter(|info| info.is_stored())
            .ok_or(LoadError::UnknownKind {
                index,
                api_version,
                kind: kind.clone(),
            })?;
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = info.namespaced.then(|| {
            value["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        });
        let id = match &namespace {
            Some(ns) => format!("{}/{ns}/{name}", kind.to_lowercase()),
            None => format!("{}/{name}", kind.to_lowercase()),
        };
        let refused = |source| LoadError::Refused {
            index,
            id: id.clone(),
            source: Box::new(source),
        };
        let ns = namespace.as_deref();
        if let Some(ns) = ns
            && !self.namespace_exists(ns)
        {
            let namespaces = catalog::by_plural("namespaces").expect("namespaces are served");
            let body =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            self.create(namespaces, None, &body, "sandbox-fixtures", false)
                .map_err(refused)?;
        }
        if self.get(info, ns, &name).is_ok() {
            self.replace(info, ns, &name, &value, "sandbox-fixtures")
                .map_err(refused)?;
        } else {
            self.create(info, ns, &value, "sandbox-fixtures", false)
                .map_err(refused)?;
        }
        Ok(id)
    }

    /// A write to an existing object by a non-apply manager.
    fn update(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        old: &Value,
        object: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let mut managers = ssa::read_managers(old);
        let mut before = old.clone();
        if let Some(meta) = before.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        ssa::record_update(
            &before,
            &object,
            &mut managers,
            manager,
            &info.api_version(),
            &now(),
        );
        Ok(self.commit(info, namespace, Some(old), object, &managers))
    }

    /// Stamps server-owned metadata and stores the object. An update that changes nothing
    /// keeps the old object and its resourceVersion.
    fn commit(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        old: Option<&Value>,
        mut object: Value,
        managers: &[ssa::Manager],
    ) -> Value {
        if info.resource == "secrets" {
            admission::merge_string_data(&mut object);
        }
        object["apiVersion"] = json!(info.api_version());
        object["kind"] = json!(info.kind);
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        ssa::write_managers(&mut object, managers);
        match old {
            Some(old) => {
                for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
                    match (
                        old["metadata"].get(field),
                        object["metadata"].as_object_mut(),
                    ) {
                        (Some(value), Some(meta)) => {
                            meta.insert(field.to_owned(), value.clone());
                        }
                        (None, Some(meta)) => {
                            meta.remove(field);
                        }
                        _ => {}
                    }
                }
                let mut object = order(object);
                if &object == old {
                    return object;
                }
                if info.has_generation() && without_metadata(&object) != without_metadata(old) {
                    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                    object["metadata"]["generation"] = json!(generation + 1);
                }
                object["metadata"]["resourceVersion"] = json!(self.next_resource_version());
                self.store(info, namespace, object)
            }
            None => {
                object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                object["metadata"]["creationTimestamp"] = json!(now());
                if info.has_generation() {
                    object["metadata"]["generation"] = json!(1);
                }
                object["metadata"]["resourceVersion"] = json!(self.next_resource_version());
                self.store(info, namespace, order(object))
            }
        }
    }

    fn store(&mut self, info: &ResourceInfo, namespace: Option<&str>, object: Value) -> Value {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        self.objects
            .entry(info.resource.to_owned())
            .or_default()
            .insert(key(namespace, name), object.clone());
        object
    }
}

/// Checks a request body against the URL and strips what the server owns.
fn sanitize(info: &ResourceInfo, namespace: Option<&str>, body: &Value) -> Result<Value, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - it must be a JSON or YAML object",
        ));
    };
    if let Some(kind) = map.get("kind").and_then(Value::as_str)
        && kind != info.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({}), or kind {kind} is not {}",
            map.get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            info.api_version(),
            info.kind
        )));
    }
    let mut object = Value::Object(map.clone());
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        for field in SERVER_METADATA {
            meta.remove(*field);
        }
        match (namespace, meta.get("namespace").and_then(Value::as_str)) {
            (Some(url), Some(body)) if !body.is_empty() && body != url => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (None, _) => {
                meta.remove("namespace");
            }
            _ => {}
        }
    }
    admission::validate_metadata(info, &object)?;
    Ok(object)
}

fn without_metadata(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// Puts `apiVersion`, `kind`, `metadata` first and the well-known metadata fields in the
/// real server's order, so output reads like a real cluster's.
fn order(object: Value) -> Value {
    let Value::Object(mut map) = object else {
        return object;
    };
    let mut out = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = map.remove(key) {
            out.insert(key.to_owned(), v);
        }
    }
    if let Some(Value::Object(mut meta)) = map.remove("metadata") {
        let mut ordered = Map::new();
        for key in [
            "name",
            "generateName",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "labels",
            "annotations",
        ] {
            if let Some(v) = meta.remove(key) {
                ordered.insert(key.to_owned(), v);
            }
        }
        let managed = meta.remove("managedFields");
        ordered.extend(meta);
        // Go leaves these out of JSON when empty (a merge patch that removes the last
        // label leaves an empty map behind otherwise).
        ordered.retain(|key, value| {
            let optional = matches!(
                key.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            );
            !(optional
                && (value.is_null()
                    || value.as_object().is_some_and(Map::is_empty)
                    || value.as_array().is_some_and(Vec::is_empty)))
        });
        if let Some(m) = managed {
            ordered.insert("managedFields".into(), m);
        }
        out.insert("metadata".into(), Value::Object(ordered));
    }
    out.extend(map);
    Value::Object(out)
}
