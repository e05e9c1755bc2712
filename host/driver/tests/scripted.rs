//! The driver against a scripted peripheral: a model of the register behaviour the
//! driver relies on (pop on read, write-to-subtract DROPPED, level interrupt with UIO
//! masking) that records every access, so the tests can look at the order of reads,
//! writes and re-arms, and reach states the RTL needs hours for (a 32-bit time wrap).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_driver::{
    probe, DeviceLost, Driver, DriverConfig, DriverError, LedAction, LedCommand, LedReport,
};
use pynq_mqtt_regs::{self as regs, offset, EvtPop, Params, Version};

/// How long a test waits for something that must happen (never reached when right).
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read(u32, u32),
    Write(u32, u32),
    Fired,
    Rearm,
    /// A [`Bus::read_many`] (or `read_many_if`) of this many offsets begins: one
    /// hand-over where the bus is another thread.
    Batch(usize),
}

#[derive(Default)]
struct Model {
    regs: HashMap<u32, u32>,
    fifo: VecDeque<(u32, u32)>,
    last_ts: u32,
    /// UIO: false from a delivered interrupt until the re-arm.
    masked: bool,
    wake: bool,
    /// EVT_POP returns this forever (a garbage-answering bus).
    stuck_pop: Option<u32>,
    /// The interrupt line is high whatever the FIFO holds (a line that is not ours).
    line_forced: bool,
    /// A stream that never lets the FIFO empty: each pop brings the event with this
    /// sequence number (then the next).
    stream: Option<u16>,
    trace: Vec<Op>,
}

impl Model {
    fn line(&self) -> bool {
        self.line_forced
            || (self.regs.get(&offset::IRQ_ENABLE).copied().unwrap_or(0) & 1 == 1
                && (!self.fifo.is_empty() || self.stuck_pop.is_some()))
    }
}

fn event_word(input: u8, level: bool, seq: u16) -> u32 {
    EvtPop(0)
        .with_valid(true)
        .with_input(input)
        .with_level(level)
        .with_seq(seq)
        .0
}

#[derive(Default)]
struct Scripted {
    m: Mutex<Model>,
    cv: Condvar,
}

impl Scripted {
    fn new() -> Arc<Self> {
        let s = Arc::new(Self::default());
        {
            let mut m = s.m.lock().unwrap();
            m.regs.insert(offset::ID, regs::ID_VALUE);
            m.regs.insert(
                offset::VERSION,
                Version(0)
                    .with_major(regs::VERSION_MAJOR)
                    .with_minor(regs::VERSION_MINOR)
                    .0,
            );
            m.regs.insert(
                offset::PARAMS,
                Params(0)
                    .with_n_inputs(4)
                    .with_n_leds(4)
                    .with_fifo_depth_log2(5)
                    .0,
            );
            m.regs.insert(offset::CLK_HZ, 100_000_000);
        }
        s
    }

    fn with<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let r = f(&mut self.m.lock().unwrap());
        self.cv.notify_all();
        r
    }

    fn set(&self, reg: u32, value: u32) {
        self.with(|m| m.regs.insert(reg, value));
    }

    fn get(&self, reg: u32) -> u32 {
        self.with(|m| m.regs.get(&reg).copied().unwrap_or(0))
    }

    fn push(&self, input: u8, level: bool, seq: u16, ts: u32) {
        let word = event_word(input, level, seq);
        self.with(|m| m.fifo.push_back((word, ts)));
    }

    fn trace(&self) -> Vec<Op> {
        self.with(|m| m.trace.clone())
    }

    /// Waits until `pred` holds; false if it never does.
    fn wait_for(&self, pred: impl Fn(&Model) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let mut m = self.m.lock().unwrap();
        while !pred(&m) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            m = self.cv.wait_timeout(m, left).unwrap().0;
        }
        true
    }
}

impl Bus for Scripted {
    fn read32(&self, off: u32) -> Result<u32, BusError> {
        Ok(self.with(|m| {
            let v = match off {
                offset::EVT_POP => match (m.stuck_pop, m.fifo.pop_front()) {
                    (Some(w), _) => w,
                    (None, Some((w, ts))) => {
                        m.last_ts = ts;
                        if let Some(seq) = m.stream {
                            m.fifo.push_back((event_word(0, seq % 2 == 0, seq), ts + 1));
                            m.stream = Some(seq.wrapping_add(1));
                        }
                        w
                    }
                    (None, None) => 0,
                },
                offset::EVT_TS => m.last_ts,
                // a FIFO that never empties reads full
                offset::FIFO_LEVEL => match m.stuck_pop {
                    Some(_) => 32,
                    None => m.fifo.len() as u32,
                },
                _ => m.regs.get(&off).copied().unwrap_or(0),
            };
            m.trace.push(Op::Read(off, v));
            v
        }))
    }

    fn write32(&self, off: u32, value: u32) -> Result<(), BusError> {
        self.with(|m| {
            m.trace.push(Op::Write(off, value));
            let led = m.regs.get(&offset::LED).copied().unwrap_or(0);
            match off {
                offset::DROPPED => {
                    let d = m.regs.entry(off).or_default();
                    *d = d.saturating_sub(value);
                }
                offset::LED_SET => drop(m.regs.insert(offset::LED, led | value)),
                offset::LED_CLR => drop(m.regs.insert(offset::LED, led & !value)),
                offset::LED_TOGGLE => drop(m.regs.insert(offset::LED, led ^ value)),
                _ => drop(m.regs.insert(off, value)),
            }
        });
        Ok(())
    }

    fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        self.with(|m| m.trace.push(Op::Batch(offsets.len())));
        for &offset in offsets {
            out.push(self.read32(offset)?);
        }
        Ok(())
    }

    fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        self.with(|m| m.trace.push(Op::Batch(offsets.len())));
        for (i, &offset) in offsets.iter().enumerate() {
            out.push(self.read32(offset)?);
            if i == 0 && out.last() != Some(&expect) {
                break;
            }
        }
        Ok(())
    }

    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        let deadline = Instant::now() + timeout;
        let mut m = self.m.lock().unwrap();
        loop {
            if !m.masked && m.line() {
                m.masked = true;
                m.trace.push(Op::Fired);
                drop(m);
                self.cv.notify_all();
                return Ok(IrqWait::Fired);
            }
            if std::mem::take(&mut m.wake) {
                return Ok(IrqWait::TimedOut);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(IrqWait::TimedOut);
            }
            m = self.cv.wait_timeout(m, left).unwrap().0;
        }
    }

    fn rearm_irq(&self) -> Result<(), BusError> {
        self.with(|m| {
            m.masked = false;
            m.trace.push(Op::Rearm);
        });
        Ok(())
    }

    fn wake_waiter(&self) {
        self.with(|m| m.wake = true);
    }

    fn describe(&self) -> String {
        "scripted".into()
    }
}

fn start(bus: &Arc<Scripted>, config: DriverConfig) -> (Driver, pynq_mqtt_driver::DriverChannels) {
    Driver::start(
        Arc::clone(bus) as Arc<dyn Bus>,
        &DriverConfig {
            // interrupts only: a timeout drain would blur what the trace shows
            irq_timeout: Duration::from_secs(3600),
            ..config
        },
    )
    .unwrap()
}

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Every delivered interrupt is followed, before its re-arm, by pops that end in an
/// empty one; no re-arm comes without an interrupt before it.
fn assert_rearms_follow_empty_pops(trace: &[Op]) {
    let mut in_irq = false;
    let mut last_pop_valid = None;
    for (k, op) in trace.iter().enumerate() {
        match *op {
            Op::Fired => {
                assert!(!in_irq, "op {k}: interrupt while masked");
                in_irq = true;
                last_pop_valid = None;
            }
            Op::Read(offset::EVT_POP, v) if in_irq => last_pop_valid = Some(EvtPop(v).valid()),
            Op::Rearm => {
                assert!(in_irq, "op {k}: re-arm without an interrupt");
                assert_eq!(
                    last_pop_valid,
                    Some(false),
                    "op {k}: re-armed before the FIFO read empty: {trace:?}"
                );
                in_irq = false;
            }
            _ => {}
        }
    }
}

#[test]
fn the_fifo_reads_empty_before_every_rearm() {
    let bus = Scripted::new();
    let (driver, ch) = start(&bus, DriverConfig::default());
    for round in 0..3u16 {
        // a burst lands in the FIFO at once
        bus.with(|m| {
            for k in 0..3 {
                let w = EvtPop(0)
                    .with_valid(true)
                    .with_input(k as u8)
                    .with_seq(round * 3 + k);
                m.fifo.push_back((w.0, 1000));
            }
        });
        for k in 0..3 {
            let e = ch.events.recv_timeout(PATIENCE).unwrap();
            assert_eq!(e.seq, u64::from(round * 3 + k));
        }
        assert!(bus.wait_for(
            |m| m.trace.iter().filter(|o| **o == Op::Rearm).count() == round as usize + 1
        ));
    }
    driver.stop();
    let trace = bus.trace();
    assert_rearms_follow_empty_pops(&trace);
    let fired = trace.iter().filter(|o| **o == Op::Fired).count();
    assert_eq!(fired, 3, "one interrupt per burst, no storm: {trace:?}");
}

#[test]
fn timestamps_extend_across_the_32_bit_wrap() {
    let bus = Scripted::new();
    bus.set(offset::TIME, u32::MAX - 1000);
    let (driver, ch) = start(&bus, DriverConfig::default());
    bus.push(0, true, 0, u32::MAX - 500);
    let a = ch.events.recv_timeout(PATIENCE).unwrap();
    assert_eq!(a.ts_us, u64::from(u32::MAX) - 500);
    // the counter wrapped: 1200 us later
    bus.set(offset::TIME, 199);
    bus.push(0, false, 1, 100);
    let b = ch.events.recv_timeout(PATIENCE).unwrap();
    assert_eq!(b.ts_us, (1u64 << 32) + 100);
    assert_eq!(b.ts_us - a.ts_us, 601);
    driver.stop();
}

#[test]
fn hardware_drops_and_sequence_gaps_become_counted_losses() {
    let bus = Scripted::new();
    // losses from before the start are reported and cleared, not counted
    bus.set(offset::DROPPED, 7);
    let (driver, ch) = start(&bus, DriverConfig::default());
    assert_eq!(bus.get(offset::DROPPED), 0);
    let stats = driver.stats();
    assert_eq!(load(&stats.hw_dropped), 0);

    bus.push(0, true, 0, 10);
    bus.push(0, false, 1, 20);
    assert_eq!(ch.events.recv_timeout(PATIENCE).unwrap().seq, 0);
    assert_eq!(ch.events.recv_timeout(PATIENCE).unwrap().seq, 1);
    // the FIFO overflowed: 3 events lost, their sequence numbers skipped
    bus.with(|m| {
        m.regs.insert(offset::DROPPED, 3);
        m.fifo
            .push_back((EvtPop(0).with_valid(true).with_seq(5).0, 30));
    });
    assert_eq!(ch.events.recv_timeout(PATIENCE).unwrap().seq, 5);
    driver.stop();
    assert_eq!(load(&stats.hw_dropped), 3);
    assert_eq!(load(&stats.seq_lost), 3);
    assert_eq!(load(&stats.captured), 3);
    // written back, so the register counts from zero again and never saturates
    assert_eq!(bus.get(offset::DROPPED), 0);
    assert!(bus.trace().contains(&Op::Write(offset::DROPPED, 3)));
}

#[test]
fn a_full_channel_counts_every_loss_and_leds_keep_working() {
    let bus = Scripted::new();
    let (driver, ch) = start(
        &bus,
        DriverConfig {
            channel_capacity: 4,
            ..DriverConfig::default()
        },
    );
    for k in 0..20u16 {
        bus.push((k % 4) as u8, k % 8 < 4, k, u32::from(k));
    }
    let stats = driver.stats();
    assert!(bus.wait_for(|m| m.fifo.is_empty()));
    // nobody reads events, and still an LED command goes through at once
    for led in 0..4 {
        assert_eq!(
            ch.leds.recv_timeout(PATIENCE).unwrap(),
            LedReport { led, on: false }
        );
    }
    ch.commands
        .send(LedCommand {
            led: 1,
            action: LedAction::On,
        })
        .unwrap();
    assert_eq!(
        ch.leds.recv_timeout(PATIENCE).unwrap(),
        LedReport { led: 1, on: true }
    );
    assert_eq!(bus.get(offset::LED), 0b10);
    driver.stop();
    assert_eq!(load(&stats.captured), 20);
    assert_eq!(load(&stats.channel_full), 16);
    let got: Vec<u64> = ch.events.try_iter().map(|e| e.seq).collect();
    assert_eq!(got, vec![0, 1, 2, 3], "the oldest are kept, in order");
}

#[test]
fn stop_returns_while_events_never_stop_coming() {
    let bus = Scripted::new();
    let (driver, ch) = start(&bus, DriverConfig::default());
    bus.with(|m| m.stuck_pop = Some(EvtPop(0).with_valid(true).0));
    assert!(bus.wait_for(|m| m.trace.len() > 1000));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        driver.stop();
        tx.send(()).unwrap();
    });
    assert!(rx.recv_timeout(PATIENCE).is_ok(), "stop hangs");
    drop(ch);
    assert_eq!(
        bus.get(offset::IRQ_ENABLE),
        0,
        "stop disables the interrupt"
    );
}

/// Polls `f` until it holds; for states that no later bus access would signal.
fn eventually(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn a_peripheral_that_vanishes_mid_drain_is_an_error_not_a_flood() {
    let bus = Scripted::new();
    let (driver, ch) = start(&bus, DriverConfig::default());
    let stats = driver.stats();
    // another design loaded under the running daemon: every read answers all ones
    let mark = bus.with(|m| {
        m.regs.insert(offset::ID, u32::MAX);
        m.regs.insert(offset::DROPPED, u32::MAX);
        m.stuck_pop = Some(u32::MAX);
        m.trace.len()
    });
    // the driver stops there, no retry loop over another design's registers; it
    // then makes no bus access that would wake `wait_for`, so poll
    let lost = driver.lost();
    assert!(eventually(|| lost.get().is_some()));
    assert_eq!(load(&stats.bus_errors), 1);
    assert_eq!(lost.get(), Some(&DeviceLost::Replaced { id: u32::MAX }));
    driver.stop();
    assert_eq!(load(&stats.captured), 0, "garbage became events");
    assert_eq!(ch.events.try_iter().count(), 0);
    // nothing of the other design is written, nor counted as our drops
    let after: Vec<Op> = bus.trace()[mark..].to_vec();
    assert!(
        !after.iter().any(|op| matches!(op, Op::Write(..))),
        "wrote to another design: {after:?}"
    );
    assert_eq!(load(&stats.hw_dropped), 0, "its registers became drops");
    // with the ID intact, an event that cannot be (too few ones to look like garbage
    // everywhere) is still caught by the periodic identity check
    let bus = Scripted::new();
    let (driver, ch) = start(&bus, DriverConfig::default());
    let stats = driver.stats();
    bus.with(|m| m.stuck_pop = Some(EvtPop(0).with_valid(true).with_input(1).0));
    assert!(bus.wait_for(|_| load(&stats.captured) >= 10));
    let mark = bus.with(|m| {
        m.regs.insert(offset::ID, 0);
        m.regs.insert(offset::DROPPED, u32::MAX);
        m.trace.len()
    });
    assert!(eventually(|| load(&stats.bus_errors) >= 1));
    driver.stop();
    drop(ch);
    // found gone inside a drain: the drain's end touches nothing either
    let after: Vec<Op> = bus.trace()[mark..].to_vec();
    assert!(
        !after.iter().any(|op| matches!(op, Op::Write(..))),
        "wrote to another design: {after:?}"
    );
    assert_eq!(load(&stats.hw_dropped), 0, "its registers became drops");
}

#[test]
fn an_interrupt_that_is_not_ours_is_counted_and_events_still_flow() {
    let bus = Scripted::new();
    let (driver, ch) = start(&bus, DriverConfig::default());
    let stats = driver.stats();
    bus.with(|m| m.line_forced = true);
    assert!(bus.wait_for(|_| load(&stats.empty_irqs) >= 100));
    bus.push(2, true, 0, 5);
    let e = ch.events.recv_timeout(PATIENCE).unwrap();
    assert_eq!((e.input, e.level), (2, true));
    bus.with(|m| m.line_forced = false);
    driver.stop();
    assert_rearms_follow_empty_pops(&bus.trace());
}

#[test]
fn identity_and_version_are_checked_with_the_fix_named() {
    let bus = Scripted::new();
    let info = probe(bus.as_ref()).unwrap();
    assert_eq!((info.n_inputs, info.n_leds, info.fifo_depth), (4, 4, 32));

    bus.set(offset::ID, 0xDEAD_BEEF);
    let e = probe(bus.as_ref()).unwrap_err();
    assert!(matches!(
        e,
        DriverError::WrongId {
            found: 0xDEAD_BEEF,
            ..
        }
    ));
    let msg = e.to_string();
    assert!(
        msg.contains("0xdeadbeef") && msg.contains("load the pynq_mqtt overlay"),
        "{msg}"
    );

    bus.set(offset::ID, regs::ID_VALUE);
    let v = |major, minor| Version(0).with_major(major).with_minor(minor).0;
    bus.set(offset::VERSION, v(regs::VERSION_MAJOR + 1, 0));
    let msg = probe(bus.as_ref()).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("{}.0", regs::VERSION_MAJOR + 1))
            && msg.contains(&format!("{}.{}", regs::VERSION_MAJOR, regs::VERSION_MINOR))
            && msg.contains("load the overlay that matches"),
        "{msg}"
    );
    if regs::VERSION_MINOR > 0 {
        bus.set(
            offset::VERSION,
            v(regs::VERSION_MAJOR, regs::VERSION_MINOR - 1),
        );
        assert!(matches!(
            probe(bus.as_ref()),
            Err(DriverError::WrongVersion { .. })
        ));
    }
    // a later minor only adds registers
    bus.set(
        offset::VERSION,
        v(regs::VERSION_MAJOR, regs::VERSION_MINOR + 1),
    );
    assert!(probe(bus.as_ref()).is_ok());
}

#[test]
fn the_levels_are_read_at_start_and_again_when_a_wake_finds_them_changed() {
    let bus = Scripted::new();
    // a switch held high, and no event to say so: only the start's reading can
    bus.set(offset::INPUTS, 0b1000);
    let (driver, ch) = start(&bus, DriverConfig::default());
    let first = ch.levels.recv_timeout(PATIENCE).unwrap();
    assert_eq!(first.0, 0b1000);
    assert!(
        !bus.trace().contains(&Op::Fired),
        "read before any interrupt"
    );
    bus.set(offset::INPUTS, 0b1001);
    bus.push(0, true, 0, 10);
    assert_eq!(ch.events.recv_timeout(PATIENCE).unwrap().input, 0);
    assert_eq!(ch.levels.recv_timeout(PATIENCE).unwrap().0, 0b1001);
    // after events the reading goes up even unchanged: the hardware has the last word
    // over edges from before the start or ones that were lost
    bus.push(0, false, 1, 20);
    ch.events.recv_timeout(PATIENCE).unwrap();
    assert_eq!(ch.levels.recv_timeout(PATIENCE).unwrap().0, 0b1001);
    // a wake without events reports only a change (stop joins the thread, so the
    // wake has been served in full when the channel is looked at)
    bus.with(|m| m.wake = true);
    assert!(bus.wait_for(|m| !m.wake));
    driver.stop();
    assert!(ch.levels.try_recv().is_err());
    assert_rearms_follow_empty_pops(&bus.trace());
}

#[test]
fn with_coalescing_a_stream_that_never_empties_is_taken_an_interrupt_at_a_time() {
    // coalescing by count and age: the line rises again for the events a drain leaves,
    // so a drain ends once fewer than the count wait instead of chasing the stream
    let bus = Scripted::new();
    let (driver, ch) = start(
        &bus,
        DriverConfig {
            coalesce_count: 16,
            coalesce_us: 1000,
            // the scripted stream never blocks the drain: real-time, it would hold the
            // test's own thread off the core until the channel fills (cold CI, 4-input
            // shape: 65,536 events in 50,362 interrupts), which is not what this tests
            rt_priority: 0,
            ..DriverConfig::default()
        },
    );
    let stats = driver.stats();
    // 8 events waiting, and every pop brings the next: the FIFO never reads empty
    bus.with(|m| {
        for seq in 0..8u16 {
            m.fifo
                .push_back((event_word(0, seq % 2 == 0, seq), 100 + u32::from(seq)));
        }
        m.stream = Some(8);
    });
    let rearms = |m: &Model| m.trace.iter().filter(|op| **op == Op::Rearm).count();
    assert!(
        bus.wait_for(|m| rearms(m) >= 3),
        "no re-arm: the drain chased the stream"
    );
    driver.stop();
    let trace = bus.trace();
    // no pop read empty, and each interrupt took at least the events waiting
    let pops: Vec<bool> = trace
        .iter()
        .filter_map(|op| match *op {
            Op::Read(offset::EVT_POP, v) => Some(EvtPop(v).valid()),
            _ => None,
        })
        .collect();
    assert!(pops.iter().all(|&v| v), "a pop read empty");
    let irqs = load(&stats.irqs);
    assert!(irqs >= 3, "{irqs} interrupts");
    let got: Vec<u64> = ch.events.try_iter().map(|e| e.seq).collect();
    assert!(
        got.len() as u64 >= 8 * irqs,
        "{} events in {irqs} interrupts",
        got.len()
    );
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "out of order or gaps"
    );
    assert_eq!(load(&stats.seq_lost), 0);
}

#[test]
fn an_interrupt_that_brings_no_more_than_the_count_is_one_batch_of_reads() {
    // where every batch is a hand-over (the simulator), an interrupt costs one: the
    // identity, TIME, the pops the count expects and the closing reads go together
    let bus = Scripted::new();
    let (driver, ch) = start(
        &bus,
        DriverConfig {
            coalesce_count: 8,
            coalesce_us: 1000,
            ..DriverConfig::default()
        },
    );
    let stats = driver.stats();
    let mut seq = 0u16;
    for round in 0..4usize {
        // a drain may open with the wall-clock reading (ID and TIME, every 100 ms) instead
        let mark = bus.trace().len();
        let n = 1 + round * 2;
        bus.with(|m| {
            for _ in 0..n {
                m.fifo
                    .push_back((event_word(0, seq.is_multiple_of(2), seq), 100));
                seq += 1;
            }
        });
        for _ in 0..n {
            ch.events.recv_timeout(PATIENCE).unwrap();
        }
        assert!(bus.wait_for(|m| m.trace[mark..].contains(&Op::Rearm)));
        let ops = bus.trace()[mark..].to_vec();
        let batches: Vec<usize> = ops
            .iter()
            .filter_map(|op| match *op {
                Op::Batch(n) => Some(n),
                _ => None,
            })
            .collect();
        // ID, TIME, 8 pairs, and EVT_POP, EVT_TS, FIFO_LEVEL, DROPPED, INPUTS
        let full = 2 + 2 * 8 + 5;
        assert!(
            batches == [full] || batches == [2, 2 * 8 + 5],
            "round {round}: batches {batches:?} in {ops:?}"
        );
        // the levels were reported from the batch: no read of INPUTS of its own
        let singles = ops.iter().filter(|op| matches!(op, Op::Read(..))).count();
        assert_eq!(singles, batches.iter().sum::<usize>(), "{ops:?}");
    }
    driver.stop();
    assert_eq!(load(&stats.seq_lost), 0);
    assert_rearms_follow_empty_pops(&bus.trace());
}
