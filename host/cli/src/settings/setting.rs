//! What a setting's type is: read from a flag or variable (text, through clap, whose
//! error names the flag or the variable) and from a TOML value (through serde, whose
//! TOML type must fit), and written back as TOML for `config`.

use std::marker::PhantomData;

/// A setting's value type.
pub trait Setting: Clone + Send + Sync + 'static {
    /// What the config file holds for it.
    const TOML: Kind = Kind::Str;
    /// From a flag, an environment variable or (as text) the config file.
    fn parse(s: &str) -> Result<Self, String>;
    /// From the file's array of strings (for `Kind::List`).
    fn from_list(_: Vec<String>) -> Self {
        unreachable!("only a list setting takes an array")
    }
    /// The value as TOML.
    fn show(&self) -> String;
}

/// The TOML type a setting takes: a TOML string is never a number, nor the reverse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    /// An integer or a float.
    Num,
    Bool,
    List,
}

/// A TOML value as the settings take it.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Toml {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Toml>),
    Date(#[allow(dead_code)] toml_edit::Datetime),
    Table(serde::de::IgnoredAny),
}

impl Toml {
    fn kind(&self) -> &'static str {
        match self {
            Toml::Str(_) => "string",
            Toml::Int(_) => "integer",
            Toml::Float(_) => "float",
            Toml::Bool(_) => "boolean",
            Toml::List(_) => "array",
            Toml::Date(_) => "datetime",
            Toml::Table(_) => "table",
        }
    }
}

/// A setting read from the config file through serde.
pub struct FromToml<T>(pub T);

impl<'de, T: Setting> serde::Deserialize<'de> for FromToml<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = match (T::TOML, Toml::deserialize(d)?) {
            (Kind::Str, Toml::Str(s)) => s,
            (Kind::Int | Kind::Num, Toml::Int(i)) => i.to_string(),
            (Kind::Num, Toml::Float(f)) => f.to_string(),
            (Kind::Bool, Toml::Bool(b)) => b.to_string(),
            (Kind::List, Toml::List(v)) => {
                let strings = v.into_iter().map(|x| match x {
                    Toml::Str(s) => Ok(s),
                    x => Err(D::Error::custom(format!(
                        "expected strings, found {}",
                        x.kind()
                    ))),
                });
                return strings
                    .collect::<Result<_, _>>()
                    .map(|v| FromToml(T::from_list(v)));
            }
            (want, got) => {
                let want = match want {
                    Kind::Str => "a string",
                    Kind::Int => "a whole number",
                    Kind::Num => "seconds",
                    Kind::Bool => "true or false",
                    Kind::List => "a list of strings",
                };
                let msg = format!("expected {want}, found {}", got.kind());
                return Err(D::Error::custom(msg));
            }
        };
        T::parse(&text).map(FromToml).map_err(D::Error::custom)
    }
}

/// A setting read by clap; its error names the flag or the variable it came from.
#[derive(Clone)]
pub struct Parser<T>(PhantomData<fn() -> T>);

pub fn parser<T: Setting>() -> Parser<T> {
    Parser(PhantomData)
}

impl<T: Setting> clap::builder::TypedValueParser for Parser<T> {
    type Value = T;
    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        self.parse_ref_(cmd, arg, value, clap::parser::ValueSource::CommandLine)
    }
    fn parse_ref_(
        &self,
        _: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
        source: clap::parser::ValueSource,
    ) -> Result<T, clap::Error> {
        let parsed = match value.to_str() {
            Some(s) => T::parse(s),
            None => Err(format!("{value:?} is not UTF-8")),
        };
        parsed.map_err(|msg| {
            let who = match (source, arg.and_then(|a| a.get_env())) {
                (clap::parser::ValueSource::EnvVariable, Some(env)) => {
                    format!("environment variable {}", env.to_string_lossy())
                }
                _ => format!("--{}", arg.and_then(|a| a.get_long()).unwrap_or("?")),
            };
            value_error(format!("{who}: {msg}"))
        })
    }
}

/// A bad value as a clap error that carries our one-line message.
fn value_error(msg: String) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut e = clap::Error::raw(ErrorKind::ValueValidation, format!("{msg}\n"));
    e.insert(ContextKind::Custom, ContextValue::String(msg));
    e
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
