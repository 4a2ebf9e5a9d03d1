//! Applying role changes: create (role, then attachments and inline policies), update
//! attribute by attribute, delete (only roles this plan owns). Creates and updates record
//! what they applied in the role's [`APPLIED_KEY`] tag.

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use serde_json::Value;
use wid_core::{
    APPLIED_KEY, Change, ChangeKind, ErrorKind, MANAGED_BY_KEY, MANAGED_BY_VALUE, Outputs, Owner,
    Ownership, PLAN_KEY, ProviderError, Reason,
};

use crate::client::{Account, AwsProvider};
use crate::error::{Call, is_not_found};
use crate::ids;
use crate::policy::strings;
use crate::record;

/// The attributes of a change, desired and live, as plain values.
struct Sides<'a> {
    change: &'a Change,
}

impl<'a> Sides<'a> {
    fn want(&self, key: &str) -> Option<&'a Value> {
        self.change.desired_attr(key).filter(|v| !v.is_null())
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
        self.change.attrs.iter().any(|a| a.key == key)
    }
}

fn object(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// An IAM tag; key and value are always set, so the builder cannot fail.
fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("a tag with key and value set always builds")
}

fn marks(plan: &str) -> [Tag; 2] {
    [tag(MANAGED_BY_KEY, MANAGED_BY_VALUE), tag(PLAN_KEY, plan)]
}

/// The partition named in a trust policy (`arn:aws-cn:`...), `aws` when none is.
fn partition_in(doc: Option<&Value>) -> &'static str {
    let text = doc.map(Value::to_string).unwrap_or_default();
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
        let path = sides
            .want("path")
            .or_else(|| sides.have("path"))
            .and_then(Value::as_str)
            .unwrap_or("/");
        let arn = self.known_arn(id).unwrap_or_else(|| {
            ids::role_arn(
                partition_in(sides.want("trust_policy")),
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
                self.update_role(&ctx, &sides, owner, adopting).await?;
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
            .want("trust_policy")
            .map(Value::to_string)
            .unwrap_or_default();
        let mut req = ctx
            .account
            .iam
            .create_role()
            .role_name(ctx.name)
            .assume_role_policy_document(trust)
            .path(sides.want("path").and_then(Value::as_str).unwrap_or("/"))
            .set_description(
                sides
                    .want("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
            .set_max_session_duration(
                sides
                    .want("max_session_duration")
                    .and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok()),
            )
            .set_permissions_boundary(
                sides
                    .want("permissions_boundary")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            );
        for (k, v) in object(sides.want("tags")) {
            req = req.tags(tag(&k, v.as_str().unwrap_or_default()));
        }
        for t in marks(&owner.plan) {
            req = req.tags(t);
        }
        // In the create call itself, so recording costs no call. A create that fails after
        // this (an attach) leaves the record; the next plan then calls the gap drift.
        if let Some(hash) = record::to_write(ctx.change) {
            req = req.tags(tag(APPLIED_KEY, &hash));
        }
        let call = ctx.call("iam:CreateRole", "create");
        self.counter.count(call.op);
        let out = req.send().await.map_err(|e| call.fail(&e))?;
        let arn = out
            .role()
            .map_or_else(|| ctx.arn.to_owned(), |r| r.arn().to_owned());
        for policy in strings(sides.want("managed_policies")) {
            self.attach(ctx, &policy).await?;
        }
        for (policy, doc) in object(sides.want("inline_policies")) {
            self.put_inline(ctx, &policy, &doc).await?;
        }
        Ok(arn)
    }

    async fn update_role(
        &self,
        ctx: &RoleCtx<'_>,
        sides: &Sides<'_>,
        owner: &Owner,
        adopting: bool,
    ) -> Result<(), ProviderError> {
        let iam = &ctx.account.iam;
        if sides.changed("path") {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!("the path of role {} in account {} cannot change in place", ctx.name, ctx.account_id),
            )
            .with_resource(&ctx.change.id)
            .with_hint("IAM has no call to move a role; keep the old path, or delete the role (remove it from the plan and apply with --prune) and apply again"));
        }
        if sides.changed("trust_policy") {
            let call = ctx.call("iam:UpdateAssumeRolePolicy", "update the trust policy of");
            self.counter.count(call.op);
            iam.update_assume_role_policy()
                .role_name(ctx.name)
                .policy_document(
                    sides
                        .want("trust_policy")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                )
                .send()
                .await
                .map_err(|e| call.fail(&e))?;
        }
        if sides.changed("managed_policies") {
            let (want, have) = (
                strings(sides.want("managed_policies")),
                strings(sides.have("managed_policies")),
            );
            // Detach first so a role at the quota can swap a policy.
            for p in have.difference(&want) {
                self.detach(ctx, p).await?;
            }
            for p in want.difference(&have) {
                self.attach(ctx, p).await?;
            }
        }
        if sides.changed("inline_policies") {
            let (want, have) = (
                object(sides.want("inline_policies")),
                object(sides.have("inline_policies")),
            );
            for (policy, doc) in &want {
                if have.get(policy) != Some(doc) {
                    self.put_inline(ctx, policy, doc).await?;
                }
            }
            for policy in have.keys().filter(|k| !want.contains_key(*k)) {
                self.delete_inline(ctx, policy).await?;
            }
        }
        if sides.changed("permissions_boundary") {
            match sides.want("permissions_boundary").and_then(Value::as_str) {
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
        }
        if sides.changed("max_session_duration") || sides.changed("description") {
            let call = ctx.call("iam:UpdateRole", "update");
            self.counter.count(call.op);
            iam.update_role()
                .role_name(ctx.name)
                .description(
                    sides
                        .want("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
                .set_max_session_duration(
                    sides
                        .want("max_session_duration")
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok()),
                )
                .send()
                .await
                .map_err(|e| call.fail(&e))?;
        }
        // `have` never holds wid's marks nor its record (observe leaves them out of
        // `tags`), so neither is ever untagged here.
        let (want, have) = (object(sides.want("tags")), object(sides.have("tags")));
        let stale: Vec<String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        if sides.changed("tags") && !stale.is_empty() {
            let call = ctx.call("iam:UntagRole", "untag");
            self.counter.count(call.op);
            iam.untag_role()
                .role_name(ctx.name)
                .set_tag_keys(Some(stale))
                .send()
                .await
                .map_err(|e| call.fail(&e))?;
        }
        // Tagging runs last so the record is only written once everything before it
        // succeeded: a failed update keeps the old record, and the next plan still says
        // the plan changed.
        let mut to_set: Vec<Tag> = Vec::new();
        if sides.changed("tags") {
            to_set.extend(
                want.iter()
                    .filter(|(k, v)| have.get(*k) != Some(*v))
                    .map(|(k, v)| tag(k, v.as_str().unwrap_or_default())),
            );
        }
        if adopting {
            to_set.extend(marks(&owner.plan));
        }
        let live = ctx
            .change
            .observed
            .as_ref()
            .and_then(|o| o.applied.as_deref());
        if let Some(hash) = record::to_rewrite(ctx.change, live) {
            to_set.push(tag(APPLIED_KEY, &hash));
        }
        if !to_set.is_empty() {
            let call = ctx.call("iam:TagRole", "tag");
            self.counter.count(call.op);
            iam.tag_role()
                .role_name(ctx.name)
                .set_tags(Some(to_set))
                .send()
                .await
                .map_err(|e| call.fail(&e))?;
        }
        Ok(())
    }

    /// Detaches every managed policy, deletes every inline policy, then the role. What is
    /// already gone counts as done, so a re-run after a partial delete converges.
    async fn delete_role(&self, ctx: &RoleCtx<'_>, sides: &Sides<'_>) -> Result<(), ProviderError> {
        for p in strings(sides.have("managed_policies")) {
            self.detach(ctx, &p).await?;
        }
        for p in object(sides.have("inline_policies")).keys() {
            self.delete_inline(ctx, p).await?;
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
            Err(e) => Err(call.fail(&e)),
        }
    }

    async fn attach(&self, ctx: &RoleCtx<'_>, policy: &str) -> Result<(), ProviderError> {
        let call = ctx.call_on("iam:AttachRolePolicy", format!("attach {policy} to"));
        self.counter.count(call.op);
        ctx.account
            .iam
            .attach_role_policy()
            .role_name(ctx.name)
            .policy_arn(policy)
            .send()
            .await
            .map_err(|e| call.fail(&e))?;
        Ok(())
    }

    async fn detach(&self, ctx: &RoleCtx<'_>, policy: &str) -> Result<(), ProviderError> {
        let call = ctx.call_on("iam:DetachRolePolicy", format!("detach {policy} from"));
        self.counter.count(call.op);
        match ctx
            .account
            .iam
            .detach_role_policy()
            .role_name(ctx.name)
            .policy_arn(policy)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(call.fail(&e)),
        }
    }

    async fn put_inline(
        &self,
        ctx: &RoleCtx<'_>,
        policy: &str,
        doc: &Value,
    ) -> Result<(), ProviderError> {
        let call = ctx.call_on(
            "iam:PutRolePolicy",
            format!("put inline policy {policy} on"),
        );
        self.counter.count(call.op);
        ctx.account
            .iam
            .put_role_policy()
            .role_name(ctx.name)
            .policy_name(policy)
            .policy_document(doc.to_string())
            .send()
            .await
            .map_err(|e| call.fail(&e))?;
        Ok(())
    }

    async fn delete_inline(&self, ctx: &RoleCtx<'_>, policy: &str) -> Result<(), ProviderError> {
        let call = ctx.call_on(
            "iam:DeleteRolePolicy",
            format!("delete inline policy {policy} of"),
        );
        self.counter.count(call.op);
        match ctx
            .account
            .iam
            .delete_role_policy()
            .role_name(ctx.name)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(call.fail(&e)),
        }
    }
}

/// What every call on one role needs for its error message.
struct RoleCtx<'a> {
    account: &'a Account,
    account_id: &'a str,
    name: &'a str,
    arn: &'a str,
    change: &'a Change,
}

impl<'a> RoleCtx<'a> {
    /// "VERB role NAME in account ACCOUNT".
    fn call(&self, op: &'static str, verb: &str) -> Call<'a> {
        Call::new(
            op,
            format!("{verb} role {} in account {}", self.name, self.account_id),
            self.arn,
        )
        .id(&self.change.id)
    }

    fn call_on(&self, op: &'static str, what: String) -> Call<'a> {
        self.call(op, &what)
    }
}

/// An update or delete of an object wid may not touch; the diff never produces one, so
/// this guards against a stale or hand-built change.
pub(crate) fn refuse(change: &Change, verb: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Conflict,
        format!(
            "refusing to {verb} {}: it does not carry this plan's ownership tags",
            change.id
        ),
    )
    .with_resource(&change.id)
    .with_hint("set `adopt = true` on the workload to take over an object wid did not create")
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
