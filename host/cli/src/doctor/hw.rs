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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    /// A peripheral in a few lines: the generator puts one synthetic press in the FIFO;
    /// `wired` says whether its interrupt reaches the host; `stuck_led` is a LED bit
    /// that never changes.
    struct Model {
        regs: Mutex<HashMap<u32, u32>>,
        fifo: Mutex<VecDeque<u32>>,
        wired: bool,
        stuck_led: u32,
    }

    impl Model {
        fn new(wired: bool, stuck_led: u32) -> Self {
            let regs = [
                (offset::IRQ_THRESHOLD, 4),
                (offset::IRQ_TIMEOUT_US, 500),
                (offset::GEN_PATTERN, 0b1010),
                (offset::GEN_COUNT, 7),
                (offset::LED, 0b0110),
            ];
            Self {
                regs: Mutex::new(regs.into_iter().collect()),
                fifo: Mutex::new(VecDeque::new()),
                wired,
                stuck_led,
            }
        }
        fn get(&self, reg: u32) -> u32 {
            self.regs.lock().unwrap().get(&reg).copied().unwrap_or(0)
        }
    }

    impl Bus for Model {
        fn read32(&self, off: u32) -> Result<u32, BusError> {
            Ok(match off {
                offset::EVT_POP => self.fifo.lock().unwrap().pop_front().unwrap_or(0),
                offset::FIFO_LEVEL => self.fifo.lock().unwrap().len() as u32,
                offset::GEN_SENT => 1,
                offset::IRQ_STATUS => u32::from(!self.fifo.lock().unwrap().is_empty()),
                offset::GEN_CTRL => 0,
                o => self.get(o),
            })
        }
        fn write32(&self, off: u32, v: u32) -> Result<(), BusError> {
            let mut regs = self.regs.lock().unwrap();
            let led = regs.get(&offset::LED).copied().unwrap_or(0);
            let stuck = |x: u32| (x & !self.stuck_led) | (led & self.stuck_led);
            match off {
                offset::GEN_CTRL if v & 1 == 1 => {
                    let w = EvtPop(0)
                        .with_valid(true)
                        .with_synthetic(true)
                        .with_level(true);
                    self.fifo.lock().unwrap().push_back(w.0);
                }
                offset::LED => drop(regs.insert(off, stuck(v))),
                offset::LED_SET => drop(regs.insert(offset::LED, stuck(led | v))),
                offset::LED_CLR => drop(regs.insert(offset::LED, stuck(led & !v))),
                offset::LED_TOGGLE => drop(regs.insert(offset::LED, stuck(led ^ v))),
                _ => drop(regs.insert(off, v)),
            }
            Ok(())
        }
        fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
            let pending =
                !self.fifo.lock().unwrap().is_empty() && self.get(offset::IRQ_ENABLE) == 1;
            Ok(if self.wired && pending && !timeout.is_zero() {
                IrqWait::Fired
            } else {
                IrqWait::TimedOut
            })
        }
        fn rearm_irq(&self) -> Result<(), BusError> {
            Ok(())
        }
        fn wake_waiter(&self) {}
        fn describe(&self) -> String {
            "model".into()
        }
    }

    fn info() -> DeviceInfo {
        DeviceInfo {
            version_major: 0,
            version_minor: 2,
            n_inputs: 4,
            n_leds: 4,
            fifo_depth: 16,
            clk_hz: 1_000_000,
        }
    }

    fn assert_restored(m: &Model) {
        assert_eq!(m.get(offset::IRQ_THRESHOLD), 4);
        assert_eq!(m.get(offset::IRQ_TIMEOUT_US), 500);
        assert_eq!(m.get(offset::GEN_PATTERN), 0b1010);
        assert_eq!(m.get(offset::GEN_COUNT), 7);
        assert_eq!(m.get(offset::IRQ_ENABLE), 0);
    }

    #[test]
    fn a_delivered_interrupt_passes_and_everything_is_put_back() {
        let m = Model::new(true, 0);
        let detail = interrupt(&m, &info()).unwrap();
        assert!(detail.contains("generated press"), "{detail}");
        assert!(m.fifo.lock().unwrap().is_empty());
        assert_restored(&m);
    }

    #[test]
    fn an_interrupt_that_never_arrives_names_the_wiring() {
        let m = Model::new(false, 0);
        let f = interrupt(&m, &info()).unwrap_err();
        assert!(f.cause.contains("IRQ_STATUS.EVENT = 1"), "{f:?}");
        assert!(
            f.fix.contains("IRQ_F2P[1]") && f.fix.contains("<0 30 4>"),
            "{f:?}"
        );
        assert_restored(&m);
    }

    #[test]
    fn leds_are_checked_bit_by_bit_and_restored() {
        let m = Model::new(true, 0);
        assert!(leds(&m, 4).unwrap().contains("restored to 0110"));
        assert_eq!(m.get(offset::LED), 0b0110);
        let m = Model::new(true, 0b0100);
        let f = leds(&m, 4).unwrap_err();
        assert!(f.cause.contains("expected 1010, read back 1110"), "{f:?}");
        assert_eq!(m.get(offset::LED), 0b0110);
    }
}
