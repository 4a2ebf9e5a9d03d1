//! Reading live state: which wanted objects exist, their normalized attributes and owner,
//! and (with prune) which objects carry this plan's mark but left the plan.
//!
//! Calls per run: one `ListOpenIDConnectProviders` per account and one
//! `GetOpenIDConnectProvider` per wanted provider that exists; per wanted role `GetRole`
//! (it returns the tags), `ListAttachedRolePolicies`, `ListRolePolicies` and one
//! `GetRolePolicy` per inline policy, or, for accounts with many wanted roles, a few pages
//! of `GetAccountAuthorizationDetails` and `ListRoles` ([`crate::observe_bulk`]); per
//! association one list (filtered by namespace and KSA) and one describe. Prune adds, per account, `ListRoles`, and `ListRoleTags` only for
//! candidates: roles whose description starts with wid's (`Managed by wid`) or whose path
//! is one the plan's roles use, other than `/`. Tags stay the proof of ownership; the
//! description only narrows the search, so it never takes 1,000 tag reads to prune.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use wid_core::{
    APPLIED_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, Observed, ObservedResource, Owner, Ownership,
    PLAN_KEY, ProviderError, Resource, ResourceId,
};

use crate::client::{Account, AwsProvider};
use crate::compile::DESCRIPTION_PREFIX;
use crate::error::Call;
use crate::ids::{self, KIND_ASSOCIATION, KIND_OIDC, KIND_ROLE};
use crate::policy::normalize_policy;
use crate::record;

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

/// The tags a user manages: everything but wid's marks and its applied record.
pub(crate) fn plan_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let map: BTreeMap<&str, &str> = tags
        .into_iter()
        .filter(|(k, _)| ![MANAGED_BY_KEY, PLAN_KEY, APPLIED_KEY].contains(k))
        .collect();
    json!(map)
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
        let mut accounts: BTreeSet<String> = wanted
            .iter()
            .map(|r| ids::account_of(&r.id).to_owned())
            .collect();
        if owner.prune {
            accounts.extend(
                self.clusters
                    .lock()
                    .expect("cluster set lock is never poisoned")
                    .iter()
                    .map(|(a, _, _)| a.clone()),
            );
            accounts.extend(self.options.profiles.keys().cloned());
        }

        let providers = by_kind(KIND_OIDC);
        let oidc_accounts: BTreeSet<String> = if owner.prune {
            accounts.clone()
        } else {
            providers
                .iter()
                .map(|r| ids::account_of(&r.id).to_owned())
                .collect()
        };
        for account in &oidc_accounts {
            self.observe_oidc(account, &providers, owner, &mut observed)
                .await?;
        }

        let roles = by_kind(KIND_ROLE);
        let names: Vec<(String, String)> = roles
            .iter()
            .map(|r| (ids::account_of(&r.id).to_owned(), r.id.part(1).to_owned()))
            .collect();
        for live in self.read_roles(names, &owner.plan).await? {
            observed.insert(live);
        }
        if owner.prune {
            let wanted_ids: BTreeSet<&ResourceId> = wanted.iter().map(|r| &r.id).collect();
            for account in &accounts {
                let paths: BTreeSet<String> = roles
                    .iter()
                    .filter(|r| ids::account_of(&r.id) == account)
                    .filter_map(|r| r.str_attr("path").map(str::to_owned))
                    .filter(|p| p != "/")
                    .collect();
                for live in self
                    .prune_roles(account, &paths, &wanted_ids, owner)
                    .await?
                {
                    observed.insert(live);
                }
            }
        }

        self.observe_associations(&by_kind(KIND_ASSOCIATION), owner, &mut observed)
            .await?;
        Ok(observed)
    }

    /// Reads one role: `None` when it does not exist.
    pub(crate) async fn read_role(
        &self,
        account_id: &str,
        name: &str,
        plan: &str,
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
        live.attrs.insert("tags".into(), plan_tags(tags));
        Ok(Some(live))
    }

    async fn attached(
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

    async fn inline(
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

    /// Roles of this plan in `account` that the plan no longer has.
    async fn prune_roles(
        &self,
        account_id: &str,
        paths: &BTreeSet<String>,
        wanted: &BTreeSet<&ResourceId>,
        owner: &Owner,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        let account = self.account(account_id).await?;
        let list = Call::new(
            "iam:ListRoles",
            format!("list the roles of account {account_id}"),
            format!("arn:aws:iam::{account_id}:role/*"),
        );
        let mut candidates = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .fetch(&list, || {
                    account.iam.list_roles().set_marker(marker.clone()).send()
                })
                .await?;
            for role in page.roles() {
                let id = ids::role_id(account_id, role.role_name());
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
                && let Some(live) = self.read_role(account_id, &name, &owner.plan).await?
            {
                out.push(live);
            }
        }
        Ok(out)
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
    fn plan_tags_drop_the_marks_and_the_record() {
        let tags = [
            (MANAGED_BY_KEY, "wid"),
            (PLAN_KEY, "p"),
            (APPLIED_KEY, "0123456789abcdef"),
            ("team", "x"),
        ];
        assert_eq!(plan_tags(tags), json!({"team": "x"}));
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
