//! Resource ids of what this provider manages, the ARM paths behind them, and the way
//! back from an ARM id to a resource id.
//!
//! Key parts never contain `/`: an identity is `azure/managed-identity/SUB/RG/NAME`, a
//! federated credential `azure/federated-credential/SUB/RG/IDENTITY/NAME`. Role
//! assignments are attributes of their identity, not resources of their own.

use wid_core::ResourceId;

/// The provider's name and id prefix.
pub const PROVIDER: &str = "azure";
/// Kind of the user-assigned managed identity resource.
pub const KIND_IDENTITY: &str = "managed-identity";
/// Kind of the federated identity credential resource.
pub const KIND_FIC: &str = "federated-credential";
/// Kind of the stand-in id an offline plan's resource group location comes from.
pub const KIND_RESOURCE_GROUP: &str = "resource-group";

/// `azure/managed-identity/SUB/RG/NAME`.
pub fn identity_id(subscription: &str, resource_group: &str, name: &str) -> ResourceId {
    ResourceId::new(
        PROVIDER,
        KIND_IDENTITY,
        [subscription, resource_group, name],
    )
}

/// `azure/federated-credential/SUB/RG/IDENTITY/NAME`.
pub fn fic_id(identity: &ResourceId, name: &str) -> ResourceId {
    ResourceId::new(
        PROVIDER,
        KIND_FIC,
        [identity.part(0), identity.part(1), identity.part(2), name],
    )
}

/// `azure/resource-group/SUB/RG`: where an offline plan says a location will come from.
pub fn resource_group_id(subscription: &str, resource_group: &str) -> ResourceId {
    ResourceId::new(
        PROVIDER,
        KIND_RESOURCE_GROUP,
        [subscription, resource_group],
    )
}

/// The identity a federated credential belongs to.
pub fn identity_of(fic: &ResourceId) -> ResourceId {
    identity_id(fic.part(0), fic.part(1), fic.part(2))
}

/// The ARM path of an identity id (or of the identity of a credential id).
pub fn identity_path(id: &ResourceId) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
        id.part(0),
        id.part(1),
        id.part(2)
    )
}

/// The ARM path of a federated credential id.
pub fn fic_path(id: &ResourceId) -> String {
    format!(
        "{}/federatedIdentityCredentials/{}",
        identity_path(id),
        id.part(3)
    )
}

/// `/subscriptions/SUB/resourceGroups/RG`.
pub fn resource_group_scope(subscription: &str, resource_group: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{resource_group}")
}

/// The subscription, resource group and name in an identity's ARM id (matched
/// case-insensitively: ARM may answer `resourcegroups`).
pub fn parse_identity(arm_id: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = arm_id.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [s, sub, r, rg, p, ns, t, name]
            if s.eq_ignore_ascii_case("subscriptions")
                && r.eq_ignore_ascii_case("resourcegroups")
                && p.eq_ignore_ascii_case("providers")
                && ns.eq_ignore_ascii_case("Microsoft.ManagedIdentity")
                && t.eq_ignore_ascii_case("userAssignedIdentities") =>
        {
            Some(((*sub).to_owned(), (*rg).to_owned(), (*name).to_owned()))
        }
        _ => None,
    }
}

/// The case-insensitive identity of an ARM object: the same identity spelled with
/// different case is one identity.
pub fn fold(id: &ResourceId) -> String {
    id.to_string().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths() {
        let id = identity_id("s", "rg", "orders");
        assert_eq!(id.to_string(), "azure/managed-identity/s/rg/orders");
        assert_eq!(ResourceId::try_from(id.to_string()).unwrap(), id);
        let fic = fic_id(&id, "c_ns_ksa-0123");
        assert_eq!(
            fic.to_string(),
            "azure/federated-credential/s/rg/orders/c_ns_ksa-0123"
        );
        assert_eq!(identity_of(&fic), id);
        assert_eq!(
            fic_path(&fic),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders/federatedIdentityCredentials/c_ns_ksa-0123"
        );
        assert_eq!(
            parse_identity(
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.managedidentity/userassignedidentities/orders"
            ),
            Some(("s".into(), "rg".into(), "orders".into()))
        );
        assert_eq!(parse_identity("/subscriptions/s/resourceGroups/rg"), None);
    }
}
