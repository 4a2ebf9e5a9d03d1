"""Makes, by hand with Microsoft's own management SDKs (azure-mgmt-msi,
azure-mgmt-authorization), the Azure side of an AKS workload identity in a served
sandbox, the way a team would before wid: a user-assigned identity with tags, a
federated identity credential under a name of its own choosing, and two role
assignments (one at the identity's resource group, one on a storage account).

Run by tests/import.rs with the variables of the sandbox's DIR/env plus IMPORT_RG,
IMPORT_ISSUER and IMPORT_SUBJECT. Prints the identity's client id as the last line.
"""

import os
import sys
import time
import uuid

from azure.core.credentials import AccessToken
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity

URL = os.environ["WID_SANDBOX_AZURE_URL"]
CA = os.environ["WID_SANDBOX_AZURE_CA"]
SUB = os.environ["AZURE_SUBSCRIPTION_ID"]
RG = os.environ["IMPORT_RG"]
ISSUER = os.environ["IMPORT_ISSUER"]
SUBJECT = os.environ["IMPORT_SUBJECT"]
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


class SandboxCredential:
    """A token credential that never leaves the machine."""

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        return AccessToken("sandbox-token", int(time.time()) + 3600)


def assign(auth, scope, role, principal):
    definition = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    auth.role_assignments.create(
        scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=definition, principal_id=principal, principal_type="ServicePrincipal"
        ),
    )


def main():
    credential = SandboxCredential()
    msi = ManagedServiceIdentityClient(credential, SUB, base_url=URL, connection_verify=CA)
    auth = AuthorizationManagementClient(credential, SUB, base_url=URL, connection_verify=CA)
    identity = msi.user_assigned_identities.create_or_update(
        RG, "orders", Identity(location="eastus", tags={"team": "shop", "cost-center": "42"})
    )
    msi.federated_identity_credentials.create_or_update(
        RG,
        "orders",
        "orders-from-aks",
        FederatedIdentityCredential(issuer=ISSUER, subject=SUBJECT, audiences=["api://AzureADTokenExchange"]),
    )
    group = f"/subscriptions/{SUB}/resourceGroups/{RG}"
    assign(auth, group, READER, identity.principal_id)
    storage = f"{group}/providers/Microsoft.Storage/storageAccounts/ordersdata"
    assign(auth, storage, BLOB_READER, identity.principal_id)
    print(identity.client_id)


if __name__ == "__main__":
    sys.exit(main())
