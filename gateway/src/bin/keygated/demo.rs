//! `keygated demo`: the whole flow on one machine, with nothing to set up. A daemon with
//! an in-memory store in a fresh temporary directory, a demo policy, secret and agent; a
//! request is filed, shown as an approver would see it, approved, and released. Then it
//! keeps serving so the user can try `keygate` by hand.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use keygate_gateway::audit::Actor;
use keygate_gateway::config::Config;
use keygate_gateway::gate::{Outcome, Verdict};
use keygate_gateway::identity::Caller;
use keygate_proto::api::FileRequest;
use keygate_proto::{AgentName, SecretName, SecretValue};
use secrecy::ExposeSecret as _;

use crate::serve;

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

/// Pretends to be Discord's rendering of an approval message, in the terminal.
fn card(view: &keygate_proto::api::RequestView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  ┌─ keygate: approval needed ─────────────────────────────"
    );
    let _ = writeln!(s, "  │ Agent    {}", view.agent);
    let secrets: Vec<&str> = view.secrets.iter().map(SecretName::as_str).collect();
    let _ = writeln!(s, "  │ Secret   {}", secrets.join(", "));
    let _ = writeln!(s, "  │ Reason   {}", view.reason);
    let _ = writeln!(
        s,
        "  │ TTL      {}",
        keygate_proto::duration::format(Duration::from_secs(view.ttl_seconds))
    );
    let _ = writeln!(s, "  │ Request  {}", view.id);
    let _ = writeln!(s, "  │ Expires  {}", view.expires_at);
    let _ = writeln!(s, "  │ [ Approve ]  [ Deny ]");
    let _ = write!(
        s,
        "  └────────────────────────────────────────────────────────"
    );
    s
}

pub async fn run(once: bool) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("keygate-demo-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let root = dir.path();
    for sub in ["config", "data", "state", "run"] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    // The demo's daemon lives entirely in the temporary directory.
    let policies = root.join("config/keygate/policies.toml");
    std::fs::create_dir_all(root.join("config/keygate"))?;
    std::fs::write(&policies, DEMO_POLICY)?;
    let mut config = Config::for_root(root);
    config.store = keygate_gateway::store::Choice::Forced(keygate_gateway::store::Backend::Memory);
    config.policies = policies;

    say("keygate demo: a gateway that asks a human before an agent gets a secret.\n");
    say(&format!(
        "1. Starting keygated in {} with an in-memory secret store.",
        root.display()
    ));
    let running = serve::start(&config).await?;
    let gate = std::sync::Arc::clone(&running.gate);

    let secret = SecretName::new("demo/api-key")?;
    gate.set_secret(secret.clone(), SecretValue::new("demo-value-1234".into()))
        .await?;
    let agent = AgentName::new("demo-agent")?;
    let token = gate.add_agent(&agent)?;
    say("2. Stored the secret `demo/api-key` and added the agent `demo-agent`.");

    let view = gate
        .file(
            &agent,
            FileRequest {
                secrets: vec![secret.clone()],
                reason: "run the demo".into(),
                ttl: None,
                command: None,
                host: Some("demo-host".into()),
            },
        )
        .await?;
    say("3. The agent asked for it (`keygate get demo/api-key --reason \"run the demo\"`).");
    say("   The policy says: ask. Approvers see this message:\n");
    say(&card(&view));

    let by = Actor {
        who: "demo-approver".into(),
        via: "terminal",
    };
    let outcome = gate
        .decide(&view.id, Verdict::Approve { ttl: None }, by, None)
        .await?;
    let Outcome::Decided(decided) = outcome else {
        anyhow::bail!("the demo approval did not decide the request");
    };
    say(&format!(
        "\n4. The demo approver pressed Approve: the request is {}.",
        decided.status.as_str()
    ));
    let release = gate.release(&agent, &secret, None).await?;
    say(&format!(
        "5. Released to the agent: demo/api-key = {} (grant {}, ends {}).",
        release.value.expose(),
        release.grant.as_ref().map_or("-", |g| g.id.as_str()),
        release
            .grant
            .as_ref()
            .map_or("-", |g| g.expires_at.as_str())
    ));
    for g in gate.list_grants(&Caller::Operator) {
        say(&format!(
            "6. Live grant: {} for {} on {} until {}, approved by {}.",
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
        "7. The audit log ({} lines, chain {}) holds every step and no secret value.",
        verify.lines,
        if verify.ok { "intact" } else { "BROKEN" }
    ));

    if once {
        running.shut_down().await;
        return Ok(());
    }
    let url = format!("unix://{}", config.socket.display());
    say("\nThe demo daemon keeps running. In another terminal, try:\n");
    say(&format!("  export KEYGATE_URL={url}"));
    say(&format!(
        "  export KEYGATE_TOKEN=$(cat {})   # the operator",
        config.paths.operator_token().display()
    ));
    say("  keygate status; keygate grants; keygate audit");
    say(&format!(
        "  KEYGATE_TOKEN={} keygate get demo/other --reason test &   # an agent waits",
        token.expose_secret()
    ));
    say("  keygate requests; keygate approve <request id>             # you decide");
    say("\nPress Ctrl-C to stop; the temporary directory is removed.");
    tokio::signal::ctrl_c().await.ok();
    running.shut_down().await;
    drop(dir);
    Ok(())
}
