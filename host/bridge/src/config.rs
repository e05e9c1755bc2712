//! Settings of the MQTT side, resolved (the binary reads files, environment and flags).

use std::path::PathBuf;
use std::time::Duration;

use pynq_mqtt_driver::LedAction;

use crate::payload::PayloadFormat;
use crate::topics::TopicLayout;

/// MQTT quality of service, the bridge's own type (the codec's stays private).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Qos {
    /// 0: sent once, finished when written.
    #[default]
    AtMostOnce = 0,
    /// 1: finished on PUBACK; may arrive twice.
    AtLeastOnce = 1,
    /// 2: finished on PUBCOMP; arrives once.
    ExactlyOnce = 2,
}

/// A QoS number other than 0, 1 or 2.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("QoS {0:?}: expected 0, 1 or 2")]
pub struct BadQos(pub String);

impl TryFrom<u8> for Qos {
    type Error = BadQos;
    fn try_from(n: u8) -> Result<Self, BadQos> {
        match n {
            0 => Ok(Self::AtMostOnce),
            1 => Ok(Self::AtLeastOnce),
            2 => Ok(Self::ExactlyOnce),
            _ => Err(BadQos(n.to_string())),
        }
    }
}

impl std::str::FromStr for Qos {
    type Err = BadQos;
    fn from_str(s: &str) -> Result<Self, BadQos> {
        s.trim()
            .parse::<u8>()
            .map_err(|_| BadQos(s.to_owned()))
            .and_then(Self::try_from)
    }
}

impl std::fmt::Display for Qos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// TLS towards the broker (rustls, ring provider).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust; the system's roots when None.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and its key, for brokers that require one.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Name to check the broker's certificate against (and send as SNI); the host
    /// of the broker address when None.
    pub server_name: Option<String>,
}

/// Whether the broker keeps our session between connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionMode {
    /// clean_session = 0 with a stable client id: the broker keeps subscriptions,
    /// queued LED commands and QoS 1/2 state across reconnects. The first connection
    /// of a process starts a fresh session (what an earlier process left is stale).
    #[default]
    Persistent,
    /// clean_session = 1 on every connection.
    Clean,
}

impl std::str::FromStr for SessionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "persistent" => Ok(Self::Persistent),
            "clean" => Ok(Self::Clean),
            _ => Err(format!("session {s:?}: expected `persistent` or `clean`")),
        }
    }
}

/// Which LEDs a rule acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleLeds {
    All,
    Some(Vec<u8>),
}

/// A message on `topic` (a filter below the prefix) drives LEDs; the seed notebook's
/// behaviour is the rule `topic = "button/0"`, `action = "toggle"`, all LEDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub topic: String,
    /// Only messages with one of these payloads; any payload when empty.
    pub payloads: Vec<String>,
    pub action: LedAction,
    pub leds: RuleLeds,
}

/// Home Assistant MQTT discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// Discovery prefix, `homeassistant` by default.
    pub prefix: String,
    /// The device's name in Home Assistant.
    pub device_name: String,
}

/// Everything the MQTT side needs.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub host: String,
    pub port: u16,
    /// TLS when Some.
    pub tls: Option<TlsConfig>,
    /// Stable across restarts for a persistent session.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub session: SessionMode,
    pub keep_alive: Duration,
    /// QoS of the button events.
    pub qos: Qos,
    pub payload: PayloadFormat,
    pub topics: TopicLayout,
    /// Events held between the driver's channel and their acknowledgement; while the
    /// broker is unreachable and this is full, new events are dropped and counted.
    pub buffer_capacity: usize,
    /// QoS 1/2 events sent and not yet acknowledged, at most. The default stays
    /// under mosquitto's default `max_inflight_messages` (20), which mosquitto 2.0
    /// also applies to the QoS 2 messages a client has not yet released.
    pub max_inflight: usize,
    /// Reconnect backoff: doubles from `min` up to `max`, with jitter.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Period of the `stats` message; None turns it off.
    pub stats_interval: Option<Duration>,
    /// After the driver stopped, how long the bridge keeps trying to deliver what is
    /// buffered before it gives up (and counts it as dropped).
    pub shutdown_timeout: Duration,
    /// Opt-in LED rules (the seed's "button/0 toggles all LEDs").
    pub rules: Vec<Rule>,
    pub discovery: Option<Discovery>,
    /// How long a TCP connect, TLS handshake and CONNACK may take.
    pub connect_timeout: Duration,
}

impl BridgeConfig {
    pub fn new(host: &str, port: u16) -> Self {
        Self {
            host: host.to_owned(),
            port,
            tls: None,
            client_id: "pynq-mqtt".into(),
            username: None,
            password: None,
            session: SessionMode::Persistent,
            keep_alive: Duration::from_secs(30),
            qos: Qos::AtMostOnce,
            payload: PayloadFormat::Plain,
            topics: TopicLayout::default(),
            buffer_capacity: 65_536,
            max_inflight: 16,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            stats_interval: Some(Duration::from_secs(30)),
            shutdown_timeout: Duration::from_secs(15),
            rules: Vec::new(),
            discovery: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// `mqtt://host:port` or `mqtts://host:port`, for log lines.
    pub fn broker_url(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let mut c = BridgeConfig::new("h", 1);
        c.password = Some(Secret::new("hunter2"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("***"),
            "{shown}"
        );
        assert_eq!(c.broker_url(), "mqtt://h:1");
        c.host = "::1".into();
        c.tls = Some(TlsConfig::default());
        assert_eq!(c.broker_url(), "mqtts://[::1]:1");
    }

    #[test]
    fn qos_parses_from_its_number_only() {
        assert_eq!("0".parse(), Ok(Qos::AtMostOnce));
        assert_eq!(" 2".parse(), Ok(Qos::ExactlyOnce));
        assert_eq!(Qos::try_from(1), Ok(Qos::AtLeastOnce));
        assert!(Qos::try_from(3).is_err());
        assert!("one".parse::<Qos>().is_err());
        assert!("-1".parse::<Qos>().is_err());
        assert_eq!(Qos::ExactlyOnce.to_string(), "2");
    }
}
