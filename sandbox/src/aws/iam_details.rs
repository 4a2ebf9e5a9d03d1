//! `GetAccountAuthorizationDetails`: an account's roles (with their trust policy, inline
//! and attached policies, permissions boundary and tags) and customer managed policies
//! (with their default version), a page at a time.
//!
//! The shape is the API reference's: `RoleDetailList` members carry `RolePolicyList`
//! (`PolicyName`, URL-encoded `PolicyDocument`), `AttachedManagedPolicies` (`PolicyName`,
//! `PolicyArn`), `Tags`, a URL-encoded `AssumeRolePolicyDocument`, an empty
//! `InstanceProfileList` and `RoleLastUsed`; `Policies` members carry their
//! `PolicyVersionList`. Unlike `GetRole`, a role detail has no `Description` and no
//! `MaxSessionDuration` (the API leaves them out). `Filter.member.N` picks entity types
//! (`Role`, `LocalManagedPolicy`, …; none means all); the emulator has no users and no
//! groups, and lists no AWS managed policies. Pages hold `MaxItems` entities (default
//! 100) and resume at `Marker`.

use super::iam::{self, role_arn};
use super::iam_policies::{attached_names, customer_arn};
use super::model::{ManagedPolicy, Role};
use super::query::{Outcome, Params, QueryError, paginate};
use super::xml::{Xml, url_encode_document};
use crate::Shared;

/// The entity types `Filter` may name.
const FILTERS: &[&str] = &[
    "User",
    "Role",
    "Group",
    "LocalManagedPolicy",
    "AWSManagedPolicy",
];

/// One listed entity, in listing order: roles by name, then policies by ARN.
#[derive(Debug, Clone)]
enum Entity {
    Role(Role, Vec<(String, String)>),
    Policy(ManagedPolicy, usize),
}

impl Entity {
    fn key(&self) -> String {
        match self {
            Self::Role(r, _) => format!("role/{}", r.name.to_lowercase()),
            Self::Policy(p, _) => format!("policy/{}{}", p.path, p.name),
        }
    }
}

pub(crate) fn get_account_authorization_details(
    shared: &Shared,
    account: &str,
    p: &Params,
) -> Outcome {
    let filter = p.list("Filter");
    if let Some(bad) = filter.iter().find(|f| !FILTERS.contains(&f.as_str())) {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '[{bad}]' at 'filter' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]]"
        )));
    }
    let wants = |kind: &str| filter.is_empty() || filter.iter().any(|f| f == kind);
    let entities: Vec<Entity> = iam::read(shared, account, |acct| {
        let mut out = Vec::new();
        if wants("Role") {
            for role in acct.roles.values() {
                let attached = attached_names(acct, account, role);
                out.push(Entity::Role(role.clone(), attached));
            }
        }
        if wants("LocalManagedPolicy") {
            let mut policies: Vec<&ManagedPolicy> = acct.policies.values().collect();
            policies.sort_by_key(|p| (p.path.clone(), p.name.clone()));
            for policy in policies {
                let arn = customer_arn(account, &policy.path, &policy.name);
                let attachments = acct
                    .roles
                    .values()
                    .filter(|r| r.attached_policies.contains(&arn))
                    .count();
                out.push(Entity::Policy(policy.clone(), attachments));
            }
        }
        out
    });
    let (page, marker) = paginate(entities, Entity::key, p)?;
    let mut xml = Xml::new();
    xml.open("UserDetailList").close("UserDetailList");
    xml.open("GroupDetailList").close("GroupDetailList");
    xml.open("RoleDetailList");
    for entity in &page {
        if let Entity::Role(role, attached) = entity {
            role_detail(&mut xml, account, role, attached);
        }
    }
    xml.close("RoleDetailList");
    xml.open("Policies");
    for entity in &page {
        if let Entity::Policy(policy, attachments) = entity {
            policy_detail(&mut xml, account, policy, *attachments);
        }
    }
    xml.close("Policies").paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

fn role_detail(xml: &mut Xml, account: &str, role: &Role, attached: &[(String, String)]) {
    xml.open("member")
        .leaf("Path", &role.path)
        .leaf("RoleName", &role.name)
        .leaf("RoleId", &role.role_id)
        .leaf("Arn", &role_arn(account, role))
        .leaf("CreateDate", &role.create_date)
        .leaf(
            "AssumeRolePolicyDocument",
            &url_encode_document(&role.assume_role_policy),
        );
    xml.open("InstanceProfileList").close("InstanceProfileList");
    xml.open("RolePolicyList");
    for (name, document) in &role.inline_policies {
        xml.open("member")
            .leaf("PolicyName", name)
            .leaf("PolicyDocument", &url_encode_document(document))
            .close("member");
    }
    xml.close("RolePolicyList");
    xml.open("AttachedManagedPolicies");
    for (name, arn) in attached {
        xml.open("member")
            .leaf("PolicyName", name)
            .leaf("PolicyArn", arn)
            .close("member");
    }
    xml.close("AttachedManagedPolicies");
    if let Some(boundary) = &role.permissions_boundary {
        xml.open("PermissionsBoundary")
            .leaf("PermissionsBoundaryType", "Policy")
            .leaf("PermissionsBoundaryArn", boundary)
            .close("PermissionsBoundary");
    }
    if !role.tags.is_empty() {
        xml.tags("Tags", &role.tags);
    }
    xml.open("RoleLastUsed").close("RoleLastUsed");
    xml.close("member");
}

fn policy_detail(xml: &mut Xml, account: &str, policy: &ManagedPolicy, attachments: usize) {
    xml.open("member")
        .leaf("PolicyName", &policy.name)
        .leaf("PolicyId", &policy.policy_id)
        .leaf("Arn", &customer_arn(account, &policy.path, &policy.name))
        .leaf("Path", &policy.path)
        .leaf("DefaultVersionId", "v1")
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .opt_leaf("Description", policy.description.as_deref())
        .leaf("CreateDate", &policy.create_date)
        .leaf("UpdateDate", &policy.create_date);
    xml.open("PolicyVersionList")
        .open("member")
        .leaf("Document", &url_encode_document(&policy.document))
        .leaf("VersionId", "v1")
        .leaf("IsDefaultVersion", "true")
        .leaf("CreateDate", &policy.create_date)
        .close("member")
        .close("PolicyVersionList");
    xml.close("member");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn roles_come_with_their_policies_and_tags_and_encoded_documents() {
        let role = Role {
            name: "orders".into(),
            path: "/".into(),
            role_id: "AROAEXAMPLE".into(),
            create_date: "2026-01-01T00:00:00Z".into(),
            assume_role_policy: "{\"Statement\":[]}".into(),
            description: Some("not in the detail".into()),
            max_session_duration: 3600,
            permissions_boundary: None,
            tags: BTreeMap::from([("team".into(), "a".into())]),
            inline_policies: BTreeMap::from([("s3".into(), "{\"Statement\":[]}".into())]),
            attached_policies: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        };
        let mut xml = Xml::new();
        role_detail(
            &mut xml,
            "111122223333",
            &role,
            &[(
                "ReadOnlyAccess".into(),
                "arn:aws:iam::aws:policy/ReadOnlyAccess".into(),
            )],
        );
        let out = xml.finish();
        assert!(out.contains("<AssumeRolePolicyDocument>%7B%22Statement%22%3A%5B%5D%7D</AssumeRolePolicyDocument>"), "{out}");
        assert!(
            out.contains("<RolePolicyList><member><PolicyName>s3</PolicyName><PolicyDocument>%7B"),
            "{out}"
        );
        assert!(out.contains("<AttachedManagedPolicies><member><PolicyName>ReadOnlyAccess</PolicyName><PolicyArn>arn:aws:iam::aws:policy/ReadOnlyAccess</PolicyArn></member></AttachedManagedPolicies>"), "{out}");
        assert!(
            out.contains("<Tags><member><Key>team</Key><Value>a</Value></member></Tags>"),
            "{out}"
        );
        assert!(
            !out.contains("Description") && !out.contains("MaxSessionDuration"),
            "{out}"
        );
    }
}
