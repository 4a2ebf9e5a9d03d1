//! Reading IAM OIDC providers (listed once per account) and EKS Pod Identity associations
//! (listed per namespace where the plan wants several, else found by cluster, namespace
//! and KSA; the list has no role, so one describe each).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde_json::{Value, json};
use wid_core::ahead::Taken;
use wid_core::{Observed, ObservedResource, Owner, Ownership, ProviderError, Resource, ResourceId};

use crate::client::AwsProvider;
use crate::error::Call;
use crate::ids;
use crate::observe::ownership;
use crate::record;

/// What wid needs of one association.
pub(crate) struct LiveAssociation {
    pub association_id: String,
    pub role_arn: String,
    pub ownership: Ownership,
    /// The applied record on it (this plan's associations only).
    pub applied: Option<String>,
}

impl AwsProvider {
    /// The ARNs of the account's OIDC providers (`ListOpenIDConnectProviders`, one call).
    pub(crate) async fn oidc_arns(&self, account_id: &str) -> Result<Vec<String>, ProviderError> {
        let account = self.account(account_id).await?;
        let list = Call::new(
            "iam:ListOpenIDConnectProviders",
            format!("list the OIDC providers of account {account_id}"),
            format!("arn:aws:iam::{account_id}:oidc-provider/*"),
        );
        let out = self
            .fetch(&list, || {
                account.iam.list_open_id_connect_providers().send()
            })
            .await?;
        Ok(out
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|entry| entry.arn().map(str::to_owned))
            .collect())
    }

    /// Lists the account's OIDC providers once (or takes the list `listed` read ahead)
    /// and reads the wanted ones (with prune, all of them, to find this plan's).
    pub(crate) async fn observe_oidc(
        &self,
        account_id: &str,
        listed: Taken<Vec<String>>,
        wanted: &[&Resource],
        owner: &Owner,
        observed: &mut Observed,
    ) -> Result<(), ProviderError> {
        let account = self.account(account_id).await?;
        let arns = listed.or_read(|| self.oidc_arns(account_id)).await?;
        let wanted: BTreeMap<&ResourceId, &Resource> = wanted
            .iter()
            .filter(|r| ids::account_of(&r.id) == account_id)
            .map(|r| (&r.id, *r))
            .collect();
        for arn in &arns {
            let Some((_, host_path)) = ids::parse_oidc_arn(arn) else {
                continue;
            };
            let id = ids::oidc_id(account_id, host_path);
            let want = wanted.get(&id);
            if want.is_none() && !owner.prune {
                continue;
            }
            let get = Call::new(
                "iam:GetOpenIDConnectProvider",
                format!("read OIDC provider {host_path} in account {account_id}"),
                arn,
            )
            .id(&id);
            let got = self.read(&get, || {
                let call = account.iam.get_open_id_connect_provider();
                call.open_id_connect_provider_arn(arn).send()
            });
            let Some(provider) = got.await? else { continue };
            let owned = ownership(
                provider.tags().iter().map(|t| (t.key(), t.value())),
                &owner.plan,
            );
            if want.is_none() && owned != Ownership::Ours {
                continue;
            }
            let mut client_ids: BTreeSet<&str> = provider
                .client_id_list()
                .iter()
                .map(String::as_str)
                .collect();
            // A shared provider may serve other audiences too; those belong to others, so
            // wid compares (and would add) only the audiences it wants.
            if let Some(want) = want {
                let wanted = want.attrs.get("client_ids").and_then(|v| v.known());
                let wanted_ids: BTreeSet<&str> = wanted
                    .as_deref()
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                client_ids.retain(|c| wanted_ids.contains(c));
            }
            self.remember_arn(&id, arn);
            let mut live = ObservedResource::new(id, owned);
            live.applied = record::read(
                provider.tags().iter().map(|t| (t.key(), t.value())),
                &live.ownership,
            );
            live.attrs.insert("client_ids".into(), json!(client_ids));
            observed.insert(live);
        }
        Ok(())
    }

    /// Finds the association of one KSA: list filtered by namespace and KSA, then describe
    /// for the role. `Ok(None)` when there is none.
    pub(crate) async fn find_association(
        &self,
        id: &ResourceId,
        plan: &str,
    ) -> Result<Option<LiveAssociation>, ProviderError> {
        let (account_id, region, cluster, ns, ksa) =
            (id.part(0), id.part(1), id.part(2), id.part(3), id.part(4));
        let eks = self.account(account_id).await?.eks(region);
        let list = Call::new(
            "eks:ListPodIdentityAssociations",
            format!("list the pod identity associations of {ns}/{ksa} on EKS cluster {cluster} in account {account_id}"),
            ids::cluster_arn(account_id, region, cluster),
        )
        .id(id);
        let out = self
            .fetch(&list, || {
                let call = eks.list_pod_identity_associations().cluster_name(cluster);
                call.namespace(ns).service_account(ksa).send()
            })
            .await?;
        let Some(assoc_id) = out.associations().iter().find_map(|a| a.association_id()) else {
            return Ok(None);
        };
        self.describe_association(id, assoc_id, plan).await
    }

    pub(crate) async fn describe_association(
        &self,
        id: &ResourceId,
        assoc_id: &str,
        plan: &str,
    ) -> Result<Option<LiveAssociation>, ProviderError> {
        let (account_id, region, cluster) = (id.part(0), id.part(1), id.part(2));
        let eks = self.account(account_id).await?.eks(region);
        let call = Call::new(
            "eks:DescribePodIdentityAssociation",
            format!("read pod identity association {assoc_id} on EKS cluster {cluster}"),
            ids::cluster_arn(account_id, region, cluster),
        )
        .id(id);
        let got = self.read(&call, || {
            let describe = eks.describe_pod_identity_association();
            describe
                .cluster_name(cluster)
                .association_id(assoc_id)
                .send()
        });
        let Some(out) = got.await? else {
            return Ok(None);
        };
        let Some(a) = out.association() else {
            return Ok(None);
        };
        let tags: Vec<(&str, &str)> = a
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default();
        self.association_ids
            .lock()
            .expect("association id cache lock is never poisoned")
            .insert(id.clone(), assoc_id.to_owned());
        if let Some(arn) = a.association_arn() {
            self.remember_arn(id, arn);
        }
        let owned = ownership(tags.iter().copied(), plan);
        Ok(Some(LiveAssociation {
            association_id: assoc_id.to_owned(),
            role_arn: a.role_arn().unwrap_or_default().to_owned(),
            applied: record::read(tags.iter().copied(), &owned),
            ownership: owned,
        }))
    }

    /// Reads the wanted associations and, with prune, this plan's associations on every
    /// known cluster.
    pub(crate) async fn observe_associations(
        &self,
        wanted: &[&Resource],
        listed: Vec<(Namespace, Taken<Listing>)>,
        owner: &Owner,
        observed: &mut Observed,
    ) -> Result<(), ProviderError> {
        let mut clusters: BTreeSet<(String, String, String)> = self
            .clusters
            .lock()
            .expect("cluster set lock is never poisoned")
            .clone();
        for r in wanted {
            clusters.insert((
                r.id.part(0).into(),
                r.id.part(1).into(),
                r.id.part(2).into(),
            ));
        }
        // A namespace with at least LIST_THRESHOLD wanted associations is listed once
        // (filtered by namespace, 100 a page); elsewhere each association is found by its
        // own filtered list. Then one describe per association found (the list has no
        // role). As many calls at once as the provider allows; results in the plan's
        // order, so the first error is always the same one.
        // Which namespaces those are is `listed` ([`AwsProvider::first_reads`]), each with
        // what a read-ahead read of it.
        let plan = owner.plan.as_str();
        let listings: Vec<(Namespace, Result<Listing, ProviderError>)> =
            futures::stream::iter(listed)
                .map(|(ns, taken)| async move {
                    let found = taken.or_read(|| self.namespace_associations(&ns)).await;
                    (ns, found)
                })
                .buffered(self.calls.concurrency())
                .collect()
                .await;
        let mut listings_ok: BTreeMap<Namespace, Listing> = BTreeMap::new();
        let mut gone: BTreeSet<Namespace> = BTreeSet::new();
        for (ns, found) in listings {
            match found {
                Ok(found) => {
                    listings_ok.insert(ns, found);
                }
                Err(e) if e.kind() == wid_core::ErrorKind::NotFound => {
                    gone.insert(ns);
                }
                Err(e) => return Err(e),
            }
        }
        let lookups: Vec<(ResourceId, Lookup)> = wanted
            .iter()
            .map(|r| {
                let ns = namespace_of(&r.id);
                let lookup = if gone.contains(&ns) {
                    Lookup::ClusterGone
                } else if let Some(found) = listings_ok.get(&ns) {
                    Lookup::Listed(found.get(r.id.part(4)).cloned())
                } else {
                    Lookup::Find
                };
                (r.id.clone(), lookup)
            })
            .collect();
        let found: Vec<_> = futures::stream::iter(lookups)
            .map(|(id, lookup)| async move {
                let result = match lookup {
                    Lookup::Find => self.find_association(&id, plan).await,
                    Lookup::Listed(None) => Ok(None),
                    Lookup::Listed(Some(assoc_id)) => {
                        self.describe_association(&id, &assoc_id, plan).await
                    }
                    Lookup::ClusterGone => Err(ProviderError::new(
                        wid_core::ErrorKind::NotFound,
                        format!("EKS cluster {} does not exist", id.part(2)),
                    )),
                };
                (id, result)
            })
            .buffered(self.calls.concurrency())
            .collect()
            .await;
        for (id, result) in found {
            match result {
                Ok(Some(a)) => observed.insert(association_resource(&id, &a)),
                Ok(None) => {}
                Err(e) if e.kind() == wid_core::ErrorKind::NotFound => {
                    observed.blockers.insert(
                        id.clone(),
                        format!(
                            "EKS cluster {} does not exist in account {} ({})",
                            id.part(2),
                            id.part(0),
                            id.part(1)
                        ),
                    );
                }
                Err(e) => return Err(e),
            }
        }
        if !owner.prune {
            return Ok(());
        }
        let wanted_ids: BTreeSet<&ResourceId> = wanted.iter().map(|r| &r.id).collect();
        for (account_id, region, cluster) in clusters {
            let eks = self.account(&account_id).await?.eks(&region);
            let list = Call::new(
                "eks:ListPodIdentityAssociations",
                format!(
                    "list the pod identity associations of EKS cluster {cluster} in account {account_id}"
                ),
                ids::cluster_arn(&account_id, &region, &cluster),
            );
            let mut token: Option<String> = None;
            loop {
                let got = self.read(&list, || {
                    let call = eks.list_pod_identity_associations().cluster_name(&cluster);
                    call.set_next_token(token.clone()).send()
                });
                // A cluster that is gone has no associations left to prune.
                let Some(page) = got.await? else { break };
                for s in page.associations() {
                    let (Some(ns), Some(ksa), Some(assoc_id)) =
                        (s.namespace(), s.service_account(), s.association_id())
                    else {
                        continue;
                    };
                    let id = ids::association_id(&account_id, &region, &cluster, ns, ksa);
                    if wanted_ids.contains(&id) {
                        continue;
                    }
                    if let Some(a) = self
                        .describe_association(&id, assoc_id, &owner.plan)
                        .await?
                        && a.ownership == Ownership::Ours
                    {
                        observed.insert(association_resource(&id, &a));
                    }
                }
                match page.next_token() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
        }
        Ok(())
    }
}

/// A namespace with this many wanted associations is listed whole rather than one KSA at
/// a time: a listing page holds 100, so it costs no more calls unless the namespace holds
/// 100 × this many associations the plan does not want.
pub(crate) const LIST_THRESHOLD: usize = 3;

/// A namespace of an EKS cluster: (account, region, cluster, namespace).
pub(crate) type Namespace = (String, String, String, String);

pub(crate) fn namespace_of(id: &ResourceId) -> Namespace {
    (
        id.part(0).to_owned(),
        id.part(1).to_owned(),
        id.part(2).to_owned(),
        id.part(3).to_owned(),
    )
}

/// The associations of one namespace: association id by KSA.
pub(crate) type Listing = BTreeMap<String, String>;

/// How one wanted association is found.
enum Lookup {
    /// Its namespace was listed: the association id, if it has one.
    Listed(Option<String>),
    /// Its own list, filtered by namespace and KSA.
    Find,
    /// Its cluster does not exist.
    ClusterGone,
}

impl AwsProvider {
    /// The associations of one namespace, association id by KSA (pages of 100).
    pub(crate) async fn namespace_associations(
        &self,
        (account_id, region, cluster, ns): &Namespace,
    ) -> Result<Listing, ProviderError> {
        let eks = self.account(account_id).await?.eks(region);
        let list = Call::new(
            "eks:ListPodIdentityAssociations",
            format!(
                "list the pod identity associations of namespace {ns} on EKS cluster {cluster} in account {account_id}"
            ),
            ids::cluster_arn(account_id, region, cluster),
        );
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .fetch(&list, || {
                    let call = eks.list_pod_identity_associations().cluster_name(cluster);
                    call.namespace(ns)
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            for a in page.associations() {
                if let (Some(ksa), Some(assoc_id)) = (a.service_account(), a.association_id()) {
                    out.insert(ksa.to_owned(), assoc_id.to_owned());
                }
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }
}

fn association_resource(id: &ResourceId, a: &LiveAssociation) -> ObservedResource {
    let mut live = ObservedResource::new(id.clone(), a.ownership.clone());
    live.applied.clone_from(&a.applied);
    live.attrs.insert("role_arn".into(), json!(a.role_arn));
    if let Some((account, name)) = ids::parse_role_arn(&a.role_arn) {
        live.depends_on.push(ids::role_id(account, name));
    }
    live
}
