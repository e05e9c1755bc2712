//! The byte stream to the broker: TCP, or TLS over TCP with rustls (ring provider),
//! split into a read half and a write half so one task can wait on both.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::TlsConfig;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// The write half, with the ends of its TCP connection (plain TCP only) so that
/// what the broker never acknowledged can be counted when the connection is lost.
pub struct Writer {
    inner: Box<dyn AsyncWrite + Send + Unpin>,
    ends: Option<Ends>,
}

impl Writer {
    /// Bytes written to the connection that the broker's TCP has not acknowledged:
    /// None with TLS (records are not our bytes) or when the kernel no longer lists
    /// the connection (it was reset).
    pub fn unacked(&self) -> Option<u64> {
        self.ends.and_then(|e| e.unacked())
    }
}

/// Writes some of `buf` (Some(bytes taken)), or flushes when it is empty (None);
/// without a writer (the connection is closing), never.
pub async fn write_or_flush(wr: Option<&mut Writer>, buf: &[u8]) -> io::Result<Option<usize>> {
    use tokio::io::AsyncWriteExt;
    let Some(wr) = wr else {
        return std::future::pending().await;
    };
    if buf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write(buf).await.map(Some)
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The two ends of a TCP connection, which name it in the kernel's socket table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ends {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl Ends {
    /// The connection's send queue as the kernel reports it in /proc/net/tcp(6):
    /// `tx_queue` is written minus acknowledged bytes, what SIOCOUTQ answers (read
    /// from the table because this crate holds no `unsafe`).
    pub fn unacked(&self) -> Option<u64> {
        let table = if self.local.is_ipv4() {
            "/proc/net/tcp"
        } else {
            "/proc/net/tcp6"
        };
        send_queue(&std::fs::read_to_string(table).ok()?, self)
    }
}

/// The `tx_queue` of the connection between `ends` in a /proc/net/tcp table.
pub fn send_queue(table: &str, ends: &Ends) -> Option<u64> {
    let port = |field: &str| {
        field
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, peer, queues) = (f.get(1)?, f.get(2)?, f.get(4)?);
        if port(local)? != ends.local.port() || port(peer)? != ends.peer.port() {
            return None;
        }
        let (tx, _) = queues.split_once(':')?;
        u64::from_str_radix(tx, 16).ok()
    })
}

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
/// TCP keep-alive for a connection without an MQTT keep-alive: the first probe after
/// this long idle, then one every [`TCP_KEEPALIVE_EVERY`], given up after
/// [`TCP_KEEPALIVE_PROBES`] unanswered (a dead broker found in about a minute).
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
pub const TCP_KEEPALIVE_EVERY: Duration = Duration::from_secs(10);
pub const TCP_KEEPALIVE_PROBES: u32 = 3;

/// Turns TCP keep-alive probes on, with the timings above.
fn probe_when_idle(tcp: &TcpStream) -> io::Result<()> {
    let probes = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE)
        .with_interval(TCP_KEEPALIVE_EVERY)
        .with_retries(TCP_KEEPALIVE_PROBES);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&probes)
}

/// Opens the connection; `tcp_keepalive` turns TCP's keep-alive probes on (for a
/// session without MQTT's keep-alive).
pub async fn open(
    host: &str,
    port: u16,
    tls: Option<&Tls>,
    tcp_keepalive: bool,
) -> Result<(Reader, Writer), TransportError> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    if tcp_keepalive {
        probe_when_idle(&tcp)?;
    }
    match tls {
        None => {
            let ends = match (tcp.local_addr(), tcp.peer_addr()) {
                (Ok(local), Ok(peer)) => Some(Ends { local, peer }),
                _ => None,
            };
            let (r, w) = tcp.into_split();
            let w = Writer {
                inner: Box::new(w),
                ends,
            };
            Ok((Box::new(r), w))
        }
        Some(t) => {
            let stream = t
                .connector
                .connect(t.name.clone(), tcp)
                .await
                .map_err(|e| TransportError::of(e, Some(t)))?;
            let (r, w) = tokio::io::split(stream);
            let w = Writer {
                inner: Box::new(w),
                ends: None,
            };
            Ok((Box::new(r), w))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_queue_is_found_by_the_ports_of_both_ends() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:D2A4 0100007F:0BB8 01 00004E20:00000000 01:00000014 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:0BB8 0100007F:D2A4 01 00000000:00000010 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
";
        let ends = Ends {
            local: "127.0.0.1:53924".parse().unwrap(),
            peer: "127.0.0.1:3000".parse().unwrap(),
        };
        assert_eq!(send_queue(table, &ends), Some(0x4E20));
        let other = Ends {
            local: "127.0.0.1:53925".parse().unwrap(),
            ..ends
        };
        assert_eq!(send_queue(table, &other), None);
    }

    #[tokio::test]
    async fn without_an_mqtt_keep_alive_the_socket_probes_an_idle_peer() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (tcp, _peer) = tokio::join!(TcpStream::connect(("127.0.0.1", port)), l.accept());
        let tcp = tcp.unwrap();
        let sock = socket2::SockRef::from(&tcp);
        assert!(!sock.keepalive().unwrap(), "off by default");
        probe_when_idle(&tcp).unwrap();
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), TCP_KEEPALIVE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), TCP_KEEPALIVE_EVERY);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), TCP_KEEPALIVE_PROBES);
    }

    #[tokio::test]
    async fn a_connection_whose_peer_reads_nothing_has_bytes_unacknowledged() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (opened, accepted) = tokio::join!(open("127.0.0.1", port, None, false), l.accept());
        let (_rd, mut wr) = opened.unwrap();
        let (peer, _) = accepted.unwrap();
        assert_eq!(wr.unacked(), Some(0));
        // the peer never reads: once its window is full our bytes stay unacknowledged
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        while let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), wr.write(&chunk)).await
        {
            written += n as u64;
        }
        let q = wr.unacked().unwrap();
        assert!(q > 0 && q <= written, "{q} of {written}");
        drop(peer);
    }
}
