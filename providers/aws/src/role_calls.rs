//! The single IAM calls a role change is made of (attach, detach, inline policies, tags),
//! each counted and turned into a [`ProviderError`] that names the role, the account and
//! the permission.

use aws_sdk_iam::types::Tag;
use serde_json::Value;
use wid_core::{Change, ErrorKind, ProviderError};

use crate::client::{Account, AwsProvider};
use crate::error::{Call, code_of, is_not_found, message_of};

/// An IAM tag; key and value are always set, so the builder cannot fail.
pub(crate) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("a tag with key and value set always builds")
}

/// What every call on one role needs for its error message.
pub(crate) struct RoleCtx<'a> {
    pub account: &'a Account,
    pub account_id: &'a str,
    pub name: &'a str,
    pub arn: &'a str,
    pub change: &'a Change,
}

impl<'a> RoleCtx<'a> {
    /// "VERB role NAME in account ACCOUNT".
    pub(crate) fn call(&self, op: &'static str, verb: &str) -> Call<'a> {
        Call::new(
            op,
            format!("{verb} role {} in account {}", self.name, self.account_id),
            self.arn,
        )
        .id(&self.change.id)
    }

    /// Where the plan declares this role, for hints.
    fn origin(&self) -> String {
        self.change
            .desired
            .as_ref()
            .and_then(|d| d.origin.as_deref())
            .map_or_else(String::new, |o| format!(" of workload {o}"))
    }
}

impl AwsProvider {
    pub(crate) async fn attach(
        &self,
        ctx: &RoleCtx<'_>,
        policy: &str,
    ) -> Result<(), ProviderError> {
        let call = ctx.call("iam:AttachRolePolicy", &format!("attach {policy} to"));
        self.counter.count(call.op);
        match ctx
            .account
            .iam
            .attach_role_policy()
            .role_name(ctx.name)
            .policy_arn(policy)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // What IAM cannot find is the policy (almost always a misspelt ARN in the
            // plan), unless it says the role is gone.
            Err(e)
                if (is_not_found(&e) && !message_of(&e).contains("role with name"))
                    || code_of(&e) == Some("PolicyNotAttachable") =>
            {
                let detail = call.fail(&e).detail;
                let mut err = ProviderError::new(
                    ErrorKind::Invalid,
                    format!(
                        "failed to attach {policy} to role {} in account {}: the policy does not exist or cannot be attached",
                        ctx.name, ctx.account_id
                    ),
                )
                .with_operation(call.op)
                .with_resource(&ctx.change.id)
                .with_hint(format!(
                    "check the ARN in `aws.managed_policies`{} (`aws iam get-policy --policy-arn {policy}`)",
                    ctx.origin()
                ));
                if let Some(detail) = detail {
                    err = err.with_detail(detail);
                }
                Err(err)
            }
            Err(e) => Err(call.fail(&e)),
        }
    }

    pub(crate) async fn detach(
        &self,
        ctx: &RoleCtx<'_>,
        policy: &str,
    ) -> Result<(), ProviderError> {
        let call = ctx.call("iam:DetachRolePolicy", &format!("detach {policy} from"));
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

    pub(crate) async fn put_inline(
        &self,
        ctx: &RoleCtx<'_>,
        policy: &str,
        doc: &Value,
    ) -> Result<(), ProviderError> {
        let call = ctx.call(
            "iam:PutRolePolicy",
            &format!("put inline policy {policy} on"),
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

    pub(crate) async fn delete_inline(
        &self,
        ctx: &RoleCtx<'_>,
        policy: &str,
    ) -> Result<(), ProviderError> {
        let call = ctx.call(
            "iam:DeleteRolePolicy",
            &format!("delete inline policy {policy} of"),
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

    /// One `TagRole` with every tag in `tags` (none: no call).
    pub(crate) async fn tag_role(
        &self,
        ctx: &RoleCtx<'_>,
        tags: Vec<Tag>,
    ) -> Result<(), ProviderError> {
        if tags.is_empty() {
            return Ok(());
        }
        let call = ctx.call("iam:TagRole", "tag");
        self.counter.count(call.op);
        ctx.account
            .iam
            .tag_role()
            .role_name(ctx.name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| call.fail(&e))?;
        Ok(())
    }

    /// One `UntagRole` for every key in `keys` (none: no call).
    pub(crate) async fn untag_role(
        &self,
        ctx: &RoleCtx<'_>,
        keys: Vec<String>,
    ) -> Result<(), ProviderError> {
        if keys.is_empty() {
            return Ok(());
        }
        let call = ctx.call("iam:UntagRole", "untag");
        self.counter.count(call.op);
        ctx.account
            .iam
            .untag_role()
            .role_name(ctx.name)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|e| call.fail(&e))?;
        Ok(())
    }
}
