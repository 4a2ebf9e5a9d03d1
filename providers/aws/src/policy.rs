//! IAM policy documents as data: normalization (so an unchanged policy never shows as a
//! change) and the trust policies wid writes for IRSA and EKS Pod Identity.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use wid_core::JsonText;

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
    normalize_policy_value(parsed)
}

/// [`normalize_policy`] of a document already parsed (or built) as JSON. Values are
/// normalized where they are, each object sorted and rebuilt once at its exact size, and
/// a set of plain strings sorted as strings (no text made per item).
pub fn normalize_policy_value(parsed: Value) -> Result<Value, String> {
    let Value::Object(mut obj) = parsed else {
        return Err("a policy must be a JSON object".into());
    };
    sort_exact(&mut obj);
    for (key, value) in obj.iter_mut() {
        if key == "Statement" {
            let list = match std::mem::take(value) {
                Value::Array(a) => a,
                v @ Value::Object(_) => vec![v],
                _ => return Err("\"Statement\" must be an object or a list of objects".into()),
            };
            let mut statements = Vec::with_capacity(list.len());
            for s in list {
                let Value::Object(s) = s else {
                    return Err("every statement must be a JSON object".into());
                };
                statements.push(normalize_statement(s));
            }
            // Sort by the canonical text so order never matters, then drop exact repeats
            // (one statement is already both).
            if statements.len() > 1 {
                statements = sorted_by_text(statements);
            }
            *value = Value::Array(statements);
        } else {
            canonical(value);
        }
    }
    Ok(Value::Object(obj))
}

fn normalize_statement(mut statement: Map<String, Value>) -> Value {
    sort_exact(&mut statement);
    for (key, value) in statement.iter_mut() {
        if SET_FIELDS.contains(&key.as_str()) {
            string_set(value);
        } else if key == "Principal" || key == "NotPrincipal" {
            match value {
                // "*" means everyone and has no list form.
                Value::Object(m) => map_of_sets(m),
                other => canonical(other),
            }
        } else if key == "Condition" {
            match value {
                Value::Object(ops) => {
                    sort_exact(ops);
                    for keys in ops.values_mut() {
                        match keys {
                            Value::Object(m) => map_of_sets(m),
                            other => canonical(other),
                        }
                    }
                }
                other => canonical(other),
            }
        } else {
            canonical(value);
        }
    }
    Value::Object(statement)
}

fn map_of_sets(m: &mut Map<String, Value>) {
    sort_exact(m);
    m.values_mut().for_each(string_set);
}

/// A string or a list of scalars becomes a sorted list without duplicates, in the order of
/// their JSON texts. Other values are kept (canonicalized): IAM would reject them, and the
/// diff should show them as is.
fn string_set(value: &mut Value) {
    if value.is_object() {
        return canonical(value);
    }
    let mut items = match std::mem::take(value) {
        Value::Array(a) => a,
        scalar => vec![scalar],
    };
    if items.iter().all(sorts_as_its_text) {
        items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        items.dedup();
    } else {
        items.iter_mut().for_each(canonical);
        items = sorted_by_text(items);
    }
    *value = Value::Array(items);
}

/// Canonical values sorted by their JSON text, exact repeats dropped.
fn sorted_by_text(items: Vec<Value>) -> Vec<Value> {
    let mut keyed: Vec<(String, Value)> = items
        .into_iter()
        .map(|v| {
            (
                serde_json::to_string(&v).expect("a JSON value always serializes"),
                v,
            )
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, v)| v).collect()
}

/// Whether a value is a string whose order among such strings is the order of its JSON
/// text: no byte that JSON escapes or that sorts before the closing quote (`"`, `\`, and
/// every byte up to `"`), so the text is the string in quotes and a prefix sorts first in
/// both.
fn sorts_as_its_text(value: &Value) -> bool {
    value.as_str().is_some_and(plain)
}

/// Whether a string sorts among such strings as its JSON text does (see
/// [`sorts_as_its_text`]).
fn plain(s: &str) -> bool {
    s.bytes().all(|b| b > b'"' && b != b'\\')
}

/// Sorts an object's keys (the workspace's serde_json preserves insertion order) into a
/// map of exactly their number: a parsed or built map holds up to three times the room it
/// needs, and a plan's policies stay in memory as long as the plan.
fn sort_exact(m: &mut Map<String, Value>) {
    m.sort_keys();
    *m = std::mem::take(m).into_iter().collect();
}

/// Sorts object keys recursively.
fn canonical(value: &mut Value) {
    match value {
        Value::Object(m) => {
            sort_exact(m);
            m.values_mut().for_each(canonical);
        }
        Value::Array(a) => a.iter_mut().for_each(canonical),
        _ => {}
    }
}

/// The policy language versions IAM accepts.
pub const POLICY_VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];
/// The elements a policy document may have.
const POLICY_KEYS: [&str; 3] = ["Version", "Id", "Statement"];
/// The elements a statement may have.
const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Checks an identity policy (an inline role policy) against IAM's grammar, as IAM
/// does before answering `MalformedPolicyDocument`: only `Version`, `Id` and `Statement`
/// at the top; `Version` "2012-10-17" or "2008-10-17"; every statement with only the
/// statement elements, an `Effect` of `Allow` or `Deny`, actions (`Action` or
/// `NotAction`, not both), resources (`Resource` or `NotResource`, not both) and no
/// principal (an identity policy applies to whoever holds it). `doc` is a parsed (or
/// [normalized](normalize_policy)) document.
pub fn check_identity_policy(doc: &Value) -> Result<(), String> {
    let Value::Object(obj) = doc else {
        return Err("a policy must be a JSON object".into());
    };
    if let Some(key) = obj.keys().find(|k| !POLICY_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown element {key:?}; a policy has only Version, Id and Statement"
        ));
    }
    match obj.get("Version") {
        None => {}
        Some(Value::String(v)) if POLICY_VERSIONS.contains(&v.as_str()) => {}
        Some(other) => {
            return Err(format!(
                "\"Version\" is {other}; IAM accepts only \"2012-10-17\" (current) or \"2008-10-17\""
            ));
        }
    }
    let statements = match obj.get("Statement") {
        None => return Err("the policy has no \"Statement\"".into()),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        Some(_) => return Err("\"Statement\" must be an object or a list of objects".into()),
    };
    for (i, statement) in statements.into_iter().enumerate() {
        let Value::Object(s) = statement else {
            return Err(format!("statement {i} is not a JSON object"));
        };
        let which = match s.get("Sid").and_then(Value::as_str) {
            Some(sid) => format!("statement {i} ({sid:?})"),
            None => format!("statement {i}"),
        };
        if let Some(key) = s.keys().find(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "{which} has unknown element {key:?}; a statement takes {}",
                STATEMENT_KEYS.join(", ")
            ));
        }
        match s.get("Effect") {
            Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
            Some(other) => {
                return Err(format!(
                    "{which} has \"Effect\": {other}; it must be \"Allow\" or \"Deny\""
                ));
            }
            None => return Err(format!("{which} has no \"Effect\"")),
        }
        if s.contains_key("Principal") || s.contains_key("NotPrincipal") {
            return Err(format!(
                "{which} names a principal; a role's own policy applies to the role and takes none"
            ));
        }
        for (one, not, what) in [
            ("Action", "NotAction", "actions"),
            ("Resource", "NotResource", "resources"),
        ] {
            match (s.contains_key(one), s.contains_key(not)) {
                (false, false) => {
                    return Err(format!("{which} must contain {what} (`{one}` or `{not}`)"));
                }
                (true, true) => {
                    return Err(format!("{which} has both `{one}` and `{not}`"));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The documented IRSA trust policy (one statement) for the OIDC provider `provider_arn`
/// of `issuer_host_path` (the issuer without `https://`): `sts:AssumeRoleWithWebIdentity`
/// with `StringEquals` on the audience and on the subjects. One subject is written as a
/// string, as in the EKS user guide; several as a list. [`normalize_policy`] of it is what
/// wid compiles for those subjects.
pub fn trust_policy_irsa(provider_arn: &str, issuer_host_path: &str, subjects: &[String]) -> Value {
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
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": equals},
        }],
    })
}

/// A trust policy of wid's statements ([`irsa_statement`], [`pod_identity_statement`]),
/// in normal form: the statements sorted by their text and without repeats.
pub(crate) fn trust_document(mut statements: Vec<String>) -> JsonText {
    statements.sort_unstable();
    statements.dedup();
    let mut t = Text::default();
    t.raw(r#"{"Statement":["#);
    for (i, s) in statements.iter().enumerate() {
        if i > 0 {
            t.raw(",");
        }
        t.raw(s);
    }
    t.raw(r#"],"Version":"2012-10-17"}"#);
    JsonText::written(t.finish())
}

/// The text of a JSON value in normal form, written directly: wid's trust statements
/// have a fixed shape, and a role's document is kept as text, so building a tree of small
/// maps only to write it out would cost a compile of thousands of roles most of its time.
/// Keys are written in order by the caller; strings as `serde_json` writes them.
#[derive(Default)]
struct Text(Vec<u8>);

impl Text {
    /// JSON punctuation and keys written as they are.
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// A JSON string.
    fn string(&mut self, s: &str) {
        self.string_of(s, "");
    }

    /// The JSON string of `head` followed by `tail` ([`wid_core::write_string`]).
    fn string_of(&mut self, head: &str, tail: &str) {
        wid_core::write_string(&mut self.0, head, tail);
    }

    /// A set of strings in normal form (see `string_set`): a list sorted by the items'
    /// JSON texts, without repeats.
    fn set<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        let mut items: Vec<&str> = items.into_iter().collect();
        self.raw("[");
        if items.iter().all(|s| plain(s)) {
            items.sort_unstable();
            items.dedup();
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    self.raw(",");
                }
                self.string(s);
            }
        } else {
            let mut quoted: Vec<Vec<u8>> = items
                .iter()
                .map(|s| serde_json::to_vec(s).expect("writing to memory cannot fail"))
                .collect();
            quoted.sort_unstable();
            quoted.dedup();
            self.0.extend_from_slice(&quoted.join(&b","[..]));
        }
        self.raw("]");
    }

    fn finish(self) -> String {
        String::from_utf8(self.0).expect("serde_json and the callers write UTF-8")
    }
}

/// wid's IRSA statement for the OIDC provider `provider_arn` of `issuer_host_path` (the
/// issuer without `https://`), as normal-form text: `sts:AssumeRoleWithWebIdentity` with
/// `StringEquals` on the audience and on the subjects.
pub(crate) fn irsa_statement<'a>(
    provider_arn: &str,
    issuer_host_path: &str,
    subjects: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut t = Text::default();
    t.raw(r#"{"Action":"#);
    t.set(["sts:AssumeRoleWithWebIdentity"]);
    t.raw(r#","Condition":{"StringEquals":{"#);
    // `…:aud` sorts before `…:sub`: the same prefix, then `a` before `s`.
    t.string_of(issuer_host_path, ":aud");
    t.raw(":");
    t.set([STS_AUDIENCE]);
    t.raw(",");
    t.string_of(issuer_host_path, ":sub");
    t.raw(":");
    t.set(subjects.into_iter().map(String::as_str));
    t.raw(r#"}},"Effect":"Allow","Principal":{"Federated":"#);
    t.set([provider_arn]);
    t.raw("}}");
    t.finish()
}

/// The EKS Pod Identity statement for the KSAs of one namespace in one cluster, as
/// normal-form text: the `pods.eks.amazonaws.com` service may assume and tag, only with
/// the session tags of that cluster, namespace and those service accounts. One statement
/// per (cluster, namespace) keeps the grant exact: a namespace list and a KSA list in one
/// statement would also allow every cross pair.
pub(crate) fn pod_identity_statement<'a>(
    cluster_arn: &str,
    namespace: &str,
    ksas: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut t = Text::default();
    t.raw(r#"{"Action":"#);
    t.set(["sts:AssumeRole", "sts:TagSession"]);
    t.raw(r#","Condition":{"StringEquals":{"aws:RequestTag/eks-cluster-arn":"#);
    t.set([cluster_arn]);
    t.raw(r#","aws:RequestTag/kubernetes-namespace":"#);
    t.set([namespace]);
    t.raw(r#","aws:RequestTag/kubernetes-service-account":"#);
    t.set(ksas.into_iter().map(String::as_str));
    t.raw(r#"}},"Effect":"Allow","Principal":{"Service":"#);
    t.set([POD_IDENTITY_PRINCIPAL]);
    t.raw("}}");
    t.finish()
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
    fn a_built_document_normalizes_as_its_text_does() {
        let statement =
            json!({"Resource": ["b", "a", "a"], "Effect": "Allow", "Action": "s3:GetObject"});
        for statements in [vec![statement.clone()], vec![statement.clone(), statement]] {
            let doc = json!({"Statement": statements, "Version": "2012-10-17"});
            let built = normalize_policy_value(doc.clone()).unwrap();
            assert_eq!(built, normalize_policy(&doc.to_string()).unwrap());
            assert_eq!(
                built.to_string(),
                r#"{"Statement":[{"Action":["s3:GetObject"],"Effect":"Allow","Resource":["a","b"]}],"Version":"2012-10-17"}"#
            );
        }
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

    /// The canonical text is what fingerprints hash: it must not change between versions
    /// of wid. Sets sort by their JSON text (`"ab "` before `"ab"`, since a space sorts
    /// before the closing quote), objects by key, statements by their text.
    #[test]
    fn the_canonical_text_is_stable() {
        let doc = r#"{"Version":"2012-10-17","Id":{"z":1,"a":[{"y":2,"b":3}]},"Statement":[
            {"Sid":"two","Effect":"Allow","Action":["s3:b","ab","ab ","ab!","a\"q","a\\s","A","ab"],
             "Resource":["arn:2",1,true,"arn:1"],"Principal":{"AWS":["r2","r1"],"Service":"s"},
             "Condition":{"StringLike":{"k2":["v2","v1"],"k1":"v"},"Bool":{"aws:SecureTransport":false}}},
            {"Effect":"Deny","NotAction":"iam:*","NotResource":{"b":1,"a":2},"Principal":"*"},
            {"Effect":"Deny","NotAction":"iam:*","NotResource":{"a":2,"b":1},"Principal":"*"}]}"#;
        let text = normalize_policy(doc).unwrap().to_string();
        assert_eq!(text, EXPECTED_CANONICAL);
    }

    const EXPECTED_CANONICAL: &str = r#"{"Id":{"a":[{"b":3,"y":2}],"z":1},"Statement":[{"Action":["A","a\"q","a\\s","ab ","ab!","ab","s3:b"],"Condition":{"Bool":{"aws:SecureTransport":[false]},"StringLike":{"k1":["v"],"k2":["v1","v2"]}},"Effect":"Allow","Principal":{"AWS":["r1","r2"],"Service":["s"]},"Resource":["arn:1","arn:2",1,true],"Sid":"two"},{"Effect":"Deny","NotAction":["iam:*"],"NotResource":{"a":2,"b":1},"Principal":"*"}],"Version":"2012-10-17"}"#;

    #[test]
    fn a_string_is_written_as_serde_json_writes_it() {
        for (head, tail) in [
            ("o.example/id/A", ":sub"),
            ("arn:aws:iam::1:role/x", ""),
            ("", ""),
            ("a b", ":aud"),
            ("a\"q", ":sub"),
            ("a", "\\b"),
            ("tab\there", ""),
            ("é/ü", "!"),
        ] {
            let mut t = Text::default();
            t.string_of(head, tail);
            let want = serde_json::to_string(&format!("{head}{tail}")).unwrap();
            assert_eq!(t.finish(), want, "{head:?} {tail:?}");
        }
    }

    #[test]
    fn wids_trust_statements_are_built_in_normal_form() {
        let subjects = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| (*s).into()).collect() };
        let provider = "arn:aws:iam::1:oidc-provider/o.example/id/A";
        let cluster = "arn:aws:eks:us-east-1:1:cluster/prod";
        for (irsa, pods) in [
            (vec!["system:serviceaccount:a:x"], vec!["orders"]),
            (
                vec!["system:serviceaccount:b:y", "system:serviceaccount:a:x"],
                vec!["z", "orders", "a b"],
            ),
            // Strings whose JSON text sorts otherwise than they do, and repeats.
            (
                vec![
                    "system:serviceaccount:a:x\"",
                    "system:serviceaccount:a:x",
                    "system:serviceaccount:a:x",
                ],
                vec!["a\\b", "a", "a!", "a\"", "a"],
            ),
        ] {
            let built = trust_document(vec![
                pod_identity_statement(cluster, "shop", &subjects(&pods)),
                irsa_statement(provider, "o.example/id/A", &subjects(&irsa)),
            ]);
            assert_eq!(
                built.as_str(),
                normalize_policy_value(built.value()).unwrap().to_string()
            );
            // The same as the documented form, and as the json! statements wid built before.
            let documented = trust_policy_irsa(
                provider,
                "o.example/id/A",
                &irsa.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            );
            let one = trust_document(vec![irsa_statement(
                provider,
                "o.example/id/A",
                &subjects(&irsa),
            )]);
            assert_eq!(one.value(), normalize_policy_value(documented).unwrap());
            let pods_json = json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {"StringEquals": {
                    "aws:RequestTag/eks-cluster-arn": cluster,
                    "aws:RequestTag/kubernetes-namespace": "shop",
                    "aws:RequestTag/kubernetes-service-account": pods,
                }},
            }]});
            let one = trust_document(vec![pod_identity_statement(
                cluster,
                "shop",
                &subjects(&pods),
            )]);
            assert_eq!(one.value(), normalize_policy_value(pods_json).unwrap());
        }
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
    fn identity_policies_follow_the_iam_grammar() {
        let ok = |doc: &str| check_identity_policy(&normalize_policy(doc).expect("JSON"));
        let allow = r#""Effect":"Allow","Action":"s3:GetObject","Resource":"*""#;
        assert_eq!(
            ok(&format!(
                r#"{{"Version":"2012-10-17","Statement":{{{allow}}}}}"#
            )),
            Ok(())
        );
        assert_eq!(
            ok(&format!(
                r#"{{"Version":"2008-10-17","Id":"x","Statement":[{{"Sid":"A",{allow}}}]}}"#
            )),
            Ok(())
        );
        assert_eq!(
            ok(r#"{"Statement":[{"Effect":"Deny","NotAction":"s3:*","NotResource":"x"}]}"#),
            Ok(())
        );
        for (bad, says) in [
            (
                format!(r#"{{"Version":"default","Statement":{{{allow}}}}}"#),
                "\"Version\" is \"default\"",
            ),
            (
                format!(r#"{{"Version":"2012-10-17","Statment":{{{allow}}}}}"#),
                "unknown element \"Statment\"",
            ),
            (r#"{"Version":"2012-10-17"}"#.into(), "no \"Statement\""),
            (
                r#"{"Statement":{"Effect":"allow","Action":"s3:*","Resource":"*"}}"#.into(),
                "\"Effect\": \"allow\"",
            ),
            (
                r#"{"Statement":{"Action":"s3:*","Resource":"*"}}"#.into(),
                "no \"Effect\"",
            ),
            (
                format!(r#"{{"Statement":{{{allow},"Actions":"x"}}}}"#),
                "unknown element \"Actions\"",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#.into(),
                "must contain actions",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*"}}"#.into(),
                "must contain resources",
            ),
            (
                format!(r#"{{"Statement":{{{allow},"NotAction":"x"}}}}"#),
                "both `Action` and `NotAction`",
            ),
            (
                format!(r#"{{"Statement":{{{allow},"Principal":"*"}}}}"#),
                "names a principal",
            ),
        ] {
            let e = ok(&bad).expect_err(&bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
