//! The driver on PYNQ's stock base overlay (`--board base`): no bitstream build, the
//! overlay's AXI GPIO blocks and its AXI interrupt controller, driven as PYNQ's own
//! `pynq/lib/axigpio.py` and `pynq/interrupt.py` drive them.
//!
//! It hands the layer above the same channels as the pynq_mqtt overlay's driver
//! (inputs 0-3 BTN0-3, 4-5 SW0-1; LEDs 0-3 LD0-3, 4-9 the RGB GPIO's bits 0-5), so the
//! MQTT bridge is the same. What the base overlay cannot give is made on the host:
//! - timestamps: the host's monotonic clock when the interrupt woke the driver (µs
//!   since the driver started; `utc_us` from the system clock at the same moment),
//!   so they carry the interrupt latency, not the moment of contact;
//! - sequence numbers: counted by the driver per event it hands up, so they never
//!   show a gap (losses are counted instead, below);
//! - debounce: the same lockout as the overlay's debouncer, in software: an input's
//!   first change passes at once, then changes are held for `debounce_us`; a level
//!   that differs at the end passes as the next change. Every change seen inside a
//!   lockout is counted in `bounces`;
//! - what it cannot see: a GPIO block whose status says "changed" while its levels
//!   read as they were has seen a level come and go between two interrupts (a press
//!   shorter than the interrupt latency). Outside a lockout that is counted in
//!   `missed_pulses` (each is at least two edges; the input is unknown: the status is
//!   per block). A status set again after the data read is cleared and the data read
//!   again, so a change that landed between the clear and the read is not counted; a
//!   pulse inside that window (a few bus transactions) is not counted either.
//!
//! Co-existence with PYNQ: only our inputs of the interrupt controller are ever
//! enabled, acknowledged or disabled (SIE/IAR/CIE with our bits; IER is never written
//! whole). An enable of ours cleared by someone else (a notebook's `Interrupt`) is
//! counted, logged and set again; pending inputs that are not ours are counted and
//! throttled, never acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender, TrySendError};
use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_regs::base::{
    intc, Gier, Gpio, IntrSet, Mer, BTNS_GPIO, LEDS_GPIO, RGBLEDS_GPIO, SWITCHES_GPIO,
};
use pynq_mqtt_regs::RegBus;
use tracing::{debug, error, info, warn};

use crate::{
    back_off, every_power_of_two, leds::LedInbox, unix_us, Bell, ButtonEvent, DeviceInfo,
    DeviceLost, Driver, DriverChannels, DriverConfig, DriverError, Flavor, InputLevels, LedAction,
    LedCommand, LedReport, Levels, LostFlag, Stats, LEVELS_QUEUE,
};

/// Inputs: BTN0-3, SW0-1.
pub const N_INPUTS: u8 = 6;
/// LEDs: LD0-3, then LD4 and LD5 blue, green, red.
pub const N_LEDS: u8 = 10;
/// The software debounce when none is set: the pynq_mqtt overlay's board config
/// (scripts/board-install) sets 5 ms.
pub const DEFAULT_DEBOUNCE_US: u32 = 5_000;

/// The interrupt controller's inputs of our two GPIO blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseBits {
    pub buttons: u8,
    pub switches: u8,
}

impl BaseBits {
    /// PYNQ-Z1's base overlay: buttons 11, switches 12. Checked against Xilinx/PYNQ's
    /// boards/Pynq-Z1/base/base.tcl (HEAD 19ed17d, Vivado 2024.1) and the v2.4 base.hwh:
    /// `concat_interrupts` In4/In5 after video (6 bits), two trace analyzers and three
    /// IOPs; the controller's irq goes to IRQ_F2P[0], PYNQ's `fabric` UIO device.
    pub const Z1: BaseBits = BaseBits {
        buttons: 11,
        switches: 12,
    };
    /// PYNQ-Z2's: buttons 13, switches 14 (`concat_interrupts` In5/In6: the Z2 adds
    /// leds_gpio's interrupt and a fourth IOP before them); checked the same way.
    pub const Z2: BaseBits = BaseBits {
        buttons: 13,
        switches: 14,
    };

    /// Both bits as a set.
    pub fn ours(self) -> IntrSet {
        IntrSet::of(&[self.buttons, self.switches])
    }
}

/// Settings of the base-overlay driver beyond [`DriverConfig`] (whose `debounce_us`
/// it does not use: the software lockout may be longer than the register's 16 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseConfig {
    pub bits: BaseBits,
    /// Software debounce lockout, µs (0: off, every change seen is an event).
    pub debounce_us: u32,
}

/// One GPIO block of inputs: which block, and where its pins sit among the inputs.
#[derive(Clone, Copy, Debug)]
struct InputBlock {
    gpio: Gpio,
    /// Input number of its bit 0.
    first: u8,
    width: u8,
}

const BLOCKS: [InputBlock; 2] = [
    InputBlock {
        gpio: BTNS_GPIO,
        first: 0,
        width: 4,
    },
    InputBlock {
        gpio: SWITCHES_GPIO,
        first: 4,
        width: 2,
    },
];

impl InputBlock {
    fn mask(self) -> u32 {
        ((1u32 << self.width) - 1) << self.first
    }
}

/// Checks that the base overlay's blocks answer where they should: the buttons' and
/// switches' GPIO report every pin an input (TRI all ones).
pub fn probe_base(bus: &dyn Bus) -> Result<DeviceInfo, DriverError> {
    let buttons = bus.read(BTNS_GPIO.tri())?;
    let switches = bus.read(SWITCHES_GPIO.tri())?;
    if buttons & 0xF != 0xF || switches & 0x3 != 0x3 {
        return Err(DriverError::NotBase { buttons, switches });
    }
    Ok(DeviceInfo {
        version_major: 0,
        version_minor: 0,
        n_inputs: N_INPUTS,
        n_leds: N_LEDS,
        fifo_depth: 0,
        clk_hz: 0,
        generator: false,
    })
}

/// Reads the inputs' levels from both blocks, bit i = input i.
fn read_levels(bus: &dyn Bus) -> Result<u32, BusError> {
    let mut levels = 0;
    for b in BLOCKS {
        levels |= (bus.read(b.gpio.data())? << b.first) & b.mask();
    }
    Ok(levels)
}

/// Reads the LEDs, numbered as on our overlay.
fn read_leds(bus: &dyn Bus) -> Result<u32, BusError> {
    Ok(bus.read(LEDS_GPIO.data())? & 0xF | (bus.read(RGBLEDS_GPIO.data())? & 0x3F) << 4)
}

/// Enables our two blocks' interrupts and our controller inputs, and clears what is
/// stale, touching nothing of the controller's other inputs.
fn enable(bus: &dyn Bus, bits: BaseBits) -> Result<(), BusError> {
    for b in BLOCKS {
        let g = b.gpio;
        let ier = bus.read(g.ier())?;
        bus.write(g.ier(), ier | 1)?;
        bus.write(g.gier(), Gier::ENABLE)?;
        let isr = bus.read(g.isr())?;
        if isr & 1 != 0 {
            bus.write(g.isr(), isr & 1)?;
        }
    }
    bus.write(intc::IAR, bits.ours())?;
    bus.write(intc::SIE, bits.ours())?;
    if !bus.read(intc::MER)?.on() {
        bus.write(intc::MER, Mer::ON)?;
    }
    Ok(())
}

/// Disables our controller inputs only.
pub(crate) fn disable(bus: &dyn Bus, ours: IntrSet) -> Result<(), BusError> {
    bus.write(intc::CIE, ours)
}

impl Driver {
    /// Checks that the base overlay is there, enables our interrupts and starts the
    /// driver threads; the channels are those of [`Driver::start`].
    pub fn start_base(
        bus: Arc<dyn Bus>,
        config: &DriverConfig,
        base: &BaseConfig,
    ) -> Result<(Driver, DriverChannels), DriverError> {
        let info = probe_base(bus.as_ref())?;
        let stats = Arc::new(Stats::default());
        stats.base_board.store(1, Ordering::Relaxed);
        let board = Arc::new(Levels::default());
        let stop = Arc::new(AtomicBool::new(false));
        let lost = LostFlag::default();
        let (ev_tx, ev_rx) = bounded(config.channel_capacity);
        let (cmd_tx, cmd_rx) = bounded::<LedCommand>(256);
        let (led_tx, led_rx) = bounded::<LedReport>(256 + usize::from(N_LEDS));
        let (levels_tx, levels_rx) = bounded::<InputLevels>(LEVELS_QUEUE);
        let bell = Bell::default();

        enable(bus.as_ref(), base.bits)?;
        let now = read_levels(bus.as_ref())?;
        board.set_inputs(now);
        let _ = levels_tx.try_send(InputLevels(now));
        let leds_now = read_leds(bus.as_ref())?;
        board.set_leds(leds_now);
        for led in 0..N_LEDS {
            let _ = led_tx.try_send(LedReport {
                led,
                on: leds_now >> led & 1 == 1,
            });
        }

        let mut pump = BasePump {
            bus: Arc::clone(&bus),
            stats: Arc::clone(&stats),
            tx: ev_tx,
            levels_tx,
            board: Arc::clone(&board),
            lost: lost.clone(),
            ours: base.bits.ours(),
            debounce: Duration::from_micros(u64::from(base.debounce_us)),
            origin: Instant::now(),
            seen: now,
            out: now,
            sent_levels: Some(now),
            lockout: [None; N_INPUTS as usize],
            seq: 0,
            input_mask: config.input_mask,
            rise_mask: config.rise_mask,
            fall_mask: config.fall_mask,
            foreign_in_a_row: 0,
            bell: bell.clone(),
            unrung: false,
        };
        let mut threads = Vec::new();
        let (s, timeout) = (Arc::clone(&stop), config.irq_timeout);
        let rt_priority = config.rt_priority;
        threads.push(
            std::thread::Builder::new()
                .name("driver-events".into())
                .spawn(move || {
                    crate::enter_realtime(rt_priority);
                    pump.run(&s, timeout);
                    // the last word, once the channels are closed
                    let bell = pump.bell.clone();
                    drop(pump);
                    bell.ring();
                })
                .map_err(DriverError::Thread)?,
        );
        let (inbox, quit) = LedInbox::new(&bus, &stats, cmd_rx, &lost);
        let mut leds = BaseLeds {
            inbox,
            tx: led_tx,
            board: Arc::clone(&board),
            bell: bell.clone(),
        };
        let s = Arc::clone(&stop);
        threads.push(
            std::thread::Builder::new()
                .name("driver-leds".into())
                .spawn(move || {
                    leds.run(&s);
                    let bell = leds.bell.clone();
                    drop(leds);
                    bell.ring();
                })
                .map_err(DriverError::Thread)?,
        );
        info!(
            buttons_irq = base.bits.buttons,
            switches_irq = base.bits.switches,
            debounce_us = base.debounce_us,
            "PYNQ base overlay found (host timestamps, software debounce)"
        );
        Ok((
            Driver {
                bus,
                info,
                stats,
                board,
                stop,
                quit,
                lost,
                threads,
                flavor: Flavor::Base(base.bits.ours()),
            },
            DriverChannels {
                events: ev_rx,
                commands: cmd_tx,
                leds: led_rx,
                levels: levels_rx,
                bell,
            },
        ))
    }
}

/// After this many wakes in a row for inputs that are not ours, waiting is throttled.
const FOREIGN_BEFORE_THROTTLE: u32 = 64;

struct BasePump {
    bus: Arc<dyn Bus>,
    stats: Arc<Stats>,
    tx: Sender<ButtonEvent>,
    levels_tx: Sender<InputLevels>,
    board: Arc<Levels>,
    lost: LostFlag,
    ours: IntrSet,
    debounce: Duration,
    origin: Instant,
    /// The inputs as last read.
    seen: u32,
    /// The inputs as last handed up (debounced).
    out: u32,
    sent_levels: Option<u32>,
    /// End of each input's lockout.
    lockout: [Option<Instant>; N_INPUTS as usize],
    seq: u64,
    input_mask: u32,
    rise_mask: u32,
    fall_mask: u32,
    foreign_in_a_row: u32,
    /// Rung after a wake that sent something.
    bell: Bell,
    /// Something was sent since the last ring.
    unrung: bool,
}

impl BasePump {
    fn run(&mut self, stop: &AtomicBool, timeout: Duration) {
        let mut failures = 0u32;
        while !stop.load(Ordering::SeqCst) && self.lost.get().is_none() {
            // a lockout that ends before the timeout wakes the thread at its end
            let now = Instant::now();
            let wait = self
                .lockout
                .iter()
                .flatten()
                .map(|&end| end.saturating_duration_since(now))
                .min()
                .map_or(timeout, |d| d.min(timeout));
            let result = match self.bus.wait_irq(wait) {
                Ok(IrqWait::Fired) => {
                    let at = (Instant::now(), unix_us());
                    Stats::add(&self.stats.irqs, 1);
                    self.service(at, true).and_then(|()| self.bus.rearm_irq())
                }
                // the blocks are read on timeouts too: a lost interrupt costs latency
                Ok(IrqWait::TimedOut) => self.service((Instant::now(), unix_us()), false),
                Err(BusError::Closed) => break,
                Err(e) => Err(e),
            };
            if std::mem::take(&mut self.unrung) {
                self.bell.ring();
            }
            match result {
                Ok(()) => failures = 0,
                Err(BusError::Gone(why)) => {
                    debug!("device gone: {why}");
                    let _ = self.lost.set(DeviceLost::Gone);
                    break;
                }
                Err(e) => {
                    error!("base overlay service failed: {e}");
                    back_off(self.bus.as_ref(), &self.stats, &mut failures);
                }
            }
        }
        if let Some(lost) = self.lost.get() {
            error!("{lost}");
            return;
        }
        // the last look: a change that came with the stop is handed up
        if let Err(e) = self.service((Instant::now(), unix_us()), false) {
            Stats::add(&self.stats.bus_errors, 1);
            error!("final read of the base overlay failed: {e}");
        }
        debug!("base overlay event thread stopped");
    }

    /// One wake: the identity, our enables, each block's status (cleared before its
    /// data is read, so a change in between raises a new interrupt), the controller's
    /// acknowledge for our inputs only, then the edges and the lockouts.
    fn service(
        &mut self,
        (now, wall): (Instant, Option<u64>),
        fired: bool,
    ) -> Result<(), BusError> {
        let tri = self.bus.read(BTNS_GPIO.tri())?;
        if tri & 0xF != 0xF {
            Stats::add(&self.stats.bus_errors, 1);
            let _ = self.lost.set(DeviceLost::BaseReplaced { tri });
            return Ok(());
        }
        let pending = if fired {
            self.bus.read(intc::IPR)?
        } else {
            IntrSet::default()
        };
        let ier = self.bus.read(intc::IER)?;
        if ier.and(self.ours) != self.ours {
            if let Some(n) = every_power_of_two(&self.stats.intc_reenabled, 1) {
                warn!(
                    times = n,
                    "our interrupt-controller enables were cleared by someone else (a notebook \
                     using PYNQ's Interrupt or a button wait?); setting them again"
                );
            }
            self.bus.write(intc::SIE, self.ours)?;
        }
        // per block: whether its status said "changed", and its successive readings
        let mut changed = [false; BLOCKS.len()];
        let mut readings: [Vec<u32>; BLOCKS.len()] = Default::default();
        for (k, b) in BLOCKS.iter().enumerate() {
            changed[k] = self.read_block(*b, &mut readings[k])?;
        }
        let levels = BLOCKS
            .iter()
            .zip(&readings)
            .fold(0, |m, (b, r)| m | r.last().copied().unwrap_or(0) & b.mask());
        if fired {
            self.bus.write(intc::IAR, self.ours)?;
            let foreign = IntrSet(pending.0 & !self.ours.0);
            if pending.and(self.ours).is_empty() && !changed.contains(&true) && !foreign.is_empty()
            {
                self.note_foreign(foreign);
            } else {
                self.foreign_in_a_row = 0;
            }
        }
        self.board.set_inputs(levels);
        let ts_us = u64::try_from(now.duration_since(self.origin).as_micros()).unwrap_or(u64::MAX);
        let utc_us = wall.and_then(std::num::NonZeroU64::new);
        let mut sent = false;
        for (k, b) in BLOCKS.iter().enumerate() {
            for (n, &reading) in readings[k].iter().enumerate() {
                let diff = (reading ^ self.seen) & b.mask();
                if n == 0 && changed[k] && diff == 0 {
                    self.note_unseen_change(*b, now);
                }
                for i in b.first..b.first + b.width {
                    let bit = 1u32 << i;
                    if diff & bit == 0 {
                        continue;
                    }
                    self.seen ^= bit;
                    if self.lockout[usize::from(i)].is_some_and(|end| end > now) {
                        Stats::add(&self.stats.bounces, 1);
                    } else if self.seen & bit != self.out & bit {
                        sent |= self.pass(i, now, ts_us, utc_us);
                    }
                }
            }
        }
        // lockouts that ended: a level that differs now passes as the next change
        for i in 0..N_INPUTS {
            let idx = usize::from(i);
            if self.lockout[idx].is_some_and(|end| end <= now) {
                self.lockout[idx] = None;
                let bit = 1u32 << i;
                if self.seen & bit != self.out & bit {
                    sent |= self.pass(i, now, ts_us, utc_us);
                }
            }
        }
        // the levels after the events, as the overlay's driver reports INPUTS
        if (sent || self.sent_levels != Some(self.out))
            && self.levels_tx.try_send(InputLevels(self.out)).is_ok()
        {
            self.sent_levels = Some(self.out);
            self.unrung = true;
        }
        Ok(())
    }

    /// Reads one block: its status, cleared (toggle-on-write: only the bits read as 1
    /// are written back) before its data is read, so that a change in between raises a
    /// new interrupt. A status set again after the data read is cleared and the data
    /// read again (a few times at most), so a change that landed between the clear and
    /// the read is not taken for a missed one at the next wake. Pushes each reading,
    /// shifted to the inputs' numbering; returns whether the status said "changed".
    fn read_block(&self, b: InputBlock, readings: &mut Vec<u32>) -> Result<bool, BusError> {
        let isr = self.bus.read(b.gpio.isr())?;
        if isr & 1 != 0 {
            self.bus.write(b.gpio.isr(), isr & 1)?;
        }
        readings.push(self.bus.read(b.gpio.data())? << b.first);
        for _ in 0..3 {
            let again = self.bus.read(b.gpio.isr())?;
            if again & 1 == 0 {
                break;
            }
            self.bus.write(b.gpio.isr(), again & 1)?;
            let data = self.bus.read(b.gpio.data())? << b.first;
            if readings.last() != Some(&data) {
                readings.push(data);
            }
        }
        Ok(isr & 1 != 0)
    }

    /// A block said "changed" but reads as it did: bounce inside a lockout, or else a
    /// level that came and went between two interrupts.
    fn note_unseen_change(&self, b: InputBlock, now: Instant) {
        let locked = (b.first..b.first + b.width)
            .any(|i| self.lockout[usize::from(i)].is_some_and(|end| end > now));
        if locked {
            Stats::add(&self.stats.bounces, 1);
        } else if let Some(n) = every_power_of_two(&self.stats.missed_pulses, 1) {
            warn!(
                block = b.gpio.name,
                missed = n,
                "a level came and went between two interrupts (a press shorter than the \
                 interrupt latency): not published, counted in missed_pulses"
            );
        }
    }

    /// Hands up input `i`'s new level (from `seen`), starts its lockout; true if an
    /// event went up (the edge masks may keep it back).
    fn pass(
        &mut self,
        i: u8,
        now: Instant,
        ts_us: u64,
        utc_us: Option<std::num::NonZeroU64>,
    ) -> bool {
        let bit = 1u32 << i;
        self.out = (self.out & !bit) | (self.seen & bit);
        if !self.debounce.is_zero() {
            self.lockout[usize::from(i)] = Some(now + self.debounce);
        }
        let level = self.out & bit != 0;
        let edges = if level {
            self.rise_mask
        } else {
            self.fall_mask
        };
        if self.input_mask & edges & bit == 0 {
            return false;
        }
        let event = ButtonEvent {
            input: i,
            level,
            ts_us,
            seq: self.seq,
            synthetic: false,
            utc_us,
        };
        self.seq += 1;
        Stats::add(&self.stats.captured, 1);
        match self.tx.try_send(event) {
            Ok(()) => self.unrung = true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if let Some(n) = every_power_of_two(&self.stats.channel_full, 1) {
                    warn!(lost = n, "event channel full: events lost");
                }
            }
        }
        true
    }

    /// A wake for inputs that are not ours: counted; many in a row are throttled, so
    /// that a notebook's pending interrupt cannot make this thread spin.
    fn note_foreign(&mut self, foreign: IntrSet) {
        Stats::add(&self.stats.foreign_irqs, 1);
        self.foreign_in_a_row = self.foreign_in_a_row.saturating_add(1);
        if self.foreign_in_a_row == FOREIGN_BEFORE_THROTTLE {
            warn!(
                inputs = format_args!("{:#x}", foreign.0),
                "the base overlay's interrupt keeps firing for inputs that are not ours \
                 (someone else, a notebook, enabled them); throttling"
            );
        }
        if self.foreign_in_a_row >= FOREIGN_BEFORE_THROTTLE {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct BaseLeds {
    inbox: LedInbox,
    tx: Sender<LedReport>,
    board: Arc<Levels>,
    bell: Bell,
}

impl BaseLeds {
    fn run(&mut self, stop: &AtomicBool) {
        self.inbox.clone().serve(stop, |cmd| self.apply(cmd));
    }

    /// LEDs 0-3 are leds_gpio's bits, 4-9 rgbleds_gpio's bits 0-5. AXI GPIO has no
    /// set/clear registers: this thread is the only writer, so read-modify-write is safe
    /// (a notebook writing the same block is what docs/board.md says not to run).
    fn apply(&mut self, cmd: LedCommand) -> Result<(), BusError> {
        if cmd.led >= N_LEDS {
            Stats::add(&self.inbox.stats.led_rejected, 1);
            warn!(
                led = cmd.led,
                leds = N_LEDS,
                "LED command for a LED that does not exist"
            );
            return Ok(());
        }
        if self.inbox.lost.get().is_some() {
            return Ok(());
        }
        let tri = self.inbox.bus.read(BTNS_GPIO.tri())?;
        if tri & 0xF != 0xF {
            let _ = self.inbox.lost.set(DeviceLost::BaseReplaced { tri });
            self.inbox.bus.wake_waiter();
            return Ok(());
        }
        let (gpio, bit) = if cmd.led < 4 {
            (LEDS_GPIO, 1u32 << cmd.led)
        } else {
            (RGBLEDS_GPIO, 1u32 << (cmd.led - 4))
        };
        let cur = self.inbox.bus.read(gpio.data())?;
        let next = match cmd.action {
            LedAction::On => cur | bit,
            LedAction::Off => cur & !bit,
            LedAction::Toggle => cur ^ bit,
        };
        self.inbox.bus.write(gpio.data(), next)?;
        let back = read_leds(self.inbox.bus.as_ref())?;
        self.board.set_leds(back);
        Stats::add(&self.inbox.stats.led_commands, 1);
        let report = LedReport {
            led: cmd.led,
            on: back >> cmd.led & 1 == 1,
        };
        if self.tx.try_send(report).is_ok() {
            self.bell.ring();
        } else if let Some(n) = every_power_of_two(&self.inbox.stats.led_reports_lost, 1) {
            warn!(lost = n, "LED report channel full: read-backs not reported");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn logs_thin_out_by_powers_of_two() {
        let c = AtomicU64::new(0);
        let logged: Vec<u64> = (0..20).filter_map(|_| every_power_of_two(&c, 1)).collect();
        assert_eq!(logged, [1, 2, 4, 8, 16]);
        assert_eq!(c.load(Ordering::Relaxed), 20);
    }

    #[test]
    fn board_layouts_name_their_bits() {
        assert_eq!(BaseBits::Z1.ours(), IntrSet(1 << 11 | 1 << 12));
        assert_eq!(BaseBits::Z2.ours(), IntrSet(1 << 13 | 1 << 14));
    }
}
