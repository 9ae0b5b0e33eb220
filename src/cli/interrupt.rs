//! Ctrl-C during `train`'s epochs: the first interrupt asks training to stop after the
//! current epoch and write the model of the best epoch so far (then the process exits with
//! 130, so that a script sees the interruption); a second one ends the process as at any
//! other time. Hours of training are not lost to one keystroke.
//!
//! Only training arms it: a propagation's iterations are short and a stopped one is a worse
//! artifact (labels that have not settled), and the other stages have no result before
//! their end.
//!
//! `main`'s signal handler calls [`on_signal`]; the handler runs on a thread of its own
//! (the `ctrlc` crate's), not in signal context, so it may lock, print and exit. It cannot
//! tell SIGINT from SIGTERM or SIGHUP: each is handled alike.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, Ordering};

/// No run that can stop early is under way: a signal ends the process.
const IDLE: u8 = 0;
/// A run that can stop early is under way.
const ARMED: u8 = 1;
/// The run was asked to stop; another signal ends the process.
const REQUESTED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(IDLE);

/// What the signal handler does: the first signal during an armed run asks it to stop;
/// any other deletes the temporaries of outputs being written and exits with 130 (the
/// shell's code for an interrupted command).
pub(crate) fn on_signal() {
    if STATE
        .compare_exchange(ARMED, REQUESTED, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        errln!(
            "sprig: interrupted: stopping after this epoch and writing the best epoch's model; \
             interrupt again to quit without it"
        );
        return;
    }
    sprig::format::remove_live_temporaries();
    std::process::exit(130);
}

/// While it lives, the first signal asks training to stop instead of ending the process.
pub(crate) struct Armed(());

/// Arms the first-signal stop for the lifetime of the returned guard.
pub(crate) fn arm() -> Armed {
    // A request left from an earlier run of the process is forgotten.
    STATE.store(ARMED, Ordering::SeqCst);
    Armed(())
}

impl Armed {
    /// `Break` once a signal asked training to stop: what `on_epoch` returns.
    pub(crate) fn flow(&self) -> ControlFlow<()> {
        if STATE.load(Ordering::SeqCst) == REQUESTED {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        // From here (writing the result) a signal ends the process again.
        STATE.store(IDLE, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test for the whole cycle: the state is the process's, and tests run on parallel
    /// threads. Only the armed path of `on_signal` can run here (any other exits).
    #[test]
    fn a_signal_stops_an_armed_run_and_the_dropped_guard_disarms() {
        let armed = arm();
        assert!(armed.flow().is_continue());
        on_signal();
        assert!(
            armed.flow().is_break(),
            "the first signal asks the run to stop"
        );
        // While the result is written, a signal must end the process again: left armed or
        // requested, one would only print a request nobody reads and the write would go on.
        drop(armed);
        assert_eq!(STATE.load(Ordering::SeqCst), IDLE);
        // A later run is armed afresh, and disarmed when its guard goes.
        assert!(arm().flow().is_continue());
        assert_eq!(STATE.load(Ordering::SeqCst), IDLE);
    }
}
