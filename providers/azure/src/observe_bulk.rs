//! Reading many identities of one resource group in one list, and the role assignments
//! of many identities of one subscription in one list.
//!
//! A GET per identity costs one call each: 250 for the drift gate of 1,000 workloads
//! spread over 250 identities, before their credentials and role assignments. ARM lists
//! a resource group's user-assigned identities, complete (tags, client, principal and
//! tenant ids, location), in pages; one page of a group of a few dozen identities holds
//! them all. So a plan that wants at least [`LIST_THRESHOLD`] identities of one group
//! reads them with the group's list: what the list holds exists as listed, what it does
//! not hold does not exist.
//!
//! Below the threshold a GET each is cheaper or as cheap, whatever else the group holds.
//! When the list is denied (a role scoped to single identities), that group's identities
//! are read one by one, as before; a group that does not exist holds none of them.
//!
//! Role assignments are listed per principal (`principalId eq '…'`, at, above and below
//! the subscription): one call per existing identity. Unfiltered, the same list returns
//! the assignments of every principal at, above and below the subscription; filtered by
//! principal here, it gives each identity exactly what its own list would. A plan with at
//! least [`ASSIGNMENT_LIST_THRESHOLD`] existing identities whose assignments live in one
//! subscription lists it once. When that list is denied or too large for one answer, the
//! identities' assignments are listed one by one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use wid_core::{ErrorKind, Owner, ProviderError, ReadAhead, ResourceId, ahead};

use crate::client::{AUTHORIZATION_API, AzureProvider, MSI_API};
use crate::compile::wanted_roles;
use crate::error::{ASSIGNMENT_LIST, Call, IDENTITY_LIST_RG};
use crate::ids::{self, KIND_FIC, KIND_IDENTITY};
use crate::observe::{
    Seen, Target, assignment_locations, by_folded_id, reads_what_hangs_off, tags_of,
};
use crate::record;

/// A plan that wants at least this many identities of one resource group lists the group.
pub(crate) const LIST_THRESHOLD: usize = 3;

/// A plan with at least this many existing identities whose role assignments live in one
/// subscription lists all of the subscription's assignments once. Higher than
/// [`LIST_THRESHOLD`]: the unfiltered list also holds every other principal's.
pub(crate) const ASSIGNMENT_LIST_THRESHOLD: usize = 10;

/// Role assignments read in bulk: by location (`/subscriptions/ID`, lowercase), by
/// principal id (lowercase).
#[derive(Default)]
pub(crate) struct BulkAssignments(BTreeMap<String, BTreeMap<String, Vec<Value>>>);

impl BulkAssignments {
    /// The assignments of `principal` listed at `at`, if `at` was listed in bulk.
    pub(crate) fn of(&self, at: &str, principal: &str) -> Option<Vec<Value>> {
        let by_principal = self.0.get(at)?;
        Some(
            by_principal
                .get(&principal.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
        )
    }
}

/// The resource groups holding at least [`LIST_THRESHOLD`] of these identities, by
/// (subscription, group) in lowercase, each with the folded ids of those it holds: the
/// groups observe lists, and a read-ahead lists before it.
pub(crate) fn groups_to_list<'a>(
    identities: impl Iterator<Item = &'a ResourceId>,
) -> BTreeMap<(String, String), Vec<String>> {
    let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for id in identities {
        groups
            .entry((
                id.part(0).to_ascii_lowercase(),
                id.part(1).to_ascii_lowercase(),
            ))
            .or_default()
            .push(ids::fold(id));
    }
    groups.retain(|_, keys| keys.len() >= LIST_THRESHOLD);
    groups
}

impl AzureProvider {
    /// Fills in the targets not read yet from a list of their resource group, for each
    /// group the plan wants at least [`LIST_THRESHOLD`] identities of; a list read ahead
    /// ([`read_ahead`](Self::read_ahead)) is used rather than made again.
    pub(crate) async fn list_resource_groups(
        &self,
        targets: &mut BTreeMap<String, Target<'_>>,
    ) -> Result<(), ProviderError> {
        let groups = groups_to_list(
            targets
                .values()
                .filter(|t| matches!(t.seen, Seen::Unread))
                .map(|t| &t.id),
        );
        let taken = self.groups_ahead.take(groups.keys().cloned());
        let lists = taken.into_iter().map(|((sub, rg), ahead)| async move {
            ahead.or_read(|| self.group_identities(&sub, &rg)).await
        });
        let lists = futures::future::try_join_all(lists).await?;
        for (keys, listed) in groups.into_values().zip(lists) {
            let Some(mut listed) = listed else { continue };
            for key in keys {
                if let Some(t) = targets.get_mut(&key) {
                    t.seen = Seen::Listed(listed.remove(&key));
                }
            }
        }
        Ok(())
    }

    /// Starts observe's first reads: the look-ups of the roles these identities and
    /// credentials hold (see [`know_plan`](Self::know_plan)) and, unless observe lists whole subscriptions
    /// (prune), the resource group lists of these identities and credentials (see
    /// [`groups_to_list`]). A write drops the lists ([`forget_read_ahead`](Self::forget_read_ahead));
    /// a role's answer is kept for the run.
    pub(crate) fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        let identities: BTreeMap<String, ResourceId> = ids
            .iter()
            .filter_map(|id| match id.kind() {
                KIND_IDENTITY => Some(id.clone()),
                KIND_FIC => Some(ids::identity_of(id)),
                _ => None,
            })
            .map(|id| (ids::fold(&id), id))
            .collect();
        let roles = self.roles_ahead(&identities.keys().cloned().collect());
        let lists = if owner.prune {
            Vec::new()
        } else {
            self.groups_ahead
                .register(groups_to_list(identities.values()).into_keys())
        };
        Box::pin(async move {
            let this = &self;
            let lists = ahead::fill_all(lists, this.calls.concurrency(), |(sub, rg)| async move {
                this.group_identities(&sub, &rg).await
            });
            futures::join!(this.fill_roles(roles), lists);
        })
    }

    /// Drops the lists [`read_ahead`](Self::read_ahead) made that observe did not take.
    pub(crate) fn forget_read_ahead(&self) {
        self.groups_ahead.forget();
    }

    /// The identities of one resource group by folded id; `None` when the list is denied.
    async fn group_identities(
        &self,
        sub: &str,
        rg: &str,
    ) -> Result<Option<BTreeMap<String, serde_json::Value>>, ProviderError> {
        let group = format!("/subscriptions/{sub}/resourceGroups/{rg}");
        let path = format!("{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities");
        let call = Call::new(
            IDENTITY_LIST_RG,
            format!("list the managed identities of resource group {rg}"),
            &group,
        );
        let items = match self.list(&call, &path, &[("api-version", MSI_API)]).await {
            Ok(items) => items,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) if e.kind() == ErrorKind::Permission => {
                tracing::info!(
                    "reading the identities of resource group {rg} one by one: {e}; grant Microsoft.ManagedIdentity/userAssignedIdentities/read on the group (Reader) to read them in one list"
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(
            by_folded_id(items)
                .into_iter()
                .map(|(key, (_, item))| (key, item))
                .collect(),
        ))
    }

    /// Lists in bulk the role assignments of each subscription at least
    /// [`ASSIGNMENT_LIST_THRESHOLD`] listed, existing identities wid reads assignments of
    /// (its own, or adopted) have theirs in.
    pub(crate) async fn bulk_assignments(
        &self,
        targets: &BTreeMap<String, Target<'_>>,
        owner: &Owner,
    ) -> Result<BulkAssignments, ProviderError> {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for t in targets.values() {
            let Seen::Listed(Some(body)) = &t.seen else {
                continue;
            };
            let ownership = record::standing(&tags_of(body), &owner.plan).ownership;
            if !reads_what_hangs_off(&ownership, t.desired) {
                continue;
            }
            let want = t.desired.map(wanted_roles).unwrap_or_default();
            for at in assignment_locations(&t.id, &want) {
                if at.matches('/').count() == 2 {
                    *count.entry(at).or_default() += 1;
                }
            }
        }
        count.retain(|_, n| *n >= ASSIGNMENT_LIST_THRESHOLD);
        let lists = count.keys().map(|at| self.all_assignments(at));
        let lists = futures::future::try_join_all(lists).await?;
        let mut out = BulkAssignments::default();
        for (at, items) in count.into_keys().zip(lists) {
            let Some(items) = items else { continue };
            let mut by_principal: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for item in items {
                let principal = item["properties"]["principalId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                by_principal.entry(principal).or_default().push(item);
            }
            out.0.insert(at, by_principal);
        }
        Ok(out)
    }

    /// Every role assignment at, above and below subscription `at`; `None` when the list
    /// is denied or too large for one answer.
    async fn all_assignments(&self, at: &str) -> Result<Option<Vec<Value>>, ProviderError> {
        let call = Call::new(
            ASSIGNMENT_LIST,
            format!("list the role assignments of {at}"),
            at,
        );
        let path = format!("{at}/providers/Microsoft.Authorization/roleAssignments");
        match self
            .list(&call, &path, &[("api-version", AUTHORIZATION_API)])
            .await
        {
            Ok(items) => Ok(Some(items)),
            Err(e) if matches!(e.kind(), ErrorKind::Permission | ErrorKind::Invalid) => {
                tracing::info!("listing the role assignments of each identity on its own: {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
