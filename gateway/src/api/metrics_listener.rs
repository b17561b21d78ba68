//! The tokenless metrics listener (`[metrics] listen`, `KEYGATE_METRICS_LISTEN`): plain
//! HTTP/1.1 on a loopback address (the configuration refuses any other), answering
//! `GET /metrics` and nothing else, so a Prometheus on this machine scrapes without the
//! operator's token. What it serves holds no secret, token or name a caller chose
//! (`crate::metrics`); everything else stays behind the API's tokens. It takes few
//! connections and holds none for long: it must never compete with the API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::Ctx;

/// Connections held at once; one more is closed at once.
const MAX_CONNECTIONS: usize = 16;
/// The longest a connection lives, whatever it does (a scraper simply reconnects).
const LIFETIME: Duration = Duration::from_secs(60);
/// How long a request's headers may take.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the listener; the address was checked to be loopback when the configuration
/// was read.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` until `stop` turns true.
pub async fn serve(listener: TcpListener, gate: Ctx, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        // Finished connections are collected as others arrive.
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else { continue };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let gate = Arc::clone(&gate);
        conns.spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req: Request<Incoming>| {
                std::future::ready(Ok::<_, Infallible>(answer(&gate, &req)))
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(LIFETIME, conn).await;
        });
    }
    conns.shutdown().await;
}

fn answer(gate: &Ctx, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "this listener serves GET /metrics only\n",
        );
    }
    if req.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics only\n");
    }
    super::routes::metrics::exposition(gate)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
