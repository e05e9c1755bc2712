//! Settings of the MQTT side, resolved (the binary reads files, environment and flags).

use std::path::PathBuf;
use std::time::Duration;

use pynq_mqtt_driver::LedAction;

use crate::payload::{parse_action, PayloadFormat, StateFormat};
use crate::topics::{TopicError, TopicLayout};

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

/// In the config file, a QoS is a TOML integer.
impl<'de> serde::Deserialize<'de> for Qos {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(u8::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Qos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

/// Settings that a config file holds as the text their flag takes.
macro_rules! serde_as_text {
    ($($t:ty),+) => {$(
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )+};
}
serde_as_text!(BrokerUrl, SessionMode, PayloadFormat, StateFormat);

impl std::fmt::Display for Qos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

/// Whether the broker keeps our session, as its setting reads: `persistent` or `clean`.
impl std::fmt::Display for SessionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Persistent => "persistent",
            Self::Clean => "clean",
        })
    }
}

/// The MQTT version spoken to the broker: `3.1.1` (the default) or `5`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    V311,
    V5,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        })
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "3.1.1" | "4" => Ok(Self::V311),
            "5" | "5.0" => Ok(Self::V5),
            _ => Err(format!("protocol {s:?}: expected `3.1.1` or `5`")),
        }
    }
}

/// In the config file `protocol = 5` and `protocol = "5"` both read.
impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Level(u8),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            Raw::Level(n) => n.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A broker's host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

/// The broker setting: `mqtt://HOST[:PORT]` (port 1883) or `mqtts://HOST[:PORT]` (TLS,
/// port 8883), IPv6 hosts in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub addr: BrokerAddr,
    pub tls: bool,
}

impl std::str::FromStr for BrokerUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, tls) = parse_broker(s).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(Self { addr, tls })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, host) = (if self.tls { "mqtts" } else { "mqtt" }, &self.addr.host);
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{}", self.addr.port)
        } else {
            write!(f, "{scheme}://{host}:{}", self.addr.port)
        }
    }
}

/// The broker setting: one URL, or several for failover (a cluster's nodes), tried in
/// order from the first; on a failed connection the daemon moves to the next. Text is
/// one URL or several separated by commas; a config file may also give a list. Every
/// URL has the same scheme, since the TLS settings are shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brokers(Vec<BrokerUrl>);

impl Brokers {
    /// Refuses an empty list, a repeated broker and mixed `mqtt://` and `mqtts://`.
    pub fn new(urls: Vec<BrokerUrl>) -> Result<Self, String> {
        let Some(first) = urls.first() else {
            return Err("expected at least one broker URL".into());
        };
        if let Some(u) = urls.iter().find(|u| u.tls != first.tls) {
            return Err(format!(
                "{u} and {first}: every broker takes the same scheme (the TLS settings are shared)"
            ));
        }
        if let Some((i, u)) = urls
            .iter()
            .enumerate()
            .find(|(i, u)| urls[..*i].contains(u))
        {
            return Err(format!("{u} is given twice (as broker {})", i + 1));
        }
        Ok(Self(urls))
    }

    /// The broker tried first.
    pub fn first(&self) -> &BrokerUrl {
        &self.0[0]
    }

    /// Every broker, in the order they are tried.
    pub fn urls(&self) -> &[BrokerUrl] {
        &self.0
    }

    /// The brokers of `self` then those of `more` (a flag given several times).
    pub fn join(self, more: &Brokers) -> Result<Self, String> {
        Self::new(self.0.into_iter().chain(more.0.iter().cloned()).collect())
    }
}

impl std::str::FromStr for Brokers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let urls = s.split(',').map(|u| u.trim().parse());
        Self::new(urls.collect::<Result<_, _>>()?)
    }
}

impl std::fmt::Display for Brokers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, u) in self.0.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            write!(f, "{sep}{u}")?;
        }
        Ok(())
    }
}

/// One broker reads back as the string it was (the seed's `broker = "mqtt://…"`),
/// several as a list.
impl serde::Serialize for Brokers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            all => all.serialize(s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Brokers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(
            untagged,
            expecting = "expected a broker URL or a list of them, e.g. [\"mqtt://a:1883\", \"mqtt://b:1883\"]"
        )]
        enum Text {
            One(String),
            Many(Vec<String>),
        }
        let urls = match Text::deserialize(d)? {
            Text::One(s) => return s.parse().map_err(serde::de::Error::custom),
            Text::Many(v) => v.iter().map(|u| u.parse()).collect::<Result<_, String>>(),
        };
        urls.and_then(Self::new).map_err(serde::de::Error::custom)
    }
}

/// Parses a broker URL (see [`BrokerUrl`]): the address, and whether it is TLS.
pub fn parse_broker(url: &str) -> Result<(BrokerAddr, bool), String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else {
        return Err("expected mqtt://HOST:PORT or mqtts://HOST:PORT".into());
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '[', ']']) {
        return Err(format!("bad host {host:?}"));
    }
    let port = match port {
        None if tls => 8883,
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    let host = host.to_owned();
    Ok((BrokerAddr { host, port }, tls))
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
/// behaviour is the rule `topic = "button/0"`, `action = "toggle"`, all LEDs. In the
/// config file, a `[[rule]]` table of these keys, action and leds optional.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "RuleText")]
pub struct Rule {
    pub topic: String,
    /// Only messages with one of these payloads; any payload when empty.
    pub payloads: Vec<String>,
    pub action: LedAction,
    pub leds: RuleLeds,
}

/// A `[[rule]]` table as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    topic: String,
    #[serde(default)]
    payloads: Vec<String>,
    action: Option<String>,
    leds: Option<LedsText>,
}

#[derive(serde::Deserialize)]
#[serde(
    untagged,
    expecting = "expected \"all\" or a list of LED numbers 0 to 255"
)]
enum LedsText {
    Word(String),
    Numbers(Vec<u8>),
}

impl TryFrom<RuleText> for Rule {
    type Error = String;
    fn try_from(r: RuleText) -> Result<Self, String> {
        if let Err(why) = crate::topics::check_filter(&r.topic) {
            return Err(format!("topic: not a topic filter: {why}"));
        }
        let action = match r.action.as_deref().map(parse_action) {
            None => LedAction::Toggle,
            Some(Ok(a)) => a,
            Some(Err(_)) => return Err("action: expected on, off or toggle".into()),
        };
        let leds = match r.leds {
            None => RuleLeds::All,
            Some(LedsText::Word(w)) if w == "all" => RuleLeds::All,
            Some(LedsText::Numbers(n)) => RuleLeds::Some(n),
            Some(LedsText::Word(_)) => return Err("leds: expected \"all\" or LED numbers".into()),
        };
        let (topic, payloads) = (r.topic, r.payloads);
        Ok(Rule {
            topic,
            payloads,
            action,
            leds,
        })
    }
}

/// Home Assistant MQTT discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// Discovery prefix, `homeassistant` by default.
    pub prefix: String,
    /// The device's name in Home Assistant.
    pub device_name: String,
}

/// A setting the bridge refuses, by its key (as in the config file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct BadSetting {
    pub key: &'static str,
    pub msg: String,
}

/// Everything the MQTT side needs.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub host: String,
    pub port: u16,
    /// The brokers tried after `host`:`port`, in order, on a failed connection (the
    /// same TLS settings and login).
    pub failover: Vec<BrokerAddr>,
    /// TLS when Some.
    pub tls: Option<TlsConfig>,
    /// Stable across restarts for a persistent session.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub session: SessionMode,
    /// MQTT 3.1.1 or 5.
    pub protocol: Protocol,
    pub keep_alive: Duration,
    /// QoS of the button events.
    pub qos: Qos,
    pub payload: PayloadFormat,
    /// How states read on `led/<i>` and plain `button/<i>` (and in discovery).
    pub state_format: StateFormat,
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

/// With `keep_alive` 0 no PINGREQ goes out and the broker never times the daemon out;
/// TCP keep-alive probes (the transport's [`crate::transport::TCP_KEEPALIVE`]) then find a
/// dead or unplugged broker, and this bounds the wait for acknowledgements and writes.
pub const NO_KEEP_ALIVE_LIVENESS: Duration = Duration::from_secs(60);

impl BridgeConfig {
    pub fn new(host: &str, port: u16) -> Self {
        Self {
            host: host.to_owned(),
            port,
            failover: Vec::new(),
            tls: None,
            client_id: "pynq-mqtt".into(),
            username: None,
            password: None,
            session: SessionMode::Persistent,
            protocol: Protocol::V311,
            keep_alive: Duration::from_secs(30),
            qos: Qos::AtMostOnce,
            payload: PayloadFormat::Plain,
            state_format: StateFormat::OneZero,
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

    /// Checks what no single value's type can (lengths, orderings, names, the login),
    /// naming the setting at fault.
    /// How long a connection may go without a sign of life (a packet read, a write
    /// taken, an acknowledgement while events wait) before it is given up: the
    /// keep-alive, or without one (0, MQTT's "no keep-alive") [`NO_KEEP_ALIVE_LIVENESS`],
    /// which the TCP keep-alive the transport then turns on answers for.
    pub fn liveness(&self) -> Duration {
        if self.keep_alive.is_zero() {
            NO_KEEP_ALIVE_LIVENESS
        } else {
            self.keep_alive
        }
    }

    pub fn validate(&self) -> Result<(), BadSetting> {
        let bad = |key, msg: &str| {
            Err(BadSetting {
                key,
                msg: msg.into(),
            })
        };
        if self.client_id.is_empty() || self.client_id.len() > 65_535 {
            return bad("client_id", "must be 1 to 65535 bytes");
        }
        if self.keep_alive > Duration::from_secs(1_200) || self.keep_alive.subsec_nanos() != 0 {
            let msg = "expected 0 to 1200 whole seconds (0: no MQTT keep-alive, TCP's finds \
                       a dead broker instead)";
            return bad("keep_alive", msg);
        }
        if self.reconnect_max < self.reconnect_min || self.reconnect_min.is_zero() {
            let msg = "reconnect_min must be above 0 and at most reconnect_max";
            return bad("reconnect_max", msg);
        }
        if self.password.is_some() && self.username.is_none() {
            let msg = "a password is set (PYNQ_MQTT_PASSWORD or password_file) but no username";
            return bad("username", msg);
        }
        if let Err(e) = self.topics.check() {
            let inputs = &self.topics.input_names;
            let key = match &e {
                TopicError::Prefix(_) => "prefix",
                TopicError::ButtonTopic(_) => "button_topic",
                TopicError::Name(n) if inputs.contains(n) => "input_names",
                TopicError::Duplicate(n) if inputs.iter().filter(|x| *x == n).count() > 1 => {
                    "input_names"
                }
                TopicError::Name(_) | TopicError::Duplicate(_) => "led_names",
            };
            return bad(key, &e.to_string());
        }
        // every filter the session will subscribe to, as it will spell it
        let prefix = crate::topics::normalize_prefix(&self.topics.prefix);
        for r in &self.rules {
            if let Err(why) = crate::topics::check_filter(&format!("{prefix}{}", r.topic)) {
                return bad("prefix", &why);
            }
        }
        match &self.discovery {
            Some(d) if d.prefix.is_empty() || d.prefix.contains(['+', '#', '\0']) => {
                bad("ha_prefix", "not a usable topic prefix")
            }
            _ => Ok(()),
        }
    }

    /// Whether a password would cross the network unencrypted: no TLS, and a broker
    /// that is not this machine.
    pub fn password_in_clear(&self) -> bool {
        let loopback = self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.password.is_some() && self.tls.is_none() && !loopback
    }

    /// Each broker's configuration, in the order they are tried: this one, then one per
    /// `failover` address.
    pub fn brokers(&self) -> Vec<BridgeConfig> {
        let others = self.failover.iter().map(|a| BridgeConfig {
            host: a.host.clone(),
            port: a.port,
            ..self.clone()
        });
        std::iter::once(self.clone()).chain(others).collect()
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
    fn a_password_is_in_clear_only_without_tls_off_this_machine() {
        let mut c = BridgeConfig::new("localhost", 1883);
        assert!(!c.password_in_clear(), "no password");
        c.password = Some(Secret::new("pw"));
        for host in ["localhost", "127.0.0.1", "127.8.9.1", "::1"] {
            c.host = host.into();
            assert!(!c.password_in_clear(), "{host}");
        }
        for host in ["192.168.1.2", "broker.lan", "::2", "localhost.evil"] {
            c.host = host.into();
            assert!(c.password_in_clear(), "{host}");
        }
        c.tls = Some(TlsConfig::default());
        assert!(!c.password_in_clear(), "TLS");
    }

    #[test]
    fn broker_urls_read_back_and_validate_names_the_setting_at_fault() {
        for url in ["mqtt://h:1", "mqtts://[::1]:8883", "mqtt://10.0.0.2:1884"] {
            assert_eq!(url.parse::<BrokerUrl>().unwrap().to_string(), url);
        }
        let url: BrokerUrl = "mqtts://b.lan".parse().unwrap();
        assert_eq!((url.addr.port, url.tls), (8883, true));
        let mut c = BridgeConfig::new("h", 1);
        assert_eq!(c.validate(), Ok(()));
        c.reconnect_min = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().key, "reconnect_max");
        c = BridgeConfig::new("h", 1);
        c.keep_alive = Duration::from_secs(70_000);
        assert_eq!(c.validate().unwrap_err().key, "keep_alive");
        // a dead broker must be found within 2 x keep-alive: at most 40 minutes
        c.keep_alive = Duration::from_secs(1_201);
        assert_eq!(c.validate().unwrap_err().key, "keep_alive");
        c.keep_alive = Duration::from_secs(1_200);
        assert_eq!(c.validate(), Ok(()));
        // MQTT's "no keep-alive": TCP's probes and a one-minute liveness instead
        c.keep_alive = Duration::ZERO;
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.liveness(), NO_KEEP_ALIVE_LIVENESS);
        c.keep_alive = Duration::from_millis(1_500);
        assert_eq!(c.validate().unwrap_err().key, "keep_alive");
        c = BridgeConfig::new("h", 1);
        c.password = Some(Secret::new("pw"));
        assert_eq!(c.validate().unwrap_err().key, "username");
        c = BridgeConfig::new("h", 1);
        c.topics.led_names = vec!["a".into(), "a".into()];
        assert_eq!(c.validate().unwrap_err().key, "led_names");
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

    /// A `[[rule]]` table read by serde (JSON here stands in for the TOML the binary reads).
    #[test]
    fn rules_read_by_serde_with_defaults_and_refusals() {
        let rule = |json: &str| serde_json::from_str::<Rule>(json).map_err(|e| e.to_string());
        let r = rule(r#"{"topic": "button/0"}"#).unwrap();
        assert_eq!((r.action, r.leds), (LedAction::Toggle, RuleLeds::All));
        let r = rule(r#"{"topic": "t", "payloads": ["1"], "action": "on", "leds": [0, 3]}"#);
        let r = r.unwrap();
        assert_eq!(
            (r.payloads, r.action),
            (vec!["1".to_owned()], LedAction::On)
        );
        assert_eq!(r.leds, RuleLeds::Some(vec![0, 3]));
        assert_eq!(
            rule(r#"{"topic": "t", "leds": "all"}"#).unwrap().leds,
            RuleLeds::All
        );
        for (json, why) in [
            (r#"{"action": "on"}"#, "missing field `topic`"),
            (r#"{"topic": ""}"#, "not a topic filter"),
            (r#"{"topic": "button#"}"#, "# must be the whole last level"),
            (r#"{"topic": "a/+b"}"#, "+ must be a whole level"),
            (
                r#"{"topic": "t", "action": "blink"}"#,
                "expected on, off or toggle",
            ),
            (r#"{"topic": "t", "leds": "some"}"#, "expected \"all\""),
            (r#"{"topic": "t", "leds": [256]}"#, "LED numbers 0 to 255"),
            (
                r#"{"topic": "t", "actoin": "on"}"#,
                "unknown field `actoin`",
            ),
        ] {
            let e = rule(json).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        }
    }

    #[test]
    fn settings_round_trip_through_serde() {
        let qos: Qos = serde_json::from_str("2").unwrap();
        assert_eq!(
            (qos, serde_json::to_string(&qos).unwrap()),
            (Qos::ExactlyOnce, "2".into())
        );
        assert!(serde_json::from_str::<Qos>("3").is_err());
        assert!(serde_json::from_str::<Qos>("\"1\"").is_err());
        let url: BrokerUrl = serde_json::from_str("\"mqtts://[::1]:8884\"").unwrap();
        assert!(url.tls && url.addr.host == "::1" && url.addr.port == 8884);
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            "\"mqtts://[::1]:8884\""
        );
        let s: SessionMode = serde_json::from_str("\"clean\"").unwrap();
        assert_eq!(s, SessionMode::Clean);
        assert!(serde_json::from_str::<PayloadFormat>("\"xml\"").is_err());
    }

    #[test]
    fn brokers_are_one_url_or_several_of_one_scheme_each_once() {
        let b: Brokers = "mqtt://a:1, mqtt://b:2,mqtt://[::1]:3".parse().unwrap();
        let shown: Vec<String> = b.urls().iter().map(|u| u.to_string()).collect();
        assert_eq!(shown, ["mqtt://a:1", "mqtt://b:2", "mqtt://[::1]:3"]);
        assert_eq!(b.first().addr.host, "a");
        assert_eq!(b.to_string().parse::<Brokers>().unwrap(), b);
        let mixed = "mqtt://a:1,mqtts://b:2".parse::<Brokers>().unwrap_err();
        assert!(mixed.contains("same scheme"), "{mixed}");
        let twice = "mqtt://a:1,mqtt://b,mqtt://a:1"
            .parse::<Brokers>()
            .unwrap_err();
        assert!(twice.contains("twice (as broker 3)"), "{twice}");
        assert!("mqtt://a:1,".parse::<Brokers>().is_err(), "an empty item");
        let one: Brokers = "mqtt://a".parse().unwrap();
        let joined = one.join(&"mqtt://b:2".parse().unwrap()).unwrap();
        assert_eq!(joined.to_string(), "mqtt://a:1883,mqtt://b:2");
    }

    #[test]
    fn brokers_read_from_a_string_or_a_list_and_one_reads_back_as_a_string() {
        let one: Brokers = serde_json::from_str("\"mqtt://a:1\"").unwrap();
        assert_eq!(serde_json::to_string(&one).unwrap(), "\"mqtt://a:1\"");
        let two: Brokers = serde_json::from_str(r#"["mqtt://a:1", "mqtt://b:2"]"#).unwrap();
        assert_eq!(two.urls().len(), 2);
        assert_eq!(
            serde_json::to_string(&two).unwrap(),
            r#"["mqtt://a:1","mqtt://b:2"]"#
        );
        for bad in [
            "[]",
            "[\"mqtt://a\", 3]",
            "[\"mqtt://a\", \"http://b\"]",
            "7",
        ] {
            assert!(serde_json::from_str::<Brokers>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_broker_gets_the_whole_configuration_with_its_own_address() {
        let mut c = BridgeConfig::new("a", 1);
        c.client_id = "pynq-mqtt-0a1b2c".into();
        c.failover = vec![
            BrokerAddr {
                host: "b".into(),
                port: 2,
            },
            BrokerAddr {
                host: "::1".into(),
                port: 3,
            },
        ];
        let all = c.brokers();
        let urls: Vec<String> = all.iter().map(BridgeConfig::broker_url).collect();
        assert_eq!(urls, ["mqtt://a:1", "mqtt://b:2", "mqtt://[::1]:3"]);
        assert!(all.iter().all(|b| b.client_id == c.client_id));
    }
}
