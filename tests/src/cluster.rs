//! Several real `keygated` on one real `redis-server`, acting as one gateway (SPEC,
//! "Cluster"; `docs/cluster.md`), with one Discord simulator that every node is pointed
//! at (only the node holding the lease connects its bot). Each node has its own state,
//! data and runtime directories and the same config contents: the policy, and the first
//! node's operator token copied into the others before they start. Secrets live in the
//! Redis store (`KEYGATE_SECRET_STORE=redis`), agents in Redis.
//!
//! Nothing here waits for the leader: tests that need Discord call [`Cluster::leader`]
//! and [`Cluster::bot`], so the tests of requests and grants alone do not hang on them.

use std::process::Child;
use std::time::{Duration, Instant};

use keygate_discord_sim::{InteractionHandle, PressSpec, SimConfig, SimMessage, Simulator};
use serde_json::Value;

use crate::redis::RedisServer;
use crate::{Daemon, discord_env, finish, poll};

/// The passphrase of the cluster's Redis secret store.
pub const PASSPHRASE: &str = "cluster test passphrase, not a real one";

/// A Discord user the policies name as an approver (`[approvers.ops]`).
pub const OPS: u64 = 111_111_111_111_111_111;

/// How long a test waits for one step (a decision to reach another node, a message).
pub const WAIT: Duration = Duration::from_secs(10);

/// The longest a takeover may take after the leader dies (SPEC: within 15 s).
pub const TAKEOVER: Duration = Duration::from_secs(15);

/// The nodes' policy: an allow rule, a reusable ask rule, a single-use ask rule.
pub const POLICY: &str = r#"
[defaults]
request_timeout = "2m"
ttl = "15m"
max_ttl = "1h"

[approvers.ops]
users = ["111111111111111111"]

[[rule]]
name = "ci reads public things"
agents = ["ci-*"]
secrets = ["public/*"]
action = "allow"

[[rule]]
name = "ci asks for github"
agents = ["ci-*"]
secrets = ["github/*"]
action = "ask"
approvers = ["ops"]
reuse = true

[[rule]]
name = "single use db"
agents = ["ci-*"]
secrets = ["db/*"]
action = "ask"
approvers = ["ops"]
reuse = false
"#;

/// Node names, in start order.
const NAMES: [&str; 5] = ["node-a", "node-b", "node-c", "node-d", "node-e"];

/// A running cluster. Dropping it kills the nodes, then the simulator, then Redis (and
/// shows every node's log first when the test is failing).
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Daemon>,
    pub sim: Simulator,
    pub rt: tokio::runtime::Runtime,
    pub redis: RedisServer,
    /// The token of agent `ci-one`, added on the first node.
    pub agent: String,
}

impl Cluster {
    /// Starts Redis, the simulator and `n` nodes with `policy`, stores `secrets` (name,
    /// value) on the first node and adds agent `ci-one` there. `None` (after a loud
    /// `skipped:` line) where there is no `redis-server` and Redis is not required.
    pub fn start(n: usize, policy: &str, secrets: &[(&str, &str)]) -> Option<Self> {
        assert!((1..=NAMES.len()).contains(&n), "1 to 5 nodes");
        let redis = RedisServer::start()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(Simulator::start(SimConfig::default()))
            .expect("simulator");
        let mut nodes: Vec<Daemon> = Vec::with_capacity(n);
        for name in &NAMES[..n] {
            let dir = tempfile::tempdir().expect("temp dir");
            if let Some(first) = nodes.first() {
                copy_config(first, dir.path());
            }
            let env = node_env(&redis, &sim, name);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            nodes.push(Daemon::start_in(dir, policy, &env));
        }
        let first = &nodes[0];
        for (name, value) in secrets {
            first.secret(name, value);
        }
        let agent = first.agent("ci-one");
        Some(Self {
            nodes,
            sim,
            rt,
            redis,
            agent,
        })
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Daemon {
        &self.nodes[i]
    }

    /// The name node `i` was started as.
    pub fn name(i: usize) -> &'static str {
        NAMES[i]
    }

    /// `cluster` of node `i`'s `keygate status --json`, if it answered.
    pub fn status(&self, i: usize) -> Option<Value> {
        let r = self.nodes[i].keygate(&["status", "--json"]).run();
        let status: Value = serde_json::from_str(&r.stdout).ok()?;
        (r.code == 0).then(|| status["cluster"].clone())
    }

    /// The nodes among `among` that say they hold the Discord lease now.
    pub fn leaders(&self, among: &[usize]) -> Vec<usize> {
        among
            .iter()
            .copied()
            .filter(|&i| self.status(i).is_some_and(|s| s["discord_leader"] == true))
            .collect()
    }

    /// The one node among `among` that holds the lease, once exactly one does (and keeps
    /// saying so for a second status round), waiting up to `within`.
    pub fn leader_among(&self, among: &[usize], within: Duration) -> usize {
        poll(within, "exactly one node to lead", || {
            match self.leaders(among).as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        })
    }

    /// The one leader of all nodes, and its bot connected to the simulator.
    pub fn leader(&self) -> usize {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        let leader = self.leader_among(&all, TAKEOVER + WAIT);
        self.bot();
        leader
    }

    /// Waits until a bot session is live on the simulator.
    pub fn bot(&self) {
        assert!(
            self.rt.block_on(self.sim.wait_connected(TAKEOVER + WAIT)),
            "no bot connected to the simulator"
        );
    }

    /// The agent runs `keygate get SECRET --reason REASON` against node `i`, in the
    /// background: the waiting process and its request's id (found on node `i`).
    pub fn ask(&self, i: usize, secret: &str, reason: &str) -> (Child, String) {
        let mut child = self.nodes[i]
            .keygate_as(&self.agent, &["get", secret, "--reason", reason])
            .spawn();
        let id = poll(WAIT, "the request to be pending", || {
            if child.try_wait().ok().flatten().is_some() {
                return Some(None);
            }
            self.pending(i, reason).map(Some)
        });
        match id {
            Some(id) => (child, id),
            None => panic!(
                "keygate get on {} ended before its request was pending: {:?}",
                NAMES[i],
                finish(child)
            ),
        }
    }

    /// The id of the pending request with `reason`, if node `i` lists one.
    pub fn pending(&self, i: usize, reason: &str) -> Option<String> {
        self.nodes[i]
            .requests()
            .into_iter()
            .find(|r| r["status"] == "pending" && r["reason"] == reason)
            .and_then(|r| r["id"].as_str().map(str::to_owned))
    }

    /// The agent files a request on node `i` through the API (nothing waits on it).
    pub fn file(&self, i: usize, secret: &str, reason: &str) -> String {
        let body = serde_json::json!({"secrets": [secret], "reason": reason}).to_string();
        let (code, answer) =
            self.nodes[i].http("POST", "/v1/requests", &self.agent, body.as_bytes());
        assert_eq!(code, 201, "filing on {}: {answer}", NAMES[i]);
        let v: Value = serde_json::from_str(&answer).expect("request JSON");
        v["id"].as_str().expect("request id").to_owned()
    }

    /// The agent reads `secret` on node `i` through the API: (status, body).
    pub fn read(&self, i: usize, secret: &str) -> (u16, String) {
        let path = format!("/v1/secrets/{}", secret.replace('/', "%2F"));
        self.nodes[i].http("GET", &path, &self.agent, b"")
    }

    /// Request `id` as node `i` lists it.
    pub fn request(&self, i: usize, id: &str) -> Option<Value> {
        self.nodes[i].requests().into_iter().find(|r| r["id"] == id)
    }

    /// The message that shows request `id`, once the bot has posted it.
    pub fn posted(&self, id: &str) -> SimMessage {
        self.rt
            .block_on(self.sim.wait_for_message(|m| m.text().contains(id), WAIT))
            .unwrap_or_else(|| panic!("request {id} was never posted to the simulator"))
    }

    /// An approver presses the green Approve on `msg` (it may be an old copy: the
    /// button's id is what counts); returns the press and when it was made.
    pub fn press_approve(&self, msg: &SimMessage) -> (InteractionHandle, Instant) {
        let approve = msg
            .live_buttons()
            .into_iter()
            .find(|b| b.style == 3)
            .and_then(|b| b.custom_id)
            .unwrap_or_else(|| panic!("no Approve button on {:?}", msg.buttons()));
        let spec = PressSpec {
            username: "ops".into(),
            ..PressSpec::new(msg.id, approve, OPS)
        };
        let at = Instant::now();
        let h = self.sim.press(&spec).expect("the press was dispatched");
        (h, at)
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, d)| format!("--- {} ---\n{}", NAMES[i], d.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    /// A failing test shows every node's log (the trees are deleted with the nodes).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// What every node runs with: the cluster's Redis and the Redis store, its name, and
/// the simulator.
fn node_env(redis: &RedisServer, sim: &Simulator, name: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("KEYGATE_CLUSTER_REDIS_URL", redis.url()),
        ("KEYGATE_CLUSTER_NODE", name.to_owned()),
        ("KEYGATE_SECRET_STORE", "redis".to_owned()),
        ("KEYGATE_STORE_PASSPHRASE", PASSPHRASE.to_owned()),
    ];
    env.extend(discord_env(sim));
    env
}

/// The same config contents as `first`: its operator token (mode 0600) in `root`'s
/// config directory (the policy is written by [`Daemon::start_in`]).
fn copy_config(first: &Daemon, root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = root.join("config/keygate");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let token = dir.join("operator.token");
    std::fs::write(&token, format!("{}\n", first.operator_token())).expect("operator token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// The `q` quantile (0–1) of `samples`, nearest rank.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
