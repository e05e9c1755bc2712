//! The simulated base overlay: the Verilated `pynq_base_model` (behavioural MODELS of
//! AXI GPIO and AXI INTC written from PG144 and PG099, not Xilinx's IP) behind the
//! [`Bus`] trait, with the same clock, stimulus and interrupt semantics as
//! [`crate::SimBoard`].
//!
//! The base overlay has five register windows of 64 KiB. One [`Bus`] presents them
//! all: a bus offset is the physical address minus [`BASE_ADDR`] (0x4120_0000), so
//! the switches' GPIO is at 0x0, the buttons' at 0x1_0000, the RGB LEDs' at 0x4_0000,
//! the LEDs' at 0x5_0000 and the interrupt controller at 0x60_0000. The board's bus
//! maps the same five windows the same way.
//!
//! The interrupt line is IRQ_F2P[0], the `fabric` UIO device's, with UIO semantics.
//! Pins are numbered as on our overlay: inputs 0-3 BTN0-3, 4-5 SW0-1; LEDs 0-3
//! LD0-3, 4-9 the RGB GPIO's bits 0-5.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pynq_mqtt_bus::{Bus, BusError, IrqWait};

use crate::{ffi, Shared, SimError, Speed, Step, Window};

/// Physical address that bus offset 0 stands for (`switches_gpio`).
pub const BASE_ADDR: u32 = 0x4120_0000;
/// Bytes from [`BASE_ADDR`] to the end of the last window (`system_interrupts`).
pub const BASE_SPAN: usize = 0x0070_0000;
/// Inputs: BTN0-3, SW0-1.
pub const N_INPUTS: u32 = ffi::BASE_N_INPUTS;
/// LEDs: LD0-3, then LD4 and LD5 blue, green, red.
pub const N_LEDS: u32 = ffi::BASE_N_LEDS;
/// Clock of the simulated base overlay: one cycle per microsecond, as the simulated
/// pynq_mqtt overlay (the board runs FCLK_CLK0 at 100 MHz; the models count no time).
pub const CLK_HZ: u64 = 1_000_000;

/// Which board's interrupt-controller layout the model has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BaseLayout {
    /// PYNQ-Z1: 13 controller inputs, buttons on 11, switches on 12.
    #[default]
    Z1,
    /// PYNQ-Z2: 15 controller inputs, leds_gpio on 8, buttons on 13, switches on 14.
    Z2,
}

impl BaseLayout {
    /// The controller input of `btns_gpio`.
    pub fn button_bit(self) -> u8 {
        match self {
            BaseLayout::Z1 => 11,
            BaseLayout::Z2 => 13,
        }
    }

    /// The controller input of `switches_gpio`.
    pub fn switch_bit(self) -> u8 {
        self.button_bit() + 1
    }
}

impl std::str::FromStr for BaseLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "z1" | "pynq-z1" => Ok(Self::Z1),
            "z2" | "pynq-z2" => Ok(Self::Z2),
            _ => Err(format!("{s:?}: expected z1 or z2")),
        }
    }
}

impl std::fmt::Display for BaseLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BaseLayout::Z1 => "z1",
            BaseLayout::Z2 => "z2",
        })
    }
}

/// Settings of a simulated base overlay.
#[derive(Clone, Debug, Default)]
pub struct BaseSimConfig {
    pub speed: Speed,
    pub stimulus: Vec<Step>,
    pub layout: BaseLayout,
}

/// The simulated base overlay. Dropping it stops the clock.
pub struct SimBaseBoard {
    shared: Arc<Shared<ffi::BaseModel>>,
    clock: Option<JoinHandle<()>>,
    layout: BaseLayout,
}

impl SimBaseBoard {
    /// Creates the model of `config.layout`, resets it and starts its clock.
    pub fn start(config: BaseSimConfig) -> Result<Self, SimError> {
        let model = ffi::BaseModel::new(config.layout == BaseLayout::Z2).ok_or(SimError::Create)?;
        if let Some(s) = config.stimulus.iter().find(|s| s.input >= N_INPUTS) {
            return Err(SimError::BadStep {
                input: s.input,
                time_us: s.time_us,
            });
        }
        let window = Window {
            base: BASE_ADDR,
            span: BASE_SPAN,
        };
        let (shared, clock) = Shared::start(model, config.stimulus, config.speed, CLK_HZ, window)?;
        Ok(Self {
            shared,
            clock: Some(clock),
            layout: config.layout,
        })
    }

    /// The board layout the model was built with.
    pub fn layout(&self) -> BaseLayout {
        self.layout
    }

    /// Clock frequency of the simulation.
    pub fn clk_hz(&self) -> u64 {
        CLK_HZ
    }

    /// Starts replaying the stimulus, as [`crate::SimBoard::start_stimulus`].
    pub fn start_stimulus(&self) -> Option<u64> {
        self.shared.start_stimulus()
    }

    /// Drives one input pin now.
    pub fn set_input(&self, input: u32, level: bool) {
        if input >= N_INPUTS {
            return;
        }
        self.shared.drive_input(input, level);
    }

    /// Flips one input pin for `cycles` clock cycles and back, with no bus access or
    /// interrupt service in between: a press shorter than the host's interrupt latency.
    pub fn pulse_input(&self, input: u32, cycles: u64) {
        if input >= N_INPUTS {
            return;
        }
        self.shared.call(move |_, st| {
            let cur = st.model.inputs();
            st.model.set_inputs(cur ^ (1 << input));
            st.model.step(cycles);
            st.model.set_inputs(cur);
        });
    }

    /// Drives the interrupt-controller inputs that are not ours (what a notebook's
    /// devices would raise), bit n = input n; our inputs' bits are ignored.
    pub fn set_other_irqs(&self, levels: u32) {
        self.shared
            .call(move |_, st| st.model.set_other_irqs(levels));
    }

    /// The input pins as driven (as of the clock thread's last step or call).
    pub fn inputs(&self) -> u32 {
        self.shared.inputs.load(Ordering::Relaxed)
    }

    /// The LED pins, numbered as on our overlay (a bus write that returned is in it).
    pub fn leds(&self) -> u32 {
        self.shared.leds.load(Ordering::Relaxed)
    }

    /// Simulated microseconds since reset.
    pub fn sim_time_us(&self) -> u64 {
        self.shared.sim_time_us()
    }

    /// Advances simulated time by `cycles` now, in one call on the clock thread.
    pub fn step(&self, cycles: u64) {
        self.shared.call(move |_, st| st.model.step(cycles));
    }

    /// Waits until every stimulus line has been applied; false on timeout.
    pub fn wait_stimulus_done(&self, timeout: Duration) -> bool {
        self.shared.wait_stimulus_done(timeout)
    }
}

impl Drop for SimBaseBoard {
    fn drop(&mut self) {
        self.shared.stop_clock(&mut self.clock);
    }
}

impl Bus for SimBaseBoard {
    fn read32(&self, offset: u32) -> Result<u32, BusError> {
        self.shared.read(offset)
    }

    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        self.shared.write(offset, value)
    }

    fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        self.shared.read_many(offsets, out)
    }

    fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        self.shared.read_many_if(expect, offsets, out)
    }

    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        self.shared.wait_irq(timeout)
    }

    fn rearm_irq(&self) -> Result<(), BusError> {
        self.shared.rearm_irq();
        Ok(())
    }

    fn wake_waiter(&self) {
        self.shared.wake_waiter();
    }

    fn describe(&self) -> String {
        format!(
            "base-sim ({}, models of AXI GPIO/INTC, {} Hz)",
            self.layout, CLK_HZ
        )
    }
}
