//! The `aws` block of a workload (its serde and JSON Schema types) and the checks that
//! need nothing but the block itself: names, ARNs, policy JSON, quotas.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use wid_core::{AttrMap, JsonText};

use crate::policy::{check_identity_policy, normalize_policy};

/// IAM's default quota of managed policies attached to one role.
pub const MANAGED_POLICY_QUOTA: usize = 10;
/// IAM's limit on the aggregate size of a role's inline policies (whitespace not counted).
pub const INLINE_POLICY_AGGREGATE_LIMIT: usize = 10_240;
/// The largest inline policy file wid reads: IAM allows 10,240 characters of inline
/// policy per role (whitespace not counted), so a readable file is far below this even
/// pretty-printed.
pub const POLICY_FILE_LIMIT: u64 = 256 * 1024;
/// IAM's limit on tags per resource; wid's own tags count against it.
pub const TAG_QUOTA: usize = 50;
/// The tags wid itself always sets on a role: the two ownership marks and the applied
/// record (the tag-key record adds one or more when the role has tags).
const WID_TAGS: [&str; 3] = [
    wid_core::MANAGED_BY_KEY,
    wid_core::PLAN_KEY,
    wid_core::APPLIED_KEY,
];

/// How pods of this workload get the role's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// IAM Roles for Service Accounts: an IAM OIDC provider for the cluster's issuer, a
    /// role that trusts it for this KSA, and the `eks.amazonaws.com/role-arn` annotation.
    #[default]
    Irsa,
    /// EKS Pod Identity: a role that trusts `pods.eks.amazonaws.com`, and an EKS Pod
    /// Identity association (cluster, namespace, KSA, role). No KSA annotation.
    PodIdentity,
}

/// An inline policy document: the JSON itself, or a file holding it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum InlinePolicy {
    /// The policy JSON as a string.
    Json(String),
    /// A file holding the policy JSON.
    File {
        /// Path of the JSON file, relative to the plan file that names it.
        file: PathBuf,
    },
}

impl InlinePolicy {
    /// The policy text, reading the file (relative to `plan_dir`) if it is one. Only a
    /// regular file of at most [`POLICY_FILE_LIMIT`] bytes is read: `/dev/zero`, a FIFO, a
    /// directory or a huge file is an error, never a hang or an endless read.
    pub fn text(&self, plan_dir: &Path) -> Result<std::borrow::Cow<'_, str>, String> {
        match self {
            Self::Json(s) => Ok(s.into()),
            Self::File { file } => {
                let path = plan_dir.join(file);
                wid_core::read_referenced_file(&path, POLICY_FILE_LIMIT)
                    .map(Into::into)
                    .map_err(|e| format!("cannot use policy file: {e}"))
            }
        }
    }
}

/// The AWS side of a workload: the IAM role its pods act as, and how.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsBlock {
    /// The IAM role's name (1-64 characters of letters, digits and `+=,.@_-`).
    pub role: String,
    /// The account that holds the role (12 digits); defaults to the cluster's account.
    /// Cross-account roles get their own IAM OIDC provider for the cluster's issuer.
    #[serde(default)]
    pub account: Option<String>,
    /// `irsa` (default) or `pod-identity`.
    #[serde(default)]
    pub mechanism: Mechanism,
    /// ARNs of managed policies to attach (at most 10, IAM's default quota).
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// Inline policies by name: a JSON string, or `{ file = "policies/x.json" }` relative
    /// to the plan file.
    #[serde(default)]
    pub inline_policies: AttrMap<InlinePolicy>,
    /// ARN of a managed policy to set as the role's permissions boundary.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    /// Maximum session duration in seconds, 3600-43200 (default 3600).
    #[serde(default)]
    pub max_session_duration: Option<u32>,
    /// The role's IAM path, `/` (default) or `/a/b/`. IAM cannot change it in place.
    #[serde(default)]
    pub path: Option<String>,
    /// Tags to set on the role (besides wid's own ownership tags).
    #[serde(default)]
    pub tags: AttrMap<String>,
    /// Take over an existing role that wid did not create; without it such a role is a
    /// conflict.
    #[serde(default)]
    pub adopt: bool,
    /// The inline policies in normal form, once validation has read them all.
    #[serde(skip)]
    #[schemars(skip)]
    pub normalized: Normalized,
}

/// A block's inline policies in normal form, as [`validate_block`] computed them: the
/// first compile takes them from here instead of reading each policy (and its file) and
/// normalizing it a second time, so validation and that compile see the same text; a
/// later compile of the same block reads them again. Taken, not kept: a plan of 100,000
/// workloads would otherwise hold every document twice. Not part of what the block says:
/// blocks compare equal with or without it, and it prints as `_`.
#[derive(Default)]
pub struct Normalized(Mutex<Option<AttrMap<JsonText>>>);

impl Normalized {
    fn set(&self, docs: AttrMap<JsonText>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(docs);
    }

    /// The policies by name, if validation found every one of them valid and no compile
    /// took them yet.
    pub fn take(&self) -> Option<AttrMap<JsonText>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Whether validation left the policies here.
    pub fn is_set(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl Clone for Normalized {
    fn clone(&self) -> Self {
        Self(Mutex::new(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        ))
    }
}

impl PartialEq for Normalized {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Normalized {}

impl std::fmt::Debug for Normalized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

impl AwsBlock {
    /// The role's path, `/` when unset.
    pub fn path_or_default(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }

    /// The maximum session duration, 3600 when unset.
    pub fn max_session_or_default(&self) -> u32 {
        self.max_session_duration.unwrap_or(3600)
    }
}

/// An EKS cluster as the AWS provider needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksCluster {
    /// The plan's name for the cluster.
    pub plan_name: String,
    /// The account that holds the cluster.
    pub account: String,
    /// The cluster's region.
    pub region: String,
    /// The EKS cluster name.
    pub eks_name: String,
    /// The OIDC issuer URL (`https://oidc.eks.REGION.amazonaws.com/id/ID`); discovered
    /// with `eks:DescribeCluster` when the plan does not set it.
    pub issuer: Option<String>,
}

pub use wid_core::FieldIssue;

static ROLE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_+=,.@-]+$").expect("static regex is valid"));
static ACCOUNT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]{12}$").expect("static regex is valid"));
static POLICY_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws(-cn|-us-gov)?:iam::(aws|[0-9]{12}):policy/([\x21-\x7E]*/)?[A-Za-z0-9_+=,.@-]{1,128}$",
    )
    .expect("static regex is valid")
});
static ROLE_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/([\x21-\x7E]+/)?$").expect("static regex is valid"));
static TAG_CHARS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").expect("static regex is valid"));

/// Whether every character is one IAM allows in tags (letters, digits and spaces of any
/// script, `_.:/=+-@`). ASCII text, nearly every tag, is checked without building the
/// Unicode automaton.
fn tag_chars_ok(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _.:/=+-@".contains(&b))
    } else {
        TAG_CHARS.is_match(s)
    }
}

/// Why a role name is invalid, or `None`.
pub fn role_name_issue(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("role name must not be empty".into());
    }
    if name.len() > 64 {
        return Some(format!(
            "role name {name:?} is {} characters; IAM allows at most 64",
            name.len()
        ));
    }
    if !ROLE_NAME.is_match(name) {
        return Some(format!(
            "role name {name:?} may contain only letters, digits and +=,.@_-"
        ));
    }
    None
}

/// Whether `s` is a managed-policy ARN (`arn:aws:iam::aws:policy/NAME`,
/// `arn:aws:iam::123456789012:policy/path/NAME`).
pub fn is_policy_arn(s: &str) -> bool {
    POLICY_ARN.is_match(s)
}

/// Checks everything about one block that needs no other block and no network: name
/// rules, ARN shapes, policy JSON, the managed-policy quota, tags. Reads inline policy
/// files relative to `plan_dir`. Returns every issue found, in field order.
pub fn validate_block(block: &AwsBlock, plan_dir: &Path) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    if let Some(why) = role_name_issue(&block.role) {
        issues.push(FieldIssue::new(&["role"], why));
    }
    if let Some(account) = &block.account
        && !ACCOUNT.is_match(account)
    {
        issues.push(FieldIssue::new(
            &["account"],
            format!("account {account:?} must be 12 digits"),
        ));
    }
    check_managed_policies(block, &mut issues);
    check_inline_policies(block, plan_dir, &mut issues);
    if let Some(arn) = &block.permissions_boundary
        && !is_policy_arn(arn)
    {
        issues.push(
            FieldIssue::new(
                &["permissions_boundary"],
                format!("{arn:?} is not a managed policy ARN"),
            )
            .help("use the form arn:aws:iam::123456789012:policy/NAME"),
        );
    }
    if let Some(secs) = block.max_session_duration
        && !(3600..=43_200).contains(&secs)
    {
        issues.push(FieldIssue::new(
            &["max_session_duration"],
            format!("{secs} is out of range; IAM allows 3600 to 43200 seconds"),
        ));
    }
    if let Some(path) = &block.path
        && (path.len() > 512 || !ROLE_PATH.is_match(path))
    {
        issues.push(
            FieldIssue::new(&["path"], format!("{path:?} is not an IAM path"))
                .help("a path starts and ends with '/', e.g. \"/\" or \"/workloads/\""),
        );
    }
    check_tags(block, &mut issues);
    issues
}

fn check_managed_policies(block: &AwsBlock, issues: &mut Vec<FieldIssue>) {
    let mut seen = BTreeSet::new();
    for (i, arn) in block.managed_policies.iter().enumerate() {
        let index = i.to_string();
        if !is_policy_arn(arn) {
            issues.push(
                FieldIssue::new(
                    &["managed_policies", &index],
                    format!("{arn:?} is not a managed policy ARN"),
                )
                .help("use the form arn:aws:iam::aws:policy/NAME or arn:aws:iam::123456789012:policy/NAME"),
            );
        } else if !seen.insert(arn) {
            issues.push(FieldIssue::new(
                &["managed_policies", &index],
                format!("{arn} is listed twice"),
            ));
        }
    }
    if block.managed_policies.len() > MANAGED_POLICY_QUOTA {
        issues.push(
            FieldIssue::new(
                &["managed_policies"],
                format!(
                    "{} managed policies exceed IAM's quota of {MANAGED_POLICY_QUOTA} per role",
                    block.managed_policies.len()
                ),
            )
            .help("merge policies into fewer managed or inline policies, or raise the quota and split the role"),
        );
    }
}

fn check_inline_policies(block: &AwsBlock, plan_dir: &Path, issues: &mut Vec<FieldIssue>) {
    let mut total = 0;
    let mut docs = AttrMap::new();
    let mut all_read = true;
    for (name, policy) in &block.inline_policies {
        let path = ["inline_policies", name.as_str()];
        if name.is_empty() || name.len() > 128 || !ROLE_NAME.is_match(name) {
            issues.push(FieldIssue::new(
                &path,
                format!("policy name {name:?} must be 1-128 letters, digits and +=,.@_-"),
            ));
        }
        let text = match policy.text(plan_dir) {
            Ok(t) => t,
            Err(e) => {
                issues.push(FieldIssue::new(&path, e));
                all_read = false;
                continue;
            }
        };
        match normalize_policy(&text) {
            Ok(doc) => {
                // Held as text, whose characters are what IAM counts (serde_json writes
                // no whitespace).
                let text = JsonText::new(&doc);
                total += text.as_str().chars().count();
                if let Err(e) = check_identity_policy(&doc) {
                    issues.push(
                        FieldIssue::new(&path, format!("policy {name:?} would be refused by IAM: {e}"))
                            .help("see the IAM JSON policy elements reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html"),
                    );
                }
                docs.insert(name.clone(), text);
            }
            Err(e) => {
                all_read = false;
                issues.push(
                    FieldIssue::new(&path, format!("policy {name:?} is not a valid policy: {e}"))
                        .help("an IAM policy is a JSON object with \"Version\" and \"Statement\""),
                );
            }
        }
    }
    if all_read {
        block.normalized.set(docs);
    }
    if total > INLINE_POLICY_AGGREGATE_LIMIT {
        issues.push(FieldIssue::new(
            &["inline_policies"],
            format!(
                "inline policies total {total} characters; IAM allows {INLINE_POLICY_AGGREGATE_LIMIT} per role (whitespace not counted)"
            ),
        ).help("move some statements into managed policies"));
    }
}

fn check_tags(block: &AwsBlock, issues: &mut Vec<FieldIssue>) {
    for (key, value) in &block.tags {
        let path = ["tags", key.as_str()];
        if key.is_empty() || key.chars().count() > 128 || !tag_chars_ok(key) {
            issues.push(FieldIssue::new(
                &path,
                format!("tag key {key:?} must be 1-128 letters, digits, spaces and _.:/=+-@"),
            ));
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            issues.push(FieldIssue::new(
                &path,
                format!("tag key {key:?} uses the reserved prefix aws:"),
            ));
        } else if WID_TAGS.contains(&key.as_str()) || key.starts_with("wid.dev/") {
            issues.push(FieldIssue::new(
                &path,
                format!("tag key {key:?} is reserved for wid's own tags; wid sets them itself"),
            ));
        }
        if value.chars().count() > 256 || !tag_chars_ok(value) {
            issues.push(FieldIssue::new(
                &path,
                format!(
                    "tag value {value:?} must be at most 256 letters, digits, spaces and _.:/=+-@"
                ),
            ));
        }
    }
    match crate::tag_keys::tags_needed(block.tags.keys().map(String::as_str)) {
        Ok(record) => {
            let own = WID_TAGS.len() + record;
            if block.tags.len() + own > TAG_QUOTA {
                issues.push(
                    FieldIssue::new(
                        &["tags"],
                        format!(
                            "{} tags plus wid's {own} own tags (ownership marks and the records of what it applied and which tag keys it set) exceed IAM's limit of {TAG_QUOTA}",
                            block.tags.len(),
                        ),
                    )
                    .help("drop some tags from `aws.tags`; other tags already on the role count too"),
                );
            }
        }
        Err(key) => issues.push(FieldIssue::new(
            &["tags", key.as_str()],
            format!("tag key {key:?} is too long for wid to record that it set it (256 characters once spaces are escaped)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(role: &str) -> AwsBlock {
        AwsBlock {
            role: role.into(),
            account: None,
            mechanism: Mechanism::Irsa,
            managed_policies: Vec::new(),
            inline_policies: wid_core::AttrMap::new(),
            permissions_boundary: None,
            max_session_duration: None,
            path: None,
            tags: wid_core::AttrMap::new(),
            adopt: false,
            normalized: Default::default(),
        }
    }

    fn paths(issues: &[FieldIssue]) -> Vec<String> {
        issues.iter().map(|i| i.path.join(".")).collect()
    }

    #[test]
    fn names_and_accounts_are_ascii_as_iam_requires() {
        assert!(role_name_issue("orders+prod=1,a.b@c_d-e").is_none());
        assert!(role_name_issue("r\u{00f4}le").is_some());
        assert!(tag_chars_ok("team: payments/eu-1 +@="));
        assert!(tag_chars_ok("\u{00e9}quipe \u{4e2d}\u{6587}"));
        assert!(!tag_chars_ok("tab\there"));
        assert!(!tag_chars_ok("semi;colon"));
        let arabic_digits = "\u{0661}".repeat(12);
        assert!(!ACCOUNT.is_match(&arabic_digits));
        assert!(ACCOUNT.is_match("111122223333"));
    }

    #[test]
    fn a_plain_block_is_valid() {
        let mut b = block("orders-prod");
        b.managed_policies = vec!["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into()];
        b.inline_policies.insert(
            "s3".into(),
            InlinePolicy::Json(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#.into()),
        );
        b.path = Some("/workloads/".into());
        b.tags.insert("team".into(), "orders".into());
        assert_eq!(validate_block(&b, Path::new(".")), Vec::new());
    }

    #[test]
    fn inline_policies_are_counted_in_characters_without_whitespace() {
        // A policy of exactly `size` characters as IAM counts them, whatever its bytes.
        let policy = |size: usize, fill: char| {
            let frame = r#"{"Statement":[{"Action":["s3:GetObject"],"Effect":"Allow","Resource":["*"],"Sid":""}],"Version":"2012-10-17"}"#;
            let sid: String = std::iter::repeat_n(fill, size - frame.chars().count()).collect();
            let text = frame.replace(r#""Sid":"""#, &format!(r#""Sid":"{sid}""#));
            // Spaced out: whitespace is not counted.
            InlinePolicy::Json(text.replace(',', " ,\n  "))
        };
        let with = |p: InlinePolicy| {
            let mut b = block("r");
            b.inline_policies.insert("p".into(), p);
            paths(&validate_block(&b, Path::new(".")))
        };
        let limit = INLINE_POLICY_AGGREGATE_LIMIT;
        // Three bytes a character: the bytes are over the limit, the characters are not.
        assert!(with(policy(limit, '\u{65e5}')).is_empty());
        assert_eq!(with(policy(limit + 1, '\u{65e5}')), ["inline_policies"]);
        assert!(with(policy(limit, 'x')).is_empty());
        assert_eq!(with(policy(limit + 1, 'x')), ["inline_policies"]);
    }

    #[test]
    fn bad_role_names_are_rejected() {
        assert_eq!(
            paths(&validate_block(&block("orders prod"), Path::new("."))),
            ["role"]
        );
        assert_eq!(paths(&validate_block(&block(""), Path::new("."))), ["role"]);
        let long = "r".repeat(65);
        let issues = validate_block(&block(&long), Path::new("."));
        assert!(issues[0].message.contains("65 characters"), "{issues:?}");
        assert!(validate_block(&block(&"r".repeat(64)), Path::new(".")).is_empty());
    }

    #[test]
    fn bad_arns_are_rejected_by_index() {
        let mut b = block("r");
        b.managed_policies = vec![
            "arn:aws:iam::aws:policy/ReadOnlyAccess".into(),
            "arn:aws:s3:::bucket".into(),
        ];
        b.permissions_boundary = Some("Boundary".into());
        assert_eq!(
            paths(&validate_block(&b, Path::new("."))),
            ["managed_policies.1", "permissions_boundary"]
        );
    }

    #[test]
    fn bad_inline_json_is_rejected() {
        let mut b = block("r");
        b.inline_policies
            .insert("s3".into(), InlinePolicy::Json("{not json".into()));
        b.inline_policies.insert(
            "missing".into(),
            InlinePolicy::File {
                file: "nope.json".into(),
            },
        );
        let issues = validate_block(&b, Path::new("/nonexistent"));
        assert_eq!(
            paths(&issues),
            ["inline_policies.missing", "inline_policies.s3"]
        );
        assert!(
            issues[0]
                .message
                .contains("cannot use policy file: cannot read"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn inline_policy_files_are_read_relative_to_the_plan() {
        let dir = std::env::temp_dir().join(format!("wid-aws-block-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(
            dir.join("policies/s3.json"),
            r#"{"Version":"2012-10-17","Statement":[]}"#,
        )
        .unwrap();
        let mut b = block("r");
        b.inline_policies.insert(
            "s3".into(),
            InlinePolicy::File {
                file: "policies/s3.json".into(),
            },
        );
        assert_eq!(validate_block(&b, &dir), Vec::new());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn eleven_managed_policies_exceed_the_quota() {
        let mut b = block("r");
        b.managed_policies = (0..11)
            .map(|i| format!("arn:aws:iam::111122223333:policy/p{i}"))
            .collect();
        let issues = validate_block(&b, Path::new("."));
        assert_eq!(paths(&issues), ["managed_policies"]);
        assert!(issues[0].message.contains("quota of 10"));
    }

    #[test]
    fn reserved_tags_and_ranges_are_rejected() {
        let mut b = block("r");
        b.tags.insert("aws:x".into(), "y".into());
        b.tags.insert(wid_core::PLAN_KEY.into(), "y".into());
        b.tags.insert(wid_core::APPLIED_KEY.into(), "y".into());
        b.max_session_duration = Some(60);
        b.path = Some("no-slash".into());
        b.account = Some("1234".into());
        assert_eq!(
            paths(&validate_block(&b, Path::new("."))),
            [
                "account",
                "max_session_duration",
                "path",
                "tags.aws:x",
                "tags.wid.dev/applied",
                "tags.wid.dev/plan"
            ]
        );
    }

    #[test]
    fn blocks_deserialize_with_defaults_and_reject_unknown_keys() {
        let b: AwsBlock = serde_json::from_value(serde_json::json!({
            "role": "r", "mechanism": "pod-identity",
            "inline_policies": {"a": "{}", "b": {"file": "b.json"}}
        }))
        .unwrap();
        assert_eq!(b.mechanism, Mechanism::PodIdentity);
        assert_eq!(
            b.inline_policies["b"],
            InlinePolicy::File {
                file: "b.json".into()
            }
        );
        assert!(
            serde_json::from_value::<AwsBlock>(serde_json::json!({"role": "r", "rol": 1})).is_err()
        );
    }
}
