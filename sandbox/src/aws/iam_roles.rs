//! IAM role actions: create, read, list, update, delete, tags, permissions boundary.

use super::caller::{UPPER_ALNUM, iso_now, random_id};
use super::iam::{self, role_arn, validate_name, validate_path, validate_trust_policy};
use super::model::Role;
use super::query::{Outcome, Params, QueryError, paginate};
use super::xml::{Xml, url_encode_document};
use crate::Shared;

/// Which optional role fields an action renders: `ListRoles` leaves out tags, the
/// boundary and last-use data, as IAM does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Full,
    Listing,
}

fn role_xml(xml: &mut Xml, name: &str, account: &str, role: &Role, detail: Detail) {
    xml.open(name)
        .leaf("Path", &role.path)
        .leaf("RoleName", &role.name)
        .leaf("RoleId", &role.role_id)
        .leaf("Arn", &role_arn(account, role))
        .leaf("CreateDate", &role.create_date)
        .leaf(
            "AssumeRolePolicyDocument",
            &url_encode_document(&role.assume_role_policy),
        )
        .opt_leaf("Description", role.description.as_deref())
        .leaf("MaxSessionDuration", &role.max_session_duration.to_string());
    if detail == Detail::Full {
        if let Some(boundary) = &role.permissions_boundary {
            xml.open("PermissionsBoundary")
                .leaf("PermissionsBoundaryType", "Policy")
                .leaf("PermissionsBoundaryArn", boundary)
                .close("PermissionsBoundary");
        }
        if !role.tags.is_empty() {
            xml.tags("Tags", &role.tags);
        }
        // The emulator never uses roles, so there is no last-use date to report.
        xml.open("RoleLastUsed").close("RoleLastUsed");
    }
    xml.close(name);
}

fn max_session_duration(p: &Params) -> Result<Option<u32>, QueryError> {
    let Some(text) = p.get("MaxSessionDuration") else {
        return Ok(None);
    };
    match text.parse::<u32>() {
        Ok(n) if (3600..=43200).contains(&n) => Ok(Some(n)),
        _ => Err(QueryError::validation(format!(
            "1 validation error detected: Value '{text}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
        ))),
    }
}

fn description(p: &Params) -> Result<Option<String>, QueryError> {
    match p.get("Description") {
        Some(d) if d.chars().count() > 1000 => Err(QueryError::validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        )),
        d => Ok(d.map(str::to_owned)),
    }
}

fn validate_boundary(arn: &str) -> Result<(), QueryError> {
    if arn.starts_with("arn:aws:iam::") && arn.contains(":policy/") {
        Ok(())
    } else {
        Err(QueryError::invalid_input(format!(
            "ARN {arn} is not valid."
        )))
    }
}

pub(crate) fn create_role(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    validate_name("roleName", name, 64)?;
    let document = p.required("AssumeRolePolicyDocument")?;
    let path = p.get("Path").unwrap_or("/");
    validate_path(path)?;
    let description = description(p)?;
    let max_session = max_session_duration(p)?.unwrap_or(3600);
    let boundary = p.get("PermissionsBoundary");
    if let Some(arn) = boundary {
        validate_boundary(arn)?;
    }
    let tags = p.tags("Tags")?;
    validate_trust_policy(document)?;
    let role = Role {
        name: name.to_owned(),
        path: path.to_owned(),
        role_id: random_id("AROA", UPPER_ALNUM, 17),
        create_date: iso_now(),
        assume_role_policy: document.to_owned(),
        description,
        max_session_duration: max_session,
        permissions_boundary: boundary.map(str::to_owned),
        tags,
        inline_policies: Default::default(),
        attached_policies: Vec::new(),
    };
    iam::write(shared, account, |acct| {
        let key = name.to_lowercase();
        if acct.roles.contains_key(&key) {
            return Err(QueryError::already_exists(format!(
                "Role with name {name} already exists."
            )));
        }
        let mut xml = Xml::new();
        role_xml(&mut xml, "Role", account, &role, Detail::Full);
        acct.roles.insert(key, role);
        Ok(Some(xml.finish()))
    })
}

pub(crate) fn get_role(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    iam::read(shared, account, |acct| {
        let mut xml = Xml::new();
        role_xml(
            &mut xml,
            "Role",
            account,
            iam::role(acct, name)?,
            Detail::Full,
        );
        Ok(Some(xml.finish()))
    })
}

pub(crate) fn list_roles(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let prefix = p.get("PathPrefix").unwrap_or("/");
    let roles: Vec<Role> = iam::read(shared, account, |acct| {
        acct.roles
            .values()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    });
    let (page, marker) = paginate(roles, |r| r.name.to_lowercase(), p)?;
    let mut xml = Xml::new();
    xml.open("Roles");
    for role in &page {
        role_xml(&mut xml, "member", account, role, Detail::Listing);
    }
    xml.close("Roles").paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

pub(crate) fn delete_role(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    iam::write(shared, account, |acct| {
        let role = iam::role(acct, name)?;
        if !role.attached_policies.is_empty() {
            return Err(QueryError::delete_conflict(
                "Cannot delete entity, must detach all policies first.",
            ));
        }
        if !role.inline_policies.is_empty() {
            return Err(QueryError::delete_conflict(
                "Cannot delete entity, must delete policies first.",
            ));
        }
        acct.roles.remove(&name.to_lowercase());
        Ok(None)
    })
}

pub(crate) fn update_role(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let description = description(p)?;
    let max_session = max_session_duration(p)?;
    iam::write(shared, account, |acct| {
        let role = iam::role_mut(acct, name)?;
        if let Some(description) = description {
            role.description = Some(description);
        }
        if let Some(max_session) = max_session {
            role.max_session_duration = max_session;
        }
        // UpdateRole has an empty but present Result element.
        Ok(Some(String::new()))
    })
}

pub(crate) fn update_assume_role_policy(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let document = p.required("PolicyDocument")?;
    validate_trust_policy(document)?;
    iam::write(shared, account, |acct| {
        iam::role_mut(acct, name)?.assume_role_policy = document.to_owned();
        Ok(None)
    })
}

pub(crate) fn tag_role(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let tags = p.tags("Tags")?;
    iam::write(shared, account, |acct| {
        let role = iam::role_mut(acct, name)?;
        iam::merge_tags(&mut role.tags, tags)?;
        Ok(None)
    })
}

pub(crate) fn untag_role(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let keys = p.list("TagKeys");
    iam::write(shared, account, |acct| {
        let role = iam::role_mut(acct, name)?;
        for key in &keys {
            role.tags.remove(key);
        }
        Ok(None)
    })
}

pub(crate) fn list_role_tags(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let tags: Vec<(String, String)> = iam::read(shared, account, |acct| {
        Ok::<_, QueryError>(iam::role(acct, name)?.tags.clone().into_iter().collect())
    })?;
    let (page, marker) = paginate(tags, |(k, _)| k.clone(), p)?;
    let mut xml = Xml::new();
    xml.tags("Tags", page.iter().map(|(k, v)| (k, v)))
        .paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

pub(crate) fn put_permissions_boundary(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    let boundary = p.required("PermissionsBoundary")?;
    validate_boundary(boundary)?;
    iam::write(shared, account, |acct| {
        iam::role_mut(acct, name)?.permissions_boundary = Some(boundary.to_owned());
        Ok(None)
    })
}

pub(crate) fn delete_permissions_boundary(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let name = p.required("RoleName")?;
    iam::write(shared, account, |acct| {
        iam::role_mut(acct, name)?.permissions_boundary = None;
        Ok(None)
    })
}
