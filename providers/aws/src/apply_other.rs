//! Applying IAM OIDC provider changes (shared: created when missing, given wid's audience,
//! deleted only when this plan owns it) and EKS Pod Identity association changes (never a
//! blind create, never a takeover the plan did not ask for: an existing association
//! without wid's mark is a conflict unless the workload sets `aws.adopt = true`). Both
//! record what they applied in the [`APPLIED_KEY`] tag: providers only when this plan
//! creates or owns them. Tagging only ever adds wid's own tags, so nobody else's tags
//! on these objects are touched.

use std::collections::HashMap;

use serde_json::Value;
use wid_core::{
    APPLIED_KEY, Change, ChangeKind, ErrorKind, MANAGED_BY_KEY, MANAGED_BY_VALUE, Outputs, Owner,
    Ownership, PLAN_KEY, ProviderError, Reason,
};

use crate::apply_role::{not_applicable, refuse};
use crate::client::AwsProvider;
use crate::error::{Call, code_of, is_not_found};
use crate::ids;
use crate::observe_other::LiveAssociation;
use crate::policy::strings;
use crate::record;
use crate::role_calls::tag;

/// EKS tags: this plan's ownership marks (when `plan` is given) and the applied record
/// (when `hash` is).
fn eks_tags(plan: Option<&str>, hash: Option<String>) -> HashMap<String, String> {
    let mut tags = HashMap::new();
    if let Some(plan) = plan {
        tags.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
        tags.insert(PLAN_KEY.to_owned(), plan.to_owned());
    }
    if let Some(hash) = hash {
        tags.insert(APPLIED_KEY.to_owned(), hash);
    }
    tags
}

impl AwsProvider {
    pub(crate) async fn apply_oidc(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let id = &change.id;
        let account_id = ids::account_of(id);
        let host_path = ids::oidc_host_path(id);
        let account = self.account(account_id).await?;
        let arn = self
            .known_arn(id)
            .unwrap_or_else(|| ids::oidc_arn("aws", id));
        let call = |op: &'static str, verb: &str| {
            Call::new(
                op,
                format!("{verb} OIDC provider {host_path} in account {account_id}"),
                &arn,
            )
            .id(id)
        };
        let want = strings(change.desired_attr("client_ids").as_deref());
        match change.kind {
            ChangeKind::Create => {
                let c = call("iam:CreateOpenIDConnectProvider", "create");
                self.counter.count(c.op);
                let mut req = account
                    .iam
                    .create_open_id_connect_provider()
                    .url(format!("https://{host_path}"))
                    .set_client_id_list(Some(want.into_iter().collect()));
                for (k, v) in [
                    (MANAGED_BY_KEY, MANAGED_BY_VALUE),
                    (PLAN_KEY, owner.plan.as_str()),
                ] {
                    req = req.tags(tag(k, v));
                }
                if let Some(hash) = record::to_write(change) {
                    req = req.tags(tag(APPLIED_KEY, &hash));
                }
                match req.send().await {
                    Ok(out) => {
                        let arn = out
                            .open_id_connect_provider_arn()
                            .unwrap_or(&arn)
                            .to_owned();
                        self.remember_arn(id, &arn);
                        Ok(Outputs::from([("arn".to_owned(), arn)]))
                    }
                    // Another plan created it since observe: it is shared, so use it (and
                    // leave it unrecorded: it is not this plan's).
                    Err(e) if code_of(&e) == Some("EntityAlreadyExists") => {
                        Ok(Outputs::from([("arn".to_owned(), arn.clone())]))
                    }
                    Err(e) => Err(c.fail(&e)),
                }
            }
            ChangeKind::Update => {
                if change.observed.as_ref().map(|o| &o.ownership) != Some(&Ownership::Ours) {
                    return Err(refuse(change, "update"));
                }
                let have = strings(
                    change
                        .observed
                        .as_ref()
                        .and_then(|o| o.attrs.get("client_ids")),
                );
                // Only add: other audiences on the provider may be someone else's.
                let mut wrote = false;
                let partial = |wrote: bool, e: ProviderError| {
                    if wrote { e.partly_applied() } else { e }
                };
                for client in want.iter().filter(|c| !have.contains(*c)) {
                    let c = call(
                        "iam:AddClientIDToOpenIDConnectProvider",
                        &format!("add audience {client} to"),
                    );
                    self.counter.count(c.op);
                    account
                        .iam
                        .add_client_id_to_open_id_connect_provider()
                        .open_id_connect_provider_arn(&arn)
                        .client_id(client)
                        .send()
                        .await
                        .map_err(|e| partial(wrote, c.fail(&e)))?;
                    wrote = true;
                }
                // After the audiences, so a failed add keeps the old record.
                let live = change.observed.as_ref().and_then(|o| o.applied.as_deref());
                if let Some(hash) = record::to_rewrite(change, live) {
                    let c = call("iam:TagOpenIDConnectProvider", "tag");
                    self.counter.count(c.op);
                    account
                        .iam
                        .tag_open_id_connect_provider()
                        .open_id_connect_provider_arn(&arn)
                        .tags(tag(APPLIED_KEY, &hash))
                        .send()
                        .await
                        .map_err(|e| partial(wrote, c.fail(&e)))?;
                }
                Ok(Outputs::from([("arn".to_owned(), arn.clone())]))
            }
            ChangeKind::Delete => {
                if change.observed.as_ref().map(|o| &o.ownership) != Some(&Ownership::Ours) {
                    return Err(refuse(change, "delete"));
                }
                let c = call("iam:DeleteOpenIDConnectProvider", "delete");
                self.counter.count(c.op);
                match account
                    .iam
                    .delete_open_id_connect_provider()
                    .open_id_connect_provider_arn(&arn)
                    .send()
                    .await
                {
                    Ok(_) => Ok(Outputs::new()),
                    Err(e) if is_not_found(&e) => Ok(Outputs::new()),
                    Err(e) => Err(c.fail(&e)),
                }
            }
            ChangeKind::NoOp | ChangeKind::Conflict => Err(not_applicable(change)),
        }
    }

    pub(crate) async fn apply_association(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let id = &change.id;
        let (account_id, region, cluster, ns, ksa) =
            (id.part(0), id.part(1), id.part(2), id.part(3), id.part(4));
        let eks = self.account(account_id).await?.eks(region);
        let cluster_arn = ids::cluster_arn(account_id, region, cluster);
        let call = |op: &'static str, verb: &str| {
            Call::new(
                op,
                format!("{verb} the pod identity association of {ns}/{ksa} on EKS cluster {cluster} in account {account_id}"),
                &cluster_arn,
            )
            .id(id)
        };
        let role_arn = change
            .desired_str("role_arn")
            .unwrap_or_default()
            .to_owned();
        let cached = self
            .association_ids
            .lock()
            .expect("association id cache lock is never poisoned")
            .get(id)
            .cloned();
        let observed = change.observed.as_ref().map(|o| LiveAssociation {
            association_id: cached.clone().unwrap_or_default(),
            role_arn: o
                .attrs
                .get("role_arn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            ownership: o.ownership.clone(),
            applied: o.applied.clone(),
        });
        let live = match change.kind {
            ChangeKind::Create => {
                let c = call("eks:CreatePodIdentityAssociation", "create");
                self.counter.count(c.op);
                let created = eks
                    .create_pod_identity_association()
                    .cluster_name(cluster)
                    .namespace(ns)
                    .service_account(ksa)
                    .role_arn(&role_arn)
                    .set_tags(Some(eks_tags(Some(&owner.plan), record::to_write(change))))
                    .send()
                    .await;
                match created {
                    Ok(out) => {
                        let arn = out
                            .association()
                            .and_then(|a| a.association_arn())
                            .unwrap_or_default()
                            .to_owned();
                        self.remember_arn(id, &arn);
                        return Ok(Outputs::from([("arn".to_owned(), arn)]));
                    }
                    // It exists after all (eventual consistency after a delete, or made
                    // since observe). Never a duplicate, and never a takeover the plan
                    // did not ask for: only this plan's association is updated, or a
                    // hand-made one when the workload sets `aws.adopt = true`.
                    Err(e) if code_of(&e) == Some("ResourceInUseException") => {
                        let Some(live) = self.find_association(id, &owner.plan).await? else {
                            return Err(c.fail(&e));
                        };
                        let adopt = change.desired.as_ref().is_some_and(|d| d.adopt);
                        match &live.ownership {
                            Ownership::Ours => {}
                            Ownership::Unowned if adopt => {}
                            _ => return Err(taken(change, &live.ownership)),
                        }
                        live
                    }
                    Err(e) => return Err(c.fail(&e)),
                }
            }
            ChangeKind::Update => {
                let adopting = change.reason == Reason::Adopt;
                let allowed =
                    |o: &Ownership| *o == Ownership::Ours || (adopting && *o == Ownership::Unowned);
                let Some(observed) = observed.filter(|o| allowed(&o.ownership)) else {
                    return Err(refuse(change, "update"));
                };
                if cached.is_some() {
                    observed
                } else {
                    // Observe did not see it in this process: look again, and hold the
                    // association found to the same rule.
                    let Some(live) = self.find_association(id, &owner.plan).await? else {
                        return Err(gone(change));
                    };
                    if !allowed(&live.ownership) {
                        return Err(taken(change, &live.ownership));
                    }
                    live
                }
            }
            ChangeKind::Delete => {
                if change.observed.as_ref().map(|o| &o.ownership) != Some(&Ownership::Ours) {
                    return Err(refuse(change, "delete"));
                }
                let assoc_id = match cached {
                    Some(a) => a,
                    None => match self.find_association(id, &owner.plan).await? {
                        Some(live) if live.ownership == Ownership::Ours => live.association_id,
                        Some(live) => return Err(taken(change, &live.ownership)),
                        None => return Ok(Outputs::new()),
                    },
                };
                let c = call("eks:DeletePodIdentityAssociation", "delete");
                self.counter.count(c.op);
                return match eks
                    .delete_pod_identity_association()
                    .cluster_name(cluster)
                    .association_id(&assoc_id)
                    .send()
                    .await
                {
                    Ok(_) => Ok(Outputs::new()),
                    Err(e) if is_not_found(&e) => Ok(Outputs::new()),
                    Err(e) => Err(c.fail(&e)),
                };
            }
            ChangeKind::NoOp | ChangeKind::Conflict => return Err(not_applicable(change)),
        };
        // Point it at the role, then make sure it carries this plan's marks and record.
        let mut arn = self.known_arn(id).unwrap_or_default();
        let mut wrote = false;
        if live.role_arn != role_arn {
            let c = call("eks:UpdatePodIdentityAssociation", "update");
            self.counter.count(c.op);
            let out = eks
                .update_pod_identity_association()
                .cluster_name(cluster)
                .association_id(&live.association_id)
                .role_arn(&role_arn)
                .send()
                .await
                .map_err(|e| c.fail(&e))?;
            if let Some(a) = out.association().and_then(|a| a.association_arn()) {
                arn = a.to_owned();
            }
            wrote = true;
        }
        // One TagResource for both the marks (when taking it over) and the record (when
        // it changed), after the role update so a failed update keeps the old record.
        // TagResource only adds: the association's other tags stay as they are.
        let marks = (live.ownership != Ownership::Ours).then_some(owner.plan.as_str());
        let hash = record::to_rewrite(change, live.applied.as_deref());
        if (marks.is_some() || hash.is_some()) && !arn.is_empty() {
            let c = call("eks:TagResource", "tag");
            self.counter.count(c.op);
            eks.tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(eks_tags(marks, hash)))
                .send()
                .await
                .map_err(|e| {
                    let e = c.fail(&e);
                    if wrote { e.partly_applied() } else { e }
                })?;
        }
        Ok(Outputs::from([("arn".to_owned(), arn)]))
    }
}

/// The association of a KSA turned out to belong to someone else than the change
/// assumed: never taken over without the plan saying so.
fn taken(change: &Change, ownership: &Ownership) -> ProviderError {
    let origin = change
        .desired
        .as_ref()
        .and_then(|d| d.origin.as_deref())
        .map_or_else(String::new, |o| format!(" in workload {o}"));
    let (why, hint) = match ownership {
        Ownership::OtherPlan(plan) => (
            format!("it belongs to wid plan {plan:?}"),
            format!("remove it from plan {plan:?} (and apply that plan with --prune) first"),
        ),
        _ => (
            "it was not created by wid".to_owned(),
            format!("set `aws.adopt = true`{origin} to take it over"),
        ),
    };
    ProviderError::new(
        ErrorKind::Conflict,
        format!(
            "refusing to take over {}: an association for this service account exists and {why}",
            change.id
        ),
    )
    .with_resource(&change.id)
    .with_hint(hint)
}

fn gone(change: &Change) -> ProviderError {
    ProviderError::new(
        ErrorKind::NotFound,
        format!("{} disappeared since wid read it", change.id),
    )
    .with_resource(&change.id)
    .with_hint("run `wid plan` again")
}
