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

/// Reads and decodes a JSON body.
pub async fn json<T: DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
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
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("bad JSON: {}", without_strings(&e.to_string())))
    })
}

/// serde's messages quote the offending string (`invalid type: string "…"`); a body may
/// carry a secret value or a passphrase, so quoted strings never go back in an error.
fn without_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// A 200 (or `status`) JSON response.
pub fn reply<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode the answer: {e}"),
        )
        .into_response(),
    }
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

#[cfg(test)]
mod tests {
    use super::without_strings;

    #[test]
    fn quoted_values_never_come_back() {
        let e = serde_json::from_str::<keygate_proto::api::FileRequest>(
            r#"{"secrets": "hunter2-as-a-string"}"#,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(e.contains("hunter2"), "serde quotes it: {e}");
        assert!(!without_strings(&e).contains("hunter2"));
        let m = without_strings(r#"invalid type: string "hunter2", expected u64"#);
        assert_eq!(m, r#"invalid type: string "…", expected u64"#);
    }
}
