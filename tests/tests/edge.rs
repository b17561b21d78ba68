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

    use keygate_discord_sim::{PressSpec, SimConfig, SimMessage, Simulator};
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
            let d = Daemon::start_with_discord(POLICY, &sim, &[]);
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
        // Only the live grant's controls are left.
        let labels: Vec<_> = after
            .live_buttons()
            .into_iter()
            .map(|b| b.label.unwrap_or_default())
            .collect();
        assert_eq!(labels, ["Revoke", "Extend"], "{labels:?}");
    }
}

// ---------------------------------------------------------------------------------
// Finding 3: idle connections cannot starve anyone, on either listener.

mod connections {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use keygate_tests::{Daemon, POLICY, poll};

    const CAP: usize = 16;
    const FLOOD: usize = 40;
    const IDLE: Duration = Duration::from_secs(2);

    /// A daemon with small caps and a short idle timeout (2 s: the tests that watch
    /// connections being cut), and a TLS listener; returns it and the listener's
    /// `host:port`.
    fn daemon() -> (Daemon, String) {
        daemon_idle("2s")
    }

    /// The same caps, but an idle timeout no test outlasts: a flood stays in place for as
    /// long as a test looks at it, so whatever is served meanwhile was served *behind*
    /// the flood, not after it idled out.
    fn patient_daemon() -> (Daemon, String) {
        daemon_idle("10m")
    }

    fn daemon_idle(idle: &str) -> (Daemon, String) {
        let d = Daemon::start_with(
            POLICY,
            &[
                ("KEYGATE_LIMITS_MAX_CONNECTIONS", "16"),
                ("KEYGATE_LIMITS_OPERATOR_RESERVE", "4"),
                ("KEYGATE_LIMITS_IDLE_TIMEOUT", idle),
                ("KEYGATE_SERVER_LISTEN", "127.0.0.1:0"),
            ],
        );
        let addr = poll(Duration::from_secs(10), "the TLS listener", || {
            d.log()
                .lines()
                .find_map(|l| l.split("serving TLS on https://").nth(1))
                .and_then(|r| r.split(';').next())
                .map(str::to_owned)
        });
        (d, addr)
    }

    /// Whether the peer has closed: reads what is there without waiting (an h2
    /// server's SETTINGS, TLS tickets) until end of stream or nothing more.
    fn closed(s: &mut impl Read) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    fn unix(d: &Daemon) -> UnixStream {
        let s = UnixStream::connect(d.socket()).expect("connect");
        s.set_nonblocking(true).expect("nonblocking");
        s
    }

    fn healthz(d: &Daemon) {
        let (status, body) =
            d.raw(b"GET /healthz HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
        assert_eq!(status, 200, "{body}");
    }

    /// `keygate status` answers.
    fn status_answers(d: &Daemon, extra: &[(&str, &str)]) {
        let mut cli = d.keygate(&["status"]);
        for (k, v) in extra {
            cli = cli.env(k, v);
        }
        let r = cli.run();
        assert_eq!(r.code, 0, "{r:?}");
    }

    /// `keygate status` answers while the flood still holds the pool (on a
    /// [`patient_daemon`] nothing idles out): it got a slot at once (the longest idle
    /// connection made room, or the operator's reserve), and did not wait for one.
    fn status_answers_behind<S: Read>(d: &Daemon, extra: &[(&str, &str)], held: &mut [S]) {
        status_answers(d, extra);
        let open = held
            .iter_mut()
            .map(|s| !closed(s))
            .filter(|open| *open)
            .count();
        assert!(
            open >= CAP / 2,
            "only {open} of the flood's connections were still open when status answered"
        );
    }

    fn all_cut<S: Read>(held: &mut [S], what: &str) {
        // Idle since they connected: all closed within the timeout, plus slack.
        poll(IDLE + Duration::from_secs(5), what, || {
            held.iter_mut().all(|s| closed(s)).then_some(())
        });
    }

    /// The flood `idle_unix_connections…` holds: idle connections, half a protocol
    /// preface, a whole HTTP/2 preface and nothing after, half a header.
    fn unix_flood(d: &Daemon) -> Vec<UnixStream> {
        let mut held: Vec<UnixStream> = (0..FLOOD).map(|_| unix(d)).collect();
        let partial: [&[u8]; 3] = [
            b"PRI * HTTP/2",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost:",
        ];
        for bytes in partial {
            let mut s = unix(d);
            s.write_all(bytes).expect("write");
            held.push(s);
        }
        assert!(held.len() > CAP + 4, "more than the cap and the reserve");
        held
    }

    #[test]
    fn idle_unix_connections_leave_status_working() {
        let (d, _) = patient_daemon();
        let mut held = unix_flood(&d);
        status_answers_behind(&d, &[], &mut held);
        healthz(&d);
    }

    #[test]
    fn idle_unix_connections_are_cut() {
        let (d, _) = daemon();
        let mut held = unix_flood(&d);
        // And an HTTP/1 keep-alive connection idle after one answer.
        let mut keep = UnixStream::connect(d.socket()).expect("connect");
        keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: k\r\n\r\n")
            .expect("write");
        let mut answer = [0u8; 512];
        keep.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let n = keep.read(&mut answer).expect("an answer");
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "keep-alive answer"
        );
        let answered = Instant::now();
        keep.set_nonblocking(true).expect("nonblocking");

        all_cut(&mut held, "the idle Unix connections to be cut");
        poll(
            IDLE + Duration::from_secs(5),
            "the keep-alive connection cut",
            || closed(&mut keep).then_some(()),
        );
        // A lower bound the idle timeout promises (less a little for the clock's
        // granularity); how much later it happens depends on the machine.
        assert!(
            answered.elapsed() >= Duration::from_millis(1500),
            "a keep-alive connection gets its idle time: cut after {:?}",
            answered.elapsed()
        );
        status_answers(&d, &[]);
    }

    /// A TLS client that trusts the daemon's own certificate.
    fn tls_config(d: &Daemon) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let cert = d.root().join("data/keygate/tls/cert.pem");
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&cert).expect("cert file") {
            roots.add(c.expect("cert")).expect("root");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }

    /// Connects and finishes a TLS handshake, then says nothing.
    fn tls_silent(addr: &str, config: &Arc<rustls::ClientConfig>) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).expect("connect");
        let name = "localhost".try_into().expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).expect("tls");
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("handshake");
        }
        tcp.set_nonblocking(true).expect("nonblocking");
        tcp
    }

    /// TLS connections that finish the handshake and say nothing, and TCP connections
    /// that never start one.
    fn tls_flood(d: &Daemon, addr: &str) -> Vec<TcpStream> {
        let config = tls_config(d);
        let mut held: Vec<TcpStream> = (0..FLOOD).map(|_| tls_silent(addr, &config)).collect();
        for _ in 0..FLOOD {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nonblocking(true).expect("nonblocking");
            held.push(s);
        }
        held
    }

    #[test]
    fn silent_tls_clients_starve_neither_listener() {
        let (d, addr) = patient_daemon();
        let mut held = tls_flood(&d, &addr);
        // The local operator is untouched by the TCP flood.
        status_answers(&d, &[]);
        healthz(&d);
        // And a real TLS client still gets through, while the flood is in place.
        let fp = d
            .log()
            .lines()
            .find_map(|l| l.split("fingerprint ").nth(1).map(|f| f.trim().to_owned()))
            .expect("fingerprint");
        let url = format!("https://{addr}");
        status_answers_behind(
            &d,
            &[("KEYGATE_URL", &url), ("KEYGATE_FINGERPRINT", &fp)],
            &mut held,
        );
    }

    #[test]
    fn silent_tls_clients_are_cut() {
        let (d, addr) = daemon();
        let mut held = tls_flood(&d, &addr);
        all_cut(&mut held, "the silent TCP connections to be cut");
    }

    /// Reads until `needle` arrives.
    fn read_until(s: &mut UnixStream, needle: &[u8]) {
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.windows(needle.len()).any(|w| w == needle) {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn busy_agents_cannot_take_the_operators_reserve() {
        let (d, _) = daemon();
        let agent = d.agent("ci-edge");
        // An agent holds every ordinary slot with requests in flight: bodies it
        // promises and never sends (hyper's `100 Continue` shows each is being read).
        let mut busy: Vec<UnixStream> = (0..CAP)
            .map(|_| {
                let mut s = UnixStream::connect(d.socket()).expect("connect");
                let req = format!(
                    "POST /v1/requests HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer {agent}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
                );
                s.write_all(req.as_bytes()).expect("write");
                read_until(&mut s, b"100 Continue");
                s
            })
            .collect();
        // The operator and /healthz are served from the reserve; the agent is not.
        status_answers(&d, &[]);
        healthz(&d);
        let r = d.keygate_as(&agent, &["status"]).run();
        assert_ne!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("kept for the operator"), "{r:?}");
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{r:?}");
        busy.clear();
        poll(Duration::from_secs(10), "the agent served again", || {
            (d.keygate_as(&agent, &["status"]).run().code == 0).then_some(())
        });
    }
}
