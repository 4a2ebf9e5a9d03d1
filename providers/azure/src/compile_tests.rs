//! Tests of compile: shared identities, credential names and serialization keys, the
//! 20-credential cap, annotations.

use super::*;
use crate::block::RoleAssignment;

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const TENANT: &str = "11111111-1111-1111-1111-111111111111";

fn cluster(name: &str) -> AksCluster {
    AksCluster {
        plan_name: name.into(),
        subscription: SUB.into(),
        resource_group: "rg-aks".into(),
        name: format!("{name}-aks"),
        tenant: TENANT.into(),
        issuer: Some(format!(
            "https://eastus.oic.prod-aks.azure.com/{TENANT}/{name}/"
        )),
    }
}

fn block(identity: &str) -> AzureBlock {
    AzureBlock {
        identity: identity.into(),
        resource_group: None,
        location: None,
        tags: wid_core::AttrMap::new(),
        roles: Vec::new(),
        adopt: false,
        credential: None,
    }
}

fn item<'a>(
    block: &'a AzureBlock,
    cluster: &'a AksCluster,
    ns: &str,
    ksa: &str,
) -> AzureWorkload<'a> {
    AzureWorkload {
        block,
        cluster,
        workload: WorkloadRef {
            cluster: cluster.plan_name.clone(),
            namespace: ns.into(),
            service_account: ksa.into(),
        },
        origin: format!("{}/{ns}/{ksa} (p.toml:1:1)", cluster.plan_name).into(),
    }
}

fn eastus(_: &str, fact: &str) -> Option<String> {
    (fact == "location:rg-aks").then(|| "East US".to_owned())
}

/// The first managed identity `c` compiled.
fn first_identity(c: &Compiled) -> &Resource {
    c.resources
        .iter()
        .find(|r| r.id.kind() == ids::KIND_IDENTITY)
        .expect("an identity")
}

fn ids(c: &Compiled) -> Vec<String> {
    c.resources.iter().map(|r| r.id.to_string()).collect()
}

#[test]
fn one_identity_serves_two_clusters_with_a_credential_per_ksa() {
    let (a, b) = (cluster("east"), cluster("west"));
    let mut first = block("orders");
    first.roles.push(RoleAssignment {
        role: "Storage Blob Data Reader".into(),
        scope: None,
    });
    let mut second = first.clone();
    second.roles.push(RoleAssignment {
        role: "Key Vault Secrets User".into(),
        scope: Some(format!(
            "/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv/"
        )),
    });
    let out = compile(
        &[
            item(&first, &a, "apps", "orders"),
            item(&second, &b, "apps", "orders"),
        ],
        "payments",
        &eastus,
    )
    .unwrap();
    let fic_a = names::fic_name("payments", "east", "apps", "orders");
    let fic_b = names::fic_name("payments", "west", "apps", "orders");
    let mut want = vec![
        format!("azure/federated-credential/{SUB}/rg-aks/orders/{fic_a}"),
        format!("azure/federated-credential/{SUB}/rg-aks/orders/{fic_b}"),
        format!("azure/managed-identity/{SUB}/rg-aks/orders"),
    ];
    want.sort();
    assert_eq!(ids(&out), want);
    let identity = first_identity(&out);
    assert_eq!(identity.str_attr("location"), Some("eastus"));
    assert_eq!(
        *identity.attrs["role_assignments"].known().unwrap(),
        json!([
            {"role": "Storage Blob Data Reader", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-aks")},
            {"role": "Key Vault Secrets User", "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv")},
        ])
    );
    assert_eq!(identity.adopt_key.as_deref(), Some("azure.adopt"));
    let fic = out
        .resources
        .iter()
        .find(|r| r.id.part(3) == fic_a)
        .unwrap();
    assert_eq!(fic.str_attr("issuer"), a.issuer.as_deref());
    assert_eq!(
        fic.str_attr("subject"),
        Some("system:serviceaccount:apps:orders")
    );
    assert_eq!(
        *fic.attrs["audiences"].known().unwrap(),
        json!(["api://AzureADTokenExchange"])
    );
    assert_eq!(
        fic.serialize_key.as_deref(),
        Some(identity.id.to_string().as_str())
    );
    assert_eq!(fic.depends_on, std::slice::from_ref(&identity.id));
    let c = &out.contributions[0];
    assert_eq!(
        c.ksa_annotations[CLIENT_ID_ANNOTATION],
        AttrValue::Unknown {
            from: identity.id.clone(),
            output: "client_id".into()
        }
    );
    assert_eq!(
        c.ksa_annotations[TENANT_ID_ANNOTATION],
        AttrValue::from(TENANT)
    );
    assert_eq!(c.ksa_depends_on, [identity.id.clone(), fic.id.clone()]);
}

#[test]
fn an_unknown_location_stays_unknown_offline() {
    let c = cluster("east");
    let b = block("orders");
    let out = compile(&[item(&b, &c, "apps", "orders")], "p", &|_, _| None).unwrap();
    let identity = first_identity(&out);
    assert!(matches!(
        identity.attrs["location"],
        AttrValue::Unknown { .. }
    ));
}

#[test]
fn twenty_one_ksas_on_one_identity_are_refused_naming_them() {
    let c = cluster("east");
    let b = block("shared");
    let ksas: Vec<String> = (0..21).map(|i| format!("ksa-{i}")).collect();
    let items: Vec<AzureWorkload> = ksas.iter().map(|k| item(&b, &c, "apps", k)).collect();
    let issues = compile(&items, "p", &eastus).unwrap_err();
    assert_eq!(issues.len(), 1);
    let (index, issue) = &issues[0];
    assert_eq!(*index, 0);
    assert_eq!(issue.path, ["identity"]);
    assert!(
        issue.message.contains("21 federated credentials"),
        "{}",
        issue.message
    );
    for k in &ksas {
        assert!(
            issue.message.contains(&format!("east/apps/{k} ")),
            "{k} missing"
        );
    }
    // Twenty fit.
    assert!(compile(&items[..20], "p", &eastus).is_ok());
}

#[test]
fn blocks_of_one_identity_must_agree() {
    let c = cluster("east");
    let a = block("orders");
    let mut b = block("orders");
    b.tags.insert("team".into(), "x".into());
    b.location = Some("westus".into());
    b.adopt = true;
    let issues = compile(
        &[item(&a, &c, "apps", "a"), item(&b, &c, "apps", "b")],
        "p",
        &eastus,
    )
    .unwrap_err();
    let fields: Vec<String> = issues
        .iter()
        .map(|(i, f)| format!("{i}:{}", f.path.join(".")))
        .collect();
    assert_eq!(fields, ["1:location", "1:tags", "1:adopt"]);
}

#[test]
fn identities_in_other_groups_and_roles_at_other_scopes() {
    let c = cluster("east");
    let mut b = block("orders");
    b.resource_group = Some("rg-ids".into());
    b.location = Some("westeurope".into());
    b.roles.push(RoleAssignment {
        role: "Reader".into(),
        scope: None,
    });
    let out = compile(&[item(&b, &c, "apps", "a")], "p", &eastus).unwrap();
    let identity = first_identity(&out);
    assert_eq!(identity.id, ids::identity_id(SUB, "rg-ids", "orders"));
    assert_eq!(identity.str_attr("location"), Some("westeurope"));
    assert_eq!(
        wanted_roles(identity),
        [(
            format!("/subscriptions/{SUB}/resourceGroups/rg-ids"),
            "Reader".to_owned()
        )]
        .into()
    );
}

#[test]
fn roles_equal_but_for_case_are_assigned_once_in_scope_then_role_order() {
    let c = cluster("east");
    let mut b = block("orders");
    b.location = Some("westeurope".into());
    for (role, scope) in [
        ("reader", "/subscriptions/S/resourceGroups/b"),
        ("Reader", "/subscriptions/S/resourceGroups/B"),
        ("Contributor", "/subscriptions/S/resourceGroups/a"),
        ("Reader", "/subscriptions/S/resourceGroups/a"),
    ] {
        b.roles.push(RoleAssignment {
            role: role.into(),
            scope: Some(scope.into()),
        });
    }
    let out = compile(&[item(&b, &c, "apps", "a")], "p", &eastus).unwrap();
    let identity = first_identity(&out);
    // The first spelling a workload gives is kept.
    assert_eq!(
        identity.attrs["role_assignments"],
        AttrValue::from(json!([
            {"role": "Contributor", "scope": "/subscriptions/S/resourceGroups/a"},
            {"role": "Reader", "scope": "/subscriptions/S/resourceGroups/a"},
            {"role": "reader", "scope": "/subscriptions/S/resourceGroups/b"},
        ]))
    );
    // Pairs given to `roles_value` directly (as observe does): the last spelling stays.
    assert_eq!(
        roles_value(vec![
            ("/s/B".to_owned(), "Reader".to_owned()),
            ("/s/b".to_owned(), "reader".to_owned()),
            ("/s/a".to_owned(), "Reader".to_owned()),
        ]),
        json!([
            {"role": "Reader", "scope": "/s/a"},
            {"role": "reader", "scope": "/s/b"},
        ])
    );
}
