//! Render: the manifests `wid render` writes for clusters whose objects a GitOps tool
//! (Argo CD, Flux) applies. They are exactly the bodies apply would send, the
//! `wid.dev/applied` record included, so `wid plan` against a GitOps-applied cluster still
//! tells drift from a plan change.

use std::collections::BTreeMap;

use serde_json::Value;
use wid_core::{Owner, ProviderError, Resource};

use crate::kinds::{Kind, Target, build};

/// What a rendered object's readers must know that the object cannot say itself, by
/// annotation it carries: the pods that use a KSA annotated for Azure workload identity
/// get a token only with the pod label `azure.workload.identity/use: "true"` (the
/// webhook's opt-in, on the pod template, which wid does not own). Other clouds' KSAs
/// need nothing on the pod and get no note.
const NOTES: &[(&str, &str)] = &[(
    "azure.workload.identity/client-id",
    "pods that use this service account need the label azure.workload.identity/use: \"true\" on their template; without it the Azure workload identity webhook injects no token",
)];

/// The notes for one rendered object (written as comments above it).
pub fn notes(object: &Value) -> Vec<&'static str> {
    let annotations = &object["metadata"]["annotations"];
    NOTES
        .iter()
        .filter(|(key, _)| annotations.get(*key).is_some())
        .map(|(_, note)| *note)
        .collect()
}

/// The objects apply would send, per cluster: namespaces first, then service accounts,
/// roles and bindings, each group sorted by id. Resources of other providers are skipped.
///
/// Fails on the first resource with an attribute only known after apply, naming it.
pub fn manifests(
    resources: &[impl std::borrow::Borrow<Resource>],
    owner: &Owner,
) -> Result<BTreeMap<String, Vec<Value>>, ProviderError> {
    let mut ordered: Vec<(&str, Kind, &Resource)> = resources
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter_map(|r: &Resource| {
            let t = Target::of(&r.id)?;
            Some((r.id.part(0), t.kind, r))
        })
        .collect();
    ordered.sort_by(|a, b| (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id)));
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (cluster, _, resource) in ordered {
        let body = build(resource, &owner.plan)?;
        out.entry(cluster.to_owned()).or_default().push(body);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{ClusterOptions, KsaSpec, compile};
    use crate::{PolicyRule, kinds::AUTOMOUNT};
    use serde_json::json;
    use wid_core::{
        APPLIED_KEY, AttrValue, ErrorKind, Mode, ResourceId, WorkloadRef, applied_hash,
    };

    fn spec(cluster: &str, ns: &str, name: &str) -> KsaSpec {
        KsaSpec {
            workload: WorkloadRef {
                cluster: cluster.into(),
                namespace: ns.into(),
                service_account: name.into(),
            },
            labels: BTreeMap::new(),
            annotations: wid_core::Attrs::new(),
            automount: false,
            rules: vec![PolicyRule {
                api_groups: vec![String::new()],
                resources: vec!["configmaps".into()],
                verbs: vec!["get".into()],
                resource_names: Vec::new(),
            }],
            adopt: false,
            depends_on: Vec::new(),
            origin: "p.toml:1".into(),
        }
    }

    fn owner() -> Owner {
        Owner {
            plan: "payments".into(),
            prune: false,
        }
    }

    #[test]
    fn renders_per_cluster_in_apply_order() {
        let clusters = [ClusterOptions {
            name: "a".into(),
            create_namespaces: true,
            harden_default_service_accounts: true,
        }];
        let resources = compile(
            &clusters,
            vec![spec("a", "apps", "orders"), spec("b", "x", "y")],
        );
        let out = manifests(&resources, &owner()).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["a", "b"]);
        let kinds: Vec<(String, String)> = out["a"]
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap().to_owned(),
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("Namespace".to_owned(), "apps".to_owned()),
                ("ServiceAccount".to_owned(), "default".to_owned()),
                ("ServiceAccount".to_owned(), "orders".to_owned()),
                ("Role".to_owned(), "wid-orders".to_owned()),
                ("RoleBinding".to_owned(), "wid-orders".to_owned()),
            ]
        );
        let default_sa = &out["a"][1];
        assert_eq!(
            default_sa,
            &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": "apps"},
                    AUTOMOUNT: false})
        );
        let binding = &out["a"][4];
        assert_eq!(binding["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(binding["metadata"]["labels"]["wid.dev/plan"], "payments");
        assert_eq!(binding["roleRef"]["name"], "wid-orders");
        assert_eq!(binding["subjects"][0]["namespace"], "apps");
        assert_eq!(out["a"][3]["rules"][0]["verbs"], json!(["get"]));
    }

    #[test]
    fn rendered_objects_carry_the_record_apply_would_write() {
        let clusters = [ClusterOptions {
            name: "a".into(),
            create_namespaces: true,
            harden_default_service_accounts: true,
        }];
        let resources = compile(&clusters, vec![spec("a", "apps", "orders")]);
        let out = manifests(&resources, &owner()).unwrap();
        let by_name = |kind: &str, name: &str| {
            out["a"]
                .iter()
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                .unwrap()
                .clone()
        };
        for r in &resources {
            let t = Target::of(&r.id).unwrap();
            let (_, kind) = t.kind.type_meta();
            let record = &by_name(kind, &t.name)["metadata"]["annotations"][APPLIED_KEY];
            if r.mode == Mode::Fields {
                assert!(record.is_null(), "{} carries {record}", r.id);
            } else {
                assert_eq!(record, &json!(applied_hash(&r.attrs).unwrap()), "{}", r.id);
            }
        }
    }

    #[test]
    fn only_azure_service_accounts_carry_the_pod_label_note() {
        let mut s = spec("a", "apps", "orders");
        s.annotations.insert(
            "azure.workload.identity/client-id".into(),
            AttrValue::from("00000000-0000-0000-0000-000000000001"),
        );
        let mut other = spec("a", "apps", "reports");
        other
            .annotations
            .insert("eks.amazonaws.com/role-arn".into(), AttrValue::from("arn"));
        let out = manifests(&compile(&[], vec![s, other]), &owner()).unwrap();
        let by_name = |name: &str| {
            out["a"]
                .iter()
                .find(|o| o["kind"] == "ServiceAccount" && o["metadata"]["name"] == name)
                .unwrap()
        };
        assert_eq!(notes(by_name("orders")).len(), 1);
        assert!(notes(by_name("orders"))[0].contains("azure.workload.identity/use: \"true\""));
        assert!(notes(by_name("reports")).is_empty());
    }

    #[test]
    fn unknown_annotations_fail_naming_the_resource() {
        let mut s = spec("a", "apps", "orders");
        s.annotations.insert(
            "azure.workload.identity/client-id".into(),
            AttrValue::Unknown {
                from: ResourceId::new("azure", "identity", ["x"]),
                output: "client_id".into(),
            },
        );
        let err = manifests(&compile(&[], vec![s]), &owner()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(
            err.resource.unwrap().to_string(),
            "k8s/serviceaccount/a/apps/orders"
        );
    }
}
