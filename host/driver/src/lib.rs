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
mod levels;
mod lost;
pub mod trace;
mod types;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_regs::{self as regs, DebounceUs, EvtPop, IrqEnable, IrqThreshold, RegBus};
use tracing::{debug, error, info, warn};

pub use bell::Bell;
pub use counters::Counter;
pub use extend::{Clock64, Seq64, WallOffset};
pub use levels::Levels;
pub use lost::LostFlag;
pub use trace::EventTrace;
pub use types::{ButtonEvent, DeviceInfo, InputLevels, LedAction, LedCommand, LedReport};

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
        // the LED thread sleeps until a command, the stop or the loss: no timer
        let (quit, quit_rx) = bounded::<()>(1);
        let q = quit.clone();
        lost.on_lost(move || {
            let _ = q.try_send(());
        });
        let mut leds = LedWorker {
            bus: Arc::clone(&bus),
            stats: Arc::clone(&stats),
            n_leds: info.n_leds,
            rx: cmd_rx,
            quit: quit_rx,
            tx: led_tx,
            lost: lost.clone(),
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

struct EventPump {
    bus: Arc<dyn Bus>,
    stats: Arc<Stats>,
    tx: Sender<ButtonEvent>,
    clock: Clock64,
    wall: WallOffset,
    seq: Seq64,
    n_inputs: u8,
    /// Pops between identity checks (and stop checks): the FIFO depth.
    check_every: u64,
    /// An interrupt's drain ends once fewer than this many events wait (0: only when
    /// the FIFO reads empty). Set to the coalescing count when coalescing also has a
    /// timeout: those events raise the (level) line again by their number or by the
    /// oldest one's age (IRQ_STATUS.EVENT), so none waits unseen, and a stream that
    /// never lets the FIFO empty is taken in batches of the count, one interrupt each,
    /// instead of by a drain that never ends.
    leave_below: u64,
    /// Event pairs the first batch of a drain pops before it knows the level: what an
    /// interrupt brings (the coalescing count, 1 to 256).
    first_pairs: u64,
    /// When the wall-clock offset was last estimated.
    wall_sampled: Option<Instant>,
    /// INPUTS as the last drain's last batch read it (None: no batch completed).
    inputs: Option<u32>,
    /// Interrupts in a row that found nothing to do.
    empty_in_a_row: u32,
    lost: LostFlag,
    levels: LevelWatch,
    /// Bench only (see [`DriverConfig::trace`]).
    trace: Option<Arc<EventTrace>>,
    /// A drain's batch of reads and their values, kept between drains.
    offsets: Vec<u32>,
    batch: Vec<u32>,
    /// Rung once a batch's events (or a level report) are in their channel.
    bell: Bell,
    /// Something was sent since the last ring.
    unrung: bool,
}

/// Events popped per batch of reads at most.
const POP_BATCH: usize = 256;

/// The pops of a batch: `2k` of these pop `k` events (EVT_POP, then its EVT_TS).
const POP_OFFSETS: [u32; 2 * POP_BATCH] = {
    let mut offsets = [regs::offset::EVT_POP; 2 * POP_BATCH];
    let mut i = 1;
    while i < offsets.len() {
        offsets[i] = regs::offset::EVT_TS;
        i += 2;
    }
    offsets
};

/// What a drain reads first, and a long one every `check_every` pops: the identity
/// (the bus reads nothing more of the batch unless it names pynq_mqtt_io: a notebook
/// may have loaded another bitstream) and TIME, which keeps the 64-bit extension
/// current.
const CHECK: [u32; 2] = [regs::offset::ID, regs::offset::TIME];

/// What closes every batch: one more pop and its timestamp (the FIFO empty, or an event
/// that came meanwhile), then the level for the next batch, the drop count (for the
/// drain's end) and the inputs' levels (reported after the drain's events).
/// Reading EVT_TS, FIFO_LEVEL, DROPPED or INPUTS changes nothing in the hardware.
const CLOSE: [u32; 5] = [
    regs::offset::EVT_POP,
    regs::offset::EVT_TS,
    regs::offset::FIFO_LEVEL,
    regs::offset::DROPPED,
    regs::offset::INPUTS,
];

/// How often a drain's opening re-estimates the wall-clock offset, with a TIME read
/// of its own between two readings of the system clock (the other openings fold TIME
/// into the batch of pops, whose length would blur the estimate): the drift of two
/// 100 ppm oscillators over this is 10 µs.
const WALL_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// [`Bus::read_many`] with its contract checked: on success `out` holds one value per
/// offset (a backend that returned fewer is a bus error at the first missing one).
fn read_batch(bus: &dyn Bus, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
    let had = out.len();
    bus.read_many(offsets, out)?;
    match offsets.get(out.len() - had) {
        None => Ok(()),
        Some(&offset) => Err(BusError::Timeout { offset }),
    }
}

/// [`Bus::read_many_if`] with the same contract as [`read_batch`], except that a
/// first value other than `expect` ends the batch there (`out` then holds one value).
fn read_batch_if(
    bus: &dyn Bus,
    expect: u32,
    offsets: &[u32],
    out: &mut Vec<u32>,
) -> Result<(), BusError> {
    out.clear();
    let read = bus.read_many_if(expect, offsets, out);
    read_contract_if(expect, offsets, out, read)
}

/// The contract of [`read_batch_if`] checked on a [`Bus::read_many_if`] (or
/// [`Bus::wait_irq_and_read`]) that filled `values` from empty.
fn read_contract_if(
    expect: u32,
    offsets: &[u32],
    values: &[u32],
    read: Result<(), BusError>,
) -> Result<(), BusError> {
    read?;
    if values.first().is_some_and(|&v| v != expect) {
        return Ok(());
    }
    match offsets.get(values.len()) {
        None => Ok(()),
        Some(&offset) => Err(BusError::Timeout { offset }),
    }
}

/// A batch's reads: the identity check (when due), `pairs` pops, the closing reads.
fn batch_offsets(offsets: &mut Vec<u32>, check: bool, pairs: usize) {
    if check {
        offsets.extend_from_slice(&CHECK);
    }
    offsets.extend_from_slice(&POP_OFFSETS[..2 * pairs]);
    offsets.extend_from_slice(&CLOSE);
}

/// A drain's first batch, read with the wait for the interrupt.
struct FirstBatch {
    /// The event pairs it popped.
    pairs: usize,
    /// How its reads went.
    read: Result<(), BusError>,
}

/// Level reports waiting for the publisher; a full queue is caught up at a later wake.
const LEVELS_QUEUE: usize = 16;

/// Reports the INPUTS register after the events of a drain, and whenever it differs
/// from what was last reported.
struct LevelWatch {
    tx: Sender<InputLevels>,
    /// The last levels handed up; None until the first.
    sent: Option<InputLevels>,
    /// Every reading, for whoever draws the board.
    board: Arc<Levels>,
}

impl LevelWatch {
    /// One register read, after the drain's events are in their channel. `after_events`
    /// reports even an unchanged reading: the edges before it (some from before the
    /// start, some perhaps lost) must not have the last word on a level. A level that
    /// no edge reports (an input whose events are masked off) is handed up at the
    /// latest one `irq_timeout` later; a full queue is retried at the next wake.
    fn report(&mut self, bus: &dyn Bus, after_events: bool) -> Result<bool, BusError> {
        Ok(self.report_read(bus.read(regs::INPUTS)?, after_events))
    }

    /// [`LevelWatch::report`] of an INPUTS value read at the end of a drain; true when
    /// a report was sent.
    fn report_read(&mut self, inputs: u32, after_events: bool) -> bool {
        let now = InputLevels(inputs);
        self.board.set_inputs(now.0);
        if (after_events || self.sent != Some(now)) && self.tx.try_send(now).is_ok() {
            self.sent = Some(now);
            return true;
        }
        false
    }
}

/// Why a drain ended.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// EVT_POP read empty: safe to re-arm.
    Empty,
    /// Fewer events than the coalescing count wait: safe to re-arm (the line rises
    /// again by their number or their age).
    Left,
    /// The stop flag was seen, or the pop limit reached, with events still coming.
    Stopped,
}

/// What can go wrong in a drain.
#[derive(Debug, thiserror::Error)]
enum DrainError {
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A PL reprogrammed under a running daemon answers garbage, which can look like
    /// an endless stream of valid events.
    #[error("the peripheral stopped answering as pynq_mqtt_io (ID reads {0:#010x}): was another overlay loaded? restart the daemon once the pynq_mqtt overlay is back")]
    Vanished(u32),
}

/// After this many interrupts in a row with nothing to do, re-arming is throttled.
const EMPTY_IRQS_BEFORE_THROTTLE: u32 = 64;

impl EventPump {
    fn run(&mut self, stop: &AtomicBool, timeout: Duration) {
        let mut failures = 0u32;
        while !stop.load(Ordering::SeqCst) && self.lost.get().is_none() {
            // every wake, interrupt or timeout, first makes sure the peripheral is
            // still ours (a notebook may have loaded another bitstream meanwhile): the
            // drain's first read is the identity, and a wrong one reads nothing more
            let result = match self.wait(timeout) {
                // the line stays masked until the FIFO has read empty (or, coalescing,
                // holds fewer than the count): an event that arrives after that last
                // pop, or the events left, raise the (level) interrupt again at the
                // re-arm or by count or age, so none waits unseen and none fires twice
                Ok((IrqWait::Fired, first)) => {
                    Stats::add(&self.stats.irqs, 1);
                    match self.drain(Some(stop), None, self.leave_below, first) {
                        Ok((Drained::Empty | Drained::Left, popped)) => {
                            self.note_empty_irq(popped);
                            self.bus
                                .rearm_irq()
                                .map_err(DrainError::from)
                                .and_then(|()| {
                                    self.report_levels(popped > 0).map_err(DrainError::from)
                                })
                        }
                        // stopping: the final drain below takes what is left
                        Ok((Drained::Stopped, _)) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
                // the FIFO is drained on timeouts too: a lost interrupt costs latency,
                // not events (and the time extension gets its regular reading)
                Ok((IrqWait::TimedOut, _)) => {
                    self.drain(Some(stop), None, 0, None)
                        .and_then(|(_, popped)| {
                            self.report_levels(popped > 0).map_err(DrainError::from)
                        })
                }
                Err(BusError::Closed) => break,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => failures = 0,
                Err(e) if self.note_lost(&e) => break,
                Err(e) => {
                    Stats::add(&self.stats.bus_errors, 1);
                    failures = failures.saturating_add(1);
                    error!("event drain failed: {e}");
                    // back off so a broken bus does not become a busy loop
                    std::thread::sleep(Duration::from_millis(10u64 << failures.min(6)));
                    let _ = self.bus.rearm_irq();
                }
            }
        }
        if let Some(lost) = self.lost.get() {
            error!("{lost}");
            debug!("event pump stopped without a last drain");
            return;
        }
        // the last drain: everything captured before the stop goes up; bounded, so
        // that an input that never stops (the generator without a count) cannot hold
        // the daemon
        let limit = 2 * self.check_every + 64;
        match self.drain(None, Some(limit), 0, None) {
            Ok((Drained::Empty | Drained::Left, _)) => {}
            Ok((Drained::Stopped, n)) => {
                warn!(
                    popped = n,
                    "events still arriving at stop; the rest stays in the FIFO"
                )
            }
            Err(e) => {
                Stats::add(&self.stats.bus_errors, 1);
                error!("final event drain failed: {e}");
            }
        }
        debug!("event pump stopped");
    }

    /// Waits for the interrupt. Unless the wall-clock estimate is due (its reads are a
    /// batch of their own), the drain's first batch is read in the same step
    /// ([`Bus::wait_irq_and_read`]): the offsets are left in `self.offsets`, the values
    /// in `self.batch`, and what [`EventPump::drain`] needs of it is returned.
    fn wait(&mut self, timeout: Duration) -> Result<(IrqWait, Option<FirstBatch>), BusError> {
        if self.wall_due() {
            return Ok((self.bus.wait_irq(timeout)?, None));
        }
        let pairs = self.batch_pairs(self.first_pairs, 0, u64::MAX);
        self.offsets.clear();
        batch_offsets(&mut self.offsets, true, pairs);
        self.batch.clear();
        let (woke, read) =
            self.bus
                .wait_irq_and_read(timeout, regs::ID_VALUE, &self.offsets, &mut self.batch)?;
        Ok(match woke {
            IrqWait::Fired => (woke, Some(FirstBatch { pairs, read })),
            IrqWait::TimedOut => (woke, None),
        })
    }

    /// The wall-clock offset is due for a new estimate.
    fn wall_due(&self) -> bool {
        self.wall_sampled
            .is_none_or(|at| at.elapsed() >= WALL_SAMPLE_EVERY)
    }

    /// Event pairs a batch pops for a `level`, `since_check` pops after the last
    /// identity check, with `room` pops left: the closing pop takes one of the room,
    /// and of the pops before a check.
    fn batch_pairs(&self, level: u64, since_check: u64, room: u64) -> usize {
        level
            .min(POP_BATCH as u64)
            .min((self.check_every - since_check).saturating_sub(1))
            .min(room - 1) as usize
    }

    /// Reports the inputs' levels after a drain: the INPUTS value its last batch read,
    /// or a read of its own where no batch ran.
    fn report_levels(&mut self, after_events: bool) -> Result<(), BusError> {
        let sent = match self.inputs.take() {
            Some(v) => self.levels.report_read(v, after_events),
            None => self.levels.report(self.bus.as_ref(), after_events)?,
        };
        self.unrung |= sent;
        self.ring();
        Ok(())
    }

    /// Tells the layer above, once per batch, that something was sent.
    fn ring(&mut self) {
        if std::mem::take(&mut self.unrung) {
            self.bell.ring();
        }
    }

    /// Records a device that went away or changed identity; true for those two.
    fn note_lost(&self, e: &DrainError) -> bool {
        let lost = match e {
            DrainError::Bus(BusError::Gone(why)) => {
                debug!("device gone: {why}");
                DeviceLost::Gone
            }
            DrainError::Vanished(id) => {
                Stats::add(&self.stats.bus_errors, 1);
                DeviceLost::Replaced { id: *id }
            }
            DrainError::Bus(_) => return false,
        };
        let _ = self.lost.set(lost);
        true
    }

    /// Counts interrupts that found nothing; many in a row are throttled so that a line
    /// that is not ours (wrong IRQ_F2P wiring, a shared line) cannot eat a core.
    fn note_empty_irq(&mut self, popped: u64) {
        if popped > 0 {
            self.empty_in_a_row = 0;
            return;
        }
        Stats::add(&self.stats.empty_irqs, 1);
        self.empty_in_a_row = self.empty_in_a_row.saturating_add(1);
        if self.empty_in_a_row == EMPTY_IRQS_BEFORE_THROTTLE {
            warn!(
                "the interrupt keeps firing with an empty FIFO: is another device on this \
                 line? (the overlay must use IRQ_F2P[1], interrupts = <0 30 4>); throttling"
            );
        }
        if self.empty_in_a_row >= EMPTY_IRQS_BEFORE_THROTTLE {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Pops events until EVT_POP reads empty. Every `check_every` pops it checks the
    /// peripheral's identity and the stop flag (when given); with `limit` it gives up
    /// after that many pops. Returns how it ended and how many events it popped.
    ///
    /// Its reads go in batches, each one [`Bus::read_many`]: one hand-over per batch
    /// where the bus is another thread (the simulator), the same transactions as one by
    /// one on a board. The first batch opens with ID and TIME ([`CHECK`]) and pops as
    /// many events as an interrupt brings ([`EventPump::first_pairs`], the coalescing
    /// count); each later one pops what the last level said (256 at most). Every batch
    /// closes with one more pop, its EVT_TS, FIFO_LEVEL, DROPPED and INPUTS ([`CLOSE`]).
    /// So an interrupt's drain is one batch when it found no more than it expected, and
    /// one that never finds the FIFO empty takes one per batch. It ends on an EVT_POP
    /// that reads empty, or (`leave_below` > 0) after a batch that left fewer than
    /// `leave_below` events waiting. Pops past the last event read VALID = 0 and take
    /// nothing.
    fn drain(
        &mut self,
        stop: Option<&AtomicBool>,
        limit: Option<u64>,
        leave_below: u64,
        mut first: Option<FirstBatch>,
    ) -> Result<(Drained, u64), DrainError> {
        self.inputs = None;
        // every WALL_SAMPLE_EVERY the opening is a TIME read of its own between two
        // readings of the system clock, for the wall-clock offset (never after a first
        // batch read with the wait: `wait` leaves that to the drain)
        let sample_wall = first.is_none() && self.wall_due();
        if sample_wall {
            self.sample_wall()?;
        }
        let mut level = self.first_pairs;
        let mut check = !sample_wall;
        let mut popped = 0u64;
        let mut since_check = 0u64;
        let mut gaps = 0u64;
        let mut offsets = std::mem::take(&mut self.offsets);
        let mut values = std::mem::take(&mut self.batch);
        // the drop count the last batch read, for the drain's end
        let mut dropped = None;
        let result = 'drain: loop {
            if since_check >= self.check_every {
                since_check = 0;
                if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                    break Ok(Drained::Stopped);
                }
                check = true;
            }
            let room = limit.map_or(u64::MAX, |l| l.saturating_sub(popped));
            if room == 0 {
                break Ok(Drained::Stopped);
            }
            let (pairs, read) = match first.take() {
                // read with the wait, identity first
                Some(f) => {
                    check = true;
                    (
                        f.pairs,
                        read_contract_if(regs::ID_VALUE, &offsets, &values, f.read),
                    )
                }
                None => {
                    let pairs = self.batch_pairs(level, since_check, room);
                    offsets.clear();
                    batch_offsets(&mut offsets, check, pairs);
                    values.clear();
                    let read = if check {
                        read_batch_if(self.bus.as_ref(), regs::ID_VALUE, &offsets, &mut values)
                    } else {
                        read_batch(self.bus.as_ref(), &offsets, &mut values)
                    };
                    (pairs, read)
                }
            };
            let head = if check { CHECK.len() } else { 0 };
            let popped_at = self.trace.as_ref().map(|_| trace::unix_ns());
            if check {
                // errors end the loop, not the function: the gaps found so far are
                // counted below
                match values.first() {
                    Some(&id) if id != regs::ID_VALUE => break Err(DrainError::Vanished(id)),
                    Some(_) => {}
                    // (read_batch_if returns at least one value or an error)
                    None => break Err(read.err().unwrap_or(BusError::Closed).into()),
                }
                if let Some(&t) = values.get(1) {
                    self.clock.update(t);
                }
                check = false;
            }
            let body = values.get(head..).unwrap_or_default();
            // every complete pair of the batch, the closing one included
            let complete = body.len().min(2 * pairs + 2) / 2;
            for i in 0..complete {
                let word = EvtPop(body[2 * i]);
                if !word.valid() {
                    // the FIFO held less than its level said, or (closing) is empty
                    continue;
                }
                popped += 1;
                since_check += 1;
                match self.accept(word, body[2 * i + 1], popped_at) {
                    Ok(gap) => gaps += gap,
                    Err(e) => break 'drain Err(e),
                }
            }
            // the batch's events are in the channel: the publisher may start on them
            // while the drain goes on
            self.ring();
            // (an event popped whose EVT_TS read failed is not handed up: the next
            // event's sequence number counts it in `seq_lost`)
            if let Err(e) = read {
                break Err(e.into());
            }
            let close = &values[head + 2 * pairs..];
            self.inputs = Some(close[4]);
            dropped = Some(close[3]);
            if !EvtPop(close[0]).valid() {
                break Ok(Drained::Empty);
            }
            level = u64::from(regs::FifoLevel(close[2]).count());
            if level < leave_below {
                break Ok(Drained::Left);
            }
        };
        self.offsets = offsets;
        self.batch = values;
        self.ring();
        if gaps > 0 {
            Stats::add(&self.stats.seq_lost, gaps);
            warn!(
                missing = gaps,
                "sequence numbers skipped: events lost in the hardware"
            );
        }
        // drops counted during this drain are reported with it, from its last batch;
        // after an error nothing more is touched (another bitstream may answer now),
        // and the error stays
        match (&result, dropped) {
            (Ok(_), Some(d)) => self.count_drops(d)?,
            (Ok(_), None) => {
                let d = self.bus.read(regs::DROPPED)?;
                self.count_drops(d)?;
            }
            (Err(_), _) => {}
        }
        result.map(|how| (how, popped))
    }

    /// Hands up one popped event (its EVT_POP word and EVT_TS); returns the sequence
    /// numbers it skipped. A word naming no input is counted and skipped, unless the
    /// peripheral's identity has gone.
    fn accept(&mut self, word: EvtPop, ts: u32, popped_at: Option<u64>) -> Result<u64, DrainError> {
        if word.input() >= self.n_inputs {
            // no such input: garbage on the bus, or the peripheral is gone
            let id = self.bus.read(regs::ID)?;
            if id != regs::ID_VALUE {
                return Err(DrainError::Vanished(id));
            }
            Stats::add(&self.stats.bus_errors, 1);
            error!(
                word = format_args!("{:#010x}", word.0),
                "impossible event word skipped"
            );
            return Ok(0);
        }
        let (seq, gap) = self.seq.accept(word.seq());
        Stats::add(&self.stats.captured, 1);
        let ts_us = self.clock.extend(ts);
        if let (Some(t), Some(at)) = (&self.trace, popped_at) {
            t.record(seq, at);
        }
        self.send(ButtonEvent {
            input: word.input(),
            level: word.level(),
            ts_us,
            seq,
            synthetic: word.synthetic(),
            utc_us: self.wall.utc(ts_us),
        });
        Ok(gap)
    }

    /// Opens a drain with the wall-clock sample: ID and TIME read between two readings
    /// of the system clock, which updates the offset the JSON `ts` is made with (and
    /// the 64-bit extension).
    fn sample_wall(&mut self) -> Result<(), DrainError> {
        let mut v = std::mem::take(&mut self.batch);
        v.clear();
        let before = unix_us();
        let read = read_batch_if(self.bus.as_ref(), regs::ID_VALUE, &CHECK, &mut v);
        let after = unix_us();
        let got = read.map(|()| (v[0], v.get(1).copied()));
        self.batch = v;
        let (id, time) = got?;
        let Some(time) = time.filter(|_| id == regs::ID_VALUE) else {
            return Err(DrainError::Vanished(id));
        };
        let hw = self.clock.update(time);
        if let (Some(b), Some(a)) = (before, after) {
            if let Some((offset, err)) = self.wall.sample(b, a, hw) {
                self.stats.wall_offset_us.store(offset, Ordering::Relaxed);
                self.stats.wall_offset_err_us.store(err, Ordering::Relaxed);
            }
        }
        self.wall_sampled = Some(Instant::now());
        Ok(())
    }

    /// Moves a DROPPED count just read into the stats: writing back what was read
    /// subtracts exactly that, so a drop in between is counted next time and the
    /// register never saturates.
    fn count_drops(&mut self, dropped: u32) -> Result<(), BusError> {
        if dropped == 0 {
            return Ok(());
        }
        self.bus.write(regs::DROPPED, dropped)?;
        Stats::add(&self.stats.hw_dropped, u64::from(dropped));
        if dropped == u32::MAX {
            warn!("hardware event FIFO overflowed: at least {dropped} events lost (counter saturated)");
        } else {
            warn!(dropped, "hardware event FIFO overflowed: events lost");
        }
        Ok(())
    }

    /// Hands an event up; a full channel loses it, counted and logged, never blocking
    /// (the FIFO must keep draining, and LED commands run on their own thread).
    fn send(&mut self, event: ButtonEvent) {
        match self.tx.try_send(event) {
            Ok(()) => self.unrung = true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.stats.channel_full.fetch_add(1, Ordering::Relaxed);
                if (n + 1).is_power_of_two() {
                    warn!(lost = n + 1, "event channel full: events lost");
                }
            }
        }
    }
}

/// Switches the LEDs of `mask` on, off or over, through the set/clear/toggle
/// registers: no read-modify-write to race with.
pub(crate) fn write_leds(bus: &dyn Bus, action: LedAction, mask: u32) -> Result<(), BusError> {
    match action {
        LedAction::On => bus.write(regs::LED_SET, mask),
        LedAction::Off => bus.write(regs::LED_CLR, mask),
        LedAction::Toggle => bus.write(regs::LED_TOGGLE, mask),
    }
}

struct LedWorker {
    bus: Arc<dyn Bus>,
    stats: Arc<Stats>,
    n_leds: u8,
    rx: Receiver<LedCommand>,
    /// A message (or a closed channel) at the stop or the loss.
    quit: Receiver<()>,
    tx: Sender<LedReport>,
    lost: LostFlag,
    board: Arc<Levels>,
    bell: Bell,
}

impl LedWorker {
    /// Ends at a stop, or once the device is lost: closing the report channel is how
    /// the bridge learns that the driver is done.
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) && self.lost.get().is_none() {
            crossbeam_channel::select! {
                recv(self.rx) -> cmd => match cmd {
                    Ok(cmd) => match self.apply(cmd) {
                        Ok(()) => {}
                        Err(BusError::Gone(why)) => {
                            debug!("device gone: {why}");
                            self.set_lost(DeviceLost::Gone);
                        }
                        Err(e) => {
                            Stats::add(&self.stats.bus_errors, 1);
                            error!("LED command {cmd:?} failed: {e}");
                        }
                    },
                    Err(_) => break,
                },
                // the loop's condition tells a stop from a loss
                recv(self.quit) -> q => if q.is_err() {
                    break;
                },
            }
        }
    }

    /// Records the loss and ends the event thread's wait, so that it stops too.
    fn set_lost(&self, lost: DeviceLost) {
        let _ = self.lost.set(lost);
        self.bus.wake_waiter();
    }

    fn apply(&mut self, cmd: LedCommand) -> Result<(), BusError> {
        if cmd.led >= self.n_leds {
            Stats::add(&self.stats.led_rejected, 1);
            warn!(
                led = cmd.led,
                leds = self.n_leds,
                "LED command for a LED that does not exist"
            );
            return Ok(());
        }
        // the event thread checks the identity at every wake, but a command may come
        // between two wakes: never write into an IP that is not ours
        if self.lost.get().is_some() {
            return Ok(());
        }
        let id = self.bus.read(regs::ID)?;
        if id != regs::ID_VALUE {
            self.set_lost(DeviceLost::Replaced { id });
            return Ok(());
        }
        let bit = 1u32 << cmd.led;
        write_leds(self.bus.as_ref(), cmd.action, bit)?;
        let back = self.bus.read(regs::LED)?;
        self.board.set_leds(back);
        Stats::add(&self.stats.led_commands, 1);
        let report = LedReport {
            led: cmd.led,
            on: back & bit != 0,
        };
        if self.tx.try_send(report).is_ok() {
            self.bell.ring();
        } else {
            let n = self.stats.led_reports_lost.fetch_add(1, Ordering::Relaxed);
            if (n + 1).is_power_of_two() {
                warn!(
                    lost = n + 1,
                    "LED report channel full: read-backs not reported"
                );
            }
        }
        Ok(())
    }
}
