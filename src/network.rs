//! A small dense network on plain `f32` slices: ReLU hidden layers and a softmax output.
//!
//! Two types with one layout:
//! - [`Mlp`] is the training form: every weight and bias in one flat `f32` vector (so the
//!   optimizer, the gradient sums and the best-epoch snapshot are plain slice loops), with
//!   forward, backward and [`Adam`].
//! - [`Network`] is the inference form stored in a model file: per layer, weights either
//!   `f32` or integers (`i8`, or 4 bits in the first layer by default: [`Quantization`])
//!   with one scale per output row ([`Weights`]), and `f32` biases.
//!
//! Layer `l` maps `sizes[l]` inputs to `sizes[l + 1]` outputs; its weight matrix is
//! row-major `out × in`, so an output is one contiguous dot product (the layout the file
//! sections use). Hidden layers apply ReLU; the last layer's outputs are logits.
//!
//! No tensor crate: at these sizes (≈1,120 × 128) plain loops that the compiler vectorizes are
//! enough, and the slices map one to one onto file sections.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Offsets of layer `l`'s weights and biases in a flat parameter vector.
fn layout(sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(sizes.len().saturating_sub(1));
    let mut off = 0;
    for w in sizes.windows(2) {
        let (n_in, n_out) = (w[0], w[1]);
        out.push((off, off + n_in * n_out));
        off += n_in * n_out + n_out;
    }
    out
}

/// Writes `softmax(logits)` into `out` (max-shifted, so it never overflows).
pub fn softmax(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &z) in out.iter_mut().zip(logits) {
        *o = (z - max).exp();
        sum += *o;
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the compiler keep several vector lanes busy.
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for k in chunks * 8..a.len() {
        s += a[k] * b[k];
    }
    s
}

/// Exact `Σ w_j · x_j` for `i8` weights and inputs in {−1, 0, +1}.
///
/// Sixteen `i16` lanes (two SSE2 registers) accumulate the products; each lane gains at most
/// 127 per step, so lanes are flushed into an `i32` every 256 steps, before they could
/// overflow. This runs several times faster than widening every product to `i32`.
#[cfg(test)]
fn ternary_dot(w: &[i8], x: &[i8]) -> i32 {
    const LANES: usize = 16;
    const FLUSH: usize = 256;
    let mut total = 0i32;
    let wc = w.chunks_exact(LANES);
    let xc = x.chunks_exact(LANES);
    let (wr, xr) = (wc.remainder(), xc.remainder());
    let mut acc = [0i16; LANES];
    for (step, (a, b)) in wc.zip(xc).enumerate() {
        for k in 0..LANES {
            acc[k] += i16::from(a[k]) * i16::from(b[k]);
        }
        if step % FLUSH == FLUSH - 1 {
            total += acc.iter().map(|&v| i32::from(v)).sum::<i32>();
            acc = [0; LANES];
        }
    }
    total += acc.iter().map(|&v| i32::from(v)).sum::<i32>();
    total
        + wr.iter()
            .zip(xr)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum::<i32>()
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
    axpy_body(g, d, a);
}

/// [`axpy_body`] compiled for AVX2: 8 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(g: &mut [f32], d: f32, a: &[f32]) {
    axpy_body(g, d, a);
}

#[inline(always)]
fn axpy_body(g: &mut [f32], d: f32, a: &[f32]) {
    for (g, &a) in g.iter_mut().zip(a) {
        *g += d * a;
    }
}

/// [`dot`] of one row with four inputs at once: each result is [`dot`]'s, bit for bit (the
/// same eight partial sums, in the same order), but the four sums run side by side, so
/// their additions do not wait on one another.
#[inline(always)]
fn dot4(kernel: Kernel, a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: both kernels are only chosen when the CPU has AVX2.
        Kernel::Avx2 | Kernel::Avx512 => unsafe { dot4_avx2(a, b) },
        #[cfg(target_arch = "x86_64")]
        _ => dot4_sse(a, b),
        #[cfg(not(target_arch = "x86_64"))]
        _ => b.map(|b| dot(a, b)),
    }
}

/// [`dot4`] with AVX2: [`dot`]'s eight partial sums of an input are the eight lanes of one
/// register, each updated by a multiply and then an add (AVX2 alone does not fuse them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot4_avx2(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let n = a.len();
    assert!(b.iter().all(|b| b.len() >= n), "input length");
    let chunks = n / 8;
    let mut acc = [_mm256_setzero_ps(); 4];
    for c in 0..chunks {
        // SAFETY: 8 floats at `c · 8 < n` in `a` and in each `b[e]` (checked above).
        unsafe {
            let x = _mm256_loadu_ps(a.as_ptr().add(c * 8));
            for e in 0..4 {
                let y = _mm256_loadu_ps(b[e].as_ptr().add(c * 8));
                acc[e] = _mm256_add_ps(acc[e], _mm256_mul_ps(x, y));
            }
        }
    }
    std::array::from_fn(|e| {
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` is 8 writable floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[e]) };
        let mut s: f32 = lanes.iter().sum();
        for k in chunks * 8..n {
            s += a[k] * b[e][k];
        }
        s
    })
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
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let w = &self.params[w_off..b_off];
            let b = &self.params[b_off..b_off + n_out];
            let relu = l + 1 < n_layers;
            let mut io: Vec<(&[f32], &mut Vec<f32>)> = s
                .iter_mut()
                .zip(xs)
                .map(|(s, &x)| {
                    let (before, rest) = s.acts.split_at_mut(l);
                    let input: &[f32] = if l == 0 { x } else { &before[l - 1] };
                    let out = &mut rest[0];
                    out.clear();
                    out.resize(n_out, 0.0);
                    (input, out)
                })
                .collect();
            let finish = |z: f32| if relu { z.max(0.0) } else { z };
            for i in 0..n_out {
                let row = &w[i * n_in..(i + 1) * n_in];
                let mut fours = io.chunks_exact_mut(4);
                for four in &mut fours {
                    let z = dot4(kernel, row, [four[0].0, four[1].0, four[2].0, four[3].0]);
                    for (e, z) in four.iter_mut().zip(z) {
                        e.1[i] = finish(z + b[i]);
                    }
                }
                for e in fours.into_remainder() {
                    e.1[i] = finish(dot(row, e.0) + b[i]);
                }
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
            for i in 0..n_out {
                let row = &mut grad[w_off + i * n_in..w_off + (i + 1) * n_in];
                for (s, &x) in s.iter().zip(xs) {
                    let d = s.delta[i];
                    if d == 0.0 {
                        continue;
                    }
                    let input: &[f32] = if l == 0 { x } else { &s.acts[l - 1] };
                    axpy(kernel, row, d, input);
                }
                for s in s.iter() {
                    let d = s.delta[i];
                    if d != 0.0 {
                        grad[b_off + i] += d;
                    }
                }
            }
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
                        for (p, &wij) in s.delta_prev.iter_mut().zip(row) {
                            *p += d * wij;
                        }
                    }
                }
                for s in s.iter_mut() {
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
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        let step = self.lr * c2.sqrt() / c1;
        for i in 0..params.len() {
            let g = grad[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            params[i] -= step * self.m[i] / (self.v[i].sqrt() + self.eps);
        }
    }
}

/// Stored weights of one layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// Full precision, row-major `out × in`.
    F32(Vec<f32>),
    /// `w[i][j] ≈ scale[i] · q[i][j]`: one scale per output row, `scale = max|w_row| / 127`.
    I8 {
        /// Quantized weights, row-major `out × in`.
        q: Vec<i8>,
        /// One scale per output row.
        scale: Vec<f32>,
    },
    /// As [`Weights::I8`] on a 4-bit grid: `q[i][j]` in −8..=7 (the quantizer writes
    /// −7..=7, `scale = max|w_row| / 7`), stored two to a byte ([`crate::format::Dtype::I4`]).
    /// Held unpacked, one `i8` each, so the forward pass is that of `I8`.
    I4 {
        /// Quantized weights, row-major `out × in`, each in −8..=7.
        q: Vec<i8>,
        /// One scale per output row.
        scale: Vec<f32>,
    },
}

/// How a trained network's weights are stored.
///
/// The first layer holds almost all the bytes (1,120 × 128 of a 1,120 × 128 × 64 network)
/// and each of its outputs sums about a thousand ternary inputs, so its rounding errors
/// average out: 4 bits there cost nothing measurable, while the small later layers keep 8
/// (4 bits everywhere cost 3 points on few-label HWU64). Test accuracy, int8 → int4, mean
/// of training seeds 1–3 (the same trained weights exported both ways): HWU64 83.64 → 83.58
/// (all labels) and 73.20 → 73.39 (few labels), SNIPS 97.76 → 97.72 and 95.14 → 95.09; no
/// seed moved by more than 0.75 points (benches/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// `f32` everywhere (`--float`).
    None,
    /// `i8` rows with one scale each, in every layer.
    Int8,
    /// The first hidden layer in 4 bits, every later one and the output layer in 8, rows
    /// with one scale each. The default: half the bytes of `int8`. (The output layer is never
    /// 4 bits: a network the library builds without a hidden layer is all 8 bits.)
    #[default]
    Int4,
}

impl<'de> Deserialize<'de> for Quantization {
    /// A name, or the boolean that the field was before 4 bits existed (`true`: int8).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Name {
            None,
            Int8,
            Int4,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Old(bool),
            Name(Name),
        }
        Ok(match Either::deserialize(d)? {
            Either::Old(true) | Either::Name(Name::Int8) => Quantization::Int8,
            Either::Old(false) | Either::Name(Name::None) => Quantization::None,
            Either::Name(Name::Int4) => Quantization::Int4,
        })
    }
}

/// One layer of the inference network.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Inputs.
    pub n_in: usize,
    /// Outputs.
    pub n_out: usize,
    /// Weights.
    pub weights: Weights,
    /// Biases (`n_out`).
    pub bias: Vec<f32>,
}

impl Layer {
    /// Checks that the arrays have the declared shapes and hold finite values.
    fn validate(&self) -> std::result::Result<(), String> {
        let n = self.n_in * self.n_out;
        let ok = match &self.weights {
            Weights::F32(w) => w.len() == n && w.iter().all(|x| x.is_finite()),
            Weights::I8 { q, scale } | Weights::I4 { q, scale } => {
                q.len() == n
                    && scale.len() == self.n_out
                    && scale.iter().all(|s| s.is_finite() && *s >= 0.0)
                    && (matches!(self.weights, Weights::I8 { .. })
                        || q.iter().all(|v| (-8..=7).contains(v)))
            }
        };
        if !ok {
            return Err(format!(
                "weights do not match {} × {} or are not finite",
                self.n_out, self.n_in
            ));
        }
        if self.bias.len() != self.n_out || !self.bias.iter().all(|b| b.is_finite()) {
            return Err(format!("bias must hold {} finite values", self.n_out));
        }
        Ok(())
    }

    /// Bytes of weights, scales and biases.
    pub fn size_bytes(&self) -> usize {
        let w = match &self.weights {
            Weights::F32(w) => w.len() * 4,
            Weights::I8 { q, scale } => q.len() + scale.len() * 4,
            Weights::I4 { q, scale } => q.len().div_ceil(2) + scale.len() * 4,
        };
        w + self.bias.len() * 4
    }
}

/// The inference network: layers of [`Layer`], input in {−1, 0, +1}.
#[derive(Debug, Clone)]
pub struct Network {
    layers: Vec<Layer>,
    /// Per layer, the weights in the layout the forward pass reads (derived from `layers`).
    plans: Vec<Plan>,
}

impl PartialEq for Network {
    fn eq(&self, other: &Self) -> bool {
        // The plans are a function of the layers.
        self.layers == other.layers
    }
}

/// How the forward pass computes one layer.
#[derive(Debug, Clone)]
enum Plan {
    /// The `i8` first layer, whose inputs are ternary, by pairs of inputs: for inputs
    /// `2p, 2p + 1` with weight columns `A`, `B` of `W`, `cols` holds the four `i16` columns
    /// `A`, `B`, `A + B`, `A − B` (column `4p + k` at `cols[(4p + k)·stride..][..n_out]`,
    /// padded with zeros to `stride`, a multiple of [`COLUMN_UNIT`]). Whatever the two
    /// ternary inputs are, their contribution `a·A + b·B` is ± one of these columns, or
    /// nothing: one column operation per pair instead of up to two. The price is memory:
    /// 4 · 2 bytes per pair of inputs and output, 573 KB for a 1,120 × 128 layer (whose
    /// file section is 143 KB). A 4-bit layer's columns fit in `i8` (|A ± B| ≤ 16): half
    /// the memory, and half the bytes each prediction reads (the columns of a text are
    /// read from L2, not L1, so the bytes are most of the time).
    TernaryPairs { cols: PairColumns, stride: usize },
    /// A later `i8` layer: the quantized weights as `f32`, transposed (`wt[k·stride + i]` is
    /// `q[i][k]`) and padded with zeros to `stride`, a multiple of [`FLOAT_LANES`], so that
    /// all outputs advance together, input by input, in whole vectors.
    Columns { wt: Vec<f32>, stride: usize },
    /// Row-by-row dot products (`f32` layers).
    Rows,
}

/// The pair columns of [`Plan::TernaryPairs`].
#[derive(Debug, Clone)]
enum PairColumns {
    /// `i8` layers.
    Wide(Vec<i16>),
    /// 4-bit layers.
    Narrow(Vec<i8>),
}

/// An element of a pair column, summed in `i16` lanes.
trait Lane: Copy {
    fn widen(self) -> i16;
}

impl Lane for i16 {
    #[inline(always)]
    fn widen(self) -> i16 {
        self
    }
}

impl Lane for i8 {
    #[inline(always)]
    fn widen(self) -> i16 {
        i16::from(self)
    }
}

/// Outputs the first-layer kernel computes at once: 128 `i16` lanes are eight AVX2 registers,
/// so the accumulators stay in registers over the whole column loop, and each column is read
/// in one piece (256 contiguous bytes for a hidden layer of 128). Strides that are not a
/// multiple of it run in [`COLUMN_UNIT`]s.
const COLUMN_LANES: usize = 128;

/// The first layer's stride is a multiple of this many outputs (four AVX2 registers), so
/// that a hidden layer of 64 is not padded to 128: that would double the columns' memory and
/// the kernel's work.
const COLUMN_UNIT: usize = 64;

/// `f32` lanes of an AVX2 register: the padding of later layers' columns.
const FLOAT_LANES: usize = 8;

/// Columns summed in `i16` lanes before the lanes are flushed into `i32`.
///
/// Bound: a quantized weight is an `i8` (−128 is possible in a file even though
/// [`quantize_rows`] writes only ±127), so a pair column `A ± B` is at most 256 in magnitude
/// in a lane, and 127 · 256 = 32,512 ≤ `i16::MAX` = 32,767: a lane cannot overflow between
/// flushes. The `i32` totals hold at most 128 · n_in ≤ 128 · 4096 · 64 (the largest
/// projection) = 2^25.
const FLUSH_COLUMNS: usize = 127;

/// Which pair column (`A`, `B`, `A + B`, `A − B`) and sign give `a·A + b·B`, indexed by
/// [`pair_code`]; sign 0 for `a = b = 0`.
const PAIR_CASES: [(u8, i8); 16] = {
    let mut cases = [(0u8, 0i8); 16];
    let values = [-1i8, 0, 1];
    let mut i = 0;
    while i < 9 {
        let (a, b) = (values[i / 3], values[i % 3]);
        // A sign and a column: the column is A when only a is set, B when only b is, A + B
        // when both agree and A − B when they differ, its sign a's (or b's alone).
        let case = match (a, b) {
            (0, 0) => (0, 0),
            (_, 0) => (0, a),
            (0, _) => (1, b),
            _ if a == b => (2, a),
            _ => (3, a),
        };
        cases[pair_code(a, b)] = case;
        i += 1;
    }
    cases
};

/// [`PAIR_CASES`] packed for the first layer's split: the column in the low byte, then 1 in
/// bit 8 if it is added and 1 in bit 16 if it is subtracted.
const PAIR_SPLIT: [u32; 16] = {
    let mut split = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let (k, sign) = PAIR_CASES[i];
        split[i] = k as u32 | ((sign > 0) as u32) << 8 | ((sign < 0) as u32) << 16;
        i += 1;
    }
    split
};

/// The index of a pair of ternary inputs in [`PAIR_CASES`]: their two low bits each (−1 → 3,
/// 0 → 0, +1 → 1), which is in range for any `i8`. Values outside {−1, 0, +1}, a caller's
/// bug, land on unused entries that add nothing.
#[inline(always)]
const fn pair_code(a: i8, b: i8) -> usize {
    ((a as u8 & 3) | ((b as u8 & 3) << 2)) as usize
}

/// Buffers of [`Network::forward`].
#[derive(Debug, Clone, Default)]
pub struct NetScratch {
    a: Vec<f32>,
    b: Vec<f32>,
    /// The pair columns the first layer adds, and those it subtracts.
    plus: Vec<u32>,
    minus: Vec<u32>,
    /// Exact integer sums of the first layer (padded to its stride).
    totals: Vec<i32>,
    /// The non-zero inputs of a later layer.
    nz: Vec<u32>,
    /// The softmax of the last forward pass.
    pub probs: Vec<f32>,
}

/// The name of the vector kernels predictions use on this CPU (`avx512`, `avx2` or
/// `portable`; see `SPRIG_KERNEL` in the README): what a latency figure was measured with.
pub fn kernel_name() -> &'static str {
    Kernel::detect().name()
}

/// Checks `SPRIG_KERNEL` (see [`kernel_name`]): unset, or `avx512`, `avx2` or `portable`,
/// which this CPU runs. The library ignores any other value (a typo, or kernels the CPU
/// lacks) and uses the best kernels; the command line refuses it through this check, so
/// that a measurement never runs other kernels than it asked for.
///
/// # Errors
/// A message naming the value and what is accepted.
pub fn check_kernel_env() -> std::result::Result<(), String> {
    let Ok(asked) = std::env::var("SPRIG_KERNEL") else {
        return Ok(());
    };
    if Kernel::named(&asked).is_some() {
        return Ok(());
    }
    let runs: Vec<&str> = Kernel::runnable().iter().rev().map(|k| k.name()).collect();
    Err(format!(
        "SPRIG_KERNEL={asked:?}: this CPU runs {} (unset it for the best)",
        runs.join(", ")
    ))
}

/// Which implementation of a vector kernel runs (here and in the projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// AVX-512 F, BW and DQ (which imply AVX2), when the CPU has them.
    Avx512,
    /// AVX2, when the CPU has it.
    Avx2,
    /// The portable build (SSE2 on x86-64).
    Portable,
}

impl Kernel {
    /// The kernel predictions use: the best this CPU runs, or a lesser one named by the
    /// environment variable `SPRIG_KERNEL` (`portable`, `avx2`; read once per process). The
    /// kernels give the same bits (the tests compare them); the variable is for measuring
    /// what a CPU without the vector extensions gets, such as the phones and watches sprig
    /// targets, whose ARM cores run the portable code.
    pub(crate) fn detect() -> Self {
        static CHOSEN: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            std::env::var("SPRIG_KERNEL")
                .ok()
                .and_then(|asked| Kernel::named(&asked))
                .unwrap_or_else(Kernel::best)
        })
    }

    /// Its name, as `SPRIG_KERNEL` and [`kernel_name`] give it.
    fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// The kernel called `name`, if this CPU runs it.
    fn named(name: &str) -> Option<Self> {
        Kernel::runnable().into_iter().find(|k| k.name() == name)
    }

    /// Every kernel this CPU runs, the portable one first.
    fn runnable() -> Vec<Self> {
        match Kernel::best() {
            Kernel::Avx512 => vec![Kernel::Portable, Kernel::Avx2, Kernel::Avx512],
            Kernel::Avx2 => vec![Kernel::Portable, Kernel::Avx2],
            Kernel::Portable => vec![Kernel::Portable],
        }
    }

    /// The best kernel this CPU runs.
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            // Every AVX-512 CPU has AVX2, but the AVX2 kernels it also runs check for it.
            if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx2") {
                return Kernel::Avx512;
            }
            if has!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs, the portable one first: what the tests compare.
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Self> {
        Kernel::runnable()
    }
}

/// Splits the input pairs `(x[2p], x[2p + 1])` into the pair columns the first layer adds
/// and those it subtracts ([`PAIR_SPLIT`]): column `4p + k` goes to `plus[..np]` or
/// `minus[..nm]`, in ascending order. Returns `(np, nm)`. Without branches: the signs of a
/// projection are unpredictable.
fn split_pairs(
    kernel: Kernel,
    x: &[i8],
    plus: &mut Vec<u32>,
    minus: &mut Vec<u32>,
) -> (usize, usize) {
    let pairs = x.len().div_ceil(2);
    // Room for a whole vector store past the last column (see `split_pairs_avx512`).
    plus.resize(pairs + 16, 0);
    minus.resize(pairs + 16, 0);
    // The pairs the vector kernel did, and the columns it listed.
    let (done, mut np, mut nm) = match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F and BW; the
        // buffers have the room asked for.
        Kernel::Avx512 => unsafe { split_pairs_avx512(x, plus, minus) },
        _ => (0, 0, 0),
    };
    let mut split = |p: usize, a: i8, b: i8| {
        let e = PAIR_SPLIT[pair_code(a, b)];
        let c = 4 * p as u32 + (e & 0xff);
        // np, nm ≤ p < pairs.
        plus[np] = c;
        minus[nm] = c;
        np += (e >> 8) as usize & 1;
        nm += (e >> 16) as usize;
    };
    let whole = x[2 * done..].chunks_exact(2);
    let odd = whole.remainder().first().copied();
    for (p, ab) in whole.enumerate() {
        split(done + p, ab[0], ab[1]);
    }
    if let Some(a) = odd {
        split(pairs - 1, a, 0);
    }
    (np, nm)
}

/// [`split_pairs`] sixteen pairs at a time: each pair's two low bits per input index
/// [`PAIR_SPLIT`] held in one register, and the columns to add (subtract) are compressed
/// into the front of a register and stored at `plus[np]` (`minus[nm]`). Returns the pairs
/// done (a multiple of 16) and `(np, nm)`.
///
/// # Safety
/// The CPU must have AVX-512 F and BW; `plus` and `minus` must hold at least
/// `x.len() / 2 + 16` entries (a store writes 16 from `np`, `nm` ≤ the pairs done).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn split_pairs_avx512(
    x: &[i8],
    plus: &mut [u32],
    minus: &mut [u32],
) -> (usize, usize, usize) {
    use std::arch::x86_64::*;
    let blocks = x.len() / 32;
    debug_assert!(plus.len() >= 16 * blocks + 16 && minus.len() >= 16 * blocks + 16);
    // SAFETY: `PAIR_SPLIT` is 16 `u32`, 64 bytes.
    let table = unsafe { _mm512_loadu_si512(PAIR_SPLIT.as_ptr().cast()) };
    let lane = _mm512_set_epi32(60, 56, 52, 48, 44, 40, 36, 32, 28, 24, 20, 16, 12, 8, 4, 0);
    let (add, sub) = (_mm512_set1_epi32(1 << 8), _mm512_set1_epi32(1 << 16));
    let (mut np, mut nm) = (0usize, 0usize);
    for b in 0..blocks {
        // SAFETY: `x` holds 32 bytes from `32 · b`.
        let v = unsafe { _mm256_loadu_si256(x.as_ptr().add(32 * b).cast()) };
        // Each 16-bit lane holds a pair: `a` in its low byte, `b` in its high byte. The
        // code is `a`'s two low bits, then `b`'s ([`pair_code`]).
        let v = _mm512_cvtepu16_epi32(v);
        let code = _mm512_or_si512(
            _mm512_and_si512(v, _mm512_set1_epi32(3)),
            _mm512_and_si512(_mm512_srli_epi32::<6>(v), _mm512_set1_epi32(12)),
        );
        let e = _mm512_permutexvar_epi32(code, table);
        let column = _mm512_add_epi32(
            _mm512_add_epi32(lane, _mm512_set1_epi32(64 * b as i32)),
            _mm512_and_si512(e, _mm512_set1_epi32(0xff)),
        );
        let (to_add, to_sub) = (
            _mm512_test_epi32_mask(e, add),
            _mm512_test_epi32_mask(e, sub),
        );
        // SAFETY: `np`, `nm` ≤ 16 · b, and the buffers hold 16 · (b + 1) entries or more.
        unsafe {
            _mm512_storeu_si512(
                plus.as_mut_ptr().add(np).cast(),
                _mm512_maskz_compress_epi32(to_add, column),
            );
            _mm512_storeu_si512(
                minus.as_mut_ptr().add(nm).cast(),
                _mm512_maskz_compress_epi32(to_sub, column),
            );
        }
        np += to_add.count_ones() as usize;
        nm += to_sub.count_ones() as usize;
    }
    (16 * blocks, np, nm)
}

/// `totals[i] = Σ_{c ∈ plus} cols[c][i] − Σ_{c ∈ minus} cols[c][i]`, exactly, for
/// `i < stride`.
fn ternary_columns<T: Lane>(
    kernel: Kernel,
    cols: &[T],
    stride: usize,
    plus: &[u32],
    minus: &[u32],
    totals: &mut [i32],
) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2 (`Kernel::detect`,
            // or `Kernel::all` in a test).
            unsafe { ternary_columns_avx2(cols, stride, plus, minus, totals) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => {
            // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F and BW.
            unsafe { ternary_columns_avx512(cols, stride, plus, minus, totals) }
        }
        _ => ternary_columns_body(cols, stride, plus, minus, totals),
    }
}

/// [`ternary_columns_body`] compiled for AVX2: the same code, whose fixed-width lane loops
/// the compiler vectorizes 16 `i16` lanes at a time instead of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn ternary_columns_avx2<T: Lane>(
    cols: &[T],
    stride: usize,
    plus: &[u32],
    minus: &[u32],
    totals: &mut [i32],
) {
    ternary_columns_body(cols, stride, plus, minus, totals);
}

/// [`ternary_columns_body`] compiled for AVX-512: 32 `i16` lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn ternary_columns_avx512<T: Lane>(
    cols: &[T],
    stride: usize,
    plus: &[u32],
    minus: &[u32],
    totals: &mut [i32],
) {
    ternary_columns_body(cols, stride, plus, minus, totals);
}

#[inline(always)]
fn ternary_columns_body<T: Lane>(
    cols: &[T],
    stride: usize,
    plus: &[u32],
    minus: &[u32],
    totals: &mut [i32],
) {
    if stride.is_multiple_of(COLUMN_LANES) {
        ternary_columns_lanes::<T, COLUMN_LANES>(cols, stride, plus, minus, totals);
    } else {
        ternary_columns_lanes::<T, COLUMN_UNIT>(cols, stride, plus, minus, totals);
    }
}

/// [`ternary_columns_body`] in chunks of `L` outputs (`stride` a multiple of `L`).
#[inline(always)]
fn ternary_columns_lanes<T: Lane, const L: usize>(
    cols: &[T],
    stride: usize,
    plus: &[u32],
    minus: &[u32],
    totals: &mut [i32],
) {
    debug_assert_eq!(stride % L, 0);
    for c0 in (0..stride).step_by(L) {
        let mut total = [0i32; L];
        for (list, sign) in [(plus, 1i32), (minus, -1i32)] {
            for block in list.chunks(FLUSH_COLUMNS) {
                let mut acc = [0i16; L];
                for &c in block {
                    let start = c as usize * stride + c0;
                    let col: &[T; L] = cols[start..start + L].try_into().expect("a column chunk");
                    for k in 0..L {
                        acc[k] += col[k].widen();
                    }
                }
                for k in 0..L {
                    total[k] += sign * i32::from(acc[k]);
                }
            }
        }
        totals[c0..c0 + L].copy_from_slice(&total);
    }
}

/// `out[i] += Σ_k wt[k][i] · a[k]` over the inputs `a[k] ≠ 0`, input by input: each lane's
/// additions are the row form's, in its order (`w · a`, then `+`; never fused).
///
/// `nz` is scratch space for the indices of the non-zero inputs: they are listed first,
/// without branches, so that the column loop does not mispredict on the inputs that ReLU
/// zeroed (about half, at random).
fn float_columns(kernel: Kernel, wt: &[f32], a: &[f32], nz: &mut Vec<u32>, out: &mut [f32]) {
    nz.resize(a.len(), 0);
    let mut n = 0;
    for (k, &x) in a.iter().enumerate() {
        nz[n] = k as u32;
        n += usize::from(x != 0.0);
    }
    let nz = &nz[..n];
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2.
            unsafe { float_columns_avx2(wt, a, nz, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => {
            // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F.
            unsafe { float_columns_avx512(wt, a, nz, out) }
        }
        _ => float_columns_body(wt, a, nz, out),
    }
}

/// [`float_columns_body`] compiled for AVX2 (8 lanes instead of 4; AVX2 does not enable FMA,
/// so the multiply and the add stay two roundings, as in the row form).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn float_columns_avx2(wt: &[f32], a: &[f32], nz: &[u32], out: &mut [f32]) {
    float_columns_body(wt, a, nz, out);
}

/// [`float_columns_body`] compiled for AVX-512 (16 lanes). AVX-512 implies FMA, but Rust
/// never contracts `w * a + acc` into one: the two roundings stay (the kernel tests compare
/// the bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn float_columns_avx512(wt: &[f32], a: &[f32], nz: &[u32], out: &mut [f32]) {
    float_columns_body(wt, a, nz, out);
}

#[inline(always)]
fn float_columns_body(wt: &[f32], a: &[f32], nz: &[u32], out: &mut [f32]) {
    let n_out = out.len();
    for &k in nz {
        let (k, a) = (k as usize, a[k as usize]);
        let col = &wt[k * n_out..(k + 1) * n_out];
        for (acc, &w) in out.iter_mut().zip(col) {
            *acc += w * a;
        }
    }
}

impl Plan {
    fn of(l: usize, layer: &Layer) -> Self {
        match (&layer.weights, l) {
            (Weights::I8 { q, .. } | Weights::I4 { q, .. }, 0) => {
                let (n_in, n_out) = (layer.n_in, layer.n_out);
                let stride = n_out.div_ceil(COLUMN_UNIT) * COLUMN_UNIT;
                let cols = match layer.weights {
                    // `validate` keeps 4-bit values in −8..=7, so |A ± B| ≤ 16.
                    Weights::I4 { .. } => {
                        PairColumns::Narrow(pair_columns(q, n_in, n_out, stride, |v| v as i8))
                    }
                    _ => PairColumns::Wide(pair_columns(q, n_in, n_out, stride, |v| v)),
                };
                Plan::TernaryPairs { cols, stride }
            }
            (Weights::I8 { q, .. } | Weights::I4 { q, .. }, _) => {
                let stride = layer.n_out.div_ceil(FLOAT_LANES) * FLOAT_LANES;
                let mut wt = vec![0.0f32; layer.n_in * stride];
                for i in 0..layer.n_out {
                    for k in 0..layer.n_in {
                        wt[k * stride + i] = f32::from(q[i * layer.n_in + k]);
                    }
                }
                Plan::Columns { wt, stride }
            }
            (Weights::F32(_), _) => Plan::Rows,
        }
    }
}

/// The `f32` layers of `layers` stored as `quantization` says: 4 bits for the first layer of
/// [`Quantization::Int4`] (unless it is also the output layer), 8 for the others, unchanged
/// for [`Quantization::None`].
fn quantize_layers(mut layers: Vec<Layer>, quantization: Quantization) -> Vec<Layer> {
    let hidden = layers.len() > 1;
    for (l, layer) in layers.iter_mut().enumerate() {
        let Weights::F32(w) = &layer.weights else {
            continue;
        };
        let (rows, cols) = (layer.n_out, layer.n_in);
        layer.weights = match (quantization, l) {
            (Quantization::None, _) => continue,
            (Quantization::Int4, 0) if hidden => {
                let (q, scale) = quantize_rows(w, rows, cols, 7);
                Weights::I4 { q, scale }
            }
            (Quantization::Int8 | Quantization::Int4, _) => {
                let (q, scale) = quantize_rows(w, rows, cols, 127);
                Weights::I8 { q, scale }
            }
        };
    }
    layers
}

/// The pair columns of [`Plan::TernaryPairs`] for the `n_out × n_in` weights `q`: column
/// `4p + k`, lane `i`, is `A`, `B`, `A + B` or `A − B` for inputs `2p`, `2p + 1` of output
/// `i`, converted by `to` (values within ±256, or ±16 for 4-bit weights).
fn pair_columns<T: Copy + Default>(
    q: &[i8],
    n_in: usize,
    n_out: usize,
    stride: usize,
    to: impl Fn(i16) -> T,
) -> Vec<T> {
    let pairs = n_in.div_ceil(2);
    let mut cols = vec![T::default(); 4 * pairs * stride];
    // An odd last input pairs with a column of zeros.
    let w = |i: usize, j: usize| {
        if j < n_in {
            i16::from(q[i * n_in + j])
        } else {
            0
        }
    };
    for p in 0..pairs {
        for i in 0..n_out {
            let (a, b) = (w(i, 2 * p), w(i, 2 * p + 1));
            for (k, v) in [a, b, a + b, a - b].into_iter().enumerate() {
                cols[(4 * p + k) * stride + i] = to(v);
            }
        }
    }
    cols
}

/// Quantizes a row-major `rows × cols` matrix to integers in `−levels..=levels` with one
/// scale per row, `scale = max|w_row| / levels`: `levels` is 127 for `i8`, 7 for 4 bits.
pub fn quantize_rows(w: &[f32], rows: usize, cols: usize, levels: i8) -> (Vec<i8>, Vec<f32>) {
    let top = f32::from(levels.max(1));
    let mut q = Vec::with_capacity(w.len());
    let mut scale = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let s = if max > 0.0 { max / top } else { 0.0 };
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        q.extend(
            row.iter()
                .map(|&x| (x * inv).round().clamp(-top, top) as i8),
        );
        scale.push(s);
    }
    (q, scale)
}

impl Network {
    /// Builds a network from its layers, checking shapes and values.
    ///
    /// # Errors
    /// A message naming the first bad layer.
    pub fn from_layers(layers: Vec<Layer>) -> std::result::Result<Self, String> {
        if layers.is_empty() {
            return Err("no layer".into());
        }
        for (l, layer) in layers.iter().enumerate() {
            layer.validate().map_err(|m| format!("layer {l}: {m}"))?;
            if l > 0 && layers[l - 1].n_out != layer.n_in {
                return Err(format!(
                    "layer {l} takes {} inputs but layer {} gives {}",
                    layer.n_in,
                    l - 1,
                    layers[l - 1].n_out
                ));
            }
        }
        Ok(Self::with_plans(layers))
    }

    fn with_plans(layers: Vec<Layer>) -> Self {
        let plans = layers
            .iter()
            .enumerate()
            .map(|(l, x)| Plan::of(l, x))
            .collect();
        Self { layers, plans }
    }

    /// The inference form of a trained [`Mlp`], its weights stored as `quantization` says.
    pub fn from_mlp(mlp: &Mlp, quantization: Quantization) -> Self {
        let sizes = mlp.sizes();
        let layers = (0..sizes.len() - 1)
            .map(|l| {
                let (w, b) = mlp.layer(l);
                Layer {
                    n_in: sizes[l],
                    n_out: sizes[l + 1],
                    weights: Weights::F32(w.to_vec()),
                    bias: b.to_vec(),
                }
            })
            .collect();
        Self::with_plans(quantize_layers(layers, quantization))
    }

    /// This network with its `f32` layers stored as `quantization` says, exactly as
    /// [`Network::from_mlp`] would have stored them (layers already quantized stay as they
    /// are): to compare quantizations of one trained network (`benches/quantize.rs`).
    pub fn quantized(&self, quantization: Quantization) -> Self {
        Self::with_plans(quantize_layers(self.layers.clone(), quantization))
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Input length.
    pub fn n_in(&self) -> usize {
        self.layers[0].n_in
    }

    /// Output length (labels).
    pub fn n_out(&self) -> usize {
        self.layers[self.layers.len() - 1].n_out
    }

    /// Bytes of all weights, scales and biases.
    pub fn size_bytes(&self) -> usize {
        self.layers.iter().map(Layer::size_bytes).sum()
    }

    /// Forward pass on a projected input (values in {−1, 0, +1}); the softmax is left in
    /// `s.probs`. Allocation-free once `s` has grown to the layer sizes.
    ///
    /// # Panics
    /// If `x.len() != self.n_in()`, or (debug builds) if a value of `x` is outside
    /// {−1, 0, +1}: both are bugs in the caller, since [`crate::projection::Projector`] is the
    /// only producer of inputs. (Release builds read such a value as its sign in an `i8`
    /// first layer.)
    pub fn forward(&self, x: &[i8], s: &mut NetScratch) {
        self.forward_with(Kernel::detect(), x, s);
    }

    fn forward_with(&self, kernel: Kernel, x: &[i8], s: &mut NetScratch) {
        assert_eq!(x.len(), self.n_in(), "input length");
        debug_assert!(
            x.iter().all(|v| (-1..=1).contains(v)),
            "input outside {{-1, 0, 1}}"
        );
        let n_layers = self.layers.len();
        for (l, (layer, plan)) in self.layers.iter().zip(&self.plans).enumerate() {
            let relu = l + 1 < n_layers;
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            let finish = |i: usize, z: f32| {
                let z = z + layer.bias[i];
                if relu {
                    z.max(0.0)
                } else {
                    z
                }
            };
            s.b.clear();
            match (&layer.weights, plan) {
                (
                    Weights::I8 { scale, .. } | Weights::I4 { scale, .. },
                    Plan::TernaryPairs { cols, stride },
                ) => {
                    let (np, nm) = split_pairs(kernel, x, &mut s.plus, &mut s.minus);
                    s.totals.resize(*stride, 0);
                    let (plus, minus) = (&s.plus[..np], &s.minus[..nm]);
                    match cols {
                        PairColumns::Wide(c) => {
                            ternary_columns(kernel, c, *stride, plus, minus, &mut s.totals)
                        }
                        PairColumns::Narrow(c) => {
                            ternary_columns(kernel, c, *stride, plus, minus, &mut s.totals)
                        }
                    }
                    // The exact integer dot product, scaled as in the row form.
                    s.b.extend((0..n_out).map(|i| finish(i, s.totals[i] as f32 * scale[i])));
                }
                (
                    Weights::I8 { scale, .. } | Weights::I4 { scale, .. },
                    Plan::Columns { wt, stride },
                ) => {
                    // Each output is the sum over k = 0, 1, … of `q[i][k] · a[k]` in `f32`,
                    // in the same order as the row form's `sum()` (which starts at −0.0), so
                    // the outputs are the same floats. Inputs that ReLU zeroed are skipped:
                    // adding `±0` leaves a sum unchanged up to the sign of a zero sum.
                    s.b.resize(*stride, -0.0);
                    float_columns(kernel, wt, &s.a, &mut s.nz, &mut s.b);
                    s.b.truncate(n_out);
                    for (i, z) in s.b.iter_mut().enumerate() {
                        *z = finish(i, *z * scale[i]);
                    }
                }
                (Weights::I8 { q, scale } | Weights::I4 { q, scale }, _) => {
                    for i in 0..n_out {
                        let row = &q[i * n_in..(i + 1) * n_in];
                        let acc: f32 = row.iter().zip(&s.a).map(|(&w, &v)| f32::from(w) * v).sum();
                        s.b.push(finish(i, acc * scale[i]));
                    }
                }
                (Weights::F32(w), _) => {
                    for i in 0..n_out {
                        let row = &w[i * n_in..(i + 1) * n_in];
                        let z = if l == 0 {
                            row.iter().zip(x).map(|(&w, &v)| w * f32::from(v)).sum()
                        } else {
                            dot(row, &s.a)
                        };
                        s.b.push(finish(i, z));
                    }
                }
            }
            std::mem::swap(&mut s.a, &mut s.b);
        }
        s.probs.resize(s.a.len(), 0.0);
        softmax(&s.a, &mut s.probs);
    }

    /// The forward pass as it was before the column kernels: one exact `i16`-lane dot
    /// product per output row. The reference the fast path must match.
    #[cfg(test)]
    fn forward_rows(&self, x: &[i8], s: &mut NetScratch) {
        let n_layers = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let relu = l + 1 < n_layers;
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            s.b.clear();
            for i in 0..n_out {
                let z = match (&layer.weights, l) {
                    (Weights::I8 { q, scale } | Weights::I4 { q, scale }, 0) => {
                        ternary_dot(&q[i * n_in..(i + 1) * n_in], x) as f32 * scale[i]
                    }
                    (Weights::I8 { q, scale } | Weights::I4 { q, scale }, _) => {
                        let row = &q[i * n_in..(i + 1) * n_in];
                        let acc: f32 = row.iter().zip(&s.a).map(|(&w, &v)| f32::from(w) * v).sum();
                        acc * scale[i]
                    }
                    (Weights::F32(w), 0) => {
                        let row = &w[i * n_in..(i + 1) * n_in];
                        row.iter().zip(x).map(|(&w, &v)| w * f32::from(v)).sum()
                    }
                    (Weights::F32(w), _) => dot(&w[i * n_in..(i + 1) * n_in], &s.a),
                } + layer.bias[i];
                s.b.push(if relu { z.max(0.0) } else { z });
            }
            std::mem::swap(&mut s.a, &mut s.b);
        }
        s.probs.resize(s.a.len(), 0.0);
        softmax(&s.a, &mut s.probs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

    fn mlp(sizes: &[usize], seed: u64) -> Mlp {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Mlp::new(sizes, || rng.next_u64()).unwrap()
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
            let m = mlp(sizes, 4);
            for n in [1, 3, 4, 5, 16] {
                // Ternary inputs with dropped (zero) entries, as in training.
                let xs: Vec<Vec<f32>> = (0..n)
                    .map(|_| {
                        (0..sizes[0])
                            .map(|_| (rng.next_u64() % 3) as f32 - 1.0)
                            .collect()
                    })
                    .collect();
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
                let mut want_grad = vec![0.0f32; m.params().len()];
                let mut want_probs = Vec::new();
                let mut one = MlpScratch::default();
                for (x, dl) in xs.iter().zip(&dls) {
                    m.forward(x, &mut one);
                    want_probs.push(one.probs.clone());
                    m.backward(x, dl, &mut one, &mut want_grad);
                }
                let mut many = vec![MlpScratch::default(); n];
                let xr: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
                let dr: Vec<&[f32]> = dls.iter().map(Vec::as_slice).collect();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                for kernel in kernels() {
                    m.forward_many_with(kernel, &xr, &mut many);
                    let mut grad = vec![0.0f32; m.params().len()];
                    m.backward_many_with(kernel, &xr, &dr, &mut many, &mut grad);
                    for (s, want) in many.iter().zip(&want_probs) {
                        assert_eq!(bits(&s.probs), bits(want), "{sizes:?} {n}");
                    }
                    assert_eq!(bits(&grad), bits(&want_grad), "{sizes:?} {n} {kernel:?}");
                }
            }
        }
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

    #[test]
    fn quantized_network_stays_close_to_float() {
        let m = mlp(&[64, 32, 5], 3);
        let f = Network::from_mlp(&m, Quantization::None);
        let q = Network::from_mlp(&m, Quantization::Int8);
        let q4 = Network::from_mlp(&m, Quantization::Int4);
        assert_eq!(f.quantized(Quantization::Int4), q4);
        assert_eq!(f.quantized(Quantization::Int8), q);
        assert_eq!(q.quantized(Quantization::Int4), q, "quantized layers stay");
        // Without a hidden layer the only layer is the output layer: 8 bits.
        let single = Network::from_mlp(&mlp(&[64, 5], 3), Quantization::Int4);
        assert!(matches!(single.layers()[0].weights, Weights::I8 { .. }));
        assert!(q.size_bytes() * 3 < f.size_bytes());
        // The first layer's 64 × 32 weights take half the bytes; the rest is as in int8.
        assert_eq!(q.size_bytes() - q4.size_bytes(), 64 * 32 / 2);
        assert!(matches!(q4.layers()[0].weights, Weights::I4 { .. }));
        assert!(matches!(q4.layers()[1].weights, Weights::I8 { .. }));
        let mut s4 = NetScratch::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let (mut sf, mut sq, mut st) = (
            NetScratch::default(),
            NetScratch::default(),
            MlpScratch::default(),
        );
        for _ in 0..50 {
            let x: Vec<i8> = (0..64).map(|_| (rng.next_u64() % 3) as i8 - 1).collect();
            let xf: Vec<f32> = x.iter().map(|&v| f32::from(v)).collect();
            f.forward(&x, &mut sf);
            q.forward(&x, &mut sq);
            q4.forward(&x, &mut s4);
            m.forward(&xf, &mut st);
            for k in 0..5 {
                assert!((sf.probs[k] - st.probs[k]).abs() < 1e-5);
                // Per-row int8 error is at most scale/2 per weight; on these sizes the
                // probabilities move by well under 0.02.
                assert!((sf.probs[k] - sq.probs[k]).abs() < 0.02, "{k}");
                // 4 bits: scales 18 times coarser, still close on a layer this narrow.
                assert!((sf.probs[k] - s4.probs[k]).abs() < 0.1, "{k}");
            }
        }
    }

    #[test]
    fn quantization_reads_names_and_the_old_boolean() {
        let read = |json: &str| serde_json::from_str::<Quantization>(json).unwrap();
        assert_eq!(read("\"int4\""), Quantization::Int4);
        assert_eq!(read("\"int8\""), Quantization::Int8);
        assert_eq!(read("\"none\""), Quantization::None);
        assert_eq!(
            read("true"),
            Quantization::Int8,
            "the field was `quantize: true`"
        );
        assert_eq!(read("false"), Quantization::None);
        assert!(serde_json::from_str::<Quantization>("\"int2\"").is_err());
        assert_eq!(
            serde_json::to_string(&Quantization::Int4).unwrap(),
            "\"int4\""
        );
    }

    #[test]
    fn quantize_rows_bounds_the_error() {
        let w = [0.5, -1.0, 0.25, 0.1, 0.0, 0.0, 0.0, 0.0];
        for levels in [127, 7] {
            let (q, scale) = quantize_rows(&w, 2, 4, levels);
            assert_eq!(scale[1], 0.0, "an all-zero row");
            assert_eq!(q[1], -levels);
            assert!(q.iter().all(|v| v.abs() <= levels));
            for r in 0..2 {
                for c in 0..4 {
                    let back = f32::from(q[r * 4 + c]) * scale[r];
                    assert!((back - w[r * 4 + c]).abs() <= scale[r] / 2.0 + 1e-7);
                }
            }
        }
    }

    #[test]
    fn ternary_dot_is_exact_even_past_the_flush() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        for n in [0, 5, 16, 33, 4096 + 7, 20_000] {
            let w: Vec<i8> = (0..n)
                .map(|_| if rng.next_u64() % 2 == 0 { 127 } else { -127 })
                .collect();
            // All-ones input with all-127 weights is the worst case for the i16 lanes.
            let x: Vec<i8> = vec![1; n];
            let want: i32 = w.iter().map(|&v| i32::from(v)).sum();
            assert_eq!(ternary_dot(&w, &x), want, "n = {n}");
            let all: Vec<i8> = vec![127; n];
            assert_eq!(ternary_dot(&all, &x), 127 * n as i32);
            let x: Vec<i8> = (0..n).map(|_| (rng.next_u64() % 3) as i8 - 1).collect();
            let want: i32 = w
                .iter()
                .zip(&x)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            assert_eq!(ternary_dot(&w, &x), want);
        }
    }

    /// The kernels this CPU can run.
    fn kernels() -> Vec<Kernel> {
        Kernel::all()
    }

    #[test]
    fn ternary_columns_are_exact_even_past_the_flush() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        // Strides of 64 (chunks of 64), 128 (one chunk of 128) and 192 (three chunks of 64).
        for (n_cols, n_out) in [
            (1usize, 1usize),
            (300, 64),
            (2240, 128),
            (2000, 70),
            (400, 150),
        ] {
            let stride = n_out.div_ceil(COLUMN_UNIT) * COLUMN_UNIT;
            // Extreme pair columns (|A ± B| ≤ 256 for i8 weights, ≤ 16 for 4-bit ones, whose
            // columns are also tried narrow) in every lane, and random.
            for (top, fill) in [256i16, 16]
                .into_iter()
                .flat_map(|t| [(t, Some(t)), (t, Some(-t)), (t, None)])
            {
                let mut cols = vec![0i16; n_cols * stride];
                for c in 0..n_cols {
                    for i in 0..n_out {
                        cols[c * stride + i] = fill.unwrap_or_else(|| {
                            (rng.next_u64() % (2 * top as u64 + 1)) as i16 - top
                        });
                    }
                }
                let narrow: Vec<i8> = cols.iter().map(|&v| v as i8).collect();
                for density in [0u64, 1, 2, 3] {
                    // Column c is added, subtracted or skipped; `density` 3 adds every one.
                    let x: Vec<i32> = (0..n_cols)
                        .map(|_| match density {
                            3 => 1,
                            _ => ((rng.next_u64() % 3) as i32 - 1) * i32::from(density > 0),
                        })
                        .collect();
                    let plus: Vec<u32> =
                        (0..n_cols as u32).filter(|&c| x[c as usize] > 0).collect();
                    let minus: Vec<u32> =
                        (0..n_cols as u32).filter(|&c| x[c as usize] < 0).collect();
                    let want: Vec<i32> = (0..stride)
                        .map(|i| {
                            (0..n_cols)
                                .map(|c| i32::from(cols[c * stride + i]) * x[c])
                                .sum()
                        })
                        .collect();
                    for kernel in kernels() {
                        let mut got = vec![7i32; stride];
                        ternary_columns(kernel, &cols, stride, &plus, &minus, &mut got);
                        assert_eq!(got, want, "{kernel:?} {n_cols}×{n_out} {fill:?} {density}");
                        if top <= 16 {
                            got.fill(7);
                            ternary_columns(kernel, &narrow, stride, &plus, &minus, &mut got);
                            assert_eq!(got, want, "narrow, {kernel:?} {n_cols}×{n_out} {fill:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_weights_stay_exact() {
        // −128 and 127 weights (a file may hold −128), all inputs ±1: the largest sums; and
        // a 4-bit layer's −8 and 7.
        let wide = [(-128i8, 1i8), (-128, -1), (127, 1), (127, -1)];
        let narrow = [(-8i8, 1i8), (-8, -1), (7, 1), (7, -1)];
        let cases = wide.map(|c| (c, false)).into_iter();
        for ((w, x), four_bits) in cases.chain(narrow.map(|c| (c, true))) {
            let n_in = 1121;
            let (q, scale) = (vec![w; n_in * 3], vec![1.0; 3]);
            let layer = Layer {
                n_in,
                n_out: 3,
                weights: if four_bits {
                    Weights::I4 { q, scale }
                } else {
                    Weights::I8 { q, scale }
                },
                bias: vec![0.0; 3],
            };
            let net = Network::from_layers(vec![layer]).unwrap();
            let x = vec![x; n_in];
            let mut want = NetScratch::default();
            net.forward_rows(&x, &mut want);
            for kernel in kernels() {
                let mut got = NetScratch::default();
                net.forward_with(kernel, &x, &mut got);
                assert_eq!(got.a, want.a, "{kernel:?}");
                assert_eq!(got.a[0], f32::from(w) * f32::from(x[0]) * n_in as f32);
            }
        }
    }

    #[test]
    fn every_kernel_splits_pairs_as_the_scalar_loop_does() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let (mut plus, mut minus) = (Vec::new(), Vec::new());
        for len in (0..70).chain([1023, 1024, 1025, 2239, 2240]) {
            for values in [3u64, 256] {
                // Ternary inputs, and any `i8` (values outside {−1, 0, 1} add nothing).
                let x: Vec<i8> = (0..len)
                    .map(|_| match values {
                        3 => (rng.next_u64() % 3) as i8 - 1,
                        _ => rng.next_u64() as i8,
                    })
                    .collect();
                let (np, nm) = split_pairs(Kernel::Portable, &x, &mut plus, &mut minus);
                let want = (plus[..np].to_vec(), minus[..nm].to_vec());
                for kernel in kernels() {
                    // Dirty buffers of another size: what the kernel writes must not depend
                    // on them.
                    let (mut p, mut m) = (vec![u32::MAX; 7], vec![5; 3000]);
                    let (np, nm) = split_pairs(kernel, &x, &mut p, &mut m);
                    assert_eq!(
                        (&p[..np], &m[..nm]),
                        (&want.0[..], &want.1[..]),
                        "{kernel:?} {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn fast_forward_matches_the_row_form_exactly() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        for sizes in [
            &[1120, 128, 64][..],
            &[1120, 128, 7],
            &[2240, 64, 41],
            &[300, 150, 4],
            &[37, 19, 5],
            &[1, 2],
            &[100, 70, 30, 3],
            &[40, 3],
        ] {
            let m = mlp(sizes, 21);
            for quantize in [Quantization::Int4, Quantization::Int8, Quantization::None] {
                let net = Network::from_mlp(&m, quantize);
                for density in 0..4u64 {
                    let x: Vec<i8> = (0..sizes[0])
                        .map(|_| match density {
                            0 => 0,
                            3 => 1,
                            _ => (rng.next_u64() % 3) as i8 - 1,
                        })
                        .collect();
                    let mut want = NetScratch::default();
                    net.forward_rows(&x, &mut want);
                    for kernel in kernels() {
                        let mut got = NetScratch::default();
                        // Twice: the second pass reuses grown buffers.
                        net.forward_with(kernel, &x, &mut got);
                        net.forward_with(kernel, &x, &mut got);
                        assert_eq!(got.a, want.a, "logits, {kernel:?} {sizes:?} {quantize:?}");
                        let bits = |p: &[f32]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got.probs), bits(&want.probs));
                    }
                    let mut public = NetScratch::default();
                    net.forward(&x, &mut public);
                    assert_eq!(public.a, want.a);
                }
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let bad = Layer {
            n_in: 2,
            n_out: 2,
            weights: Weights::F32(vec![0.0; 3]),
            bias: vec![0.0; 2],
        };
        assert!(Network::from_layers(vec![bad]).is_err());
        let nan = Layer {
            n_in: 1,
            n_out: 1,
            weights: Weights::F32(vec![f32::NAN]),
            bias: vec![0.0],
        };
        assert!(Network::from_layers(vec![nan]).is_err());
    }
}
