//! Shared test scaffolding: a moto_server on loopback, SDK clients for poking at an
//! emulator behind wid's back, the scenario's plan, and a small sequential apply loop (the
//! real engine lives in the wid package).

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use serde_json::{Value, json};
use wid_aws::{AwsBlock, AwsWorkload, EksCluster, InlinePolicy, Mechanism, compile};
use wid_core::{
    APPLIED_KEY, Change, ChangeKind, Observed, Outputs, Owner, Provider, ProviderError, Reason,
    Resource, ResourceId, WorkloadRef, applied_hash, diff,
};

mod flow;
mod sandboxed;
#[allow(unused_imports)] // Only the emulator tests run the flow, not differential.rs.
pub use flow::irsa_flow;
#[allow(unused_imports)] // Only the sandbox tests start one.
pub use sandboxed::{SANDBOX_ACCOUNT, start};

/// moto's default account.
pub const MOTO_ACCOUNT: &str = "123456789012";

/// A moto_server child process on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts moto_server, or `None` (after a loud SKIPPED line) when it is not installed.
    pub fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: moto_server not found");
                return None;
            }
            Err(e) => panic!("cannot start moto_server: {e}"),
        };
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start listening in 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK config for an emulator at `url` with static credentials for `account` (the sandbox
/// reads the account from the key id; moto ignores it).
pub async fn sdk_config(url: &str, account: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .credentials_provider(Credentials::new(
            format!("SANDBOX{account}"),
            "sandbox",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

pub async fn iam(url: &str, account: &str) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(url, account).await)
}

/// One workload of the scenario.
#[derive(Clone)]
pub struct Wl {
    pub cluster: usize,
    pub namespace: String,
    pub ksa: String,
    pub block: AwsBlock,
}

pub fn block(role: &str) -> AwsBlock {
    AwsBlock {
        role: role.into(),
        account: None,
        mechanism: Mechanism::Irsa,
        managed_policies: Vec::new(),
        inline_policies: wid_core::AttrMap::new(),
        permissions_boundary: None,
        max_session_duration: None,
        path: None,
        tags: wid_core::AttrMap::new(),
        adopt: false,
        normalized: Default::default(),
    }
}

pub fn wl(cluster: usize, ns: &str, ksa: &str, block: AwsBlock) -> Wl {
    Wl {
        cluster,
        namespace: ns.into(),
        ksa: ksa.into(),
        block,
    }
}

pub const S3_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}"#;

/// The scenario: an IRSA role with managed and inline policies and tags, a role shared by
/// two KSAs, in one account. `policy` is the ARN of a customer managed policy.
pub fn scenario(policy: &str) -> Vec<Wl> {
    let mut orders = block("wid-orders");
    orders.managed_policies = vec![policy.into()];
    orders
        .inline_policies
        .insert("s3".into(), InlinePolicy::Json(S3_READ.into()));
    orders.tags.insert("team".into(), "orders".into());
    orders.max_session_duration = Some(7200);
    let mut shared = block("wid-shared-reader");
    shared.tags.insert("team".into(), "platform".into());
    shared
        .inline_policies
        .insert("read".into(), InlinePolicy::Json(S3_READ.into()));
    vec![
        wl(0, "production", "orders", orders),
        wl(0, "production", "reports", shared.clone()),
        wl(0, "billing", "invoicer", shared),
    ]
}

/// Compiles the workloads against `clusters` for plan `plan`.
pub fn compile_plan(workloads: &[Wl], clusters: &[EksCluster], plan: &str) -> Vec<Resource> {
    let items: Vec<AwsWorkload> = workloads
        .iter()
        .map(|w| AwsWorkload {
            block: &w.block,
            cluster: &clusters[w.cluster],
            workload: WorkloadRef {
                cluster: clusters[w.cluster].plan_name.clone(),
                namespace: w.namespace.clone(),
                service_account: w.ksa.clone(),
            },
            plan_dir: std::path::Path::new(".").into(),
            origin: format!("plan.toml:{}", w.ksa).into(),
        })
        .collect();
    match compile(&items, plan) {
        Ok(c) => c.resources,
        Err(issues) => panic!("the scenario must compile: {issues:?}"),
    }
}

pub fn owner(plan: &str, prune: bool) -> Owner {
    Owner {
        plan: plan.into(),
        prune,
    }
}

/// Observes and diffs.
pub async fn plan(
    p: &dyn Provider,
    desired: &[Resource],
    owner: &Owner,
) -> (Observed, Vec<Change>) {
    let wanted: Vec<&Resource> = desired.iter().collect();
    let observed = match p.observe(&wanted, owner).await {
        Ok(o) => o,
        Err(e) => panic!("observe failed: {e} ({:?}; {:?})", e.kind(), e.detail),
    };
    let changes = diff(desired, &observed, owner.prune);
    (observed, changes)
}

/// Applies every actionable change one at a time, dependencies first (deletes in reverse).
/// Panics on a conflict or a failure: the scenarios expect a clean apply.
pub async fn apply(
    p: &dyn Provider,
    changes: &[Change],
    owner: &Owner,
) -> BTreeMap<ResourceId, Outputs> {
    let mut pending: Vec<&Change> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .collect();
    assert!(
        pending.iter().all(|c| c.kind != ChangeKind::Conflict),
        "unexpected conflicts: {:?}",
        pending
            .iter()
            .filter(|c| c.kind == ChangeKind::Conflict)
            .map(|c| (&c.id, &c.reason))
            .collect::<Vec<_>>()
    );
    let mut outputs = BTreeMap::new();
    while !pending.is_empty() {
        let ids: BTreeSet<&ResourceId> = pending.iter().map(|c| &c.id).collect();
        let ready = pending.iter().position(|c| match c.kind {
            ChangeKind::Delete => !pending
                .iter()
                .any(|o| o.kind == ChangeKind::Delete && o.depends_on().contains(&c.id)),
            _ => c.depends_on().iter().all(|d| !ids.contains(d)),
        });
        let index = ready.expect("the changes form no cycle");
        let change = pending.remove(index);
        match p.apply(change, owner).await {
            Ok(out) => {
                outputs.insert(change.id.clone(), out);
            }
            Err(e) => panic!(
                "apply of {} ({:?}) failed: {e} ({:?}; {:?})",
                change.id,
                change.kind,
                e.kind(),
                e.detail
            ),
        }
    }
    outputs
}

/// (id, kind) of every change.
pub fn kinds(changes: &[Change]) -> Vec<(String, ChangeKind)> {
    changes.iter().map(|c| (c.id.to_string(), c.kind)).collect()
}

pub fn all_noop(changes: &[Change]) -> bool {
    changes.iter().all(|c| c.kind == ChangeKind::NoOp)
}

/// (id, reason) of every change that is not a no-op.
pub fn reasons(changes: &[Change]) -> Vec<(String, Reason)> {
    changes
        .iter()
        .filter(|c| c.kind != ChangeKind::NoOp)
        .map(|c| (c.id.to_string(), c.reason.clone()))
        .collect()
}

/// The applied record a resource of `desired` should carry once applied.
pub fn wanted_record(desired: &[Resource], id: &ResourceId) -> String {
    let r = desired
        .iter()
        .find(|r| &r.id == id)
        .unwrap_or_else(|| panic!("{id} is in the plan"));
    applied_hash(&r.attrs).expect("every attribute is known at plan time")
}

/// The value of the applied record tag on a role, read straight from IAM.
pub async fn role_record(iam: &aws_sdk_iam::Client, name: &str) -> Option<String> {
    iam.list_role_tags()
        .role_name(name)
        .send()
        .await
        .expect("list role tags")
        .tags()
        .iter()
        .find(|t| t.key() == APPLIED_KEY)
        .map(|t| t.value().to_owned())
}

/// Creates a customer managed policy and returns its ARN.
pub async fn managed_policy(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let out = iam
        .create_policy()
        .policy_name(name)
        .policy_document(S3_READ)
        .send()
        .await
        .expect("create policy");
    out.policy()
        .and_then(|p| p.arn())
        .expect("policy arn")
        .to_owned()
}

/// The end state of IAM in one account, normalized for comparison across emulators:
/// roles (trust, attachments, inline policies, tags, path, max session) and OIDC
/// providers (url, client ids, tags). Ids, dates and ARN accounts are left out.
pub async fn iam_state(iam: &aws_sdk_iam::Client) -> Value {
    let mut roles: BTreeMap<String, Value> = BTreeMap::new();
    let listed = iam.list_roles().send().await.expect("list roles");
    for role in listed.roles() {
        let name = role.role_name();
        let got = iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .expect("get role");
        let r = got.role().expect("role");
        let trust = wid_aws::normalize_policy(r.assume_role_policy_document().unwrap_or("{}"))
            .expect("trust parses");
        let attached: BTreeSet<String> = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("list attached")
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_owned))
            .collect();
        let mut inline: BTreeMap<String, Value> = BTreeMap::new();
        for policy in iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("list inline")
            .policy_names()
        {
            let doc = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .expect("get inline");
            inline.insert(
                policy.clone(),
                wid_aws::normalize_policy(doc.policy_document()).expect("inline parses"),
            );
        }
        let tags: BTreeMap<String, String> = iam
            .list_role_tags()
            .role_name(name)
            .send()
            .await
            .expect("list tags")
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        roles.insert(
            name.to_owned(),
            json!({
                "trust": trust,
                "managed": attached,
                "inline": inline,
                "tags": tags,
                "path": r.path(),
                "max_session_duration": r.max_session_duration(),
                "description": r.description(),
            }),
        );
    }
    let mut providers = serde_json::Map::new();
    let listed = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("list oidc");
    for p in listed.open_id_connect_provider_list() {
        let arn = p.arn().expect("provider arn");
        let got = iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .expect("get oidc");
        let host = arn
            .split_once(":oidc-provider/")
            .map(|(_, h)| h.to_owned())
            .unwrap_or_default();
        let clients: BTreeSet<&String> = got.client_id_list().iter().collect();
        let tags: BTreeMap<&str, &str> = got.tags().iter().map(|t| (t.key(), t.value())).collect();
        providers.insert(
            host,
            json!({"url": got.url(), "client_ids": clients, "tags": tags}),
        );
    }
    // Trust policies name the account in provider ARNs; both emulators use one account.
    json!({"roles": roles, "oidc_providers": providers})
}

/// Checks the apply error for an injected or provoked failure.
pub fn expect_kind(
    result: Result<Outputs, ProviderError>,
    kind: wid_core::ErrorKind,
) -> ProviderError {
    match result {
        Ok(o) => panic!("expected a {kind:?} error, got {o:?}"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{e} ({:?})", e.detail);
            e
        }
    }
}
