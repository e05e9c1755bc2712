//! What the driver gives the layers above and takes from them.

use std::fmt;
use std::num::NonZeroU64;

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
    /// The edge in wall-clock time, Unix µs (JSON's `ts`): `ts_us` mapped through the
    /// driver's tracked offset when the event was drained, `None` until that offset is
    /// known. Fixed once per event, so that every copy of its message (a QoS 1/2
    /// resend with DUP) carries the same bytes: a broker that holds a QoS 2 message
    /// takes a resend with another payload for a new message under a reused id.
    pub utc_us: Option<NonZeroU64>,
}

/// What to do to an LED (the words that ask for it are the MQTT side's business).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedAction {
    On,
    Off,
    Toggle,
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
    /// The IP was built with the event generator (PARAMS.GENERATOR, WITH_GEN=1).
    pub generator: bool,
}

/// The debounced level of every input as read from the INPUTS register, bit i =
/// input i: the truth about a switch that has not moved since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputLevels(pub u32);

impl InputLevels {
    /// Whether input `input` is high (pressed, switched on).
    pub fn level(self, input: u8) -> bool {
        input < 32 && self.0 >> input & 1 == 1
    }
}
