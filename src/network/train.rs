//! The training form: [`Mlp`], one flat parameter vector with forward and backward passes
//! (one input at a time, or several at once with the `dots`, `axpy_rows` and `axpy` kernels),
//! and the [`Adam`] optimizer.

use super::kernel::Kernel;
#[cfg(target_arch = "x86_64")]
use super::kernel::{entered, Entry};
use super::{dot, softmax};
use crate::error::{Error, Result};

/// Offsets of layer `l`'s weights and biases in a flat parameter vector.
pub(super) fn layout(sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(sizes.len().saturating_sub(1));
    let mut off = 0;
    for w in sizes.windows(2) {
        let (n_in, n_out) = (w[0], w[1]);
        out.push((off, off + n_in * n_out));
        off += n_in * n_out + n_out;
    }
    out
}

/// The training form: sizes and one flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    sizes: Vec<usize>,
    params: Vec<f32>,
}

/// Per-example buffers of [`Mlp::forward`] and [`Mlp::backward`].
#[derive(Debug, Clone, Default)]
pub struct MlpScratch {
    /// Outputs of every layer (post-ReLU for hidden layers, logits for the last).
    acts: Vec<Vec<f32>>,
    /// Softmax of the logits.
    pub probs: Vec<f32>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
}

impl Mlp {
    /// A network with the given layer sizes (input, hidden…, output), initialized from
    /// `next_u64` (a seeded generator): He-uniform weights `U(±√(6/in))` for ReLU layers,
    /// Glorot-uniform `U(±√(6/(in+out)))` for the output layer, zero biases.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if there are fewer than two sizes or a size is 0.
    pub fn new(sizes: &[usize], mut next_u64: impl FnMut() -> u64) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::config(
                "hidden",
                format!("layer sizes must be >= 1, got {sizes:?}"),
            ));
        }
        let lay = layout(sizes);
        let total = lay.last().map_or(0, |&(_, b)| b + sizes[sizes.len() - 1]);
        let mut params = vec![0.0f32; total];
        for (l, &(w_off, b_off)) in lay.iter().enumerate() {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
            let last = l + 2 == sizes.len();
            let bound = if last {
                (6.0 / (n_in + n_out) as f32).sqrt()
            } else {
                (6.0 / n_in as f32).sqrt()
            };
            for p in &mut params[w_off..b_off] {
                // 24 high bits → a uniform in [0, 1).
                let u = (next_u64() >> 40) as f32 / (1u64 << 24) as f32;
                *p = (2.0 * u - 1.0) * bound;
            }
        }
        Ok(Self {
            sizes: sizes.to_vec(),
            params,
        })
    }

    /// Layer sizes (input, hidden…, output).
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// All parameters, layer by layer (weights row-major, then biases).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Mutable parameters (for the optimizer).
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Weights (`out × in`) and biases of layer `l`.
    pub fn layer(&self, l: usize) -> (&[f32], &[f32]) {
        let (w, b) = layout(&self.sizes)[l];
        let n_out = self.sizes[l + 1];
        (&self.params[w..b], &self.params[b..b + n_out])
    }

    /// Forward pass; leaves every layer's output and the softmax in `s`.
    ///
    /// # Panics
    /// If `x.len()` is not the input size (a bug in the caller).
    pub fn forward(&self, x: &[f32], s: &mut MlpScratch) {
        assert_eq!(x.len(), self.sizes[0], "input length");
        let n_layers = self.sizes.len() - 1;
        s.acts.resize_with(n_layers, Vec::new);
        for (l, &(w_off, b_off)) in layout(&self.sizes).iter().enumerate() {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let (before, rest) = s.acts.split_at_mut(l);
            let input: &[f32] = if l == 0 { x } else { &before[l - 1] };
            let out = &mut rest[0];
            out.clear();
            let w = &self.params[w_off..b_off];
            let b = &self.params[b_off..b_off + n_out];
            let relu = l + 1 < n_layers;
            for i in 0..n_out {
                let z = dot(&w[i * n_in..(i + 1) * n_in], input) + b[i];
                out.push(if relu { z.max(0.0) } else { z });
            }
        }
        let logits = &s.acts[n_layers - 1];
        s.probs.resize(logits.len(), 0.0);
        softmax(logits, &mut s.probs);
    }

    /// Adds to `grad` the gradient of the loss whose derivative with respect to the logits is
    /// `dlogits`, given the activations of the last [`Mlp::forward`] on `x`.
    pub fn backward(&self, x: &[f32], dlogits: &[f32], s: &mut MlpScratch, grad: &mut [f32]) {
        let lay = layout(&self.sizes);
        let n_layers = lay.len();
        s.delta.clear();
        s.delta.extend_from_slice(dlogits);
        for l in (0..n_layers).rev() {
            let (w_off, b_off) = lay[l];
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let input: &[f32] = if l == 0 { x } else { &s.acts[l - 1] };
            for i in 0..n_out {
                let d = s.delta[i];
                if d == 0.0 {
                    continue;
                }
                grad[b_off + i] += d;
                let row = &mut grad[w_off + i * n_in..w_off + (i + 1) * n_in];
                for (g, &a) in row.iter_mut().zip(input) {
                    *g += d * a;
                }
            }
            if l > 0 {
                let w = &self.params[w_off..b_off];
                s.delta_prev.clear();
                s.delta_prev.resize(n_in, 0.0);
                for i in 0..n_out {
                    let d = s.delta[i];
                    if d == 0.0 {
                        continue;
                    }
                    for (p, &wij) in s.delta_prev.iter_mut().zip(&w[i * n_in..(i + 1) * n_in]) {
                        *p += d * wij;
                    }
                }
                // ReLU: no gradient where the unit was off.
                for (p, &a) in s.delta_prev.iter_mut().zip(&s.acts[l - 1]) {
                    if a <= 0.0 {
                        *p = 0.0;
                    }
                }
                std::mem::swap(&mut s.delta, &mut s.delta_prev);
            }
        }
    }
}

/// `g[j] += d · a[j]`: a multiply, then an add, lane by lane, so any vector width gives
/// the same floats (Rust never fuses them).
fn axpy(kernel: Kernel, g: &mut [f32], d: f32, a: &[f32]) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F.
        Kernel::Avx512 => unsafe { axpy_avx512(g, d, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2.
        Kernel::Avx2 => unsafe { axpy_avx2(g, d, a) },
        _ => axpy_body(g, d, a),
    }
}

/// [`axpy_body`] compiled for AVX-512: 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn axpy_avx512(g: &mut [f32], d: f32, a: &[f32]) {
    entered(Entry::AxpyAvx512);
    axpy_body(g, d, a);
}

/// [`axpy_body`] compiled for AVX2: 8 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(g: &mut [f32], d: f32, a: &[f32]) {
    entered(Entry::AxpyAvx2);
    axpy_body(g, d, a);
}

#[inline(always)]
fn axpy_body(g: &mut [f32], d: f32, a: &[f32]) {
    for (g, &a) in g.iter_mut().zip(a) {
        *g += d * a;
    }
}

/// [`axpy`] for each row of `g` (`n_in` floats a row) and each `(d, a)` of its terms in
/// turn (row `i`'s terms are `terms[ends[i − 1]..ends[i]]`): `g[i][j] += d · a[j]`, term by
/// term, so the same floats as the calls one after another. The work goes by blocks of
/// columns, every row's block in turn: a block of `g` is loaded once, takes all its terms in
/// registers, and is stored once (instead of a load and a store per term), and the inputs'
/// slices of the block stay in L1 for every row (a row's terms are a chunk's examples, whose
/// whole inputs, 16 × 4.5 KB for the first layer, do not fit there).
fn axpy_rows(kernel: Kernel, g: &mut [f32], n_in: usize, terms: &[(f32, &[f32])], ends: &[usize]) {
    assert!(terms.iter().all(|t| t.1.len() >= n_in), "input length");
    assert_eq!(g.len(), n_in * ends.len(), "one end of terms per row");
    assert!(ends.windows(2).all(|e| e[0] <= e[1]), "row ends in order");
    assert!(
        ends.last().is_none_or(|&e| e <= terms.len()),
        "row ends within the terms"
    );
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F.
        Kernel::Avx512 => unsafe { axpy_rows_avx512(g, n_in, terms, ends) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2.
        Kernel::Avx2 => unsafe { axpy_rows_avx2(g, n_in, terms, ends) },
        _ => axpy_rows_body::<32>(g, n_in, terms, ends),
    }
}

/// [`axpy_rows_body`] compiled for AVX-512: blocks of eight registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn axpy_rows_avx512(g: &mut [f32], n_in: usize, terms: &[(f32, &[f32])], ends: &[usize]) {
    entered(Entry::AxpyRowsAvx512);
    axpy_rows_body::<128>(g, n_in, terms, ends);
}

/// [`axpy_rows_body`] compiled for AVX2: blocks of eight registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_rows_avx2(g: &mut [f32], n_in: usize, terms: &[(f32, &[f32])], ends: &[usize]) {
    entered(Entry::AxpyRowsAvx2);
    axpy_rows_body::<64>(g, n_in, terms, ends);
}

/// Column blocks of `B` floats, then of 16, then one column at a time. `B` is eight vector
/// registers: enough independent sums to keep the adders busy while each waits on its
/// previous add (a block takes its terms one after another, so its sums form chains).
#[inline(always)]
fn axpy_rows_body<const B: usize>(
    g: &mut [f32],
    n_in: usize,
    terms: &[(f32, &[f32])],
    ends: &[usize],
) {
    let done = axpy_blocks::<B>(g, n_in, terms, ends, 0);
    let done = axpy_blocks::<16>(g, n_in, terms, ends, done);
    axpy_blocks::<1>(g, n_in, terms, ends, done);
}

/// [`axpy_rows`] on the whole blocks of `B` columns from column `start` on; returns where
/// they end.
#[inline(always)]
fn axpy_blocks<const B: usize>(
    g: &mut [f32],
    n_in: usize,
    terms: &[(f32, &[f32])],
    ends: &[usize],
    start: usize,
) -> usize {
    let end = start + (n_in - start) / B * B;
    for at in (start..end).step_by(B) {
        let mut begin = 0;
        for (row, &stop) in g.chunks_exact_mut(n_in).zip(ends) {
            let block = &mut row[at..at + B];
            let mut acc = [0.0f32; B];
            acc.copy_from_slice(block);
            for &(d, a) in &terms[begin..stop] {
                for (acc, &a) in acc.iter_mut().zip(&a[at..at + B]) {
                    *acc += d * a;
                }
            }
            block.copy_from_slice(&acc);
            begin = stop;
        }
    }
    end
}

/// Chunks of eight columns per block of [`dots_tiled_avx2`]: 256 columns, so that a block of
/// eight inputs (8 KB) stays in L1 while every row passes over it.
#[cfg(target_arch = "x86_64")]
const DOT_BLOCK: usize = 32;

/// [`dots`] with AVX2 (the AVX-512 kernel runs it too: on the AMD cores measured, 512-bit
/// adds cost two 256-bit ones). Each output is [`dot`]'s: the same eight partial sums per
/// row and input, each taking its products in column order, summed the same way at the end,
/// then the tail. The work goes by blocks of [`DOT_BLOCK`] eight-column chunks, every row in
/// turn over a block, with the partial sums kept between blocks: a training chunk's inputs
/// (16 × 4.5 KB for the first layer) do not fit in L1, a block of them does, and a row by
/// row pass streamed all of them from L2 for every row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dots_tiled_avx2(w: &[f32], b: &[f32], xs: &[&[f32]], relu: bool, out: &mut [f32]) {
    entered(Entry::DotsTiledAvx2);
    let (n_out, n_ex) = (b.len(), xs.len());
    let n_in = w.len().checked_div(n_out).unwrap_or(0);
    assert_eq!(w.len(), n_in * n_out, "weights");
    assert!(xs.iter().all(|x| x.len() == n_in), "input length");
    assert_eq!(out.len(), n_out * n_ex, "one output per row and input");
    let chunks = n_in / 8;
    let mut acc = vec![[0.0f32; 8]; n_out * n_ex];
    for cb in (0..chunks).step_by(DOT_BLOCK) {
        let ce = (cb + DOT_BLOCK).min(chunks);
        for i in 0..n_out {
            let row = &w[i * n_in..(i + 1) * n_in];
            let acc = &mut acc[i * n_ex..(i + 1) * n_ex];
            let mut e = 0;
            while e + 8 <= n_ex {
                dot_block::<8>(row, &xs[e..e + 8], &mut acc[e..e + 8], cb, ce);
                e += 8;
            }
            if e + 4 <= n_ex {
                dot_block::<4>(row, &xs[e..e + 4], &mut acc[e..e + 4], cb, ce);
                e += 4;
            }
            while e < n_ex {
                dot_block::<1>(row, &xs[e..e + 1], &mut acc[e..e + 1], cb, ce);
                e += 1;
            }
        }
    }
    for i in 0..n_out {
        let row = &w[i * n_in..(i + 1) * n_in];
        for (e, x) in xs.iter().enumerate() {
            let mut s: f32 = acc[i * n_ex + e].iter().sum();
            for k in chunks * 8..n_in {
                s += row[k] * x[k];
            }
            let z = s + b[i];
            out[e * n_out + i] = if relu { z.max(0.0) } else { z };
        }
    }
}

/// `N` inputs' eight partial sums over chunks `cb..ce` of one row, in AVX2 registers: the
/// eight partial sums of [`dot`] for an input are the eight lanes of one register, each
/// updated by a multiply and then an add (AVX2 alone does not fuse them).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_block<const N: usize>(
    row: &[f32],
    xs: &[&[f32]],
    acc: &mut [[f32; 8]],
    cb: usize,
    ce: usize,
) {
    use std::arch::x86_64::*;
    assert!(xs.len() >= N && acc.len() >= N, "inputs and sums");
    assert!(
        row.len() >= ce * 8 && xs.iter().all(|x| x.len() >= ce * 8),
        "input length"
    );
    let x: [*const f32; N] = std::array::from_fn(|e| xs[e].as_ptr());
    // SAFETY (every intrinsic below): only called from functions compiled with AVX2, which
    // their callers choose only on CPUs that have it; every load reads 8 floats at
    // `c · 8 < ce · 8`, inside `row` and each input (checked above), and `acc[e]` is 8 floats.
    unsafe {
        let mut sums: [__m256; N] = std::array::from_fn(|e| _mm256_loadu_ps(acc[e].as_ptr()));
        for c in cb..ce {
            let r = _mm256_loadu_ps(row.as_ptr().add(c * 8));
            for e in 0..N {
                let y = _mm256_loadu_ps(x[e].add(c * 8));
                sums[e] = _mm256_add_ps(sums[e], _mm256_mul_ps(r, y));
            }
        }
        for e in 0..N {
            _mm256_storeu_ps(acc[e].as_mut_ptr(), sums[e]);
        }
    }
}

/// `out[e · n_out + i] = finish(dot(row i of w, xs[e]) + b[i])` (`finish` is ReLU when
/// `relu`) for every row of `w` and every input, each exactly as [`dot`] computes it: by
/// blocks of columns ([`dots_tiled_avx2`]) where the CPU has AVX2, else row by row.
fn dots(kernel: Kernel, w: &[f32], b: &[f32], xs: &[&[f32]], relu: bool, out: &mut [f32]) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: both kernels are only chosen when the CPU has AVX2.
        Kernel::Avx2 | Kernel::Avx512 => unsafe { dots_tiled_avx2(w, b, xs, relu, out) },
        _ => dots_by_row(w, b, xs, relu, out),
    }
}

/// [`dots`] row by row: four inputs at a time ([`dot4`]), then one.
fn dots_by_row(w: &[f32], b: &[f32], xs: &[&[f32]], relu: bool, out: &mut [f32]) {
    let (n_out, n_ex) = (b.len(), xs.len());
    let n_in = w.len().checked_div(n_out).unwrap_or(0);
    assert_eq!(out.len(), n_out * n_ex, "one output per row and input");
    let finish = |z: f32| if relu { z.max(0.0) } else { z };
    for i in 0..n_out {
        let row = &w[i * n_in..(i + 1) * n_in];
        let mut e = 0;
        while e + 4 <= n_ex {
            let z = dot4(row, [xs[e], xs[e + 1], xs[e + 2], xs[e + 3]]);
            for (k, z) in z.into_iter().enumerate() {
                out[(e + k) * n_out + i] = finish(z + b[i]);
            }
            e += 4;
        }
        for (e, x) in xs.iter().enumerate().skip(e) {
            out[e * n_out + i] = finish(dot(row, x) + b[i]);
        }
    }
}

/// [`dot`] of one row with four inputs at once: each result is [`dot`]'s, bit for bit (the
/// same eight partial sums, in the same order), but the four sums run side by side, so
/// their additions do not wait on one another.
#[inline(always)]
fn dot4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        dot4_sse(a, b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        b.map(|b| dot(a, b))
    }
}

/// [`dot4`] in SSE2 registers (every x86-64 CPU has them): partial sums `k` and `k + 4` of
/// [`dot`] are lane `k` of two registers per input, each updated by a multiply and then an
/// add, as [`dot`] does, so the sums are its own; eight registers of independent sums keep
/// the adder busy instead of waiting on two.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot4_sse(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let n = a.len();
    assert!(b.iter().all(|b| b.len() >= n), "input length");
    let chunks = n / 8;
    // SAFETY: SSE2 is part of x86-64; every load reads 4 floats at `c · 8` or `c · 8 + 4`
    // with `c < n / 8`, inside `a` and each `b[e]` (at least `n` long, checked above).
    unsafe {
        let mut lo = [_mm_setzero_ps(); 4];
        let mut hi = [_mm_setzero_ps(); 4];
        for c in 0..chunks {
            let x_lo = _mm_loadu_ps(a.as_ptr().add(c * 8));
            let x_hi = _mm_loadu_ps(a.as_ptr().add(c * 8 + 4));
            for e in 0..4 {
                let y = b[e].as_ptr().add(c * 8);
                lo[e] = _mm_add_ps(lo[e], _mm_mul_ps(x_lo, _mm_loadu_ps(y)));
                hi[e] = _mm_add_ps(hi[e], _mm_mul_ps(x_hi, _mm_loadu_ps(y.add(4))));
            }
        }
        std::array::from_fn(|e| {
            let mut acc = [0.0f32; 8];
            _mm_storeu_ps(acc.as_mut_ptr(), lo[e]);
            _mm_storeu_ps(acc.as_mut_ptr().add(4), hi[e]);
            let mut s: f32 = acc.iter().sum();
            for k in chunks * 8..n {
                s += a[k] * b[e][k];
            }
            s
        })
    }
}

/// Each input's values at layer `l` of the batched passes: the inputs themselves for the
/// first layer, else the activations of layer `l − 1` in the input's scratch.
fn layer_inputs<'a>(l: usize, xs: &[&'a [f32]], s: &'a [MlpScratch]) -> Vec<&'a [f32]> {
    s.iter()
        .zip(xs)
        .map(|(s, &x)| if l == 0 { x } else { &s.acts[l - 1][..] })
        .collect()
}

impl Mlp {
    /// [`Mlp::forward`] on several inputs, `s[e]` getting input `xs[e]`'s activations: the
    /// same floats, bit for bit (every output is the same dot product, summed in the same
    /// order), with each weight row read once for all the inputs instead of once for each.
    ///
    /// # Panics
    /// If the lengths differ or an input is not the input size (a bug in the caller).
    pub fn forward_many(&self, xs: &[&[f32]], s: &mut [MlpScratch]) {
        self.forward_many_with(Kernel::detect(), xs, s);
    }

    fn forward_many_with(&self, kernel: Kernel, xs: &[&[f32]], s: &mut [MlpScratch]) {
        assert_eq!(xs.len(), s.len(), "one scratch per input");
        assert!(xs.iter().all(|x| x.len() == self.sizes[0]), "input length");
        let n_layers = self.sizes.len() - 1;
        for s in s.iter_mut() {
            s.acts.resize_with(n_layers, Vec::new);
        }
        for (l, &(w_off, b_off)) in layout(&self.sizes).iter().enumerate() {
            let n_out = self.sizes[l + 1];
            let w = &self.params[w_off..b_off];
            let b = &self.params[b_off..b_off + n_out];
            let relu = l + 1 < n_layers;
            let inputs = layer_inputs(l, xs, s);
            let mut out = vec![0.0f32; n_out * xs.len()];
            dots(kernel, w, b, &inputs, relu, &mut out);
            for (s, out) in s.iter_mut().zip(out.chunks_exact(n_out.max(1))) {
                s.acts[l].clear();
                s.acts[l].extend_from_slice(out);
            }
        }
        for s in s.iter_mut() {
            let logits = &s.acts[n_layers - 1];
            s.probs.resize(logits.len(), 0.0);
            softmax(logits, &mut s.probs);
        }
    }

    /// [`Mlp::backward`] for several inputs after [`Mlp::forward_many`] on them, `dlogits[e]`
    /// the derivative for input `e`: adds to `grad` the same floats as calling
    /// [`Mlp::backward`] on each input in turn, bit for bit (every parameter's gradient
    /// gains the inputs' terms in their order), with each gradient row read and written
    /// once for all the inputs.
    ///
    /// # Panics
    /// If the three lists differ in length (a bug in the caller).
    pub fn backward_many(
        &self,
        xs: &[&[f32]],
        dlogits: &[&[f32]],
        s: &mut [MlpScratch],
        grad: &mut [f32],
    ) {
        self.backward_many_with(Kernel::detect(), xs, dlogits, s, grad);
    }

    fn backward_many_with(
        &self,
        kernel: Kernel,
        xs: &[&[f32]],
        dlogits: &[&[f32]],
        s: &mut [MlpScratch],
        grad: &mut [f32],
    ) {
        assert_eq!(xs.len(), s.len(), "one scratch per input");
        assert_eq!(dlogits.len(), s.len(), "one derivative per input");
        let lay = layout(&self.sizes);
        let n_layers = lay.len();
        for (s, d) in s.iter_mut().zip(dlogits) {
            s.delta.clear();
            s.delta.extend_from_slice(d);
        }
        for l in (0..n_layers).rev() {
            let (w_off, b_off) = lay[l];
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            // Every row's terms, row by row: the inputs whose derivative at that output is
            // not zero, in the inputs' order. Each is written, and kept by moving past it
            // only when its derivative is not zero: ReLU makes that a coin toss, which a
            // branch would mispredict half the time.
            let inputs = layer_inputs(l, xs, s);
            let mut terms: Vec<(f32, &[f32])> = vec![(0.0, &[]); n_out * s.len()];
            let mut ends = Vec::with_capacity(n_out);
            let mut kept = 0;
            for i in 0..n_out {
                for (s, &input) in s.iter().zip(&inputs) {
                    let d = s.delta[i];
                    terms[kept] = (d, input);
                    kept += usize::from(d != 0.0);
                }
                ends.push(kept);
                // The bias's terms in the inputs' order, summed in a register.
                let mut bias = grad[b_off + i];
                for s in s.iter() {
                    let d = s.delta[i];
                    if d != 0.0 {
                        bias += d;
                    }
                }
                grad[b_off + i] = bias;
            }
            axpy_rows(kernel, &mut grad[w_off..b_off], n_in, &terms[..kept], &ends);
            if l > 0 {
                let w = &self.params[w_off..b_off];
                for s in s.iter_mut() {
                    s.delta_prev.clear();
                    s.delta_prev.resize(n_in, 0.0);
                }
                for i in 0..n_out {
                    let row = &w[i * n_in..(i + 1) * n_in];
                    for s in s.iter_mut() {
                        let d = s.delta[i];
                        if d == 0.0 {
                            continue;
                        }
                        // `p += d · w` lane by lane, as `backward` does, in the widest
                        // registers the CPU has.
                        axpy(kernel, &mut s.delta_prev, d, row);
                    }
                }
                for s in s.iter_mut() {
                    // ReLU: no gradient where the unit was off (a select, not a branch, so
                    // that the loop vectorizes).
                    for (p, &a) in s.delta_prev.iter_mut().zip(&s.acts[l - 1]) {
                        *p = if a <= 0.0 { 0.0 } else { *p };
                    }
                    std::mem::swap(&mut s.delta, &mut s.delta_prev);
                }
            }
        }
    }
}

/// Adam (Kingma & Ba 2015) over a flat parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Step size. Callers may change it between steps (schedules).
    pub lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    /// Adam with β1 = 0.9, β2 = 0.999, ε = 1e-8 (the paper's defaults).
    pub fn new(n_params: usize, lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; n_params],
            v: vec![0.0; n_params],
            t: 0,
        }
    }

    /// One update of `params` with gradient `grad` (already averaged over the batch).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        let (step, m, v) = self.begin();
        step.apply(params, m, v, grad);
    }

    /// Starts a step: counts it, and returns its constants and the moments they update, so
    /// that a caller can apply the step block by block ([`AdamStep::apply`]) in parallel,
    /// fused with its own passes over the parameters. Each parameter's update reads only its
    /// own gradient and moments, so any split gives the floats of [`Adam::step`].
    pub(crate) fn begin(&mut self) -> (AdamStep, &mut [f32], &mut [f32]) {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        let step = AdamStep {
            step: self.lr * c2.sqrt() / c1,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
        };
        (step, &mut self.m, &mut self.v)
    }
}

/// The constants of one Adam step ([`Adam::begin`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    /// The bias-corrected step size.
    step: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

impl AdamStep {
    /// Updates a block of parameters and their moments from their gradient (the four slices
    /// cover the same parameters; written with iterators so that the loop vectorizes, and
    /// always inlined, so that it is compiled for the vector kernel that calls it).
    #[inline(always)]
    pub(crate) fn apply(self, params: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32]) {
        debug_assert!(params.len() == m.len() && m.len() == v.len() && v.len() == grad.len());
        for (((p, m), v), &g) in params.iter_mut().zip(m).zip(v).zip(grad) {
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            *p -= self.step * *m / (v.sqrt() + self.eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{bits, draw_biases, kernels, mlp};
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

    /// `n` inputs of `dim` values in {−1, 0, +1}: ternary, with dropped (zero) entries, as
    /// in training.
    fn ternary_inputs(rng: &mut Xoshiro256PlusPlus, n: usize, dim: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| (rng.next_u64() % 3) as f32 - 1.0)
                    .collect()
            })
            .collect()
    }

    /// The reference: [`Mlp::forward`] and [`Mlp::backward`] on each input in turn, the
    /// gradient starting at `start`. Returns each input's probabilities and the gradient.
    fn one_at_a_time(
        m: &Mlp,
        xs: &[Vec<f32>],
        dls: &[Vec<f32>],
        start: &[f32],
    ) -> (Vec<Vec<f32>>, Vec<f32>) {
        let (mut probs, mut grad) = (Vec::new(), start.to_vec());
        let mut one = MlpScratch::default();
        for (x, dl) in xs.iter().zip(dls) {
            m.forward(x, &mut one);
            probs.push(one.probs.clone());
            m.backward(x, dl, &mut one, &mut grad);
        }
        (probs, grad)
    }

    /// The same through the batched passes on `kernel`, with the scratch buffers `many`
    /// (one per input; reused from call to call, as training reuses them).
    fn batched(
        m: &Mlp,
        kernel: Kernel,
        xs: &[Vec<f32>],
        dls: &[Vec<f32>],
        start: &[f32],
        many: &mut [MlpScratch],
    ) -> (Vec<Vec<f32>>, Vec<f32>) {
        let xr: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let dr: Vec<&[f32]> = dls.iter().map(Vec::as_slice).collect();
        m.forward_many_with(kernel, &xr, many);
        let mut grad = start.to_vec();
        m.backward_many_with(kernel, &xr, &dr, many, &mut grad);
        (many.iter().map(|s| s.probs.clone()).collect(), grad)
    }

    #[test]
    fn many_inputs_at_once_give_the_floats_of_one_at_a_time() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for sizes in [
            &[1120, 128, 7][..],
            &[37, 19, 5],
            &[8, 3],
            &[100, 70, 30, 3],
        ] {
            let mut m = mlp(sizes, 4);
            // So that the comparison sees how each path adds a bias.
            draw_biases(&mut m, &mut rng);
            for n in [1, 3, 4, 5, 8, 9, 13, 16] {
                let xs = ternary_inputs(&mut rng, n, sizes[0]);
                let n_out = sizes[sizes.len() - 1];
                let dls: Vec<Vec<f32>> = (0..n)
                    .map(|e| {
                        // Some derivatives exactly zero, as a skipped unit's are.
                        (0..n_out)
                            .map(|k| {
                                if (e + k) % 3 == 0 {
                                    0.0
                                } else {
                                    rng.next_u64() as f32 / 1e19
                                }
                            })
                            .collect()
                    })
                    .collect();
                let zero = vec![0.0f32; m.params().len()];
                let (want_probs, want_grad) = one_at_a_time(&m, &xs, &dls, &zero);
                let mut many = vec![MlpScratch::default(); n];
                for kernel in kernels() {
                    let (probs, grad) = batched(&m, kernel, &xs, &dls, &zero, &mut many);
                    for (got, want) in probs.iter().zip(&want_probs) {
                        assert_eq!(bits(got), bits(want), "{sizes:?} {n}");
                    }
                    assert_eq!(bits(&grad), bits(&want_grad), "{sizes:?} {n} {kernel:?}");
                }
            }
        }
    }

    #[test]
    fn many_inputs_add_to_the_gradient_they_are_given() {
        // `backward_many` adds to `grad`, as `backward` does, and training sums chunk after
        // chunk into one gradient. A gradient that starts at zero cannot tell a bias's term
        // added to its own entry from one added to another entry still at zero (a weight's,
        // read before that layer's weights are done), so this one starts at drawn values.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for sizes in [&[37, 19, 5][..], &[100, 70, 30, 3]] {
            let mut m = mlp(sizes, 4);
            draw_biases(&mut m, &mut rng);
            let n = 5;
            let xs = ternary_inputs(&mut rng, n, sizes[0]);
            let n_out = sizes[sizes.len() - 1];
            let dls: Vec<Vec<f32>> = (0..n)
                .map(|_| {
                    (0..n_out)
                        .map(|_| rng.next_u64() as f32 / 1e19 - 0.9)
                        .collect()
                })
                .collect();
            let start: Vec<f32> = (0..m.params().len())
                .map(|_| rng.next_u64() as f32 / 1e19 - 0.9)
                .collect();
            let (_, want) = one_at_a_time(&m, &xs, &dls, &start);
            let mut many = vec![MlpScratch::default(); n];
            for kernel in kernels() {
                let (_, grad) = batched(&m, kernel, &xs, &dls, &start, &mut many);
                assert_eq!(bits(&grad), bits(&want), "{sizes:?} {kernel:?}");
            }
        }
    }

    #[test]
    fn the_batched_passes_run_the_kernels_of_the_kernel_they_are_given() {
        // Every kernel gives the same floats (the tests above), so only this record tells a
        // pass that still reaches its vector code from one whose dispatch fell back to the
        // portable loops. Two layers, so that the backward pass carries a derivative back
        // (`axpy`) as well as the weight gradients (`axpy_rows`).
        use crate::network::{take_entered, Entry, Entry::*};
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let m = mlp(&[40, 24, 3], 2);
        let xs = ternary_inputs(&mut rng, 3, 40);
        let dls = vec![vec![0.25f32, -0.5, 0.25]; 3];
        let zero = vec![0.0f32; m.params().len()];
        let mut many = vec![MlpScratch::default(); 3];
        for kernel in kernels() {
            take_entered();
            batched(&m, kernel, &xs, &dls, &zero, &mut many);
            let want: &[Entry] = match kernel {
                Kernel::Avx512 => &[AxpyAvx512, AxpyRowsAvx512, DotsTiledAvx2],
                Kernel::Avx2 => &[AxpyAvx2, AxpyRowsAvx2, DotsTiledAvx2],
                Kernel::Portable => &[],
            };
            assert_eq!(take_entered(), want, "{kernel:?}");
        }
    }

    #[test]
    fn layers_tile_the_parameters_weights_then_biases() {
        // The layout `layer`, `Network::from_mlp` and the model file's sections rely on:
        // layer after layer, its `out × in` weights then its `out` biases, with neither gap
        // nor overlap, so Σ (in · out + out) parameters. The passes and the gradient check
        // cannot see a gap (a parameter nothing reads gets a zero gradient, correctly), so
        // the layout is checked against that definition here.
        let sizes = [5, 4, 3, 3];
        let m = mlp(&sizes, 7);
        let mut tiled = Vec::new();
        for (l, io) in sizes.windows(2).enumerate() {
            let (w, b) = m.layer(l);
            assert_eq!((w.len(), b.len()), (io[0] * io[1], io[1]), "layer {l}");
            tiled.extend_from_slice(w);
            tiled.extend_from_slice(b);
        }
        let total: usize = sizes.windows(2).map(|io| io[0] * io[1] + io[1]).sum();
        assert_eq!(m.params().len(), total);
        assert_eq!(tiled, m.params());
    }

    /// Soft cross-entropy of the softmax against `target`.
    fn loss(m: &Mlp, x: &[f32], target: &[f32]) -> f64 {
        let mut s = MlpScratch::default();
        m.forward(x, &mut s);
        -target
            .iter()
            .zip(&s.probs)
            .map(|(&t, &p)| f64::from(t) * f64::from(p).ln())
            .sum::<f64>()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut m = mlp(&[5, 4, 3, 3], 7);
        // Biases away from 0 so that no ReLU sits on its kink at the test point.
        for p in m.params_mut().iter_mut() {
            *p += 0.05;
        }
        let x = [0.5, -1.0, 1.0, 0.0, 0.25];
        let target = [0.2, 0.7, 0.1];
        let mut s = MlpScratch::default();
        m.forward(&x, &mut s);
        let dlogits: Vec<f32> = s.probs.iter().zip(&target).map(|(p, t)| p - t).collect();
        let mut grad = vec![0.0; m.params().len()];
        m.backward(&x, &dlogits, &mut s, &mut grad);
        let h = 1e-3f32;
        let mut worst = 0.0f64;
        for (i, &g) in grad.iter().enumerate() {
            let orig = m.params()[i];
            m.params_mut()[i] = orig + h;
            let up = loss(&m, &x, &target);
            m.params_mut()[i] = orig - h;
            let down = loss(&m, &x, &target);
            m.params_mut()[i] = orig;
            let numeric = (up - down) / (2.0 * f64::from(h));
            worst = worst.max((numeric - f64::from(g)).abs());
        }
        assert!(worst < 2e-3, "largest gradient error {worst}");
    }

    #[test]
    fn adam_steps_follow_the_bias_corrected_update() {
        // The reference, in f64: Kingma & Ba's update in the form of their section 2 (ε
        // added to √v, not to √v̂): m and v average g and g², and a parameter moves by
        // lr · √(1 − β2^t) / (1 − β1^t) · m / (√v + ε). Gradients of 1e-9 make ε (1e-8) most
        // of the denominator, so that it is checked too; the rate changes between steps, as
        // a schedule changes it.
        let grads: [[f32; 4]; 3] = [
            [0.5, -2.0, 1e-9, 0.0],
            [0.25, 1.0, -1e-9, 3.0],
            [-1.0, -2.0, 1e-9, 0.0],
        ];
        let lrs = [0.1f32, 0.05, 0.2];
        let mut params = [1.0f32, -1.0, 0.5, 2.0];
        let mut adam = Adam::new(params.len(), lrs[0]);
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let mut want: Vec<f64> = params.iter().map(|&p| f64::from(p)).collect();
        let (mut m, mut v) = ([0.0f64; 4], [0.0f64; 4]);
        for (t, (grad, &lr)) in (1..).zip(grads.iter().zip(&lrs)) {
            adam.lr = lr;
            adam.step(&mut params, grad);
            let step = f64::from(lr) * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            for i in 0..params.len() {
                let g = f64::from(grad[i]);
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                want[i] -= step * m[i] / (v[i].sqrt() + eps);
                let got = f64::from(params[i]);
                assert!(
                    (got - want[i]).abs() < 2e-6,
                    "step {t}, parameter {i}: {got} instead of {}",
                    want[i]
                );
            }
        }
    }

    #[test]
    fn adam_fits_a_separable_toy_problem() {
        let mut m = mlp(&[2, 8, 2], 1);
        let data = [
            ([1.0, 0.0], 0usize),
            ([0.0, 1.0], 1),
            ([1.0, 0.2], 0),
            ([0.1, 1.0], 1),
        ];
        let mut adam = Adam::new(m.params().len(), 0.05);
        let mut s = MlpScratch::default();
        for _ in 0..200 {
            let mut grad = vec![0.0; m.params().len()];
            for (x, y) in &data {
                m.forward(x, &mut s);
                let mut d = s.probs.clone();
                d[*y] -= 1.0;
                m.backward(x, &d, &mut s, &mut grad);
            }
            let params = m.params_mut();
            adam.step(params, &grad);
        }
        for (x, y) in &data {
            m.forward(x, &mut s);
            assert!(s.probs[*y] > 0.9);
        }
    }
}
