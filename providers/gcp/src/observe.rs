//! Reading live state: the plan's service accounts (one paged list per project, which
//! also yields the plan's record accounts), and each IAM policy the plan edits (one read
//! each, with `requestedPolicyVersion = 3`, kept for apply so it needs no second read).
//!
//! A policy resource's live attributes are wid's lines in it: the unconditional bindings
//! the plan's record proves wid added. Without `--prune` a line whose member no workload of
//! the plan uses any more is left out (prune removes it); with it, such lines show as
//! removals, and a policy that holds only such lines is a delete.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use google_cloud_iam_admin_v1::model::ServiceAccount;
use google_cloud_iam_v1::model::{GetPolicyOptions, Policy};
use serde_json::json;
use wid_core::{
    ErrorKind, Observed, ObservedResource, Owner, Ownership, ProviderError, ReadAhead, Resource,
    ResourceId, ahead, applied_hash,
};

use crate::bindings::{Chunk, Record, lines, wid_lines};
use crate::client::{GcpProvider, ReadPolicy};
use crate::error::Call;
use crate::ids::{self, KIND_POLICY, KIND_SA, PolicyOf};
use crate::names::account_id_of;
use crate::record;

/// The applied record of a policy whose plan changed since wid last wrote it.
const PLAN_CHANGED: &str = "plan-changed";

/// Ownership of a service account from its description.
pub(crate) fn ownership(parsed: &record::Parsed, plan: &str) -> Ownership {
    match &parsed.plan {
        Some(p) if p == plan => Ownership::Ours,
        Some(p) => Ownership::OtherPlan(p.clone()),
        None => Ownership::Unowned,
    }
}

/// Whether a listed account is one of the plan's record accounts.
fn is_record(sa: &ServiceAccount, plan: &str) -> bool {
    let prefix = record::record_account(plan, 0);
    let prefix = prefix.trim_end_matches('0');
    account_id_of(&sa.email).starts_with(prefix)
        && sa.display_name == record::record_display_name(plan)
}

/// The plan's record among listed accounts, by project.
fn record_of(listed: &BTreeMap<String, Vec<ServiceAccount>>, plan: &str) -> Record {
    let mut record = Record {
        loaded: true,
        chunks: Vec::new(),
    };
    for (project, accounts) in listed {
        for sa in accounts.iter().filter(|sa| is_record(sa, plan)) {
            record.chunks.push(Chunk {
                project: project.clone(),
                account_id: account_id_of(&sa.email).to_owned(),
                entries: record::parse_entries(&sa.description),
            });
        }
    }
    record
        .chunks
        .sort_by(|a, b| (&a.project, &a.account_id).cmp(&(&b.project, &b.account_id)));
    record
}

/// A live service account as compile writes it.
fn observed_account(id: ResourceId, sa: &ServiceAccount, plan: &str) -> ObservedResource {
    let parsed = record::parse(&sa.description);
    let mut live = ObservedResource::new(id, ownership(&parsed, plan));
    if live.ownership == Ownership::Ours {
        live.applied = parsed.applied.clone();
    }
    if !sa.display_name.is_empty() {
        live.attrs
            .insert("display_name".into(), json!(sa.display_name));
    }
    if let Some(user) = parsed.user {
        live.attrs.insert("description".into(), json!(user));
    }
    live
}

impl GcpProvider {
    /// The project that holds new record accounts: the first GKE cluster project of the
    /// plan, else `fallback`.
    pub(crate) fn home_project(&self, fallback: &str) -> String {
        self.plan_clusters()
            .iter()
            .map(|c| c.project.clone())
            .min()
            .unwrap_or_else(|| fallback.to_owned())
    }

    /// Reads these policies concurrently (`None`: the resource does not exist).
    async fn read_policies(
        &self,
        ids: impl IntoIterator<Item = ResourceId>,
    ) -> Result<Vec<(ResourceId, Option<Policy>)>, ProviderError> {
        futures::stream::iter(ids)
            .map(|id| async move { self.read_policy(&id).await.map(|p| (id, p)) })
            .buffer_unordered(self.calls.concurrency())
            .try_collect()
            .await
    }

    /// What observe reads first, before it knows which accounts exist: the projects to
    /// list (the clusters', the wanted accounts', with prune every project the plan
    /// names) and the policies of what is not a service account. Observe and
    /// [`read_ahead`](Self::read_ahead) both ask here, so they agree on every read.
    fn first_reads<'a>(
        &self,
        accounts: impl Iterator<Item = &'a ResourceId>,
        policies: impl Iterator<Item = &'a ResourceId> + Clone,
        owner: &Owner,
    ) -> (BTreeSet<String>, BTreeSet<ResourceId>) {
        let mut projects: BTreeSet<String> = self
            .plan_clusters()
            .into_iter()
            .map(|c| c.project)
            .collect();
        projects.extend(accounts.map(|id| id.part(0).to_owned()));
        if projects.is_empty()
            && let Some(first) = policies.clone().next()
        {
            projects.insert(first.part(1).to_owned());
        }
        let mut early: BTreeSet<ResourceId> = policies
            .filter(|id| !matches!(ids::policy_of(id), Some(PolicyOf::ServiceAccount { .. })))
            .cloned()
            .collect();
        if owner.prune {
            let named = self
                .projects
                .lock()
                .expect("project set lock is never poisoned");
            for p in named.iter() {
                projects.insert(p.clone());
                early.insert(ids::policy_id(&format!("projects/{p}")));
            }
        }
        (projects, early)
    }

    /// Starts observe's first reads for these ids (see [`first_reads`](Self::first_reads)).
    /// A write drops them (every apply, and each record write:
    /// [`GcpProvider::record_to_write`]): observe reads again rather than use what was read
    /// before it.
    pub(crate) fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        let accounts = ids.iter().filter(|id| id.kind() == KIND_SA);
        let policies = ids.iter().filter(|id| id.kind() == KIND_POLICY);
        let (projects, early) = self.first_reads(accounts, policies, &owner);
        let lists = self.lists_ahead.register(projects);
        let policies = self.policies_ahead.register(early);
        Box::pin(async move {
            let this = &self;
            let concurrency = this.calls.concurrency();
            let lists = ahead::fill_all(lists, concurrency, |p| async move {
                this.list_accounts(&p).await
            });
            let policies = ahead::fill_all(policies, concurrency, |id| async move {
                this.read_policy(&id).await
            });
            futures::join!(lists, policies);
        })
    }

    /// Drops what [`read_ahead`](Self::read_ahead) read and observe did not take.
    pub(crate) fn forget_read_ahead(&self) {
        self.lists_ahead.forget();
        self.policies_ahead.forget();
    }

    pub(crate) async fn observe_all(
        &self,
        wanted: &[&Resource],
        owner: &Owner,
    ) -> Result<Observed, ProviderError> {
        let plan = owner.plan.as_str();
        let mut observed = Observed::default();
        let wanted_accounts: BTreeMap<&ResourceId, &Resource> = wanted
            .iter()
            .filter(|r| r.id.kind() == KIND_SA)
            .map(|r| (&r.id, *r))
            .collect();
        let wanted_policies: BTreeMap<&ResourceId, &Resource> = wanted
            .iter()
            .filter(|r| r.id.kind() == KIND_POLICY)
            .map(|r| (&r.id, *r))
            .collect();

        // 1. Service accounts and the record: one list per project, and the policies of
        //    what is not a service account, read together.
        let (projects, early) = self.first_reads(
            wanted_accounts.keys().copied(),
            wanted_policies.keys().copied(),
            owner,
        );
        // The record is held from its listing until it is replaced, so a record write of a
        // run in progress (a retry re-observes) can never land between the two and be lost.
        // A list read ahead and taken here was made after the last record write.
        let mut held = self.record.lock().await;
        let lists = self.lists_ahead.take(projects);
        let policies = self.policies_ahead.take(early.iter().cloned());
        let listing = futures::stream::iter(lists)
            .map(|(p, taken)| async move {
                let accounts = taken.or_read(|| self.list_accounts(&p)).await?;
                Ok::<_, ProviderError>((p, accounts))
            })
            .buffer_unordered(self.calls.concurrency())
            .try_collect::<BTreeMap<String, Vec<ServiceAccount>>>();
        let read_early = futures::stream::iter(policies)
            .map(|(id, taken)| async move {
                let policy = taken.or_read(|| self.read_policy(&id)).await?;
                Ok::<_, ProviderError>((id, policy))
            })
            .buffer_unordered(self.calls.concurrency())
            .try_collect::<Vec<(ResourceId, Option<Policy>)>>();
        let (listed, read_early) = futures::join!(listing, read_early);
        let listed = listed?;
        let mut read = read_early?;
        let by_email: BTreeMap<&str, &ServiceAccount> = listed
            .values()
            .flatten()
            .map(|sa| (sa.email.as_str(), sa))
            .collect();
        let record = record_of(&listed, plan);

        for id in wanted_accounts.keys() {
            if let Some(sa) = by_email.get(ids::sa_email(id).as_str()) {
                observed.insert(observed_account((*id).clone(), sa, plan));
            }
        }
        let mut departed_accounts = BTreeSet::new();
        if owner.prune {
            for (project, accounts) in &listed {
                for sa in accounts.iter().filter(|sa| !is_record(sa, plan)) {
                    let id = ids::sa_id(project, account_id_of(&sa.email));
                    let live = observed_account(id.clone(), sa, plan);
                    if live.ownership == Ownership::Ours && !wanted_accounts.contains_key(&id) {
                        departed_accounts.insert(sa.email.clone());
                        observed.insert(live);
                    }
                }
            }
        }
        let owned: BTreeSet<String> = observed
            .resources
            .values()
            .filter(|o| o.ownership == Ownership::Ours || wanted_accounts.contains_key(&o.id))
            .map(|o| ids::sa_email(&o.id))
            .collect();

        // 2. Policies: every wanted one, and with prune the projects' and departed
        //    accounts' policies the plan may have left lines in.
        let mut to_read: BTreeSet<ResourceId> = wanted_policies
            .keys()
            .filter(|id| !early.contains(**id))
            .map(|id| (*id).clone())
            .collect();
        if owner.prune {
            for email in &departed_accounts {
                let project = email
                    .split('@')
                    .nth(1)
                    .and_then(|d| d.split('.').next())
                    .unwrap_or_default();
                to_read.insert(ids::policy_id(&format!(
                    "projects/{project}/serviceAccounts/{email}"
                )));
            }
        }
        let mut reads = Vec::new();
        for id in to_read {
            if let Some(PolicyOf::ServiceAccount { project, email }) = ids::policy_of(&id)
                && listed.contains_key(&project)
                && !by_email.contains_key(email.as_str())
            {
                // The account does not exist: wid creates it in this run (nothing to read),
                // or the plan needs it to exist.
                let sa = ids::sa_id(&project, account_id_of(&email));
                if !wanted_accounts.contains_key(&sa) && wanted_policies.contains_key(&id) {
                    observed
                        .blockers
                        .insert(id.clone(), missing_account(&email));
                }
                continue;
            }
            reads.push(id);
        }
        read.extend(self.read_policies(reads).await?);

        let current_members: BTreeSet<String> = wanted_policies
            .values()
            .flat_map(|r| r.attrs.keys())
            .filter_map(|k| ids::parse_line(k).map(|(_, m)| m.to_owned()))
            .collect();
        for (id, policy) in read {
            let Some(policy) = policy else {
                if let Some(PolicyOf::ServiceAccount { email, .. }) = ids::policy_of(&id)
                    && wanted_policies.contains_key(&id)
                {
                    observed
                        .blockers
                        .insert(id.clone(), missing_account(&email));
                }
                continue;
            };
            let resource = ids::policy_resource(&id);
            let desired = wanted_policies.get(&id);
            let live_lines = lines(&policy);
            let mut attrs = wid_lines(&policy, &resource, &record);
            if let Some(d) = desired.filter(|d| d.adopt) {
                // Adopted: a wanted line that exists without wid's record is used as it
                // is (not a change, not recorded, never removed by wid).
                for (role, member) in &live_lines {
                    let key = ids::line_key(role, member);
                    if d.attrs.contains_key(&key) {
                        attrs.entry(key).or_insert_with(|| resource.clone());
                    }
                }
            }
            if !owner.prune {
                attrs.retain(|k, _| {
                    desired.is_some_and(|d| d.attrs.contains_key(k))
                        || ids::parse_line(k).is_some_and(|(_, m)| current_members.contains(m))
                });
            }
            let recorded_missing: BTreeSet<&String> = desired
                .map(|d| {
                    d.attrs
                        .keys()
                        .filter(|k| !attrs.contains_key(*k))
                        .filter(|k| {
                            ids::parse_line(k).is_some_and(|(r, m)| {
                                !live_lines.contains(&(r.to_owned(), m.to_owned()))
                                    && record.has(&record::entry(&resource, r, m))
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.policies
                .lock()
                .expect("policy cache lock is never poisoned")
                .insert(id.clone(), ReadPolicy { policy });
            if attrs.is_empty() && recorded_missing.is_empty() {
                continue;
            }
            let mut live = ObservedResource::new(id.clone(), Ownership::Ours);
            if let Some(d) = desired {
                let last: BTreeSet<&String> = attrs
                    .keys()
                    .chain(recorded_missing.iter().copied())
                    .collect();
                let wants: BTreeSet<&String> = d.attrs.keys().collect();
                live.applied = if last == wants {
                    applied_hash(&d.attrs)
                } else {
                    Some(PLAN_CHANGED.to_owned())
                };
            }
            // The service accounts its lines name are deleted after it.
            let mut deps: BTreeSet<ResourceId> = BTreeSet::new();
            if let Some(PolicyOf::ServiceAccount { project, email }) = ids::policy_of(&id)
                && owned.contains(&email)
            {
                deps.insert(ids::sa_id(&project, account_id_of(&email)));
            }
            for key in attrs.keys() {
                if let Some(email) =
                    ids::parse_line(key).and_then(|(_, m)| m.strip_prefix("serviceAccount:"))
                    && owned.contains(email)
                    && let Some((_, domain)) = email.split_once('@')
                {
                    let project = domain.split('.').next().unwrap_or_default();
                    deps.insert(ids::sa_id(project, account_id_of(email)));
                }
            }
            live.depends_on = deps.into_iter().collect();
            live.attrs = attrs.into_iter().map(|(k, v)| (k, json!(v))).collect();
            observed.insert(live);
        }
        *held = record;
        Ok(observed)
    }

    /// Reads the plan's record again from the record accounts in `projects` (one list
    /// per project), when wid no longer knows what a failed record write left.
    pub(crate) async fn read_record(
        &self,
        plan: &str,
        projects: BTreeSet<String>,
    ) -> Result<Record, ProviderError> {
        let listed: BTreeMap<String, Vec<ServiceAccount>> = futures::stream::iter(projects)
            .map(|p| async move { self.list_accounts(&p).await.map(|a| (p, a)) })
            .buffer_unordered(self.calls.concurrency())
            .try_collect()
            .await?;
        Ok(record_of(&listed, plan))
    }

    /// Every service account of a project (`iam.serviceAccounts.list`, 100 a page, each
    /// page one read).
    pub(crate) async fn list_accounts(
        &self,
        project: &str,
    ) -> Result<Vec<ServiceAccount>, ProviderError> {
        let call = Call::new(
            "iam.serviceAccounts.list",
            format!("list the service accounts of project {project}"),
            format!("projects/{project}"),
        );
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .read(&call, |c| {
                    c.iam
                        .list_service_accounts()
                        .set_name(format!("projects/{project}"))
                        .set_page_size(100)
                        .set_page_token(token.clone())
                        .send()
                })
                .await?;
            out.extend(page.accounts);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// One policy, read with `requestedPolicyVersion = 3`; `None` when its resource does
    /// not exist.
    pub(crate) async fn read_policy(
        &self,
        id: &ResourceId,
    ) -> Result<Option<Policy>, ProviderError> {
        let resource = ids::policy_resource(id);
        let options = GetPolicyOptions::new().set_requested_policy_version(3);
        let result = match ids::policy_of(id) {
            Some(PolicyOf::Project(_)) => {
                let call = Call::new(
                    "resourcemanager.projects.getIamPolicy",
                    format!("read the IAM policy of {resource}"),
                    &resource,
                )
                .id(id);
                self.read(&call, |c| {
                    c.projects
                        .get_iam_policy()
                        .set_resource(&resource)
                        .set_options(options.clone())
                        .send()
                })
                .await
            }
            Some(PolicyOf::ServiceAccount { .. }) => {
                let call = Call::new(
                    "iam.serviceAccounts.getIamPolicy",
                    format!("read the IAM policy of {resource}"),
                    &resource,
                )
                .id(id);
                self.read(&call, |c| {
                    c.iam
                        .get_iam_policy()
                        .set_resource(&resource)
                        .set_options(options.clone())
                        .send()
                })
                .await
            }
            None => return Ok(None),
        };
        match result {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn missing_account(email: &str) -> String {
    format!(
        "service account {email} does not exist; with `gcp.create = false` it must exist before wid binds it (or remove `create = false` to let wid create it)"
    )
}
