//! Which implementation of the vector kernels runs: the best the CPU has, or a lesser one
//! named by `SPRIG_KERNEL`. Training, inference and the projection dispatch on [`Kernel`].
//!
//! Every vector kernel computes the same bits as the portable code, so no test of results
//! can tell whether a dispatch still reaches it: a kernel that silently stopped running would
//! show only in the benches. Each kernel therefore marks its entry ([`entered`]), which test
//! builds record per thread and other builds compile to nothing, and the tests check that
//! each [`Kernel`] reaches the kernels meant for it.

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
    /// AVX-512 F, BW and DQ (which imply AVX2), when the CPU has them. (Never chosen off
    /// x86-64, such as on the ARM cores of phones and watches.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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

/// A vector kernel that a [`Kernel`] dispatch can reach (see [`entered`]).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The dense projection schemes' AVX2 kernel (`projection::avx2::functions`).
    ProjectionFunctionsAvx2,
    /// The sketch projection's sums on AVX-512 (`projection::avx512::sums`).
    ProjectionSumsAvx512,
    /// The sketch projection's signs on AVX-512 (`projection::avx512::signs`).
    ProjectionSignsAvx512,
    /// Training's `axpy` on AVX-512.
    AxpyAvx512,
    /// Training's `axpy` on AVX2.
    AxpyAvx2,
    /// Training's weight gradient by column blocks (`axpy_rows`) on AVX-512.
    AxpyRowsAvx512,
    /// Training's weight gradient by column blocks on AVX2.
    AxpyRowsAvx2,
    /// Training's forward pass by column blocks (`dots_tiled_avx2`; the AVX-512 kernel
    /// uses it too).
    DotsTiledAvx2,
    /// Training's input unpacking with dropout on AVX2 (the AVX-512 kernel uses it too).
    DroppedRowAvx2,
    /// The optimizer step on AVX-512.
    StepAvx512,
    /// The optimizer step on AVX2.
    StepAvx2,
    /// Inference's split of ternary input pairs on AVX-512 (`split_pairs_avx512`).
    SplitPairsAvx512,
    /// Inference's integer column sums on AVX2.
    TernaryColumnsAvx2,
    /// Inference's integer column sums on AVX-512.
    TernaryColumnsAvx512,
    /// Inference's float column sums on AVX2.
    FloatColumnsAvx2,
    /// Inference's float column sums on AVX-512.
    FloatColumnsAvx512,
}

/// Marks that the vector kernel `entry` runs: test builds record it for the current thread
/// (read back by the test-only `take_entered`); other builds compile the call to nothing.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
pub(crate) fn entered(entry: Entry) {
    #[cfg(test)]
    ENTERED.with_borrow_mut(|e| {
        if !e.contains(&entry) {
            e.push(entry);
        }
    });
    #[cfg(not(test))]
    let _ = entry;
}

#[cfg(test)]
thread_local! {
    /// The kernels entered on this thread since the last [`take_entered`], once each.
    static ENTERED: std::cell::RefCell<Vec<Entry>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The kernels entered on this thread since the last call, in [`Entry`]'s order; clears
/// the record.
#[cfg(test)]
pub(crate) fn take_entered() -> Vec<Entry> {
    let mut entered = ENTERED.take();
    entered.sort_by_key(|&e| e as u32);
    entered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_holds_what_was_entered_once_each_and_clears() {
        take_entered();
        entered(Entry::StepAvx2);
        entered(Entry::ProjectionFunctionsAvx2);
        entered(Entry::StepAvx2);
        entered(Entry::FloatColumnsAvx512);
        assert_eq!(
            take_entered(),
            [
                Entry::ProjectionFunctionsAvx2,
                Entry::StepAvx2,
                Entry::FloatColumnsAvx512
            ]
        );
        assert!(take_entered().is_empty());
        // Another thread keeps its own record.
        entered(Entry::AxpyAvx2);
        std::thread::spawn(|| entered(Entry::AxpyAvx512))
            .join()
            .unwrap();
        assert_eq!(take_entered(), [Entry::AxpyAvx2]);
    }
}
