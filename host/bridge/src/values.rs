//! How the bridge's settings are written, in a flag or variable (`FromStr`) and in a
//! config file (serde): names of inputs and LEDs, and durations in seconds. The
//! binary reads them; what the values may be beyond that, `BridgeConfig::validate`
//! says.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Names of the inputs or the LEDs, by index: comma-separated in text, an array of
/// strings in a file.
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

impl FromStr for Names {
    type Err = String;
    /// An empty name is refused rather than skipped: `a,,c` skipping it would name
    /// input 1 `c`, shifting every name after the gap.
    fn from_str(s: &str) -> Result<Self, String> {
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

/// A duration in seconds, whole or not, up to about four months: a number in text,
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

impl FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let f = s.trim().parse::<f64>();
        f.map_err(|_| format!("expected seconds, found {s:?}"))?
            .try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_positions() {
        assert_eq!("a, b".parse::<Names>().unwrap().0, ["a", "b"]);
        assert_eq!("".parse::<Names>().unwrap(), Names::default());
        let e = "a,,c".parse::<Names>().unwrap_err();
        assert!(e.starts_with("name 2 of 3 is empty"), "{e}");
        assert!(Names::try_from(vec!["a,b".to_owned()]).is_err());
    }

    #[test]
    fn seconds_are_whole_or_not_and_bounded() {
        assert_eq!(
            "0.1".parse::<Seconds>().unwrap().0,
            Duration::from_millis(100)
        );
        assert!("-1".parse::<Seconds>().is_err() && "x".parse::<Seconds>().is_err());
        assert!(Seconds::try_from(1e8).is_err());
    }
}
