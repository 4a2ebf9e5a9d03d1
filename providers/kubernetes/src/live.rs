//! Reading live objects: ownership marks, which labels and annotations wid owns (from
//! `managedFields`), and the normalization that makes observed attributes compare exactly
//! with what compile writes.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use wid_core::{
    APPLIED_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, ObservedResource, Ownership, PLAN_KEY, Resource,
    ResourceId,
};

use crate::PolicyRule;
use crate::compile::{normalize_rules, object_id};
use crate::kinds::{AUTOMOUNT, DEFAULT_SA, Kind, ROLE, SERVICEACCOUNT};

/// wid's field manager name, for server-side apply and for reading `managedFields`.
pub const FIELD_MANAGER: &str = "wid";

/// Who owns an object, from its labels: this plan's marks, another plan's, or none.
///
/// An object with the managed-by mark but no plan label is treated as unowned: the plan
/// label is the ownership scope, and without it no plan can prove the object is its own
/// (`adopt = true` can take it over).
pub fn ownership(object: &Value, plan: &str) -> Ownership {
    let labels = &object["metadata"]["labels"];
    if labels[MANAGED_BY_KEY].as_str() != Some(MANAGED_BY_VALUE) {
        return Ownership::Unowned;
    }
    match labels[PLAN_KEY].as_str() {
        Some(p) if p == plan => Ownership::Ours,
        Some(p) => Ownership::OtherPlan(p.to_owned()),
        None => Ownership::Unowned,
    }
}

/// The label and annotation keys the field manager `wid` owns, read from the `fieldsV1`
/// trees (`f:metadata` → `f:labels` → `f:KEY`) of its `managedFields` entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OwnedKeys {
    /// Label keys.
    pub labels: BTreeSet<String>,
    /// Annotation keys.
    pub annotations: BTreeSet<String>,
}

/// Parses `metadata.managedFields` of `object` for `manager`'s label and annotation keys.
pub fn owned_keys(object: &Value, manager: &str) -> OwnedKeys {
    let mut out = OwnedKeys::default();
    let entries = object["metadata"]["managedFields"].as_array();
    for entry in entries.into_iter().flatten() {
        if entry["manager"].as_str() != Some(manager) {
            continue;
        }
        let meta = &entry["fieldsV1"]["f:metadata"];
        for (field, set) in [
            ("f:labels", &mut out.labels),
            ("f:annotations", &mut out.annotations),
        ] {
            if let Some(keys) = meta[field].as_object() {
                set.extend(
                    keys.keys()
                        .filter_map(|k| k.strip_prefix("f:"))
                        .map(str::to_owned),
                );
            }
        }
    }
    out
}

/// The normalized live state of `object` under `id`.
///
/// Labels and annotations are reported for every key the plan wants and every key wid
/// applied before (so a key the plan dropped shows as a removal), never the two marks, the
/// [`APPLIED_KEY`] record (read into [`ObservedResource::applied`] instead) and never keys
/// only others set. The `default` SA hardening reports only the automount flag and no
/// record: wid never writes one on an object it does not own.
pub fn observe_object(
    id: ResourceId,
    kind: Kind,
    object: &Value,
    desired: Option<&Resource>,
    plan: &str,
) -> ObservedResource {
    let mut out = ObservedResource::new(id, ownership(object, plan));
    let fields = object.as_object().cloned().unwrap_or_default();
    if out.id.kind() == DEFAULT_SA {
        if let Some(v) = fields.get(AUTOMOUNT).filter(|v| !v.is_null()) {
            out.attrs.insert(AUTOMOUNT.into(), v.clone());
        }
        return out;
    }
    out.applied = object["metadata"]["annotations"][APPLIED_KEY]
        .as_str()
        .map(str::to_owned);
    report_metadata(&mut out, object, desired);
    match kind {
        Kind::Namespace => {}
        Kind::ServiceAccount => {
            // Unset means mounted: the API's default. Reporting it as `true` lets a plan
            // that says `automount_token = true` describe such a KSA exactly (no write),
            // while the default `false` still shows `true → false`.
            let v = fields
                .get(AUTOMOUNT)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Bool(true));
            out.attrs.insert(AUTOMOUNT.into(), v);
        }
        Kind::Role => {
            let rules: Vec<PolicyRule> = fields
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(live_rule)
                .collect();
            out.attrs.insert("rules".into(), normalize_rules(&rules));
        }
        Kind::RoleBinding => binding_attrs(&mut out, &fields),
    }
    out
}

fn report_metadata(out: &mut ObservedResource, object: &Value, desired: Option<&Resource>) {
    let owned = owned_keys(object, FIELD_MANAGER);
    for (prefix, field, wid_keys) in [
        ("labels.", "labels", &owned.labels),
        ("annotations.", "annotations", &owned.annotations),
    ] {
        let mut keys: BTreeSet<&str> = wid_keys.iter().map(String::as_str).collect();
        if let Some(d) = desired {
            keys.extend(d.attrs.keys().filter_map(|k| k.strip_prefix(prefix)));
        }
        // Bookkeeping wid writes on every object it owns, not attributes: reporting them
        // would show wid's own record as a key the plan dropped.
        if field == "labels" {
            keys.remove(MANAGED_BY_KEY);
            keys.remove(PLAN_KEY);
        } else {
            keys.remove(APPLIED_KEY);
        }
        for key in keys {
            if let Some(v) = object["metadata"][field].get(key) {
                out.attrs.insert(format!("{prefix}{key}"), v.clone());
            }
        }
    }
}

/// A live rule, lenient about missing lists (the API omits empty ones).
fn live_rule(rule: &Value) -> PolicyRule {
    let list = |k: &str| -> Vec<String> {
        rule[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    PolicyRule {
        api_groups: list("apiGroups"),
        resources: list("resources"),
        verbs: list("verbs"),
        resource_names: list("resourceNames"),
    }
}

/// `roleRef` and `subjects` as compile writes them, and the dependencies a delete must
/// respect: the binding goes before the Role and the KSAs it names.
fn binding_attrs(out: &mut ObservedResource, fields: &Map<String, Value>) {
    let (cluster, namespace) = (out.id.part(0).to_owned(), out.id.part(1).to_owned());
    let role = &fields.get("roleRef").cloned().unwrap_or_default();
    if let Some(name) = role["name"].as_str() {
        let normalized =
            json!({ "apiGroup": role["apiGroup"], "kind": role["kind"], "name": name });
        out.attrs.insert("roleRef".into(), normalized);
        if role["kind"].as_str() == Some("Role") {
            out.depends_on
                .push(object_id(ROLE, &cluster, &namespace, name));
        }
    }
    let mut subjects: Vec<(String, Value)> = Vec::new();
    for s in fields
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut v = json!({ "kind": s["kind"], "name": s["name"], "namespace": s["namespace"] });
        if let Some(group) = s["apiGroup"].as_str().filter(|g| !g.is_empty()) {
            v["apiGroup"] = json!(group);
        }
        if s["namespace"].is_null()
            && let Some(obj) = v.as_object_mut()
        {
            obj.remove("namespace");
        }
        if s["kind"].as_str() == Some("ServiceAccount")
            && let Some(name) = s["name"].as_str()
        {
            let ns = s["namespace"].as_str().unwrap_or(&namespace);
            let sa = object_id(SERVICEACCOUNT, &cluster, ns, name);
            if !out.depends_on.contains(&sa) {
                out.depends_on.push(sa);
            }
        }
        subjects.push((v.to_string(), v));
    }
    subjects.sort_by(|a, b| a.0.cmp(&b.0));
    out.attrs.insert(
        "subjects".into(),
        Value::Array(subjects.into_iter().map(|(_, v)| v).collect()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{ClusterOptions, KsaSpec, compile};
    use std::collections::BTreeMap;
    use wid_core::{Observed, WorkloadRef, diff};

    /// The applied hash the test objects carry.
    const RECORD: &str = "0123456789abcdef";

    fn sa_id() -> ResourceId {
        object_id(SERVICEACCOUNT, "c", "prod", "orders")
    }

    fn sa_object(plan: Option<&str>) -> Value {
        let mut labels = json!({"team": "payments", "someone": "else"});
        if let Some(p) = plan {
            labels[MANAGED_BY_KEY] = json!("wid");
            labels[PLAN_KEY] = json!(p);
        }
        json!({
            "metadata": {
                "name": "orders", "namespace": "prod", "uid": "u1", "resourceVersion": "7",
                "labels": labels,
                "annotations": {
                    "old": "x", "kubectl.kubernetes.io/last-applied": "{}", APPLIED_KEY: RECORD
                },
                "managedFields": [
                    {"manager": "wid", "operation": "Apply", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {
                        "f:labels": {"f:team": {}, "f:app.kubernetes.io/managed-by": {}, "f:wid.dev/plan": {}},
                        "f:annotations": {"f:old": {}, "f:wid.dev/applied": {}}},
                        "f:automountServiceAccountToken": {}}},
                    {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {"f:labels": {"f:someone": {}}}}}
                ]
            },
            "automountServiceAccountToken": false
        })
    }

    #[test]
    fn ownership_comes_from_the_two_marks() {
        assert_eq!(ownership(&sa_object(Some("p")), "p"), Ownership::Ours);
        assert_eq!(
            ownership(&sa_object(Some("q")), "p"),
            Ownership::OtherPlan("q".into())
        );
        assert_eq!(ownership(&sa_object(None), "p"), Ownership::Unowned);
        let half = json!({"metadata": {"labels": {MANAGED_BY_KEY: "wid"}}});
        assert_eq!(ownership(&half, "p"), Ownership::Unowned);
        let foreign = json!({"metadata": {"labels": {MANAGED_BY_KEY: "helm", PLAN_KEY: "p"}}});
        assert_eq!(ownership(&foreign, "p"), Ownership::Unowned);
    }

    #[test]
    fn managed_fields_give_wids_keys_only() {
        let keys = owned_keys(&sa_object(Some("p")), "wid");
        assert_eq!(
            keys.labels.into_iter().collect::<Vec<_>>(),
            ["app.kubernetes.io/managed-by", "team", "wid.dev/plan"]
        );
        assert_eq!(
            keys.annotations.into_iter().collect::<Vec<_>>(),
            ["old", APPLIED_KEY]
        );
        assert_eq!(owned_keys(&json!({}), "wid"), OwnedKeys::default());
    }

    #[test]
    fn observed_labels_are_desired_or_wids_never_others_or_marks() {
        let desired = Resource::new(sa_id())
            .attr(AUTOMOUNT, false)
            .attr("labels.team", "payments");
        let o = observe_object(
            sa_id(),
            Kind::ServiceAccount,
            &sa_object(Some("p")),
            Some(&desired),
            "p",
        );
        let keys: Vec<_> = o.attrs.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["annotations.old", AUTOMOUNT, "labels.team"],
            "the dropped annotation shows; kubectl's label, the marks and the record do not"
        );
        assert_eq!(o.applied.as_deref(), Some(RECORD));
        let changes = diff(&[desired], &observed(o), false);
        assert_eq!(changes[0].reason, wid_core::Reason::PlanChanged);
        assert_eq!(changes[0].attr_changes().count(), 1);
        assert_eq!(changes[0].owned_attr_changes()[0].key, "annotations.old");
        assert_eq!(changes[0].owned_attr_changes()[0].after, None);
    }

    #[test]
    fn default_serviceaccount_reports_only_automount() {
        let id = crate::compile::default_sa_id("c", "prod");
        let o = observe_object(id, Kind::ServiceAccount, &sa_object(None), None, "p");
        assert_eq!(o.applied, None, "a record on the default SA is not wid's");
        assert_eq!(
            o.attrs.into_iter().collect::<Vec<_>>(),
            [(AUTOMOUNT.to_owned(), json!(false))]
        );
    }

    fn observed(o: ObservedResource) -> Observed {
        let mut obs = Observed::default();
        obs.insert(o);
        obs
    }

    #[test]
    fn live_rbac_objects_compare_equal_to_compiled_ones() {
        let spec = KsaSpec {
            workload: WorkloadRef {
                cluster: "c".into(),
                namespace: "prod".into(),
                service_account: "orders".into(),
            },
            labels: BTreeMap::new(),
            annotations: wid_core::Attrs::new(),
            automount: false,
            rules: vec![PolicyRule {
                api_groups: vec![String::new()],
                resources: vec!["secrets".into(), "configmaps".into()],
                verbs: vec!["list".into(), "get".into()],
                resource_names: Vec::new(),
            }],
            adopt: false,
            depends_on: Vec::new(),
            origin: "".into(),
        };
        let mut desired = compile(&[] as &[ClusterOptions], vec![spec]);
        desired.sort_by(|a, b| a.id.cmp(&b.id));
        let marks = json!({MANAGED_BY_KEY: "wid", PLAN_KEY: "p"});
        let role = json!({
            "metadata": {"name": "wid-orders", "namespace": "prod", "labels": marks},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps", "secrets"]}]
        });
        let binding = json!({
            "metadata": {"name": "wid-orders", "namespace": "prod", "labels": marks},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wid-orders"},
            "subjects": [{"kind": "ServiceAccount", "name": "orders", "namespace": "prod", "apiGroup": ""}]
        });
        let mut obs = Observed::default();
        let role_o = observe_object(
            desired[0].id.clone(),
            Kind::Role,
            &role,
            Some(&desired[0]),
            "p",
        );
        let binding_o = observe_object(
            desired[1].id.clone(),
            Kind::RoleBinding,
            &binding,
            Some(&desired[1]),
            "p",
        );
        assert_eq!(binding_o.depends_on, [desired[0].id.clone(), sa_id()]);
        obs.insert(role_o);
        obs.insert(binding_o);
        let changes = diff(&desired[..2], &obs, false);
        assert!(
            changes.iter().all(|c| c.kind == wid_core::ChangeKind::NoOp),
            "{changes:#?}"
        );
    }
}
