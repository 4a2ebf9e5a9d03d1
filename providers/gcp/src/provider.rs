//! The [`Provider`] implementation: routes each resource kind to its observe and apply.

use std::sync::Arc;

use async_trait::async_trait;
use wid_core::{
    Change, ErrorKind, Observed, Outputs, Owner, Preflight, Provider, ProviderError, ReadAhead,
    Resource, ResourceId,
};

use crate::client::GcpProvider;
use crate::ids::{KIND_POLICY, KIND_SA};

#[async_trait]
impl Provider for GcpProvider {
    fn name(&self) -> &'static str {
        "gcp"
    }

    /// Reads each named GKE cluster (`container.clusters.get`): fails naming a cluster
    /// without Workload Identity, warns about node pools without the GKE metadata server,
    /// and looks up project numbers the plan does not give.
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

    /// Lists the projects and reads the project policies observe will read first.
    fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        GcpProvider::read_ahead(self, ids, owner)
    }

    fn forget_read_ahead(&self) {
        GcpProvider::forget_read_ahead(self);
    }

    /// Drops what was read ahead of observe before and after the change: nothing read
    /// while wid writes is used.
    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        wid_core::ahead::writing(
            || GcpProvider::forget_read_ahead(self),
            self.apply_change(change, owner),
        )
        .await
    }

    /// Notes the entries of every binding the run's policy changes add: the first policy
    /// change writes them all to the record before its policy (see
    /// [`crate::record_run`]).
    fn run_starting(&self, changes: &[(&Change, &Owner)]) {
        self.start_run(changes);
    }

    /// Removes from the record the entries written ahead for bindings the run did not
    /// make.
    async fn run_ended(&self) -> Result<(), ProviderError> {
        self.compensate().await
    }
}

impl GcpProvider {
    /// Carries out one change, by kind.
    async fn apply_change(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
        match change.id.kind() {
            KIND_SA => self.apply_account(change, owner).await,
            KIND_POLICY => self.apply_policy(change, owner).await,
            other => Err(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "the gcp provider does not manage {other} resources ({})",
                    change.id
                ),
            )
            .with_resource(&change.id)),
        }
    }
}
