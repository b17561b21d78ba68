//! `keygated demo`: the whole flow on one machine, with nothing to set up and no Discord
//! account. A Discord simulator (the real gateway and REST protocols on loopback) stands
//! in for Discord; a daemon with an in-memory store, a demo policy, secret and agent
//! connects to it as it would to Discord. A request is filed and shown as Discord shows
//! it (text, colour, buttons); the approver taps Approve…, and the form (modal) it opens
//! is shown, filled in and submitted; the message as it then reads is shown, and the
//! value released. Then it keeps running so the user can try `keygate` by hand.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use keygate_discord_sim::{
    ModalSubmitSpec, PressSpec, SimConfig, SimMessage, SimModal, SimPerson, Simulator,
};
use keygate_gateway::config::{Config, DiscordConfig};
use keygate_gateway::identity::Caller;
use keygate_proto::api::FileRequest;
use keygate_proto::{AgentName, SecretName, SecretValue};
use secrecy::{ExposeSecret as _, SecretString};

use crate::serve;

const APPROVER: u64 = 100_000_000_000_000_001;
/// Someone in the server who is not an approver: the page can press as them too, to
/// see the bot refuse them (a reply only they see).
const OUTSIDER: u64 = 100_000_000_000_000_002;

const DEMO_POLICY: &str = r#"
[defaults]
request_timeout = "5m"
ttl = "15m"
max_ttl = "1h"

[approvers.demo]
users = ["100000000000000001"]

[[rule]]
name = "demo agent asks for demo secrets"
agents = ["demo-agent"]
secrets = ["demo/*"]
action = "ask"
approvers = ["demo"]
ttl = "10m"
reuse = true
"#;

fn say(text: &str) {
    println!("{text}");
}

/// Markdown and Discord timestamps as a reader sees them.
fn shown(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("<t:") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 3..];
        let stamp = tail.split_once('>').and_then(|(inner, after)| {
            let secs: u64 = inner.split(':').next()?.parse().ok()?;
            Some((secs, after))
        });
        if let Some((secs, after)) = stamp {
            let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
            out.push_str(&keygate_proto::Timestamp::from(t).to_string());
            rest = after;
        } else {
            out.push_str("<t:");
            rest = tail;
        }
    }
    out.push_str(rest);
    let mut plain = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
            continue;
        }
        if c != '\u{200B}' {
            plain.push(c);
        }
    }
    plain
}

/// What an embed's colour bar says (the bot's colours per state).
fn state_colour(colour: Option<u64>) -> &'static str {
    use keygate_bot::render::{AMBER, GREEN, GREY, ORANGE, RED};
    match colour.and_then(|c| u32::try_from(c).ok()) {
        Some(AMBER) => "amber",
        Some(GREEN) => "green",
        Some(ORANGE) => "orange",
        Some(RED) => "red",
        Some(GREY) => "grey",
        _ => "no colour",
    }
}

/// A button as a phone shows it: its label and its colour.
fn button(b: &serde_json::Value) -> String {
    let colour = match b["style"].as_u64() {
        Some(1) => "blue",
        Some(3) => "green",
        Some(4) => "red",
        _ => "grey",
    };
    format!("[ {} ]{colour}", b["label"].as_str().unwrap_or(""))
}

/// A message as Discord would show it, in the terminal: whom it pings, its embed with
/// the colour of its bar, and its buttons row by row.
fn card(m: &SimMessage) -> String {
    let mut s = String::new();
    if !m.content.is_empty() {
        // Whom it notified (the simulator applies `allowed_mentions` as Discord does).
        let _ = writeln!(
            s,
            "  {}   → pings {} user(s), {} role(s), nobody else",
            shown(&m.content),
            m.pings.users.len(),
            m.pings.roles.len()
        );
    }
    for e in &m.embeds {
        let title = e["title"].as_str().unwrap_or("");
        let bar = state_colour(e["color"].as_u64());
        let _ = writeln!(s, "  ┌─ {}   ({bar} bar)", shown(title));
        for f in e["fields"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  │ {:<12} {}",
                f["name"].as_str().unwrap_or(""),
                shown(f["value"].as_str().unwrap_or("")).replace('\n', ", ")
            );
        }
        if let Some(footer) = e["footer"]["text"].as_str() {
            let _ = writeln!(s, "  │ {footer}");
        }
    }
    let rows: Vec<String> = m
        .components
        .iter()
        .map(|row| {
            row["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["type"] == 2 && b["disabled"] != true)
                .map(button)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|r| !r.is_empty())
        .collect();
    if rows.is_empty() {
        let _ = writeln!(s, "  │ (no buttons)");
    }
    for row in rows {
        let _ = writeln!(s, "  │ {row}");
    }
    let _ = write!(s, "  └{}", "─".repeat(60));
    s
}

/// A modal as Discord shows it: its title and each input with what it holds.
fn form(m: &SimModal) -> String {
    let mut s = format!("  ┌─ {} (a form, only the approver sees it)\n", m.title);
    for i in &m.inputs {
        let _ = writeln!(
            s,
            "  │ {:<32} [ {:<14} ]{}",
            i.label.as_deref().unwrap_or(&i.custom_id),
            i.value.as_deref().unwrap_or(""),
            if i.required { " required" } else { "" }
        );
    }
    let _ = write!(s, "  │ [ Submit ]\n  └{}", "─".repeat(60));
    s
}

pub async fn run(once: bool) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("keygate-demo-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let root = dir.path();
    let sim = Simulator::start(SimConfig {
        people: vec![
            SimPerson::new(APPROVER, "demo-approver"),
            SimPerson::new(OUTSIDER, "outsider"),
        ],
        ..SimConfig::default()
    })
    .await
    .context("cannot start the Discord simulator")?;
    let sc = sim.config().clone();

    let policies = root.join("config/keygate/policies.toml");
    std::fs::create_dir_all(root.join("config/keygate"))?;
    std::fs::write(&policies, DEMO_POLICY)?;
    let mut config = Config::for_root(root);
    config.store = keygate_gateway::store::Choice::Forced(keygate_gateway::store::Backend::Memory);
    config.policies = policies;
    config.discord = Some(DiscordConfig {
        token: SecretString::from(sc.bot_token.clone()),
        channel_id: sc.channel_id,
        guild_id: Some(sc.guild_id),
        api_url: Some(sim.rest_url()),
        gateway_url: Some(sim.gateway_url()),
        ping: true,
    });

    say("keygate demo: an agent asks for a secret, a human approves it in Discord, and only");
    say(
        "then does keygated release it. A Discord simulator on this machine stands in for Discord.\n",
    );
    say(&format!(
        "1. Started the Discord simulator ({}) and keygated in {}.",
        sim.gateway_url(),
        root.display()
    ));
    let running = serve::start(&config).await?;
    let gate = std::sync::Arc::clone(&running.gate);
    if let Some(d) = &running.discord
        && !d.wait_connected(Duration::from_secs(10)).await
    {
        anyhow::bail!("the bot did not connect to the simulator");
    }

    let secret = SecretName::new("demo/api-key")?;
    gate.set_secret(secret.clone(), SecretValue::new("demo-value-1234".into()))
        .await?;
    // A second secret for trying the flow by hand afterwards.
    gate.set_secret(
        SecretName::new("demo/db-password")?,
        SecretValue::new("hunter2-demo".into()),
    )
    .await?;
    let agent = AgentName::new("demo-agent")?;
    let token = gate.add_agent(&agent).await?;
    let Some(Caller::Agent(agent)) = gate.authenticate(token.expose_secret()) else {
        anyhow::bail!("the demo agent's new token was not accepted");
    };
    say("2. Stored the secret `demo/api-key` and added the agent `demo-agent`.");

    let view = gate
        .file(
            &agent,
            FileRequest {
                secrets: vec![secret.clone()],
                reason: "deploy the demo app".into(),
                ttl: None,
                command: None,
                host: Some("demo-host".into()),
            },
        )
        .await?;
    let id = view.id.to_string();
    let posted = sim
        .wait_for_message(|m| m.text().contains(&id), Duration::from_secs(10))
        .await
        .context("the request never reached the channel")?;
    say("3. The agent asked: `keygate get demo/api-key --reason \"deploy the demo app\"`.");
    say("   The policy says: ask. The bot posted this to the approval channel:\n");
    say(&card(&posted));

    let approve_form = posted
        .live_buttons()
        .into_iter()
        .find(|b| b.label.as_deref() == Some("Approve…"))
        .and_then(|b| b.custom_id)
        .context("no Approve… button")?;
    let press = sim.press(&PressSpec {
        username: "demo-approver".into(),
        ..PressSpec::new(posted.id, approve_form, APPROVER)
    })?;
    press
        .response(Duration::from_secs(5))
        .await
        .context("the bot did not answer the press")?;
    let modal = sim
        .open_modal(posted.id, APPROVER)
        .context("the bot opened no form")?;
    say("\n4. The demo approver tapped Approve… (green Approve would decide in one tap, with the");
    say("   rule's TTL). The bot answered with this form:\n");
    say(&form(&modal));
    let (ttl, note) = ("30m", "for the demo deploy");
    say(&format!(
        "\n   The approver types {ttl} and the note \"{note}\", and submits it (by hand:"
    ));
    say(&format!(
        "   curl -s -X POST {}/modal-submit -d '{{\"message_id\": \"{}\", \"user_id\": \"{APPROVER}\", \"values\": {{\"ttl\": \"{ttl}\", \"note\": \"{note}\"}}}}')",
        sim.control_url(),
        posted.id
    ));
    let started = Instant::now();
    let submit = sim.submit_modal(&ModalSubmitSpec {
        username: "demo-approver".into(),
        ..ModalSubmitSpec::new(posted.id, APPROVER)
            .value("ttl", ttl)
            .value("note", note)
    })?;
    let callback = submit
        .response(Duration::from_secs(5))
        .await
        .context("the bot did not answer the form")?;
    let released = gate.release(&agent, &secret, None).await?;
    let round_trip = started.elapsed();
    let updated = sim.message(posted.id).context("the message disappeared")?;
    say(&format!(
        "\n5. The bot answered Discord in {:.1} ms; the message now reads (Revoke and Extend",
        callback.elapsed.as_secs_f64() * 1000.0
    ));
    say("   work for the grant's approvers while it lives):\n");
    say(&card(&updated));
    say(&format!(
        "\n6. Released to the agent {:.1} ms after the submit: demo/api-key = {}",
        round_trip.as_secs_f64() * 1000.0,
        released.value.expose()
    ));
    for g in gate.list_grants(&Caller::Operator) {
        say(&format!(
            "7. Live grant {} for {} on {}, until {}, approved by {}.",
            g.id,
            g.agent,
            g.secrets
                .iter()
                .map(SecretName::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            g.expires_at,
            g.approved_by.join(", ")
        ));
    }
    let verify = gate.audit().verify()?;
    say(&format!(
        "8. The audit log ({} lines, chain {}) holds every step and no secret value.",
        verify.lines,
        if verify.ok { "intact" } else { "BROKEN" }
    ));

    if once {
        running.shut_down().await;
        return Ok(());
    }
    let url = format!("unix://{}", config.socket.display());
    say("\nThe demo keeps running. Open the approval channel in your browser: it shows what a");
    say("phone shows in Discord, live, with buttons that press as the demo approver (or as an");
    say("outsider, whom the bot refuses).\n");
    say(&format!("  Approve from your browser: {}", sim.page_url()));
    say("\nThen be the agent, in another terminal:\n");
    say(&format!("  export KEYGATE_URL={url}"));
    say(&format!("  export KEYGATE_TOKEN={}", token.expose_secret()));
    say("  keygate get demo/db-password --reason test   # waits until you tap Approve");
    say("\nOr press by hand with curl:\n");
    say(&format!(
        "  curl -s {}/messages                                  # what the channel shows",
        sim.control_url()
    ));
    say(&format!(
        "  curl -s -X POST {}/press -d '{{\"message_id\": \"<id>\", \"custom_id\": \"kg:a:<request id>\", \"user_id\": \"{APPROVER}\"}}'",
        sim.control_url()
    ));
    say(&format!(
        "  curl -s -X POST {}/press -d '{{\"message_id\": \"<id>\", \"custom_id\": \"kg:am:<request id>\", \"user_id\": \"{APPROVER}\"}}'   # Approve…: a form",
        sim.control_url()
    ));
    say(&format!(
        "  curl -s -X POST {}/modal-submit -d '{{\"message_id\": \"<id>\", \"user_id\": \"{APPROVER}\", \"values\": {{\"ttl\": \"30m\"}}}}'   # its submit: approved for 30m",
        sim.control_url()
    ));
    say(&format!(
        "  KEYGATE_TOKEN=$(cat {}) keygate requests   # or approve as the operator: keygate approve <id>",
        config.paths.operator_token().display()
    ));
    say("\nCtrl-C stops the demo and removes its temporary directory.");
    tokio::signal::ctrl_c().await.ok();
    running.shut_down().await;
    drop(sim);
    drop(dir);
    Ok(())
}
