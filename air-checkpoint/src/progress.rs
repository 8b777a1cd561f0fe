//! Progress of long work — transfers, dataset writes, batch prediction, training runs, a
//! tuner's status table — as bars on stderr.
//!
//! A bar is drawn only when stderr is a terminal, and only once its work has lasted
//! [`SHOW_AFTER`]: tests, pipes, logs and short work stay quiet. Every bar of the process
//! shares one [`indicatif::MultiProgress`], so a tuner's table, a trial's bar and a checkpoint
//! upload stack instead of overwriting each other.

use std::{
    borrow::Cow,
    io::IsTerminal,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before its bar appears.
pub const SHOW_AFTER: Duration = Duration::from_millis(500);
/// Transfers smaller than this get no bar.
pub const MIN_TRANSFER_BYTES: u64 = 32 << 20;

/// The one multi-bar every visible bar joins.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Whether stderr is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    Yes,
    No,
}

impl Terminal {
    fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Yes
        } else {
            Self::No
        }
    }
}

/// A progress bar, or nothing (off a terminal): every method is a no-op then.
#[derive(Debug, Clone, Default)]
pub struct Progress(Option<Arc<Bar>>);

#[derive(Debug)]
struct Bar {
    bar: ProgressBar,
    created: Instant,
    shown: AtomicBool,
}

impl Progress {
    /// No bar.
    pub fn hidden() -> Self {
        Self(None)
    }

    /// Bytes moved of `total`, with throughput and ETA; none below [`MIN_TRANSFER_BYTES`].
    pub fn bytes(label: impl Into<Cow<'static, str>>, total: u64) -> Self {
        if total < MIN_TRANSFER_BYTES {
            return Self::hidden();
        }
        Self::with(
            ProgressBar::new(total),
            "{prefix} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec} ETA {eta}",
            label,
        )
    }

    /// Rows done, of `total` when known (with an ETA), with rows/s.
    pub fn rows(label: impl Into<Cow<'static, str>>, total: Option<u64>) -> Self {
        match total {
            Some(n) => Self::with(
                ProgressBar::new(n),
                "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows {per_sec} \
                 ETA {eta}",
                label,
            ),
            None => Self::with(
                ProgressBar::new_spinner(),
                "{spinner} {prefix} [{elapsed_precise}] {human_pos} rows {per_sec}",
                label,
            ),
        }
    }

    /// Iterations (epochs, boosting rounds, reports) of a run, with a message (its latest
    /// metrics).
    pub fn iterations(label: impl Into<Cow<'static, str>>) -> Self {
        Self::with(
            ProgressBar::new_spinner(),
            "{spinner} {prefix} [{elapsed_precise}] iter {pos} {msg}",
            label,
        )
    }

    /// A block of text redrawn in place (a status table): the message only.
    pub fn text() -> Self {
        Self::with(ProgressBar::new_spinner(), "{msg}", "")
    }

    fn with(bar: ProgressBar, template: &str, label: impl Into<Cow<'static, str>>) -> Self {
        Self::on(Terminal::detect(), bar, template, label)
    }

    fn on(
        terminal: Terminal,
        bar: ProgressBar,
        template: &str,
        label: impl Into<Cow<'static, str>>,
    ) -> Self {
        if terminal == Terminal::No {
            return Self::hidden();
        }
        bar.set_draw_target(ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(label);
        Self(Some(Arc::new(Bar {
            bar,
            created: Instant::now(),
            shown: AtomicBool::new(false),
        })))
    }

    /// Whether a bar is being kept (stderr is a terminal), drawn yet or not.
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = self.visible() {
            b.bar.inc(n);
        }
    }

    /// `n` units done in all.
    pub fn set_position(&self, n: u64) {
        if let Some(b) = self.visible() {
            b.bar.set_position(n);
        }
    }

    /// The text shown after the counts.
    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        if let Some(b) = self.visible() {
            b.bar.set_message(message);
        }
    }

    /// Done: a bar that was drawn stays, full.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.bar.finish();
        }
    }

    /// Stopped before the end (an error): a bar that was drawn stays where it was.
    pub fn abandon(&self) {
        if let Some(b) = &self.0 {
            b.bar.abandon();
        }
    }

    /// Finishes the bar when `outcome` is `Ok`, abandons it when `Err`; returns `outcome`.
    pub fn conclude<T, E>(&self, outcome: Result<T, E>) -> Result<T, E> {
        match &outcome {
            Ok(_) => self.finish(),
            Err(_) => self.abandon(),
        }
        outcome
    }

    /// The bar, attached to the terminal once its work has lasted [`SHOW_AFTER`].
    fn visible(&self) -> Option<&Bar> {
        let b = self.0.as_deref()?;
        if !b.shown.load(Ordering::Relaxed)
            && b.created.elapsed() >= SHOW_AFTER
            && !b.shown.swap(true, Ordering::AcqRel)
        {
            multi().add(b.bar.clone());
        }
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_transfers_and_non_terminals_get_no_bar() {
        assert!(!Progress::bytes("tiny", 10).is_active());
        let off = Progress::on(Terminal::No, ProgressBar::new(10), "{pos}", "rows");
        assert!(!off.is_active());
        // A hidden bar takes every call.
        off.inc(3);
        off.set_position(5);
        off.set_message("m");
        off.finish();
        off.abandon();
    }

    #[test]
    fn a_terminal_bar_counts_before_it_is_drawn() {
        let on = Progress::on(Terminal::Yes, ProgressBar::new(10), "{pos}", "rows");
        assert!(on.is_active());
        on.inc(3);
        on.inc(4);
        let bar = &on.0.as_ref().unwrap().bar;
        assert_eq!(bar.position(), 7);
        on.finish();
        assert!(bar.is_finished());
    }
}
