//! Reading live state: which wanted objects exist, their normalized attributes and owner,
//! and (with prune) which objects carry this plan's mark but left the plan.
//!
//! Calls per run: one `ListOpenIDConnectProviders` per account and one
//! `GetOpenIDConnectProvider` per wanted provider that exists; per wanted role `GetRole`
//! (it returns the tags), `ListAttachedRolePolicies`, `ListRolePolicies` and one
//! `GetRolePolicy` per inline policy, or, for accounts with many wanted roles, a few pages
//! of `GetAccountAuthorizationDetails` and `ListRoles` ([`crate::observe_bulk`]); per
//! namespace with several wanted associations one list (filtered by namespace, 100 a
//! page), per other association one list (filtered by namespace and KSA), and one
//! describe per association found. The three kinds are read concurrently. Prune looks in every account the plan names (its EKS clusters',
//! its `[aws.profiles]`, its roles' `aws.account`) and adds, per account, `ListRoles`,
//! and `ListRoleTags` only for candidates: roles whose description starts with wid's
//! (`Managed by wid`) or whose path is one the plan's roles use, other than `/`. Tags stay
//! the proof of ownership; the description only narrows the search, so it never takes
//! 1,000 tag reads to prune. The same listing shows which OIDC providers the account's
//! roles trust: prune keeps a provider that a remaining role still trusts.

use std::collections::{BTreeMap, BTreeSet};

use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::{Value, json};
use wid_core::ahead::Taken;
use wid_core::{
    APPLIED_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, Observed, ObservedResource, Owner, Ownership,
    PLAN_KEY, ProviderError, Resource, ResourceId,
};

use crate::ahead::TakenReads;
use crate::client::{Account, AwsProvider};
use crate::compile::DESCRIPTION_PREFIX;
use crate::error::Call;
use crate::ids::{self, KIND_ASSOCIATION, KIND_OIDC, KIND_ROLE};
use crate::policy::normalize_policy;
use crate::record;
use crate::tag_keys;

/// Ownership from an object's tags.
pub(crate) fn ownership<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    plan: &str,
) -> Ownership {
    let tags: BTreeMap<&str, &str> = tags.into_iter().collect();
    if tags.get(MANAGED_BY_KEY) != Some(&MANAGED_BY_VALUE) {
        return Ownership::Unowned;
    }
    match tags.get(PLAN_KEY) {
        Some(p) if *p == plan => Ownership::Ours,
        Some(p) => Ownership::OtherPlan((*p).to_owned()),
        None => Ownership::Unowned,
    }
}

/// Whether a tag is wid's bookkeeping (its marks, applied record or tag-key record),
/// never a user's tag.
pub(crate) fn is_wid_tag(key: &str) -> bool {
    [MANAGED_BY_KEY, PLAN_KEY, APPLIED_KEY].contains(&key) || tag_keys::is_record_key(key)
}

/// The tags wid manages on an object, as compile writes them: of the live tags, only the
/// keys the plan sets (`wanted`) and the keys wid's tag-key record lists (`recorded`,
/// this plan's objects only). Everyone else's tags are not wid's business: never drift,
/// never removed.
pub(crate) fn plan_tags<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    wanted: &BTreeSet<String>,
    recorded: &BTreeSet<String>,
) -> Value {
    let map: BTreeMap<&str, &str> = tags
        .into_iter()
        .filter(|(k, _)| !is_wid_tag(k))
        .filter(|(k, _)| wanted.contains(*k) || recorded.contains(*k))
        .collect();
    json!(map)
}

/// The tag keys a desired resource sets.
fn wanted_tag_keys(r: &Resource) -> BTreeSet<String> {
    r.attrs
        .get("tags")
        .and_then(|v| v.known())
        .as_deref()
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// A live policy document in the form compile writes; an unparsable one is kept as text
/// so the diff shows it.
pub(crate) fn live_policy(doc: &str) -> Value {
    normalize_policy(doc).unwrap_or_else(|_| Value::String(doc.to_owned()))
}

impl AwsProvider {
    pub(crate) async fn observe_all(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let mut observed = Observed::default();
        let by_kind = |kind: &str| -> Vec<&Resource> {
            wanted
                .iter()
                .copied()
                .filter(|r| r.id.kind() == kind)
                .collect()
        };
        // What observe reads first, taken from a read-ahead where one read it.
        let first = self.first_reads(wanted.iter().map(|r| &r.id), owner);
        let mut taken = self.take_ahead(&first);
        let providers = by_kind(KIND_OIDC);
        let oidc_lists: Vec<(String, Taken<Vec<String>>)> = first
            .oidc
            .iter()
            .map(|account| (account.clone(), taken.oidc(account)))
            .collect();
        let listed: Vec<_> = first
            .namespaces
            .iter()
            .map(|ns| (ns.clone(), taken.namespace(ns)))
            .collect();
        let accounts = first.accounts;
        let roles = by_kind(KIND_ROLE);
        let associations = by_kind(KIND_ASSOCIATION);
        // OIDC providers, roles and associations need nothing of each other: they are read
        // together, all within the provider's one concurrency limit, and merged in this
        // order, so the result and the first error are the same every run.
        // Boxed: the three nested state machines together are too deep for the
        // compiler's layout of `observe`.
        let (oidc, roles_found, assocs) = futures::join!(
            self.observe_oidc_accounts(oidc_lists, &providers, owner)
                .boxed(),
            self.observe_roles(&roles, &accounts, &mut taken, owner)
                .boxed(),
            async {
                let mut observed = Observed::default();
                self.observe_associations(&associations, listed, owner, &mut observed)
                    .await
                    .map(|()| observed)
            }
            .boxed(),
        );
        observed.extend(oidc?);
        let (found, trusted_by) = roles_found?;
        for live in found {
            observed.insert(live);
        }
        if owner.prune {
            let wanted_ids: BTreeSet<&ResourceId> = wanted.iter().map(|r| &r.id).collect();
            keep_trusted_providers(&mut observed, &wanted_ids, &trusted_by);
        }
        observed.extend(assocs?);
        Ok(observed)
    }

    /// The OIDC providers of each account, accounts read concurrently, merged in order.
    async fn observe_oidc_accounts(
        &self,
        accounts: Vec<(String, Taken<Vec<String>>)>,
        providers: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let found: Vec<Observed> = futures::stream::iter(accounts)
            .map(|(account, listed)| async move {
                let mut observed = Observed::default();
                self.observe_oidc(&account, listed, providers, owner, &mut observed)
                    .await
                    .map(|()| observed)
            })
            .buffered(self.calls.concurrency())
            .try_collect()
            .await?;
        let mut observed = Observed::default();
        for o in found {
            observed.extend(o);
        }
        Ok(observed)
    }

    /// The wanted roles, and with prune this plan's roles that left it, with the OIDC
    /// providers each role of the plan's accounts trusts (by provider).
    async fn observe_roles(
        &self,
        roles: &[&Resource],
        accounts: &BTreeSet<String>,
        taken: &mut TakenReads,
        owner: &Owner,
    ) -> Result<(Vec<ObservedResource>, TrustedBy), ProviderError> {
        let names: Vec<(String, String, BTreeSet<String>)> = roles
            .iter()
            .map(|r| {
                (
                    ids::account_of(&r.id).to_owned(),
                    r.id.part(1).to_owned(),
                    wanted_tag_keys(r),
                )
            })
            .collect();
        let mut out = self.read_roles(names, taken, &owner.plan).await?;
        let mut trusted_by = TrustedBy::new();
        if !owner.prune {
            return Ok((out, trusted_by));
        }
        let wanted_ids: BTreeSet<&ResourceId> = roles.iter().map(|r| &r.id).collect();
        let scans: Vec<(Vec<ObservedResource>, Trusts)> =
            futures::stream::iter(accounts.iter().cloned())
                .map(|account| {
                    let paths: BTreeSet<String> = roles
                        .iter()
                        .filter(|r| ids::account_of(&r.id) == account)
                        .filter_map(|r| r.str_attr("path").map(str::to_owned))
                        .filter(|p| p != "/")
                        .collect();
                    let wanted_ids = &wanted_ids;
                    async move { self.prune_roles(&account, &paths, wanted_ids, owner).await }
                })
                .buffered(self.calls.concurrency())
                .try_collect()
                .await?;
        for (found, trusts) in scans {
            out.extend(found);
            for (role, providers) in trusts {
                for provider in providers {
                    trusted_by.entry(provider).or_default().insert(role.clone());
                }
            }
        }
        Ok((out, trusted_by))
    }

    /// Reads one role: `None` when it does not exist. `wanted_tags` are the tag keys the
    /// plan sets on it.
    pub(crate) async fn read_role(
        &self,
        account_id: &str,
        name: &str,
        plan: &str,
        wanted_tags: &BTreeSet<String>,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        let account = self.account(account_id).await?;
        let id = ids::role_id(account_id, name);
        let arn = format!("arn:aws:iam::{account_id}:role/{name}");
        let call = Call::new(
            "iam:GetRole",
            format!("read role {name} in account {account_id}"),
            &arn,
        )
        .id(&id);
        let got = self.read(&call, || account.iam.get_role().role_name(name).send());
        let role = match got.await? {
            Some(out) => match out.role {
                Some(role) => role,
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        self.remember_arn(&id, role.arn());
        let tags: Vec<(&str, &str)> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
        let mut live = ObservedResource::new(id.clone(), ownership(tags.iter().copied(), plan));
        live.applied = record::read(tags.iter().copied(), &live.ownership);
        let trust = role
            .assume_role_policy_document()
            .map(live_policy)
            .unwrap_or(Value::Null);
        live.depends_on = federated_providers(&trust);
        live.attrs.insert("trust_policy".into(), trust);
        live.attrs.insert(
            "managed_policies".into(),
            json!(self.attached(&account, account_id, name, &id).await?),
        );
        live.attrs.insert(
            "inline_policies".into(),
            self.inline(&account, account_id, name, &id).await?,
        );
        if let Some(b) = role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
        {
            live.attrs.insert("permissions_boundary".into(), json!(b));
        }
        live.attrs.insert(
            "max_session_duration".into(),
            json!(role.max_session_duration().unwrap_or(3600)),
        );
        live.attrs.insert("path".into(), json!(role.path()));
        if let Some(d) = role.description().filter(|d| !d.is_empty()) {
            live.attrs.insert("description".into(), json!(d));
        }
        let tags = self.role_tags(&live, &tags, wanted_tags);
        live.attrs.insert("tags".into(), tags);
        Ok(Some(live))
    }

    /// A role's `tags` attribute as the diff compares it: the tags the plan sets and those
    /// wid's record says it set (only on this plan's roles; on a role being adopted no tag
    /// is provably wid's). Remembers the record tags for the next write.
    pub(crate) fn role_tags(
        &self,
        live: &ObservedResource,
        tags: &[(&str, &str)],
        wanted_tags: &BTreeSet<String>,
    ) -> Value {
        let record_tags: Vec<(String, String)> = tags
            .iter()
            .filter(|(k, _)| tag_keys::is_record_key(k))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let recorded = if live.ownership == Ownership::Ours {
            tag_keys::decode(tags.iter().copied())
        } else {
            BTreeSet::new()
        };
        self.remember_tag_record(&live.id, record_tags);
        plan_tags(tags.iter().copied(), wanted_tags, &recorded)
    }

    pub(crate) async fn attached(
        &self,
        account: &Account,
        account_id: &str,
        name: &str,
        id: &ResourceId,
    ) -> Result<BTreeSet<String>, ProviderError> {
        let arn = format!("arn:aws:iam::{account_id}:role/{name}");
        let call = Call::new(
            "iam:ListAttachedRolePolicies",
            format!("list the managed policies of role {name} in account {account_id}"),
            &arn,
        )
        .id(id);
        let mut out = BTreeSet::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .fetch(&call, || {
                    let list = account.iam.list_attached_role_policies();
                    list.role_name(name).set_marker(marker.clone()).send()
                })
                .await?;
            out.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned)),
            );
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    pub(crate) async fn inline(
        &self,
        account: &Account,
        account_id: &str,
        name: &str,
        id: &ResourceId,
    ) -> Result<Value, ProviderError> {
        let arn = format!("arn:aws:iam::{account_id}:role/{name}");
        let list = Call::new(
            "iam:ListRolePolicies",
            format!("list the inline policies of role {name} in account {account_id}"),
            &arn,
        )
        .id(id);
        let mut names = BTreeSet::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .fetch(&list, || {
                    let call = account.iam.list_role_policies().role_name(name);
                    call.set_marker(marker.clone()).send()
                })
                .await?;
            names.extend(page.policy_names().iter().cloned());
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        let mut docs = serde_json::Map::new();
        for policy in names {
            let get = Call::new(
                "iam:GetRolePolicy",
                format!("read inline policy {policy} of role {name} in account {account_id}"),
                &arn,
            )
            .id(id);
            let out = self
                .fetch(&get, || {
                    let call = account.iam.get_role_policy().role_name(name);
                    call.policy_name(&policy).send()
                })
                .await?;
            docs.insert(policy, live_policy(out.policy_document()));
        }
        Ok(Value::Object(docs))
    }

    /// Roles of this plan in `account` that the plan no longer has, and which OIDC
    /// providers every role of the account trusts (from the same listing).
    async fn prune_roles(
        &self,
        account_id: &str,
        paths: &BTreeSet<String>,
        wanted: &BTreeSet<&ResourceId>,
        owner: &Owner,
    ) -> Result<(Vec<ObservedResource>, Trusts), ProviderError> {
        let account = self.account(account_id).await?;
        let list = Call::new(
            "iam:ListRoles",
            format!("list the roles of account {account_id}"),
            format!("arn:aws:iam::{account_id}:role/*"),
        );
        let mut candidates = Vec::new();
        let mut trusts = Trusts::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .fetch(&list, || {
                    account.iam.list_roles().set_marker(marker.clone()).send()
                })
                .await?;
            for role in page.roles() {
                let id = ids::role_id(account_id, role.role_name());
                if let Some(doc) = role.assume_role_policy_document() {
                    let providers = federated_providers(&live_policy(doc));
                    if !providers.is_empty() {
                        trusts.push((id.clone(), providers));
                    }
                }
                let marked = role
                    .description()
                    .is_some_and(|d| d.starts_with(DESCRIPTION_PREFIX));
                if !wanted.contains(&id) && (marked || paths.contains(role.path())) {
                    candidates.push(role.role_name().to_owned());
                }
            }
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        let mut out = Vec::new();
        for name in candidates {
            let call = Call::new(
                "iam:ListRoleTags",
                format!("read the tags of role {name} in account {account_id}"),
                format!("arn:aws:iam::{account_id}:role/{name}"),
            );
            let got = self.read(&call, || {
                account.iam.list_role_tags().role_name(&name).send()
            });
            let Some(tags) = got.await? else { continue };
            let owned = ownership(
                tags.tags().iter().map(|t| (t.key(), t.value())),
                &owner.plan,
            );
            if owned == Ownership::Ours
                && let Some(live) = self
                    .read_role(account_id, &name, &owner.plan, &BTreeSet::new())
                    .await?
            {
                out.push(live);
            }
        }
        Ok((out, trusts))
    }
}

/// Roles of an account with the OIDC providers each trusts.
type Trusts = Vec<(ResourceId, Vec<ResourceId>)>;

/// The roles that trust each OIDC provider.
type TrustedBy = BTreeMap<ResourceId, BTreeSet<ResourceId>>;

/// Prune never deletes an OIDC provider of this plan that a role staying behind still
/// trusts (another plan's role, a hand-made one, or one of this plan's roles it keeps):
/// the provider is shared by nature, and deleting it would break those roles. It is left
/// out of what prune sees, so it stays, still marked as this plan's.
fn keep_trusted_providers(
    observed: &mut Observed,
    wanted: &BTreeSet<&ResourceId>,
    trusted_by: &BTreeMap<ResourceId, BTreeSet<ResourceId>>,
) {
    let deleted = |role: &ResourceId| {
        !wanted.contains(role)
            && observed
                .resources
                .get(role)
                .is_some_and(|r| r.ownership == Ownership::Ours)
    };
    let keep: Vec<ResourceId> = observed
        .resources
        .values()
        .filter(|r| r.id.kind() == KIND_OIDC && !wanted.contains(&r.id))
        .filter(|r| {
            trusted_by
                .get(&r.id)
                .is_some_and(|roles| roles.iter().any(|role| !deleted(role)))
        })
        .map(|r| r.id.clone())
        .collect();
    for id in keep {
        observed.resources.remove(&id);
    }
}

/// The OIDC provider ids a trust policy's `Federated` principals name: a role is deleted
/// before the providers it trusts.
pub(crate) fn federated_providers(trust: &Value) -> Vec<ResourceId> {
    let mut out = BTreeSet::new();
    for s in trust["Statement"].as_array().into_iter().flatten() {
        for arn in s["Principal"]["Federated"].as_array().into_iter().flatten() {
            if let Some((account, host_path)) = arn.as_str().and_then(ids::parse_oidc_arn) {
                out.insert(ids::oidc_id(account, host_path));
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_reads_both_marks() {
        let plan = [(MANAGED_BY_KEY, "wid"), (PLAN_KEY, "p")];
        assert_eq!(ownership(plan, "p"), Ownership::Ours);
        assert_eq!(ownership(plan, "q"), Ownership::OtherPlan("p".into()));
        assert_eq!(ownership([(PLAN_KEY, "p")], "p"), Ownership::Unowned);
        assert_eq!(ownership([], "p"), Ownership::Unowned);
    }

    #[test]
    fn plan_tags_are_the_wanted_and_recorded_keys_never_the_marks_or_others() {
        let tags = [
            (MANAGED_BY_KEY, "wid"),
            (PLAN_KEY, "p"),
            (APPLIED_KEY, "0123456789abcdef"),
            (tag_keys::TAG_KEYS_KEY, "old team"),
            ("team", "x"),
            ("old", "y"),
            ("owner", "ops"),
        ];
        let set = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(
            plan_tags(tags, &set(&["team"]), &set(&["old", "team"])),
            json!({"team": "x", "old": "y"})
        );
        assert_eq!(
            plan_tags(tags, &set(&["team", "cost"]), &BTreeSet::new()),
            json!({"team": "x"})
        );
    }

    #[test]
    fn trusted_providers_become_dependencies() {
        let trust = normalize_policy(
            &crate::trust_policy_irsa(
                "arn:aws:iam::1:oidc-provider/o.example/id/A",
                "o.example/id/A",
                &["s".into()],
            )
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            federated_providers(&trust),
            vec![ids::oidc_id("1", "o.example/id/A")]
        );
    }
}
