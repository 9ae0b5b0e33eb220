//! A small dense network on plain `f32` slices: ReLU hidden layers and a softmax output.
//!
//! Two types with one layout:
//! - `Mlp` is the training form: every weight and bias in one flat `f32` vector (so the
//!   optimizer, the gradient sums and the best-epoch snapshot are plain slice loops), with
//!   forward, backward and `Adam`.
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
//!
//! Source layout:
//! - `train.rs`: `Mlp`, its scratch buffers and `Adam`, with the batched training
//!   kernels (`dots`, `axpy_rows`, `axpy`).
//! - `quantize.rs`: the stored form of a layer ([`Layer`], [`Weights`]), [`Quantization`]
//!   and the quantizer ([`quantize_rows`]).
//! - `infer.rs`: [`Network`] and [`NetScratch`], the forward pass `sprig predict` runs,
//!   with its per-layer plans and column kernels.
//! - `kernel.rs`: which vector kernels run ([`kernel_name`], [`check_kernel_env`]), shared
//!   by training, inference and the projection.
//! - this file: [`softmax`] and the `f32` dot product both forms use.

mod infer;
mod kernel;
mod quantize;
mod train;

pub(crate) use infer::PackedLayer;
pub use infer::{NetScratch, Network};
#[cfg(target_arch = "x86_64")]
pub(crate) use kernel::entered;
#[cfg(test)]
pub(crate) use kernel::take_entered;
#[cfg(any(test, target_arch = "x86_64"))]
pub(crate) use kernel::Entry;
pub(crate) use kernel::Kernel;
pub use kernel::{check_kernel_env, kernel_name};
pub use quantize::{quantize_rows, Layer, Quantization, Weights};
pub(crate) use train::{Adam, AdamStep, Mlp, MlpScratch};

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

/// What the unit tests of several files share.
#[cfg(test)]
pub(crate) mod test_util {
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

    use super::train::layout;
    use super::{Kernel, Mlp};

    /// A network as `Mlp::new` starts it: random weights, every bias zero (see
    /// [`draw_biases`]).
    pub(super) fn mlp(sizes: &[usize], seed: u64) -> Mlp {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        Mlp::new(sizes, || rng.next_u64()).unwrap()
    }

    /// Draws every bias of `m` from U(−0.5, 0.5), layer by layer. With the zero biases of
    /// [`mlp`], `z + b` and `z − b` are the same floats, so a test of how a path adds the
    /// biases needs these.
    pub(super) fn draw_biases(m: &mut Mlp, rng: &mut Xoshiro256PlusPlus) {
        let sizes = m.sizes().to_vec();
        for (l, &(_, b_off)) in layout(&sizes).iter().enumerate() {
            for b in &mut m.params_mut()[b_off..b_off + sizes[l + 1]] {
                *b = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
        }
    }

    /// The kernels this CPU can run.
    pub(super) fn kernels() -> Vec<Kernel> {
        Kernel::all()
    }

    /// The bits of each float, so that comparisons tell −0 from +0 and see NaNs.
    pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::softmax;

    #[test]
    fn softmax_of_large_logits_is_finite_and_sums_to_one() {
        // exp(1000) overflows an f32: only the shift by the largest logit keeps these finite.
        let mut out = [0.0f32; 3];
        softmax(&[1000.0, 999.0, -1000.0], &mut out);
        let e = (-1.0f64).exp();
        let want = [1.0 / (1.0 + e), e / (1.0 + e), 0.0];
        for (got, want) in out.iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{out:?}");
        }
        // Small logits too: exp(z) / Σ exp(z).
        softmax(&[0.0, 2.0f32.ln(), 0.0], &mut out);
        for (got, want) in out.iter().zip([0.25, 0.5, 0.25]) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
    }
}
