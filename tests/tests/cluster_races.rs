//! Several real `keygated` on one real `redis-server`, where the nodes could disagree:
//! a revocation on one node is obeyed by every node the moment it returns; Redis gone
//! releases and decides nothing, in one line, and the nodes serve again by themselves
//! when it is back; two nodes deciding one request at once: one wins, everywhere; a
//! single-use grant read on two nodes at once is served once. (Requests, Discord and the
//! lease: `cluster_nodes.rs`.)

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keygate_tests::cluster::{Cluster, POLICY, WAIT};
use keygate_tests::poll;
use serde_json::Value;

const VALUE: &str = "ghp_RACES_never_logged_3";
const DB: &str = "db-pass_RACES_single_use_5";
const PUBLIC: &str = "public-readme_RACES_1";

fn cluster(n: usize) -> Option<Cluster> {
    Cluster::start(
        n,
        POLICY,
        &[
            ("github/token", VALUE),
            ("db/password", DB),
            ("public/readme", PUBLIC),
        ],
    )
}

/// The id of the live grant made by request `request`, as node `i` lists it, once it
/// does.
fn grant_for(c: &Cluster, i: usize, request: &str) -> String {
    poll(WAIT, "the grant to be listed", || {
        let out = c.node(i).keygate(&["grants", "--json"]).run();
        let grants: Vec<Value> = serde_json::from_str(&out.stdout).ok()?;
        grants
            .into_iter()
            .find(|g| g["request"] == request)
            .and_then(|g| g["id"].as_str().map(str::to_owned))
    })
}

/// One line on stderr that says the cluster's Redis cannot be reached, and nothing else.
fn says_unavailable(r: &keygate_tests::Ran, what: &str) {
    assert_eq!(r.code, 1, "{what}: {r:?}");
    assert!(r.stdout.is_empty(), "{what} printed {:?}", r.stdout);
    let line = r.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{what}: {line}");
    let lower = line.to_lowercase();
    assert!(
        lower.contains("redis") || lower.contains("cluster"),
        "{what}: {line}"
    );
}

#[test]
fn once_revoke_returns_on_one_node_no_node_releases_under_the_grant() {
    let Some(c) = cluster(3) else { return };
    for round in 0..3 {
        let id = c.file(0, "github/token", &format!("revoke round {round}"));
        let approved = c.node(1).keygate(&["approve", &id]).run();
        assert_eq!(approved.code, 0, "{approved:?}\n{}", c.logs());
        // Reads on A and C are served, so both hold the grant (and any cached answer).
        for i in [0, 2, 0, 2] {
            poll(WAIT, "a read under the grant", || {
                let (code, body) = c.read(i, "github/token");
                (code == 200 && body.contains(VALUE)).then_some(())
            });
        }
        let grant = grant_for(&c, 1, &id);

        // A reads on A without pause while B revokes; every read that began after the
        // revoke returned is refused, on A and on C.
        let stop = AtomicBool::new(false);
        let started = AtomicUsize::new(0);
        let (reads, returned) = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let at = Instant::now();
                    let (code, body) = c.read(0, "github/token");
                    reads.push((at, code, body));
                    started.fetch_add(1, Ordering::SeqCst);
                }
                reads
            });
            poll(WAIT, "the reader to read", || {
                (started.load(Ordering::SeqCst) > 0).then_some(())
            });
            let revoked = c.node(1).keygate(&["revoke", &grant]).run();
            let returned = Instant::now();
            assert_eq!(revoked.code, 0, "{revoked:?}");
            for i in [0, 2] {
                let (code, body) = c.read(i, "github/token");
                assert_eq!(code, 403, "{} after revoke: {body}", Cluster::name(i));
                assert!(body.contains("no_grant"), "{body}");
            }
            // Let the reader go on a little past the revoke before stopping it.
            let more = Instant::now() + Duration::from_millis(300);
            poll(WAIT, "reads after the revoke", || {
                (Instant::now() > more).then_some(())
            });
            stop.store(true, Ordering::SeqCst);
            (reader.join().expect("reader"), returned)
        });
        let late: Vec<_> = reads.iter().filter(|(at, ..)| *at > returned).collect();
        assert!(!late.is_empty(), "no read after the revoke");
        for (_, code, body) in &late {
            assert_eq!(*code, 403, "round {round}: a read after the revoke: {body}");
            assert!(!body.contains(VALUE));
        }
        eprintln!(
            "round {round}: {} reads on node-a, {} after revoke returned, all refused",
            reads.len(),
            late.len()
        );
    }
}

#[test]
fn redis_gone_releases_and_decides_nothing_and_the_nodes_come_back_by_themselves() {
    let Some(mut c) = cluster(2) else { return };
    // A live reusable grant, read on both nodes (so each may hold it), and a request
    // left pending.
    let id = c.file(0, "github/token", "before the outage");
    let approved = c.node(1).keygate(&["approve", &id]).run();
    assert_eq!(approved.code, 0, "{approved:?}\n{}", c.logs());
    for i in 0..2 {
        let got = c
            .node(i)
            .keygate_as(&c.agent, &["get", "github/token", "--timeout", "5s"])
            .run();
        assert_eq!(got.code, 0, "{got:?}\n{}", c.logs());
        let got = c
            .node(i)
            .keygate_as(&c.agent, &["get", "public/readme"])
            .run();
        assert_eq!(got.stdout.trim_end(), PUBLIC, "{got:?}");
    }
    let pending = c.file(0, "db/password", "decided after the outage");
    // Redis restarts from a snapshot, as a Redis with persistence would.
    assert_eq!(c.redis.command(&["SAVE"]).as_deref(), Some("+OK\r\n"));
    c.redis.stop();

    for i in 0..2 {
        let name = Cluster::name(i);
        for secret in ["public/readme", "github/token"] {
            let r = c
                .node(i)
                .keygate_as(&c.agent, &["get", secret, "--timeout", "5s"])
                .run();
            says_unavailable(&r, &format!("get {secret} on {name}"));
        }
        let (code, body) = c.read(i, "github/token");
        assert_eq!(code, 503, "{name}: {body}");
        let body: Value = serde_json::from_str(&body).expect("error JSON");
        assert_eq!(body["error"], "cluster_unavailable", "{body}");
        let approve = c.node(i).keygate(&["approve", &pending]).run();
        says_unavailable(&approve, &format!("approve on {name}"));
        poll(WAIT, "status to say Redis is unreachable", || {
            let s = c.status(i)?;
            (s["redis"] == "unreachable").then_some(())
        });
    }

    c.redis.restart();
    let back = Instant::now();
    for i in 0..2 {
        poll(Duration::from_secs(20), "the node to serve again", || {
            let r = c
                .node(i)
                .keygate_as(&c.agent, &["get", "public/readme"])
                .run();
            (r.code == 0 && r.stdout.trim_end() == PUBLIC).then_some(())
        });
        let served = back.elapsed();
        // The status follows the link's own reconnection, which may come a little later.
        poll(
            Duration::from_secs(20),
            "status to say Redis is connected",
            || (c.status(i)?["redis"] == "connected").then_some(()),
        );
        eprintln!(
            "{} served again {served:.2?} after Redis, said connected after {:.2?}",
            Cluster::name(i),
            back.elapsed()
        );
    }
    let r = c
        .node(1)
        .keygate_as(&c.agent, &["get", "github/token", "--timeout", "5s"])
        .run();
    assert_eq!(r.stdout.trim_end(), VALUE, "{r:?}");
    assert_eq!(c.request(1, &pending).expect("listed")["status"], "pending");
    c.node(1).keygate(&["approve", &pending]).ok();
    assert!(!c.logs().contains(VALUE), "a value in a log");
}

#[test]
fn two_nodes_deciding_one_request_at_once_one_wins_everywhere() {
    let Some(c) = cluster(2) else { return };
    let (mut approvals, mut denials) = (0, 0);
    for round in 0..10 {
        let id = c.file(0, "db/password", &format!("race {round}"));
        let barrier = Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let approve = s.spawn(|| {
                barrier.wait();
                c.node(0).keygate(&["approve", &id]).run()
            });
            let deny = s.spawn(|| {
                barrier.wait();
                c.node(1).keygate(&["deny", &id]).run()
            });
            (approve.join().expect("approve"), deny.join().expect("deny"))
        });
        let (loser, won, lost) = match (a.code, b.code) {
            (0, 1) => (&b, "approved", "denied"),
            (1, 0) => (&a, "denied", "approved"),
            _ => panic!("round {round}: approve {a:?}, deny {b:?}\n{}", c.logs()),
        };
        assert!(
            loser.stderr.contains("already decided"),
            "round {round}: {loser:?}"
        );
        assert_eq!(loser.stderr.trim().lines().count(), 1, "{loser:?}");
        if won == "approved" {
            approvals += 1;
        } else {
            denials += 1;
        }
        for i in 0..2 {
            poll(WAIT, "every node to show the winner's decision", || {
                let status = c.request(i, &id)?["status"].clone();
                assert_ne!(
                    status,
                    lost,
                    "round {round}: {} shows the loser's",
                    Cluster::name(i)
                );
                (status == won).then_some(())
            });
        }
        // Only the winner's outcome exists: a grant exactly when approved.
        let (code, body) = c.read(1, "db/password");
        assert_eq!(
            code == 200,
            won == "approved",
            "round {round}: read {code} {body}"
        );
    }
    eprintln!("10 races: approve won {approvals}, deny won {denials}");
}

#[test]
fn a_single_use_grant_read_on_two_nodes_at_once_is_served_once() {
    let Some(c) = cluster(2) else { return };
    for round in 0..5 {
        let id = c.file(0, "db/password", &format!("single use {round}"));
        c.node(1).keygate(&["approve", &id]).ok();
        // Both nodes know the grant before they race for it.
        for i in 0..2 {
            grant_for(&c, i, &id);
        }
        let barrier = Barrier::new(4);
        let reads: Vec<(u16, String)> = std::thread::scope(|s| {
            let readers: Vec<_> = [0, 1, 0, 1]
                .into_iter()
                .map(|i| {
                    let barrier = &barrier;
                    let c = &c;
                    s.spawn(move || {
                        barrier.wait();
                        c.read(i, "db/password")
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().expect("reader"))
                .collect()
        });
        let served = reads.iter().filter(|(code, _)| *code == 200).count();
        assert_eq!(served, 1, "round {round}: {reads:?}");
        for (code, body) in &reads {
            if *code == 200 {
                assert!(body.contains(DB), "{body}");
            } else {
                assert_eq!(*code, 403, "{body}");
                assert!(body.contains("no_grant"), "{body}");
            }
        }
        for i in 0..2 {
            assert_eq!(c.read(i, "db/password").0, 403, "spent");
        }
    }
}
