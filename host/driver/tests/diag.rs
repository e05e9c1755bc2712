//! The driver's self-tests and generator set-up on the Verilated RTL: what doctor and
//! the benchmarks rely on. Each self-test must pass on the real design, name what it
//! saw when the board misbehaves, and leave every register as it found it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_driver::diag::{self, Burst, DiagError};
use pynq_mqtt_regs::{self as regs, IrqEnable, IrqStatus, IrqThreshold, RegBus};
use pynq_mqtt_sim::{SimBoard, SimConfig, Speed};

const PATIENCE: Duration = Duration::from_secs(30);

fn sim() -> Arc<SimBoard> {
    Arc::new(
        SimBoard::start(SimConfig {
            speed: Speed::RealTime(1.0),
            stimulus: Vec::new(),
        })
        .unwrap(),
    )
}

fn wait_generator(bus: &dyn Bus) {
    let deadline = Instant::now() + PATIENCE;
    while diag::generator_running(bus).unwrap() {
        assert!(Instant::now() < deadline, "the generator never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The simulated board, with its interrupt never reaching the host, or one LED bit
/// stuck on as read back.
struct Faulty {
    board: Arc<SimBoard>,
    irq_lost: bool,
    stuck_led: u32,
}

impl Bus for Faulty {
    fn read32(&self, o: u32) -> Result<u32, BusError> {
        let v = self.board.read32(o)?;
        Ok(if o == regs::LED.offset() {
            v | self.stuck_led
        } else {
            v
        })
    }
    fn write32(&self, o: u32, v: u32) -> Result<(), BusError> {
        self.board.write32(o, v)
    }
    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        if self.irq_lost {
            std::thread::sleep(timeout);
            return Ok(IrqWait::TimedOut);
        }
        self.board.wait_irq(timeout)
    }
    fn rearm_irq(&self) -> Result<(), BusError> {
        self.board.rearm_irq()
    }
    fn wake_waiter(&self) {
        self.board.wake_waiter()
    }
    fn describe(&self) -> String {
        "faulty sim".into()
    }
}

#[test]
fn a_burst_makes_the_events_asked_for() {
    let b = sim();
    let burst = Burst {
        count: 6,
        period: 50,
        pattern: 0b0101,
    };
    diag::generator_burst(b.as_ref(), burst).unwrap();
    wait_generator(b.as_ref());
    assert_eq!(diag::generator_sent(b.as_ref()).unwrap(), 6);
    let mut got = Vec::new();
    loop {
        let w = b.read(regs::EVT_POP).unwrap();
        if !w.valid() {
            break;
        }
        assert!(w.synthetic(), "{w:?}");
        got.push((w.input(), w.level(), w.seq()));
    }
    // inputs 0 and 2 in turn, each toggled: press, then release
    assert_eq!(
        got,
        vec![
            (0, true, 0),
            (2, true, 1),
            (0, false, 2),
            (2, false, 3),
            (0, true, 4),
            (2, true, 5)
        ]
    );
}

/// Values unlike the reset values and unlike what the self-test writes.
fn set_odd_values(b: &dyn Bus) {
    b.write(regs::IRQ_ENABLE, IrqEnable::default().with_overflow(true))
        .unwrap();
    b.write(regs::IRQ_THRESHOLD, IrqThreshold::default().with_count(4))
        .unwrap();
    b.write(regs::IRQ_TIMEOUT_US, 500).unwrap();
    b.write(regs::GEN_COUNT, 7).unwrap();
    b.write(regs::GEN_PERIOD, 9).unwrap();
    b.write(regs::GEN_PATTERN, 0b1010).unwrap();
}

fn assert_odd_values(b: &dyn Bus) {
    assert_eq!(
        b.read(regs::IRQ_ENABLE).unwrap(),
        IrqEnable::default().with_overflow(true)
    );
    assert_eq!(b.read(regs::IRQ_THRESHOLD).unwrap().count(), 4);
    assert_eq!(b.read(regs::IRQ_TIMEOUT_US).unwrap(), 500);
    assert_eq!(b.read(regs::GEN_COUNT).unwrap(), 7);
    assert_eq!(b.read(regs::GEN_PERIOD).unwrap(), 9);
    assert_eq!(b.read(regs::GEN_PATTERN).unwrap(), 0b1010);
    assert!(!diag::generator_running(b).unwrap());
}

#[test]
fn the_interrupt_self_test_passes_discards_old_events_and_puts_everything_back() {
    let b = sim();
    let info = pynq_mqtt_driver::probe(b.as_ref()).unwrap();
    // three events nobody took, then a clean GEN_DONE
    let stale = Burst {
        count: 3,
        period: 10,
        pattern: 1,
    };
    diag::generator_burst(b.as_ref(), stale).unwrap();
    wait_generator(b.as_ref());
    b.write(regs::IRQ_STATUS, IrqStatus::default().with_gen_done(true))
        .unwrap();
    assert!(!b.read(regs::IRQ_STATUS).unwrap().gen_done());
    set_odd_values(b.as_ref());

    let check = diag::interrupt_self_test(b.as_ref(), &info, PATIENCE).unwrap();
    assert_eq!(check.discarded, 3);
    assert_eq!(
        check.seq, 3,
        "the generated press follows the three old ones"
    );
    assert!(check.latency < PATIENCE);

    assert_odd_values(b.as_ref());
    assert!(!b.read(regs::EVT_POP).unwrap().valid(), "FIFO left empty");
    assert!(
        !b.read(regs::IRQ_STATUS).unwrap().gen_done(),
        "the self-test's own GEN_DONE is cleared"
    );
}

#[test]
fn a_lost_interrupt_is_named_and_everything_is_put_back() {
    let board = sim();
    let info = pynq_mqtt_driver::probe(board.as_ref()).unwrap();
    let b = Faulty {
        board,
        irq_lost: true,
        stuck_led: 0,
    };
    set_odd_values(&b);
    let e = diag::interrupt_self_test(&b, &info, Duration::from_millis(200)).unwrap_err();
    match e {
        DiagError::NotDelivered { waited, level } => {
            assert_eq!((waited, level), (Duration::from_millis(200), 1));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("IRQ_STATUS.EVENT = 1"), "{e}");
    assert_odd_values(&b);
}

#[test]
fn a_running_generator_is_left_alone() {
    let b = sim();
    let info = pynq_mqtt_driver::probe(b.as_ref()).unwrap();
    let endless = Burst {
        count: 0,
        period: 100_000,
        pattern: 1,
    };
    diag::generator_burst(b.as_ref(), endless).unwrap();
    let e = diag::interrupt_self_test(b.as_ref(), &info, PATIENCE).unwrap_err();
    assert!(matches!(e, DiagError::GeneratorBusy), "{e:?}");
    assert!(diag::generator_running(b.as_ref()).unwrap());
}

#[test]
fn the_led_self_test_passes_and_restores_the_leds() {
    let b = sim();
    b.write(regs::LED, 0b0110).unwrap();
    assert_eq!(diag::led_self_test(b.as_ref(), 4).unwrap(), 0b0110);
    assert_eq!(b.read(regs::LED).unwrap(), 0b0110);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(b.leds(), 0b0110, "the pins too");
}

#[test]
fn a_stuck_led_is_named_and_the_leds_restored() {
    let board = sim();
    // bit 2 is on already, so that the value put back is the one written
    board.write(regs::LED, 0b0101).unwrap();
    let b = Faulty {
        board: Arc::clone(&board),
        irq_lost: false,
        stuck_led: 0b0100,
    };
    let e = diag::led_self_test(&b, 4).unwrap_err();
    assert_eq!(
        e.to_string(),
        "writing the LEDs: expected 1010, read back 1110"
    );
    assert_eq!(board.read(regs::LED).unwrap(), 0b0101);
}
