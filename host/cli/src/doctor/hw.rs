//! The hardware checks of `doctor`, on any bus: an interrupt actually delivered
//! (the peripheral's event generator makes one synthetic press), and the LED register
//! written and read back. The self-tests are the driver's ([`diag`]); this file says
//! what each outcome means for the person running doctor. A bitstream built without
//! the generator (the board overlay's default) cannot self-test its interrupt: that is
//! a warning, not a failure.

use std::time::Duration;

use pynq_mqtt_bus::{Bus, BusError};
use pynq_mqtt_driver::diag::{self, DiagError};
use pynq_mqtt_driver::DeviceInfo;

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
        DiagError::Bus(e).into()
    }
}

impl From<DiagError> for Failure {
    fn from(e: DiagError) -> Self {
        let fix = match &e {
            DiagError::Bus(_) => "check the overlay is loaded and rerun doctor",
            DiagError::NoGenerator => {
                "load an overlay built with the generator (scripts/build-overlay --with-gen)"
            }
            DiagError::GeneratorBusy => {
                "stop what uses it (a benchmark?), or clear GEN_CTRL, and rerun doctor"
            }
            DiagError::NothingGenerated { .. } => {
                "the PL holds another build of the IP or no clock: reload the pynq_mqtt \
                 overlay (FCLK_CLK0 must run)"
            }
            DiagError::NotDelivered { .. } => {
                "the irq does not reach Linux: the block design must wire it to IRQ_F2P[1] \
                 and the overlay's node say `interrupts = <0 30 4>` (check /proc/interrupts)"
            }
            DiagError::NotRaised { .. } => {
                "the IP's interrupt logic does not match this daemon: reload the overlay \
                 built with it"
            }
            DiagError::NotOurLine => {
                "the overlay's node must name the IP's line, IRQ_F2P[1] (`interrupts = \
                 <0 30 4>`), not one another device uses"
            }
            DiagError::WrongEvent(_) => {
                "another process may be using the device; stop it and rerun doctor"
            }
            DiagError::EndlessFifo(_) => {
                "an input or the event generator keeps producing events: stop it and rerun \
                 doctor"
            }
            DiagError::LedMismatch { .. } => {
                "the LED logic of the loaded bitstream is not this IP's: reload the \
                 pynq_mqtt overlay"
            }
        };
        Failure::new(e.to_string(), fix)
    }
}

/// A check that ran: it passed, or it could not test what it is for (a warning).
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    Passed(String),
    NotTested(String),
}

/// Why the interrupt is not self-tested on a bitstream without the event generator,
/// and how to test it: one line.
pub const NO_GENERATOR: &str = "this bitstream has no event generator (PARAMS.GENERATOR = 0), \
     so the interrupt was not self-tested; to test it, press a button while `pynq-mqtt run` \
     publishes, or load an overlay built with the generator (scripts/build-overlay \
     --with-gen)";

/// How long the interrupt may take: generous, it is one event.
const IRQ_WAIT: Duration = Duration::from_secs(2);

/// One synthetic press of input 0 from the event generator must raise the interrupt
/// and arrive through the FIFO; events already waiting are discarded and counted.
/// Without the generator nothing is touched and the check is [`Checked::NotTested`].
pub fn interrupt(bus: &dyn Bus, info: &DeviceInfo) -> Result<Checked, Failure> {
    if !info.generator {
        return Ok(Checked::NotTested(NO_GENERATOR.into()));
    }
    let check = diag::interrupt_self_test(bus, info, IRQ_WAIT)?;
    let mut detail = format!(
        "a generated press raised it and was read back ({} us, seq {}); re-armed",
        check.latency.as_micros(),
        check.seq
    );
    if check.discarded > 0 {
        detail.push_str(&format!(
            "; {} old event(s) left in the FIFO discarded",
            check.discarded
        ));
    }
    Ok(Checked::Passed(detail))
}

/// Every LED written, toggled, cleared and set, each read back, and put back.
pub fn leds(bus: &dyn Bus, n_leds: u8) -> Result<String, Failure> {
    if n_leds == 0 {
        return Ok("this build has no LEDs".into());
    }
    let saved = diag::led_self_test(bus, n_leds)?;
    Ok(format!(
        "{n_leds} LEDs written, set, cleared and toggled, each read back; restored to {saved:0w$b}",
        w = usize::from(n_leds)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pynq_mqtt_bus::IrqWait;
    use pynq_mqtt_regs::{offset, EvtPop, Params};
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
                (offset::PARAMS, Params::default().with_generator(true).0),
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
            generator: true,
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
        let Checked::Passed(detail) = interrupt(&m, &info()).unwrap() else {
            panic!("not passed");
        };
        assert!(detail.contains("generated press"), "{detail}");
        assert!(m.fifo.lock().unwrap().is_empty());
        assert_restored(&m);
    }

    #[test]
    fn without_a_generator_the_interrupt_is_not_tested_and_nothing_is_written() {
        let m = Model::new(true, 0);
        let before = m.regs.lock().unwrap().clone();
        let lean = DeviceInfo {
            generator: false,
            ..info()
        };
        let Checked::NotTested(why) = interrupt(&m, &lean).unwrap() else {
            panic!("passed without a generator");
        };
        assert!(!why.contains('\n'), "{why}");
        assert!(
            why.contains("no event generator") && why.contains("press a button"),
            "{why}"
        );
        assert!(why.contains("--with-gen"), "{why}");
        assert_eq!(*m.regs.lock().unwrap(), before);
        assert!(m.fifo.lock().unwrap().is_empty());
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
