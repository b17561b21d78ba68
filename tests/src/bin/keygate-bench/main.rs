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
//!
//! `--cluster` runs the cluster's benchmarks instead (`cluster.rs`): the grant hit
//! through a clustered node against a single node, press → secret across nodes, and
//! takeover after `kill -9` of the lease holder.

#![allow(clippy::cast_precision_loss)] // figures for people, not for arithmetic

mod approvals;
mod baseline;
mod cluster;
mod load;
mod wrk;

use approvals::approval_round_trip;
use baseline::{baseline_server, baseline_tls_server, serve_baseline_tcp};
use load::{Dial, load, percentile, tls_client};
use wrk::wrk_grant_hit;

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
    if args.iter().any(|a| a == "--cluster") {
        cluster::cluster_bench().await;
        return;
    }
    if args.iter().any(|a| a == "--approvals-only") {
        approval_round_trip(arg("--approvals", 200)).await;
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
