//! The [`Provider`] implementation: routes each resource kind to its observe and apply.

use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use wid_core::{
    Change, ErrorKind, Observed, Outputs, Owner, Preflight, Provider, ProviderError, ReadAhead,
    Resource, ResourceId,
};

use crate::client::AwsProvider;
use crate::ids::{KIND_ASSOCIATION, KIND_OIDC, KIND_ROLE};

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    /// Discovers the issuer of every named EKS cluster whose plan entry does not set one
    /// (one `eks:DescribeCluster` each, concurrently).
    async fn preflight(&self, clusters: &[String]) -> Result<Preflight, ProviderError> {
        let known: Vec<crate::EksCluster> = {
            let map = self
                .plan_clusters
                .lock()
                .expect("cluster map lock is never poisoned");
            clusters
                .iter()
                .filter_map(|c| map.get(c).cloned())
                .collect()
        };
        // The clusters are described concurrently; the first error in plan order wins.
        let found: Vec<(String, String)> = futures::stream::iter(known)
            .map(|cluster| async move {
                let issuer = match &cluster.issuer {
                    Some(issuer) => issuer.clone(),
                    None => self.discover_issuer(&cluster).await?,
                };
                Ok::<_, ProviderError>((cluster.plan_name, issuer))
            })
            .buffered(self.calls.concurrency())
            .try_collect()
            .await?;
        let mut out = Preflight::default();
        out.issuers.extend(found);
        Ok(out)
    }

    async fn observe(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        self.observe_all(wanted, owner).await
    }

    /// Reads observe's first reads ahead of it: OIDC provider lists, bulk role reads and
    /// namespace association listings ([`crate::ahead`]).
    fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        AwsProvider::read_ahead(self, ids, owner)
    }

    fn forget_read_ahead(&self) {
        AwsProvider::forget_read_ahead(self);
    }

    /// Drops what was read ahead of observe before and after the change: nothing read
    /// while wid writes is used.
    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        wid_core::ahead::writing(
            || AwsProvider::forget_read_ahead(self),
            self.apply_change(change, owner),
        )
        .await
    }
}

impl AwsProvider {
    /// Carries out one change, by kind.
    async fn apply_change(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        match change.id.kind() {
            KIND_ROLE => self.apply_role(change, owner).await,
            KIND_OIDC => self.apply_oidc(change, owner).await,
            KIND_ASSOCIATION => self.apply_association(change, owner).await,
            other => Err(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "the aws provider does not manage {other} resources ({})",
                    change.id
                ),
            )
            .with_resource(&change.id)),
        }
    }
}
