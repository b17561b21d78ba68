//! The red-team findings of issue 10, each reproduced against the real binaries and
//! shown not to get through: idle connections that starve everyone (finding 3),
//! plaintext Discord URLs off loopback (finding 6), long names that Discord refused
//! (finding 10), and serde error messages that echoed a secret (finding 11).

use keygate_tests::Daemon;

// ---------------------------------------------------------------------------------
// Finding 11: error messages never quote the body.

/// A secret-looking marker that must never come back from the daemon.
const MARKER: &str = "MARKER-hunter2-c0ffee";

#[test]
fn json_errors_never_echo_the_body() {
    let d = Daemon::start();
    let agent = d.agent("ci-edge");
    let op = d.operator_token();
    let m = MARKER;
    let hostile = [
        format!(r#"{{"secrets": "a\"{m}\"b"}}"#),
        format!(r#"{{"secrets": "\\\"{m}"}}"#),
        format!(r#"{{"secrets": "\u0022{m}\u0022"}}"#),
        format!(r#"{{"secrets": ["github/token"], "{m}": 1}}"#),
        format!(r#"{{"secrets": ["github/token"], "reason": ["{m}"]}}"#),
        format!(r#"{{"secrets": ["{m}"]}}"#),
        format!(r#"{{"secrets": ["github/token"], "ttl": ["{m}"]}}"#),
        format!(r#"{{"secrets": "{m}"#),
    ];
    let mut bodies = Vec::new();
    for body in &hostile {
        bodies.push(d.http("POST", "/v1/requests", &agent, body.as_bytes()));
    }
    for (route, method, body) in [
        (
            "/v1/secrets/github%2Ftoken",
            "PUT",
            format!(r#"{{"value": 7, "x": "a\"{m}"}}"#),
        ),
        (
            "/v1/secrets/github%2Ftoken",
            "PUT",
            format!(r#"{{"value": "\"{m}", "{m}": 1}}"#),
        ),
        (
            "/v1/store/unlock",
            "POST",
            format!(r#"{{"passphrase": ["a\"{m}"]}}"#),
        ),
        (
            "/v1/store/unlock",
            "POST",
            format!(r#"{{"passphrase": "x", "{m}\"": true}}"#),
        ),
        ("/v1/agents", "POST", format!(r#"{{"name": "\"{m}"}}"#)),
        (
            "/v1/grants/revoke",
            "POST",
            format!(r#"{{"all": "\\\"{m}"}}"#),
        ),
    ] {
        bodies.push(d.http(method, route, &op, body.as_bytes()));
    }
    for (status, body) in &bodies {
        assert_eq!(*status, 400, "{body}");
        assert!(body.contains("bad JSON"), "{body}");
        assert!(!body.contains("hunter2"), "echoed: {body}");
    }
    assert!(d.requests().is_empty(), "nothing was filed");
    assert!(!d.log().contains("hunter2"), "in the daemon's log");
    assert!(!d.audit().contains("hunter2"), "in the audit log");
}
