//! Opening a connection (TCP, TLS, CONNECT, CONNACK) and the short connections that
//! use only that: [`probe`] (doctor's broker check) and the removal of the Home
//! Assistant discovery configs.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use crate::config::{BridgeConfig, Qos};
use crate::error::ConnectError;
use crate::outbox::EVENT_PKIDS;
use crate::session::{next_ctrl, verdict, CLOSE_WAIT};
use crate::shown;
use crate::topics::Topics;
use crate::transport::{self, Reader, Tls, TransportError, Writer};
use crate::wire::{self, ConnectSpec, Incoming, Limits};
use crate::{discovery, tls_of, BridgeError};

/// An open connection, CONNACK read: the halves, what was read after the CONNACK,
/// and the broker's session-present flag.
pub struct Opened {
    pub rd: Reader,
    pub wr: Writer,
    pub rbuf: BytesMut,
    pub session_present: bool,
    /// What the broker allows (MQTT 5's CONNACK).
    pub limits: Limits,
}

/// TCP (+ TLS), CONNECT (with our last will when `will`), CONNACK, within the
/// configured connect timeout.
pub async fn connect_once(
    cfg: &BridgeConfig,
    tls: Option<&Tls>,
    clean: bool,
    will: bool,
) -> Result<Opened, ConnectError> {
    let will_topic = format!("{}status", cfg.topics.prefix);
    let attempt = async {
        let (mut rd, mut wr) =
            transport::open(&cfg.host, cfg.port, tls, cfg.keep_alive.is_zero()).await?;
        let mut buf = BytesMut::new();
        let keep_alive_s = cfg.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
        let spec = ConnectSpec {
            protocol: cfg.protocol,
            client_id: &cfg.client_id,
            keep_alive_s,
            clean_session: clean,
            will_topic: will.then_some(will_topic.as_str()),
            username: cfg.username.as_deref(),
            password: cfg.password.as_ref().map(|p| p.expose()),
        };
        wire::connect(&mut buf, &spec).map_err(ConnectError::Encode)?;
        let io = |e| ConnectError::Transport(TransportError::of(e, tls));
        wr.write_all(&buf).await.map_err(io)?;
        wr.flush().await.map_err(io)?;
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        loop {
            match wire::read_as(&mut rbuf, cfg.protocol).map_err(ConnectError::Decode)? {
                Some(Incoming::ConnAck(a)) => {
                    if let Some(r) = a.reason.as_deref().filter(|_| a.code != 0) {
                        // once per attempt: the retry's backoff bounds these lines
                        warn!(code = format_args!("{:#04x}", a.code), reason = %shown::text(r), "the broker's reason for refusing");
                    }
                    let session_present = verdict(&a)?;
                    return Ok(Opened {
                        rd,
                        wr,
                        rbuf,
                        session_present,
                        limits: a.limits,
                    });
                }
                Some(Incoming::Packet(p)) => {
                    return Err(ConnectError::Unexpected {
                        kind: shown::kind(&p),
                        bytes: shown::size(&p),
                    })
                }
                Some(Incoming::TooLarge { frame_len, .. }) => {
                    return Err(ConnectError::Unexpected {
                        kind: "too-large packet",
                        bytes: frame_len,
                    })
                }
                // MQTT 5: a broker may refuse with DISCONNECT and a reason code
                Some(Incoming::Disconnect { code, .. }) if code >= 0x80 => {
                    return Err(ConnectError::Refused(crate::Refusal::Mqtt5(code)))
                }
                Some(Incoming::Disconnect { .. }) => {
                    return Err(ConnectError::ClosedBeforeConnack {
                        login: cfg.username.is_some(),
                    })
                }
                Some(Incoming::Failed { kind, .. }) => {
                    return Err(ConnectError::Unexpected { kind, bytes: 0 })
                }
                None => {}
            }
            if rd.read_buf(&mut rbuf).await.map_err(io)? == 0 {
                return Err(ConnectError::ClosedBeforeConnack {
                    login: cfg.username.is_some(),
                });
            }
        }
    };
    tokio::time::timeout(cfg.connect_timeout, attempt)
        .await
        .unwrap_or(Err(ConnectError::Timeout(cfg.connect_timeout)))
}

/// A connection for the session: with `fresh_first`, first a clean one that drops
/// what an earlier process left in our session (stale LED commands, half-done QoS 2
/// ids) and says goodbye, then the one asked for.
pub async fn open(
    cfg: &BridgeConfig,
    tls: Option<&Tls>,
    fresh_first: bool,
    clean: bool,
) -> Result<Opened, ConnectError> {
    if fresh_first {
        let o = connect_once(cfg, tls, true, true).await?;
        say_goodbye(o.rd, o.wr).await;
    }
    connect_once(cfg, tls, clean, true).await
}

/// DISCONNECT, then our side closed, then read until the broker closes, so the close
/// is never a reset that could discard what the broker has not yet read.
pub async fn say_goodbye(mut rd: Reader, mut wr: Writer) {
    let mut b = BytesMut::new();
    wire::disconnect(&mut b);
    let _ = wr.write_all(&b).await;
    close(&mut rd, wr).await;
}

/// Flushes and shuts our side, then reads until the broker closes (at most
/// `CLOSE_WAIT`).
pub async fn close(rd: &mut Reader, mut wr: Writer) {
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// What [`probe`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// `mqtt://host:port` or `mqtts://...`.
    pub url: String,
    /// The TLS handshake was made (and the certificate checked).
    pub tls: bool,
    /// A user name was sent and accepted.
    pub login: bool,
    /// From the TCP connect to the CONNACK.
    pub elapsed: Duration,
}

/// Why [`probe`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TLS settings cannot be loaded (files, names).
    #[error(transparent)]
    Setup(#[from] crate::TlsSetupError),
    #[error("{url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: ConnectError,
    },
}

/// The daemon's own connect as a check: TCP, TLS when configured, CONNECT with the
/// configured login under a client id of its own (a running daemon's session is
/// left alone) and a clean session, no last will; CONNACK; DISCONNECT.
pub async fn probe(cfg: &BridgeConfig) -> Result<ProbeReport, ProbeError> {
    let tls = match &cfg.tls {
        Some(t) => Some(Tls::new(t, &cfg.host)?),
        None => None,
    };
    let mut own = cfg.clone();
    own.client_id = format!("pynq-mqtt-doctor-{}", std::process::id());
    let started = Instant::now();
    let url = cfg.broker_url();
    let o = connect_once(&own, tls.as_ref(), true, false)
        .await
        .map_err(|source| ProbeError::Connect {
            url: url.clone(),
            source,
        })?;
    let elapsed = started.elapsed();
    say_goodbye(o.rd, o.wr).await;
    Ok(ProbeReport {
        url,
        tls: tls.is_some(),
        login: cfg.username.is_some(),
        elapsed,
    })
}

/// Publishes empty retained configs over the discovery topics, so Home Assistant
/// forgets the device; returns how many topics were cleared.
pub async fn remove_discovery(
    cfg: &BridgeConfig,
    n_inputs: u8,
    n_leds: u8,
) -> Result<usize, BridgeError> {
    let Some(d) = &cfg.discovery else {
        return Ok(0);
    };
    let tls = tls_of(cfg)?;
    let topics = Topics::new(&cfg.topics, n_inputs, n_leds);
    let configs = discovery::configs(d, &topics, &cfg.client_id, cfg.state_format);
    let mut own = cfg.clone();
    own.client_id = format!("{}-ha-remove", cfg.client_id);
    let url = cfg.broker_url();
    let fail = |source| BridgeError::Connect {
        url: url.clone(),
        source,
    };
    // no last will: this short connection must not say the board is offline
    let Opened {
        mut rd,
        mut wr,
        mut rbuf,
        ..
    } = connect_once(&own, tls.as_ref(), true, false)
        .await
        .map_err(fail)?;
    let mut buf = BytesMut::new();
    let mut pending = std::collections::HashSet::new();
    let mut id = EVENT_PKIDS;
    for (topic, _) in &configs {
        let pkid = next_ctrl(&mut id);
        wire::publish(
            &mut buf,
            cfg.protocol,
            topic,
            Qos::AtLeastOnce,
            true,
            pkid,
            b"",
        );
        pending.insert(pkid);
    }
    let io = |e| BridgeError::Link {
        url: url.clone(),
        source: crate::error::Lost::Transport(TransportError::of(e, tls.as_ref())),
    };
    wr.write_all(&buf).await.map_err(io)?;
    wr.flush().await.map_err(io)?;
    let wait = async {
        while !pending.is_empty() {
            while let Some(p) =
                wire::read_as(&mut rbuf, cfg.protocol).map_err(|e| BridgeError::Link {
                    url: url.clone(),
                    source: e.into(),
                })?
            {
                match p {
                    Incoming::Packet(Packet::PubAck(a)) => pending.remove(&a.pkid),
                    Incoming::Failed { pkid, .. } => pending.remove(&pkid),
                    _ => false,
                };
            }
            if pending.is_empty() {
                break;
            }
            if rd.read_buf(&mut rbuf).await.map_err(io)? == 0 {
                return Err(BridgeError::Link {
                    url: url.clone(),
                    source: crate::error::Lost::Closed,
                });
            }
        }
        Ok(())
    };
    tokio::time::timeout(cfg.connect_timeout, wait)
        .await
        .map_err(|_| BridgeError::NoAck(url.clone()))??;
    say_goodbye(rd, wr).await;
    Ok(configs.len())
}
