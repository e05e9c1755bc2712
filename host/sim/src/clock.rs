//! The clock thread: the only owner of the Verilated model. It advances the model
//! paced to the wall clock and runs the bus transactions (and pin changes) that the
//! host queues, between two short runs of clock cycles. Nothing it holds while
//! stepping is ever waited for by a bus caller: a caller waits at most one sub-chunk
//! of cycles for its transaction to start.
//!
//! Pacing: while the host is active (a job in the last [`QUIET_AFTER`], or a scheduled
//! pin change near) the thread naps [`ACTIVE_NAP`] at a time, and after each job it
//! spins [`SPIN_AFTER_JOB`] stepping in lockstep with the wall clock, because a driver
//! sends its transactions in quick succession. Quiet, it naps up to [`IDLE_NAP`]: the
//! cycles are the same, the wake-ups fewer. A job that ends a nap first brings the
//! model up to the wall clock, so that it always sees the present.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{ffi, Speed, Step};

/// Work for the clock thread: runs with the model, between two clock runs.
pub(crate) type Job = Box<dyn FnOnce(&mut Core) + Send>;

/// Cycles run between two looks at the job queue.
const SUB: u64 = 256;
/// Spin this long after a job (or a rising interrupt line), stepping in lockstep with
/// the wall clock, before napping. Waking a napping thread costs about 100 µs here (a
/// loaded 2-core VM), which per transaction capped a driver's drain near 1,000
/// interrupts/s; a driver that is active keeps this thread spinning, one that is idle
/// (a wake every 100 ms) costs it about 2 % of a core.
const SPIN_AFTER_JOB: Duration = Duration::from_millis(2);
/// Nap while the host is active.
const ACTIVE_NAP: Duration = Duration::from_micros(100);
/// Nap while nothing happens.
const IDLE_NAP: Duration = Duration::from_millis(5);
/// The host counts as active for this long after its last job.
const QUIET_AFTER: Duration = Duration::from_millis(5);
/// Behind the wall clock by more than this much simulated time, the clock skips ahead
/// instead of catching up (counted in [`Signals::skipped_cycles`]): a host that starved
/// this thread for long must not get an endless burst of simulated time.
const CATCH_UP_LIMIT_US: u64 = 100_000;
/// Behind the wall clock by more than this many cycles, the clock catches up in
/// lockstep with the host.
const CATCH_UP: u64 = 4096;
/// At most one log line per this interval about skipped time.
const SKIP_LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Waiting for `start_stimulus`.
    Held,
    Running,
    Done,
}

/// What the clock thread owns.
pub(crate) struct Core {
    pub model: ffi::Model,
    /// Cycle of the reset: TIME = 0.
    pub base_cycle: u64,
    pub stimulus: Vec<Step>,
    pub replay: Replay,
    /// Cycles of the scheduled pin changes not yet reached (for pacing only; the model
    /// applies them itself, also inside transactions).
    pub scheduled: VecDeque<u64>,
}

/// What the clock thread and the bus callers share: atomics, and one mutex that is
/// only ever held to check or signal them (never while the model runs).
pub(crate) struct Signals {
    /// The irq pin as of the last clock run or transaction.
    pub irq: AtomicBool,
    /// UIO semantics: false from a delivered interrupt until the host re-arms.
    pub armed: AtomicBool,
    /// Set by `wake_waiter`: the next (or current) `wait_irq` returns at once.
    pub wake: AtomicBool,
    pub stop: AtomicBool,
    /// Every stimulus line has been applied.
    pub done: AtomicBool,
    /// Simulated cycles skipped because the thread fell too far behind, and how often.
    pub skipped_cycles: AtomicU64,
    pub skips: AtomicU64,
    pub lock: Mutex<()>,
    pub cv: Condvar,
}

impl Signals {
    pub fn new() -> Self {
        Self {
            irq: AtomicBool::new(false),
            armed: AtomicBool::new(true),
            wake: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            skipped_cycles: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Wakes every waiter after a change of the atomics (taking the mutex, so that a
    /// waiter between its check and its wait cannot miss it).
    pub fn notify(&self) {
        drop(self.lock.lock().unwrap_or_else(|p| p.into_inner()));
        self.cv.notify_all();
    }

    /// Publishes the irq pin; a rising line wakes the waiter. True when it rose.
    fn publish(&self, model: &ffi::Model) -> bool {
        let high = model.irq();
        let rose = self.irq.swap(high, Ordering::SeqCst) != high && high;
        if rose {
            self.notify();
        }
        rose
    }
}

/// The loop of the clock thread; returns once `stop` is set or the board is dropped.
pub(crate) fn run(core: &mut Core, jobs: Receiver<Job>, sig: &Signals, speed: Speed, clk_hz: u64) {
    let factor = match speed {
        Speed::RealTime(f) => f,
        Speed::Fast => 1.0,
    };
    let cycles_per_sec = factor * clk_hz as f64;
    let limit = CATCH_UP_LIMIT_US.saturating_mul(clk_hz) / 1_000_000;
    let mut epoch = Instant::now();
    let mut epoch_cycle = core.model.cycles();
    let mut fast = false;
    let mut last_job: Option<Instant> = None;
    let mut last_skip_log: Option<Instant> = None;
    let due = |epoch: Instant, epoch_cycle: u64| {
        epoch_cycle + (epoch.elapsed().as_secs_f64() * cycles_per_sec) as u64
    };
    loop {
        if sig.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = core.model.cycles();
        let before = core.scheduled.len();
        while core.scheduled.front().is_some_and(|&c| c <= now) {
            core.scheduled.pop_front();
        }
        if core.scheduled.len() != before {
            // an edge was just applied: its event and interrupt follow within cycles
            last_job = Some(Instant::now());
        }
        if core.replay == Replay::Running && core.model.pending_inputs() == 0 {
            core.replay = Replay::Done;
            sig.done.store(true, Ordering::SeqCst);
            sig.notify();
        }
        let want_fast = speed == Speed::Fast && core.replay == Replay::Running;
        if want_fast != fast {
            // real time resumes from where fast replay left simulated time
            fast = want_fast;
            epoch = Instant::now();
            epoch_cycle = now;
        }
        if fast {
            // simulated time stands still from the moment the interrupt line rises
            // until the host has serviced it and re-armed: the host never falls behind
            if sig.armed.load(Ordering::SeqCst) && !core.model.irq() {
                core.model.step_until_irq(SUB);
                let _ = sig.publish(&core.model);
            } else if let Some(job) = nap(&jobs, Duration::from_micros(20)) {
                let Ok(job) = job else { return };
                run_job(core, sig, job, &mut last_job);
            }
            if !serve_queue(core, &jobs, sig, &mut last_job) {
                return;
            }
            continue;
        }
        let target = due(epoch, epoch_cycle);
        let behind = target.saturating_sub(now);
        if behind > limit {
            // the host starved this thread: skip the missed time rather than replaying
            // it in a burst the FIFO never sees on a board, or falling behind for good
            sig.skipped_cycles.fetch_add(behind, Ordering::Relaxed);
            let skips = sig.skips.fetch_add(1, Ordering::Relaxed) + 1;
            if last_skip_log.is_none_or(|t| t.elapsed() >= SKIP_LOG_EVERY) {
                last_skip_log = Some(Instant::now());
                tracing::warn!(
                    behind_us = behind * 1_000_000 / clk_hz.max(1),
                    skips,
                    skipped_us_total =
                        sig.skipped_cycles.load(Ordering::Relaxed) * 1_000_000 / clk_hz.max(1),
                    "the simulated board fell behind the wall clock (this thread got no CPU); \
                     simulated time skipped ahead"
                );
            }
            epoch = Instant::now();
            epoch_cycle = now;
            continue;
        }
        if behind > CATCH_UP {
            // catching up: replaying the missed time in one burst would overflow the
            // FIFO in a way no board does, so it runs like fast mode, standing still
            // while the interrupt is pending or serviced, until on time again (or
            // skipping, past the limit above)
            if sig.armed.load(Ordering::SeqCst) && !core.model.irq() {
                core.model.step_until_irq(behind.min(SUB));
            }
            if sig.publish(&core.model) {
                last_job = Some(Instant::now());
            }
        } else if behind > 0 {
            core.model.step(behind.min(SUB));
            if sig.publish(&core.model) {
                // the driver's transactions follow the interrupt
                last_job = Some(Instant::now());
            }
        }
        // then the queue, as it stands: runs of cycles and transactions alternate, so a
        // transaction waits for one sub-chunk at most and meets the model at most one
        // sub-chunk behind the wall clock (two pin changes are never in one cycle)
        let before_jobs = last_job;
        if !serve_queue(core, &jobs, sig, &mut last_job) {
            return;
        }
        if behind > SUB || last_job != before_jobs {
            continue;
        }
        if last_job.is_some_and(|t| t.elapsed() < SPIN_AFTER_JOB) {
            std::hint::spin_loop();
            continue;
        }
        let active = last_job.is_some_and(|t| t.elapsed() < QUIET_AFTER);
        let mut length = if active { ACTIVE_NAP } else { IDLE_NAP };
        if let Some(&next) = core.scheduled.front() {
            let until = Duration::from_secs_f64(next.saturating_sub(now) as f64 / cycles_per_sec);
            length = length.min(until);
        }
        if let Some(job) = nap(&jobs, length) {
            let Ok(job) = job else { return };
            // the model catches up with the wall clock first: a transaction after a
            // nap sees the present, as on a board (bounded by the nap's length)
            let behind = due(epoch, epoch_cycle).saturating_sub(core.model.cycles());
            if behind <= limit {
                core.model.step(behind);
            }
            run_job(core, sig, job, &mut last_job);
        }
    }
}

/// Runs the jobs queued now; false once the board is gone.
fn serve_queue(
    core: &mut Core,
    jobs: &Receiver<Job>,
    sig: &Signals,
    last_job: &mut Option<Instant>,
) -> bool {
    loop {
        match jobs.try_recv() {
            Ok(job) => run_job(core, sig, job, last_job),
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

/// Waits up to `length` for a job: `None` on timeout, `Some(Err)` once the board is gone.
fn nap(jobs: &Receiver<Job>, length: Duration) -> Option<Result<Job, ()>> {
    match jobs.recv_timeout(length) {
        Ok(job) => Some(Ok(job)),
        Err(RecvTimeoutError::Timeout) => None,
        Err(RecvTimeoutError::Disconnected) => Some(Err(())),
    }
}

fn run_job(core: &mut Core, sig: &Signals, job: Job, last_job: &mut Option<Instant>) {
    job(core);
    let _ = sig.publish(&core.model);
    *last_job = Some(Instant::now());
}
