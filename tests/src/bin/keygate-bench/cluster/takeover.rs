//! Benchmark 3: takeover after `kill -9` of the lease holder. Before the kill a request
//! is filed and its message posted by the holder; after it, the clock runs until the
//! other node's bot has identified to the simulator, and, separately, until an approver
//! pressing Approve on that old message every 100 ms gets an answer. The killed node is
//! then started again (as a follower) for the next round.

use std::time::{Duration, Instant};

use keygate_discord_sim::{InteractionHandle, PressSpec};

use super::press::{approve_button, file};
use super::{Cluster, OPS};
use crate::ms;

/// How long one round waits for both ends before giving up.
const GIVE_UP: Duration = Duration::from_secs(60);

pub(super) async fn takeovers(c: &mut Cluster, n: u64) {
    let mut connected = Vec::new();
    let mut answered = Vec::new();
    let mut order = Vec::new();
    for round in 0..n {
        let leader = c.leader(&[0, 1]);
        assert!(
            c.sim.wait_connected(Duration::from_secs(30)).await,
            "the leader's bot is not connected"
        );
        let survivor = 1 - leader;
        let id = file(c, survivor, &format!("takeover {round}"));
        let msg = c
            .sim
            .wait_for_message(|m| m.text().contains(&id), Duration::from_secs(10))
            .await
            .expect("the leader posted the request");
        let approve = approve_button(&msg);
        let sessions = c.sim.identify_count() + c.sim.resume_count();
        c.nodes[leader].signal("KILL");
        let killed = Instant::now();
        let (mut conn_at, mut answer_at) = (None, None);
        let mut presses: Vec<InteractionHandle> = Vec::new();
        let mut last_press: Option<Instant> = None;
        while conn_at.is_none() || answer_at.is_none() {
            assert!(
                killed.elapsed() < GIVE_UP,
                "no takeover within {GIVE_UP:?} (round {round})"
            );
            if conn_at.is_none()
                && c.sim.identify_count() + c.sim.resume_count() > sessions
                && c.sim.connected()
            {
                conn_at = Some(killed.elapsed());
            }
            if answer_at.is_none() {
                if presses.iter().any(|h| h.callback().is_some()) {
                    answer_at = Some(killed.elapsed());
                } else if last_press.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                    // Refused while no session is live (NoSession): a tap into the void.
                    if let Ok(h) = c.sim.press(&PressSpec::new(msg.id, approve.clone(), OPS)) {
                        presses.push(h);
                    }
                    last_press = Some(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (conn_at, answer_at) = (conn_at.unwrap_or_default(), answer_at.unwrap_or_default());
        connected.push(conn_at);
        answered.push(answer_at);
        order.push(format!(
            "{} → {}: {} / {}",
            ["a", "b"][leader],
            ["a", "b"][survivor],
            ms(conn_at),
            ms(answer_at)
        ));
        // The old message's request was decided by the new holder.
        let approved = keygate_tests::poll(Duration::from_secs(10), "the approval", || {
            c.nodes[survivor]
                .requests()
                .into_iter()
                .find(|r| r["id"] == id.as_str())
                .filter(|r| r["status"] != "pending")
                .map(|r| r["status"] == "approved")
        });
        assert!(approved, "the press on the old message did not approve it");
        c.nodes[leader].restart();
    }
    connected.sort();
    answered.sort();
    println!("\n## C3. Takeover after kill -9 of the lease holder ({n} rounds, 2 nodes)");
    println!("rounds (killed → new holder: bot connected / old message's press answered):");
    for line in &order {
        println!("- {line}");
    }
    println!("| from the kill to | min | median | max |");
    println!("|---|---|---|---|");
    for (what, v) in [
        ("the new holder's bot connected", &connected),
        ("a press on the old message answered", &answered),
    ] {
        println!(
            "| {what} | {} | {} | {} |",
            secs(v.first().copied().unwrap_or_default()),
            secs(v.get(v.len() / 2).copied().unwrap_or_default()),
            secs(v.last().copied().unwrap_or_default())
        );
    }
    println!(
        "goal: < 15 s; worst **{}**",
        secs(answered.last().copied().unwrap_or_default())
    );
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
