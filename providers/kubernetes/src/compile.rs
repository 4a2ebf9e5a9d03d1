//! Compile: the pure step from the plan's KSAs to Kubernetes resources.
//!
//! It decides ids, attributes (in the normalized form observe reads back), modes and
//! dependencies. No I/O: `wid validate` and `wid render` run it without a cluster.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use wid_core::{Attrs, Mode, Resource, ResourceId, WorkloadRef};

use crate::PolicyRule;
use crate::kinds::{AUTOMOUNT, DEFAULT_SA, NAMESPACE, ROLE, ROLEBINDING};

/// What compile needs to know about one cluster of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The plan's cluster name.
    pub name: String,
    /// Create the namespaces the plan's KSAs live in when they are missing.
    pub create_namespaces: bool,
    /// Set `automountServiceAccountToken: false` on the `default` SA of every namespace
    /// the plan touches.
    pub harden_default_service_accounts: bool,
}

/// One KSA the plan wants, with everything the cloud providers contributed to it.
#[derive(Debug, Clone)]
pub struct KsaSpec {
    /// The cluster, namespace and name.
    pub workload: WorkloadRef,
    /// Labels the plan adds to the KSA (the ownership marks are not among them).
    pub labels: BTreeMap<String, String>,
    /// The plan's annotations plus the clouds' (`eks.amazonaws.com/role-arn`); a value may
    /// be unknown until a cloud resource is applied.
    pub annotations: Attrs,
    /// `automountServiceAccountToken` (the plan's `automount_token`, default false).
    pub automount: bool,
    /// RBAC rules for the KSA's dedicated Role; empty means no Role and no RoleBinding.
    pub rules: Vec<PolicyRule>,
    /// Take over an existing KSA that carries no wid mark.
    pub adopt: bool,
    /// Cloud resources the annotations point at; the KSA is applied after them.
    pub depends_on: Vec<ResourceId>,
    /// Where in the plan the KSA comes from (`plans/team.toml:12`), for messages.
    pub origin: std::sync::Arc<str>,
}

/// The name of the Role and RoleBinding wid creates for `ksa`. The plan layer rejects
/// names whose result is longer than 253 characters.
pub fn role_name(ksa: &str) -> String {
    format!("wid-{ksa}")
}

/// The id of a namespaced object: `k8s/KIND/CLUSTER/NS/NAME`.
pub fn object_id(kind: &str, cluster: &str, namespace: &str, name: &str) -> ResourceId {
    ResourceId::new("k8s", kind, [cluster, namespace, name])
}

/// The id of a namespace: `k8s/namespace/CLUSTER/NS`.
pub fn namespace_id(cluster: &str, namespace: &str) -> ResourceId {
    ResourceId::new("k8s", NAMESPACE, [cluster, namespace])
}

/// The id of the hardening of a namespace's `default` SA.
pub fn default_sa_id(cluster: &str, namespace: &str) -> ResourceId {
    ResourceId::new("k8s", DEFAULT_SA, [cluster, namespace])
}

/// A KSA as [`ids`] needs it: where it is, and whether it gets a Role.
#[derive(Debug, Clone, Copy)]
pub struct KsaKey<'a> {
    /// The plan's cluster name.
    pub cluster: &'a str,
    /// The KSA's namespace.
    pub namespace: &'a str,
    /// The KSA's name.
    pub service_account: &'a str,
    /// Whether the plan gives it RBAC rules (a Role and a RoleBinding).
    pub has_rules: bool,
}

/// The ids [`compile`] gives these KSAs, sorted, without building their resources: what
/// observe reads follows from them alone, so a plan's read-ahead starts on them before
/// anything else compiles (`ids_are_compiles_ids` holds the two equal).
pub fn ids<'a>(
    clusters: &[ClusterOptions],
    ksas: impl IntoIterator<Item = KsaKey<'a>>,
) -> Vec<ResourceId> {
    let options: BTreeMap<&str, &ClusterOptions> =
        clusters.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut namespaces: HashSet<(&str, &str)> = HashSet::new();
    let mut out = Vec::new();
    for k in ksas {
        let cluster = options.get(k.cluster);
        let first_in_namespace = namespaces.insert((k.cluster, k.namespace));
        if first_in_namespace && cluster.is_some_and(|c| c.create_namespaces) {
            out.push(namespace_id(k.cluster, k.namespace));
        }
        out.push(object_id(
            crate::kinds::SERVICEACCOUNT,
            k.cluster,
            k.namespace,
            k.service_account,
        ));
        if k.has_rules {
            let name = role_name(k.service_account);
            out.push(object_id(ROLE, k.cluster, k.namespace, &name));
            out.push(object_id(ROLEBINDING, k.cluster, k.namespace, &name));
        }
        if first_in_namespace && cluster.is_some_and(|c| c.harden_default_service_accounts) {
            out.push(default_sa_id(k.cluster, k.namespace));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// One id of each list [`ids`]'s objects are in (a cluster's namespaces, and each kind
/// in each namespace): what a read-ahead needs, since it reads whole lists, in a few
/// dozen ids where [`ids`] makes one or more per KSA (`list_ids_cover_the_lists_of_ids`).
pub fn list_ids<'a>(
    clusters: &[ClusterOptions],
    ksas: impl IntoIterator<Item = KsaKey<'a>>,
) -> Vec<ResourceId> {
    // The first KSA of a namespace stands for its namespace, its service accounts and its
    // `default` one; the first with rules for its Roles and RoleBindings.
    let mut seen: HashSet<(&str, &str, bool)> = HashSet::new();
    ids(
        clusters,
        ksas.into_iter()
            .filter(|k| seen.insert((k.cluster, k.namespace, k.has_rules))),
    )
}

/// Compiles every KSA into its resources, in the order of the KSAs (each KSA's namespace
/// first, where it is the first in it), each made shared (`Arc`) as it is built.
///
/// The KSAs are taken one at a time, so a plan's specs never exist all at once, and the
/// resources are built where they stay: a vector of resources turned into shared ones
/// afterwards would hold every Kubernetes resource twice at the plan's peak of memory.
///
/// A KSA whose cluster is not in `clusters` gets no namespace creation and no hardening;
/// the plan layer reports undeclared clusters before compile runs.
pub fn compile(
    clusters: &[ClusterOptions],
    ksas: impl IntoIterator<Item = KsaSpec>,
) -> Vec<Arc<Resource>> {
    let options: BTreeMap<&str, &ClusterOptions> =
        clusters.iter().map(|c| (c.name.as_str(), c)).collect();
    // A namespace (and its default SA) serves every KSA in it: made once, its id shared.
    // By cluster, then namespace: looked up borrowed, owned once each.
    let mut namespaces: BTreeMap<String, BTreeMap<String, ResourceId>> = BTreeMap::new();
    let ksas = ksas.into_iter();
    // A service account per KSA, and a few namespaces: room for a tenth more.
    let (at_least, _) = ksas.size_hint();
    let mut out: Vec<Arc<Resource>> = Vec::with_capacity(at_least + at_least / 10);
    for mut ksa in ksas {
        // Labels and annotations move into the KSA's attributes; the rest is read where
        // it is.
        let labels = std::mem::take(&mut ksa.labels);
        let annotations = std::mem::take(&mut ksa.annotations);
        let w = &ksa.workload;
        let cluster = options.get(w.cluster.as_str());
        let creates_ns = cluster.is_some_and(|c| c.create_namespaces);
        let hardens = cluster.is_some_and(|c| c.harden_default_service_accounts);
        let origin = Some(ksa.origin.clone());

        let known = namespaces
            .get(w.cluster.as_str())
            .and_then(|in_cluster| in_cluster.get(w.namespace.as_str()));
        let (ns_id, first_in_namespace) = match known {
            Some(id) => (id.clone(), false),
            None => {
                let id = namespace_id(&w.cluster, &w.namespace);
                namespaces
                    .entry(w.cluster.clone())
                    .or_default()
                    .insert(w.namespace.clone(), id.clone());
                (id, true)
            }
        };
        if creates_ns && first_in_namespace {
            // Shared: an existing namespace is used as it is, whoever made it.
            let mut r = Resource::new(ns_id.clone()).mode(Mode::Shared);
            r.origin = origin.clone();
            out.push(Arc::new(r));
        }
        let after_ns = |mut r: Resource| {
            if creates_ns {
                r = r.depends_on(&ns_id);
            }
            r
        };

        let sa_id = w.ksa_id();
        let mut sa = after_ns(Resource::new(sa_id.clone()).attr(AUTOMOUNT, ksa.automount));
        for (k, v) in labels {
            sa = sa.attr(format!("labels.{k}"), v);
        }
        for (k, v) in annotations {
            sa = sa.attr(format!("annotations.{k}"), v);
        }
        for dep in &ksa.depends_on {
            sa = sa.depends_on(dep);
        }
        sa = sa.adoptable("adopt", ksa.adopt);
        sa.origin = origin.clone();
        out.push(Arc::new(sa));

        if !ksa.rules.is_empty() {
            let name = role_name(&w.service_account);
            let role_id = object_id(ROLE, &w.cluster, &w.namespace, &name);
            let mut role =
                after_ns(Resource::new(role_id.clone()).attr("rules", normalize_rules(&ksa.rules)));
            role.origin = origin.clone();
            let binding_id = object_id(ROLEBINDING, &w.cluster, &w.namespace, &name);
            let mut binding = after_ns(
                Resource::new(binding_id)
                    .attr("roleRef", role_ref(&name))
                    .attr(
                        "subjects",
                        json!([{
                            "kind": "ServiceAccount",
                            "name": w.service_account,
                            "namespace": w.namespace,
                        }]),
                    ),
            )
            .depends_on(&role_id)
            .depends_on(&sa_id);
            binding.origin = origin.clone();
            out.push(Arc::new(role));
            out.push(Arc::new(binding));
        }

        if hardens && first_in_namespace {
            let id = default_sa_id(&w.cluster, &w.namespace);
            let mut r = after_ns(Resource::new(id).attr(AUTOMOUNT, false).mode(Mode::Fields));
            r.origin = origin;
            out.push(Arc::new(r));
        }
    }
    // Of two KSAs with one id (validation reports them) the later wins. Not sorted here:
    // the plan's compile sorts every cloud's resources together, once.
    let mut seen = HashSet::with_capacity(out.len());
    out.reverse();
    out.retain(|r| seen.insert(r.id.clone()));
    out.reverse();
    out
}

/// The `roleRef` of the binding for Role `name`, as compile and observe both write it.
pub(crate) fn role_ref(name: &str) -> Value {
    json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name })
}

/// Rules in canonical form: every list sorted and deduplicated, empty `resourceNames`
/// omitted, rules deduplicated and sorted by their JSON text. Observe normalizes live
/// Roles with this same function, so equal rule sets compare equal however written.
pub fn normalize_rules(rules: &[PolicyRule]) -> Value {
    let canon = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let mut out: Vec<(String, Value)> = rules
        .iter()
        .map(|r| {
            let mut obj = serde_json::Map::new();
            obj.insert("apiGroups".into(), json!(canon(&r.api_groups)));
            obj.insert("resources".into(), json!(canon(&r.resources)));
            obj.insert("verbs".into(), json!(canon(&r.verbs)));
            if !r.resource_names.is_empty() {
                obj.insert("resourceNames".into(), json!(canon(&r.resource_names)));
            }
            let value = Value::Object(obj);
            (value.to_string(), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Value::Array(out.into_iter().map(|(_, v)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::SERVICEACCOUNT;
    use wid_core::AttrValue;

    fn cluster(name: &str, create: bool, harden: bool) -> ClusterOptions {
        ClusterOptions {
            name: name.into(),
            create_namespaces: create,
            harden_default_service_accounts: harden,
        }
    }

    fn ksa(cluster: &str, ns: &str, name: &str) -> KsaSpec {
        KsaSpec {
            workload: WorkloadRef {
                cluster: cluster.into(),
                namespace: ns.into(),
                service_account: name.into(),
            },
            labels: BTreeMap::new(),
            annotations: wid_core::Attrs::new(),
            automount: false,
            rules: Vec::new(),
            adopt: false,
            depends_on: Vec::new(),
            origin: "plans/team.toml:3".into(),
        }
    }

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: v(verbs),
            resource_names: Vec::new(),
        }
    }

    #[test]
    fn ids_are_compiles_ids() {
        let clusters = [
            cluster("a", true, true),
            cluster("b", false, true),
            cluster("c", true, false),
            cluster("d", false, false),
        ];
        let mut ksas = Vec::new();
        for c in ["a", "b", "c", "d", "undeclared"] {
            for (ns, name, rules) in [
                ("one", "x", false),
                ("one", "y", true),
                ("two", "x", true),
                ("one", "x", true),
            ] {
                let mut k = ksa(c, ns, name);
                if rules {
                    k.rules = vec![rule(&[""], &["pods"], &["get"])];
                }
                ksas.push(k);
            }
        }
        let keys: Vec<KsaKey<'_>> = ksas
            .iter()
            .map(|k| KsaKey {
                cluster: &k.workload.cluster,
                namespace: &k.workload.namespace,
                service_account: &k.workload.service_account,
                has_rules: !k.rules.is_empty(),
            })
            .collect();
        let fast = super::ids(&clusters, keys);
        let mut compiled: Vec<ResourceId> = compile(&clusters, ksas.clone())
            .iter()
            .map(|r| r.id.clone())
            .collect();
        compiled.sort_unstable();
        assert_eq!(fast, compiled);
        for kind in [NAMESPACE, DEFAULT_SA, ROLE, ROLEBINDING, SERVICEACCOUNT] {
            assert!(fast.iter().any(|id| id.kind() == kind), "{kind} covered");
        }
    }

    #[test]
    fn list_ids_cover_the_lists_of_ids() {
        let clusters = vec![
            ClusterOptions {
                name: "a".into(),
                create_namespaces: true,
                harden_default_service_accounts: true,
            },
            ClusterOptions {
                name: "b".into(),
                create_namespaces: false,
                harden_default_service_accounts: false,
            },
        ];
        let mut keys = Vec::new();
        for cluster in ["a", "b", "undeclared"] {
            for (namespace, service_account, has_rules) in [
                ("one", "x", false),
                ("one", "y", true),
                ("one", "z", true),
                ("two", "x", false),
                ("two", "y", false),
                ("three", "x", true),
            ] {
                keys.push(KsaKey {
                    cluster,
                    namespace,
                    service_account,
                    has_rules,
                });
            }
        }
        let lists = |ids: &[ResourceId]| -> std::collections::BTreeSet<String> {
            ids.iter()
                .map(|id| {
                    let (kind, cluster, namespace) =
                        crate::kinds::Target::list_key(id).expect("a kubernetes id");
                    format!("{kind:?} {cluster} {namespace:?}")
                })
                .collect()
        };
        let all = super::ids(&clusters, keys.clone());
        let few = list_ids(&clusters, keys);
        assert_eq!(lists(&few), lists(&all));
        assert!(few.len() < all.len(), "{} of {}", few.len(), all.len());
        // Every id it gives is one the plan wants.
        assert!(few.iter().all(|id| all.contains(id)));
    }

    /// [`compile`]'s resources sorted by id, as the plan's compile sorts them.
    fn sorted_compile(clusters: &[ClusterOptions], ksas: Vec<KsaSpec>) -> Vec<Arc<Resource>> {
        let mut out = compile(clusters, ksas);
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn ids(resources: &[Arc<Resource>]) -> Vec<String> {
        resources.iter().map(|r| r.id.to_string()).collect()
    }

    #[test]
    fn a_bare_ksa_is_one_owned_serviceaccount() {
        let mut k = ksa("dev", "apps", "orders");
        k.labels.insert("team".into(), "payments".into());
        let role = ResourceId::new("aws", "iam-role", ["1", "orders"]);
        k.annotations.insert(
            "eks.amazonaws.com/role-arn".into(),
            AttrValue::Unknown {
                from: role.clone(),
                output: "arn".into(),
            },
        );
        k.depends_on.push(role.clone());
        k.adopt = true;
        let out = sorted_compile(&[cluster("dev", false, false)], vec![k]);
        assert_eq!(ids(&out), ["k8s/serviceaccount/dev/apps/orders"]);
        let sa = &out[0];
        assert_eq!(sa.mode, Mode::Owned);
        assert!(sa.adopt);
        assert_eq!(sa.depends_on, [role]);
        let keys: Vec<_> = sa.attrs.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "annotations.eks.amazonaws.com/role-arn",
                "automountServiceAccountToken",
                "labels.team"
            ]
        );
        assert_eq!(sa.attrs[AUTOMOUNT], AttrValue::Known(json!(false)));
        assert_eq!(sa.origin.as_deref(), Some("plans/team.toml:3"));
    }

    #[test]
    fn rules_add_a_role_and_a_binding_after_the_role_and_the_ksa() {
        let mut k = ksa("dev", "apps", "orders");
        k.rules = vec![rule(&[""], &["configmaps"], &["get"])];
        let out = sorted_compile(&[], vec![k]);
        assert_eq!(
            ids(&out),
            [
                "k8s/role/dev/apps/wid-orders",
                "k8s/rolebinding/dev/apps/wid-orders",
                "k8s/serviceaccount/dev/apps/orders"
            ]
        );
        let binding = &out[1];
        assert_eq!(
            binding.depends_on,
            [
                object_id(ROLE, "dev", "apps", "wid-orders"),
                object_id(SERVICEACCOUNT, "dev", "apps", "orders")
            ]
        );
        assert_eq!(
            binding.attrs["roleRef"],
            AttrValue::Known(
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wid-orders"})
            )
        );
        assert_eq!(
            binding.attrs["subjects"],
            AttrValue::Known(
                json!([{"kind": "ServiceAccount", "name": "orders", "namespace": "apps"}])
            )
        );
    }

    #[test]
    fn created_namespaces_come_first_and_are_shared() {
        let mut k = ksa("dev", "apps", "orders");
        k.rules = vec![rule(&[""], &["pods"], &["get"])];
        let out = sorted_compile(
            &[cluster("dev", true, true)],
            vec![k, ksa("dev", "apps", "billing")],
        );
        let ns = namespace_id("dev", "apps");
        let n = out.iter().find(|r| r.id == ns).unwrap();
        assert_eq!(n.mode, Mode::Shared);
        assert!(n.attrs.is_empty());
        for r in out.iter().filter(|r| r.id != ns) {
            assert!(r.depends_on.contains(&ns), "{} must wait for {ns}", r.id);
        }
        assert_eq!(out.iter().filter(|r| r.id == ns).count(), 1);
    }

    #[test]
    fn one_resource_per_id_the_later_ksa_winning() {
        let mut again = ksa("dev", "apps", "orders");
        again.automount = true;
        let out = sorted_compile(
            &[cluster("dev", true, true), cluster("prod", false, false)],
            vec![
                ksa("prod", "web", "z"),
                ksa("dev", "apps", "orders"),
                ksa("dev", "apps", "billing"),
                again,
            ],
        );
        let got = ids(&out);
        let mut once = got.clone();
        once.dedup();
        assert_eq!(got, once, "no id twice");
        assert_eq!(got.len(), 5, "{got:?}");
        let orders = out
            .iter()
            .find(|r| r.id.to_string() == "k8s/serviceaccount/dev/apps/orders")
            .unwrap();
        assert_eq!(orders.attrs[AUTOMOUNT], AttrValue::Known(json!(true)));
    }

    #[test]
    fn hardening_covers_only_namespaces_the_plan_touches_in_hardening_clusters() {
        let out = sorted_compile(
            &[cluster("a", false, true), cluster("b", false, false)],
            vec![
                ksa("a", "one", "x"),
                ksa("a", "one", "y"),
                ksa("a", "two", "z"),
                ksa("b", "three", "w"),
            ],
        );
        let hardened: Vec<_> = out
            .iter()
            .filter(|r| r.id.kind() == DEFAULT_SA)
            .map(|r| (r.id.to_string(), r.mode))
            .collect();
        assert_eq!(
            hardened,
            [
                ("k8s/default-serviceaccount/a/one".to_owned(), Mode::Fields),
                ("k8s/default-serviceaccount/a/two".to_owned(), Mode::Fields)
            ]
        );
        let d = out.iter().find(|r| r.id.kind() == DEFAULT_SA).unwrap();
        assert_eq!(d.attrs.len(), 1);
        assert_eq!(d.attrs[AUTOMOUNT], AttrValue::Known(json!(false)));
    }

    #[test]
    fn rules_normalize_regardless_of_order_and_duplicates() {
        let a = normalize_rules(&[
            rule(&["apps"], &["deployments"], &["list", "get", "get"]),
            rule(&[""], &["configmaps", "secrets"], &["watch"]),
        ]);
        let b = normalize_rules(&[
            rule(&[""], &["secrets", "configmaps"], &["watch"]),
            rule(&["apps"], &["deployments"], &["get", "list"]),
            rule(&[""], &["configmaps", "secrets"], &["watch"]),
        ]);
        assert_eq!(a, b);
        assert_eq!(
            a,
            json!([
                {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}
            ])
        );
        let mut named = rule(&[""], &["configmaps"], &["get"]);
        named.resource_names = vec!["b".into(), "a".into()];
        assert_eq!(
            normalize_rules(&[named])[0]["resourceNames"],
            json!(["a", "b"])
        );
    }

    #[test]
    fn role_names_are_prefixed() {
        assert_eq!(role_name("orders"), "wid-orders");
    }
}
