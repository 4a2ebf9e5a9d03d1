//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets
//! (`kubectl scale`): an `autoscaling/v1` Scale read from and written to the object's
//! `spec.replicas`.

use serde_json::{Value, json};

use super::catalog::ResourceInfo;
use super::status::ApiError;
use super::table;

/// Whether `info` has a `scale` subresource.
pub fn scalable(info: &ResourceInfo) -> bool {
    matches!(
        info.resource,
        "deployments" | "replicasets" | "statefulsets"
    )
}

/// The Scale of an object.
pub fn of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if !meta[field].is_null() {
            metadata[field] = meta[field].clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": { "replicas": object["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": table::selector_text(&object["spec"]["selector"]),
        },
    })
}

/// The replica count a Scale asks for, validated as the real server validates it.
pub fn replicas(name: &str, scale: &Value) -> Result<i64, ApiError> {
    let replicas = &scale["spec"]["replicas"];
    let invalid = |message: String| {
        ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[("spec.replicas".to_owned(), message)],
        )
    };
    match replicas.as_i64() {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(invalid(format!(
            "Invalid value: {n}: must be greater than or equal to 0"
        ))),
        None if replicas.is_null() => Ok(0),
        None => Err(invalid(format!(
            "Invalid value: {replicas}: must be an integer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_reads_replicas_and_selector() {
        let deployment = json!({
            "metadata": { "name": "web", "namespace": "n", "uid": "u", "resourceVersion": "7", "labels": { "a": "b" } },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" } } },
            "status": { "replicas": 2 },
        });
        assert_eq!(
            of(&deployment),
            json!({
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": { "name": "web", "namespace": "n", "uid": "u", "resourceVersion": "7" },
                "spec": { "replicas": 3 },
                "status": { "replicas": 2, "selector": "app=web" },
            })
        );
        assert_eq!(
            replicas("web", &json!({ "spec": { "replicas": 5 } })),
            Ok(5)
        );
        let err = replicas("web", &json!({ "spec": { "replicas": -1 } })).expect_err("negative");
        assert_eq!(
            err.message,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
