//! The HTTP(S) client shared by scrapes and writes, built from a plugin's TLS settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::TlsConfig;

/// A pooled HTTP/1.1 client for `http://` and `https://` URLs, sending bodies of type `B`.
pub type Client<B = Full<Bytes>> = LegacyClient<HttpsConnector<HttpConnector>, B>;

/// Why a client could not be built from its TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read PEM file {path}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("tls_cert and tls_key must be given together")]
    HalfClientIdentity,
    #[error("cannot set up TLS")]
    Rustls(#[from] rustls::Error),
    #[error("cannot load the system's trusted certificates")]
    NativeRoots(#[source] std::io::Error),
}

/// Builds a client that trusts `tls.ca` (or the system's roots), presents `tls.cert`/`tls.key`
/// when given, and skips server verification only with `insecure_skip_verify`. The system's
/// roots (a few hundred certificates) are loaded only when `https` is true, that is when some
/// configured URL uses https: a plain-http sidecar does not carry them in memory.
pub fn build<B>(tls: &TlsConfig, https: bool) -> Result<Client<B>, TlsError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
    } else {
        builder.with_root_certificates(root_store(tls.ca.as_deref(), https)?)
    };
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let certs = certificates(cert)?;
            let key =
                PrivateKeyDer::from_pem_slice(&pem_file(key)?).map_err(|source| TlsError::Pem {
                    path: key.clone(),
                    source,
                })?;
            builder.with_client_auth_cert(certs, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::HalfClientIdentity),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(LegacyClient::builder(TokioExecutor::new()).build(connector))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_slice_iter(&pem_file(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn root_store(ca: Option<&Path>, https: bool) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in certificates(path)? {
                roots.add(cert)?;
            }
        }
        None if !https => {}
        None => {
            let native = system_roots()?;
            // Unparseable system certificates are skipped, as every TLS stack does.
            let _ = roots.add_parsable_certificates(native);
        }
    }
    Ok(roots)
}

/// The largest PEM file read: far more than any certificate chain or key.
const MAX_PEM_FILE: u64 = 1 << 20;

/// A PEM file's bytes, at most [`MAX_PEM_FILE`] of them (a path to `/dev/zero` is an error).
fn pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    lifecycle::files::read_capped(path, MAX_PEM_FILE).map_err(|source| TlsError::Pem {
        path: path.to_owned(),
        source: rustls::pki_types::pem::Error::Io(source),
    })
}

fn system_roots() -> Result<Vec<CertificateDer<'static>>, TlsError> {
    // The system bundle of Debian and most distributions; missing means no public roots.
    const BUNDLES: &[&str] = &[
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    let mut certs = Vec::new();
    for bundle in BUNDLES {
        if Path::new(bundle).exists() {
            match CertificateDer::pem_file_iter(bundle) {
                Ok(iter) => certs.extend(iter.filter_map(Result::ok)),
                Err(rustls::pki_types::pem::Error::Io(error)) => {
                    return Err(TlsError::NativeRoots(error));
                }
                Err(_) => {}
            }
            break;
        }
    }
    Ok(certs)
}

/// A header that cannot be sent (bad name or value), named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid http header {0:?}")]
pub struct InvalidHeader(pub String);

/// `Authorization: Basic …` for `username`/`password`, when either is set (as Telegraf does).
pub fn basic_auth(
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Option<hyper::header::HeaderValue>, InvalidHeader> {
    use base64::Engine as _;
    if username.is_none() && password.is_none() {
        return Ok(None);
    }
    let credentials = format!(
        "{}:{}",
        username.unwrap_or_default(),
        password.unwrap_or_default()
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    hyper::header::HeaderValue::from_str(&format!("Basic {encoded}"))
        .map(Some)
        .map_err(|_| InvalidHeader("Authorization".to_owned()))
}

/// Adds `http_headers` (they may override the defaults, as in Telegraf).
pub fn extra_headers(
    headers: &mut hyper::HeaderMap,
    extra: &std::collections::BTreeMap<String, String>,
) -> Result<(), InvalidHeader> {
    for (name, value) in extra {
        let invalid = || InvalidHeader(name.clone());
        let name_parsed =
            hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value_parsed = hyper::header::HeaderValue::from_str(value).map_err(|_| invalid())?;
        headers.insert(name_parsed, value_parsed);
    }
    Ok(())
}

/// A client error with its cause chain (hyper's top-level message alone is vague).
pub fn describe_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `insecure_skip_verify = true`: any certificate is accepted, signatures are still checked.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_client_builds_with_the_system_roots() {
        assert!(build::<Full<Bytes>>(&TlsConfig::default(), true).is_ok());
    }

    #[test]
    fn insecure_skip_verify_builds() {
        let tls = TlsConfig {
            insecure_skip_verify: true,
            ..TlsConfig::default()
        };
        assert!(build::<Full<Bytes>>(&tls, true).is_ok());
    }

    #[test]
    fn missing_or_empty_pem_files_are_named() {
        let tls = TlsConfig {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let Err(error) = build::<Full<Bytes>>(&tls, true) else {
            panic!("a missing CA file must fail");
        };
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");

        let empty = std::env::temp_dir().join(format!("agent-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = TlsConfig {
            ca: Some(empty.clone()),
            ..TlsConfig::default()
        };
        let Err(error) = build::<Full<Bytes>>(&tls, true) else {
            panic!("a file without certificates must fail");
        };
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
        std::fs::remove_file(empty).ok();
    }

    #[test]
    fn basic_credentials_use_the_standard_alphabet() {
        assert_eq!(basic_auth(None, None), Ok(None));
        let value = basic_auth(Some("user"), Some("pa:ss")).unwrap().unwrap();
        assert_eq!(value, "Basic dXNlcjpwYTpzcw==");
        let value = basic_auth(Some("user"), Some("pass")).unwrap().unwrap();
        assert_eq!(value, "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn bad_extra_headers_are_named() {
        let mut headers = hyper::HeaderMap::new();
        let extra = std::collections::BTreeMap::from([("bad name".to_owned(), "v".to_owned())]);
        assert_eq!(
            extra_headers(&mut headers, &extra),
            Err(InvalidHeader("bad name".to_owned()))
        );
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let tls = TlsConfig {
            cert: Some("/some/cert.pem".into()),
            ..TlsConfig::default()
        };
        assert!(matches!(
            build::<Full<Bytes>>(&tls, true),
            Err(TlsError::HalfClientIdentity)
        ));
    }
}
