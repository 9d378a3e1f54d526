//! Semantic duplicates: embedding cosine ≥ a threshold.
//!
//! # Memory
//!
//! Vectors are stored as `i8` (each unit vector scaled so its largest component is ±127), one
//! byte per dimension: 2M records × 384 dims (MiniLM) = 768 MB, × 256 (static) = 512 MB, instead
//! of four times that in `f32`. The cosine is computed exactly on the quantised vectors (integer
//! dot product over the product of their norms); quantisation moves a cosine by about ±0.005.
//!
//! # Search
//!
//! - Up to `brute_force_limit` vectors (default 20k): every pair, in blocks over rayon. Exact.
//! - Beyond: random-hyperplane LSH (SimHash): `TABLES` tables of `BITS` sign bits each. A pair
//!   at cosine 0.95 lands in the same bucket of one table with probability ≈ 0.9^16 ≈ 0.19, so in
//!   at least one of 24 tables with probability ≈ 0.99; pairs at cosine 0.3 almost never do.
//!   Inside a bucket each vector is checked against at most `WINDOW` earlier members.
//!   Approximate: a duplicate can be missed, a reported pair is always verified.
//!
//! Either way each vector is linked to its most similar *earlier* vector at or above the
//! threshold, so the result does not depend on the number of threads.

use rayon::prelude::*;

/// Sign bits per SimHash table.
pub const BITS: usize = 16;
/// SimHash tables.
pub const TABLES: usize = 24;
/// Earlier bucket members a vector is compared with.
pub const WINDOW: usize = 64;

/// Quantised unit vectors, stored flat.
#[derive(Debug, Default)]
pub struct VectorStore {
    dim: usize,
    data: Vec<i8>,
    norms: Vec<f32>,
}

impl VectorStore {
    /// An empty store for vectors of `dim` components.
    pub fn new(dim: usize) -> VectorStore {
        VectorStore {
            dim,
            data: Vec::new(),
            norms: Vec::new(),
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// Quantises and appends one vector (any length is cut or zero-padded to `dim`).
    pub fn push(&mut self, v: &[f32]) {
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 && max.is_finite() {
            127.0 / max
        } else {
            0.0
        };
        let start = self.data.len();
        self.data.extend((0..self.dim).map(|i| {
            let x = v.get(i).copied().unwrap_or(0.0);
            (x * scale).round().clamp(-127.0, 127.0) as i8
        }));
        let q = &self.data[start..];
        let norm = q
            .iter()
            .map(|&x| (x as i32 * x as i32) as f32)
            .sum::<f32>()
            .sqrt();
        self.norms.push(norm);
    }

    fn row(&self, i: usize) -> &[i8] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Cosine of vectors `i` and `j` (0 when either is the zero vector).
    pub fn cosine(&self, i: usize, j: usize) -> f32 {
        let (ni, nj) = (self.norms[i], self.norms[j]);
        if ni == 0.0 || nj == 0.0 {
            return 0.0;
        }
        dot_i8(self.row(i), self.row(j)) as f32 / (ni * nj)
    }

    /// The stored vector most similar to `v`, `(index, cosine)`, by an exact scan over rayon
    /// (ties go to the lowest index); `None` when the store is empty. Used by `generate` to
    /// check each candidate against everything known so far.
    pub fn nearest(&self, v: &[f32]) -> Option<(usize, f32)> {
        let mut q = VectorStore::new(self.dim);
        q.push(v);
        let (qrow, qnorm) = (q.row(0), q.norms[0]);
        (0..self.len())
            .into_par_iter()
            .with_min_len(2048)
            .map(|i| {
                let n = self.norms[i];
                let c = if n == 0.0 || qnorm == 0.0 {
                    0.0
                } else {
                    dot_i8(qrow, self.row(i)) as f32 / (n * qnorm)
                };
                (i, c)
            })
            .reduce_with(|a, b| {
                if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
                    b
                } else {
                    a
                }
            })
    }

    /// For every vector, its best earlier match `(earlier, cosine)` with cosine ≥ `threshold`.
    pub fn best_earlier_matches(
        &self,
        threshold: f32,
        brute_force_limit: usize,
        seed: u64,
    ) -> Vec<(u32, u32, f32)> {
        let n = self.len();
        let mut edges: Vec<(u32, u32, f32)> = if n <= brute_force_limit {
            (1..n)
                .into_par_iter()
                .with_min_len(64)
                .filter_map(|i| {
                    let mut best: Option<(usize, f32)> = None;
                    for j in 0..i {
                        let c = self.cosine(i, j);
                        if c >= threshold && best.is_none_or(|(_, b)| c > b) {
                            best = Some((j, c));
                        }
                    }
                    best.map(|(j, c)| (j as u32, i as u32, c))
                })
                .collect()
        } else {
            self.lsh_matches(threshold, seed)
        };
        edges.sort_by_key(|a| (a.1, a.0));
        edges
    }

    fn lsh_matches(&self, threshold: f32, seed: u64) -> Vec<(u32, u32, f32)> {
        let n = self.len();
        // Hyperplanes with random ±1 components (Achlioptas): as good as Gaussian for SimHash.
        let mut state = seed ^ 0x5eed_5e3a_u64;
        let planes: Vec<i8> = (0..TABLES * BITS * self.dim)
            .map(|_| {
                if super::minhash::splitmix(&mut state) & 1 == 0 {
                    1
                } else {
                    -1
                }
            })
            .collect();
        let keys: Vec<[u16; TABLES]> = (0..n)
            .into_par_iter()
            .with_min_len(256)
            .map(|i| {
                let row = self.row(i);
                let mut key = [0u16; TABLES];
                for (t, k) in key.iter_mut().enumerate() {
                    for bit in 0..BITS {
                        let p = (t * BITS + bit) * self.dim;
                        if dot_i8(row, &planes[p..p + self.dim]) >= 0 {
                            *k |= 1 << bit;
                        }
                    }
                }
                key
            })
            .collect();
        // Best match per vector over all tables; deterministic merge (max cosine, then lowest j).
        let per_table: Vec<Vec<(u32, u32, f32)>> = (0..TABLES)
            .into_par_iter()
            .map(|t| {
                let mut order: Vec<(u16, u32)> = (0..n).map(|i| (keys[i][t], i as u32)).collect();
                order.sort_unstable();
                let mut out = Vec::new();
                for group in order.chunk_by(|a, b| a.0 == b.0) {
                    for (k, &(_, i)) in group.iter().enumerate().skip(1) {
                        let mut best: Option<(u32, f32)> = None;
                        for &(_, j) in group[k.saturating_sub(WINDOW)..k].iter() {
                            let c = self.cosine(i as usize, j as usize);
                            if c >= threshold
                                && best.is_none_or(|(bj, b)| c > b || (c == b && j < bj))
                            {
                                best = Some((j, c));
                            }
                        }
                        if let Some((j, c)) = best {
                            out.push((j, i, c));
                        }
                    }
                }
                out
            })
            .collect();
        let mut all: Vec<(u32, u32, f32)> = per_table.into_iter().flatten().collect();
        all.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
        all.dedup_by_key(|e| e.1);
        all
    }
}

/// Integer dot product, in 16-lane chunks so that LLVM vectorises it.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] as i32 * y[k] as i32;
        }
    }
    let tail: i32 = ra.iter().zip(rb).map(|(&x, &y)| x as i32 * y as i32).sum();
    acc.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn quantised_cosine_is_close() {
        let mut s = VectorStore::new(4);
        let a = unit(&[1.0, 2.0, 3.0, 4.0]);
        let b = unit(&[1.0, 2.0, 3.0, 5.0]);
        s.push(&a);
        s.push(&b);
        let truth: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((s.cosine(0, 1) - truth).abs() < 0.01);
    }

    #[test]
    fn brute_force_and_lsh_find_the_same_near_copies() {
        let dim = 64;
        let mut state = 1u64;
        let mut rnd = || (super::super::minhash::splitmix(&mut state) % 2000) as f32 / 1000.0 - 1.0;
        let mut s = VectorStore::new(dim);
        let mut bases = Vec::new();
        for _ in 0..300 {
            let v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
            bases.push(unit(&v));
        }
        for b in &bases {
            s.push(b);
        }
        // 50 near copies of the first 50 bases.
        for b in bases.iter().take(50) {
            let v: Vec<f32> = b.iter().map(|x| x + rnd() * 0.02).collect();
            s.push(&unit(&v));
        }
        let brute = s.best_earlier_matches(0.95, usize::MAX, 1);
        let lsh = s.best_earlier_matches(0.95, 0, 1);
        assert_eq!(brute.len(), 50);
        assert!(lsh.len() >= 45, "{}", lsh.len());
        for e in &lsh {
            assert!(brute.contains(e));
        }
    }
}
