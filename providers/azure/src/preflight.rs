//! Preflight: before any identity call, read each AKS cluster that has azure workloads.
//! A cluster without the OIDC issuer or the workload identity webhook fails the plan,
//! naming it; otherwise its `issuerURL` (exactly as AKS reports it, trailing slash
//! included) becomes the issuer its federated credentials trust. The resource
//! groups whose location an identity defaults to are read, once each per run, together
//! with the clusters.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use wid_core::{ErrorKind, Preflight, ProviderError};

use crate::block::AksCluster;
use crate::client::{AzureProvider, CONTAINER_SERVICE_API, RESOURCES_API};
use crate::compile::location_fact;
use crate::error::{CLUSTER_GET, Call, GROUP_GET};

impl AzureProvider {
    pub(crate) async fn preflight_clusters(
        &self,
        names: &[String],
    ) -> Result<Preflight, ProviderError> {
        let clusters: Vec<AksCluster> = {
            let known = self
                .clusters
                .lock()
                .expect("cluster map lock is never poisoned");
            names.iter().filter_map(|n| known.get(n).cloned()).collect()
        };
        let groups: Vec<BTreeSet<String>> = {
            let known = self
                .groups
                .lock()
                .expect("group map lock is never poisoned");
            clusters
                .iter()
                .map(|c| known.get(&c.plan_name).cloned().unwrap_or_default())
                .collect()
        };
        // Each resource group once, read together with the clusters (neither needs the
        // other); results are merged in plan order.
        let mut distinct: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        for (cluster, groups) in clusters.iter().zip(&groups) {
            for group in groups {
                distinct
                    .entry(group_key(&cluster.subscription, group))
                    .or_insert_with(|| (cluster.subscription.clone(), group.clone()));
            }
        }
        let reads: Vec<_> = clusters.iter().map(|c| self.read_cluster(c)).collect();
        let reads = futures::stream::iter(reads)
            .buffered(self.calls.concurrency())
            .try_collect::<Vec<_>>();
        let locations: Vec<_> = distinct
            .into_iter()
            .map(|(key, (sub, group))| async move {
                Ok::<_, ProviderError>((key, self.group_location(&sub, &group).await?))
            })
            .collect();
        let locations = futures::stream::iter(locations)
            .buffered(self.calls.concurrency())
            .try_collect::<BTreeMap<_, _>>();
        let (issuers, locations) = futures::join!(reads, locations);
        let (issuers, locations) = (issuers?, locations?);
        let mut out = Preflight::default();
        for ((cluster, issuer), groups) in clusters.iter().zip(issuers).zip(groups) {
            out.issuers.insert(cluster.plan_name.clone(), issuer);
            for group in groups {
                if let Some(location) = locations.get(&group_key(&cluster.subscription, &group)) {
                    out.facts
                        .entry(cluster.plan_name.clone())
                        .or_default()
                        .insert(location_fact(&group), location.clone());
                }
            }
        }
        Ok(out)
    }

    /// The managed cluster's issuer, after checking it can serve workload identity.
    pub(crate) async fn read_cluster(&self, c: &AksCluster) -> Result<String, ProviderError> {
        let path = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            c.subscription, c.resource_group, c.name
        );
        let call = Call::new(
            CLUSTER_GET,
            format!(
                "read AKS cluster {} (plan cluster {}) in resource group {}",
                c.name, c.plan_name, c.resource_group
            ),
            &path,
        );
        let body = self
            .read(&call, &path, CONTAINER_SERVICE_API)
            .await?
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::NotFound,
                    format!("failed to {}: it does not exist", call.doing),
                )
                .with_operation(CLUSTER_GET.name)
                .with_hint(format!(
                    "check `subscription`, `resource_group` and `name` of cluster {} in the plan",
                    c.plan_name
                ))
            })?;
        let props = &body["properties"];
        let fix = format!(
            "az aks update --resource-group {} --name {} --enable-oidc-issuer --enable-workload-identity",
            c.resource_group, c.name
        );
        let refuse = |what: &str| {
            ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "AKS cluster {} (plan cluster {}) has {what} turned off, so its pods cannot use Azure workload identity",
                    c.name, c.plan_name
                ),
            )
            .with_operation(CLUSTER_GET.name)
            .with_hint(format!("turn it on: `{fix}`"))
        };
        if props["oidcIssuerProfile"]["enabled"].as_bool() != Some(true) {
            return Err(refuse("the OIDC issuer (oidcIssuerProfile.enabled)"));
        }
        if props["securityProfile"]["workloadIdentity"]["enabled"].as_bool() != Some(true) {
            return Err(refuse(
                "workload identity (securityProfile.workloadIdentity.enabled)",
            ));
        }
        match props["oidcIssuerProfile"]["issuerURL"].as_str() {
            Some(url) if !url.is_empty() => Ok(url.to_owned()),
            _ => Err(ProviderError::new(
                ErrorKind::Transient,
                format!(
                    "AKS cluster {} (plan cluster {}) reports no issuerURL yet",
                    c.name, c.plan_name
                ),
            )
            .with_hint("the issuer appears a few minutes after it is turned on; run wid again, or set `issuer` on the cluster")),
        }
    }

    /// A resource group's location, read once per run (callers ask for each group once).
    async fn group_location(
        &self,
        subscription: &str,
        group: &str,
    ) -> Result<String, ProviderError> {
        let key = group_key(subscription, group);
        if let Some(l) = self.locations.lock().await.get(&key) {
            return Ok(l.clone());
        }
        let path = format!("/subscriptions/{subscription}/resourcegroups/{group}");
        let call = Call::new(
            GROUP_GET,
            format!("read resource group {group} for its location"),
            &path,
        );
        let body = self
            .read(&call, &path, RESOURCES_API)
            .await?
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::NotFound,
                    format!("failed to {}: it does not exist", call.doing),
                )
                .with_operation(GROUP_GET.name)
                .with_hint(format!(
                    "create resource group {group}, or name an existing one in `azure.resource_group`"
                ))
            })?;
        let location = body["location"].as_str().unwrap_or_default().to_owned();
        self.locations.lock().await.insert(key, location.clone());
        Ok(location)
    }
}

/// A resource group's key: subscription and name, case-folded as ARM compares them.
fn group_key(subscription: &str, group: &str) -> (String, String) {
    (
        subscription.to_ascii_lowercase(),
        group.to_ascii_lowercase(),
    )
}
