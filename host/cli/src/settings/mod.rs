//! Settings: command line over environment over config file (TOML) over defaults.
//!
//! Each setting is one row of the table below: its type, default and variable. The
//! row makes the flag and the variable (clap derive, under its group's help heading),
//! the file key, the field of [`Values`] and the line of `pynq-mqtt config`;
//! `build.rs` hands each value to the bridge or the driver. A new setting is a row
//! here and a line there (a value of a new type also needs `FromStr` and serde's
//! traits, in the crate that owns the type, and its name in `value.rs`).
//!
//! The layers themselves (a value's true source, from clap's `ArgMatches::value_source`,
//! errors that name it, the file's lines and its unknown keys refused with the nearest
//! known one) are `pynq_mqtt_layers`, which knows no setting: this module gives it
//! the keys, the types and the names.

mod build;
mod value;

use std::path::PathBuf;

use anyhow::Result;
use clap::ArgMatches;
pub use pynq_mqtt_bridge::{parse_broker, BrokerAddr, BrokerUrl, Brokers, Names, Qos, Seconds};
use pynq_mqtt_bridge::{BridgeConfig, PayloadFormat, Rule, SessionMode, StateFormat};
use pynq_mqtt_bus::uio::DeviceSpec;
use pynq_mqtt_driver::DriverConfig;
pub use pynq_mqtt_layers::{bad_value, show, Bool, Int, Source, Value};
use pynq_mqtt_layers::{pick, File, Keys};
#[cfg(feature = "sim")]
pub use pynq_mqtt_sim::Speed as SimSpeed;

pub use crate::board::{default_device, BoardKind};
use crate::identity::default_client_id;
pub use crate::secrets::PASSWORD_ENV;
use value::Named;

/// Without the simulator the speed is kept as written (a sim board cannot run).
#[cfg(not(feature = "sim"))]
pub type SimSpeed = String;

/// Each row `name: Type [= default], "ENV";` is the flag `--name`, the variable ENV,
/// the file key `name` and the field `Values::name` (an `Option` when the row has no
/// default). A default is text, shown by clap and parsed as a flag's value would be,
/// or `{ an expression }` of the settings above it. Each group is a clap struct of
/// its own under its help heading; `cli.rs` gives each subcommand the groups it uses.
macro_rules! settings {
    ($($(#[$group_attr:meta])* $group:ident $heading:literal {
        $($(#[$attr:meta])* $name:ident: $ty:ty $(= $default:tt)?, $env:literal;)*
    })*) => {
        $(
            #[derive(clap::Args, Clone, Debug, Default)]
            $(#[$group_attr])*
            #[command(next_help_heading = $heading)]
            pub struct $group {
                $(#[arg(long, env = $env, value_parser = pynq_mqtt_layers::parser::<$ty>())]
                #[arg(value_name = <$ty as Named>::NAME)]
                #[arg(default_value = settings!(@shown $($default)?))]
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
                let found = match sim_board::<$ty>(stringify!($name), sim_cmd) {
                    Some(sim) => Some(sim),
                    None => pick::<$ty>(m, stringify!($name), $env, file)?,
                };
                let ($name, value, source) = match found {
                    Some((v, source)) => (settings!(@some v $(, $default)?), Some(show(&v)), source),
                    None => settings!(@default $ty $(, $default)?),
                };
                shown.push(Shown { key: stringify!($name), value, source });
            )*)*
            Ok((Values { $($($name,)*)* }, shown))
        }
    };
    (@shown $default:literal) => { Some($default) };
    (@shown $($computed:tt)?) => { None::<&'static str> };
    (@type $ty:ty) => { Option<$ty> };
    (@type $ty:ty, $default:tt) => { $ty };
    (@some $v:ident) => { Some($v.clone()) };
    (@some $v:ident, $default:tt) => { $v.clone() };
    (@default $ty:ty) => { (None, None, Source::Default) };
    (@default $ty:ty, $default:literal) => {
        settings!(@default $ty, { <$ty as Value>::parse($default).expect("a default parses") })
    };
    (@default $ty:ty, { $($computed:tt)* }) => {{
        let v: $ty = $($computed)*;
        let shown = Some(show(&v));
        (v, shown, Source::Default)
    }};
}

settings! {
    // (first under its heading, wherever a subcommand puts it)
    #[command(next_display_order = 0)]
    BoardArgs "Hardware" {
        /// `uio` (a PYNQ board with our overlay), `sim` (its Verilated RTL), `base` (PYNQ's
        /// stock base overlay, no bitstream build) or `base-sim` (models of the base overlay).
        board: BoardKind = "uio", "PYNQ_MQTT_BOARD";
        /// UIO device: a name in /sys/class/uio/*/name or a node, /dev/uio4.
        #[arg(value_name = "NAME|/dev/uioN")]
        device: DeviceSpec = "pynq_mqtt", "PYNQ_MQTT_DEVICE";
        /// Base overlay: its registers through `devmem` (/dev/mem, root) or `uio:NAME` (a
        /// generic-uio device holding the five windows as maps 0-4).
        base_regs: crate::base_board::BaseRegs = "devmem", "PYNQ_MQTT_BASE_REGS";
        /// Base overlay: `auto` (from /proc/device-tree/chosen/pynq_board), `z1` or `z2`:
        /// which interrupt-controller inputs are the buttons' and switches'.
        pynq_board: crate::base_board::PynqBoard = "auto", "PYNQ_MQTT_PYNQ_BOARD";
    }
    BrokerArgs "Broker" {
        /// mqtt://HOST:PORT or mqtts://HOST:PORT (TLS). Repeat it (or separate by commas;
        /// a list in the file) for failover: a failed connection moves to the next broker.
        #[arg(action = clap::ArgAction::Append)]
        broker: Brokers = "mqtt://localhost:1883", "PYNQ_MQTT_BROKER";
        /// User name for the broker.
        username: String, "PYNQ_MQTT_USERNAME";
        /// File holding the broker password (first line); or set PYNQ_MQTT_PASSWORD.
        password_file: PathBuf, "PYNQ_MQTT_PASSWORD_FILE";
    }
    TlsArgs "TLS" {
        /// PEM file of the CA certificates to trust (default: the system's).
        ca_file: PathBuf, "PYNQ_MQTT_CA_FILE";
        /// PEM client certificate (chain).
        client_cert: PathBuf, "PYNQ_MQTT_CLIENT_CERT";
        /// PEM private key of the client certificate.
        client_key: PathBuf, "PYNQ_MQTT_CLIENT_KEY";
        /// Name the broker's certificate must carry (default: the broker's host).
        server_name: String, "PYNQ_MQTT_SERVER_NAME";
    }
    SessionArgs "Broker" {
        /// MQTT client id, unique per board; keep it stable for a persistent session
        /// (default: pynq-mqtt-<last 6 hex digits of the MAC>, pynq-mqtt-sim on the simulated board).
        client_id: String = { default_client_id(board) }, "PYNQ_MQTT_CLIENT_ID";
        /// `persistent` (subscriptions and QoS 1/2 state outlive a reconnect) or `clean`.
        session: SessionMode = "persistent", "PYNQ_MQTT_SESSION";
        /// MQTT version: `3.1.1` or `5` (receive maximum, packet size, topic aliases).
        protocol: pynq_mqtt_bridge::Protocol = "3.1.1", "PYNQ_MQTT_PROTOCOL";
        /// Seconds between keep-alive pings when idle, 0 to 1200; a dead broker is
        /// found within twice this. 0: no MQTT keep-alive (no pings; TCP keep-alive
        /// probes find a dead broker in about a minute).
        keep_alive: Seconds = "30", "PYNQ_MQTT_KEEP_ALIVE";
    }
    DeliveryArgs "Broker" {
        /// QoS of button events.
        qos: Qos = "0", "PYNQ_MQTT_QOS";
        /// Events held unacknowledged or while the broker is away; beyond, dropped.
        buffer_capacity: Int<1, 100_000_000> = "65536", "PYNQ_MQTT_BUFFER_CAPACITY";
        /// QoS 1/2 events in flight (sent, not yet acknowledged) at most.
        max_inflight: Int<1, 30_000> = "16", "PYNQ_MQTT_MAX_INFLIGHT";
        /// First reconnect delay in seconds; doubles with jitter up to --reconnect-max.
        reconnect_min: Seconds = "0.1", "PYNQ_MQTT_RECONNECT_MIN";
        /// Longest reconnect delay in seconds.
        reconnect_max: Seconds = "30", "PYNQ_MQTT_RECONNECT_MAX";
        /// At a stop, seconds to keep trying to deliver buffered events.
        shutdown_timeout: Seconds = "15", "PYNQ_MQTT_SHUTDOWN_TIMEOUT";
    }
    TopicArgs "Topics" {
        /// Prefix of every topic, e.g. `pynq/board1/` (default: none, as in the seed).
        prefix: String = { String::new() }, "PYNQ_MQTT_PREFIX";
        /// Topic of an input's events below the prefix, with `{name}` or `{i}`.
        button_topic: String = "button/{name}", "PYNQ_MQTT_BUTTON_TOPIC";
        /// Names of the inputs, comma-separated, e.g. `btn0,btn1,btn2,btn3` (default: the index).
        input_names: Names = { Names::default() }, "PYNQ_MQTT_INPUT_NAMES";
        /// Names of the LEDs in `led/<name>` and `led/<name>/set` (default: the index).
        led_names: Names = { Names::default() }, "PYNQ_MQTT_LED_NAMES";
    }
    PayloadArgs "Payloads" {
        /// Button payloads: `plain` (1/0) or `json`.
        payload: PayloadFormat = "plain", "PYNQ_MQTT_PAYLOAD";
        /// States on `led/<i>`, `input/<i>` and plain `button/<i>`: `10` (1/0) or `onoff` (ON/OFF).
        state_format: StateFormat = "10", "PYNQ_MQTT_STATE_FORMAT";
        /// Seconds between `stats` messages; 0 turns them off.
        stats_interval: Seconds = "30", "PYNQ_MQTT_STATS_INTERVAL";
    }
    DriverArgs "Hardware" {
        /// Capacity of the event channel between driver and publisher.
        channel_capacity: Int<1, 100_000_000> = "65536", "PYNQ_MQTT_CHANNEL_CAPACITY";
        /// Hardware debounce of every input in µs, 0: off (the board's config sets 5000).
        debounce_us: Int<0, 65_535> = "0", "PYNQ_MQTT_DEBOUNCE_US";
        /// Interrupt after this many waiting events, 1 to 65535.
        coalesce_count: Int<1, 65_535> = "1", "PYNQ_MQTT_COALESCE_COUNT";
        /// ... or once the oldest event waited this many microseconds (0: at once).
        coalesce_us: Int<0, 4_294_967_295> = "0", "PYNQ_MQTT_COALESCE_US";
        /// Real-time (SCHED_FIFO) priority of the thread draining the event FIFO, 1 to 99,
        /// or 0 for normal scheduling. Needs root, CAP_SYS_NICE or RLIMIT_RTPRIO (the
        /// installed unit grants LimitRTPRIO); refused, it warns and runs.
        rt_priority: Int<0, 99> = "10", "PYNQ_MQTT_RT_PRIORITY";
        /// Base overlay: software debounce lockout of every input in µs, 0: off.
        soft_debounce_us: Int<0, 10_000_000> = "5000", "PYNQ_MQTT_SOFT_DEBOUNCE_US";
        /// Simulated board: replay `<time_us> <input> <level>` lines onto the inputs.
        stimulus: PathBuf, "PYNQ_MQTT_STIMULUS";
        /// Simulated board: `realtime`, `fast` (the stimulus at full speed) or a factor.
        sim_speed: SimSpeed = "realtime", "PYNQ_MQTT_SIM_SPEED";
    }
    HaArgs "Home Assistant" {
        /// `true` publishes a retained discovery config per input and LED.
        ha_discovery: Bool = "false", "PYNQ_MQTT_HA_DISCOVERY";
        /// Home Assistant discovery prefix.
        ha_prefix: String = "homeassistant", "PYNQ_MQTT_HA_PREFIX";
        /// The device's name in Home Assistant (default `PYNQ` and the board's part of the
        /// client id, e.g. `PYNQ 3f2a1c`).
        ha_device_name: String = { pynq_mqtt_bridge::default_device_name(&client_id) }, "PYNQ_MQTT_HA_DEVICE_NAME";
    }
    WebArgs "Web page" {
        /// Serve the live page and `/metrics` here: PORT (on 127.0.0.1) or HOST:PORT,
        /// e.g. `0.0.0.0:8080` for every interface (default: off).
        http: pynq_mqtt_web::HttpAddr, "PYNQ_MQTT_HTTP";
        /// Let the page switch LEDs; beyond loopback only with a token in
        /// PYNQ_MQTT_HTTP_TOKEN.
        #[arg(num_args = 0..=1, default_missing_value = "true")]
        http_control: Bool = "false", "PYNQ_MQTT_HTTP_CONTROL";
    }
}

/// The config file, for every subcommand that reads settings.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// TOML config file (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "PYNQ_MQTT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The keys of a `[[rule]]` table, each read by the bridge's own `Rule`.
const RULE_KEYS: &[&str] = &["topic", "payloads", "action", "leds"];

/// A refusal of the value of `key`, naming where it came from.
fn fail(source: &Source, key: &str, msg: &str) -> anyhow::Error {
    pynq_mqtt_layers::Error::value(source, key, msg).into()
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
    /// Set once a base overlay (`--board base`, `base-sim`) is open: the driver runs
    /// on it with these settings.
    pub base: Option<pynq_mqtt_driver::base::BaseConfig>,
}

/// `pynq-mqtt sim` is the simulated board whatever the file says, so that the
/// defaults that follow the board (the client id) are the simulator's.
fn sim_board<T: Value>(key: &str, sim_cmd: bool) -> Option<(T, Source)> {
    (sim_cmd && key == "board")
        .then(|| T::parse("sim").ok().map(|v| (v, Source::Default)))
        .flatten()
}

/// Resolves the settings of a subcommand's arguments: those of the groups above it
/// takes, and the file of [`CommonArgs`] for every key. `sim_cmd`: the subcommand is
/// `sim` (told by name: clap's matches tell a missing argument from an absent value
/// only in debug builds).
pub fn resolve(m: &ArgMatches, sim_cmd: bool) -> Result<Settings> {
    // a file is read by whoever may read the config: the password lives in a file of
    // its own or in the environment
    let password = format!(
        "the password is not a config key: use `password_file` = a file of its own, \
         mode 600, or the environment variable {PASSWORD_ENV}"
    );
    let keys = Keys {
        values: KEYS,
        tables: &[("rule", RULE_KEYS)],
        refused: &[("password", password.as_str())],
    };
    let file = match m.try_get_one::<PathBuf>("config") {
        Ok(Some(path)) => Some(File::load(path, keys)?),
        _ => None,
    };
    let (mut values, mut shown) = resolve_values(m, file.as_ref(), sim_cmd)?;
    build::every_broker(m, &mut values, &mut shown)?;
    let rules = file
        .as_ref()
        .map_or(Ok(Vec::new()), |f| f.tables::<Rule>("rule"))?;
    let ha_remove = matches!(m.try_get_one::<bool>("ha_remove"), Ok(Some(true)));
    build::settings(values, shown, rules, ha_remove)
}
