//! The driver of the `pynq_mqtt_io` peripheral, on any [`Bus`].
//!
//! One thread waits for the interrupt, drains the event FIFO until it reads empty
//! (with coalescing, until fewer than its count wait), re-arms, and sends typed
//! [`ButtonEvent`]s into a bounded channel. Another applies
//! [`LedCommand`]s and reports each LED's state as read back from the hardware.
//! Every loss (hardware drop, sequence gap, full channel) is counted in [`Stats`].
#![forbid(unsafe_code)]

#[macro_use]
mod counters;
pub mod base;
mod bell;
pub mod diag;
mod extend;
mod leds;
mod levels;
mod lost;
mod pump;
pub mod trace;
mod types;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use pynq_mqtt_bus::{Bus, BusError};
use pynq_mqtt_regs::{self as regs, DebounceUs, IrqEnable, IrqThreshold, RegBus};
use tracing::{debug, info, warn};

pub use bell::Bell;
pub use counters::Counter;
pub use extend::{Clock64, Seq64, WallOffset};
pub use levels::Levels;
pub use lost::LostFlag;
pub use trace::EventTrace;
pub use types::{ButtonEvent, DeviceInfo, InputLevels, LedAction, LedCommand, LedReport};

pub(crate) use leds::write_leds;
use leds::{LedInbox, LedWorker};
use pump::{EventPump, LevelWatch, CHECK, CLOSE, POP_BATCH};

/// What can stop the driver from starting.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("register access failed: {0}")]
    Bus(#[from] BusError),
    #[error("no pynq_mqtt_io peripheral here: the ID register reads {found:#010x}, not {expected:#010x}: the loaded bitstream is another design; load the pynq_mqtt overlay (pynq_mqtt.bit + .dtbo) or pass the right --device")]
    WrongId { found: u32, expected: u32 },
    #[error("the pynq_mqtt_io peripheral has register map {found_major}.{found_minor}, this daemon was built for {expected_major}.{expected_minor} (or a later {expected_major}.x): load the overlay that matches this daemon, or install the daemon built with it")]
    WrongVersion {
        found_major: u8,
        found_minor: u8,
        expected_major: u8,
        expected_minor: u8,
    },
    #[error("PYNQ's base overlay is not what is loaded (btns_gpio TRI reads {buttons:#x}, switches_gpio TRI {switches:#x}): reboot the board (its image loads base.bit) or load it: sudo python3 -c 'from pynq.overlays.base import BaseOverlay; BaseOverlay(\"base.bit\")'")]
    NotBase { buttons: u32, switches: u32 },
    #[error("cannot start driver thread: {0}")]
    Thread(std::io::Error),
}

/// Why the driver stopped touching the device by itself. Once set, no register is
/// written again: the daemon publishes `offline` and exits with its own status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceLost {
    /// The kernel unregistered the UIO device (overlay unloaded, or re-inserted by a
    /// notebook's `Overlay(...)`).
    #[error("the UIO device went away (its overlay was unloaded or reloaded); the service restarts once it is back")]
    Gone,
    /// The ID register no longer names pynq_mqtt_io: another bitstream is in the PL.
    #[error("the peripheral no longer answers as pynq_mqtt_io (ID reads {id:#010x}): another bitstream was loaded; not touching it (a notebook should attach with Overlay(path, download=False))")]
    Replaced { id: u32 },
    /// PYNQ's base overlay no longer answers where it was (`--board base`): the
    /// buttons' GPIO does not report its pins as inputs; another bitstream was loaded.
    #[error("PYNQ's base overlay no longer answers (btns_gpio TRI reads {tri:#x}): another bitstream was loaded; not touching it (start the daemon again once base.bit is back)")]
    BaseReplaced { tri: u32 },
}

counters! {
    /// Counters of the driver; all monotonic.
    pub struct Stats => StatsSnapshot {
        /// Events read out of the hardware FIFO.
        captured { json: Some("captured"), log: Some("captured") },
        /// Events the hardware reported dropped (its DROPPED counter, as deltas).
        hw_dropped { json: Some("dropped.hardware_fifo"), log: Some("dropped_hardware_fifo") },
        /// Events missing from the sequence numbers: `hw_dropped`, plus any event
        /// popped by a drain whose next read (its EVT_TS) failed.
        seq_lost { json: Some("dropped.sequence_gaps"), log: None },
        /// Events lost because the channel to the publisher was full.
        channel_full { json: Some("dropped.channel"), log: Some("dropped_channel") },
        /// Interrupts serviced.
        irqs { json: Some("irqs"), log: None },
        /// Bus errors seen (each logged).
        bus_errors { json: Some("bus_errors"), log: None },
        /// LED commands applied.
        led_commands { json: None, log: None },
        /// LED commands refused (no such LED); summed with the MQTT side's refusals.
        led_rejected { json: Some("led_commands.rejected"), log: None },
        /// LED read-backs not reported because their channel was full.
        led_reports_lost { json: None, log: None },
        /// Interrupts that found the FIFO empty (a few are normal races; many in a row
        /// mean a line that is not ours, and are throttled).
        empty_irqs { json: None, log: None },
        /// Not a counter: Unix µs minus the peripheral's µs (`ts_us`), re-estimated at
        /// every drain (see [`WallOffset`]); 0 until the first estimate.
        wall_offset_us { json: None, log: None },
        /// Not a counter: the error bound of `wall_offset_us`, µs.
        wall_offset_err_us { json: None, log: None },
        /// Not a counter: 1 when the driver runs on PYNQ's base overlay; the `base.*`
        /// counters below are then part of the `stats` message.
        base_board { json: None, log: None },
        /// Base overlay: changes seen inside a software debounce lockout.
        bounces { json: Some("base.bounces"), log: None },
        /// Base overlay: levels that came and went between two interrupts (each at
        /// least two edges not published).
        missed_pulses { json: Some("base.missed_pulses"), log: None },
        /// Base overlay: interrupts for controller inputs that are not ours.
        foreign_irqs { json: Some("base.foreign_irqs"), log: None },
        /// Base overlay: times our controller enables were found cleared and set again.
        intc_reenabled { json: Some("base.intc_reenabled"), log: None },
    }
}

/// Adds `n` to `counter`; its new total when that crossed a power of two, so a log
/// line guarded by it comes at the 1st, 2nd, 4th, 8th ... time: a storm costs a few
/// lines.
pub(crate) fn every_power_of_two(counter: &AtomicU64, n: u64) -> Option<u64> {
    let total = counter.fetch_add(n, Ordering::Relaxed) + n;
    let before = total - n;
    // a power of two crossed by this addition
    (before == 0 || (63 - before.leading_zeros()) != (63 - total.leading_zeros())).then_some(total)
}

/// After a failed bus round of an event thread: counts the error, waits longer the more
/// rounds failed in a row (10 ms doubling up to 640 ms, so a broken bus does not become
/// a busy loop) and re-arms the interrupt for the next round.
pub(crate) fn back_off(bus: &dyn Bus, stats: &Stats, failures: &mut u32) {
    Stats::add(&stats.bus_errors, 1);
    *failures = failures.saturating_add(1);
    std::thread::sleep(Duration::from_millis(10u64 << (*failures).min(6)));
    let _ = bus.rearm_irq();
}

/// The system clock in Unix microseconds (None before 1970).
fn unix_us() -> Option<u64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    u64::try_from(d.as_micros()).ok()
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Settings of the driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Capacity of the event channel to the publisher.
    pub channel_capacity: usize,
    /// Longest wait for an interrupt before the FIFO is checked anyway.
    pub irq_timeout: Duration,
    /// Hardware debounce time in microseconds (0: off, the reset value).
    pub debounce_us: u16,
    /// Inputs whose edges become events (bit i = input i).
    pub input_mask: u32,
    /// Inputs whose presses become events.
    pub rise_mask: u32,
    /// Inputs whose releases become events.
    pub fall_mask: u32,
    /// Interrupt when this many events wait (0: never by count; 1: every event).
    pub coalesce_count: u16,
    /// Interrupt when the oldest event has waited this long (0: at once).
    pub coalesce_us: u32,
    /// Real-time (SCHED_FIFO) priority of the thread that drains the FIFO, 0 for the
    /// normal class ([`DEFAULT_RT_PRIORITY`] by default). On a core shared with a busy
    /// process a normal thread can wait a whole time slice for the CPU, longer than the
    /// FIFO lasts at a high event rate.
    pub rt_priority: u8,
    /// Bench only: records each event's sequence number and the moment its FIFO pop
    /// returned. None (the default, and always in the daemon): no clock is read.
    pub trace: Option<Arc<EventTrace>>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 65_536,
            irq_timeout: Duration::from_millis(100),
            debounce_us: 0,
            input_mask: u32::MAX,
            rise_mask: u32::MAX,
            fall_mask: u32::MAX,
            coalesce_count: 1,
            coalesce_us: 0,
            rt_priority: DEFAULT_RT_PRIORITY,
            trace: None,
        }
    }
}

/// The draining thread's real-time priority unless told otherwise. Beside CPU-bound
/// processes at normal priority, a drain in the normal class lost events at the FIFO
/// from 100k events/s steady (release build; the debug build already with bursts of
/// 128 at 42.7k/s on average, in 4 of 8 runs), a SCHED_FIFO one up to 150k/s in none
/// (README, "Under load"). An interrupt's work is bounded by the FIFO's depth; only an
/// input that never stops changing (no debounce) keeps it busy, and then the kernel's
/// real-time throttling (`sched_rt_runtime_us`) still leaves the core to the others.
pub const DEFAULT_RT_PRIORITY: u8 = 10;

/// Moves the calling thread, the one draining the event FIFO, to SCHED_FIFO at
/// `priority` (0: leaves it in the normal class). Refused, it says so once, with what
/// that risks and how to grant it, and the thread runs on at normal priority.
pub(crate) fn enter_realtime(priority: u8) {
    if priority == 0 {
        return;
    }
    match pynq_mqtt_bus::set_current_thread_realtime(priority) {
        Ok(()) => info!(priority, "event drain runs real-time (SCHED_FIFO)"),
        Err(e) => warn!(
            priority,
            "cannot run the event drain real-time ({e}); it runs at normal priority, where \
             a busy CPU can hold it off until the FIFO overflows (counted as \
             dropped_hardware_fifo): grant LimitRTPRIO= in the unit or CAP_SYS_NICE, or set \
             rt_priority = 0"
        ),
    }
}

/// Level reports waiting for the publisher; a full queue is caught up at a later wake.
const LEVELS_QUEUE: usize = 16;

/// The ends of the driver's channels that the layer above holds.
pub struct DriverChannels {
    /// Button events, oldest first.
    pub events: Receiver<ButtonEvent>,
    /// LED commands going down.
    pub commands: Sender<LedCommand>,
    /// LED states read back after every command (and once per LED at start).
    pub leds: Receiver<LedReport>,
    /// The inputs' levels: once at start, then whenever a wake finds them changed.
    pub levels: Receiver<InputLevels>,
    /// Rung after the driver sent into `events`, `leds` or `levels`, and as its
    /// threads end (their channels closed): hook a wake-up of the reader here.
    pub bell: Bell,
}

/// A running driver. [`Driver::stop`] drains the FIFO a last time and joins its threads.
pub struct Driver {
    bus: Arc<dyn Bus>,
    info: DeviceInfo,
    stats: Arc<Stats>,
    board: Arc<Levels>,
    stop: Arc<AtomicBool>,
    /// Wakes the LED thread at the stop (the loss wakes it through the flag).
    quit: Sender<()>,
    lost: LostFlag,
    threads: Vec<JoinHandle<()>>,
    flavor: Flavor,
}

/// Which peripheral a [`Driver`] drives, for what its stop turns off.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// The pynq_mqtt_io peripheral of our overlay.
    Overlay,
    /// PYNQ's base overlay, with our interrupt-controller inputs.
    Base(pynq_mqtt_regs::base::IntrSet),
}

/// Programs the input and interrupt settings.
fn configure(bus: &dyn Bus, c: &DriverConfig) -> Result<(), BusError> {
    bus.write(
        regs::DEBOUNCE_US,
        DebounceUs::default().with_time(c.debounce_us),
    )?;
    bus.write(regs::INPUT_ENABLE, c.input_mask)?;
    bus.write(regs::EDGE_RISE, c.rise_mask)?;
    bus.write(regs::EDGE_FALL, c.fall_mask)?;
    bus.write(
        regs::IRQ_THRESHOLD,
        IrqThreshold::default().with_count(c.coalesce_count),
    )?;
    bus.write(regs::IRQ_TIMEOUT_US, c.coalesce_us)
}

/// Reads and checks the identity of the peripheral behind `bus`.
pub fn probe(bus: &dyn Bus) -> Result<DeviceInfo, DriverError> {
    let id = bus.read(regs::ID)?;
    if id != regs::ID_VALUE {
        return Err(DriverError::WrongId {
            found: id,
            expected: regs::ID_VALUE,
        });
    }
    let version = bus.read(regs::VERSION)?;
    if version.major() != regs::VERSION_MAJOR || version.minor() < regs::VERSION_MINOR {
        return Err(DriverError::WrongVersion {
            found_major: version.major(),
            found_minor: version.minor(),
            expected_major: regs::VERSION_MAJOR,
            expected_minor: regs::VERSION_MINOR,
        });
    }
    let params = bus.read(regs::PARAMS)?;
    Ok(DeviceInfo {
        version_major: version.major(),
        version_minor: version.minor(),
        n_inputs: params.n_inputs(),
        n_leds: params.n_leds(),
        fifo_depth: 1 << params.fifo_depth_log2(),
        clk_hz: bus.read(regs::CLK_HZ)?,
        generator: params.generator(),
    })
}

impl Driver {
    /// Checks the peripheral, enables its interrupt and starts the driver threads.
    pub fn start(
        bus: Arc<dyn Bus>,
        config: &DriverConfig,
    ) -> Result<(Driver, DriverChannels), DriverError> {
        let info = probe(bus.as_ref())?;
        configure(bus.as_ref(), config)?;
        let stats = Arc::new(Stats::default());
        let board = Arc::new(Levels::default());
        let stop = Arc::new(AtomicBool::new(false));
        let lost = LostFlag::default();
        let (ev_tx, ev_rx) = bounded(config.channel_capacity);
        let (cmd_tx, cmd_rx) = bounded::<LedCommand>(256);
        let (led_tx, led_rx) = bounded::<LedReport>(256 + usize::from(info.n_leds));
        let (levels_tx, levels_rx) = bounded::<InputLevels>(LEVELS_QUEUE);
        let bell = Bell::default();

        // losses from before this start (no daemon was draining) are not this run's:
        // report them and clear the counter, which then counts this run exactly
        let before = bus.read(regs::DROPPED)?;
        if before > 0 {
            bus.write(regs::DROPPED, before)?;
            warn!(
                dropped = before,
                "events were lost before this start (the FIFO overflowed while no daemon ran)"
            );
        }
        let mut events = EventPump {
            bus: Arc::clone(&bus),
            stats: Arc::clone(&stats),
            tx: ev_tx,
            clock: Clock64::new(bus.read(regs::TIME)?),
            wall: WallOffset::default(),
            seq: Seq64::default(),
            n_inputs: info.n_inputs,
            check_every: u64::from(info.fifo_depth).max(16),
            // coalescing by count and by age: the line rises again by either, so an
            // interrupt's drain may leave fewer than the count behind
            leave_below: if config.coalesce_us > 0 && config.coalesce_count > 1 {
                u64::from(config.coalesce_count)
            } else {
                0
            },
            first_pairs: u64::from(config.coalesce_count).clamp(1, POP_BATCH as u64),
            wall_sampled: None,
            inputs: None,
            empty_in_a_row: 0,
            lost: lost.clone(),
            levels: LevelWatch {
                tx: levels_tx,
                sent: None,
                board: Arc::clone(&board),
            },
            bell: bell.clone(),
            unrung: false,
            trace: config.trace.clone(),
            offsets: Vec::with_capacity(CHECK.len() + 2 * POP_BATCH + CLOSE.len()),
            batch: Vec::with_capacity(CHECK.len() + 2 * POP_BATCH + CLOSE.len()),
        };
        bus.write(regs::IRQ_ENABLE, IrqEnable::default().with_event(true))?;
        // the inputs as they stand, before any edge: a switch that never moves is
        // still seen
        events.levels.report(bus.as_ref(), true)?;

        // the state every LED starts in, so subscribers see it at once
        let leds_now = bus.read(regs::LED)?;
        board.set_leds(leds_now);
        for led in 0..info.n_leds {
            let _ = led_tx.try_send(LedReport {
                led,
                on: leds_now >> led & 1 == 1,
            });
        }

        let mut threads = Vec::new();
        let (s, timeout) = (Arc::clone(&stop), config.irq_timeout);
        let rt_priority = config.rt_priority;
        threads.push(
            std::thread::Builder::new()
                .name("driver-events".into())
                .spawn(move || {
                    enter_realtime(rt_priority);
                    events.run(&s, timeout);
                    // the last word, once the channels are closed
                    let bell = events.bell.clone();
                    drop(events);
                    bell.ring();
                })
                .map_err(DriverError::Thread)?,
        );
        let (inbox, quit) = LedInbox::new(&bus, &stats, cmd_rx, &lost);
        let mut leds = LedWorker {
            inbox,
            n_leds: info.n_leds,
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
            version = %format!("{}.{}", info.version_major, info.version_minor),
            inputs = info.n_inputs,
            leds = info.n_leds,
            fifo = info.fifo_depth,
            clk_hz = info.clk_hz,
            "pynq_mqtt_io found"
        );
        Ok((
            Driver {
                bus: Arc::clone(&bus),
                info,
                stats,
                board,
                stop,
                quit,
                lost,
                threads,
                flavor: Flavor::Overlay,
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

    /// What the peripheral said about itself.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// The driver's counters.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Input levels and LED states as last read from the registers.
    pub fn levels(&self) -> Arc<Levels> {
        Arc::clone(&self.board)
    }

    /// Set once the device went away or changed identity; the driver's threads have
    /// then ended (or are ending) without another bus write.
    pub fn lost(&self) -> LostFlag {
        self.lost.clone()
    }

    /// Stops both threads after a last drain of the FIFO; every event captured
    /// before this call is in the channel (or counted) when it returns.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.stop.store(true, Ordering::SeqCst);
        self.bus.wake_waiter();
        let _ = self.quit.try_send(());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if self.lost.get().is_some() {
            // whatever sits behind the old mapping now is not ours to write
            return;
        }
        // no interrupts for a daemon that is gone; the next start enables it again
        let off = match self.flavor {
            Flavor::Overlay => self.bus.write(regs::IRQ_ENABLE, IrqEnable::default()),
            Flavor::Base(ours) => base::disable(self.bus.as_ref(), ours),
        };
        if let Err(e) = off {
            debug!("cannot disable the interrupt at stop: {e}");
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}
