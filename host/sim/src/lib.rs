//! The simulated board: the real `pynq_mqtt_io` RTL, Verilated, behind the
//! [`pynq_mqtt_bus::Bus`] trait.
//!
//! A clock thread owns the model. It advances it, paced to the wall clock (or as fast
//! as it runs while a stimulus replays), and wakes interrupt waiters. Every bus
//! transaction, pin change or query from another thread is a call queued to it and run
//! between two steps of a few clocks: no caller waits for a lock held while the model
//! steps, simulated time passes during each AXI transaction as it would on a board, and
//! [`Bus::read_many`] hands a whole drain over at once. The stimulus is handed to the
//! model up front and applied at its exact clock cycle, also while an AXI transaction
//! runs. Starved by the host, the clock catches up at twice real time, so it keeps real
//! time in the long run. A pin driven by the host (`set_input`) changes at the moment
//! the wall clock gives it.

pub mod base;
mod clock;
mod ffi;
pub mod shape;
mod shared;
pub mod stimulus;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, BusError, IrqWait};

pub use stimulus::{Step, StimulusError};

/// Size of the simulated register window (the top's C_S_AXI_ADDR_WIDTH = 16).
const WINDOW: usize = 0x1_0000;
/// Cycles the clock thread advances per lock of the model, at most.
const CHUNK: u64 = 1024;
/// Cycles the clock thread steps between two looks for waiting calls.
const SLICE: u64 = 64;
/// Clocks from a pin change to irq (synchronizer, edge, capture, the interrupt flop),
/// with room to spare: the clock thread wakes this long after a scheduled change.
const PIN_SETTLE: u64 = 16;
/// Wall seconds before a scheduled pin change at which a sleeping clock wakes to step
/// up to then, so that few cycles are left to step when the change is due.
const PIN_LEAD_S: f64 = 100e-6;
/// Behind the wall clock by more than this, the clock catches up at a bounded pace
/// (see `clock_thread`).
const CATCH_UP_CYCLES: u64 = 4 * CHUNK;
/// How many times real time the clock runs while it catches up.
const CATCH_UP_PACE: f64 = 2.0;
/// Far behind the wall clock, a driven pin keeps the wall-clock gap to the last one
/// up to this many simulated seconds (20,000 clocks at 1 MHz): a key or switch held
/// briefly keeps its length, and the caller's own stepping to reach the moment stays
/// bounded on a host slower than the model. A longer gap lands 20 ms after the last
/// pin: the order of changes is kept, their spacing beyond that is not.
const DRIVE_GAP_MAX_S: f64 = 0.02;

/// How fast simulated time runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// `factor` simulated seconds per wall second (1.0 is real time).
    RealTime(f64),
    /// As fast as the model runs while a stimulus replays, with the clock paused while
    /// an interrupt is pending or being serviced, so the host never falls behind; real
    /// time before [`SimBoard::start_stimulus`] and after the stimulus ends.
    Fast,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(Speed::Fast),
            "realtime" => Ok(Speed::RealTime(1.0)),
            _ => match s.parse::<f64>() {
                Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::RealTime(f)),
                _ => Err(format!(
                    "sim speed {s:?}: expected `realtime`, `fast` or a factor > 0"
                )),
            },
        }
    }
}

/// The speed as its setting reads: `realtime`, `fast` or the factor.
impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::RealTime(x) if *x == 1.0 => f.write_str("realtime"),
            Speed::RealTime(x) => write!(f, "{x}"),
            Speed::Fast => f.write_str("fast"),
        }
    }
}

/// In the config file, the speed's text.
impl<'de> serde::Deserialize<'de> for Speed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Speed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Default for Speed {
    fn default() -> Self {
        Speed::RealTime(1.0)
    }
}

/// What can go wrong starting the simulated board.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the Verilated model could not be created")]
    Create,
    #[error(transparent)]
    Stimulus(#[from] StimulusError),
    #[error("stimulus line for input {input} at {time_us} us does not fit this board")]
    BadStep { input: u32, time_us: u64 },
}

/// Settings of a simulated board.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub speed: Speed,
    pub stimulus: Vec<Step>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            speed: Speed::RealTime(1.0),
            stimulus: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    /// Waiting for `start_stimulus`.
    Held,
    Running,
    Done,
}

/// Where real-time pacing started: the wall clock then, as Unix nanoseconds and as an
/// `Instant`, and the model's cycle.
#[derive(Clone, Copy)]
struct Paced {
    unix_ns: u64,
    at: Instant,
    cycle: u64,
}

/// What the clock thread and the interrupt waiters need of a Verilated model.
trait Core: Send + 'static {
    fn step(&mut self, cycles: u64);
    fn step_until_irq(&mut self, cycles: u64) -> u64;
    fn cycles(&self) -> u64;
    fn schedule_input(&mut self, cycle: u64, input: u32, level: bool) -> bool;
    fn pending_inputs(&self) -> u64;
    fn next_input_cycle(&self) -> u64;
    fn irq(&self) -> bool;
    fn inputs(&self) -> u32;
    fn leds(&self) -> u32;
    fn read(&mut self, addr: u32) -> Result<u32, ffi::AxiError>;
    fn write(&mut self, addr: u32, value: u32) -> Result<(), ffi::AxiError>;
    fn set_inputs(&mut self, levels: u32);
}

macro_rules! core_for {
    ($t:ty) => {
        impl Core for $t {
            fn step(&mut self, cycles: u64) {
                <$t>::step(self, cycles)
            }
            fn step_until_irq(&mut self, cycles: u64) -> u64 {
                <$t>::step_until_irq(self, cycles)
            }
            fn cycles(&self) -> u64 {
                <$t>::cycles(self)
            }
            fn schedule_input(&mut self, cycle: u64, input: u32, level: bool) -> bool {
                <$t>::schedule_input(self, cycle, input, level)
            }
            fn pending_inputs(&self) -> u64 {
                <$t>::pending_inputs(self)
            }
            fn next_input_cycle(&self) -> u64 {
                <$t>::next_input_cycle(self)
            }
            fn irq(&self) -> bool {
                <$t>::irq(self)
            }
            fn inputs(&self) -> u32 {
                <$t>::inputs(self)
            }
            fn leds(&self) -> u32 {
                <$t>::leds(self)
            }
            fn read(&mut self, addr: u32) -> Result<u32, ffi::AxiError> {
                <$t>::read(self, addr)
            }
            fn write(&mut self, addr: u32, value: u32) -> Result<(), ffi::AxiError> {
                <$t>::write(self, addr, value)
            }
            fn set_inputs(&mut self, levels: u32) {
                <$t>::set_inputs(self, levels)
            }
        }
    };
}
core_for!(ffi::Model);
core_for!(ffi::BaseModel);

/// What only the clock thread touches: the model and the replay's bookkeeping.
struct State<M> {
    model: M,
    stimulus: Vec<Step>,
    replay: Replay,
    /// The last pin driven by the host: the model's cycle then, and the paced cycle of
    /// its wall-clock moment.
    last_drive: Option<(u64, u64)>,
}

/// A call on the model, run by the clock thread between two steps.
type Job<M> = Box<dyn FnOnce(&Shared<M>, &mut State<M>) + Send>;

/// Where a call's result comes back.
struct Slot<R> {
    value: Mutex<Option<R>>,
    cv: Condvar,
}

/// Locks, ignoring poison: a panic elsewhere leaves plain data usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Shared<M> {
    /// Calls waiting for the clock thread. The clock thread owns the model and runs
    /// them between steps of a few clocks, so a bus transaction never waits for a lock
    /// held while the model steps, and the clock never waits for a bus caller. This
    /// lock is held only to push or take the list.
    calls: Mutex<Vec<Job<M>>>,
    /// Set after every push: the clock thread looks between steps.
    pending: AtomicBool,
    /// The clock thread, unparked by a call or a re-arm.
    clock: OnceLock<Thread>,
    /// UIO semantics: false from a delivered interrupt until the host re-arms.
    armed: AtomicBool,
    /// The interrupt line, as the clock thread published it after its last step or
    /// call.
    line: AtomicBool,
    /// The input and LED pins, published the same way.
    inputs: AtomicU32,
    leds: AtomicU32,
    /// Cycle of the reset: TIME = 0.
    base_cycle: u64,
    /// Every stimulus line has been applied.
    done: Mutex<bool>,
    done_cv: Condvar,
    /// Interrupt deliveries (and wake-ups), counted: `wait_irq` sleeps on this.
    rings: Mutex<u64>,
    irq_cv: Condvar,
    stop: AtomicBool,
    /// Set by `wake_waiter`: the next (or current) `wait_irq` returns at once.
    wake: AtomicBool,
    /// A `wait_irq_and_read` waiting: its reads run in the clock thread the moment the
    /// interrupt is delivered.
    irq_read: Mutex<Option<IrqRead>>,
    speed: Speed,
    clk_hz: u64,
    /// The register window the bus sees: offset 0 is the model's address `base`.
    window: Window,
    /// Where real-time pacing stands: the wall clock at the epoch and the model's cycle
    /// then; None while a fast replay runs. Written only when the epoch changes (at
    /// start, and when fast replay begins or ends), never per chunk.
    paced_epoch: Mutex<Option<Paced>>,
}

/// The reads of a `wait_irq_and_read`, and (once the interrupt was delivered) their
/// values and the error that ended them.
struct IrqRead {
    expect: u32,
    offsets: Vec<u32>,
    done: Option<(Vec<u32>, Option<BusError>)>,
}

/// A bus's register window on the model: `span` bytes from address `base`.
#[derive(Clone, Copy)]
struct Window {
    base: u32,
    span: usize,
}

/// The simulated board. Dropping it stops the clock.
pub struct SimBoard {
    shared: Arc<Shared<ffi::Model>>,
    clock: Option<JoinHandle<()>>,
    n_inputs: u32,
    n_leds: u32,
}

impl SimBoard {
    /// Creates the model, resets it and starts its clock.
    pub fn start(config: SimConfig) -> Result<Self, SimError> {
        let model = ffi::Model::new().ok_or(SimError::Create)?;
        let clk_hz = u64::from(ffi::clk_hz());
        if let Some(s) = config.stimulus.iter().find(|s| s.input >= ffi::n_inputs()) {
            return Err(SimError::BadStep {
                input: s.input,
                time_us: s.time_us,
            });
        }
        let window = Window {
            base: 0,
            span: WINDOW,
        };
        let (shared, clock) = Shared::start(model, config.stimulus, config.speed, clk_hz, window)?;
        Ok(Self {
            shared,
            clock: Some(clock),
            n_inputs: ffi::n_inputs(),
            n_leds: ffi::n_leds(),
        })
    }

    /// Number of button inputs of the simulated peripheral.
    pub fn n_inputs(&self) -> u32 {
        self.n_inputs
    }

    /// Number of LEDs of the simulated peripheral.
    pub fn n_leds(&self) -> u32 {
        self.n_leds
    }

    /// Clock frequency the model was built for.
    pub fn clk_hz(&self) -> u64 {
        self.shared.clk_hz
    }

    /// Starts replaying the stimulus: its time 0 is now. Call it once the host is ready
    /// to take events (in fast mode the stimulus runs ahead of the wall clock).
    ///
    /// Returns that time 0 in simulated microseconds since reset (the scale of the TIME
    /// register and of event stamps), so a caller can relate stamps to stimulus times
    /// however slowly the host got here; `None` when the replay had already started.
    pub fn start_stimulus(&self) -> Option<u64> {
        self.shared.start_stimulus()
    }

    /// Drives one button pin now (keys in the demo).
    pub fn set_input(&self, input: u32, level: bool) {
        if input >= self.n_inputs {
            return;
        }
        self.shared.drive_input(input, level);
    }

    /// The button pins as driven (as of the clock thread's last step or call).
    pub fn inputs(&self) -> u32 {
        self.shared.inputs.load(Ordering::Relaxed)
    }

    /// The LED pins (as of the clock thread's last step or call: a bus write that
    /// returned is in it).
    pub fn leds(&self) -> u32 {
        self.shared.leds.load(Ordering::Relaxed)
    }

    /// Simulated microseconds since reset.
    pub fn sim_time_us(&self) -> u64 {
        self.shared.sim_time_us()
    }

    /// The wall-clock moment, in Unix nanoseconds, that real-time pacing gives the
    /// simulated moment `sim_us` (microseconds since reset): when a board's pin would
    /// have changed for a stimulus step at that simulated time. The model itself gets
    /// there a little later (it runs in chunks behind the wall clock). None while a fast
    /// replay runs (no pacing then).
    pub fn paced_unix_ns(&self, sim_us: u64) -> Option<u64> {
        let Paced {
            unix_ns: epoch_ns,
            cycle: epoch_cycle,
            ..
        } = self.shared.paced()?;
        let factor = match self.shared.speed {
            Speed::RealTime(f) => f,
            // real time before and after the replay
            Speed::Fast => 1.0,
        };
        let base = self.shared.base_cycle;
        let clk = self.shared.clk_hz;
        let cycle = i128::from(base) + i128::from(sim_us) * i128::from(clk) / 1_000_000;
        // cycles from the epoch as nanoseconds; the epoch itself stays an integer (as a
        // float, a Unix time in ns keeps only about 256 ns of resolution)
        let ns = (cycle - i128::from(epoch_cycle)) as f64 * 1e9 / (factor * clk as f64);
        u64::try_from(i128::from(epoch_ns) + ns.round() as i128).ok()
    }

    /// Whether every stimulus line has been applied.
    pub fn stimulus_done(&self) -> bool {
        self.shared.stimulus_done()
    }

    /// Waits until every stimulus line has been applied; false on timeout.
    pub fn wait_stimulus_done(&self, timeout: Duration) -> bool {
        self.shared.wait_stimulus_done(timeout)
    }
}

impl Drop for SimBoard {
    fn drop(&mut self) {
        self.shared.stop_clock(&mut self.clock);
    }
}

impl Bus for SimBoard {
    fn read32(&self, offset: u32) -> Result<u32, BusError> {
        self.shared.read(offset)
    }

    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        self.shared.write(offset, value)
    }

    fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        self.shared.read_many(offsets, out)
    }

    fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        self.shared.read_many_if(expect, offsets, out)
    }

    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        self.shared.wait_irq(timeout)
    }

    fn wait_irq_and_read(
        &self,
        timeout: Duration,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(IrqWait, Result<(), BusError>), BusError> {
        self.shared.wait_irq_and_read(timeout, expect, offsets, out)
    }

    fn rearm_irq(&self) -> Result<(), BusError> {
        self.shared.rearm_irq();
        Ok(())
    }

    fn wake_waiter(&self) {
        self.shared.wake_waiter();
    }

    fn describe(&self) -> String {
        format!("sim ({} Hz Verilated RTL)", self.shared.clk_hz)
    }
}

/// Number of button inputs the simulated peripheral was built with.
pub fn model_n_inputs() -> u32 {
    ffi::n_inputs()
}

/// Number of LEDs the simulated peripheral was built with.
pub fn model_n_leds() -> u32 {
    ffi::n_leds()
}

/// The clock frequency the simulated peripheral was built for (its simulated Hz).
pub fn model_clk_hz() -> u64 {
    u64::from(ffi::clk_hz())
}

#[cfg(test)]
mod tests {
    use super::Speed;

    #[test]
    fn a_speed_reads_back_as_it_is_written() {
        for (text, speed) in [
            ("realtime", Speed::RealTime(1.0)),
            ("fast", Speed::Fast),
            ("2.5", Speed::RealTime(2.5)),
        ] {
            assert_eq!(text.parse::<Speed>(), Ok(speed));
            assert_eq!(speed.to_string(), text);
        }
        assert_eq!(Speed::default(), Speed::RealTime(1.0));
        for bad in ["bogus", "0", "-1", "inf", "NaN", ""] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }
}
