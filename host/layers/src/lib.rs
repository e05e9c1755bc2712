//! Settings in layers: a flag or an environment variable (clap) over a TOML file over
//! a default, each value with its true source, and every refusal one line naming that
//! source, as pynq-mqtt's `--qos: 5: ...`, `environment variable PYNQ_MQTT_QOS: 5: ...`
//! or `config file c.toml, line 3, key `qos`: ...`.
//!
//! The crate knows no setting: the caller declares the keys ([`Keys`]) and the types
//! (any [`Value`]), and names the values in `--help` itself.
//! - [`parser`]: clap's reader of a value; a bad one is one line naming its flag or
//!   variable ([`bad_value`]).
//! - [`File`]: the TOML file, every key with its line; an unknown key is refused with
//!   the nearest known one; the reader's errors quote nothing of the file.
//! - [`pick`]: a value from the command line or the environment, as clap says, else
//!   from the file, with its [`Source`].
#![forbid(unsafe_code)]

mod file;
mod value;

use std::fmt;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::ArgMatches;

pub use file::{File, Keys};
pub use value::{bad_value, parse_os, parser, show, Bool, Int, Parser, Value};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(&'static str),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(v) => f.write_str(v),
            Source::Flag(v) => f.write_str(v),
        }
    }
}

/// A refused file or value, in one line naming where it came from. The reader adds
/// nothing of the file's text; a type's own reason is its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML; `key` is the value's key when the line is one the caller knows.
    #[error("config file {}, line {line}{}: TOML parse error: {why}", path.display(),
        key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Toml {
        path: PathBuf,
        line: usize,
        key: Option<String>,
        why: String,
    },
    /// `hint`: the nearest known key, or the reason the caller gives for this key.
    #[error("config file {}, line {line}: unknown key `{key}`{hint}", path.display())]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        hint: String,
    },
    #[error("{}: {msg}", at(from, key))]
    Value {
        from: Source,
        key: String,
        msg: String,
    },
}

impl Error {
    /// A refusal of the value of `key`, naming where it came from.
    pub fn value(from: &Source, key: &str, msg: &str) -> Self {
        Error::Value {
            from: from.clone(),
            key: key.to_owned(),
            msg: msg.to_owned(),
        }
    }
}

fn at(from: &Source, key: &str) -> String {
    match from {
        Source::File { path, line } => {
            format!("config file {}, line {line}, key `{key}`", path.display())
        }
        Source::Env(v) => format!("environment variable {v}"),
        Source::Flag(f) => f.clone(),
        Source::Default => key.to_owned(),
    }
}

/// The value of `key` from the command line or its variable `env`, as clap says; else
/// from the file. None: the default is the caller's.
///
/// A subcommand that lacks the argument (e.g. `doctor` has no `--rt-priority`) still
/// takes the variable: clap reads the variable of every argument it knows, so one it
/// did not read is read here, parsed and refused in clap's words. Set, even empty, is
/// set, as for clap. (clap tells an unknown argument from an absent one only in debug
/// builds, so nothing here asks it which.)
pub fn pick<T: Value>(
    m: &ArgMatches,
    key: &str,
    env: &'static str,
    file: Option<&File>,
) -> Result<Option<(T, Source)>, Error> {
    // (clap's own default comes after the file's value)
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
    if let Some(raw) = std::env::var_os(env) {
        let from = Source::Env(env);
        return match parse_os::<T>(&raw) {
            Ok(v) => Ok(Some((v, from))),
            Err(msg) => Err(Error::value(&from, key, &msg)),
        };
    }
    file.map_or(Ok(None), |f| f.get(key))
}
