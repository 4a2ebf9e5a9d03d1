//! What a role's trust policy grants, read statement by statement, for `wid import`: the
//! KSAs it trusts through IRSA (per issuer) and through EKS Pod Identity (per cluster and
//! namespace), and every statement wid would not write. wid writes a role's trust from the
//! plan's KSAs, so import compares these grants with the KSAs it found and says exactly
//! what a plan would add or take away.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::policy::{POD_IDENTITY_PRINCIPAL, STS_AUDIENCE};

/// The grants of one trust policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Grants {
    /// Issuer host/path → the subjects trusted with `StringEquals` and the STS audience.
    pub irsa: BTreeMap<String, BTreeSet<String>>,
    /// (cluster ARN, namespace) → KSAs trusted through EKS Pod Identity's session tags.
    pub pods: BTreeMap<(String, String), BTreeSet<String>>,
    /// Every other statement, described in a few words.
    pub other: Vec<String>,
}

/// Reads the grants of a normalized trust policy (see [`crate::normalize_policy`]).
pub(crate) fn grants(trust: &Value) -> Grants {
    let mut out = Grants::default();
    for s in trust["Statement"].as_array().into_iter().flatten() {
        if let Some((host_path, subjects)) = irsa_grant(s) {
            out.irsa.entry(host_path).or_default().extend(subjects);
        } else if let Some((key, ksas)) = pod_grant(s) {
            out.pods.entry(key).or_default().extend(ksas);
        } else {
            out.other.push(describe(s));
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .or_else(|| v.as_str().map(|s| vec![s.to_owned()]))
        .unwrap_or_default()
}

/// Keys of an object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// An IRSA statement exactly as wid writes it: allow, one federated OIDC provider,
/// `sts:AssumeRoleWithWebIdentity`, and `StringEquals` on the audience and the subjects.
fn irsa_grant(s: &Value) -> Option<(String, BTreeSet<String>)> {
    if s["Effect"] != "Allow" || keys(s) != ["Action", "Condition", "Effect", "Principal"] {
        return None;
    }
    let federated = strings(&s["Principal"]["Federated"]);
    let [provider] = federated.as_slice() else {
        return None;
    };
    let (_, host_path) = crate::ids::parse_oidc_arn(provider)?;
    if keys(&s["Principal"]) != ["Federated"]
        || strings(&s["Action"]) != ["sts:AssumeRoleWithWebIdentity"]
        || keys(&s["Condition"]) != ["StringEquals"]
    {
        return None;
    }
    let equals = &s["Condition"]["StringEquals"];
    let (aud, sub) = (format!("{host_path}:aud"), format!("{host_path}:sub"));
    let mut want = [aud.as_str(), sub.as_str()];
    want.sort_unstable();
    if keys(equals) != want || strings(&equals[&aud]) != [STS_AUDIENCE] {
        return None;
    }
    Some((
        host_path.to_owned(),
        strings(&equals[&sub]).into_iter().collect(),
    ))
}

/// An EKS Pod Identity statement exactly as wid writes it: the pods service may assume and
/// tag, only with the session tags of one cluster and namespace and some KSAs.
fn pod_grant(s: &Value) -> Option<((String, String), BTreeSet<String>)> {
    if s["Effect"] != "Allow" || keys(s) != ["Action", "Condition", "Effect", "Principal"] {
        return None;
    }
    if strings(&s["Principal"]["Service"]) != [POD_IDENTITY_PRINCIPAL]
        || keys(&s["Principal"]) != ["Service"]
        || strings(&s["Action"]) != ["sts:AssumeRole", "sts:TagSession"]
        || keys(&s["Condition"]) != ["StringEquals"]
    {
        return None;
    }
    let equals = &s["Condition"]["StringEquals"];
    if keys(equals)
        != [
            "aws:RequestTag/eks-cluster-arn",
            "aws:RequestTag/kubernetes-namespace",
            "aws:RequestTag/kubernetes-service-account",
        ]
    {
        return None;
    }
    let [cluster] = strings(&equals["aws:RequestTag/eks-cluster-arn"])
        .try_into()
        .ok()?;
    let [namespace] = strings(&equals["aws:RequestTag/kubernetes-namespace"])
        .try_into()
        .ok()?;
    let ksas = strings(&equals["aws:RequestTag/kubernetes-service-account"]);
    Some(((cluster, namespace), ksas.into_iter().collect()))
}

/// A statement wid would not write, in a few words: who, and how.
fn describe(s: &Value) -> String {
    let principal = match &s["Principal"] {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {}", strings(v).join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
        Value::String(p) => p.clone(),
        _ => "no principal".to_owned(),
    };
    let actions = strings(&s["Action"]).join(", ");
    let effect = s["Effect"].as_str().unwrap_or("?");
    let conditions: Vec<String> = s["Condition"]
        .as_object()
        .map(|ops| {
            ops.iter()
                .map(|(op, m)| format!("{op} on {}", keys(m).join(", ")))
                .collect()
        })
        .unwrap_or_default();
    if conditions.is_empty() {
        format!("{effect} {actions} to {principal} with no condition")
    } else {
        format!(
            "{effect} {actions} to {principal} with {}",
            conditions.join(" and ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize_policy;

    const HP: &str = "oidc.eks.us-east-1.amazonaws.com/id/ABC";
    const PROVIDER: &str =
        "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";
    const CLUSTER: &str = "arn:aws:eks:us-east-1:111122223333:cluster/prod";

    fn doc(statements: Value) -> Value {
        normalize_policy(
            &serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
        )
        .unwrap()
    }

    #[test]
    fn wids_own_statements_are_read_back_as_grants() {
        let statements = [
            crate::policy::irsa_statement(
                PROVIDER,
                HP,
                &["system:serviceaccount:a:x", "system:serviceaccount:b:y"].map(String::from),
            ),
            crate::policy::pod_identity_statement(CLUSTER, "shop", &["orders".to_owned()]),
        ];
        let trust = doc(Value::Array(
            statements
                .iter()
                .map(|s| serde_json::from_str(s).unwrap())
                .collect(),
        ));
        let g = grants(&trust);
        assert_eq!(g.irsa[HP].len(), 2);
        assert_eq!(g.pods[&(CLUSTER.to_owned(), "shop".to_owned())].len(), 1);
        assert!(g.other.is_empty());
    }

    #[test]
    fn anything_wid_would_not_write_is_described() {
        let trust = doc(serde_json::json!([
            {"Effect": "Allow", "Principal": {"Federated": PROVIDER},
             "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringLike": {format!("{HP}:sub"): "system:serviceaccount:a:*"}}},
            {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
             "Action": ["sts:AssumeRole", "sts:TagSession"]},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
             "Action": "sts:AssumeRole"},
        ]));
        let g = grants(&trust);
        assert!(g.irsa.is_empty() && g.pods.is_empty());
        assert_eq!(g.other.len(), 3);
        let all = g.other.join("\n");
        assert!(all.contains("StringLike on"), "{all}");
        assert!(
            all.contains("pods.eks.amazonaws.com with no condition"),
            "{all}"
        );
        assert!(all.contains("AWS arn:aws:iam::444455556666:root"), "{all}");
    }

    #[test]
    fn an_irsa_statement_without_the_audience_is_not_wids() {
        let trust = doc(serde_json::json!([
            {"Effect": "Allow", "Principal": {"Federated": PROVIDER},
             "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringEquals": {format!("{HP}:sub"): "system:serviceaccount:a:x"}}},
        ]));
        assert_eq!(grants(&trust).other.len(), 1);
    }
}
