//! The event thread's work: wait for the interrupt, drain the FIFO in batches of
//! reads, hand typed events and input levels up, count every loss.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_regs::{self as regs, EvtPop, RegBus};
use tracing::{debug, error, warn};

use crate::{
    back_off, every_power_of_two, trace, unix_us, Bell, ButtonEvent, Clock64, DeviceLost,
    EventTrace, InputLevels, Levels, LostFlag, Seq64, Stats, WallOffset,
};

/// The event thread: its bus, its channels and what it carries from one drain to the next.
pub(super) struct EventPump {
    pub(super) bus: Arc<dyn Bus>,
    pub(super) stats: Arc<Stats>,
    pub(super) tx: Sender<ButtonEvent>,
    pub(super) clock: Clock64,
    pub(super) wall: WallOffset,
    pub(super) seq: Seq64,
    pub(super) n_inputs: u8,
    /// Pops between identity checks (and stop checks): the FIFO depth.
    pub(super) check_every: u64,
    /// An interrupt's drain ends once fewer than this many events wait (0: only when
    /// the FIFO reads empty). Set to the coalescing count when coalescing also has a
    /// timeout: those events raise the (level) line again by their number or by the
    /// oldest one's age (IRQ_STATUS.EVENT), so none waits unseen, and a stream that
    /// never lets the FIFO empty is taken in batches of the count, one interrupt each,
    /// instead of by a drain that never ends.
    pub(super) leave_below: u64,
    /// Event pairs the first batch of a drain pops before it knows the level: what an
    /// interrupt brings (the coalescing count, 1 to 256).
    pub(super) first_pairs: u64,
    /// When the wall-clock offset was last estimated.
    pub(super) wall_sampled: Option<Instant>,
    /// INPUTS as the last drain's last batch read it (None: no batch completed).
    pub(super) inputs: Option<u32>,
    /// Interrupts in a row that found nothing to do.
    pub(super) empty_in_a_row: u32,
    pub(super) lost: LostFlag,
    pub(super) levels: LevelWatch,
    /// Bench only (see [`DriverConfig::trace`]).
    pub(super) trace: Option<Arc<EventTrace>>,
    /// A drain's batch of reads and their values, kept between drains.
    pub(super) offsets: Vec<u32>,
    pub(super) batch: Vec<u32>,
    /// Rung once a batch's events (or a level report) are in their channel.
    pub(super) bell: Bell,
    /// Something was sent since the last ring.
    pub(super) unrung: bool,
}

/// Events popped per batch of reads at most.
pub(super) const POP_BATCH: usize = 256;

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
pub(super) const CHECK: [u32; 2] = [regs::offset::ID, regs::offset::TIME];

/// What closes every batch: one more pop and its timestamp (the FIFO empty, or an event
/// that came meanwhile), then the level for the next batch, the drop count (for the
/// drain's end) and the inputs' levels (reported after the drain's events).
/// Reading EVT_TS, FIFO_LEVEL, DROPPED or INPUTS changes nothing in the hardware.
pub(super) const CLOSE: [u32; 5] = [
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

/// Reports the INPUTS register after the events of a drain, and whenever it differs
/// from what was last reported.
pub(super) struct LevelWatch {
    pub(super) tx: Sender<InputLevels>,
    /// The last levels handed up; None until the first.
    pub(super) sent: Option<InputLevels>,
    /// Every reading, for whoever draws the board.
    pub(super) board: Arc<Levels>,
}

impl LevelWatch {
    /// One register read, after the drain's events are in their channel. `after_events`
    /// reports even an unchanged reading: the edges before it (some from before the
    /// start, some perhaps lost) must not have the last word on a level. A level that
    /// no edge reports (an input whose events are masked off) is handed up at the
    /// latest one `irq_timeout` later; a full queue is retried at the next wake.
    pub(super) fn report(&mut self, bus: &dyn Bus, after_events: bool) -> Result<bool, BusError> {
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
    pub(super) fn run(&mut self, stop: &AtomicBool, timeout: Duration) {
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
                    error!("event drain failed: {e}");
                    back_off(self.bus.as_ref(), &self.stats, &mut failures);
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
                if let Some(n) = every_power_of_two(&self.stats.channel_full, 1) {
                    warn!(lost = n, "event channel full: events lost");
                }
            }
        }
    }
}
