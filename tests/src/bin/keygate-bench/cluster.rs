//! `--cluster`: the cluster's three benchmarks (issue 15; docs/benchmarks.md, "The
//! cluster"). One real `redis-server`, one Discord simulator and two real `keygated`
//! sharing them (`KEYGATE_CLUSTER_REDIS_URL`, the Redis secret store), beside one
//! single-node `keygated` (in-memory store) as the baseline of the first:
//!
//! 1. the grant hit through a clustered node against the single node, wrk on both,
//!    interleaved rounds;
//! 2. press → secret across nodes: the agent waits on the node that does not run the bot;
//! 3. takeover after `kill -9` of the lease holder.

mod press;
mod takeover;

use std::time::Duration;

use keygate_discord_sim::{SimConfig, Simulator};
use keygate_tests::redis::RedisServer;
use keygate_tests::{Daemon, poll};

use super::wrk::{Round, free_port, wrk};
use super::{SECRET, approve_grant, arg};

/// The passphrase of the cluster's Redis secret store (a benchmark's, not a real one).
const PASSPHRASE: &str = "keygate-bench cluster passphrase";

/// The approver the policy names (`[approvers.ops]` in `keygate_tests::POLICY`).
const OPS: u64 = 111_111_111_111_111_111;

/// The secret path the grant hit reads.
const PATH: &str = "/v1/secrets/github%2Ftoken";

/// Two nodes on one Redis, pointed at one simulator.
pub(super) struct Cluster {
    pub(super) nodes: Vec<Daemon>,
    /// Each node's plain-HTTP listener, `http://127.0.0.1:PORT`.
    pub(super) urls: Vec<String>,
    pub(super) sim: Simulator,
    pub(super) token: String,
    redis_url: String,
    _redis: RedisServer,
}

impl Cluster {
    /// The index of the node whose `keygate status --json` says it holds the Discord
    /// lease, once exactly one does.
    pub(super) fn leader(&self, among: &[usize]) -> usize {
        poll(Duration::from_secs(30), "exactly one node to lead", || {
            let leaders: Vec<usize> = among
                .iter()
                .copied()
                .filter(|&i| {
                    let r = self.nodes[i].keygate(&["status", "--json"]).run();
                    serde_json::from_str::<serde_json::Value>(&r.stdout)
                        .is_ok_and(|v| v["cluster"]["discord_leader"] == true)
                })
                .collect();
            match leaders.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        })
    }
}

/// What every node and the single node run with, beyond their own listener.
fn limits() -> Vec<(&'static str, String)> {
    vec![
        ("RUST_LOG", "warn".to_owned()),
        ("KEYGATE_LIMITS_REQUESTS_PER_MINUTE", "100000".to_owned()),
        ("KEYGATE_LIMITS_PENDING_PER_AGENT", "1000".to_owned()),
    ]
}

fn start_cluster(redis: RedisServer, sim: Simulator) -> Cluster {
    let mut nodes = Vec::new();
    let mut urls = Vec::new();
    for name in ["bench-a", "bench-b"] {
        let url = format!("http://127.0.0.1:{}", free_port());
        let mut env = limits();
        env.extend([
            ("KEYGATE_SERVER_LISTEN", url.clone()),
            ("KEYGATE_CLUSTER_REDIS_URL", redis.url()),
            ("KEYGATE_CLUSTER_NODE", name.to_owned()),
            ("KEYGATE_SECRET_STORE", "redis".to_owned()),
            ("KEYGATE_STORE_PASSPHRASE", PASSPHRASE.to_owned()),
        ]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        nodes.push(Daemon::start_with_discord(
            keygate_tests::POLICY,
            &sim,
            &env,
        ));
        urls.push(url);
    }
    // Stored and added on the first node, read and authenticated on both (Redis).
    nodes[0].secret("github/token", SECRET);
    nodes[0].secret("db/password", SECRET);
    let token = nodes[0].agent("ci-bench");
    Cluster {
        nodes,
        urls,
        sim,
        token,
        redis_url: redis.url(),
        _redis: redis,
    }
}

/// `--cluster`: the three benchmarks, in that order.
pub(super) async fn cluster_bench() {
    let secs = arg("--seconds", 5);
    let rounds = arg("--rounds", 5);
    let presses = arg("--presses", 100);
    let takeovers = arg("--takeovers", 5);
    println!(
        "# keygate-bench --cluster: 2 nodes on one redis-server, {rounds} wrk rounds of {secs}s, {presses} presses, {takeovers} takeovers"
    );
    let Some(redis) = RedisServer::start() else {
        println!("\n## Cluster: skipped (no redis-server: apt-get install redis-server)");
        return;
    };
    if std::process::Command::new("wrk")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("\n## Cluster: skipped (no `wrk`: apt-get install wrk)");
        return;
    }
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let mut c = start_cluster(redis, sim);
    assert!(
        c.sim.wait_connected(Duration::from_secs(30)).await,
        "no node's bot connected to the simulator"
    );
    grant_hit(&c, secs, rounds);
    load_average();
    press::press_to_secret(&c, presses).await;
    load_average();
    takeover::takeovers(&mut c, takeovers).await;
    load_average();
}

/// The machine's load average, printed after each section (docs/benchmarks.md).
fn load_average() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let three: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("load average: {}", three.join(" "));
}

/// One wrk target: a daemon, its listener, an agent's token.
struct Target<'a> {
    what: &'static str,
    daemon: &'a Daemon,
    url: String,
    token: String,
}

/// Benchmark 1: wrk against the single node and against node B of the cluster (and,
/// to tell the Lua script's part from the Redis store's, a one-node cluster with the
/// in-memory store), rotating which goes first, `rounds` times; the ratio per round.
fn grant_hit(c: &Cluster, secs: u64, rounds: u64) {
    let start = |extra: &[(&'static str, String)]| {
        let url = format!("http://127.0.0.1:{}", free_port());
        let mut env = limits();
        env.push(("KEYGATE_SERVER_LISTEN", url.clone()));
        env.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let d = Daemon::start_with(keygate_tests::POLICY, &env);
        d.secret("github/token", SECRET);
        let token = d.agent("ci-bench");
        approve_grant(&d, &token, "github/token");
        (d, url, token)
    };
    let (single, single_url, single_token) = start(&[]);
    // Its own database of the same Redis, so it shares nothing with the cluster.
    let alone_redis = c.redis_url.replace("/0", "/1");
    let (alone, alone_url, alone_token) = start(&[
        ("KEYGATE_CLUSTER_REDIS_URL", alone_redis),
        ("KEYGATE_CLUSTER_NODE", "bench-memory".to_owned()),
    ]);
    approve_grant(&c.nodes[1], &c.token, "github/token");
    let targets = [
        Target {
            what: "single node (in-memory store)",
            daemon: &single,
            url: single_url,
            token: single_token,
        },
        Target {
            what: "node of a 2-node cluster (Redis store)",
            daemon: &c.nodes[1],
            url: c.urls[1].clone(),
            token: c.token.clone(),
        },
        Target {
            what: "one-node cluster, in-memory store (the Lua read alone)",
            daemon: &alone,
            url: alone_url,
            token: alone_token,
        },
    ];
    let mut body_len = 0;
    for t in &targets {
        let (code, body) = t.daemon.http("GET", PATH, &t.token, b"");
        assert_eq!(code, 200, "{}: {body}", t.what);
        body_len = body.len();
    }
    let mut results: Vec<Vec<Round>> = targets.iter().map(|_| Vec::new()).collect();
    for i in 0..rounds {
        for k in 0..targets.len() {
            let j = (k + usize::try_from(i).unwrap_or(0)) % targets.len();
            let t = &targets[j];
            results[j].push(wrk(
                &format!("{}{PATH}", t.url),
                &t.token,
                secs,
                t.daemon.pid(),
            ));
        }
    }
    println!(
        "\n## C1. Grant hit: a clustered node ÷ a single node (`wrk -t1 -c32`, loopback TCP, {rounds} interleaved rounds of {secs}s, {body_len} byte body)"
    );
    println!(
        "| keygated | requests/s per round | server CPU µs per request (perf) | ÷ single node per round | median (range) |"
    );
    println!("|---|---|---|---|---|");
    for (t, r) in targets.iter().zip(&results) {
        let mut ratios: Vec<f64> = r
            .iter()
            .zip(&results[0])
            .map(|(k, s)| k.rps / s.rps)
            .collect();
        let shown = ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" · ");
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {} | {shown} | **{:.2}×** ({:.2}–{:.2}) |",
            t.what,
            r.iter()
                .map(|r| format!("{:.0}", r.rps))
                .collect::<Vec<_>>()
                .join(" · "),
            r.iter()
                .map(|r| r
                    .cpu_us_per_request
                    .map_or("-".to_owned(), |x| format!("{x:.1}")))
                .collect::<Vec<_>>()
                .join(" · "),
            median(&ratios),
            ratios.first().copied().unwrap_or(0.0),
            ratios.last().copied().unwrap_or(0.0)
        );
    }
    println!("goal: the node of a 2-node cluster ≥ 0.5× the single node");
}

/// The median of sorted figures.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}
