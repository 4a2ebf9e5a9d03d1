//! The provider value: options, credentials per account, and the SDK clients built from
//! them (one HTTPS client on rustls with ring, bounded by [`crate::bounded`]; SDK retries
//! off: reads are retried through [`wid_core::Calls`], changes by the engine).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{Provider as TlsProvider, rustls_provider::CryptoMode};
use wid_core::{CallCounter, Calls, ErrorKind, Limits, ProviderError, ResourceId};

use crate::block::EksCluster;
use crate::error::Call;

/// IAM is global; requests are signed for this region.
const IAM_REGION: &str = "us-east-1";

/// How many reads the provider runs at once (before `--parallelism` and throttling
/// narrow it).
pub(crate) const READ_CONCURRENCY: usize = 8;

/// How the provider reaches AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// The endpoint for every AWS API; overrides `AWS_ENDPOINT_URL` (which the SDK reads
    /// itself when this is `None`).
    pub endpoint_url: Option<String>,
    /// Static credentials per account for the sandbox (and other emulators): access key id
    /// `SANDBOX<account>`, secret `sandbox`. The sandbox derives the account from the key.
    pub sandbox: bool,
    /// The named profile to use per account (account id → profile). Accounts without one
    /// use the default credential chain, checked with `sts:GetCallerIdentity`.
    pub profiles: BTreeMap<String, String>,
    /// The run's call bounds, retries and concurrency cap.
    pub limits: Limits,
}

/// The SDK clients for one account.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub iam: aws_sdk_iam::Client,
    config: SdkConfig,
}

impl Account {
    /// An EKS client for `region` with this account's credentials.
    pub(crate) fn eks(&self, region: &str) -> aws_sdk_eks::Client {
        let conf = aws_sdk_eks::config::Builder::from(&self.config)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_eks::Client::from_conf(conf)
    }
}

/// The AWS provider: IAM OIDC providers, roles and EKS Pod Identity associations.
#[derive(Debug)]
pub struct AwsProvider {
    pub(crate) options: AwsOptions,
    pub(crate) counter: CallCounter,
    /// Reads: counted, paced and retried.
    pub(crate) calls: Calls,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    accounts: tokio::sync::Mutex<BTreeMap<String, Account>>,
    /// EKS clusters known to the plan (account, region, EKS name): prune scans their
    /// associations even when no association of the plan remains on them.
    pub(crate) clusters: Mutex<BTreeSet<(String, String, String)>>,
    /// Accounts the plan names for its roles (`aws.account`, else the cluster's): prune
    /// looks for this plan's objects there too.
    pub(crate) role_accounts: Mutex<BTreeSet<String>>,
    /// The plan's EKS clusters by the plan's name, for preflight's issuer discovery.
    pub(crate) plan_clusters: Mutex<BTreeMap<String, EksCluster>>,
    /// Association ids found by observe, so apply need not look them up again.
    pub(crate) association_ids: Mutex<BTreeMap<ResourceId, String>>,
    /// ARNs seen by observe (roles, OIDC providers, associations): the live ARN carries
    /// the partition, which an id alone does not.
    pub(crate) arns: Mutex<BTreeMap<ResourceId, String>>,
    /// The tag-key records (`wid.dev/tag-keys` tags) seen by observe on this plan's
    /// objects, so apply knows which tags it set and which record tags to replace.
    pub(crate) tag_records: Mutex<BTreeMap<ResourceId, Vec<(String, String)>>>,
    /// Observe's first reads, made ahead of it ([`crate::ahead`]).
    pub(crate) ahead: crate::ahead::AheadReads,
}

impl AwsProvider {
    /// A provider with `options`, counting its calls in `counter`. Builds no client yet:
    /// each account's clients are made (and its credentials checked) on first use.
    pub async fn new(opts: AwsOptions, counter: CallCounter) -> Result<Self, ProviderError> {
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
            .build_https();
        let http = crate::bounded::BoundedHttpClient::shared(https, &opts.limits.bounds);
        let calls = opts.limits.calls(counter.clone(), READ_CONCURRENCY);
        Ok(Self {
            options: opts,
            counter,
            calls,
            http,
            accounts: tokio::sync::Mutex::new(BTreeMap::new()),
            clusters: Mutex::new(BTreeSet::new()),
            role_accounts: Mutex::new(BTreeSet::new()),
            plan_clusters: Mutex::new(BTreeMap::new()),
            association_ids: Mutex::new(BTreeMap::new()),
            arns: Mutex::new(BTreeMap::new()),
            tag_records: Mutex::new(BTreeMap::new()),
            ahead: crate::ahead::AheadReads::default(),
        })
    }

    /// Tells the provider about the plan's EKS clusters, so prune also looks for this
    /// plan's Pod Identity associations on clusters the plan no longer associates any KSA
    /// with. `discover_issuer` records its cluster too.
    pub fn know_clusters(&self, clusters: &[EksCluster]) {
        let mut known = self
            .clusters
            .lock()
            .expect("cluster set lock is never poisoned");
        let mut by_name = self
            .plan_clusters
            .lock()
            .expect("cluster map lock is never poisoned");
        for c in clusters {
            known.insert((c.account.clone(), c.region.clone(), c.eks_name.clone()));
            by_name.insert(c.plan_name.clone(), c.clone());
        }
    }

    /// Tells the provider which accounts the plan's roles live in, so prune (and
    /// destroy) look for this plan's objects there even when no resource of the plan is
    /// wanted in them any more.
    pub fn know_accounts<'a>(&self, accounts: impl IntoIterator<Item = &'a str>) {
        self.role_accounts
            .lock()
            .expect("account set lock is never poisoned")
            .extend(accounts.into_iter().map(str::to_owned));
    }

    /// The cluster's OIDC issuer URL, from `eks:DescribeCluster`.
    pub async fn discover_issuer(&self, cluster: &EksCluster) -> Result<String, ProviderError> {
        self.know_clusters(std::slice::from_ref(cluster));
        let account = self.account(&cluster.account).await?;
        let call = Call::new(
            "eks:DescribeCluster",
            format!(
                "describe EKS cluster {} in account {} ({})",
                cluster.eks_name, cluster.account, cluster.region
            ),
            crate::ids::cluster_arn(&cluster.account, &cluster.region, &cluster.eks_name),
        );
        let eks = account.eks(&cluster.region);
        let out = self
            .fetch(&call, || {
                eks.describe_cluster().name(&cluster.eks_name).send()
            })
            .await?;
        out.cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!(
                        "EKS cluster {} in account {} has no OIDC issuer",
                        cluster.eks_name, cluster.account
                    ),
                )
                .with_operation(call.op)
                .with_hint(format!(
                    "set `issuer = \"https://...\"` in [clusters.{}]",
                    cluster.plan_name
                ))
            })
    }

    /// Remembers the live ARN of a resource.
    pub(crate) fn remember_arn(&self, id: &ResourceId, arn: &str) {
        self.arns
            .lock()
            .expect("arn cache lock is never poisoned")
            .insert(id.clone(), arn.to_owned());
    }

    /// The live ARN of a resource seen by observe or created by apply.
    pub(crate) fn known_arn(&self, id: &ResourceId) -> Option<String> {
        self.arns
            .lock()
            .expect("arn cache lock is never poisoned")
            .get(id)
            .cloned()
    }

    /// Remembers the record tags of a live object (none: it has no record).
    pub(crate) fn remember_tag_record(&self, id: &ResourceId, record: Vec<(String, String)>) {
        self.tag_records
            .lock()
            .expect("tag record cache lock is never poisoned")
            .insert(id.clone(), record);
    }

    /// The record tags observe saw on an object (empty when none, or not seen).
    pub(crate) fn live_tag_record(&self, id: &ResourceId) -> Vec<(String, String)> {
        self.tag_records
            .lock()
            .expect("tag record cache lock is never poisoned")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// The clients for `account`, built on first use.
    pub(crate) async fn account(&self, account: &str) -> Result<Account, ProviderError> {
        let mut accounts = self.accounts.lock().await;
        if let Some(a) = accounts.get(account) {
            return Ok(a.clone());
        }
        let built = self.build_account(account).await?;
        accounts.insert(account.to_owned(), built.clone());
        Ok(built)
    }

    async fn build_account(&self, account: &str) -> Result<Account, ProviderError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(self.http.clone())
            .timeout_config(crate::bounded::timeout_config(&self.options.limits.bounds))
            .retry_config(RetryConfig::disabled());
        if let Some(url) = &self.options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let profile = self.options.profiles.get(account);
        if self.options.sandbox {
            loader = loader
                .region(Region::new(IAM_REGION))
                .credentials_provider(Credentials::new(
                    format!("SANDBOX{account}"),
                    "sandbox",
                    None,
                    None,
                    "wid-sandbox",
                ));
        } else if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        let mut config = loader.load().await;
        if let (false, Some(profile)) = (self.options.sandbox, profile) {
            // The profile's own credentials (keys, IAM Identity Center, credential_process,
            // a role to assume), whatever else the environment holds: the default chain
            // would let AWS_ACCESS_KEY_ID, perhaps another account's, win over the profile
            // the plan names for this account.
            let provider_config = ProviderConfig::without_region()
                .with_http_client(self.http.clone())
                .with_region(config.region().cloned());
            let credentials = ProfileFileCredentialsProvider::builder()
                .configure(&provider_config)
                .profile_name(profile)
                .build();
            config = config
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(credentials))
                .build();
        }
        // IAM is global: sign for us-east-1 whatever region the profile names.
        let iam_conf = aws_sdk_iam::config::Builder::from(&config)
            .region(Region::new(IAM_REGION))
            .build();
        let built = Account {
            iam: aws_sdk_iam::Client::from_conf(iam_conf),
            config,
        };
        if !self.options.sandbox && profile.is_none() {
            self.check_caller_account(&built, account).await?;
        }
        Ok(built)
    }

    /// The default chain's credentials may belong to any account; make sure they belong
    /// to the one the plan names before acting in it.
    async fn check_caller_account(
        &self,
        built: &Account,
        account: &str,
    ) -> Result<(), ProviderError> {
        let sts_conf = aws_sdk_sts::config::Builder::from(&built.config)
            .region(
                built
                    .config
                    .region()
                    .cloned()
                    .unwrap_or_else(|| Region::new(IAM_REGION)),
            )
            .build();
        let sts = aws_sdk_sts::Client::from_conf(sts_conf);
        let call = Call::new(
            "sts:GetCallerIdentity",
            format!("check the credentials for account {account}"),
            "*",
        );
        let out = self
            .fetch(&call, || sts.get_caller_identity().send())
            .await?;
        match out.account() {
            Some(a) if a == account => Ok(()),
            other => Err(ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "the default AWS credentials belong to account {}, but the plan needs account {account}",
                    other.unwrap_or("(unknown)")
                ),
            )
            .with_operation(call.op)
            .with_hint(format!(
                "name a profile for the account in the plan: [aws.profiles] \"{account}\" = \"PROFILE\"; or run wid with credentials for account {account}"
            ))),
        }
    }
}
