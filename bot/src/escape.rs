//! Making requester text inert before it reaches Discord: markdown, mentions and
//! newlines are escaped or folded, and everything is cut to a length, so a reason can
//! neither ping @everyone, nor fake a field, nor hide what it asks for.
//!
//! The length is what Discord counts: characters of the *escaped* text, the cut mark
//! included. Each input character becomes one unit (`_` → `\_`, `@` → `@` + a zero-width
//! space) and a cut falls between units, never inside one, so a cut can never leave a
//! dangling backslash that would escape the mark or the text after it.

/// The cut mark.
pub const MARK: char = '…';

/// Appends what `c` becomes; `first` is true at the start of the text.
fn push_unit(out: &mut String, c: char, first: bool) {
    match c {
        '\n' | '\r' | '\t' => out.push(' '),
        // Inline markdown and link syntax, anywhere.
        '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' => {
            out.push('\\');
            out.push(c);
        }
        // Headings, quotes and lists only mean something at the start (newlines
        // are folded above, so the start of the text is the only line start).
        '#' | '>' | '-' if first => {
            out.push('\\');
            out.push(c);
        }
        // `@everyone`, `@here`, `<@123>`: a zero-width space breaks every mention.
        '@' => out.push_str("@\u{200B}"),
        '<' => out.push_str("<\u{200B}"),
        c if c.is_control() => out.push('\u{FFFD}'),
        // Zero-width and direction-changing characters could hide or reorder text.
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
            out.push('\u{FFFD}');
        }
        c => out.push(c),
    }
}

/// Escapes `text` for Discord and cuts it to at most `max` characters (counted after
/// escaping, [`MARK`] included). Empty text becomes `(none given)`.
pub fn inert(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut unit = String::with_capacity(8);
    let mut count = 0;
    // Where the text would be cut: after the last unit that leaves room for the mark.
    let mut cut = 0;
    for (i, c) in text.chars().enumerate() {
        unit.clear();
        push_unit(&mut unit, c, i == 0);
        let n = unit.chars().count();
        if count + n > max {
            out.truncate(cut);
            out.push(MARK);
            break;
        }
        out.push_str(&unit);
        count += n;
        if count < max {
            cut = out.len();
        }
    }
    if out.trim().is_empty() {
        "(none given)".into()
    } else {
        out
    }
}

/// Cuts text that is already safe (made by keygate, or made of [`inert`] pieces) to at
/// most `max` characters, [`MARK`] included, at a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    // Never end on a lone backslash: it would escape the mark.
    while out.ends_with('\\') {
        out.pop();
    }
    out.push(MARK);
    out
}

#[cfg(test)]
mod tests {
    use super::{cut, inert};

    #[test]
    fn mentions_and_markdown_are_inert() {
        let s = inert("@everyone **hi** <@123> [x](http://e)\nAgent: root", 200);
        assert!(!s.contains("@everyone"));
        assert!(!s.contains("<@"));
        assert!(!s.contains("**"));
        assert!(!s.contains('\n'));
        assert!(s.contains("\\*\\*hi\\*\\*"));
    }

    #[test]
    fn cut_and_empty() {
        assert_eq!(inert(&"a".repeat(10), 5), "aaaa…");
        assert_eq!(inert(&"a".repeat(5), 5), "aaaaa");
        assert_eq!(inert("  ", 4), "(none given)");
    }

    #[test]
    fn the_limit_counts_escapes_and_never_splits_one() {
        for len in 0..40 {
            for max in 1..30 {
                for text in ["_".repeat(len), "a_".repeat(len), "@<".repeat(len)] {
                    let s = inert(&text, max);
                    if s == "(none given)" {
                        continue;
                    }
                    assert!(s.chars().count() <= max, "{text:?} {max}: {s:?}");
                    let body = s.strip_suffix('…').unwrap_or(&s);
                    // Every backslash escapes the character right after it.
                    let mut chars = body.chars();
                    while let Some(c) = chars.next() {
                        if c == '\\' {
                            assert!(chars.next().is_some(), "dangling escape: {s:?}");
                        }
                    }
                    assert!(!body.ends_with('@') && !body.ends_with('<'), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn cutting_safe_text() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
        assert_eq!(cut("a\\_b", 3), "a…");
        assert_eq!(cut("ééééé", 3), "éé…");
    }
}
