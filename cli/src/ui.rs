//! What people see: progress bars on stderr (only when it is a terminal and
//! not `--quiet`), and tables or one JSON document on stdout.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::args::Format;

/// Progress of one command: a bar per file in flight and a total.
pub struct Progress {
    multi: MultiProgress,
    total: ProgressBar,
    on: bool,
}

const FILE_STYLE: &str =
    "{wide_msg} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:>4}";
const TOTAL_STYLE: &str =
    "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";

impl Progress {
    pub fn new(quiet: bool, total_bytes: u64, label: &str) -> Self {
        let on = !quiet && std::io::stderr().is_terminal();
        let multi = if on {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        let total = multi.add(ProgressBar::new(total_bytes));
        if let Ok(style) = ProgressStyle::with_template(TOTAL_STYLE) {
            total.set_style(style.progress_chars("=> "));
        }
        total.set_prefix(label.to_owned());
        if on {
            total.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { multi, total, on }
    }

    /// A bar for one file (drawn only when progress is on).
    pub fn file(&self, name: &str, len: u64) -> FileBar {
        let bar = if self.on {
            let bar = self.multi.insert_before(&self.total, ProgressBar::new(len));
            if let Ok(style) = ProgressStyle::with_template(FILE_STYLE) {
                bar.set_style(style);
            }
            bar.set_message(name.to_owned());
            bar
        } else {
            ProgressBar::hidden()
        };
        FileBar {
            bar,
            total: self.total.clone(),
        }
    }

    /// Bytes the total no longer expects (a skipped or failed file).
    pub fn forget(&self, bytes: u64) {
        let len = self.total.length().unwrap_or(0);
        self.total.set_length(len.saturating_sub(bytes));
    }

    /// A line on stderr that does not tear the bars.
    pub fn note(&self, line: &str) {
        if self.on {
            self.multi.suspend(|| eprintln!("{line}"));
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[derive(Clone)]
pub struct FileBar {
    bar: ProgressBar,
    total: ProgressBar,
}

impl FileBar {
    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        self.total.inc(bytes);
    }

    /// Back to `at` bytes (a transfer restarted or resumed).
    pub fn rewind(&self, at: u64) {
        let was = self.bar.position();
        self.bar.set_position(at);
        let total = self.total.position();
        self.total
            .set_position(total.saturating_sub(was).saturating_add(at));
    }

    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}

/// Print `rows` under `headers`, columns aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - width(cell) + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line(headers.to_vec()));
    for row in rows {
        let _ = writeln!(stdout, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// One JSON document on stdout.
pub fn json(value: &Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = writeln!(stdout);
}

/// Either a table or the JSON document.
pub fn emit(format: Format, value: &Value, headers: &[&str], rows: &[Vec<String>]) {
    match format {
        Format::Json => json(value),
        Format::Table => table(headers, rows),
    }
}

/// 1536 → "1.5 KiB".
pub fn size(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

/// A JSON field as display text.
pub fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}
