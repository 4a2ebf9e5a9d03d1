//! `wid import` on AKS: from the KSAs of a cluster (their
//! `azure.workload.identity/client-id` annotations) to the `azure` blocks that reproduce
//! them: the identity (found by client id), its resource group, location, tags, role
//! assignments, and the federated credential that trusts the KSA.
//!
//! Calls: `managedClusters.get` (the issuer) unless known;
//! `userAssignedIdentities.listBySubscription` once; per identity one
//! `federatedIdentityCredentials.list` and one `roleAssignments.list` filtered by its
//! principal; one `roleDefinitions.get` per role, for the plan's comments.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use wid_core::import::{ImportWarning, Imported, ImportedWorkload, KsaFacts};
use wid_core::{Ownership, ProviderError};

use crate::block::AksCluster;
use crate::client::{AUTHORIZATION_API, AzureProvider, MSI_API};
use crate::compile::{CLIENT_ID_ANNOTATION, TENANT_ID_ANNOTATION};
use crate::error::{ASSIGNMENT_LIST, Call, FIC_LIST, IDENTITY_LIST_SUB, ROLE_DEFINITION_GET};
use crate::ids;
use crate::names::{self, AUDIENCE};
use crate::record::{self, RESERVED_PREFIX};

/// One identity and the KSAs that name its client id.
struct Found<'a> {
    body: &'a Value,
    subscription: String,
    resource_group: String,
    name: String,
    users: Vec<&'a KsaFacts>,
}

impl AzureProvider {
    /// The `azure` blocks that reproduce the workload identities of `cluster`'s KSAs.
    /// `cluster.tenant` may be empty: the identities' tenant fills the cluster entry.
    pub async fn import(
        &self,
        cluster: &AksCluster,
        ksas: &[KsaFacts],
        plan: &str,
    ) -> Result<Imported, ProviderError> {
        let mut out = Imported::default();
        let mut by_client: BTreeMap<String, Vec<&KsaFacts>> = BTreeMap::new();
        for ksa in ksas {
            if let Some(id) = ksa.annotations.get(CLIENT_ID_ANNOTATION) {
                if names::is_guid(id) {
                    by_client
                        .entry(id.to_ascii_lowercase())
                        .or_default()
                        .push(ksa);
                } else {
                    out.warnings.push(ImportWarning::ksa(
                        &ksa.namespace,
                        &ksa.name,
                        format!("{CLIENT_ID_ANNOTATION} is {id:?}, not a client id: not imported"),
                    ));
                }
            }
        }
        if by_client.is_empty() {
            return Ok(out);
        }
        let issuer = match &cluster.issuer {
            Some(i) => i.clone(),
            None => self.read_cluster(cluster).await?,
        };
        let sub = &cluster.subscription;
        let call = Call::new(
            IDENTITY_LIST_SUB,
            format!("list the managed identities of subscription {sub}"),
            format!("/subscriptions/{sub}"),
        );
        let identities = self
            .list(
                &call,
                &format!(
                    "/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
                ),
                &[("api-version", MSI_API)],
            )
            .await
            ?;
        let by_id: BTreeMap<String, &Value> = identities
            .iter()
            .filter_map(|i| {
                let client = i["properties"]["clientId"].as_str()?;
                Some((client.to_ascii_lowercase(), i))
            })
            .collect();
        let mut tenants = BTreeSet::new();
        for (client_id, users) in by_client {
            let Some(body) = by_id.get(&client_id) else {
                for k in &users {
                    out.warnings.push(ImportWarning::ksa(&k.namespace, &k.name, format!(
                        "no user-assigned identity in subscription {sub} has client id {client_id}: not imported (wid looks in the cluster's subscription only)"
                    )));
                }
                continue;
            };
            let Some((subscription, resource_group, name)) =
                body["id"].as_str().and_then(ids::parse_identity)
            else {
                continue;
            };
            if let Some(t) = body["properties"]["tenantId"].as_str() {
                tenants.insert(t.to_ascii_lowercase());
            }
            let found = Found {
                body,
                subscription,
                resource_group,
                name,
                users,
            };
            self.import_identity(cluster, &issuer, &found, plan, &mut out)
                .await?;
        }
        if cluster.tenant.is_empty()
            && let Some(tenant) = tenants.into_iter().next()
        {
            out.cluster.insert("tenant".into(), json!(tenant));
        }
        out.workloads.sort_by(|a, b| {
            (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account))
        });
        Ok(out)
    }

    /// The workloads of the KSAs that name one identity.
    async fn import_identity(
        &self,
        cluster: &AksCluster,
        issuer: &str,
        found: &Found<'_>,
        plan: &str,
        out: &mut Imported,
    ) -> Result<(), ProviderError> {
        let tags: BTreeMap<String, String> = found.body["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let standing = record::standing(&tags, plan);
        if let Ownership::OtherPlan(other) = &standing.ownership {
            for k in &found.users {
                out.warnings.push(ImportWarning::ksa(&k.namespace, &k.name, format!(
                    "identity {} belongs to wid plan {other:?}: not imported (import it into that plan with --name {other})",
                    found.name
                )));
            }
            return Ok(());
        }
        let id = ids::identity_id(&found.subscription, &found.resource_group, &found.name);
        let path = ids::identity_path(&id);
        let call = Call::new(
            FIC_LIST,
            format!("list the federated credentials of identity {}", found.name),
            &path,
        )
        .id(&id);
        let fics = self
            .list(
                &call,
                &format!("{path}/federatedIdentityCredentials"),
                &[("api-version", MSI_API)],
            )
            .await?;
        let roles = self.import_roles(found, &id).await?;
        let group_scope = ids::resource_group_scope(&found.subscription, &found.resource_group);
        let mut block = Map::new();
        block.insert("identity".into(), json!(found.name));
        if !found
            .resource_group
            .eq_ignore_ascii_case(&cluster.resource_group)
        {
            block.insert("resource_group".into(), json!(found.resource_group));
        }
        let location =
            names::normalize_location(found.body["location"].as_str().unwrap_or_default());
        block.insert("location".into(), json!(location));
        let user_tags: BTreeMap<&String, &String> = tags
            .iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().starts_with(RESERVED_PREFIX))
            .collect();
        if !user_tags.is_empty() {
            block.insert("tags".into(), json!(user_tags));
        }
        let mut role_notes = Vec::new();
        if !roles.is_empty() {
            let list: Vec<Value> = roles
                .iter()
                .map(|(scope, guid, role_name)| {
                    if let Some(n) = role_name {
                        role_notes.push(format!("role {guid} is {n}"));
                    }
                    if scope.eq_ignore_ascii_case(&group_scope) {
                        json!({"role": guid})
                    } else {
                        json!({"role": guid, "scope": scope})
                    }
                })
                .collect();
            block.insert("roles".into(), Value::Array(list));
        }
        let made = match (&standing.ownership, standing.adopted) {
            (Ownership::Ours, false) => format!("made by wid for plan {plan}"),
            (Ownership::Ours, true) => format!("adopted by wid for plan {plan}"),
            _ => "made outside wid: adopted as it is".to_owned(),
        };
        let wid_name_of =
            |k: &KsaFacts| names::fic_name(plan, &cluster.plan_name, &k.namespace, &k.name);
        let mut workloads = Vec::new();
        let mut named = false;
        let mut trusted = BTreeSet::new();
        for k in &found.users {
            let subject = k.subject();
            let fic = fics.iter().find(|f| {
                f["properties"]["issuer"].as_str() == Some(issuer)
                    && f["properties"]["subject"].as_str() == Some(subject.as_str())
            });
            let mut b = block.clone();
            let mut notes = vec![
                format!(
                    "{CLIENT_ID_ANNOTATION}: {}",
                    found.body["properties"]["clientId"]
                        .as_str()
                        .unwrap_or_default()
                ),
                format!(
                    "identity {} in resource group {} ({made})",
                    found.name, found.resource_group
                ),
            ];
            match fic {
                None => out.warnings.push(ImportWarning::ksa(&k.namespace, &k.name, format!(
                    "no federated credential of identity {} trusts {subject} from the cluster's issuer: the KSA cannot act as it today, and the plan adds one",
                    found.name
                ))),
                Some(f) => {
                    let name = f["name"].as_str().unwrap_or_default().to_owned();
                    trusted.insert(name.clone());
                    if f["properties"]["audiences"] != json!([AUDIENCE]) {
                        out.warnings.push(ImportWarning::ksa(&k.namespace, &k.name, format!(
                            "federated credential {name} accepts audiences {}: the plan sets them to [\"{AUDIENCE}\"]",
                            f["properties"]["audiences"]
                        )));
                    }
                    if !name.eq_ignore_ascii_case(&wid_name_of(k)) {
                        b.insert("credential".into(), json!(name));
                        named = true;
                    }
                    notes.push(format!("federated credential {name} trusts {subject}"));
                }
            }
            match k.annotations.get(TENANT_ID_ANNOTATION) {
                None => out.warnings.push(ImportWarning::ksa(
                    &k.namespace,
                    &k.name,
                    format!("the KSA has no {TENANT_ID_ANNOTATION} annotation: the plan adds it"),
                )),
                Some(t)
                    if !cluster.tenant.is_empty() && t != &cluster.tenant.to_ascii_lowercase() =>
                {
                    out.warnings.push(ImportWarning::ksa(&k.namespace, &k.name, format!(
                        "{TENANT_ID_ANNOTATION} is {t}: the plan writes the cluster's tenant {} (lowercase)",
                        cluster.tenant.to_ascii_lowercase()
                    )));
                }
                Some(_) => {}
            }
            notes.extend(role_notes.iter().cloned());
            workloads.push(ImportedWorkload {
                namespace: k.namespace.clone(),
                service_account: k.name.clone(),
                block: b,
                notes,
            });
        }
        let others: Vec<String> = fics
            .iter()
            .filter(|f| !trusted.contains(f["name"].as_str().unwrap_or_default()))
            .map(|f| {
                format!(
                    "{} ({})",
                    f["name"].as_str().unwrap_or_default(),
                    f["properties"]["subject"].as_str().unwrap_or_default()
                )
            })
            .collect();
        if !others.is_empty() {
            let first = found.users[0];
            out.warnings.push(ImportWarning::ksa(&first.namespace, &first.name, format!(
                "identity {} also has federated credentials {}; the plan leaves them as they are",
                found.name,
                others.join(", ")
            )));
        }
        let adopt = standing.ownership == Ownership::Unowned || named;
        for mut w in workloads {
            if adopt {
                w.block.insert("adopt".into(), Value::Bool(true));
            }
            out.workloads.push(w);
        }
        Ok(())
    }

    /// The identity's role assignments in its subscription: (scope, role GUID, role
    /// name), sorted.
    async fn import_roles(
        &self,
        found: &Found<'_>,
        id: &wid_core::ResourceId,
    ) -> Result<Vec<(String, String, Option<String>)>, ProviderError> {
        let principal = found.body["properties"]["principalId"]
            .as_str()
            .unwrap_or_default();
        if principal.is_empty() {
            return Ok(Vec::new());
        }
        let at = format!("/subscriptions/{}", found.subscription.to_ascii_lowercase());
        let call = Call::new(
            ASSIGNMENT_LIST,
            format!("list the role assignments of identity {}", found.name),
            &at,
        )
        .id(id);
        let filter = format!("principalId eq '{principal}'");
        let items = self
            .list(
                &call,
                &format!("{at}/providers/Microsoft.Authorization/roleAssignments"),
                &[("$filter", &filter), ("api-version", AUTHORIZATION_API)],
            )
            .await?;
        let mut pairs = BTreeSet::new();
        for item in &items {
            let p = &item["properties"];
            if !p["principalId"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(principal))
            {
                continue;
            }
            let scope = names::normalize_scope(p["scope"].as_str().unwrap_or_default());
            let guid = names::role_guid(p["roleDefinitionId"].as_str().unwrap_or_default());
            pairs.insert((scope, guid));
        }
        let mut role_names: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (_, guid) in &pairs {
            if role_names.contains_key(guid) {
                continue;
            }
            let path = names::role_definition_id(&at, guid);
            let call = Call::new(
                ROLE_DEFINITION_GET,
                format!("read role definition {guid}"),
                &path,
            );
            let name = match self
                .send(
                    &call,
                    azure_core::http::Method::Get,
                    &path,
                    AUTHORIZATION_API,
                    None,
                )
                .await
            {
                Ok(reply) => reply.body["properties"]["roleName"]
                    .as_str()
                    .map(str::to_owned),
                // A name is only a comment: a role that cannot be read keeps its GUID.
                Err(_) => None,
            };
            role_names.insert(guid.clone(), name);
        }
        Ok(pairs
            .into_iter()
            .map(|(scope, guid)| {
                let name = role_names.get(&guid).cloned().flatten();
                (scope, guid, name)
            })
            .collect())
    }
}
