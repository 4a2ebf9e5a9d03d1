//! Role references to role definition GUIDs. A role named in the plan is looked up once
//! per scope per run (`roleDefinitions?$filter=roleName eq '…'` at the assignment's
//! scope, where custom roles are assignable); a GUID or role definition id needs no call.
//! The plan's roles are looked up ahead of observe ([`AzureProvider::roles_ahead`]), as
//! soon as the plan is read: role definitions do not depend on anything wid writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use wid_core::{ErrorKind, ProviderError, ResourceId};

use crate::client::{AUTHORIZATION_API, AzureProvider};
use crate::error::{Call, ROLE_DEFINITION_LIST};
use crate::ids;
use crate::names::{self, RoleRef};

/// One role's look-up: its GUID, kept for the run; or a failed read-ahead's error, given
/// to the one reader that comes next (as if it had made the call), after which the role
/// is looked up again. Empty until looked up.
pub(crate) type RoleSlot = Arc<tokio::sync::Mutex<Option<Result<String, ProviderError>>>>;

type SlotGuard = tokio::sync::OwnedMutexGuard<Option<Result<String, ProviderError>>>;

impl AzureProvider {
    /// The role definition GUID of `role` (as written in the plan) at `scope`.
    pub(crate) async fn role_guid(
        &self,
        scope: &str,
        role: &str,
        id: &ResourceId,
    ) -> Result<String, ProviderError> {
        let name = match RoleRef::parse(role) {
            Ok(RoleRef::Id(guid)) => return Ok(guid),
            Ok(RoleRef::Name(name)) => name,
            Err(why) => return Err(ProviderError::new(ErrorKind::Invalid, why).with_resource(id)),
        };
        // One slot per role and scope, held across its lookup: concurrent readers of one
        // role wait for one call, readers of other roles do not wait at all.
        let mut cached = self.role_slot(scope, &name).lock_owned().await;
        match cached.take() {
            Some(Ok(guid)) => {
                *cached = Some(Ok(guid.clone()));
                return Ok(guid);
            }
            Some(Err(failed_ahead)) => return Err(failed_ahead),
            None => {}
        }
        let guid = self.look_up_role(scope, &name, id).await?;
        *cached = Some(Ok(guid.clone()));
        Ok(guid)
    }

    fn role_slot(&self, scope: &str, name: &str) -> RoleSlot {
        let key = (scope.to_ascii_lowercase(), name.to_ascii_lowercase());
        self.roles
            .lock()
            .expect("role cache lock is never poisoned")
            .entry(key)
            .or_default()
            .clone()
    }

    /// Registers the look-up of every role by name (see [`know_plan`](Self::know_plan))
    /// that one of `identities` (folded ids) holds and nobody looked up yet, each slot
    /// locked until its answer is in: a reader that comes meanwhile waits for it instead
    /// of calling.
    pub(crate) fn roles_ahead(
        &self,
        identities: &BTreeSet<String>,
    ) -> Vec<(String, String, ResourceId, SlotGuard)> {
        let wanted: Vec<((String, String), ResourceId)> = self
            .plan_roles
            .lock()
            .expect("plan role lock is never poisoned")
            .iter()
            .filter_map(|(pair, holders)| {
                let holder = holders
                    .iter()
                    .find(|id| identities.contains(&ids::fold(id)))?;
                Some((pair.clone(), holder.clone()))
            })
            .collect();
        wanted
            .into_iter()
            .filter_map(|((scope, role), id)| {
                let Ok(RoleRef::Name(name)) = RoleRef::parse(&role) else {
                    return None;
                };
                let guard = self.role_slot(&scope, &name).try_lock_owned().ok()?;
                guard.is_none().then_some((scope, name, id, guard))
            })
            .collect()
    }

    /// Makes the look-ups [`roles_ahead`](Self::roles_ahead) registered, keeping each
    /// answer (a failure too, for the next reader).
    pub(crate) async fn fill_roles(&self, pending: Vec<(String, String, ResourceId, SlotGuard)>) {
        use futures::StreamExt;
        futures::stream::iter(pending)
            .for_each_concurrent(
                self.calls.concurrency(),
                |(scope, name, id, mut slot)| async move {
                    *slot = Some(self.look_up_role(&scope, &name, &id).await);
                },
            )
            .await;
    }

    /// One `roleDefinitions` list: the GUID of the role named `name` at `scope`.
    async fn look_up_role(
        &self,
        scope: &str,
        name: &str,
        id: &ResourceId,
    ) -> Result<String, ProviderError> {
        let call = Call::new(
            ROLE_DEFINITION_LIST,
            format!("look up role {name:?} at {scope}"),
            scope,
        )
        .id(id);
        let filter = format!("roleName eq '{}'", name.replace('\'', "''"));
        let found = self
            .list(
                &call,
                &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions"),
                &[("$filter", &filter), ("api-version", AUTHORIZATION_API)],
            )
            .await?;
        let guid = found
            .iter()
            .find(|d| {
                d["properties"]["roleName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|d| d["name"].as_str().or_else(|| d["id"].as_str()))
            .map(names::role_guid)
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!("role {name:?} does not exist at {scope}"),
                )
                .with_resource(id)
                .with_operation(ROLE_DEFINITION_LIST.name)
                .with_hint(format!(
                    "check the role's name (`az role definition list --name {name:?} --scope {scope}`) in `azure.roles`, or give its role definition GUID"
                ))
            })?;
        Ok(guid)
    }
}
