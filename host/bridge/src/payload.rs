//! Payloads: what goes out for a button event and what comes in as an LED command.

use pynq_mqtt_driver::{ButtonEvent, LedAction};

/// Longest LED command payload considered at all; longer ones are rejected unread.
/// Room for `{"state": "TOGGLE"}` with some whitespace.
pub const MAX_COMMAND_LEN: usize = 64;

/// Format of the button payloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `1` pressed, `0` released: the seed notebook's format.
    #[default]
    Plain,
    /// `{"input":..,"state":..,"seq":..,"ts_us":..,"ts":".."}`: `ts_us` counts the
    /// peripheral's microseconds since its reset (extended to 64 bits); `ts` is the
    /// same moment in UTC (ISO-8601, microseconds), once the driver has mapped its
    /// clock to the system clock.
    Json,
}

impl std::str::FromStr for PayloadFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "plain" => Ok(Self::Plain),
            "json" => Ok(Self::Json),
            _ => Err(format!("payload format {s:?}: expected `plain` or `json`")),
        }
    }
}

impl std::fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "plain",
            Self::Json => "json",
        })
    }
}

/// How a state reads on `led/<i>` and in plain `button/<i>` payloads (and so in the
/// Home Assistant discovery configs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateFormat {
    /// `1` and `0`: the seed notebook's format.
    #[default]
    OneZero,
    /// `ON` and `OFF`: Tasmota's and Home Assistant's habit.
    OnOff,
}

impl StateFormat {
    /// The payload of a state.
    pub fn state(self, on: bool) -> &'static [u8] {
        match (self, on) {
            (Self::OneZero, true) => b"1",
            (Self::OneZero, false) => b"0",
            (Self::OnOff, true) => b"ON",
            (Self::OnOff, false) => b"OFF",
        }
    }

    /// The state payload as text (discovery configs).
    pub fn text(self, on: bool) -> &'static str {
        std::str::from_utf8(self.state(on)).unwrap_or_default()
    }
}

impl std::str::FromStr for StateFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "10" => Ok(Self::OneZero),
            "onoff" => Ok(Self::OnOff),
            _ => Err(format!("state format {s:?}: expected `10` or `onoff`")),
        }
    }
}

impl std::fmt::Display for StateFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OneZero => "10",
            Self::OnOff => "onoff",
        })
    }
}

/// The payload of one button event.
pub fn button_payload(format: PayloadFormat, e: &ButtonEvent) -> Vec<u8> {
    match format {
        PayloadFormat::Plain => vec![if e.level { b'1' } else { b'0' }],
        PayloadFormat::Json => {
            let mut b = bytes::BytesMut::new();
            write_json(&mut b, e);
            b.to_vec()
        }
    }
}

/// Appends `{"input":..,"state":..,"seq":..,"ts_us":..}` without a formatter, and
/// `"ts"` when the event's wall-clock time is known.
pub(crate) fn write_json(b: &mut bytes::BytesMut, e: &ButtonEvent) {
    b.extend_from_slice(b"{\"input\":");
    put_u64(b, u64::from(e.input));
    b.extend_from_slice(if e.level {
        b",\"state\":1,\"seq\":"
    } else {
        b",\"state\":0,\"seq\":"
    });
    put_u64(b, e.seq);
    b.extend_from_slice(b",\"ts_us\":");
    put_u64(b, e.ts_us);
    if let Some(utc) = e.utc_us {
        b.extend_from_slice(b",\"ts\":\"");
        put_utc(b, utc.get());
        b.extend_from_slice(b"\"");
    }
    b.extend_from_slice(b"}");
}

/// Appends Unix microseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC).
pub(crate) fn put_utc(b: &mut bytes::BytesMut, unix_us: u64) {
    let (secs, micros) = (unix_us / 1_000_000, unix_us % 1_000_000);
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_date(days);
    let mut put = |v: u64, width: usize, after: u8| {
        let mut digits = [b'0'; 20];
        let mut v = v;
        for slot in digits[20 - width..].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        b.extend_from_slice(&digits[20 - width..]);
        if after != 0 {
            b.extend_from_slice(&[after]);
        }
    };
    put(y, 4, b'-');
    put(m, 2, b'-');
    put(d, 2, b'T');
    put(sod / 3600, 2, b':');
    put(sod / 60 % 60, 2, b':');
    put(sod % 60, 2, b'.');
    put(micros, 6, b'Z');
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
/// Counted in 400-year cycles (146 097 days) of years that start on 1 March, so the
/// leap day is the last day of its year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    // days since 0000-03-01
    let z = days + 719_468;
    let cycle = z / 146_097;
    let day_of_cycle = z % 146_097;
    // the leap days before this day in the cycle, removed to find the year
    let year_of_cycle = (day_of_cycle - day_of_cycle / 1_460 + day_of_cycle / 36_524
        - day_of_cycle / 146_096)
        / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    // months from March, of 31, 30, 31, 30, 31 days in a repeating 153-day pattern
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + u64::from(month <= 2);
    (year, month, day)
}

fn put_u64(b: &mut bytes::BytesMut, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b.extend_from_slice(&digits[i..]);
}

/// Why an LED command payload was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("payload of {0} bytes is longer than {MAX_COMMAND_LEN}")]
    TooLong(usize),
    #[error("payload is not UTF-8")]
    NotUtf8,
    #[error(
        "payload is not 1, 0, on, off, true, false, toggle or {{\"state\": \"ON\"|\"OFF\"|\"TOGGLE\"}}"
    )]
    Unknown,
    /// An empty payload: not a command but a query (the state is published again).
    #[error("empty payload")]
    Empty,
}

/// Parses an LED command payload: a word of [`parse_action`], or the JSON object
/// `{"state": <word>}` (zigbee2mqtt's habit) with exactly that one key and a string
/// value, any case. An empty payload is [`CommandError::Empty`]: Tasmota's query.
pub fn parse_command(payload: &[u8]) -> Result<LedAction, CommandError> {
    if payload.len() > MAX_COMMAND_LEN {
        return Err(CommandError::TooLong(payload.len()));
    }
    if payload.is_empty() {
        return Err(CommandError::Empty);
    }
    let text = std::str::from_utf8(payload).map_err(|_| CommandError::NotUtf8)?;
    if text.trim_start().starts_with('{') {
        return parse_json_state(text);
    }
    parse_action(text)
}

/// `{"state": "ON"}`: one key, a string value that is `on`, `off` or `toggle`.
fn parse_json_state(text: &str) -> Result<LedAction, CommandError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| CommandError::Unknown)?;
    let state = match v.as_object() {
        Some(o) if o.len() == 1 => o.get("state").and_then(|s| s.as_str()),
        _ => None,
    };
    match state {
        Some(s) if s.eq_ignore_ascii_case("on") => Ok(LedAction::On),
        Some(s) if s.eq_ignore_ascii_case("off") => Ok(LedAction::Off),
        Some(s) if s.eq_ignore_ascii_case("toggle") => Ok(LedAction::Toggle),
        _ => Err(CommandError::Unknown),
    }
}

/// The LED command words: `1`, `0`, `on`, `off`, `true`, `false` and `toggle` (the
/// words in any ASCII case), surrounding whitespace ignored; anything else is
/// [`CommandError::Unknown`]. Also the grammar of a rule's `action`.
pub fn parse_action(text: &str) -> Result<LedAction, CommandError> {
    let s = text.trim();
    if s == "1" || s.eq_ignore_ascii_case("on") || s.eq_ignore_ascii_case("true") {
        Ok(LedAction::On)
    } else if s == "0" || s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("false") {
        Ok(LedAction::Off)
    } else if s.eq_ignore_ascii_case("toggle") {
        Ok(LedAction::Toggle)
    } else {
        Err(CommandError::Unknown)
    }
}

/// A payload made printable for a log line: escaped and cut to a few bytes.
pub fn printable(payload: &[u8]) -> String {
    crate::shown::Shown::Bytes(payload, 32).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_json_payloads() {
        let e = ButtonEvent {
            input: 2,
            level: true,
            ts_us: 123_456_789_012,
            seq: 70_000,
            synthetic: false,
            utc_us: None,
        };
        assert_eq!(button_payload(PayloadFormat::Plain, &e), b"1");
        let j = String::from_utf8(button_payload(PayloadFormat::Json, &e)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["input"], 2);
        assert_eq!(v["state"], 1);
        assert_eq!(v["seq"], 70_000);
        assert_eq!(v["ts_us"], 123_456_789_012u64);
        let e = ButtonEvent {
            input: 0,
            level: false,
            ts_us: 0,
            seq: u64::MAX,
            synthetic: false,
            utc_us: None,
        };
        assert_eq!(
            String::from_utf8(button_payload(PayloadFormat::Json, &e)).unwrap(),
            format!(r#"{{"input":0,"state":0,"seq":{},"ts_us":0}}"#, u64::MAX)
        );
    }

    #[test]
    fn utc_timestamps() {
        let utc = |us: u64| {
            let mut b = bytes::BytesMut::new();
            put_utc(&mut b, us);
            String::from_utf8(b.to_vec()).unwrap()
        };
        // the dates from Python's datetime.fromtimestamp(s, timezone.utc)
        for (s, want) in [
            (0u64, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_709_164_800, "2024-02-29T00:00:00"),
            (1_764_653_000, "2025-12-02T05:23:20"),
            (4_102_444_799, "2099-12-31T23:59:59"),
            (253_402_300_799, "9999-12-31T23:59:59"),
        ] {
            assert_eq!(utc(s * 1_000_000 + 7), format!("{want}.000007Z"), "{s}");
        }
        let e = ButtonEvent {
            input: 1,
            level: false,
            ts_us: 5_000_123,
            seq: 3,
            synthetic: false,
            utc_us: std::num::NonZeroU64::new(1_764_653_005_000_123),
        };
        let mut b = bytes::BytesMut::new();
        write_json(&mut b, &e);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["ts"], "2025-12-02T05:23:25.000123Z");
        assert_eq!(v["ts_us"], 5_000_123);
    }

    #[test]
    fn led_actions_parse_strictly() {
        for (s, want) in [
            ("1", LedAction::On),
            ("on", LedAction::On),
            ("ON", LedAction::On),
            (" On\n", LedAction::On),
            ("0", LedAction::Off),
            ("oFf", LedAction::Off),
            ("toggle", LedAction::Toggle),
            ("TOGGLE", LedAction::Toggle),
        ] {
            assert_eq!(parse_action(s), Ok(want), "{s:?}");
        }
        for s in ["", "2", "01", "yes", "onn", "tog", "on off", "\u{0}"] {
            assert_eq!(parse_action(s), Err(CommandError::Unknown), "{s:?}");
        }
    }

    #[test]
    fn commands_are_checked() {
        assert_eq!(parse_command(b"On"), Ok(LedAction::On));
        assert_eq!(parse_command(b"toggle"), Ok(LedAction::Toggle));
        assert_eq!(parse_command(b"0"), Ok(LedAction::Off));
        assert_eq!(parse_command(b"\xff\xfe"), Err(CommandError::NotUtf8));
        assert_eq!(parse_command(b"blink"), Err(CommandError::Unknown));
        assert_eq!(parse_command(&[b'1'; 65]), Err(CommandError::TooLong(65)));
        assert_eq!(parse_command(b""), Err(CommandError::Empty));
        assert_eq!(parse_command(b"True"), Ok(LedAction::On));
        assert_eq!(parse_command(b"false"), Ok(LedAction::Off));
        assert_eq!(parse_command(br#"{"state":"ON"}"#), Ok(LedAction::On));
        assert_eq!(
            parse_command(br#" { "state" : "toggle" } "#),
            Ok(LedAction::Toggle)
        );
        for bad in [
            &br#"{"state":"ON","x":1}"#[..],
            br#"{"state":1}"#,
            br#"{"State":"ON"}"#,
            br#"{"state":"true"}"#,
            br#"["ON"]"#,
            b"{",
        ] {
            assert_eq!(parse_command(bad), Err(CommandError::Unknown), "{bad:?}");
        }
        assert_eq!(printable(b"a\nb\xff"), "a\\nb\\xff");
        assert!(printable(&[b'x'; 100]).ends_with("(100 bytes)"));
    }
}
