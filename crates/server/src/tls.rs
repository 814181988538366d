//! TLS for the server (rustls with aws-lc-rs): a certificate chain and a private key from PEM files.
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// A TLS server configuration from the PEM certificate chain `cert` (leaf first) and the PEM
/// private key `key` (PKCS#8, PKCS#1 or SEC1). TLS 1.2 and 1.3, HTTP/1.1 by ALPN.
///
/// # Errors
/// [`ServerError::Tls`] naming the file and what is wrong with it.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServerError> {
    tls_config_with_clients(cert, key, None)
}

/// [`tls_config`], and with `client_ca` (PEM certificates) relying parties may also authenticate
/// with a client certificate issued under one of them (mutual TLS). Presenting one stays optional,
/// so API keys keep working; a certificate that does not chain to `client_ca` fails the handshake.
///
/// # Errors
/// [`ServerError::Tls`] naming the file and what is wrong with it.
pub fn tls_config_with_clients(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, ServerError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| ServerError::Tls(format!("{}: {e}", ca.display())))?
            {
                let c = c.map_err(|e| ServerError::Tls(format!("{}: {e}", ca.display())))?;
                roots
                    .add(c)
                    .map_err(|e| ServerError::Tls(format!("{}: {e}", ca.display())))?;
            }
            if roots.is_empty() {
                return Err(ServerError::Tls(format!(
                    "{}: no certificate in it",
                    ca.display()
                )));
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| ServerError::Tls(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls(format!("the certificate and the key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
