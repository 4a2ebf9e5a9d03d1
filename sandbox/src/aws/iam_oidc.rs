//! IAM OIDC identity providers (what IRSA trusts): create, read, list, delete, client ids
//! and tags.

use super::caller::iso_now;
use super::iam;
use super::model::{Account, OidcProvider};
use super::query::{Outcome, Params, QueryError, paginate};
use super::xml::Xml;
use crate::Shared;

/// Providers per account (the default quota).
const PROVIDERS_PER_ACCOUNT: usize = 100;

/// The provider ARN for an issuer URL: the URL without `https://`.
fn provider_arn(account: &str, url: &str) -> String {
    let host_and_path = url.strip_prefix("https://").unwrap_or(url);
    format!("arn:aws:iam::{account}:oidc-provider/{host_and_path}")
}

/// Checks an issuer URL: `https://`, a host, no port, no query or fragment.
fn validate_url(url: &str) -> Result<(), QueryError> {
    let invalid = || {
        QueryError::invalid_input(format!(
            "Invalid Url {url}: it must begin with https:// and have a host, no port and no query."
        ))
    };
    let rest = url.strip_prefix("https://").ok_or_else(invalid)?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(':') || url.contains(['?', '#']) || url.len() > 255 {
        return Err(invalid());
    }
    Ok(())
}

fn validate_client_ids(ids: &[String]) -> Result<(), QueryError> {
    if ids.len() > 100 || ids.iter().any(|id| id.is_empty() || id.len() > 255) {
        return Err(QueryError::validation(
            "1 validation error detected: Value at 'clientIDList' failed to satisfy constraint: at most 100 ids of 1 to 255 characters",
        ));
    }
    Ok(())
}

fn validate_thumbprints(thumbprints: &[String]) -> Result<(), QueryError> {
    let well_formed = |t: &String| t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if thumbprints.len() > 5 || !thumbprints.iter().all(well_formed) {
        return Err(QueryError::validation(
            "1 validation error detected: Value at 'thumbprintList' failed to satisfy constraint: at most 5 thumbprints of 40 hex characters",
        ));
    }
    Ok(())
}

fn provider<'a>(acct: &'a Account, arn: &str) -> Result<&'a OidcProvider, QueryError> {
    acct.oidc_providers
        .get(arn)
        .ok_or_else(|| no_such_provider(arn))
}

fn provider_mut<'a>(acct: &'a mut Account, arn: &str) -> Result<&'a mut OidcProvider, QueryError> {
    acct.oidc_providers
        .get_mut(arn)
        .ok_or_else(|| no_such_provider(arn))
}

fn no_such_provider(arn: &str) -> QueryError {
    QueryError::no_such_entity(format!("OpenIDConnect Provider not found for arn {arn}"))
}

pub(crate) fn create(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let url = p.required("Url")?;
    validate_url(url)?;
    let mut client_ids = p.list("ClientIDList");
    client_ids.dedup();
    validate_client_ids(&client_ids)?;
    // The thumbprint list is optional in the current API: IAM fetches one itself.
    let thumbprints = p.list("ThumbprintList");
    validate_thumbprints(&thumbprints)?;
    let tags = p.tags("Tags")?;
    let arn = provider_arn(account, url);
    iam::write(shared, account, |acct| {
        if acct.oidc_providers.values().any(|o| o.url == url) {
            return Err(QueryError::already_exists(format!(
                "Provider with url {url} already exists."
            )));
        }
        if acct.oidc_providers.len() >= PROVIDERS_PER_ACCOUNT {
            return Err(QueryError::limit_exceeded(format!(
                "Cannot exceed quota for OpenIdIdpsPerAccount: {PROVIDERS_PER_ACCOUNT}"
            )));
        }
        let mut xml = Xml::new();
        xml.leaf("OpenIDConnectProviderArn", &arn);
        if !tags.is_empty() {
            xml.tags("Tags", &tags);
        }
        acct.oidc_providers.insert(
            arn.clone(),
            OidcProvider {
                url: url.to_owned(),
                client_ids,
                thumbprints,
                create_date: iso_now(),
                tags,
            },
        );
        Ok(Some(xml.finish()))
    })
}

pub(crate) fn get(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    iam::read(shared, account, |acct| {
        let provider = provider(acct, arn)?;
        let mut xml = Xml::new();
        // IAM returns the URL without its scheme (`oidc.eks.…/id/…`).
        xml.leaf(
            "Url",
            provider
                .url
                .strip_prefix("https://")
                .unwrap_or(&provider.url),
        )
        .string_list(
            "ClientIDList",
            provider.client_ids.iter().map(String::as_str),
        )
        .string_list(
            "ThumbprintList",
            provider.thumbprints.iter().map(String::as_str),
        )
        .leaf("CreateDate", &provider.create_date);
        if !provider.tags.is_empty() {
            xml.tags("Tags", &provider.tags);
        }
        Ok(Some(xml.finish()))
    })
}

pub(crate) fn list(shared: &Shared, account: &str) -> Outcome {
    let arns: Vec<String> = iam::read(shared, account, |acct| {
        acct.oidc_providers.keys().cloned().collect()
    });
    let mut xml = Xml::new();
    xml.open("OpenIDConnectProviderList");
    for arn in &arns {
        xml.open("member").leaf("Arn", arn).close("member");
    }
    xml.close("OpenIDConnectProviderList");
    Ok(Some(xml.finish()))
}

pub(crate) fn delete(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    iam::write(shared, account, |acct| {
        acct.oidc_providers
            .remove(arn)
            .map(|_| None)
            .ok_or_else(|| no_such_provider(arn))
    })
}

pub(crate) fn tag(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    let tags = p.tags("Tags")?;
    iam::write(shared, account, |acct| {
        let provider = provider_mut(acct, arn)?;
        iam::merge_tags(&mut provider.tags, tags)?;
        Ok(None)
    })
}

pub(crate) fn untag(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    let keys = p.list("TagKeys");
    iam::write(shared, account, |acct| {
        let provider = provider_mut(acct, arn)?;
        for key in &keys {
            provider.tags.remove(key);
        }
        Ok(None)
    })
}

pub(crate) fn list_tags(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    let tags: Vec<(String, String)> = iam::read(shared, account, |acct| {
        Ok::<_, QueryError>(provider(acct, arn)?.tags.clone().into_iter().collect())
    })?;
    let (page, marker) = paginate(tags, |(k, _)| k.clone(), p)?;
    let mut xml = Xml::new();
    xml.tags("Tags", page.iter().map(|(k, v)| (k, v)))
        .paging(marker.as_deref());
    Ok(Some(xml.finish()))
}

pub(crate) fn add_client_id(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    let client_id = p.required("ClientID")?;
    validate_client_ids(&[client_id.to_owned()])?;
    iam::write(shared, account, |acct| {
        let provider = provider_mut(acct, arn)?;
        // Adding an id that is already there succeeds and changes nothing.
        if !provider.client_ids.iter().any(|c| c == client_id) {
            if provider.client_ids.len() >= 100 {
                return Err(QueryError::limit_exceeded(
                    "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100",
                ));
            }
            provider.client_ids.push(client_id.to_owned());
        }
        Ok(None)
    })
}

pub(crate) fn remove_client_id(shared: &Shared, account: &str, p: &Params) -> Outcome {
    let arn = p.required("OpenIDConnectProviderArn")?;
    let client_id = p.required("ClientID")?;
    iam::write(shared, account, |acct| {
        // Removing an absent id succeeds: the action is idempotent.
        provider_mut(acct, arn)?
            .client_ids
            .retain(|c| c != client_id);
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_drop_the_scheme() {
        assert_eq!(
            provider_arn(
                "111122223333",
                "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"
            ),
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
        );
    }

    #[test]
    fn urls_need_https_and_no_port_or_query() {
        assert!(validate_url("https://oidc.eks.us-east-1.amazonaws.com/id/ABC").is_ok());
        assert!(validate_url("https://issuer.example.com").is_ok());
        for bad in [
            "http://issuer.example.com",
            "https://",
            "https://issuer.example.com:8443/x",
            "https://issuer.example.com/x?a=b",
        ] {
            let e = validate_url(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "InvalidInput"), "{bad}");
        }
    }

    #[test]
    fn thumbprints_are_forty_hex_characters() {
        assert!(validate_thumbprints(&["9e99a48a9960b14926bb7f3b02e22da2b0ab7280".into()]).is_ok());
        assert!(validate_thumbprints(&["xyz".into()]).is_err());
        assert!(validate_thumbprints(&[]).is_ok());
    }
}
