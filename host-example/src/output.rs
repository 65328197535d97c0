//! Output shared by the fnOS and CFMS commands.

use serde_json::{Value, json};

/// Report a finished change: one JSON document, or a plain line.
pub fn done(json: bool, what: &str, path: &str) {
    if json {
        println!("{}", json!({ "ok": true, what: path }));
    } else {
        println!("{what} {}", term(path));
    }
}

/// A JSON value as table text: strings bare (control characters
/// escaped, see [`term`]), `null` as `?`.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => term(s),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

/// Text from the server made safe for a terminal: control characters
/// (escape sequences that could retitle the window, move the cursor or
/// fake a line of output) and the bidirectional overrides that reorder
/// what is shown are written as escapes (`\n`, `\u{1b}`); every other
/// character, non-ASCII names included, stays as it is.
pub fn term(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(term("a\u{1b}]0;x\u{7}\nb"), "a\\u{1b}]0;x\\u{7}\\nb");
        assert_eq!(term("evil\u{202e}fdp.exe"), "evil\\u{202e}fdp.exe");
        assert_eq!(term("\u{9b}31m"), "\\u{9b}31m");
    }

    #[test]
    fn ordinary_and_non_ascii_text_is_unchanged() {
        assert_eq!(term("报告 (1).pdf"), "报告 (1).pdf");
        assert_eq!(text(&Value::String("a\tb".into())), "a\\tb");
    }
}
