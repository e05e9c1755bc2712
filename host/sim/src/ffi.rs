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

    /// Evaluates every falling clock edge from now on: the reference the fast clock
    /// (hdl/sim/pmq_clock_fall.h) is tested against.
    #[cfg(test)]
    pub fn set_exact_clock(&mut self, exact: bool) {
        // SAFETY: live handle under `&mut self`; the call sets a flag of the handle.
        unsafe { sys::pmq_sim_set_exact_clock(self.raw.as_ptr(), i32::from(exact)) }
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

/// Whether the model steps its clock with one evaluation per cycle
/// (hdl/sim/pmq_clock_fall.h).
#[cfg(test)]
pub fn fast_clock() -> bool {
    // SAFETY: returns a compile-time constant; no state involved.
    unsafe { sys::pmq_sim_fast_clock() != 0 }
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

    /// As [`Model::set_exact_clock`].
    #[cfg(test)]
    pub fn set_exact_clock(&mut self, exact: bool) {
        // SAFETY: live handle under `&mut self`; the call sets a flag of the handle.
        unsafe { base_sys::pmq_base_sim_set_exact_clock(self.raw.as_ptr(), i32::from(exact)) }
    }

    /// As [`fast_clock`], for this handle's layout.
    #[cfg(test)]
    pub fn fast_clock(&self) -> bool {
        // SAFETY: live handle; returns a constant of its layout.
        unsafe { base_sys::pmq_base_sim_fast_clock(self.raw.as_ptr()) != 0 }
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

#[cfg(test)]
mod tests {
    //! The fast clock (one evaluation per cycle, hdl/sim/pmq_clock_fall.h) against the
    //! full one (two), through the same traffic: every pin, line and register read must
    //! agree, cycle for cycle.

    use super::{fast_clock, BaseModel, Model};
    use pynq_mqtt_regs::base;
    use pynq_mqtt_regs::offset::{
        DEBOUNCE_US, DROPPED, EVT_POP, EVT_TS, FIFO_LEVEL, GEN_COUNT, GEN_CTRL, GEN_PATTERN,
        GEN_PERIOD, IRQ_ENABLE, IRQ_STATUS, IRQ_THRESHOLD, IRQ_TIMEOUT_US, LED_PWM, LED_SET, TIME,
    };
    use pynq_mqtt_regs::{DebounceUs, EvtPop, GenCtrl, IrqEnable, IrqThreshold, LedPwm};

    /// A small deterministic generator (64-bit LCG, high bits).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// What one run saw: per step, the cycle, the line and the pins; per interrupt, the
    /// registers the driver reads.
    #[derive(Debug, Default, PartialEq)]
    struct Trace {
        steps: Vec<(u64, bool, u32, u32)>,
        reads: Vec<u32>,
        events: usize,
        irqs: usize,
        dropped: u32,
        led_changes: usize,
    }

    fn run(exact: bool) -> Trace {
        let mut m = Model::new().expect("model");
        m.set_exact_clock(exact);
        let mut rng = Lcg(0x5eed);
        let mut t = Trace::default();
        let n_inputs = super::n_inputs();
        // short debounce, coalescing by count and age, a PWM LED beside a steady one
        m.write(DEBOUNCE_US, DebounceUs::default().with_time(3).0)
            .unwrap();
        m.write(
            IRQ_ENABLE,
            IrqEnable::default()
                .with_event(true)
                .with_overflow(true)
                .with_gen_done(true)
                .0,
        )
        .unwrap();
        m.write(IRQ_THRESHOLD, IrqThreshold::default().with_count(4).0)
            .unwrap();
        m.write(IRQ_TIMEOUT_US, 40).unwrap();
        m.write(LED_PWM[0], LedPwm::default().with_led0(0x30).0)
            .unwrap();
        m.write(LED_SET, 0b11).unwrap();
        // presses with bounces on every input, scheduled ahead
        let mut at = m.cycles() + 10;
        for _ in 0..400 {
            at += 1 + rng.below(120);
            let input = rng.below(u64::from(n_inputs)) as u32;
            let level = rng.below(2) == 1;
            assert!(m.schedule_input(at, input, level));
        }
        let mut last_leds = m.leds();
        let mut gen_started = false;
        while m.cycles() < 60_000 {
            if !gen_started && m.cycles() > 20_000 {
                // a burst past the FIFO's room, then a paced stream
                m.write(GEN_COUNT, 1500).unwrap();
                m.write(GEN_PERIOD, u32::from(rng.below(2) == 1)).unwrap();
                m.write(GEN_PATTERN, 0b101).unwrap();
                m.write(GEN_CTRL, GenCtrl::default().with_enable(true).0)
                    .unwrap();
                gen_started = true;
            }
            let k = 1 + rng.below(300);
            if rng.below(2) == 0 {
                m.step(k);
            } else {
                m.step_until_irq(k);
            }
            let leds = m.leds();
            t.led_changes += usize::from(leds != last_leds);
            last_leds = leds;
            t.steps.push((m.cycles(), m.irq(), leds, m.inputs()));
            if m.irq() {
                t.irqs += 1;
                t.reads.push(m.read(FIFO_LEVEL).unwrap());
                loop {
                    let pop = m.read(EVT_POP).unwrap();
                    t.reads.push(pop);
                    t.reads.push(m.read(EVT_TS).unwrap());
                    if !EvtPop(pop).valid() {
                        break;
                    }
                    t.events += 1;
                }
                let dropped = m.read(DROPPED).unwrap();
                t.dropped = dropped;
                t.reads.extend([dropped, m.read(TIME).unwrap()]);
                let status = m.read(IRQ_STATUS).unwrap();
                t.reads.push(status);
                m.write(IRQ_STATUS, status).unwrap();
            }
        }
        t
    }

    #[test]
    fn one_evaluation_per_clock_steps_the_model_as_two_do() {
        assert!(
            fast_clock(),
            "the pinned Verilator (5.006) steps a clock with one evaluation: \
             hdl/sim/pmq_clock_fall.h no longer finds its edge detector"
        );
        let full = run(true);
        let fast = run(false);
        // the traffic reached every part of the model
        assert!(full.events > 1000, "{} events", full.events);
        assert!(full.irqs > 50, "{} interrupts", full.irqs);
        assert!(
            full.dropped > 0,
            "the generator's burst overflowed the FIFO"
        );
        assert!(full.led_changes > 20, "the PWM LED toggled");
        assert_eq!(full.steps.len(), fast.steps.len());
        for (i, (a, b)) in full.steps.iter().zip(&fast.steps).enumerate() {
            assert_eq!(a, b, "step {i}: (cycle, irq, leds, inputs)");
        }
        assert_eq!(full.reads, fast.reads, "register reads");
        assert_eq!(full, fast);
    }

    fn run_base(z2: bool, exact: bool) -> Vec<(u64, bool, u32, u32, u32)> {
        let mut m = BaseModel::new(z2).expect("base model");
        m.set_exact_clock(exact);
        assert!(m.fast_clock(), "the base model's clock: as above");
        let at = |off: u32| base::BASE_ADDR + off;
        // the buttons' GPIO interrupt through the INTC
        m.write(at(base::BUTTONS + 0x128), 1).unwrap();
        m.write(at(base::BUTTONS + 0x11C), 1 << 31).unwrap();
        m.write(at(base::INTC + 0x08), u32::MAX).unwrap();
        m.write(at(base::INTC + 0x1C), 3).unwrap();
        let mut rng = Lcg(7);
        let mut cycle = m.cycles() + 5;
        for _ in 0..200 {
            cycle += 1 + rng.below(90);
            assert!(m.schedule_input(cycle, rng.below(6) as u32, rng.below(2) == 1));
        }
        let mut out = Vec::new();
        while m.pending_inputs() > 0 {
            let k = 1 + rng.below(150);
            if rng.below(2) == 0 {
                m.step(k);
            } else {
                m.step_until_irq(k);
            }
            let buttons = m.read(at(base::BUTTONS)).unwrap();
            let isr = m.read(at(base::INTC)).unwrap();
            out.push((m.cycles(), m.irq(), m.leds(), buttons, isr));
            if m.irq() {
                m.write(at(base::BUTTONS + 0x120), 1).unwrap();
                m.write(at(base::INTC + 0x0C), isr).unwrap();
            }
        }
        out
    }

    #[test]
    fn the_base_models_step_alike_with_one_evaluation_per_clock() {
        for z2 in [false, true] {
            let full = run_base(z2, true);
            assert!(
                full.iter().filter(|s| s.1).count() > 10,
                "the buttons raised the line"
            );
            let fast = run_base(z2, false);
            assert_eq!(full.len(), fast.len(), "z2 = {z2}: steps");
            for (i, (a, b)) in full.iter().zip(&fast).enumerate() {
                assert_eq!(
                    a, b,
                    "z2 = {z2}, step {i}: (cycle, irq, leds, buttons, isr)"
                );
            }
        }
    }
}
