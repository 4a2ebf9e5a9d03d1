//! IAM policy documents as data: normalization (so an unchanged policy never shows as a
//! change) and the trust policies wid writes for IRSA and EKS Pod Identity.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// The audience EKS pods request for IRSA tokens.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// The service principal EKS Pod Identity assumes roles as.
pub const POD_IDENTITY_PRINCIPAL: &str = "pods.eks.amazonaws.com";
/// IAM's default limit on a role's trust policy (characters, whitespace not counted).
pub const DEFAULT_TRUST_POLICY_LIMIT: usize = 2048;

/// Statement fields whose value is a set of strings that IAM accepts as one string or a
/// list.
const SET_FIELDS: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];

/// Parses a policy document into canonical form: URL-decoded if it is not JSON as is (IAM
/// returns documents URL-encoded), `Statement` always a list, every set-valued field (actions,
/// resources, principals, condition values) a sorted list without duplicates, object keys
/// sorted, and statements sorted and deduplicated. Two documents that IAM treats as equal
/// normalize to equal values.
pub fn normalize_policy(doc: &str) -> Result<Value, String> {
    let parsed: Value = match serde_json::from_str(doc) {
        Ok(v) => v,
        Err(first) => {
            let decoded = percent_encoding::percent_decode_str(doc)
                .decode_utf8()
                .map_err(|e| format!("not JSON ({first}) and not URL-encoded UTF-8 ({e})"))?;
            serde_json::from_str(&decoded).map_err(|e| format!("not JSON: {e}"))?
        }
    };
    let Value::Object(obj) = parsed else {
        return Err("a policy must be a JSON object".into());
    };
    let mut out = Map::new();
    for (key, value) in sorted(obj) {
        let value = if key == "Statement" {
            let list = match value {
                Value::Array(a) => a,
                Value::Object(_) => vec![value],
                _ => return Err("\"Statement\" must be an object or a list of objects".into()),
            };
            let mut statements = Vec::new();
            for s in list {
                let Value::Object(s) = s else {
                    return Err("every statement must be a JSON object".into());
                };
                statements.push(normalize_statement(s));
            }
            // Sort by the canonical text so order never matters, then drop exact repeats.
            let mut keyed: BTreeMap<String, Value> = BTreeMap::new();
            for s in statements {
                keyed.insert(s.to_string(), s);
            }
            Value::Array(keyed.into_values().collect())
        } else {
            canonical(value)
        };
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

fn normalize_statement(statement: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (key, value) in sorted(statement) {
        let value = if SET_FIELDS.contains(&key.as_str()) {
            string_set(value)
        } else if key == "Principal" || key == "NotPrincipal" {
            match value {
                // "*" means everyone and has no list form.
                Value::Object(m) => map_of_sets(m),
                other => canonical(other),
            }
        } else if key == "Condition" {
            match value {
                Value::Object(ops) => Value::Object(
                    sorted(ops)
                        .map(|(op, keys)| match keys {
                            Value::Object(m) => (op, map_of_sets(m)),
                            other => (op, canonical(other)),
                        })
                        .collect(),
                ),
                other => canonical(other),
            }
        } else {
            canonical(value)
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

fn map_of_sets(m: Map<String, Value>) -> Value {
    Value::Object(sorted(m).map(|(k, v)| (k, string_set(v))).collect())
}

/// A string or a list of scalars becomes a sorted list without duplicates. Other values
/// are kept (canonicalized): IAM would reject them, and the diff should show them as is.
fn string_set(value: Value) -> Value {
    let items = match value {
        Value::Array(a) => a,
        Value::Object(_) => return canonical(value),
        scalar => vec![scalar],
    };
    let mut set: BTreeMap<String, Value> = BTreeMap::new();
    for item in items {
        let item = canonical(item);
        set.insert(item.to_string(), item);
    }
    Value::Array(set.into_values().collect())
}

/// Sorts object keys recursively (the workspace's serde_json preserves insertion order).
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(sorted(m).map(|(k, v)| (k, canonical(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

fn sorted(m: Map<String, Value>) -> impl Iterator<Item = (String, Value)> {
    m.into_iter().collect::<BTreeMap<_, _>>().into_iter()
}

/// The length IAM counts for a policy quota: the compact JSON text, whitespace outside
/// strings not counted.
pub fn json_len_without_whitespace(doc: &Value) -> usize {
    serde_json::to_string(doc).map_or(0, |s| s.chars().count())
}

/// The documented IRSA trust policy (one statement) for the OIDC provider `provider_arn`
/// of `issuer_host_path` (the issuer without `https://`): `sts:AssumeRoleWithWebIdentity`
/// with `StringEquals` on the audience and on the subjects. One subject is written as a
/// string, as in the EKS user guide; several as a list.
pub fn trust_policy_irsa(provider_arn: &str, issuer_host_path: &str, subjects: &[String]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [irsa_statement(provider_arn, issuer_host_path, subjects)],
    })
}

pub(crate) fn irsa_statement(
    provider_arn: &str,
    issuer_host_path: &str,
    subjects: &[String],
) -> Value {
    let subjects: BTreeSet<&String> = subjects.iter().collect();
    let sub = if subjects.len() == 1 {
        json!(subjects.iter().next())
    } else {
        json!(subjects)
    };
    let mut equals = Map::new();
    equals.insert(format!("{issuer_host_path}:aud"), json!(STS_AUDIENCE));
    equals.insert(format!("{issuer_host_path}:sub"), sub);
    json!({
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": equals},
    })
}

/// The EKS Pod Identity statement for the KSAs of one namespace in one cluster: the
/// `pods.eks.amazonaws.com` service may assume and tag, only with the session tags of that
/// cluster, namespace and those service accounts. One statement per (cluster, namespace)
/// keeps the grant exact: a namespace list and a KSA list in one statement would also allow
/// every cross pair.
pub(crate) fn pod_identity_statement(cluster_arn: &str, namespace: &str, ksas: &[String]) -> Value {
    let ksas: BTreeSet<&String> = ksas.iter().collect();
    json!({
        "Effect": "Allow",
        "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:RequestTag/eks-cluster-arn": cluster_arn,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": ksas,
        }},
    })
}

/// The string items of a JSON array attribute (absent or not an array: none).
pub(crate) fn strings(v: Option<&Value>) -> std::collections::BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    const PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

    #[test]
    fn irsa_trust_is_the_documented_form() {
        // API-NOTES §2.3, from the EKS user guide.
        let documented: Value = serde_json::from_str(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
             "Principal":{{"Federated":"{PROVIDER}"}},
             "Action":"sts:AssumeRoleWithWebIdentity",
             "Condition":{{"StringEquals":{{
               "{ISSUER}:aud":"sts.amazonaws.com",
               "{ISSUER}:sub":"system:serviceaccount:production:orders"}}}}}}]}}"#
        ))
        .unwrap();
        let ours = trust_policy_irsa(
            PROVIDER,
            ISSUER,
            &["system:serviceaccount:production:orders".into()],
        );
        assert_eq!(ours, documented);
        let text = ours.to_string();
        assert!(!text.contains("StringLike"));
    }

    #[test]
    fn several_subjects_share_one_statement_with_a_sorted_list() {
        let t = trust_policy_irsa(
            PROVIDER,
            ISSUER,
            &[
                "system:serviceaccount:b:y".into(),
                "system:serviceaccount:a:x".into(),
            ],
        );
        assert_eq!(
            t["Statement"][0]["Condition"]["StringEquals"][format!("{ISSUER}:sub")],
            json!(["system:serviceaccount:a:x", "system:serviceaccount:b:y"])
        );
        assert_eq!(
            t["Statement"][0]["Condition"]["StringEquals"][format!("{ISSUER}:aud")],
            json!(STS_AUDIENCE)
        );
    }

    #[test]
    fn url_encoded_and_plain_documents_normalize_equal() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let encoded: String =
            percent_encoding::utf8_percent_encode(plain, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_ne!(plain, encoded);
        assert_eq!(
            normalize_policy(plain).unwrap(),
            normalize_policy(&encoded).unwrap()
        );
    }

    #[test]
    fn order_whitespace_and_single_strings_do_not_matter() {
        let a = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"*"},
            {"Effect":"Deny","Action":"iam:*","Resource":["*"],
             "Condition":{"StringEquals":{"aws:PrincipalTag/team":"orders"}}}]}"#;
        let b = r#"{ "Statement" : [
            { "Resource":["*"], "Action":"iam:*", "Effect":"Deny",
              "Condition":{"StringEquals":{"aws:PrincipalTag/team":["orders"]}} },
            { "Action":["s3:GetObject","s3:PutObject","s3:GetObject"], "Effect":"Allow", "Resource":"*" } ],
            "Version":"2012-10-17" }"#;
        assert_eq!(normalize_policy(a).unwrap(), normalize_policy(b).unwrap());
        // A single statement object is the same as a list of one.
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"x"}}}"#;
        let list = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole"],"Principal":{"Service":["x"]}}]}"#;
        assert_eq!(
            normalize_policy(one).unwrap(),
            normalize_policy(list).unwrap()
        );
    }

    #[test]
    fn different_policies_stay_different() {
        let a = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let b = r#"{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;
        assert_ne!(normalize_policy(a).unwrap(), normalize_policy(b).unwrap());
        assert_eq!(
            normalize_policy(r#"{"Principal":"*"}"#).unwrap(),
            json!({"Principal":"*"})
        );
    }

    #[test]
    fn non_policies_are_rejected() {
        assert!(normalize_policy("[1]").is_err());
        assert!(normalize_policy("{nope").is_err());
        assert!(normalize_policy(r#"{"Statement":"x"}"#).is_err());
    }

    #[test]
    fn size_ignores_whitespace() {
        let v = normalize_policy("{ \"Version\" : \"2012-10-17\" }").unwrap();
        assert_eq!(
            json_len_without_whitespace(&v),
            r#"{"Version":"2012-10-17"}"#.len()
        );
    }
}
