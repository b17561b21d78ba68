//! The baselines keygated is measured against: minimal hyper servers answering a fixed
//! body, on a Unix socket, over TLS, and on loopback TCP in a process of their own.

use super::*;

/// The baseline over TLS: the same minimal server behind rustls, with the daemon's own
/// certificate and key.
pub(super) fn baseline_tls_server(
    addr_tx: std::sync::mpsc::Sender<std::net::SocketAddr>,
    cert: PathBuf,
    key: PathBuf,
    body: Bytes,
) {
    use rustls::pki_types::pem::PemObject as _;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
                .expect("cert")
                .collect::<Result<_, _>>()
                .expect("cert");
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).expect("key");
            let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("tls")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("tls");
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = addr_tx.send(listener.local_addr().expect("addr"));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_req| {
                        let body = body.clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
}

/// One baseline connection: HTTP/1.1, every request answered with `body`.
pub(super) async fn serve_fixed<I>(io: I, body: Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_req| {
        let body = body.clone();
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("response"),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The baseline: a minimal hyper server answering a fixed body on a Unix socket.
pub(super) fn baseline_server(socket: PathBuf, body: Bytes) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = UnixListener::bind(&socket).expect("bind baseline");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve_fixed(stream, body.clone()));
            }
        });
    });
}

/// `keygate-bench --serve-baseline PORT BODY_FILE`: the baseline for wrk, in a process of
/// its own as keygated is, with the same runtime (two workers): a minimal hyper server on
/// loopback TCP answering the fixed body.
pub(super) async fn serve_baseline_tcp(port: u16, body: Bytes) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind baseline");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_fixed(stream, body.clone()));
    }
}
