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
