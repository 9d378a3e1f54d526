//! The online policy: Thompson sampling over Beta posteriors, one per (cell, arm).
//!
//! Why Thompson sampling: it explores in proportion to uncertainty, needs no tuning beyond a prior,
//! and its posteriors are two counters per (cell, arm) that any number of server instances can
//! update in the database with one atomic upsert.
//!
//! Why the arm is drawn from a Monte Carlo estimate of the win probabilities (rather than from a
//! single posterior draw): off-policy estimates (IPS/SNIPS) need the probability with which the
//! logged arm was chosen. Drawing the arm from the very distribution we log makes the logged
//! propensity exact for the choice actually made, instead of an estimate of a different draw.
//! A small exploration floor keeps every propensity away from zero, which bounds IPS weights.

use rand::Rng;
use rand_distr::{Beta, Distribution};

/// Successes and failures seen for one arm in one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmCounts {
    pub arm: String,
    pub successes: i64,
    pub failures: i64,
}

/// Tuning of the sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct ThompsonConfig {
    /// Beta prior α (pseudo-successes) added to every arm.
    pub prior_alpha: f64,
    /// Beta prior β (pseudo-failures) added to every arm.
    pub prior_beta: f64,
    /// Monte Carlo draws used to estimate each arm's probability of being best.
    pub draws: u32,
    /// Share of probability spread uniformly over the arms (0 ≤ floor < 1): every arm keeps at
    /// least `floor / arms` propensity.
    pub floor: f64,
}

impl Default for ThompsonConfig {
    fn default() -> Self {
        ThompsonConfig {
            prior_alpha: 1.0,
            prior_beta: 1.0,
            draws: 1000,
            floor: 0.02,
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Index into the arms given.
    pub index: usize,
    /// The arm's name.
    pub arm: String,
    /// Probability with which this arm was chosen (log it).
    pub propensity: f64,
    /// Every arm's probability, in the order given; sums to 1.
    pub probabilities: Vec<(String, f64)>,
}

/// Each arm's probability of being chosen: Monte Carlo share of draws it wins, mixed with the
/// uniform floor. `arms` must not be empty.
pub fn probabilities(arms: &[ArmCounts], config: &ThompsonConfig, rng: &mut impl Rng) -> Vec<f64> {
    let k = arms.len();
    if k == 0 {
        return Vec::new();
    }
    let dists: Vec<Option<Beta<f64>>> = arms
        .iter()
        .map(|a| {
            let alpha = config.prior_alpha.max(1e-3) + a.successes.max(0) as f64;
            let beta = config.prior_beta.max(1e-3) + a.failures.max(0) as f64;
            Beta::new(alpha, beta).ok()
        })
        .collect();
    let draws = config.draws.max(1);
    let mut wins = vec![0u32; k];
    for _ in 0..draws {
        let mut best = 0;
        let mut best_value = f64::NEG_INFINITY;
        for (i, dist) in dists.iter().enumerate() {
            let v = match dist {
                Some(d) => d.sample(rng),
                None => 0.5,
            };
            if v > best_value {
                best_value = v;
                best = i;
            }
        }
        wins[best] += 1;
    }
    let floor = config.floor.clamp(0.0, 0.999);
    wins.iter()
        .map(|&w| (1.0 - floor) * f64::from(w) / f64::from(draws) + floor / k as f64)
        .collect()
}

/// Chooses an arm by Thompson sampling. Returns `None` when there are no arms.
pub fn choose(arms: &[ArmCounts], config: &ThompsonConfig, rng: &mut impl Rng) -> Option<Choice> {
    if arms.is_empty() {
        return None;
    }
    let probs = probabilities(arms, config, rng);
    Some(draw(arms, probs, rng))
}

/// Draws an arm from `probs` (one per arm, summing to 1).
fn draw(arms: &[ArmCounts], probs: Vec<f64>, rng: &mut impl Rng) -> Choice {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    let mut index = probs.len() - 1;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            index = i;
            break;
        }
    }
    Choice {
        index,
        arm: arms[index].arm.clone(),
        propensity: probs[index],
        probabilities: arms
            .iter()
            .map(|a| a.arm.clone())
            .zip(probs.iter().copied())
            .collect(),
    }
}

/// Each cell's arm probabilities with the counts they were estimated from, so that requests
/// seeing the same posterior share one Monte Carlo estimate instead of each drawing
/// `config.draws` samples per arm again.
///
/// Why: the estimate (1,000 draws × arms Beta samples) was the largest single cost of the
/// service under load, about a quarter of its CPU, while the counts a request reads change only
/// when a batch of feedback commits, so several requests in a row read the same ones. The
/// choice stays a Thompson-sampling choice: the arm is drawn afresh per request from the
/// probabilities logged with it, so the logged propensity is exactly the probability it was
/// chosen with, as before; only the estimate is reused while the counts are unchanged (any
/// change, even one event, estimates again). Bounded: cleared when it holds too many cells.
#[derive(Debug, Default)]
pub struct ProbabilityCache {
    cells: std::sync::Mutex<std::collections::HashMap<String, Estimate>>,
}

/// The counts an estimate was made from, and the probabilities it gave.
type Estimate = (Vec<ArmCounts>, Vec<f64>);

impl ProbabilityCache {
    /// Most cells remembered.
    const MAX_CELLS: usize = 10_000;

    /// [`choose`], reusing the cell's last estimate when `arms` (names and counts) are the
    /// same as then. `config` must be the same on every call.
    pub fn choose(
        &self,
        cell: &str,
        arms: &[ArmCounts],
        config: &ThompsonConfig,
        rng: &mut impl Rng,
    ) -> Option<Choice> {
        if arms.is_empty() {
            return None;
        }
        let lock = || self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let cached = lock()
            .get(cell)
            .filter(|(counts, _)| counts.as_slice() == arms)
            .map(|(_, probs)| probs.clone());
        let probs = match cached {
            Some(probs) => probs,
            None => {
                let probs = probabilities(arms, config, rng);
                let mut cells = lock();
                if cells.len() >= Self::MAX_CELLS {
                    cells.clear();
                }
                cells.insert(cell.to_string(), (arms.to_vec(), probs.clone()));
                probs
            }
        };
        Some(draw(arms, probs, rng))
    }
}

/// Puts a user message into a taxonomy cell. The real labeller (the offline taxonomy labeller)
/// plugs in here; the service only needs a stable cell key per message.
pub trait Labeller: Send + Sync {
    /// The cell key for this message (for example `theme=perfectionism|situation=work`).
    fn cell(&self, user_message: &str) -> String;
}

/// The trivial labeller: every message is in one cell. With it the policy is a plain
/// (context-free) bandit until a real labeller is wired in.
#[derive(Debug, Clone)]
pub struct SingleCell(pub String);

impl Default for SingleCell {
    fn default() -> Self {
        SingleCell("all".into())
    }
}

impl Labeller for SingleCell {
    fn cell(&self, _user_message: &str) -> String {
        self.0.clone()
    }
}

/// One logged decision with its outcome, for off-policy evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedOutcome {
    /// Probability with which the logging policy chose the logged arm.
    pub propensity: f64,
    /// Probability with which the policy being evaluated would choose the logged arm.
    pub target_probability: f64,
    /// Observed reward (1 success, 0 failure).
    pub reward: f64,
}

/// Off-policy estimates of a target policy's mean reward from logged decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct OffPolicyEstimate {
    /// Inverse propensity scoring: mean of w·r with w = target / logged probability.
    pub ips: f64,
    /// Self-normalised IPS: Σ w·r / Σ w (lower variance, slightly biased).
    pub snips: f64,
    /// Logged outcomes used.
    pub n: usize,
    /// Effective sample size (Σw)² / Σw²: how many samples the estimate is really worth.
    pub effective_n: f64,
}

/// IPS and SNIPS estimates; `None` when nothing usable (every propensity must be > 0).
pub fn off_policy_estimate(logged: &[LoggedOutcome]) -> Option<OffPolicyEstimate> {
    let usable: Vec<&LoggedOutcome> = logged.iter().filter(|l| l.propensity > 0.0).collect();
    if usable.is_empty() {
        return None;
    }
    let n = usable.len();
    let (mut sum_wr, mut sum_w, mut sum_w2) = (0.0, 0.0, 0.0);
    for l in &usable {
        let w = l.target_probability / l.propensity;
        sum_wr += w * l.reward;
        sum_w += w;
        sum_w2 += w * w;
    }
    Some(OffPolicyEstimate {
        ips: sum_wr / n as f64,
        snips: if sum_w > 0.0 { sum_wr / sum_w } else { 0.0 },
        n,
        effective_n: if sum_w2 > 0.0 {
            sum_w * sum_w / sum_w2
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn counts(arm: &str, s: i64, f: i64) -> ArmCounts {
        ArmCounts {
            arm: arm.into(),
            successes: s,
            failures: f,
        }
    }

    #[test]
    fn probabilities_sum_to_one_and_respect_the_floor() {
        let mut rng = StdRng::seed_from_u64(7);
        let arms = [
            counts("a", 100, 0),
            counts("b", 0, 100),
            counts("c", 0, 100),
        ];
        let config = ThompsonConfig {
            floor: 0.03,
            ..ThompsonConfig::default()
        };
        let p = probabilities(&arms, &config, &mut rng);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(p[0] > 0.95);
        assert!(p[1] >= 0.01 - 1e-12 && p[2] >= 0.01 - 1e-12);
    }

    #[test]
    fn uninformed_arms_are_chosen_about_equally() {
        let mut rng = StdRng::seed_from_u64(1);
        let arms = [counts("a", 0, 0), counts("b", 0, 0)];
        let mut n_a = 0;
        for _ in 0..2000 {
            if choose(&arms, &ThompsonConfig::default(), &mut rng).map(|c| c.index) == Some(0) {
                n_a += 1;
            }
        }
        assert!((800..1200).contains(&n_a), "a chosen {n_a} of 2000");
    }

    #[test]
    fn the_cache_reuses_an_estimate_only_for_the_same_counts() {
        let cache = ProbabilityCache::default();
        let config = ThompsonConfig::default();
        let mut rng = StdRng::seed_from_u64(3);
        let arms = [counts("a", 5, 5), counts("b", 5, 5)];
        let first = cache.choose("c", &arms, &config, &mut rng).unwrap();
        for _ in 0..20 {
            let again = cache.choose("c", &arms, &config, &mut rng).unwrap();
            assert_eq!(again.probabilities, first.probabilities);
        }
        // More successes for `b`: estimated again (and now favouring b).
        let changed = [counts("a", 5, 5), counts("b", 60, 5)];
        let later = cache.choose("c", &changed, &config, &mut rng).unwrap();
        assert_ne!(later.probabilities, first.probabilities);
        assert!(later.probabilities[1].1 > 0.9, "{:?}", later.probabilities);
        // Another cell with the same counts has its own entry.
        let other = cache.choose("d", &changed, &config, &mut rng).unwrap();
        assert!(other.probabilities[1].1 > 0.9);
        // Arms are drawn per request: both show up.
        let picks: std::collections::HashSet<String> = (0..50)
            .map(|_| cache.choose("c", &arms, &config, &mut rng).unwrap().arm)
            .collect();
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn choice_reports_the_probability_it_was_drawn_with() {
        let mut rng = StdRng::seed_from_u64(3);
        let arms = [counts("a", 5, 5), counts("b", 6, 4)];
        let c = choose(&arms, &ThompsonConfig::default(), &mut rng).expect("choice");
        let logged = c
            .probabilities
            .iter()
            .find(|(a, _)| *a == c.arm)
            .map(|(_, p)| *p);
        assert_eq!(logged, Some(c.propensity));
        assert!(choose(&[], &ThompsonConfig::default(), &mut rng).is_none());
    }

    #[test]
    fn ips_and_snips_recover_the_logging_policy_value() {
        // Evaluating the logging policy itself: weights are 1, both estimates are the mean reward.
        let logged: Vec<LoggedOutcome> = (0..10)
            .map(|i| LoggedOutcome {
                propensity: 0.5,
                target_probability: 0.5,
                reward: f64::from(i % 2),
            })
            .collect();
        let est = off_policy_estimate(&logged).expect("estimate");
        assert!((est.ips - 0.5).abs() < 1e-12 && (est.snips - 0.5).abs() < 1e-12);
        assert!((est.effective_n - 10.0).abs() < 1e-9);
        assert!(off_policy_estimate(&[]).is_none());
    }
}
