//! Output shared by the fnOS and CFMS commands.

use serde_json::{Value, json};

/// Report a finished change: one JSON document, or a plain line.
pub fn done(json: bool, what: &str, path: &str) {
    if json {
        println!("{}", json!({ "ok": true, what: path }));
    } else {
        println!("{what} {path}");
    }
}

/// A JSON value as table text: strings bare, `null` as `?`.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

/// Bytes in a short human form (binary units).
pub fn human(bytes: Option<u64>) -> String {
    let Some(bytes) = bytes else {
        return "?".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// A one-line progress bar on standard error, shown only on a terminal
/// (and never with `--json`).
pub struct Progress {
    shown: bool,
    label: &'static str,
    last_percent: Option<u64>,
}

impl Progress {
    pub fn new(json: bool, label: &'static str) -> Self {
        use std::io::IsTerminal;
        Progress {
            shown: !json && std::io::stderr().is_terminal(),
            label,
            last_percent: None,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if !self.shown {
            return;
        }
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        if self.last_percent == Some(percent) {
            return;
        }
        self.last_percent = Some(percent);
        let filled = (percent / 5) as usize;
        eprint!(
            "\r{} [{}{}] {percent:>3} % {}",
            self.label,
            "#".repeat(filled),
            " ".repeat(20 - filled),
            human(Some(done))
        );
    }

    pub fn finish(&self) {
        if self.shown && self.last_percent.is_some() {
            eprintln!();
        }
    }
}
