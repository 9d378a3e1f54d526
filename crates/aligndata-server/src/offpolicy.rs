//! Off-policy evaluation of the logged bandit decisions, and their Vowpal Wabbit export.
//!
//! Every `POST /v1/policy/choose` logs the arm it drew and the probability it drew it with; a
//! turn that quotes the decision and gets reward-bearing feedback (thumb, rating, correction)
//! is one logged outcome. From those, [`evaluate`] estimates what another policy would have
//! earned (IPS and SNIPS through [`crate::policy::off_policy_estimate`]) without deploying it.
//!
//! A turn's reward is the share of its reward-bearing feedback events that were successes (one
//! thumb up: 1; a thumb up and a correction: 0.5); turns without any are not outcomes.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::policy::{LoggedOutcome, OffPolicyEstimate, off_policy_estimate};
use crate::store::LoggedDecision;

/// A policy to evaluate on the log.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetPolicy {
    /// The logging policy itself (weights 1): IPS equals the observed mean reward. A check.
    Logging,
    /// Every arm the decision offered, equally likely.
    Uniform,
    /// Per cell, the arm with the best posterior mean reward in the log (Beta(1,1) prior; ties
    /// to the first arm by name). Fitted and evaluated on the same log, so optimistic.
    Greedy,
    /// Always this arm.
    Arm(String),
}

impl FromStr for TargetPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<TargetPolicy, String> {
        let s = s.trim();
        match s {
            "logging" => Ok(TargetPolicy::Logging),
            "uniform" => Ok(TargetPolicy::Uniform),
            "greedy" => Ok(TargetPolicy::Greedy),
            _ => match s.strip_prefix("arm=") {
                Some(arm) if !arm.trim().is_empty() => Ok(TargetPolicy::Arm(arm.trim().into())),
                _ => Err(format!(
                    "unknown policy `{s}`: expected greedy, uniform, logging or arm=NAME"
                )),
            },
        }
    }
}

impl fmt::Display for TargetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetPolicy::Logging => f.write_str("logging"),
            TargetPolicy::Uniform => f.write_str("uniform"),
            TargetPolicy::Greedy => f.write_str("greedy"),
            TargetPolicy::Arm(arm) => write!(f, "arm={arm}"),
        }
    }
}

/// What [`evaluate`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffPolicyReport {
    /// The evaluated policy, as given.
    pub policy: String,
    /// Logged decisions that a turn used.
    pub decisions: usize,
    /// Of them, with an observed reward (the outcomes the estimates use).
    pub outcomes: usize,
    /// The logging policy's value: the mean observed reward.
    pub logged_value: Option<f64>,
    /// Inverse propensity scoring estimate of the policy's mean reward.
    pub ips: Option<f64>,
    /// Self-normalised IPS.
    pub snips: Option<f64>,
    /// Effective sample size (Σw)²/Σw².
    pub effective_n: Option<f64>,
    /// Per logged arm: outcomes and mean reward.
    pub arms: BTreeMap<String, ArmOutcome>,
}

/// Outcomes of one arm in the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmOutcome {
    pub outcomes: usize,
    pub mean_reward: f64,
}

/// The greedy policy's table: cell → best arm by posterior mean in `log`.
pub fn greedy_arms(log: &[LoggedDecision]) -> BTreeMap<String, String> {
    // (cell, arm) → (reward sum, outcomes)
    let mut sums: BTreeMap<(&str, &str), (f64, f64)> = BTreeMap::new();
    for d in log {
        if let Some(r) = d.reward() {
            let e = sums.entry((&d.cell, &d.arm)).or_default();
            e.0 += r;
            e.1 += 1.0;
        }
    }
    let mut best: BTreeMap<String, (String, f64)> = BTreeMap::new();
    for ((cell, arm), (sum, n)) in sums {
        let mean = (sum + 1.0) / (n + 2.0);
        match best.get(cell) {
            Some((_, m)) if *m >= mean => {}
            _ => {
                best.insert(cell.to_string(), (arm.to_string(), mean));
            }
        }
    }
    best.into_iter().map(|(c, (a, _))| (c, a)).collect()
}

/// The probability `policy` gives the logged arm of `d`.
fn target_probability(
    policy: &TargetPolicy,
    d: &LoggedDecision,
    greedy: &BTreeMap<String, String>,
) -> f64 {
    match policy {
        TargetPolicy::Logging => d.propensity,
        TargetPolicy::Uniform => {
            let k = d.probabilities.len().max(1);
            1.0 / k as f64
        }
        TargetPolicy::Greedy => match greedy.get(&d.cell) {
            Some(arm) if *arm == d.arm => 1.0,
            Some(_) => 0.0,
            // A cell with no outcomes: the greedy policy has nothing to go on and acts uniformly.
            None => 1.0 / d.probabilities.len().max(1) as f64,
        },
        TargetPolicy::Arm(arm) => f64::from(u8::from(*arm == d.arm)),
    }
}

/// IPS and SNIPS estimates of `policy` on `log`, beside the logging policy's observed value.
pub fn evaluate(log: &[LoggedDecision], policy: &TargetPolicy) -> OffPolicyReport {
    let greedy = if *policy == TargetPolicy::Greedy {
        greedy_arms(log)
    } else {
        BTreeMap::new()
    };
    let mut outcomes = Vec::new();
    let mut arms: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for d in log {
        let Some(reward) = d.reward() else { continue };
        outcomes.push(LoggedOutcome {
            propensity: d.propensity,
            target_probability: target_probability(policy, d, &greedy),
            reward,
        });
        let e = arms.entry(d.arm.clone()).or_default();
        e.0 += 1;
        e.1 += reward;
    }
    let logged_value = (!outcomes.is_empty())
        .then(|| outcomes.iter().map(|o| o.reward).sum::<f64>() / outcomes.len() as f64);
    let estimate: Option<OffPolicyEstimate> = off_policy_estimate(&outcomes);
    OffPolicyReport {
        policy: policy.to_string(),
        decisions: log.len(),
        outcomes: outcomes.len(),
        logged_value,
        ips: estimate.as_ref().map(|e| e.ips),
        snips: estimate.as_ref().map(|e| e.snips),
        effective_n: estimate.as_ref().map(|e| e.effective_n),
        arms: arms
            .into_iter()
            .map(|(arm, (n, sum))| {
                (
                    arm,
                    ArmOutcome {
                        outcomes: n,
                        mean_reward: sum / n as f64,
                    },
                )
            })
            .collect(),
    }
}

/// Vowpal Wabbit's contextual-bandit label for one logged outcome, `action:cost:probability |
/// features`, or `None` when the turn has no reward. `actions` numbers the arms from 1 (VW's
/// `--cb K` actions). Cost is `1 - reward` (VW minimises cost; reward 1 costs 0, reward 0
/// costs 1). Features are the cell's `dim=value` parts, with spaces, `|` and `:` (VW syntax)
/// replaced by `_`.
pub fn vw_line(d: &LoggedDecision, actions: &BTreeMap<String, usize>) -> Option<String> {
    let reward = d.reward()?;
    let action = actions.get(&d.arm)?;
    let features: Vec<String> = d
        .cell
        .split('|')
        .map(vw_feature)
        .filter(|f| !f.is_empty())
        .collect();
    Some(format!(
        "{action}:{}:{} | {}",
        1.0 - reward,
        d.propensity,
        features.join(" ")
    ))
}

/// Every arm named in `log` (logged or offered), numbered 1.. by name: VW's action ids.
pub fn vw_actions(log: &[LoggedDecision]) -> BTreeMap<String, usize> {
    let mut names: Vec<&str> = Vec::new();
    for d in log {
        names.push(&d.arm);
        names.extend(d.probabilities.iter().map(|(a, _)| a.as_str()));
    }
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a.to_string(), i + 1))
        .collect()
}

fn vw_feature(part: &str) -> String {
    part.trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '|' || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(cell: &str, arm: &str, p: f64, successes: i64, rewarded: i64) -> LoggedDecision {
        LoggedDecision {
            turn_id: 1,
            decision_id: 1,
            cell: cell.into(),
            arm: arm.into(),
            propensity: p,
            probabilities: vec![("a".into(), 0.5), ("b".into(), 0.5)],
            policy_version: None,
            successes,
            rewarded,
        }
    }

    #[test]
    fn policies_parse_and_print() {
        for s in ["greedy", "uniform", "logging", "arm=warm"] {
            assert_eq!(
                s.parse::<TargetPolicy>().map(|p| p.to_string()),
                Ok(s.to_string())
            );
        }
        assert!("arm=".parse::<TargetPolicy>().is_err());
        assert!("best".parse::<TargetPolicy>().is_err());
    }

    #[test]
    fn logging_policy_scores_its_mean_and_fixed_arms_their_own() {
        let log = vec![
            decision("x", "a", 0.5, 1, 1),
            decision("x", "a", 0.5, 1, 1),
            decision("x", "b", 0.5, 0, 1),
            decision("x", "b", 0.5, 0, 1),
            decision("x", "b", 0.5, 0, 0), // no outcome
        ];
        let r = evaluate(&log, &TargetPolicy::Logging);
        assert_eq!((r.decisions, r.outcomes), (5, 4));
        assert_eq!(r.logged_value, Some(0.5));
        assert_eq!(r.ips, Some(0.5));
        let a = evaluate(&log, &TargetPolicy::Arm("a".into()));
        assert_eq!(a.snips, Some(1.0));
        assert_eq!(a.ips, Some(1.0));
        let b = evaluate(&log, &TargetPolicy::Arm("b".into()));
        assert_eq!(b.snips, Some(0.0));
        assert_eq!(greedy_arms(&log).get("x").map(String::as_str), Some("a"));
    }

    #[test]
    fn vw_lines_follow_the_cb_label_format() {
        let d = decision("theme=work stress|risk=none", "b", 0.25, 1, 2);
        let actions = vw_actions(std::slice::from_ref(&d));
        assert_eq!(actions.get("b"), Some(&2));
        assert_eq!(
            vw_line(&d, &actions).as_deref(),
            Some("2:0.5:0.25 | theme=work_stress risk=none")
        );
        assert_eq!(vw_line(&decision("c", "a", 0.5, 0, 0), &actions), None);
    }
}
