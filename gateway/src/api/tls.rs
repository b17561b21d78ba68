//! The TCP listener for remote agents: always TLS (rustls, ring provider, HTTP/2 and
//! HTTP/1.1 by ALPN), except `http://` on a loopback address, which serves plain HTTP for
//! local proxies and is refused anywhere else. Without a configured certificate, the
//! first start makes a self-signed one (key 0600) and every start logs its fingerprint,
//! which clients pin with `KEYGATE_FINGERPRINT`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "listen address `{0}`: expected host:port, or http://host:port for plain HTTP on loopback"
    )]
    BadAddress(String),
    #[error(
        "refusing plain http:// on {0}: it is not a loopback address; drop `http://` to serve TLS"
    )]
    PlainOffLoopback(String),
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// What the daemon listens on over TCP.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: bool,
}

/// Parses `[server] listen`: `host:port` (TLS) or `http://host:port` (loopback only).
pub fn parse_listen(spec: &str) -> Result<Listen, TlsError> {
    let (plain, rest) = match spec.strip_prefix("http://") {
        Some(r) => (true, r),
        None => (false, spec.strip_prefix("https://").unwrap_or(spec)),
    };
    let rest = rest.trim_end_matches('/');
    let addr = rest
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| TlsError::BadAddress(spec.chars().take(100).collect()))?;
    let host = rest
        .rsplit_once(':')
        .map_or(rest, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    // The written host and the address it resolves to must both be loopback: the same
    // rule as plain-text Discord URLs (`keygate_proto::net`), plus the address itself.
    if plain && !(keygate_proto::net::is_loopback_host(&host) && addr.ip().is_loopback()) {
        return Err(TlsError::PlainOffLoopback(rest.to_owned()));
    }
    Ok(Listen {
        addr,
        host,
        tls: !plain,
    })
}

/// `sha256:` + the lower-case hex SHA-256 of the certificate's DER.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(cert.as_ref())))
}

fn read_err(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Loads the certificate and key, making a self-signed pair in `dir` when none is
/// configured and none was made before. Returns the acceptor and the fingerprint.
pub fn acceptor(
    listen: &Listen,
    cert: Option<&Path>,
    key: Option<&Path>,
    dir: &Path,
) -> Result<(tokio_rustls::TlsAcceptor, String), TlsError> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => {
            let c = dir.join("cert.pem");
            let k = dir.join("key.pem");
            if !c.exists() || !k.exists() {
                make_self_signed(listen, &c, &k)?;
            }
            (c, k)
        }
        _ => {
            return Err(TlsError::Config(
                "set both [server] tls_cert and tls_key, or neither".into(),
            ));
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| read_err(&cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&cert_path, e))?;
    let first = certs
        .first()
        .ok_or_else(|| read_err(&cert_path, "no certificate in the file"))?;
    let fp = fingerprint(first);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| read_err(&key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), fp))
}

fn make_self_signed(listen: &Listen, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = listen.host.clone();
    let unspecified = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    if !host.is_empty() && !unspecified && !names.contains(&host) {
        names.push(host);
    }
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    if let Some(dir) = cert.parent() {
        crate::fsutil::ensure_private_dir(dir).map_err(|e| read_err(dir, e))?;
    }
    crate::fsutil::write_private_atomic(cert, made.cert.pem().as_bytes())
        .map_err(|e| read_err(cert, e))?;
    crate::fsutil::write_private_atomic(key, made.signing_key.serialize_pem().as_bytes())
        .map_err(|e| read_err(key, e))?;
    tracing::info!("made a self-signed TLS certificate at {}", cert.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_rules() {
        assert!(parse_listen("127.0.0.1:8443").unwrap().tls);
        assert!(!parse_listen("http://127.0.0.1:8080").unwrap().tls);
        assert!(matches!(
            parse_listen("http://0.0.0.0:8080"),
            Err(TlsError::PlainOffLoopback(_))
        ));
        assert!(parse_listen("nonsense").is_err());
        assert_eq!(parse_listen("[::1]:9000").unwrap().host, "::1");
    }
}
