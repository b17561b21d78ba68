//! Every payload the simulator sends deserializes with twilight-model, both through a
//! real shard and straight from the JSON: READY, guild / other-guild / DM presses,
//! slash commands, messages, the application and registered commands.
// Helpers outside #[test] fns fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod sim_support;

use keygate_discord_sim::{CommandSpec, GuildMode, PressSpec, SimConfig, SimError};
use serde_json::Value;
use sim_support::{Bot, WAIT, client, start};
use twilight_model::application::command::{Command, CommandType};
use twilight_model::application::interaction::application_command::CommandOptionValue;
use twilight_model::application::interaction::{Interaction, InteractionData, InteractionType};
use twilight_model::channel::Message;
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, Component};
use twilight_model::gateway::payload::incoming::{InteractionCreate, Ready};
use twilight_model::id::Id;
use twilight_util::builder::command::{CommandBuilder, StringBuilder, SubCommandBuilder};

/// The `d` of every dispatched event named `t`, deserialized as `T` (panics with the
/// JSON if twilight refuses it).
fn dispatched<T: serde::de::DeserializeOwned>(events: &[Value], t: &str) -> Vec<T> {
    events
        .iter()
        .filter(|e| e["t"] == t)
        .map(|e| {
            serde_json::from_value(e["d"].clone())
                .unwrap_or_else(|err| panic!("{t} does not deserialize: {err}\n{:#}", e["d"]))
        })
        .collect()
}

fn keygate_command() -> Command {
    CommandBuilder::new("keygate", "keygate approvals", CommandType::ChatInput)
        .option(SubCommandBuilder::new("grants", "List live grants"))
        .option(
            SubCommandBuilder::new("revoke", "Revoke a grant")
                .option(StringBuilder::new("grant", "Grant id").required(true)),
        )
        .build()
}

#[tokio::test]
async fn every_payload_deserializes_with_twilight() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);

    // REST objects.
    let app = http
        .current_user_application()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(app.id.get(), cfg.application_id);
    let registered = http
        .interaction(Id::new(cfg.application_id))
        .set_guild_commands(Id::new(cfg.guild_id), &[keygate_command()])
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(registered.len(), 1);
    assert!(registered[0].id.is_some());
    assert_eq!(registered[0].guild_id.map(Id::get), Some(cfg.guild_id));
    let listed = http
        .interaction(Id::new(cfg.application_id))
        .guild_commands(Id::new(cfg.guild_id))
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(listed, registered);

    let rows = vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![Component::Button(Button {
            custom_id: Some("kg:approve:req_9".into()),
            disabled: false,
            emoji: None,
            id: None,
            label: Some("Approve".into()),
            sku_id: None,
            style: ButtonStyle::Success,
            url: None,
        })],
    })];
    let posted = http
        .create_message(Id::new(cfg.channel_id))
        .content("req_9 @everyone")
        .components(&rows)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let json = sim.message_json(posted.id.get()).unwrap();
    let again: Message = serde_json::from_value(json).unwrap();
    assert_eq!(again.id, posted.id);
    assert!(again.mention_everyone);

    // A guild press, a press from another guild, a DM press, and both commands.
    let id = posted.id.get();
    sim.press(&PressSpec::new(id, "kg:approve:req_9", 11).roles([3, 4]))
        .unwrap();
    sim.press(&PressSpec::new(id, "kg:approve:req_9", 12).guild(GuildMode::OtherGuild(99)))
        .unwrap();
    sim.press(&PressSpec::new(id, "kg:approve:req_9", 13).guild(GuildMode::Dm))
        .unwrap();
    sim.command(&CommandSpec::new(&["grants"], 14)).unwrap();
    sim.command(&CommandSpec::new(&["revoke"], 15).option("grant", "gnt_abc"))
        .unwrap();

    // Through the shard (a payload twilight cannot read fails the test there) …
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(bot.interaction().await.expect("interaction"));
    }
    // … and straight from the JSON.
    let events = sim.events();
    let ready: Vec<Ready> = dispatched(&events, "READY");
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].guilds[0].id.get(), cfg.guild_id);
    let created: Vec<InteractionCreate> = dispatched(&events, "INTERACTION_CREATE");
    let plain: Vec<Interaction> = dispatched(&events, "INTERACTION_CREATE");
    assert_eq!(created.len(), 5);
    assert_eq!(plain.len(), 5);
    for (a, b) in seen.iter().zip(&created) {
        assert_eq!(a, &b.0);
    }

    let guild = &seen[0];
    assert_eq!(guild.kind, InteractionType::MessageComponent);
    assert_eq!(guild.guild_id.map(Id::get), Some(cfg.guild_id));
    assert!(guild.is_guild());
    assert_eq!(guild.member.as_ref().unwrap().roles.len(), 2);
    assert_eq!(guild.message.as_ref().unwrap().content, "req_9 @everyone");
    assert!(guild.channel.is_some());

    assert_eq!(seen[1].guild_id.map(Id::get), Some(99));

    let dm = &seen[2];
    assert!(dm.is_dm());
    assert!(dm.guild_id.is_none() && dm.member.is_none());
    assert_eq!(dm.author_id().map(Id::get), Some(13));

    let Some(InteractionData::ApplicationCommand(grants)) = &seen[3].data else {
        panic!("not a command: {:?}", seen[3].data);
    };
    assert_eq!(grants.name, "keygate");
    assert_eq!(Some(grants.id), registered[0].id);
    assert_eq!(grants.options[0].name, "grants");
    assert!(matches!(&grants.options[0].value, CommandOptionValue::SubCommand(o) if o.is_empty()));

    let Some(InteractionData::ApplicationCommand(revoke)) = &seen[4].data else {
        panic!("not a command: {:?}", seen[4].data);
    };
    let CommandOptionValue::SubCommand(inner) = &revoke.options[0].value else {
        panic!("not a subcommand: {:?}", revoke.options);
    };
    assert_eq!(inner[0].name, "grant");
    assert_eq!(inner[0].value, CommandOptionValue::String("gnt_abc".into()));
}

#[tokio::test]
async fn impossible_interactions_are_refused() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    // No bot has identified yet.
    assert!(matches!(
        sim.command(&CommandSpec::new(&["grants"], 1)),
        Err(SimError::NoSession)
    ));
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    assert!(matches!(
        sim.press(&PressSpec::new(1, "x", 1)),
        Err(SimError::UnknownMessage(1))
    ));
    assert!(matches!(
        sim.command(&CommandSpec::new(&["grants"], 1)),
        Err(SimError::UnknownCommand(_))
    ));
    let http = client(&sim, &cfg.bot_token);
    http.interaction(Id::new(cfg.application_id))
        .set_guild_commands(Id::new(cfg.guild_id), &[keygate_command()])
        .await
        .unwrap();
    assert!(sim.wait_for_command("keygate", WAIT).await);
    assert!(matches!(
        sim.command(&CommandSpec::new(&["revoke"], 1)),
        Err(SimError::MissingOption(_))
    ));
    assert!(matches!(
        sim.command(&CommandSpec::new(&["nope"], 1)),
        Err(SimError::UnknownOption { .. })
    ));
    // Guild commands do not exist in DMs.
    assert!(matches!(
        sim.command(&CommandSpec::new(&["grants"], 1).guild(GuildMode::Dm)),
        Err(SimError::UnknownCommand(_))
    ));
    let rows = vec![Component::ActionRow(ActionRow {
        id: None,
        components: vec![Component::Button(Button {
            custom_id: Some("done".into()),
            disabled: true,
            emoji: None,
            id: None,
            label: Some("Approved".into()),
            sku_id: None,
            style: ButtonStyle::Secondary,
            url: None,
        })],
    })];
    let posted = http
        .create_message(Id::new(cfg.channel_id))
        .components(&rows)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(matches!(
        sim.press(&PressSpec::new(posted.id.get(), "done", 1)),
        Err(SimError::ComponentDisabled { .. })
    ));
    assert!(matches!(
        sim.press(&PressSpec::new(posted.id.get(), "other", 1)),
        Err(SimError::UnknownComponent { .. })
    ));
}
