//! Progress bars on stderr (indicatif), hidden when stderr is not a terminal or `--quiet`.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Implements the library's progress callbacks with one bar per stage.
pub(crate) struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            f(bar);
        }
    }

    /// Prints a line on stderr unless quiet, without tearing a live bar.
    pub(crate) fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        let guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }
}

impl sprig::build::Progress for Bars {
    fn stage(&self, name: &str, total: Option<u64>, unit: &str) {
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>10}} {{spinner}} {{pos}} {unit} {{per_sec}} {{elapsed}}"
                ))
                .expect("valid template"),
            ),
        };
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, n: u64) {
        self.with(|b| b.inc(n));
    }

    fn set_position(&self, n: u64) {
        self.with(|b| b.set_position(n));
    }

    fn finish_stage(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}
