//! The provider value and its one way to ARM: azure_core's pipeline (bearer token,
//! client request id, user agent; retries off) over one reqwest client on rustls with
//! ring, every call bounded ([`crate::bounded`]). Reads go through the run's
//! [`wid_core::Calls`] (counted, paced, retried on throttling, 5xx, timeouts and
//! concurrent writes, never sooner than `Retry-After`); writes are sent once, and the
//! engine retries a failed change after observing again. Long-running operations (202
//! with `Azure-AsyncOperation` or `Location`) are polled to the end; list results are
//! followed through `nextLink`, one read per page.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, RetryOptions,
    Transport, Url,
};
use serde_json::Value;
use wid_core::ahead::Ahead;
use wid_core::{
    BodyLimit, Bounds, CallCounter, Calls, ErrorKind, Limits, ProviderError, ResourceId,
    parse_retry_after,
};

use crate::block::AksCluster;
use crate::bounded::BoundedClient;
use crate::credential::{Chain, StaticToken};
use crate::error::{ArmFailure, Call, Failure};
use crate::roles::RoleSlot;

/// Azure Resource Manager in the public cloud.
pub const ARM: &str = "https://management.azure.com";
/// The token scope for ARM.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// Microsoft.ManagedIdentity (identities and federated credentials).
pub const MSI_API: &str = "2024-11-30";
/// Microsoft.Authorization (role assignments and definitions).
pub const AUTHORIZATION_API: &str = "2022-04-01";
/// Microsoft.ContainerService (managed clusters).
pub const CONTAINER_SERVICE_API: &str = "2025-08-01";
/// Microsoft.Resources (resource groups).
pub const RESOURCES_API: &str = "2021-04-01";
/// The longest a long-running operation is polled before wid gives up on this attempt.
const LRO_LIMIT: Duration = Duration::from_secs(300);
/// How many reads the provider keeps in flight at most (before `--parallelism`).
pub(crate) const READ_CONCURRENCY: usize = 8;

/// How the provider reaches ARM.
#[derive(Debug, Clone, Default)]
pub struct AzureOptions {
    /// ARM's base URL; `https://management.azure.com` when `None`.
    pub endpoint: Option<String>,
    /// The sandbox's CA (PEM). When set, wid trusts only this CA and sends the sandbox's
    /// static token instead of real credentials: sandbox mode.
    pub sandbox_ca: Option<Vec<u8>>,
    /// The run's bounds, retry policy and parallelism cap.
    pub limits: Limits,
}

/// What observe learned about a live identity, for apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveIdentity {
    /// Every tag, wid's and others'.
    pub tags: BTreeMap<String, String>,
    /// The service principal's object id (role assignments name it).
    pub principal_id: String,
    /// Adopted rather than created by this plan.
    pub adopted: bool,
    /// Role assignment ARM ids wid manages on it, by (scope lowercase, role text).
    pub assignments: BTreeMap<(String, String), String>,
}

/// The Azure provider: managed identities, federated credentials, role assignments.
pub struct AzureProvider {
    base: String,
    pipeline: Pipeline,
    /// Counts writes (reads are counted by `calls`).
    pub(crate) counter: CallCounter,
    /// How reads are made: counted, paced, retried.
    pub(crate) calls: Calls,
    pub(crate) sandbox: bool,
    /// The plan's AKS clusters by plan name.
    pub(crate) clusters: Mutex<BTreeMap<String, AksCluster>>,
    /// Resource groups whose location compile needs, by plan cluster name.
    pub(crate) groups: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Live identities seen by observe or written by apply, by folded id.
    pub(crate) live: Mutex<BTreeMap<String, LiveIdentity>>,
    /// Role definition GUIDs by (scope lowercase, role name lowercase): resolved once per
    /// scope per run.
    pub(crate) roles: std::sync::Mutex<BTreeMap<(String, String), RoleSlot>>,
    /// Resource group locations by (subscription, group), lowercase.
    pub(crate) locations: tokio::sync::Mutex<BTreeMap<(String, String), String>>,
    /// The roles the plan assigns, (scope, role as written), each with the identities
    /// that hold it: looked up ahead of observe for the identities it reads.
    pub(crate) plan_roles: Mutex<BTreeMap<(String, String), Vec<ResourceId>>>,
    /// Resource group listings of identities read ahead of observe, by (subscription,
    /// group) in lowercase.
    pub(crate) groups_ahead: Ahead<(String, String), Option<BTreeMap<String, Value>>>,
}

impl std::fmt::Debug for AzureProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProvider")
            .field("base", &self.base)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// One answer from ARM.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub body: Value,
}

fn setup_error(what: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(
        ErrorKind::Invalid,
        format!("failed to set up the Azure client: {what}"),
    )
}

/// The HTTP client: rustls with ring, trusting the platform's roots, or only the
/// sandbox's CA in sandbox mode; connect and read timeouts from `bounds` (the per-call
/// deadline and the response cap are [`BoundedClient`]'s).
fn http_client(
    sandbox_ca: Option<&[u8]>,
    bounds: &Bounds,
) -> Result<reqwest::Client, ProviderError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup_error)?;
    let config = match sandbox_ca {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|e| setup_error(format!("the sandbox CA: {e}")))?)
                    .map_err(|e| setup_error(format!("the sandbox CA: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .map_err(setup_error)?
            .with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(bounds.connect_timeout)
        .read_timeout(bounds.read_timeout)
        .build()
        .map_err(setup_error)
}

impl AzureProvider {
    /// A provider with `options`, counting its calls in `counter`. Makes no call:
    /// credentials are first used (and checked) by the first request.
    pub fn new(options: AzureOptions, counter: CallCounter) -> Result<Self, ProviderError> {
        let bounds = options.limits.bounds;
        let client = http_client(options.sandbox_ca.as_deref(), &bounds)?;
        let transport = Transport::new(Arc::new(BoundedClient::new(client, bounds)));
        let sandbox = options.sandbox_ca.is_some();
        let credential: Option<Arc<dyn TokenCredential>> =
            sandbox.then(|| Arc::new(StaticToken("wid-sandbox")) as Arc<dyn TokenCredential>);
        Ok(Self::with_transport(
            options.endpoint.as_deref().unwrap_or(ARM),
            transport,
            credential,
            counter,
            &options.limits,
        ))
    }

    /// A provider sending through `transport` with `credential` (the real chain when
    /// `None`), reading as `limits` says.
    pub(crate) fn with_transport(
        base: &str,
        transport: Transport,
        credential: Option<Arc<dyn TokenCredential>>,
        counter: CallCounter,
        limits: &Limits,
    ) -> Self {
        let mut client_options = ClientOptions {
            retry: RetryOptions::none(),
            ..Default::default()
        };
        client_options.transport = Some(transport);
        let sandbox = credential.is_some();
        let credential = credential.unwrap_or_else(|| Arc::new(Chain::from_env(&client_options)));
        let auth: Arc<dyn Policy> =
            Arc::new(BearerTokenAuthorizationPolicy::new(credential, [ARM_SCOPE]));
        let pipeline = Pipeline::new(
            Some("wid"),
            Some(env!("CARGO_PKG_VERSION")),
            client_options,
            Vec::new(),
            vec![auth],
            None,
        );
        Self {
            base: base.trim_end_matches('/').to_owned(),
            pipeline,
            calls: limits.calls(counter.clone(), READ_CONCURRENCY),
            counter,
            sandbox,
            clusters: Mutex::new(BTreeMap::new()),
            groups: Mutex::new(BTreeMap::new()),
            live: Mutex::new(BTreeMap::new()),
            roles: std::sync::Mutex::new(BTreeMap::new()),
            locations: tokio::sync::Mutex::new(BTreeMap::new()),
            plan_roles: Mutex::new(BTreeMap::new()),
            groups_ahead: Ahead::default(),
        }
    }

    /// Tells the provider about the plan's AKS clusters (preflight reads them), the
    /// resource groups, per cluster, whose location compile needs, and the roles the plan
    /// assigns ((scope, role as written), see [`compile::role_scope`], each with the
    /// identities that hold it), which a read-ahead looks up.
    ///
    /// [`compile::role_scope`]: crate::compile::role_scope
    pub fn know_plan(
        &self,
        clusters: &[AksCluster],
        groups: BTreeMap<String, BTreeSet<String>>,
        roles: BTreeMap<(String, String), Vec<ResourceId>>,
    ) {
        self.plan_roles
            .lock()
            .expect("plan role lock is never poisoned")
            .extend(roles);
        let mut known = self
            .clusters
            .lock()
            .expect("cluster map lock is never poisoned");
        for c in clusters {
            known.insert(c.plan_name.clone(), c.clone());
        }
        self.groups
            .lock()
            .expect("group map lock is never poisoned")
            .extend(groups);
    }

    pub(crate) fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ProviderError> {
        let mut url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| setup_error(format!("bad ARM URL {}{path}: {e}", self.base)))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends one request; ARM errors come back as [`Failure::Arm`].
    async fn raw(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(u16, Headers, Vec<u8>), Failure> {
        let mut request = Request::new(url, method);
        request.insert_header("accept", "application/json");
        if let Some(body) = body {
            request.insert_header("content-type", "application/json");
            request.set_body(body.to_string());
        }
        let options = PipelineSendOptions {
            skip_checks: true,
            ..Default::default()
        };
        let response = self
            .pipeline
            .send(&Context::new(), &mut request, Some(options))
            .await
            .map_err(|e| failure_of(&e))?;
        let status = u16::from(response.status());
        let headers = response.headers().clone();
        let bytes = response.into_body().as_ref().to_vec();
        if status >= 400 {
            let wait = headers
                .get_optional_str(&HeaderName::from_static("retry-after"))
                .and_then(parse_retry_after);
            return Err(Failure::Arm(ArmFailure::parse(status, &bytes, wait)));
        }
        Ok((status, headers, bytes))
    }

    /// One ARM write, sent once and counted as `call.op`: a 202 is polled to its end, then
    /// a PUT or PATCH reads the resource it made.
    pub(crate) async fn send(
        &self,
        call: &Call<'_>,
        method: Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Failure> {
        let url = self
            .url(path, &[("api-version", api)])
            .map_err(|e| Failure::Transport(e.to_string()))?;
        self.counter.count(call.op.name);
        let (status, headers, bytes) = self.raw(method, url.clone(), body).await?;
        if status == 202 {
            self.poll(call, &headers).await?;
            if matches!(method, Method::Put | Method::Patch) {
                self.counter.count(call.op.name);
                let (_, _, bytes) = self.raw(Method::Get, url, None).await?;
                return Ok(Reply {
                    body: serde_json::from_slice(&bytes).unwrap_or_default(),
                });
            }
            return Ok(Reply { body: Value::Null });
        }
        Ok(Reply {
            body: serde_json::from_slice(&bytes).unwrap_or_default(),
        })
    }

    /// Polls a long-running operation: `Azure-AsyncOperation` until its status is
    /// terminal, else `Location` until it stops answering 202, waiting as `Retry-After`
    /// says (1 s when it says nothing).
    async fn poll(&self, call: &Call<'_>, first: &Headers) -> Result<(), Failure> {
        let header = |h: &Headers, name: &'static str| {
            h.get_optional_str(&HeaderName::from_static(name))
                .map(str::to_owned)
        };
        let wait_of = |h: &Headers| {
            header(h, "retry-after")
                .and_then(|v| parse_retry_after(&v))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(30))
        };
        let async_op = header(first, "azure-asyncoperation");
        let location = header(first, "location");
        let Some(target) = async_op.clone().or(location) else {
            return Ok(());
        };
        let target =
            Url::parse(&target).map_err(|e| Failure::Transport(format!("bad poll URL: {e}")))?;
        let started = std::time::Instant::now();
        let mut wait = wait_of(first);
        loop {
            if started.elapsed() > LRO_LIMIT {
                return Err(Failure::Transport(format!(
                    "{} did not finish within {} s",
                    call.doing,
                    LRO_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            self.counter.count("azure:operations.get");
            let (status, headers, bytes) = self.raw(Method::Get, target.clone(), None).await?;
            wait = wait_of(&headers);
            if async_op.is_some() {
                let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                match v["status"].as_str().unwrap_or("InProgress") {
                    "Succeeded" => return Ok(()),
                    "Failed" | "Canceled" => {
                        let err = &v["error"];
                        return Err(Failure::Arm(ArmFailure {
                            status: 500,
                            code: err["code"].as_str().unwrap_or("OperationFailed").to_owned(),
                            message: err["message"].as_str().unwrap_or_default().to_owned(),
                            retry_after: None,
                        }));
                    }
                    _ => {}
                }
            } else if status != 202 {
                return Ok(());
            }
        }
    }

    /// One read (GET) of `path` through the run's [`Calls`]; `None` when ARM answers 404.
    pub(crate) async fn read(
        &self,
        call: &Call<'_>,
        path: &str,
        api: &str,
    ) -> Result<Option<Value>, ProviderError> {
        let url = self.url(path, &[("api-version", api)])?;
        self.calls
            .read(call.op.name, || async {
                match self.raw(Method::Get, url.clone(), None).await {
                    Ok((_, _, bytes)) => {
                        Ok(Some(serde_json::from_slice(&bytes).unwrap_or_default()))
                    }
                    Err(f) if f.is_not_found() => Ok(None),
                    Err(f) => Err(call.fail(&f)),
                }
            })
            .await
    }

    /// A list read followed through every `nextLink`, each page one read through the
    /// run's [`Calls`] (counted as `call.op`, retried on its own).
    pub(crate) async fn list(
        &self,
        call: &Call<'_>,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, ProviderError> {
        let mut url = self.url(path, query)?;
        let mut out = Vec::new();
        loop {
            let page: Value = self
                .calls
                .read(call.op.name, || async {
                    match self.raw(Method::Get, url.clone(), None).await {
                        Ok((_, _, bytes)) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
                        Err(f) => Err(call.fail(&f)),
                    }
                })
                .await?;
            if let Some(items) = page["value"].as_array() {
                out.extend(items.iter().cloned());
            }
            match page["nextLink"].as_str().filter(|s| !s.is_empty()) {
                Some(next) => {
                    url = Url::parse(next).map_err(|e| {
                        call.fail(&Failure::Transport(format!("bad nextLink: {e}")))
                    })?;
                }
                None => return Ok(out),
            }
        }
    }

    /// Remembers (or updates) a live identity.
    pub(crate) fn remember(&self, key: String, identity: LiveIdentity) {
        self.live
            .lock()
            .expect("identity cache lock is never poisoned")
            .insert(key, identity);
    }

    /// A live identity seen in this run.
    pub(crate) fn known(&self, key: &str) -> Option<LiveIdentity> {
        self.live
            .lock()
            .expect("identity cache lock is never poisoned")
            .get(key)
            .cloned()
    }
}

/// The failure behind an error of the pipeline: a bound the call ran into, credentials
/// that did not work, or no answer.
fn failure_of(e: &azure_core::Error) -> Failure {
    match BodyLimit::find(e) {
        Some(BodyLimit::TooLarge(max)) => return Failure::TooLarge(max),
        Some(BodyLimit::TimedOut(after)) => {
            return Failure::TimedOut(format!(
                "no complete answer within {} (the per-call deadline)",
                wid_core::human_duration(after)
            ));
        }
        None => {}
    }
    let text = chain(e);
    if *e.kind() == azure_core::error::ErrorKind::Credential {
        return Failure::Credentials(text);
    }
    if timed_out(e) {
        return Failure::TimedOut(text);
    }
    Failure::Transport(text)
}

/// Whether reqwest's connect or read timeout is behind the error.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// An error and its sources as one line, each message once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string().trim().to_owned();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
