//! The [`Provider`] implementation: routes each resource kind to its observe and apply.

use async_trait::async_trait;
use wid_core::{Change, ErrorKind, Observed, Outputs, Owner, Provider, ProviderError, Resource};

use crate::client::AwsProvider;
use crate::ids::{KIND_ASSOCIATION, KIND_OIDC, KIND_ROLE};

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn observe(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        self.observe_all(wanted, owner).await
    }

    async fn apply(&self, change: &Change, owner: &Owner) -> Result<Outputs, ProviderError> {
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
