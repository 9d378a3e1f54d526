//! Picking a cell's quota: representative *and* diverse.
//!
//! # The objective
//!
//! Greedy over a mix of two classic objectives, step by step adding the candidate with the best
//! gain:
//!
//! - **facility location** (representativeness): `Σ_s max_{c ∈ picked} sim(c, s)` over a sample
//!   `S` of the cell; a pick gains by covering points nothing picked covers yet. Alone it picks
//!   medoids of the dense regions: typical inputs.
//! - **k-center** (diversity): the candidate's cosine distance to the nearest pick. Alone it
//!   picks the extremes: unusual inputs (the outliers are already out).
//!
//! `gain = (1 − λ) · FL gain / |S| + λ · distance / 2`, with `λ` = `tradeoff` in [0, 1]. Both
//! terms are in [0, 1]; facility location is submodular, so greedy is within `1 − 1/e` of the
//! best for λ = 0. Ties go to the earlier record, so the result is a function of the input order
//! and the seed only.
//!
//! # Scale
//!
//! A cell with more than `candidate_limit` members is first cut to a seeded random sample of
//! candidates (at least twice the quota), and facility location is measured on a seeded sample of
//! `represent_limit` members: cost per cell is `candidates × represented × dim` for the similarity
//! matrix plus `quota × candidates × represented` for the greedy steps, whatever the cell's size.

use rayon::prelude::*;

use super::outlier::{Rows, dot, sample_indices};

/// Settings of the within-cell pick.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiverseConfig {
    /// λ: 0 = most representative (facility location), 1 = most diverse (k-center).
    pub tradeoff: f64,
    /// Cells larger than this are cut to a seeded sample of candidates first.
    pub candidate_limit: usize,
    /// Facility location is measured on at most this many members of the cell.
    pub represent_limit: usize,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for DiverseConfig {
    fn default() -> Self {
        DiverseConfig {
            tradeoff: 0.3,
            candidate_limit: 4000,
            represent_limit: 1000,
            seed: 0,
        }
    }
}

/// Picks `quota` of `members` (row indices); returns them in the order picked.
pub fn pick(
    rows: Rows<'_>,
    members: &[u32],
    quota: usize,
    config: &DiverseConfig,
    label: &str,
) -> Vec<u32> {
    if quota == 0 || members.is_empty() {
        return Vec::new();
    }
    if quota >= members.len() {
        return members.to_vec();
    }
    let lambda = config.tradeoff.clamp(0.0, 1.0);
    let cand_n = config
        .candidate_limit
        .max(quota.saturating_mul(2))
        .min(members.len());
    let candidates: Vec<u32> = sample_indices(
        members.len(),
        cand_n,
        config.seed,
        &format!("candidates {label}"),
    )
    .into_iter()
    .map(|i| members[i as usize])
    .collect();
    let rep_n = config.represent_limit.max(1).min(members.len());
    let represented: Vec<u32> = sample_indices(
        members.len(),
        rep_n,
        config.seed,
        &format!("represented {label}"),
    )
    .into_iter()
    .map(|i| members[i as usize])
    .collect();
    let s = represented.len();
    let sim: Vec<f32> = candidates
        .par_iter()
        .flat_map_iter(|&c| {
            let rc = rows.row(c as usize);
            represented
                .iter()
                .map(move |&r| dot(rc, rows.row(r as usize)))
        })
        .collect();
    let mut best = vec![0f32; s];
    let mut min_dist = vec![2f32; candidates.len()];
    let mut taken = vec![false; candidates.len()];
    let mut picked = Vec::with_capacity(quota);
    for _ in 0..quota {
        let winner = (0..candidates.len())
            .into_par_iter()
            .filter(|&c| !taken[c])
            .map(|c| {
                let row = &sim[c * s..(c + 1) * s];
                let fl: f32 = row.iter().zip(&best).map(|(&x, &b)| (x - b).max(0.0)).sum();
                let gain =
                    (1.0 - lambda) * fl as f64 / s as f64 + lambda * min_dist[c] as f64 / 2.0;
                (gain, c)
            })
            .reduce_with(|a, b| {
                if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                    b
                } else {
                    a
                }
            });
        let Some((_, c)) = winner else { break };
        taken[c] = true;
        picked.push(candidates[c]);
        let row = &sim[c * s..(c + 1) * s];
        for (b, &x) in best.iter_mut().zip(row) {
            *b = b.max(x);
        }
        let rc = rows.row(candidates[c] as usize);
        min_dist.par_iter_mut().enumerate().for_each(|(o, d)| {
            let dd = 1.0 - dot(rc, rows.row(candidates[o] as usize));
            if dd < *d {
                *d = dd;
            }
        });
    }
    picked
}

/// Mean cosine similarity over all pairs of `idx` (a seeded sample of `limit` when larger).
/// Lower means more diverse. `None` with fewer than two rows.
pub fn mean_pairwise_similarity(
    rows: Rows<'_>,
    idx: &[u32],
    limit: usize,
    seed: u64,
) -> Option<f64> {
    let idx: Vec<u32> = if idx.len() > limit {
        sample_indices(idx.len(), limit, seed, "pairwise")
            .into_iter()
            .map(|i| idx[i as usize])
            .collect()
    } else {
        idx.to_vec()
    };
    let m = idx.len();
    if m < 2 {
        return None;
    }
    let total: f64 = (0..m)
        .into_par_iter()
        .map(|a| {
            let ra = rows.row(idx[a] as usize);
            idx[a + 1..]
                .iter()
                .map(|&b| dot(ra, rows.row(b as usize)) as f64)
                .sum::<f64>()
        })
        .sum();
    Some(total / (m * (m - 1) / 2) as f64)
}
