//! Bad input gets a clear one-line error and changes nothing.

use keygate_tests::Daemon;

fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).expect("error JSON")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn malformed_bodies_are_refused_and_nothing_is_filed() {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    let cases: &[(&[u8], u16)] = &[
        (b"{not json", 400),
        (br#"{"secrets": ["github/token"], "surprise": 1}"#, 400),
        (br#"{"secrets": ["../etc/passwd"]}"#, 400),
        (br#"{"secrets": ["github//token"]}"#, 400),
        (br#"{"secrets": ["github/token"], "ttl": "soon"}"#, 400),
        (br#"{"secrets": []}"#, 400),
        (b"\xff\xfe", 400),
    ];
    for (body, status) in cases {
        let (got, text) = d.http("POST", "/v1/requests", &t, body);
        assert_eq!(got, *status, "{}: {text}", String::from_utf8_lossy(body));
        assert!(!error_code(&text).is_empty(), "{text}");
        assert!(!text.trim_end().contains('\n'), "one line: {text}");
    }
    let big = format!(
        r#"{{"secrets": ["github/token"], "reason": "{}"}}"#,
        "a".repeat(70_000)
    );
    let (got, text) = d.http("POST", "/v1/requests", &t, big.as_bytes());
    assert_eq!(got, 413, "{text}");
    assert!(d.requests().is_empty(), "nothing was filed");
}

#[test]
fn bad_names_and_durations_are_refused_by_the_cli() {
    let d = Daemon::start();
    let t = d.agent("ci-one");
    for args in [
        &["get", "../x"][..],
        &["get", "UPPER"],
        &["get", "a//b"],
        &["get", "ok/name", "--ttl", "forever"],
        &["agents", "add", "bad/name"],
    ] {
        let r = d.keygate_as(&t, args).run();
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    let (status, _) = d.http("GET", "/v1/secrets/..%2Fx", &t, b"");
    assert_eq!(status, 400);
    let (status, _) = d.http("GET", "/v1/secrets/a%00b", &t, b"");
    assert_eq!(status, 400);
    let (status, _) = d.http("GET", "/v1/requests/req_nope?wait=10s", &t, b"");
    assert_eq!(status, 400);
}

#[test]
fn secrets_set_reads_stdin_and_lists_no_values() {
    let d = Daemon::start();
    d.keygate(&["secrets", "set", "api/key"])
        .stdin("s3cr3t-value\r\n")
        .ok();
    let list = d.keygate(&["secrets", "list", "--json"]).ok();
    let items: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(items[0]["name"], "api/key");
    assert_eq!(items[0]["size"], 12, "one trailing CRLF dropped");
    assert!(!list.stdout.contains("s3cr3t"));
    let empty = d.keygate(&["secrets", "set", "api/empty"]).stdin("").run();
    assert_eq!(empty.code, 1);
}
