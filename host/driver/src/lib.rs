//! The driver of the `pynq_mqtt_io` peripheral, on any [`Bus`].
//!
//! One thread waits for the interrupt, drains the event FIFO until it reads empty,
//! re-arms, and sends typed [`ButtonEvent`]s into a bounded channel. Another applies
//! [`LedCommand`]s and reports each LED's state as read back from the hardware.
//! Every loss (hardware drop, sequence gap, full channel) is counted in [`Stats`].

mod extend;
mod types;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_regs::{self as regs, offset, EvtPop, Params, Version};
use tracing::{debug, error, info, warn};

pub use extend::{Clock64, Seq64};
pub use types::{BadLedAction, ButtonEvent, DeviceInfo, LedAction, LedCommand, LedReport};

/// What can stop the driver from starting.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("register access failed: {0}")]
    Bus(#[from] BusError),
    #[error("no pynq_mqtt_io peripheral here: ID register reads {found:#010x}, expected {expected:#010x} (wrong bitstream loaded?)")]
    WrongId { found: u32, expected: u32 },
    #[error("register map version {found_major}.{found_minor} is not supported by this build (major {expected_major}): rebuild the overlay or the daemon so they match")]
    WrongVersion {
        found_major: u8,
        found_minor: u8,
        expected_major: u8,
    },
    #[error("cannot start driver thread: {0}")]
    Thread(std::io::Error),
}

/// Counters of the driver; all monotonic.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events read out of the hardware FIFO.
    pub captured: AtomicU64,
    /// Events the hardware reported dropped (its DROPPED counter, as deltas).
    pub hw_dropped: AtomicU64,
    /// Events missing from the sequence numbers (should equal `hw_dropped`).
    pub seq_lost: AtomicU64,
    /// Events lost because the channel to the publisher was full.
    pub channel_full: AtomicU64,
    /// Interrupts serviced.
    pub irqs: AtomicU64,
    /// Bus errors seen (each logged).
    pub bus_errors: AtomicU64,
    /// LED commands applied.
    pub led_commands: AtomicU64,
    /// LED commands refused (no such LED).
    pub led_rejected: AtomicU64,
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
        }
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
}

/// A running driver. [`Driver::stop`] drains the FIFO a last time and joins its threads.
pub struct Driver {
    bus: Arc<dyn Bus>,
    info: DeviceInfo,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Programs the input and interrupt settings.
fn configure(bus: &dyn Bus, c: &DriverConfig) -> Result<(), BusError> {
    bus.write32(offset::DEBOUNCE_US, u32::from(c.debounce_us))?;
    bus.write32(offset::INPUT_ENABLE, c.input_mask)?;
    bus.write32(offset::EDGE_RISE, c.rise_mask)?;
    bus.write32(offset::EDGE_FALL, c.fall_mask)?;
    bus.write32(offset::IRQ_THRESHOLD, u32::from(c.coalesce_count))?;
    bus.write32(offset::IRQ_TIMEOUT_US, c.coalesce_us)
}

/// Reads and checks the identity of the peripheral behind `bus`.
pub fn probe(bus: &dyn Bus) -> Result<DeviceInfo, DriverError> {
    let id = bus.read32(offset::ID)?;
    if id != regs::ID_VALUE {
        return Err(DriverError::WrongId {
            found: id,
            expected: regs::ID_VALUE,
        });
    }
    let version = Version(bus.read32(offset::VERSION)?);
    if version.major() != regs::VERSION_MAJOR || version.minor() < regs::VERSION_MINOR {
        return Err(DriverError::WrongVersion {
            found_major: version.major(),
            found_minor: version.minor(),
            expected_major: regs::VERSION_MAJOR,
        });
    }
    let params = Params(bus.read32(offset::PARAMS)?);
    Ok(DeviceInfo {
        version_major: version.major(),
        version_minor: version.minor(),
        n_inputs: params.n_inputs(),
        n_leds: params.n_leds(),
        fifo_depth: 1 << params.fifo_depth_log2(),
        clk_hz: bus.read32(offset::CLK_HZ)?,
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
        let stop = Arc::new(AtomicBool::new(false));
        let (ev_tx, ev_rx) = bounded(config.channel_capacity);
        let (cmd_tx, cmd_rx) = bounded::<LedCommand>(256);
        let (led_tx, led_rx) = bounded::<LedReport>(256 + usize::from(info.n_leds));

        let mut events = EventPump {
            bus: Arc::clone(&bus),
            stats: Arc::clone(&stats),
            tx: ev_tx,
            clock: Clock64::new(bus.read32(offset::TIME)?),
            seq: Seq64::default(),
            dropped_raw: bus.read32(offset::DROPPED)?,
        };
        bus.write32(offset::IRQ_ENABLE, regs::IrqEnable(0).with_event(true).0)?;

        // the state every LED starts in, so subscribers see it at once
        let leds_now = bus.read32(offset::LED)?;
        for led in 0..info.n_leds {
            let _ = led_tx.try_send(LedReport {
                led,
                on: leds_now >> led & 1 == 1,
            });
        }

        let mut threads = Vec::new();
        let (s, timeout) = (Arc::clone(&stop), config.irq_timeout);
        threads.push(
            std::thread::Builder::new()
                .name("driver-events".into())
                .spawn(move || events.run(&s, timeout))
                .map_err(DriverError::Thread)?,
        );
        let mut leds = LedWorker {
            bus: Arc::clone(&bus),
            stats: Arc::clone(&stats),
            n_leds: info.n_leds,
            rx: cmd_rx,
            tx: led_tx,
        };
        let s = Arc::clone(&stop);
        threads.push(
            std::thread::Builder::new()
                .name("driver-leds".into())
                .spawn(move || leds.run(&s))
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
                stop,
                threads,
            },
            DriverChannels {
                events: ev_rx,
                commands: cmd_tx,
                leds: led_rx,
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

    /// Stops both threads after a last drain of the FIFO; every event captured
    /// before this call is in the channel (or counted) when it returns.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.bus.wake_waiter();
        for t in self.threads.drain(..) {
            let _ = t.join();
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
    seq: Seq64,
    dropped_raw: u32,
}

impl EventPump {
    fn run(&mut self, stop: &AtomicBool, timeout: Duration) {
        let mut failures = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let result = match self.bus.wait_irq(timeout) {
                // the FIFO is drained on timeouts too: a lost interrupt costs latency, not events
                Ok(IrqWait::Fired) => {
                    Stats::add(&self.stats.irqs, 1);
                    self.drain().and_then(|()| self.bus.rearm_irq())
                }
                Ok(IrqWait::TimedOut) => self.drain(),
                Err(BusError::Closed) => break,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => failures = 0,
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
        // the last drain: everything captured before the stop goes up
        if let Err(e) = self.drain() {
            Stats::add(&self.stats.bus_errors, 1);
            error!("final event drain failed: {e}");
        }
        debug!("event pump stopped");
    }

    /// Pops events until the FIFO reads empty.
    fn drain(&mut self) -> Result<(), BusError> {
        self.clock.update(self.bus.read32(offset::TIME)?);
        let dropped = self.bus.read32(offset::DROPPED)?;
        let new_drops = dropped.wrapping_sub(self.dropped_raw);
        if new_drops > 0 {
            self.dropped_raw = dropped;
            Stats::add(&self.stats.hw_dropped, u64::from(new_drops));
            warn!(
                dropped = new_drops,
                "hardware event FIFO overflowed: events lost"
            );
        }
        loop {
            let word = EvtPop(self.bus.read32(offset::EVT_POP)?);
            if !word.valid() {
                return Ok(());
            }
            let ts = self.bus.read32(offset::EVT_TS)?;
            let (seq, gap) = self.seq.accept(word.seq());
            if gap > 0 {
                Stats::add(&self.stats.seq_lost, gap);
            }
            Stats::add(&self.stats.captured, 1);
            let event = ButtonEvent {
                input: word.input(),
                level: word.level(),
                ts_us: self.clock.extend(ts),
                seq,
                synthetic: word.synthetic(),
            };
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    let n = self.stats.channel_full.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        warn!(lost = n + 1, "event channel full: events lost");
                    }
                }
            }
        }
    }
}

struct LedWorker {
    bus: Arc<dyn Bus>,
    stats: Arc<Stats>,
    n_leds: u8,
    rx: Receiver<LedCommand>,
    tx: Sender<LedReport>,
}

impl LedWorker {
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(cmd) => {
                    if let Err(e) = self.apply(cmd) {
                        Stats::add(&self.stats.bus_errors, 1);
                        error!("LED command {cmd:?} failed: {e}");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
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
        let bit = 1u32 << cmd.led;
        // the hardware's set/clear/toggle registers: no read-modify-write to race with
        let reg = match cmd.action {
            LedAction::On => offset::LED_SET,
            LedAction::Off => offset::LED_CLR,
            LedAction::Toggle => offset::LED_TOGGLE,
        };
        self.bus.write32(reg, bit)?;
        let back = self.bus.read32(offset::LED)?;
        Stats::add(&self.stats.led_commands, 1);
        let _ = self.tx.try_send(LedReport {
            led: cmd.led,
            on: back & bit != 0,
        });
        Ok(())
    }
}
