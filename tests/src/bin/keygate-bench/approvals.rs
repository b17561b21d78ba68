//! Sections 5 and 6: approvals through the Discord simulator.

use super::*;

/// Section 5: from the simulator sending an approver's INTERACTION_CREATE to the waiting
/// agent holding the value; and section 6: the idle RSS of a daemon connected to the
/// simulator.
#[allow(clippy::many_single_char_names)]
pub(super) async fn approval_round_trip(n: u64) {
    use keygate_discord_sim::{PressSpec, SimConfig, Simulator};
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let limits = (n + 10).to_string();
    let d = Daemon::start_with_discord(
        keygate_tests::POLICY,
        &sim,
        &[
            ("RUST_LOG", "warn"),
            ("KEYGATE_LIMITS_REQUESTS_PER_MINUTE", &limits),
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
