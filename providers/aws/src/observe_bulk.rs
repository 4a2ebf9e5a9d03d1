//! Reading many roles of one account in a few calls.
//!
//! Per role, observe costs `GetRole`, `ListAttachedRolePolicies`, `ListRolePolicies` and
//! one `GetRolePolicy` per inline policy: at least three calls, 3,000 for the drift gate of
//! 1,000 IRSA workloads. `GetAccountAuthorizationDetails` with `Filter=Role` returns every
//! role of the account with its trust policy, inline policies (documents included),
//! attached policies, permissions boundary and tags, up to 1,000 roles a page; it leaves
//! out the description and the session duration, which `ListRoles` (also up to 1,000 a
//! page) has. So the bulk read is one page of each per 1,000 roles *in the account*,
//! whatever the plan wants of them.
//!
//! When it pays: per-role reads cost at least `3 × wanted`; the bulk read costs
//! `pages(GetAccountAuthorizationDetails) + pages(ListRoles)`, about `2 × roles / 1,000`
//! (IAM may cut a page short of `MaxItems` when it is large, so budget up to ten times
//! that). IAM's default quota is 1,000 roles per account and its maximum 5,000, so the bulk
//! read costs at most a few dozen calls, and at [`BULK_THRESHOLD`] wanted roles per
//! account (60+ calls one by one) it already wins or ties in the largest account.
//!
//! When `iam:GetAccountAuthorizationDetails` or `iam:ListRoles` is denied, the roles of
//! that account are read one by one, as before; nothing else changes.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use wid_core::{ErrorKind, ObservedResource, ProviderError};

use crate::ahead::TakenReads;
use crate::client::AwsProvider;
use crate::error::Call;
use crate::ids;
use crate::observe::{federated_providers, live_policy, ownership};
use crate::record;

/// A plan that wants at least this many roles of one account reads them in bulk.
pub(crate) const BULK_THRESHOLD: usize = 20;

/// Entities per page asked of IAM (its maximum).
const PAGE: i32 = 1000;

/// What `ListRoles` adds to a role detail.
struct Listed {
    description: Option<String>,
    max_session_duration: Option<i32>,
}

/// Every role of an account as the bulk reads return them, by lowercased name.
pub(crate) type Bulk = BTreeMap<String, Detail>;

/// One role as the bulk reads return it.
pub(crate) struct Detail {
    role: aws_sdk_iam::types::RoleDetail,
    listed: Option<Listed>,
}

impl AwsProvider {
    /// Reads the wanted roles (account, name): in bulk for each account with at least
    /// [`BULK_THRESHOLD`] of them (or takes the bulk read `taken` holds), one by one
    /// otherwise or when the bulk read is denied.
    /// Roles that do not exist are left out.
    pub(crate) async fn read_roles(
        &self,
        names: Vec<(String, String, BTreeSet<String>)>,
        taken: &mut TakenReads,
        plan: &str,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        let mut by_account: BTreeMap<String, Vec<(String, BTreeSet<String>)>> = BTreeMap::new();
        for (account, name, tags) in names {
            by_account.entry(account).or_default().push((name, tags));
        }
        let mut out = Vec::new();
        let mut one_by_one = Vec::new();
        for (account, names) in by_account {
            if names.len() >= BULK_THRESHOLD
                && let Some(mut all) = taken
                    .bulk(&account)
                    .or_read(|| self.bulk_roles(&account))
                    .await?
            {
                for (name, wanted_tags) in names {
                    if let Some(detail) = all.remove(&name.to_lowercase()) {
                        let mut live = self.observed_role(&account, &detail, plan, &wanted_tags);
                        // The id is the plan's spelling; IAM names are case-insensitive.
                        live.id = ids::role_id(&account, &name);
                        out.push(live);
                    }
                }
                continue;
            }
            one_by_one.extend(
                names
                    .into_iter()
                    .map(|(name, tags)| (account.clone(), name, tags)),
            );
        }
        let reads = futures::stream::iter(one_by_one)
            .map(|(account, name, tags)| async move {
                self.read_role(&account, &name, plan, &tags).await
            })
            .buffer_unordered(self.calls.concurrency())
            .try_collect::<Vec<_>>()
            .await?;
        out.extend(reads.into_iter().flatten());
        Ok(out)
    }

    /// Every role of the account with what `ListRoles` adds to it, by lowercased name;
    /// `None` when either bulk read is denied (the caller reads one by one instead).
    pub(crate) async fn bulk_roles(&self, account_id: &str) -> Result<Option<Bulk>, ProviderError> {
        let (details, listed) =
            futures::join!(self.role_details(account_id), self.listed_roles(account_id));
        let (details, listed) = match (details, listed) {
            (Ok(d), Ok(l)) => (d, l),
            (Err(e), _) | (_, Err(e)) if e.kind() == ErrorKind::Permission => {
                tracing::info!(
                    "reading the roles of account {account_id} one by one: {e}; grant iam:GetAccountAuthorizationDetails and iam:ListRoles to read them in a few calls"
                );
                return Ok(None);
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let mut listed = listed;
        let mut out = BTreeMap::new();
        for role in details {
            let key = role.role_name().unwrap_or_default().to_lowercase();
            let extra = listed.remove(&key);
            out.insert(
                key,
                Detail {
                    role,
                    listed: extra,
                },
            );
        }
        Ok(Some(out))
    }

    /// All role details of the account (`GetAccountAuthorizationDetails`, `Filter=Role`).
    async fn role_details(
        &self,
        account_id: &str,
    ) -> Result<Vec<aws_sdk_iam::types::RoleDetail>, ProviderError> {
        let account = self.account(account_id).await?;
        let call = Call::new(
            "iam:GetAccountAuthorizationDetails",
            format!("read the roles of account {account_id} in bulk"),
            "*",
        );
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .fetch(&call, || {
                    let get = account.iam.get_account_authorization_details();
                    get.filter(aws_sdk_iam::types::EntityType::Role)
                        .max_items(PAGE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            out.extend(page.role_detail_list().iter().cloned());
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// The description and session duration of every role (`ListRoles`), by lowercased
    /// name.
    async fn listed_roles(
        &self,
        account_id: &str,
    ) -> Result<BTreeMap<String, Listed>, ProviderError> {
        let account = self.account(account_id).await?;
        let call = Call::new(
            "iam:ListRoles",
            format!("list the roles of account {account_id}"),
            format!("arn:aws:iam::{account_id}:role/*"),
        );
        let mut out = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .fetch(&call, || {
                    let list = account.iam.list_roles().max_items(PAGE);
                    list.set_marker(marker.clone()).send()
                })
                .await?;
            for role in page.roles() {
                out.insert(
                    role.role_name().to_lowercase(),
                    Listed {
                        description: role.description().map(str::to_owned),
                        max_session_duration: role.max_session_duration(),
                    },
                );
            }
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// A role detail in the exact form [`AwsProvider::read_role`] observes a role.
    fn observed_role(
        &self,
        account_id: &str,
        detail: &Detail,
        plan: &str,
        wanted_tags: &BTreeSet<String>,
    ) -> ObservedResource {
        let role = &detail.role;
        let listed = detail.listed.as_ref();
        let name = role.role_name().unwrap_or_default();
        let id = ids::role_id(account_id, name);
        if let Some(arn) = role.arn() {
            self.remember_arn(&id, arn);
        }
        let tags: Vec<(&str, &str)> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
        let mut live = ObservedResource::new(id, ownership(tags.iter().copied(), plan));
        live.applied = record::read(tags.iter().copied(), &live.ownership);
        let trust = role
            .assume_role_policy_document()
            .map(live_policy)
            .unwrap_or(Value::Null);
        live.depends_on = federated_providers(&trust);
        live.attrs.insert("trust_policy".into(), trust);
        let attached: BTreeSet<&str> = role
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        live.attrs
            .insert("managed_policies".into(), json!(attached));
        // By name, as compile writes them, so the diff compares them as text.
        let inline: BTreeMap<String, Value> = role
            .role_policy_list()
            .iter()
            .filter_map(|p| {
                Some((
                    p.policy_name()?.to_owned(),
                    live_policy(p.policy_document()?),
                ))
            })
            .collect();
        live.attrs.insert(
            "inline_policies".into(),
            Value::Object(inline.into_iter().collect()),
        );
        if let Some(b) = role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
        {
            live.attrs.insert("permissions_boundary".into(), json!(b));
        }
        live.attrs.insert(
            "max_session_duration".into(),
            json!(listed.and_then(|l| l.max_session_duration).unwrap_or(3600)),
        );
        live.attrs
            .insert("path".into(), json!(role.path().unwrap_or("/")));
        if let Some(d) = listed
            .and_then(|l| l.description.as_deref())
            .filter(|d| !d.is_empty())
        {
            live.attrs.insert("description".into(), json!(d));
        }
        let tags = self.role_tags(&live, &tags, wanted_tags);
        live.attrs.insert("tags".into(), tags);
        live
    }
}
