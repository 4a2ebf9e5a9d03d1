//! DELETE: preconditions, what goes with a namespace, and what the garbage collector does
//! to dependents (objects whose `ownerReferences` name the deleted object) for each
//! `propagationPolicy`. The collector's work happens at once rather than a moment later.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::ClusterState;
use super::admission;
use super::catalog::ResourceInfo;
use super::options::{DeleteOptions, Propagation};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{key, now};

impl ClusterState {
    /// DELETE, honouring the `preconditions` and `propagationPolicy` of the options.
    /// Deleting a namespace deletes everything in it at once (there is no Terminating
    /// phase to wait through); dependents (objects whose `ownerReferences` name the
    /// deleted object) are deleted or orphaned at once, as the garbage collector would.
    pub fn delete(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(info, namespace, name)?.clone();
        if let Some(uid) = &options.uid
            && Some(uid.as_str()) != old["metadata"]["uid"].as_str()
        {
            let why = format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or_default()
            );
            return Err(ApiError::conflict(info, name, &why));
        }
        if let Some(rv) = &options.resource_version
            && Some(rv.as_str()) != old["metadata"]["resourceVersion"].as_str()
        {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            );
            return Err(ApiError::conflict(info, name, &why));
        }
        if info.resource == "namespaces" {
            if admission::IMMORTAL_NAMESPACES.contains(&name) {
                return Err(ApiError::forbidden(
                    info,
                    name,
                    "this namespace may not be deleted",
                ));
            }
            let prefix = format!("{name}/");
            for objects in self.objects.values_mut() {
                objects.retain(|k, _| !k.starts_with(&prefix));
            }
        }
        if let Some(objects) = self.objects.get_mut(info.resource) {
            objects.remove(&key(namespace, name));
        }
        let uid = old["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.collect_dependents(&uid, options.propagation());
        self.next_resource_version();
        let mut gone = old;
        if info.resource == "namespaces" {
            gone["status"] = json!({ "phase": "Terminating" });
        }
        if options.propagation() == Propagation::Foreground {
            // The real server answers while the owner waits for its dependents.
            gone["metadata"]["deletionTimestamp"] = json!(now());
            gone["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let mut finalizers = gone["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            finalizers.push(json!("foregroundDeletion"));
            gone["metadata"]["finalizers"] = json!(finalizers);
        }
        Ok(gone)
    }

    /// DELETE of a collection: every object matching the selectors (in `namespace`, or
    /// everywhere), deleted one by one with the same options; answers the list of what
    /// went, as the real server does.
    pub fn delete_collection(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let list = self.list(info, namespace, labels, fields);
        let mut gone = Vec::new();
        for item in list["items"].as_array().into_iter().flatten() {
            let ns = item["metadata"]["namespace"].as_str();
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            // An item the collector already took with its owner is skipped, as the real
            // server skips NotFound.
            if self.get(info, ns, name).is_err() {
                continue;
            }
            gone.push(self.delete(info, ns, name, options)?);
        }
        let mut answer = list;
        answer["items"] = Value::Array(gone);
        answer["metadata"]["resourceVersion"] = json!(self.current_resource_version());
        Ok(answer)
    }

    /// What the garbage collector does once the object with `uid` is gone: orphaning
    /// removes the reference from its dependents; otherwise a dependent left with no
    /// live owner is deleted (with the same propagation), and one that still has a live
    /// owner only loses the dangling reference.
    fn collect_dependents(&mut self, uid: &str, propagation: Propagation) {
        if uid.is_empty() {
            return;
        }
        let live: BTreeSet<String> = self
            .objects
            .values()
            .flat_map(|objects| objects.values())
            .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_owned))
            .collect();
        let mut doomed = Vec::new();
        let mut orphaned = Vec::new();
        for (resource, objects) in &mut self.objects {
            for (k, object) in objects.iter_mut() {
                let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
                    continue;
                };
                if !refs.iter().any(|r| r["uid"] == uid) {
                    continue;
                }
                let others_live = refs
                    .iter()
                    .filter(|r| r["uid"] != uid)
                    .any(|r| r["uid"].as_str().is_some_and(|u| live.contains(u)));
                if propagation == Propagation::Orphan || others_live {
                    let kept: Vec<Value> =
                        refs.iter().filter(|r| r["uid"] != uid).cloned().collect();
                    match object["metadata"].as_object_mut() {
                        Some(meta) if kept.is_empty() => {
                            meta.remove("ownerReferences");
                        }
                        Some(meta) => {
                            meta.insert("ownerReferences".into(), Value::Array(kept));
                        }
                        None => {}
                    }
                    orphaned.push((resource.clone(), k.clone()));
                } else {
                    doomed.push((
                        resource.clone(),
                        k.clone(),
                        object["metadata"]["uid"].clone(),
                    ));
                }
            }
        }
        // The collector's patch is a write like any other: a new resourceVersion.
        for (resource, k) in orphaned {
            let rv = self.next_resource_version();
            if let Some(object) = self.objects.get_mut(&resource).and_then(|o| o.get_mut(&k)) {
                object["metadata"]["resourceVersion"] = json!(rv);
            }
        }
        for (resource, k, dependent_uid) in doomed {
            if let Some(objects) = self.objects.get_mut(&resource) {
                objects.remove(&k);
            }
            if let Some(dependent_uid) = dependent_uid.as_str() {
                self.collect_dependents(dependent_uid, propagation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::catalog;

    fn options(propagation: Option<Propagation>) -> DeleteOptions {
        DeleteOptions {
            dry_run: false,
            propagation,
            uid: None,
            resource_version: None,
        }
    }

    /// A cluster with ConfigMap `owner` and two dependents: `only` (owned by `owner`
    /// alone) and `shared` (also owned by the live `other`).
    fn cluster() -> (ClusterState, String) {
        let mut c = super::super::bootstrap::new_cluster();
        let cm = catalog::by_plural("configmaps").expect("served");
        let uid = |c: &mut ClusterState, name: &str, owners: Value| {
            let body = json!({ "metadata": { "name": name, "ownerReferences": owners } });
            let o = c
                .create(cm, Some("default"), &body, "t", true)
                .expect("created");
            o["metadata"]["uid"].as_str().expect("uid").to_owned()
        };
        let owner = uid(&mut c, "owner", json!([]));
        let other = uid(&mut c, "other", json!([]));
        let reference =
            |u: &str| json!({ "apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": u });
        uid(&mut c, "only", json!([reference(&owner)]));
        let only_uid = c.objects["configmaps"]["default/only"]["metadata"]["uid"]
            .as_str()
            .expect("uid")
            .to_owned();
        uid(&mut c, "grandchild", json!([reference(&only_uid)]));
        uid(
            &mut c,
            "shared",
            json!([reference(&owner), reference(&other)]),
        );
        (c, owner)
    }

    fn names(c: &ClusterState) -> Vec<&str> {
        c.objects["configmaps"]
            .keys()
            .filter_map(|k| k.strip_prefix("default/"))
            .collect()
    }

    #[test]
    fn background_deletes_orphaned_dependents_and_keeps_shared_ones() {
        let (mut c, owner) = cluster();
        let cm = catalog::by_plural("configmaps").expect("served");
        c.delete(cm, Some("default"), "owner", &options(None))
            .expect("deleted");
        assert_eq!(names(&c), ["kube-root-ca.crt", "other", "shared"]);
        let shared = &c.objects["configmaps"]["default/shared"];
        assert!(
            !shared.to_string().contains(&owner),
            "dangling reference removed"
        );
    }

    #[test]
    fn orphan_keeps_dependents_without_the_reference() {
        let (mut c, owner) = cluster();
        let cm = catalog::by_plural("configmaps").expect("served");
        let rv_before =
            c.objects["configmaps"]["default/only"]["metadata"]["resourceVersion"].clone();
        c.delete(
            cm,
            Some("default"),
            "owner",
            &options(Some(Propagation::Orphan)),
        )
        .expect("deleted");
        assert_eq!(
            names(&c),
            ["grandchild", "kube-root-ca.crt", "only", "other", "shared"]
        );
        let only = &c.objects["configmaps"]["default/only"];
        assert!(only["metadata"].get("ownerReferences").is_none(), "{only}");
        assert_ne!(only["metadata"]["resourceVersion"], rv_before);
        assert!(
            !c.objects["configmaps"]["default/shared"]
                .to_string()
                .contains(&owner)
        );
    }

    #[test]
    fn a_collection_goes_by_selector() {
        let (mut c, _) = cluster();
        let cm = catalog::by_plural("configmaps").expect("served");
        let fields = FieldSelector::parse("metadata.name!=kube-root-ca.crt", "configmaps")
            .expect("selector");
        let gone = c
            .delete_collection(
                cm,
                Some("default"),
                &LabelSelector::default(),
                &fields,
                &options(None),
            )
            .expect("deleted");
        assert_eq!(gone["kind"], "ConfigMapList");
        // `shared` went with its last owner, before its own turn came.
        assert_eq!(gone["items"].as_array().map(Vec::len), Some(4));
        assert_eq!(names(&c), ["kube-root-ca.crt"]);
    }

    #[test]
    fn foreground_answers_with_the_finalizer_and_preconditions_are_checked() {
        let (mut c, _) = cluster();
        let cm = catalog::by_plural("configmaps").expect("served");
        let mut stale = options(None);
        stale.resource_version = Some("1".into());
        let err = c
            .delete(cm, Some("default"), "owner", &stale)
            .expect_err("stale");
        assert_eq!(err.code, 409);
        assert!(
            err.message
                .contains("Precondition failed: ResourceVersion in precondition: 1")
        );
        let gone = c
            .delete(
                cm,
                Some("default"),
                "owner",
                &options(Some(Propagation::Foreground)),
            )
            .expect("deleted");
        assert_eq!(
            gone["metadata"]["finalizers"],
            json!(["foregroundDeletion"])
        );
        assert!(gone["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(names(&c), ["kube-root-ca.crt", "other", "shared"]);
    }
}
