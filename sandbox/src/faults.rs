//! Fault rules: what to inject (a [`FaultAction`]), into which requests (an API name
//! prefix, and optionally an object pattern), how often (a probability) and how many
//! times; and `DIR/faults.json`, the file that holds them.
//!
//! # `faults.json`
//!
//! Either a list of rules, or an object with a `seed` for the probabilities:
//!
//! ```json
//! {"seed": 7, "rules": [
//!   {"api": "iam:CreateRole", "action": "throttle", "times": 2},
//!   {"api": "k8s:", "object": "production/*", "action": "server-error", "probability": 0.05},
//!   {"api": "gcp:iam.serviceAccounts.create", "action": "lost-response"}
//! ]}
//! ```
//!
//! A rule's keys:
//!
//! - `api` (required): a prefix of the API name calls are counted under
//!   (`iam:CreateRole`, `eks:`, `k8s:patch serviceaccounts`, `gcp:iam.serviceAccounts.`,
//!   `azure:federatedIdentityCredentials.createOrUpdate`; `calls.json` lists them).
//! - `object`: the object the request names, as a substring or, with `*` or `?`, a glob
//!   that must match the whole object path or a `/`-separated tail of it (`orders-*`
//!   matches `eks-prod/production/orders-api`). Requests naming no object never match a
//!   rule with `object`. What the object is, per API: see the crate documentation.
//! - `action` (required) and its options: see [`FaultAction`].
//! - `probability`: the chance, in (0, 1], that a matching request is affected (default
//!   1). Decisions are a pure function of the seed, the rule and how many requests the rule
//!   saw, so the same calls in the same order are faulted the same way on every run.
//! - `times`: how many requests the rule affects, over all runs on the directory (the
//!   count of what each rule did is kept in `DIR/faults.used.json`; a rule whose text
//!   changes starts again from zero, and deleting that file resets them all).
//!
//! Unknown keys, and options of another action, are errors. `snake_case` action names
//! (`server_error`, `lost_response`, `limit_exceeded`) are accepted too.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What an injected fault does to a matching request. Errors take each API's own shape
/// (status, code, message, headers) so clients classify them as they would the real one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum FaultAction {
    /// Answer as the real API answers when it throttles (IAM `Throttling` 400, EKS
    /// `ThrottlingException` 429, Kubernetes 429 with Retry-After, GCP 429
    /// `RESOURCE_EXHAUSTED`, ARM 429 `SubscriptionRequestsThrottled` with Retry-After).
    Throttle,
    /// Answer 500 / `ServiceFailure` / InternalError (GCP: 503 `UNAVAILABLE`).
    #[serde(alias = "server_error")]
    ServerError,
    /// Answer 409 conflict (Kubernetes `Conflict`, IAM `ConcurrentModification`, EKS
    /// `ResourceInUseException`, GCP `ABORTED`, ARM's concurrent FIC writes error on
    /// federated credential writes).
    Conflict,
    /// Wait this many milliseconds, then go on. Latency rules add up, and the request can
    /// still meet another rule's fault.
    Latency {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Accept the request and never answer it: the connection stays open, silent, until
    /// the client gives up or the sandbox stops. Nothing is applied.
    Hang,
    /// Close the connection without answering. Nothing is applied.
    Drop,
    /// Carry out the request, send the status line, the headers (with the full
    /// `Content-Length`) and half of the body, then close the connection.
    Truncate,
    /// Carry out the request (a write is applied), then lose the answer: the client sees
    /// `response` instead and cannot know the write went through.
    #[serde(alias = "lost_response")]
    LostResponse {
        /// What the client gets instead of the answer.
        #[serde(default)]
        response: LostAs,
    },
    /// Refuse the credentials (Kubernetes, GCP and ARM answer 401; IAM and STS 403
    /// `InvalidClientTokenId`, EKS 403 `UnrecognizedClientException`, as AWS does).
    Unauthorized,
    /// Deny the call, naming the missing permission as the API does (IAM `AccessDenied`,
    /// EKS `AccessDeniedException`, Kubernetes RBAC `Forbidden`, GCP `PERMISSION_DENIED`,
    /// ARM `AuthorizationFailed`).
    Forbidden,
    /// Refuse the call for a quota (IAM `LimitExceeded` 409, EKS
    /// `ResourceLimitExceededException`, Kubernetes `exceeded quota`, GCP
    /// `RESOURCE_EXHAUSTED`, ARM `RoleAssignmentLimitExceeded` or the credential limit).
    #[serde(alias = "limit_exceeded")]
    LimitExceeded,
}

/// What a client gets when its answer is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LostAs {
    /// The API's server error (as [`FaultAction::ServerError`]).
    #[default]
    #[serde(alias = "server_error")]
    ServerError,
    /// The connection closes without an answer.
    Drop,
    /// The connection stays open and silent.
    Hang,
}

/// One fault rule in its simplest form: requests whose API name starts with `api` get
/// `action`, `times` times (for ever when `times` is absent). [`FaultRule`] adds object
/// matching and a probability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// API name prefix to match, e.g. `iam:CreateRole`, `iam:` or `k8s:apply`.
    pub api: String,
    /// What to do.
    #[serde(flatten)]
    pub action: FaultAction,
    /// How many matching requests are affected; `None` for all.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A fault rule (one entry of `faults.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// API name prefix to match.
    pub api: String,
    /// Object pattern to match (substring, or glob with `*` and `?`).
    pub object: Option<String>,
    /// What to do.
    pub action: FaultAction,
    /// The chance that a matching request is affected; `None` for always.
    pub probability: Option<f64>,
    /// How many requests are affected, over all runs; `None` for all.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule affecting every request whose API name starts with `api`.
    pub fn new(api: impl Into<String>, action: FaultAction) -> Self {
        Self {
            api: api.into(),
            object: None,
            action,
            probability: None,
            times: None,
        }
    }

    /// Only requests naming an object that matches `pattern`.
    pub fn object(mut self, pattern: impl Into<String>) -> Self {
        self.object = Some(pattern.into());
        self
    }

    /// Only a `p` share of matching requests (reproducible for a given seed).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// At most `n` requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Whether the rule applies to a call of `api` on `object` (`""` for none).
    pub fn matches(&self, api: &str, object: &str) -> bool {
        api.starts_with(&self.api)
            && self
                .object
                .as_deref()
                .is_none_or(|pattern| object_matches(pattern, object))
    }

    /// The rule as `faults.json` spells it, keys in a fixed order (also its identity in
    /// `faults.used.json`).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("api".into(), Value::from(self.api.clone()));
        if let Some(object) = &self.object {
            out.insert("object".into(), Value::from(object.clone()));
        }
        if let Ok(Value::Object(action)) = serde_json::to_value(&self.action) {
            out.extend(action);
        }
        if let Some(p) = self.probability {
            out.insert("probability".into(), Value::from(p));
        }
        if let Some(n) = self.times {
            out.insert("times".into(), Value::from(n));
        }
        Value::Object(out)
    }

    /// Parses one rule, refusing unknown keys and options of another action.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("a rule must be an object".into());
        };
        let mut action = Map::new();
        let mut rule = Self::new(String::new(), FaultAction::Throttle);
        let mut api = None;
        for (key, v) in map {
            match key.as_str() {
                "api" => api = Some(string(key, v)?),
                "object" => rule.object = Some(string(key, v)?),
                "probability" => {
                    let p = v
                        .as_f64()
                        .filter(|p| *p > 0.0 && *p <= 1.0)
                        .ok_or_else(|| {
                            format!("`probability` must be a number in (0, 1], not {v}")
                        })?;
                    rule.probability = Some(p);
                }
                "times" => {
                    let n = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("`times` must be a whole number, not {v}"))?;
                    rule.times = Some(n);
                }
                "action" | "ms" | "response" => {
                    action.insert(key.clone(), v.clone());
                }
                other => {
                    return Err(format!(
                        "unknown key `{other}` (a rule has api, object, action, probability, times, and ms for latency or response for lost-response)"
                    ));
                }
            }
        }
        rule.api = api.ok_or("`api` is missing")?;
        if !action.contains_key("action") {
            return Err("`action` is missing".into());
        }
        let parsed: FaultAction = serde_json::from_value(Value::Object(action.clone()))
            .map_err(|e| format!("`action`: {e}"))?;
        let allowed: &[&str] = match parsed {
            FaultAction::Latency { .. } => &["action", "ms"],
            FaultAction::LostResponse { .. } => &["action", "response"],
            _ => &["action"],
        };
        if let Some(extra) = action.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "`{extra}` is not an option of action `{}`",
                action["action"].as_str().unwrap_or_default()
            ));
        }
        rule.action = parsed;
        Ok(rule)
    }
}

fn string(key: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{key}` must be a string, not {v}"))
}

impl From<Fault> for FaultRule {
    fn from(fault: Fault) -> Self {
        Self {
            api: fault.api,
            object: None,
            action: fault.action,
            probability: None,
            times: fault.times,
        }
    }
}

impl Serialize for FaultRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FaultRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// The contents of `faults.json` (the crate documentation shows one rule per action).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultsFile {
    /// The seed of the probabilities (0 when absent).
    pub seed: u64,
    /// The rules, in order.
    pub rules: Vec<FaultRule>,
}

impl FaultsFile {
    /// Parses `faults.json`: a list of rules, or `{"seed": N, "rules": [...]}`. Errors
    /// name the rule (counted from 1).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let (seed, rules) = match value {
            Value::Array(rules) => (0, rules),
            Value::Object(mut map) => {
                if let Some(key) = map.keys().find(|k| *k != "seed" && *k != "rules") {
                    return Err(format!(
                        "unknown key `{key}` (expected a list of rules, or `seed` and `rules`)"
                    ));
                }
                let seed = match map.remove("seed") {
                    None => 0,
                    Some(v) => v
                        .as_u64()
                        .ok_or_else(|| format!("`seed` must be a whole number, not {v}"))?,
                };
                match map.remove("rules") {
                    Some(Value::Array(rules)) => (seed, rules),
                    _ => return Err("`rules` must be a list of rules".into()),
                }
            }
            _ => return Err("expected a list of rules, or `seed` and `rules`".into()),
        };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| FaultRule::from_json(r).map_err(|e| format!("rule {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Self { seed, rules })
    }
}

/// Whether `pattern` matches `object`: without `*` or `?`, as a substring; with them, as a
/// glob over the whole object or over any tail of it that starts after a `/`.
pub fn object_matches(pattern: &str, object: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return object.contains(pattern);
    }
    let tails =
        std::iter::once(object).chain(object.match_indices('/').map(|(i, _)| &object[i + 1..]));
    let pattern: Vec<char> = pattern.chars().collect();
    tails
        .map(|tail| tail.chars().collect::<Vec<char>>())
        .any(|tail| glob(&pattern, &tail))
}

/// Glob matching with `*` (any run, `/` included) and `?` (one character), iteratively
/// with backtracking to the last star: linear in practice, no recursion.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A number in [0, 1) drawn from `seed`, a rule's key and how many requests the rule saw:
/// splitmix64 over the three, so decisions are reproducible and independent per rule.
pub(crate) fn roll(seed: u64, rule: &str, n: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in rule.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut x = seed ^ h.rotate_left(17) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    // The top 53 bits, as a double in [0, 1).
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_old_list_shape_still_parses() {
        let file = FaultsFile::parse(
            br#"[{"api": "iam:CreateRole", "action": "throttle", "times": 4},
                 {"api": "iam:", "action": "latency", "ms": 5}]"#,
        )
        .expect("parses");
        assert_eq!(file.seed, 0);
        assert_eq!(
            file.rules,
            vec![
                FaultRule::new("iam:CreateRole", FaultAction::Throttle).times(4),
                FaultRule::new("iam:", FaultAction::Latency { ms: 5 }),
            ]
        );
    }

    #[test]
    fn every_action_parses_with_its_options() {
        let file = FaultsFile::parse(
            br#"{"seed": 9, "rules": [
                {"api": "a", "action": "hang"},
                {"api": "a", "action": "drop"},
                {"api": "a", "action": "truncate"},
                {"api": "a", "action": "lost-response"},
                {"api": "a", "action": "lost_response", "response": "drop"},
                {"api": "a", "action": "unauthorized"},
                {"api": "a", "action": "forbidden"},
                {"api": "a", "action": "limit_exceeded", "object": "orders-*", "probability": 0.5}
            ]}"#,
        )
        .expect("parses");
        assert_eq!(file.seed, 9);
        let actions: Vec<FaultAction> = file.rules.iter().map(|r| r.action.clone()).collect();
        assert_eq!(
            actions,
            vec![
                FaultAction::Hang,
                FaultAction::Drop,
                FaultAction::Truncate,
                FaultAction::LostResponse {
                    response: LostAs::ServerError
                },
                FaultAction::LostResponse {
                    response: LostAs::Drop
                },
                FaultAction::Unauthorized,
                FaultAction::Forbidden,
                FaultAction::LimitExceeded,
            ]
        );
        assert_eq!(file.rules[7].object.as_deref(), Some("orders-*"));
        assert_eq!(file.rules[7].probability, Some(0.5));
    }

    #[test]
    fn mistakes_are_named_with_the_rule() {
        let err = |text: &str| FaultsFile::parse(text.as_bytes()).expect_err(text);
        assert!(
            err(r#"[{"api": "a", "action": "throttle", "probabilty": 0.1}]"#)
                .starts_with("rule 1: unknown key `probabilty`")
        );
        assert_eq!(
            err(
                r#"[{"api": "a", "action": "throttle"}, {"api": "b", "action": "throttle", "ms": 3}]"#
            ),
            "rule 2: `ms` is not an option of action `throttle`"
        );
        assert!(err(r#"[{"api": "a", "action": "explode"}]"#).starts_with("rule 1: `action`:"));
        assert!(err(r#"[{"api": "a", "action": "latency"}]"#).starts_with("rule 1: `action`:"));
        assert_eq!(
            err(r#"[{"api": "a", "action": "drop", "probability": 1.5}]"#),
            "rule 1: `probability` must be a number in (0, 1], not 1.5"
        );
        assert_eq!(err(r#"[{"action": "drop"}]"#), "rule 1: `api` is missing");
        assert!(err(r#"{"seed": 1, "rulez": []}"#).starts_with("unknown key `rulez`"));
    }

    #[test]
    fn rules_print_as_they_parse() {
        let rule = FaultRule::new(
            "k8s:",
            FaultAction::LostResponse {
                response: LostAs::Hang,
            },
        )
        .object("prod/*")
        .probability(0.25)
        .times(3);
        let json = rule.to_json();
        assert_eq!(
            json,
            json!({"api": "k8s:", "object": "prod/*", "action": "lost-response",
                   "response": "hang", "probability": 0.25, "times": 3})
        );
        assert_eq!(FaultRule::from_json(&json), Ok(rule));
        let old: FaultRule = Fault {
            api: "iam:".into(),
            action: FaultAction::Conflict,
            times: Some(1),
        }
        .into();
        assert_eq!(old, FaultRule::new("iam:", FaultAction::Conflict).times(1));
    }

    #[test]
    fn objects_match_by_substring_or_by_glob_on_a_tail() {
        assert!(object_matches("orders", "eks-prod/production/orders-api"));
        assert!(!object_matches("billing", "eks-prod/production/orders-api"));
        assert!(object_matches("orders-*", "eks-prod/production/orders-api"));
        assert!(object_matches("orders-*", "orders-prod"));
        assert!(!object_matches(
            "orders-*",
            "eks-prod/production/my-orders-api"
        ));
        assert!(object_matches("production/*", "eks-prod/production/orders"));
        assert!(object_matches(
            "*/production/*",
            "eks-prod/production/orders"
        ));
        assert!(object_matches("orders-??", "orders-eu"));
        assert!(!object_matches("orders-??", "orders-eu1"));
        assert!(object_matches("*", ""));
        assert!(!object_matches("a", ""));
        let rule = FaultRule::new("iam:", FaultAction::Drop).object("orders-*");
        assert!(rule.matches("iam:CreateRole", "orders-prod"));
        assert!(!rule.matches("iam:CreateRole", "billing"));
        assert!(!rule.matches("iam:ListRoles", ""));
        assert!(!rule.matches("eks:DescribeCluster", "orders-prod"));
    }

    #[test]
    fn rolls_are_reproducible_and_spread() {
        let draws: Vec<f64> = (0..1000).map(|n| roll(7, "rule", n)).collect();
        assert_eq!(
            draws,
            (0..1000).map(|n| roll(7, "rule", n)).collect::<Vec<_>>()
        );
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let low = draws.iter().filter(|d| **d < 0.1).count();
        assert!((60..140).contains(&low), "{low} of 1000 under 0.1");
        assert_ne!(roll(7, "rule", 0), roll(8, "rule", 0));
        assert_ne!(roll(7, "rule", 0), roll(7, "other", 0));
    }
}
