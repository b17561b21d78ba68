//! `keygate-bench`: what users feel, measured against a baseline run side by side in the
//! same process and the same run. See docs/benchmarks.md; run with `scripts/bench`.
//!
//! 1. Grant hit: agents holding a live reusable grant read their secret over the Unix
//!    socket with N concurrent keep-alive connections, beside a minimal hyper server that
//!    answers a fixed body of the same size on the same transport.
//! 2. The CLI: wall time of `keygate get` under a live grant.
//! 3. Waiting agents: many concurrent pending requests held by long-polls; daemon RSS per
//!    pending request; then all approved in a burst, every agent gets its value, and a
//!    grant hit measured during the burst.
//! 4. Idle daemon RSS.

#![allow(clippy::cast_precision_loss)] // figures for people, not for arithmetic

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use keygate_tests::{Daemon, poll};
use tokio::net::{UnixListener, UnixStream};

const SECRET: &str = "sk-bench-0123456789abcdef0123456789abcdef";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Debug)]
struct Load {
    requests: u64,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: u64,
}

impl Load {
    fn rps(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.requests as f64;
        n / self.seconds
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// N keep-alive connections hammering `path` for `duration`.
/// Where the load goes: a Unix socket, or TLS over TCP.
#[derive(Clone)]
enum Dial {
    Unix(PathBuf),
    Tls(std::net::SocketAddr, tokio_rustls::TlsConnector),
}

impl From<&PathBuf> for Dial {
    fn from(p: &PathBuf) -> Self {
        Self::Unix(p.clone())
    }
}

impl From<PathBuf> for Dial {
    fn from(p: PathBuf) -> Self {
        Self::Unix(p)
    }
}

async fn dial(target: &Dial) -> Option<http1::SendRequest<Empty<Bytes>>> {
    match target {
        Dial::Unix(socket) => {
            let stream = UnixStream::connect(socket).await.ok()?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            Some(sender)
        }
        Dial::Tls(addr, tls) => {
            let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let _ = stream.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
            let stream = tls.connect(name, stream).await.ok()?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            Some(sender)
        }
    }
}

/// Accepts any certificate: the benchmark measures throughput, not trust.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_client() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("tls")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The baseline over TLS: the same minimal server behind rustls, with the daemon's own
/// certificate and key.
fn baseline_tls_server(
    addr_tx: std::sync::mpsc::Sender<std::net::SocketAddr>,
    cert: PathBuf,
    key: PathBuf,
    body: Bytes,
) {
    use rustls::pki_types::pem::PemObject as _;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
                .expect("cert")
                .collect::<Result<_, _>>()
                .expect("cert");
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).expect("key");
            let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("tls")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("tls");
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = addr_tx.send(listener.local_addr().expect("addr"));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_req| {
                        let body = body.clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
}

async fn load(
    target: impl Into<Dial>,
    path: &str,
    token: &str,
    conns: u64,
    duration: Duration,
) -> Load {
    let target: Dial = target.into();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..conns {
        let target = target.clone();
        let path = path.to_owned();
        let auth = format!("Bearer {token}");
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let Some(mut sender) = dial(&target).await else {
                return (lat, 1);
            };
            while !stop.load(Ordering::Relaxed) {
                let req = Request::get(path.as_str())
                    .header("host", "k")
                    .header("authorization", auth.as_str())
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let t = Instant::now();
                let Ok(resp) = sender.send_request(req).await else {
                    errors += 1;
                    break;
                };
                let ok = resp.status().is_success();
                let _ = resp.into_body().collect().await;
                if ok {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    all.sort();
    Load {
        requests: all.len() as u64,
        seconds,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or_default(),
        errors,
    }
}

/// One baseline connection: HTTP/1.1, every request answered with `body`.
async fn serve_fixed<I>(io: I, body: Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_req| {
        let body = body.clone();
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("response"),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The baseline: a minimal hyper server answering a fixed body on a Unix socket.
fn baseline_server(socket: PathBuf, body: Bytes) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = UnixListener::bind(&socket).expect("bind baseline");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve_fixed(stream, body.clone()));
            }
        });
    });
}

/// `keygate-bench --serve-baseline PORT BODY_FILE`: the baseline for wrk, in a process of
/// its own as keygated is, with the same runtime (two workers): a minimal hyper server on
/// loopback TCP answering the fixed body.
async fn serve_baseline_tcp(port: u16, body: Bytes) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind baseline");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_fixed(stream, body.clone()));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `wrk -t1 -c32` against one URL; its requests per second.
fn wrk(url: &str, token: &str, secs: u64) -> f64 {
    let out = std::process::Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{secs}s"), "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .expect("run wrk (Debian's `wrk` package)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw errors against {url}: {text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec from wrk: {text}"))
}

/// The grant hit measured from outside: wrk over a loopback TCP listener (plain HTTP, as
/// a TLS-terminating proxy in front of keygated would speak) against the baseline
/// process, alternating, three rounds each.
fn wrk_grant_hit(secs: u64) {
    if std::process::Command::new("wrk")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("\n## 1b. Grant hit from outside: skipped (no `wrk`: apt-get install wrk)");
        return;
    }
    let port = free_port();
    let listen = format!("http://127.0.0.1:{port}");
    let d = Daemon::start_with(
        keygate_tests::POLICY,
        &[("RUST_LOG", "warn"), ("KEYGATE_SERVER_LISTEN", &listen)],
    );
    d.secret("github/token", SECRET);
    let token = d.agent("ci-bench");
    approve_grant(&d, &token, "github/token");
    let path = "/v1/secrets/github%2Ftoken";
    let (_, sample) = d.http("GET", path, &token, b"");
    let body_file = d.root().join("baseline-body");
    std::fs::write(&body_file, &sample).expect("body");
    let base_port = free_port();
    let mut base = std::process::Command::new(std::env::current_exe().expect("self"))
        .arg("--serve-baseline")
        .arg(base_port.to_string())
        .arg(&body_file)
        .spawn()
        .expect("start the baseline");
    poll(Duration::from_secs(5), "the baseline port", || {
        std::net::TcpStream::connect(("127.0.0.1", base_port))
            .ok()
            .map(|_| ())
    });
    let (mut b, mut k) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        b.push(wrk(
            &format!("http://127.0.0.1:{base_port}{path}"),
            &token,
            secs,
        ));
        k.push(wrk(&format!("http://127.0.0.1:{port}{path}"), &token, secs));
    }
    let _ = base.kill();
    let _ = base.wait();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "\n## 1b. Grant hit from outside: `wrk -t1 -c32` over loopback TCP ({} byte body)",
        sample.len()
    );
    println!("| server | requests/s (3 rounds, alternating) | mean |");
    println!("|---|---|---|");
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    println!(
        "| baseline hyper (own process) | {} | {:.0} |",
        rounds(&b),
        mean(&b)
    );
    println!("| keygated | {} | {:.0} |", rounds(&k), mean(&k));
    println!(
        "ratio keygated / baseline: **{:.2}×** (target ≥ 0.90×)",
        mean(&k) / mean(&b)
    );
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn approve_grant(d: &Daemon, token: &str, secret: &str) {
    let child = d.keygate_as(token, &["get", secret]).spawn();
    let id = d.pending_request();
    d.keygate(&["approve", &id]).ok();
    let out = keygate_tests::finish(child);
    assert_eq!(out.code, 0, "{out:?}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-baseline") {
        let port = args.get(i + 1).and_then(|p| p.parse().ok()).expect("PORT");
        let body = std::fs::read(args.get(i + 2).expect("BODY_FILE")).expect("body");
        serve_baseline_tcp(port, Bytes::from(body)).await;
        return;
    }
    if args.iter().any(|a| a == "--wrk-only") {
        wrk_grant_hit(arg("--seconds", 5));
        return;
    }
    let conns = arg("--connections", 32);
    let secs = arg("--seconds", 5);
    let waiting = arg("--waiting", 10_000);
    let cli_runs = arg("--cli-runs", 200);
    let duration = Duration::from_secs(secs);
    println!("# keygate-bench: {conns} connections, {secs}s per load, {waiting} waiting agents");

    // ----- 1. grant hit ---------------------------------------------------------------
    let limits = (waiting + 100).to_string();
    let tls_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let tls_listen = tls_addr.to_string();
    let d = Daemon::start_with(
        keygate_tests::POLICY,
        &[
            ("RUST_LOG", "warn"),
            ("KEYGATE_LIMITS_PENDING_PER_AGENT", &limits),
            ("KEYGATE_LIMITS_REQUESTS_PER_MINUTE", &limits),
            ("KEYGATE_LIMITS_MAX_CONNECTIONS", "30000"),
            ("KEYGATE_SERVER_LISTEN", &tls_listen),
        ],
    );
    d.secret("github/token", SECRET);
    let token = d.agent("ci-bench");
    approve_grant(&d, &token, "github/token");
    let idle = rss_kib(d.pid());

    let path = "/v1/secrets/github%2Ftoken";
    let (_, sample) = d.http("GET", path, &token, b"");
    let body = Bytes::from(sample);
    let base_socket = d.root().join("baseline.sock");
    baseline_server(base_socket.clone(), body.clone());
    poll(Duration::from_secs(5), "the baseline socket", || {
        std::os::unix::net::UnixStream::connect(&base_socket)
            .ok()
            .map(|_| ())
    });
    let base = load(&base_socket, path, &token, conns, duration).await;
    let ours = load(&d.socket(), path, &token, conns, duration).await;
    println!(
        "\n## 1. Grant hit over the Unix socket ({} byte body)",
        body.len()
    );
    println!("| server | requests/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    println!(
        "| baseline hyper | {:.0} | {} | {} | {} |",
        base.rps(),
        ms(base.p50),
        ms(base.p99),
        base.errors
    );
    println!(
        "| keygated | {:.0} | {} | {} | {} |",
        ours.rps(),
        ms(ours.p50),
        ms(ours.p99),
        ours.errors
    );
    println!(
        "ratio keygated / baseline: **{:.2}×** (target ≥ 0.80×)",
        ours.rps() / base.rps()
    );

    // The same over TLS (HTTP/1.1, rustls, the daemon's self-signed certificate).
    let tls_dir = d.root().join("data/keygate/tls");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    baseline_tls_server(
        addr_tx,
        tls_dir.join("cert.pem"),
        tls_dir.join("key.pem"),
        body.clone(),
    );
    let base_tls_addr = addr_rx.recv().expect("baseline TLS address");
    let client = tls_client();
    let base = load(
        Dial::Tls(base_tls_addr, client.clone()),
        path,
        &token,
        conns,
        duration,
    )
    .await;
    let ours = load(Dial::Tls(tls_addr, client), path, &token, conns, duration).await;
    println!("\n### over TLS ({conns} connections)");
    println!("| server | requests/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    for (name, l) in [("baseline hyper + rustls", &base), ("keygated", &ours)] {
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            l.rps(),
            ms(l.p50),
            ms(l.p99),
            l.errors
        );
    }
    println!(
        "ratio keygated / baseline: **{:.2}×** (target ≥ 0.80×)",
        ours.rps() / base.rps()
    );

    wrk_grant_hit(secs);

    // ----- 2. the CLI -----------------------------------------------------------------
    let mut times = Vec::new();
    for _ in 0..cli_runs {
        let t = Instant::now();
        let r = d.keygate_as(&token, &["get", "github/token"]).run();
        times.push(t.elapsed());
        assert_eq!(r.code, 0);
    }
    times.sort();
    println!("\n## 2. `keygate get` under a live grant ({cli_runs} runs)");
    println!(
        "median {} · p99 {} (target: median < 5 ms)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99))
    );

    // ----- 3. waiting agents ----------------------------------------------------------
    let before = rss_kib(d.pid());
    let mut ids = Vec::new();
    let socket = d.socket();
    for _ in 0..waiting {
        let (status, text) = d.http(
            "POST",
            "/v1/requests",
            &token,
            br#"{"secrets":["db/password"]}"#,
        );
        assert_eq!(status, 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    let filed = rss_kib(d.pid());
    let mut polls = Vec::new();
    for id in &ids {
        let socket = socket.clone();
        let path = format!("/v1/requests/{id}?wait=60s");
        let auth = format!("Bearer {token}");
        polls.push(tokio::spawn(async move {
            // 10,000 agents connecting at once overflow the socket's listen backlog;
            // like real agents, try again shortly.
            let mut tries = 0;
            let stream = loop {
                match UnixStream::connect(&socket).await {
                    Ok(s) => break s,
                    Err(_) if tries < 100 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => return None,
                }
            };
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            let req = Request::get(path)
                .header("host", "k")
                .header("authorization", auth)
                .body(Empty::<Bytes>::new())
                .ok()?;
            let resp = sender.send_request(req).await.ok()?;
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            Some(v["status"].as_str()? == "approved")
        }));
    }
    // Let every long-poll arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = rss_kib(d.pid());
    println!("\n## 3. {waiting} waiting agents (long-polls held)");
    println!(
        "daemon RSS idle {idle} KiB, before filing {before} KiB, {waiting} pending {filed} KiB, + a long-poll each {held} KiB"
    );
    println!(
        "per pending request: **{:.2} KiB** in the daemon's state, {:.2} KiB for its held long-poll connection, **{:.2} KiB** in all (target < 4 KiB)",
        filed.saturating_sub(before) as f64 / waiting as f64,
        held.saturating_sub(filed) as f64 / waiting as f64,
        held.saturating_sub(before) as f64 / waiting as f64
    );
    let op = d.operator_token();
    let burst_start = Instant::now();
    let hits = {
        let socket = d.socket();
        let token = token.clone();
        tokio::spawn(async move { load(&socket, path, &token, 1, Duration::from_secs(3)).await })
    };
    let mut approvals = Vec::new();
    for chunk in ids.chunks(ids.len().div_ceil(16).max(1)) {
        let chunk = chunk.to_vec();
        let socket = d.socket();
        let op = op.clone();
        approvals.push(tokio::spawn(async move {
            let stream = UnixStream::connect(&socket).await.ok()?;
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            let mut ok = 0u64;
            for id in chunk {
                let req = Request::post(format!("/v1/requests/{id}/approve"))
                    .header("host", "k")
                    .header("authorization", format!("Bearer {op}"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .ok()?;
                let resp = sender.send_request(req).await.ok()?;
                if resp.status().is_success() {
                    ok += 1;
                }
                let _ = resp.into_body().collect().await;
            }
            Some(ok)
        }));
    }
    let mut approved = 0;
    for a in approvals {
        approved += a.await.ok().flatten().unwrap_or(0);
    }
    let mut served = 0;
    let mut errors = 0;
    for p in polls {
        match p.await.ok().flatten() {
            Some(true) => served += 1,
            _ => errors += 1,
        }
    }
    let burst = burst_start.elapsed();
    let during = hits.await.expect("hits");
    println!(
        "burst: {approved} approved in {}, {served} agents answered `approved`, {errors} errors (target 0)",
        ms(burst)
    );
    println!(
        "grant hits during the burst ({} of them): p50 {} · p99 {} · max {} (target: never blocked > 10 ms)",
        during.requests,
        ms(during.p50),
        ms(during.p99),
        ms(during.max)
    );
    println!(
        "\n## 4. Idle daemon\nRSS {idle} KiB after start, one agent, one secret, one grant, no Discord (target < 20 MiB)"
    );
    drop(d);

    approval_round_trip(arg("--approvals", 200)).await;
}

/// Section 5: from the simulator sending an approver's INTERACTION_CREATE to the waiting
/// agent holding the value; and section 6: the idle RSS of a daemon connected to the
/// simulator.
#[allow(clippy::many_single_char_names)]
async fn approval_round_trip(n: u64) {
    use keygate_discord_sim::{PressSpec, SimConfig, Simulator};
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let c = sim.config().clone();
    let (rest, gw) = (sim.rest_url(), sim.gateway_url());
    let (channel, guild) = (c.channel_id.to_string(), c.guild_id.to_string());
    let limits = (n + 10).to_string();
    let d = Daemon::start_with(
        keygate_tests::POLICY,
        &[
            ("RUST_LOG", "warn"),
            ("KEYGATE_LIMITS_REQUESTS_PER_MINUTE", &limits),
            ("KEYGATE_DISCORD_TOKEN", &c.bot_token),
            ("KEYGATE_DISCORD_CHANNEL_ID", &channel),
            ("KEYGATE_DISCORD_GUILD_ID", &guild),
            ("KEYGATE_DISCORD_API_URL", &rest),
            ("KEYGATE_DISCORD_GATEWAY_URL", &gw),
        ],
    );
    assert!(sim.wait_connected(Duration::from_secs(10)).await);
    d.secret("db/password", SECRET);
    let token = d.agent("ci-bench");
    let idle = rss_kib(d.pid());
    let mut callback = Vec::new();
    let mut release = Vec::new();
    for _ in 0..n {
        let (status, text) = d.http(
            "POST",
            "/v1/requests",
            &token,
            br#"{"secrets":["db/password"]}"#,
        );
        assert_eq!(status, 201, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let id = v["id"].as_str().expect("id").to_owned();
        let msg = sim
            .wait_for_message(|m| m.text().contains(&id), Duration::from_secs(10))
            .await
            .expect("posted");
        let approve = msg
            .live_buttons()
            .into_iter()
            .find(|b| b.style == 3)
            .and_then(|b| b.custom_id)
            .expect("approve");
        // The agent is already waiting on its long-poll when the approver taps.
        let socket = d.socket();
        let auth = format!("Bearer {token}");
        let path = format!("/v1/requests/{id}?wait=30s");
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let agent = tokio::spawn(async move {
            let stream = UnixStream::connect(&socket).await.ok()?;
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            let req = Request::get(path)
                .header("host", "k")
                .header("authorization", auth.as_str())
                .body(Empty::<Bytes>::new())
                .ok()?;
            let pending = sender.send_request(req);
            let _ = ready_tx.send(());
            let resp = pending.await.ok()?;
            let _ = resp.into_body().collect().await;
            let req = Request::get("/v1/secrets/db%2Fpassword")
                .header("host", "k")
                .header("authorization", auth.as_str())
                .body(Empty::<Bytes>::new())
                .ok()?;
            let resp = sender.send_request(req).await.ok()?;
            let ok = resp.status().is_success();
            let _ = resp.into_body().collect().await;
            ok.then(Instant::now)
        });
        let _ = ready.await;
        // Let the long-poll reach the daemon before the tap.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let pressed = Instant::now();
        let h = sim
            .press(&PressSpec::new(msg.id, approve, 111_111_111_111_111_111))
            .expect("press");
        let cb = h.response(Duration::from_secs(5)).await.expect("callback");
        callback.push(cb.elapsed);
        let done = agent.await.ok().flatten().expect("the agent got its value");
        release.push(done.duration_since(pressed));
    }
    callback.sort();
    release.sort();
    println!("\n## 5. Approval round trip ({n} approvals through the Discord simulator)");
    println!(
        "INTERACTION_CREATE → callback: p50 {} · p99 {}",
        ms(percentile(&callback, 0.5)),
        ms(percentile(&callback, 0.99))
    );
    println!(
        "INTERACTION_CREATE → agent holds the value: p50 {} · p99 {} (target p99 < 10 ms)",
        ms(percentile(&release, 0.5)),
        ms(percentile(&release, 0.99))
    );
    println!("\n## 6. Idle daemon connected to the simulator\nRSS {idle} KiB (target < 20 MiB)");
}
