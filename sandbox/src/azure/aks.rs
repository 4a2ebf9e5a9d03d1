//! Microsoft.ContainerService/managedClusters: the AKS clusters of the plan, created at
//! start from their declarations with the OIDC issuer and workload identity enabled, read
//! with GET, and switched off or on by tests.
//!
//! A cluster's issuer is `https://{location}.oic.prod-aks.azure.com/{tenant}/{guid}/`
//! (trailing slash included, as AKS reports it), with the GUID derived from the cluster's
//! subscription, resource group and name so it survives restarts and fresh sandboxes. The
//! plan's Kubernetes cluster issues ServiceAccount tokens with that issuer while it is
//! enabled.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{Value, json};

use super::arm::{self, ArmError, ArmResult, reply};
use super::model::ManagedCluster;
use super::resources::{ensure_group, ensure_subscription, group};
use crate::{ClusterDecl, Shared, State};

/// The resource type as the service writes it.
const TYPE: &str = "Microsoft.ContainerService/ManagedClusters";
/// The Kubernetes version new clusters report.
const KUBERNETES_VERSION: &str = "1.33.3";

/// Creates the subscription, resource group and managed cluster an AKS declaration names,
/// where missing, and points the plan cluster's token issuer at the managed cluster's OIDC
/// issuer. The tenant is the declaration's, else derived from the subscription; the
/// location the declaration's, else the resource group's (`eastus` for a new one).
pub fn ensure_cluster(state: &mut State, decl: &ClusterDecl) {
    let Some(aks) = &decl.aks else {
        return;
    };
    let tenant = ensure_subscription(state, &aks.subscription, aks.tenant.as_deref())
        .tenant_id
        .clone();
    let rg_location = aks.location.as_deref().unwrap_or("eastus");
    let g = ensure_group(state, &aks.subscription, &aks.resource_group, rg_location);
    let location = aks
        .location
        .as_deref()
        .map_or_else(|| g.location.clone(), arm::normalize_location);
    let rg_name = g.name.clone();
    let cluster = g
        .managed_clusters
        .entry(aks.name.to_ascii_lowercase())
        .or_insert_with(|| {
            let guid = arm::stable_guid(&format!(
                "aks-issuer/{}/{}/{}",
                aks.subscription.to_ascii_lowercase(),
                aks.resource_group.to_ascii_lowercase(),
                aks.name.to_ascii_lowercase()
            ));
            let dns_prefix = format!(
                "{}-{}-{}",
                aks.name,
                aks.resource_group,
                &aks.subscription.chars().take(6).collect::<String>()
            );
            ManagedCluster {
                name: aks.name.clone(),
                fqdn: format!("{dns_prefix}-{}.hcp.{location}.azmk8s.io", &guid[..8]),
                dns_prefix,
                issuer_url: issuer_url(&location, &tenant, &guid),
                location: location.clone(),
                tags: BTreeMap::new(),
                kubernetes_version: KUBERNETES_VERSION.to_owned(),
                oidc_issuer_enabled: true,
                workload_identity_enabled: true,
                node_resource_group: format!("MC_{rg_name}_{}_{location}", aks.name),
                plan_cluster: None,
            }
        });
    cluster.plan_cluster = Some(decl.name.clone());
    let issuer = cluster
        .oidc_issuer_enabled
        .then(|| cluster.issuer_url.clone());
    adopt_issuer(state, &decl.name, issuer);
}

fn issuer_url(location: &str, tenant: &str, guid: &str) -> String {
    format!("https://{location}.oic.prod-aks.azure.com/{tenant}/{guid}/")
}

/// Makes the plan cluster's tokens carry `issuer`, or the in-cluster default for `None`.
fn adopt_issuer(state: &mut State, plan_cluster: &str, issuer: Option<String>) {
    if let Some(cluster) = state.clusters.get_mut(plan_cluster) {
        cluster.issuer = issuer.unwrap_or_default();
    }
}

fn cluster_mut<'a>(
    state: &'a mut State,
    sub: &str,
    rg: &str,
    name: &str,
) -> Option<&'a mut ManagedCluster> {
    state
        .azure
        .subscriptions
        .get_mut(&sub.to_ascii_lowercase())?
        .resource_groups
        .get_mut(&rg.to_ascii_lowercase())?
        .managed_clusters
        .get_mut(&name.to_ascii_lowercase())
}

/// Enables or disables a managed cluster's OIDC issuer (`oidcIssuerProfile.enabled`); its
/// Kubernetes tokens follow. Returns whether the cluster exists.
pub fn set_oidc_issuer(state: &mut State, sub: &str, rg: &str, name: &str, enabled: bool) -> bool {
    let Some(cluster) = cluster_mut(state, sub, rg, name) else {
        return false;
    };
    cluster.oidc_issuer_enabled = enabled;
    let plan = cluster.plan_cluster.clone();
    let issuer = enabled.then(|| cluster.issuer_url.clone());
    if let Some(plan) = plan {
        adopt_issuer(state, &plan, issuer);
    }
    true
}

/// Enables or disables a managed cluster's workload identity
/// (`securityProfile.workloadIdentity.enabled`). Returns whether the cluster exists.
pub fn set_workload_identity(
    state: &mut State,
    sub: &str,
    rg: &str,
    name: &str,
    enabled: bool,
) -> bool {
    match cluster_mut(state, sub, rg, name) {
        Some(cluster) => {
            cluster.workload_identity_enabled = enabled;
            true
        }
        None => false,
    }
}

fn render(sub: &str, rg: &str, c: &ManagedCluster) -> Value {
    let mut oidc = json!({ "enabled": c.oidc_issuer_enabled });
    if c.oidc_issuer_enabled {
        oidc["issuerURL"] = json!(c.issuer_url);
    }
    let security = if c.workload_identity_enabled {
        json!({ "workloadIdentity": { "enabled": true } })
    } else {
        json!({})
    };
    json!({
        "id": format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{}", c.name),
        "location": c.location,
        "name": c.name,
        "tags": c.tags,
        "type": TYPE,
        "sku": { "name": "Base", "tier": "Free" },
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": { "code": "Running" },
            "maxAgentPools": 100,
            "kubernetesVersion": c.kubernetes_version,
            "currentKubernetesVersion": c.kubernetes_version,
            "dnsPrefix": c.dns_prefix,
            "fqdn": c.fqdn,
            "azurePortalFQDN": c.fqdn.replacen(".hcp.", ".portal.hcp.", 1),
            "nodeResourceGroup": c.node_resource_group,
            "enableRBAC": true,
            "supportPlan": "KubernetesOfficial",
            "oidcIssuerProfile": oidc,
            "securityProfile": security,
        },
    })
}

/// `GET …/providers/Microsoft.ContainerService/managedClusters/{name}`.
pub(crate) fn get(shared: &Shared, sub: &str, rg: &str, name: &str) -> ArmResult {
    shared.read(|state| {
        let g = group(state, sub, rg)?;
        let cluster = g
            .managed_clusters
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| {
                ArmError::resource_not_found("Microsoft.ContainerService/managedClusters", name, rg)
            })?;
        let sub_id = &state.azure.subscriptions[&sub.to_ascii_lowercase()].id;
        Ok(reply(StatusCode::OK, render(sub_id, &g.name, cluster)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AksDecl, ClusterKind};

    fn decl(tenant: Option<&str>) -> ClusterDecl {
        ClusterDecl {
            name: "aks-dev".into(),
            kind: ClusterKind::Aks,
            eks: None,
            gke: None,
            aks: Some(AksDecl {
                subscription: "00000000-0000-0000-0000-000000000001".into(),
                resource_group: "rg-dev".into(),
                name: "dev".into(),
                tenant: tenant.map(str::to_owned),
                location: None,
            }),
        }
    }

    #[test]
    fn clusters_get_a_stable_issuer_with_a_trailing_slash() {
        let mut state = State::default();
        crate::k8s::ensure_cluster(&mut state, &decl(None));
        ensure_cluster(
            &mut state,
            &decl(Some("11111111-2222-3333-4444-555555555555")),
        );
        let g = &state.azure.subscriptions["00000000-0000-0000-0000-000000000001"].resource_groups
            ["rg-dev"];
        assert_eq!(g.location, "eastus");
        let c = &g.managed_clusters["dev"];
        let guid = arm::stable_guid("aks-issuer/00000000-0000-0000-0000-000000000001/rg-dev/dev");
        assert_eq!(
            c.issuer_url,
            format!(
                "https://eastus.oic.prod-aks.azure.com/11111111-2222-3333-4444-555555555555/{guid}/"
            )
        );
        assert_eq!(state.clusters["aks-dev"].issuer, c.issuer_url);

        let url = c.issuer_url.clone();
        let mut fresh = State::default();
        ensure_cluster(
            &mut fresh,
            &decl(Some("11111111-2222-3333-4444-555555555555")),
        );
        assert_eq!(fresh.azure.subscriptions["00000000-0000-0000-0000-000000000001"].resource_groups["rg-dev"].managed_clusters["dev"].issuer_url, url);
    }

    #[test]
    fn disabling_the_issuer_reverts_tokens_to_the_in_cluster_issuer() {
        let mut state = State::default();
        crate::k8s::ensure_cluster(&mut state, &decl(None));
        ensure_cluster(&mut state, &decl(None));
        let sub = "00000000-0000-0000-0000-000000000001";
        assert!(set_oidc_issuer(&mut state, sub, "RG-DEV", "DEV", false));
        assert_eq!(state.clusters["aks-dev"].issuer, "");
        let body = render(
            sub,
            "rg-dev",
            &state.azure.subscriptions[sub].resource_groups["rg-dev"].managed_clusters["dev"],
        );
        assert_eq!(
            body["properties"]["oidcIssuerProfile"],
            json!({ "enabled": false })
        );
        assert!(set_oidc_issuer(&mut state, sub, "rg-dev", "dev", true));
        assert!(
            state.clusters["aks-dev"]
                .issuer
                .starts_with("https://eastus.oic.prod-aks.azure.com/")
        );
        assert!(set_workload_identity(
            &mut state, sub, "rg-dev", "dev", false
        ));
        assert!(!set_workload_identity(
            &mut state, sub, "rg-dev", "nope", false
        ));
    }
}
