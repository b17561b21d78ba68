//! Agents shared by a cluster, against a real `redis-server` and two real keygated on it:
//! an agent added on one node authenticates on the other as soon as `agents add`
//! returns, and a removed one is refused everywhere as soon as `agents rm` returns;
//! Redis holds hashes, never tokens; a node that finds no agents in Redis seeds them
//! from its own file; with Redis down, adding and removing are refused in one line and
//! change nothing, agents are refused (503 `cluster_unavailable`) while the operator is
//! still known, and everything serves again by itself when Redis is back. Below the
//! daemons, the set in Redis: seeded only once, changed only from the version the writer
//! read, every write announced; and the lease alone (no follower) keeping a removal from
//! being honoured anywhere once the settle time has passed.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use keygate_tests::redis::RedisServer;
use keygate_tests::{Daemon, POLICY, poll};

const KEY: &str = "{keygate}:agents";

fn node(redis: &RedisServer) -> Daemon {
    let url = redis.url();
    Daemon::start_with(POLICY, &[("KEYGATE_CLUSTER_REDIS_URL", url.as_str())])
}

/// Whether Redis holds the agents' set.
fn seeded(redis: &RedisServer) -> bool {
    redis.command(&["HEXISTS", KEY, "version"]).as_deref() == Some(":1\r\n")
}

/// The HTTP status an agent's token gets on a route every agent may use.
fn status_for(node: &Daemon, token: &str) -> u16 {
    node.http("GET", "/v1/requests", token, b"").0
}

fn names(node: &Daemon) -> Vec<String> {
    let out = node.keygate(&["agents", "list", "--json"]).ok();
    let list: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    list.iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_agent_added_or_removed_on_one_node_is_so_on_the_other_when_the_command_returns() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis);
    poll(
        Duration::from_secs(10),
        "the first node to seed Redis",
        || seeded(&redis).then_some(()),
    );
    assert!(a.log().contains("seeded {keygate}:agents"), "{}", a.log());
    let b = node(&redis);

    // Added on A: B knows the token the moment `agents add` has returned on A.
    let one = a.agent("ci-one");
    assert_eq!(status_for(&b, &one), 200);
    assert!(names(&b).contains(&"ci-one".to_owned()));
    let held = redis.command(&["HGET", KEY, "set"]).unwrap();
    assert!(
        held.contains("ci-one") && held.contains("token_sha256"),
        "{held}"
    );
    assert!(!held.contains(&one), "Redis holds a token");

    // Removed on A: refused on B the moment `agents rm` has returned on A.
    a.keygate(&["agents", "rm", "ci-one"]).ok();
    assert_eq!(status_for(&b, &one), 401);
    assert_eq!(status_for(&a, &one), 401);

    // The other way round, through the CLI: added on B, used on A, a second add of the
    // same name refused on A, removed on B, refused on A.
    let two = b.agent("ci-two");
    let listed = a.keygate_as(&two, &["requests"]).run();
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let again = a.keygate(&["agents", "add", "ci-two"]).run();
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stdout.is_empty(), "a token for a refused add");
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        status_for(&a, &two),
        200,
        "the refused add changed the agent"
    );
    b.keygate(&["agents", "rm", "ci-two"]).ok();
    let refused = a.keygate_as(&two, &["requests"]).run();
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    let three = a.agent("ci-three");

    // Redis down: adding and removing are refused in one line, and change nothing.
    redis.stop();
    let add = a.keygate(&["agents", "add", "ci-four"]).run();
    assert_eq!(add.code, 1, "{}", add.stderr);
    assert!(add.stdout.is_empty(), "{}", add.stdout);
    let line = add.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("cluster's Redis is unreachable"), "{line}");
    eprintln!("refused: {line}");
    let rm = b.keygate(&["agents", "rm", "ci-three"]).run();
    assert_eq!(rm.code, 1, "{}", rm.stderr);
    assert!(rm.stderr.contains("unreachable"), "{}", rm.stderr);
    // An agent's token cannot be judged without Redis: 503, not a stale yes. The
    // operator is still known.
    let (code, body) = poll(
        Duration::from_secs(5),
        "an agent refused without Redis",
        || {
            let (code, body) = b.http("GET", "/v1/requests", &three, b"");
            (code == 503).then_some((code, body))
        },
    );
    assert!(body.contains("cluster_unavailable"), "{code} {body}");
    assert_eq!(names(&b), ["ci-three"]);

    // Redis back, empty (as after losing its data): the nodes seed it again from their
    // copies, and everything serves again by itself; nothing refused above happened.
    redis.restart();
    poll(Duration::from_secs(10), "the agents served again", || {
        (status_for(&a, &three) == 200 && status_for(&b, &three) == 200).then_some(())
    });
    assert!(seeded(&redis));
    assert_eq!(names(&a), ["ci-three"]);
    assert_eq!(names(&b), ["ci-three"]);
    let log = format!("{}{}", a.log(), b.log());
    assert!(log.contains("lost its agents: seeded them again"), "{log}");
    assert!(!log.contains(&three), "a token in a log");
}

#[test]
fn a_node_that_finds_no_agents_in_redis_seeds_them_from_its_file() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let mut a = node(&redis);
    let token = a.agent("ci-seed");
    a.stop();
    // A Redis that never saw this cluster: the first node in brings its agents.
    redis.restart();
    assert!(!seeded(&redis));
    a.restart();
    poll(Duration::from_secs(10), "the node to seed Redis", || {
        seeded(&redis).then_some(())
    });
    assert!(
        a.log()
            .contains("seeded {keygate}:agents with this node's 1 from"),
        "{}",
        a.log()
    );
    let b = node(&redis);
    assert_eq!(status_for(&b, &token), 200);
    // B's own (empty) file did not replace the cluster's: B follows it, and keeps a copy.
    assert_eq!(names(&b), ["ci-seed"]);
    assert!(
        b.log().contains("this node follows the cluster's 1 agents"),
        "{}",
        b.log()
    );
}

#[test]
fn adds_on_two_nodes_at_once_lose_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = [node(&redis), node(&redis)];
    poll(Duration::from_secs(10), "Redis seeded", || {
        seeded(&redis).then_some(())
    });
    std::thread::scope(|s| {
        for (n, node) in nodes.iter().enumerate() {
            s.spawn(move || {
                for i in 0..4 {
                    node.agent(&format!("ci-n{n}-{i}"));
                }
            });
        }
    });
    for node in &nodes {
        assert_eq!(names(node).len(), 8, "{:?}", names(node));
    }
}

/// A node's link, once Redis answers.
async fn shared(redis: &RedisServer) -> keygate_cluster::Shared {
    use keygate_cluster::{Health, Link, Shared};
    let link = Link::open(&redis.url()).unwrap();
    let mut health = link.watch_health();
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| *h == Health::Connected),
    )
    .await
    .unwrap()
    .unwrap();
    Shared::new(link)
}

async fn next(
    rx: &mut tokio::sync::mpsc::Receiver<keygate_cluster::events::Event>,
) -> keygate_cluster::events::Event {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn the_agents_set_is_seeded_once_changed_only_from_the_version_read_and_announced() {
    use keygate_cluster::events::{self, Event};
    use keygate_cluster::state::AgentsSet;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (shared(&redis).await, shared(&redis).await);
    let mut seen = events::subscribe(b.link());
    assert_eq!(next(&mut seen).await, Event::Resync);
    assert_eq!(a.agents().await.unwrap(), None);
    assert_eq!(a.agents_version().await.unwrap(), None);

    // Seeding: only while there is no set; the second seeder loses and writes nothing.
    assert!(
        a.replace_agents(None, "v1", b"{\"agents\":[]}")
            .await
            .unwrap()
    );
    assert!(
        !b.replace_agents(None, "v9", b"{\"other\":1}")
            .await
            .unwrap()
    );
    assert_eq!(next(&mut seen).await, Event::Agents);
    assert_eq!(
        b.agents().await.unwrap(),
        Some(AgentsSet {
            version: "v1".into(),
            json: b"{\"agents\":[]}".to_vec()
        })
    );

    // A change applies only to the version it read: of two writers from v1, one wins.
    assert!(
        a.replace_agents(Some("v1"), "v2", b"{\"a\":1}")
            .await
            .unwrap()
    );
    assert!(
        !b.replace_agents(Some("v1"), "v3", b"{\"b\":1}")
            .await
            .unwrap()
    );
    assert_eq!(b.agents_version().await.unwrap().as_deref(), Some("v2"));
    assert_eq!(b.agents().await.unwrap().unwrap().json, b"{\"a\":1}");
    assert_eq!(next(&mut seen).await, Event::Agents);
}

/// The lease, with no follower to hide behind: node B confirms its copy only when asked
/// (as a request whose lease ran out asks), so what B answers rests on the lease alone.
#[tokio::test]
async fn a_copy_is_trusted_only_within_its_lease_so_no_stale_yes_outlives_a_removal() {
    use keygate_gateway::cluster::agents::AgentsCopy;
    use keygate_gateway::identity::lease::SETTLE;
    use keygate_gateway::identity::{Caller, Identities, Unconfirmed};
    use secrecy::ExposeSecret as _;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (sa, sb) = (shared(&redis).await, shared(&redis).await);
    let dir = tempfile::tempdir().unwrap();
    let open = |n: &str| {
        let ids = Identities::load(
            &dir.path().join("operator.token"),
            &dir.path().join(format!("{n}/agents.json")),
        )
        .unwrap();
        ids.follow_cluster();
        ids
    };
    let (ids_a, ids_b) = (open("a"), open("b"));
    let (ca, cb) = (AgentsCopy::default(), AgentsCopy::default());
    let name = keygate_proto::AgentName::new("ci-lease").unwrap();

    let (token, _) = ca.change(&sa, &ids_a, |t| t.add(&name)).await.unwrap();
    let token = token.expose_secret();
    // B never confirmed: it cannot say yes or no until it has.
    assert_eq!(ids_b.check(token), Err(Unconfirmed));
    cb.confirm(&sb, &ids_b, false).await.unwrap();
    assert!(matches!(ids_b.check(token), Ok(Some(Caller::Agent(_)))));

    // Removed on A while B's lease holds: B's copy is stale, and B may say yes only
    // within the settle time that `agents rm` waits out before it returns.
    ca.change(&sa, &ids_a, |t| t.remove(&name)).await.unwrap();
    let removed = tokio::time::Instant::now();
    assert!(ids_b.check(token).is_ok(), "the lease ran out too early");
    tokio::time::sleep_until(removed + SETTLE).await;
    assert_eq!(
        ids_b.check(token),
        Err(Unconfirmed),
        "a stale yes after settling"
    );
    cb.confirm(&sb, &ids_b, false).await.unwrap();
    assert_eq!(ids_b.check(token), Ok(None));
    // A's lease runs out the same way: it too answers only once confirmed again.
    assert_eq!(ids_a.check(token), Err(Unconfirmed));
    ca.confirm(&sa, &ids_a, false).await.unwrap();
    assert_eq!(ids_a.check(token), Ok(None));
}
