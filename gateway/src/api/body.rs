//! Reading what a client sent: bodies capped at 64 KiB and decoded strictly (unknown
//! fields refused), paths and query strings decoded only as far as the API needs.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// How long a body may take to arrive once its headers have.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and decodes a JSON body.
pub async fn json<T: DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    // A body that trickles in would hold its connection (busy, so never idle) forever.
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                keygate_proto::api::ErrorCode::Timeout,
                format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
            )
        })?;
    let bytes = collected
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    keygate_proto::api::ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {} KiB", MAX_BODY / 1024),
                )
            } else {
                ApiError::bad_request("the body could not be read")
            }
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Err(ApiError::bad_request("expected a JSON body"));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(json_error(&e)))
}

/// What went wrong with a JSON body, said without a byte of what the client sent.
///
/// serde's messages quote the input (`invalid type: string "…"`, ``unknown field `…` ``,
/// custom messages from a field's own parser), and a body may carry a secret value or a
/// passphrase. So the message is built here from the error's category and position, and
/// a fixed phrase for the kind of mistake; serde's own text never goes back. The only
/// words taken from it are field names serde reports for a missing or duplicate field,
/// which come from our types (`&'static str`), never from the body, and are checked to
/// look like one.
pub fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = if e.line() == 0 {
        String::new()
    } else {
        format!(" at line {} column {}", e.line(), e.column())
    };
    let what = match e.classify() {
        Category::Io => "the body could not be read".to_owned(),
        Category::Eof => "the body ends in the middle of a value".to_owned(),
        Category::Syntax => "this is not valid JSON".to_owned(),
        Category::Data => data_error(&e.to_string()),
    };
    format!("bad JSON: {what}{at}")
}

/// A fixed phrase for a serde data error. Each of serde's templates starts with a fixed
/// prefix (the input, if any, comes after it), so the prefix tells the kind of mistake.
fn data_error(message: &str) -> String {
    let schema_field = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .filter(|f| {
                !f.is_empty()
                    && f.len() <= 32
                    && f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .map(str::to_owned)
    };
    if let Some(f) = schema_field("missing field `") {
        return format!("the field `{f}` is missing");
    }
    if let Some(f) = schema_field("duplicate field `") {
        return format!("the field `{f}` appears twice");
    }
    let phrase = if message.starts_with("unknown field") {
        "a field this route does not take (unknown fields are refused)"
    } else if message.starts_with("unknown variant") {
        "a value that is not one of the allowed choices"
    } else if message.starts_with("invalid type") {
        "a value of the wrong type"
    } else if message.starts_with("invalid length") {
        "a list or object of the wrong length"
    } else if message.starts_with("secret name") {
        "a bad secret name (1-128 characters of a-z 0-9 . _ - /, starting with a letter or digit, no // or ..)"
    } else if message.starts_with("agent name") {
        "a bad agent name (1-64 characters of a-z 0-9 . _ -, starting with a letter or digit)"
    } else {
        "a value that is not valid here"
    };
    phrase.to_owned()
}

/// A 200 (or `status`) JSON response.
pub fn reply<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    // Most answers are small: one allocation.
    let mut body = Vec::with_capacity(256);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => json_reply(status, Bytes::from(body)),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            keygate_proto::api::ErrorCode::Internal,
            format!("cannot encode the answer: {e}"),
        )
        .into_response(),
    }
}

/// A response carrying JSON already encoded (the grant hit's answer).
pub fn json_reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    // The headers as static values rather than through the checking builder.
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Decodes a path segment: `%2F` (either case) becomes `/`; any other escape, or a
/// character outside printable ASCII, is refused rather than guessed at.
pub fn path_segment(raw: &str) -> Result<String, ApiError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or("");
        if esc.eq_ignore_ascii_case("%2F") {
            out.push('/');
            rest = &rest[i + 3..];
        } else {
            return Err(ApiError::bad_request(
                "bad name in path: only %2F may be escaped",
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Decodes a query string value (`+` and `%XX`).
fn query_value(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = it.next()?;
                let lo = it.next()?;
                let hex = [hi, lo];
                let s = std::str::from_utf8(&hex).ok()?;
                bytes.push(u8::from_str_radix(s, 16).ok()?);
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

/// The value of `key` in a query string.
pub fn query(q: Option<&str>, key: &str) -> Result<Option<String>, ApiError> {
    let Some(q) = q else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return query_value(v)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("bad `{key}` in the query string")));
        }
    }
    Ok(None)
}

/// A duration from the query string, refused when malformed.
pub fn query_duration(q: Option<&str>, key: &str) -> Result<Option<Duration>, ApiError> {
    query(q, key)?
        .map(|v| {
            // `wait=0s` means "answer at once", which a duration elsewhere may not be.
            if v.trim() == "0" || humantime::parse_duration(v.trim()).is_ok_and(|d| d.is_zero()) {
                return Ok(Duration::ZERO);
            }
            keygate_proto::duration::parse(&v)
                .map_err(|e| ApiError::bad_request(format!("`{key}`: {e}")))
        })
        .transpose()
}

/// The longest single long-poll; clients poll again to wait longer.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// A long-poll's `wait`: absent or zero answers at once, anything over [`MAX_WAIT`] is cut
/// to it, a bad duration is a 400.
pub fn long_poll_wait(q: Option<&str>) -> Result<Duration, ApiError> {
    Ok(query_duration(q, "wait")?.unwrap_or_default().min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::json_error;
    use keygate_proto::api::FileRequest;

    const MARK: &str = "hunter2";

    #[test]
    fn a_long_poll_waits_at_most_a_minute() {
        use super::{MAX_WAIT, long_poll_wait};
        use std::time::Duration;
        let wait = |q| long_poll_wait(Some(q)).map_err(|_| ());
        assert_eq!(MAX_WAIT, Duration::from_secs(60));
        assert_eq!(long_poll_wait(None).ok(), Some(Duration::ZERO));
        assert_eq!(wait("wait=0s"), Ok(Duration::ZERO));
        assert_eq!(wait("wait=30s"), Ok(Duration::from_secs(30)));
        assert_eq!(wait("wait=60s"), Ok(MAX_WAIT));
        assert_eq!(wait("wait=1h"), Ok(MAX_WAIT));
        assert_eq!(wait("since=3&wait=61s"), Ok(MAX_WAIT));
        assert!(wait("wait=soon").is_err());
    }

    fn message_for<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        let e = serde_json::from_str::<T>(body).expect_err(body);
        json_error(&e)
    }

    #[test]
    fn no_part_of_the_body_comes_back() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Kind {
            Ask,
            Allow,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct WithEnum {
            kind: Kind,
            count: u64,
        }
        let cases = [
            // The redaction this replaces stopped at the first `\"` and echoed the rest.
            r#"{"secrets": "a\"hunter2\"b"}"#,
            r#"{"secrets": "\\\"hunter2"}"#,
            r#"{"secrets": "x\" hunter2 \""}"#,
            r#"{"secrets": "\u0022hunter2\u0022"}"#,
            r#"{"secrets": "\u0068unter2"}"#,
            r#"{"secrets": ["github/token"], "hunter2": 1}"#,
            r#"{"secrets": ["github/token"], "a\"hunter2": 1}"#,
            r#"{"secrets": ["Hunter2"]}"#,
            r#"{"secrets": ["ok/hunter2//x"]}"#,
            r#"{"secrets": [{"hunter2": "hunter2"}]}"#,
            r#"{"secrets": ["github/token"], "reason": ["hunter2"]}"#,
            r#"{"secrets": ["github/token"], "reason": 1, "x": "hunter2"}"#,
            r#"{"secrets": "hunter2"#,
            r#"{"secrets": hunter2}"#,
        ];
        for body in cases {
            let m = message_for::<FileRequest>(body);
            assert!(!m.contains(MARK), "{body} -> {m}");
            assert!(!m.contains("unter2"), "{body} -> {m}");
            assert!(m.starts_with("bad JSON: "), "{m}");
        }
        for body in [
            r#"{"kind": "hunter2", "count": 1}"#,
            r#"{"kind": "a\"hunter2", "count": 1}"#,
            r#"{"kind": "Ask", "count": "hunter2"}"#,
            r#"{"kind": "Ask", "count": -1}"#,
            r#"{"kind": "Ask", "count": 1, "hunter2": 0}"#,
        ] {
            let m = message_for::<WithEnum>(body);
            assert!(!m.contains("unter2"), "{body} -> {m}");
        }
    }

    #[test]
    fn the_kind_of_mistake_and_where_it_is_are_still_said() {
        let m = message_for::<FileRequest>(r#"{"reason": "x"}"#);
        assert!(m.contains("the field `secrets` is missing"), "{m}");
        let m = message_for::<FileRequest>(r#"{"secrets": [], "surprise": 1}"#);
        assert!(m.contains("unknown fields are refused"), "{m}");
        assert!(m.contains("line 1 column"), "{m}");
        let m = message_for::<FileRequest>(r#"{"secrets": "x"}"#);
        assert!(m.contains("wrong type"), "{m}");
        let m = message_for::<FileRequest>(r#"{"secrets": ["A"]}"#);
        assert!(m.contains("bad secret name"), "{m}");
        let m = message_for::<FileRequest>("{not json");
        assert!(m.contains("not valid JSON at line 1 column 2"), "{m}");
        let m = message_for::<FileRequest>(r#"{"secrets": ["#);
        assert!(m.contains("ends in the middle"), "{m}");
    }
}
