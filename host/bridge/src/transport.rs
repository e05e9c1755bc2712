//! The byte stream to the broker: TCP, or TLS over TCP with rustls (ring provider),
//! split into a read half and a write half so one task can wait on both.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::TlsConfig;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// The TLS settings could not be loaded; found at start, before any connection.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("TLS: cannot read CA file {path}: {err}")]
    Ca { path: String, err: String },
    #[error("TLS: CA file {0} holds no usable certificate")]
    NoCa(String),
    #[error("TLS: no system CA certificates found (set ca_file)")]
    NoSystemRoots,
    #[error("TLS: cannot read client certificate {path}: {err}")]
    Cert { path: String, err: String },
    #[error("TLS: cannot read client key {path}: {err}")]
    Key { path: String, err: String },
    #[error("TLS: a client certificate needs its key, and a key its certificate")]
    CertWithoutKey,
    #[error("TLS: client certificate and key do not go together: {0}")]
    BadClientAuth(String),
    #[error("TLS: {0:?} is not a valid server name")]
    ServerName(String),
    #[error("TLS: {0}")]
    Rustls(String),
}

/// A ready TLS client: configuration and the name the broker's certificate must have.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.name)
    }
}

impl Tls {
    /// Reads the certificates and builds the client configuration.
    pub fn new(cfg: &TlsConfig, host: &str) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &cfg.ca_file {
            Some(path) => {
                let shown = path.display().to_string();
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TlsSetupError::Ca {
                        path: shown.clone(),
                        err: e.to_string(),
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(TlsSetupError::NoCa(shown));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(TlsSetupError::NoSystemRoots);
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&cfg.client_cert, &cfg.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TlsSetupError::Cert {
                        path: cert.display().to_string(),
                        err: e.to_string(),
                    })?;
                if chain.is_empty() {
                    return Err(TlsSetupError::Cert {
                        path: cert.display().to_string(),
                        err: "no certificate in it".into(),
                    });
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::Key {
                    path: key.display().to_string(),
                    err: e.to_string(),
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsSetupError::BadClientAuth(e.to_string()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsSetupError::CertWithoutKey),
        };
        let name_str = cfg.server_name.clone().unwrap_or_else(|| host.to_owned());
        let name = ServerName::try_from(name_str.clone())
            .map_err(|_| TlsSetupError::ServerName(name_str))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// A failed connect, read or write; TLS failures keep the rustls error and are
/// explained in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{}", explain_tls(err, server))]
    Tls { err: rustls::Error, server: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl TransportError {
    /// Classifies an I/O error of a stream (TLS when `tls` and rustls is inside).
    pub fn of(e: io::Error, tls: Option<&Tls>) -> Self {
        match (tls_error_of(&e), tls) {
            (Some(t), Some(tls)) => Self::Tls {
                err: t.clone(),
                server: format!("{:?}", tls.name),
            },
            _ => Self::Io(e),
        }
    }

    /// A TLS failure: retrying with the same certificates will not help.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls { .. })
    }

    /// The I/O error kind (None for TLS).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io(e) => Some(e.kind()),
            Self::Tls { .. } => None,
        }
    }
}

/// Explains a rustls error in words a user can act on.
fn explain_tls(e: &rustls::Error, name: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS: the broker's certificate is not signed by a trusted CA \
             (check ca_file; rustls: {e})"
        ),
        E::InvalidCertificate(C::NotValidForName)
        | E::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
            "TLS: the broker's certificate is not valid for {name} (set server_name to \
             a name in the certificate; rustls: {e})"
        ),
        E::InvalidCertificate(C::Expired) | E::InvalidCertificate(C::ExpiredContext { .. }) => {
            format!("TLS: the broker's certificate has expired (rustls: {e})")
        }
        E::InvalidCertificate(_) => {
            format!("TLS: the broker's certificate was refused (rustls: {e})")
        }
        E::AlertReceived(A::CertificateRequired)
        | E::AlertReceived(A::BadCertificate)
        | E::AlertReceived(A::UnknownCA)
        | E::AlertReceived(A::CertificateUnknown) => format!(
            "TLS: the broker refused our client certificate (check client_cert and \
             client_key; rustls: {e})"
        ),
        _ => format!("TLS: {e}"),
    }
}

/// The rustls error inside an I/O error, if any.
fn tls_error_of(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// Opens the stream: TCP with Nagle off (a button press must not wait for the
/// previous packet's acknowledgement), then the TLS handshake if configured.
pub async fn open(
    host: &str,
    port: u16,
    tls: Option<&Tls>,
) -> Result<(Reader, Writer), TransportError> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    match tls {
        None => {
            let (r, w) = tcp.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Some(t) => {
            let stream = t
                .connector
                .connect(t.name.clone(), tcp)
                .await
                .map_err(|e| TransportError::of(e, Some(t)))?;
            let (r, w) = tokio::io::split(stream);
            Ok((Box::new(r), Box::new(w)))
        }
    }
}
