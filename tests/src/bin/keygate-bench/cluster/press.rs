//! Benchmark 2: press → secret across nodes. The bot runs on the lease holder; the agent
//! waits on the other node (its long-poll, then its read), so the approval reaches it
//! through Redis.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use keygate_discord_sim::PressSpec;
use tokio::net::UnixStream;

use super::{Cluster, OPS};
use crate::load::percentile;
use crate::ms;

/// The agent's side: long-poll request `id` on `socket`, then read `db/password`; when
/// it held the value (`None` if anything failed). `ready` fires once the long-poll is
/// sent.
pub(super) async fn wait_and_read(
    socket: PathBuf,
    token: String,
    id: String,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Option<Instant> {
    let auth = format!("Bearer {token}");
    let stream = UnixStream::connect(&socket).await.ok()?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    let req = Request::get(format!("/v1/requests/{id}?wait=30s"))
        .header("host", "k")
        .header("authorization", auth.as_str())
        .body(Empty::<Bytes>::new())
        .ok()?;
    let pending = sender.send_request(req);
    let _ = ready.send(());
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
}

/// Files a single-use request for `db/password` on node `i`; its id.
pub(super) fn file(c: &Cluster, i: usize, reason: &str) -> String {
    let body = serde_json::json!({"secrets": ["db/password"], "reason": reason}).to_string();
    let (code, text) = c.nodes[i].http("POST", "/v1/requests", &c.token, body.as_bytes());
    assert_eq!(code, 201, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["id"].as_str().expect("id").to_owned()
}

/// The custom id of the green Approve button on `msg`.
pub(super) fn approve_button(msg: &keygate_discord_sim::SimMessage) -> String {
    msg.live_buttons()
        .into_iter()
        .find(|b| b.style == 3)
        .and_then(|b| b.custom_id)
        .expect("an Approve button")
}

pub(super) async fn press_to_secret(c: &Cluster, n: u64) {
    let leader = c.leader(&[0, 1]);
    let agent_node = 1 - leader;
    let mut callback = Vec::new();
    let mut release = Vec::new();
    for round in 0..n {
        let id = file(c, agent_node, &format!("press {round}"));
        let msg = c
            .sim
            .wait_for_message(|m| m.text().contains(&id), Duration::from_secs(10))
            .await
            .expect("the leader posted the request");
        let approve = approve_button(&msg);
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let agent = tokio::spawn(wait_and_read(
            c.nodes[agent_node].socket(),
            c.token.clone(),
            id,
            ready_tx,
        ));
        let _ = ready.await;
        // Let the long-poll reach the node before the tap.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let pressed = Instant::now();
        let h = c
            .sim
            .press(&PressSpec::new(msg.id, approve, OPS))
            .expect("press");
        let cb = h.response(Duration::from_secs(5)).await.expect("callback");
        callback.push(cb.elapsed);
        let done = agent
            .await
            .ok()
            .flatten()
            .expect("the agent on the other node got its value");
        release.push(done.duration_since(pressed));
    }
    callback.sort();
    release.sort();
    println!(
        "\n## C2. Press → secret across nodes ({n} approvals; the bot on bench-{}, the agent on bench-{})",
        ["a", "b"][leader],
        ["a", "b"][agent_node]
    );
    println!("| | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (what, v) in [
        ("press → the bot's callback", &callback),
        (
            "press → the agent on the other node holds the value",
            &release,
        ),
    ] {
        println!(
            "| {what} | {} | {} | {} | {} |",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.9)),
            ms(percentile(v, 0.99)),
            ms(v.last().copied().unwrap_or_default())
        );
    }
    println!(
        "goal: p99 < 20 ms; measured **{}**",
        ms(percentile(&release, 0.99))
    );
}
