//! Settings: command line over environment over config file (TOML) over defaults.
//!
//! Each setting is one row of the table below: its type, default and variable. The
//! row makes the flag and the variable (clap derive), the file key, the field of
//! [`Values`] and the line of `pynq-mqtt config`; `build.rs` hands each value to the
//! bridge or the driver. A new setting is a row here and a line there (a value of a
//! new type also needs `FromStr` and serde's traits, in the crate that owns the type).
//!
//! A value's source is clap's own (`ArgMatches::value_source`); a bad value names it:
//! `--qos: 5: ...`, `environment variable PYNQ_MQTT_QOS: 5: ...` or `config file c.toml,
//! line 3, key `qos`: ...`. An unknown key in the file is refused, with its line and
//! the nearest known key.

mod build;
mod file;
mod value;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::ArgMatches;
pub use pynq_mqtt_bridge::{parse_broker, BrokerAddr, BrokerUrl, Qos};
use pynq_mqtt_bridge::{BridgeConfig, PayloadFormat, SessionMode, StateFormat};
use pynq_mqtt_bus::uio::DeviceSpec;
use pynq_mqtt_driver::DriverConfig;
#[cfg(feature = "sim")]
pub use pynq_mqtt_sim::Speed as SimSpeed;

pub use crate::board::{default_device, BoardKind};
pub(crate) use build::hostname;
pub use build::PASSWORD_ENV;
use file::File;
pub use value::{bad_value, show, Int, Names, Seconds, Value};

/// Without the simulator the speed is kept as written (a sim board cannot run).
#[cfg(not(feature = "sim"))]
pub type SimSpeed = String;

/// Each row `name: Type [= default], "ENV";` is the flag `--name`, the variable ENV,
/// the file key `name` and the field `Values::name` (an `Option` when the row has no
/// default). A default may use the settings above it. Each group is a clap struct of
/// its own, for the subcommands that take it.
macro_rules! settings {
    ($($(#[$group_attr:meta])* $group:ident {
        $($(#[$attr:meta])* $name:ident: $ty:ty $(= $default:expr)?, $env:literal;)*
    })*) => {
        $(
            $(#[$group_attr])*
            #[derive(clap::Args, Clone, Debug, Default)]
            pub struct $group {
                $(#[arg(long, env = $env, value_parser = value::parser::<$ty>())]
                #[arg(value_name = <$ty as Value>::NAME)]
                $(#[$attr])*
                pub $name: Option<$ty>,)*
            }
        )*

        /// Every setting, resolved.
        #[derive(Clone, Debug)]
        pub struct Values {
            $($(pub $name: settings!(@type $ty $(, $default)?),)*)*
        }

        /// Every key a config file may hold, but `[[rule]]`.
        pub const KEYS: &[&str] = &[$($(stringify!($name),)*)*];

        /// Each setting from the command line or environment, else the file, else its
        /// default; and the lines of `config`.
        fn resolve_values(
            m: &ArgMatches,
            file: Option<&File>,
            sim_cmd: bool,
        ) -> Result<(Values, Vec<Shown>)> {
            let mut shown = Vec::new();
            $($(
                let mut found = pick::<$ty>(m, stringify!($name), $env, file)?;
                sim_board(stringify!($name), sim_cmd, &mut found);
                let ($name, value, source) = settings!(@settle found $(, $default)?);
                shown.push(Shown { key: stringify!($name), value, source });
            )*)*
            Ok((Values { $($($name,)*)* }, shown))
        }
    };
    (@type $ty:ty) => { Option<$ty> };
    (@type $ty:ty, $default:expr) => { $ty };
    (@settle $found:ident) => {
        match $found {
            Some((v, source)) => (Some(v.clone()), Some(show(&v)), source),
            None => (None, None, Source::Default),
        }
    };
    (@settle $found:ident, $default:expr) => {{
        let (v, source) = $found.unwrap_or_else(|| ($default, Source::Default));
        let shown = Some(show(&v));
        (v, shown, source)
    }};
}

settings! {
    /// The board, for `run`, `config`, `doctor` and `regs` (`sim` is its own board).
    BoardArgs {
        /// `uio` (a PYNQ board, default) or `sim` (the Verilated RTL).
        board: BoardKind = BoardKind::default(), "PYNQ_MQTT_BOARD";
        /// UIO device: a name in /sys/class/uio/*/name or a node, /dev/uio4 (default pynq_mqtt).
        #[arg(value_name = "NAME|/dev/uioN")]
        device: DeviceSpec = default_device(), "PYNQ_MQTT_DEVICE";
    }
    /// The broker, for `run`, `config` and `doctor` (`sim` embeds its own).
    BrokerArgs {
        /// mqtt://HOST:PORT or mqtts://HOST:PORT (TLS) (default mqtt://localhost:1883).
        broker: BrokerUrl = "mqtt://localhost:1883".parse().expect("a URL"), "PYNQ_MQTT_BROKER";
    }
    /// The other settings, for every subcommand that runs or checks the daemon.
    KeyArgs {
        /// Prefix of every topic, e.g. `pynq/board1/` (default: none, as in the seed).
        prefix: String = String::new(), "PYNQ_MQTT_PREFIX";
        /// MQTT client id, unique per board; keep it stable for a persistent session
        /// (default: pynq-mqtt-<last 6 hex digits of the MAC>, pynq-mqtt-sim on the simulated board).
        client_id: String = default_client_id(board), "PYNQ_MQTT_CLIENT_ID";
        /// QoS of button events: 0, 1 or 2 (default 0).
        qos: Qos = Qos::AtMostOnce, "PYNQ_MQTT_QOS";
        /// Button payloads: `plain` (1/0, default) or `json`.
        payload: PayloadFormat = PayloadFormat::Plain, "PYNQ_MQTT_PAYLOAD";
        /// States on `led/<i>` and plain `button/<i>`: `10` (1/0, default) or `onoff` (ON/OFF).
        state_format: StateFormat = StateFormat::OneZero, "PYNQ_MQTT_STATE_FORMAT";
        /// `persistent` (default: subscriptions and QoS 1/2 state outlive a reconnect) or `clean`.
        session: SessionMode = SessionMode::Persistent, "PYNQ_MQTT_SESSION";
        /// Seconds between keep-alive pings when idle, 1 to 1200 (default 30); a dead
        /// broker is found within twice this.
        keep_alive: Seconds = Seconds(Duration::from_secs(30)), "PYNQ_MQTT_KEEP_ALIVE";
        /// Events held unacknowledged or while the broker is away; beyond, dropped (default 65536).
        buffer_capacity: Int<1, 100_000_000> = Int(65_536), "PYNQ_MQTT_BUFFER_CAPACITY";
        /// QoS 1/2 events in flight (sent, not yet acknowledged) at most (default 16).
        max_inflight: Int<1, 30_000> = Int(16), "PYNQ_MQTT_MAX_INFLIGHT";
        /// First reconnect delay in seconds; doubles with jitter up to --reconnect-max (default 0.1).
        reconnect_min: Seconds = Seconds(Duration::from_millis(100)), "PYNQ_MQTT_RECONNECT_MIN";
        /// Longest reconnect delay in seconds (default 30).
        reconnect_max: Seconds = Seconds(Duration::from_secs(30)), "PYNQ_MQTT_RECONNECT_MAX";
        /// Seconds between `stats` messages; 0 turns them off (default 30).
        stats_interval: Seconds = Seconds(Duration::from_secs(30)), "PYNQ_MQTT_STATS_INTERVAL";
        /// At a stop, seconds to keep trying to deliver buffered events (default 15).
        shutdown_timeout: Seconds = Seconds(Duration::from_secs(15)), "PYNQ_MQTT_SHUTDOWN_TIMEOUT";
        /// Capacity of the event channel between driver and publisher (default 65536).
        channel_capacity: Int<1, 100_000_000> = Int(65_536), "PYNQ_MQTT_CHANNEL_CAPACITY";
        /// Hardware debounce of every input in µs (default 0: off; the board's config sets 5000).
        debounce_us: Int<0, 65_535> = Int(0), "PYNQ_MQTT_DEBOUNCE_US";
        /// Interrupt after this many waiting events, 1 to 65535 (default 1).
        coalesce_count: Int<1, 65_535> = Int(1), "PYNQ_MQTT_COALESCE_COUNT";
        /// ... or once the oldest event waited this many microseconds (default 0: at once).
        coalesce_us: Int<0, 4_294_967_295> = Int(0), "PYNQ_MQTT_COALESCE_US";
        /// Real-time (SCHED_FIFO) priority of the thread draining the event FIFO, 1 to 99,
        /// or 0 for normal scheduling (default 0). Needs root, CAP_SYS_NICE or
        /// RLIMIT_RTPRIO (the installed unit grants LimitRTPRIO); refused, it warns and runs.
        rt_priority: Int<0, 99> = Int(0), "PYNQ_MQTT_RT_PRIORITY";
        /// User name for the broker.
        username: String, "PYNQ_MQTT_USERNAME";
        /// File holding the broker password (first line); or set PYNQ_MQTT_PASSWORD.
        password_file: PathBuf, "PYNQ_MQTT_PASSWORD_FILE";
        /// TLS (mqtts://): PEM file of the CA certificates to trust (default: the system's).
        ca_file: PathBuf, "PYNQ_MQTT_CA_FILE";
        /// TLS: PEM client certificate (chain).
        client_cert: PathBuf, "PYNQ_MQTT_CLIENT_CERT";
        /// TLS: PEM private key of the client certificate.
        client_key: PathBuf, "PYNQ_MQTT_CLIENT_KEY";
        /// TLS: name the broker's certificate must carry (default: the broker's host).
        server_name: String, "PYNQ_MQTT_SERVER_NAME";
        /// Topic of an input's events below the prefix, with `{name}` or `{i}` (default `button/{name}`).
        button_topic: String = "button/{name}".into(), "PYNQ_MQTT_BUTTON_TOPIC";
        /// Names of the inputs, comma-separated, e.g. `btn0,btn1,btn2,btn3` (default: the index).
        input_names: Names = Names::default(), "PYNQ_MQTT_INPUT_NAMES";
        /// Names of the LEDs in `led/<name>` and `led/<name>/set` (default: the index).
        led_names: Names = Names::default(), "PYNQ_MQTT_LED_NAMES";
        /// Home Assistant discovery: `true` publishes a retained config per input and LED.
        ha_discovery: bool = false, "PYNQ_MQTT_HA_DISCOVERY";
        /// Home Assistant discovery prefix (default `homeassistant`).
        ha_prefix: String = "homeassistant".into(), "PYNQ_MQTT_HA_PREFIX";
        /// The device's name in Home Assistant (default `PYNQ <client id>`).
        ha_device_name: String = format!("PYNQ {client_id}"), "PYNQ_MQTT_HA_DEVICE_NAME";
        /// Simulated board: replay `<time_us> <input> <level>` lines onto the inputs.
        stimulus: PathBuf, "PYNQ_MQTT_STIMULUS";
        /// Simulated board: `realtime` (default), `fast` (the stimulus at full speed) or a factor.
        sim_speed: SimSpeed = "realtime".parse().expect("a speed"), "PYNQ_MQTT_SIM_SPEED";
        /// Serve the live page and `/metrics` here: PORT (on 127.0.0.1) or HOST:PORT,
        /// e.g. `0.0.0.0:8080` for every interface (default: off).
        http: pynq_mqtt_web::HttpAddr, "PYNQ_MQTT_HTTP";
        /// Let the page switch LEDs; beyond loopback only with a token in
        /// PYNQ_MQTT_HTTP_TOKEN (default false).
        #[arg(num_args = 0..=1, default_missing_value = "true")]
        http_control: bool = false, "PYNQ_MQTT_HTTP_CONTROL";
    }
}

/// The default client id: the simulated board's fixed one, or the board's own from
/// its MAC (see [`crate::identity`]).
fn default_client_id(board: BoardKind) -> String {
    if board == BoardKind::Sim && !crate::identity::faked() {
        crate::identity::SIM_CLIENT_ID.into()
    } else {
        crate::identity::board_client_id()
    }
}

/// Settings shared by `run`, `sim`, `config` and `doctor`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// TOML config file (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "PYNQ_MQTT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Remove the Home Assistant discovery configs (empty retained messages) and exit.
    #[arg(long)]
    pub ha_remove: bool,
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(&'static str),
    Flag(String),
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

/// An error for a value, naming where it came from.
fn fail(source: &Source, key: &str, msg: &str) -> anyhow::Error {
    match source {
        Source::File { path, line } => {
            let path = path.display();
            anyhow::anyhow!("config file {path}, line {line}, key `{key}`: {msg}")
        }
        Source::Env(v) => anyhow::anyhow!("environment variable {v}: {msg}"),
        Source::Flag(f) => anyhow::anyhow!("{f}: {msg}"),
        Source::Default => anyhow::anyhow!("{key}: {msg}"),
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
    pub values: Values,
    /// The MQTT side, complete.
    pub bridge: BridgeConfig,
    pub driver: DriverConfig,
    pub ha_remove: bool,
    /// Every setting with its value and source, secrets masked.
    pub shown: Vec<Shown>,
}

/// `pynq-mqtt sim` is the simulated board whatever the file says, so that the
/// defaults that follow the board (the client id) are the simulator's.
fn sim_board<T: Value>(key: &str, sim_cmd: bool, found: &mut Option<(T, Source)>) {
    if sim_cmd && key == "board" {
        if let Ok(v) = T::parse("sim") {
            *found = Some((v, Source::Default));
        }
    }
}

/// A setting from the command line or its variable, as clap says; else from the file.
fn pick<T: Value>(
    m: &ArgMatches,
    key: &'static str,
    env: &'static str,
    file: Option<&File>,
) -> Result<Option<(T, Source)>> {
    // (a subcommand without the argument has no value source to ask for)
    if let Ok(Some(v)) = m.try_get_one::<T>(key) {
        match m.value_source(key) {
            Some(ValueSource::CommandLine) => {
                let flag = format!("--{}", key.replace('_', "-"));
                return Ok(Some((v.clone(), Source::Flag(flag))));
            }
            Some(ValueSource::EnvVariable) => return Ok(Some((v.clone(), Source::Env(env)))),
            _ => {}
        }
    }
    file.map_or(Ok(None), |f| f.get(key))
}

/// Resolves the settings of a subcommand's arguments ([`CommonArgs`], and those of
/// [`BoardArgs`] and [`BrokerArgs`] it takes).
pub fn resolve(m: &ArgMatches) -> Result<Settings> {
    let file = match m.try_get_one::<PathBuf>("config") {
        Ok(Some(path)) => Some(File::load(path)?),
        _ => None,
    };
    // `sim` has no --board: it is the simulated board, whose default id follows
    let sim_cmd = m.try_get_one::<BoardKind>("board").is_err();
    let (values, shown) = resolve_values(m, file.as_ref(), sim_cmd)?;
    let rules = file.as_ref().map_or(Ok(Vec::new()), File::rules)?;
    let ha_remove = matches!(m.try_get_one::<bool>("ha_remove"), Ok(Some(true)));
    build::settings(values, shown, rules, ha_remove)
}
