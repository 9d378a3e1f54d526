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
//! Rows are L2-normalised, so cosine distance is `1 − dot`. Distances come in blocks from a
//! GEMM (`gemm` crate, [`dot_matrix`]): 256 query rows against 1,024 reference rows at a time,
//! blocks spread over all cores with rayon, and a sorted top-k list per query row. Up to
//! `brute_force_limit` rows every row is compared with every other one, exactly. Beyond that,
//! each row is compared with a deterministic random *reference sample* of `reference_size` rows
//! ([`ReferenceScorer`] streams any number of rows past it, keeping one score per row).
//!
//! Why a sample is enough: the distance from a point to its k-th nearest neighbour among `m`
//! points drawn from the data is the radius of a ball holding about `k / m` of the probability
//! mass around it, so `k / (m · volume)` estimates the density there, consistently as `m` grows
//! with `k / m → 0` (Loftsgaarden & Quesenberry 1965). The outlier flag only needs the *ranking*
//! of those densities at the top percentile, and a sample of a few thousand points resolves
//! balls holding a fraction of a percent of the mass; BENCHMARKS.md measures the agreement with
//! the exact scores (Spearman, top-1 % overlap) per sample size. The cost is then
//! `n × reference_size` instead of `n²`.

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
            brute_force_limit: 20_000,
            reference_size: 2_000,
            seed: 0,
        }
    }
}

/// Query rows per GEMM block (one rayon task each).
const QUERY_BLOCK: usize = 256;
/// Reference rows per GEMM block: 256 × 1024 distances (1 MB) stay in cache while the top-k
/// lists are updated.
const REFERENCE_BLOCK: usize = 1024;

/// `out[i × b.len() + j] = a_i · b_j` for two row-major matrices of the same width.
///
/// The product goes through the `gemm` crate (packed, register-tiled kernels chosen at run time
/// for the CPU: AVX2/FMA, AVX-512, NEON); a hand-written blocked dot product reached a third of
/// its speed. Single-threaded: callers spread blocks over rayon themselves.
#[allow(unsafe_code)]
pub fn dot_matrix(a: Rows<'_>, b: Rows<'_>, out: &mut [f32]) {
    let (m, n, d) = (a.len(), b.len(), a.dim);
    assert_eq!(a.dim, b.dim, "dot_matrix: row widths differ");
    assert_eq!(out.len(), m * n, "dot_matrix: output size");
    assert!(a.data.len() == m * d && b.data.len() == n * d);
    if m == 0 || n == 0 {
        return;
    }
    if d == 0 {
        out.fill(0.0);
        return;
    }
    // SAFETY: `gemm` reads `a` as an m × d matrix (row stride d, column stride 1), `b` as a
    // d × n matrix (element (l, j) at j·d + l) and writes `out` as m × n (row stride n); the
    // asserts above guarantee every address it touches lies inside the three slices, and `out`
    // is a unique borrow so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            d,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            1,
            d as isize,
            b.data.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The best `k` of one query: a sorted list (insertion; k is small), earlier reference rows
/// winning ties.
#[inline]
fn offer(list: &mut Vec<(f32, u32)>, k: usize, d: f32, j: u32) {
    if list.len() == k && d >= list[k - 1].0 {
        return;
    }
    let pos = list.partition_point(|&(x, _)| x <= d);
    list.insert(pos, (d, j));
    list.truncate(k);
}

/// k nearest rows of `reference` for each row of `queries`: `(dist, idx)`, `queries.len() × k`
/// each, ascending per row. `query_ids[q]` and `reference_ids[j]` name the rows globally; a
/// reference row with the query's own id is skipped (a point is not its own neighbour). When
/// fewer than `k` candidates remain the farthest is repeated so means stay defined.
pub fn knn_block(
    queries: Rows<'_>,
    query_ids: &[u32],
    reference: Rows<'_>,
    reference_ids: &[u32],
    k: usize,
) -> (Vec<f32>, Vec<u32>) {
    let nq = queries.len();
    let mut best: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(k + 1); nq];
    let mut dots = vec![0f32; nq * REFERENCE_BLOCK.min(reference.len())];
    let dim = reference.dim;
    for (c, chunk) in reference.data.chunks(REFERENCE_BLOCK * dim).enumerate() {
        let block = Rows { data: chunk, dim };
        let nr = block.len();
        let base = c * REFERENCE_BLOCK;
        let out = &mut dots[..nq * nr];
        dot_matrix(queries, block, out);
        for (q, list) in best.iter_mut().enumerate() {
            let own = query_ids[q];
            for (j, &dot) in out[q * nr..(q + 1) * nr].iter().enumerate() {
                let d = 1.0 - dot;
                if list.len() == k && d >= list[k - 1].0 {
                    continue;
                }
                if reference_ids[base + j] == own {
                    continue;
                }
                offer(list, k, d, (base + j) as u32);
            }
        }
    }
    let mut dist = vec![0f32; nq * k];
    let mut idx = vec![0u32; nq * k];
    for (q, list) in best.iter().enumerate() {
        for slot in 0..k {
            let (d, j) = list.get(slot).or(list.last()).copied().unwrap_or((1.0, 0));
            dist[q * k + slot] = d.max(0.0);
            idx[q * k + slot] = j;
        }
    }
    (dist, idx)
}

/// The number of neighbours actually used with `ref_len` reference rows.
fn effective_k(k: usize, ref_len: usize) -> usize {
    k.max(1)
        .min(ref_len.saturating_sub(1))
        .max(if ref_len > 1 { 1 } else { 0 })
}

/// k-NN of every row among the reference set (all rows up to the limit), itself excluded.
pub fn knn(rows: Rows<'_>, config: &SearchConfig) -> Neighbours {
    let n = rows.len();
    let reference: Option<Vec<u32>> = (n > config.brute_force_limit.max(1)).then(|| {
        let m = config.reference_size.clamp(1, n);
        sample_indices(n, m, config.seed, "outlier-reference")
    });
    let ref_len = reference.as_ref().map_or(n, Vec::len);
    let k = effective_k(config.k, ref_len);
    if k == 0 {
        return Neighbours {
            k,
            dist: vec![0f32; n * k],
            idx: vec![0u32; n * k],
            reference,
        };
    }
    let gathered;
    let (ref_rows, ref_ids): (Rows<'_>, Vec<u32>) = match &reference {
        Some(r) => {
            gathered = gather(rows, r);
            (
                Rows {
                    data: &gathered,
                    dim: rows.dim,
                },
                r.clone(),
            )
        }
        None => (rows, (0..n as u32).collect()),
    };
    let blocks: Vec<(Vec<f32>, Vec<u32>)> = (0..n.div_ceil(QUERY_BLOCK))
        .into_par_iter()
        .map(|b| {
            let start = b * QUERY_BLOCK;
            let end = (start + QUERY_BLOCK).min(n);
            let queries = Rows {
                data: &rows.data[start * rows.dim..end * rows.dim],
                dim: rows.dim,
            };
            let ids: Vec<u32> = (start as u32..end as u32).collect();
            knn_block(queries, &ids, ref_rows, &ref_ids, k)
        })
        .collect();
    let mut dist = Vec::with_capacity(n * k);
    let mut idx = Vec::with_capacity(n * k);
    for (d, i) in blocks {
        dist.extend_from_slice(&d);
        idx.extend_from_slice(&i);
    }
    Neighbours {
        k,
        dist,
        idx,
        reference,
    }
}

/// The rows `idx` of `rows`, copied into one contiguous matrix.
pub fn gather(rows: Rows<'_>, idx: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * rows.dim);
    for &i in idx {
        out.extend_from_slice(rows.row(i as usize));
    }
    out
}

/// Outlier scores against a fixed reference sample, one block of rows at a time: what the
/// streaming path of `select` uses when the embeddings do not stay in memory.
///
/// Built once from the reference rows (their own k-NN among the sample gives the k-distances
/// and local reachability densities LOF needs); then [`ReferenceScorer::score`] scores any
/// block of rows with a GEMM against the sample and keeps only one number per row. The scores
/// are those of [`knn`] + [`knn_scores`] / [`lof_scores`] with the same reference sample.
pub struct ReferenceScorer {
    method: OutlierMethod,
    k: usize,
    dim: usize,
    /// The sample's rows, contiguous.
    rows: Vec<f32>,
    /// The sample's global row ids (to skip a row's own copy).
    ids: Vec<u32>,
    /// k-distance of each sample row (LOF).
    kdist: Vec<f64>,
    /// Local reachability density of each sample row (LOF).
    lrd: Vec<f64>,
}

impl ReferenceScorer {
    /// From the sample's rows (`ids` are their global row ids, sorted).
    pub fn new(
        method: OutlierMethod,
        k: usize,
        sample: Vec<f32>,
        ids: Vec<u32>,
        dim: usize,
    ) -> Self {
        let m = ids.len();
        let k = effective_k(k, m);
        let mut scorer = ReferenceScorer {
            method,
            k,
            dim,
            rows: sample,
            ids,
            kdist: Vec::new(),
            lrd: Vec::new(),
        };
        if k == 0 || method == OutlierMethod::Knn {
            return scorer;
        }
        let refs = scorer.reference();
        let blocks: Vec<(Vec<f32>, Vec<u32>)> = (0..m.div_ceil(QUERY_BLOCK))
            .into_par_iter()
            .map(|b| {
                let (start, end) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(m));
                let q = Rows {
                    data: &refs.data[start * dim..end * dim],
                    dim,
                };
                knn_block(q, &scorer.ids[start..end], refs, &scorer.ids, k)
            })
            .collect();
        let (dist, idx): (Vec<f32>, Vec<u32>) =
            blocks
                .into_iter()
                .fold((Vec::new(), Vec::new()), |(mut d, mut i), (bd, bi)| {
                    d.extend(bd);
                    i.extend(bi);
                    (d, i)
                });
        let kdist: Vec<f64> = (0..m).map(|j| dist[j * k + k - 1] as f64).collect();
        let lrd: Vec<f64> = (0..m)
            .map(|p| lrd_of(&dist[p * k..(p + 1) * k], &idx[p * k..(p + 1) * k], &kdist))
            .collect();
        scorer.kdist = kdist;
        scorer.lrd = lrd;
        scorer
    }

    /// The neighbours used per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The sample size.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for an empty sample.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn reference(&self) -> Rows<'_> {
        Rows {
            data: &self.rows,
            dim: self.dim,
        }
    }

    /// Scores of the rows `block` whose global ids start at `first_id`, in parallel.
    pub fn score(&self, block: Rows<'_>, first_id: u32) -> Vec<f64> {
        let n = block.len();
        let k = self.k;
        if k == 0 {
            let empty = match self.method {
                OutlierMethod::Knn => 0.0,
                OutlierMethod::Lof => 1.0,
            };
            return vec![empty; n];
        }
        let refs = self.reference();
        (0..n.div_ceil(QUERY_BLOCK))
            .into_par_iter()
            .flat_map_iter(|b| {
                let (start, end) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(n));
                let q = Rows {
                    data: &block.data[start * self.dim..end * self.dim],
                    dim: self.dim,
                };
                let ids: Vec<u32> = (first_id + start as u32..first_id + end as u32).collect();
                let (dist, idx) = knn_block(q, &ids, refs, &self.ids, k);
                (0..end - start)
                    .map(|p| {
                        let (d, i) = (&dist[p * k..(p + 1) * k], &idx[p * k..(p + 1) * k]);
                        match self.method {
                            OutlierMethod::Knn => {
                                d.iter().map(|&x| x as f64).sum::<f64>() / k as f64
                            }
                            OutlierMethod::Lof => {
                                let mean: f64 =
                                    i.iter().map(|&o| self.lrd[o as usize]).sum::<f64>() / k as f64;
                                mean / lrd_of(d, i, &self.kdist)
                            }
                        }
                    })
                    .collect::<Vec<f64>>()
            })
            .collect()
    }
}

/// Local reachability density of a row from its neighbour list and the neighbours' k-distances.
fn lrd_of(dist: &[f32], idx: &[u32], kdist: &[f64]) -> f64 {
    let k = dist.len();
    let reach: f64 = dist
        .iter()
        .zip(idx)
        .map(|(&d, &o)| (d as f64).max(kdist[o as usize]))
        .sum();
    // scikit-learn adds 1e-10 to avoid dividing by zero on duplicates; so do we.
    1.0 / (reach / k as f64 + 1e-10)
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
        lrd_of(
            &nb.dist[p * k..(p + 1) * k],
            &nb.idx[p * k..(p + 1) * k],
            &kdist_ref,
        )
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
