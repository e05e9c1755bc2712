//! The types of the settings' values.

use std::path::PathBuf;
use std::time::Duration;

pub use pynq_mqtt_bridge::Qos;
use pynq_mqtt_bridge::{PayloadFormat, SessionMode};
use pynq_mqtt_bus::uio::DeviceSpec;

use super::setting::{quote, Kind, Setting};

fn whole(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected a whole number, found {s:?}"))
}

/// A whole number from `MIN` to `MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int<const MIN: u64, const MAX: u64>(pub(super) u64);

impl<const MIN: u64, const MAX: u64> Int<MIN, MAX> {
    /// The value in the integer type its range was chosen for.
    pub fn get<T: TryFrom<u64>>(self) -> T {
        T::try_from(self.0).unwrap_or_else(|_| unreachable!("{} does not fit", self.0))
    }
    fn check(n: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!("{n}: expected {MIN} to {MAX}"))
        }
    }
}

impl<const MIN: u64, const MAX: u64> Setting for Int<MIN, MAX> {
    const TOML: Kind = Kind::Int;
    fn parse(s: &str) -> Result<Self, String> {
        whole(s).and_then(Self::check)
    }
    fn show(&self) -> String {
        self.0.to_string()
    }
}

/// Seconds from `MIN` to `MAX`; `WHOLE` drops a fraction (MQTT's keep-alive field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs<const MIN: u64, const MAX: u64, const WHOLE: bool = false>(pub Duration);

impl<const MIN: u64, const MAX: u64, const WHOLE: bool> Setting for Secs<MIN, MAX, WHOLE> {
    const TOML: Kind = Kind::Num;
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().parse::<f64>() {
            Ok(f) if (MIN as f64..=MAX as f64).contains(&f) => {
                let d = Duration::from_secs_f64(f);
                Ok(Secs(if WHOLE {
                    Duration::from_secs(d.as_secs())
                } else {
                    d
                }))
            }
            Ok(f) => Err(format!("{f}: expected {MIN} to {MAX} seconds")),
            Err(_) => Err(format!("expected seconds, found {s:?}")),
        }
    }
    fn show(&self) -> String {
        let s = self.0.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{}", s as u64)
        } else {
            format!("{s}")
        }
    }
}

impl Setting for bool {
    const TOML: Kind = Kind::Bool;
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, found {s:?}")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// Names: comma-separated on the command line, an array of strings in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names(pub Vec<String>);

impl Setting for Names {
    const TOML: Kind = Kind::List;
    fn parse(s: &str) -> Result<Self, String> {
        let names = s.split(',').map(str::trim).filter(|x| !x.is_empty());
        Ok(Names(names.map(str::to_owned).collect()))
    }
    fn from_list(v: Vec<String>) -> Self {
        Names(v)
    }
    fn show(&self) -> String {
        let quoted: Vec<String> = self.0.iter().map(|s| quote(s)).collect();
        format!("[{}]", quoted.join(", "))
    }
}

impl Setting for String {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
    fn show(&self) -> String {
        quote(self)
    }
}

impl Setting for PathBuf {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(PathBuf::from(s))
    }
    fn show(&self) -> String {
        quote(&self.display().to_string())
    }
}

impl Setting for DeviceSpec {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse().map_err(|never| match never {})
    }
    fn show(&self) -> String {
        quote(&self.to_string())
    }
}

/// The UIO device the overlay names.
pub fn default_device() -> DeviceSpec {
    DeviceSpec::Name("pynq_mqtt".into())
}

/// Which board backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoardKind {
    #[default]
    Uio,
    Sim,
}

/// The speed of the simulated board.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum SimSpeed {
    #[default]
    Realtime,
    /// The stimulus as fast as the host takes it, then real time.
    Fast,
    /// Simulated seconds per wall second.
    Factor(f64),
}

impl Setting for SimSpeed {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "realtime" => Ok(SimSpeed::Realtime),
            "fast" => Ok(SimSpeed::Fast),
            _ => match s.parse::<f64>() {
                Ok(f) if f > 0.0 && f.is_finite() => Ok(SimSpeed::Factor(f)),
                _ => Err(format!(
                    "{s:?}: expected `realtime`, `fast` or a factor > 0"
                )),
            },
        }
    }
    fn show(&self) -> String {
        match self {
            SimSpeed::Realtime => quote("realtime"),
            SimSpeed::Fast => quote("fast"),
            SimSpeed::Factor(f) => quote(&f.to_string()),
        }
    }
}

/// Settings that are one of a few words (or numbers).
macro_rules! words {
    ($($t:ty: $kind:ident { $($v:path = $w:literal),+ })*) => {$(
        impl Setting for $t {
            const TOML: Kind = Kind::$kind;
            fn parse(s: &str) -> Result<Self, String> {
                let words = [$($w),+];
                let (last, rest) = words.split_last().expect("words");
                let s = s.trim();
                let quoted = if Self::TOML == Kind::Str { format!("{s:?}") } else { s.into() };
                match s {
                    $($w => Ok($v),)+
                    _ => Err(format!("{quoted}: expected {} or {last}", rest.join(", "))),
                }
            }
            fn show(&self) -> String {
                let w = match self { $($v => $w),+ };
                if Self::TOML == Kind::Str { quote(w) } else { w.to_owned() }
            }
        }
    )*};
}

words! {
    Qos: Int { Qos::AtMostOnce = "0", Qos::AtLeastOnce = "1", Qos::ExactlyOnce = "2" }
    BoardKind: Str { BoardKind::Uio = "uio", BoardKind::Sim = "sim" }
    PayloadFormat: Str { PayloadFormat::Plain = "plain", PayloadFormat::Json = "json" }
    SessionMode: Str { SessionMode::Persistent = "persistent", SessionMode::Clean = "clean" }
}

/// A broker address from `mqtt://HOST:PORT` or `mqtts://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

/// The broker setting: its address and whether it is TLS (`mqtts://`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub addr: BrokerAddr,
    pub tls: bool,
}

impl Setting for BrokerUrl {
    fn parse(s: &str) -> Result<Self, String> {
        let (addr, tls) = parse_broker(s).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(BrokerUrl { addr, tls })
    }
    fn show(&self) -> String {
        let (scheme, host) = (if self.tls { "mqtts" } else { "mqtt" }, &self.addr.host);
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        quote(&format!("{scheme}://{host}:{}", self.addr.port))
    }
}

/// Parses `mqtt://HOST[:PORT]` (port 1883) or `mqtts://HOST[:PORT]` (TLS, port
/// 8883); IPv6 hosts in brackets. Returns the address and whether it is TLS.
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
