//! The load generator: N keep-alive connections over a Unix socket or TLS, and the
//! figures they give.

use super::*;

#[derive(Debug)]
pub(super) struct Load {
    pub(super) requests: u64,
    pub(super) seconds: f64,
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    pub(super) max: Duration,
    pub(super) errors: u64,
}

impl Load {
    pub(super) fn rps(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.requests as f64;
        n / self.seconds
    }
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// N keep-alive connections hammering `path` for `duration`.
/// Where the load goes: a Unix socket, or TLS over TCP.
#[derive(Clone)]
pub(super) enum Dial {
    Unix(PathBuf),
    Tls(std::net::SocketAddr, tokio_rustls::TlsConnector),
}

impl From<&PathBuf> for Dial {
    fn from(p: &PathBuf) -> Self {
        Self::Unix(p.clone())
    }
}

impl From<PathBuf> for Dial {
    fn from(p: PathBuf) -> Self {
        Self::Unix(p)
    }
}

pub(super) async fn dial(target: &Dial) -> Option<http1::SendRequest<Empty<Bytes>>> {
    match target {
        Dial::Unix(socket) => {
            let stream = UnixStream::connect(socket).await.ok()?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            Some(sender)
        }
        Dial::Tls(addr, tls) => {
            let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let _ = stream.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
            let stream = tls.connect(name, stream).await.ok()?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            Some(sender)
        }
    }
}

/// Accepts any certificate: the benchmark measures throughput, not trust.
#[derive(Debug)]
pub(super) struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(super) fn tls_client() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("tls")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub(super) async fn load(
    target: impl Into<Dial>,
    path: &str,
    token: &str,
    conns: u64,
    duration: Duration,
) -> Load {
    let target: Dial = target.into();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..conns {
        let target = target.clone();
        let path = path.to_owned();
        let auth = format!("Bearer {token}");
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let Some(mut sender) = dial(&target).await else {
                return (lat, 1);
            };
            while !stop.load(Ordering::Relaxed) {
                let req = Request::get(path.as_str())
                    .header("host", "k")
                    .header("authorization", auth.as_str())
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let t = Instant::now();
                let Ok(resp) = sender.send_request(req).await else {
                    errors += 1;
                    break;
                };
                let ok = resp.status().is_success();
                let _ = resp.into_body().collect().await;
                if ok {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    all.sort();
    Load {
        requests: all.len() as u64,
        seconds,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or_default(),
        errors,
    }
}
