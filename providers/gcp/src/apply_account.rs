//! Applying service account changes: create (with wid's mark and applied record in the
//! description, in the create call itself), update (display name and description, one
//! patch that also rewrites the record), delete (only accounts this plan owns).

use google_cloud_iam_admin_v1::model::ServiceAccount;
use wid_core::{
    Change, ChangeKind, ErrorKind, Outputs, Owner, Ownership, ProviderError, Reason, applied_hash,
};

use crate::client::GcpProvider;
use crate::error::Call;
use crate::ids;
use crate::record;

fn want<'a>(change: &'a Change, key: &str) -> Option<&'a str> {
    change.desired_str(key)
}

/// An update or delete of an object wid may not touch; the diff never produces one, so
/// this guards against a stale or hand-built change.
pub(crate) fn refuse(change: &Change, verb: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Conflict,
        format!(
            "refusing to {verb} {}: it does not carry this plan's mark",
            change.id
        ),
    )
    .with_resource(&change.id)
    .with_hint(
        "set `gcp.adopt = true` on the workload to take over a service account wid did not create",
    )
}

impl GcpProvider {
    pub(crate) async fn apply_account(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let clients = self.clients().await?;
        let id = &change.id;
        let project = id.part(0);
        let email = ids::sa_email(id);
        let name = format!("projects/{project}/serviceAccounts/{email}");
        let outputs = Outputs::from([("email".to_owned(), email.clone())]);
        let applied = change
            .desired
            .as_ref()
            .and_then(|d| applied_hash(&d.attrs))
            .unwrap_or_default();
        let description = record::description(want(change, "description"), &owner.plan, &applied);
        let display = want(change, "display_name").unwrap_or_default().to_owned();
        match change.kind {
            ChangeKind::Create => {
                let call = Call::new(
                    "iam.serviceAccounts.create",
                    format!("create service account {email}"),
                    format!("projects/{project}"),
                )
                .id(id);
                self.counter.count(call.op);
                let sent = clients
                    .iam
                    .create_service_account()
                    .set_name(format!("projects/{project}"))
                    .set_account_id(id.part(1))
                    .set_service_account(
                        ServiceAccount::new()
                            .set_display_name(display)
                            .set_description(description),
                    )
                    .send();
                self.call(&call, sent)
                    .await
                    .map_err(|err| {
                        if err.kind() == ErrorKind::Conflict {
                            err.with_hint("a service account with this id exists (it may have been deleted moments ago and not be listed yet); if it is not wid's, set `gcp.adopt = true` to take it over")
                        } else {
                            err
                        }
                    })?;
            }
            ChangeKind::Update => {
                let live = change.observed.as_ref().map(|o| &o.ownership);
                let adopting = change.reason == Reason::Adopt && live == Some(&Ownership::Unowned);
                if live != Some(&Ownership::Ours) && !adopting {
                    return Err(refuse(change, "update"));
                }
                let call = Call::new(
                    "iam.serviceAccounts.update",
                    format!("update service account {email}"),
                    &name,
                )
                .id(id);
                self.counter.count(call.op);
                let sent = clients
                    .iam
                    .patch_service_account()
                    .set_service_account(
                        ServiceAccount::new()
                            .set_name(&name)
                            .set_display_name(display)
                            .set_description(description),
                    )
                    .set_update_mask(
                        google_cloud_wkt::FieldMask::default()
                            .set_paths(["display_name", "description"]),
                    )
                    .send();
                self.call(&call, sent).await?;
            }
            ChangeKind::Delete => {
                if change.observed.as_ref().map(|o| &o.ownership) != Some(&Ownership::Ours) {
                    return Err(refuse(change, "delete"));
                }
                let call = Call::new(
                    "iam.serviceAccounts.delete",
                    format!("delete service account {email}"),
                    &name,
                )
                .id(id);
                self.counter.count(call.op);
                let sent = clients.iam.delete_service_account().set_name(&name).send();
                match self.call(&call, sent).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            ChangeKind::NoOp | ChangeKind::Conflict => {
                return Err(ProviderError::new(
                    ErrorKind::Invalid,
                    format!(
                        "a {:?} change of {} has nothing to apply",
                        change.kind, change.id
                    ),
                ));
            }
        }
        Ok(outputs)
    }
}
