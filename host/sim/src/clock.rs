//! The clock thread: it owns the model, steps it paced to the wall clock (or as fast
//! as it runs during a replay), runs the queued calls between steps and delivers the
//! interrupt.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::{
    lock, Core, Paced, Replay, Shared, Speed, State, CATCH_UP_CYCLES, CATCH_UP_PACE, CHUNK,
    PIN_LEAD_S, PIN_SETTLE, SLICE,
};

/// The system clock in Unix nanoseconds (0 before 1970).
pub(crate) fn unix_ns() -> u64 {
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

pub(crate) fn clock_thread<M: Core>(sh: &Shared<M>, mut st: State<M>) {
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
