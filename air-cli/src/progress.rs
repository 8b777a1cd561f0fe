//! Progress bars on stderr, drawn only when stderr is a terminal (quiet in tests, pipes and
//! logs).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting rows, with rows/s and an ETA when the total is known.
#[derive(Debug)]
pub(crate) struct Bar(Option<ProgressBar>);

impl Bar {
    pub(crate) fn rows(label: &str, total: Option<usize>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let (bar, template) = match total {
            Some(n) => (
                ProgressBar::new(n as u64),
                "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows \
                 {per_sec} ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner} {prefix} [{elapsed_precise}] {human_pos} rows {per_sec}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_owned());
        Self(Some(bar))
    }

    pub(crate) fn add(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(n as u64);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish();
        }
    }

    pub(crate) fn abandon(&self) {
        if let Some(bar) = &self.0 {
            bar.abandon();
        }
    }
}
