"""Reads back, through Microsoft's own management SDKs (azure-mgmt-msi,
azure-mgmt-authorization), what `wid apply examples/aks` made in a served sandbox: the
identity, its federated identity credentials and its role assignments, checking every
field the SDK models and the values wid promises (issuer exactly as AKS reports it,
subject, audience, principalType, wid's deterministic names and marks).

Run by tests/aks.rs with the variables of the sandbox's DIR/env plus EXPECT_* values.
Exits non-zero with a message on the first mismatch.
"""

import json
import os
import sys
import time
import uuid

from azure.core.credentials import AccessToken
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

URL = os.environ["WID_SANDBOX_AZURE_URL"]
CA = os.environ["WID_SANDBOX_AZURE_CA"]
SUB = os.environ["AZURE_SUBSCRIPTION_ID"]
TENANT = os.environ["AZURE_TENANT_ID"]
RG = os.environ["EXPECT_RG"]
IDENTITY = os.environ["EXPECT_IDENTITY"]
PLAN = os.environ["EXPECT_PLAN"]
# {"fic name": [issuer, subject]}
FICS = json.loads(os.environ["EXPECT_FICS"])
# [[scope, role definition guid]]
ROLES = sorted(json.loads(os.environ["EXPECT_ROLES"]))


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

    identity = msi.user_assigned_identities.get(RG, IDENTITY)
    every_field(identity, "identity", may_be_none=("system_data",))
    expect(identity.tenant_id, TENANT, "tenant")
    expect(identity.tags.get("wid.dev.plan"), PLAN, "ownership mark")
    if not identity.tags.get("wid.dev.applied"):
        fail(f"no applied record: {identity.tags}")
    uuid.UUID(identity.client_id)
    uuid.UUID(identity.principal_id)
    listed = [i for i in msi.user_assigned_identities.list_by_resource_group(RG) if i.name == IDENTITY]
    expect(len(listed), 1, "the identity in its resource group")
    every_field(listed[0], "listed identity", may_be_none=("system_data",))

    fics = list(msi.federated_identity_credentials.list(RG, IDENTITY))
    expect(sorted(f.name for f in fics), sorted(FICS), "federated credential names")
    for fic in fics:
        every_field(fic, f"fic {fic.name}", may_be_none=("system_data", "claims_matching_expression"))
        got = msi.federated_identity_credentials.get(RG, IDENTITY, fic.name)
        every_field(got, f"got fic {fic.name}", may_be_none=("system_data", "claims_matching_expression"))
        issuer, subject = FICS[fic.name]
        expect((got.issuer, got.subject, got.audiences), (issuer, subject, ["api://AzureADTokenExchange"]), f"fic {fic.name}")
        if not got.issuer.endswith("/"):
            fail(f"issuer {got.issuer} lost AKS's trailing slash")

    mine = list(auth.role_assignments.list_for_subscription(filter=f"principalId eq '{identity.principal_id}'"))
    expect(sorted([a.scope, a.role_definition_id.rsplit("/", 1)[1]] for a in mine), ROLES, "role assignments")
    unset = ("condition", "condition_version", "delegated_managed_identity_resource_id")
    for a in mine:
        every_field(a, f"role assignment {a.name}", may_be_none=unset)
        expect(a.principal_type, "ServicePrincipal", "principal type")
        expect(a.description, f"Managed by wid (plan {PLAN})", "assignment mark")
        expect(uuid.UUID(a.name).version, 5, "a name-based assignment name")
        got = auth.role_assignments.get(a.scope, a.name)
        every_field(got, f"got role assignment {a.name}", may_be_none=unset)
        expect(got.id, a.id, "assignment id")
    print("all checks passed")


if __name__ == "__main__":
    main()
