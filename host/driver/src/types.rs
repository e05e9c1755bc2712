//! What the driver gives the layers above and takes from them.

use std::fmt;
use std::str::FromStr;

/// One edge on one input, as the hardware captured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ButtonEvent {
    /// Input index (0-based).
    pub input: u8,
    /// New level: true pressed, false released.
    pub level: bool,
    /// Hardware timestamp in microseconds since the peripheral's reset, extended to 64 bits.
    pub ts_us: u64,
    /// Hardware sequence number extended to 64 bits; a gap means lost events.
    pub seq: u64,
    /// Made by the hardware event generator, not by a pin.
    pub synthetic: bool,
}

/// What to do to an LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedAction {
    On,
    Off,
    Toggle,
}

/// A payload that is not an LED action.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an LED command: expected 1, 0, on, off or toggle")]
pub struct BadLedAction;

impl FromStr for LedAction {
    type Err = BadLedAction;

    /// `1`, `0`, `on`, `off` (any case) and `toggle` (any case); surrounding
    /// whitespace is ignored, anything else is rejected.
    fn from_str(s: &str) -> Result<Self, BadLedAction> {
        let s = s.trim();
        if s == "1" || s.eq_ignore_ascii_case("on") {
            Ok(LedAction::On)
        } else if s == "0" || s.eq_ignore_ascii_case("off") {
            Ok(LedAction::Off)
        } else if s.eq_ignore_ascii_case("toggle") {
            Ok(LedAction::Toggle)
        } else {
            Err(BadLedAction)
        }
    }
}

impl fmt::Display for LedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LedAction::On => "on",
            LedAction::Off => "off",
            LedAction::Toggle => "toggle",
        })
    }
}

/// A command for one LED, going down to the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedCommand {
    pub led: u8,
    pub action: LedAction,
}

/// The state of one LED as read back from the hardware after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedReport {
    pub led: u8,
    pub on: bool,
}

/// What the peripheral says about itself, read at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub version_major: u8,
    pub version_minor: u8,
    pub n_inputs: u8,
    pub n_leds: u8,
    pub fifo_depth: u32,
    pub clk_hz: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(s.parse::<LedAction>(), Ok(want), "{s:?}");
        }
        for s in ["", "2", "01", "true", "onn", "tog", "on off", "\u{0}"] {
            assert!(s.parse::<LedAction>().is_err(), "{s:?}");
        }
    }
}
