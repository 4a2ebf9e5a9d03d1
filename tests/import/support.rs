//! Helpers of the import round trips: a served sandbox with one cluster, the import →
//! validate → plan → apply chain, and the sandbox's call counters split into reads and
//! writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

/// A served sandbox declared by a plan with one cluster and no workload.
pub struct Served {
    pub serve: Serve,
    pub tmp: tempfile::TempDir,
}

impl Served {
    /// Serves a sandbox whose clusters are those of `clusters` (plan text).
    pub fn start(clusters: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let plan = tmp.path().join("clusters.toml");
        std::fs::write(&plan, clusters).unwrap();
        let dir = tmp.path().join("sb");
        std::fs::create_dir_all(&dir).unwrap();
        let serve = Serve::start_with(&dir, &["--plan", &plan.display().to_string()]);
        Self { serve, tmp }
    }

    /// The sandbox directory.
    pub fn dir(&self) -> &Path {
        &self.serve.dir
    }

    /// `--sandbox-dir DIR`.
    pub fn sb(&self) -> String {
        self.serve.dir.display().to_string()
    }

    /// A file in the test's temp directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs kubectl against the served cluster.
    pub fn kubectl(&self, args: &[&str]) {
        self.serve.kubectl(args);
    }

    /// Runs the aws CLI with the sandbox's DIR/env.
    pub fn aws(&self, args: &[&str]) -> String {
        sandbox_aws(self.dir(), args)
    }

    /// Runs `wid ARGS` in the temp directory.
    pub fn wid(&self, args: &[&str]) -> std::process::Output {
        wid(self.tmp.path(), args)
    }
}

/// Every sandbox call count so far.
pub fn calls(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read(dir.join("calls.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Whether an API the sandbox counts only reads: `k8s:list …`, `iam:GetRole`,
/// `eks:DescribeCluster`, `gcp:crm.projects.getIamPolicy`, `azure:roleAssignments.list`.
pub fn is_read(api: &str) -> bool {
    let verb = match api.strip_prefix("k8s:") {
        Some(rest) => rest.split_whitespace().next().unwrap_or_default(),
        None => api.rsplit([':', '.']).next().unwrap_or(api),
    }
    .to_ascii_lowercase();
    ["get", "list", "describe"]
        .iter()
        .any(|r| verb.starts_with(r))
}

/// The APIs called between two counts, by name, with how often.
pub fn delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Imports the sandbox cluster `cluster` as plan `name` into `plan.toml` and checks the
/// round trip: the plan validates, `plan --detailed-exitcode` exits 0, and `apply` makes
/// no call that writes. Returns the plan's text and import's stderr.
pub fn round_trip(s: &Served, cluster: &str, name: &str) -> (String, String) {
    let out = s.path("plan.toml").display().to_string();
    let sb = s.sb();
    let import = s.wid(&[
        "import",
        "--sandbox-dir",
        &sb,
        "--cluster",
        cluster,
        "--name",
        name,
        "--out",
        &out,
    ]);
    expect_code(&import, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let validate = s.wid(&["validate", &out]);
    expect_code(&validate, 0);
    let plan = s.wid(&["plan", &out, "--sandbox-dir", &sb, "--detailed-exitcode"]);
    assert_eq!(
        code(&plan),
        0,
        "the imported plan changes something:\n{text}\n{}\n{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert!(stdout(&plan).contains("No changes."), "{}", stdout(&plan));
    let before = calls(s.dir());
    let apply = s.wid(&["apply", &out, "--sandbox-dir", &sb, "--auto-approve"]);
    expect_code(&apply, 0);
    let made = delta(&before, &calls(s.dir()));
    assert!(!made.is_empty(), "apply read the live state");
    let writes: Vec<&String> = made.keys().filter(|api| !is_read(api)).collect();
    assert!(
        writes.is_empty(),
        "apply wrote: {writes:?} (all calls: {made:?})"
    );
    (text, stderr(&import))
}

#[test]
fn reads_are_told_from_writes() {
    for read in [
        "k8s:list serviceaccounts",
        "iam:GetRole",
        "iam:ListRolePolicies",
        "eks:DescribePodIdentityAssociation",
        "gcp:crm.projects.getIamPolicy",
        "gcp:container.clusters.get",
        "azure:userAssignedIdentities.listBySubscription",
        "azure:roleAssignments.list",
    ] {
        assert!(is_read(read), "{read}");
    }
    for write in [
        "k8s:apply serviceaccounts",
        "k8s:delete serviceaccounts",
        "iam:TagRole",
        "iam:UpdateAssumeRolePolicy",
        "eks:TagResource",
        "gcp:crm.projects.setIamPolicy",
        "gcp:iam.serviceAccounts.patch",
        "azure:userAssignedIdentities.update",
        "azure:roleAssignments.create",
    ] {
        assert!(!is_read(write), "{write}");
    }
}
