//! The stored form of a layer ([`Layer`], [`Weights`]) and how a trained network's `f32`
//! weights become it ([`Quantization`], [`quantize_rows`]).

use serde::{Deserialize, Serialize};

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
    /// Held unpacked, one `i8` each. (A [`Network`](super::Network) keeps them only in the
    /// layout its forward pass reads, that of `I8` but in half the bytes.)
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
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let n = self.n_in * self.n_out;
        let ok = match &self.weights {
            Weights::F32(w) => w.len() == n && w.iter().all(|x| x.is_finite()),
            Weights::I8 { q, scale } | Weights::I4 { q, scale } => {
                q.len() == n
                    && scales_fit(scale, self.n_out)
                    && (matches!(self.weights, Weights::I8 { .. })
                        || q.iter().all(|v| (-8..=7).contains(v)))
            }
        };
        check_layer(self.n_in, self.n_out, ok, &self.bias)
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

/// Whether a quantized layer's row scales fit its `n_out` rows: one each, finite and
/// non-negative (a row's max |w| over its levels).
pub(super) fn scales_fit(scale: &[f32], n_out: usize) -> bool {
    scale.len() == n_out && scale.iter().all(|s| s.is_finite() && *s >= 0.0)
}

/// [`Layer::validate`]'s verdict for an `n_out × n_in` layer whose weights (and scales)
/// passed their checks or not (`weights_ok`), with biases `bias`: shared with a 4-bit layer
/// still packed in a model file's bytes.
pub(super) fn check_layer(
    n_in: usize,
    n_out: usize,
    weights_ok: bool,
    bias: &[f32],
) -> std::result::Result<(), String> {
    if !weights_ok {
        return Err(format!(
            "weights do not match {n_out} × {n_in} or are not finite"
        ));
    }
    if bias.len() != n_out || !bias.iter().all(|b| b.is_finite()) {
        return Err(format!("bias must hold {n_out} finite values"));
    }
    Ok(())
}

/// The `f32` layers of `layers` stored as `quantization` says: 4 bits for the first layer of
/// [`Quantization::Int4`] (unless it is also the output layer), 8 for the others, unchanged
/// for [`Quantization::None`].
pub(super) fn quantize_layers(mut layers: Vec<Layer>, quantization: Quantization) -> Vec<Layer> {
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

/// Quantizes a row-major `rows × cols` matrix to integers in `−levels..=levels` with one
/// scale per row, `scale = max|w_row| / levels`: `levels` is 127 for `i8`, 7 for 4 bits.
pub fn quantize_rows(w: &[f32], rows: usize, cols: usize, levels: i8) -> (Vec<i8>, Vec<f32>) {
    let top = f32::from(levels.max(1));
    let mut q = Vec::with_capacity(w.len());
    let mut scale = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // `f32::max` skips a NaN: the scale carries it instead, so that the layer is refused
        // (`Layer::validate`) rather than its NaN stored as a weight of 0.
        let s = if row.iter().any(|x| x.is_nan()) {
            f32::NAN
        } else if max > 0.0 {
            max / top
        } else {
            0.0
        };
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        q.extend(
            row.iter()
                .map(|&x| (x * inv).round().clamp(-top, top) as i8),
        );
        scale.push(s);
    }
    (q, scale)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::mlp;
    use super::super::{MlpScratch, NetScratch, Network};
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

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
    fn validate_refuses_bad_scales_four_bit_values_out_of_range_and_bad_biases() {
        // 2 × 2 layers: `good` passes every check, each of `bad` fails one. Scales must be
        // finite and non-negative (a row's max |w| over its levels).
        let layer = |weights: Weights, bias: Vec<f32>| Layer {
            n_in: 2,
            n_out: 2,
            weights,
            bias,
        };
        let i8 = |q: Vec<i8>, scale: Vec<f32>| Weights::I8 { q, scale };
        let i4 = |q: Vec<i8>, scale: Vec<f32>| Weights::I4 { q, scale };
        let bias = vec![0.5, -0.5];
        // Each type's extremes (a file may hold −128 and −8), and a zero scale (a zero row).
        let good = [
            layer(i8(vec![-128, 127, 8, -9], vec![0.0, 1.0]), bias.clone()),
            layer(i4(vec![-8, 7, 0, 1], vec![0.0, 1.0]), bias.clone()),
        ];
        for l in &good {
            assert_eq!(l.validate(), Ok(()), "{l:?}");
        }
        let bad = [
            (
                "a 4-bit 8",
                layer(i4(vec![8, 0, 0, 0], vec![1.0; 2]), bias.clone()),
            ),
            (
                "a 4-bit −9",
                layer(i4(vec![0, -9, 0, 0], vec![1.0; 2]), bias.clone()),
            ),
            (
                "a negative scale",
                layer(i8(vec![0; 4], vec![1.0, -0.5]), bias.clone()),
            ),
            (
                "an infinite scale",
                layer(i8(vec![0; 4], vec![f32::INFINITY, 1.0]), bias.clone()),
            ),
            (
                "a NaN scale",
                layer(i4(vec![0; 4], vec![1.0, f32::NAN]), bias.clone()),
            ),
            (
                "one scale for two rows",
                layer(i8(vec![0; 4], vec![1.0]), bias.clone()),
            ),
            (
                "three weights",
                layer(i4(vec![0; 3], vec![1.0; 2]), bias.clone()),
            ),
            ("one bias", layer(i8(vec![0; 4], vec![1.0; 2]), vec![0.0])),
            (
                "a NaN bias",
                layer(i8(vec![0; 4], vec![1.0; 2]), vec![0.0, f32::NAN]),
            ),
            (
                "an infinite bias",
                layer(Weights::F32(vec![0.0; 4]), vec![f32::NEG_INFINITY, 0.0]),
            ),
        ];
        for (what, l) in &bad {
            assert!(l.validate().is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn size_bytes_counts_weights_scales_and_biases_of_every_format() {
        // `quantized_network_stays_close_to_float` compares sizes only with each other, so
        // the bias bytes (alike in every format) cancel out there: here each format's count
        // is spelled out for a 3 × 5 layer, 15 weights (an odd number of 4-bit ones).
        let layer = |weights: Weights| Layer {
            n_in: 5,
            n_out: 3,
            weights,
            bias: vec![0.25; 3],
        };
        let (q, scale) = (vec![1i8; 15], vec![1.0f32; 3]);
        let f32_layer = layer(Weights::F32(vec![0.5; 15]));
        let i8_layer = layer(Weights::I8 {
            q: q.clone(),
            scale: scale.clone(),
        });
        let i4_layer = layer(Weights::I4 { q, scale });
        // 4 bytes per f32 weight, scale and bias; 1 per i8 weight; 15 nibbles in 8 bytes.
        assert_eq!(f32_layer.size_bytes(), 15 * 4 + 3 * 4);
        assert_eq!(i8_layer.size_bytes(), 15 + 3 * 4 + 3 * 4);
        assert_eq!(i4_layer.size_bytes(), 8 + 3 * 4 + 3 * 4);
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
    fn a_row_whose_scale_underflows_to_zero_is_stored_as_zeros() {
        // Weights a few times the least subnormal (2^-149), so small that `max / levels`
        // rounds to a scale of 0. The row then reads back as zeros whatever its integers,
        // and it is stored as an all-zero row is: zeros, not the ±levels that `x · (1 / 0)`
        // would clamp to (the outputs would not change, the model file would).
        let tiny = f32::from_bits(1);
        let w = [tiny, -3.0 * tiny, 0.0, 2.0 * tiny];
        for levels in [127, 7] {
            let (q, scale) = quantize_rows(&w, 1, 4, levels);
            assert_eq!(scale, [0.0], "levels {levels}");
            assert_eq!(q, [0; 4], "levels {levels}");
        }
    }
}
