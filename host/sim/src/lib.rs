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
mod ffi;
pub mod shape;
pub mod stimulus;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{check_offset, Bus, BusError, IrqWait};

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

impl<M: Core> Shared<M> {
    /// A model with its clock thread: the engine under [`SimBoard`] and
    /// [`base::SimBaseBoard`].
    fn start(
        model: M,
        stimulus: Vec<Step>,
        speed: Speed,
        clk_hz: u64,
        window: Window,
    ) -> Result<(Arc<Self>, JoinHandle<()>), SimError> {
        let base_cycle = model.cycles();
        let shared = Arc::new(Shared {
            calls: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            clock: OnceLock::new(),
            armed: AtomicBool::new(true),
            line: AtomicBool::new(model.irq()),
            inputs: AtomicU32::new(model.inputs()),
            leds: AtomicU32::new(model.leds()),
            base_cycle,
            done: Mutex::new(false),
            done_cv: Condvar::new(),
            rings: Mutex::new(0),
            irq_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            wake: AtomicBool::new(false),
            irq_read: Mutex::new(None),
            speed,
            clk_hz,
            window,
            // real time starts now, not when the clock thread first runs: a pin driven
            // before then has its moment too
            paced_epoch: Mutex::new(Some(Paced {
                unix_ns: unix_ns(),
                at: Instant::now(),
                cycle: base_cycle,
            })),
        });
        let state = State {
            model,
            stimulus,
            replay: Replay::Held,
            last_drive: None,
        };
        let s = Arc::clone(&shared);
        let clock = std::thread::Builder::new()
            .name("sim-clock".into())
            .spawn(move || clock_thread(&s, state))
            .map_err(|_| SimError::Create)?;
        // a call made before this line waits at most one sleep of the clock (1 ms)
        let _ = shared.clock.set(clock.thread().clone());
        Ok((shared, clock))
    }

    fn stop_clock(&self, clock: &mut Option<JoinHandle<()>>) {
        {
            // under the calls' lock: no call is queued after the clock's last look
            let _calls = lock(&self.calls);
            self.stop.store(true, Ordering::SeqCst);
        }
        self.unpark();
        self.ring();
        if let Some(h) = clock.take() {
            let _ = h.join();
        }
    }

    fn unpark(&self) {
        if let Some(t) = self.clock.get() {
            t.unpark();
        }
    }

    /// Runs `f` on the model in the clock thread and returns its result; None once the
    /// clock has stopped (the board is being dropped).
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Self, &mut State<M>) -> R + Send + 'static,
    ) -> Option<R> {
        let slot = Arc::new(Slot {
            value: Mutex::new(None),
            cv: Condvar::new(),
        });
        let back = Arc::clone(&slot);
        {
            let mut calls = lock(&self.calls);
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            calls.push(Box::new(move |sh: &Self, st: &mut State<M>| {
                let r = f(sh, st);
                // what the call changed is visible before its caller goes on
                sh.publish(st);
                *lock(&back.value) = Some(r);
                back.cv.notify_one();
            }));
        }
        self.pending.store(true, Ordering::SeqCst);
        self.unpark();
        let mut value = lock(&slot.value);
        loop {
            if let Some(r) = value.take() {
                return Some(r);
            }
            if Arc::strong_count(&slot) == 1 {
                // the clock thread stopped and dropped the call unrun
                return None;
            }
            value = slot
                .cv
                .wait_timeout(value, Duration::from_millis(50))
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }

    /// Runs the calls that are waiting (clock thread only).
    fn serve(&self, st: &mut State<M>) {
        if !self.pending.swap(false, Ordering::SeqCst) {
            return;
        }
        let calls = std::mem::take(&mut *lock(&self.calls));
        for call in calls {
            call(self, st);
        }
    }

    /// Makes the model's pins and line visible to other threads, and rings an armed
    /// interrupt (clock thread only).
    fn publish(&self, st: &mut State<M>) {
        let line = self.store_pins(st);
        // the line before the re-arm flag, as `rearm_irq` writes the flag before it
        // looks at the line: one of the two sees the other
        if line && self.armed.load(Ordering::SeqCst) {
            self.deliver_read(st);
            self.ring();
        }
    }

    /// Publishes the line and the pins; returns the line.
    fn store_pins(&self, st: &State<M>) -> bool {
        let line = st.model.irq();
        self.line.store(line, Ordering::SeqCst);
        self.inputs.store(st.model.inputs(), Ordering::Relaxed);
        self.leds.store(st.model.leds(), Ordering::Relaxed);
        line
    }

    /// The line is high and armed: a waiting `wait_irq_and_read` takes the interrupt
    /// here and its reads run now, before the model steps on (clock thread only).
    fn deliver_read(&self, st: &mut State<M>) {
        let mut waiting = lock(&self.irq_read);
        let Some(r) = waiting.as_mut().filter(|r| r.done.is_none()) else {
            return;
        };
        if self
            .armed
            .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        r.done = Some(read_regs(
            &mut st.model,
            self.window.base,
            Some(r.expect),
            &r.offsets,
        ));
        drop(waiting);
        self.store_pins(st);
    }

    fn start_stimulus(&self) -> Option<u64> {
        self.call(|sh, st| {
            if st.replay != Replay::Held {
                return None;
            }
            let base = st.model.cycles();
            let origin_us = (base - sh.base_cycle) * 1_000_000 / sh.clk_hz;
            let clk_hz = sh.clk_hz;
            for s in std::mem::take(&mut st.stimulus) {
                let cycle = base + s.time_us.saturating_mul(clk_hz) / 1_000_000;
                // inputs were checked at start and the parser keeps times sorted
                let scheduled = st.model.schedule_input(cycle, s.input, s.level);
                debug_assert!(scheduled);
            }
            st.replay = Replay::Running;
            Some(origin_us)
        })
        .flatten()
    }

    fn sim_time_us(&self) -> u64 {
        self.call(|sh, st| (st.model.cycles() - sh.base_cycle) * 1_000_000 / sh.clk_hz)
            .unwrap_or(0)
    }

    fn stimulus_done(&self) -> bool {
        *lock(&self.done)
    }

    fn wait_stimulus_done(&self, timeout: Duration) -> bool {
        let (done, _) = self
            .done_cv
            .wait_timeout_while(lock(&self.done), timeout, |d| !*d)
            .unwrap_or_else(|p| p.into_inner());
        *done
    }

    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        let deadline = Instant::now() + timeout;
        loop {
            // the count before the look: a ring after it ends the sleep below at once
            let seen = *self.rings();
            if self.stop.load(Ordering::SeqCst) {
                return Err(BusError::Closed);
            }
            if self.line.load(Ordering::SeqCst)
                && self
                    .armed
                    .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return Ok(IrqWait::Fired);
            }
            if self.wake.swap(false, Ordering::SeqCst) {
                return Ok(IrqWait::TimedOut);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(IrqWait::TimedOut);
            }
            let rings = self.rings();
            drop(
                self.irq_cv
                    .wait_timeout_while(rings, left, |n| *n == seen)
                    .unwrap_or_else(|p| p.into_inner()),
            );
        }
    }

    /// [`Bus::wait_irq_and_read`]: the reads wait in `irq_read` for the clock thread,
    /// which runs them as it delivers the interrupt (`deliver_read`).
    fn wait_irq_and_read(
        &self,
        timeout: Duration,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(IrqWait, Result<(), BusError>), BusError> {
        for &offset in offsets {
            check_offset(offset, self.window.span)?;
        }
        *lock(&self.irq_read) = Some(IrqRead {
            expect,
            offsets: offsets.to_vec(),
            done: None,
        });
        // a line already high and armed is delivered at the clock's next look
        self.unpark();
        let deadline = Instant::now() + timeout;
        // takes the reads back; Some when the clock thread ran them meanwhile (their
        // pops happened: they must not be dropped)
        let take = || lock(&self.irq_read).take().and_then(|r| r.done);
        let done = loop {
            // the count before the look: a ring after it ends the sleep below at once
            let seen = *self.rings();
            let finished = {
                let mut waiting = lock(&self.irq_read);
                match waiting.as_ref() {
                    Some(r) if r.done.is_some() => waiting.take().and_then(|r| r.done),
                    _ => None,
                }
            };
            if finished.is_some() {
                break finished;
            }
            if self.stop.load(Ordering::SeqCst) {
                return match take() {
                    Some(done) => Ok(deliver(done, out)),
                    None => Err(BusError::Closed),
                };
            }
            if self.wake.swap(false, Ordering::SeqCst) {
                break take();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break take();
            }
            let rings = self.rings();
            drop(
                self.irq_cv
                    .wait_timeout_while(rings, left, |n| *n == seen)
                    .unwrap_or_else(|p| p.into_inner()),
            );
        };
        Ok(match done {
            Some(done) => deliver(done, out),
            None => (IrqWait::TimedOut, Ok(())),
        })
    }

    fn rearm_irq(&self) {
        self.armed.store(true, Ordering::SeqCst);
        // a line already high fires at once (wait_irq looks at it), and a clock paused
        // for this re-arm (fast replay) goes on
        self.unpark();
    }

    fn wake_waiter(&self) {
        self.wake.store(true, Ordering::SeqCst);
        self.ring();
    }

    fn paced(&self) -> Option<Paced> {
        *lock(&self.paced_epoch)
    }

    /// Drives one pin at the simulated moment that real-time pacing gives now, not at
    /// whatever cycle the model has reached: the model runs in chunks behind the wall
    /// clock, and two changes a few milliseconds apart (a key pressed and released in
    /// the demo) would otherwise land in the same cycle and the press vanish. The clock
    /// thread steps the model up to that moment, then changes the pin. The wall-clock
    /// gap to the last pin driven is kept, up to DRIVE_GAP_MAX_S of simulated time,
    /// whenever the model is past that moment (a pin that landed late does not bring
    /// the next one closer) or far behind it (a host too slow for the model, e.g. under
    /// emulation: the pin lands that gap after the last one instead), so a switch held
    /// 5 ms stays held 5 ms and changes stay in order. In fast replay the pin changes at
    /// the model's cycle.
    fn drive_input(&self, input: u32, level: bool) {
        // the pin's moment is the caller's, not the later one at which the clock thread
        // runs the call (the clock steps only up to a target it set before the call
        // came, but a bus transaction's clocks can take the model a little past it)
        let called = Instant::now();
        self.call(move |sh, st| {
            let paced = sh.paced().map(|p| {
                let factor = match sh.speed {
                    Speed::RealTime(f) => f,
                    Speed::Fast => 1.0,
                };
                let since = called.saturating_duration_since(p.at).as_secs_f64();
                p.cycle + (since * factor * sh.clk_hz as f64) as u64
            });
            let now = st.model.cycles();
            let cap = (DRIVE_GAP_MAX_S * sh.clk_hz as f64) as u64;
            let want = match paced {
                None => now,
                Some(p) => {
                    // the gap to the last pin driven, kept (up to the cap): a pin that
                    // landed late (the model ran a bus transaction past its moment) does
                    // not bring the next one closer to it
                    let kept = st
                        .last_drive
                        .map(|(at, then)| at + p.saturating_sub(then).min(cap));
                    if p.saturating_sub(now) <= CATCH_UP_CYCLES {
                        p.max(kept.unwrap_or(0))
                    } else {
                        kept.unwrap_or(now)
                    }
                }
            }
            .max(now);
            if want > now {
                st.model.step(want - now);
            }
            let cur = st.model.inputs();
            let next = if level {
                cur | (1 << input)
            } else {
                cur & !(1 << input)
            };
            st.model.set_inputs(next);
            st.last_drive = paced.map(|p| (st.model.cycles(), p));
        });
    }

    /// One AXI read at a bus offset of the window; errors name the offset.
    fn read(&self, offset: u32) -> Result<u32, BusError> {
        check_offset(offset, self.window.span)?;
        let base = self.window.base;
        self.call(move |_, st| {
            st.model
                .read(base + offset)
                .map_err(|e| axi_error(offset, e))
        })
        .unwrap_or(Err(BusError::Closed))
    }

    /// One AXI write at a bus offset of the window.
    fn write(&self, offset: u32, value: u32) -> Result<(), BusError> {
        check_offset(offset, self.window.span)?;
        let base = self.window.base;
        self.call(move |_, st| {
            st.model
                .write(base + offset, value)
                .map_err(|e| axi_error(offset, e))
        })
        .unwrap_or(Err(BusError::Closed))
    }

    /// [`Bus::read_many`] in one call: the reads run back to back in the clock
    /// thread, simulated time passing through each as it would on a board.
    fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        self.read_batch(None, offsets, out)
    }

    /// [`Bus::read_many_if`] in one call, the check made in the clock thread.
    fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        self.read_batch(Some(expect), offsets, out)
    }

    /// Reads `offsets` back to back in the clock thread; with `expect`, stops after a
    /// first value that differs from it.
    fn read_batch(
        &self,
        expect: Option<u32>,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        for &offset in offsets {
            check_offset(offset, self.window.span)?;
        }
        let (base, offsets) = (self.window.base, offsets.to_vec());
        let (values, error) = self
            .call(move |_, st| read_regs(&mut st.model, base, expect, &offsets))
            .ok_or(BusError::Closed)?;
        out.extend_from_slice(&values);
        error.map_or(Ok(()), Err)
    }

    fn rings(&self) -> MutexGuard<'_, u64> {
        lock(&self.rings)
    }

    /// Wakes every `wait_irq`: it looks again at the line, the wake flag and the stop.
    fn ring(&self) {
        *self.rings() += 1;
        self.irq_cv.notify_all();
    }
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

/// The system clock in Unix nanoseconds (0 before 1970).
fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Ends the clock the way a stop does, also when a call panicked in it: later calls
/// return None at once, and those queued are dropped unrun (their callers get None),
/// instead of waiting for a thread that is gone.
struct ClockEnd<'a, M: Core>(&'a Shared<M>);

impl<M: Core> Drop for ClockEnd<'_, M> {
    fn drop(&mut self) {
        let queued = {
            let mut calls = lock(&self.0.calls);
            self.0.stop.store(true, Ordering::SeqCst);
            std::mem::take(&mut *calls)
        };
        drop(queued);
        self.0.ring();
    }
}

/// Asks the kernel to end this thread's timed sleeps on time: a normal thread's timer
/// may fire up to 50 µs late (its timer slack), and the clock's sleeps end at the
/// moments a stimulus edge is due. Best effort: a kernel that refuses leaves the default.
fn tight_timer() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and changes only this thread's
    // timer slack; no memory is passed to the kernel.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn clock_thread<M: Core>(sh: &Shared<M>, mut st: State<M>) {
    let _end = ClockEnd(sh);
    tight_timer();
    let start = sh
        .paced()
        .expect("the epoch is set before the clock starts");
    let mut epoch = start.at;
    let mut epoch_cycle = start.cycle;
    // the wall clock of the epoch, read beside its Instant
    let set_paced = |at: Instant, unix_ns: u64, cycle: u64| {
        *lock(&sh.paced_epoch) = Some(Paced { unix_ns, at, cycle });
    };
    let mut fast = false;
    // while catching up: when the last round stepped
    let mut catch_up: Option<Instant> = None;
    let factor = match sh.speed {
        Speed::RealTime(f) => f,
        Speed::Fast => 1.0,
    };
    while !sh.stop.load(Ordering::SeqCst) {
        sh.serve(&mut st);
        // a `wait_irq_and_read` that came while the line was already high and armed
        // (the clock may stand still, paused for the host in fast replay) takes it now
        if sh.line.load(Ordering::SeqCst) && sh.armed.load(Ordering::SeqCst) {
            sh.publish(&mut st);
        }
        let now = st.model.cycles();
        if st.replay == Replay::Running && st.model.pending_inputs() == 0 {
            st.replay = Replay::Done;
            *lock(&sh.done) = true;
            sh.done_cv.notify_all();
        }
        let want_fast = sh.speed == Speed::Fast && st.replay == Replay::Running;
        if want_fast != fast {
            // real time resumes from where fast replay left simulated time
            fast = want_fast;
            epoch = Instant::now();
            let epoch_ns = unix_ns();
            epoch_cycle = now;
            if fast {
                *lock(&sh.paced_epoch) = None;
            } else {
                set_paced(epoch, epoch_ns, epoch_cycle);
            }
        }
        let target = if fast {
            u64::MAX
        } else {
            let elapsed = epoch.elapsed().as_secs_f64();
            epoch_cycle + (elapsed * factor * sh.clk_hz as f64) as u64
        };
        // Behind by more than a few chunks, the host starved this thread (a board's
        // fabric never starves). Replaying the missed time in one burst would overflow
        // the FIFO in a way no board does, and pausing for every interrupt until the host
        // serviced it (as fast replay does) can leave the clock behind for good when the
        // host's round trip is longer than the time between events. So the clock catches
        // up at a bounded pace, CATCH_UP_PACE times real time, and keeps real time in the
        // long run: the drain sees at most that multiple of the stimulus's rate meanwhile.
        let behind = target.saturating_sub(now);
        // the pace is kept from one round to the next: a stall of this thread while it
        // catches up earns one chunk at most
        let limit = if fast || behind <= CATCH_UP_CYCLES {
            catch_up = None;
            target
        } else {
            let at = Instant::now();
            let since = catch_up.map_or(Duration::ZERO, |last| at - last);
            catch_up = Some(at);
            let pace = CATCH_UP_PACE * factor * sh.clk_hz as f64;
            now + (since.as_secs_f64() * pace) as u64
        };
        // in fast mode, simulated time stands still from the moment the interrupt line
        // rises until the host has serviced it and re-armed: the host never falls behind
        let paused = fast && (!sh.armed.load(Ordering::SeqCst) || st.model.irq());
        let n = if paused {
            0
        } else {
            CHUNK.min(limit.saturating_sub(now))
        };
        // the chunk in slices, with the calls that came meanwhile served between them
        let mut left = n;
        let mut served = false;
        while left > 0 {
            let k = SLICE.min(left);
            left -= k;
            if fast {
                // stop at the edge that raises irq: the host reacts before the next one;
                // and stand still once the host has taken an interrupt (a call served
                // between two slices can end with the line still high for a clock)
                st.model.step_until_irq(k);
                if st.model.irq() || !sh.armed.load(Ordering::SeqCst) {
                    left = 0;
                }
            } else {
                st.model.step(k);
            }
            sh.publish(&mut st);
            if sh.pending.load(Ordering::SeqCst) {
                // the calls may change what the rest of the chunk should be (a replay
                // started, a re-arm): the next round decides afresh
                sh.serve(&mut st);
                served = true;
                break;
            }
        }
        let next_pin = st.model.next_input_cycle();
        if served || sh.pending.load(Ordering::SeqCst) {
            // a round cut short by calls, or a call after the last slice: on at once,
            // not after a sleep
            continue;
        }
        // a call or a re-arm unparks the clock; a sleep that ends early is harmless
        if paused {
            // waiting for the host's re-arm
            std::thread::park_timeout(Duration::from_millis(1));
        } else if catch_up.is_some() && n < CHUNK {
            // catching up: a short sleep between rounds (each round steps twice the
            // time since the last)
            std::thread::park_timeout(Duration::from_micros(20));
        } else if n < CHUNK && catch_up.is_none() {
            // caught up with the wall clock: sleep until the next chunk is due, or until
            // a scheduled pin change has had the few clocks it needs to raise irq, so the
            // fabric acts on a stimulus edge at its moment, not up to a chunk later
            let rate = factor * sh.clk_hz as f64;
            let mut sleep = (CHUNK as f64 / rate).min(0.001);
            if next_pin != u64::MAX {
                let due = next_pin
                    .saturating_add(PIN_SETTLE)
                    .saturating_sub(epoch_cycle) as f64
                    / rate;
                let to_due = due - epoch.elapsed().as_secs_f64();
                // far enough off, wake PIN_LEAD_S early and step up to then: at the due
                // moment only the last PIN_LEAD_S of cycles are left to step before the
                // edge (at 1 MHz the model steps about ten cycles per wall µs)
                sleep = sleep.min(if to_due > 2.0 * PIN_LEAD_S {
                    to_due - PIN_LEAD_S
                } else {
                    to_due
                });
            }
            // at least the timer's grain: a due moment just passed is stepped next round
            std::thread::park_timeout(Duration::from_secs_f64(sleep.max(20e-6)));
        }
    }
    // calls queued since the last look are dropped unrun (ClockEnd): their callers
    // get None
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

/// Reads `offsets` from `base` back to back on the model (clock thread only); with
/// `expect`, stops after a first value that differs from it. The values read, and the
/// error that ended them.
fn read_regs<M: Core>(
    model: &mut M,
    base: u32,
    expect: Option<u32>,
    offsets: &[u32],
) -> (Vec<u32>, Option<BusError>) {
    let mut values = Vec::with_capacity(offsets.len());
    for &offset in offsets {
        match model.read(base + offset) {
            Ok(v) => values.push(v),
            Err(e) => return (values, Some(axi_error(offset, e))),
        }
        if values.len() == 1 && expect.is_some_and(|x| x != values[0]) {
            break;
        }
    }
    (values, None)
}

/// A delivered interrupt's reads, handed to the caller of `wait_irq_and_read`.
fn deliver(
    (values, error): (Vec<u32>, Option<BusError>),
    out: &mut Vec<u32>,
) -> (IrqWait, Result<(), BusError>) {
    out.extend_from_slice(&values);
    (IrqWait::Fired, error.map_or(Ok(()), Err))
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
