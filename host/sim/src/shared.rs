//! The engine's calls: how other threads hand work to the clock thread that owns the
//! model, and the bus transactions, pin changes and interrupt waits built on them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{check_offset, BusError, IrqWait};

use crate::clock::{clock_thread, unix_ns};
use crate::{
    ffi, lock, Core, IrqRead, Paced, Replay, Shared, SimError, Slot, Speed, State, Step, Window,
    CATCH_UP_CYCLES, DRIVE_GAP_MAX_S,
};

impl<M: Core> Shared<M> {
    /// A model with its clock thread: the engine under [`SimBoard`] and
    /// [`base::SimBaseBoard`].
    pub(crate) fn start(
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

    pub(crate) fn stop_clock(&self, clock: &mut Option<JoinHandle<()>>) {
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

    pub(crate) fn unpark(&self) {
        if let Some(t) = self.clock.get() {
            t.unpark();
        }
    }

    /// Runs `f` on the model in the clock thread and returns its result; None once the
    /// clock has stopped (the board is being dropped).
    pub(crate) fn call<R: Send + 'static>(
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
    pub(crate) fn serve(&self, st: &mut State<M>) {
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
    pub(crate) fn publish(&self, st: &mut State<M>) {
        let line = self.store_pins(st);
        // the line before the re-arm flag, as `rearm_irq` writes the flag before it
        // looks at the line: one of the two sees the other
        if line && self.armed.load(Ordering::SeqCst) {
            self.deliver_read(st);
            self.ring();
        }
    }

    /// Publishes the line and the pins; returns the line.
    pub(crate) fn store_pins(&self, st: &State<M>) -> bool {
        let line = st.model.irq();
        self.line.store(line, Ordering::SeqCst);
        self.inputs.store(st.model.inputs(), Ordering::Relaxed);
        self.leds.store(st.model.leds(), Ordering::Relaxed);
        line
    }

    /// The line is high and armed: a waiting `wait_irq_and_read` takes the interrupt
    /// here and its reads run now, before the model steps on (clock thread only).
    pub(crate) fn deliver_read(&self, st: &mut State<M>) {
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

    pub(crate) fn start_stimulus(&self) -> Option<u64> {
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

    pub(crate) fn sim_time_us(&self) -> u64 {
        self.call(|sh, st| (st.model.cycles() - sh.base_cycle) * 1_000_000 / sh.clk_hz)
            .unwrap_or(0)
    }

    pub(crate) fn stimulus_done(&self) -> bool {
        *lock(&self.done)
    }

    pub(crate) fn wait_stimulus_done(&self, timeout: Duration) -> bool {
        let (done, _) = self
            .done_cv
            .wait_timeout_while(lock(&self.done), timeout, |d| !*d)
            .unwrap_or_else(|p| p.into_inner());
        *done
    }

    pub(crate) fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
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
    pub(crate) fn wait_irq_and_read(
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

    pub(crate) fn rearm_irq(&self) {
        self.armed.store(true, Ordering::SeqCst);
        // a line already high fires at once (wait_irq looks at it), and a clock paused
        // for this re-arm (fast replay) goes on
        self.unpark();
    }

    pub(crate) fn wake_waiter(&self) {
        self.wake.store(true, Ordering::SeqCst);
        self.ring();
    }

    pub(crate) fn paced(&self) -> Option<Paced> {
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
    pub(crate) fn drive_input(&self, input: u32, level: bool) {
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
    pub(crate) fn read(&self, offset: u32) -> Result<u32, BusError> {
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
    pub(crate) fn write(&self, offset: u32, value: u32) -> Result<(), BusError> {
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
    pub(crate) fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        self.read_batch(None, offsets, out)
    }

    /// [`Bus::read_many_if`] in one call, the check made in the clock thread.
    pub(crate) fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        self.read_batch(Some(expect), offsets, out)
    }

    /// Reads `offsets` back to back in the clock thread; with `expect`, stops after a
    /// first value that differs from it.
    pub(crate) fn read_batch(
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

    pub(crate) fn rings(&self) -> MutexGuard<'_, u64> {
        lock(&self.rings)
    }

    /// Wakes every `wait_irq`: it looks again at the line, the wake flag and the stop.
    pub(crate) fn ring(&self) {
        *self.rings() += 1;
        self.irq_cv.notify_all();
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
