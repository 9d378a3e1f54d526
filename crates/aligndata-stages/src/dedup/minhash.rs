//! MinHash signatures and LSH banding for near-duplicate detection.
//!
//! # Why this shape
//!
//! - **Shingles** are word n-grams or character n-grams of the normal form
//!   ([`super::normalize`]). Character 5-grams suit short messages (one changed word in a
//!   20-word post still leaves Jaccard ≈ 0.8); word n-grams suit long documents. A text shorter
//!   than one shingle is one shingle (the whole normal form).
//! - **Hashing**: each shingle is hashed once to 64 bits `h` (xxh3-64; word n-grams combine
//!   their words' xxh3 hashes by multiply-rotate and a splitmix finaliser); permutation `i` is
//!   the multiply-shift hash `(a_i·h + b_i) >> 32` with odd 64-bit `a_i` drawn from a fixed seed.
//!   One 64-bit multiply-add per shingle and permutation, no modular reduction (datasketch uses
//!   `(a·h + b) mod (2^61−1)` on SHA-1 hashes; the collision behaviour is the same, the cost is not).
//! - **b-bit storage**: only the low 8 bits of each of the `num_perm` minima are kept
//!   (b-bit MinHash, Li & König 2010): 128 permutations cost 128 bytes per record, so 2M
//!   records hold 256 MB of signatures instead of 1 GB. Two random 8-bit values agree with
//!   probability 1/256, so the fraction of agreeing positions `m` estimates
//!   `J = (m − 1/256) / (1 − 1/256)`; at 128 permutations that bias correction is smaller than the
//!   sampling noise (±0.035 around J = 0.8).
//! - **LSH**: the signature is cut into `bands` bands of `rows` rows; each band hashes to a 64-bit
//!   key; records that share a key in any band are candidates, and a candidate pair is kept only
//!   when its estimated Jaccard is ≥ the threshold. The default bands/rows are the ones
//!   datasketch's `MinHashLSH` picks for the same threshold and permutation count (minimising
//!   the equally weighted integrals of false-positive and false-negative probability), so that
//!   the two tools are comparable.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// How a normal-form text is cut into shingles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "unit", content = "n")]
pub enum Shingle {
    /// Runs of `n` consecutive words.
    Word(usize),
    /// Runs of `n` consecutive characters (spaces included).
    Char(usize),
}

impl std::fmt::Display for Shingle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shingle::Word(n) => write!(f, "word:{n}"),
            Shingle::Char(n) => write!(f, "char:{n}"),
        }
    }
}

impl std::str::FromStr for Shingle {
    type Err = String;

    /// Parses `word:N` or `char:N` (N ≥ 1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (unit, n) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected word:N or char:N"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: N must be a positive whole number"))?;
        if n == 0 {
            return Err(format!("`{s}`: N must be at least 1"));
        }
        match unit.trim().to_ascii_lowercase().as_str() {
            "word" | "words" | "w" => Ok(Shingle::Word(n)),
            "char" | "chars" | "c" => Ok(Shingle::Char(n)),
            other => Err(format!("`{other}`: the shingle unit is word or char")),
        }
    }
}

/// Computes b-bit MinHash signatures for one parameter set.
#[derive(Debug, Clone)]
pub struct MinHasher {
    shingle: Shingle,
    a: Vec<u64>,
    b: Vec<u64>,
}

/// Seed-derived constants stream (splitmix64): fixed, so signatures agree across runs/machines.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MinHasher {
    /// A hasher with `num_perm` permutations drawn from `seed`.
    pub fn new(shingle: Shingle, num_perm: usize, seed: u64) -> MinHasher {
        let mut state = seed;
        let a = (0..num_perm).map(|_| splitmix(&mut state) | 1).collect();
        let b = (0..num_perm).map(|_| splitmix(&mut state)).collect();
        MinHasher { shingle, a, b }
    }

    /// Number of permutations (= signature length in bytes).
    pub fn num_perm(&self) -> usize {
        self.a.len()
    }

    /// Calls `f` with the 64-bit hash of every shingle of a normal-form text (with repeats).
    pub fn for_each_shingle(&self, normal: &str, mut f: impl FnMut(u64)) {
        match self.shingle {
            Shingle::Char(n) => {
                let bytes = normal.as_bytes();
                if normal.is_ascii() {
                    if bytes.len() <= n {
                        f(xxh3_64(bytes));
                    } else {
                        bytes.windows(n).for_each(|w| f(xxh3_64(w)));
                    }
                } else {
                    let mut starts: Vec<usize> = normal.char_indices().map(|(i, _)| i).collect();
                    starts.push(bytes.len());
                    let chars = starts.len() - 1;
                    if chars <= n {
                        f(xxh3_64(bytes));
                    } else {
                        for i in 0..=chars - n {
                            f(xxh3_64(&bytes[starts[i]..starts[i + n]]));
                        }
                    }
                }
            }
            Shingle::Word(n) => {
                // Hash each word, then combine n consecutive word hashes (order-sensitive).
                let words: Vec<u64> = normal.split(' ').map(|w| xxh3_64(w.as_bytes())).collect();
                let combine = |ws: &[u64]| {
                    let acc = ws.iter().fold(0x2545_f491_4f6c_dd1d_u64, |acc, &w| {
                        (acc.rotate_left(27) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    });
                    mix64(acc)
                };
                if words.len() <= n {
                    f(combine(&words));
                } else {
                    words.windows(n).for_each(|w| f(combine(w)));
                }
            }
        }
    }

    /// Writes the b-bit (8-bit) signature of a normal-form text into `sig` (`num_perm` bytes).
    /// `mins` is scratch space, reused across calls.
    pub fn signature_into(&self, normal: &str, mins: &mut Vec<u32>, sig: &mut [u8]) {
        mins.clear();
        mins.resize(self.a.len(), u32::MAX);
        let (a, b) = (&self.a[..], &self.b[..]);
        // The shingle hashes first, then one pass of every permutation over all of them: the
        // inner loop runs in one call, compiled for the widest vector unit the CPU has.
        SHINGLE_HASHES.with_borrow_mut(|hashes| {
            hashes.clear();
            self.for_each_shingle(normal, |h| hashes.push(h));
            fold_mins(mins, a, b, hashes);
        });
        for (s, m) in sig.iter_mut().zip(mins.iter()) {
            *s = *m as u8;
        }
    }
}

thread_local! {
    /// Scratch for one text's shingle hashes, reused across calls on the same thread.
    static SHINGLE_HASHES: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `mins[i] = min(mins[i], (a[i]·h + b[i]) >> 32)` over every shingle hash `h`.
///
/// Why by hand: the loop is a 64-bit multiply per (shingle, permutation), the whole cost of a
/// signature. Built for the x86-64 baseline, LLVM has no vector 64-bit multiply and runs it one
/// lane at a time; the same source compiled with AVX-512 (`vpmullq`, 8 lanes) or AVX2 is picked
/// at run time when the CPU has it. Every version computes exactly the same values.
fn fold_mins(mins: &mut [u32], a: &[u64], b: &[u64], hashes: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has the features the function was compiled for (checked above).
            #[allow(unsafe_code)]
            unsafe {
                fold_mins_avx512(mins, a, b, hashes)
            };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            #[allow(unsafe_code)]
            unsafe {
                fold_mins_avx2(mins, a, b, hashes)
            };
            return;
        }
    }
    fold_mins_scalar(mins, a, b, hashes);
}

#[inline(always)]
fn fold_mins_scalar(mins: &mut [u32], a: &[u64], b: &[u64], hashes: &[u64]) {
    for &h in hashes {
        // Plain zipped loop over equal-length slices: LLVM unrolls and vectorises it.
        for ((m, &ai), &bi) in mins.iter_mut().zip(a).zip(b) {
            let v = (ai.wrapping_mul(h).wrapping_add(bi) >> 32) as u32;
            *m = (*m).min(v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn fold_mins_avx512(mins: &mut [u32], a: &[u64], b: &[u64], hashes: &[u64]) {
    fold_mins_scalar(mins, a, b, hashes)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn fold_mins_avx2(mins: &mut [u32], a: &[u64], b: &[u64], hashes: &[u64]) {
    fold_mins_scalar(mins, a, b, hashes)
}

/// The splitmix64 finaliser: spreads a combined word-hash over all 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Estimated Jaccard of two b-bit (8-bit) signatures, bias-corrected (see the module docs).
pub fn estimate_jaccard(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    // Counted in 32-byte chunks whose per-chunk sum fits a byte, so the compiler turns each chunk
    // into a few vector compares; this check runs for every candidate pair, and a corpus full of
    // near copies has many (a plain filter-count compiled to two bytes per step).
    let chunks = a.chunks_exact(32).zip(b.chunks_exact(32));
    let mut same: u32 = chunks
        .map(|(x, y)| {
            let n: u8 = x.iter().zip(y).map(|(p, q)| u8::from(p == q)).sum();
            u32::from(n)
        })
        .sum();
    let tail = a.len() / 32 * 32;
    same += a[tail..]
        .iter()
        .zip(&b[tail..])
        .map(|(p, q)| u32::from(p == q))
        .sum::<u32>();
    let agree = f64::from(same) / a.len() as f64;
    const C: f64 = 1.0 / 256.0;
    ((agree - C) / (1.0 - C)).clamp(0.0, 1.0)
}

/// The 64-bit key of band `band` (rows `band*rows .. band*rows+rows`) of a signature.
pub fn band_key(sig: &[u8], band: usize, rows: usize) -> u64 {
    let start = band * rows;
    xxh3_64_with_seed(&sig[start..start + rows], band as u64)
}

/// The (bands, rows) datasketch's `MinHashLSH` chooses for `threshold` and `num_perm`
/// (false-positive and false-negative weights 0.5 each).
pub fn optimal_bands(threshold: f64, num_perm: usize) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        // Simpson's rule; the integrands are smooth polynomials in s.
        let n = 200;
        let h = (hi - lo) / n as f64;
        let mut sum = f(lo) + f(hi);
        for i in 1..n {
            let x = lo + i as f64 * h;
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * f(x);
        }
        sum * h / 3.0
    };
    let mut best = (1, num_perm.max(1));
    let mut best_err = f64::INFINITY;
    for b in 1..=num_perm {
        for r in 1..=num_perm / b {
            let (bf, rf) = (b as f64, r as i32);
            let fp = integrate(&|s| 1.0 - (1.0 - s.powi(rf)).powf(bf), 0.0, threshold);
            let fneg = integrate(
                &|s| 1.0 - (1.0 - (1.0 - s.powi(rf)).powf(bf)),
                threshold,
                1.0,
            );
            let err = 0.5 * fp + 0.5 * fneg;
            if err < best_err {
                best_err = err;
                best = (b, r);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_versions_equal_the_scalar_loop() {
        let hasher = MinHasher::new(Shingle::Word(2), 128, 7);
        let mut state = 3u64;
        let hashes: Vec<u64> = (0..37).map(|_| splitmix(&mut state)).collect();
        let mut want = vec![u32::MAX; 128];
        fold_mins_scalar(&mut want, &hasher.a, &hasher.b, &hashes);
        let mut got = vec![u32::MAX; 128];
        fold_mins(&mut got, &hasher.a, &hasher.b, &hashes);
        assert_eq!(got, want);
        // Odd lengths (a tail past the vector width) too.
        let (a, b) = (&hasher.a[..61], &hasher.b[..61]);
        let mut want = vec![u32::MAX; 61];
        fold_mins_scalar(&mut want, a, b, &hashes);
        let mut got = vec![u32::MAX; 61];
        fold_mins(&mut got, a, b, &hashes);
        assert_eq!(got, want);
    }

    #[test]
    fn shingle_parses() {
        assert_eq!("word:3".parse::<Shingle>(), Ok(Shingle::Word(3)));
        assert_eq!("char:5".parse::<Shingle>(), Ok(Shingle::Char(5)));
        assert!("char:0".parse::<Shingle>().is_err());
        assert!("byte:2".parse::<Shingle>().is_err());
    }

    #[test]
    fn estimate_tracks_true_jaccard() {
        let h = MinHasher::new(Shingle::Word(1), 256, 7);
        let a: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let b: Vec<String> = (20..120).map(|i| format!("w{i}")).collect();
        let (mut mins, mut sa, mut sb) = (Vec::new(), vec![0u8; 256], vec![0u8; 256]);
        h.signature_into(&a.join(" "), &mut mins, &mut sa);
        h.signature_into(&b.join(" "), &mut mins, &mut sb);
        let est = estimate_jaccard(&sa, &sb);
        let truth = 80.0 / 120.0;
        assert!((est - truth).abs() < 0.1, "{est} vs {truth}");
    }

    #[test]
    fn bands_match_datasketch_choices() {
        // The values datasketch 2.0's `_optimal_param(t, num_perm, 0.5, 0.5)` returns.
        assert_eq!(optimal_bands(0.8, 128), (9, 13));
        assert_eq!(optimal_bands(0.7, 128), (14, 9));
        assert_eq!(optimal_bands(0.5, 128), (25, 5));
        assert_eq!(optimal_bands(0.8, 64), (5, 11));
        let (b, r) = optimal_bands(0.8, 128);
        // A band must be selective enough that the S-curve's midpoint sits near the threshold.
        let mid = (1.0 / b as f64).powf(1.0 / r as f64);
        assert!((0.6..0.9).contains(&mid), "{b}x{r} midpoint {mid}");
    }
}
