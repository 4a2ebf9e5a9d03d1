//! EKS tagging: `TagResource` (`POST /tags/{resourceArn}`), `UntagResource`
//! (`DELETE /tags/{resourceArn}?tagKeys=…`) and `ListTagsForResource`
//! (`GET /tags/{resourceArn}`), on the two kinds of resource the sandbox holds: clusters
//! and Pod Identity associations. The tags live on those resources, so `DescribeCluster`
//! and `DescribePodIdentityAssociation` show them.
//!
//! Unlike the cluster and Pod Identity operations, these three declare
//! `BadRequestException` (400) and `NotFoundException` (404) in the EKS model; the SDKs
//! decode only those into their typed errors, so that is what the sandbox answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::caller::Caller;
use super::eks::{EksError, EksResult, admit};
use super::model::EksCluster;
use crate::Shared;

/// Tags per resource, and keys per `UntagResource` (the EKS model's bounds).
const MAX_TAGS: usize = 50;
/// Characters per tag key.
const MAX_KEY_LEN: usize = 128;
/// Characters per tag value.
const MAX_VALUE_LEN: usize = 256;

type Tags = BTreeMap<String, String>;

/// The resource an EKS ARN names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `…:cluster/NAME`.
    Cluster { cluster: &'a str },
    /// `…:podidentityassociation/CLUSTER/ID`.
    Association { cluster: &'a str, id: &'a str },
    /// A well-formed EKS ARN of a kind the sandbox never holds (node groups, add-ons, …):
    /// it exists nowhere, which is a 404, not a malformed request.
    Other,
}

/// The body of `TagResource`.
#[derive(Debug, Deserialize)]
struct TagBody {
    tags: Option<Tags>,
}

fn bad_request(message: impl Into<String>) -> EksError {
    EksError {
        status: StatusCode::BAD_REQUEST,
        code: "BadRequestException",
        message: message.into(),
    }
}

fn not_found(arn: &str) -> EksError {
    EksError {
        status: StatusCode::NOT_FOUND,
        code: "NotFoundException",
        message: format!("No resource found for ARN: {arn}."),
    }
}

/// Splits `arn:PARTITION:eks:REGION:ACCOUNT:TYPE/…`. Partition, region and account are
/// only checked for shape: the resource's stored ARN must equal the whole ARN anyway.
fn parse_arn(arn: &str) -> Result<Target<'_>, EksError> {
    let invalid = || bad_request(format!("{arn} is not a valid EKS resource ARN."));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "eks", region, account, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if partition.is_empty() || region.is_empty() || !account_ok {
        return Err(invalid());
    }
    let segments: Vec<&str> = resource.split('/').collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return Err(invalid());
    }
    Ok(match segments.as_slice() {
        ["cluster", cluster] => Target::Cluster { cluster },
        ["podidentityassociation", cluster, id] => Target::Association { cluster, id },
        _ => Target::Other,
    })
}

fn check_tags(tags: &Tags) -> Result<(), EksError> {
    if tags.is_empty() {
        return Err(bad_request("tags must be specified."));
    }
    if tags.len() > MAX_TAGS {
        return Err(bad_request(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    for (key, value) in tags {
        check_key(key)?;
        if value.chars().count() > MAX_VALUE_LEN {
            return Err(bad_request(format!(
                "The value of tag {key} is longer than {MAX_VALUE_LEN} characters."
            )));
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), EksError> {
    let len = key.chars().count();
    if !(1..=MAX_KEY_LEN).contains(&len) {
        return Err(bad_request(format!(
            "Tag keys must be 1 to {MAX_KEY_LEN} characters long: {key:?}."
        )));
    }
    // AWS reserves the prefix in any case for its own tags.
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(bad_request(format!(
            "Tag key {key} uses the reserved prefix aws:."
        )));
    }
    Ok(())
}

/// The repeated `tagKeys` query parameter (`?tagKeys=a&tagKeys=b`), which a map-shaped
/// query extractor would collapse to one key.
fn tag_keys(query: Option<&str>) -> Result<Vec<String>, EksError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| bad_request(format!("The query string is not valid: {e}")))?;
    let keys: Vec<String> = pairs
        .into_iter()
        .filter(|(name, _)| name == "tagKeys")
        .map(|(_, key)| key)
        .collect();
    if keys.is_empty() {
        return Err(bad_request("tagKeys must be specified."));
    }
    if keys.len() > MAX_TAGS {
        return Err(bad_request(format!(
            "At most {MAX_TAGS} tagKeys can be removed at once."
        )));
    }
    for key in &keys {
        check_key(key)?;
    }
    Ok(keys)
}

fn parse_body(body: &[u8]) -> Result<TagBody, EksError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("The request body is not valid: {e}")))
}

/// The tags of `target` within its cluster, if the resource there has exactly `arn`.
fn tags_in<'c>(cluster: &'c EksCluster, target: &Target<'_>, arn: &str) -> Option<&'c Tags> {
    match target {
        Target::Cluster { .. } => (cluster.arn == arn).then_some(&cluster.tags),
        Target::Association { id, .. } => cluster
            .pod_identity_associations
            .get(*id)
            .filter(|a| a.association_arn == arn)
            .map(|a| &a.tags),
        Target::Other => None,
    }
}

fn tags_in_mut<'c>(
    cluster: &'c mut EksCluster,
    target: &Target<'_>,
    arn: &str,
) -> Option<&'c mut Tags> {
    match target {
        Target::Cluster { .. } => (cluster.arn == arn).then_some(&mut cluster.tags),
        Target::Association { id, .. } => cluster
            .pod_identity_associations
            .get_mut(*id)
            .filter(|a| a.association_arn == arn)
            .map(|a| &mut a.tags),
        Target::Other => None,
    }
}

fn cluster_name<'a>(target: &Target<'a>) -> Option<&'a str> {
    match target {
        Target::Cluster { cluster } | Target::Association { cluster, .. } => Some(*cluster),
        Target::Other => None,
    }
}

/// Runs `f` on a copy of the caller's tags of `arn`, or answers `NotFoundException`.
///
/// The lookup is by the caller's account and region, then the stored ARN must match in
/// full, so an ARN of another account, region or partition is not found.
fn read_tags<R>(
    shared: &Shared,
    caller: &Caller,
    arn: &str,
    target: &Target<'_>,
    f: impl FnOnce(&Tags) -> R,
) -> Result<R, EksError> {
    let name = cluster_name(target).ok_or_else(|| not_found(arn))?;
    shared.read(|state| {
        state
            .aws
            .accounts
            .get(&caller.account)
            .and_then(|acct| acct.eks.get(&caller.region))
            .and_then(|clusters| clusters.get(name))
            .and_then(|cluster| tags_in(cluster, target, arn))
            .map(f)
            .ok_or_else(|| not_found(arn))
    })
}

/// Changes the caller's tags of `arn` with `f`, or answers `NotFoundException`.
fn write_tags(
    shared: &Shared,
    caller: &Caller,
    arn: &str,
    target: &Target<'_>,
    f: impl FnOnce(&mut Tags) -> Result<(), EksError>,
) -> Result<(), EksError> {
    // Only writes persist, so look first and take the write lock only for a resource
    // that exists.
    read_tags(shared, caller, arn, target, |_| ())?;
    let name = cluster_name(target).ok_or_else(|| not_found(arn))?;
    shared.write(|state| {
        let tags = state
            .aws
            .accounts
            .get_mut(&caller.account)
            .and_then(|acct| acct.eks.get_mut(&caller.region))
            .and_then(|clusters| clusters.get_mut(name))
            .and_then(|cluster| tags_in_mut(cluster, target, arn))
            .ok_or_else(|| not_found(arn))?;
        f(tags)
    })
}

/// `POST /tags/{resourceArn}` with `{"tags": {…}}`: adds or overwrites those tags.
pub(crate) async fn tag(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(arn): Path<String>,
    body: Bytes,
) -> EksResult {
    admit(&shared, &headers, "TagResource", &arn).await?;
    let caller = Caller::from_headers(&headers);
    let target = parse_arn(&arn)?;
    let new = parse_body(&body)?.tags.unwrap_or_default();
    check_tags(&new)?;
    write_tags(&shared, &caller, &arn, &target, |tags| {
        let mut merged = tags.clone();
        merged.extend(new);
        // The bound is on the result, so it is checked only once the existing tags are
        // known, and nothing is changed when it is exceeded.
        if merged.len() > MAX_TAGS {
            return Err(bad_request(format!(
                "A resource can have at most {MAX_TAGS} tags."
            )));
        }
        *tags = merged;
        Ok(())
    })?;
    Ok(Json(json!({})))
}

/// `DELETE /tags/{resourceArn}?tagKeys=…`: removes those keys; absent keys are no error.
pub(crate) async fn untag(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> EksResult {
    admit(&shared, &headers, "UntagResource", &arn).await?;
    let caller = Caller::from_headers(&headers);
    let target = parse_arn(&arn)?;
    let keys = tag_keys(query.as_deref())?;
    write_tags(&shared, &caller, &arn, &target, |tags| {
        for key in &keys {
            tags.remove(key);
        }
        Ok(())
    })?;
    Ok(Json(json!({})))
}

/// `GET /tags/{resourceArn}`: `{"tags": {…}}`, empty when the resource has none.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(arn): Path<String>,
) -> EksResult {
    admit(&shared, &headers, "ListTagsForResource", &arn).await?;
    let caller = Caller::from_headers(&headers);
    let target = parse_arn(&arn)?;
    let tags = read_tags(&shared, &caller, &arn, &target, Tags::clone)?;
    Ok(Json(json!({ "tags": tags })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_clusters_and_associations() {
        assert_eq!(
            parse_arn("arn:aws:eks:us-east-1:111122223333:cluster/dev").unwrap(),
            Target::Cluster { cluster: "dev" }
        );
        assert_eq!(
            parse_arn("arn:aws:eks:us-east-1:111122223333:podidentityassociation/dev/a-1").unwrap(),
            Target::Association {
                cluster: "dev",
                id: "a-1"
            }
        );
        assert_eq!(
            parse_arn("arn:aws-cn:eks:cn-north-1:111122223333:nodegroup/dev/ng/x").unwrap(),
            Target::Other
        );
    }

    #[test]
    fn malformed_arns_are_bad_requests() {
        for arn in [
            "dev",
            "arn:aws:iam::111122223333:role/x",
            "arn:aws:eks:us-east-1:1111:cluster/dev",
            "arn:aws:eks::111122223333:cluster/dev",
            "arn:aws:eks:us-east-1:111122223333:cluster",
            "arn:aws:eks:us-east-1:111122223333:cluster/",
            "arn:aws:eks:us-east-1:111122223333:podidentityassociation/dev//a-1",
        ] {
            let e = parse_arn(arn).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "BadRequestException"),
                "{arn}"
            );
        }
    }

    #[test]
    fn tags_are_bounded() {
        let one = |k: &str, v: &str| Tags::from([(k.to_owned(), v.to_owned())]);
        assert!(check_tags(&one("team", "")).is_ok());
        assert!(check_tags(&Tags::new()).is_err());
        assert!(check_tags(&one("", "v")).is_err());
        assert!(check_tags(&one(&"k".repeat(129), "v")).is_err());
        assert!(check_tags(&one("k", &"v".repeat(257))).is_err());
        assert!(check_tags(&one("AWS:x", "v")).is_err());
        let many: Tags = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_tags(&many).is_err());
    }

    #[test]
    fn tag_keys_repeat_and_are_required() {
        assert_eq!(
            tag_keys(Some("tagKeys=a&tagKeys=b%20c&other=x")).unwrap(),
            ["a", "b c"]
        );
        assert!(tag_keys(None).is_err());
        assert!(tag_keys(Some("keys=a")).is_err());
        assert!(tag_keys(Some("tagKeys=")).is_err());
    }
}
