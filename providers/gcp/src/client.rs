//! The provider value: where it points, its credentials, and the Google clients built
//! from them (one reqwest on rustls with ring; client retries off: the engine retries).
//!
//! Every call is bounded as far as the Google clients allow: they build their own
//! reqwest client and take no custom client, transport or body hook, so the provider sets
//! their attempt timeout to the per-call deadline (reqwest's request timeout, which covers
//! connecting, the response head and reading the body) and runs each call under
//! `tokio::time::timeout` of the same length, which also covers fetching credentials.
//! The Google clients have no separate connect or read (silence) timeout and read every
//! body to the end before parsing it, so no response cap can be applied while reading:
//! a body is bounded only by the deadline (docs/gcp.md, "Bounds").
//!
//! Reads go through the run's [`Calls`] (counted, paced, retried); writes are sent once.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;

use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_iam_admin_v1::model::ServiceAccount;
use google_cloud_iam_v1::model::Policy;
use tokio::sync::OnceCell;
use wid_core::ahead::Ahead;
use wid_core::{BodyLimit, CallCounter, Calls, ErrorKind, Limits, ProviderError, ResourceId};

use crate::compile::GkeCluster;
use crate::error::{AUTH_FIX, Call};

/// How many reads the provider keeps in flight at most (before `--parallelism`).
pub(crate) const READ_CONCURRENCY: usize = 8;

/// Where the three Google APIs are served. Each client appends its request paths
/// (`/v1/projects/...`) to its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// IAM (service accounts and their policies).
    pub iam: String,
    /// Cloud Resource Manager (projects and their policies).
    pub crm: String,
    /// GKE (clusters).
    pub container: String,
}

impl Endpoints {
    /// The sandbox's endpoints under its cloud URL.
    pub fn sandbox(cloud_url: &str) -> Self {
        let base = cloud_url.trim_end_matches('/');
        Self {
            iam: format!("{base}/gcp/iam"),
            crm: format!("{base}/gcp/crm"),
            container: format!("{base}/gcp/container"),
        }
    }
}

/// How the provider reaches Google Cloud.
#[derive(Debug, Clone, Default)]
pub struct GcpOptions {
    /// Endpoints other than Google's (the sandbox); `None` for Google's own.
    pub endpoints: Option<Endpoints>,
    /// Send the static token `Bearer sandbox` instead of application default credentials.
    pub sandbox: bool,
    /// The run's bounds, retry policy and parallelism cap.
    pub limits: Limits,
}

/// The IAM and Resource Manager clients, built together on first use (the GKE client is
/// apart, [`GcpProvider::gke`]).
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    pub iam: google_cloud_iam_admin_v1::client::Iam,
    pub projects: google_cloud_resourcemanager_v3::client::Projects,
}

/// A policy as observe read it: what apply starts from, so it needs no second read.
#[derive(Debug, Clone)]
pub(crate) struct ReadPolicy {
    /// The whole policy, etag included.
    pub policy: Policy,
}

/// The GCP provider: Google service accounts and IAM policies.
#[derive(Debug)]
pub struct GcpProvider {
    pub(crate) options: GcpOptions,
    /// Counts writes (reads are counted by `calls`).
    pub(crate) counter: CallCounter,
    /// How reads are made: counted, paced, retried.
    pub(crate) calls: Calls,
    clients: OnceCell<Clients>,
    /// The GKE client alone, built first: preflight needs only it, and each client built
    /// loads the system's root certificates (16–42 ms for all three on the benchmark's
    /// 2 cores), which would hold back preflight's first call and the plan behind it.
    gke: OnceCell<google_cloud_container_v1::client::ClusterManager>,
    credentials: OnceCell<Credentials>,
    /// The plan's GKE clusters by the plan's name (preflight, records, prune scopes).
    pub(crate) clusters: Mutex<BTreeMap<String, GkeCluster>>,
    /// Projects the plan names anywhere (clusters, service accounts, role targets): prune
    /// looks for this plan's service accounts there.
    pub(crate) projects: Mutex<BTreeSet<String>>,
    /// Policies read by observe, by policy resource id.
    pub(crate) policies: Mutex<BTreeMap<ResourceId, ReadPolicy>>,
    /// The plan's record of the bindings it added (see [`crate::record`]).
    pub(crate) record: tokio::sync::Mutex<crate::bindings::Record>,
    /// Record updates waiting to be written together (see `write_record`).
    pub(crate) record_queue: Mutex<Vec<crate::apply_policy::RecordUpdate>>,
    /// The record state of the apply run in progress (see [`crate::record_run`]).
    pub(crate) run: Mutex<crate::record_run::RunRecord>,
    /// Service account lists read ahead of observe, by project.
    pub(crate) lists_ahead: Ahead<String, Vec<ServiceAccount>>,
    /// Policies read ahead of observe (`None`: the resource does not exist).
    pub(crate) policies_ahead: Ahead<ResourceId, Option<Policy>>,
}

/// The record locked for a write ([`GcpProvider::record_to_write`]).
pub(crate) struct RecordWrite<'a> {
    guard: tokio::sync::MutexGuard<'a, crate::bindings::Record>,
    provider: &'a GcpProvider,
}

impl std::ops::Deref for RecordWrite<'_> {
    type Target = crate::bindings::Record;

    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl std::ops::DerefMut for RecordWrite<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for RecordWrite<'_> {
    fn drop(&mut self) {
        self.provider.forget_read_ahead();
    }
}

/// `Authorization: Bearer sandbox`: the sandbox accepts any bearer token.
#[derive(Debug)]
struct SandboxToken;

impl CredentialsProvider for SandboxToken {
    async fn headers(
        &self,
        _: http::Extensions,
    ) -> Result<CacheableResource<http::HeaderMap>, google_cloud_gax::error::CredentialsError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer sandbox"),
        );
        Ok(CacheableResource::New {
            entity_tag: EntityTag::new(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

impl GcpProvider {
    /// A provider with `options`, counting its calls in `counter`. Builds no client and
    /// reads no credentials yet: that happens on the first call.
    pub fn new(options: GcpOptions, counter: CallCounter) -> Self {
        Self {
            calls: options.limits.calls(counter.clone(), READ_CONCURRENCY),
            options,
            counter,
            clients: OnceCell::new(),
            gke: OnceCell::new(),
            credentials: OnceCell::new(),
            clusters: Mutex::new(BTreeMap::new()),
            projects: Mutex::new(BTreeSet::new()),
            policies: Mutex::new(BTreeMap::new()),
            record: tokio::sync::Mutex::new(crate::bindings::Record::default()),
            record_queue: Mutex::new(Vec::new()),
            run: Mutex::new(crate::record_run::RunRecord::default()),
            lists_ahead: Ahead::default(),
            policies_ahead: Ahead::default(),
        }
    }

    /// The record, locked to be written. What was read ahead of observe is dropped when
    /// the lock is taken and again when it is released: no read made while wid wrote is
    /// ever used ([`GcpProvider::apply`](wid_core::Provider::apply) does the same).
    pub(crate) async fn record_to_write(&self) -> RecordWrite<'_> {
        let guard = self.record.lock().await;
        self.forget_read_ahead();
        RecordWrite {
            guard,
            provider: self,
        }
    }

    /// Tells the provider the plan's GKE clusters and every project the plan names, so
    /// preflight knows what to read and prune knows where to look.
    pub fn know_plan(&self, clusters: &[GkeCluster], projects: impl IntoIterator<Item = String>) {
        let mut known = self
            .clusters
            .lock()
            .expect("cluster map lock is never poisoned");
        let mut all = self
            .projects
            .lock()
            .expect("project set lock is never poisoned");
        for c in clusters {
            known.insert(c.plan_name.clone(), c.clone());
            all.insert(c.project.clone());
        }
        all.extend(projects);
    }

    /// The plan's GKE clusters.
    pub(crate) fn plan_clusters(&self) -> Vec<GkeCluster> {
        self.clusters
            .lock()
            .expect("cluster map lock is never poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Runs one call of `call.op` within the per-call deadline, its error mapped.
    pub(crate) async fn call<T>(
        &self,
        call: &Call<'_>,
        sent: impl Future<Output = Result<T, google_cloud_gax::error::Error>>,
    ) -> Result<T, ProviderError> {
        let after = self.options.limits.bounds.call_timeout;
        match tokio::time::timeout(after, sent).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(call.fail(&e)),
            Err(_) => Err(call.limit(BodyLimit::TimedOut(after))),
        }
    }

    /// One read of `call.op` through the run's [`Calls`] (counted, paced, retried), each
    /// attempt within the per-call deadline.
    pub(crate) async fn read<T, F, Fut>(&self, call: &Call<'_>, send: F) -> Result<T, ProviderError>
    where
        F: FnMut(&Clients) -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        let clients = self.clients().await?;
        self.read_with(call, clients, send).await
    }

    /// [`read`](Self::read) through `client`.
    pub(crate) async fn read_with<C, T, F, Fut>(
        &self,
        call: &Call<'_>,
        client: &C,
        mut send: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(&C) -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        self.calls
            .read(call.op, || self.call(call, send(client)))
            .await
    }

    /// The GKE client, built on first use (before the others when preflight comes
    /// first).
    pub(crate) async fn gke(
        &self,
    ) -> Result<&google_cloud_container_v1::client::ClusterManager, ProviderError> {
        self.gke
            .get_or_try_init(|| self.within_deadline(self.build_gke()))
            .await
    }

    /// The IAM and Resource Manager clients, built on first use.
    pub(crate) async fn clients(&self) -> Result<&Clients, ProviderError> {
        self.clients
            .get_or_try_init(|| self.within_deadline(self.build()))
            .await
    }

    /// Builds clients within the per-call deadline: building may ask the credentials for
    /// their universe domain (a metadata server call).
    async fn within_deadline<T>(
        &self,
        build: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let after = self.options.limits.bounds.call_timeout;
        match tokio::time::timeout(after, build).await {
            Ok(built) => built,
            Err(_) => Err(ProviderError::new(
                ErrorKind::Transient,
                format!(
                    "setting up the Google Cloud clients did not finish within {} (the per-call deadline)",
                    wid_core::human_duration(after)
                ),
            )
            .with_hint(
                "the credentials' metadata or token endpoint stalled; check it is reachable, or raise --call-timeout",
            )),
        }
    }

    /// The run's Google credentials: the sandbox's token, or Application Default
    /// Credentials. Made once and shared by every client, so one token serves them all.
    async fn credentials(&self) -> Result<Credentials, ProviderError> {
        self.credentials
            .get_or_try_init(|| async {
                // reqwest and google-cloud-auth are built without a crypto provider of
                // their own (no aws-lc-rs): the process uses ring, as the AWS SDK here
                // does. Installing twice is harmless; the first one wins.
                let _ = rustls::crypto::ring::default_provider().install_default();
                if self.options.sandbox {
                    return Ok(Credentials::from(SandboxToken));
                }
                google_cloud_auth::credentials::Builder::default()
                    .build()
                    .map_err(|e| {
                        ProviderError::new(ErrorKind::Auth, "no usable Google credentials")
                            .with_hint(AUTH_FIX)
                            .with_detail(e.to_string())
                    })
            })
            .await
            .cloned()
    }

    async fn build_gke(
        &self,
    ) -> Result<google_cloud_container_v1::client::ClusterManager, ProviderError> {
        let mut gke = google_cloud_container_v1::client::ClusterManager::builder()
            .with_credentials(self.credentials().await?)
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(self.options.limits.bounds.call_timeout);
        if let Some(e) = &self.options.endpoints {
            gke = gke.with_endpoint(&e.container);
        }
        gke.build().await.map_err(|e| setup_failed("GKE", e))
    }

    async fn build(&self) -> Result<Clients, ProviderError> {
        let credentials = self.credentials().await?;
        let endpoints = self.options.endpoints.as_ref();
        // reqwest's request timeout: from connecting to the end of the body.
        let attempt = self.options.limits.bounds.call_timeout;
        let mut iam = google_cloud_iam_admin_v1::client::Iam::builder()
            .with_credentials(credentials.clone())
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(attempt);
        let mut projects = google_cloud_resourcemanager_v3::client::Projects::builder()
            .with_credentials(credentials)
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(attempt);
        if let Some(e) = endpoints {
            iam = iam.with_endpoint(&e.iam);
            projects = projects.with_endpoint(&e.crm);
        }
        Ok(Clients {
            iam: iam.build().await.map_err(|e| setup_failed("IAM", e))?,
            projects: projects
                .build()
                .await
                .map_err(|e| setup_failed("Resource Manager", e))?,
        })
    }
}

/// A client that could not be built: missing credentials are an auth error.
fn setup_failed(what: &str, e: google_cloud_gax::client_builder::Error) -> ProviderError {
    let kind = if e.is_default_credentials() {
        ErrorKind::Auth
    } else {
        ErrorKind::Invalid
    };
    let mut err = ProviderError::new(kind, format!("failed to set up the {what} client"))
        .with_detail(e.to_string());
    if kind == ErrorKind::Auth {
        err = err.with_hint(AUTH_FIX);
    }
    err
}
