//! Progress bars on stderr (indicatif), hidden with `--quiet` (as are informational notes;
//! warnings about dropped input are not). When stderr is not a terminal
//! (a batch job's log) the bars cannot draw, so a stage that runs longer than
//! [`LOG_AFTER`] writes a plain line every [`LOG_EVERY`] (position, rate, time left) and one
//! when it ends; shorter stages, and so every test, stay silent.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A stage this long or longer is logged on a non-terminal stderr.
const LOG_AFTER: Duration = Duration::from_secs(10);
/// Between two log lines of one stage.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Implements the library's progress callbacks with one bar per stage.
pub(crate) struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// On a non-terminal stderr: the stage's name, start, and when it was last logged.
    log: Option<Mutex<Option<(String, Instant, Instant)>>>,
}

impl Bars {
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: Mutex::new(None),
            log: (!quiet && !std::io::stderr().is_terminal()).then(|| Mutex::new(None)),
        }
    }

    /// Writes a log line for the current stage if it is due (see the module docs).
    fn log_if_due(&self, finished: bool) {
        if let Some(line) = self.due_line(finished) {
            errln!("{line}");
        }
    }

    /// The current stage's log line if it is due now, marking it logged.
    fn due_line(&self, finished: bool) -> Option<String> {
        let log = self.log.as_ref()?;
        let mut state = log.lock().unwrap_or_else(|e| e.into_inner());
        let (name, start, last) = state.as_mut()?;
        let now = Instant::now();
        if !is_due(*start, *last, now, finished) {
            return None;
        }
        *last = now;
        let guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let bar = guard.as_ref()?;
        Some(log_line(
            name,
            now.duration_since(*start),
            finished,
            bar.position(),
            bar.length(),
        ))
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            f(bar);
        }
    }

    /// Prints a line on stderr unless quiet, without tearing a live bar: progress and
    /// informational notes, which `--quiet` silences.
    pub(crate) fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        self.print(message);
    }

    /// Prints `warning: {message}` on stderr, even when quiet, without tearing a live bar:
    /// for input the command dropped, skipped or ignored, which a quiet run must still
    /// report, or the loss would leave no trace.
    pub(crate) fn warn(&self, message: &str) {
        self.print(&format!("warning: {message}"));
    }

    fn print(&self, message: &str) {
        let guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            // A hidden bar (stderr not a terminal, or --quiet) prints nothing of its own
            // `println`: the line goes straight to stderr then, or a warning would be lost.
            Some(bar) if !bar.is_hidden() => bar.println(message),
            _ => errln!("{message}"),
        }
    }
}

impl sprig::build::Progress for Bars {
    fn note(&self, message: &str) {
        Bars::note(self, message);
    }

    fn stage(&self, name: &str, total: Option<u64>, unit: &str) {
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{rate}} eta {{eta}}"
                ))
                .expect("valid template")
                .with_key("rate", rate)
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>10}} {{spinner}} {{pos}} {unit} {{rate}} {{elapsed}}"
                ))
                .expect("valid template")
                .with_key("rate", rate),
            ),
        };
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        if let Some(log) = &self.log {
            let now = Instant::now();
            *log.lock().unwrap_or_else(|e| e.into_inner()) = Some((name.to_owned(), now, now));
        }
    }

    fn advance(&self, n: u64) {
        self.with(|b| b.inc(n));
        self.log_if_due(false);
    }

    fn set_position(&self, n: u64) {
        self.with(|b| b.set_position(n));
        self.log_if_due(false);
    }

    fn finish_stage(&self) {
        self.log_if_due(true);
        if let Some(log) = &self.log {
            *log.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// Whether a stage that started at `start` and was last logged at `last` (`start` before its
/// first line) is due a log line at `now`: the first once the stage is [`LOG_AFTER`] old,
/// then one every [`LOG_EVERY`], and one when it finishes if it ran that long at all.
fn is_due(start: Instant, last: Instant, now: Instant, finished: bool) -> bool {
    let first = last == start;
    now.duration_since(start) >= LOG_AFTER
        && (finished || first || now.duration_since(last) >= LOG_EVERY)
}

/// A stage's log line: its name, then what is done (of how many, at what rate, and how long
/// the rest should take, once something is done), or that it is done and in what time.
fn log_line(
    name: &str,
    elapsed: Duration,
    finished: bool,
    done: u64,
    total: Option<u64>,
) -> String {
    let elapsed = elapsed.as_secs_f64();
    match (finished, total) {
        (true, _) => format!("{name}: done, {done} in {elapsed:.1}s"),
        (false, Some(total)) if done > 0 => format!(
            "{name}: {done}/{total} after {elapsed:.0}s, {}, about {:.0}s left",
            per_second(done as f64 / elapsed),
            (total.saturating_sub(done)) as f64 * elapsed / done as f64
        ),
        (false, _) => format!("{name}: {done} after {elapsed:.0}s"),
    }
}

/// The `{rate}` of a bar, as [`per_second`] says it (indicatif's `{per_sec}` prints four
/// decimals: "5,402.1234/s").
fn rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = w.write_str(&per_second(state.per_sec()));
}

/// A rate for people: whole units per second from 100 up, one decimal from 10, two from 1,
/// and below one a second the time a unit takes ("59s each", not "0.02/s": a slow stage's
/// units are epochs of minutes). A rate of exactly 0 (nothing done yet) prints "0/s".
fn per_second(r: f64) -> String {
    if r >= 100.0 || r == 0.0 {
        format!("{r:.0}/s")
    } else if r >= 10.0 {
        format!("{r:.1}/s")
    } else if r >= 1.0 {
        format!("{r:.2}/s")
    } else if r > 0.1 {
        format!("{:.1}s each", 1.0 / r)
    } else {
        format!("{:.0}s each", 1.0 / r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_logged_after_ten_seconds_then_every_thirty_and_when_it_ends() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // A short stage stays silent, even when it ends.
        assert!(!is_due(start, start, at(9), false));
        assert!(!is_due(start, start, at(9), true));
        // The first line at 10 s.
        assert!(is_due(start, start, at(10), false));
        // Logged at 10 s: the next one 30 s later, not before.
        assert!(!is_due(start, at(10), at(39), false));
        assert!(is_due(start, at(10), at(40), false));
        // The end of a stage that was logged is logged at once.
        assert!(is_due(start, at(10), at(11), true));
    }

    /// Bars that log (as on a batch job's stderr), whether or not this stderr is a terminal.
    fn logging_bars() -> Bars {
        Bars {
            quiet: false,
            bar: Mutex::new(None),
            log: Some(Mutex::new(None)),
        }
    }

    /// Moves the current stage's start `by` into the past, as if it had not been logged yet.
    fn backdate(bars: &Bars, by: Duration) {
        let mut state = bars.log.as_ref().unwrap().lock().unwrap();
        let (_, start, last) = state.as_mut().expect("a stage");
        *start = start.checked_sub(by).expect("a clock that far back");
        *last = *start;
    }

    #[test]
    fn a_stage_logs_its_position_once_due_and_its_end() {
        use sprig::build::Progress;
        let bars = logging_bars();
        // No stage yet: nothing to log.
        assert_eq!(bars.due_line(false), None);
        bars.stage("graph", Some(10), "texts");
        bars.advance(3);
        bars.advance(2);
        // Just started: not due.
        assert_eq!(bars.due_line(false), None);
        backdate(&bars, Duration::from_secs(20));
        // Due, with the position the advances reached (the times, which depend on the clock,
        // are `log_line`'s to test).
        let line = bars.due_line(false).expect("due after 20 s");
        assert!(line.starts_with("graph: 5/10 after "), "{line}");
        assert!(line.ends_with("s left"), "{line}");
        // Logged just now: the next line is 30 s away.
        assert_eq!(bars.due_line(false), None);
        bars.set_position(7);
        backdate(&bars, Duration::from_secs(20));
        let line = bars.due_line(false).expect("due again");
        assert!(line.starts_with("graph: 7/10 after "), "{line}");
        // At its end a stage that ran that long is due a line at once (`finish_stage` writes
        // it, to this test's stderr too), and then it is forgotten.
        backdate(&bars, Duration::from_secs(20));
        let line = bars.due_line(true).expect("the end");
        assert!(line.starts_with("graph: done, 7 in "), "{line}");
        bars.finish_stage();
        assert_eq!(bars.due_line(true), None);
    }

    #[test]
    fn a_log_line_says_what_is_done_at_what_rate_and_what_is_left() {
        let s = Duration::from_secs;
        assert_eq!(
            log_line("graph", s(20), false, 50, Some(200)),
            "graph: 50/200 after 20s, 2.50/s, about 60s left"
        );
        // Nothing done yet: no rate, no time left to divide by.
        assert_eq!(
            log_line("graph", s(20), false, 0, Some(200)),
            "graph: 0 after 20s"
        );
        // A stage of unknown length.
        assert_eq!(log_line("read", s(31), false, 7, None), "read: 7 after 31s");
        assert_eq!(
            log_line("train", Duration::from_millis(12_340), true, 42, Some(60)),
            "train: done, 42 in 12.3s"
        );
        // More done than announced (a total that was an estimate): nothing left, not an
        // overflow.
        assert_eq!(
            log_line("graph", s(10), false, 300, Some(200)),
            "graph: 300/200 after 10s, 30.0/s, about 0s left"
        );
    }

    #[test]
    fn a_rate_never_rounds_to_zero() {
        assert_eq!(per_second(5402.1234), "5402/s");
        assert_eq!(per_second(12.34), "12.3/s");
        assert_eq!(per_second(1.5), "1.50/s");
        assert_eq!(per_second(0.0), "0/s");
        assert_eq!(per_second(0.4), "2.5s each");
        // Ten seconds a unit and longer: whole seconds.
        assert_eq!(per_second(0.1), "10s each");
        // One epoch of a slow stage in 59 s: said as such, not as "0.02/s" or "0/s".
        assert_eq!(per_second(1.0 / 59.0), "59s each");
        assert_eq!(per_second(1.0 / 700.0), "700s each");
    }
}
