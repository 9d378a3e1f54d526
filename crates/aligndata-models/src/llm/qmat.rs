//! Quantized weight matrix × activation rows on the CPU, for the local backend's decode steps.
//!
//! Why by hand: candle's CPU backend has no SIMD kernel for Q4_1 (SmolLM2's default file), so the
//! weights had to be widened to Q8_0 at load (1.7× the bytes streamed per token, and generation
//! at batch 1 is memory-bandwidth bound), and its quantized matmul handles one activation row at
//! a time through a per-op thread pool. Here, as in llama.cpp:
//! - Q4_1 and Q8_0 weights stay in their GGUF blocks (scales as f16, converted in the kernel).
//! - Activations are quantized to Q8_1 blocks (scale `d`, and `s = d·Σq` for Q4_1's offset term)
//!   once per step and shared by every matrix that reads them.
//! - For `n` activation rows, each weight row is read from memory once and multiplied against all
//!   `n` rows while it is in L1 (4 at a time, sharing the unpacked weights in registers): what
//!   makes a batch of 16 sequences cost little more than one.
//! - Weight rows are split into a few coarse chunks per thread (rayon), not one task per row.
//!
//! Kernels: AVX512-VNNI (`vpdpbusd`), AVX2 (`vpmaddubsw` + `vpmaddwd`), and a portable scalar one,
//! chosen at run time. All three compute every output bit-identically: the integer dot products
//! are exact, and the scalar kernel mirrors the SIMD one's 8-lane f32 accumulation, fused
//! multiply-adds and final reduction order (test `simd_kernels_equal_scalar`). So a request's
//! output does not depend on the machine's instruction set, nor on the batch it ran in.

// SIMD intrinsics and the disjoint-rows output writes below need `unsafe`; each use says why it
// is sound. Everything outside this module stays safe.
#![allow(unsafe_code)]

use anyhow::{Result, bail};
use rayon::prelude::*;

/// Elements per quantization block (Q4_1, Q8_0 and Q8_1 alike).
pub(crate) const QK: usize = 32;

/// Weight formats kept as they are in the GGUF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightKind {
    /// 32 weights `d·q + m`, q in 0..16: 16 bytes of nibbles + f16 d, m (GGUF block: 20 bytes).
    Q4_1,
    /// 32 weights `d·q`, q in -128..128: 32 bytes + f16 d (GGUF block: 34 bytes).
    Q8_0,
}

impl WeightKind {
    fn quant_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 16,
            Self::Q8_0 => 32,
        }
    }
    fn scales(self) -> usize {
        match self {
            Self::Q4_1 => 2,
            Self::Q8_0 => 1,
        }
    }
    fn block_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
        }
    }
}

/// One quantized activation block: `x ≈ d·q`, `s = d·Σq`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct BlockQ8_1 {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

impl Default for BlockQ8_1 {
    fn default() -> Self {
        Self {
            d: 0.0,
            s: 0.0,
            qs: [0; QK],
        }
    }
}

/// Quantizes `rows` rows of `x` (each a multiple of 32 long) into `out`, reusing its allocation.
pub(crate) fn quantize_rows(x: &[f32], rows: usize, out: &mut Vec<BlockQ8_1>) {
    let cols = x.len().checked_div(rows).unwrap_or(0);
    debug_assert_eq!(cols % QK, 0);
    let nb = x.len() / QK;
    out.clear();
    out.resize(nb, BlockQ8_1::default());
    let quant = |(o, xs): (&mut BlockQ8_1, &[f32])| {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in o.qs.iter_mut().zip(xs) {
            // Round to nearest (ties to even) with the 1.5·2^23 trick: vectorizes, unlike
            // `f32::round` (a libm call without SSE4.1). |v·id| ≤ 127, well inside its range.
            const MAGIC: f32 = 12_582_912.0;
            let r = ((v * id + MAGIC) - MAGIC) as i32;
            *q = r as i8;
            sum += r;
        }
        o.d = d;
        o.s = sum as f32 * d;
    };
    if nb >= 4096 {
        out.par_iter_mut()
            .zip(x.par_chunks_exact(QK))
            .with_min_len(256)
            .for_each(quant);
    } else {
        out.iter_mut().zip(x.chunks_exact(QK)).for_each(quant);
    }
}

/// A weight matrix `[rows, cols]` in GGUF blocks, split into quants and scales.
pub(crate) struct QMat {
    kind: WeightKind,
    rows: usize,
    cols: usize,
    /// `rows · nb · quant_bytes`: Q4_1 nibbles (low = element j, high = j + 16) or Q8_0 bytes.
    qs: Vec<u8>,
    /// f16 bits, per block: `d` (Q8_0) or `d, m` (Q4_1).
    sc: Vec<u16>,
}

impl QMat {
    /// From a GGUF tensor's raw blocks (`rows · cols/32` blocks, row-major).
    pub(crate) fn from_gguf(
        kind: WeightKind,
        rows: usize,
        cols: usize,
        raw: &[u8],
    ) -> Result<Self> {
        if !cols.is_multiple_of(QK) {
            bail!("matrix width {cols} is not a multiple of {QK}");
        }
        let nb = cols / QK;
        let bb = kind.block_bytes();
        if raw.len() != rows * nb * bb {
            bail!(
                "{kind:?} matrix [{rows}, {cols}] should be {} bytes, found {}",
                rows * nb * bb,
                raw.len()
            );
        }
        let qb = kind.quant_bytes();
        let mut qs = Vec::with_capacity(rows * nb * qb);
        let mut sc = Vec::with_capacity(rows * nb * kind.scales());
        for blk in raw.chunks_exact(bb) {
            sc.push(u16::from_le_bytes([blk[0], blk[1]]));
            match kind {
                WeightKind::Q4_1 => {
                    sc.push(u16::from_le_bytes([blk[2], blk[3]]));
                    qs.extend_from_slice(&blk[4..20]);
                }
                WeightKind::Q8_0 => qs.extend_from_slice(&blk[2..34]),
            }
        }
        Ok(Self {
            kind,
            rows,
            cols,
            qs,
            sc,
        })
    }

    /// Stacks matrices of the same kind and width (fused q/k/v, gate/up).
    pub(crate) fn concat(mats: Vec<QMat>) -> Result<Self> {
        let mut it = mats.into_iter();
        let Some(mut first) = it.next() else {
            bail!("internal: nothing to concatenate");
        };
        for m in it {
            if m.kind != first.kind || m.cols != first.cols {
                bail!("internal: cannot stack {:?} onto {:?}", m.kind, first.kind);
            }
            first.rows += m.rows;
            first.qs.extend_from_slice(&m.qs);
            first.sc.extend_from_slice(&m.sc);
        }
        Ok(first)
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn kind(&self) -> WeightKind {
        self.kind
    }

    /// `out[b · rows + r] = Σ_c W[r, c] · x[b, c]` for the `n` rows of `x` (quantized with
    /// [`quantize_rows`]).
    pub(crate) fn matmul(&self, x: &[BlockQ8_1], n: usize, out: &mut [f32]) {
        self.matmul_with(detect(), x, n, out);
    }

    fn matmul_with(&self, isa: Isa, x: &[BlockQ8_1], n: usize, out: &mut [f32]) {
        let nb = self.cols / QK;
        assert_eq!(x.len(), n * nb, "activation blocks");
        assert_eq!(out.len(), n * self.rows, "output size");
        if n == 0 || self.rows == 0 {
            return;
        }
        // Coarse chunks: a few per thread, for balance when a core is busy with something else.
        // Small products stay on this thread: handing them out costs more than they take.
        let work = self.rows * nb * n;
        let chunks = if work < 1 << 13 {
            1
        } else {
            (rayon::current_num_threads() * 4).clamp(1, self.rows.div_ceil(4))
        };
        let per = self.rows.div_ceil(chunks);
        let dst = OutPtr(out.as_mut_ptr());
        let run = |c: usize| {
            let r0 = c * per;
            let r1 = (r0 + per).min(self.rows);
            // SAFETY: chunk `c` writes only the outputs of its own weight rows `r0..r1`, which are
            // disjoint from every other chunk's, and all indices are < n · rows = out.len().
            unsafe { self.rows_range(isa, r0, r1, x, n, dst) };
        };
        if chunks == 1 {
            run(0);
        } else {
            (0..chunks).into_par_iter().for_each(run);
        }
    }

    /// Computes weight rows `r0..r1` against all `n` activation rows.
    ///
    /// # Safety
    /// `dst` points to `n · rows` floats, and no other thread writes rows `r0..r1` of it.
    unsafe fn rows_range(
        &self,
        isa: Isa,
        r0: usize,
        r1: usize,
        x: &[BlockQ8_1],
        n: usize,
        dst: OutPtr,
    ) {
        let nb = self.cols / QK;
        let qb = self.kind.quant_bytes();
        let ns = self.kind.scales();
        // Activation rows in groups that stay in L1/L2 while the chunk's weight rows pass by.
        const ACT_GROUP: usize = 32;
        for b0 in (0..n).step_by(ACT_GROUP) {
            let b1 = (b0 + ACT_GROUP).min(n);
            for r in r0..r1 {
                let row = RowRef {
                    qs: &self.qs[r * nb * qb..(r + 1) * nb * qb],
                    sc: &self.sc[r * nb * ns..(r + 1) * nb * ns],
                    nb,
                };
                let act = |b: usize| &x[b * nb..(b + 1) * nb];
                let mut b = b0;
                while b + 4 <= b1 {
                    let v = tile::<4>(
                        isa,
                        self.kind,
                        row,
                        [act(b), act(b + 1), act(b + 2), act(b + 3)],
                    );
                    for (k, v) in v.into_iter().enumerate() {
                        // SAFETY: see the function's contract; (b + k) < n and r < rows.
                        unsafe { *dst.get().add((b + k) * self.rows + r) = v };
                    }
                    b += 4;
                }
                while b < b1 {
                    let [v] = tile::<1>(isa, self.kind, row, [act(b)]);
                    // SAFETY: as above.
                    unsafe { *dst.get().add(b * self.rows + r) = v };
                    b += 1;
                }
            }
        }
    }
}

/// The output pointer, shared by the chunks (each writes its own rows).
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: chunks write disjoint elements (see `QMat::matmul_with`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}
impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// One weight row: `nb` blocks of quants and f16 scales.
#[derive(Clone, Copy)]
struct RowRef<'a> {
    qs: &'a [u8],
    sc: &'a [u16],
    nb: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if avx2 && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl") {
            return Isa::Vnni;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Scalar
}

/// Instruction sets this machine can run (for the equality test).
#[cfg(test)]
fn available() -> Vec<Isa> {
    let mut v = vec![Isa::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            v.push(Isa::Avx2);
            if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl") {
                v.push(Isa::Vnni);
            }
        }
    }
    v
}

/// One weight row against `N` activation rows.
#[inline]
fn tile<const N: usize>(
    isa: Isa,
    kind: WeightKind,
    w: RowRef<'_>,
    a: [&[BlockQ8_1]; N],
) -> [f32; N] {
    let nb = w.nb;
    assert!(a.iter().all(|r| r.len() == nb));
    assert_eq!(w.qs.len(), nb * kind.quant_bytes());
    assert_eq!(w.sc.len(), nb * kind.scales());
    match isa {
        Isa::Scalar => {
            let mut out = [0f32; N];
            for (o, act) in out.iter_mut().zip(a) {
                *o = match kind {
                    WeightKind::Q4_1 => scalar::q4_1(w, act),
                    WeightKind::Q8_0 => scalar::q8_0(w, act),
                };
            }
            out
        }
        // SAFETY (both arms): `detect`/`available` checked the features at run time, and the
        // slice lengths the kernels read were checked above (`rows_range` slices them).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe {
            match kind {
                WeightKind::Q4_1 => avx2::q4_1::<N>(w, a),
                WeightKind::Q8_0 => avx2::q8_0::<N>(w, a),
            }
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Vnni => unsafe {
            match kind {
                WeightKind::Q4_1 => vnni::q4_1::<N>(w, a),
                WeightKind::Q8_0 => vnni::q8_0::<N>(w, a),
            }
        },
    }
}

/// The portable kernels: the SIMD ones' arithmetic, lane by lane.
mod scalar {
    use super::{BlockQ8_1, QK, RowRef};
    use half::f16;

    fn f32_of(bits: u16) -> f32 {
        f16::from_bits(bits).to_f32()
    }

    /// Sum of 8 lanes in the SIMD kernels' order: (lo + hi halves), then pairs, then the two.
    pub(super) fn hsum8(l: [f32; 8]) -> f32 {
        let s = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
        (s[0] + s[2]) + (s[1] + s[3])
    }

    /// Lane `j` of a block's integer dot product: elements `4j..4j+4` (as `vpdpbusd` sums them).
    fn lanes(w: &[i32; QK], a: &[i8; QK]) -> [i32; 8] {
        let mut l = [0i32; 8];
        for (j, lj) in l.iter_mut().enumerate() {
            *lj = (0..4).map(|t| w[4 * j + t] * a[4 * j + t] as i32).sum();
        }
        l
    }

    pub(super) fn q4_1(w: RowRef<'_>, act: &[BlockQ8_1]) -> f32 {
        let mut acc = [0f32; 8];
        let mut msum = 0f32;
        for (i, b) in act.iter().enumerate() {
            let q = &w.qs[i * 16..(i + 1) * 16];
            let mut wi = [0i32; QK];
            for j in 0..16 {
                wi[j] = (q[j] & 0x0F) as i32;
                wi[j + 16] = (q[j] >> 4) as i32;
            }
            let dd = f32_of(w.sc[2 * i]) * b.d;
            for (a, l) in acc.iter_mut().zip(lanes(&wi, &b.qs)) {
                *a = dd.mul_add(l as f32, *a);
            }
            msum = f32_of(w.sc[2 * i + 1]).mul_add(b.s, msum);
        }
        hsum8(acc) + msum
    }

    pub(super) fn q8_0(w: RowRef<'_>, act: &[BlockQ8_1]) -> f32 {
        let mut acc = [0f32; 8];
        for (i, b) in act.iter().enumerate() {
            let q = &w.qs[i * QK..(i + 1) * QK];
            let mut wi = [0i32; QK];
            for (o, &v) in wi.iter_mut().zip(q) {
                *o = v as i8 as i32;
            }
            let dd = f32_of(w.sc[i]) * b.d;
            for (a, l) in acc.iter_mut().zip(lanes(&wi, &b.qs)) {
                *a = dd.mul_add(l as f32, *a);
            }
        }
        hsum8(acc)
    }
}

/// The x86-64 kernels, one module per instruction set; `$dot(w_u8, a_i8)` gives 8 i32 lanes,
/// lane j = Σ_{t<4} w[4j+t]·a[4j+t].
#[cfg(target_arch = "x86_64")]
macro_rules! x86_kernels {
    ($name:ident, $features:literal, $dot:ident) => {
        mod $name {
            use super::{BlockQ8_1, QK, RowRef, $dot};
            use std::arch::x86_64::*;

            #[target_feature(enable = $features)]
            #[inline]
            fn hsum8(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
            }

            /// # Safety
            /// The CPU has `$features`; `w.qs` holds `16 · w.nb` bytes, `w.sc` `2 · w.nb` and
            /// every activation row `w.nb` entries.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn q4_1<const N: usize>(
                w: RowRef<'_>,
                a: [&[BlockQ8_1]; N],
            ) -> [f32; N] {
                let nb = w.nb;
                let mask = _mm_set1_epi8(0x0F);
                let mut acc = [_mm256_setzero_ps(); N];
                let mut msum = [0f32; N];
                for i in 0..nb {
                    // SAFETY: i < nb and the lengths in the contract.
                    let (raw, dm) = unsafe {
                        (
                            _mm_loadu_si128(w.qs.as_ptr().add(i * 16) as *const __m128i),
                            std::ptr::read_unaligned(w.sc.as_ptr().add(2 * i) as *const i32),
                        )
                    };
                    // [d, m] from f16 (F16C; exact, like the scalar kernel's conversion).
                    let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(dm));
                    let (wd, wm) = (_mm_cvtss_f32(dm), _mm_cvtss_f32(_mm_movehdup_ps(dm)));
                    let lo = _mm_and_si128(raw, mask);
                    let hi = _mm_and_si128(_mm_srli_epi16::<4>(raw), mask);
                    let wq = _mm256_set_m128i(hi, lo);
                    for k in 0..N {
                        // SAFETY: as above.
                        let b = unsafe { a[k].get_unchecked(i) };
                        let av = unsafe { _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i) };
                        let p = _mm256_cvtepi32_ps($dot(wq, av));
                        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(wd * b.d), p, acc[k]);
                        msum[k] = wm.mul_add(b.s, msum[k]);
                    }
                }
                let mut out = [0f32; N];
                for k in 0..N {
                    out[k] = hsum8(acc[k]) + msum[k];
                }
                out
            }

            /// # Safety
            /// The CPU has `$features`; `w.qs` holds `32 · w.nb` bytes, `w.sc` `w.nb` and every
            /// activation row `w.nb` entries.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn q8_0<const N: usize>(
                w: RowRef<'_>,
                a: [&[BlockQ8_1]; N],
            ) -> [f32; N] {
                let nb = w.nb;
                let mut acc = [_mm256_setzero_ps(); N];
                for i in 0..nb {
                    // SAFETY: i < nb and the lengths in the contract.
                    let (wq, bits) = unsafe {
                        (
                            _mm256_loadu_si256(w.qs.as_ptr().add(i * QK) as *const __m256i),
                            *w.sc.get_unchecked(i),
                        )
                    };
                    let wd = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)));
                    // Unsigned × signed: |w| times a with w's sign (exact; |a| ≤ 127).
                    let wabs = _mm256_sign_epi8(wq, wq);
                    for k in 0..N {
                        // SAFETY: as above.
                        let b = unsafe { a[k].get_unchecked(i) };
                        let av = unsafe { _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i) };
                        let p = _mm256_cvtepi32_ps($dot(wabs, _mm256_sign_epi8(av, wq)));
                        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(wd * b.d), p, acc[k]);
                    }
                }
                let mut out = [0f32; N];
                for k in 0..N {
                    out[k] = hsum8(acc[k]);
                }
                out
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod dots {
    use std::arch::x86_64::*;

    /// `vpmaddubsw` (pairs into i16; no saturation here: |w| ≤ 128, |a| ≤ 127) then `vpmaddwd`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn dot_avx2(w: __m256i, a: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))
    }

    /// `vpdpbusd`: four u8·i8 products summed into each i32 lane, in one instruction.
    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    #[inline]
    pub(super) fn dot_vnni(w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, a)
    }
}

#[cfg(target_arch = "x86_64")]
use dots::{dot_avx2, dot_vnni};

#[cfg(target_arch = "x86_64")]
x86_kernels!(avx2, "avx2,fma,f16c", dot_avx2);
#[cfg(target_arch = "x86_64")]
x86_kernels!(vnni, "avx2,fma,f16c,avx512vnni,avx512vl", dot_vnni);

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_gguf(kind: WeightKind, rows: usize, cols: usize, rng: &mut StdRng) -> Vec<u8> {
        let mut raw = Vec::new();
        for _ in 0..rows * cols / QK {
            raw.extend_from_slice(&f16::from_f32(rng.random_range(0.001..0.05)).to_le_bytes());
            if kind == WeightKind::Q4_1 {
                raw.extend_from_slice(&f16::from_f32(rng.random_range(-0.2..0.2)).to_le_bytes());
            }
            for _ in 0..kind.quant_bytes() {
                // Q8_0 files never hold -128, but the kernel must be exact for every byte.
                raw.push(rng.random::<u8>());
            }
        }
        raw
    }

    /// Dequantized weights, for a plain f32 reference.
    fn dequant(m: &QMat) -> Vec<f32> {
        let nb = m.cols / QK;
        let mut out = Vec::with_capacity(m.rows * m.cols);
        let ns = m.kind.scales();
        for blk in 0..m.rows * nb {
            let d = f16::from_bits(m.sc[blk * ns]).to_f32();
            match m.kind {
                WeightKind::Q4_1 => {
                    let q = &m.qs[blk * 16..(blk + 1) * 16];
                    let mm = f16::from_bits(m.sc[blk * ns + 1]).to_f32();
                    let lo = q.iter().map(|&v| d * (v & 15) as f32 + mm);
                    let hi = q.iter().map(|&v| d * (v >> 4) as f32 + mm);
                    out.extend(lo.chain(hi));
                }
                WeightKind::Q8_0 => out.extend(
                    m.qs[blk * 32..(blk + 1) * 32]
                        .iter()
                        .map(|&v| d * v as i8 as f32),
                ),
            }
        }
        out
    }

    /// Every instruction set gives bit-identical outputs, for any batch size (so batch
    /// invariance holds), and they agree with an f32 product up to activation rounding.
    #[test]
    fn simd_kernels_equal_scalar() {
        let mut rng = StdRng::seed_from_u64(42);
        let isas = available();
        for kind in [WeightKind::Q4_1, WeightKind::Q8_0] {
            let (rows, cols) = (133, 576);
            let w = QMat::from_gguf(kind, rows, cols, &random_gguf(kind, rows, cols, &mut rng))
                .unwrap();
            let wf = dequant(&w);
            for n in [1usize, 3, 4, 9, 37] {
                let x: Vec<f32> = (0..n * cols).map(|_| rng.random_range(-2.0..2.0)).collect();
                let mut xq = Vec::new();
                quantize_rows(&x, n, &mut xq);
                let mut reference = vec![0f32; n * rows];
                w.matmul_with(Isa::Scalar, &xq, n, &mut reference);
                for &isa in &isas {
                    let mut out = vec![0f32; n * rows];
                    w.matmul_with(isa, &xq, n, &mut out);
                    assert!(
                        out.iter()
                            .zip(&reference)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{isa:?} differs from scalar for {kind:?}, n = {n}"
                    );
                }
                // Row b of a batch equals the same row computed alone.
                let mut alone = vec![0f32; rows];
                w.matmul(&xq[(n - 1) * cols / QK..], 1, &mut alone);
                assert_eq!(alone, reference[(n - 1) * rows..]);
                // Close to the f32 product (Q8_1 activations carry ~0.4% relative error).
                for b in 0..n {
                    for r in 0..rows {
                        let exact: f32 = wf[r * cols..(r + 1) * cols]
                            .iter()
                            .zip(&x[b * cols..(b + 1) * cols])
                            .map(|(a, b)| a * b)
                            .sum();
                        let scale: f32 = wf[r * cols..(r + 1) * cols]
                            .iter()
                            .zip(&x[b * cols..(b + 1) * cols])
                            .map(|(a, b)| (a * b).abs())
                            .sum();
                        let got = reference[b * rows + r];
                        assert!(
                            (got - exact).abs() <= 0.01 * scale + 1e-4,
                            "{kind:?} r{r} b{b}: {got} vs {exact} (scale {scale})"
                        );
                    }
                }
            }
        }
    }
}
