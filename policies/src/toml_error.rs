//! Turning what the `toml` crate reports (syntax errors, wrong types, unknown or missing
//! keys) into a [`PolicyError`] that names the rule or table and the key.
//!
//! toml gives a message and a byte span but keeps the key path to itself, so the path is
//! found again by walking a span-preserving parse of the same text down to the innermost
//! key whose span holds the error.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{PolicyError, shown};
use crate::span::Position;

/// One step of a path into the document.
enum Step {
    Key(String),
    /// An element of an array; for `[[rule]]` tables, the rule's name if it has one.
    Index(usize, Option<String>),
}

pub(crate) fn convert(source: &str, origin: &str, err: &toml::de::Error) -> PolicyError {
    let span = err.span().unwrap_or(0..0);
    let at = Position::of_span(source, &span);
    let (document, _) = DeTable::parse_recoverable(source);
    let mut path = Vec::new();
    if !find_in_table(document.get_ref(), span.start, &mut path) {
        // Not inside any entry the parser kept (a duplicate key, a syntax error): name the
        // table the error follows, and the key if the span is one.
        path.clear();
        find_preceding(document.get_ref(), span.start, &mut path);
        if matches!(path.last(), Some(Step::Key(_))) {
            path.pop();
        }
        let text = source.get(span.clone()).unwrap_or_default();
        let is_key = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        path.push(Step::Key(if is_key {
            text.to_owned()
        } else {
            String::new()
        }));
    }

    let raw = err.message().trim();
    let message = if let Some(missing) = quoted_after(raw, "missing field ") {
        // The span is the table lacking the key: the key goes below it.
        path.push(Step::Key(missing.to_owned()));
        "required key is missing".to_owned()
    } else if let Some(unknown) = quoted_after(raw, "unknown field ") {
        if !matches!(path.last(), Some(Step::Key(k)) if k == unknown) {
            path.push(Step::Key(unknown.to_owned()));
        }
        match raw.split_once(", ") {
            Some((_, expected)) => format!("unknown key (refused, not ignored); {expected}"),
            None => "unknown key (refused, not ignored)".to_owned(),
        }
    } else {
        raw.replace(" as i128", "")
            .replace("expected i64", "expected a whole number")
            .replace("expected a sequence", "expected a list")
    };
    let (context, key) = describe(&path);
    PolicyError {
        origin: origin.to_owned(),
        line: at.line,
        column: at.column,
        context,
        key,
        message,
    }
}

/// `x` from "missing field `x`...".
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Pushes onto `path` the way to the innermost entry of `table` whose key or value holds
/// byte `pos`; returns whether one was found.
fn find_in_table(table: &DeTable<'_>, pos: usize, path: &mut Vec<Step>) -> bool {
    for (key, value) in table {
        path.push(Step::Key(key.get_ref().to_string()));
        if key.span().contains(&pos) || find_in_value(value, pos, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(value: &Spanned<DeValue<'_>>, pos: usize, path: &mut Vec<Step>) -> bool {
    match value.get_ref() {
        DeValue::Table(table) if find_in_table(table, pos, path) => return true,
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i, rule_name(item)));
                if find_in_value(item, pos, path) {
                    return true;
                }
                path.pop();
            }
        }
        _ => {}
    }
    value.span().contains(&pos)
}

/// Pushes onto `path` the way to the last entry (in file order) that starts before `pos`,
/// descending into tables and `[[rule]]`-style arrays of tables.
fn find_preceding(table: &DeTable<'_>, pos: usize, path: &mut Vec<Step>) {
    let Some((key, value)) = table
        .iter()
        .filter(|(k, _)| k.span().start <= pos)
        .max_by_key(|(k, _)| k.span().start)
    else {
        return;
    };
    path.push(Step::Key(key.get_ref().to_string()));
    match value.get_ref() {
        DeValue::Table(inner) => find_preceding(inner, pos, path),
        DeValue::Array(items) => {
            let last = items
                .iter()
                .enumerate()
                .filter(|(_, item)| item.span().start <= pos)
                .max_by_key(|(_, item)| item.span().start);
            if let Some((i, item)) = last
                && let Some(inner) = item.get_ref().as_table()
            {
                path.push(Step::Index(i, rule_name(item)));
                find_preceding(inner, pos, path);
            }
        }
        _ => {}
    }
}

fn rule_name(item: &Spanned<DeValue<'_>>) -> Option<String> {
    item.get_ref()
        .as_table()
        .and_then(|t| t.get("name"))
        .and_then(|n| n.get_ref().as_str())
        .map(str::to_owned)
}

/// The context (which rule or table) and the key a path points at.
fn describe(path: &[Step]) -> (String, String) {
    let Some(last_key) = path.iter().rposition(|s| matches!(s, Step::Key(_))) else {
        return (String::new(), String::new());
    };
    let key = match &path[last_key] {
        Step::Key(k) => k.clone(),
        Step::Index(..) => String::new(),
    };
    let context = match &path[..last_key] {
        [] => String::new(),
        [Step::Key(t), Step::Index(i, name)] if t == "rule" => match name {
            Some(name) => format!("rule {}", shown(name)),
            None => format!("rule #{}", i + 1),
        },
        [Step::Key(t)] if t == "approvers" || t == "defaults" => format!("[{t}]"),
        [Step::Key(t), Step::Key(group)] if t == "approvers" => {
            format!("approver group {}", shown(group))
        }
        steps => steps
            .iter()
            .map(|s| match s {
                Step::Key(k) => k.clone(),
                Step::Index(i, _) => format!("[{i}]"),
            })
            .collect::<Vec<_>>()
            .join("."),
    };
    (context, key)
}
