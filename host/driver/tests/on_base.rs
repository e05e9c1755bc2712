//! The base-overlay driver against the Verilated models of PYNQ's base overlay
//! (behavioural models of AXI GPIO and AXI INTC, hdl/models), both board layouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::base::{BaseBits, BaseConfig};
use pynq_mqtt_driver::{
    ButtonEvent, Driver, DriverChannels, DriverConfig, LedAction, LedCommand, LedReport,
};
use pynq_mqtt_sim::base::{BaseLayout, BaseSimConfig, SimBaseBoard};
use pynq_mqtt_sim::{stimulus, Speed};

const INTC: u32 = 0x60_0000;
const INTC_ISR: u32 = INTC;
const INTC_IER: u32 = INTC + 0x08;
const INTC_SIE: u32 = INTC + 0x10;
const INTC_CIE: u32 = INTC + 0x14;
const INTC_MER: u32 = INTC + 0x1C;

fn board(layout: BaseLayout, speed: Speed, stim: &str) -> Arc<SimBaseBoard> {
    Arc::new(
        SimBaseBoard::start(BaseSimConfig {
            speed,
            stimulus: stimulus::parse(stim, "test", 6).unwrap(),
            layout,
        })
        .unwrap(),
    )
}

fn bits(layout: BaseLayout) -> BaseBits {
    match layout {
        BaseLayout::Z1 => BaseBits::Z1,
        BaseLayout::Z2 => BaseBits::Z2,
    }
}

fn start(b: &Arc<SimBaseBoard>, debounce_us: u32) -> (Driver, DriverChannels) {
    Driver::start_base(
        b.clone(),
        &DriverConfig::default(),
        &BaseConfig {
            bits: bits(b.layout()),
            debounce_us,
        },
    )
    .unwrap()
}

fn next_event(ch: &DriverChannels) -> Option<ButtonEvent> {
    ch.events.recv_timeout(Duration::from_secs(5)).ok()
}

fn edges_arrive_in_order(layout: BaseLayout) {
    // 120 edges on all six inputs, 200 simulated µs apart, sometimes two at once (one
    // wake takes some 50 cycles of the 1 MHz model clock: edges closer than that on one
    // input would be missed pulses)
    let mut text = String::new();
    let mut expect = Vec::new();
    let mut level = [false; 6];
    let mut t = 100u64;
    for k in 0..100usize {
        let i = (k * 7) % 6;
        level[i] = !level[i];
        text.push_str(&format!("{t} {i} {}\n", u8::from(level[i])));
        expect.push((i as u8, level[i]));
        if k % 5 == 0 {
            let j = (i + 3) % 6;
            level[j] = !level[j];
            text.push_str(&format!("{t} {j} {}\n", u8::from(level[j])));
            expect.push((j as u8, level[j]));
        }
        t += 200;
    }
    let b = board(layout, Speed::Fast, &text);
    let (driver, ch) = start(&b, 0);
    b.start_stimulus();
    let mut got = Vec::new();
    while got.len() < expect.len() {
        match next_event(&ch) {
            Some(e) => got.push(e),
            None => break,
        }
    }
    assert_eq!(got.len(), expect.len(), "every edge, none more");
    // each input's edges in order; between inputs, edges read in one wake carry one
    // host stamp and come block by block (the base overlay has no event order of its
    // own to keep)
    for i in 0..6u8 {
        let mine = |v: &[(u8, bool)]| -> Vec<bool> {
            v.iter().filter(|e| e.0 == i).map(|e| e.1).collect()
        };
        let seen: Vec<(u8, bool)> = got.iter().map(|e| (e.input, e.level)).collect();
        assert_eq!(mine(&seen), mine(&expect), "input {i}");
    }
    for (n, e) in got.iter().enumerate() {
        assert_eq!(e.seq, n as u64, "host sequence numbers count every event");
        assert!(e.utc_us.is_some());
        if n > 0 {
            assert!(e.ts_us >= got[n - 1].ts_us, "host stamps never go back");
        }
    }
    let s = driver.stats().snapshot();
    assert_eq!(s.captured, expect.len() as u64);
    assert_eq!(s.missed_pulses, 0);
    assert_eq!(s.bounces, 0);
    assert_eq!(
        driver.levels().inputs(),
        level
            .iter()
            .enumerate()
            .fold(0, |m, (i, &l)| m | u32::from(l) << i)
    );
    driver.stop();
}

#[test]
fn z1_edges_arrive_in_order() {
    edges_arrive_in_order(BaseLayout::Z1);
}

#[test]
fn z2_edges_arrive_in_order() {
    edges_arrive_in_order(BaseLayout::Z2);
}

#[test]
fn bounce_inside_the_lockout_is_counted_not_published() {
    let b = board(BaseLayout::Z1, Speed::RealTime(1.0), "");
    let (driver, ch) = start(&b, 200_000);
    // a press that bounces for a few ms after its first contact, in wall time (the
    // lockout is host time); the first contact is waited for, so that a loaded host
    // cannot take contacts before the lockout began for a missed press
    b.set_input(1, true);
    let press = next_event(&ch).expect("the press");
    assert_eq!((press.input, press.level), (1, true));
    for level in [false, true, false, true] {
        b.set_input(1, level);
        std::thread::sleep(Duration::from_millis(3));
    }
    // past the lockout: the level stayed pressed, no other event
    std::thread::sleep(Duration::from_millis(400));
    assert!(ch.events.try_recv().is_err(), "bounce is not published");
    let s = driver.stats().snapshot();
    assert!(s.bounces >= 1, "bounces counted: {}", s.bounces);
    assert_eq!(s.missed_pulses, 0, "bounce is not a missed press");
    // a release that bounces ends in one release
    b.set_input(1, false);
    let release = next_event(&ch).expect("the release");
    assert_eq!((release.input, release.level, release.seq), (1, false, 1));
    let before = driver.stats().snapshot().bounces;
    for level in [true, false] {
        b.set_input(1, level);
        std::thread::sleep(Duration::from_millis(3));
    }
    std::thread::sleep(Duration::from_millis(400));
    assert!(ch.events.try_recv().is_err());
    assert!(driver.stats().snapshot().bounces > before);
    assert_eq!(driver.stats().snapshot().missed_pulses, 0);
    driver.stop();
}

#[test]
fn a_level_that_ends_the_lockout_changed_passes_then() {
    // The switch goes off once its "on" has been handed up, inside a lockout long
    // enough that this holds on any host: a switch held a fixed few milliseconds is a
    // missed pulse wherever the interrupt takes longer than that to serve (10 tests
    // on 2 cores under qemu-arm).
    let lockout_us = 1_000_000;
    let b = board(BaseLayout::Z2, Speed::RealTime(1.0), "");
    let (driver, ch) = start(&b, lockout_us);
    b.set_input(4, true);
    let on = next_event(&ch).expect("switch on");
    assert_eq!((on.input, on.level), (4, true));
    b.set_input(4, false);
    let started = Instant::now();
    let off = next_event(&ch).expect("switch off, at the lockout's end");
    assert_eq!((off.input, off.level), (4, false));
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "held for the lockout"
    );
    assert!(
        off.ts_us - on.ts_us >= u64::from(lockout_us),
        "stamped when it passed"
    );
    assert_eq!(driver.stats().snapshot().missed_pulses, 0);
    driver.stop();
}

#[test]
fn a_press_shorter_than_the_interrupt_latency_is_counted_missed() {
    let b = board(BaseLayout::Z1, Speed::RealTime(1.0), "");
    let (driver, ch) = start(&b, 5_000);
    // three clock cycles high, back low before any interrupt is served
    b.pulse_input(2, 3);
    let t = Instant::now();
    while driver.stats().snapshot().missed_pulses == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(driver.stats().snapshot().missed_pulses, 1);
    assert!(
        ch.events.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing invented"
    );
    // the next real press is an event as ever
    b.set_input(2, true);
    let e = next_event(&ch).expect("press");
    assert_eq!((e.input, e.level, e.seq), (2, true, 0));
    driver.stop();
}

#[test]
fn led_writes_land_on_the_pins() {
    let b = board(BaseLayout::Z2, Speed::RealTime(1.0), "");
    let (driver, ch) = start(&b, 0);
    let initial: Vec<LedReport> = (0..10)
        .map(|_| ch.leds.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert!(initial.iter().all(|r| !r.on));
    for led in [0u8, 3, 4, 6, 9] {
        ch.commands
            .send(LedCommand {
                led,
                action: LedAction::On,
            })
            .unwrap();
        let r = ch.leds.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(r, LedReport { led, on: true });
    }
    assert_eq!(b.leds(), 1 | 1 << 3 | 1 << 4 | 1 << 6 | 1 << 9);
    ch.commands
        .send(LedCommand {
            led: 6,
            action: LedAction::Toggle,
        })
        .unwrap();
    assert_eq!(
        ch.leds.recv_timeout(Duration::from_secs(5)).unwrap(),
        LedReport { led: 6, on: false }
    );
    ch.commands
        .send(LedCommand {
            led: 0,
            action: LedAction::Off,
        })
        .unwrap();
    assert_eq!(
        ch.leds.recv_timeout(Duration::from_secs(5)).unwrap(),
        LedReport { led: 0, on: false }
    );
    assert_eq!(b.leds(), 1 << 3 | 1 << 4 | 1 << 9);
    // LD4 blue is the RGB block's bit 0, LD5 red its bit 5
    assert_eq!(b.read32(0x4_0000).unwrap(), 1 | 1 << 5);
    ch.commands
        .send(LedCommand {
            led: 10,
            action: LedAction::On,
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(driver.stats().snapshot().led_rejected, 1);
    driver.stop();
}

#[test]
fn other_interrupt_inputs_are_never_touched() {
    for layout in [BaseLayout::Z1, BaseLayout::Z2] {
        let b = board(layout, Speed::RealTime(1.0), "");
        let ours = 1u32 << bits(layout).buttons | 1 << bits(layout).switches;
        // a notebook's interrupts: inputs 0 and 3 enabled, the controller on
        let theirs = 1u32 << 0 | 1 << 3;
        b.write32(INTC_SIE, theirs).unwrap();
        b.write32(INTC_MER, 3).unwrap();
        let (driver, ch) = start(&b, 0);
        assert_eq!(
            b.read32(INTC_IER).unwrap(),
            theirs | ours,
            "{layout}: ours added"
        );
        // input 3 pending, not ours: counted, never acknowledged, and ours still work
        b.set_other_irqs(1 << 3);
        b.step(4);
        b.set_input(0, true);
        let e = next_event(&ch).expect("press while another input is pending");
        assert_eq!((e.input, e.level), (0, true));
        let t = Instant::now();
        while driver.stats().snapshot().foreign_irqs == 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(driver.stats().snapshot().foreign_irqs > 0, "{layout}");
        assert_eq!(
            b.read32(INTC_ISR).unwrap() & theirs,
            1 << 3,
            "{layout}: theirs not acknowledged"
        );
        b.set_other_irqs(0);
        driver.stop();
        assert_eq!(
            b.read32(INTC_IER).unwrap(),
            theirs,
            "{layout}: only ours disabled at stop"
        );
        assert_eq!(
            b.read32(INTC_MER).unwrap() & 3,
            3,
            "{layout}: the controller stays on"
        );
    }
}

#[test]
fn enables_cleared_by_a_notebook_are_set_again() {
    let b = board(BaseLayout::Z1, Speed::RealTime(1.0), "");
    let (driver, ch) = start(&b, 0);
    let ours = 1u32 << 11 | 1 << 12;
    b.write32(INTC_CIE, ours).unwrap();
    b.set_input(5, true);
    // no interrupt now: the next timeout's look finds the change and the enables
    let e = next_event(&ch).expect("the change, found by the timeout's look");
    assert_eq!((e.input, e.level), (5, true));
    assert!(driver.stats().snapshot().intc_reenabled >= 1);
    assert_eq!(b.read32(INTC_IER).unwrap() & ours, ours);
    driver.stop();
}

/// The pynq_mqtt overlay's peripheral where the base overlay's blocks should be (its
/// 64 KiB window repeated over the span): another bitstream.
struct Elsewhere(pynq_mqtt_sim::SimBoard);

impl Bus for Elsewhere {
    fn read32(&self, offset: u32) -> Result<u32, pynq_mqtt_bus::BusError> {
        self.0.read32(offset & 0xFFFF)
    }
    fn write32(&self, offset: u32, value: u32) -> Result<(), pynq_mqtt_bus::BusError> {
        self.0.write32(offset & 0xFFFF, value)
    }
    fn wait_irq(&self, t: Duration) -> Result<pynq_mqtt_bus::IrqWait, pynq_mqtt_bus::BusError> {
        self.0.wait_irq(t)
    }
    fn rearm_irq(&self) -> Result<(), pynq_mqtt_bus::BusError> {
        self.0.rearm_irq()
    }
    fn wake_waiter(&self) {
        self.0.wake_waiter()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[test]
fn another_bitstream_is_refused_in_one_line() {
    let sim = pynq_mqtt_sim::SimBoard::start(pynq_mqtt_sim::SimConfig::default()).unwrap();
    let err = Driver::start_base(
        Arc::new(Elsewhere(sim)),
        &DriverConfig::default(),
        &BaseConfig {
            bits: BaseBits::Z1,
            debounce_us: 0,
        },
    )
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("base overlay is not what is loaded"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

/// The base overlay's models until `gone` is set; then a PL that answers 0 everywhere,
/// as another bitstream without blocks at these addresses would.
struct Reloaded {
    board: Arc<SimBaseBoard>,
    gone: std::sync::atomic::AtomicBool,
    /// Writes after `gone`: must stay 0.
    late_writes: std::sync::atomic::AtomicUsize,
}

impl Bus for Reloaded {
    fn read32(&self, offset: u32) -> Result<u32, pynq_mqtt_bus::BusError> {
        if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
        self.board.read32(offset)
    }
    fn write32(&self, offset: u32, value: u32) -> Result<(), pynq_mqtt_bus::BusError> {
        if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
            self.late_writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Ok(());
        }
        self.board.write32(offset, value)
    }
    fn wait_irq(&self, t: Duration) -> Result<pynq_mqtt_bus::IrqWait, pynq_mqtt_bus::BusError> {
        self.board.wait_irq(t)
    }
    fn rearm_irq(&self) -> Result<(), pynq_mqtt_bus::BusError> {
        self.board.rearm_irq()
    }
    fn wake_waiter(&self) {
        self.board.wake_waiter()
    }
    fn describe(&self) -> String {
        self.board.describe()
    }
}

#[test]
fn another_bitstream_under_a_running_driver_stops_it_without_a_write() {
    let bus = Arc::new(Reloaded {
        board: board(BaseLayout::Z1, Speed::RealTime(1.0), ""),
        gone: std::sync::atomic::AtomicBool::new(false),
        late_writes: std::sync::atomic::AtomicUsize::new(0),
    });
    let (driver, ch) = Driver::start_base(
        bus.clone(),
        &DriverConfig::default(),
        &BaseConfig {
            bits: BaseBits::Z1,
            debounce_us: 0,
        },
    )
    .unwrap();
    bus.gone.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while driver.lost().get().is_none() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        driver.lost().get(),
        Some(&pynq_mqtt_driver::DeviceLost::BaseReplaced { tri: 0 })
    );
    // an LED command now writes nothing (the LED thread has ended: the bridge learns
    // so), and neither does the stop
    let _ = ch.commands.send(LedCommand {
        led: 0,
        action: LedAction::On,
    });
    std::thread::sleep(Duration::from_millis(100));
    driver.stop();
    assert_eq!(bus.late_writes.load(std::sync::atomic::Ordering::SeqCst), 0);
}
