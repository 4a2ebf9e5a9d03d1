//! The fault rules in force in one sandbox, what each has done so far, and the decision
//! for one call: the rules of `DIR/faults.json` (their use counted across runs in
//! `DIR/faults.used.json`) followed by rules injected in-process (counted in memory only).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::roll;
use crate::{FaultAction, FaultRule, FaultsFile};

/// The file of rules.
pub(crate) const FAULTS_FILE: &str = "faults.json";
/// The file counting what each rule of [`FAULTS_FILE`] did.
pub(crate) const USED_FILE: &str = "faults.used.json";

/// What one rule has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleUse {
    /// Requests that matched the rule while it had times left (each is one roll of its
    /// probability).
    pub matched: u64,
    /// Requests the rule affected.
    pub fired: u64,
}

/// What the rules decided for one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Milliseconds of latency to add first (the sum of the latency rules that fired).
    pub latency_ms: u64,
    /// The fault to play, if a rule other than latency fired (never `Latency`).
    pub action: Option<FaultAction>,
}

#[derive(Debug)]
struct Active {
    rule: FaultRule,
    /// The rule's JSON text and occurrence among identical rules: its identity across runs
    /// and the input of its probability rolls.
    key: String,
    occurrence: u32,
    from_file: bool,
    used: RuleUse,
}

impl Active {
    fn spent(&self) -> bool {
        self.rule
            .times
            .is_some_and(|times| self.used.fired >= u64::from(times))
    }
}

/// One entry of [`USED_FILE`].
#[derive(Debug, Serialize, Deserialize)]
struct UsedEntry {
    rule: Value,
    #[serde(default = "first", skip_serializing_if = "is_first")]
    occurrence: u32,
    #[serde(flatten)]
    used: RuleUse,
}

fn first() -> u32 {
    1
}

fn is_first(n: &u32) -> bool {
    *n == 1
}

/// The rules of one sandbox.
#[derive(Debug, Default)]
pub(crate) struct Injector {
    seed: u64,
    rules: Vec<Active>,
}

impl Injector {
    /// Reads `DIR/faults.json` and the counts of `DIR/faults.used.json`.
    pub(crate) fn load(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FAULTS_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => FaultsFile::parse(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FaultsFile::default(),
            Err(e) => return Err(e),
        };
        let used: Vec<UsedEntry> = match std::fs::read(dir.join(USED_FILE)) {
            // A damaged count file only resets the counts.
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut injector = Self {
            seed: file.seed,
            rules: Vec::new(),
        };
        for rule in file.rules {
            injector.push(rule, true);
        }
        for active in &mut injector.rules {
            let json = active.rule.to_json();
            if let Some(entry) = used
                .iter()
                .find(|u| u.rule == json && u.occurrence == active.occurrence)
            {
                active.used = entry.used;
            }
        }
        Ok(injector)
    }

    /// Adds a rule after the others.
    pub(crate) fn push(&mut self, rule: FaultRule, from_file: bool) {
        let key = rule.to_json().to_string();
        let occurrence = 1 + self
            .rules
            .iter()
            .filter(|a| a.key == key && a.from_file == from_file)
            .count() as u32;
        self.rules.push(Active {
            rule,
            key,
            occurrence,
            from_file,
            used: RuleUse::default(),
        });
    }

    /// Sets the seed of the probabilities.
    pub(crate) fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// Decides the fault for a call of `api` on `object` and counts it against the rules.
    /// Latency rules add up; the first other rule that fires decides the action. Returns
    /// whether a rule of `faults.json` changed its counts.
    pub(crate) fn decide(&mut self, api: &str, object: &str) -> (Decision, bool) {
        let mut decision = Decision::default();
        let mut file_changed = false;
        for active in &mut self.rules {
            if active.spent() || !active.rule.matches(api, object) {
                continue;
            }
            let n = active.used.matched;
            active.used.matched += 1;
            file_changed |= active.from_file;
            if let Some(p) = active.rule.probability {
                let key = format!("{}#{}", active.key, active.occurrence);
                if roll(self.seed, &key, n) >= p {
                    continue;
                }
            }
            active.used.fired += 1;
            match &active.rule.action {
                FaultAction::Latency { ms } => {
                    decision.latency_ms = decision.latency_ms.saturating_add(*ms);
                }
                action => {
                    decision.action = Some(action.clone());
                    break;
                }
            }
        }
        (decision, file_changed)
    }

    /// Every rule with what it did, in order (file rules first).
    pub(crate) fn rules(&self) -> Vec<(FaultRule, RuleUse)> {
        self.rules
            .iter()
            .map(|a| (a.rule.clone(), a.used))
            .collect()
    }

    /// The contents of [`USED_FILE`]: the counts of the rules of `faults.json`.
    pub(crate) fn used_json(&self) -> Vec<u8> {
        let entries: Vec<UsedEntry> = self
            .rules
            .iter()
            .filter(|a| a.from_file)
            .map(|a| UsedEntry {
                rule: a.rule.to_json(),
                occurrence: a.occurrence,
                used: a.used,
            })
            .collect();
        serde_json::to_vec_pretty(&entries).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(rules: Vec<FaultRule>) -> Injector {
        let mut injector = Injector::default();
        for rule in rules {
            injector.push(rule, true);
        }
        injector
    }

    #[test]
    fn latency_adds_up_and_the_first_other_rule_decides() {
        let mut inj = injector(vec![
            FaultRule::new("iam:", FaultAction::Latency { ms: 5 }),
            FaultRule::new("iam:Create", FaultAction::Latency { ms: 7 }),
            FaultRule::new("iam:CreateRole", FaultAction::Throttle).times(1),
            FaultRule::new("iam:", FaultAction::Conflict).object("orders"),
        ]);
        let (d, changed) = inj.decide("iam:CreateRole", "orders-prod");
        assert!(changed);
        assert_eq!(
            d,
            Decision {
                latency_ms: 12,
                action: Some(FaultAction::Throttle)
            }
        );
        let (d, _) = inj.decide("iam:CreateRole", "orders-prod");
        assert_eq!(d.action, Some(FaultAction::Conflict), "throttle was spent");
        let (d, _) = inj.decide("iam:CreateRole", "billing");
        assert_eq!((d.latency_ms, d.action), (12, None));
        let (d, _) = inj.decide("eks:DescribeCluster", "orders");
        assert_eq!(d, Decision::default());
        let uses: Vec<RuleUse> = inj.rules().into_iter().map(|(_, u)| u).collect();
        assert_eq!(
            uses[2],
            RuleUse {
                matched: 1,
                fired: 1
            }
        );
        assert_eq!(
            uses[3],
            RuleUse {
                matched: 1,
                fired: 1
            }
        );
    }

    #[test]
    fn probabilities_follow_the_seed() {
        let pattern = |seed: u64| {
            let mut inj = injector(vec![
                FaultRule::new("k8s:", FaultAction::ServerError).probability(0.3),
            ]);
            inj.set_seed(seed);
            (0..200)
                .map(|_| {
                    inj.decide("k8s:get serviceaccounts", "x")
                        .0
                        .action
                        .is_some()
                })
                .collect::<Vec<bool>>()
        };
        let a = pattern(1);
        assert_eq!(a, pattern(1), "the same seed faults the same calls");
        assert_ne!(a, pattern(2), "another seed faults others");
        let hits = a.iter().filter(|h| **h).count();
        assert!((35..85).contains(&hits), "{hits} of 200 at p=0.3");
    }

    #[test]
    fn counts_survive_a_reload_and_reset_when_the_rule_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FAULTS_FILE),
            r#"[{"api": "iam:", "action": "throttle", "times": 2},
                {"api": "iam:", "action": "throttle", "times": 2}]"#,
        )
        .expect("write");
        let mut inj = Injector::load(dir.path()).expect("load");
        assert!(inj.decide("iam:GetRole", "").0.action.is_some());
        std::fs::write(dir.path().join(USED_FILE), inj.used_json()).expect("write");

        let mut inj = Injector::load(dir.path()).expect("reload");
        let fired: Vec<u64> = inj.rules().iter().map(|(_, u)| u.fired).collect();
        assert_eq!(fired, vec![1, 0], "identical rules are told apart by order");
        for _ in 0..3 {
            assert!(inj.decide("iam:GetRole", "").0.action.is_some());
        }
        assert_eq!(
            inj.decide("iam:GetRole", "").0.action,
            None,
            "4 times in all"
        );

        std::fs::write(
            dir.path().join(FAULTS_FILE),
            r#"[{"api": "iam:", "action": "throttle", "times": 3}]"#,
        )
        .expect("write");
        std::fs::write(dir.path().join(USED_FILE), inj.used_json()).expect("write");
        let inj = Injector::load(dir.path()).expect("reload");
        assert_eq!(
            inj.rules()[0].1,
            RuleUse::default(),
            "a changed rule starts again"
        );
    }

    #[test]
    fn a_bad_faults_file_names_the_file_and_rule() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FAULTS_FILE), r#"[{"api": "iam:"}]"#).expect("write");
        let err = Injector::load(dir.path()).expect_err("invalid");
        assert!(
            err.to_string()
                .ends_with("faults.json: rule 1: `action` is missing"),
            "{err}"
        );
    }
}
