//! The one adapter between a setting's type and its sources: text from a flag or a
//! variable (through clap, whose error names which), a TOML value of the setting's
//! TOML type from the file, and TOML text back for `config`. The types are their
//! crates' own, read with `FromStr` and shown with `Display`; only ranges are made here.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use pynq_mqtt_bridge::{BrokerUrl, PayloadFormat, Qos, SessionMode};
use pynq_mqtt_bus::uio::DeviceSpec;
use toml_edit::Value as Toml;

use super::BoardKind;

/// The TOML type a setting takes (a TOML string is never a number, nor the reverse),
/// as an error names it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Seconds,
    Bool,
    /// An array of strings; comma-separated on the command line.
    List,
}

/// A setting's type.
pub trait Value: Clone + Send + Sync + 'static {
    const KIND: Kind;
    /// In `--help`.
    const NAME: &'static str;
    fn parse(s: &str) -> Result<Self, String>;
    /// The value as TOML.
    fn show(&self) -> String;
}

macro_rules! from_str {
    ($kind:ident: $($t:ty = $name:literal),+) => {$(
        impl Value for $t {
            const KIND: Kind = Kind::$kind;
            const NAME: &'static str = $name;
            fn parse(s: &str) -> Result<Self, String> {
                s.parse().map_err(|e| format!("{e}"))
            }
            fn show(&self) -> String {
                match Self::KIND {
                    Kind::Str => quote(&self.to_string()),
                    _ => self.to_string(),
                }
            }
        }
    )+};
}
from_str!(Str: String = "TEXT", DeviceSpec = "DEVICE", BrokerUrl = "URL", BoardKind = "uio|sim");
from_str!(Str: PayloadFormat = "plain|json", SessionMode = "persistent|clean");
from_str!(Int: Qos = "0|1|2");
#[cfg(feature = "sim")]
from_str!(Str: super::SimSpeed = "SPEED");

impl Value for PathBuf {
    const KIND: Kind = Kind::Str;
    const NAME: &'static str = "FILE";
    fn parse(s: &str) -> Result<Self, String> {
        Ok(s.into())
    }
    fn show(&self) -> String {
        quote(&self.display().to_string())
    }
}

impl Value for bool {
    const KIND: Kind = Kind::Bool;
    const NAME: &'static str = "BOOL";
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

impl Value for Names {
    const KIND: Kind = Kind::List;
    const NAME: &'static str = "NAMES";
    fn parse(s: &str) -> Result<Self, String> {
        let names = s.split(',').map(str::trim).filter(|x| !x.is_empty());
        Ok(Names(names.map(str::to_owned).collect()))
    }
    fn show(&self) -> String {
        let quoted: Vec<String> = self.0.iter().map(|s| quote(s)).collect();
        format!("[{}]", quoted.join(", "))
    }
}

/// Seconds, whole or not, up to about four months (the bridge checks its own limits).
impl Value for Duration {
    const KIND: Kind = Kind::Seconds;
    const NAME: &'static str = "SECS";
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().parse::<f64>() {
            Ok(f) if (0.0..=1e7).contains(&f) => Ok(Duration::from_secs_f64(f)),
            Ok(f) => Err(format!("{f}: expected 0 to 10000000 seconds")),
            Err(_) => Err(format!("expected seconds, found {s:?}")),
        }
    }
    fn show(&self) -> String {
        self.as_secs_f64().to_string()
    }
}

/// A whole number from `MIN` to `MAX`, got as the integer type the range was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Int<MIN, MAX> {
    pub fn get<T: TryFrom<u64>>(self) -> T {
        T::try_from(self.0).unwrap_or_else(|_| unreachable!("{} does not fit", self.0))
    }
}

impl<const MIN: u64, const MAX: u64> Value for Int<MIN, MAX> {
    const KIND: Kind = Kind::Int;
    const NAME: &'static str = "N";
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().parse() {
            Ok(n) if (MIN..=MAX).contains(&n) => Ok(Int(n)),
            Ok(n) => Err(format!("{n}: expected {MIN} to {MAX}")),
            Err(_) => Err(format!("expected a whole number, found {s:?}")),
        }
    }
    fn show(&self) -> String {
        self.0.to_string()
    }
}

/// A setting's value from the config file, whose TOML type must be the setting's.
pub fn from_toml<T: Value>(v: &Toml) -> Result<T, String> {
    let text = match (T::KIND, v) {
        (Kind::Str, Toml::String(s)) => s.value().clone(),
        (Kind::Int | Kind::Seconds, Toml::Integer(i)) => i.value().to_string(),
        (Kind::Seconds, Toml::Float(f)) => f.value().to_string(),
        (Kind::Bool, Toml::Boolean(b)) => b.value().to_string(),
        (Kind::List, Toml::Array(a)) => {
            let names = a.iter().map(|x| match x.as_str() {
                Some(s) if !s.contains(',') => Ok(s),
                Some(_) => Err("a name cannot hold a comma".to_owned()),
                None => Err(format!("expected strings, found {}", x.type_name())),
            });
            names.collect::<Result<Vec<_>, _>>()?.join(",")
        }
        (kind, got) => {
            let names = ["a string", "a whole number", "seconds", "true or false"];
            let want = names.get(kind as usize).unwrap_or(&"a list of strings");
            return Err(format!("expected {want}, found {}", got.type_name()));
        }
    };
    T::parse(&text)
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

/// A string as TOML.
pub fn quote(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_owned()
}
