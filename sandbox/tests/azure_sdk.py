"""Microsoft's own management SDKs (azure-mgmt-msi, azure-mgmt-authorization) against the
sandbox's ARM endpoint over TLS: create, get, list, update and delete identities, federated
identity credentials and role assignments, list role definitions by name, and check that
every field the SDK models deserializes (no None where the service returns a value).

Run by sandbox/tests/azure_sdk.rs with the variables of the sandbox's DIR/env
(WID_SANDBOX_AZURE_URL, WID_SANDBOX_AZURE_CA, AZURE_SUBSCRIPTION_ID) plus SANDBOX_RG and
SANDBOX_AKS_ISSUER. Exits non-zero with a message on the first mismatch.
"""

import os
import sys
import time
import uuid

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity, IdentityUpdate

URL = os.environ["WID_SANDBOX_AZURE_URL"]
CA = os.environ["WID_SANDBOX_AZURE_CA"]
SUB = os.environ["AZURE_SUBSCRIPTION_ID"]
TENANT = os.environ["AZURE_TENANT_ID"]
RG = os.environ["SANDBOX_RG"]
ISSUER = os.environ["SANDBOX_AKS_ISSUER"]
AUDIENCE = "api://AzureADTokenExchange"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


class SandboxCredential:
    """A token credential that never leaves the machine."""

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        return AccessToken("sandbox-token", int(time.time()) + 3600)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect(actual, wanted, what):
    if actual != wanted:
        fail(f"{what}: got {actual!r}, want {wanted!r}")


def every_field(obj, what, may_be_none=()):
    """Every attribute the SDK model maps must be set, except those the service leaves null."""
    for field in type(obj)._attribute_map:
        if field not in may_be_none and getattr(obj, field) is None:
            fail(f"{what}.{field} is None: {obj.as_dict()}")


def main():
    credential = SandboxCredential()
    msi = ManagedServiceIdentityClient(credential, SUB, base_url=URL, connection_verify=CA)
    auth = AuthorizationManagementClient(credential, SUB, base_url=URL, connection_verify=CA)

    # Identities. The service returns no systemData for identities (see the spec examples).
    identity = msi.user_assigned_identities.create_or_update(
        RG, "orders", Identity(location="westeurope", tags={"owner": "payments"})
    )
    every_field(identity, "identity", may_be_none=("system_data",))
    expect(identity.id, f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders", "identity id")
    expect(identity.type, "Microsoft.ManagedIdentity/userAssignedIdentities", "identity type")
    expect(identity.tenant_id, TENANT, "identity tenant")
    expect(identity.isolation_scope, "None", "isolation scope")
    expect(identity.tags, {"owner": "payments"}, "identity tags")
    uuid.UUID(identity.principal_id)
    uuid.UUID(identity.client_id)
    got = msi.user_assigned_identities.get(RG, "orders")
    every_field(got, "got identity", may_be_none=("system_data",))
    expect((got.client_id, got.principal_id), (identity.client_id, identity.principal_id), "ids read back")
    updated = msi.user_assigned_identities.update(RG, "orders", IdentityUpdate(tags={"owner": "platform"}))
    expect(updated.tags, {"owner": "platform"}, "updated tags")
    msi.user_assigned_identities.create_or_update(RG, "billing", Identity(location="westeurope"))
    by_rg = sorted(i.name for i in msi.user_assigned_identities.list_by_resource_group(RG))
    expect(by_rg, ["billing", "orders"], "identities by resource group")
    by_sub = list(msi.user_assigned_identities.list_by_subscription())
    expect(sorted(i.name for i in by_sub), ["billing", "orders"], "identities by subscription")
    for listed in by_sub:
        every_field(listed, "listed identity", may_be_none=("system_data",))
    try:
        msi.user_assigned_identities.get(RG, "nobody")
        fail("a missing identity was found")
    except ResourceNotFoundError as e:
        expect(e.error.code, "ResourceNotFound", "missing identity error code")

    # Federated identity credentials, listed one per page through nextLink.
    for ns, sa in [("prod", "orders"), ("prod", "orders-worker"), ("batch", "orders")]:
        fic = msi.federated_identity_credentials.create_or_update(
            RG, "orders", f"aks-dev-{ns}-{sa}",
            FederatedIdentityCredential(issuer=ISSUER, subject=f"system:serviceaccount:{ns}:{sa}", audiences=[AUDIENCE]),
        )
        every_field(fic, "fic", may_be_none=("system_data",))
        expect(fic.type, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials", "fic type")
    fic = msi.federated_identity_credentials.get(RG, "orders", "aks-dev-prod-orders")
    every_field(fic, "got fic", may_be_none=("system_data",))
    expect((fic.issuer, fic.subject, fic.audiences), (ISSUER, "system:serviceaccount:prod:orders", [AUDIENCE]), "fic read back")
    pages = list(msi.federated_identity_credentials.list(RG, "orders", top=1))
    expect(sorted(f.name for f in pages), ["aks-dev-batch-orders", "aks-dev-prod-orders", "aks-dev-prod-orders-worker"], "fics through nextLink")
    try:
        msi.federated_identity_credentials.create_or_update(
            RG, "orders", "aks-dev-dup",
            FederatedIdentityCredential(issuer=ISSUER, subject="system:serviceaccount:prod:orders", audiences=[AUDIENCE]),
        )
        fail("a duplicate issuer and subject was accepted")
    except HttpResponseError as e:
        expect(e.status_code, 400, "duplicate subject status")

    # Role definitions by name.
    scope = f"/subscriptions/{SUB}/resourceGroups/{RG}"
    roles = list(auth.role_definitions.list(scope, filter="roleName eq 'Storage Blob Data Reader'"))
    expect(len(roles), 1, "roles named Storage Blob Data Reader")
    role = roles[0]
    every_field(role, "role definition", may_be_none=("created_by", "updated_by"))
    expect((role.name, role.role_type), (BLOB_READER, "BuiltInRole"), "role definition")
    expect(role.id, f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}", "role definition id")
    every_field(role.permissions[0], "permission")
    expect(auth.role_definitions.get(scope, BLOB_READER).role_name, "Storage Blob Data Reader", "role by id")

    # Role assignments.
    name = str(uuid.uuid4())
    created = auth.role_assignments.create(
        scope, name,
        RoleAssignmentCreateParameters(role_definition_id=role.id, principal_id=identity.principal_id, principal_type="ServicePrincipal"),
    )
    unset = ("description", "condition", "condition_version", "delegated_managed_identity_resource_id")
    every_field(created, "role assignment", may_be_none=unset)
    expect(created.id, f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", "role assignment id")
    expect((created.scope, created.principal_type, created.type), (scope, "ServicePrincipal", "Microsoft.Authorization/roleAssignments"), "role assignment")
    again = auth.role_assignments.create(
        scope, name,
        RoleAssignmentCreateParameters(role_definition_id=role.id, principal_id=identity.principal_id, principal_type="ServicePrincipal"),
    )
    expect(again.created_on, created.created_on, "repeated create keeps createdOn")
    try:
        auth.role_assignments.create(
            scope, str(uuid.uuid4()),
            RoleAssignmentCreateParameters(role_definition_id=role.id, principal_id=identity.principal_id, principal_type="ServicePrincipal"),
        )
        fail("a second assignment of the same role was accepted")
    except HttpResponseError as e:
        expect((e.status_code, e.error.code), (409, "RoleAssignmentExists"), "duplicate assignment")
    described = auth.role_assignments.create(
        f"/subscriptions/{SUB}", str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=role.id, principal_id=identity.principal_id, principal_type="ServicePrincipal",
            description="reads the orders container",
            condition="@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'orders'",
            condition_version="2.0",
        ),
    )
    every_field(described, "described role assignment", may_be_none=("delegated_managed_identity_resource_id",))
    got = auth.role_assignments.get(scope, name)
    every_field(got, "got role assignment", may_be_none=unset)
    mine = list(auth.role_assignments.list_for_scope(scope, filter=f"principalId eq '{identity.principal_id}'"))
    expect(len(mine), 2, "assignments of the identity at, above or below the resource group")
    at_scope = list(auth.role_assignments.list_for_scope(scope, filter="atScope()"))
    expect(len(at_scope), 2, "assignments at or above the resource group")
    expect(len(list(auth.role_assignments.list_for_subscription())), 2, "assignments in the subscription")
    expect(len(list(auth.role_assignments.list_for_resource_group(RG))), 2, "assignments for the resource group")
    for listed in mine:
        every_field(listed, "listed role assignment", may_be_none=unset)

    # Deletes.
    removed = auth.role_assignments.delete(scope, name)
    expect(removed.name, name, "deleted role assignment")
    expect(auth.role_assignments.delete(scope, name), None, "deleting again")
    msi.federated_identity_credentials.delete(RG, "orders", "aks-dev-batch-orders")
    expect(len(list(msi.federated_identity_credentials.list(RG, "orders"))), 2, "fics after delete")
    msi.user_assigned_identities.delete(RG, "billing")
    msi.user_assigned_identities.delete(RG, "billing")
    expect([i.name for i in msi.user_assigned_identities.list_by_resource_group(RG)], ["orders"], "identities after delete")
    print("azure_sdk.py: all checks passed")


if __name__ == "__main__":
    main()
