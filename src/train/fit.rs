//! The network optimizer's internals, as [`train_scored`](super::train_scored) runs them:
//! the projected inputs, packed ([`Inputs`]); one chunk's forward and backward pass
//! ([`Worker`] over [`Shared`]) with its input dropout; the moving average of the weights
//! ([`WeightAverage`]); the held-out slice ([`held_out`]) and its scoring ([`evaluate`],
//! [`network_accuracy`]); the seeded shuffle and the argmax helpers that `augment.rs` and
//! `joint.rs` share.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::joint::{SparseInputs, Trainer, TrainerWorker};
use super::Example;
use crate::build::Progress;
#[cfg(target_arch = "x86_64")]
use crate::network::{entered, Entry};
use crate::network::{Adam, AdamStep, Kernel, Mlp, MlpScratch, Network};
use crate::projection::{ProjectScratch, Projector};

/// An exponential moving average of the weights, started at zero and bias-corrected as
/// Adam corrects its moments, so that early epochs are not pulled towards the random
/// initialization whatever the decay.
pub(super) struct WeightAverage {
    sum: Vec<f32>,
    /// The live weights while the average is swapped in.
    live: Vec<f32>,
    steps: i32,
}

impl WeightAverage {
    pub(super) fn new(n: usize) -> Self {
        Self {
            sum: vec![0.0; n],
            live: vec![0.0; n],
            steps: 0,
        }
    }

    /// The average's update as a pass of its own: the reference that [`optimizer_step`]'s
    /// fused pass is tested against.
    #[cfg(test)]
    pub(super) fn update(&mut self, params: &[f32], decay: f32) {
        blend(&mut self.sum, params, decay);
        self.steps = self.steps.saturating_add(1);
    }

    /// Saves the live weights and writes the corrected average over them.
    pub(super) fn swap_in(&mut self, params: &mut [f32], decay: f32) {
        self.live.copy_from_slice(params);
        if self.steps == 0 {
            return;
        }
        let correction = 1.0 / (1.0 - decay.powi(self.steps));
        for (p, s) in params.iter_mut().zip(&self.sum) {
            *p = s * correction;
        }
    }

    /// Puts the live weights back.
    pub(super) fn swap_out(&self, params: &mut [f32]) {
        params.copy_from_slice(&self.live);
    }
}

/// One block of the moving average's update: `sum ← decay · sum + (1 − decay) · params`
/// (always inlined, so that it is compiled for the vector kernel that calls it).
#[inline(always)]
fn blend(sum: &mut [f32], params: &[f32], decay: f32) {
    for (s, p) in sum.iter_mut().zip(params) {
        *s = decay * *s + (1.0 - decay) * p;
    }
}

/// Parameters per block of [`optimizer_step`]: 16 KB of gradient, summed and used while it
/// is in L1.
const STEP_BLOCK: usize = 4096;

/// One optimizer step from the workers' gradients: each parameter's gradient is the sum of
/// `grads` in their order, times `scale`; Adam updates the parameter with it, then the moving
/// average (when there is one) takes the new value.
///
/// These were three passes over every parameter on one thread while the others waited for
/// the next batch: 16% of the CPU samples of HWU64's fully supervised training, and a fifth
/// of its wall time came back when they became one pass, in parallel blocks of
/// [`STEP_BLOCK`] parameters. Every float is computed as
/// the separate passes computed it (each pass is elementwise, the sum starts from 0 and adds
/// the workers in the same order), so the model bytes do not change, for any split.
pub(super) fn optimizer_step(
    params: &mut [f32],
    adam: &mut Adam,
    grads: &[&[f32]],
    scale: f32,
    average: Option<(&mut WeightAverage, f32)>,
) {
    optimizer_step_with(Kernel::detect(), params, adam, grads, scale, average);
}

/// [`optimizer_step`] on the given kernel. The pass is elementwise (adds, multiplies, one
/// square root and one division a parameter, no fused multiply-add), and IEEE rounds each of
/// those the same at any vector width, so every kernel gives the same floats (tested); the
/// wider ones take the square root and division 16 or 8 lanes at a time instead of SSE's 4.
pub(super) fn optimizer_step_with(
    kernel: Kernel,
    params: &mut [f32],
    adam: &mut Adam,
    grads: &[&[f32]],
    scale: f32,
    average: Option<(&mut WeightAverage, f32)>,
) {
    let (step, m, v) = adam.begin();
    let block = |b: usize, p, m, v, average| StepBlock {
        start: b * STEP_BLOCK,
        p,
        m,
        v,
        average,
        step,
        grads,
        scale,
    };
    let blocks = params
        .par_chunks_mut(STEP_BLOCK)
        .zip(m.par_chunks_mut(STEP_BLOCK))
        .zip(v.par_chunks_mut(STEP_BLOCK))
        .enumerate();
    match average {
        Some((a, decay)) => {
            blocks
                .zip(a.sum.par_chunks_mut(STEP_BLOCK))
                .for_each(|((b, ((p, m), v)), sum)| {
                    block(b, p, m, v, Some((sum, decay))).run(kernel);
                });
            a.steps = a.steps.saturating_add(1);
        }
        None => blocks.for_each(|(b, ((p, m), v))| block(b, p, m, v, None).run(kernel)),
    }
}

/// One block of [`optimizer_step`]: parameters from `start` on, their Adam moments, their
/// moving average's block and its decay (if any), and what the step reads.
struct StepBlock<'a> {
    start: usize,
    p: &'a mut [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    average: Option<(&'a mut [f32], f32)>,
    step: AdamStep,
    grads: &'a [&'a [f32]],
    scale: f32,
}

impl StepBlock<'_> {
    /// Sums the block's gradient over the workers, scales it, applies Adam, then blends the
    /// new parameters into the moving average, on `kernel`.
    fn run(self, kernel: Kernel) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F.
            Kernel::Avx512 => unsafe { self.run_avx512() },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2.
            Kernel::Avx2 => unsafe { self.run_avx2() },
            _ => self.run_body(),
        }
    }

    /// [`StepBlock::run_body`] compiled for AVX-512: 16 lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512(self) {
        entered(Entry::StepAvx512);
        self.run_body();
    }

    /// [`StepBlock::run_body`] compiled for AVX2: 8 lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(self) {
        entered(Entry::StepAvx2);
        self.run_body();
    }

    /// The pass itself, inlined into each kernel's copy so that it is compiled for it.
    #[inline(always)]
    fn run_body(self) {
        let StepBlock {
            start,
            p,
            m,
            v,
            average,
            step,
            grads,
            scale,
        } = self;
        let mut g = [0.0f32; STEP_BLOCK];
        let g = &mut g[..p.len()];
        for w in grads {
            for (a, b) in g.iter_mut().zip(&w[start..start + p.len()]) {
                *a += b;
            }
        }
        for a in g.iter_mut() {
            *a *= scale;
        }
        step.apply(p, m, v, g);
        if let Some((sum, decay)) = average {
            blend(sum, p, decay);
        }
    }
}

/// The projected inputs of every example, ternary (−1, 0, +1), packed four to a byte, one
/// row per distinct text: training holds a row for every example and augmented copy (with a
/// byte per value, training on SwDA's 192k texts and their copies peaked at 1.58 GB; packed,
/// at 0.72 GB), and a text repeated across records (SwDA's 192k train lines hold 123k
/// distinct texts), or among the augmented copies, is projected and stored once.
pub(super) struct Inputs {
    dim: usize,
    /// Bytes per row: `dim / 4`, rounded up.
    stride: usize,
    /// Two bits per value, low bits first: 0 → 0, 1 → +1, 2 → −1.
    packed: Vec<u8>,
    /// Each example's row in `packed`.
    of: Vec<u32>,
}

impl Inputs {
    /// Projects every example's text (in parallel, deterministic).
    #[cfg(test)]
    pub(super) fn project(projector: &Projector, examples: &[Example]) -> Self {
        Self::project_counted(projector, examples, &())
    }

    /// Every example's projected input (as the test-only `Inputs::project`), advancing
    /// `progress` by one per example.
    pub(super) fn project_counted(
        projector: &Projector,
        examples: &[Example],
        progress: &dyn Progress,
    ) -> Self {
        let dim = projector.dim();
        let mut inputs = Self {
            dim,
            stride: dim.div_ceil(4),
            packed: Vec::new(),
            of: Vec::new(),
        };
        inputs.extend_projected(projector, examples, progress);
        inputs
    }

    /// Appends the rows of `examples`, projected straight into this buffer's tail, which
    /// grows once, by exactly their size: the augmented copies' rows (about 117 MB of
    /// SwDA's) are not held twice while a doubled buffer takes them in. Their rows are not
    /// merged with this one's: the augmented copies are altered texts, which rarely equal an
    /// original (they often equal each other, and share rows among themselves). `progress`
    /// advances by one per example.
    pub(super) fn extend_projected(
        &mut self,
        projector: &Projector,
        examples: &[Example],
        progress: &dyn Progress,
    ) {
        debug_assert_eq!(projector.dim(), self.dim);
        let (dim, stride) = (self.dim, self.stride);
        let base = (self.packed.len() / stride.max(1)) as u32;
        // Distinct texts in order of first appearance, so rows do not depend on hashing.
        let mut row_of: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        self.of.reserve_exact(examples.len());
        self.of.extend(examples.iter().map(|e| {
            base + *row_of.entry(e.text.as_str()).or_insert_with(|| {
                texts.push(&e.text);
                (texts.len() - 1) as u32
            })
        }));
        let start = self.packed.len();
        self.packed.reserve_exact(texts.len() * stride);
        self.packed.resize(start + texts.len() * stride, 0);
        self.packed[start..]
            .par_chunks_mut(stride.max(1))
            .zip(texts.par_iter())
            .for_each_init(
                || (ProjectScratch::default(), vec![0i8; dim]),
                |(s, row), (out, text)| {
                    // Cancelled: the rest is left unprojected (the caller returns an error).
                    if progress.cancelled() {
                        return;
                    }
                    projector.project_with(s, text, row);
                    progress.advance(1);
                    for (byte, four) in out.iter_mut().zip(row.chunks(4)) {
                        *byte = four.iter().enumerate().fold(0u8, |b, (k, &v)| {
                            b | (match v.signum() {
                                1 => 1u8,
                                -1 => 2,
                                _ => 0,
                            } << (2 * k))
                        });
                    }
                },
            );
        // The repeats, projected with their first occurrence.
        progress.advance((examples.len() - texts.len()) as u64);
    }

    /// Number of examples.
    pub(super) fn len(&self) -> usize {
        self.of.len()
    }

    /// Example `i`'s row as it is stored: equal bytes, equal inputs.
    pub(super) fn packed_row(&self, i: usize) -> &[u8] {
        let r = self.of[i] as usize;
        &self.packed[r * self.stride..(r + 1) * self.stride]
    }

    /// Example `i`'s row, unpacked into `row`.
    pub(super) fn row(&self, i: usize, row: &mut Vec<i8>) {
        const VALUE: [i8; 4] = [0, 1, -1, 0];
        row.clear();
        row.extend(
            self.packed_row(i)
                .iter()
                .flat_map(|&b| (0..4).map(move |k| VALUE[usize::from((b >> (2 * k)) & 3)]))
                .take(self.dim),
        );
    }

    /// Example `i`'s row with input dropout, into `x`: the floats of [`Inputs::row`] then
    /// `dropped_inputs` (the reference the tests compare it with), bit for bit, unpacked
    /// and masked eight inputs (one generator output) at a time instead of value by value
    /// through two buffers.
    fn dropped_row(&self, i: usize, x: &mut Vec<f32>, keep: u32, epoch_key: u64) {
        self.dropped_row_with(Kernel::detect(), i, x, keep, epoch_key);
    }

    /// [`Inputs::dropped_row`] on `kernel`: integer lanes and one multiply each, the same
    /// floats at any vector width.
    fn dropped_row_with(
        &self,
        kernel: Kernel,
        i: usize,
        x: &mut Vec<f32>,
        keep: u32,
        epoch_key: u64,
    ) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: both kernels are only chosen when the CPU has AVX2.
            Kernel::Avx2 | Kernel::Avx512 => unsafe {
                self.dropped_row_avx2(i, x, keep, epoch_key)
            },
            _ => self.dropped_row_body(i, x, keep, epoch_key),
        }
    }

    /// [`Inputs::dropped_row_body`] compiled for AVX2: eight lanes, one register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn dropped_row_avx2(&self, i: usize, x: &mut Vec<f32>, keep: u32, epoch_key: u64) {
        entered(Entry::DroppedRowAvx2);
        self.dropped_row_body(i, x, keep, epoch_key);
    }

    /// The body of [`Inputs::dropped_row`], inlined into each kernel's copy so that it is
    /// compiled for it.
    #[inline(always)]
    fn dropped_row_body(&self, i: usize, x: &mut Vec<f32>, keep: u32, epoch_key: u64) {
        // 2-bit codes: 00 → 0, 01 → +1, 10 → −1, 11 → 0 (as in `row`).
        const VALUE: [f32; 4] = [0.0, 1.0, -1.0, 0.0];
        let packed = self.packed_row(i);
        // Every value is written below: no need to zero a reused buffer first.
        x.resize(self.dim, 0.0);
        if keep >= 256 {
            for (j, v) in x.iter_mut().enumerate() {
                *v = VALUE[usize::from((packed[j / 4] >> (2 * (j % 4))) & 3)];
            }
            return;
        }
        let scale = 256.0 / keep as f32;
        let mut rng = dropout_rng(i, epoch_key);
        // Each value is `VALUE[code] · scale` when kept, else 0, in arithmetic instead of a
        // table lookup and a branch, so that the eight lanes vectorize: `(c & 1) − (c >> 1)`
        // is 0, 1, −1, 0 for the codes 0–3, and the product is the same `f32` (0 · scale
        // is +0, as the literal was). Unpacking was about a tenth of training's CPU time.
        let eight = |out: &mut [f32], codes: u16, bytes: [u8; 8]| {
            for (k, (v, b)) in out.iter_mut().zip(bytes).enumerate() {
                let c = i32::from((codes >> (2 * k)) & 3);
                let kept = i32::from(u32::from(b) < keep);
                *v = (((c & 1) - (c >> 1)) * kept) as f32 * scale;
            }
        };
        let mut whole = x.chunks_exact_mut(8);
        for (out, codes) in (&mut whole).zip(packed.chunks_exact(2)) {
            // Eight inputs are two packed bytes; a whole chunk is a loop of fixed length.
            let out: &mut [f32; 8] = out.try_into().expect("8 inputs");
            eight(
                out,
                u16::from_le_bytes([codes[0], codes[1]]),
                rng.next_u64().to_le_bytes(),
            );
        }
        let rest = whole.into_remainder();
        if !rest.is_empty() {
            let at = self.dim / 8 * 2;
            let codes =
                u16::from(packed[at]) | packed.get(at + 1).map_or(0, |&b| u16::from(b) << 8);
            eight(rest, codes, rng.next_u64().to_le_bytes());
        }
    }
}

pub(super) fn argmax(p: &[f32]) -> u32 {
    p.iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |b, (l, &v)| {
            if v > b.1 {
                (l, v)
            } else {
                b
            }
        })
        .0 as u32
}

pub(super) fn argmax_target(t: &[(u32, f32)]) -> u32 {
    t.iter()
        .fold((u32::MAX, f32::NEG_INFINITY), |best, &(l, p)| {
            if p > best.1 {
                (l, p)
            } else {
                best
            }
        })
        .0
}

/// Per-chunk work buffers.
#[derive(Default)]
pub(super) struct Worker {
    pub(super) grad: Vec<f32>,
    /// Per example of the chunk: its activations, inputs and derivative of the loss.
    scratch: Vec<MlpScratch>,
    x: Vec<Vec<f32>>,
    dlogits: Vec<Vec<f32>>,
    pub(super) loss: f64,
    pub(super) trainer: TrainerWorker,
}

/// What a chunk reads: the student, its inputs, and the joint trainer if any.
pub(super) struct Shared<'a> {
    pub(super) mlp: &'a Mlp,
    pub(super) inputs: &'a Inputs,
    pub(super) examples: &'a [Example],
    pub(super) joint: Option<(&'a Trainer, &'a SparseInputs)>,
    /// Input dropout: the probability in 256ths that a bit is kept (256: no dropout), and
    /// the key of this epoch's masks.
    pub(super) keep: u32,
    pub(super) epoch_key: u64,
}

/// The generator of example `i`'s dropout mask in the epoch of `epoch_key`.
fn dropout_rng(i: usize, epoch_key: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(epoch_key ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Copies example `i`'s inputs into `x`, with input dropout: bit `j` is kept when byte
/// `j % 8` of the `j / 8`-th output of a generator seeded by (`epoch_key`, `i`) is below
/// `keep` (256ths), and scaled by `256 / keep`. The mask depends on the example, not on the
/// thread or chunk that sees it, so training stays identical for any thread count.
#[cfg(test)]
fn dropped_inputs(x: &mut Vec<f32>, inputs: &[i8], i: usize, keep: u32, epoch_key: u64) {
    x.clear();
    if keep >= 256 {
        x.extend(inputs.iter().map(|&v| f32::from(v)));
        return;
    }
    let scale = 256.0 / keep as f32;
    let mut rng = dropout_rng(i, epoch_key);
    for chunk in inputs.chunks(8) {
        let bytes = rng.next_u64().to_le_bytes();
        x.extend(chunk.iter().zip(bytes).map(|(&v, b)| {
            if u32::from(b) < keep {
                f32::from(v) * scale
            } else {
                0.0
            }
        }));
    }
}

impl Worker {
    /// Forward and backward over `items`, accumulating into `self.grad` (and the trainer's
    /// buffers).
    pub(super) fn run(&mut self, c: &Shared<'_>, items: &[usize]) {
        self.grad.clear();
        self.grad.resize(c.mlp.params().len(), 0.0);
        self.loss = 0.0;
        Trainer::reset(&mut self.trainer);
        let n = items.len();
        if self.scratch.len() < n {
            self.scratch.resize_with(n, MlpScratch::default);
            self.x.resize_with(n, Vec::new);
            self.dlogits.resize_with(n, Vec::new);
        }
        for (&i, x) in items.iter().zip(&mut self.x) {
            c.inputs.dropped_row(i, x, c.keep, c.epoch_key);
        }
        // The chunk's examples side by side: each weight row read once for all of them
        // (the same floats as one example at a time).
        let xs: Vec<&[f32]> = self.x[..n].iter().map(Vec::as_slice).collect();
        c.mlp.forward_many(&xs, &mut self.scratch[..n]);
        for ((&i, scratch), dlogits) in items.iter().zip(&self.scratch).zip(&mut self.dlogits) {
            let ex = &c.examples[i];
            let probs = &scratch.probs;
            // d/dz of w · CE(q, softmax(z)) is w · (p − q).
            let truth = match c.joint {
                Some((t, _)) => ex.weight * t.config.ground_truth_weight,
                None => ex.weight,
            };
            dlogits.clear();
            dlogits.extend(probs.iter().map(|&p| truth * p));
            for &(l, q) in &ex.target {
                dlogits[l as usize] -= truth * q;
                self.loss -= f64::from(truth * q) * f64::from(probs[l as usize].max(1e-12)).ln();
            }
            if let Some((trainer, sparse)) = c.joint {
                // λ2: the trainer's distribution is the target of the projection network.
                let teacher = trainer.example(&mut self.trainer, sparse, i, ex);
                let sim = ex.weight * trainer.config.simulation_weight;
                for ((d, &p), &t) in dlogits.iter_mut().zip(probs).zip(teacher) {
                    *d += sim * (p - t);
                    if t > 0.0 {
                        self.loss -= f64::from(sim * t) * f64::from(p.max(1e-12)).ln();
                    }
                }
            }
        }
        let dls: Vec<&[f32]> = self.dlogits[..n].iter().map(Vec::as_slice).collect();
        c.mlp
            .backward_many(&xs, &dls, &mut self.scratch[..n], &mut self.grad);
    }
}

/// Reusable buffers of [`ForwardScratch::forward`].
#[derive(Default)]
struct ForwardScratch {
    mlp: MlpScratch,
    x: Vec<f32>,
    row: Vec<i8>,
}

impl ForwardScratch {
    /// The network's probabilities for example `i`'s projected inputs, without dropout.
    fn forward(&mut self, mlp: &Mlp, inputs: &Inputs, i: usize) -> &[f32] {
        inputs.row(i, &mut self.row);
        self.x.clear();
        self.x.extend(self.row.iter().map(|&v| f32::from(v)));
        mlp.forward(&self.x, &mut self.mlp);
        &self.mlp.probs
    }
}

/// Held-out accuracy and mean loss (in example order, so the sums are reproducible).
pub(super) fn evaluate(
    mlp: &Mlp,
    val: &[usize],
    inputs: &Inputs,
    examples: &[Example],
) -> (f64, f64) {
    if val.is_empty() {
        return (0.0, 0.0);
    }
    let per: Vec<(bool, f64)> = val
        .par_iter()
        .map_init(ForwardScratch::default, |s, &i| {
            let ex = &examples[i];
            let probs = s.forward(mlp, inputs, i);
            let loss: f64 = ex
                .target
                .iter()
                .map(|&(l, q)| -f64::from(q) * f64::from(probs[l as usize].max(1e-12)).ln())
                .sum();
            (argmax(probs) == argmax_target(&ex.target), loss)
        })
        .collect();
    let correct = per.iter().filter(|p| p.0).count();
    let loss: f64 = per.iter().map(|p| p.1).sum();
    (correct as f64 / val.len() as f64, loss / val.len() as f64)
}

/// Examples run through the trained network to check that its outputs are finite.
pub(super) const DIVERGENCE_SAMPLE: usize = 256;

/// Whether the network's probabilities are finite on the examples `idx`.
pub(super) fn outputs_are_finite(mlp: &Mlp, idx: &[usize], inputs: &Inputs) -> bool {
    let mut s = ForwardScratch::default();
    idx.iter()
        .all(|&i| s.forward(mlp, inputs, i).iter().all(|p| p.is_finite()))
}

pub(super) fn shuffle(v: &mut [usize], rng: &mut Xoshiro256PlusPlus) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The held-out slice: the first `n_val` examples of `pool` (shuffled) whose input (`key`:
/// the projected row, so texts that differ only in case or in what the tokenizer drops count
/// as one) occurs once among the examples, passing over any whose label (its top target
/// label) would be left without a training example. A repeated input stays on the training
/// side: held out, its twins in training would score the slice on memory, not on new text;
/// held out with all its twins, the slice would fill up with the few most repeated texts
/// (SwDA's "uh-huh."). A rare label's only example held out could not be learned at all.
/// Without repeated inputs or rare labels this is `pool[..n_val]`. Returns sorted indices;
/// fewer than `n_val` only when the pool runs out.
///
/// (Stratifying the slice by label was tried and not kept: fully supervised HWU64 and SNIPS
/// moved within noise, few-label HWU64 dev fell 2.2 points; see benches/README.md.)
pub(super) fn held_out<'a>(
    pool: &[usize],
    examples: &[Example],
    key: impl Fn(usize) -> &'a [u8],
    n_labels: usize,
    n_val: usize,
) -> Vec<usize> {
    // The label the held-out accuracy scores an example against.
    let top = |i: usize| argmax_target(&examples[i].target) as usize;
    // Training examples each label would keep: all of them, before any is held out.
    let mut left = vec![0usize; n_labels];
    let mut copies: hashbrown::HashMap<&[u8], u32> = hashbrown::HashMap::new();
    for i in 0..examples.len() {
        left[top(i)] += 1;
        *copies.entry(key(i)).or_default() += 1;
    }
    let mut val = Vec::with_capacity(n_val);
    for &i in pool {
        if val.len() == n_val {
            break;
        }
        let l = top(i);
        if copies[key(i)] == 1 && left[l] > 1 {
            left[l] -= 1;
            val.push(i);
        }
    }
    val.sort_unstable();
    val
}

/// Accuracy of `network` (weights as stored) on the examples `val`, against each example's
/// top target label, as [`evaluate`] scores the training weights.
pub(super) fn network_accuracy(
    network: &Network,
    val: &[usize],
    inputs: &Inputs,
    examples: &[Example],
) -> f64 {
    let hits = forward_each(network, val, inputs, |i, s| {
        argmax(&s.probs) == argmax_target(&examples[i].target)
    });
    hits.iter().filter(|&&hit| hit).count() as f64 / val.len() as f64
}

/// `f(i, scratch)` right after `network`'s forward pass (weights as stored) on example `i`,
/// for each example of `idx`, in parallel; the results in `idx`'s order.
pub(super) fn forward_each<T: Send>(
    network: &Network,
    idx: &[usize],
    inputs: &Inputs,
    f: impl Fn(usize, &crate::network::NetScratch) -> T + Sync,
) -> Vec<T> {
    idx.par_iter()
        .map_init(
            || (Vec::new(), crate::network::NetScratch::default()),
            |(row, scratch), &i| {
                inputs.row(i, row);
                network.forward(row, scratch);
                f(i, scratch)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::joint::JointConfig;
    use super::*;
    use crate::network::test_util::bits;
    use crate::network::Quantization;
    use crate::projection::ProjectionConfig;
    use crate::text::{FeatureConfig, TextConfig, TextPipeline};
    use crate::train::tests::toy_records;
    use crate::train::TrainSet;

    /// Three examples over two packed rows of three inputs, `[+1, +1, 0]` and `[−1, 0, −1]`,
    /// and a 3 → 2 network (no hidden layer) whose logits are `[x0 + x1, −x2]`: `[2, 0]` and
    /// `[−1, 1]`. The texts are for the joint trainer's features (a repeated row, a repeated
    /// text).
    fn scored_toy() -> (Inputs, Vec<Example>, Mlp) {
        let inputs = Inputs {
            dim: 3,
            stride: 1,
            // Two bits a value, low bits first: 1 → +1, 2 → −1.
            packed: vec![0b00_01_01, 0b10_00_10],
            of: vec![0, 1, 0],
        };
        let ex = |text: &str, target: Vec<(u32, f32)>, weight: f32| Example {
            text: text.into(),
            target,
            weight,
            seed: true,
        };
        let examples = vec![
            // Row 0, predicted 0: a hit.
            ex("hello there", vec![(0, 1.0)], 1.0),
            // Row 1, predicted 1, soft target topped by 0: a miss.
            ex("bye for now", vec![(0, 0.7), (1, 0.3)], 0.5),
            // Row 0 again, label 1: a miss.
            ex("hello there", vec![(1, 1.0)], 2.0),
        ];
        let mut mlp = Mlp::new(&[3, 2], || 0).unwrap();
        mlp.params_mut()
            .copy_from_slice(&[1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]);
        (inputs, examples, mlp)
    }

    /// `−ln softmax(logits)[l]`, in f64.
    fn nll(logits: [f64; 2], l: usize) -> f64 {
        let max = logits[0].max(logits[1]);
        let sum: f64 = logits.iter().map(|z| (z - max).exp()).sum();
        -((logits[l] - max).exp() / sum).ln()
    }

    #[test]
    fn evaluate_gives_accuracy_and_mean_cross_entropy_against_the_targets() {
        let (inputs, examples, mlp) = scored_toy();
        let (accuracy, loss) = evaluate(&mlp, &[0, 1, 2], &inputs, &examples);
        assert!((accuracy - 1.0 / 3.0).abs() < 1e-12, "{accuracy}");
        // The held-out loss is unweighted: the weights are for training.
        let want = (nll([2.0, 0.0], 0)
            + 0.7 * nll([-1.0, 1.0], 0)
            + 0.3 * nll([-1.0, 1.0], 1)
            + nll([2.0, 0.0], 1))
            / 3.0;
        assert!((loss - want).abs() < 1e-5, "{loss} instead of {want}");
        assert_eq!(evaluate(&mlp, &[0], &inputs, &examples).0, 1.0);
        assert_eq!(evaluate(&mlp, &[], &inputs, &examples), (0.0, 0.0));
        // The stored network scores as the training weights do.
        for quantization in [Quantization::None, Quantization::Int8] {
            let network = Network::from_mlp(&mlp, quantization);
            let accuracy = network_accuracy(&network, &[0, 1, 2], &inputs, &examples);
            assert!((accuracy - 1.0 / 3.0).abs() < 1e-12, "{accuracy}");
        }
    }

    #[test]
    fn a_chunk_sums_weighted_cross_entropy_and_its_gradient() {
        let (inputs, examples, mlp) = scored_toy();
        let shared = Shared {
            mlp: &mlp,
            inputs: &inputs,
            examples: &examples,
            joint: None,
            keep: 256,
            epoch_key: 7,
        };
        let mut worker = Worker::default();
        worker.run(&shared, &[0, 1, 2]);
        let want_loss = nll([2.0, 0.0], 0)
            + 0.5 * (0.7 * nll([-1.0, 1.0], 0) + 0.3 * nll([-1.0, 1.0], 1))
            + 2.0 * nll([2.0, 0.0], 1);
        assert!((worker.loss - want_loss).abs() < 1e-5, "{}", worker.loss);
        // The gradient of that loss: each example's backward pass from w · (p − q).
        let mut want = vec![0.0f32; mlp.params().len()];
        let (mut s, mut row) = (MlpScratch::default(), Vec::new());
        for (i, ex) in examples.iter().enumerate() {
            inputs.row(i, &mut row);
            let x: Vec<f32> = row.iter().map(|&v| f32::from(v)).collect();
            mlp.forward(&x, &mut s);
            let mut d: Vec<f32> = s.probs.iter().map(|&p| ex.weight * p).collect();
            for &(l, q) in &ex.target {
                d[l as usize] -= ex.weight * q;
            }
            mlp.backward(&x, &d, &mut s, &mut want);
        }
        assert_close(&worker.grad, &want);
    }

    /// Gradients equal to 1e-6, element by element.
    fn assert_close(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} instead of {want:?}");
        }
    }

    #[test]
    fn a_joint_chunk_adds_the_trainers_distribution_as_a_second_target() {
        // λ3 (ground truth) and λ2 (simulation) other than 1, so that each is seen to scale
        // its own term.
        let (inputs, examples, mlp) = scored_toy();
        let config = JointConfig {
            buckets_log2: 10,
            dim: 4,
            simulation_weight: 0.25,
            ground_truth_weight: 2.0,
            ..JointConfig::default()
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let trainer = Trainer::new(&config, 2, || rng.next_u64()).unwrap();
        let pipeline =
            TextPipeline::new(&TextConfig::default(), &FeatureConfig::default()).unwrap();
        let sparse = SparseInputs::new(&pipeline, &examples, &config);
        let shared = Shared {
            mlp: &mlp,
            inputs: &inputs,
            examples: &examples,
            joint: Some((&trainer, &sparse)),
            keep: 256,
            epoch_key: 7,
        };
        let mut worker = Worker::default();
        worker.run(&shared, &[0, 1, 2]);
        // Per example, w · [λ3 · CE(q, p) + λ2 · CE(t, p)] for the trainer's t, whose
        // derivative with respect to the logits is w · [λ3 (p − q) + λ2 (p − t)].
        let (mut want_loss, mut want) = (0.0f64, vec![0.0f32; mlp.params().len()]);
        let (mut s, mut row) = (MlpScratch::default(), Vec::new());
        for (i, ex) in examples.iter().enumerate() {
            let teacher = trainer
                .example(&mut TrainerWorker::default(), &sparse, i, ex)
                .to_vec();
            assert!(teacher[0] != teacher[1], "a teacher that says something");
            inputs.row(i, &mut row);
            let x: Vec<f32> = row.iter().map(|&v| f32::from(v)).collect();
            mlp.forward(&x, &mut s);
            let (truth, sim) = (ex.weight * 2.0, ex.weight * 0.25);
            let mut d: Vec<f32> = s
                .probs
                .iter()
                .zip(&teacher)
                .map(|(&p, &t)| truth * p + sim * (p - t))
                .collect();
            for &(l, q) in &ex.target {
                d[l as usize] -= truth * q;
                want_loss -= f64::from(truth * q) * f64::from(s.probs[l as usize]).ln();
            }
            for (&t, &p) in teacher.iter().zip(&s.probs) {
                want_loss -= f64::from(sim * t) * f64::from(p).ln();
            }
            mlp.backward(&x, &d, &mut s, &mut want);
        }
        assert!((worker.loss - want_loss).abs() < 1e-5, "{}", worker.loss);
        assert_close(&worker.grad, &want);
    }

    #[test]
    fn argmax_breaks_ties_towards_the_lower_label_as_predictions_rank_them() {
        // `ProjectionModel::predict` ranks equal scores by label, and targets are sorted by
        // label: scoring the first of equal maxima keeps the held-out accuracy and the
        // held-out slice's labels in agreement with what the model answers.
        assert_eq!(argmax(&[0.1, 0.45, 0.45]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax_target(&[(2, 0.25), (4, 0.375), (7, 0.375)]), 4);
        assert_eq!(argmax_target(&[(3, 0.5), (9, 0.5)]), 3);
    }

    #[test]
    fn the_held_out_slice_never_takes_a_labels_last_example() {
        // Labels of 1, 2, 50 and 47 examples; 10 held out of 100.
        let counts = [1usize, 2, 50, 47];
        let examples: Vec<Example> = counts
            .iter()
            .enumerate()
            .flat_map(|(l, &c)| {
                (0..c).map(move |i| Example {
                    text: format!("{l} {i}"),
                    // A runner-up label must not decide which label an example is.
                    target: vec![(l as u32, 0.7), (((l + 1) % 4) as u32, 0.3)],
                    weight: 1.0,
                    seed: true,
                })
            })
            .collect();
        let label = |i: usize| examples[i].target[0].0;
        // Pools that put the rare labels' examples first: they are passed over (label 1 may
        // give one of its two), and the slice still holds 10.
        let mut pool: Vec<usize> = vec![0, 1, 2];
        pool.extend(3..100);
        let text = |i: usize| examples[i].text.as_bytes();
        let val = held_out(&pool, &examples, text, 4, 10);
        assert_eq!(val.len(), 10);
        assert!(!val.contains(&0), "label 0's only example");
        assert_eq!(val.iter().filter(|&&i| label(i) == 1).count(), 1);
        // 0 passed over, 1 taken (label 1 keeps 2), 2 passed over, then 3..=11.
        assert_eq!(val, [1].into_iter().chain(3..12).collect::<Vec<_>>());
        // Without rare labels in front, the slice is the pool's first n_val, as before.
        let mut shuffled: Vec<usize> = (3..100).collect();
        shuffle(&mut shuffled, &mut Xoshiro256PlusPlus::seed_from_u64(3));
        let mut first: Vec<usize> = shuffled[..10].to_vec();
        first.sort_unstable();
        assert_eq!(held_out(&shuffled, &examples, text, 4, 10), first);
        // One example per label: nothing can be held out.
        assert!(held_out(&[0, 1], &examples[..2], text, 4, 1).is_empty());
    }

    #[test]
    fn repeated_texts_stay_on_the_training_side() {
        let ex = |text: &str, label: u32| Example {
            text: text.into(),
            target: vec![(label, 1.0)],
            weight: 1.0,
            seed: true,
        };
        let examples = vec![
            ex("uh-huh", 0), // 0: repeated three times
            ex("yeah", 1),   // 1
            ex("uh-huh", 0), // 2
            ex("okay", 1),   // 3
            ex("right", 0),  // 4
            ex("uh-huh", 0), // 5
            ex("sure", 1),   // 6
            ex("well", 0),   // 7
        ];
        let pool = [0, 2, 1, 4, 5, 6, 3, 7];
        // Keyed by projected input: "Uh-huh" (8) is lowercased into a fourth "uh-huh".
        let mut examples = examples;
        examples.push(ex("Uh-huh", 0));
        let pool: Vec<usize> = [8].into_iter().chain(pool).collect();
        let projector = Projector::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig::default(),
        )
        .unwrap();
        let inputs = Inputs::project(&projector, &examples);
        let key = |i: usize| inputs.packed_row(i);
        assert_eq!(held_out(&pool, &examples, key, 2, 2), [1, 4]);
        // All that may go: label 0 keeps the repeats of "uh-huh" (and "well" may go), label 1
        // keeps "okay".
        assert_eq!(held_out(&pool, &examples, key, 2, 8), [1, 4, 6, 7]);
        // By raw text, "Uh-huh" would have been held out, beside three twins in training.
        let text = |i: usize| examples[i].text.as_bytes();
        assert_eq!(held_out(&pool, &examples, text, 2, 2), [1, 8]);
    }

    #[test]
    fn packed_inputs_unpack_to_the_projection() {
        // Texts repeated within each part (the first part's repeats make it store fewer rows
        // than it has examples, which `extend_projected` must account for), and across the parts.
        let mut records = toy_records();
        let (a, b) = (records[0].clone(), records[8].clone());
        records.insert(3, a.clone());
        records.insert(5, a);
        records.push(b);
        let set = TrainSet::supervised(&records).unwrap();
        // 3 × 5 = 15 values a row: the last byte of each row is part-filled.
        let config = ProjectionConfig {
            functions: 3,
            bits: 5,
            ..ProjectionConfig::default()
        };
        let projector =
            Projector::new(&TextConfig::default(), &FeatureConfig::default(), &config).unwrap();
        let mut inputs = Inputs::project(&projector, &set.examples[..7]);
        let first_rows = inputs.packed.len() / inputs.stride;
        assert_eq!(first_rows, 5, "7 examples over 5 distinct texts");
        inputs.extend_projected(&projector, &set.examples[7..], &());
        assert_eq!(inputs.len(), set.examples.len());
        let (mut row, mut want) = (Vec::new(), vec![0i8; 15]);
        let mut values = std::collections::BTreeSet::new();
        for (i, ex) in set.examples.iter().enumerate() {
            projector.project_with(&mut ProjectScratch::default(), &ex.text, &mut want);
            inputs.row(i, &mut row);
            assert_eq!(row, want, "{}", ex.text);
            values.extend(row.iter().copied());
        }
        assert_eq!(
            values.len(),
            3,
            "all of −1, 0 and +1 round-trip: {values:?}"
        );
    }

    #[test]
    fn weight_average_is_bias_corrected_and_restores_the_live_weights() {
        let decay = 0.9f32;
        let mut a = WeightAverage::new(2);
        let mut params = [1.0f32, -2.0];
        // Before any step there is nothing to average: the weights stay.
        a.swap_in(&mut params, decay);
        assert_eq!(params, [1.0, -2.0]);
        // One step: the corrected average is that step's weights, not a tenth of them.
        a.update(&params, decay);
        a.swap_in(&mut params, decay);
        assert!((params[0] - 1.0).abs() < 1e-6 && (params[1] + 2.0).abs() < 1e-6);
        a.swap_out(&mut params);
        // A second step at 3.0 and 0.0: weights 0.1·0.9 and 0.1, over 1 − 0.81.
        params = [3.0, 0.0];
        a.update(&params, decay);
        a.swap_in(&mut params, decay);
        let w_old = 0.09 / 0.19;
        let w_new = 0.1 / 0.19;
        assert!(
            (params[0] - (w_old * 1.0 + w_new * 3.0)).abs() < 1e-5,
            "{params:?}"
        );
        assert!((params[1] - (w_old * -2.0)).abs() < 1e-5, "{params:?}");
        a.swap_out(&mut params);
        assert_eq!(params, [3.0, 0.0], "the live weights come back");
    }

    #[test]
    fn the_fused_step_gives_the_floats_of_the_separate_passes() {
        use crate::test_util::in_pool;
        // Across block boundaries (a partial last block), with and without the average, on
        // one and two threads: the sum of the workers' gradients in their order, scaled,
        // then Adam, then the average, each as its own pass on one thread.
        let n = 2 * STEP_BLOCK + 37;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut draw = |scale: f32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    // Some exact zeros of both signs, as a unit with no input gives.
                    match i % 97 {
                        0 => 0.0,
                        1 => -0.0,
                        _ => ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale,
                    }
                })
                .collect()
        };
        let start = draw(1.0);
        let grads: Vec<Vec<f32>> = (0..4).map(|_| draw(3.0)).collect();
        let refs: Vec<&[f32]> = grads.iter().map(|g| &g[..]).collect();
        let (scale, decay) = (1.0 / 64.0, 0.998);
        for with_average in [false, true] {
            let (mut want, mut adam) = (start.clone(), Adam::new(n, 1e-3));
            let mut want_average = WeightAverage::new(n);
            for _ in 0..3 {
                let mut total = vec![0.0f32; n];
                for g in &grads {
                    for (t, x) in total.iter_mut().zip(g) {
                        *t += x;
                    }
                }
                for t in total.iter_mut() {
                    *t *= scale;
                }
                adam.step(&mut want, &total);
                if with_average {
                    want_average.update(&want, decay);
                }
            }
            for (threads, kernel) in [1, 2]
                .into_iter()
                .flat_map(|t| Kernel::all().into_iter().map(move |k| (t, k)))
            {
                let (got, got_sum) = in_pool(threads, || {
                    let (mut got, mut adam) = (start.clone(), Adam::new(n, 1e-3));
                    let mut average = WeightAverage::new(n);
                    for _ in 0..3 {
                        let a = with_average.then_some((&mut average, decay));
                        optimizer_step_with(kernel, &mut got, &mut adam, &refs, scale, a);
                    }
                    (got, average)
                });
                assert_eq!(bits(&got), bits(&want), "{threads} threads, {kernel:?}");
                assert_eq!(bits(&got_sum.sum), bits(&want_average.sum), "{kernel:?}");
                assert_eq!(got_sum.steps, want_average.steps);
                assert_ne!(got, start, "the step moved the parameters");
            }
        }
    }

    #[test]
    fn the_optimizer_step_and_the_unpacking_run_the_kernels_they_are_given() {
        // Every kernel gives the same floats (the tests around this one), so only this
        // record tells a dispatch that still reaches its vector code from one that fell back
        // to the portable loop.
        use crate::network::{take_entered, Entry, Entry::*};
        let n = 40;
        let grads = [vec![0.5f32; n], vec![-0.25f32; n]];
        let refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        // The record is per thread: with one worker, every block of the step runs on the
        // thread that reads it.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let inputs = Inputs {
            dim: 8,
            stride: 2,
            packed: vec![0b0110_0001, 0b1001_0100],
            of: vec![0],
        };
        let mut x = Vec::new();
        for kernel in Kernel::all() {
            let step = one.install(|| {
                take_entered();
                let (mut p, mut adam) = (vec![1.0f32; n], Adam::new(n, 1e-3));
                let mut average = WeightAverage::new(n);
                let a = Some((&mut average, 0.9));
                optimizer_step_with(kernel, &mut p, &mut adam, &refs, 0.5, a);
                take_entered()
            });
            take_entered();
            inputs.dropped_row_with(kernel, 0, &mut x, 128, 42);
            let unpack = take_entered();
            let (want_step, want_unpack): (&[Entry], &[Entry]) = match kernel {
                Kernel::Avx512 => (&[StepAvx512], &[DroppedRowAvx2]),
                Kernel::Avx2 => (&[StepAvx2], &[DroppedRowAvx2]),
                Kernel::Portable => (&[], &[]),
            };
            assert_eq!(step, want_step, "{kernel:?}");
            assert_eq!(unpack, want_unpack, "{kernel:?}");
        }
    }

    #[test]
    fn packed_rows_drop_inputs_as_the_reference_does() {
        // Every way a row can end: whole groups of eight, and a last group with or without
        // its second packed byte.
        for dim in (1..=40).chain([1120, 1123]) {
            packed_rows_drop_inputs_at(dim);
        }
    }

    fn packed_rows_drop_inputs_at(dim: usize) {
        let rows: Vec<Vec<i8>> = (0..5)
            .map(|r| {
                (0..dim)
                    .map(|j| [1, -1, 0, 1, 0][(j * 7 + r) % 5])
                    .collect()
            })
            .collect();
        let stride = dim.div_ceil(4);
        let mut packed = vec![0u8; rows.len() * stride];
        for (row, out) in rows.iter().zip(packed.chunks_mut(stride)) {
            for (j, &v) in row.iter().enumerate() {
                out[j / 4] |= (match v {
                    1 => 1u8,
                    -1 => 2,
                    _ => 0,
                }) << (2 * (j % 4));
            }
        }
        let inputs = Inputs {
            dim,
            stride,
            packed,
            of: vec![0, 1, 2, 3, 4, 2],
        };
        let (mut want, mut got, mut row) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..6 {
            for keep in [1, 77, 128, 255, 256] {
                inputs.row(i, &mut row);
                dropped_inputs(&mut want, &row, i, keep, 42);
                for kernel in Kernel::all() {
                    inputs.dropped_row_with(kernel, i, &mut got, keep, 42);
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "dim {dim} example {i} keep {keep} {kernel:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn input_dropout_masks_per_example_and_rescales() {
        let inputs: Vec<i8> = (0..1120).map(|j| [1, -1, 0, 1][j % 4]).collect();
        let mut x = Vec::new();
        dropped_inputs(&mut x, &inputs, 7, 256, 42);
        assert!(
            x.iter().zip(&inputs).all(|(&a, &b)| a == f32::from(b)),
            "keep all"
        );
        // p = 0.5: 128 of 256.
        dropped_inputs(&mut x, &inputs, 7, 128, 42);
        assert_eq!(x.len(), inputs.len());
        let kept = x
            .iter()
            .zip(&inputs)
            .filter(|(&a, &b)| b != 0 && a != 0.0)
            .count();
        let nonzero = inputs.iter().filter(|&&b| b != 0).count();
        assert!(
            (0.4..0.6).contains(&(kept as f64 / nonzero as f64)),
            "{kept} of {nonzero}"
        );
        for (&a, &b) in x.iter().zip(&inputs) {
            assert!(
                a == 0.0 || a == 2.0 * f32::from(b),
                "kept bits are scaled by 1/(1-p)"
            );
        }
        let again = {
            let mut y = Vec::new();
            dropped_inputs(&mut y, &inputs, 7, 128, 42);
            y
        };
        assert_eq!(x, again, "same example and epoch, same mask");
        let mut other = Vec::new();
        dropped_inputs(&mut other, &inputs, 8, 128, 42);
        assert_ne!(x, other, "another example");
        dropped_inputs(&mut other, &inputs, 7, 128, 43);
        assert_ne!(x, other, "another epoch");
    }
}
