//! k-nearest-neighbour search by cosine over L2-normalized sparse rows: exact ([`knn`]), or
//! with a search budget per query for very large corpora ([`knn_bounded`]).
//!
//! An inverted index (feature → rows holding it, with weights) finds candidates; [`knn`]'s
//! result is **exact**: it equals a brute-force scan of every pair, with ties broken by node
//! id (the smaller id wins), because every score that decides the result is recomputed with
//! [`crate::features::sparse_dot`], the function a brute-force scan would use (or, faster, its
//! bit-for-bit equal over a scattered query, `dense_dot`).
//!
//! For each query row `q` the features are visited rarest first (document frequency, then
//! id), in two phases:
//!
//! 1. **Admission.** Each feature's postings add `q_f · d_f` into a dense accumulator. What
//!    the *unvisited* features could still add to any row is bounded by
//!    `ub = min(Σ q_f · max_d d_f, ‖q_rest‖₂)` (the second term is Cauchy–Schwarz with rows of
//!    norm ≤ 1, L2AP's bound, and is the tight one for common features). The k front-runners
//!    by partial score are scored exactly, so `θ`, the k-th best exact score among them, is a
//!    lower bound on the final k-th score. Once `ub < θ`, no untouched row can enter the top
//!    k and admission stops: the common features (`.`, `i`, `the`), whose long posting lists
//!    are the cost of a naive inverted index, are usually never scanned in this phase.
//! 2. **Finishing** (MaxScore). Touched rows whose partial score plus `ub` can still reach
//!    `θ` are candidates. Each remaining feature is added to them only, by scanning its
//!    postings or, when the candidates are few, by binary search in their rows; after every
//!    feature, candidates that can no longer reach `θ` drop out. The survivors are scored with
//!    [`crate::features::sparse_dot`] and the best k kept.
//!
//! A candidate's own bound is tighter than `ub`: the unvisited features are the query's most
//! common ones, so they can add at most `‖q_rest‖₂ · ‖r_common‖₂`, where `r_common` is the
//! candidate's weights on features at least that common. Each row keeps that norm for 16
//! document-frequency levels (`df ≥ 2^j`, in 255ths rounded up: 16 bytes a row), computed
//! with the index. With identical output, this cut the CPU time of the graph by 39% on SwDA's
//! 75k subsample with word + char n-grams (rows of many rare features and a small common
//! tail), and by 30% on all of SwDA's train set with word 1–2-grams.
//!
//! Nothing is approximated (unless a budget is given, see [`knn_bounded`]): the bounds
//! carry a small slack (1e-5) for the rounding of sums taken in another order, and the
//! document-frequency order is only a cost order.
//!
//! Each query is independent and uses per-thread scratch space, so rayon parallelism over
//! query rows gives identical output for any thread count.
//!
//! # Complexity
//! Building the index is `O(nnz)`. A query costs the postings scanned before `ub < θ`, the
//! finishing work over the candidates, and about k merges; a brute-force scan costs
//! `O(n · row length)` per query. On SwDA's 192k utterances (word 1–2-grams) the exact graph
//! takes about 35 s on 2 cores; see `benches/README.md`. With the default word + char
//! n-grams the common features keep `θ` low, and the exact search grows with about the square
//! of the number of texts (198k distinct texts: 150 s). [`knn_bounded`] bounds the first
//! phase of each query for such corpora: a query cut short costs `O(budget + k · row
//! length)` plus an `O(k)` bookkeeping step per posting; one that stays within its budget
//! finishes exactly, and its finishing phase may scan more postings (measured: at most 19,400
//! for a budget of 16,384 on SNIPS, 5,722 for 4,096 on SwDA).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;

use crate::features::{sparse_dot, FeatureMatrix};

/// A binary search in a candidate's row costs about this many sequential postings.
const LOOKUP_COST: u64 = 8;

/// Slack for the bounds, which are sums in another order than the exact scores.
const EPS: f32 = 1e-5;

/// A feature → rows index (the transpose of the feature matrix).
struct Inverted {
    offsets: Vec<u64>,
    rows: Vec<u32>,
    values: Vec<f32>,
    max_value: Vec<f32>,
    /// Per row, `tails[r][j]` = the L2 norm of row `r`'s weights on features whose document
    /// frequency is at least `2^j`, in 255ths rounded up (see [`Inverted::tail`]): 16 bytes
    /// a row, so that the bound's random reads stay in cache.
    tails: Vec<[u8; LEVELS]>,
}

/// Document-frequency levels of [`Inverted::tails`]: `df ≥ 1, 2, 4, …, 2^15`.
const LEVELS: usize = 16;

/// The level of a document frequency (`df ≥ 1`): the largest `j < LEVELS` with `2^j ≤ df`.
#[inline]
fn level(df: u64) -> usize {
    (63 - df.max(1).leading_zeros() as usize).min(LEVELS - 1)
}

impl Inverted {
    /// `by_weight`: each feature's postings in descending weight (ties by row) instead of by
    /// row, so that a scan cut short keeps the rows that feature matters most to.
    fn build(m: &FeatureMatrix, by_weight: bool) -> Self {
        // Every id in the rows (`n_features` should bound them, but it is a public field,
        // and a wrong one must not index out of bounds).
        let nf = m.n_features.max(id_width(m));
        let mut offsets = vec![0u64; nf + 1];
        for &f in &m.features {
            offsets[f as usize + 1] += 1;
        }
        for f in 0..nf {
            offsets[f + 1] += offsets[f];
        }
        let mut fill: Vec<u64> = offsets[..nf].to_vec();
        let mut rows = vec![0u32; m.features.len()];
        let mut values = vec![0f32; m.features.len()];
        let mut max_value = vec![0f32; nf];
        for r in 0..m.n_rows() {
            let (fs, vs) = m.row(r);
            for (&f, &v) in fs.iter().zip(vs) {
                let at = fill[f as usize] as usize;
                rows[at] = r as u32;
                values[at] = v;
                fill[f as usize] += 1;
                if v > max_value[f as usize] {
                    max_value[f as usize] = v;
                }
            }
        }
        if by_weight {
            let mut pairs: Vec<(f32, u32)> = Vec::new();
            for f in 0..nf {
                let (a, b) = (offsets[f] as usize, offsets[f + 1] as usize);
                pairs.clear();
                pairs.extend(values[a..b].iter().copied().zip(rows[a..b].iter().copied()));
                pairs.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                for (at, &(v, r)) in pairs.iter().enumerate() {
                    values[a + at] = v;
                    rows[a + at] = r;
                }
            }
        }
        let mut tails = vec![[0u8; LEVELS]; m.n_rows()];
        for (r, tail) in tails.iter_mut().enumerate() {
            let (fs, vs) = m.row(r);
            let mut sq = [0f64; LEVELS];
            for (&f, &v) in fs.iter().zip(vs) {
                let df = offsets[f as usize + 1] - offsets[f as usize];
                sq[level(df)] += f64::from(v) * f64::from(v);
            }
            let mut acc = 0f64;
            for j in (0..LEVELS).rev() {
                acc += sq[j];
                // Rounded up, with room for the rounding of the f32 weights.
                tail[j] = (acc.sqrt() * 255.0 * (1.0 + 1e-6)).ceil().min(255.0) as u8;
            }
        }
        Self {
            offsets,
            rows,
            values,
            max_value,
            tails,
        }
    }

    /// An upper bound on the norm of row `r`'s weights on features of document frequency
    /// `>= df`: the next lower power of two's tail.
    #[inline]
    fn tail(&self, r: u32, df: u64) -> f32 {
        f32::from(self.tails[r as usize][level(df)]) / 255.0
    }

    fn df(&self, f: u32) -> u64 {
        self.offsets[f as usize + 1] - self.offsets[f as usize]
    }

    fn postings(&self, f: u32) -> (&[u32], &[f32]) {
        let (a, b) = (
            self.offsets[f as usize] as usize,
            self.offsets[f as usize + 1] as usize,
        );
        (&self.rows[a..b], &self.values[a..b])
    }
}

struct Scratch {
    acc: Vec<f32>,
    /// The rows touched so far are `touched[..n_touched]` (the buffer holds a slot for every
    /// row, so that a row is recorded by a write and a count, without a branch).
    touched: Vec<u32>,
    n_touched: usize,
    order: Vec<(u64, u32, f32)>,
    ub: Vec<f32>,
    /// `qnorm[i]` = ‖q_{i..}‖₂, the norm of the query's features from position `i` on.
    qnorm: Vec<f32>,
    /// The k largest partial scores (as bits, min at the top) while θ is computed.
    partial: BinaryHeap<Reverse<u32>>,
    /// A cut search's best partial scores, as `(score bits, Reverse(row))`, worst on top.
    front: BinaryHeap<Reverse<(u32, Reverse<u32>)>>,
    best: Vec<u32>,
    exact: Vec<f32>,
    /// The rows whose `exact` is set, to reset them without a pass over every touched row.
    scored: Vec<u32>,
    candidates: Vec<(f32, u32)>,
    /// `cand_tail[i]`: [`Inverted::tail`] of candidate `i` at the level `cand_level`.
    cand_tail: Vec<f32>,
    /// The query row scattered by feature id (0 elsewhere), for [`dense_dot`].
    dense: Vec<f32>,
    /// Work done so far, in postings-equivalents (see [`exact_work`]).
    work: u64,
}

impl Scratch {
    /// Scratch space for `n` rows whose feature ids are below `width`.
    fn new(n: usize, width: usize) -> Self {
        Scratch {
            acc: vec![0.0; n],
            touched: vec![0; n],
            n_touched: 0,
            order: Vec::new(),
            ub: Vec::new(),
            qnorm: Vec::new(),
            partial: BinaryHeap::new(),
            front: BinaryHeap::new(),
            best: Vec::new(),
            exact: vec![-1.0; n],
            scored: Vec::new(),
            candidates: Vec::new(),
            cand_tail: Vec::new(),
            dense: vec![0.0; width],
            work: 0,
        }
    }
}

/// One past the largest feature id in `m`'s rows.
fn id_width(m: &FeatureMatrix) -> usize {
    m.features.iter().max().map_or(0, |&f| f as usize + 1)
}

/// How far above 1 a row's L2 norm may be: rows normalized in `f32` land within a few
/// units of its last place (the bounds carry slack of the same order).
const NORM_SLACK: f64 = 1e-5;

/// Panics, with a message, unless `m` is what the search's bounds assume: offsets that cut
/// `features` and `values` into rows, features strictly ascending in each row, and weights
/// finite, non-negative and of L2 norm at most 1 (a matrix from [`crate::features::tfidf`]
/// always is). A row of larger norm would make the pruning bounds wrong and the result
/// silently not the exact one. `O(nnz)`, in parallel: small beside any search.
fn check_offsets(m: &FeatureMatrix) {
    let nnz = m.features.len() as u64;
    assert!(
        m.values.len() == m.features.len()
            && m.offsets.first().is_none_or(|&o| o == 0)
            && m.offsets.windows(2).all(|w| w[0] <= w[1])
            && m.offsets.last().is_none_or(|&o| o == nnz),
        "FeatureMatrix: offsets must rise from 0 to the {nnz} features, with as many values"
    );
    let problem = |r: usize| -> Option<String> {
        let (features, values) = m.row(r);
        if let Some(w) = features.windows(2).find(|w| w[0] >= w[1]) {
            return Some(format!("feature {} follows feature {}", w[1], w[0]));
        }
        if let Some(v) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Some(format!("weight {v}"));
        }
        let norm = values
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        (norm > 1.0 + NORM_SLACK).then(|| format!("L2 norm {norm}"))
    };
    if let Some(r) = (0..m.n_rows())
        .into_par_iter()
        .find_first(|&r| problem(r).is_some())
    {
        panic!(
            "FeatureMatrix row {r}: {}; the kNN search takes rows with ascending features and \
             finite, non-negative weights of L2 norm at most 1 (normalize the rows, as \
             features::tfidf does)",
            problem(r).unwrap_or_default()
        );
    }
}

/// The `k` most cosine-similar rows of every row, as `(row, neighbour, similarity)`
/// triplets: similarity `>= min_sim` and `> 0`, no self-pairs, neighbours of one row sorted
/// by (similarity descending, id ascending). `on_rows(n)` is told each time `n` more rows
/// are done (a block of rows at a time).
///
/// The rows must be L2-normalized (norm at most 1), with non-negative weights: the cosine
/// of two such rows is their dot product, and the search's pruning bounds rely on it.
///
/// # Panics
/// If `min_sim` is NaN, `m`'s offsets do not rise from 0 to `m.features.len()`, `m.values`
/// is not as long as `m.features`, a row's features are not strictly ascending, or a row
/// has a negative or non-finite weight or an L2 norm above 1 (a matrix from
/// [`crate::features::tfidf`] is always fine). The matrix is checked only when there is a
/// search to do: with `k = 0` or fewer than 2 rows the result is empty, unchecked.
pub fn knn(
    m: &FeatureMatrix,
    k: usize,
    min_sim: f32,
    on_rows: impl Fn(u64) + Sync,
) -> Vec<(u32, u32, f32)> {
    knn_bounded(m, k, min_sim, None, on_rows)
}

/// [`knn`] with an optional budget for the work of each query, for corpora of hundreds of
/// thousands of distinct texts, where the exact search grows with about the square of their
/// number. `max_scan`: the postings (row entries of the inverted index) one query's first
/// phase may scan; `None` is [`knn`], exact (`Some(0)` scans nothing and finds no edge).
///
/// With a cap, each feature's postings are kept in descending weight, and a query visits its
/// features rarest first as before, but each feature may scan at most an equal share of the
/// budget left (`left / features left`), so every feature, common ones included, contributes
/// the rows it weighs most in. If some list was cut short, the touched rows are ranked by
/// their partial score, the best [`APPROX_CANDIDATES`]` · k` are scored exactly, and the best
/// k of those are kept: the similarities are exact, but a neighbour that no scanned posting
/// reached is missed. A query whose lists all fit its shares gets the exact answer (its
/// finishing phase, as in [`knn`], may scan more postings than the budget). Output is
/// identical for any thread count.
///
/// Measured on 198k distinct texts (benches/README.md): 16,384 finds 82% of the exact
/// graph's edges in an eighth of the time; 65,536 finds 93% in a quarter.
///
/// # Panics
/// As [`knn`].
pub fn knn_bounded(
    m: &FeatureMatrix,
    k: usize,
    min_sim: f32,
    max_scan: Option<u64>,
    on_rows: impl Fn(u64) + Sync,
) -> Vec<(u32, u32, f32)> {
    search(m, k, min_sim, max_scan, |n| {
        on_rows(n);
        ControlFlow::Continue(())
    })
    .expect("a search that is never stopped finishes")
}

/// [`knn_bounded`] whose progress callback may stop it: after a `Break`, the blocks of
/// queries not yet started are skipped and the result is `None`.
pub(crate) fn search(
    m: &FeatureMatrix,
    k: usize,
    min_sim: f32,
    max_scan: Option<u64>,
    on_rows: impl Fn(u64) -> ControlFlow<()> + Sync,
) -> Option<Vec<(u32, u32, f32)>> {
    // A NaN floor would compare false everywhere and act as 0: refused, as the graph's
    // config refuses it.
    assert!(!min_sim.is_nan(), "knn: min_sim is NaN");
    let n = m.n_rows();
    if k == 0 || n < 2 {
        return Some(Vec::new());
    }
    check_offsets(m);
    let index = Inverted::build(m, max_scan.is_some());
    // The scattered query's width: every feature id in the rows.
    let width = id_width(m);
    let chunk = 256;
    let stopped = AtomicBool::new(false);
    let per_chunk: Vec<Vec<(u32, u32, f32)>> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map_init(
            || Scratch::new(n, width),
            |s, c| {
                let mut out = Vec::new();
                if stopped.load(Ordering::Relaxed) {
                    return out;
                }
                let end = ((c + 1) * chunk).min(n);
                for q in c * chunk..end {
                    query(m, &index, q, k, min_sim, max_scan, s, &mut out);
                }
                if on_rows((end - c * chunk) as u64).is_break() {
                    stopped.store(true, Ordering::Relaxed);
                }
                out
            },
        )
        .collect();
    if stopped.into_inner() {
        return None;
    }
    // The index is done with, and the edges are sized exactly (a flattening collect would
    // grow by doubling while every chunk's edges are still held).
    drop(index);
    let mut edges = Vec::with_capacity(per_chunk.iter().map(Vec::len).sum());
    for chunk in per_chunk {
        edges.extend(chunk);
    }
    Some(edges)
}

/// The work of [`knn`]'s exact search over every row of `m`, projected from the searches of
/// `samples` rows spread evenly over them, in postings-equivalents: postings scanned, binary
/// searches at 8 postings each, candidates visited, and the entries of rows scored
/// exactly. It depends on the rows only, never on timing or threads, so a choice made by it
/// is deterministic.
///
/// The sample runs in parallel, in [`SAMPLE_GROUPS`] groups of rows, which stop as soon as
/// the work summed so far projects past `limit` (the rest can only add to it), so the sample
/// costs about `samples / n` of `limit` at most, plus a search a group. The result is then
/// some value above `limit` (which one depends on the threads), not the full projection.
///
/// Measured with the default features on ten corpora of short and long texts
/// (benches/README.md), a unit took 2.2–3.1 ns of one core, the whole `sprig graph` included.
pub fn exact_work(m: &FeatureMatrix, k: usize, min_sim: f32, samples: usize, limit: u64) -> u64 {
    let n = m.n_rows();
    if k == 0 || n < 2 || samples == 0 {
        return 0;
    }
    check_offsets(m);
    let index = Inverted::build(m, false);
    let width = id_width(m);
    let samples = samples.min(n);
    let projected = |work: u64| (u128::from(work) * n as u128 / samples as u128) as u64;
    // Work summed over every group so far: a group stops once the total projects past the
    // limit. Where the groups stop depends on the threads, but whether the total passes
    // the limit does not: every group's work only adds to it.
    let total = AtomicU64::new(0);
    (0..SAMPLE_GROUPS).into_par_iter().for_each_init(
        || (Scratch::new(n, width), Vec::new()),
        |(s, out), g| {
            // Sample i is row i·n/samples; group g takes every SAMPLE_GROUPS-th sample.
            for i in (g..samples).step_by(SAMPLE_GROUPS) {
                let q = (i as u128 * n as u128 / samples as u128) as usize;
                s.work = 0;
                query(m, &index, q, k, min_sim, None, s, out);
                out.clear();
                let sum = total.fetch_add(s.work, Ordering::Relaxed) + s.work;
                if projected(sum) > limit {
                    break;
                }
            }
        },
    );
    projected(total.into_inner())
}

/// The groups [`exact_work`]'s sample is split into, for threads: a fixed number, more
/// than the threads of most machines, so that each sampled row is searched once whatever
/// the thread count (only where the groups stop past the limit depends on it).
pub const SAMPLE_GROUPS: usize = 8;

#[allow(clippy::too_many_arguments)]
fn query(
    m: &FeatureMatrix,
    index: &Inverted,
    q: usize,
    k: usize,
    min_sim: f32,
    max_scan: Option<u64>,
    s: &mut Scratch,
    out: &mut Vec<(u32, u32, f32)>,
) {
    let (qf, qv) = m.row(q);
    if qf.is_empty() {
        return;
    }
    for (&f, &v) in qf.iter().zip(qv) {
        s.dense[f as usize] = v;
    }
    s.order.clear();
    s.order
        .extend(qf.iter().zip(qv).map(|(&f, &v)| (index.df(f), f, v)));
    s.order.sort_unstable_by_key(|a| (a.0, a.1));
    // ub[i] = the most that features i.. can add to any row's score: the smaller of
    // Σ q_f · max_d d_f and, by Cauchy–Schwarz with rows of norm ≤ 1, ‖q_{i..}‖₂ (L2AP's
    // bound; it is the tighter one for common features, whose max weight comes from texts
    // of one or two tokens).
    s.ub.clear();
    s.ub.resize(s.order.len() + 1, 0.0);
    s.qnorm.clear();
    s.qnorm.resize(s.order.len() + 1, 0.0);
    let (mut by_max, mut sq) = (0.0f32, 0.0f32);
    for i in (0..s.order.len()).rev() {
        let (_, f, v) = s.order[i];
        by_max += v * index.max_value[f as usize];
        sq += v * v;
        s.qnorm[i] = sq.sqrt();
        s.ub[i] = by_max.min(s.qnorm[i]);
    }
    let floor = min_sim.max(f32::MIN_POSITIVE);
    // `best` holds k touched rows; θ = the smallest partial score among them is a lower bound
    // on the k-th best partial score (partial scores only grow), kept up to date in O(k) only
    // when a row overtakes it, instead of a selection over every touched row.
    //
    // `bound` is the best lower bound on the k-th best *exact* score known so far: the members
    // of `best` are scored exactly (one merge each, cached), and k rows scoring at least
    // `bound` exist. Exact scores of the front runners are far above their partial scores,
    // which is what lets the common features go unscanned.
    s.best.clear();
    let mut theta = 0.0f32;
    let mut bound = 0.0f32;
    let mut visited = s.order.len();
    let mut scanned = 0u64;
    let mut cut = false;
    for i in 0..s.order.len() {
        let rest = s.ub[i];
        if s.best.len() == k && rest + EPS >= bound.max(floor) {
            let mut least = f32::INFINITY;
            for &r in &s.best {
                let e = &mut s.exact[r as usize];
                if *e < 0.0 {
                    s.scored.push(r);
                    s.work += m.row(r as usize).0.len() as u64;
                    *e = dense_dot(&s.dense, m.row(r as usize));
                }
                least = least.min(*e);
            }
            bound = bound.max(least);
        }
        // Nothing untouched can still reach the floor or the k-th best score.
        if rest + EPS < floor || (s.best.len() == k && rest + EPS < theta.max(bound)) {
            visited = i;
            break;
        }
        let (_, f, v) = s.order[i];
        let (mut rows, mut vals) = index.postings(f);
        if let Some(cap) = max_scan {
            // The budget left is shared among the features left, so that every feature
            // (the common ones too) contributes its heaviest rows: measured on 200k distinct
            // texts, this found more of the exact neighbours in less time than spending the
            // budget rarest feature first (benches/README.md).
            let left = cap.saturating_sub(scanned) as usize / (s.order.len() - i);
            if rows.len() > left {
                (rows, vals) = (&rows[..left], &vals[..left]);
                cut = true;
            }
            scanned += rows.len() as u64;
        }
        s.work += rows.len() as u64;
        // Locals, so that the stores into `touched` and `acc` cannot be taken to change the
        // count or the vectors' own pointers (which otherwise are reloaded every posting).
        let (acc, touched, best) = (&mut s.acc[..], &mut s.touched[..], &mut s.best);
        let mut n_touched = s.n_touched;
        for (&r, &w) in rows.iter().zip(vals) {
            if r as usize == q {
                continue;
            }
            let slot = &mut acc[r as usize];
            // Recorded unconditionally, counted only the first time: whether a row is new is
            // a coin toss the branch predictor loses.
            touched[n_touched] = r;
            n_touched += usize::from(*slot == 0.0);
            // Keep a touched row non-zero even if the product underflows.
            *slot = (*slot + v * w).max(f32::MIN_POSITIVE);
            let a = *slot;
            if best.len() < k {
                if !best.contains(&r) {
                    best.push(r);
                    if best.len() == k {
                        theta = min_of(acc, best).1;
                    }
                }
            } else if a > theta {
                let (at, min) = min_of(acc, best);
                theta = min;
                if a > min && !best.contains(&r) {
                    best[at] = r;
                    theta = min_of(acc, best).1;
                }
            }
        }
        s.n_touched = n_touched;
    }
    // Candidates: touched rows that could still reach the k-th best score.
    s.candidates.clear();
    s.work += s.n_touched as u64;
    let touched = &s.touched[..s.n_touched];
    if cut {
        // The budget ran out: the best partial scores (by [`by_rank`]) go to exact scoring,
        // found with a heap of that many: most rows lose one comparison with its worst,
        // where a selection over all of them moved every row several times.
        let keep = APPROX_CANDIDATES.saturating_mul(k);
        let heap = &mut s.front;
        heap.clear();
        for &r in touched {
            // Partial scores are positive: their bits order as they do.
            let key = (s.acc[r as usize].to_bits(), Reverse(r));
            if heap.len() < keep {
                heap.push(Reverse(key));
            } else if let Some(mut worst) = heap.peek_mut() {
                if key > worst.0 {
                    *worst = Reverse(key);
                }
            }
        }
        s.candidates.extend(
            heap.drain()
                .map(|Reverse((bits, Reverse(r)))| (f32::from_bits(bits), r)),
        );
        return finish(m, q, k, floor, s, out);
    }
    s.candidates
        .extend(touched.iter().map(|&r| (s.acc[r as usize], r)));
    let mut theta = kth(&s.candidates, k, &mut s.partial).max(bound);
    let mut level_of_tails = usize::MAX;
    prune(s, index, visited, theta.max(floor), &mut level_of_tails);
    // MaxScore over the features left unvisited: each is added to the candidates only, either
    // by scanning its postings (sequential, and only touched rows are updated) or, when the
    // candidates are few against its document frequency, by looking it up in their rows.
    // Candidates that can no longer reach θ drop out after every feature.
    for j in visited..s.order.len() {
        if s.candidates.is_empty() {
            break;
        }
        let (df, f, v) = s.order[j];
        // The scan or the lookups, then a pass over the candidates (their scores, θ, the
        // pruning).
        s.work += df.min(LOOKUP_COST * s.candidates.len() as u64) + s.candidates.len() as u64;
        if df <= LOOKUP_COST * s.candidates.len() as u64 {
            let (rows, vals) = index.postings(f);
            for (&r, &w) in rows.iter().zip(vals) {
                let slot = &mut s.acc[r as usize];
                if *slot != 0.0 {
                    *slot += v * w;
                }
            }
        } else {
            for c in &s.candidates {
                let (fs, vs) = m.row(c.1 as usize);
                if let Ok(at) = fs.binary_search(&f) {
                    s.acc[c.1 as usize] += v * vs[at];
                }
            }
        }
        for c in s.candidates.iter_mut() {
            c.0 = s.acc[c.1 as usize];
        }
        theta = theta.max(kth(&s.candidates, k, &mut s.partial));
        prune(s, index, j + 1, theta.max(floor), &mut level_of_tails);
    }
    finish(m, q, k, floor, s, out);
}

/// Ranks `(score, row)` pairs: score descending, then row ascending.
fn by_rank(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// How many candidates, as a multiple of k, a query cut short by [`knn_bounded`]'s budget
/// scores exactly. Exact scores are most of such a query's cost; on 200k distinct texts,
/// doubling this bought the same recall as doubling the budget, at the same time.
pub const APPROX_CANDIDATES: usize = 8;

/// Scores the surviving candidates exactly, resets the scratch space and appends the best k.
fn finish(
    m: &FeatureMatrix,
    q: usize,
    k: usize,
    floor: f32,
    s: &mut Scratch,
    out: &mut Vec<(u32, u32, f32)>,
) {
    // The survivors are scored exactly, in the order a brute-force scan would use (the
    // front-runners' scores are cached from admission).
    for c in s.candidates.iter_mut() {
        let cached = s.exact[c.1 as usize];
        let exact = if cached >= 0.0 {
            cached
        } else {
            s.work += m.row(c.1 as usize).0.len() as u64;
            dense_dot(&s.dense, m.row(c.1 as usize))
        };
        c.0 = exact.min(1.0);
    }
    for &f in m.row(q).0 {
        s.dense[f as usize] = 0.0;
    }
    for &r in &s.touched[..s.n_touched] {
        s.acc[r as usize] = 0.0;
    }
    for &r in &s.scored {
        s.exact[r as usize] = -1.0;
    }
    s.scored.clear();
    s.n_touched = 0;
    s.candidates.retain(|c| c.0 >= floor);
    let take = k.min(s.candidates.len());
    if take == 0 {
        return;
    }
    if s.candidates.len() > take {
        s.candidates.select_nth_unstable_by(take - 1, by_rank);
        s.candidates.truncate(take);
    }
    s.candidates.sort_unstable_by(by_rank);
    out.extend(s.candidates.iter().map(|&(sim, r)| (q as u32, r, sim)));
}

/// [`sparse_dot`] of the query and `row`, with the query scattered into `dense` (its weight
/// at its features, 0 elsewhere): the same products added in the same order (ascending
/// feature id), plus `+0.0` for each feature of `row` the query lacks, which leaves a sum of
/// non-negative weights unchanged. So the result is bit for bit `sparse_dot`'s, without the
/// merge's unpredictable branches: a gather per entry of `row`.
#[inline]
fn dense_dot(dense: &[f32], row: (&[u32], &[f32])) -> f32 {
    let (fs, vs) = row;
    let mut sum = 0.0f32;
    for (&f, &v) in fs.iter().zip(vs) {
        sum += dense[f as usize] * v;
    }
    sum
}

/// Drops the candidates that can no longer reach `target` once features `i..` of the query
/// are added. What features `i..` can add to row `r`'s score is at most `ub[i]`, and, by
/// Cauchy–Schwarz with `r`'s own weights on those features (which all have document frequency
/// `>= df_i`, features coming in ascending df), at most `‖q_{i..}‖₂ · tail(r, df_i)`. Rows of a
/// few common features stay loose; rows of many rare ones (char n-grams of long texts) are
/// cut down to their small common tail. The candidates' tails are read again only when the
/// df level changes (`level_of_tails`).
fn prune(s: &mut Scratch, index: &Inverted, i: usize, target: f32, level_of_tails: &mut usize) {
    let n = s.candidates.len();
    if i == s.order.len() {
        s.candidates.retain(|c| c.0 + EPS >= target);
        return;
    }
    let (rest, qnorm, df) = (s.ub[i], s.qnorm[i], s.order[i].0);
    if level(df) != *level_of_tails {
        *level_of_tails = level(df);
        s.cand_tail.clear();
        s.cand_tail
            .extend(s.candidates.iter().map(|c| index.tail(c.1, df)));
    }
    debug_assert_eq!(s.cand_tail.len(), n);
    let mut kept = 0;
    for at in 0..n {
        let c = s.candidates[at];
        let tail = s.cand_tail[at];
        if c.0 + rest.min(qnorm * tail) + EPS >= target {
            s.candidates[kept] = c;
            s.cand_tail[kept] = tail;
            kept += 1;
        }
    }
    s.candidates.truncate(kept);
    s.cand_tail.truncate(kept);
}

/// Position and value of the smallest accumulator among `rows` (non-empty).
#[inline]
fn min_of(acc: &[f32], rows: &[u32]) -> (usize, f32) {
    let mut at = 0;
    let mut min = f32::INFINITY;
    for (i, &r) in rows.iter().enumerate() {
        if acc[r as usize] < min {
            min = acc[r as usize];
            at = i;
        }
    }
    (at, min)
}

/// The k-th largest score among `candidates` (0 when there are fewer than k).
///
/// One pass with a k-element min-heap: after the first few, most candidates are below the
/// heap's minimum and cost one comparison (a selection over a copy cost 8% of a SwDA build).
/// Scores are positive (accumulators are kept ≥ `f32::MIN_POSITIVE`), and the bits of
/// positive floats order like the floats.
fn kth(candidates: &[(f32, u32)], k: usize, heap: &mut BinaryHeap<Reverse<u32>>) -> f32 {
    if candidates.len() < k {
        return 0.0;
    }
    heap.clear();
    for c in candidates {
        debug_assert!(c.0 > 0.0);
        let bits = c.0.to_bits();
        if heap.len() < k {
            heap.push(Reverse(bits));
        } else if let Some(mut least) = heap.peek_mut() {
            if bits > least.0 {
                *least = Reverse(bits);
            }
        }
    }
    heap.peek().map_or(0.0, |least| f32::from_bits(least.0))
}

/// The same result by scanning every pair: the reference the index is tested against.
pub fn brute_force(m: &FeatureMatrix, k: usize, min_sim: f32) -> Vec<(u32, u32, f32)> {
    let n = m.n_rows();
    let floor = min_sim.max(f32::MIN_POSITIVE);
    let mut out = Vec::new();
    for q in 0..n {
        let mut all: Vec<(f32, u32)> = (0..n)
            .filter(|&r| r != q)
            .map(|r| (sparse_dot(m.row(q), m.row(r)).min(1.0), r as u32))
            .filter(|&(s, _)| s >= floor)
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(k);
        out.extend(all.into_iter().map(|(s, r)| (q as u32, r, s)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[(u32, f32)]]) -> FeatureMatrix {
        let mut m = FeatureMatrix {
            offsets: vec![0],
            ..FeatureMatrix::default()
        };
        for row in rows {
            let norm: f32 = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
            for &(f, v) in *row {
                m.features.push(f);
                m.values.push(v / norm);
                m.n_features = m.n_features.max(f as usize + 1);
            }
            m.offsets.push(m.features.len() as u64);
        }
        m
    }

    #[test]
    fn matches_brute_force_with_ties_by_id() {
        let m = matrix(&[
            &[(0, 1.0), (1, 1.0)],
            &[(0, 1.0), (2, 1.0)],
            &[(0, 1.0), (3, 1.0)],
            &[(1, 1.0), (2, 1.0)],
            &[(4, 1.0)],
            &[(0, 1.0), (1, 1.0), (2, 1.0)],
        ]);
        for k in 1..=5 {
            assert_eq!(knn(&m, k, 0.0, |_| {}), brute_force(&m, k, 0.0), "k = {k}");
        }
        let edges = knn(&m, 2, 0.0, |_| {});
        assert!(
            !edges.iter().any(|e| e.0 == 4 || e.1 == 4),
            "row 4 shares nothing"
        );
    }

    /// `n` rows: every one holds the common feature 0, and three of 50 others (a fixed LCG).
    fn common_feature_rows(n: usize) -> FeatureMatrix {
        let mut x = 12345u64;
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .map(|_| {
                let mut row = vec![(0, 1.0)];
                for _ in 0..3 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let f = 1 + (x >> 33) as u32 % 50;
                    if !row.iter().any(|&(g, _)| g == f) {
                        row.push((f, 1.0));
                    }
                }
                row.sort_by_key(|&(f, _)| f);
                row
            })
            .collect();
        let refs: Vec<&[(u32, f32)]> = rows.iter().map(|r| r.as_slice()).collect();
        matrix(&refs)
    }

    #[test]
    fn a_stopped_search_skips_the_blocks_not_started_and_returns_nothing() {
        let m = common_feature_rows(1000);
        let whole = knn(&m, 5, 0.0, |_| {});
        let go_on = |_| ControlFlow::Continue(());
        assert_eq!(search(&m, 5, 0.0, None, go_on), Some(whole));
        // One thread: the blocks of 256 queries run in order, so a stop after the first
        // leaves the other three unsearched.
        let searched = AtomicU64::new(0);
        let stopped = crate::test_util::in_pool(1, || {
            search(&m, 5, 0.0, None, |n| {
                searched.fetch_add(n, Ordering::SeqCst);
                ControlFlow::Break(())
            })
        });
        assert_eq!(stopped, None);
        assert_eq!(searched.into_inner(), 256);
        // A stop at the last block leaves a search that ran to its end: still nothing.
        let blocks = AtomicU64::new(0);
        let last = search(&m, 5, 0.0, Some(4096), |_| {
            if blocks.fetch_add(1, Ordering::SeqCst) == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(last, None);
    }

    #[test]
    fn exact_work_projects_the_whole_search_and_stops_past_its_limit() {
        let small = common_feature_rows(400);
        let full = exact_work(&small, 5, 0.0, 400, u64::MAX);
        assert!(full > 0);
        // Deterministic, and a sample projects about the same (rows are alike here).
        assert_eq!(exact_work(&small, 5, 0.0, 400, u64::MAX), full);
        let sampled = exact_work(&small, 5, 0.0, 40, u64::MAX);
        assert!(
            sampled.abs_diff(full) * 4 < full,
            "sampled {sampled} against {full}"
        );
        // Past the limit, the result is some value above it, and the sample stopped soon
        // after (each group ends its search in progress).
        let stopped = exact_work(&small, 5, 0.0, 400, full / 10);
        assert!(
            stopped > full / 10 && stopped < full / 2,
            "{stopped} of {full}"
        );
        // Every row meets every other through feature 0: the work grows faster than n.
        let large = common_feature_rows(1600);
        let four_times = exact_work(&large, 5, 0.0, 400, u64::MAX);
        assert!(2 * four_times > 9 * full, "{four_times} against {full}");
        // Two rows are searched; nothing to search in one, or for no neighbour.
        let pair = matrix(&[&[(0, 1.0)], &[(0, 1.0)]]);
        assert!(exact_work(&pair, 1, 0.0, 2, u64::MAX) > 0);
        assert_eq!(exact_work(&small, 0, 0.0, 400, 0), 0);
        assert_eq!(exact_work(&matrix(&[&[(0, 1.0)]]), 5, 0.0, 400, 0), 0);
    }

    #[test]
    fn a_huge_k_with_a_budget_that_cuts_keeps_valid_neighbours() {
        let m = matrix(&[
            &[(0, 1.0), (1, 1.0)],
            &[(0, 1.0), (2, 1.0)],
            &[(0, 1.0), (3, 1.0)],
        ]);
        // 8 · k overflows usize: the cut path must not wrap to zero candidates and panic.
        let cut = knn_bounded(&m, usize::MAX / 2, 0.0, Some(1), |_| {});
        let all = brute_force(&m, 10, 0.0);
        assert!(
            !cut.is_empty() && cut.iter().all(|t| all.contains(t)),
            "{cut:?}"
        );
    }

    #[test]
    fn a_feature_count_below_the_ids_is_widened_and_broken_offsets_are_named() {
        let mut m = matrix(&[&[(0, 1.0), (5, 1.0)], &[(5, 1.0)], &[(0, 1.0), (3, 1.0)]]);
        let want = knn(&m, 2, 0.0, |_| {});
        m.n_features = 1;
        assert_eq!(knn(&m, 2, 0.0, |_| {}), want);
        assert_eq!(knn_bounded(&m, 2, 0.0, Some(100), |_| {}), want);
        // No budget finds nothing; a NaN floor is refused.
        assert!(knn_bounded(&m, 2, 0.0, Some(0), |_| {}).is_empty());
        let e = std::panic::catch_unwind(|| knn(&m, 2, f32::NAN, |_| {})).unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"knn: min_sim is NaN"));
        m.offsets[1] = 9;
        let e = std::panic::catch_unwind(|| knn(&m, 2, 0.0, |_| {})).unwrap_err();
        let message = e.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("FeatureMatrix: offsets must rise"),
            "{message}"
        );
    }

    #[test]
    fn rows_the_bounds_do_not_hold_for_are_refused_by_row() {
        let m = matrix(&[&[(0, 1.0), (5, 1.0)], &[(5, 1.0)], &[(0, 1.0), (3, 1.0)]]);
        let refused = |edit: &dyn Fn(&mut FeatureMatrix), why: &str| {
            let mut bad = m.clone();
            edit(&mut bad);
            let runs: [&dyn Fn(&FeatureMatrix); 3] = [
                &|m| drop(knn(m, 2, 0.0, |_| {})),
                &|m| drop(knn_bounded(m, 2, 0.0, Some(8), |_| {})),
                &|m| {
                    exact_work(m, 2, 0.0, 3, u64::MAX);
                },
            ];
            for run in runs {
                let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&bad)))
                    .unwrap_err();
                let message = e.downcast_ref::<String>().unwrap();
                assert!(message.contains(why), "{message}");
                assert!(message.contains("L2 norm at most 1"), "{message}");
            }
        };
        // A row scaled up: its neighbours would be pruned away, not found.
        refused(&|m| m.values[2] = 1.5, "row 1: L2 norm 1.5");
        refused(&|m| m.values[3] = -0.5, "row 2: weight -0.5");
        refused(&|m| m.values[0] = f32::NAN, "row 0: weight NaN");
        refused(
            &|m| m.features.swap(3, 4),
            "row 2: feature 0 follows feature 3",
        );
        // Within the slack: a norm a few units of f32's last place above 1 is fine.
        let mut near = m.clone();
        near.values[2] = 1.0 + 4.0 * f32::EPSILON;
        assert_eq!(knn(&near, 2, 0.0, |_| {}), brute_force(&near, 2, 0.0));
    }

    #[test]
    fn min_sim_drops_weak_pairs() {
        let m = matrix(&[
            &[(0, 1.0), (1, 3.0)],
            &[(0, 1.0), (2, 3.0)],
            &[(1, 3.0), (2, 0.1)],
        ]);
        let edges = knn(&m, 5, 0.5, |_| {});
        assert!(edges.iter().all(|e| e.2 >= 0.5));
        assert_eq!(edges, brute_force(&m, 5, 0.5));
    }

    /// A list exactly as long as its share of the budget is not cut: the query still gets the
    /// exact answer. Here row 0's best neighbour (row 9) is found only by finishing with the
    /// common feature 1; ranked by the partial score of feature 0 alone, the eight rows of
    /// feature 0 only would crowd it out of the 8 · k candidates a cut query scores.
    #[test]
    fn a_list_that_fills_its_share_exactly_is_not_cut() {
        let mut rows: Vec<Vec<(u32, f32)>> = vec![vec![(0, 1.0), (1, 1.0)]];
        rows.extend((0..8).map(|_| vec![(0, 1.0)]));
        rows.push(vec![(0, 0.1), (1, 1.0)]);
        rows.extend((0..10).map(|_| vec![(1, 1.0), (2, 1.0)]));
        let refs: Vec<&[(u32, f32)]> = rows.iter().map(Vec::as_slice).collect();
        let m = matrix(&refs);
        let exact: Vec<_> = brute_force(&m, 1, 0.0)
            .into_iter()
            .filter(|t| t.0 == 0)
            .collect();
        assert_eq!(exact[0].1, 9);
        // Feature 0 (10 postings) is visited first, with half of the budget.
        for budget in [20u64, 21, 40] {
            let got: Vec<_> = knn_bounded(&m, 1, 0.0, Some(budget), |_| {})
                .into_iter()
                .filter(|t| t.0 == 0)
                .collect();
            assert_eq!(got, exact, "budget {budget}");
        }
    }

    /// The bounds' slack (EPS) is on the side that keeps rows: a neighbour whose only shared
    /// feature gives it a similarity above 0 but below the slack is still found, as a
    /// brute-force scan finds it.
    #[test]
    fn a_neighbour_below_the_bounds_slack_is_found() {
        let m = matrix(&[&[(0, 1.0), (1, 1e-6)], &[(1, 1.0)], &[(2, 1.0)]]);
        let want = brute_force(&m, 2, 0.0);
        assert!(
            want.iter().any(|t| t.0 == 0 && t.1 == 1 && t.2 < EPS),
            "{want:?}"
        );
        assert_eq!(knn(&m, 2, 0.0, |_| {}), want);
        assert_eq!(knn_bounded(&m, 2, 0.0, Some(u64::MAX), |_| {}), want);
    }

    proptest::proptest! {
        /// The scattered query's dot product is `sparse_dot`'s, bit for bit: the exact
        /// search's results rest on it.
        #[test]
        fn dense_dot_is_sparse_dot(
            a in proptest::collection::btree_map(0u32..200, 1e-6f32..3.0, 0..40),
            b in proptest::collection::btree_map(0u32..200, 1e-6f32..3.0, 0..40),
        ) {
            let (af, av): (Vec<u32>, Vec<f32>) = a.into_iter().unzip();
            let (bf, bv): (Vec<u32>, Vec<f32>) = b.into_iter().unzip();
            let mut dense = vec![0.0f32; 200];
            for (&f, &v) in af.iter().zip(&av) {
                dense[f as usize] = v;
            }
            let want = sparse_dot((&af, &av), (&bf, &bv));
            proptest::prop_assert_eq!(dense_dot(&dense, (&bf, &bv)).to_bits(), want.to_bits());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random rows over a skewed vocabulary (a few features in most rows, many rare ones),
        /// so the document-frequency levels of the tail bound all occur: the index must equal
        /// the brute-force scan, bit for bit.
        #[test]
        fn equals_brute_force_on_random_rows(
            rows in proptest::collection::vec(
                proptest::collection::vec((0.0f64..1.0, 0.05f32..2.0), 1..14), 2..70),
            k in 1usize..9,
            min_sim in proptest::sample::select(vec![0.0f32, 0.05, 0.3]),
        ) {
            let rows: Vec<Vec<(u32, f32)>> = rows
                .into_iter()
                .map(|row| {
                    // u³ · 60: feature 0 is in about a third of the rows, most ids are rare.
                    let mut row: Vec<(u32, f32)> =
                        row.into_iter().map(|(u, v)| ((u * u * u * 60.0) as u32, v)).collect();
                    row.sort_by_key(|e| e.0);
                    row.dedup_by_key(|e| e.0);
                    row
                })
                .collect();
            let refs: Vec<&[(u32, f32)]> = rows.iter().map(Vec::as_slice).collect();
            let m = matrix(&refs);
            let exact = brute_force(&m, k, min_sim);
            proptest::prop_assert_eq!(&knn(&m, k, min_sim, |_| {}), &exact);
            proptest::prop_assert_eq!(&knn_bounded(&m, k, min_sim, Some(u64::MAX), |_| {}), &exact);
            // A budget that cuts: true cosines, above the floor, at most k a row, in order.
            for budget in [1u64, 7, 40] {
                let cut = knn_bounded(&m, k, min_sim, Some(budget), |_| {});
                for t in &cut {
                    proptest::prop_assert!(t.0 != t.1);
                    let cosine = sparse_dot(m.row(t.0 as usize), m.row(t.1 as usize)).min(1.0);
                    proptest::prop_assert_eq!(t.2, cosine);
                    proptest::prop_assert!(t.2 >= min_sim && t.2 > 0.0);
                }
                for list in cut.chunk_by(|a, b| a.0 == b.0) {
                    proptest::prop_assert!(list.len() <= k);
                    proptest::prop_assert!(list
                        .windows(2)
                        .all(|w| w[0].2 > w[1].2 || (w[0].2 == w[1].2 && w[0].1 < w[1].1)));
                }
            }
        }
    }
}
