//! The [`Provider`] implementation: routes each resource kind to its observe and apply.

use std::sync::Arc;

use async_trait::async_trait;
use wid_core::{
    Change, ErrorKind, Observed, Outputs, Owner, Preflight, Provider, ProviderError, ReadAhead,
    Resource, ResourceId,
};

use crate::client::AzureProvider;
use crate::ids::{KIND_FIC, KIND_IDENTITY, PROVIDER};

#[async_trait]
impl Provider for AzureProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    /// Reads each named AKS cluster (its issuer, and whether it can serve workload
    /// identity), then the resource groups whose location identities default to.
    async fn preflight(&self, clusters: &[String]) -> Result<Preflight, ProviderError> {
        self.preflight_clusters(clusters).await
    }

    async fn observe(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        self.observe_all(wanted, owner).await
    }

    /// Looks up the plan's roles and lists the resource groups observe will list.
    fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        AzureProvider::read_ahead(self, ids, owner)
    }

    fn forget_read_ahead(&self) {
        AzureProvider::forget_read_ahead(self);
    }

    /// Drops what was listed ahead of observe before and after the change: nothing read
    /// while wid writes is used.
    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        wid_core::ahead::writing(
            || AzureProvider::forget_read_ahead(self),
            self.apply_change(change, owner),
        )
        .await
    }
}

impl AzureProvider {
    async fn apply_change(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        match change.id.kind() {
            KIND_IDENTITY => self.apply_identity(change, owner).await,
            KIND_FIC => self.apply_fic(change).await,
            other => Err(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "the azure provider does not manage {other} resources ({})",
                    change.id
                ),
            )
            .with_resource(&change.id)),
        }
    }
}
