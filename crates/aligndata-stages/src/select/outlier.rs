//! Outlier scores by embedding density: k-nearest-neighbour distance and LOF.
//!
//! # Why density, and why these two
//!
//! An input that nothing else resembles (a pasted log, a spam line, a message in another register)
//! sits far from its neighbours in embedding space. The mean cosine distance to the `k` nearest
//! neighbours says that directly and is cheap; LOF (local outlier factor) compares a point's
//! density with its neighbours' densities, so a sparse-but-uniform cell is not punished for being
//! sparse. Both are the textbook definitions (scikit-learn's `NearestNeighbors` and
//! `LocalOutlierFactor` give the same numbers up to float rounding and ties; BENCHMARKS.md
//! compares them).
//!
//! # Search
//!
//! Rows are L2-normalised, so cosine distance is `1 − dot`. Up to `brute_force_limit` rows every
//! row is compared with every other one, exactly, in blocks of queries spread over all cores with
//! rayon (a block of queries against all rows keeps the rows hot in cache). Beyond that, each row
//! is compared with a deterministic random *reference sample* of `reference_size` rows: the k-NN
//! distance to a sample estimates the same density at a coarser scale, ranks stay close, and the
//! cost is `n × reference_size` instead of `n²`.

use rayon::prelude::*;

use crate::generate::rng::Rng;

/// Which density score to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutlierMethod {
    /// Mean cosine distance to the k nearest neighbours.
    Knn,
    /// Local outlier factor over the k nearest neighbours (≈ 1 inside clusters, > 1 outside).
    Lof,
}

impl OutlierMethod {
    /// `knn` or `lof`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutlierMethod::Knn => "knn",
            OutlierMethod::Lof => "lof",
        }
    }
}

impl std::str::FromStr for OutlierMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "knn" => Ok(OutlierMethod::Knn),
            "lof" => Ok(OutlierMethod::Lof),
            other => Err(format!(
                "unknown outlier method `{other}` (choose knn or lof)"
            )),
        }
    }
}

/// Row-major matrix of L2-normalised rows.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// `n × dim` values.
    pub data: &'a [f32],
    /// Row length.
    pub dim: usize,
}

impl<'a> Rows<'a> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Dot product written so the compiler vectorises it (8 independent accumulators).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// The k nearest reference rows of every row: `(distance, reference index)` ascending.
#[derive(Debug, Clone)]
pub struct Neighbours {
    /// Neighbours per row (`k` each, fewer when the reference set is smaller).
    pub k: usize,
    /// `rows × k` distances, ascending per row.
    pub dist: Vec<f32>,
    /// `rows × k` positions in `reference`.
    pub idx: Vec<u32>,
    /// Indices (into the rows) of the reference set; `None` = all rows.
    pub reference: Option<Vec<u32>>,
}

/// Settings of the neighbour search.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchConfig {
    /// Neighbours per row.
    pub k: usize,
    /// Compare all pairs up to this many rows.
    pub brute_force_limit: usize,
    /// Beyond the limit, the size of the random reference sample.
    pub reference_size: usize,
    /// Seed of the reference sample.
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            k: 10,
            brute_force_limit: 50_000,
            reference_size: 20_000,
            seed: 0,
        }
    }
}

const BLOCK: usize = 64;

/// k-NN of every row among the reference set (all rows up to the limit), itself excluded.
pub fn knn(rows: Rows<'_>, config: &SearchConfig) -> Neighbours {
    let n = rows.len();
    let reference: Option<Vec<u32>> = (n > config.brute_force_limit.max(1)).then(|| {
        let m = config.reference_size.clamp(1, n);
        sample_indices(n, m, config.seed, "outlier-reference")
    });
    let ref_len = reference.as_ref().map_or(n, Vec::len);
    let k = config
        .k
        .max(1)
        .min(ref_len.saturating_sub(1))
        .max(if ref_len > 1 { 1 } else { 0 });
    let mut dist = vec![0f32; n * k];
    let mut idx = vec![0u32; n * k];
    if k == 0 {
        return Neighbours {
            k,
            dist,
            idx,
            reference,
        };
    }
    let ref_row = |j: usize| -> usize { reference.as_ref().map_or(j, |r| r[j] as usize) };
    dist.par_chunks_mut(BLOCK * k)
        .zip(idx.par_chunks_mut(BLOCK * k))
        .enumerate()
        .for_each(|(block, (dist, idx))| {
            let start = block * BLOCK;
            let count = dist.len() / k;
            // Per query, a small sorted list of the best k (insertion; k is small).
            let mut best: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(k + 1); count];
            let mut offer = |q: usize, j: usize, rj: usize, dot: f32| {
                if start + q == rj {
                    return;
                }
                let d = 1.0 - dot;
                let list = &mut best[q];
                if list.len() == k && d >= list[k - 1].0 {
                    return;
                }
                let pos = list.partition_point(|&(x, _)| x <= d);
                list.insert(pos, (d, j as u32));
                list.truncate(k);
            };
            // One reference row against the whole block of queries: the block (64 rows) stays in
            // cache while the reference rows stream past once per block. (A 4 × 2 register-tiled
            // kernel was tried and was 6× slower here: it spilled and did not vectorise.)
            for j in 0..ref_len {
                let rj = ref_row(j);
                let r = rows.row(rj);
                for q in 0..count {
                    offer(q, j, rj, dot(rows.row(start + q), r));
                }
            }
            for (q, list) in best.iter().enumerate() {
                for (slot, &(d, j)) in list.iter().enumerate() {
                    dist[q * k + slot] = d.max(0.0);
                    idx[q * k + slot] = j;
                }
                // Fewer candidates than k (only when the reference holds the row itself): repeat
                // the farthest so means stay defined.
                for slot in list.len()..k {
                    let (d, j) = list.last().copied().unwrap_or((1.0, 0));
                    dist[q * k + slot] = d.max(0.0);
                    idx[q * k + slot] = j;
                }
            }
        });
    Neighbours {
        k,
        dist,
        idx,
        reference,
    }
}

/// Mean distance to the k nearest neighbours, per row.
pub fn knn_scores(nb: &Neighbours) -> Vec<f64> {
    if nb.k == 0 {
        return vec![0.0; nb.dist.len()];
    }
    nb.dist
        .chunks(nb.k)
        .map(|d| d.iter().map(|&x| x as f64).sum::<f64>() / nb.k as f64)
        .collect()
}

/// Local outlier factor per row (Breunig et al. 2000), over the same neighbour lists.
///
/// `k-distance(o)` of a reference row is its distance to its own k-th neighbour; reachability
/// `reach(p, o) = max(k-distance(o), d(p, o))`; `lrd(p) = 1 / mean reach(p, ·)`;
/// `LOF(p) = mean lrd(o) over p's neighbours / lrd(p)`.
pub fn lof_scores(nb: &Neighbours) -> Vec<f64> {
    let k = nb.k;
    if k == 0 {
        return vec![1.0; nb.dist.len()];
    }
    let n = nb.dist.len() / k;
    let row_of_ref = |j: u32| -> usize {
        nb.reference
            .as_ref()
            .map_or(j as usize, |r| r[j as usize] as usize)
    };
    let ref_len = nb.reference.as_ref().map_or(n, Vec::len);
    let kdist_ref: Vec<f64> = (0..ref_len)
        .map(|j| nb.dist[row_of_ref(j as u32) * k + k - 1] as f64)
        .collect();
    let lrd = |p: usize| -> f64 {
        let mut reach = 0.0;
        for s in 0..k {
            let o = nb.idx[p * k + s] as usize;
            reach += (nb.dist[p * k + s] as f64).max(kdist_ref[o]);
        }
        // scikit-learn adds 1e-10 to avoid dividing by zero on duplicates; so do we.
        1.0 / (reach / k as f64 + 1e-10)
    };
    let lrd_all: Vec<f64> = (0..n).into_par_iter().map(lrd).collect();
    (0..n)
        .into_par_iter()
        .map(|p| {
            let mean: f64 = (0..k)
                .map(|s| lrd_all[row_of_ref(nb.idx[p * k + s])])
                .sum::<f64>()
                / k as f64;
            mean / lrd_all[p]
        })
        .collect()
}

/// Percentile rank of every score: 100 × (scores strictly below) / (n − 1); the top one is 100.
pub fn percentiles(scores: &[f64]) -> Vec<f64> {
    let n = scores.len();
    if n <= 1 {
        return vec![100.0; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut out = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        for &o in &order[i..=j] {
            out[o] = 100.0 * i as f64 / (n - 1) as f64;
        }
        i = j + 1;
    }
    out
}

/// `m` distinct indices below `n`, sorted, the same for the same seed and label.
pub fn sample_indices(n: usize, m: usize, seed: u64, label: &str) -> Vec<u32> {
    if m >= n {
        return (0..n as u32).collect();
    }
    // Partial Fisher–Yates over an index vector: O(n) memory, fine up to tens of millions.
    let mut rng = Rng::new(seed, label, n as u64);
    let mut all: Vec<u32> = (0..n as u32).collect();
    for i in 0..m {
        let j = i + rng.below(n - i);
        all.swap(i, j);
    }
    all.truncate(m);
    all.sort_unstable();
    all
}
