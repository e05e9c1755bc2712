//! Self-tests of the peripheral and the event generator's set-up, written once for
//! `doctor` and the benchmarks: a burst of synthetic events, an interrupt actually
//! delivered, and the LED register written and read back. The self-tests put back
//! every register they change.
//!
//! The generator is a build option of the IP (WITH_GEN, off by default): everything
//! here that needs it first checks PARAMS.GENERATOR and refuses with
//! [`DiagError::NoGenerator`] on a bitstream built without it.

use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_regs::{self as regs, GenCtrl, IrqEnable, IrqStatus, IrqThreshold, RegBus};

use crate::{write_leds, DeviceInfo, LedAction};

/// What the event generator is to make: `count` events (0: until stopped), one
/// every `period` clock cycles (0 or 1: every cycle), cycling through the inputs
/// of `pattern` (bit i = input i).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    pub count: u32,
    pub period: u32,
    pub pattern: u32,
}

impl Burst {
    /// Stops the generator and loads this burst; [`generator_start`] runs it.
    pub fn load(&self, bus: &dyn Bus) -> Result<(), DiagError> {
        require_generator(bus)?;
        bus.write(regs::GEN_CTRL, GenCtrl::default())?;
        bus.write(regs::GEN_PERIOD, self.period)?;
        bus.write(regs::GEN_PATTERN, self.pattern)?;
        Ok(bus.write(regs::GEN_COUNT, self.count)?)
    }
}

/// Whether the IP behind `bus` was built with the event generator (PARAMS.GENERATOR).
pub fn has_generator(bus: &dyn Bus) -> Result<bool, BusError> {
    Ok(bus.read(regs::PARAMS)?.generator())
}

/// [`DiagError::NoGenerator`] unless the IP has the event generator.
pub fn require_generator(bus: &dyn Bus) -> Result<(), DiagError> {
    if has_generator(bus)? {
        Ok(())
    } else {
        Err(DiagError::NoGenerator)
    }
}

/// Runs the burst last loaded.
pub fn generator_start(bus: &dyn Bus) -> Result<(), DiagError> {
    require_generator(bus)?;
    Ok(start(bus)?)
}

/// Loads `burst` and starts it (PARAMS is read once, by the load).
pub fn generator_burst(bus: &dyn Bus, burst: Burst) -> Result<(), DiagError> {
    burst.load(bus)?;
    Ok(start(bus)?)
}

fn start(bus: &dyn Bus) -> Result<(), BusError> {
    bus.write(regs::GEN_CTRL, GenCtrl::default().with_enable(true))
}

/// Whether the generator is running (it stops itself after its count).
pub fn generator_running(bus: &dyn Bus) -> Result<bool, BusError> {
    Ok(bus.read(regs::GEN_CTRL)?.enable())
}

/// Events generated since the last start, lost ones included.
pub fn generator_sent(bus: &dyn Bus) -> Result<u32, BusError> {
    bus.read(regs::GEN_SENT)
}

/// Why a self-test failed. The message names what was seen.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("register access failed: {0}")]
    Bus(#[from] BusError),
    #[error(
        "this bitstream has no event generator (PARAMS.GENERATOR = 0): it needs an IP built \
         with WITH_GEN=1"
    )]
    NoGenerator,
    #[error("the event generator is already running")]
    GeneratorBusy,
    #[error(
        "no interrupt: the event generator made no event (GEN_SENT {sent}, FIFO level {level})"
    )]
    NothingGenerated { sent: u32, level: u16 },
    #[error("no interrupt within {waited:?} although the peripheral raised it (IRQ_STATUS.EVENT = 1, {level} event(s) waiting)")]
    NotDelivered { waited: Duration, level: u16 },
    #[error("no interrupt: {level} event(s) waiting but IRQ_STATUS.EVENT is 0")]
    NotRaised { level: u16 },
    #[error("an interrupt arrived, but the FIFO is empty: the line that fired is not this IP's")]
    NotOurLine,
    #[error(
        "the interrupt fired, but the FIFO held {0:#010x} instead of a synthetic press of input 0"
    )]
    WrongEvent(u32),
    #[error("the event FIFO does not run empty after {0} reads")]
    EndlessFifo(usize),
    #[error("{how} the LEDs: expected {want:0w$b}, read back {got:0w$b}", w = usize::from(*.n_leds))]
    LedMismatch {
        how: &'static str,
        want: u32,
        got: u32,
        n_leds: u8,
    },
}

/// A passed interrupt self-test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptCheck {
    /// From starting the generator to the interrupt, as the host saw it.
    pub latency: Duration,
    /// Sequence number of the generated event.
    pub seq: u16,
    /// Events that were waiting in the FIFO (no daemon took them), discarded.
    pub discarded: usize,
}

/// The registers the interrupt self-test changes, as found.
struct Saved {
    irq_enable: IrqEnable,
    threshold: IrqThreshold,
    timeout_us: u32,
    count: u32,
    period: u32,
    pattern: u32,
}

impl Saved {
    fn read(bus: &dyn Bus) -> Result<Self, BusError> {
        Ok(Self {
            irq_enable: bus.read(regs::IRQ_ENABLE)?,
            threshold: bus.read(regs::IRQ_THRESHOLD)?,
            timeout_us: bus.read(regs::IRQ_TIMEOUT_US)?,
            count: bus.read(regs::GEN_COUNT)?,
            period: bus.read(regs::GEN_PERIOD)?,
            pattern: bus.read(regs::GEN_PATTERN)?,
        })
    }

    fn write_back(&self, bus: &dyn Bus) -> Result<(), BusError> {
        bus.write(regs::GEN_CTRL, GenCtrl::default())?;
        bus.write(regs::IRQ_ENABLE, self.irq_enable)?;
        bus.write(regs::IRQ_THRESHOLD, self.threshold)?;
        bus.write(regs::IRQ_TIMEOUT_US, self.timeout_us)?;
        bus.write(regs::GEN_COUNT, self.count)?;
        bus.write(regs::GEN_PERIOD, self.period)?;
        bus.write(regs::GEN_PATTERN, self.pattern)
    }
}

/// One synthetic press of input 0 from the event generator must raise the interrupt
/// within `wait` and arrive through the FIFO. Events already waiting are discarded
/// first, and counted. Needs the device to itself (no driver running on it), and an IP
/// with the generator ([`DiagError::NoGenerator`] before touching anything otherwise).
pub fn interrupt_self_test(
    bus: &dyn Bus,
    info: &DeviceInfo,
    wait: Duration,
) -> Result<InterruptCheck, DiagError> {
    if !info.generator {
        return Err(DiagError::NoGenerator);
    }
    if generator_running(bus)? {
        return Err(DiagError::GeneratorBusy);
    }
    let saved = Saved::read(bus)?;
    let status_before = bus.read(regs::IRQ_STATUS)?;
    let result = generate_one(bus, info, wait);
    // put everything back, also after a failure
    let restore = (|| -> Result<(), BusError> {
        saved.write_back(bus)?;
        if !status_before.gen_done() {
            bus.write(regs::IRQ_STATUS, IrqStatus::default().with_gen_done(true))?;
        }
        bus.rearm_irq()
    })();
    let check = result?;
    restore?;
    Ok(check)
}

fn generate_one(
    bus: &dyn Bus,
    info: &DeviceInfo,
    wait: Duration,
) -> Result<InterruptCheck, DiagError> {
    bus.write(regs::IRQ_ENABLE, IrqEnable::default())?;
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

    bus.write(regs::IRQ_THRESHOLD, IrqThreshold::default().with_count(1))?;
    bus.write(regs::IRQ_TIMEOUT_US, 0)?;
    Burst {
        count: 1,
        period: 0,
        pattern: 1,
    }
    .load(bus)?;
    bus.write(regs::IRQ_ENABLE, IrqEnable::default().with_event(true))?;
    let t0 = Instant::now();
    generator_start(bus)?;
    let fired = bus.wait_irq(wait)?;
    let latency = t0.elapsed();
    bus.write(regs::IRQ_ENABLE, IrqEnable::default())?;
    if fired != IrqWait::Fired {
        return Err(no_interrupt(bus, wait)?);
    }
    let word = bus.read(regs::EVT_POP)?;
    if !word.valid() {
        return Err(DiagError::NotOurLine);
    }
    if !(word.synthetic() && word.input() == 0 && word.level()) {
        return Err(DiagError::WrongEvent(word.0));
    }
    let extra = pop_all(bus, limit)?;
    bus.rearm_irq()?;
    Ok(InterruptCheck {
        latency,
        seq: word.seq(),
        discarded: stale + extra,
    })
}

/// Why the generated event raised no interrupt.
fn no_interrupt(bus: &dyn Bus, waited: Duration) -> Result<DiagError, BusError> {
    let level = bus.read(regs::FIFO_LEVEL)?.count();
    let sent = generator_sent(bus)?;
    let status = bus.read(regs::IRQ_STATUS)?;
    Ok(if sent == 0 || level == 0 {
        DiagError::NothingGenerated { sent, level }
    } else if status.event() {
        DiagError::NotDelivered { waited, level }
    } else {
        DiagError::NotRaised { level }
    })
}

/// Pops until EVT_POP reads empty (at most `limit`); returns how many were popped.
fn pop_all(bus: &dyn Bus, limit: usize) -> Result<usize, DiagError> {
    for n in 0..limit {
        if !bus.read(regs::EVT_POP)?.valid() {
            return Ok(n);
        }
    }
    Err(DiagError::EndlessFifo(limit))
}

/// One step of the LED self-test: what is written, and how it reads.
enum LedStep {
    Value(u32),
    Action(LedAction),
}

/// Every LED is written on and off in two patterns, toggled, cleared and set, each
/// read back; the register is put back as found, which is returned (masked to the
/// LEDs that exist).
pub fn led_self_test(bus: &dyn Bus, n_leds: u8) -> Result<u32, DiagError> {
    let mask = if n_leds >= 32 {
        u32::MAX
    } else {
        (1u32 << n_leds) - 1
    };
    let saved = bus.read(regs::LED)?;
    let result = (|| -> Result<(), DiagError> {
        let a = 0x5555_5555 & mask;
        let b = 0xAAAA_AAAA & mask;
        for (how, step, want) in [
            ("writing", LedStep::Value(a), a),
            ("writing", LedStep::Value(b), b),
            ("toggling all of", LedStep::Action(LedAction::Toggle), a),
            ("clearing all of", LedStep::Action(LedAction::Off), 0),
            ("setting all of", LedStep::Action(LedAction::On), mask),
        ] {
            match step {
                LedStep::Value(v) => bus.write(regs::LED, v)?,
                LedStep::Action(action) => write_leds(bus, action, mask)?,
            }
            let got = bus.read(regs::LED)? & mask;
            if got != want {
                return Err(DiagError::LedMismatch {
                    how,
                    want,
                    got,
                    n_leds,
                });
            }
        }
        Ok(())
    })();
    bus.write(regs::LED, saved)?;
    result?;
    Ok(saved & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The register window of an IP built without the generator, as far as the
    /// generator's set-up sees it: PARAMS without GENERATOR, every write recorded.
    struct Lean {
        writes: Mutex<Vec<(u32, u32)>>,
    }

    impl Bus for Lean {
        fn read32(&self, off: u32) -> Result<u32, BusError> {
            Ok(if off == regs::offset::PARAMS {
                regs::Params::default()
                    .with_n_inputs(4)
                    .with_n_leds(4)
                    .with_fifo_depth_log2(9)
                    .0
            } else {
                0
            })
        }
        fn write32(&self, off: u32, v: u32) -> Result<(), BusError> {
            self.writes.lock().unwrap().push((off, v));
            Ok(())
        }
        fn wait_irq(&self, _: Duration) -> Result<IrqWait, BusError> {
            Ok(IrqWait::TimedOut)
        }
        fn rearm_irq(&self) -> Result<(), BusError> {
            Ok(())
        }
        fn wake_waiter(&self) {}
        fn describe(&self) -> String {
            "lean".into()
        }
    }

    #[test]
    fn without_a_generator_nothing_is_written_and_the_error_says_so() {
        let bus = Lean {
            writes: Mutex::new(Vec::new()),
        };
        assert!(!has_generator(&bus).unwrap());
        let burst = Burst {
            count: 4,
            period: 0,
            pattern: 1,
        };
        for r in [
            burst.load(&bus),
            generator_start(&bus),
            generator_burst(&bus, burst),
        ] {
            assert!(matches!(r, Err(DiagError::NoGenerator)), "{r:?}");
        }
        let info = DeviceInfo {
            version_major: regs::VERSION_MAJOR,
            version_minor: regs::VERSION_MINOR,
            n_inputs: 4,
            n_leds: 4,
            fifo_depth: 512,
            clk_hz: 1_000_000,
            generator: false,
        };
        let r = interrupt_self_test(&bus, &info, Duration::from_millis(10));
        assert!(matches!(r, Err(DiagError::NoGenerator)), "{r:?}");
        assert!(bus.writes.lock().unwrap().is_empty());
        let msg = DiagError::NoGenerator.to_string();
        assert!(
            msg.contains("PARAMS.GENERATOR = 0")
                && msg.contains("WITH_GEN=1")
                && !msg.contains('\n'),
            "{msg}"
        );
    }
}
