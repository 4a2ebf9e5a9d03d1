//! Reading live state: each wanted identity (its tags, ids and location), its federated
//! credentials, and the role assignments of its principal; with prune, every identity in
//! the plan's subscriptions that carries this plan's mark.
//!
//! Calls per run: the wanted identities of a resource group read with one list of the
//! group when the plan wants at least
//! [`LIST_THRESHOLD`](crate::observe_bulk::LIST_THRESHOLD) of them there, else one GET
//! each; for each identity that exists, one list of its federated credentials; its role
//! assignments from one list per subscription they live in, of all principals when at
//! least [`ASSIGNMENT_LIST_THRESHOLD`](crate::observe_bulk::ASSIGNMENT_LIST_THRESHOLD)
//! existing identities share the subscription, else filtered by principal per identity
//! (see [`crate::observe_bulk`]); one role definition lookup per role name and scope.
//! Prune lists the identities of each subscription instead, which reads every target.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use wid_core::{
    Observed, ObservedResource, Owner, Ownership, ProviderError, Resource, ResourceId, applied_hash,
};

use crate::client::{AUTHORIZATION_API, AzureProvider, LiveIdentity, MSI_API};
use crate::compile::{roles_value, wanted_roles};
use crate::error::{ASSIGNMENT_LIST, Call, FIC_LIST, IDENTITY_GET, IDENTITY_LIST_SUB};
use crate::ids::{self, KIND_FIC, KIND_IDENTITY};
use crate::names::{self, scope_subscription};
use crate::observe_bulk::BulkAssignments;
use crate::record::{self, Standing, TAG_APPLIED};

/// The description wid gives its role assignments: on an identity wid adopted, only
/// assignments with it (or matching the plan) are wid's.
pub fn assignment_description(plan: &str) -> String {
    format!("Managed by wid (plan {plan})")
}

/// An identity to read, with what the plan wants of it.
pub(crate) struct Target<'a> {
    pub(crate) id: ResourceId,
    pub(crate) desired: Option<&'a Resource>,
    fics: Vec<&'a Resource>,
    pub(crate) seen: Seen,
}

/// Where an identity's role assignments are listed: its own subscription, and each
/// subscription (or other scope, as written) the plan grants it roles in.
pub(crate) fn assignment_locations(
    identity: &ResourceId,
    want: &BTreeSet<(String, String)>,
) -> BTreeSet<String> {
    let mut at = BTreeSet::new();
    at.insert(format!(
        "/subscriptions/{}",
        identity.part(0).to_ascii_lowercase()
    ));
    for (scope, _) in want {
        match scope_subscription(scope) {
            Some(sub) => at.insert(format!("/subscriptions/{}", sub.to_ascii_lowercase())),
            None => at.insert(scope.clone()),
        };
    }
    at
}

/// Listed identities by folded id, with their ids (items without an identity id are
/// left out).
pub(crate) fn by_folded_id(items: Vec<Value>) -> BTreeMap<String, (ResourceId, Value)> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((s, rg, name)) = item["id"].as_str().and_then(ids::parse_identity) else {
            continue;
        };
        let id = ids::identity_id(&s, &rg, &name);
        out.insert(ids::fold(&id), (id, item));
    }
    out
}

/// Whether wid reads an identity's credentials and role assignments: its own, or one the
/// plan adopts; never another plan's.
pub(crate) fn reads_what_hangs_off(ownership: &Ownership, desired: Option<&Resource>) -> bool {
    match ownership {
        Ownership::Ours => true,
        Ownership::Unowned => desired.is_some_and(|d| d.adopt),
        Ownership::OtherPlan(_) => false,
    }
}

/// What a list read already said of an identity.
pub(crate) enum Seen {
    /// Nothing yet: read it on its own.
    Unread,
    /// Its body as a list of its resource group or subscription gave it; `None` when the
    /// list did not hold it, so it does not exist.
    Listed(Option<Value>),
}

pub(crate) fn tags_of(body: &Value) -> BTreeMap<String, String> {
    body["tags"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl AzureProvider {
    pub(crate) async fn observe_all(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        for r in wanted.iter().filter(|r| r.id.kind() == KIND_IDENTITY) {
            targets.insert(
                ids::fold(&r.id),
                Target {
                    id: r.id.clone(),
                    desired: Some(r),
                    fics: Vec::new(),
                    seen: Seen::Unread,
                },
            );
        }
        for r in wanted.iter().filter(|r| r.id.kind() == KIND_FIC) {
            let identity = ids::identity_of(&r.id);
            targets
                .entry(ids::fold(&identity))
                .or_insert_with(|| Target {
                    id: identity,
                    desired: None,
                    fics: Vec::new(),
                    seen: Seen::Unread,
                })
                .fics
                .push(r);
        }
        if owner.prune {
            let (listed, mut items) = self.subscription_identities(&targets).await?;
            for (key, t) in &mut targets {
                if listed.contains(&t.id.part(0).to_ascii_lowercase()) {
                    t.seen = Seen::Listed(items.remove(key).map(|(_, body)| body));
                }
            }
            for (key, (id, body)) in items {
                if record::standing(&tags_of(&body), &owner.plan).ownership == Ownership::Ours {
                    targets.insert(
                        key,
                        Target {
                            id,
                            desired: None,
                            fics: Vec::new(),
                            seen: Seen::Listed(Some(body)),
                        },
                    );
                }
            }
        }
        // The roles the plan names are looked up while the groups are listed (each once
        // per scope; every identity's read below finds them known).
        let roles: BTreeMap<(String, String), ResourceId> = targets
            .values()
            .filter_map(|t| Some((t.desired?, &t.id)))
            .flat_map(|(d, id)| {
                wanted_roles(d)
                    .into_iter()
                    .map(move |pair| (pair, id.clone()))
            })
            .collect();
        let lookups = futures::future::try_join_all(
            roles
                .iter()
                .map(|((scope, role), id)| self.role_guid(scope, role, id)),
        );
        let (listed, looked_up) = futures::join!(self.list_resource_groups(&mut targets), lookups);
        listed?;
        looked_up?;
        let bulk = self.bulk_assignments(&targets, owner).await?;
        let reads: Vec<_> = targets
            .into_values()
            .map(|t| self.read_identity(t, owner, &bulk))
            .collect();
        let reads = futures::stream::iter(reads)
            .buffer_unordered(self.calls.concurrency())
            .try_collect::<Vec<_>>()
            .await?;
        let mut observed = Observed::default();
        for o in reads {
            observed.extend(o);
        }
        Ok(observed)
    }

    /// Every identity in the plan's subscriptions (its clusters' and its targets'), by
    /// folded id, and the subscriptions listed (lowercase).
    async fn subscription_identities(
        &self,
        targets: &BTreeMap<String, Target<'_>>,
    ) -> Result<(BTreeSet<String>, BTreeMap<String, (ResourceId, Value)>), ProviderError> {
        let mut subscriptions: BTreeSet<String> = self
            .clusters
            .lock()
            .expect("cluster map lock is never poisoned")
            .values()
            .map(|c| c.subscription.to_ascii_lowercase())
            .collect();
        subscriptions.extend(targets.values().map(|t| t.id.part(0).to_ascii_lowercase()));
        let mut out = BTreeMap::new();
        for sub in &subscriptions {
            let path = format!(
                "/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
            );
            let call = Call::new(
                IDENTITY_LIST_SUB,
                format!("list the managed identities of subscription {sub}"),
                format!("/subscriptions/{sub}"),
            );
            let items = self.list(&call, &path, &[("api-version", MSI_API)]).await?;
            out.extend(by_folded_id(items));
        }
        Ok((subscriptions, out))
    }

    /// Reads one identity and what hangs off it.
    async fn read_identity(
        &self,
        target: Target<'_>,
        owner: &Owner,
        bulk: &BulkAssignments,
    ) -> Result<Observed, ProviderError> {
        let mut observed = Observed::default();
        let id = &target.id;
        // Role names are resolved even for an identity that does not exist yet, so a
        // misspelt role fails the plan rather than an apply half-way; together with the
        // identity's read.
        let resolve = async {
            if let Some(d) = target.desired {
                for (scope, role) in wanted_roles(d) {
                    self.role_guid(&scope, &role, id).await?;
                }
            }
            Ok::<(), ProviderError>(())
        };
        let path = ids::identity_path(id);
        let read = async {
            match target.seen {
                Seen::Listed(body) => Ok(body),
                Seen::Unread => {
                    let call = Call::new(
                        IDENTITY_GET,
                        format!(
                            "read identity {} in resource group {}",
                            id.part(2),
                            id.part(1)
                        ),
                        &path,
                    )
                    .id(id);
                    self.read(&call, &path, MSI_API).await
                }
            }
        };
        let (resolved, body) = futures::join!(resolve, read);
        resolved?;
        let Some(body) = body? else {
            return Ok(observed);
        };
        let tags = tags_of(&body);
        let standing = record::standing(&tags, &owner.plan);
        let props = &body["properties"];
        let principal = props["principalId"].as_str().unwrap_or_default().to_owned();
        let mut live = ObservedResource::new(id.clone(), standing.ownership.clone());
        for (output, field) in [
            ("client_id", "clientId"),
            ("principal_id", "principalId"),
            ("tenant_id", "tenantId"),
        ] {
            if let Some(v) = props[field].as_str() {
                live.outputs.insert(output.into(), v.to_owned());
            }
        }
        if standing.ownership == Ownership::Ours {
            live.applied = tags.get(TAG_APPLIED).cloned();
        }
        let location = names::normalize_location(body["location"].as_str().unwrap_or_default());
        if let Some(want) = target.desired.and_then(|d| d.str_attr("location"))
            && want != location
        {
            // ARM cannot move an identity: say so in the plan, not half-way through apply.
            observed.blockers.insert(
                id.clone(),
                format!(
                    "identity {} is in {location} and Azure cannot move it to {want}; set `azure.location = \"{location}\"` (or drop it), or name a new identity (its pods get a new client id)",
                    id.part(2)
                ),
            );
        }
        live.attrs.insert("location".into(), json!(location));
        let want_keys: BTreeSet<String> = target
            .desired
            .and_then(|d| d.attrs.get("tags")?.known()?.as_object().cloned())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        live.attrs.insert(
            "tags".into(),
            json!(record::managed_tags(&tags, &want_keys)),
        );
        let readable = reads_what_hangs_off(&standing.ownership, target.desired);
        let mut assignments = BTreeMap::new();
        if readable {
            let fics = self.read_fics(id, &standing, &target.fics, owner).await?;
            observed.extend(fics);
            let (value, ids) = self
                .read_assignments(id, &principal, &standing, target.desired, owner, bulk)
                .await?;
            live.attrs.insert("role_assignments".into(), value);
            assignments = ids;
        }
        if standing.adopted && target.desired.is_none() {
            // Left the plan: prune lets go of it (wid's credentials, assignments and tags
            // go, the identity stays), and the plan lists what is removed.
            live.attrs.remove("location");
            live.attrs.insert("adopted_by".into(), json!(owner.plan));
        }
        self.remember(
            ids::fold(id),
            LiveIdentity {
                tags,
                principal_id: principal,
                adopted: standing.adopted,
                assignments,
            },
        );
        observed.insert(live);
        Ok(observed)
    }

    /// The federated credentials of one identity: the wanted ones, and (with prune) every
    /// other one that is wid's.
    async fn read_fics(
        &self,
        identity: &ResourceId,
        standing: &Standing,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let path = format!(
            "{}/federatedIdentityCredentials",
            ids::identity_path(identity)
        );
        let call = Call::new(
            FIC_LIST,
            format!(
                "list the federated credentials of identity {}",
                identity.part(2)
            ),
            ids::identity_path(identity),
        )
        .id(identity);
        let items = self.list(&call, &path, &[("api-version", MSI_API)]).await?;
        let by_name: BTreeMap<String, &Resource> = wanted
            .iter()
            .map(|r| (r.id.part(3).to_ascii_lowercase(), *r))
            .collect();
        let created = standing.ownership == Ownership::Ours && !standing.adopted;
        let mut observed = Observed::default();
        let mut present = BTreeSet::new();
        let mut trusted: BTreeMap<(String, String), String> = BTreeMap::new();
        for item in &items {
            let name = item["name"].as_str().unwrap_or_default();
            let p = &item["properties"];
            let issuer = p["issuer"].as_str().unwrap_or_default().to_owned();
            let subject = p["subject"].as_str().unwrap_or_default().to_owned();
            let desired = by_name.get(&name.to_ascii_lowercase()).copied();
            // On an identity wid created every credential is wid's; elsewhere only those
            // named as this plan names its credentials (the name hashes the plan).
            let ownership = match &standing.ownership {
                Ownership::OtherPlan(p) => Ownership::OtherPlan(p.clone()),
                _ if created || desired.is_some() || self.names_ours(name, &subject, owner) => {
                    Ownership::Ours
                }
                _ => Ownership::Unowned,
            };
            if desired.is_none() && !(owner.prune && ownership == Ownership::Ours) {
                trusted.insert((issuer, subject), name.to_owned());
                continue;
            }
            let id = desired.map_or_else(|| ids::fic_id(identity, name), |d| d.id.clone());
            present.insert(id.clone());
            let mut live = ObservedResource::new(id, ownership);
            live.attrs.insert("issuer".into(), json!(issuer));
            live.attrs.insert("subject".into(), json!(subject));
            live.attrs
                .insert("audiences".into(), p["audiences"].clone());
            live.depends_on = vec![identity.clone()];
            live.serialize_key = Some(identity.to_string());
            // The name is the record: it commits to the cluster, namespace and KSA, so a
            // subject or audience that differs was changed behind wid's back. Only the
            // issuer (the cluster's) can change with the plan.
            if let Some(d) = desired
                && live.ownership == Ownership::Ours
                && d.str_attr("issuer") == Some(issuer.as_str())
            {
                live.applied = applied_hash(&d.attrs);
            }
            observed.insert(live);
        }
        for r in wanted {
            if present.contains(&r.id) {
                continue;
            }
            let key = (
                r.str_attr("issuer").unwrap_or_default().to_owned(),
                r.str_attr("subject").unwrap_or_default().to_owned(),
            );
            if let Some(other) = trusted.get(&key) {
                observed.blockers.insert(
                    r.id.clone(),
                    format!(
                        "federated credential {other} of identity {} already trusts {} from this issuer, and Azure allows one credential per issuer and subject; delete it (wid did not create it)",
                        identity.part(2),
                        key.1
                    ),
                );
            }
        }
        Ok(observed)
    }

    /// Whether a credential's name is one this plan would give it (for a KSA of one of the
    /// plan's clusters, read from its subject).
    fn names_ours(&self, name: &str, subject: &str, owner: &Owner) -> bool {
        let Some(rest) = subject.strip_prefix("system:serviceaccount:") else {
            return false;
        };
        let Some((ns, ksa)) = rest.split_once(':') else {
            return false;
        };
        let clusters = self
            .clusters
            .lock()
            .expect("cluster map lock is never poisoned");
        clusters
            .keys()
            .any(|c| names::fic_name(&owner.plan, c, ns, ksa).eq_ignore_ascii_case(name))
    }

    /// The identity's role assignments wid manages, as the `role_assignments` attribute,
    /// and their ARM ids by (scope lowercase, role text).
    async fn read_assignments(
        &self,
        identity: &ResourceId,
        principal: &str,
        standing: &Standing,
        desired: Option<&Resource>,
        owner: &Owner,
        bulk: &BulkAssignments,
    ) -> Result<(Value, BTreeMap<(String, String), String>), ProviderError> {
        let want = desired.map(wanted_roles).unwrap_or_default();
        // (scope lowercase, role GUID) → (scope, role text) as the plan writes them.
        let mut resolved: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        for (scope, role) in &want {
            let guid = self.role_guid(scope, role, identity).await?;
            resolved.insert(
                (scope.to_ascii_lowercase(), guid),
                (scope.clone(), role.clone()),
            );
        }
        if principal.is_empty() {
            return Ok((roles_value(Vec::new()), BTreeMap::new()));
        }
        let mark = assignment_description(&owner.plan);
        let created = standing.ownership == Ownership::Ours && !standing.adopted;
        let filter = format!("principalId eq '{principal}'");
        let mut seen = BTreeSet::new();
        let mut pairs = Vec::new();
        let mut arm_ids = BTreeMap::new();
        for at in assignment_locations(identity, &want) {
            let items = match bulk.of(&at, principal) {
                Some(items) => items,
                None => {
                    let call = Call::new(
                        ASSIGNMENT_LIST,
                        format!("list the role assignments of identity {}", identity.part(2)),
                        &at,
                    )
                    .id(identity);
                    self.list(
                        &call,
                        &format!("{at}/providers/Microsoft.Authorization/roleAssignments"),
                        &[("$filter", &filter), ("api-version", AUTHORIZATION_API)],
                    )
                    .await?
                }
            };
            for item in items {
                let arm_id = item["id"].as_str().unwrap_or_default().to_owned();
                let p = &item["properties"];
                if !p["principalId"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(principal))
                    || !seen.insert(arm_id.to_ascii_lowercase())
                {
                    continue;
                }
                let scope = names::normalize_scope(p["scope"].as_str().unwrap_or_default());
                let guid = names::role_guid(p["roleDefinitionId"].as_str().unwrap_or_default());
                let matched = resolved.get(&(scope.to_ascii_lowercase(), guid.clone()));
                let marked = p["description"].as_str() == Some(mark.as_str());
                if !(created || matched.is_some() || marked) {
                    continue;
                }
                let (scope, role) = matched.cloned().unwrap_or((scope, guid));
                arm_ids.insert((scope.to_ascii_lowercase(), role.clone()), arm_id);
                pairs.push((scope, role));
            }
        }
        Ok((roles_value(pairs), arm_ids))
    }
}
