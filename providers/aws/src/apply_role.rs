//! Applying role changes: create (role, then attachments and inline policies), update
//! attribute by attribute, delete (only roles this plan owns).
//!
//! Every create and update records what it applied in the role's [`APPLIED_KEY`] tag,
//! truthfully: a create with policies to attach starts with an incomplete record (in
//! `CreateRole` itself) and seals it with one `TagRole` after the last attachment; an
//! update writes the record in its last call. A change that fails after an earlier call
//! changed the role returns a partly-applied error and, best effort, leaves an incomplete
//! record, so the next plan says "incomplete apply", never drift.
//!
//! Tags follow the tag-key record ([`crate::tag_keys`]): wid sets the plan's tags and
//! removes only keys it set itself; everyone else's tags survive.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde_json::Value;
use wid_core::{
    APPLIED_KEY, AppliedRecord, AttrValue, Change, ChangeKind, ErrorKind, MANAGED_BY_KEY,
    MANAGED_BY_VALUE, Outputs, Owner, Ownership, PLAN_KEY, ProviderError, Reason,
};

use crate::client::AwsProvider;
use crate::error::is_not_found;
use crate::ids;
use crate::policy::strings;
use crate::record;
use crate::role_calls::{RoleCtx, tag};
use crate::tag_keys;

/// The attributes of a change, desired and live, as plain values.
struct Sides<'a> {
    change: &'a Change,
}

impl<'a> Sides<'a> {
    fn want(&self, key: &str) -> Option<Cow<'a, Value>> {
        self.change.desired_attr(key).filter(|v| !v.is_null())
    }

    /// A wanted document as the compact JSON text IAM takes: as held when held as text.
    fn want_text(&self, key: &str) -> Option<Cow<'a, str>> {
        match self.change.desired.as_ref()?.attrs.get(key)? {
            AttrValue::Json(text) => Some(Cow::Borrowed(text.as_str())),
            other => other
                .known()
                .filter(|v| !v.is_null())
                .map(|v| Cow::Owned(v.to_string())),
        }
    }

    fn have(&self, key: &str) -> Option<&'a Value> {
        self.change
            .observed
            .as_ref()?
            .attrs
            .get(key)
            .filter(|v| !v.is_null())
    }

    fn changed(&self, key: &str) -> bool {
        self.change.changes_attr(key)
    }
}

fn object(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn marks(plan: &str) -> [Tag; 2] {
    [tag(MANAGED_BY_KEY, MANAGED_BY_VALUE), tag(PLAN_KEY, plan)]
}

/// The partition named in a trust policy (`arn:aws-cn:`...), `aws` when none is.
fn partition_in(text: Option<&str>) -> &'static str {
    let text = text.unwrap_or_default();
    if text.contains("arn:aws-cn:") {
        "aws-cn"
    } else if text.contains("arn:aws-us-gov:") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

impl AwsProvider {
    pub(crate) async fn apply_role(
        &self,
        change: &Change,
        owner: &Owner,
    ) -> Result<Outputs, ProviderError> {
        let id = &change.id;
        let (account_id, name) = (ids::account_of(id), id.part(1));
        let account = self.account(account_id).await?;
        let sides = Sides { change };
        let want_path = sides.want("path");
        let path = want_path
            .as_deref()
            .or_else(|| sides.have("path"))
            .and_then(Value::as_str)
            .unwrap_or("/");
        let arn = self.known_arn(id).unwrap_or_else(|| {
            ids::role_arn(
                partition_in(sides.want_text("trust_policy").as_deref()),
                account_id,
                path,
                name,
            )
        });
        let ctx = RoleCtx {
            account: &account,
            account_id,
            name,
            arn: &arn,
            change,
        };
        match change.kind {
            ChangeKind::Create => {
                let arn = self.create_role(&ctx, &sides, owner).await?;
                self.remember_arn(id, &arn);
                return Ok(Outputs::from([("arn".to_owned(), arn)]));
            }
            ChangeKind::Update => {
                let live = change.observed.as_ref().map(|o| &o.ownership);
                let adopting = change.reason == Reason::Adopt;
                if live != Some(&Ownership::Ours)
                    && !(adopting && live == Some(&Ownership::Unowned))
                {
                    return Err(refuse(change, "update"));
                }
                let mut wrote = false;
                if let Err(e) = self
                    .update_role(&ctx, &sides, owner, adopting, &mut wrote)
                    .await
                {
                    if !wrote {
                        return Err(e);
                    }
                    self.leave_incomplete(&ctx, owner, adopting).await;
                    return Err(e.partly_applied());
                }
            }
            ChangeKind::Delete => {
                if change.observed.as_ref().map(|o| &o.ownership) != Some(&Ownership::Ours) {
                    return Err(refuse(change, "delete"));
                }
                self.delete_role(&ctx, &sides).await?;
            }
            ChangeKind::NoOp | ChangeKind::Conflict => return Err(not_applicable(change)),
        }
        Ok(Outputs::from([("arn".to_owned(), arn)]))
    }

    async fn create_role(
        &self,
        ctx: &RoleCtx<'_>,
        sides: &Sides<'_>,
        owner: &Owner,
    ) -> Result<String, ProviderError> {
        let trust = sides
            .want_text("trust_policy")
            .map(Cow::into_owned)
            .unwrap_or_default();
        let managed = strings(sides.want("managed_policies").as_deref());
        let inline = object(sides.want("inline_policies").as_deref());
        let tags = object(sides.want("tags").as_deref());
        let mut req = ctx
            .account
            .iam
            .create_role()
            .role_name(ctx.name)
            .assume_role_policy_document(trust)
            .path(
                sides
                    .want("path")
                    .as_deref()
                    .and_then(Value::as_str)
                    .unwrap_or("/"),
            )
            .set_description(
                sides
                    .want("description")
                    .as_deref()
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
            .set_max_session_duration(
                sides
                    .want("max_session_duration")
                    .as_deref()
                    .and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok()),
            )
            .set_permissions_boundary(
                sides
                    .want("permissions_boundary")
                    .as_deref()
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            );
        for (k, v) in &tags {
            req = req.tags(tag(k, v.as_str().unwrap_or_default()));
        }
        for (k, v) in tag_keys::encode(tags.keys().map(String::as_str)) {
            req = req.tags(tag(&k, &v));
        }
        for t in marks(&owner.plan) {
            req = req.tags(t);
        }
        // The record goes in the create call itself. A role with policies to attach is
        // not finished until the last one is, so it starts incomplete and is sealed by
        // one TagRole at the end: a failure in between leaves a role the next plan calls
        // an incomplete apply, not drift.
        let steps = managed.len() + inline.len();
        let hash = record::to_write(ctx.change);
        if let Some(hash) = &hash {
            let text = if steps == 0 {
                AppliedRecord::Complete(hash.clone())
            } else {
                AppliedRecord::Incomplete(hash.clone())
            };
            req = req.tags(tag(APPLIED_KEY, &text.to_text()));
        }
        let call = ctx.call("iam:CreateRole", "create");
        self.counter.count(call.op);
        let out = req.send().await.map_err(|e| call.fail(&e))?;
        let arn = out
            .role()
            .map_or_else(|| ctx.arn.to_owned(), |r| r.arn().to_owned());
        let finish = async {
            for policy in &managed {
                self.attach(ctx, policy).await?;
            }
            for (policy, doc) in &inline {
                self.put_inline(ctx, policy, doc).await?;
            }
            if steps > 0
                && let Some(hash) = &hash
            {
                self.tag_role(ctx, vec![tag(APPLIED_KEY, hash)]).await?;
            }
            Ok::<_, ProviderError>(())
        };
        finish.await.map_err(ProviderError::partly_applied)?;
        Ok(arn)
    }

    /// Every call of an update, in an order that keeps the record truthful: the record
    /// (and the tags) are written last, so a failure keeps the old record; `wrote` says
    /// whether some call already changed the role.
    async fn update_role(
        &self,
        ctx: &RoleCtx<'_>,
        sides: &Sides<'_>,
        owner: &Owner,
        adopting: bool,
        wrote: &mut bool,
    ) -> Result<(), ProviderError> {
        let iam = &ctx.account.iam;
        if sides.changed("path") {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!("the path of role {} in account {} cannot change in place", ctx.name, ctx.account_id),
            )
            .with_resource(&ctx.change.id)
            .with_hint("IAM has no call to move a role; keep the old `aws.path`, or delete the role (remove it from the plan and apply with --prune) and apply again"));
        }
        if sides.changed("trust_policy") {
            let call = ctx.call("iam:UpdateAssumeRolePolicy", "update the trust policy of");
            self.counter.count(call.op);
            iam.update_assume_role_policy()
                .role_name(ctx.name)
                .policy_document(
                    sides
                        .want_text("trust_policy")
                        .map(Cow::into_owned)
                        .unwrap_or_default(),
                )
                .send()
                .await
                .map_err(|e| call.fail(&e))?;
            *wrote = true;
        }
        if sides.changed("managed_policies") {
            let (want, have) = (
                strings(sides.want("managed_policies").as_deref()),
                strings(sides.have("managed_policies")),
            );
            // Detach first so a role at the quota can swap a policy.
            for p in have.difference(&want) {
                self.detach(ctx, p).await?;
                *wrote = true;
            }
            for p in want.difference(&have) {
                self.attach(ctx, p).await?;
                *wrote = true;
            }
        }
        if sides.changed("inline_policies") {
            let (want, have) = (
                object(sides.want("inline_policies").as_deref()),
                object(sides.have("inline_policies")),
            );
            for (policy, doc) in &want {
                if have.get(policy) != Some(doc) {
                    self.put_inline(ctx, policy, doc).await?;
                    *wrote = true;
                }
            }
            for policy in have.keys().filter(|k| !want.contains_key(*k)) {
                self.delete_inline(ctx, policy).await?;
                *wrote = true;
            }
        }
        if sides.changed("permissions_boundary") {
            match sides
                .want("permissions_boundary")
                .as_deref()
                .and_then(Value::as_str)
            {
                Some(b) => {
                    let call = ctx.call(
                        "iam:PutRolePermissionsBoundary",
                        "set the permissions boundary of",
                    );
                    self.counter.count(call.op);
                    iam.put_role_permissions_boundary()
                        .role_name(ctx.name)
                        .permissions_boundary(b)
                        .send()
                        .await
                        .map_err(|e| call.fail(&e))?;
                }
                None => {
                    let call = ctx.call(
                        "iam:DeleteRolePermissionsBoundary",
                        "remove the permissions boundary of",
                    );
                    self.counter.count(call.op);
                    iam.delete_role_permissions_boundary()
                        .role_name(ctx.name)
                        .send()
                        .await
                        .map_err(|e| call.fail(&e))?;
                }
            }
            *wrote = true;
        }
        if sides.changed("max_session_duration") || sides.changed("description") {
            let call = ctx.call("iam:UpdateRole", "update");
            self.counter.count(call.op);
            iam.update_role()
                .role_name(ctx.name)
                .description(
                    sides
                        .want("description")
                        .as_deref()
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
                .set_max_session_duration(
                    sides
                        .want("max_session_duration")
                        .as_deref()
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok()),
                )
                .send()
                .await
                .map_err(|e| call.fail(&e))?;
            *wrote = true;
        }

        // Tags. `have` holds only keys wid may touch (the plan's, and those the tag-key
        // record lists), never wid's marks or records, so nobody else's tag is removed.
        let (want, have) = (
            object(sides.want("tags").as_deref()),
            object(sides.have("tags")),
        );
        let live_record = self.live_tag_record(&ctx.change.id);
        let recorded = tag_keys::decode(live_record.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let want_keys: BTreeSet<&str> = want.keys().map(String::as_str).collect();
        let mut untag: Vec<String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        let record_changed =
            recorded.iter().map(String::as_str).collect::<BTreeSet<_>>() != want_keys;
        if record_changed {
            untag.extend(tag_keys::surplus(
                live_record.iter().map(|(k, _)| k.as_str()),
                want_keys.iter().copied(),
            ));
        }
        self.untag_role(ctx, untag.clone()).await?;
        *wrote |= !untag.is_empty();
        // One TagRole last, for the plan's tags, the marks (when adopting), the tag-key
        // record and the applied record: a failed update keeps the old applied record.
        let mut to_set: Vec<Tag> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| tag(k, v.as_str().unwrap_or_default()))
            .collect();
        if adopting {
            to_set.extend(marks(&owner.plan));
        }
        if record_changed {
            to_set.extend(
                tag_keys::encode(want_keys.iter().copied())
                    .into_iter()
                    .map(|(k, v)| tag(&k, &v)),
            );
        }
        let live = ctx
            .change
            .observed
            .as_ref()
            .and_then(|o| o.applied.as_deref());
        if let Some(hash) = record::to_rewrite(ctx.change, live) {
            to_set.push(tag(APPLIED_KEY, &hash));
        }
        self.tag_role(ctx, to_set).await
    }

    /// After an update failed part-way: mark the role's record incomplete (with this
    /// plan's marks when adopting, since wid has already changed it), best effort. If
    /// even that fails, the report still says the role is partly applied.
    async fn leave_incomplete(&self, ctx: &RoleCtx<'_>, owner: &Owner, adopting: bool) {
        let Some(hash) = record::to_write(ctx.change) else {
            return;
        };
        let mut tags = vec![tag(APPLIED_KEY, &AppliedRecord::Incomplete(hash).to_text())];
        if adopting {
            tags.extend(marks(&owner.plan));
        }
        if let Err(e) = self.tag_role(ctx, tags).await {
            tracing::warn!(
                "could not record the incomplete apply of {}: {e}",
                ctx.change.id
            );
        }
    }

    /// Detaches every managed policy, deletes every inline policy, then the role. What is
    /// already gone counts as done, so a re-run after a partial delete converges.
    async fn delete_role(&self, ctx: &RoleCtx<'_>, sides: &Sides<'_>) -> Result<(), ProviderError> {
        let mut wrote = false;
        let partial = |wrote: bool, e: ProviderError| {
            if wrote { e.partly_applied() } else { e }
        };
        for p in strings(sides.have("managed_policies")) {
            self.detach(ctx, &p).await.map_err(|e| partial(wrote, e))?;
            wrote = true;
        }
        for p in object(sides.have("inline_policies")).keys() {
            self.delete_inline(ctx, p)
                .await
                .map_err(|e| partial(wrote, e))?;
            wrote = true;
        }
        let call = ctx.call("iam:DeleteRole", "delete");
        self.counter.count(call.op);
        match ctx
            .account
            .iam
            .delete_role()
            .role_name(ctx.name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(partial(wrote, call.fail(&e))),
        }
    }
}

/// An update or delete of an object wid may not touch; the diff never produces one, so
/// this guards against a stale or hand-built change. The hint names the plan key that
/// takes the object over, where the plan has one.
pub(crate) fn refuse(change: &Change, verb: &str) -> ProviderError {
    let hint = match (
        &change.observed.as_ref().map(|o| &o.ownership),
        change.desired.as_ref(),
    ) {
        (Some(Ownership::OtherPlan(plan)), _) => format!(
            "it belongs to wid plan {plan:?}; remove it from that plan (and apply it with --prune) first"
        ),
        (_, Some(d)) => match (&d.adopt_key, &d.origin) {
            (Some(key), Some(origin)) => {
                format!("set `{key} = true` in workload {origin} to take it over")
            }
            (Some(key), None) => format!("set `{key} = true` to take it over"),
            (None, _) => "wid cannot take this object over; rename it in the plan".to_owned(),
        },
        (_, None) => {
            "wid never deletes what it did not create; delete it by hand if it must go".to_owned()
        }
    };
    ProviderError::new(
        ErrorKind::Conflict,
        format!(
            "refusing to {verb} {}: it does not carry this plan's ownership tags",
            change.id
        ),
    )
    .with_resource(&change.id)
    .with_hint(hint)
}

pub(crate) fn not_applicable(change: &Change) -> ProviderError {
    ProviderError::new(
        ErrorKind::Invalid,
        format!(
            "a {:?} change of {} has nothing to apply",
            change.kind, change.id
        ),
    )
    .with_resource(&change.id)
}
