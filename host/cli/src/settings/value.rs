//! A setting's type read from text (a flag or a variable, through clap, whose error
//! names which), from TOML (serde, implemented by the crate that owns the type) and
//! written back as TOML for `config`. Only the ranges and units are made here.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use pynq_mqtt_bridge::{BrokerUrl, PayloadFormat, Qos, SessionMode, StateFormat};
use pynq_mqtt_bus::uio::DeviceSpec;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::BoardKind;

/// A setting's type.
pub trait Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// In `--help`.
    const NAME: &'static str;
    fn parse(s: &str) -> Result<Self, String>;
}

macro_rules! from_str {
    ($($t:ty = $name:literal),+) => {$(
        impl Value for $t {
            const NAME: &'static str = $name;
            fn parse(s: &str) -> Result<Self, String> {
                s.parse().map_err(|e| format!("{e}"))
            }
        }
    )+};
}
from_str!(
    String = "TEXT",
    PathBuf = "FILE",
    DeviceSpec = "DEVICE",
    BrokerUrl = "URL"
);
from_str!(
    PayloadFormat = "plain|json",
    SessionMode = "persistent|clean",
    Qos = "0|1|2",
    StateFormat = "10|onoff"
);
from_str!(BoardKind = "uio|sim");
from_str!(pynq_mqtt_web::HttpAddr = "[HOST:]PORT");
#[cfg(feature = "sim")]
from_str!(super::SimSpeed = "SPEED");

impl Value for bool {
    const NAME: &'static str = "BOOL";
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, found {s:?}")),
        }
    }
}

/// Names: comma-separated on the command line, an array of strings in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct Names(pub Vec<String>);

impl TryFrom<Vec<String>> for Names {
    type Error = &'static str;
    fn try_from(v: Vec<String>) -> Result<Self, Self::Error> {
        match v.iter().any(|s| s.contains(',')) {
            true => Err("a name cannot hold a comma"),
            false => Ok(Names(v)),
        }
    }
}

impl Value for Names {
    const NAME: &'static str = "NAMES";
    /// An empty name is refused rather than skipped: `a,,c` skipping it would name
    /// input 1 `c`, shifting every name after the gap.
    fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Names::default());
        }
        let names: Vec<String> = s.split(',').map(|x| x.trim().to_owned()).collect();
        match names.iter().position(String::is_empty) {
            Some(i) => Err(format!(
                "name {} of {} is empty: name every position (e.g. a,b,c), names are by index",
                i + 1,
                names.len()
            )),
            None => Ok(Names(names)),
        }
    }
}

/// Seconds, whole or not, up to about four months (the bridge checks its own limits);
/// a TOML integer or float.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Seconds(pub Duration);

impl TryFrom<f64> for Seconds {
    type Error = String;
    fn try_from(f: f64) -> Result<Self, String> {
        match (0.0..=1e7).contains(&f) {
            true => Ok(Seconds(Duration::from_secs_f64(f))),
            false => Err(format!("{f}: expected 0 to 10000000 seconds")),
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.subsec_nanos() {
            0 => s.serialize_u64(self.0.as_secs()),
            _ => s.serialize_f64(self.0.as_secs_f64()),
        }
    }
}

impl Value for Seconds {
    const NAME: &'static str = "SECS";
    fn parse(s: &str) -> Result<Self, String> {
        let f = s.trim().parse::<f64>();
        f.map_err(|_| format!("expected seconds, found {s:?}"))?
            .try_into()
    }
}

/// A whole number from `MIN` to `MAX`, got as the integer type the range was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64")]
pub struct Int<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Int<MIN, MAX> {
    pub fn get<T: TryFrom<u64>>(self) -> T {
        T::try_from(self.0).unwrap_or_else(|_| unreachable!("{} does not fit", self.0))
    }
}

impl<const MIN: u64, const MAX: u64> TryFrom<u64> for Int<MIN, MAX> {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        match (MIN..=MAX).contains(&n) {
            true => Ok(Int(n)),
            false => Err(format!("{n}: expected {MIN} to {MAX}")),
        }
    }
}

impl<const MIN: u64, const MAX: u64> Value for Int<MIN, MAX> {
    const NAME: &'static str = "N";
    fn parse(s: &str) -> Result<Self, String> {
        let n = s.trim().parse::<u64>();
        n.map_err(|_| format!("expected a whole number, found {s:?}"))?
            .try_into()
    }
}

/// A value as TOML, for `config`.
pub fn show<T: Serialize + ?Sized>(v: &T) -> String {
    let v = v.serialize(toml_edit::ser::ValueSerializer::new());
    v.map_or_else(|e| format!("\"{e}\""), |v| v.to_string().trim().to_owned())
}

/// Reads a setting for clap; a bad value is one line naming its flag or variable.
#[derive(Clone)]
pub struct Parser<T>(std::marker::PhantomData<fn() -> T>);

pub fn parser<T: Value>() -> Parser<T> {
    Parser(std::marker::PhantomData)
}

impl<T: Value> clap::builder::TypedValueParser for Parser<T> {
    type Value = T;
    fn parse_ref(
        &self,
        c: &clap::Command,
        a: Option<&clap::Arg>,
        v: &OsStr,
    ) -> clap::error::Result<T> {
        self.parse_ref_(c, a, v, ValueSource::CommandLine)
    }
    fn parse_ref_(
        &self,
        _: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
        source: ValueSource,
    ) -> clap::error::Result<T> {
        let parsed = value.to_str().ok_or(format!("{value:?} is not UTF-8"));
        parsed.and_then(T::parse).map_err(|msg| {
            let who = match (source, arg.and_then(|a| a.get_env())) {
                (ValueSource::EnvVariable, Some(env)) => {
                    format!("environment variable {}", env.to_string_lossy())
                }
                _ => format!("--{}", arg.and_then(|a| a.get_long()).unwrap_or("?")),
            };
            // the one-line message rides in the error's context, for `bad_value`
            let msg = format!("{who}: {msg}");
            let mut e = clap::Error::raw(ErrorKind::ValueValidation, format!("{msg}\n"));
            e.insert(ContextKind::Custom, ContextValue::String(msg));
            e
        })
    }
}

/// The one-line message of a bad setting value, if `e` is one.
pub fn bad_value(e: &clap::Error) -> Option<&str> {
    match e.get(ContextKind::Custom) {
        Some(ContextValue::String(m)) => Some(m),
        _ => None,
    }
}
