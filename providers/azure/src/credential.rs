//! Credentials for ARM: a chain for real use (a service principal's secret from the
//! environment, workload identity, managed identity, then the Azure CLI / azd), and a
//! static token for the sandbox. Either one goes through the same bearer-token policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind as CoreKind;
use azure_core::http::ClientOptions;
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

/// What to set when no credential works: the one sentence the user reads.
pub const NO_CREDENTIALS: &str = "no Azure credentials found: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal), or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (workload identity, e.g. GitHub Actions OIDC), run on Azure with a managed identity, or sign in with `az login` (or `azd auth login`)";

/// The credential the sandbox accepts: a fixed bearer token that never expires in a run.
#[derive(Debug)]
pub struct StaticToken(pub &'static str);

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new(self.0),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// The credentials wid tries, in order, for real Azure. The first that yields a token is
/// used for the rest of the run.
pub struct Chain {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    /// Problems building sources that need settings (told when every source fails).
    skipped: Vec<String>,
    chosen: AtomicUsize,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sources.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Chain").field("sources", &names).finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Chain {
    /// The chain, built from the environment: a client secret when `AZURE_CLIENT_SECRET`
    /// is set, workload identity when `AZURE_FEDERATED_TOKEN_FILE` is, then managed
    /// identity and the developer tools. Every source uses `options` (wid's HTTP client).
    pub fn from_env(options: &ClientOptions) -> Self {
        let mut sources: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
        let mut skipped = Vec::new();
        let tenant = var("AZURE_TENANT_ID");
        let client = var("AZURE_CLIENT_ID");
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            match (&tenant, &client) {
                (Some(t), Some(c)) => match ClientSecretCredential::new(
                    t,
                    c.clone(),
                    Secret::new(secret),
                    Some(ClientSecretCredentialOptions {
                        client_options: options.clone(),
                    }),
                ) {
                    Ok(cred) => sources.push(("client secret (AZURE_CLIENT_SECRET)", cred)),
                    Err(e) => skipped.push(format!("AZURE_CLIENT_SECRET: {e}")),
                },
                _ => skipped.push(
                    "AZURE_CLIENT_SECRET is set, but AZURE_TENANT_ID or AZURE_CLIENT_ID is not"
                        .into(),
                ),
            }
        }
        if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            let opts = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: options.clone(),
                },
                ..Default::default()
            };
            match WorkloadIdentityCredential::new(Some(opts)) {
                Ok(cred) => sources.push(("workload identity (AZURE_FEDERATED_TOKEN_FILE)", cred)),
                Err(e) => skipped.push(format!("AZURE_FEDERATED_TOKEN_FILE: {e}")),
            }
        }
        match ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            client_options: options.clone(),
            ..Default::default()
        })) {
            Ok(cred) => sources.push(("managed identity", cred)),
            Err(e) => skipped.push(format!("managed identity: {e}")),
        }
        match DeveloperToolsCredential::new(None) {
            Ok(cred) => sources.push(("Azure CLI / azd", cred)),
            Err(e) => skipped.push(format!("developer tools: {e}")),
        }
        Self {
            sources,
            skipped,
            chosen: AtomicUsize::new(usize::MAX),
        }
    }
}

#[async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some((_, cred)) = self.sources.get(chosen) {
            return cred.get_token(scopes, options).await;
        }
        let mut reasons = self.skipped.clone();
        for (i, (name, cred)) in self.sources.iter().enumerate() {
            match cred.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    tracing::debug!(source = name, "azure credentials");
                    self.chosen.store(i, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(e) => reasons.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            CoreKind::Credential,
            format!("{NO_CREDENTIALS} ({})", reasons.join("; ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_static_token_is_what_the_sandbox_gets() {
        let t = StaticToken("wid-sandbox")
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap();
        assert_eq!(t.token.secret(), "wid-sandbox");
    }

    #[tokio::test]
    async fn an_empty_chain_names_what_to_set() {
        let chain = Chain {
            sources: Vec::new(),
            skipped: vec![
                "AZURE_CLIENT_SECRET is set, but AZURE_TENANT_ID or AZURE_CLIENT_ID is not".into(),
            ],
            chosen: AtomicUsize::new(usize::MAX),
        };
        let err = chain.get_token(&["s"], None).await.unwrap_err();
        assert_eq!(*err.kind(), CoreKind::Credential);
        let text = err.to_string();
        assert!(text.contains("AZURE_FEDERATED_TOKEN_FILE"), "{text}");
        assert!(text.contains("az login"), "{text}");
        assert!(
            text.contains("AZURE_TENANT_ID or AZURE_CLIENT_ID is not"),
            "{text}"
        );
    }
}
