//! The `azure` block of a workload (its serde and JSON Schema types), the AKS cluster as
//! this provider sees it, and the checks that need nothing but the block itself.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Deserialize;
use wid_core::AttrMap;
pub use wid_core::FieldIssue;

use crate::names::{self, RoleRef, TAG_LIMIT, TAG_VALUE_MAX};
use crate::record::{RESERVED_PREFIX, WID_TAGS};

/// One role assignment of the identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// The role: a built-in or custom role name (`Storage Blob Data Reader`), or a role
    /// definition id or GUID.
    pub role: String,
    /// Where the role applies: an ARM resource id (`/subscriptions/SUB/resourceGroups/RG`,
    /// a storage account, a key vault). Default: the identity's resource group.
    #[serde(default)]
    pub scope: Option<String>,
}

/// The Azure side of a workload: the user-assigned managed identity its pods act as,
/// federated with the KSA, and the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureBlock {
    /// The user-assigned managed identity's name (3-128 letters, digits, `-` and `_`).
    /// Several workloads may name the same identity: it gets one federated credential
    /// per KSA (Azure allows 20).
    pub identity: String,
    /// The identity's resource group, in the cluster's subscription. Default: the
    /// cluster's resource group.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// The identity's Azure region (`eastus`). Default: its resource group's location.
    #[serde(default)]
    pub location: Option<String>,
    /// Tags to set on the identity besides wid's own; tags others set survive.
    #[serde(default)]
    pub tags: AttrMap<String>,
    /// Role assignments of the identity: each a role and a scope.
    #[serde(default)]
    pub roles: Vec<RoleAssignment>,
    /// Use an existing identity that wid did not create. wid then adds its federated
    /// credentials, role assignments and tags, and leaves everything else on it alone;
    /// it never deletes the identity.
    #[serde(default)]
    pub adopt: bool,
    /// The name of an existing federated identity credential, made outside wid, that
    /// trusts this KSA (needs `adopt = true`): wid uses it as it is instead of adding its
    /// own, and never deletes it. Default: wid's own credential,
    /// `CLUSTER_NAMESPACE_KSA-HASH`.
    #[serde(default)]
    pub credential: Option<String>,
}

/// An AKS cluster as the Azure provider needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksCluster {
    /// The plan's name for the cluster.
    pub plan_name: String,
    /// The subscription that holds the cluster (and the identities of its workloads).
    pub subscription: String,
    /// The managed cluster's resource group.
    pub resource_group: String,
    /// The managed cluster's name.
    pub name: String,
    /// The Microsoft Entra tenant of the subscription.
    pub tenant: String,
    /// The OIDC issuer URL, exactly as AKS reports it (trailing slash included); read
    /// from the managed cluster when the plan does not set it.
    pub issuer: Option<String>,
}

impl AzureBlock {
    /// The identity's resource group: the block's, else the cluster's.
    pub fn resource_group_or<'a>(&'a self, cluster: &'a AksCluster) -> &'a str {
        self.resource_group
            .as_deref()
            .unwrap_or(&cluster.resource_group)
    }
}

/// Checks everything about one block that needs no other block and no network: name
/// rules, role references, scope shapes, tag limits. Returns every issue, in field
/// order.
pub fn validate_block(block: &AzureBlock) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if let Some(why) = names::identity_issue(&block.identity) {
        issues.push(FieldIssue::new(&["identity"], why));
    }
    if let Some(rg) = &block.resource_group
        && let Some(why) = names::resource_group_issue(rg)
    {
        issues.push(FieldIssue::new(&["resource_group"], why));
    }
    if let Some(location) = &block.location
        && let Some(why) = names::location_issue(location)
    {
        issues.push(FieldIssue::new(&["location"], why));
    }
    if let Some(name) = &block.credential {
        if let Some(why) = names::fic_issue(name) {
            issues.push(FieldIssue::new(&["credential"], why));
        } else if !block.adopt {
            issues.push(
                FieldIssue::new(
                    &["credential"],
                    "`credential` names a federated credential wid did not create; that needs `adopt = true`",
                )
                .help("set `azure.adopt = true`, or remove `credential` to let wid add its own"),
            );
        }
    }
    check_roles(block, &mut issues);
    check_tags(block, &mut issues);
    issues
}

fn check_roles(block: &AzureBlock, issues: &mut Vec<FieldIssue>) {
    let mut seen = BTreeSet::new();
    for (i, r) in block.roles.iter().enumerate() {
        let index = i.to_string();
        let role = match RoleRef::parse(&r.role) {
            Ok(role) => Some(role),
            Err(why) => {
                issues.push(
                    FieldIssue::new(&["roles", &index, "role"], why)
                        .help("use a role name such as \"Storage Blob Data Reader\", or a role definition GUID"),
                );
                None
            }
        };
        if let Some(scope) = &r.scope
            && let Some(why) = names::scope_issue(scope)
        {
            issues.push(FieldIssue::new(&["roles", &index, "scope"], why));
            continue;
        }
        let scope = r
            .scope
            .as_deref()
            .map(|s| names::normalize_scope(s).to_ascii_lowercase());
        if let Some(role) = role
            && !seen.insert((role.text().to_ascii_lowercase(), scope))
        {
            issues.push(FieldIssue::new(
                &["roles", &index],
                format!("role {:?} is listed twice at the same scope", r.role),
            ));
        }
    }
}

fn check_tags(block: &AzureBlock, issues: &mut Vec<FieldIssue>) {
    for (key, value) in &block.tags {
        if let Some(why) = names::tag_issue(key, value, RESERVED_PREFIX) {
            issues.push(FieldIssue::new(&["tags", key], why));
        }
    }
    if block.tags.len() + WID_TAGS > TAG_LIMIT {
        issues.push(FieldIssue::new(
            &["tags"],
            format!(
                "{} tags plus wid's {WID_TAGS} own tags exceed Azure's limit of {TAG_LIMIT} per resource",
                block.tags.len()
            ),
        ));
    }
    // wid records the keys it set in one tag, so that it can later remove a key the
    // plan dropped without touching tags others set.
    let keys: Vec<&String> = block.tags.keys().collect();
    let recorded = serde_json::to_string(&keys).unwrap_or_default();
    if recorded.chars().count() > TAG_VALUE_MAX {
        issues.push(
            FieldIssue::new(
                &["tags"],
                format!(
                    "the tag names take {} characters as a list; wid records them in one tag, which Azure limits to {TAG_VALUE_MAX}",
                    recorded.chars().count()
                ),
            )
            .help("use fewer or shorter tag names"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(identity: &str) -> AzureBlock {
        AzureBlock {
            identity: identity.into(),
            resource_group: None,
            location: None,
            tags: wid_core::AttrMap::new(),
            roles: Vec::new(),
            adopt: false,
            credential: None,
        }
    }

    fn paths(issues: &[FieldIssue]) -> Vec<String> {
        issues.iter().map(|i| i.path.join(".")).collect()
    }

    #[test]
    fn a_plain_block_is_valid() {
        let mut b = block("orders-prod");
        b.resource_group = Some("rg-identities".into());
        b.location = Some("westeurope".into());
        b.tags.insert("team".into(), "payments".into());
        b.roles.push(RoleAssignment {
            role: "Storage Blob Data Reader".into(),
            scope: Some("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/orders".into()),
        });
        b.roles.push(RoleAssignment {
            role: "Reader".into(),
            scope: None,
        });
        assert_eq!(validate_block(&b), Vec::new());
    }

    #[test]
    fn every_bad_field_is_reported_at_its_path() {
        let mut b = block("x");
        b.resource_group = Some("rg.".into());
        b.location = Some("east_us".into());
        b.tags.insert("wid.dev.plan".into(), "x".into());
        b.tags.insert("a/b".into(), "x".into());
        b.roles.push(RoleAssignment {
            role: "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/nope".into(),
            scope: Some("/subscriptions/nope".into()),
        });
        b.roles.push(RoleAssignment {
            role: "Reader".into(),
            scope: None,
        });
        b.roles.push(RoleAssignment {
            role: "reader".into(),
            scope: None,
        });
        assert_eq!(
            paths(&validate_block(&b)),
            [
                "identity",
                "resource_group",
                "location",
                "roles.0.role",
                "roles.0.scope",
                "roles.2",
                "tags.a/b",
                "tags.wid.dev.plan"
            ]
        );
    }

    #[test]
    fn too_many_tags_are_rejected() {
        let mut b = block("orders");
        for i in 0..48 {
            b.tags.insert(format!("t{i}"), "v".into());
        }
        let issues = validate_block(&b);
        assert!(paths(&issues).iter().all(|p| p == "tags"));
        assert!(issues[0].message.contains("limit of 50"), "{issues:?}");
        let mut b = block("orders");
        for i in 0..10 {
            b.tags.insert(format!("{}{i}", "k".repeat(30)), "v".into());
        }
        assert!(validate_block(&b)[0].message.contains("one tag"));
    }

    #[test]
    fn blocks_reject_unknown_keys() {
        let b: AzureBlock = serde_json::from_value(serde_json::json!({
            "identity": "orders", "roles": [{"role": "Reader"}], "adopt": true
        }))
        .unwrap();
        assert!(b.adopt);
        assert!(
            serde_json::from_value::<AzureBlock>(
                serde_json::json!({"identity": "o", "idenity": 1})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<AzureBlock>(
                serde_json::json!({"identity": "o", "roles": [{"role": "R", "scop": "x"}]})
            )
            .is_err()
        );
    }

    #[test]
    fn a_named_credential_is_one_wid_adopts() {
        let mut b = block("orders");
        b.credential = Some("made-by-hand".into());
        assert_eq!(paths(&validate_block(&b)), ["credential"]);
        b.adopt = true;
        assert!(validate_block(&b).is_empty());
        b.credential = Some("-bad".into());
        assert_eq!(paths(&validate_block(&b)), ["credential"]);
    }
}
