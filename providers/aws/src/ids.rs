//! Resource ids and ARNs of the objects this provider manages, and the way back from an
//! id to the names the APIs want.

use wid_core::ResourceId;

/// Kind of the IAM OIDC provider resource.
pub const KIND_OIDC: &str = "iam-oidc-provider";
/// Kind of the IAM role resource.
pub const KIND_ROLE: &str = "iam-role";
/// Kind of the EKS Pod Identity association resource.
pub const KIND_ASSOCIATION: &str = "eks-pod-identity-association";

/// The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The issuer without `https://` and without a trailing `/`: the IAM provider's name and
/// the prefix of its condition keys.
pub fn issuer_host_path(issuer: &str) -> &str {
    issuer
        .strip_prefix("https://")
        .unwrap_or(issuer)
        .trim_end_matches('/')
}

/// `aws/iam-oidc-provider/ACCOUNT/<issuer without https://>`. The issuer's `/`-separated
/// parts are separate key parts, so the id's text form parses back to an equal id.
pub fn oidc_id(account: &str, issuer: &str) -> ResourceId {
    let mut key = vec![account.to_owned()];
    key.extend(issuer_host_path(issuer).split('/').map(str::to_owned));
    ResourceId::new("aws", KIND_OIDC, key)
}

/// `aws/iam-role/ACCOUNT/NAME`.
pub fn role_id(account: &str, name: &str) -> ResourceId {
    ResourceId::new("aws", KIND_ROLE, [account, name])
}

/// `aws/eks-pod-identity-association/ACCOUNT/REGION/EKSCLUSTER/NS/KSA`.
pub fn association_id(
    account: &str,
    region: &str,
    cluster: &str,
    namespace: &str,
    ksa: &str,
) -> ResourceId {
    ResourceId::new(
        "aws",
        KIND_ASSOCIATION,
        [account, region, cluster, namespace, ksa],
    )
}

/// The account of any id of this provider (its first key part).
pub fn account_of(id: &ResourceId) -> &str {
    id.part(0)
}

/// The issuer host and path of an OIDC provider id.
pub fn oidc_host_path(id: &ResourceId) -> String {
    id.key()[1..].join("/")
}

/// The ARN of an OIDC provider id, in the `aws` partition unless `partition` says other.
pub fn oidc_arn(partition: &str, id: &ResourceId) -> String {
    format!(
        "arn:{partition}:iam::{}:oidc-provider/{}",
        account_of(id),
        oidc_host_path(id)
    )
}

/// A role's ARN (the path is part of it).
pub fn role_arn(partition: &str, account: &str, path: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role{path}{name}")
}

/// An EKS cluster's ARN.
pub fn cluster_arn(account: &str, region: &str, name: &str) -> String {
    format!(
        "arn:{}:eks:{region}:{account}:cluster/{name}",
        partition(region)
    )
}

/// The account and role name in a role ARN (`arn:aws:iam::111122223333:role/path/name`).
pub fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(":iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_and_name = resource.strip_prefix("role/")?;
    let name = path_and_name.rsplit('/').next()?;
    Some((account, name))
}

/// The account and issuer host/path in an OIDC provider ARN.
pub fn parse_oidc_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, rest) = rest.split_once(":iam::")?;
    let (account, resource) = rest.split_once(':')?;
    Some((account, resource.strip_prefix("oidc-provider/")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_ids_round_trip_through_text() {
        let id = oidc_id(
            "111122223333",
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC/",
        );
        assert_eq!(
            id.to_string(),
            "aws/iam-oidc-provider/111122223333/oidc.eks.us-east-1.amazonaws.com/id/ABC"
        );
        assert_eq!(ResourceId::try_from(id.to_string()).unwrap(), id);
        assert_eq!(
            oidc_arn("aws", &id),
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
        );
    }

    #[test]
    fn arns_parse() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::111122223333:role/team/a/orders"),
            Some(("111122223333", "orders"))
        );
        assert_eq!(
            parse_oidc_arn("arn:aws-cn:iam::1:oidc-provider/x.y/id/Z"),
            Some(("1", "x.y/id/Z"))
        );
        assert_eq!(role_arn("aws", "1", "/", "r"), "arn:aws:iam::1:role/r");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(
            cluster_arn("1", "us-east-1", "prod"),
            "arn:aws:eks:us-east-1:1:cluster/prod"
        );
    }
}
