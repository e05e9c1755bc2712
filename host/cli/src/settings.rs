//! Settings: command line over environment over config file (TOML) over defaults.
//! clap resolves the first two (each flag has its variable); the file fills the rest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pynq_mqtt_bridge::PayloadFormat;
use rumqttc::QoS;
use serde::Deserialize;

/// Settings shared by `run` and `sim`; every field optional so that a flag or
/// variable that was not given falls through to the file, then to the default.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// TOML config file.
    #[arg(long, env = "PYNQ_MQTT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix of every topic, e.g. `pynq/board1/` (default: none, as in the seed).
    #[arg(long, env = "PYNQ_MQTT_PREFIX")]
    pub prefix: Option<String>,
    /// MQTT client id (default: pynq-mqtt-<pid>).
    #[arg(long, env = "PYNQ_MQTT_CLIENT_ID")]
    pub client_id: Option<String>,
    /// QoS of button events: 0, 1 or 2 (default 0).
    #[arg(long, env = "PYNQ_MQTT_QOS")]
    pub qos: Option<u8>,
    /// Button payloads: `plain` (1/0, default) or `json`.
    #[arg(long, env = "PYNQ_MQTT_PAYLOAD")]
    pub payload: Option<String>,
    /// Seconds between `stats` messages; 0 turns them off (default 30).
    #[arg(long, env = "PYNQ_MQTT_STATS_INTERVAL", value_name = "SECS")]
    pub stats_interval: Option<u64>,
    /// Capacity of the event channel between driver and publisher (default 65536).
    #[arg(long, env = "PYNQ_MQTT_CHANNEL_CAPACITY")]
    pub channel_capacity: Option<usize>,
    /// Simulated board: replay `<time_us> <input> <level>` lines onto the inputs.
    #[arg(long, env = "PYNQ_MQTT_STIMULUS", value_name = "FILE")]
    pub stimulus: Option<PathBuf>,
    /// Simulated board: `realtime` (default), `fast` (the stimulus as fast as the
    /// host takes it, then real time) or a factor of real time.
    #[arg(long, env = "PYNQ_MQTT_SIM_SPEED")]
    pub sim_speed: Option<String>,
}

/// The config file: the same keys as the long flags, with `_` for `-`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    board: Option<String>,
    broker: Option<String>,
    prefix: Option<String>,
    client_id: Option<String>,
    qos: Option<u8>,
    payload: Option<String>,
    stats_interval: Option<u64>,
    channel_capacity: Option<usize>,
    stimulus: Option<PathBuf>,
    sim_speed: Option<String>,
}

/// Which board backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardKind {
    Uio,
    Sim,
}

/// A broker address from `mqtt://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

/// Parses `mqtt://HOST[:PORT]` (port 1883 by default); IPv6 hosts in brackets.
pub fn parse_broker(url: &str) -> Result<BrokerAddr> {
    let Some(rest) = url.strip_prefix("mqtt://") else {
        bail!("broker {url:?}: expected mqtt://HOST:PORT");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .with_context(|| format!("broker {url:?}: unclosed [ in host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains('/') || host.contains('@') {
        bail!("broker {url:?}: bad host {host:?}");
    }
    let port = match port {
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => bail!("broker {url:?}: bad port {p:?}"),
        },
    };
    Ok(BrokerAddr {
        host: host.to_owned(),
        port,
    })
}

/// Everything the daemon needs, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub board: BoardKind,
    pub broker: BrokerAddr,
    pub prefix: String,
    pub client_id: Option<String>,
    pub qos: QoS,
    pub payload: PayloadFormat,
    pub stats_interval: Option<Duration>,
    pub channel_capacity: usize,
    pub stimulus: Option<PathBuf>,
    pub sim_speed: String,
}

fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

/// Resolves the settings; `board` and `broker` come from `run`'s own flags (or
/// from `sim`, which fixes them).
pub fn resolve(common: &CommonArgs, board: Option<&str>, broker: Option<&str>) -> Result<Settings> {
    let file = match &common.config {
        Some(p) => load_file(p)?,
        None => FileConfig::default(),
    };
    let board = match board.or(file.board.as_deref()).unwrap_or("uio") {
        "uio" => BoardKind::Uio,
        "sim" => BoardKind::Sim,
        other => bail!("board {other:?}: expected `uio` or `sim`"),
    };
    let broker = parse_broker(
        broker
            .or(file.broker.as_deref())
            .unwrap_or("mqtt://localhost:1883"),
    )?;
    let qos = match common.qos.or(file.qos).unwrap_or(0) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        q => bail!("qos {q}: expected 0, 1 or 2"),
    };
    let payload: PayloadFormat = common
        .payload
        .clone()
        .or(file.payload)
        .unwrap_or_else(|| "plain".into())
        .parse()
        .map_err(anyhow::Error::msg)?;
    let stats_interval = match common.stats_interval.or(file.stats_interval).unwrap_or(30) {
        0 => None,
        s => Some(Duration::from_secs(s)),
    };
    let channel_capacity = common
        .channel_capacity
        .or(file.channel_capacity)
        .unwrap_or(65_536);
    if channel_capacity == 0 {
        bail!("channel capacity must be at least 1");
    }
    let prefix = common.prefix.clone().or(file.prefix).unwrap_or_default();
    if prefix.contains(['+', '#', '\0']) {
        bail!("prefix {prefix:?}: MQTT wildcards and NUL are not allowed in topics");
    }
    Ok(Settings {
        board,
        broker,
        prefix,
        client_id: common.client_id.clone().or(file.client_id),
        qos,
        payload,
        stats_interval,
        channel_capacity,
        stimulus: common.stimulus.clone().or(file.stimulus),
        sim_speed: common
            .sim_speed
            .clone()
            .or(file.sim_speed)
            .unwrap_or_else(|| "realtime".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker("mqtt://127.0.0.1:1884").unwrap(),
            BrokerAddr {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert_eq!(parse_broker("mqtt://board.local").unwrap().port, 1883);
        assert_eq!(parse_broker("mqtt://[::1]:99").unwrap().host, "::1");
        for bad in [
            "127.0.0.1:1883",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h:70000",
            "tcp://h:1",
        ] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let dir = std::env::temp_dir().join(format!("pynq-mqtt-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "prefix = \"f/\"\nqos = 1\npayload = \"json\"\n").unwrap();
        let common = CommonArgs {
            config: Some(file.clone()),
            qos: Some(2),
            ..CommonArgs::default()
        };
        let s = resolve(&common, Some("sim"), None).unwrap();
        assert_eq!(s.qos, QoS::ExactlyOnce, "command line wins");
        assert_eq!(s.prefix, "f/", "file fills what the command line leaves");
        assert_eq!(s.payload, PayloadFormat::Json);
        assert_eq!(s.broker.port, 1883, "default");
        assert_eq!(s.board, BoardKind::Sim);

        std::fs::write(&file, "prefix = \"f/\"\nbrokr = \"x\"\n").unwrap();
        let e = resolve(&common, None, None).unwrap_err().to_string();
        assert!(e.contains("unknown field") && e.contains("line 2"), "{e}");
        std::fs::write(&file, "qos = \"high\"\n").unwrap();
        let e = resolve(&common, None, None).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
