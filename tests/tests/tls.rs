//! Remote agents over TLS: the self-signed certificate, pinning, and the refusals.

use std::os::unix::fs::PermissionsExt as _;

use keygate_tests::{Daemon, bin, finish};

#[test]
fn an_agent_over_tls_with_a_pinned_certificate() {
    let (d, url, fp) = Daemon::start_tls();
    assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
    d.secret("github/token", "v-tls");
    let t = d.agent("ci-remote");
    let child = d
        .keygate_as(&t, &["get", "github/token"])
        .env("KEYGATE_URL", &url)
        .env(
            "KEYGATE_FINGERPRINT",
            &fp.to_uppercase().replace("SHA256:", "sha256:"),
        )
        .spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "v-tls");
    let key = d.root().join("data/keygate/tls/key.pem");
    assert_eq!(
        std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_wrong_fingerprint_is_refused() {
    let (d, url, _) = Daemon::start_tls();
    let t = d.agent("ci-remote");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_FINGERPRINT", &wrong)
        .run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("pinned"), "{}", r.stderr);
    assert!(
        !d.audit().contains("auth_failed"),
        "the token was never sent"
    );

    // Proven at the socket: an impostor with its own certificate, on the address the
    // agent was given, decrypts whatever the client sends after the handshake. Pinned to
    // the real daemon, the client finishes no handshake and sends no byte of the token.
    let real_fp = d_fingerprint(&d);
    let impostor = Impostor::start();
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", &impostor.url)
        .env("KEYGATE_FINGERPRINT", &real_fp)
        .run();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("pinned"), "{}", r.stderr);
    let heard = impostor.heard();
    assert!(
        heard.handshakes >= 1,
        "the client never reached the impostor"
    );
    assert_eq!(
        heard.completed, 0,
        "the client finished a handshake with it"
    );
    assert!(heard.plaintext.is_empty(), "it sent {:?}", heard.plaintext);
    // The same impostor, with the client pinned to it, does hear the request and token:
    // the recording works.
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", &impostor.url)
        .env("KEYGATE_FINGERPRINT", &impostor.fingerprint)
        .run();
    assert_ne!(r.code, 0, "the impostor answers nothing useful");
    let heard = impostor.heard();
    assert!(
        String::from_utf8_lossy(&heard.plaintext).contains(&t),
        "the control case: the token reaches a pinned server"
    );
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", &url)
        .env("KEYGATE_FINGERPRINT", "sha256:nope")
        .run();
    assert_eq!(r.code, 2, "{r:?}");
    let r = d
        .keygate_as(&t, &["grants"])
        .env("KEYGATE_URL", "http://127.0.0.1:1")
        .run();
    assert_eq!(r.code, 2, "plain http from the CLI: {r:?}");
}

#[test]
fn plain_http_off_loopback_stops_the_daemon_before_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin("keygated"))
        .env("XDG_CONFIG_HOME", dir.path().join("c"))
        .env("XDG_DATA_HOME", dir.path().join("d"))
        .env("XDG_STATE_HOME", dir.path().join("s"))
        .env("XDG_RUNTIME_DIR", dir.path().join("r"))
        .env("KEYGATE_SECRET_STORE", "memory")
        .env("KEYGATE_SERVER_LISTEN", "http://0.0.0.0:18080")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(
        !dir.path().join("r/keygate/keygated.sock").exists(),
        "it served"
    );
    assert!(
        !dir.path().join("s/keygate/audit.jsonl").exists(),
        "it started"
    );
}

/// One TLS handshake with the daemon, trusting its own certificate as the only root, under
/// `name`, limited to `versions`, offering `alpn`. Returns the negotiated version and ALPN.
fn handshake(
    addr: &str,
    cert: &std::path::Path,
    name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<(rustls::ProtocolVersion, Option<Vec<u8>>), String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).map_err(|e| e.to_string())? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server =
        rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(server, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        Ok((
            conn.protocol_version().ok_or("no version")?,
            conn.alpn_protocol().map(<[u8]>::to_vec),
        ))
    })
}

/// The listener speaks TLS 1.2 and 1.3 and nothing older, offers HTTP/2 by ALPN, and its
/// certificate names `localhost` and `127.0.0.1` (so `KEYGATE_CA` with it verifies).
#[test]
fn the_listener_speaks_tls_1_2_and_1_3_h2_by_alpn_and_names_its_hosts() {
    let (d, url, _) = Daemon::start_tls();
    let addr = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let cert = d.root().join("data/keygate/tls/cert.pem");
    for name in ["localhost", "127.0.0.1"] {
        let (v, alpn) = handshake(
            &addr,
            &cert,
            name,
            &[&rustls::version::TLS13],
            &[b"h2", b"http/1.1"],
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "{name}");
    }
    let (v, alpn) = handshake(
        &addr,
        &cert,
        "localhost",
        &[&rustls::version::TLS12],
        &[b"http/1.1"],
    )
    .expect("TLS 1.2");
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let wrong = handshake(&addr, &cert, "example.com", &[&rustls::version::TLS13], &[]);
    assert!(wrong.is_err(), "the certificate names no other host");
    // Older protocols are refused: openssl's client offering TLS 1.1 alone gets no session.
    let old = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_1",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("this test needs the openssl command (Debian's openssl package)");
    assert!(!old.status.success(), "TLS 1.1 was accepted: {old:?}");

    // The CLI trusts the certificate through KEYGATE_CA, by name.
    let t = d.agent("ci-remote");
    for host in ["localhost", "127.0.0.1"] {
        let r = d
            .keygate_as(&t, &["grants", "--json"])
            .env("KEYGATE_URL", &format!("https://{host}:{port}"))
            .env("KEYGATE_CA", cert.to_str().expect("path"))
            .run();
        assert_eq!(r.code, 0, "{host}: {r:?}");
        assert_eq!(r.stdout.trim(), "[]");
    }
}

fn d_fingerprint(d: &Daemon) -> String {
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("fingerprint "))
        .map(str::to_owned)
        .expect("the daemon logged its fingerprint");
    line.split("fingerprint ")
        .nth(1)
        .expect("fingerprint")
        .trim()
        .to_owned()
}

/// What the impostor saw.
#[derive(Debug, Default, Clone)]
struct Heard {
    handshakes: usize,
    completed: usize,
    plaintext: Vec<u8>,
}

/// A TLS server with a certificate of its own that records what clients send it.
struct Impostor {
    url: String,
    fingerprint: String,
    heard: std::sync::Arc<std::sync::Mutex<Heard>>,
    _rt: tokio::runtime::Runtime,
}

#[allow(clippy::unwrap_used)] // a test fixture: any failure here is the test failing
impl Impostor {
    fn start() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = made.cert.der().clone();
        let fingerprint = {
            use sha2::Digest as _;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&cert)))
        };
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Heard::default()));
        let log = std::sync::Arc::clone(&heard);
        rt.spawn(async move {
            use tokio::io::AsyncReadExt as _;
            while let Ok((tcp, _)) = listener.accept().await {
                log.lock().unwrap().handshakes += 1;
                let (acceptor, log) = (acceptor.clone(), std::sync::Arc::clone(&log));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    log.lock().unwrap().completed += 1;
                    let mut buf = [0u8; 4096];
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(std::time::Duration::from_secs(2), tls.read(&mut buf))
                            .await
                    {
                        if n == 0 {
                            break;
                        }
                        let mut heard = log.lock().unwrap();
                        heard.plaintext.extend_from_slice(&buf[..n]);
                        // A whole request head: enough to tell what was sent.
                        if heard.plaintext.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            url,
            fingerprint,
            heard,
            _rt: rt,
        }
    }

    fn heard(&self) -> Heard {
        self.heard.lock().unwrap().clone()
    }
}
