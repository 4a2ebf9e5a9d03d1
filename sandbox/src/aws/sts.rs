//! STS: `GetCallerIdentity`, answering for a fixed `sandbox` user in the caller's account.

use super::caller::{Caller, stable_hex_id};
use super::query::{Outcome, Params, sts_invalid_action};
use super::xml::Xml;

/// The actions served as STS when the request does not say which service it signs for.
pub(crate) const ACTIONS: &[&str] = &[
    "GetCallerIdentity",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
];

pub(crate) fn action(caller: &Caller, action: &str, _params: &Params) -> Outcome {
    match action {
        "GetCallerIdentity" => Ok(Some(get_caller_identity(&caller.account))),
        _ => Err(sts_invalid_action(action)),
    }
}

fn get_caller_identity(account: &str) -> String {
    let mut xml = Xml::new();
    xml.leaf("Arn", &format!("arn:aws:iam::{account}:user/sandbox"))
        // A stable user id per account, shaped like a real one (`AIDA` + 17).
        .leaf("UserId", &format!("AIDA{}", &stable_hex_id(account)[..17]))
        .leaf("Account", account);
    xml.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_identity_names_the_account() {
        let body = get_caller_identity("111122223333");
        assert!(body.starts_with("<Arn>arn:aws:iam::111122223333:user/sandbox</Arn><UserId>AIDA"));
        assert!(body.ends_with("<Account>111122223333</Account>"));
    }
}
