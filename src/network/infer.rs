//! The inference form: [`Network`], the forward pass that `sprig predict` runs on a
//! projected input. Each layer gets a [`Plan`] when the network is built: a quantized first
//! layer sums precomputed pair columns of its weights ([`split_pairs`],
//! [`ternary_columns`]), later quantized layers add transposed columns
//! ([`float_columns`]), `f32` layers take row dot products. The plan is the only copy of a
//! layer's weights: its stored form, a [`Layer`], is rebuilt from it when asked for.

use super::kernel::Kernel;
#[cfg(target_arch = "x86_64")]
use super::kernel::{entered, Entry};
use super::quantize::{check_layer, quantize_layers, scales_fit, Layer, Quantization, Weights};
use super::train::Mlp;
use super::{dot, softmax};
use crate::format::Nibbles;

/// The inference network: layers of [`Layer`], input in {−1, 0, +1}.
///
/// Each layer's weights are held once, in the layout its forward pass reads, and its stored
/// form is rebuilt from them when asked for ([`Network::layers`]). (Keeping the stored form
/// as well cost a default model 143 KB of its 481 KB: its first layer's 4-bit weights, one
/// to a byte, which no prediction reads.)
///
/// Two networks are equal when their layers are: a layer's plan is a function of the layer,
/// and the layer is rebuilt from its plan, so comparing plans compares layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    layers: Vec<Planned>,
}

/// One layer as the forward pass reads it: its shape, its biases and its weights (with
/// their scales) in the layout of its [`Plan`].
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    n_in: usize,
    n_out: usize,
    plan: Plan,
    bias: Vec<f32>,
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

impl NetScratch {
    /// The output layer's values (the logits, before the softmax) of the last forward pass.
    pub(crate) fn logits(&self) -> &[f32] {
        &self.a
    }
}

impl Network {
    /// Builds a network from its layers, checking shapes and values.
    ///
    /// # Errors
    /// A message naming the first bad layer.
    pub fn from_layers(layers: Vec<Layer>) -> std::result::Result<Self, String> {
        Self::from_sources(layers.into_iter().map(Source::Stored).collect())
    }

    /// [`Network::from_layers`] for a model file's layers, its 4-bit first layer still packed
    /// in the file's bytes: loading never holds that layer one weight to a byte (143 KB for
    /// a default model) beside the file and the columns it is planned into.
    pub(crate) fn with_packed_first(
        first: PackedLayer<'_>,
        rest: Vec<Layer>,
    ) -> std::result::Result<Self, String> {
        let sources = std::iter::once(Source::Packed(first))
            .chain(rest.into_iter().map(Source::Stored))
            .collect();
        Self::from_sources(sources)
    }

    fn from_sources(layers: Vec<Source<'_>>) -> std::result::Result<Self, String> {
        if layers.is_empty() {
            return Err("no layer".into());
        }
        for (l, layer) in layers.iter().enumerate() {
            layer.validate().map_err(|m| format!("layer {l}: {m}"))?;
            let (n_in, prev_out) = (
                layer.shape().0,
                l.checked_sub(1).map(|p| layers[p].shape().1),
            );
            if let Some(prev_out) = prev_out.filter(|&p| p != n_in) {
                return Err(format!(
                    "layer {l} takes {n_in} inputs but layer {} gives {prev_out}",
                    l - 1,
                ));
            }
        }
        // Each layer is dropped as soon as it is planned.
        let layers = layers
            .into_iter()
            .enumerate()
            .map(|(l, x)| match x {
                Source::Stored(x) => Planned::of(l, x),
                Source::Packed(x) => Planned::packed(x),
            })
            .collect();
        Ok(Self { layers })
    }

    fn with_plans(layers: Vec<Layer>) -> Self {
        // Each layer is dropped as soon as it is planned.
        let layers = layers
            .into_iter()
            .enumerate()
            .map(|(l, x)| Planned::of(l, x))
            .collect();
        Self { layers }
    }

    /// The inference form of a trained `Mlp`, its weights stored as `quantization` says.
    pub(crate) fn from_mlp(mlp: &Mlp, quantization: Quantization) -> Self {
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

    /// This network with its `f32` layers stored as `quantization` says, exactly as training
    /// would have stored them (layers already quantized stay as they are): to compare
    /// quantizations of one trained network (`benches/quantize.rs`).
    pub fn quantized(&self, quantization: Quantization) -> Self {
        Self::with_plans(quantize_layers(self.layers(), quantization))
    }

    /// This network with its logits multiplied by `beta > 0`, a softmax temperature of
    /// `1 / beta`: the output layer's row scales (or `f32` weights) and biases times `beta`.
    /// The labels' order is that of the original logits up to `f32` rounding; the scores
    /// get sharper (`beta > 1`) or softer. Training's calibration uses it
    /// (`crate::train::Calibration`).
    pub(crate) fn with_logits_scaled(&self, beta: f32) -> Self {
        debug_assert!(beta.is_finite() && beta > 0.0, "scale {beta}");
        let mut net = self.clone();
        let out = net.layers.last_mut().expect("a network has a layer");
        // The plans hold the scales and the `f32` weights as the stored form does.
        match &mut out.plan {
            Plan::Rows { w } => w.iter_mut().for_each(|w| *w *= beta),
            Plan::TernaryPairs { scale, .. } | Plan::Columns { scale, .. } => {
                scale.iter_mut().for_each(|s| *s *= beta)
            }
        }
        out.bias.iter_mut().for_each(|b| *b *= beta);
        net
    }

    /// The layers in their stored form (what a model file holds), rebuilt from the layout
    /// the forward pass reads: each call allocates a copy of every weight (143 KB for a
    /// default model's 4-bit first layer, one weight to a byte), which the network does not
    /// keep.
    pub fn layers(&self) -> Vec<Layer> {
        self.layers.iter().map(Planned::layer).collect()
    }

    /// Input length.
    pub fn n_in(&self) -> usize {
        self.layers[0].n_in
    }

    /// Output length (labels).
    pub fn n_out(&self) -> usize {
        self.layers[self.layers.len() - 1].n_out
    }

    /// Bytes of all weights, scales and biases, as stored ([`Layer::size_bytes`]).
    pub fn size_bytes(&self) -> usize {
        self.layers.iter().map(Planned::size_bytes).sum()
    }

    /// Forward pass on a projected input (values in {−1, 0, +1}); the softmax is left in
    /// `s.probs`. Allocation-free once `s` has grown to the layer sizes.
    ///
    /// # Panics
    /// If `x.len() != self.n_in()`, or (debug builds) if a value of `x` is outside
    /// {−1, 0, +1}: both are bugs in the caller, since [`crate::projection::Projector`] is the
    /// only producer of inputs. (Release builds read such a value by its two low bits, so the
    /// answer is unspecified: 2 reads as 0, −3 as +1.)
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
        for (l, layer) in self.layers.iter().enumerate() {
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
            match &layer.plan {
                Plan::TernaryPairs {
                    cols,
                    stride,
                    scale,
                } => {
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
                Plan::Columns {
                    wt, stride, scale, ..
                } => {
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
                Plan::Rows { w } => {
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
    /// product per output row of the stored form. The reference the fast path must match
    /// (the stored form is rebuilt from the plans, and
    /// `tests::layers_are_rebuilt_as_they_were_given` checks that it comes back whole).
    #[cfg(test)]
    fn forward_rows(&self, x: &[i8], s: &mut NetScratch) {
        let layers = self.layers();
        let n_layers = layers.len();
        for (l, layer) in layers.iter().enumerate() {
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

impl Planned {
    /// Plans layer `l` (the first layer reads ternary inputs, the others ReLU outputs).
    fn of(l: usize, layer: Layer) -> Self {
        let Layer {
            n_in,
            n_out,
            weights,
            bias,
        } = layer;
        let four_bits = matches!(weights, Weights::I4 { .. });
        let plan = match (weights, l) {
            (Weights::I8 { q, scale } | Weights::I4 { q, scale }, 0) => {
                ternary_pairs(n_in, n_out, |at| q[at], four_bits, scale)
            }
            (Weights::I8 { q, scale } | Weights::I4 { q, scale }, _) => {
                let stride = n_out.div_ceil(FLOAT_LANES) * FLOAT_LANES;
                let mut wt = vec![0.0f32; n_in * stride];
                for i in 0..n_out {
                    for k in 0..n_in {
                        wt[k * stride + i] = f32::from(q[i * n_in + k]);
                    }
                }
                Plan::Columns {
                    wt,
                    stride,
                    scale,
                    four_bits,
                }
            }
            (Weights::F32(w), _) => Plan::Rows { w },
        };
        Self {
            n_in,
            n_out,
            plan,
            bias,
        }
    }

    /// Plans a first layer still packed in a model file's bytes, as [`Planned::of`] plans it
    /// unpacked: reading each weight from its nibble.
    fn packed(layer: PackedLayer<'_>) -> Self {
        let PackedLayer {
            n_in,
            n_out,
            q,
            scale,
            bias,
        } = layer;
        Self {
            n_in,
            n_out,
            plan: ternary_pairs(n_in, n_out, |at| q.get(at), true, scale),
            bias,
        }
    }

    /// The stored form, rebuilt from the plan: the inverse of [`Planned::of`].
    fn layer(&self) -> Layer {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let weights = match &self.plan {
            Plan::TernaryPairs {
                cols: PairColumns::Wide(c),
                stride,
                scale,
            } => Weights::I8 {
                q: pair_weights(c, n_in, n_out, *stride, |v| v as i8),
                scale: scale.clone(),
            },
            Plan::TernaryPairs {
                cols: PairColumns::Narrow(c),
                stride,
                scale,
            } => Weights::I4 {
                q: pair_weights(c, n_in, n_out, *stride, |v| v),
                scale: scale.clone(),
            },
            Plan::Columns {
                wt,
                stride,
                scale,
                four_bits,
            } => {
                // The columns hold each integer weight as an exact `f32`.
                let q = (0..n_out)
                    .flat_map(|i| (0..n_in).map(move |k| wt[k * stride + i] as i8))
                    .collect();
                let scale = scale.clone();
                if *four_bits {
                    Weights::I4 { q, scale }
                } else {
                    Weights::I8 { q, scale }
                }
            }
            Plan::Rows { w } => Weights::F32(w.clone()),
        };
        Layer {
            n_in,
            n_out,
            weights,
            bias: self.bias.clone(),
        }
    }

    /// [`Layer::size_bytes`] of the stored form, without rebuilding it.
    fn size_bytes(&self) -> usize {
        let n = self.n_in * self.n_out;
        let weights = match &self.plan {
            Plan::Rows { w } => w.len() * 4,
            Plan::TernaryPairs {
                cols: PairColumns::Narrow(_),
                scale,
                ..
            }
            | Plan::Columns {
                four_bits: true,
                scale,
                ..
            } => n.div_ceil(2) + scale.len() * 4,
            Plan::TernaryPairs { scale, .. } | Plan::Columns { scale, .. } => n + scale.len() * 4,
        };
        weights + self.bias.len() * 4
    }
}

/// A 4-bit layer as a model file holds it: its `n_out × n_in` weights still packed two to
/// a byte in the file's bytes ([`Network::with_packed_first`]).
#[derive(Debug)]
pub(crate) struct PackedLayer<'a> {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    /// Row-major, as [`Weights::I4`]'s `q`.
    pub(crate) q: Nibbles<'a>,
    /// One per output row.
    pub(crate) scale: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

/// A layer that [`Network::from_sources`] checks and plans.
enum Source<'a> {
    Stored(Layer),
    Packed(PackedLayer<'a>),
}

impl Source<'_> {
    /// `(n_in, n_out)`.
    fn shape(&self) -> (usize, usize) {
        match self {
            Source::Stored(x) => (x.n_in, x.n_out),
            Source::Packed(x) => (x.n_in, x.n_out),
        }
    }

    /// [`Layer::validate`]; a nibble is always within the 4-bit range.
    fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Source::Stored(x) => x.validate(),
            Source::Packed(x) => {
                let ok = x.q.len() == x.n_in * x.n_out && scales_fit(&x.scale, x.n_out);
                check_layer(x.n_in, x.n_out, ok, &x.bias)
            }
        }
    }
}

/// The [`Plan::TernaryPairs`] of a first layer whose `n_out × n_in` weight at row-major
/// index `at` is `weight(at)`: a closure, so that a layer still packed in a file's bytes
/// is planned without unpacking it whole.
fn ternary_pairs(
    n_in: usize,
    n_out: usize,
    weight: impl Fn(usize) -> i8,
    four_bits: bool,
    scale: Vec<f32>,
) -> Plan {
    let stride = n_out.div_ceil(COLUMN_UNIT) * COLUMN_UNIT;
    let cols = if four_bits {
        // `validate` keeps 4-bit values in −8..=7, so |A ± B| ≤ 16.
        PairColumns::Narrow(pair_columns(weight, n_in, n_out, stride, |v| v as i8))
    } else {
        PairColumns::Wide(pair_columns(weight, n_in, n_out, stride, |v| v))
    };
    Plan::TernaryPairs {
        cols,
        stride,
        scale,
    }
}

/// How the forward pass computes one layer, with the layer's weights (and their scales) in
/// the layout it reads: the only copy the network keeps ([`Planned::layer`] rebuilds the
/// stored form).
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    /// A quantized first layer, whose inputs are ternary, by pairs of inputs: for inputs
    /// `2p, 2p + 1` with weight columns `A`, `B` of `W`, `cols` holds the four columns
    /// `A`, `B`, `A + B`, `A − B` (column `4p + k` at `cols[(4p + k)·stride..][..n_out]`,
    /// padded with zeros to `stride`, a multiple of [`COLUMN_UNIT`]; an odd last input's `B`
    /// is zeros). Whatever the two ternary inputs are, their contribution `a·A + b·B` is ±
    /// one of these columns, or nothing: one column operation per pair instead of up to
    /// two. The price is memory: 4 · 2 bytes per pair of inputs and output for an `i8`
    /// layer, 573 KB for a 1,120 × 128 layer (whose file section is 143 KB). A 4-bit
    /// layer's columns fit in `i8` (|A ± B| ≤ 16): half the memory, 287 KB, and half the
    /// bytes each prediction reads (the columns of a text are read from L2, not L1, so the
    /// bytes are most of the time). Columns `A` and `B` are the weights themselves.
    TernaryPairs {
        cols: PairColumns,
        stride: usize,
        /// One per output row.
        scale: Vec<f32>,
    },
    /// A later quantized layer: the integer weights as `f32` (exactly), transposed
    /// (`wt[k·stride + i]` is `q[i][k]`) and padded with zeros to `stride`, a multiple of
    /// [`FLOAT_LANES`], so that all outputs advance together, input by input, in whole
    /// vectors.
    Columns {
        wt: Vec<f32>,
        stride: usize,
        /// One per output row.
        scale: Vec<f32>,
        /// Stored in 4 bits ([`Weights::I4`]), not 8.
        four_bits: bool,
    },
    /// Row-by-row dot products over the row-major `out × in` weights (`f32` layers).
    Rows { w: Vec<f32> },
}

/// The pair columns of [`Plan::TernaryPairs`].
#[derive(Debug, Clone, PartialEq)]
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
///
/// [`quantize_rows`]: super::quantize_rows
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

/// The pair columns of [`Plan::TernaryPairs`] for the `n_out × n_in` weights whose
/// row-major index `at` is `weight(at)`: column `4p + k`, lane `i`, is `A`, `B`, `A + B` or
/// `A − B` for inputs `2p`, `2p + 1` of output `i`, converted by `to` (values within ±256,
/// or ±16 for 4-bit weights).
fn pair_columns<T: Copy + Default>(
    weight: impl Fn(usize) -> i8,
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
            i16::from(weight(i * n_in + j))
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

/// The `n_out × n_in` weights, row-major, that [`pair_columns`] laid out in `cols`: input
/// `2p` of output `i` is column `A` (`4p`), input `2p + 1` column `B` (`4p + 1`), at lane
/// `i`, converted back to `i8` by `from`.
fn pair_weights<T: Copy>(
    cols: &[T],
    n_in: usize,
    n_out: usize,
    stride: usize,
    from: impl Fn(T) -> i8,
) -> Vec<i8> {
    (0..n_out)
        .flat_map(|i| (0..n_in).map(move |j| (4 * (j / 2) + j % 2) * stride + i))
        .map(|at| from(cols[at]))
        .collect()
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
    entered(Entry::SplitPairsAvx512);
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
    entered(Entry::TernaryColumnsAvx2);
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
    entered(Entry::TernaryColumnsAvx512);
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
    entered(Entry::FloatColumnsAvx2);
    float_columns_body(wt, a, nz, out);
}

/// [`float_columns_body`] compiled for AVX-512 (16 lanes). AVX-512 implies FMA, but Rust
/// never contracts `w * a + acc` into one: the two roundings stay (the kernel tests compare
/// the bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn float_columns_avx512(wt: &[f32], a: &[f32], nz: &[u32], out: &mut [f32]) {
    entered(Entry::FloatColumnsAvx512);
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

/// Exact `Σ w_j · x_j` for `i8` weights and inputs in {−1, 0, +1}.
///
/// Sixteen `i16` lanes (two SSE2 registers) accumulate the products; each lane gains at most
/// 128 per step (an `i8` weight may be −128), so lanes are flushed into an `i32` every 255
/// steps, before they could overflow (255 · 128 = 32,640). This runs several times faster
/// than widening every product to `i32`.
#[cfg(test)]
fn ternary_dot(w: &[i8], x: &[i8]) -> i32 {
    const LANES: usize = 16;
    const FLUSH: usize = 255;
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

#[cfg(test)]
mod tests {
    use super::super::test_util::{bits, kernels, mlp};
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

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
    fn the_forward_pass_runs_the_kernels_of_the_kernel_it_is_given() {
        // Every kernel gives the same bits (the tests around this one), so only this record
        // tells a pass that still reaches its vector code from one whose dispatch fell back to
        // the portable loops. Both quantizations: 4-bit first layers keep narrow columns.
        use crate::network::{take_entered, Entry, Entry::*};
        let m = mlp(&[70, 20, 3], 6);
        let x: Vec<i8> = (0..70).map(|j| [1, 0, -1, -1, 1][j % 5]).collect();
        for quantize in [Quantization::Int4, Quantization::Int8] {
            let net = Network::from_mlp(&m, quantize);
            let mut s = NetScratch::default();
            for kernel in kernels() {
                take_entered();
                net.forward_with(kernel, &x, &mut s);
                let want: &[Entry] = match kernel {
                    Kernel::Avx512 => &[SplitPairsAvx512, TernaryColumnsAvx512, FloatColumnsAvx512],
                    Kernel::Avx2 => &[TernaryColumnsAvx2, FloatColumnsAvx2],
                    Kernel::Portable => &[],
                };
                assert_eq!(take_entered(), want, "{quantize:?} {kernel:?}");
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
    fn forward_adds_the_biases_of_every_layer() {
        // `mlp` starts with zero biases, so the comparisons with the row form above cannot
        // tell how a bias is added: here every parameter is moved off its start, and the
        // logits are checked against each layer's own arithmetic (dequantized weights) in
        // f64, for every weight format and plan.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut m = mlp(&[37, 19, 6, 5], 8);
        for p in m.params_mut() {
            *p += (rng.next_u64() % 1001) as f32 / 1000.0 - 0.5;
        }
        let x: Vec<i8> = (0..37).map(|_| (rng.next_u64() % 3) as i8 - 1).collect();
        for quantize in [Quantization::None, Quantization::Int8, Quantization::Int4] {
            let net = Network::from_mlp(&m, quantize);
            let n_layers = net.layers().len();
            let mut want: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            for (l, layer) in net.layers().iter().enumerate() {
                let w = |i: usize, j: usize| match &layer.weights {
                    Weights::F32(w) => f64::from(w[i * layer.n_in + j]),
                    Weights::I8 { q, scale } | Weights::I4 { q, scale } => {
                        f64::from(q[i * layer.n_in + j]) * f64::from(scale[i])
                    }
                };
                want = (0..layer.n_out)
                    .map(|i| {
                        let z = (0..layer.n_in).map(|j| w(i, j) * want[j]).sum::<f64>()
                            + f64::from(layer.bias[i]);
                        if l + 1 < n_layers {
                            z.max(0.0)
                        } else {
                            z
                        }
                    })
                    .collect();
            }
            for kernel in kernels() {
                let mut s = NetScratch::default();
                net.forward_with(kernel, &x, &mut s);
                assert_eq!(s.a.len(), want.len());
                for (k, (&got, &expected)) in s.a.iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(got) - expected).abs() < 1e-4,
                        "{quantize:?} {kernel:?} logit {k}: {got} instead of {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn scaled_logits_are_the_logits_times_the_factor_in_every_weight_format() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        // With a hidden layer, and without one (the output layer is then the first, read
        // from the ternary input by its own plan).
        for sizes in [&[37, 19, 5][..], &[37, 5]] {
            let mut m = mlp(sizes, 9);
            for p in m.params_mut() {
                *p += (rng.next_u64() % 1001) as f32 / 1000.0 - 0.5;
            }
            let x: Vec<i8> = (0..37).map(|_| (rng.next_u64() % 3) as i8 - 1).collect();
            for quantize in [Quantization::None, Quantization::Int8, Quantization::Int4] {
                let net = Network::from_mlp(&m, quantize);
                for beta in [0.25f32, 3.5] {
                    let scaled = net.with_logits_scaled(beta);
                    let last = net.layers().len() - 1;
                    assert_eq!(scaled.layers()[..last], net.layers()[..last]);
                    let (mut a, mut b) = (NetScratch::default(), NetScratch::default());
                    net.forward(&x, &mut a);
                    scaled.forward(&x, &mut b);
                    assert_eq!(a.logits().len(), 5);
                    for (k, (&z, &y)) in a.logits().iter().zip(b.logits()).enumerate() {
                        assert!(
                            (y - beta * z).abs() <= 1e-5 * (beta * z).abs().max(1.0),
                            "{sizes:?} {quantize:?} ×{beta} logit {k}: {y}, not {beta} × {z}"
                        );
                    }
                    // The softmax reads the scaled logits.
                    let mut want = vec![0.0; 5];
                    softmax(b.logits(), &mut want);
                    assert_eq!(b.probs, want);
                }
            }
        }
    }

    #[test]
    fn plans_take_the_memory_their_documentation_gives() {
        // The outputs cannot tell these apart, only the memory: a 4-bit first layer's pair
        // columns fit in `i8` (half the bytes of an `i8` layer's, the point of
        // `PairColumns::Narrow`), and strides are padded to their unit and no further.
        let m = mlp(&[40, 70, 3], 2);
        for quantize in [Quantization::Int4, Quantization::Int8] {
            let net = Network::from_mlp(&m, quantize);
            // 20 pairs of inputs, four columns each; 70 outputs padded to two units of 64.
            let (narrow, len) = match &net.layers[0].plan {
                Plan::TernaryPairs {
                    cols: PairColumns::Narrow(c),
                    stride: 128,
                    ..
                } => (true, c.len()),
                Plan::TernaryPairs {
                    cols: PairColumns::Wide(c),
                    stride: 128,
                    ..
                } => (false, c.len()),
                plan => panic!("{quantize:?}: first layer planned as {plan:?}"),
            };
            assert_eq!(narrow, quantize == Quantization::Int4, "{quantize:?}");
            assert_eq!(len, 4 * 20 * 128);
            // 3 outputs padded to one vector of 8 lanes, for each of the 70 inputs.
            match &net.layers[1].plan {
                Plan::Columns { wt, stride: 8, .. } => assert_eq!(wt.len(), 70 * 8),
                plan => panic!("{quantize:?}: second layer planned as {plan:?}"),
            }
        }
        let float = Network::from_mlp(&m, Quantization::None);
        assert!(matches!(
            &float.layers[..],
            [
                Planned {
                    plan: Plan::Rows { .. },
                    ..
                },
                Planned {
                    plan: Plan::Rows { .. },
                    ..
                }
            ]
        ));
    }

    #[test]
    fn layers_are_rebuilt_as_they_were_given() {
        // The network keeps each layer's weights only in its plan: the stored form (saved
        // to a model file, and the tests' reference `forward_rows`) is rebuilt from it, and
        // must come back whole. Odd inputs (the last pair's `B` is padding), outputs that
        // are not a multiple of a stride, every weight type in every position a file may
        // hold it (4 bits after the first layer too), and the extremes of each (−128).
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let mut draw = |n: usize, lo: i8, hi: i8| -> Vec<i8> {
            let span = (i16::from(hi) - i16::from(lo) + 1) as u64;
            let mut q: Vec<i8> = (0..n)
                .map(|_| (i16::from(lo) + (rng.next_u64() % span) as i16) as i8)
                .collect();
            q[..2].copy_from_slice(&[lo, hi]);
            q
        };
        for sizes in [
            &[1121, 70, 9][..],
            &[1120, 128, 14],
            &[3, 1],
            &[40, 65, 8, 3],
        ] {
            for kinds in [
                [0, 0, 0],
                [1, 1, 1],
                [2, 2, 2],
                [2, 1, 2],
                [1, 2, 0],
                [0, 1, 2],
            ] {
                let layers: Vec<Layer> = (0..sizes.len() - 1)
                    .map(|l| {
                        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
                        let n = n_in * n_out;
                        let scale = (0..n_out).map(|i| i as f32 / 8.0).collect();
                        let weights = match kinds[l] {
                            0 => Weights::F32((0..n).map(|j| j as f32 - 0.5).collect()),
                            1 => Weights::I8 {
                                q: draw(n, i8::MIN, i8::MAX),
                                scale,
                            },
                            _ => Weights::I4 {
                                q: draw(n, -8, 7),
                                scale,
                            },
                        };
                        let bias = (0..n_out).map(|i| 0.25 - i as f32).collect();
                        Layer {
                            n_in,
                            n_out,
                            weights,
                            bias,
                        }
                    })
                    .collect();
                let net = Network::from_layers(layers.clone()).unwrap();
                assert_eq!(net.layers(), layers, "{sizes:?} {kinds:?}");
                let stored: usize = layers.iter().map(Layer::size_bytes).sum();
                assert_eq!(net.size_bytes(), stored, "{sizes:?} {kinds:?}");
            }
        }
    }

    #[test]
    fn scaled_logits_keep_the_weights_and_scale_the_rest() {
        // `with_logits_scaled` scales the plan of the output layer in place: the stored
        // form of that layer is the original one with its row scales (or `f32` weights)
        // and biases times the factor, and its integer weights unchanged.
        let m = mlp(&[37, 19, 5], 9);
        for quantize in [Quantization::None, Quantization::Int8, Quantization::Int4] {
            let net = Network::from_mlp(&m, quantize);
            let mut want = net.layers();
            let out = want.last_mut().unwrap();
            match &mut out.weights {
                Weights::F32(w) => w.iter_mut().for_each(|w| *w *= 2.5),
                Weights::I8 { scale, .. } | Weights::I4 { scale, .. } => {
                    scale.iter_mut().for_each(|s| *s *= 2.5)
                }
            }
            out.bias.iter_mut().for_each(|b| *b *= 2.5);
            assert_eq!(net.with_logits_scaled(2.5).layers(), want, "{quantize:?}");
        }
    }

    #[test]
    fn networks_are_equal_only_when_their_layers_are() {
        let m = mlp(&[6, 4, 3], 1);
        let float = Network::from_mlp(&m, Quantization::None);
        assert_eq!(float, Network::from_mlp(&m, Quantization::None));
        // The same trained weights stored otherwise, and other weights stored alike.
        assert_ne!(float, Network::from_mlp(&m, Quantization::Int8));
        assert_ne!(
            Network::from_mlp(&m, Quantization::Int8),
            Network::from_mlp(&m, Quantization::Int4)
        );
        assert_ne!(
            float,
            Network::from_mlp(&mlp(&[6, 4, 3], 2), Quantization::None)
        );
    }

    #[test]
    fn layers_that_do_not_chain_are_refused_by_name() {
        let layer = |n_in: usize, n_out: usize| Layer {
            n_in,
            n_out,
            weights: Weights::F32(vec![0.0; n_in * n_out]),
            bias: vec![0.0; n_out],
        };
        assert!(Network::from_layers(vec![layer(4, 3), layer(3, 2)]).is_ok());
        let e = Network::from_layers(vec![layer(4, 3), layer(3, 5), layer(4, 2)]).unwrap_err();
        assert_eq!(e, "layer 2 takes 4 inputs but layer 1 gives 5");
        assert_eq!(Network::from_layers(Vec::new()).unwrap_err(), "no layer");
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
