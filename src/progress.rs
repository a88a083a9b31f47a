//! Progress bars on a terminal, nothing otherwise (schedulers read the JSON logs).

use std::io::IsTerminal;

use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// One bar per source; sources run at the same time, so their bars share the terminal.
pub fn bar(len: u64, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    let pb = MULTI
        .get_or_init(MultiProgress::new)
        .add(ProgressBar::new(len));
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} windows {elapsed}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(label.to_string());
    pb
}
