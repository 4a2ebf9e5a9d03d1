//! Role references to role definition GUIDs. A role named in the plan is looked up once
//! per scope per run (`roleDefinitions?$filter=roleName eq '…'` at the assignment's
//! scope, where custom roles are assignable); a GUID or role definition id needs no call.

use std::sync::Arc;

use wid_core::{ErrorKind, ProviderError, ResourceId};

use crate::client::{AUTHORIZATION_API, AzureProvider};
use crate::error::{Call, ROLE_DEFINITION_LIST};
use crate::names::{self, RoleRef};

/// One role's GUID once looked up (a failed lookup leaves it empty for the next reader).
pub(crate) type RoleSlot = Arc<tokio::sync::Mutex<Option<String>>>;

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
        let key = (scope.to_ascii_lowercase(), name.to_ascii_lowercase());
        // One slot per role and scope, held across its lookup: concurrent readers of one
        // role wait for one call, readers of other roles do not wait at all.
        let slot = self
            .roles
            .lock()
            .expect("role cache lock is never poisoned")
            .entry(key)
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some(guid) = cached.as_ref() {
            return Ok(guid.clone());
        }
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
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
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
        *cached = Some(guid.clone());
        Ok(guid)
    }
}
