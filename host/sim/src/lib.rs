//! The simulated board: the real `pynq_mqtt_io` RTL, Verilated, behind the
//! [`pynq_mqtt_bus::Bus`] trait.
//!
//! A clock thread owns the model: it advances it paced to the wall clock (or as fast
//! as it runs while a stimulus replays) and runs the bus transactions the host queues
//! between two short runs of cycles (`clock.rs`), so simulated time also passes during
//! AXI transactions, as on a board, and no bus call waits for a lock held while the
//! model runs. The stimulus is handed to the model up front and applied at its exact
//! clock cycle, also while an AXI transaction runs.

mod clock;
mod ffi;
pub mod shape;
pub mod stimulus;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{check_offset, Bus, BusError, IrqWait};

use clock::{Core, Job, Replay, Signals};
pub use stimulus::{Step, StimulusError};

/// Size of the simulated register window (the top's C_S_AXI_ADDR_WIDTH = 16).
const WINDOW: usize = 0x1_0000;
/// A caller spins this long for its transaction's answer before it parks: the clock
/// thread answers within a few microseconds unless it is mid-run.
const REPLY_SPIN: Duration = Duration::from_micros(20);

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

/// A transaction's answer, handed from the clock thread to the caller.
struct Reply<R> {
    value: Mutex<Option<R>>,
    ready: AtomicBool,
    caller: Thread,
}

/// Simulated time the clock skipped because its thread fell behind the wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How often it skipped.
    pub times: u64,
    /// Simulated microseconds skipped in all.
    pub sim_us: u64,
}

/// The simulated board. Dropping it stops the clock.
pub struct SimBoard {
    signals: Arc<Signals>,
    /// Jobs for the clock thread; `None` once dropping.
    jobs: Option<Sender<Job>>,
    clock: Option<JoinHandle<()>>,
    speed: Speed,
    clk_hz: u64,
    n_inputs: u32,
    n_leds: u32,
}

impl SimBoard {
    /// Creates the model, resets it and starts its clock.
    pub fn start(config: SimConfig) -> Result<Self, SimError> {
        let model = ffi::Model::new().ok_or(SimError::Create)?;
        let base_cycle = model.cycles();
        let clk_hz = u64::from(ffi::clk_hz());
        if let Some(s) = config.stimulus.iter().find(|s| s.input >= ffi::n_inputs()) {
            return Err(SimError::BadStep {
                input: s.input,
                time_us: s.time_us,
            });
        }
        let mut core = Core {
            model,
            base_cycle,
            stimulus: config.stimulus,
            replay: Replay::Held,
            scheduled: Default::default(),
        };
        let signals = Arc::new(Signals::new());
        let (tx, rx) = channel::<Job>();
        let sig = Arc::clone(&signals);
        let speed = config.speed;
        let clock = std::thread::Builder::new()
            .name("sim-clock".into())
            .spawn(move || {
                clock::run(&mut core, rx, &sig, speed, clk_hz);
                // callers still waiting learn that the board is gone
                sig.stop.store(true, Ordering::SeqCst);
                sig.notify();
            })
            .map_err(|_| SimError::Create)?;
        Ok(Self {
            signals,
            jobs: Some(tx),
            clock: Some(clock),
            speed,
            clk_hz,
            n_inputs: ffi::n_inputs(),
            n_leds: ffi::n_leds(),
        })
    }

    /// Runs `f` on the clock thread, between two runs of cycles, and returns its
    /// result; `None` once the clock has stopped.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> Option<R> {
        let reply = Arc::new(Reply {
            value: Mutex::new(None),
            ready: AtomicBool::new(false),
            caller: std::thread::current(),
        });
        let r = Arc::clone(&reply);
        let job: Job = Box::new(move |core| {
            let v = f(core);
            *r.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
            r.ready.store(true, Ordering::Release);
            r.caller.unpark();
        });
        self.jobs.as_ref()?.send(job).ok()?;
        // a driver's transactions come in quick succession: a short spin saves the
        // two context switches of parking on most of them
        let spin_until = Instant::now() + REPLY_SPIN;
        while !reply.ready.load(Ordering::Acquire) {
            if Instant::now() < spin_until {
                std::hint::spin_loop();
                continue;
            }
            if self.signals.stop.load(Ordering::SeqCst) {
                // the clock thread ended; a job it never ran is dropped with its queue
                if !reply.ready.load(Ordering::Acquire) {
                    return None;
                }
                break;
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
        let v = reply.value.lock().unwrap_or_else(|p| p.into_inner()).take();
        v
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
        self.clk_hz
    }

    /// The speed the board was started with.
    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// Starts replaying the stimulus: its time 0 is now. Call it once the host is ready
    /// to take events (in fast mode the stimulus runs ahead of the wall clock).
    ///
    /// Returns that time 0 in simulated microseconds since reset (the scale of the TIME
    /// register and of event stamps), so a caller can relate stamps to stimulus times
    /// however slowly the host got here; `None` when the replay had already started.
    pub fn start_stimulus(&self) -> Option<u64> {
        let clk_hz = self.clk_hz;
        self.call(move |core| {
            if core.replay != Replay::Held {
                return None;
            }
            let base = core.model.cycles();
            let origin_us = (base - core.base_cycle) * 1_000_000 / clk_hz;
            for s in std::mem::take(&mut core.stimulus) {
                let cycle = base + s.time_us.saturating_mul(clk_hz) / 1_000_000;
                // inputs were checked at start and the parser keeps times sorted
                let scheduled = core.model.schedule_input(cycle, s.input, s.level);
                debug_assert!(scheduled);
                core.scheduled.push_back(cycle);
            }
            core.replay = Replay::Running;
            Some(origin_us)
        })
        .flatten()
    }

    /// Drives one button pin now (keys in the demo).
    pub fn set_input(&self, input: u32, level: bool) {
        self.drive_input(input, level);
    }

    /// Drives one button pin now; returns the wall-clock moment the pin changed (the
    /// model is then at that moment's simulated time), `None` for no such input or a
    /// stopped board.
    pub fn drive_input(&self, input: u32, level: bool) -> Option<Instant> {
        if input >= self.n_inputs {
            return None;
        }
        self.call(move |core| {
            let cur = core.model.inputs();
            let next = if level {
                cur | (1 << input)
            } else {
                cur & !(1 << input)
            };
            core.model.set_inputs(next);
            Instant::now()
        })
    }

    /// The button pins as driven.
    pub fn inputs(&self) -> u32 {
        self.call(|core| core.model.inputs()).unwrap_or(0)
    }

    /// The LED pins.
    pub fn leds(&self) -> u32 {
        self.call(|core| core.model.leds()).unwrap_or(0)
    }

    /// Simulated microseconds since reset.
    pub fn sim_time_us(&self) -> u64 {
        let clk_hz = self.clk_hz;
        self.call(move |core| (core.model.cycles() - core.base_cycle) * 1_000_000 / clk_hz)
            .unwrap_or(0)
    }

    /// Whether every stimulus line has been applied.
    pub fn stimulus_done(&self) -> bool {
        self.signals.done.load(Ordering::SeqCst)
    }

    /// Waits until every stimulus line has been applied; false on timeout.
    pub fn wait_stimulus_done(&self, timeout: Duration) -> bool {
        let sig = &self.signals;
        let guard = sig.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (_guard, _) = sig
            .cv
            .wait_timeout_while(guard, timeout, |_| {
                !sig.done.load(Ordering::SeqCst) && !sig.stop.load(Ordering::SeqCst)
            })
            .unwrap_or_else(|p| p.into_inner());
        sig.done.load(Ordering::SeqCst)
    }

    /// Simulated time skipped because the clock thread fell more than 100 ms behind
    /// the wall clock (it had no CPU): zero when the board kept real time.
    pub fn skipped(&self) -> Skipped {
        let cycles = self.signals.skipped_cycles.load(Ordering::Relaxed);
        Skipped {
            times: self.signals.skips.load(Ordering::Relaxed),
            sim_us: cycles * 1_000_000 / self.clk_hz.max(1),
        }
    }
}

impl Drop for SimBoard {
    fn drop(&mut self) {
        self.signals.stop.store(true, Ordering::SeqCst);
        // a napping clock thread wakes when its queue closes
        self.jobs = None;
        self.signals.notify();
        if let Some(h) = self.clock.take() {
            let _ = h.join();
        }
    }
}

impl Bus for SimBoard {
    fn read32(&self, offset: u32) -> Result<u32, BusError> {
        check_offset(offset, WINDOW)?;
        self.call(move |core| core.model.read(offset))
            .ok_or(BusError::Closed)?
            .map_err(|e| axi_error(offset, e))
    }

    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        check_offset(offset, WINDOW)?;
        self.call(move |core| core.model.write(offset, value))
            .ok_or(BusError::Closed)?
            .map_err(|e| axi_error(offset, e))
    }

    /// The whole drain in one job of the clock thread: one hand-over for up to
    /// `out.len()` events instead of two per event.
    fn read_fifo(
        &self,
        pop: u32,
        valid: u32,
        latched: u32,
        out: &mut [(u32, u32)],
    ) -> Result<usize, BusError> {
        check_offset(pop, WINDOW)?;
        check_offset(latched, WINDOW)?;
        let max = out.len();
        let (got, err) = self
            .call(move |core| {
                let mut got = Vec::with_capacity(max.min(64));
                while got.len() < max {
                    let word = match core.model.read(pop) {
                        Ok(w) => w,
                        Err(e) => return (got, Some(axi_error(pop, e))),
                    };
                    if word & valid == 0 {
                        break;
                    }
                    match core.model.read(latched) {
                        Ok(l) => got.push((word, l)),
                        Err(e) => return (got, Some(axi_error(latched, e))),
                    }
                }
                (got, None)
            })
            .ok_or(BusError::Closed)?;
        // pairs read before an error are lost with it, as with single reads that fail
        if let Some(e) = err {
            return Err(e);
        }
        out[..got.len()].copy_from_slice(&got);
        Ok(got.len())
    }

    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        let sig = &self.signals;
        let deadline = Instant::now() + timeout;
        let mut guard = sig.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if sig.stop.load(Ordering::SeqCst) {
                return Err(BusError::Closed);
            }
            if sig.irq.load(Ordering::SeqCst) && sig.armed.swap(false, Ordering::SeqCst) {
                return Ok(IrqWait::Fired);
            }
            if sig.wake.swap(false, Ordering::SeqCst) {
                return Ok(IrqWait::TimedOut);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(IrqWait::TimedOut);
            }
            guard = sig
                .cv
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn rearm_irq(&self) -> Result<(), BusError> {
        self.signals.armed.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn wake_waiter(&self) {
        self.signals.wake.store(true, Ordering::SeqCst);
        self.signals.notify();
    }

    fn describe(&self) -> String {
        format!("sim ({} Hz Verilated RTL)", self.clk_hz)
    }
}

fn axi_error(offset: u32, e: ffi::AxiError) -> BusError {
    match e {
        ffi::AxiError::Timeout => BusError::Timeout { offset },
        ffi::AxiError::Response(resp) => BusError::Response { offset, resp },
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
