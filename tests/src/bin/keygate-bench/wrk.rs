//! The grant hit measured from outside, with wrk.

use super::*;

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `wrk -t1 -c32` against one URL; its requests per second.
pub(super) fn wrk(url: &str, token: &str, secs: u64) -> f64 {
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
pub(super) fn wrk_grant_hit(secs: u64) {
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
