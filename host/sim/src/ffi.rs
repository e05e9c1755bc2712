//! The one place that calls the C shim around the Verilated model.

#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use std::ptr::NonNull;

/// An AXI transaction that did not end with OKAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxiError {
    /// The slave never completed the handshake.
    Timeout,
    /// The slave answered SLVERR or DECERR (the code).
    Response(u32),
}

fn check(code: i32) -> Result<(), AxiError> {
    match code {
        c if c == sys::PMQ_SIM_OKAY as i32 => Ok(()),
        sys::PMQ_SIM_TIMEOUT => Err(AxiError::Timeout),
        c => Err(AxiError::Response(c as u32)),
    }
}

/// Owner of one Verilated `pynq_mqtt_io` instance.
///
/// Every method takes `&mut self` (or `&self` for pure pin reads), which is how the
/// shim's "one caller at a time" rule is kept; `SimBoard` puts it behind a mutex.
pub struct Model {
    raw: NonNull<sys::pmq_sim>,
}

// SAFETY: the model holds no thread-affine state (no thread-local Verilated context is
// used after creation) and `Model` is only reached through `&mut` or a mutex, so moving
// it to another thread cannot create concurrent calls.
unsafe impl Send for Model {}

impl Model {
    /// Creates the model and runs its reset.
    pub fn new() -> Option<Self> {
        // SAFETY: pmq_sim_create has no preconditions; it returns NULL on failure.
        let raw = unsafe { sys::pmq_sim_create() };
        NonNull::new(raw).map(|raw| Self { raw })
    }

    /// Advances `cycles` clock cycles with the bus idle.
    pub fn step(&mut self, cycles: u64) {
        // SAFETY: `raw` is a live handle owned by `self`, and `&mut self` excludes other calls.
        unsafe { sys::pmq_sim_step(self.raw.as_ptr(), cycles) }
    }

    /// Advances up to `cycles` cycles, stopping once irq is high; returns the cycles run.
    pub fn step_until_irq(&mut self, cycles: u64) -> u64 {
        // SAFETY: live handle under `&mut self`.
        unsafe { sys::pmq_sim_step_until_irq(self.raw.as_ptr(), cycles) }
    }

    /// Clock cycles since creation.
    pub fn cycles(&self) -> u64 {
        // SAFETY: live handle; the call only reads a counter.
        unsafe { sys::pmq_sim_cycles(self.raw.as_ptr()) }
    }

    /// One AXI4-Lite read.
    pub fn read(&mut self, addr: u32) -> Result<u32, AxiError> {
        let mut data = 0u32;
        // SAFETY: live handle under `&mut self`; `data` is a valid out-pointer for the call.
        let code = unsafe { sys::pmq_sim_axi_read(self.raw.as_ptr(), addr, &mut data) };
        check(code).map(|()| data)
    }

    /// One AXI4-Lite write with all byte lanes.
    pub fn write(&mut self, addr: u32, value: u32) -> Result<(), AxiError> {
        // SAFETY: live handle under `&mut self`.
        let code = unsafe { sys::pmq_sim_axi_write(self.raw.as_ptr(), addr, value, 0xF) };
        check(code)
    }

    /// Drives the button pins.
    pub fn set_inputs(&mut self, levels: u32) {
        // SAFETY: live handle under `&mut self`.
        unsafe { sys::pmq_sim_set_inputs(self.raw.as_ptr(), levels) }
    }

    /// Schedules a pin change at clock cycle `cycle` (non-decreasing order).
    pub fn schedule_input(&mut self, cycle: u64, input: u32, level: bool) -> bool {
        // SAFETY: live handle under `&mut self`.
        unsafe {
            sys::pmq_sim_schedule_input(self.raw.as_ptr(), cycle, input, i32::from(level)) == 0
        }
    }

    /// Scheduled pin changes not yet applied.
    pub fn pending_inputs(&self) -> u64 {
        // SAFETY: live handle; reads the length of the schedule.
        unsafe { sys::pmq_sim_pending_inputs(self.raw.as_ptr()) }
    }

    /// The cycle of the next scheduled pin change (u64::MAX: none).
    pub fn next_input_cycle(&self) -> u64 {
        // SAFETY: live handle; reads the head of the schedule.
        unsafe { sys::pmq_sim_next_input_cycle(self.raw.as_ptr()) }
    }

    /// The button pins as last driven.
    pub fn inputs(&self) -> u32 {
        // SAFETY: live handle; a pure read of a field.
        unsafe { sys::pmq_sim_inputs(self.raw.as_ptr()) }
    }

    /// The LED pins.
    pub fn leds(&self) -> u32 {
        // SAFETY: live handle; reads an output of the settled model.
        unsafe { sys::pmq_sim_leds(self.raw.as_ptr()) }
    }

    /// The irq pin.
    pub fn irq(&self) -> bool {
        // SAFETY: live handle; reads an output of the settled model.
        unsafe { sys::pmq_sim_irq(self.raw.as_ptr()) != 0 }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `raw` came from pmq_sim_create and is destroyed exactly once, here.
        unsafe { sys::pmq_sim_destroy(self.raw.as_ptr()) }
    }
}

/// Build parameters of the verilated model.
pub fn clk_hz() -> u32 {
    // SAFETY: returns a compile-time constant; no state involved.
    unsafe { sys::pmq_sim_clk_hz() }
}

/// Number of button inputs of the verilated model.
pub fn n_inputs() -> u32 {
    // SAFETY: returns a compile-time constant; no state involved.
    unsafe { sys::pmq_sim_n_inputs() }
}

/// Number of LEDs of the verilated model.
pub fn n_leds() -> u32 {
    // SAFETY: returns a compile-time constant; no state involved.
    unsafe { sys::pmq_sim_n_leds() }
}

#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
mod base_sys {
    include!(concat!(env!("OUT_DIR"), "/base_bindings.rs"));
}

fn check_base(code: i32) -> Result<(), AxiError> {
    match code {
        c if c == base_sys::PMQ_BASE_SIM_OKAY as i32 => Ok(()),
        base_sys::PMQ_BASE_SIM_TIMEOUT => Err(AxiError::Timeout),
        c => Err(AxiError::Response(c as u32)),
    }
}

/// Inputs of the base overlay's model: BTN0-3, SW0-1.
pub const BASE_N_INPUTS: u32 = base_sys::PMQ_BASE_SIM_N_INPUTS;
/// LEDs of the base overlay's model: LD0-3, then the RGB GPIO's six bits.
pub const BASE_N_LEDS: u32 = base_sys::PMQ_BASE_SIM_N_LEDS;

/// Owner of one Verilated `pynq_base_model` (either board layout); the same rules as
/// [`Model`].
pub struct BaseModel {
    raw: NonNull<base_sys::pmq_base_sim>,
}

// SAFETY: as for `Model`: no thread-affine state, reached only through `&mut` or a mutex.
unsafe impl Send for BaseModel {}

impl BaseModel {
    /// Creates the model of PYNQ-Z2 (`z2`) or PYNQ-Z1 and runs its reset.
    pub fn new(z2: bool) -> Option<Self> {
        // SAFETY: no preconditions; NULL on failure.
        let raw = unsafe { base_sys::pmq_base_sim_create(i32::from(z2)) };
        NonNull::new(raw).map(|raw| Self { raw })
    }

    pub fn step(&mut self, cycles: u64) {
        // SAFETY: live handle owned by `self`, `&mut self` excludes other calls.
        unsafe { base_sys::pmq_base_sim_step(self.raw.as_ptr(), cycles) }
    }

    pub fn step_until_irq(&mut self, cycles: u64) -> u64 {
        // SAFETY: live handle under `&mut self`.
        unsafe { base_sys::pmq_base_sim_step_until_irq(self.raw.as_ptr(), cycles) }
    }

    pub fn cycles(&self) -> u64 {
        // SAFETY: live handle; reads a counter.
        unsafe { base_sys::pmq_base_sim_cycles(self.raw.as_ptr()) }
    }

    /// One AXI4-Lite read at a physical address of the base overlay.
    pub fn read(&mut self, addr: u32) -> Result<u32, AxiError> {
        let mut data = 0u32;
        // SAFETY: live handle under `&mut self`; `data` is a valid out-pointer.
        let code = unsafe { base_sys::pmq_base_sim_axi_read(self.raw.as_ptr(), addr, &mut data) };
        check_base(code).map(|()| data)
    }

    /// One AXI4-Lite write with all byte lanes.
    pub fn write(&mut self, addr: u32, value: u32) -> Result<(), AxiError> {
        // SAFETY: live handle under `&mut self`.
        let code = unsafe { base_sys::pmq_base_sim_axi_write(self.raw.as_ptr(), addr, value, 0xF) };
        check_base(code)
    }

    pub fn set_inputs(&mut self, levels: u32) {
        // SAFETY: live handle under `&mut self`.
        unsafe { base_sys::pmq_base_sim_set_inputs(self.raw.as_ptr(), levels) }
    }

    pub fn schedule_input(&mut self, cycle: u64, input: u32, level: bool) -> bool {
        // SAFETY: live handle under `&mut self`.
        unsafe {
            base_sys::pmq_base_sim_schedule_input(self.raw.as_ptr(), cycle, input, i32::from(level))
                == 0
        }
    }

    pub fn pending_inputs(&self) -> u64 {
        // SAFETY: live handle; reads the schedule's length.
        unsafe { base_sys::pmq_base_sim_pending_inputs(self.raw.as_ptr()) }
    }

    pub fn next_input_cycle(&self) -> u64 {
        // SAFETY: live handle; reads the head of the schedule.
        unsafe { base_sys::pmq_base_sim_next_input_cycle(self.raw.as_ptr()) }
    }

    pub fn inputs(&self) -> u32 {
        // SAFETY: live handle; a pure read of a field.
        unsafe { base_sys::pmq_base_sim_inputs(self.raw.as_ptr()) }
    }

    pub fn leds(&self) -> u32 {
        // SAFETY: live handle; reads outputs of the settled model.
        unsafe { base_sys::pmq_base_sim_leds(self.raw.as_ptr()) }
    }

    pub fn set_other_irqs(&mut self, levels: u32) {
        // SAFETY: live handle under `&mut self`.
        unsafe { base_sys::pmq_base_sim_set_other_irqs(self.raw.as_ptr(), levels) }
    }

    pub fn irq(&self) -> bool {
        // SAFETY: live handle; reads an output of the settled model.
        unsafe { base_sys::pmq_base_sim_irq(self.raw.as_ptr()) != 0 }
    }
}

impl Drop for BaseModel {
    fn drop(&mut self) {
        // SAFETY: `raw` came from pmq_base_sim_create and is destroyed exactly once.
        unsafe { base_sys::pmq_base_sim_destroy(self.raw.as_ptr()) }
    }
}
