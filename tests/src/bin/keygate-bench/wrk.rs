//! The grant hit measured from outside, with wrk.

use super::*;

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One wrk round: its requests per second and, where `perf` can count the server's CPU
/// time (its task clock), the CPU each request cost (a figure a busy machine moves less
/// than requests per second).
pub(super) struct Round {
    pub(super) rps: f64,
    pub(super) cpu_us_per_request: Option<f64>,
}

/// `wrk -t1 -c32` against one URL served by process `pid`.
pub(super) fn wrk(url: &str, token: &str, secs: u64, pid: u32) -> Round {
    let perf = std::process::Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if perf {
        let mut c = std::process::Command::new("perf");
        c.args([
            "stat",
            "-x,",
            "-e",
            "task-clock",
            "-p",
            &pid.to_string(),
            "--",
            "wrk",
        ]);
        c
    } else {
        std::process::Command::new("wrk")
    };
    let out = cmd
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
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec from wrk: {text}"));
    // `N requests in 5.00s, ...`
    let requests: Option<f64> = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok());
    // perf's CSV line: `MSEC,msec,task-clock,...`
    let cpu_ms: Option<f64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.contains(",task-clock"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.trim().parse().ok());
    Round {
        rps,
        cpu_us_per_request: cpu_ms.zip(requests).map(|(ms, r)| ms * 1000.0 / r),
    }
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
    // With KEYGATE_CLUSTER_REDIS_URL set, keygated runs as a node of that cluster (what
    // its grant hit then pays for the cluster's agents, docs/benchmarks.md).
    let cluster = std::env::var("KEYGATE_CLUSTER_REDIS_URL").unwrap_or_default();
    let mut env = vec![
        ("RUST_LOG", "warn"),
        ("KEYGATE_SERVER_LISTEN", listen.as_str()),
    ];
    if !cluster.is_empty() {
        env.push(("KEYGATE_CLUSTER_REDIS_URL", cluster.as_str()));
    }
    let d = Daemon::start_with(keygate_tests::POLICY, &env);
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
            base.id(),
        ));
        k.push(wrk(
            &format!("http://127.0.0.1:{port}{path}"),
            &token,
            secs,
            d.pid(),
        ));
    }
    let _ = base.kill();
    let _ = base.wait();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let rps = |v: &[Round]| v.iter().map(|r| r.rps).collect::<Vec<_>>();
    let (brps, krps) = (rps(&b), rps(&k));
    println!(
        "\n## 1b. Grant hit from outside: `wrk -t1 -c32` over loopback TCP ({} byte body)",
        sample.len()
    );
    println!(
        "| server | requests/s (3 rounds, alternating) | mean | server CPU µs per request (perf task-clock) |"
    );
    println!("|---|---|---|---|");
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let per_request = |v: &[Round]| -> Option<f64> {
        let all: Option<Vec<f64>> = v.iter().map(|r| r.cpu_us_per_request).collect();
        all.map(|a| mean(&a))
    };
    let (bi, ki) = (per_request(&b), per_request(&k));
    let shown = |x: Option<f64>| x.map_or("(no perf)".to_owned(), |x| format!("{x:.1}"));
    println!(
        "| baseline hyper (own process) | {} | {:.0} | {} |",
        rounds(&brps),
        mean(&brps),
        shown(bi)
    );
    println!(
        "| keygated | {} | {:.0} | {} |",
        rounds(&krps),
        mean(&krps),
        shown(ki)
    );
    println!(
        "ratio keygated / baseline: **{:.2}×** (target ≥ 0.90×)",
        mean(&krps) / mean(&brps)
    );
    if let (Some(bi), Some(ki)) = (bi, ki) {
        println!(
            "server CPU per request, baseline ÷ keygated: **{:.2}×**",
            bi / ki
        );
    }
}
