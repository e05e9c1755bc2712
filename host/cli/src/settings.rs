//! Settings: command line over environment over config file (TOML) over defaults.
//!
//! clap reads the flags and their environment variables (so `--help` names every
//! variable); values stay strings until here, where each is parsed with its source
//! at hand, so that a bad value is reported as `--qos 5`, `PYNQ_MQTT_QOS=5` or
//! `config file c.toml, line 3, key qos`. The file is read with toml_edit for the
//! line of every key; an unknown key is an error, with its line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use pynq_mqtt_bridge::Qos as QoS;
use pynq_mqtt_bridge::{
    BridgeConfig, Discovery, PayloadFormat, Rule, RuleLeds, Secret, SessionMode, TlsConfig,
    TopicError, TopicLayout,
};
use pynq_mqtt_driver::LedAction;
use toml_edit::{ImDocument, Item, Value};

/// The environment variable that carries the broker password (there is no flag:
/// a password on the command line is visible to every user in `ps`).
pub const PASSWORD_ENV: &str = "PYNQ_MQTT_PASSWORD";

/// Settings shared by `run`, `sim` and `config`; every field optional so that a flag
/// or variable that was not given falls through to the file, then to the default.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// TOML config file (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "PYNQ_MQTT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix of every topic, e.g. `pynq/board1/` (default: none, as in the seed).
    #[arg(long, env = "PYNQ_MQTT_PREFIX")]
    pub prefix: Option<String>,
    /// MQTT client id; keep it stable for a persistent session (default: pynq-mqtt-<hostname>).
    #[arg(long, env = "PYNQ_MQTT_CLIENT_ID")]
    pub client_id: Option<String>,
    /// QoS of button events: 0, 1 or 2 (default 0).
    #[arg(long, env = "PYNQ_MQTT_QOS")]
    pub qos: Option<String>,
    /// Button payloads: `plain` (1/0, default) or `json`.
    #[arg(long, env = "PYNQ_MQTT_PAYLOAD")]
    pub payload: Option<String>,
    /// `persistent` (default: the broker keeps subscriptions and QoS 1/2 state across
    /// reconnects) or `clean`.
    #[arg(long, env = "PYNQ_MQTT_SESSION")]
    pub session: Option<String>,
    /// Seconds between keep-alive pings when idle (default 30).
    #[arg(long, env = "PYNQ_MQTT_KEEP_ALIVE", value_name = "SECS")]
    pub keep_alive: Option<String>,
    /// Events held for the broker (unacknowledged, or waiting while it is away);
    /// beyond it new events are dropped and counted (default 65536).
    #[arg(long, env = "PYNQ_MQTT_BUFFER_CAPACITY", value_name = "EVENTS")]
    pub buffer_capacity: Option<String>,
    /// QoS 1/2 events in flight (sent, not yet acknowledged) at most (default 1024).
    #[arg(long, env = "PYNQ_MQTT_MAX_INFLIGHT")]
    pub max_inflight: Option<String>,
    /// First reconnect delay in seconds; doubles with jitter up to --reconnect-max (default 0.1).
    #[arg(long, env = "PYNQ_MQTT_RECONNECT_MIN", value_name = "SECS")]
    pub reconnect_min: Option<String>,
    /// Longest reconnect delay in seconds (default 30).
    #[arg(long, env = "PYNQ_MQTT_RECONNECT_MAX", value_name = "SECS")]
    pub reconnect_max: Option<String>,
    /// Seconds between `stats` messages; 0 turns them off (default 30).
    #[arg(long, env = "PYNQ_MQTT_STATS_INTERVAL", value_name = "SECS")]
    pub stats_interval: Option<String>,
    /// At a stop, seconds to keep trying to deliver buffered events (default 15).
    #[arg(long, env = "PYNQ_MQTT_SHUTDOWN_TIMEOUT", value_name = "SECS")]
    pub shutdown_timeout: Option<String>,
    /// Capacity of the event channel between driver and publisher (default 65536).
    #[arg(long, env = "PYNQ_MQTT_CHANNEL_CAPACITY")]
    pub channel_capacity: Option<String>,
    /// Hardware debounce of every input in microseconds, 0 to 65535 (default 0: off;
    /// the board's installed config sets 5000 for its mechanical buttons).
    #[arg(long, env = "PYNQ_MQTT_DEBOUNCE_US", value_name = "US")]
    pub debounce_us: Option<String>,
    /// Interrupt after this many waiting events, 1 to 65535 (default 1).
    #[arg(long, env = "PYNQ_MQTT_COALESCE_COUNT", value_name = "N")]
    pub coalesce_count: Option<String>,
    /// ... or once the oldest event waited this many microseconds (default 0: at once).
    #[arg(long, env = "PYNQ_MQTT_COALESCE_US", value_name = "US")]
    pub coalesce_us: Option<String>,
    /// Real-time (SCHED_FIFO) priority of the thread draining the event FIFO, 1 to 99,
    /// or 0 for normal scheduling (default 0). Needs root, CAP_SYS_NICE or
    /// RLIMIT_RTPRIO (the installed unit grants LimitRTPRIO); refused, it warns and runs.
    #[arg(long, env = "PYNQ_MQTT_RT_PRIORITY", value_name = "N")]
    pub rt_priority: Option<String>,
    /// User name for the broker.
    #[arg(long, env = "PYNQ_MQTT_USERNAME")]
    pub username: Option<String>,
    /// File holding the broker password (first line); or set PYNQ_MQTT_PASSWORD.
    #[arg(long, env = "PYNQ_MQTT_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<String>,
    /// TLS (mqtts://): PEM file of the CA certificates to trust (default: the system's).
    #[arg(long, env = "PYNQ_MQTT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<String>,
    /// TLS: PEM client certificate (chain).
    #[arg(long, env = "PYNQ_MQTT_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<String>,
    /// TLS: PEM private key of the client certificate.
    #[arg(long, env = "PYNQ_MQTT_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<String>,
    /// TLS: name the broker's certificate must carry (default: the broker's host).
    #[arg(long, env = "PYNQ_MQTT_SERVER_NAME")]
    pub server_name: Option<String>,
    /// Topic of an input's events below the prefix; `{name}` and `{i}` are replaced
    /// (default `button/{name}`).
    #[arg(long, env = "PYNQ_MQTT_BUTTON_TOPIC")]
    pub button_topic: Option<String>,
    /// Names of the inputs, comma-separated, e.g. `btn0,btn1,btn2,btn3` (default: the index).
    #[arg(long, env = "PYNQ_MQTT_INPUT_NAMES")]
    pub input_names: Option<String>,
    /// Names of the LEDs in `led/<name>` and `led/<name>/set` (default: the index).
    #[arg(long, env = "PYNQ_MQTT_LED_NAMES")]
    pub led_names: Option<String>,
    /// Home Assistant discovery: `true` publishes a retained config per input and LED.
    #[arg(long, env = "PYNQ_MQTT_HA_DISCOVERY", value_name = "BOOL")]
    pub ha_discovery: Option<String>,
    /// Home Assistant discovery prefix (default `homeassistant`).
    #[arg(long, env = "PYNQ_MQTT_HA_PREFIX")]
    pub ha_prefix: Option<String>,
    /// The device's name in Home Assistant (default `PYNQ <client id>`).
    #[arg(long, env = "PYNQ_MQTT_HA_DEVICE_NAME")]
    pub ha_device_name: Option<String>,
    /// Remove the Home Assistant discovery configs (empty retained messages) and exit.
    #[arg(long)]
    pub ha_remove: bool,
    /// Simulated board: replay `<time_us> <input> <level>` lines onto the inputs.
    #[arg(long, env = "PYNQ_MQTT_STIMULUS", value_name = "FILE")]
    pub stimulus: Option<String>,
    /// Simulated board: `realtime` (default), `fast` (the stimulus as fast as the
    /// host takes it, then real time) or a factor of real time.
    #[arg(long, env = "PYNQ_MQTT_SIM_SPEED")]
    pub sim_speed: Option<String>,
}

/// Which board backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardKind {
    Uio,
    Sim,
}

/// A broker address from `mqtt://HOST:PORT` or `mqtts://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `mqtt://HOST[:PORT]` (port 1883) or `mqtts://HOST[:PORT]` (TLS, port
/// 8883); IPv6 hosts in brackets. Returns the address and whether it is TLS.
pub fn parse_broker(url: &str) -> Result<(BrokerAddr, bool)> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else {
        bail!("expected mqtt://HOST:PORT or mqtts://HOST:PORT");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']').context("unclosed [ in host")?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '[', ']']) {
        bail!("bad host {host:?}");
    }
    let port = match port {
        None if tls => 8883,
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => bail!("bad port {p:?}"),
        },
    };
    Ok((
        BrokerAddr {
            host: host.to_owned(),
            port,
        },
        tls,
    ))
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(&'static str),
    Flag(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(v) => f.write_str(v),
            Source::Flag(v) => f.write_str(v),
        }
    }
}

/// One line of `pynq-mqtt config`: key, TOML value (None: not set), source.
#[derive(Clone, Debug)]
pub struct Shown {
    pub key: &'static str,
    pub value: Option<String>,
    pub source: Source,
}

/// Everything the daemon needs, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub board: BoardKind,
    pub broker: BrokerAddr,
    /// The topic prefix (the same as `bridge.topics.prefix`; the demo prints it).
    pub prefix: String,
    /// The MQTT side, complete but for host and port (taken from `broker`).
    pub bridge: BridgeConfig,
    pub channel_capacity: usize,
    /// Hardware input and interrupt settings for the driver.
    pub debounce_us: u16,
    pub coalesce_count: u16,
    pub coalesce_us: u32,
    pub rt_priority: u8,
    pub stimulus: Option<PathBuf>,
    pub sim_speed: String,
    pub ha_remove: bool,
    /// Every setting with its value and source, secrets masked.
    pub shown: Vec<Shown>,
}

/// A setting: its file key, flag and environment variable.
struct Key {
    name: &'static str,
    flag: &'static str,
    env: &'static str,
}

macro_rules! keys {
    ($($id:ident = $name:literal, $flag:literal, $env:literal;)*) => {
        $(const $id: Key = Key { name: $name, flag: $flag, env: $env };)*
        /// Every key a config file may hold at its top level.
        const FILE_KEYS: &[&str] = &[$($name,)* "rule"];
    };
}

keys! {
    BOARD = "board", "--board", "PYNQ_MQTT_BOARD";
    BROKER = "broker", "--broker", "PYNQ_MQTT_BROKER";
    PREFIX = "prefix", "--prefix", "PYNQ_MQTT_PREFIX";
    CLIENT_ID = "client_id", "--client-id", "PYNQ_MQTT_CLIENT_ID";
    QOS = "qos", "--qos", "PYNQ_MQTT_QOS";
    PAYLOAD = "payload", "--payload", "PYNQ_MQTT_PAYLOAD";
    SESSION = "session", "--session", "PYNQ_MQTT_SESSION";
    KEEP_ALIVE = "keep_alive", "--keep-alive", "PYNQ_MQTT_KEEP_ALIVE";
    BUFFER_CAPACITY = "buffer_capacity", "--buffer-capacity", "PYNQ_MQTT_BUFFER_CAPACITY";
    MAX_INFLIGHT = "max_inflight", "--max-inflight", "PYNQ_MQTT_MAX_INFLIGHT";
    RECONNECT_MIN = "reconnect_min", "--reconnect-min", "PYNQ_MQTT_RECONNECT_MIN";
    RECONNECT_MAX = "reconnect_max", "--reconnect-max", "PYNQ_MQTT_RECONNECT_MAX";
    STATS_INTERVAL = "stats_interval", "--stats-interval", "PYNQ_MQTT_STATS_INTERVAL";
    SHUTDOWN_TIMEOUT = "shutdown_timeout", "--shutdown-timeout", "PYNQ_MQTT_SHUTDOWN_TIMEOUT";
    CHANNEL_CAPACITY = "channel_capacity", "--channel-capacity", "PYNQ_MQTT_CHANNEL_CAPACITY";
    DEBOUNCE_US = "debounce_us", "--debounce-us", "PYNQ_MQTT_DEBOUNCE_US";
    COALESCE_COUNT = "coalesce_count", "--coalesce-count", "PYNQ_MQTT_COALESCE_COUNT";
    COALESCE_US = "coalesce_us", "--coalesce-us", "PYNQ_MQTT_COALESCE_US";
    RT_PRIORITY = "rt_priority", "--rt-priority", "PYNQ_MQTT_RT_PRIORITY";
    USERNAME = "username", "--username", "PYNQ_MQTT_USERNAME";
    PASSWORD_FILE = "password_file", "--password-file", "PYNQ_MQTT_PASSWORD_FILE";
    CA_FILE = "ca_file", "--ca-file", "PYNQ_MQTT_CA_FILE";
    CLIENT_CERT = "client_cert", "--client-cert", "PYNQ_MQTT_CLIENT_CERT";
    CLIENT_KEY = "client_key", "--client-key", "PYNQ_MQTT_CLIENT_KEY";
    SERVER_NAME = "server_name", "--server-name", "PYNQ_MQTT_SERVER_NAME";
    BUTTON_TOPIC = "button_topic", "--button-topic", "PYNQ_MQTT_BUTTON_TOPIC";
    INPUT_NAMES = "input_names", "--input-names", "PYNQ_MQTT_INPUT_NAMES";
    LED_NAMES = "led_names", "--led-names", "PYNQ_MQTT_LED_NAMES";
    HA_DISCOVERY = "ha_discovery", "--ha-discovery", "PYNQ_MQTT_HA_DISCOVERY";
    HA_PREFIX = "ha_prefix", "--ha-prefix", "PYNQ_MQTT_HA_PREFIX";
    HA_DEVICE_NAME = "ha_device_name", "--ha-device-name", "PYNQ_MQTT_HA_DEVICE_NAME";
    STIMULUS = "stimulus", "--stimulus", "PYNQ_MQTT_STIMULUS";
    SIM_SPEED = "sim_speed", "--sim-speed", "PYNQ_MQTT_SIM_SPEED";
}

/// The config file, parsed, with its text for line numbers.
struct File {
    path: PathBuf,
    text: String,
    doc: ImDocument<String>,
}

impl File {
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let doc = ImDocument::parse(text.clone()).map_err(|e| {
            anyhow!(
                "config file {}: {}",
                path.display(),
                e.to_string().trim_end()
            )
        })?;
        Ok(Self {
            path: path.to_owned(),
            text,
            doc,
        })
    }

    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        let at = span.map_or(0, |s| s.start).min(self.text.len());
        self.text[..at].matches('\n').count() + 1
    }

    /// Rejects keys this program does not know, naming file, line and key.
    fn check_keys(&self) -> Result<()> {
        for (k, item) in self.doc.as_table().iter() {
            let (key, _) = self.doc.as_table().get_key_value(k).expect("iterated key");
            let line = self.line(key.span());
            if !FILE_KEYS.contains(&k) {
                let hint = closest(k, FILE_KEYS)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                bail!(
                    "config file {}, line {line}: unknown key `{k}`{hint}",
                    self.path.display()
                );
            }
            if k != "rule" && (item.is_table() || item.is_array_of_tables()) {
                bail!(
                    "config file {}, line {line}, key `{k}`: expected a value, found a table",
                    self.path.display()
                );
            }
        }
        Ok(())
    }
}

/// The known key nearest to a misspelt one, if any is near.
fn closest(k: &str, known: &[&'static str]) -> Option<&'static str> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|c| (dist(k, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

/// A value before parsing: a string from a flag or variable, or a TOML value.
enum Raw<'a> {
    Str(String),
    Toml(&'a Value),
}

/// The layers for one resolution.
struct Layers<'a> {
    file: Option<&'a File>,
    shown: Vec<Shown>,
}

impl<'a> Layers<'a> {
    /// The winning raw value of `key` and its source; `arg` is clap's (flag or variable).
    fn raw(&self, key: &Key, arg: Option<&str>) -> Result<Option<(Raw<'a>, Source)>> {
        if let Some(v) = arg {
            let source = match std::env::var(key.env) {
                Ok(e) if e == v => Source::Env(key.env),
                _ => Source::Flag(key.flag),
            };
            return Ok(Some((Raw::Str(v.to_owned()), source)));
        }
        let Some(file) = self.file else {
            return Ok(None);
        };
        let Some((k, item)) = file.doc.as_table().get_key_value(key.name) else {
            return Ok(None);
        };
        let source = Source::File {
            path: file.path.clone(),
            line: file.line(k.span()),
        };
        match item {
            Item::Value(v) => Ok(Some((Raw::Toml(v), source))),
            _ => Err(fail(&source, key, "expected a value")),
        }
    }

    /// Parses the winning value with `parse`, or takes `default`; records it for
    /// `config` (`show` renders the value as TOML, None when it is a secret).
    fn get<T>(
        &mut self,
        key: &Key,
        arg: Option<&str>,
        parse: impl Fn(Raw<'_>) -> Result<T, String>,
        default: impl FnOnce() -> T,
        show: impl Fn(&T) -> Option<String>,
    ) -> Result<(T, Source)> {
        let (v, source) = match self.raw(key, arg)? {
            Some((raw, source)) => {
                let v = parse(raw).map_err(|e| fail(&source, key, &e))?;
                (v, source)
            }
            None => (default(), Source::Default),
        };
        self.shown.push(Shown {
            key: key.name,
            value: show(&v),
            source: source.clone(),
        });
        Ok((v, source))
    }
}

/// An error for a value, naming where it came from.
fn fail(source: &Source, key: &Key, msg: &str) -> anyhow::Error {
    match source {
        Source::File { path, line } => anyhow!(
            "config file {}, line {line}, key `{}`: {msg}",
            path.display(),
            key.name
        ),
        Source::Env(v) => anyhow!("environment variable {v}: {msg}"),
        Source::Flag(f) => anyhow!("{f}: {msg}"),
        Source::Default => anyhow!("{}: {msg}", key.name),
    }
}

fn toml_type(v: &Value) -> &'static str {
    v.type_name()
}

fn p_string(raw: Raw<'_>) -> Result<String, String> {
    match raw {
        Raw::Str(s) => Ok(s),
        Raw::Toml(Value::String(s)) => Ok(s.value().clone()),
        Raw::Toml(v) => Err(format!("expected a string, found {}", toml_type(v))),
    }
}

fn p_u64(raw: Raw<'_>) -> Result<u64, String> {
    match raw {
        Raw::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number, found {s:?}")),
        Raw::Toml(Value::Integer(i)) => u64::try_from(*i.value())
            .map_err(|_| format!("expected a whole number ≥ 0, found {}", i.value())),
        Raw::Toml(v) => Err(format!("expected a whole number, found {}", toml_type(v))),
    }
}

fn p_secs(raw: Raw<'_>) -> Result<Duration, String> {
    let secs = match raw {
        Raw::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("expected seconds, found {s:?}"))?,
        Raw::Toml(Value::Integer(i)) => *i.value() as f64,
        Raw::Toml(Value::Float(f)) => *f.value(),
        Raw::Toml(v) => return Err(format!("expected seconds, found {}", toml_type(v))),
    };
    if !(0.0..=1e7).contains(&secs) || secs.is_nan() {
        return Err(format!("{secs} seconds is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn p_bool(raw: Raw<'_>) -> Result<bool, String> {
    match raw {
        Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, found {s:?}")),
        },
        Raw::Toml(Value::Boolean(b)) => Ok(*b.value()),
        Raw::Toml(v) => Err(format!("expected true or false, found {}", toml_type(v))),
    }
}

/// A list: comma-separated on the command line, an array of strings in the file.
fn p_list(raw: Raw<'_>) -> Result<Vec<String>, String> {
    match raw {
        Raw::Str(s) => Ok(s
            .split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()),
        Raw::Toml(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.value().clone()),
                other => Err(format!("expected strings, found {}", toml_type(other))),
            })
            .collect(),
        Raw::Toml(v) => Err(format!(
            "expected a list of strings, found {}",
            toml_type(v)
        )),
    }
}

fn show_str(s: &str) -> String {
    Value::from(s).to_string().trim().to_owned()
}

fn show_secs(d: &Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

fn show_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| show_str(s)).collect::<Vec<_>>().join(", ")
    )
}

/// This machine's host name, for the default client id.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "board".into())
}

/// Reads the password: the environment variable, else the first line of the file.
fn password(file: Option<&str>, source: &Source) -> Result<Option<(Secret, Source)>> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Some((Secret::new(p), Source::Env(PASSWORD_ENV))));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            source,
            &PASSWORD_FILE,
            &format!("cannot read password file {path}: {e}"),
        )
    })?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    Ok(Some((Secret::new(line), source.clone())))
}

/// The `[[rule]]` tables of the file.
fn rules(file: &File) -> Result<Vec<Rule>> {
    let Some(item) = file.doc.as_table().get("rule") else {
        return Ok(Vec::new());
    };
    let Some(tables) = item.as_array_of_tables() else {
        bail!(
            "config file {}, line {}, key `rule`: expected [[rule]] tables",
            file.path.display(),
            file.line(item.span())
        );
    };
    let mut out = Vec::new();
    for t in tables.iter() {
        let at = |span: Option<std::ops::Range<usize>>, k: &str, msg: &str| {
            anyhow!(
                "config file {}, line {}, key `rule.{k}`: {msg}",
                file.path.display(),
                file.line(span)
            )
        };
        for (k, _) in t.iter() {
            if !["topic", "payloads", "action", "leds"].contains(&k) {
                let (key, _) = t.get_key_value(k).expect("iterated key");
                return Err(at(
                    key.span(),
                    k,
                    "unknown key (rule keys: topic, payloads, action, leds)",
                ));
            }
        }
        let get = |k: &str| t.get(k).and_then(|i| i.as_value());
        let topic = match get("topic") {
            Some(Value::String(s)) => s.value().clone(),
            Some(v) => return Err(at(v.span(), "topic", "expected a string")),
            None => return Err(at(t.span(), "topic", "missing")),
        };
        if topic.is_empty() || topic.contains('\0') {
            return Err(at(
                get("topic").and_then(|v| v.span()),
                "topic",
                "not a topic filter",
            ));
        }
        let action = match get("action") {
            Some(Value::String(s)) => pynq_mqtt_bridge::parse_action(s.value())
                .map_err(|_| at(s.span(), "action", "expected on, off or toggle"))?,
            Some(v) => return Err(at(v.span(), "action", "expected a string")),
            None => LedAction::Toggle,
        };
        let leds = match get("leds") {
            None => RuleLeds::All,
            Some(Value::String(s)) if s.value() == "all" => RuleLeds::All,
            Some(Value::Array(a)) => RuleLeds::Some(
                a.iter()
                    .map(|v| match v {
                        Value::Integer(i) => u8::try_from(*i.value())
                            .map_err(|_| at(v.span(), "leds", "LED numbers are 0..255")),
                        _ => Err(at(
                            v.span(),
                            "leds",
                            "expected \"all\" or a list of LED numbers",
                        )),
                    })
                    .collect::<Result<_>>()?,
            ),
            Some(v) => {
                return Err(at(
                    v.span(),
                    "leds",
                    "expected \"all\" or a list of LED numbers",
                ))
            }
        };
        let payloads = match get("payloads") {
            None => Vec::new(),
            Some(v) => p_list(Raw::Toml(v)).map_err(|e| at(v.span(), "payloads", &e))?,
        };
        out.push(Rule {
            topic,
            payloads,
            action,
            leds,
        });
    }
    Ok(out)
}

/// Resolves the settings; `board` and `broker` come from `run`'s own flags (or
/// from `sim`, which fixes them).
pub fn resolve(common: &CommonArgs, board: Option<&str>, broker: Option<&str>) -> Result<Settings> {
    let file = match &common.config {
        Some(p) => {
            let f = File::load(p)?;
            f.check_keys()?;
            Some(f)
        }
        None => None,
    };
    let mut l = Layers {
        file: file.as_ref(),
        shown: Vec::new(),
    };
    let c = common;

    let (board, _) = l.get(
        &BOARD,
        board,
        |r| match p_string(r)?.as_str() {
            "uio" => Ok(BoardKind::Uio),
            "sim" => Ok(BoardKind::Sim),
            o => Err(format!("{o:?}: expected `uio` or `sim`")),
        },
        || BoardKind::Uio,
        |b| Some(show_str(if *b == BoardKind::Sim { "sim" } else { "uio" })),
    )?;
    let ((broker, tls), broker_src) = l.get(
        &BROKER,
        broker,
        |r| {
            let s = p_string(r)?;
            parse_broker(&s).map_err(|e| format!("{s:?}: {e}"))
        },
        || {
            (
                BrokerAddr {
                    host: "localhost".into(),
                    port: 1883,
                },
                false,
            )
        },
        |(b, tls)| {
            Some(show_str(&format!(
                "{}://{b}",
                if *tls { "mqtts" } else { "mqtt" }
            )))
        },
    )?;
    let (prefix, prefix_src) = l.get(&PREFIX, c.prefix.as_deref(), p_string, String::new, |s| {
        Some(show_str(s))
    })?;
    let (client_id, id_src) = l.get(
        &CLIENT_ID,
        c.client_id.as_deref(),
        p_string,
        || format!("pynq-mqtt-{}", hostname()),
        |s| Some(show_str(s)),
    )?;
    if client_id.is_empty() || client_id.len() > 65_535 {
        return Err(fail(&id_src, &CLIENT_ID, "must be 1 to 65535 bytes"));
    }
    let (qos, _) = l.get(
        &QOS,
        c.qos.as_deref(),
        |r| match p_u64(r)? {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            q => Err(format!("{q}: expected 0, 1 or 2")),
        },
        || QoS::AtMostOnce,
        |q| Some((*q as u8).to_string()),
    )?;
    let (payload, _) = l.get(
        &PAYLOAD,
        c.payload.as_deref(),
        |r| p_string(r)?.parse::<PayloadFormat>(),
        PayloadFormat::default,
        |p| {
            Some(show_str(if *p == PayloadFormat::Json {
                "json"
            } else {
                "plain"
            }))
        },
    )?;
    let (session, _) = l.get(
        &SESSION,
        c.session.as_deref(),
        |r| p_string(r)?.parse::<SessionMode>(),
        SessionMode::default,
        |s| {
            Some(show_str(if *s == SessionMode::Clean {
                "clean"
            } else {
                "persistent"
            }))
        },
    )?;
    let (keep_alive, _) = l.get(
        &KEEP_ALIVE,
        c.keep_alive.as_deref(),
        |r| {
            let d = p_secs(r)?;
            if d < Duration::from_secs(1) || d > Duration::from_secs(65_535) {
                return Err("expected 1 to 65535 seconds".into());
            }
            Ok(Duration::from_secs(d.as_secs()))
        },
        || Duration::from_secs(30),
        |d| Some(show_secs(d)),
    )?;
    let positive = |what: &'static str, max: u64| {
        move |r: Raw<'_>| {
            let n = p_u64(r)?;
            if n == 0 || n > max {
                return Err(format!("{n}: {what} must be 1 to {max}"));
            }
            Ok(n as usize)
        }
    };
    let (buffer_capacity, _) = l.get(
        &BUFFER_CAPACITY,
        c.buffer_capacity.as_deref(),
        positive("the buffer", 100_000_000),
        || 65_536,
        |n| Some(n.to_string()),
    )?;
    let (max_inflight, _) = l.get(
        &MAX_INFLIGHT,
        c.max_inflight.as_deref(),
        positive("the window", 30_000),
        || 1024,
        |n| Some(n.to_string()),
    )?;
    let (reconnect_min, _) = l.get(
        &RECONNECT_MIN,
        c.reconnect_min.as_deref(),
        p_secs,
        || Duration::from_millis(100),
        |d| Some(show_secs(d)),
    )?;
    let (reconnect_max, max_src) = l.get(
        &RECONNECT_MAX,
        c.reconnect_max.as_deref(),
        p_secs,
        || Duration::from_secs(30),
        |d| Some(show_secs(d)),
    )?;
    if reconnect_max < reconnect_min || reconnect_min.is_zero() {
        return Err(fail(
            &max_src,
            &RECONNECT_MAX,
            "reconnect_min must be above 0 and at most reconnect_max",
        ));
    }
    let (stats_interval, _) = l.get(
        &STATS_INTERVAL,
        c.stats_interval.as_deref(),
        |r| Ok(Some(p_secs(r)?).filter(|d| !d.is_zero())),
        || Some(Duration::from_secs(30)),
        |d| Some(d.as_ref().map_or("0".into(), show_secs)),
    )?;
    let (shutdown_timeout, _) = l.get(
        &SHUTDOWN_TIMEOUT,
        c.shutdown_timeout.as_deref(),
        p_secs,
        || Duration::from_secs(15),
        |d| Some(show_secs(d)),
    )?;
    let (channel_capacity, _) = l.get(
        &CHANNEL_CAPACITY,
        c.channel_capacity.as_deref(),
        positive("the channel", 100_000_000),
        || 65_536,
        |n| Some(n.to_string()),
    )?;
    let upto = |what: &'static str, min: u64, max: u64| {
        move |r: Raw<'_>| {
            let n = p_u64(r)?;
            if n < min || n > max {
                return Err(format!("{n}: {what} must be {min} to {max}"));
            }
            Ok(n)
        }
    };
    let (debounce_us, _) = l.get(
        &DEBOUNCE_US,
        c.debounce_us.as_deref(),
        upto("the debounce time", 0, u64::from(u16::MAX)),
        || 0,
        |n| Some(n.to_string()),
    )?;
    let (coalesce_count, _) = l.get(
        &COALESCE_COUNT,
        c.coalesce_count.as_deref(),
        upto("the interrupt threshold", 1, u64::from(u16::MAX)),
        || 1,
        |n| Some(n.to_string()),
    )?;
    let (coalesce_us, _) = l.get(
        &COALESCE_US,
        c.coalesce_us.as_deref(),
        upto("the interrupt timeout", 0, u64::from(u32::MAX)),
        || 0,
        |n| Some(n.to_string()),
    )?;
    let (rt_priority, _) = l.get(
        &RT_PRIORITY,
        c.rt_priority.as_deref(),
        upto("the real-time priority", 0, 99),
        || 0,
        |n| Some(n.to_string()),
    )?;
    let opt_str = |s: &Option<String>| s.as_deref().map(show_str);
    let (username, user_src) = l.get(
        &USERNAME,
        c.username.as_deref(),
        |r| p_string(r).map(Some),
        || None,
        opt_str,
    )?;
    let (password_file, pw_src) = l.get(
        &PASSWORD_FILE,
        c.password_file.as_deref(),
        |r| p_string(r).map(Some),
        || None,
        opt_str,
    )?;
    let password = password(password_file.as_deref(), &pw_src)?;
    l.shown.push(Shown {
        key: "password",
        value: password.as_ref().map(|_| show_str("***")),
        source: password.as_ref().map_or(Source::Default, |p| p.1.clone()),
    });
    if password.is_some() && username.is_none() {
        return Err(fail(
            &user_src,
            &USERNAME,
            "a password is set (PYNQ_MQTT_PASSWORD or password_file) but no username",
        ));
    }
    let path_opt = |r: Raw<'_>| p_string(r).map(|s| Some(PathBuf::from(s)));
    let show_path = |p: &Option<PathBuf>| p.as_ref().map(|p| show_str(&p.display().to_string()));
    let (ca_file, ca_src) = l.get(&CA_FILE, c.ca_file.as_deref(), path_opt, || None, show_path)?;
    let (client_cert, _) = l.get(
        &CLIENT_CERT,
        c.client_cert.as_deref(),
        path_opt,
        || None,
        show_path,
    )?;
    let (client_key, _) = l.get(
        &CLIENT_KEY,
        c.client_key.as_deref(),
        path_opt,
        || None,
        show_path,
    )?;
    let (server_name, _) = l.get(
        &SERVER_NAME,
        c.server_name.as_deref(),
        |r| p_string(r).map(Some),
        || None,
        opt_str,
    )?;
    let any_tls_file = ca_file.is_some() || client_cert.is_some() || client_key.is_some();
    if !tls && (any_tls_file || server_name.is_some()) {
        return Err(fail(
            &ca_src,
            &CA_FILE,
            &format!("TLS settings are given but the broker ({broker_src}) is not mqtts://"),
        ));
    }
    let (button_topic, button_src) = l.get(
        &BUTTON_TOPIC,
        c.button_topic.as_deref(),
        p_string,
        || "button/{name}".into(),
        |s| Some(show_str(s)),
    )?;
    let (input_names, inputs_src) = l.get(
        &INPUT_NAMES,
        c.input_names.as_deref(),
        p_list,
        Vec::new,
        |v| Some(show_list(v)),
    )?;
    let (led_names, names_src) =
        l.get(&LED_NAMES, c.led_names.as_deref(), p_list, Vec::new, |v| {
            Some(show_list(v))
        })?;
    let topics = TopicLayout {
        prefix: prefix.clone(),
        button_topic,
        input_names,
        led_names,
    };
    if let Err(e) = topics.check() {
        // blame the setting the error is about, with its file and line
        let (src, key) = match &e {
            TopicError::Prefix(_) => (&prefix_src, &PREFIX),
            TopicError::ButtonTopic(_) => (&button_src, &BUTTON_TOPIC),
            TopicError::Name(n) if topics.input_names.contains(n) => (&inputs_src, &INPUT_NAMES),
            TopicError::Duplicate(n)
                if topics.input_names.iter().filter(|x| *x == n).count() > 1 =>
            {
                (&inputs_src, &INPUT_NAMES)
            }
            TopicError::Name(_) | TopicError::Duplicate(_) => (&names_src, &LED_NAMES),
        };
        return Err(fail(src, key, &e.to_string()));
    }
    let (ha_discovery, _) = l.get(
        &HA_DISCOVERY,
        c.ha_discovery.as_deref(),
        p_bool,
        || false,
        |b| Some(b.to_string()),
    )?;
    let (ha_prefix, ha_src) = l.get(
        &HA_PREFIX,
        c.ha_prefix.as_deref(),
        p_string,
        || "homeassistant".into(),
        |s| Some(show_str(s)),
    )?;
    if ha_prefix.is_empty() || ha_prefix.contains(['+', '#', '\0']) {
        return Err(fail(&ha_src, &HA_PREFIX, "not a usable topic prefix"));
    }
    let default_device = format!("PYNQ {client_id}");
    let (ha_device_name, _) = l.get(
        &HA_DEVICE_NAME,
        c.ha_device_name.as_deref(),
        p_string,
        || default_device,
        |s| Some(show_str(s)),
    )?;
    let (stimulus, _) = l.get(
        &STIMULUS,
        c.stimulus.as_deref(),
        path_opt,
        || None,
        show_path,
    )?;
    let (sim_speed, _) = l.get(
        &SIM_SPEED,
        c.sim_speed.as_deref(),
        p_string,
        || "realtime".into(),
        |s| Some(show_str(s)),
    )?;
    let rules = match &file {
        Some(f) => rules(f)?,
        None => Vec::new(),
    };

    let mut bridge = BridgeConfig::new(&broker.host, broker.port);
    bridge.tls = tls.then_some(TlsConfig {
        ca_file,
        client_cert,
        client_key,
        server_name,
    });
    bridge.client_id = client_id;
    bridge.username = username;
    bridge.password = password.map(|p| p.0);
    bridge.session = session;
    bridge.keep_alive = keep_alive;
    bridge.qos = qos;
    bridge.payload = payload;
    bridge.topics = topics;
    bridge.buffer_capacity = buffer_capacity;
    bridge.max_inflight = max_inflight;
    bridge.reconnect_min = reconnect_min;
    bridge.reconnect_max = reconnect_max;
    bridge.stats_interval = stats_interval;
    bridge.shutdown_timeout = shutdown_timeout;
    bridge.rules = rules;
    bridge.discovery = ha_discovery.then_some(Discovery {
        prefix: ha_prefix,
        device_name: ha_device_name,
    });
    Ok(Settings {
        board,
        broker,
        prefix,
        bridge,
        channel_capacity,
        debounce_us: debounce_us as u16,
        coalesce_count: coalesce_count as u16,
        coalesce_us: coalesce_us as u32,
        rt_priority: rt_priority as u8,
        stimulus,
        sim_speed,
        ha_remove: common.ha_remove,
        shown: l.shown,
    })
}

/// The effective configuration as a TOML file, each line with its source, the
/// password masked.
pub fn render(s: &Settings) -> String {
    let mut out = String::from(
        "# pynq-mqtt: effective configuration (command line > environment > file > defaults)\n",
    );
    let width = s
        .shown
        .iter()
        .map(|x| x.key.len() + x.value.as_ref().map_or(0, |v| v.len()) + 3)
        .max()
        .unwrap_or(0);
    for x in &s.shown {
        let line = match &x.value {
            Some(v) if x.key == "password" => format!("# password = {v}"),
            Some(v) => format!("{} = {v}", x.key),
            None => format!("# {} (not set)", x.key),
        };
        out.push_str(&format!("{line:<width$}  # {}\n", x.source));
    }
    for r in &s.bridge.rules {
        out.push_str("\n[[rule]]\n");
        out.push_str(&format!("topic = {}\n", show_str(&r.topic)));
        if !r.payloads.is_empty() {
            out.push_str(&format!("payloads = {}\n", show_list(&r.payloads)));
        }
        out.push_str(&format!("action = {}\n", show_str(&r.action.to_string())));
        match &r.leds {
            RuleLeds::All => out.push_str("leds = \"all\"\n"),
            RuleLeds::Some(v) => out.push_str(&format!(
                "leds = [{}]\n",
                v.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pynq-mqtt-settings-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn broker_urls() {
        let (b, tls) = parse_broker("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!(
            b,
            BrokerAddr {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert!(!tls);
        assert_eq!(parse_broker("mqtt://board.local").unwrap().0.port, 1883);
        assert_eq!(
            parse_broker("mqtts://board.local").unwrap(),
            (
                BrokerAddr {
                    host: "board.local".into(),
                    port: 8883
                },
                true
            )
        );
        assert_eq!(parse_broker("mqtt://[::1]:99").unwrap().0.host, "::1");
        for bad in [
            "127.0.0.1:1883",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h:70000",
            "tcp://h:1",
            "mqtt://u@h:1",
        ] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let dir = tmp("layers");
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "prefix = \"f/\"\nqos = 1\npayload = \"json\"\ninput_names = [\"btn0\", \"btn1\"]\n\
             reconnect_max = 2.5\n\n[[rule]]\ntopic = \"button/0\"\naction = \"toggle\"\n",
        )
        .unwrap();
        let common = CommonArgs {
            config: Some(file.clone()),
            qos: Some("2".into()),
            ..CommonArgs::default()
        };
        let s = resolve(&common, Some("sim"), None).unwrap();
        assert_eq!(s.bridge.qos, QoS::ExactlyOnce, "command line wins");
        assert_eq!(s.prefix, "f/", "file fills what the command line leaves");
        assert_eq!(s.bridge.topics.prefix, "f/");
        assert_eq!(s.bridge.payload, PayloadFormat::Json);
        assert_eq!(s.bridge.topics.input_names, ["btn0", "btn1"]);
        assert_eq!(s.bridge.reconnect_max, Duration::from_millis(2500));
        assert_eq!(s.broker.port, 1883, "default");
        assert_eq!(s.board, BoardKind::Sim);
        assert_eq!(s.bridge.rules.len(), 1);
        assert_eq!(s.bridge.rules[0].leds, RuleLeds::All);
        let shown = render(&s);
        assert!(
            shown.contains("qos = 2") && shown.contains("--qos"),
            "{shown}"
        );
        assert!(
            shown.contains("prefix = \"f/\"") && shown.contains("c.toml:1"),
            "{shown}"
        );
        assert!(shown.contains("[[rule]]"), "{shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_name_file_line_and_key() {
        let dir = tmp("bad");
        let file = dir.join("c.toml");
        let common = CommonArgs {
            config: Some(file.clone()),
            ..CommonArgs::default()
        };
        let err = |text: &str| {
            std::fs::write(&file, text).unwrap();
            resolve(&common, None, None).unwrap_err().to_string()
        };
        let e = err("prefix = \"f/\"\nbrokr = \"x\"\n");
        assert!(
            e.contains("line 2") && e.contains("`brokr`") && e.contains("did you mean `broker`"),
            "{e}"
        );
        assert!(e.contains("c.toml"), "{e}");
        let e = err("\n\nqos = \"high\"\n");
        assert!(e.contains("line 3") && e.contains("`qos`"), "{e}");
        let e = err("qos = 5\n");
        assert!(
            e.contains("line 1") && e.contains("`qos`") && e.contains("0, 1 or 2"),
            "{e}"
        );
        let e = err("buffer_capacity = -3\n");
        assert!(e.contains("`buffer_capacity`"), "{e}");
        let e = err("x = [\n");
        assert!(e.contains("c.toml"), "{e}");
        let e = err("[tls]\nca_file = \"x\"\n");
        assert!(
            e.contains("unknown key `tls`") && e.contains("line 1"),
            "{e}"
        );
        let e = err("[[rule]]\ntopic = \"b\"\nactoin = \"on\"\n");
        assert!(e.contains("line 3") && e.contains("rule.actoin"), "{e}");
        let e = err("led_names = [\"a\", \"a\"]\n");
        assert!(e.contains("line 1") && e.contains("twice"), "{e}");
        let e = err("ca_file = \"/x\"\n");
        assert!(e.contains("not mqtts://"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let common = CommonArgs {
            max_inflight: Some("0".into()),
            ..CommonArgs::default()
        };
        let e = resolve(&common, None, None).unwrap_err().to_string();
        assert!(e.starts_with("--max-inflight"), "{e}");
        let e = resolve(&CommonArgs::default(), None, Some("tcp://x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--broker") && e.contains("mqtt://"), "{e}");
    }

    #[test]
    fn password_comes_from_a_file_and_is_masked() {
        let dir = tmp("pw");
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let common = CommonArgs {
            username: Some("u".into()),
            password_file: Some(pw.display().to_string()),
            ..CommonArgs::default()
        };
        // (PYNQ_MQTT_PASSWORD, if the test's environment had it, would win; it has not)
        if std::env::var(PASSWORD_ENV).is_err() {
            let s = resolve(&common, None, None).unwrap();
            assert_eq!(s.bridge.password.as_ref().unwrap().expose(), "s3cret");
            let shown = render(&s);
            assert!(
                !shown.contains("s3cret") && shown.contains("***"),
                "{shown}"
            );
            assert!(!format!("{s:?}").contains("s3cret"));
        }
        let no_user = CommonArgs {
            password_file: Some(pw.display().to_string()),
            ..CommonArgs::default()
        };
        assert!(resolve(&no_user, None, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
