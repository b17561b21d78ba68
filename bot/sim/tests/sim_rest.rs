//! The simulator's REST routes against a real twilight-http client: Discord's rules
//! for interaction callbacks (3-second window, once only, 15-minute token), deferred
//! responses and follow-ups, message checks, and the log of every call.
// Helpers outside #[test] fns fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::time::Duration;

use keygate_discord_sim::{CommandSpec, PressSpec, SimConfig, Simulator};
use sim_support::{Bot, WAIT, client, discord_code, start};
use twilight_http::Client;
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, Component};
use twilight_model::channel::message::{AllowedMentions, MessageFlags};
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType,
};
use twilight_model::id::Id;
use twilight_model::id::marker::MessageMarker;
use twilight_util::builder::command::{CommandBuilder, StringBuilder, SubCommandBuilder};

fn buttons(ids: &[&str]) -> Vec<Component> {
    vec![Component::ActionRow(ActionRow {
        id: None,
        components: ids
            .iter()
            .map(|id| {
                Component::Button(Button {
                    custom_id: Some((*id).into()),
                    disabled: false,
                    emoji: None,
                    id: None,
                    label: Some("Approve".into()),
                    sku_id: None,
                    style: ButtonStyle::Success,
                    url: None,
                })
            })
            .collect(),
    })]
}

async fn post(sim: &Simulator, http: &Client, ids: &[&str]) -> Id<MessageMarker> {
    let rows = buttons(ids);
    http.create_message(Id::new(sim.config().channel_id))
        .content("request")
        .components(&rows)
        .await
        .unwrap()
        .model()
        .await
        .unwrap()
        .id
}

fn respond(
    kind: InteractionResponseType,
    data: Option<InteractionResponseData>,
) -> InteractionResponse {
    InteractionResponse { kind, data }
}

fn text(content: &str, flags: Option<MessageFlags>) -> InteractionResponseData {
    InteractionResponseData {
        content: Some(content.into()),
        flags,
        ..InteractionResponseData::default()
    }
}

/// Discord's rules for a callback that is in time: once only, and only with the
/// interaction's own token; and the token's 15 minutes (here shortened) for edits.
#[tokio::test]
async fn callbacks_are_taken_once_and_tokens_expire() {
    const LIFETIME: Duration = Duration::from_millis(300);
    let sim = start(SimConfig {
        // A window no machine misses: this test is not about the window.
        interaction_window: Duration::from_secs(60),
        token_lifetime: LIFETIME,
        ..SimConfig::default()
    })
    .await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);
    let msg = post(&sim, &http, &["a"]).await;
    let app = http.interaction(Id::new(cfg.application_id));

    let press = sim.press(&PressSpec::new(msg.get(), "a", 1)).unwrap();
    bot.interaction().await.unwrap();
    // The token's life counts from when the simulator sent the event, which is before
    // the bot saw it: from here, waiting LIFETIME waits at least that long.
    let seen = tokio::time::Instant::now();
    let deferred = respond(InteractionResponseType::DeferredUpdateMessage, None);
    app.create_response(Id::new(press.id()), press.token(), &deferred)
        .await
        .unwrap();
    let again = app
        .create_response(Id::new(press.id()), press.token(), &deferred)
        .await
        .unwrap_err();
    assert_eq!(discord_code(&again), Some((400, 40060)));
    let unknown = app
        .create_response(Id::new(press.id()), "not-the-token", &deferred)
        .await
        .unwrap_err();
    assert_eq!(discord_code(&unknown), Some((404, 10062)));

    // Outliving the token is the behaviour under test.
    tokio::time::sleep_until(seen + LIFETIME + Duration::from_millis(1)).await;
    let expired = app
        .update_response(press.token())
        .content(Some("done"))
        .await
        .unwrap_err();
    assert_eq!(discord_code(&expired), Some((401, 50027)));
}

/// A callback after Discord's window (here shortened) is refused as an unknown
/// interaction and not recorded.
#[tokio::test]
async fn a_callback_after_the_window_is_refused() {
    const WINDOW: Duration = Duration::from_millis(300);
    let sim = start(SimConfig {
        interaction_window: WINDOW,
        ..SimConfig::default()
    })
    .await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);
    let msg = post(&sim, &http, &["b"]).await;
    let app = http.interaction(Id::new(cfg.application_id));

    let late = sim.press(&PressSpec::new(msg.get(), "b", 2)).unwrap();
    bot.interaction().await.unwrap();
    // As above: the window opened before the bot saw the event.
    let seen = tokio::time::Instant::now();
    tokio::time::sleep_until(seen + WINDOW + Duration::from_millis(1)).await;
    let deferred = respond(InteractionResponseType::DeferredUpdateMessage, None);
    let too_late = app
        .create_response(Id::new(late.id()), late.token(), &deferred)
        .await
        .unwrap_err();
    assert_eq!(discord_code(&too_late), Some((404, 10062)));
    assert!(late.callback().is_none());
}

#[tokio::test]
async fn deferred_update_then_edit_original() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);
    let msg = post(&sim, &http, &["approve"]).await;
    let app = http.interaction(Id::new(cfg.application_id));

    let press = sim.press(&PressSpec::new(msg.get(), "approve", 1)).unwrap();
    let i = bot.interaction().await.unwrap();
    app.create_response(
        i.id,
        &i.token,
        &respond(InteractionResponseType::DeferredUpdateMessage, None),
    )
    .await
    .unwrap();
    assert_eq!(sim.message(msg.get()).unwrap().edited, 0);
    app.update_response(&i.token)
        .content(Some("Approved"))
        .components(Some(&[]))
        .await
        .unwrap();
    let edited = sim
        .wait_for_edit(msg.get(), |m| m.edited == 1, WAIT)
        .await
        .unwrap();
    assert_eq!(edited.content, "Approved");
    assert!(edited.live_buttons().is_empty());
    assert_eq!(press.original_message().map(|m| m.id), Some(msg.get()));
}

#[tokio::test]
async fn replies_deferred_replies_and_followups() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let mut bot = Bot::connect(&sim, &cfg.bot_token);
    assert!(bot.ready().await);
    let http = client(&sim, &cfg.bot_token);
    let app = http.interaction(Id::new(cfg.application_id));
    let msg = post(&sim, &http, &["approve"]).await;

    // An ephemeral reply to a press leaves the message alone.
    let press = sim.press(&PressSpec::new(msg.get(), "approve", 9)).unwrap();
    let i = bot.interaction().await.unwrap();
    let reply = respond(
        InteractionResponseType::ChannelMessageWithSource,
        Some(text(
            "You may not approve this.",
            Some(MessageFlags::EPHEMERAL),
        )),
    );
    app.create_response(i.id, &i.token, &reply).await.unwrap();
    let cb = press.response(WAIT).await.unwrap();
    assert_eq!(cb.kind, 4);
    assert!(cb.ephemeral);
    let shown = press.original_message().unwrap();
    assert!(shown.ephemeral() && shown.webhook);
    assert_eq!(shown.interaction_id, Some(press.id()));
    assert_eq!(sim.message(msg.get()).unwrap().edited, 0);
    // Ephemeral messages are invisible to channel routes.
    let hidden = http
        .message(Id::new(cfg.channel_id), Id::new(shown.id))
        .await
        .unwrap_err();
    assert_eq!(discord_code(&hidden), Some((404, 10008)));

    // A slash command answered with a deferred ephemeral reply, then filled in, then a
    // follow-up.
    let command = CommandBuilder::new(
        "keygate",
        "keygate",
        twilight_model::application::command::CommandType::ChatInput,
    )
    .option(
        SubCommandBuilder::new("revoke", "Revoke")
            .option(StringBuilder::new("grant", "id").required(true)),
    )
    .build();
    app.set_guild_commands(Id::new(cfg.guild_id), &[command])
        .await
        .unwrap();
    let run = sim
        .command(&CommandSpec::new(&["revoke"], 9).option("grant", "gnt_1"))
        .unwrap();
    let i = bot.interaction().await.unwrap();
    let thinking = respond(
        InteractionResponseType::DeferredChannelMessageWithSource,
        Some(InteractionResponseData {
            flags: Some(MessageFlags::EPHEMERAL),
            ..InteractionResponseData::default()
        }),
    );
    let with = app
        .create_response(i.id, &i.token, &thinking)
        .with_response()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(with.interaction.id, i.id);
    assert_eq!(with.interaction.response_message_loading, Some(true));
    assert!(run.original_message().unwrap().flags & 128 != 0);
    app.update_response(&i.token)
        .content(Some("Revoked gnt_1"))
        .await
        .unwrap();
    let original = run.original_message().unwrap();
    assert_eq!(original.content, "Revoked gnt_1");
    assert!(original.ephemeral());
    assert_eq!(original.flags & 128, 0);
    assert_eq!(original.kind, 20);
    app.create_followup(&i.token)
        .content("and one more thing")
        .await
        .unwrap();
    assert_eq!(run.followups().len(), 1);
    assert_eq!(run.callback().map(|c| c.kind), Some(5));
}

#[tokio::test]
async fn messages_follow_discords_rules_and_every_call_is_logged() {
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let http = client(&sim, &cfg.bot_token);

    // Unknown channel.
    let err = http
        .create_message(Id::new(cfg.channel_id + 1))
        .content("x")
        .await
        .unwrap_err();
    assert_eq!(discord_code(&err), Some((404, 10003)));

    // allowed_mentions with nothing allowed: @everyone and <@1> ping nobody.
    let none = AllowedMentions::default();
    let quiet = http
        .create_message(Id::new(cfg.channel_id))
        .content("@everyone <@1> look")
        .allowed_mentions(Some(&none))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let stored = sim.message(quiet.id.get()).unwrap();
    assert!(stored.pings.is_empty(), "{:?}", stored.pings);
    assert!(!quiet.mention_everyone);

    // Edit and read back.
    let edited = http
        .update_message(Id::new(cfg.channel_id), quiet.id)
        .content(Some("quiet now"))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(edited.content, "quiet now");
    assert!(edited.edited_timestamp.is_some());
    let read = http
        .message(Id::new(cfg.channel_id), quiet.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(read.content, "quiet now");
    // Clearing everything is refused, as on Discord.
    let empty = http
        .update_message(Id::new(cfg.channel_id), quiet.id)
        .content(None)
        .await
        .unwrap_err();
    assert_eq!(discord_code(&empty), Some((400, 50006)));

    // Duplicate custom ids are refused (twilight does not check this itself).
    let rows = buttons(&["same", "same"]);
    let dup = http
        .create_message(Id::new(cfg.channel_id))
        .components(&rows)
        .await
        .unwrap_err();
    assert_eq!(discord_code(&dup), Some((400, 50035)));

    // A route the simulator does not serve.
    let unknown = http.guild(Id::new(cfg.guild_id)).await.unwrap_err();
    assert_eq!(discord_code(&unknown), Some((404, 0)));

    let log = sim.rest_log();
    let unserved: Vec<_> = log.iter().filter(|c| c.route.is_none()).collect();
    assert_eq!(unserved.len(), 1);
    assert_eq!(
        unserved[0].path,
        format!("/api/v10/guilds/{}", cfg.guild_id)
    );
    let create = log
        .iter()
        .find(|c| c.route == Some("create_message") && c.status == 200)
        .unwrap();
    assert_eq!(
        create.body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    assert!(create.raw_body.contains("@everyone"));
    assert!(log.iter().all(|c| c.authorized));
}

/// A 429 holds a real twilight-http client back for `retry_after`: it reads the
/// simulator's rate-limit headers (scope `user`, `X-RateLimit-Reset-After`), waits, and
/// retries by itself until the post goes through. Only the order and a lower bound are
/// asserted: the client must not come back sooner; how much later depends on the machine.
#[tokio::test]
async fn a_rate_limited_post_is_retried_after_retry_after() {
    const RETRY_AFTER: Duration = Duration::from_millis(600);
    let sim = start(SimConfig::default()).await;
    let cfg = sim.config().clone();
    let http = client(&sim, &cfg.bot_token);
    sim.rate_limit(Some("create_message"), 2, RETRY_AFTER);
    // A limit on one route leaves the others alone.
    http.current_user().await.unwrap();
    let id = post(&sim, &http, &["a"]).await;
    assert!(sim.message(id.get()).is_some());

    let posts: Vec<_> = sim
        .rest_log()
        .into_iter()
        .filter(|c| c.route == Some("create_message"))
        .collect();
    let statuses: Vec<u16> = posts.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    for pair in posts.windows(2) {
        let waited = pair[1].received_at.duration_since(pair[0].received_at);
        assert!(
            waited >= RETRY_AFTER,
            "retried {waited:?} after a 429 that asked for {RETRY_AFTER:?}"
        );
    }
    // The refused posts created nothing: one message, from the last call.
    assert_eq!(sim.messages().len(), 1);
}
