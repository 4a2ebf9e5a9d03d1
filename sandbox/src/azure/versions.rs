//! The api-versions the emulator accepts, per resource type: the versions the specs in
//! Azure/azure-rest-api-specs publish whose shapes the emulator serves.

/// Api-versions of Microsoft.ManagedIdentity/userAssignedIdentities.
pub(crate) const MSI_VERSIONS: &[&str] = &[
    "2015-08-31-preview",
    "2018-11-30",
    "2021-09-30-preview",
    "2022-01-31-preview",
    "2023-01-31",
    "2023-07-31-preview",
    "2024-11-30",
    "2025-01-31-preview",
    "2025-05-31-preview",
    "2026-04-30",
    "2026-05-31",
];
/// Api-versions with federated identity credentials (introduced in 2022-01-31-preview).
pub(crate) const FIC_VERSIONS: &[&str] = &[
    "2022-01-31-preview",
    "2023-01-31",
    "2023-07-31-preview",
    "2024-11-30",
    "2025-01-31-preview",
    "2025-05-31-preview",
    "2026-04-30",
    "2026-05-31",
];
/// Api-versions of roleAssignments whose shape the emulator serves (principalType,
/// conditions, createdOn…).
pub(crate) const ROLE_ASSIGNMENT_VERSIONS: &[&str] = &[
    "2020-04-01-preview",
    "2020-08-01-preview",
    "2021-04-01-preview",
    "2022-01-01-preview",
    "2022-04-01",
];
/// Api-versions of roleDefinitions.
pub(crate) const ROLE_DEFINITION_VERSIONS: &[&str] = &[
    "2015-07-01",
    "2018-01-01-preview",
    "2022-04-01",
    "2022-05-01-preview",
];
/// Api-versions of Microsoft.Resources (subscriptions and resource groups).
pub(crate) const RESOURCES_VERSIONS: &[&str] = &[
    "2024-08-01",
    "2024-06-01-preview",
    "2024-03-01",
    "2023-07-01",
    "2023-07-01-preview",
    "2023-03-01-preview",
    "2022-12-01",
    "2022-11-01-preview",
    "2022-09-01",
    "2022-06-01",
    "2022-05-01",
    "2022-03-01-preview",
    "2022-01-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-09-01",
    "2020-08-01",
    "2020-07-01",
    "2020-06-01",
    "2020-05-01",
    "2020-01-01",
];

/// Api-versions of Microsoft.ContainerService/managedClusters: the monthly stable releases
/// from 2022-01-01 to 2026-02-01.
#[rustfmt::skip]
pub(crate) const AKS_VERSIONS: &[&str] = &[
    "2022-01-01", "2022-02-01", "2022-03-01", "2022-04-01", "2022-05-01", "2022-06-01",
    "2022-07-01", "2022-08-01", "2022-09-01", "2022-10-01", "2022-11-01", "2022-12-01",
    "2023-01-01", "2023-02-01", "2023-03-01", "2023-04-01", "2023-05-01", "2023-06-01",
    "2023-07-01", "2023-08-01", "2023-09-01", "2023-10-01", "2023-11-01", "2023-12-01",
    "2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01",
    "2024-07-01", "2024-08-01", "2024-09-01", "2024-10-01", "2024-11-01", "2024-12-01",
    "2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01",
    "2025-07-01", "2025-08-01", "2025-09-01", "2025-10-01", "2025-11-01", "2025-12-01",
    "2026-01-01", "2026-02-01",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aks_versions_are_monthly() {
        let v = AKS_VERSIONS;
        assert_eq!(v.first(), Some(&"2022-01-01"));
        assert_eq!(v.last(), Some(&"2026-02-01"));
        assert!(v.contains(&"2025-10-01"));
    }
}
