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
//! `represent_limit` members: the similarity matrix is one GEMM of `candidates × represented ×
//! dim`, whatever the cell's size, and only those rows are ever loaded ([`pick_with`]). The greedy
//! steps are lazy ([`pick_among`]): exact, but most candidates are never re-evaluated.

use rayon::prelude::*;

use super::outlier::{Rows, dot, dot_matrix, gather, sample_indices};

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
    let gather = |idx: &[u32]| -> anyhow::Result<Vec<f32>> { Ok(gather(rows, idx)) };
    pick_with(members, quota, rows.dim, config, label, &gather)
        .unwrap_or_else(|_| unreachable!("gathering from memory does not fail"))
}

/// [`pick`] with the rows fetched on demand by `fetch` (row indices in, their rows contiguous
/// out): only the sampled candidates and represented members are ever loaded, so a cell of any
/// size costs `(candidate_limit + represent_limit) × dim` floats.
pub fn pick_with(
    members: &[u32],
    quota: usize,
    dim: usize,
    config: &DiverseConfig,
    label: &str,
    fetch: &(dyn Fn(&[u32]) -> anyhow::Result<Vec<f32>> + Sync),
) -> anyhow::Result<Vec<u32>> {
    if quota == 0 || members.is_empty() {
        return Ok(Vec::new());
    }
    if quota >= members.len() {
        return Ok(members.to_vec());
    }
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
    let cand_rows = fetch(&candidates)?;
    let rep_rows = fetch(&represented)?;
    let order = pick_among(
        Rows {
            data: &cand_rows,
            dim,
        },
        Rows {
            data: &rep_rows,
            dim,
        },
        quota,
        config.tradeoff,
    );
    Ok(order.into_iter().map(|c| candidates[c]).collect())
}

/// A candidate's last computed gain: an upper bound of its gain now (both terms only shrink as
/// picks are added), ordered by gain, then the earlier candidate first.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    gain: f64,
    candidate: usize,
}

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.gain
            .total_cmp(&other.gain)
            .then(other.candidate.cmp(&self.candidate))
    }
}

/// Greedy facility location + k-center over `candidates`, facility location measured on
/// `represented`; returns `quota` positions in `candidates`, in the order picked.
///
/// Lazy greedy (Minoux 1978): every candidate's gain can only shrink as picks are added (facility
/// location is submodular, and the distance to the nearest pick only shrinks), so a max-heap of
/// stale gains is an upper bound; the top is re-evaluated and taken when it still beats the next
/// bound. The picks are exactly those of the plain greedy (same gains, same tie-break), at a
/// fraction of the evaluations. The distance to the nearest pick is also updated lazily: a
/// candidate is compared only with the picks made since its last evaluation.
pub fn pick_among(
    candidates: Rows<'_>,
    represented: Rows<'_>,
    quota: usize,
    tradeoff: f64,
) -> Vec<usize> {
    let lambda = tradeoff.clamp(0.0, 1.0);
    let (nc, s) = (candidates.len(), represented.len());
    let quota = quota.min(nc);
    if quota == 0 {
        return Vec::new();
    }
    // Similarity of every candidate to every represented member, in parallel row blocks.
    let mut sim = vec![0f32; nc * s.max(1)];
    if s > 0 {
        let dim = candidates.dim;
        sim.par_chunks_mut(256 * s)
            .enumerate()
            .for_each(|(b, out)| {
                let start = b * 256;
                let rows = out.len() / s;
                let block = Rows {
                    data: &candidates.data[start * dim..(start + rows) * dim],
                    dim,
                };
                dot_matrix(block, represented, out);
            });
    }
    let s = s.max(1);
    let mut best = vec![0f32; s];
    let mut min_dist = vec![2f32; nc];
    let mut seen = vec![0usize; nc];
    let mut picked: Vec<usize> = Vec::with_capacity(quota);
    let gain = |c: usize, best: &[f32], min_dist: f32| -> f64 {
        let row = &sim[c * s..(c + 1) * s];
        let fl: f32 = row.iter().zip(best).map(|(&x, &b)| (x - b).max(0.0)).sum();
        (1.0 - lambda) * fl as f64 / s as f64 + lambda * min_dist as f64 / 2.0
    };
    let mut heap: std::collections::BinaryHeap<Bound> = (0..nc)
        .into_par_iter()
        .map(|c| Bound {
            gain: gain(c, &best, 2.0),
            candidate: c,
        })
        .collect::<Vec<_>>()
        .into();
    while picked.len() < quota {
        let Some(top) = heap.pop() else { break };
        let c = top.candidate;
        // Bring the candidate's distance to the nearest pick up to date.
        if seen[c] < picked.len() {
            let rc = candidates.row(c);
            for &p in &picked[seen[c]..] {
                let d = 1.0 - dot(rc, candidates.row(p));
                if d < min_dist[c] {
                    min_dist[c] = d;
                }
            }
            seen[c] = picked.len();
        }
        let now = Bound {
            gain: gain(c, &best, min_dist[c]),
            candidate: c,
        };
        if heap.peek().is_none_or(|next| now >= *next) {
            picked.push(c);
            for (b, &x) in best.iter_mut().zip(&sim[c * s..(c + 1) * s]) {
                *b = b.max(x);
            }
        } else {
            heap.push(now);
        }
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
