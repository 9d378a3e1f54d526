//! Bandit simulation: three arms whose success rates differ per cell. Thompson sampling must
//! learn which arm works in which cell: regret per round in the last window is well below the
//! first window's. Seeded, so the figures are the same on every run.

use aligndata_server::policy::{
    ArmCounts, LoggedOutcome, ThompsonConfig, choose, off_policy_estimate,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ARMS: [&str; 3] = ["warm", "direct", "questions"];
/// Success rate of each arm (columns) in each cell (rows).
const RATES: [[f64; 3]; 3] = [[0.75, 0.40, 0.30], [0.30, 0.70, 0.45], [0.35, 0.40, 0.65]];

#[test]
fn regret_per_round_falls_as_the_policy_learns() {
    let mut rng = StdRng::seed_from_u64(2024);
    let config = ThompsonConfig::default();
    let mut counts: Vec<Vec<ArmCounts>> = (0..RATES.len())
        .map(|_| {
            ARMS.iter()
                .map(|a| ArmCounts {
                    arm: (*a).into(),
                    successes: 0,
                    failures: 0,
                })
                .collect()
        })
        .collect();
    let rounds = 3000;
    let window = 500;
    let mut regret = Vec::with_capacity(rounds);
    let mut logged = Vec::new();
    for round in 0..rounds {
        let cell = round % RATES.len();
        let choice = choose(&counts[cell], &config, &mut rng).expect("arms");
        let best = RATES[cell].iter().cloned().fold(f64::MIN, f64::max);
        regret.push(best - RATES[cell][choice.index]);
        let success = rng.random::<f64>() < RATES[cell][choice.index];
        let c = &mut counts[cell][choice.index];
        if success {
            c.successes += 1
        } else {
            c.failures += 1
        }
        // For the off-policy check: would "always the best arm" have chosen this arm?
        let best_index = RATES[cell].iter().position(|&r| r == best).unwrap_or(0);
        logged.push(LoggedOutcome {
            propensity: choice.propensity,
            target_probability: if choice.index == best_index { 1.0 } else { 0.0 },
            reward: if success { 1.0 } else { 0.0 },
        });
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let first = mean(&regret[..window]);
    let last = mean(&regret[rounds - window..]);
    eprintln!("regret per round: first {window} rounds {first:.4}, last {window} rounds {last:.4}");
    assert!(
        first > 0.05,
        "the first window should still be exploring (regret {first})"
    );
    assert!(
        last < first / 3.0,
        "regret should fall: first {first:.4}, last {last:.4}"
    );

    // SNIPS of the oracle policy from the logs is close to its true value (mean best rate).
    let truth = RATES
        .iter()
        .map(|r| r.iter().cloned().fold(f64::MIN, f64::max))
        .sum::<f64>()
        / 3.0;
    let est = off_policy_estimate(&logged).expect("estimate");
    eprintln!(
        "oracle policy value {truth:.3}: IPS {:.3}, SNIPS {:.3}, effective n {:.0}",
        est.ips, est.snips, est.effective_n
    );
    assert!(
        (est.snips - truth).abs() < 0.05,
        "SNIPS {} vs truth {truth}",
        est.snips
    );
}
