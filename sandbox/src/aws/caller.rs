//! Who is calling, and the identifiers and timestamps the emulator mints.
//!
//! The caller's account, region and target service come from the SigV4 credential scope
//! (`Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,…`).
//! Signatures are not checked: the sandbox has no secrets to check them against.

use http::HeaderMap;
use rand::Rng;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// The account of callers whose access key id names none.
pub(crate) const DEFAULT_ACCOUNT: &str = "123456789012";
/// The region of unsigned requests.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The 12-digit account id.
    pub(crate) account: String,
    /// The region from the credential scope.
    pub(crate) region: String,
    /// The signing service (`iam`, `sts`, `eks`), if the request was signed.
    pub(crate) service: Option<String>,
}

impl Caller {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let scope = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(credential_scope);
        match scope {
            Some(scope) => Self {
                account: account_from_access_key(scope.access_key),
                region: scope.region.to_owned(),
                service: Some(scope.service.to_owned()),
            },
            None => Self {
                account: DEFAULT_ACCOUNT.to_owned(),
                region: DEFAULT_REGION.to_owned(),
                service: None,
            },
        }
    }
}

/// The parts of a SigV4 credential scope.
#[derive(Debug, PartialEq, Eq)]
struct Scope<'a> {
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
}

fn credential_scope(authorization: &str) -> Option<Scope<'_>> {
    let start = authorization.find("Credential=")? + "Credential=".len();
    let credential = authorization[start..]
        .split([',', ' '])
        .next()
        .unwrap_or_default();
    let mut parts = credential.split('/');
    let access_key = parts.next()?;
    let _date = parts.next()?;
    let region = parts.next().filter(|r| !r.is_empty())?;
    let service = parts.next().filter(|s| !s.is_empty())?;
    Some(Scope {
        access_key,
        region,
        service,
    })
}

/// The account an access key id stands for: its first run of 12 digits (wid's sandbox
/// credentials are `SANDBOX111122223333`), else [`DEFAULT_ACCOUNT`].
pub(crate) fn account_from_access_key(access_key: &str) -> String {
    let bytes = access_key.as_bytes();
    let mut run = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            run += 1;
            if run == 12 {
                return access_key[i + 1 - 12..=i].to_owned();
            }
        } else {
            run = 0;
        }
    }
    DEFAULT_ACCOUNT.to_owned()
}

/// A random id: `prefix` then `len` characters from `alphabet`.
pub(crate) fn random_id(prefix: &str, alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    for _ in 0..len {
        out.push(char::from(alphabet[rng.random_range(0..alphabet.len())]));
    }
    out
}

/// Uppercase letters and digits, as in IAM unique ids (`AROA…`, `ANPA…`).
pub(crate) const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Lowercase letters and digits, as in Pod Identity association ids.
pub(crate) const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A new request id (a UUID, as AWS sends).
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now as IAM renders dates: `2024-05-01T12:00:00Z`.
pub(crate) fn iso_now() -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::now_utc()
        .format(&format)
        .expect("a UTC date always formats with a fixed numeric description")
}

/// Now as EKS renders timestamps: epoch seconds.
pub(crate) fn epoch_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The first 32 hex characters, uppercase, of the SHA-256 of `input`: stable ids derived
/// from names (EKS OIDC issuer ids, endpoints).
pub(crate) fn stable_hex_id(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    hex::encode_upper(digest)[..32].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_is_the_first_run_of_twelve_digits() {
        assert_eq!(
            account_from_access_key("SANDBOX111122223333"),
            "111122223333"
        );
        assert_eq!(account_from_access_key("X1234567890123Y"), "123456789012");
        assert_eq!(
            account_from_access_key("AKIA98765432109X8"),
            DEFAULT_ACCOUNT
        );
        assert_eq!(
            account_from_access_key("AKIASANDBOX123456789"),
            DEFAULT_ACCOUNT
        );
        assert_eq!(account_from_access_key("test"), DEFAULT_ACCOUNT);
    }

    #[test]
    fn caller_comes_from_the_credential_scope() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=SANDBOX111122223333/20250101/eu-west-1/sts/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            Caller::from_headers(&headers),
            Caller {
                account: "111122223333".into(),
                region: "eu-west-1".into(),
                service: Some("sts".into()),
            }
        );
    }

    #[test]
    fn unsigned_requests_get_the_defaults() {
        let caller = Caller::from_headers(&HeaderMap::new());
        assert_eq!(caller.account, DEFAULT_ACCOUNT);
        assert_eq!(caller.region, DEFAULT_REGION);
        assert_eq!(caller.service, None);
        assert_eq!(credential_scope("Credential=AKID/20250101"), None);
    }

    #[test]
    fn random_ids_have_the_requested_shape() {
        let id = random_id("AROA", UPPER_ALNUM, 17);
        assert_eq!(id.len(), 21);
        assert!(id[4..].bytes().all(|b| UPPER_ALNUM.contains(&b)));
    }

    #[test]
    fn stable_ids_are_stable() {
        let a = stable_hex_id("111122223333/us-east-1/dev");
        assert_eq!(a, stable_hex_id("111122223333/us-east-1/dev"));
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        assert_ne!(a, stable_hex_id("111122223333/us-east-1/prod"));
    }

    #[test]
    fn iso_dates_are_utc_seconds() {
        let now = iso_now();
        assert_eq!(now.len(), 20);
        assert!(now.ends_with('Z'));
    }
}
