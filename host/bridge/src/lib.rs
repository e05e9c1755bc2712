//! The MQTT side of pynq-mqtt: button events out, LED commands in.
//!
//! It knows events and commands (the driver's types) and nothing of registers.
//!
//! One task owns one MQTT connection ([`link`]): it takes events from the driver's
//! channel in batches into a bounded retry buffer ([`outbox`]), encodes one PUBLISH
//! per event with rumqttc's `mqttbytes` codec ([`wire`]) into one buffer, and writes
//! the buffer with one system call. The same task reads acknowledgements and LED
//! commands. Unacknowledged events survive reconnects and are sent again; the
//! session is persistent, subscriptions are renewed on every connection. When the
//! driver's channels close, everything buffered is delivered, then `offline`, then a
//! clean DISCONNECT. Why this design and not rumqttc's event loop: `host/README.md`.
#![forbid(unsafe_code)]

mod backoff;
mod config;
mod connect;
mod discovery;
mod error;
mod fleet;
mod inbox;
mod link;
mod live;
mod outbox;
mod payload;
mod ratelog;
mod session;
mod shown;
mod stats;
mod topics;
mod transport;
mod values;
mod waker;
mod wire;

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use pynq_mqtt_driver::{
    Bell, ButtonEvent, EventTrace, InputLevels, LedCommand, LedReport, Stats as DriverStats,
};

pub use config::{
    parse_broker, BadQos, BadSetting, BridgeConfig, BrokerAddr, BrokerUrl, Brokers, Discovery,
    Protocol, Qos, Rule, RuleLeds, Secret, SessionMode, TlsConfig,
};
pub use connect::{probe, ProbeError, ProbeReport};
pub use discovery::{default_device_name, node_id};
pub use error::{ConnectError, Lost, Refusal};
pub use live::{BridgeLive, Histogram, HistogramView, LATENCY_BOUNDS_US};
pub use payload::{
    button_payload, parse_action, parse_command, printable, CommandError, PayloadFormat,
    StateFormat, MAX_COMMAND_LEN,
};
pub use stats::{summary, BridgeStats, BridgeStatsView};
pub use topics::{check_filter, normalize_prefix, LedTarget, TopicError, TopicLayout, Topics};
pub use transport::{TlsSetupError, TransportError};
pub use values::{Names, Seconds};
pub use wire::WireError;

/// The driver's ends of the channels, and what the bridge reports about it.
pub struct BridgeIo {
    pub events: Receiver<ButtonEvent>,
    pub commands: Sender<LedCommand>,
    pub leds: Receiver<LedReport>,
    /// The inputs' levels read from the hardware (published retained on `input/<name>`).
    pub levels: Receiver<InputLevels>,
    pub n_inputs: u8,
    pub n_leds: u8,
    pub driver_stats: Arc<DriverStats>,
    /// What to do about a failed connection, logged once after the first failure
    /// (the binary's `doctor` knows the fixes; the library only the causes).
    pub connect_hint: Option<ConnectHint>,
    /// Where the bridge shows its connection, window and latency (None: nowhere).
    pub live: Option<Arc<BridgeLive>>,
    /// Bench only: when each event's PUBLISH went into the socket. None (always in the
    /// daemon): no clock is read and nothing is kept.
    pub trace: Option<WriteTrace>,
    /// The driver's bell ([`DriverChannels::bell`](pynq_mqtt_driver::DriverChannels)):
    /// the driver's threads then wake the publisher themselves. None: a thread of the
    /// bridge waits on the channels instead (whoever feeds them need not ring).
    pub bell: Option<Bell>,
}

impl BridgeIo {
    /// The driver's three main ends, for `n_inputs` inputs and `n_leds` LEDs; no level
    /// readings, fresh driver counters, no hint, no live view, no trace (set those
    /// fields after, where they are wanted).
    pub fn new(
        events: Receiver<ButtonEvent>,
        commands: Sender<LedCommand>,
        leds: Receiver<LedReport>,
        n_inputs: u8,
        n_leds: u8,
    ) -> Self {
        Self {
            events,
            commands,
            leds,
            levels: crossbeam_channel::never(),
            n_inputs,
            n_leds,
            driver_stats: Arc::default(),
            connect_hint: None,
            live: None,
            trace: None,
            bell: None,
        }
    }
}

/// Bench only: two moments of the write that puts an event PUBLISH's last byte into
/// the socket, each recorded with the event's sequence number. Between the two is
/// the kernel's send: on loopback it also queues the bytes at the broker's socket and
/// wakes the broker.
#[derive(Debug, Clone)]
pub struct WriteTrace {
    /// When the bridge issued the write(2) (its first try, if the socket was full).
    pub issued: Arc<EventTrace>,
    /// When that write returned.
    pub returned: Arc<EventTrace>,
}

/// The fix for a failed connection, as one line.
pub type ConnectHint = Box<dyn Fn(&ConnectError) -> String + Send + Sync>;

/// What can end the bridge with an error.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot start a bridge thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// A connection problem that retrying will not fix (refused credentials, an
    /// untrusted certificate), seen before the first successful connection.
    #[error("broker {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: ConnectError,
    },
    /// A short connection (removing discovery configs) broke.
    #[error("broker {url}: {source}")]
    Link {
        url: String,
        #[source]
        source: Lost,
    },
    #[error("broker {0}: no acknowledgement in time")]
    NoAck(String),
}

pub(crate) fn tls_of(cfg: &BridgeConfig) -> Result<Option<transport::Tls>, BridgeError> {
    Ok(match &cfg.tls {
        Some(t) => Some(transport::Tls::new(t, &cfg.host)?),
        None => None,
    })
}

/// Checks what can be checked before connecting (TLS files, topic layout).
pub fn check(cfg: &BridgeConfig) -> Result<(), BridgeError> {
    cfg.topics.check()?;
    tls_of(cfg)?;
    Ok(())
}

/// Runs the MQTT side until the driver's channels close and everything is delivered
/// (or the shutdown timeout gave up on it), then `offline` and a clean disconnect.
/// `stats` is updated live (the daemon's own report reads it).
pub async fn run(
    cfg: BridgeConfig,
    io: BridgeIo,
    stats: Arc<BridgeStats>,
) -> Result<BridgeStatsView, BridgeError> {
    cfg.topics.check()?;
    let brokers = cfg
        .brokers()
        .into_iter()
        .map(|c| Ok((tls_of(&c)?, Arc::new(c))));
    let brokers = brokers.collect::<Result<_, BridgeError>>()?;
    link::Link::new(cfg, brokers, io, Arc::clone(&stats))?
        .run()
        .await?;
    Ok(BridgeStatsView::from(stats.as_ref()))
}

/// Removes the Home Assistant discovery configs of a board with `n_inputs` inputs
/// and `n_leds` LEDs (empty retained messages); returns how many.
pub async fn remove_discovery(
    cfg: &BridgeConfig,
    n_inputs: u8,
    n_leds: u8,
) -> Result<usize, BridgeError> {
    cfg.topics.check()?;
    connect::remove_discovery(cfg, n_inputs, n_leds).await
}
