//! Making requester text inert before it reaches Discord: markdown, mentions and
//! newlines are escaped or folded, and everything is cut to a length, so a reason can
//! neither ping @everyone, nor fake a field, nor hide what it asks for.

/// Escapes `text` for a Discord embed and cuts it to `max` characters.
pub fn inert(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 2));
    for (count, c) in text.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            // Inline markdown and link syntax, anywhere.
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            // Headings, quotes and lists only mean something at the start (newlines
            // are folded above, so the start of the text is the only line start).
            '#' | '>' | '-' if count == 0 => {
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
    if out.trim().is_empty() {
        "(none given)".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::inert;

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
        assert_eq!(inert(&"a".repeat(10), 4), "aaaa…");
        assert_eq!(inert("  ", 4), "(none given)");
    }
}
