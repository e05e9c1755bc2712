//! Registers of PYNQ's stock base overlay that `--board base` uses: four AXI GPIO
//! blocks (PG144) and the AXI interrupt controller (PG099), as PYNQ's own
//! `pynq/lib/axigpio.py` and `pynq/interrupt.py` drive them.
//!
//! One bus presents the five windows: an offset is the physical address minus
//! [`BASE_ADDR`]. Addresses are the same on PYNQ-Z1 and PYNQ-Z2.

use crate::access::{Readable, Reg, RegValue, Ro, Rw, Writable};

/// The physical address that bus offset 0 stands for (`switches_gpio`).
pub const BASE_ADDR: u32 = 0x4120_0000;
/// Bytes of one window.
pub const WINDOW: u32 = 0x1_0000;
/// Bytes from [`BASE_ADDR`] to the end of the last window.
pub const SPAN: u32 = INTC + WINDOW;

/// `switches_gpio` (0x4120_0000): SW0-1, inputs with interrupt.
pub const SWITCHES: u32 = 0x0000_0000;
/// `btns_gpio` (0x4121_0000): BTN0-3, inputs with interrupt.
pub const BUTTONS: u32 = 0x0001_0000;
/// `rgbleds_gpio` (0x4124_0000): bits 2:0 LD4 blue/green/red, 5:3 LD5.
pub const RGBLEDS: u32 = 0x0004_0000;
/// `leds_gpio` (0x4125_0000): LD0-3.
pub const LEDS: u32 = 0x0005_0000;
/// `system_interrupts` (0x4180_0000), the AXI INTC behind IRQ_F2P[0] (`fabric`).
pub const INTC: u32 = 0x0060_0000;

/// The five windows: (name in the base overlay, offset from [`BASE_ADDR`]), in the
/// order of a generic-uio node's maps 0-4.
pub const WINDOWS: [(&str, u32); 5] = [
    ("switches_gpio", SWITCHES),
    ("btns_gpio", BUTTONS),
    ("rgbleds_gpio", RGBLEDS),
    ("leds_gpio", LEDS),
    ("system_interrupts", INTC),
];

/// Toggle-on-write bits (AXI GPIO's IP ISR): writing 1 flips the bit, so software
/// writes back exactly the bits it read as 1.
#[derive(Debug)]
pub enum Tow {}
impl Readable for Tow {}
impl Writable for Tow {}

/// GIER: bit 31 enables the block's interrupt output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gier(pub u32);

impl Gier {
    pub const ENABLE: Gier = Gier(1 << 31);
    pub fn enabled(self) -> bool {
        self.0 & 1 << 31 != 0
    }
}

impl RegValue for Gier {
    fn from_bits(bits: u32) -> Self {
        Gier(bits)
    }
    fn bits(self) -> u32 {
        self.0
    }
}

/// A set of interrupt-controller inputs, bit n = input n.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntrSet(pub u32);

impl IntrSet {
    pub fn of(bits: &[u8]) -> Self {
        IntrSet(bits.iter().fold(0, |m, b| m | 1u32 << (b & 31)))
    }
    pub fn has(self, bit: u8) -> bool {
        bit < 32 && self.0 >> bit & 1 == 1
    }
    pub fn and(self, other: IntrSet) -> IntrSet {
        IntrSet(self.0 & other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl RegValue for IntrSet {
    fn from_bits(bits: u32) -> Self {
        IntrSet(bits)
    }
    fn bits(self) -> u32 {
        self.0
    }
}

/// MER: bit 0 ME (master enable), bit 1 HIE (hardware interrupts; once set, stays).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mer(pub u32);

impl Mer {
    /// ME | HIE, what `pynq/interrupt.py` writes.
    pub const ON: Mer = Mer(3);
    pub fn on(self) -> bool {
        self.0 & 3 == 3
    }
}

impl RegValue for Mer {
    fn from_bits(bits: u32) -> Self {
        Mer(bits)
    }
    fn bits(self) -> u32 {
        self.0
    }
}

/// The registers of one single-channel AXI GPIO block at `base`.
#[derive(Clone, Copy, Debug)]
pub struct Gpio {
    pub name: &'static str,
    pub base: u32,
}

impl Gpio {
    /// GPIO_DATA (0x000): the inputs' levels, or the outputs.
    pub const fn data(self) -> Reg<u32, Rw> {
        Reg::new("GPIO_DATA", self.base)
    }
    /// GPIO_TRI (0x004): 1 = input (fixed in an all-inputs or all-outputs block).
    pub const fn tri(self) -> Reg<u32, Ro> {
        Reg::new("GPIO_TRI", self.base + 0x004)
    }
    /// GIER (0x11C).
    pub const fn gier(self) -> Reg<Gier, Rw> {
        Reg::new("GIER", self.base + 0x11C)
    }
    /// IP ISR (0x120), toggle-on-write: bit 0 channel 1 changed.
    pub const fn isr(self) -> Reg<u32, Tow> {
        Reg::new("IP_ISR", self.base + 0x120)
    }
    /// IP IER (0x128): bit 0 channel 1.
    pub const fn ier(self) -> Reg<u32, Rw> {
        Reg::new("IP_IER", self.base + 0x128)
    }
}

pub const SWITCHES_GPIO: Gpio = Gpio {
    name: "switches_gpio",
    base: SWITCHES,
};
pub const BTNS_GPIO: Gpio = Gpio {
    name: "btns_gpio",
    base: BUTTONS,
};
pub const RGBLEDS_GPIO: Gpio = Gpio {
    name: "rgbleds_gpio",
    base: RGBLEDS,
};
pub const LEDS_GPIO: Gpio = Gpio {
    name: "leds_gpio",
    base: LEDS,
};

/// The interrupt controller's registers (PG099).
pub mod intc {
    use super::{IntrSet, Mer, INTC};
    use crate::access::{Reg, Ro, Rw, Wo};

    /// ISR: inputs recorded (held until acknowledged).
    pub const ISR: Reg<IntrSet, Ro> = Reg::new("INTC_ISR", INTC);
    /// IPR: pending, ISR & IER.
    pub const IPR: Reg<IntrSet, Ro> = Reg::new("INTC_IPR", INTC + 0x04);
    /// IER: enabled inputs (changed only through SIE and CIE here, never written whole).
    pub const IER: Reg<IntrSet, Ro> = Reg::new("INTC_IER", INTC + 0x08);
    /// IAR: writing 1 acknowledges that input.
    pub const IAR: Reg<IntrSet, Wo> = Reg::new("INTC_IAR", INTC + 0x0C);
    /// SIE: writing 1 enables that input, 0 leaves it.
    pub const SIE: Reg<IntrSet, Wo> = Reg::new("INTC_SIE", INTC + 0x10);
    /// CIE: writing 1 disables that input, 0 leaves it.
    pub const CIE: Reg<IntrSet, Wo> = Reg::new("INTC_CIE", INTC + 0x14);
    /// MER: master enable.
    pub const MER: Reg<Mer, Rw> = Reg::new("INTC_MER", INTC + 0x1C);
}
