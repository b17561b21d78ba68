//! Output for people (aligned tables) and for programs (`--json`), never mixed: data on
//! stdout, talk on stderr.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use keygate_proto::Timestamp;
use serde::Serialize;

/// Prints a JSON array (or object) on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("keygate: cannot encode JSON: {e}"),
    }
}

/// Prints rows under a header, columns aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let _ = write!(s, "{cell:<w$}  ");
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `2026-01-01T10:00:00Z` → `in 14m` / `3m ago`, for people.
pub fn relative(t: Timestamp) -> String {
    let now = SystemTime::now();
    match t.system_time().duration_since(now) {
        Ok(d) => format!("in {}", short(d)),
        Err(e) => format!("{} ago", short(e.duration())),
    }
}

/// A duration rounded for people: `4m 12s`, `2h 5m`.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Text someone else wrote (a denial's reason), made safe to print on one line: control
/// characters (newlines, escape sequences) and the invisible marks that reorder text
/// are shown as escapes instead of acting on the terminal.
pub fn harmless(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::harmless;

    #[test]
    fn harmless_text_keeps_one_line_and_no_escape_sequences() {
        assert_eq!(harmless("not today"), "not today");
        assert_eq!(harmless("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(harmless("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(harmless("ok \u{202e}txt"), "ok \\u{202e}txt");
        assert_eq!(harmless("né ✓"), "né ✓");
    }
}
