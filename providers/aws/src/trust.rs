//! Reading the trust policy of any role by ARN, for `wid audit`: the roles that KSAs in a
//! cluster are annotated with, whoever made them.

use serde_json::Value;
use wid_core::ProviderError;

use crate::AwsProvider;
use crate::error::Call;
use crate::ids::parse_role_arn;
use crate::policy::normalize_policy;

impl AwsProvider {
    /// The trust (assume-role) policy of the role `role_arn`, decoded and normalized;
    /// `Ok(None)` when the role does not exist. One `iam:GetRole` in the role's account.
    pub async fn role_trust(&self, role_arn: &str) -> Result<Option<Value>, ProviderError> {
        let Some((account_id, name)) = parse_role_arn(role_arn) else {
            return Ok(None);
        };
        let account = self.account(account_id).await?;
        let call = Call::new(
            "iam:GetRole",
            format!("read role {name} in account {account_id}"),
            role_arn,
        );
        let got = self.read(&call, || account.iam.get_role().role_name(name).send());
        Ok(got.await?.and_then(|out| {
            out.role
                .and_then(|r| r.assume_role_policy_document)
                .map(|doc| normalize_policy(&doc).unwrap_or(Value::String(doc)))
        }))
    }
}
