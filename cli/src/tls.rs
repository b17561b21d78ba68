//! TLS to a remote daemon: pin its certificate by fingerprint (`KEYGATE_FINGERPRINT`,
//! `sha256:` + 64 hex digits, either case), or trust a CA file (`KEYGATE_CA`), or the
//! system's roots. A mismatch is refused before any token is sent.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

use crate::failure::{Exit, Failure};

/// Parses `sha256:<64 hex digits>` into the digest.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], Failure> {
    let bad = || {
        Failure::new(
            Exit::Usage,
            "KEYGATE_FINGERPRINT must be `sha256:` followed by 64 hex digits (keygated logs it at start)",
        )
    };
    let hex_part = s.trim().strip_prefix("sha256:").ok_or_else(bad)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// Accepts exactly the certificate with this SHA-256, whatever signed it; the handshake
/// signature is still checked, so the server must hold that certificate's key.
#[derive(Debug)]
struct Pinned {
    digest: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.digest {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the daemon's certificate is sha256:{}, not the pinned KEYGATE_FINGERPRINT",
                hex::encode(got)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS client configuration the environment asks for.
pub fn connector(
    fingerprint: Option<&str>,
    ca: Option<&Path>,
) -> Result<tokio_rustls::TlsConnector, Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::error(format!("TLS: {e}")))?;
    let mut config = if let Some(fp) = fingerprint {
        let digest = parse_fingerprint(fp)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { digest, provider }))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = ca {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| Failure::error(format!("KEYGATE_CA {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert
                    .map_err(|e| Failure::error(format!("KEYGATE_CA {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| Failure::error(format!("KEYGATE_CA {}: {e}", path.display())))?;
            }
        } else {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
        if roots.is_empty() {
            return Err(Failure::error(
                "no certificates to trust: set KEYGATE_FINGERPRINT or KEYGATE_CA",
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::parse_fingerprint;

    #[test]
    fn fingerprints() {
        let hexd = "ab".repeat(32);
        assert!(parse_fingerprint(&format!("sha256:{hexd}")).is_ok());
        assert!(parse_fingerprint(&format!("sha256:{}", hexd.to_uppercase())).is_ok());
        assert!(parse_fingerprint(&hexd).is_err());
        assert!(parse_fingerprint("sha256:abc").is_err());
    }
}
