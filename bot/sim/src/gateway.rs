//! The gateway: Discord's websocket protocol (v10, JSON, uncompressed text frames) on
//! loopback. It says HELLO, checks IDENTIFY's token, answers heartbeats, keeps sessions
//! resumable across dropped connections, replays what a session missed on RESUME, and
//! can be told to misbehave (drop the TCP connection, send RECONNECT or
//! INVALID_SESSION) so a bot's recovery can be tested.
//!
//! Every frame for a connection except direct replies goes through that connection's
//! channel, queued while the state lock is held, so READY, replays and new events keep
//! the order their sequence numbers say.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_websockets::{CloseCode, Message, ServerBuilder};

use super::SimError;
use super::payloads;
use super::snowflake::random_hex;
use super::state::{ConnCommand, ConnEntry, LoggedEvent, Session, Settings, Shared, State};

/// How long to wait for the client to answer our close frame before hanging up.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Accept websocket connections until the task is aborted (which also ends every
/// connection, since they live in this task's `JoinSet`).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(Arc::clone(&shared), stream));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("discord simulator: gateway accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// What handling one client frame calls for.
enum Outcome {
    Nothing,
    Reply(String),
    Close(u16, &'static str),
}

async fn connection(shared: Arc<Shared>, stream: TcpStream) {
    // Any path and query is fine: twilight asks for `/?v=10&encoding=json`.
    let Ok((_request, mut ws)) = ServerBuilder::new().accept(stream).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = shared.update(|st| {
        let id = st.next_conn_id;
        st.next_conn_id += 1;
        st.connections.insert(id, ConnEntry { tx, session: None });
        id
    });
    let interval =
        u64::try_from(shared.settings.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
    if ws
        .send(Message::text(payloads::hello(interval)))
        .await
        .is_ok()
    {
        run(&shared, conn_id, &mut ws, &mut rx).await;
    }
    shared.update(|st| detach(st, conn_id));
}

async fn run(
    shared: &Shared,
    conn_id: u64,
    ws: &mut tokio_websockets::WebSocketStream<TcpStream>,
    rx: &mut mpsc::UnboundedReceiver<ConnCommand>,
) {
    let mut closing: Option<Instant> = None;
    loop {
        let grace = async {
            match closing {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            frame = ws.next() => match frame {
                None | Some(Err(_)) => return,
                Some(Ok(msg)) => {
                    if let Some((code, _)) = msg.as_close() {
                        // Discord ends the session when a client closes with 1000 or
                        // 1001; any other code leaves it resumable. tokio-websockets
                        // answers the close itself; the stream then ends.
                        if matches!(u16::from(code), 1000 | 1001) {
                            shared.update(|st| invalidate_session_of(st, conn_id));
                        }
                        Outcome::Nothing
                    } else if closing.is_some() {
                        Outcome::Nothing
                    } else if let Some(text) = msg.as_text() {
                        handle_text(shared, conn_id, text)
                    } else if msg.is_binary() {
                        // We asked for JSON and no compression.
                        Outcome::Close(4002, "Error while decoding payload.")
                    } else {
                        Outcome::Nothing
                    }
                }
            },
            cmd = rx.recv() => match cmd {
                // Dropping the stream closes the TCP connection without a close frame.
                None | Some(ConnCommand::Abort) => return,
                Some(ConnCommand::Send(text)) => Outcome::Reply(text),
                Some(ConnCommand::Close(code, reason)) => Outcome::Close(code, reason),
            },
            () = grace => return,
        };
        match outcome {
            Outcome::Nothing => {}
            Outcome::Reply(text) => {
                if closing.is_none() && ws.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            Outcome::Close(code, reason) => {
                if closing.is_some() {
                    continue;
                }
                let Ok(code) = CloseCode::try_from(code) else {
                    return;
                };
                if ws.send(Message::close(Some(code), reason)).await.is_err() {
                    return;
                }
                // As on Discord, some closes end the session for good.
                if matches!(u16::from(code), 4004 | 4007 | 4009 | 4010..=4014) {
                    shared.update(|st| invalidate_session_of(st, conn_id));
                }
                closing = Some(Instant::now() + CLOSE_GRACE);
            }
        }
    }
}

fn handle_text(shared: &Shared, conn_id: u64, text: &str) -> Outcome {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Outcome::Close(4002, "Error while decoding payload.");
    };
    let Some(op) = v.get("op").and_then(Value::as_u64) else {
        return Outcome::Close(4002, "Error while decoding payload.");
    };
    let d = v.get("d").unwrap_or(&Value::Null);
    match op {
        1 => {
            shared.update(|st| st.heartbeat_count += 1);
            Outcome::Reply(payloads::heartbeat_ack())
        }
        2 => identify(shared, conn_id, d),
        6 => resume(shared, conn_id, d),
        // Presence, voice state, request guild members, soundboard sounds: accepted
        // and ignored once identified.
        3 | 4 | 8 | 31 => {
            let identified = shared.read(|st| {
                st.connections
                    .get(&conn_id)
                    .is_some_and(|c| c.session.is_some())
            });
            if identified {
                Outcome::Nothing
            } else {
                Outcome::Close(4003, "Not authenticated.")
            }
        }
        _ => Outcome::Close(4001, "Unknown opcode."),
    }
}

/// Discord takes the token with or without the `Bot ` prefix in IDENTIFY and RESUME
/// (twilight sends it with).
fn token_ok(s: &Settings, d: &Value) -> bool {
    d.get("token")
        .and_then(Value::as_str)
        .is_some_and(|t| t.strip_prefix("Bot ").unwrap_or(t) == s.token)
}

fn identify(shared: &Shared, conn_id: u64, d: &Value) -> Outcome {
    let s = &shared.settings;
    if !token_ok(s, d) {
        return Outcome::Close(4004, "Authentication failed.");
    }
    let shard = d.get("shard");
    if let Some(shard) = shard {
        let ok = shard.as_array().is_some_and(|a| {
            matches!((a.first().and_then(Value::as_u64), a.get(1).and_then(Value::as_u64), a.len()),
                (Some(id), Some(count), 2) if count > 0 && id < count)
        });
        if !ok {
            return Outcome::Close(4010, "Invalid shard.");
        }
    }
    shared.update(|st| {
        let Some(entry) = st.connections.get_mut(&conn_id) else {
            // The connection was dropped on purpose while this frame was in flight.
            return Outcome::Nothing;
        };
        if entry.session.is_some() {
            return Outcome::Close(4005, "Already authenticated.");
        }
        let sid = random_hex(16);
        entry.session = Some(sid.clone());
        st.sessions.insert(
            sid.clone(),
            Session {
                seq: 0,
                log: Vec::new(),
                conn: Some(conn_id),
            },
        );
        st.current_session = Some(sid.clone());
        st.identify_count += 1;
        let ready = payloads::ready(s, &sid, shard);
        send_event(st, &sid, "READY", &ready, None, true);
        Outcome::Nothing
    })
}

fn resume(shared: &Shared, conn_id: u64, d: &Value) -> Outcome {
    if !token_ok(&shared.settings, d) {
        return Outcome::Close(4004, "Authentication failed.");
    }
    let sid = d
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let after = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
    shared.update(|st| {
        let Some(entry) = st.connections.get_mut(&conn_id) else {
            return Outcome::Nothing;
        };
        if entry.session.is_some() {
            return Outcome::Close(4005, "Already authenticated.");
        }
        let Some(session) = st.sessions.get_mut(&sid) else {
            return Outcome::Reply(payloads::invalid_session(false));
        };
        entry.session = Some(sid.clone());
        let tx = entry.tx.clone();
        // A session lives on one connection: a resume elsewhere ends the old one.
        if let Some(old) = session.conn.replace(conn_id)
            && old != conn_id
            && let Some(e) = st.connections.remove(&old)
        {
            let _ = e.tx.send(ConnCommand::Abort);
        }
        let now = std::time::Instant::now();
        for ev in session.log.iter().filter(|e| e.seq > after) {
            let _ = tx.send(ConnCommand::Send(ev.frame.clone()));
            if let Some(rec) = ev.interaction.and_then(|i| st.interactions.get_mut(&i)) {
                rec.delivered_at.get_or_insert(now);
            }
        }
        st.resume_count += 1;
        st.current_session = Some(sid.clone());
        let trace = json!({ "_trace": ["[\"keygate-sim\",{\"micros\":0}]"] });
        send_event(st, &sid, "RESUMED", &trace, None, false);
        Outcome::Nothing
    })
}

/// Give `name` the session's next sequence number, keep it for replay (`log`), and
/// send it if a connection is attached.
fn send_event(
    st: &mut State,
    sid: &str,
    name: &str,
    d: &Value,
    interaction: Option<u64>,
    log: bool,
) -> Option<u64> {
    let session = st.sessions.get_mut(sid)?;
    session.seq += 1;
    let seq = session.seq;
    let frame = payloads::dispatch(name, seq, d);
    let delivered = session
        .conn
        .and_then(|c| st.connections.get(&c))
        .is_some_and(|c| c.tx.send(ConnCommand::Send(frame.clone())).is_ok());
    if log {
        session.log.push(LoggedEvent {
            seq,
            frame,
            interaction,
        });
    }
    if delivered && let Some(rec) = interaction.and_then(|i| st.interactions.get_mut(&i)) {
        rec.delivered_at.get_or_insert(std::time::Instant::now());
    }
    Some(seq)
}

/// Dispatch an event to the current session: sent now if a connection is attached,
/// otherwise kept for the RESUME that follows.
pub(crate) fn dispatch(
    st: &mut State,
    name: &str,
    d: &Value,
    interaction: Option<u64>,
) -> Result<u64, SimError> {
    let sid = st.current_session.clone().ok_or(SimError::NoSession)?;
    send_event(st, &sid, name, d, interaction, true).ok_or(SimError::NoSession)
}

/// Forget connection `conn_id`; its session stays resumable.
fn detach(st: &mut State, conn_id: u64) {
    if let Some(entry) = st.connections.remove(&conn_id)
        && let Some(sid) = entry.session
        && let Some(session) = st.sessions.get_mut(&sid)
        && session.conn == Some(conn_id)
    {
        session.conn = None;
    }
}

fn invalidate_session_of(st: &mut State, conn_id: u64) {
    let Some(sid) = st
        .connections
        .get_mut(&conn_id)
        .and_then(|e| e.session.take())
    else {
        return;
    };
    st.sessions.remove(&sid);
    if st.current_session.as_deref() == Some(sid.as_str()) {
        st.current_session = None;
    }
}

/// Drop every connection without a close frame, as a network failure would. Sessions
/// stay resumable, and events dispatched from now on wait for the RESUME.
pub(crate) fn drop_connections(shared: &Shared) {
    shared.update(|st| {
        let ids: Vec<u64> = st.connections.keys().copied().collect();
        for id in ids {
            if let Some(entry) = st.connections.get(&id) {
                let _ = entry.tx.send(ConnCommand::Abort);
            }
            detach(st, id);
        }
    });
}

/// Send op 7 RECONNECT on every connection; the client should reconnect and resume.
pub(crate) fn send_reconnect(shared: &Shared) {
    shared.read(|st| {
        for entry in st.connections.values() {
            let _ = entry.tx.send(ConnCommand::Send(payloads::reconnect()));
        }
    });
}

/// Send op 9 INVALID_SESSION on every connection. Unless `resumable`, the sessions are
/// forgotten, so the client has to identify afresh.
pub(crate) fn send_invalid_session(shared: &Shared, resumable: bool) {
    shared.update(|st| {
        let ids: Vec<u64> = st.connections.keys().copied().collect();
        for id in ids {
            if let Some(entry) = st.connections.get(&id) {
                let _ = entry
                    .tx
                    .send(ConnCommand::Send(payloads::invalid_session(resumable)));
            }
            if !resumable {
                invalidate_session_of(st, id);
            }
        }
    });
}

/// Close every connection with `code` (for example 4000 or 4009).
pub(crate) fn close_connections(shared: &Shared, code: u16, reason: &'static str) {
    shared.read(|st| {
        for entry in st.connections.values() {
            let _ = entry.tx.send(ConnCommand::Close(code, reason));
        }
    });
}
