//! `wid token NAMESPACE/SA`: a short-lived, audience-bound token from the TokenRequest
//! API, instead of a long-lived token Secret.

use clap::Args;
use wid_kubernetes::TokenOptions;

use super::cluster::ClusterArgs;
use super::{CliError, ExitCode};

/// Arguments of `wid token`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  wid token production/ci-deploy --duration 10m\n  wid token production/ci-deploy --audience https://my-cluster.example.com --duration 1h --kubeconfig-user > ci.kubeconfig"
)]
pub struct TokenArgs {
    /// The service account, as NAMESPACE/NAME.
    #[arg(value_name = "NAMESPACE/SA")]
    pub service_account: String,
    /// How long the token lives: 10m, 1h, 3600s or seconds (at least 10 minutes; the
    /// server may shorten it). Default: the server's (usually 1h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<i64>,
    /// An audience the token is for (repeatable). Default: the API server.
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// Bind the token to this pod: it stops working when the pod is deleted.
    #[arg(long, value_name = "POD")]
    pub bound_pod: Option<String>,
    /// Print a kubeconfig with a user holding the token instead of the bare token.
    #[arg(long)]
    pub kubeconfig_user: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Parses `10m`, `1h`, `90s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 10m, 1h, 600s"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("invalid duration unit {unit:?}: use s, m or h")),
    };
    let secs = n
        .checked_mul(scale)
        .ok_or_else(|| format!("duration {s:?} is too long"))?;
    if secs < 600 {
        return Err(format!(
            "duration {s:?} is below the API's minimum of 10 minutes"
        ));
    }
    Ok(secs)
}

/// Runs `wid token`.
pub async fn run(args: TokenArgs) -> Result<ExitCode, CliError> {
    let Some((namespace, sa)) = args.service_account.split_once('/') else {
        return Err(CliError::Usage(format!(
            "expected NAMESPACE/SA, got {:?}",
            args.service_account
        )));
    };
    let one = args.cluster.connect(None).await?;
    let opts = TokenOptions {
        expiration_seconds: args.duration,
        audiences: args.audiences.clone(),
        bound_pod: args.bound_pod.clone(),
    };
    let issued = one
        .provider
        .create_token(&one.name, namespace, sa, &opts)
        .await?;
    eprintln!(
        "token for {namespace}/{sa} in {} expires at {}",
        one.name, issued.expiration
    );
    let out = if args.kubeconfig_user {
        let user = format!("{namespace}-{sa}");
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "users": [{"name": user, "user": {"token": issued.token}}],
        });
        serde_saphyr::to_string(&doc).map_err(|e| CliError::Io(e.to_string()))?
    } else {
        format!("{}\n", issued.token)
    };
    crate::output::emit(&out);
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("900"), Ok(900));
        assert_eq!(parse_duration("700s"), Ok(700));
        assert!(parse_duration("5m").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("x").is_err());
    }
}
