//! The hardware checks of `doctor`, on any bus: an interrupt actually delivered
//! (the peripheral's event generator makes one synthetic press), and the LED register
//! written and read back. Both put back every register they touch.

use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_driver::DeviceInfo;
use pynq_mqtt_regs::{offset, EvtPop, GenCtrl, IrqEnable, IrqStatus};

/// A failed check: what is wrong, and what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub cause: String,
    pub fix: String,
}

impl Failure {
    pub fn new(cause: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            cause: cause.into(),
            fix: fix.into(),
        }
    }
}

impl From<BusError> for Failure {
    fn from(e: BusError) -> Self {
        Failure::new(
            format!("register access failed: {e}"),
            "check the overlay is loaded and rerun doctor",
        )
    }
}

/// How long the interrupt may take: generous, it is one event.
const IRQ_WAIT: Duration = Duration::from_secs(2);

/// The registers the interrupt check changes, as found.
const SAVED: [u32; 6] = [
    offset::IRQ_ENABLE,
    offset::IRQ_THRESHOLD,
    offset::IRQ_TIMEOUT_US,
    offset::GEN_COUNT,
    offset::GEN_PERIOD,
    offset::GEN_PATTERN,
];

/// One synthetic press of input 0 from the event generator must raise the interrupt
/// and arrive through the FIFO. Events already waiting (no daemon ran to take them)
/// are discarded first, and counted in the result.
pub fn interrupt(bus: &dyn Bus, info: &DeviceInfo) -> Result<String, Failure> {
    if GenCtrl(bus.read32(offset::GEN_CTRL)?).enable() {
        return Err(Failure::new(
            "the event generator is already running",
            "stop what uses it (a benchmark?), or clear GEN_CTRL, and rerun doctor",
        ));
    }
    let mut saved = [0u32; SAVED.len()];
    for (v, reg) in saved.iter_mut().zip(SAVED) {
        *v = bus.read32(reg)?;
    }
    let status_before = IrqStatus(bus.read32(offset::IRQ_STATUS)?);
    let result = generate_one(bus, info);
    // put everything back, also after a failure
    let restore = (|| -> Result<(), BusError> {
        bus.write32(offset::GEN_CTRL, 0)?;
        for (v, reg) in saved.iter().zip(SAVED) {
            bus.write32(reg, *v)?;
        }
        if !status_before.gen_done() {
            bus.write32(offset::IRQ_STATUS, IrqStatus(0).with_gen_done(true).0)?;
        }
        bus.rearm_irq()
    })();
    let detail = result?;
    restore?;
    Ok(detail)
}

fn generate_one(bus: &dyn Bus, info: &DeviceInfo) -> Result<String, Failure> {
    bus.write32(offset::IRQ_ENABLE, 0)?;
    let limit = 2 * info.fifo_depth as usize + 64;
    let stale = pop_all(bus, limit)?;
    // an interrupt from before (the stale events) must not pass for ours
    for _ in 0..8 {
        match bus.wait_irq(Duration::ZERO)? {
            IrqWait::Fired => bus.rearm_irq()?,
            IrqWait::TimedOut => break,
        }
    }
    bus.rearm_irq()?;

    bus.write32(offset::IRQ_THRESHOLD, 1)?;
    bus.write32(offset::IRQ_TIMEOUT_US, 0)?;
    bus.write32(offset::GEN_PATTERN, 1)?;
    bus.write32(offset::GEN_PERIOD, 0)?;
    bus.write32(offset::GEN_COUNT, 1)?;
    bus.write32(offset::IRQ_ENABLE, IrqEnable(0).with_event(true).0)?;
    let t0 = Instant::now();
    bus.write32(offset::GEN_CTRL, GenCtrl(0).with_enable(true).0)?;
    let fired = bus.wait_irq(IRQ_WAIT)?;
    let latency = t0.elapsed();
    bus.write32(offset::IRQ_ENABLE, 0)?;
    if fired != IrqWait::Fired {
        return Err(no_interrupt(bus)?);
    }
    let word = EvtPop(bus.read32(offset::EVT_POP)?);
    if !word.valid() {
        return Err(Failure::new(
            "an interrupt arrived, but the FIFO is empty: the line that fired is not this \
             IP's",
            "the overlay's node must name the IP's line, IRQ_F2P[1] (`interrupts = <0 30 4>`), \
             not one another device uses",
        ));
    }
    if !(word.synthetic() && word.input() == 0 && word.level()) {
        return Err(Failure::new(
            format!(
                "the interrupt fired, but the FIFO held {:#010x} instead of a synthetic \
                 press of input 0",
                word.0
            ),
            "another process may be using the device; stop it and rerun doctor",
        ));
    }
    let extra = pop_all(bus, limit)?;
    bus.rearm_irq()?;
    let mut detail = format!(
        "a generated press raised it and was read back ({} us, seq {}); re-armed",
        latency.as_micros(),
        word.seq()
    );
    if stale + extra > 0 {
        detail.push_str(&format!(
            "; {} old event(s) left in the FIFO discarded",
            stale + extra
        ));
    }
    Ok(detail)
}

/// Why the generated event raised no interrupt.
fn no_interrupt(bus: &dyn Bus) -> Result<Failure, BusError> {
    let level = bus.read32(offset::FIFO_LEVEL)? & 0xFFFF;
    let sent = bus.read32(offset::GEN_SENT)?;
    let status = IrqStatus(bus.read32(offset::IRQ_STATUS)?);
    Ok(if sent == 0 || level == 0 {
        Failure::new(
            format!(
                "no interrupt: the event generator made no event (GEN_SENT {sent}, FIFO \
                 level {level})"
            ),
            "the PL holds another build of the IP or no clock: reload the pynq_mqtt overlay \
             (FCLK_CLK0 must run)",
        )
    } else if status.event() {
        Failure::new(
            format!(
                "no interrupt within {IRQ_WAIT:?} although the peripheral raised it \
                 (IRQ_STATUS.EVENT = 1, {level} event(s) waiting)"
            ),
            "the irq does not reach Linux: the block design must wire it to IRQ_F2P[1] and \
             the overlay's node say `interrupts = <0 30 4>` (check /proc/interrupts)",
        )
    } else {
        Failure::new(
            format!("no interrupt: {level} event(s) waiting but IRQ_STATUS.EVENT is 0"),
            "the IP's interrupt logic does not match this daemon: reload the overlay built \
             with it",
        )
    })
}

/// Pops until EVT_POP reads empty (at most `limit`); returns how many were popped.
fn pop_all(bus: &dyn Bus, limit: usize) -> Result<usize, Failure> {
    for n in 0..limit {
        if !EvtPop(bus.read32(offset::EVT_POP)?).valid() {
            return Ok(n);
        }
    }
    Err(Failure::new(
        format!("the event FIFO does not run empty after {limit} reads"),
        "an input or the event generator keeps producing events: stop it and rerun doctor",
    ))
}

/// Every LED is written on and off in two patterns and toggled, each read back; the
/// register is put back as found.
pub fn leds(bus: &dyn Bus, n_leds: u8) -> Result<String, Failure> {
    if n_leds == 0 {
        return Ok("this build has no LEDs".into());
    }
    let mask = if n_leds >= 32 {
        u32::MAX
    } else {
        (1u32 << n_leds) - 1
    };
    let saved = bus.read32(offset::LED)?;
    let result = (|| -> Result<(), Failure> {
        let a = 0x5555_5555 & mask;
        let b = 0xAAAA_AAAA & mask;
        for (how, write, want) in [
            ("writing", Some((offset::LED, a)), a),
            ("writing", Some((offset::LED, b)), b),
            ("toggling all of", Some((offset::LED_TOGGLE, mask)), a),
            ("clearing all of", Some((offset::LED_CLR, mask)), 0),
            ("setting all of", Some((offset::LED_SET, mask)), mask),
        ] {
            if let Some((reg, v)) = write {
                bus.write32(reg, v)?;
            }
            let got = bus.read32(offset::LED)? & mask;
            if got != want {
                return Err(Failure::new(
                    format!(
                        "{how} the LEDs: expected {want:0w$b}, read back {got:0w$b}",
                        w = usize::from(n_leds)
                    ),
                    "the LED logic of the loaded bitstream is not this IP's: reload the \
                     pynq_mqtt overlay",
                ));
            }
        }
        Ok(())
    })();
    bus.write32(offset::LED, saved)?;
    result?;
    Ok(format!(
        "{n_leds} LEDs written, set, cleared and toggled, each read back; restored to {:0w$b}",
        saved & mask,
        w = usize::from(n_leds)
    ))
}
