//! A value read from text (a flag or a variable, through clap, whose error names
//! which), from TOML (serde) and written back as TOML. The crate that owns a type
//! says how it reads; only the ranges and the words of a boolean are made here.

use std::ffi::OsStr;
use std::fmt::Display;
use std::str::FromStr;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A setting's type: read from text by its `FromStr`, from TOML by serde.
pub trait Value:
    FromStr<Err: Display> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
    /// The value of `s`, or why not in words.
    fn parse(s: &str) -> Result<Self, String> {
        s.parse().map_err(|e: Self::Err| e.to_string())
    }
}

impl<T> Value for T where
    T: FromStr<Err: Display> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
}

/// A boolean: in TOML `true` or `false`; as text also 1/0, yes/no, on/off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bool(pub bool);

impl FromStr for Bool {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Bool(false)),
            _ => Err(format!("expected true or false, found {s:?}")),
        }
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

impl<const MIN: u64, const MAX: u64> FromStr for Int<MIN, MAX> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n = s.trim().parse::<u64>();
        n.map_err(|_| format!("expected a whole number, found {s:?}"))?
            .try_into()
    }
}

/// A value as TOML, for showing the settings.
pub fn show<T: Serialize + ?Sized>(v: &T) -> String {
    let v = v.serialize(toml_edit::ser::ValueSerializer::new());
    v.map_or_else(|e| format!("\"{e}\""), |v| v.to_string().trim().to_owned())
}

/// The value of `text` as a flag or a variable holds it, or why not in words.
pub fn parse_os<T: Value>(text: &OsStr) -> Result<T, String> {
    let utf8 = text.to_str().ok_or(format!("{text:?} is not UTF-8"));
    utf8.and_then(T::parse)
}

/// Reads a value for clap; a bad value is one line naming its flag or variable.
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
        parse_os::<T>(value).map_err(|msg| {
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

/// The one-line message of a bad value, if `e` is one.
pub fn bad_value(e: &clap::Error) -> Option<&str> {
    match e.get(ContextKind::Custom) {
        Some(ContextValue::String(m)) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_takes_its_words_in_any_case() {
        for (s, want) in [("true", true), ("YES", true), (" on ", true), ("1", true)] {
            assert_eq!(Bool::parse(s), Ok(Bool(want)), "{s}");
        }
        for (s, want) in [
            ("false", false),
            ("No", false),
            ("off", false),
            ("0", false),
        ] {
            assert_eq!(Bool::parse(s), Ok(Bool(want)), "{s}");
        }
        for s in ["", "2", "yess", "t"] {
            let e = Bool::parse(s).unwrap_err();
            assert_eq!(e, format!("expected true or false, found {s:?}"));
        }
    }

    #[test]
    fn int_holds_its_bounds() {
        type Port = Int<1, 65_535>;
        assert_eq!(Port::parse("1"), Ok(Int(1)));
        assert_eq!(Port::parse(" 65535 "), Ok(Int(65_535)));
        assert_eq!(Port::parse("0").unwrap_err(), "0: expected 1 to 65535");
        assert_eq!(
            Port::parse("65536").unwrap_err(),
            "65536: expected 1 to 65535"
        );
        for s in ["-1", "1.5", "x", ""] {
            let e = Port::parse(s).unwrap_err();
            assert_eq!(e, format!("expected a whole number, found {s:?}"));
        }
        assert_eq!(Port::parse("443").unwrap().get::<u16>(), 443);
        // the file's numbers keep the same bounds
        let de = |n: u64| {
            Port::deserialize(serde::de::value::U64Deserializer::<serde::de::value::Error>::new(n))
        };
        assert!(de(0).is_err() && de(65_536).is_err());
        assert_eq!(de(80).unwrap(), Int(80));
    }

    #[test]
    fn show_writes_toml() {
        assert_eq!(show(&Int::<0, 9>(7)), "7");
        assert_eq!(show(&Bool(true)), "true");
        // text comes back as written
        for text in ["a \"b\"", "it's", "x\ny", ""] {
            let doc: toml_edit::DocumentMut = format!("x = {}", show(text)).parse().unwrap();
            assert_eq!(doc["x"].as_str(), Some(text));
        }
        assert_eq!(show(&vec!["x", "y"]), r#"["x", "y"]"#);
    }
}
