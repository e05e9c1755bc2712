//! The board as the driver last saw it: input levels from the INPUTS register it
//! reads after each drain and wake, LED states from the register it read back. For a page that draws the board; the
//! MQTT side has its own copies, from the channels.

use std::sync::atomic::{AtomicU32, Ordering};

/// Bit i is input i (pressed) or LED i (lit).
#[derive(Debug, Default)]
pub struct Levels {
    inputs: AtomicU32,
    leds: AtomicU32,
}

impl Levels {
    /// Inputs high as of the last reading of the INPUTS register (after each drain,
    /// and at least once per `irq_timeout`).
    pub fn inputs(&self) -> u32 {
        self.inputs.load(Ordering::Relaxed)
    }

    /// LEDs lit, as read back after the last command.
    pub fn leds(&self) -> u32 {
        self.leds.load(Ordering::Relaxed)
    }

    pub(crate) fn set_inputs(&self, bits: u32) {
        self.inputs.store(bits, Ordering::Relaxed);
    }

    pub(crate) fn set_leds(&self, bits: u32) {
        self.leds.store(bits, Ordering::Relaxed);
    }
}
