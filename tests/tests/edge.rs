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

// ---------------------------------------------------------------------------------
// Finding 6: plain-text Discord URLs off loopback stop the daemon before it serves.

/// Runs `keygated serve` with a Discord token and this extra environment (and config
/// file, when given); returns its output. Every refused URL here points at an address
/// the rule calls "not loopback" but that the kernel keeps on this machine (`0.0.0.0`,
/// `[::]`), so even a regression would send nothing off it.
fn refused_start(env: &[(&str, &str)], file: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let mut cmd = std::process::Command::new(keygate_tests::bin("keygated"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_CONFIG_HOME", root.join("c"))
        .env("XDG_DATA_HOME", root.join("d"))
        .env("XDG_STATE_HOME", root.join("s"))
        .env("XDG_RUNTIME_DIR", root.join("r"))
        .env("KEYGATE_SECRET_STORE", "memory");
    if let Some(text) = file {
        let path = root.join("keygated.toml");
        std::fs::write(&path, text).expect("config file");
        cmd.arg("--config").arg(&path);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run keygated");
    assert!(!root.join("r/keygate/keygated.sock").exists(), "it served");
    assert!(!root.join("s/keygate/audit.jsonl").exists(), "it started");
    drop(dir);
    out
}

fn assert_refused(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err}");
    assert!(err.contains("in clear"), "{err}");
    assert!(!err.contains("sekrit-bot-token"), "the token: {err}");
}

#[test]
fn plaintext_discord_urls_off_loopback_are_refused_at_start() {
    let discord = [
        ("KEYGATE_DISCORD_TOKEN", "sekrit-bot-token"),
        ("KEYGATE_DISCORD_CHANNEL_ID", "123456789012345678"),
    ];
    // A closed loopback port for the other URL: if the check ever let one through,
    // the daemon would still talk to nothing but this machine.
    let out = refused_start(
        &[
            discord[0],
            discord[1],
            ("KEYGATE_DISCORD_API_URL", "http://0.0.0.0:9"),
            ("KEYGATE_DISCORD_GATEWAY_URL", "ws://127.0.0.1:9"),
        ],
        None,
    );
    assert_refused(
        &out,
        "KEYGATE_DISCORD_API_URL: refusing plain http:// to 0.0.0.0",
    );
    let out = refused_start(
        &[
            discord[0],
            discord[1],
            ("KEYGATE_DISCORD_API_URL", "http://127.0.0.1:9"),
            ("KEYGATE_DISCORD_GATEWAY_URL", "ws://[::]:9"),
        ],
        None,
    );
    assert_refused(
        &out,
        "KEYGATE_DISCORD_GATEWAY_URL: refusing plain ws:// to ::",
    );
    // The config file's form gets the same check.
    let file = "[discord]\ntoken = \"sekrit-bot-token\"\nchannel_id = 123456789012345678\n\
                api_url = \"http://0.0.0.0:9\"\ngateway_url = \"ws://127.0.0.1:9\"\n";
    let out = refused_start(&[], Some(file));
    assert_refused(&out, "[discord] api_url: refusing plain http:// to 0.0.0.0");
    let file = "[discord]\ntoken = \"sekrit-bot-token\"\nchannel_id = 123456789012345678\n\
                api_url = \"http://127.0.0.1:9\"\ngateway_url = \"ws://0.0.0.0:9\"\n";
    let out = refused_start(&[], Some(file));
    assert_refused(
        &out,
        "[discord] gateway_url: refusing plain ws:// to 0.0.0.0",
    );
    // The environment wins over the file, and is checked as such.
    let out = refused_start(
        &[("KEYGATE_DISCORD_API_URL", "http://0.0.0.0:9")],
        Some(
            "[discord]\ntoken = \"sekrit-bot-token\"\nchannel_id = 1\napi_url = \"http://127.0.0.1:9\"\n",
        ),
    );
    assert_refused(&out, "KEYGATE_DISCORD_API_URL");
}

// ---------------------------------------------------------------------------------
// Finding 10: valid requests with long names are posted to Discord and can be approved.

mod discord {
    use std::time::Duration;

    use keygate_bot::sim::{PressSpec, SimConfig, SimMessage, Simulator};
    use keygate_tests::{Daemon, POLICY, finish, poll};

    const OPS: u64 = 111_111_111_111_111_111;
    const WAIT: Duration = Duration::from_secs(10);

    struct World {
        rt: tokio::runtime::Runtime,
        sim: Simulator,
        d: Daemon,
    }

    impl World {
        fn new() -> Self {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let sim = rt
                .block_on(Simulator::start(SimConfig::default()))
                .expect("simulator");
            let c = sim.config().clone();
            let d = Daemon::start_with(
                POLICY,
                &[
                    ("KEYGATE_DISCORD_TOKEN", &c.bot_token),
                    ("KEYGATE_DISCORD_CHANNEL_ID", &c.channel_id.to_string()),
                    ("KEYGATE_DISCORD_GUILD_ID", &c.guild_id.to_string()),
                    ("KEYGATE_DISCORD_API_URL", &sim.rest_url()),
                    ("KEYGATE_DISCORD_GATEWAY_URL", &sim.gateway_url()),
                ],
            );
            assert!(rt.block_on(sim.wait_connected(WAIT)), "never connected");
            Self { rt, sim, d }
        }

        fn posted(&self, id: &str) -> SimMessage {
            self.rt
                .block_on(self.sim.wait_for_message(|m| m.text().contains(id), WAIT))
                .expect("the request was posted")
        }

        /// Presses the green Approve as an approver; returns the callback's kind.
        fn approve(&self, msg: &SimMessage) -> u8 {
            let custom_id = msg
                .live_buttons()
                .into_iter()
                .find(|b| b.style == 3)
                .and_then(|b| b.custom_id)
                .expect("an Approve button");
            let spec = PressSpec {
                custom_id,
                message_id: msg.id,
                username: "ops".into(),
                ..PressSpec::new(0, "", OPS)
            };
            let h = self.sim.press(&spec).expect("press dispatched");
            self.rt
                .block_on(h.response(WAIT))
                .expect("the bot answered")
                .kind
        }
    }

    /// A valid 128-character name that is all `_` after its prefix: escaped, it is
    /// twice as long, which used to push the embed title past Discord's 256.
    fn long_name(i: usize) -> String {
        format!("github/a{}{i:02}", "_".repeat(118))
    }

    #[test]
    fn a_long_name_full_of_underscores_is_posted_and_approved() {
        let w = World::new();
        let name = long_name(0);
        assert_eq!(name.len(), 128);
        w.d.secret(&name, "v-long-name");
        let agent = w.d.agent("ci-edge");
        let child =
            w.d.keygate_as(
                &agent,
                &["get", &name, "--reason", "__init__ of _the_ thing"],
            )
            .spawn();
        let id = w.d.pending_request();
        let msg = w.posted(&id);
        assert!(msg.text().contains(&name), "{}", msg.text());
        assert_eq!(w.approve(&msg), 7, "UpdateMessage");
        let r = finish(child);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(r.stdout.trim(), "v-long-name");
    }

    #[test]
    fn a_maximal_request_is_posted_and_approved() {
        let w = World::new();
        let agent = w.d.agent("ci-edge");
        // 32 long names, a 1000-character reason of markdown and mentions, a long
        // command and host: all within what the gateway accepts.
        let secrets: Vec<String> = (0..32).map(long_name).collect();
        let body = serde_json::json!({
            "secrets": secrets,
            "reason": "_*@<`|".repeat(200).chars().take(1000).collect::<String>(),
            "command": vec!["_".repeat(4000); 10],
            "host": "_".repeat(255),
        });
        let (status, text) =
            w.d.http("POST", "/v1/requests", &agent, body.to_string().as_bytes());
        assert_eq!(status, 201, "{text}");
        let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let msg = w.posted(&id);
        assert!(msg.text().contains(&secrets[0]), "{}", msg.text());
        assert!(
            msg.text()
                .contains("more (`keygate requests` lists them all)")
        );
        assert_eq!(w.approve(&msg), 7, "UpdateMessage");
        poll(WAIT, "the request approved", || {
            w.d.requests()
                .iter()
                .any(|r| r["id"] == id.as_str() && r["status"] == "approved")
                .then_some(())
        });
        let after = w.sim.message(msg.id).unwrap();
        assert!(after.text().contains("Approved by"), "{}", after.text());
        assert!(after.live_buttons().is_empty());
    }
}
