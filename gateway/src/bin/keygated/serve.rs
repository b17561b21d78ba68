//! `keygated serve`: load everything, bind the socket, serve until a signal says stop.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use keygate_bot::Discord;
use keygate_gateway::api;
use keygate_gateway::api::server::Listener;
use keygate_gateway::config::Config;
use keygate_gateway::gate::Gate;
use keygate_gateway::runtime::{self, Holder, StateLock, load_policy};
use keygate_gateway::terminal::Terminal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A daemon that is serving.
pub struct Running {
    pub gate: Arc<Gate>,
    pub discord: Option<Arc<Discord>>,
    /// On a cluster: the task that runs the bot while this node holds the lease, and
    /// the one that keeps this node's copies of the cluster's state.
    cluster: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// The tokenless metrics listener, when `[metrics] listen` asks for one.
    metrics: Option<JoinHandle<()>>,
    maintenance: JoinHandle<()>,
    socket: std::path::PathBuf,
    /// The state directory is ours while this lives (`keygate --standalone` refuses).
    _lock: StateLock,
}

impl Running {
    /// Stops accepting, answers waiting agents, drains connections, flushes the audit
    /// log (every line is already synced) and removes the socket.
    pub async fn shut_down(self) {
        self.gate.shut_down();
        if let Some(d) = &self.discord {
            d.shut_down();
        }
        if let Some(c) = self.gate.cluster() {
            c.resign().await;
        }
        for task in self.cluster {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        self.stop.send_replace(true);
        let _ = self.server.await;
        if let Some(metrics) = self.metrics {
            let _ = metrics.await;
        }
        let _ = self.maintenance.await;
        self.gate.audit_stopped();
        let _ = std::fs::remove_file(&self.socket);
        tracing::info!("stopped");
    }
}

/// Loads the configuration's state and starts serving.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    // A listener the rules refuse stops the daemon before it touches anything.
    let listen = config
        .listen
        .as_deref()
        .map(api::tls::parse_listen)
        .transpose()?;
    // So does a socket directory that is not ours alone (checked again at bind).
    if let Some(dir) = config.socket.parent() {
        keygate_gateway::fsutil::ensure_runtime_dir(dir)?;
    }
    let opened = runtime::open(config, Holder::Daemon).await?;
    let (gate, ended) = (opened.gate, opened.ended);
    gate.add_channel(Arc::new(Terminal));
    let mut cluster = Vec::new();
    if let Some(c) = gate.cluster() {
        cluster.push(tokio::spawn(Arc::clone(&gate).follow_cluster()));
        if let Some(d) = &config.discord {
            tracing::info!(
                "approvals come from Discord (channel {}), through whichever node holds the lease, and from the terminal",
                d.channel_id
            );
            cluster.push(runtime::discord::lead(d.clone(), Arc::clone(&gate), c));
        }
    }
    let discord = if gate.cluster().is_some() {
        None
    } else if let Some(d) = &config.discord {
        let discord = runtime::discord::connect(d, &gate)
            .await
            .context("Discord")?;
        tracing::info!(
            "approvals come from Discord (channel {}) and from the terminal",
            d.channel_id
        );
        Some(discord)
    } else {
        tracing::info!(
            "no Discord configured: approvals come from the terminal (`keygate requests`, `keygate approve ID`)"
        );
        None
    };

    let mut listeners = vec![Listener::Unix(api::server::bind_unix(&config.socket)?)];
    if let Some(listen) = &listen {
        listeners.push(tcp_listener(config, listen).await?);
    }
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            api::metrics_listener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?,
        ),
        None => None,
    };
    let (stop, stop_rx) = watch::channel(false);
    let metrics = metrics_listener.map(|l| {
        if let Ok(bound) = l.local_addr() {
            tracing::info!("serving metrics on http://{bound}/metrics (no token, loopback only)");
        }
        tokio::spawn(api::metrics_listener::serve(
            l,
            Arc::clone(&gate),
            stop_rx.clone(),
        ))
    });
    let server = tokio::spawn(api::server::serve(
        listeners,
        Arc::clone(&gate),
        config.limits.server(),
        stop_rx,
    ));
    let maintenance = tokio::spawn(Arc::clone(&gate).run_maintenance(ended));
    tracing::info!("serving on {}", config.socket.display());
    Ok(Running {
        gate,
        discord,
        cluster,
        stop,
        server,
        metrics,
        maintenance,
        socket: config.socket.clone(),
        _lock: opened.lock,
    })
}

/// The TCP listener `[server] listen` asks for: TLS, or plain HTTP on loopback only.
async fn tcp_listener(config: &Config, listen: &api::tls::Listen) -> anyhow::Result<Listener> {
    let tcp = tokio::net::TcpListener::bind(listen.addr)
        .await
        .with_context(|| format!("cannot listen on {}", listen.addr))?;
    let bound = tcp.local_addr().unwrap_or(listen.addr);
    if !listen.tls {
        tracing::warn!("serving plain HTTP on http://{bound} (loopback only)");
        return Ok(Listener::Tcp(tcp, None));
    }
    let (acceptor, fingerprint) = api::tls::acceptor(
        listen,
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
        &config.paths.tls_dir(),
    )?;
    tracing::info!("serving TLS on https://{bound}; certificate fingerprint {fingerprint}");
    Ok(Listener::Tcp(tcp, Some(acceptor)))
}

/// `keygated serve`.
pub async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let running = start(&config).await?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    loop {
        tokio::select! {
            _ = hup.recv() => match load_policy(&config.policies) {
                Ok(policy) => {
                    tracing::info!("policies reloaded: {} rules", policy.rules().len());
                    running.gate.set_policy(policy);
                }
                Err(e) => tracing::error!("policies not reloaded, keeping the old ones: {e:#}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping");
    running.shut_down().await;
    Ok(())
}
