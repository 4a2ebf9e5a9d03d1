//! Applying changes. An identity's change covers the identity and its role assignments:
//! create (PUT, then each assignment, then the applied record), update (assignments
//! added and removed, then one tag write), delete (its assignments, then the identity;
//! an adopted identity is only let go of). A call that fails after others changed the
//! identity leaves an incomplete record and a partly-applied error, so the next plan says
//! "incomplete apply", never drift. Federated credentials are one PUT or DELETE each.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use azure_core::http::Method;
use serde_json::{Value, json};
use wid_core::{
    Change, ChangeKind, ErrorKind, Outputs, Owner, Ownership, ProviderError, Reason, ResourceId,
};

use crate::client::{AUTHORIZATION_API, AzureProvider, LiveIdentity, MSI_API};
use crate::compile::{ADOPT_KEY, roles_of};
use crate::error::{
    ASSIGNMENT_DELETE, ASSIGNMENT_LIST, ASSIGNMENT_PUT, Call, FIC_DELETE, FIC_PUT, IDENTITY_DELETE,
    IDENTITY_GET, IDENTITY_PATCH, IDENTITY_PUT,
};
use crate::ids;
use crate::names;
use crate::observe::assignment_description;
use crate::record;

/// The least wait before retrying a role assignment whose new principal Azure RBAC does
/// not see yet: replication takes seconds, not milliseconds.
const REPLICATION_WAIT: Duration = Duration::from_secs(2);

fn object(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn outputs_of(props: &Value) -> Outputs {
    [
        ("client_id", "clientId"),
        ("principal_id", "principalId"),
        ("tenant_id", "tenantId"),
    ]
    .into_iter()
    .filter_map(|(k, f)| Some((k.to_owned(), props[f].as_str()?.to_owned())))
    .collect()
}

/// An update or delete of an object wid may not touch; the diff never produces one, so
/// this guards against a stale or hand-built change.
fn refuse(change: &Change, verb: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Conflict,
        format!(
            "refusing to {verb} {}: it does not carry this plan's mark",
            change.id
        ),
    )
    .with_resource(&change.id)
    .with_hint(format!(
        "set `{ADOPT_KEY} = true` on the workload to use an identity wid did not create"
    ))
}

fn not_applicable(change: &Change) -> ProviderError {
    ProviderError::new(
        ErrorKind::Invalid,
        format!(
            "a {:?} change of {} has nothing to apply",
            change.kind, change.id
        ),
    )
    .with_resource(&change.id)
}

/// The role assignment pairs (scope, role text) keyed case-insensitively.
fn keyed(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<(String, String), (String, String)> {
    pairs
        .into_iter()
        .map(|(s, r)| ((s.to_ascii_lowercase(), r.to_ascii_lowercase()), (s, r)))
        .collect()
}

impl AzureProvider {
    pub(crate) async fn apply_identity(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let live_owner = change.observed.as_ref().map(|o| &o.ownership);
        match change.kind {
            ChangeKind::Create => self.create_identity(change, owner).await,
            ChangeKind::Update => {
                let adopting = change.reason == Reason::Adopt;
                if live_owner != Some(&Ownership::Ours)
                    && !(adopting && live_owner == Some(&Ownership::Unowned))
                {
                    return Err(refuse(change, "update"));
                }
                self.update_identity(change, owner, adopting).await
            }
            ChangeKind::Delete => {
                if live_owner != Some(&Ownership::Ours) {
                    return Err(refuse(change, "delete"));
                }
                self.delete_identity(change, owner).await?;
                Ok(Outputs::new())
            }
            ChangeKind::NoOp | ChangeKind::Conflict => Err(not_applicable(change)),
        }
    }

    fn identity_call<'a>(&self, change: &'a Change, op: crate::error::Op, verb: &str) -> Call<'a> {
        Call::new(
            op,
            format!(
                "{verb} identity {} in resource group {}",
                change.id.part(2),
                change.id.part(1)
            ),
            ids::identity_path(&change.id),
        )
        .id(&change.id)
    }

    async fn create_identity(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let path = ids::identity_path(&change.id);
        let want_tags = object(change.desired_attr("tags").as_deref());
        let roles = roles_of(change.desired_attr("role_assignments").as_deref());
        // With assignments to make, the record says "incomplete" until the last one is
        // made: a failure in between must not read as drift on the next plan.
        let record = if roles.is_empty() {
            record::complete(change)
        } else {
            record::incomplete(change)
        };
        let tags = record::merged_tags(
            &BTreeMap::new(),
            &want_tags,
            &owner.plan,
            false,
            record.as_deref(),
        );
        let body = json!({
            "location": change.desired_attr("location").map_or(Value::Null, Cow::into_owned),
            "tags": tags,
        });
        let call = self.identity_call(change, IDENTITY_PUT, "create");
        let reply = self
            .send(&call, Method::Put, &path, MSI_API, Some(&body))
            .await
            .map_err(|f| call.fail(&f))?;
        let props = &reply.body["properties"];
        let outputs = outputs_of(props);
        let principal = outputs.get("principal_id").cloned().unwrap_or_default();
        let mut live = LiveIdentity {
            tags: object(reply.body.get("tags"))
                .into_iter()
                .chain(tags)
                .collect(),
            principal_id: principal,
            adopted: false,
            assignments: BTreeMap::new(),
        };
        self.remember(ids::fold(&change.id), live.clone());
        if roles.is_empty() {
            return Ok(outputs);
        }
        for (scope, role) in &roles {
            let arm_id = self
                .put_assignment(&change.id, &live.principal_id, scope, role, &owner.plan)
                .await
                .map_err(ProviderError::partly_applied)?;
            live.assignments
                .insert((scope.to_ascii_lowercase(), role.clone()), arm_id);
            self.remember(ids::fold(&change.id), live.clone());
        }
        let done = record::merged_tags(
            &live.tags,
            &want_tags,
            &owner.plan,
            false,
            record::complete(change).as_deref(),
        );
        self.patch_tags(change, &mut live, done)
            .await
            .map_err(ProviderError::partly_applied)?;
        Ok(outputs)
    }

    async fn update_identity(
        &self,
        change: &Change,
        owner: &Owner,
        adopting: bool,
    ) -> Result<Outputs, ProviderError> {
        let observed = change.observed.as_ref().expect("an update has a live side");
        if change.changes_attr("location") {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!(
                    "the location of identity {} cannot change in place (it is {}, the plan says {})",
                    change.id.part(2),
                    observed.attrs.get("location").map(Value::to_string).unwrap_or_default(),
                    change.desired_attr("location").map(|v| v.to_string()).unwrap_or_default(),
                ),
            )
            .with_resource(&change.id)
            .with_hint("set `azure.location` to the identity's location, or give the workload a new identity name (pods get its new client id)"));
        }
        let mut live = self.live_identity(change, owner).await?;
        let adopted = adopting || live.adopted;
        let want = keyed(roles_of(change.desired_attr("role_assignments").as_deref()));
        let have = keyed(roles_of(observed.attrs.get("role_assignments")));
        let mut changed = false;
        let result: Result<(), ProviderError> = async {
            for (key, (scope, role)) in &have {
                if want.contains_key(key) {
                    continue;
                }
                self.delete_assignment(&change.id, &live, scope, role)
                    .await?;
                live.assignments
                    .remove(&(scope.to_ascii_lowercase(), role.clone()));
                changed = true;
            }
            for (key, (scope, role)) in &want {
                if have.contains_key(key) {
                    continue;
                }
                let arm_id = self
                    .put_assignment(&change.id, &live.principal_id, scope, role, &owner.plan)
                    .await?;
                live.assignments
                    .insert((scope.to_ascii_lowercase(), role.clone()), arm_id);
                changed = true;
            }
            Ok(())
        }
        .await;
        let want_tags = object(change.desired_attr("tags").as_deref());
        if let Err(err) = result {
            if changed {
                // Best effort: say the apply is incomplete. When even this fails the old
                // record stays, and the plan calls the gap a plan change or drift.
                let tags = record::merged_tags(
                    &live.tags,
                    &want_tags,
                    &owner.plan,
                    adopted,
                    record::incomplete(change).as_deref(),
                );
                let _ = self.patch_tags(change, &mut live, tags).await;
                return Err(err.partly_applied());
            }
            return Err(err);
        }
        let tags = record::merged_tags(
            &live.tags,
            &want_tags,
            &owner.plan,
            adopted,
            record::complete(change).as_deref(),
        );
        if tags != live.tags {
            self.patch_tags(change, &mut live, tags)
                .await
                .map_err(|e| if changed { e.partly_applied() } else { e })?;
        }
        live.adopted = adopted;
        self.remember(ids::fold(&change.id), live);
        Ok(observed.outputs.clone())
    }

    async fn delete_identity(&self, change: &Change, owner: &Owner) -> Result<(), ProviderError> {
        let observed = change.observed.as_ref().expect("a delete has a live side");
        let mut live = self.live_identity(change, owner).await?;
        // Azure keeps role assignments of a deleted identity (as "identity not found"):
        // remove them first.
        let mut changed = false;
        for (scope, role) in roles_of(observed.attrs.get("role_assignments")) {
            self.delete_assignment(&change.id, &live, &scope, &role)
                .await
                .map_err(|e| if changed { e.partly_applied() } else { e })?;
            changed = true;
        }
        if live.adopted {
            // Not wid's to delete: drop wid's marks and tags, keep the identity.
            let tags = record::released_tags(&live.tags);
            return self
                .patch_tags(change, &mut live, tags)
                .await
                .map_err(|e| if changed { e.partly_applied() } else { e });
        }
        let path = ids::identity_path(&change.id);
        let call = self.identity_call(change, IDENTITY_DELETE, "delete");
        match self.send(&call, Method::Delete, &path, MSI_API, None).await {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(if changed {
                call.fail(&f).partly_applied()
            } else {
                call.fail(&f)
            }),
        }
    }

    /// What observe learned about the identity; read again when this run has not seen it
    /// (a change built elsewhere), since a tag write needs every tag others set.
    async fn live_identity(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<LiveIdentity, ProviderError> {
        if let Some(live) = self.known(&ids::fold(&change.id)) {
            return Ok(live);
        }
        let path = ids::identity_path(&change.id);
        let call = self.identity_call(change, IDENTITY_GET, "read");
        let body = self.read(&call, &path, MSI_API).await?.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "failed to read identity {} in resource group {}: it does not exist",
                    change.id.part(2),
                    change.id.part(1)
                ),
            )
            .with_resource(&change.id)
        })?;
        let tags = object(body.get("tags"));
        let standing = record::standing(&tags, &owner.plan);
        Ok(LiveIdentity {
            tags,
            principal_id: body["properties"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            adopted: standing.adopted,
            assignments: BTreeMap::new(),
        })
    }

    /// Replaces the identity's tags (ARM's PATCH replaces the whole map; `tags` keeps
    /// every tag others set).
    async fn patch_tags(
        &self,
        change: &Change,
        live: &mut LiveIdentity,
        tags: BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        let path = ids::identity_path(&change.id);
        let call = self.identity_call(change, IDENTITY_PATCH, "tag");
        self.send(
            &call,
            Method::Patch,
            &path,
            MSI_API,
            Some(&json!({ "tags": tags })),
        )
        .await
        .map_err(|f| call.fail(&f))?;
        live.tags = tags;
        self.remember(ids::fold(&change.id), live.clone());
        Ok(())
    }

    /// Assigns `role` at `scope` to the principal under wid's deterministic name. An
    /// equal assignment under another name (`RoleAssignmentExists`) is used as it is.
    /// Returns the assignment's ARM id.
    async fn put_assignment(
        &self,
        identity: &ResourceId,
        principal: &str,
        scope: &str,
        role: &str,
        plan: &str,
    ) -> Result<String, ProviderError> {
        let guid = self.role_guid(scope, role, identity).await?;
        let name = names::assignment_name(scope, &guid, principal);
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
        let call = Call::new(
            ASSIGNMENT_PUT,
            format!(
                "assign role {role:?} at {scope} to identity {}",
                identity.part(2)
            ),
            scope,
        )
        .id(identity);
        let body = json!({"properties": {
            "roleDefinitionId": names::role_definition_id(scope, &guid),
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "description": assignment_description(plan),
        }});
        match self
            .send(&call, Method::Put, &path, AUTHORIZATION_API, Some(&body))
            .await
        {
            Ok(reply) => Ok(reply.body["id"].as_str().map_or(path, str::to_owned)),
            Err(f) if f.code() == "RoleAssignmentExists" => self
                .existing_assignment(identity, principal, scope, &guid)
                .await?
                .ok_or_else(|| call.fail(&f)),
            Err(f) if f.code() == "PrincipalNotFound" => {
                Err(call.fail(&f).with_retry_after(REPLICATION_WAIT))
            }
            Err(f) => Err(call.fail(&f)),
        }
    }

    /// The id of the principal's assignment of `guid` at exactly `scope`, if any.
    async fn existing_assignment(
        &self,
        identity: &ResourceId,
        principal: &str,
        scope: &str,
        guid: &str,
    ) -> Result<Option<String>, ProviderError> {
        let call = Call::new(
            ASSIGNMENT_LIST,
            format!(
                "find the existing role assignment at {scope} of identity {}",
                identity.part(2)
            ),
            scope,
        )
        .id(identity);
        let filter = format!("principalId eq '{principal}'");
        let items = self
            .list(
                &call,
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments"),
                &[("$filter", &filter), ("api-version", AUTHORIZATION_API)],
            )
            .await?;
        Ok(items.iter().find_map(|a| {
            let p = &a["properties"];
            let same = p["scope"].as_str().is_some_and(|s| {
                names::normalize_scope(s).eq_ignore_ascii_case(&names::normalize_scope(scope))
            }) && names::role_guid(p["roleDefinitionId"].as_str().unwrap_or_default())
                == guid
                && p["principalId"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(principal));
            same.then(|| a["id"].as_str().map(str::to_owned)).flatten()
        }))
    }

    async fn delete_assignment(
        &self,
        identity: &ResourceId,
        live: &LiveIdentity,
        scope: &str,
        role: &str,
    ) -> Result<(), ProviderError> {
        let key = (scope.to_ascii_lowercase(), role.to_owned());
        let path = match live.assignments.get(&key) {
            Some(id) => id.clone(),
            None => {
                let guid = self.role_guid(scope, role, identity).await?;
                format!(
                    "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
                    names::assignment_name(scope, &guid, &live.principal_id)
                )
            }
        };
        let call = Call::new(
            ASSIGNMENT_DELETE,
            format!(
                "remove role {role:?} at {scope} from identity {}",
                identity.part(2)
            ),
            scope,
        )
        .id(identity);
        match self
            .send(&call, Method::Delete, &path, AUTHORIZATION_API, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(call.fail(&f)),
        }
    }

    pub(crate) async fn apply_fic(&self, change: &Change) -> Result<Outputs, ProviderError> {
        let path = ids::fic_path(&change.id);
        let identity = change.id.part(2);
        let live_owner = change.observed.as_ref().map(|o| &o.ownership);
        let call = |op, verb: &str| {
            Call::new(
                op,
                format!(
                    "{verb} federated credential {} of identity {identity}",
                    change.id.part(3)
                ),
                ids::identity_path(&change.id),
            )
            .id(&change.id)
        };
        match change.kind {
            ChangeKind::Create | ChangeKind::Update => {
                if change.kind == ChangeKind::Update
                    && live_owner != Some(&Ownership::Ours)
                    && change.reason != Reason::Adopt
                {
                    return Err(refuse(change, "update"));
                }
                let body = json!({"properties": {
                    "issuer": change.desired_attr("issuer"),
                    "subject": change.desired_attr("subject"),
                    "audiences": change.desired_attr("audiences"),
                }});
                let verb = if change.kind == ChangeKind::Create {
                    "create"
                } else {
                    "update"
                };
                let call = call(FIC_PUT, verb);
                self.send(&call, Method::Put, &path, MSI_API, Some(&body))
                    .await
                    .map_err(|f| {
                        let err = call.fail(&f);
                        if f.arm().is_some_and(|a| a.message.contains("Issuer and subject combination already exists")) {
                            err.with_hint(format!("another federated credential of identity {identity} already trusts this service account; delete it, then apply again"))
                        } else {
                            err
                        }
                    })?;
                Ok(Outputs::new())
            }
            ChangeKind::Delete => {
                if live_owner != Some(&Ownership::Ours) {
                    return Err(refuse(change, "delete"));
                }
                let call = call(FIC_DELETE, "delete");
                match self.send(&call, Method::Delete, &path, MSI_API, None).await {
                    Ok(_) => Ok(Outputs::new()),
                    Err(f) if f.is_not_found() => Ok(Outputs::new()),
                    Err(f) => Err(call.fail(&f)),
                }
            }
            ChangeKind::NoOp | ChangeKind::Conflict => Err(not_applicable(change)),
        }
    }
}
