//! Diversity figures for a set of texts: the measure of synthetic data's main weakness.
//!
//! - **distinct-n** (n = 1, 2, 3): distinct word n-grams / all word n-grams (lower-cased words).
//!   Cheap and wording-level; falls as texts repeat each other's phrases.
//! - **mean pairwise similarity**: mean cosine between embeddings of random pairs (up to
//!   `MAX_PAIRS`, seeded), so it stays linear in the number of texts. Meaning-level.
//! - **Vendi score**: the exponential of the Shannon entropy of the eigenvalues of K/n, where K
//!   is the cosine kernel of the (L2-normalised) embeddings: the "effective number of distinct
//!   texts" (1 when all are the same, n when all are orthogonal). Scaling past 10k texts: for a
//!   linear kernel K = XXᵀ, the non-zero eigenvalues of K/n equal those of the d×d matrix XᵀX/n,
//!   so we accumulate that d×d matrix in one pass (O(n·d²)) and take its eigenvalues with a
//!   Jacobi sweep (O(d³)). When d > `MAX_VENDI_DIM` the embeddings are first projected onto
//!   `MAX_VENDI_DIM` seeded Gaussian directions and renormalised (Johnson–Lindenstrauss: cosines
//!   are kept approximately); that projection is the only approximation. A set of at most
//!   `MAX_VENDI_DIM` texts (a cell) takes the exact n×n kernel instead, which is smaller. Note:
//!   with this exact linear kernel the score can never exceed the embedding dimension.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

/// Most random pairs for the mean pairwise similarity.
pub const MAX_PAIRS: usize = 20_000;
/// Embedding dimension above which the Vendi score uses a random projection.
pub const MAX_VENDI_DIM: usize = 128;

/// The figures for one set of texts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiversityFigures {
    /// Number of texts.
    pub n: usize,
    /// Distinct unigrams / unigrams.
    pub distinct_1: f64,
    /// Distinct bigrams / bigrams.
    pub distinct_2: f64,
    /// Distinct trigrams / trigrams.
    pub distinct_3: f64,
    /// Mean cosine between random pairs (None without embeddings or with fewer than 2 texts).
    pub mean_pairwise_similarity: Option<f64>,
    /// Vendi score (None without embeddings).
    pub vendi: Option<f64>,
}

/// Overall figures, the mean of per-cell figures, and per cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiversityReport {
    /// All texts together.
    pub overall: DiversityFigures,
    /// The mean over cells with at least two texts (how varied a cell is inside).
    pub per_cell_mean: DiversityFigures,
    /// Cells with at least two texts.
    pub cells_measured: usize,
    /// Per cell key.
    pub per_cell: BTreeMap<String, DiversityFigures>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Distinct word n-grams / all word n-grams over `texts` (0 when there are none).
pub fn distinct_n(texts: &[&str], n: usize) -> f64 {
    let n = n.max(1);
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut total = 0usize;
    for t in texts {
        let w = words(t);
        for gram in w.windows(n) {
            total += 1;
            seen.insert(gram.to_vec());
        }
    }
    if total == 0 {
        0.0
    } else {
        seen.len() as f64 / total as f64
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Mean cosine of random pairs (all pairs when there are few). Embeddings must be normalised.
pub fn mean_pairwise_similarity(embeddings: &[Vec<f32>], seed: u64) -> Option<f64> {
    let n = embeddings.len();
    if n < 2 {
        return None;
    }
    let all_pairs = n * (n - 1) / 2;
    let mut sum = 0.0;
    let mut count = 0usize;
    if all_pairs <= MAX_PAIRS {
        for i in 0..n {
            for j in i + 1..n {
                sum += dot(&embeddings[i], &embeddings[j]);
                count += 1;
            }
        }
    } else {
        let mut state = seed;
        while count < MAX_PAIRS {
            let i = (splitmix(&mut state) % n as u64) as usize;
            let j = (splitmix(&mut state) % n as u64) as usize;
            if i == j {
                continue;
            }
            sum += dot(&embeddings[i], &embeddings[j]);
            count += 1;
        }
    }
    Some(sum / count as f64)
}

/// A standard normal draw (Box–Muller) from the splitmix stream.
fn gaussian(state: &mut u64) -> f64 {
    let u1 = ((splitmix(state) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = ((splitmix(state) >> 11) as f64) / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Vendi score of normalised embeddings (see the module docs for the method).
pub fn vendi_score(embeddings: &[Vec<f32>], seed: u64) -> Option<f64> {
    let n = embeddings.len();
    let d = embeddings.first()?.len();
    if n == 0 || d == 0 {
        return None;
    }
    if n <= MAX_VENDI_DIM.min(d) {
        return Some(vendi_from_gram(embeddings));
    }
    let k = d.min(MAX_VENDI_DIM);
    let projection: Option<Vec<Vec<f64>>> = (d > k).then(|| {
        let mut state = seed ^ 0x5eed;
        (0..k)
            .map(|_| (0..d).map(|_| gaussian(&mut state)).collect())
            .collect()
    });
    let mut cov = vec![0.0f64; k * k];
    let mut row = vec![0.0f64; k];
    for e in embeddings {
        match &projection {
            Some(p) => {
                for (r, dir) in row.iter_mut().zip(p) {
                    *r = dir.iter().zip(e).map(|(a, b)| a * *b as f64).sum();
                }
            }
            None => {
                for (r, x) in row.iter_mut().zip(e) {
                    *r = *x as f64;
                }
            }
        }
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        for r in row.iter_mut() {
            *r /= norm;
        }
        for a in 0..k {
            for b in a..k {
                cov[a * k + b] += row[a] * row[b];
            }
        }
    }
    for a in 0..k {
        for b in a..k {
            cov[a * k + b] /= n as f64;
            cov[b * k + a] = cov[a * k + b];
        }
    }
    let eig = jacobi_eigenvalues(&mut cov, k);
    Some(vendi_from_eigenvalues(&eig))
}

/// The exact score of a small set (n ≤ `MAX_VENDI_DIM`) from its n×n cosine kernel: K/n has the
/// same non-zero eigenvalues as XᵀX/n, and for a few texts (a cell of a plan) n×n is far smaller
/// than d×d, with no projection needed. Per-cell figures of thousands of small cells stay cheap.
fn vendi_from_gram(embeddings: &[Vec<f32>]) -> f64 {
    let rows: Vec<Vec<f64>> = embeddings
        .iter()
        .map(|e| {
            let norm = e.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            e.iter()
                .map(|x| {
                    if norm > 0.0 {
                        f64::from(*x) / norm
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let n = rows.len();
    let mut gram = vec![0.0f64; n * n];
    for a in 0..n {
        for b in a..n {
            let v = rows[a]
                .iter()
                .zip(&rows[b])
                .map(|(x, y)| x * y)
                .sum::<f64>()
                / n as f64;
            gram[a * n + b] = v;
            gram[b * n + a] = v;
        }
    }
    vendi_from_eigenvalues(&jacobi_eigenvalues(&mut gram, n))
}

/// exp(entropy) of the eigenvalues, normalised to sum to one.
fn vendi_from_eigenvalues(eig: &[f64]) -> f64 {
    let total: f64 = eig.iter().filter(|l| **l > 0.0).sum();
    if total <= 0.0 {
        return 1.0;
    }
    let entropy: f64 = eig
        .iter()
        .filter(|l| **l > 1e-12)
        .map(|l| {
            let p = l / total;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}

/// Eigenvalues of a symmetric k×k matrix (row-major, overwritten) by cyclic Jacobi rotations.
fn jacobi_eigenvalues(a: &mut [f64], k: usize) -> Vec<f64> {
    for _sweep in 0..50 {
        let off: f64 = (0..k)
            .flat_map(|p| (0..k).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * k + q].powi(2))
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[p * k + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * k + q] - a[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let arp = a[r * k + p];
                    let arq = a[r * k + q];
                    a[r * k + p] = c * arp - s * arq;
                    a[r * k + q] = s * arp + c * arq;
                }
                for r in 0..k {
                    let apr = a[p * k + r];
                    let aqr = a[q * k + r];
                    a[p * k + r] = c * apr - s * aqr;
                    a[q * k + r] = s * apr + c * aqr;
                }
            }
        }
    }
    (0..k).map(|i| a[i * k + i]).collect()
}

/// All figures for one set of texts (and their embeddings, in the same order, if any).
pub fn figures(texts: &[&str], embeddings: Option<&[Vec<f32>]>, seed: u64) -> DiversityFigures {
    DiversityFigures {
        n: texts.len(),
        distinct_1: distinct_n(texts, 1),
        distinct_2: distinct_n(texts, 2),
        distinct_3: distinct_n(texts, 3),
        mean_pairwise_similarity: embeddings.and_then(|e| mean_pairwise_similarity(e, seed)),
        vendi: embeddings.and_then(|e| vendi_score(e, seed)),
    }
}

/// Overall and per-cell figures. `items` are (cell key, text); `embeddings` align with them.
pub fn report(
    items: &[(String, String)],
    embeddings: Option<&[Vec<f32>]>,
    seed: u64,
) -> DiversityReport {
    let texts: Vec<&str> = items.iter().map(|(_, t)| t.as_str()).collect();
    let overall = figures(&texts, embeddings, seed);
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (cell, _)) in items.iter().enumerate() {
        groups.entry(cell.as_str()).or_default().push(i);
    }
    let mut per_cell = BTreeMap::new();
    for (cell, idx) in groups {
        if idx.len() < 2 {
            continue;
        }
        let t: Vec<&str> = idx.iter().map(|&i| texts[i]).collect();
        let e: Option<Vec<Vec<f32>>> =
            embeddings.map(|e| idx.iter().map(|&i| e[i].clone()).collect());
        per_cell.insert(cell.to_string(), figures(&t, e.as_deref(), seed));
    }
    let m = per_cell.len();
    let mean = |f: &dyn Fn(&DiversityFigures) -> f64| {
        if m == 0 {
            0.0
        } else {
            per_cell.values().map(f).sum::<f64>() / m as f64
        }
    };
    let mean_opt = |f: &dyn Fn(&DiversityFigures) -> Option<f64>| {
        let v: Vec<f64> = per_cell.values().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let per_cell_mean = DiversityFigures {
        n: per_cell
            .values()
            .map(|f| f.n)
            .sum::<usize>()
            .checked_div(m)
            .unwrap_or(0),
        distinct_1: mean(&|f| f.distinct_1),
        distinct_2: mean(&|f| f.distinct_2),
        distinct_3: mean(&|f| f.distinct_3),
        mean_pairwise_similarity: mean_opt(&|f| f.mean_pairwise_similarity),
        vendi: mean_opt(&|f| f.vendi),
    };
    DiversityReport {
        overall,
        per_cell_mean,
        cells_measured: m,
        per_cell,
    }
}

impl DiversityFigures {
    /// One line: `n 200  distinct-1/2/3 0.31/0.72/0.90  mean-sim 0.21  vendi 48.3`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "n {}  distinct-1/2/3 {:.2}/{:.2}/{:.2}",
            self.n, self.distinct_1, self.distinct_2, self.distinct_3
        );
        if let Some(m) = self.mean_pairwise_similarity {
            s.push_str(&format!("  mean-sim {m:.3}"));
        }
        if let Some(v) = self.vendi {
            s.push_str(&format!("  vendi {v:.1}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn distinct_counts() {
        assert_eq!(distinct_n(&["a b a b"], 1), 0.5);
        assert!((distinct_n(&["a b c", "a b d"], 2) - 3.0 / 4.0).abs() < 1e-9);
        assert_eq!(distinct_n(&[""], 2), 0.0);
    }

    #[test]
    fn vendi_bounds() {
        let same = vec![unit(vec![1.0, 2.0, 3.0]); 10];
        assert!((vendi_score(&same, 0).expect("v") - 1.0).abs() < 1e-6);
        let ortho: Vec<Vec<f32>> = (0..4)
            .map(|i| (0..4).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect();
        assert!((vendi_score(&ortho, 0).expect("v") - 4.0).abs() < 1e-6);
        // A small set takes the exact kernel: 20 orthogonal 300-d vectors are 20 distinct texts.
        let big: Vec<Vec<f32>> = (0..20)
            .map(|i| (0..300).map(|j| if j == i { 1.0 } else { 0.0 }).collect())
            .collect();
        let v = vendi_score(&big, 3).expect("v");
        assert!((v - 20.0).abs() < 1e-6, "{v}");
        // Past MAX_VENDI_DIM texts, the projection path: 20 distinct texts repeated 10 times
        // each are still about 20 distinct texts.
        let repeated: Vec<Vec<f32>> = (0..200).map(|i| big[i % 20].clone()).collect();
        let v = vendi_score(&repeated, 3).expect("v");
        assert!(v > 14.0 && v <= 20.0 + 1e-6, "{v}");
        assert!((mean_pairwise_similarity(&same, 0).expect("m") - 1.0).abs() < 1e-6);
    }

    #[test]
    fn small_sets_score_the_same_by_kernel_as_by_covariance() {
        // 40 random 64-d vectors: no projection either way, so both routes are exact.
        let mut state = 11u64;
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|_| unit((0..64).map(|_| gaussian(&mut state) as f32).collect()))
            .collect();
        let by_kernel = vendi_score(&rows, 0).expect("v");
        // The d×d covariance route, computed here on exactly these rows.
        let mut cov = vec![0.0f64; 64 * 64];
        for r in &rows {
            for a in 0..64 {
                for b in 0..64 {
                    cov[a * 64 + b] += f64::from(r[a]) * f64::from(r[b]) / 40.0;
                }
            }
        }
        let by_cov = vendi_from_eigenvalues(&jacobi_eigenvalues(&mut cov, 64));
        assert!((by_kernel - by_cov).abs() < 1e-6, "{by_kernel} vs {by_cov}");
        assert!(by_kernel > 20.0 && by_kernel < 40.0, "{by_kernel}");
    }
}
