//! IAM policies: managed policy attachments, inline role policies, and customer managed
//! policies (one default version, `v1`), plus the small set of AWS managed policies the
//! emulator knows.

use super::caller::{UPPER_ALNUM, iso_now, random_id, stable_hex_id};
use super::iam::{self, quota_size, validate_identity_document, validate_name, validate_path};
use super::model::{Account, ManagedPolicy};
use super::query::{Outcome, Params, QueryError, paginate};
use super::xml::{Xml, url_encode_document};
use crate::Shared;

/// Managed policies per role (the default quota).
const POLICIES_PER_ROLE: usize = 10;
/// Aggregate inline policy size per role, without whitespace.
const INLINE_POLICY_QUOTA: usize = 10_240;

/// AWS managed policies the emulator knows: the ones plans and tests commonly attach.
const AWS_MANAGED: &[&str] = &[
    "AdministratorAccess",
    "AmazonAthenaFullAccess",
    "AmazonDynamoDBFullAccess",
    "AmazonDynamoDBReadOnlyAccess",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEC2ReadOnlyAccess",
    "AmazonEKSClusterPolicy",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonElasticFileSystemReadOnlyAccess",
    "AmazonKinesisFullAccess",
    "AmazonKinesisReadOnlyAccess",
    "AmazonPrometheusRemoteWriteAccess",
    "AmazonRDSFullAccess",
    "AmazonRDSReadOnlyAccess",
    "AmazonRoute53FullAccess",
    "AmazonS3FullAccess",
    "AmazonS3ReadOnlyAccess",
    "AmazonSESFullAccess",
    "AmazonSNSFullAccess",
    "AmazonSNSReadOnlyAccess",
    "AmazonSQSFullAccess",
    "AmazonSQSReadOnlyAccess",
    "AmazonSSMManagedInstanceCore",
    "AmazonSSMReadOnlyAccess",
    "AWSLambda_FullAccess",
    "AWSLambda_ReadOnlyAccess",
    "AWSXRayDaemonWriteAccess",
    "CloudWatchAgentServerPolicy",
    "CloudWatchLogsFullAccess",
    "CloudWatchReadOnlyAccess",
    "IAMReadOnlyAccess",
    "PowerUserAccess",
    "ReadOnlyAccess",
    "SecretsManagerReadWrite",
];

/// A policy as listings show it.
#[derive(Debug, Clone)]
struct PolicyView {
    arn: String,
    name: String,
    path: String,
    policy_id: String,
    description: Option<String>,
    create_date: String,
}

fn aws_managed_arn(name: &str) -> String {
    format!("arn:aws:iam::aws:policy/{name}")
}

fn aws_managed_view(name: &str) -> PolicyView {
    PolicyView {
        arn: aws_managed_arn(name),
        name: name.to_owned(),
        path: "/".to_owned(),
        // Stable ids, so AWS managed policies look the same in every sandbox.
        policy_id: format!("ANPA{}", &stable_hex_id(name)[..17]),
        description: None,
        create_date: "2015-02-06T18:40:00Z".to_owned(),
    }
}

pub(crate) fn customer_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

/// The name and ARN of each policy attached to `role` that exists, in attachment order,
/// as `ListAttachedRolePolicies` lists them.
pub(crate) fn attached_names(
    acct: &Account,
    account: &str,
    role: &super::model::Role,
) -> Vec<(String, String)> {
    role.attached_policies
        .iter()
        .filter_map(|arn| find_policy(acct, account, arn))
        .map(|view| (view.name, view.arn))
        .collect()
}

/// The policy `arn` names, if it exists for `account`.
fn find_policy(acct: &Account, account: &str, arn: &str) -> Option<PolicyView> {
    if let Some(name) = arn.strip_prefix("arn:aws:iam::aws:policy/") {
        return AWS_MANAGED.contains(&name).then(|| aws_managed_view(name));
    }
    let policy = acct.policies.get(arn)?;
    Some(PolicyView {
        arn: customer_arn(account, &policy.path, &policy.name),
        name: policy.name.clone(),
        path: policy.path.clone(),
        policy_id: policy.policy_id.clone(),
        description: policy.description.clone(),
        create_date: policy.create_date.clone(),
    })
}

fn validate_policy_arn(arn: &str) -> Result<(), QueryError> {
    let valid = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":policy/"))
        .is_some_and(|(owner, name)| {
            (owner == "aws" || (owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit())))
                && !name.is_empty()
        });
    if valid {
        Ok(())
    } else {
        Err(QueryError::invalid_input(format!(
            "ARN {arn} is not valid."
        )))
    }
}

fn attachment_count(acct: &Account, arn: &str) -> usize {
    acct.roles
        .values()
        .filter(|r| r.attached_policies.iter().any(|a| a == arn))
        .count()
}

pub(crate) fn attach_role_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let arn = p.required("PolicyArn")?;
    validate_policy_arn(arn)?;
    iam::write(shared, account, |acct| {
        if find_policy(acct, account, arn).is_none() {
            return Err(QueryError::no_such_entity(format!(
                "Policy {arn} does not exist or is not attachable."
            )));
        }
        let role = iam::role_mut(acct, name)?;
        if role.attached_policies.iter().any(|a| a == arn) {
            return Ok(None);
        }
        if role.attached_policies.len() >= POLICIES_PER_ROLE {
            return Err(QueryError::limit_exceeded(format!(
                "Cannot exceed quota for PoliciesPerRole: {POLICIES_PER_ROLE}"
            )));
        }
        role.attached_policies.push(arn.to_owned());
        Ok(None)
    })
}

pub(crate) fn detach_role_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let arn = p.required("PolicyArn")?;
    validate_policy_arn(arn)?;
    iam::write(shared, account, |acct| {
        let role = iam::role_mut(acct, name)?;
        let before = role.attached_policies.len();
        role.attached_policies.retain(|a| a != arn);
        if role.attached_policies.len() == before {
            return Err(QueryError::no_such_entity(format!(
                "Policy {arn} was not found."
            )));
        }
        Ok(None)
    })
}

pub(crate) fn list_attached_role_policies(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let prefix = p.get("PathPrefix").unwrap_or("/");
    let attached: Vec<PolicyView> = iam::read(shared, account, |acct| {
        let role = iam::role(acct, name)?;
        Ok::<_, QueryError>(
            role.attached_policies
                .iter()
                .filter_map(|arn| find_policy(acct, account, arn))
                .filter(|view| view.path.starts_with(prefix))
                .collect(),
        )
    })?;
    let (page, marker) = paginate(attached, |v| v.arn.clone(), p)?;
    let mut xml = Xml::new();
    xml.open("AttachedPolicies");
    for view in &page {
        xml.open("member")
            .leaf("PolicyName", &view.name)
            .leaf("PolicyArn", &view.arn)
            .close("member");
    }
    xml.close("AttachedPolicies").paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

pub(crate) fn put_role_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let policy_name = p.required("PolicyName")?;
    validate_name("policyName", policy_name, 128)?;
    let document = p.required("PolicyDocument")?;
    validate_identity_document(document)?;
    iam::write(shared, account, |acct| {
        let role = iam::role_mut(acct, name)?;
        let others: usize = role
            .inline_policies
            .iter()
            .filter(|(n, _)| n.as_str() != policy_name)
            .map(|(_, d)| quota_size(d))
            .sum();
        if others + quota_size(document) > INLINE_POLICY_QUOTA {
            return Err(QueryError::limit_exceeded(format!(
                "Maximum policy size of {INLINE_POLICY_QUOTA} bytes exceeded for role {}",
                role.name
            )));
        }
        role.inline_policies
            .insert(policy_name.to_owned(), document.to_owned());
        Ok(None)
    })
}

pub(crate) fn get_role_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let policy_name = p.required("PolicyName")?;
    iam::read(shared, account, |acct| {
        let role = iam::role(acct, name)?;
        let document = role.inline_policies.get(policy_name).ok_or_else(|| {
            QueryError::no_such_entity(format!(
                "The role policy with name {policy_name} cannot be found."
            ))
        })?;
        let mut xml = Xml::new();
        xml.leaf("RoleName", &role.name)
            .leaf("PolicyName", policy_name)
            .leaf("PolicyDocument", &url_encode_document(document));
        Ok(Some(xml.finish()))
    })
}

pub(crate) fn delete_role_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let policy_name = p.required("PolicyName")?;
    iam::write(shared, account, |acct| {
        let role = iam::role_mut(acct, name)?;
        if role.inline_policies.remove(policy_name).is_none() {
            return Err(QueryError::no_such_entity(format!(
                "The role policy with name {policy_name} cannot be found."
            )));
        }
        Ok(None)
    })
}

pub(crate) fn list_role_policies(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let names: Vec<String> = iam::read(shared, account, |acct| {
        Ok::<_, QueryError>(
            iam::role(acct, name)?
                .inline_policies
                .keys()
                .cloned()
                .collect(),
        )
    })?;
    let (page, marker) = paginate(names, Clone::clone, p)?;
    let mut xml = Xml::new();
    xml.string_list("PolicyNames", page.iter().map(String::as_str))
        .paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

fn policy_xml(xml: &mut Xml, element: &str, view: &PolicyView, attachments: usize) {
    xml.open(element)
        .leaf("PolicyName", &view.name)
        .leaf("PolicyId", &view.policy_id)
        .leaf("Arn", &view.arn)
        .leaf("Path", &view.path)
        .leaf("DefaultVersionId", "v1")
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .opt_leaf("Description", view.description.as_deref())
        .leaf("CreateDate", &view.create_date)
        .leaf("UpdateDate", &view.create_date)
        .close(element);
}

pub(crate) fn create_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("PolicyName")?;
    validate_name("policyName", name, 128)?;
    let document = p.required("PolicyDocument")?;
    validate_identity_document(document)?;
    if quota_size(document) > 6144 {
        return Err(QueryError::limit_exceeded(
            "Cannot exceed quota for PolicySize: 6144",
        ));
    }
    let path = p.get("Path").unwrap_or("/");
    validate_path(path)?;
    let policy = ManagedPolicy {
        name: name.to_owned(),
        path: path.to_owned(),
        policy_id: random_id("ANPA", UPPER_ALNUM, 17),
        document: document.to_owned(),
        description: p.get("Description").map(str::to_owned),
        create_date: iso_now(),
        tags: p.tags("Tags")?,
    };
    let arn = customer_arn(account, path, name);
    iam::write(shared, account, |acct| {
        // Policy names are unique in the account whatever their path.
        if acct.policies.values().any(|p| p.name == name) {
            return Err(QueryError::already_exists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        acct.policies.insert(arn.clone(), policy);
        let view = find_policy(acct, account, &arn).expect("the policy was just inserted");
        let mut xml = Xml::new();
        policy_xml(&mut xml, "Policy", &view, 0);
        Ok(Some(xml.finish()))
    })
}

fn no_such_policy(arn: &str) -> QueryError {
    QueryError::no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

pub(crate) fn get_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("PolicyArn")?;
    validate_policy_arn(arn)?;
    iam::read(shared, account, |acct| {
        let view = find_policy(acct, account, arn).ok_or_else(|| no_such_policy(arn))?;
        let mut xml = Xml::new();
        policy_xml(&mut xml, "Policy", &view, attachment_count(acct, arn));
        Ok(Some(xml.finish()))
    })
}

pub(crate) fn delete_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("PolicyArn")?;
    validate_policy_arn(arn)?;
    iam::write(shared, account, |acct| {
        if !acct.policies.contains_key(arn) {
            return Err(no_such_policy(arn));
        }
        if attachment_count(acct, arn) > 0 {
            return Err(QueryError::delete_conflict(
                "Cannot delete a policy attached to entities.",
            ));
        }
        acct.policies.remove(arn);
        Ok(None)
    })
}

pub(crate) fn list_policies(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let scope = p.get("Scope").unwrap_or("All");
    let only_attached = p.get("OnlyAttached") == Some("true");
    let prefix = p.get("PathPrefix").unwrap_or("/");
    let views: Vec<(PolicyView, usize)> = iam::read(shared, account, |acct| {
        let mut views: Vec<PolicyView> = Vec::new();
        if scope != "AWS" {
            views.extend(
                acct.policies
                    .keys()
                    .filter_map(|arn| find_policy(acct, account, arn)),
            );
        }
        if scope != "Local" {
            views.extend(AWS_MANAGED.iter().map(|name| aws_managed_view(name)));
        }
        views
            .into_iter()
            .map(|v| {
                let count = attachment_count(acct, &v.arn);
                (v, count)
            })
            .filter(|(v, count)| v.path.starts_with(prefix) && (!only_attached || *count > 0))
            .collect()
    });
    let (page, marker) = paginate(views, |(v, _)| v.arn.clone(), p)?;
    let mut xml = Xml::new();
    xml.open("Policies");
    for (view, count) in &page {
        policy_xml(&mut xml, "member", view, *count);
    }
    xml.close("Policies").paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arns_name_aws_or_an_account() {
        assert!(validate_policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").is_ok());
        assert!(validate_policy_arn("arn:aws:iam::111122223333:policy/team/p").is_ok());
        for bad in [
            "ReadOnlyAccess",
            "arn:aws:iam::1:policy/p",
            "arn:aws:iam::aws:policy/",
        ] {
            let e = validate_policy_arn(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "InvalidInput"), "{bad}");
        }
    }

    #[test]
    fn known_aws_managed_policies_exist_and_others_do_not() {
        let acct = Account::default();
        let view =
            find_policy(&acct, "1", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess").unwrap();
        assert_eq!(view.name, "AmazonS3ReadOnlyAccess");
        assert_eq!(view.policy_id.len(), 21);
        assert!(find_policy(&acct, "1", "arn:aws:iam::aws:policy/NoSuchPolicy").is_none());
    }
}
