//! The one adapter between a setting's type and its sources: text from a flag or a
//! variable (through clap, whose error names which), a TOML value of the setting's
//! TOML type from the file, and TOML text back for `config`. The types are their
//! crates' own, read with `FromStr` and shown with `Display`; only ranges are made here.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use pynq_mqtt_bridge::{BrokerUrl, PayloadFormat, Qos, SessionMode};
use pynq_mqtt_bus::uio::DeviceSpec;
use toml_edit::Value as Toml;

use super::{BoardKind, SimSpeed};

/// The TOML type a setting takes: a TOML string is never a number, nor the reverse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    /// Seconds: an integer or a float.
    Num,
    Bool,
    /// An array of strings (comma-separated on the command line).
    List,
}

/// A setting's type.
pub trait Value: Clone + Send + Sync + 'static {
    const KIND: Kind;
    fn parse(s: &str) -> Result<Self, String>;
    /// The value as TOML.
    fn show(&self) -> String;
}

macro_rules! from_str {
    ($($kind:ident: $($t:ty),+;)*) => {$($(
        impl Value for $t {
            const KIND: Kind = Kind::$kind;
            fn parse(s: &str) -> Result<Self, String> {
                s.parse().map_err(|e| format!("{e}"))
            }
            fn show(&self) -> String {
                if Self::KIND == Kind::Str { quote(&self.to_string()) } else { self.to_string() }
            }
        }
    )+)*};
}

from_str! {
    Str: String, DeviceSpec, BrokerUrl, BoardKind, PayloadFormat, SessionMode;
    Int: Qos;
}
#[cfg(feature = "sim")]
from_str! { Str: SimSpeed; }

impl Value for PathBuf {
    const KIND: Kind = Kind::Str;
    fn parse(s: &str) -> Result<Self, String> {
        Ok(s.into())
    }
    fn show(&self) -> String {
        quote(&self.display().to_string())
    }
}

impl Value for bool {
    const KIND: Kind = Kind::Bool;
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
    fn parse(s: &str) -> Result<Self, String> {
        let names = s.split(',').map(str::trim).filter(|x| !x.is_empty());
        Ok(Names(names.map(str::to_owned).collect()))
    }
    fn show(&self) -> String {
        let quoted: Vec<String> = self.0.iter().map(|s| quote(s)).collect();
        format!("[{}]", quoted.join(", "))
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

/// A duration in seconds, up to about four months (the bridge checks the tighter limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl Value for Secs {
    const KIND: Kind = Kind::Num;
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().parse::<f64>() {
            Ok(f) if (0.0..=1e7).contains(&f) => Ok(Secs(Duration::from_secs_f64(f))),
            Ok(f) => Err(format!("{f}: expected 0 to 10000000 seconds")),
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

/// A setting's value from the config file, whose TOML type must be the setting's.
pub fn from_toml<T: Value>(v: &Toml) -> Result<T, String> {
    let text = match (T::KIND, v) {
        (Kind::Str, Toml::String(s)) => s.value().clone(),
        (Kind::Int | Kind::Num, Toml::Integer(i)) => i.value().to_string(),
        (Kind::Num, Toml::Float(f)) => f.value().to_string(),
        (Kind::Bool, Toml::Boolean(b)) => b.value().to_string(),
        (Kind::List, Toml::Array(a)) => {
            let names = a.iter().map(|x| match x.as_str() {
                Some(s) if !s.contains(',') => Ok(s),
                Some(_) => Err("a name cannot hold a comma".to_owned()),
                None => Err(format!("expected strings, found {}", x.type_name())),
            });
            names.collect::<Result<Vec<_>, _>>()?.join(",")
        }
        (want, got) => {
            let names = ["a string", "a whole number", "seconds", "true or false"];
            let want = names.get(want as usize).unwrap_or(&"a list of strings");
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
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        self.parse_ref_(cmd, arg, value, ValueSource::CommandLine)
    }
    fn parse_ref_(
        &self,
        _: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
        source: ValueSource,
    ) -> Result<T, clap::Error> {
        let parsed = value.to_str().ok_or(format!("{value:?} is not UTF-8"));
        parsed.and_then(T::parse).map_err(|msg| {
            let who = match (source, arg.and_then(|a| a.get_env())) {
                (ValueSource::EnvVariable, Some(env)) => {
                    format!("environment variable {}", env.to_string_lossy())
                }
                _ => format!("--{}", arg.and_then(|a| a.get_long()).unwrap_or("?")),
            };
            // our one-line message rides in the error's context, for `bad_value`
            use clap::error::{ContextKind, ContextValue, ErrorKind};
            let msg = format!("{who}: {msg}");
            let mut e = clap::Error::raw(ErrorKind::ValueValidation, format!("{msg}\n"));
            e.insert(ContextKind::Custom, ContextValue::String(msg));
            e
        })
    }
}

/// The one-line message of a bad setting value, if `e` is one.
pub fn bad_value(e: &clap::Error) -> Option<&str> {
    match e.get(clap::error::ContextKind::Custom) {
        Some(clap::error::ContextValue::String(m)) => Some(m),
        _ => None,
    }
}

/// A string as TOML.
pub fn quote(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_owned()
}
