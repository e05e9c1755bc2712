//! The retry buffer: every button event the publisher has taken from the driver's
//! channel and not yet finished with, oldest first.
//!
//! "Finished" depends on the QoS: at QoS 0 an event is finished once its PUBLISH has
//! been handed to the connection; at QoS 1 when its PUBACK arrives; at QoS 2 when its
//! PUBCOMP arrives. Events are never reordered and never dropped here: when the buffer
//! is full, [`Outbox::push`] refuses and the caller decides (and counts) what happens.
//!
//! Packet ids: events own the range `1..=EVENT_PKIDS`, handed out consecutively in
//! buffer order, so the slot of an acknowledged id is found by subtraction instead of
//! a map. The ids above are the control messages' (status, LED states, subscriptions).
//!
//! Regions of the buffer, as indices (`written <= sent <= len` at QoS 1/2; at QoS 0
//! nothing has an id and `sent` stays 0):
//! ```text
//!  0 ......... written ......... sent ......... len
//!  | out on this connection |  have an id,  |  never sent
//!  |                        |  to go again  |
//! ```
//!
//! The in-flight window (`window`, at most `max_inflight`) is a congestion window:
//! brokers cap what a client may leave unacknowledged (mosquitto 2.0 holds at most
//! `max_inflight_messages`, 20 by default, of a client's QoS 2 messages awaiting
//! PUBREL, and past that drops them or resets the connection). A connection lost
//! with packets unanswered halves the window, and at QoS 2 caps it at the number of
//! messages the broker was holding (PUBREC received, PUBCOMP not) when it went; every
//! few windows' worth of answers then grows it by one, back up to `max_inflight`. The
//! window also bounds what is sent again after a reconnect, so a broker that just
//! reset the connection is never handed the whole old window at once.

use std::collections::VecDeque;

use crate::config::Qos;
use pynq_mqtt_driver::ButtonEvent;

/// Packet ids `1..=EVENT_PKIDS` belong to events; the rest to control messages.
pub const EVENT_PKIDS: u16 = 0xF000;

/// Where an event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No packet id yet (or QoS 0).
    New,
    /// PUBLISH written at least once; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitAck,
    /// QoS 2: PUBREC received, PUBREL sent; waiting for PUBCOMP.
    AwaitComp,
    /// Acknowledged; removed once everything before it is too.
    Done,
    /// Refused by the broker (MQTT 5's failure reason code) or never sendable (over
    /// its packet size): finished without delivery, removed as `Done` but not
    /// counted as published.
    Refused,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    ev: ButtonEvent,
    pkid: u16,
    phase: Phase,
    /// Connections on which this event's PUBREL was sent and never completed.
    rel_tries: u8,
}

/// What the connection must write next for the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A PUBLISH of this event; `dup` when it was sent before.
    Publish {
        ev: ButtonEvent,
        pkid: u16,
        dup: bool,
    },
    /// A PUBREL again (QoS 2 after a reconnect).
    Release { pkid: u16 },
}

/// After this many connections lost while waiting for a resent PUBREL's PUBCOMP, the
/// broker is taken to have forgotten the message (rumqttd keeps no QoS 2 state across
/// connections and closes on an unknown PUBREL) and the PUBLISH is sent again.
const MAX_REL_TRIES: u8 = 2;

/// A window under this reopens on every answer. mosquitto does not set TCP_NODELAY
/// by default: its first answer to a batch goes at once, the rest wait in its Nagle
/// buffer for our ACK, which the kernel delays (40 ms) unless we write. Waiting for
/// a quarter of a small window to be free would wait for that timer, once a window:
/// 16 events per 45 ms at a window of 16.
const SMALL_WINDOW: usize = 64;

/// Answers, in windows, per step up of a shrunk window. Slow, because a broker that
/// resets past its limit costs a reconnect per probe above it (mosquitto at 20 QoS 2
/// messages: from 10 back to 21 takes about 600 answers).
const GROW_WINDOWS: usize = 4;

/// The bounded buffer of unfinished events.
#[derive(Debug)]
pub struct Outbox {
    q: VecDeque<Slot>,
    capacity: usize,
    qos: Qos,
    /// The ceiling of `window`.
    max_inflight: usize,
    /// The connection's own ceiling (the broker's Receive Maximum less what control
    /// messages hold), set by the session; unlimited under 3.1.1.
    cap: usize,
    /// Packets that may await an answer now (see the module's doc).
    window: usize,
    /// Answers counted towards the window's next step up.
    grown: usize,
    /// Packets written on this connection and not answered yet (PUBACK or PUBREC
    /// for a PUBLISH, PUBCOMP for a PUBREL).
    out: usize,
    /// `q[..written]` went out on the current connection.
    written: usize,
    /// QoS 1/2: `q[..sent]` hold packet ids.
    sent: usize,
    /// The id the next event gets.
    next_pkid: u16,
    /// The window filled up; new events wait until a quarter of it is free again, so
    /// that acknowledgements trickling in do not turn into one small write each.
    window_closed: bool,
}

fn next_id(p: u16) -> u16 {
    if p >= EVENT_PKIDS {
        1
    } else {
        p + 1
    }
}

impl Outbox {
    /// `max_inflight` (at least 1) bounds the events awaiting an acknowledgement.
    pub fn new(capacity: usize, qos: Qos, max_inflight: usize) -> Self {
        let max_inflight = max_inflight.clamp(1, usize::from(EVENT_PKIDS) / 2);
        Self {
            q: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            qos,
            max_inflight,
            cap: usize::MAX,
            window: max_inflight,
            grown: 0,
            out: 0,
            written: 0,
            sent: 0,
            next_pkid: 1,
            window_closed: false,
        }
    }

    /// Whether a new event may take a packet id now.
    fn window_open(&self) -> bool {
        let held = self.sent.max(self.out);
        let window = self.window.min(self.cap);
        if self.window_closed && window >= SMALL_WINDOW {
            held <= window - (window / 4).max(1)
        } else {
            held < window
        }
    }

    /// Whether an event sent on an earlier connection may go again now.
    fn resend_open(&self) -> bool {
        self.out < self.window.min(self.cap)
    }

    /// Caps the window on this connection (the broker's Receive Maximum); 0 holds
    /// every new PUBLISH back.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Packets written on this connection and awaiting their answer: what the
    /// broker's Receive Maximum counts.
    pub fn in_flight(&self) -> usize {
        self.out
    }

    /// The current in-flight window (at most `max_inflight`).
    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// An answer on this connection to a packet written on it.
    fn answered(&mut self, i: usize) {
        if i < self.written {
            self.out = self.out.saturating_sub(1);
        }
    }

    /// One more answer without a loss: [`GROW_WINDOWS`] windows' worth grows the
    /// window by one.
    fn grow(&mut self) {
        if self.window >= self.max_inflight {
            return;
        }
        self.grown += 1;
        if self.grown >= GROW_WINDOWS * self.window {
            self.grown = 0;
            self.window += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn has_room(&self) -> bool {
        self.q.len() < self.capacity
    }

    /// Whether events of an earlier connection are still to go again on this one.
    pub fn resuming(&self) -> bool {
        self.written < self.sent
    }

    /// Events waiting for an acknowledgement (QoS 1/2).
    pub fn inflight(&self) -> usize {
        self.sent
    }

    /// Appends an event; refuses it (giving it back) when the buffer is full.
    pub fn push(&mut self, ev: ButtonEvent) -> Result<(), ButtonEvent> {
        if !self.has_room() {
            return Err(ev);
        }
        self.q.push_back(Slot {
            ev,
            pkid: 0,
            phase: Phase::New,
            rel_tries: 0,
        });
        Ok(())
    }

    /// The next packet to write on this connection, if any may go now; marks it written.
    pub fn next(&mut self) -> Option<Next> {
        loop {
            let open = self.window_open();
            let resend = self.resend_open();
            let slot = self.q.get_mut(self.written)?;
            if self.qos == Qos::AtMostOnce {
                self.written += 1;
                return Some(Next::Publish {
                    ev: slot.ev,
                    pkid: 0,
                    dup: false,
                });
            }
            match slot.phase {
                Phase::Done | Phase::Refused => {
                    // acknowledged out of order while waiting to be resent
                    self.written += 1;
                }
                Phase::AwaitAck => {
                    if !resend {
                        return None;
                    }
                    self.written += 1;
                    self.out += 1;
                    return Some(Next::Publish {
                        ev: slot.ev,
                        pkid: slot.pkid,
                        dup: true,
                    });
                }
                Phase::AwaitComp => {
                    // not held back by the window: the broker frees its slot on it
                    self.written += 1;
                    self.out += 1;
                    return Some(Next::Release { pkid: slot.pkid });
                }
                Phase::New => {
                    if !open {
                        self.window_closed = true;
                        return None;
                    }
                    self.window_closed = false;
                    slot.pkid = self.next_pkid;
                    slot.phase = Phase::AwaitAck;
                    self.next_pkid = next_id(self.next_pkid);
                    self.sent += 1;
                    self.written += 1;
                    self.out += 1;
                    return Some(Next::Publish {
                        ev: slot.ev,
                        pkid: slot.pkid,
                        dup: false,
                    });
                }
            }
        }
    }

    /// Whether [`Outbox::next`] would give something.
    pub fn wants_write(&self) -> bool {
        match self.q.get(self.written) {
            None => false,
            Some(s) if self.qos != Qos::AtMostOnce && s.phase == Phase::New => self.window_open(),
            Some(s) if s.phase == Phase::AwaitAck => self.resend_open(),
            Some(_) => true,
        }
    }

    /// QoS 0: the first `n` events were completely written; they are finished.
    pub fn complete_written(&mut self, n: usize) -> usize {
        debug_assert_eq!(self.qos, Qos::AtMostOnce);
        let n = n.min(self.written);
        self.q.drain(..n);
        self.written -= n;
        n
    }

    /// The slot index of an event packet id, if it is one of ours in flight.
    fn index_of(&self, pkid: u16) -> Option<usize> {
        let first = self.q.front()?.pkid;
        if pkid == 0 || pkid > EVENT_PKIDS || first == 0 {
            return None;
        }
        let n = usize::from(EVENT_PKIDS);
        let i = (usize::from(pkid) + n - usize::from(first)) % n;
        (i < self.sent && self.q[i].pkid == pkid).then_some(i)
    }

    /// Pops finished events from the front; returns how many were delivered.
    fn pop_done(&mut self) -> usize {
        let mut n = 0;
        while let Some(s) = self
            .q
            .front()
            .filter(|s| matches!(s.phase, Phase::Done | Phase::Refused))
        {
            n += usize::from(s.phase == Phase::Done);
            self.q.pop_front();
            self.sent -= 1;
            self.written = self.written.saturating_sub(1);
        }
        n
    }

    /// MQTT 5: the broker refused the event `pkid` (a failure reason code in its
    /// PUBACK, PUBREC or PUBCOMP), or it is too large to send: finished, not
    /// delivered. Returns the number of earlier events this finishes as delivered.
    pub fn refuse(&mut self, pkid: u16) -> usize {
        match self.index_of(pkid) {
            Some(i) if matches!(self.q[i].phase, Phase::AwaitAck | Phase::AwaitComp) => {
                self.q[i].phase = Phase::Refused;
                self.answered(i);
                self.pop_done()
            }
            _ => 0,
        }
    }

    /// QoS 1: PUBACK. Returns the number of events finished by it (0 for an unknown id).
    pub fn puback(&mut self, pkid: u16) -> usize {
        match self.index_of(pkid) {
            Some(i) if self.qos == Qos::AtLeastOnce && self.q[i].phase == Phase::AwaitAck => {
                self.q[i].phase = Phase::Done;
                self.answered(i);
                self.grow();
                self.pop_done()
            }
            _ => 0,
        }
    }

    /// QoS 2: PUBREC. True when a PUBREL must be sent for it (also for a repeated
    /// PUBREC of an event already released).
    pub fn pubrec(&mut self, pkid: u16) -> bool {
        match self.index_of(pkid) {
            Some(i) if self.qos == Qos::ExactlyOnce => match self.q[i].phase {
                Phase::AwaitAck => {
                    // still out: its PUBREL goes at once and waits for PUBCOMP
                    self.q[i].phase = Phase::AwaitComp;
                    self.grow();
                    true
                }
                Phase::AwaitComp => true,
                _ => false,
            },
            _ => false,
        }
    }

    /// QoS 2: PUBCOMP. Returns the number of events finished by it.
    pub fn pubcomp(&mut self, pkid: u16) -> usize {
        match self.index_of(pkid) {
            Some(i) if self.q[i].phase == Phase::AwaitComp => {
                self.q[i].phase = Phase::Done;
                self.answered(i);
                self.pop_done()
            }
            _ => 0,
        }
    }

    /// A new connection: everything not finished goes out again, in order.
    /// `session_present` is the broker's word that it kept our QoS 2 state; without
    /// it, released-but-incomplete events are published again (brokers deliver a
    /// QoS 2 message on PUBREL, so a lost session never delivered them).
    ///
    /// A connection lost with packets unanswered shrinks the window first (see the
    /// module's doc).
    pub fn rewind(&mut self, session_present: bool) {
        if self.out > 0 {
            let held = self
                .q
                .iter()
                .take(self.sent)
                .filter(|s| s.phase == Phase::AwaitComp)
                .count();
            let mut w = self.window / 2;
            if held > 0 {
                w = w.min(held);
            }
            self.window = w.max(1);
            self.grown = 0;
        }
        self.out = 0;
        self.written = 0;
        for s in self.q.iter_mut().take(self.sent) {
            if s.phase == Phase::AwaitComp {
                s.rel_tries += 1;
                if !session_present || s.rel_tries > MAX_REL_TRIES {
                    s.phase = Phase::AwaitAck;
                    s.rel_tries = 0;
                }
            }
        }
    }

    /// Removes every event (at an abandoned shutdown); returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.q.len();
        self.q.clear();
        self.written = 0;
        self.sent = 0;
        self.out = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64) -> ButtonEvent {
        ButtonEvent {
            input: (seq % 4) as u8,
            level: seq.is_multiple_of(2),
            ts_us: seq * 10,
            seq,
            synthetic: false,
            utc_us: None,
        }
    }

    fn publishes(o: &mut Outbox) -> Vec<(u64, u16, bool)> {
        let mut v = Vec::new();
        while let Some(n) = o.next() {
            match n {
                Next::Publish { ev, pkid, dup } => v.push((ev.seq, pkid, dup)),
                Next::Release { .. } => panic!("unexpected PUBREL"),
            }
        }
        v
    }

    #[test]
    fn qos0_finishes_on_write_and_rewrites_only_the_unwritten() {
        let mut o = Outbox::new(10, Qos::AtMostOnce, 4);
        for s in 0..5 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(publishes(&mut o).len(), 5, "QoS 0 has no window");
        assert_eq!(o.complete_written(3), 3);
        assert_eq!(o.len(), 2);
        // the connection dropped before the last two were written
        o.rewind(false);
        let again = publishes(&mut o);
        assert_eq!(again.iter().map(|p| p.0).collect::<Vec<_>>(), vec![3, 4]);
        assert!(again.iter().all(|p| p.1 == 0 && !p.2));
    }

    #[test]
    fn qos1_window_acks_out_of_order_and_resend_with_dup() {
        let mut o = Outbox::new(100, Qos::AtLeastOnce, 3);
        for s in 0..6 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(
            publishes(&mut o),
            vec![(0, 1, false), (1, 2, false), (2, 3, false)]
        );
        assert!(!o.wants_write(), "window of 3 is full");
        assert_eq!(o.puback(2), 0, "out of order: nothing finished yet");
        assert_eq!(o.inflight(), 3);
        assert_eq!(o.puback(1), 2, "1 and 2 finish together");
        assert_eq!(o.puback(1), 0, "a repeated ack is ignored");
        assert_eq!(o.puback(999), 0, "an unknown id is ignored");
        assert_eq!(publishes(&mut o), vec![(3, 4, false), (4, 5, false)]);
        // connection lost with 3, 4 and 5 (ids 3..=5) unacknowledged, 6th never sent
        // (the loss halves the window to 1, so they go one window at a time)
        o.rewind(true);
        assert_eq!(
            publishes(&mut o),
            vec![(2, 3, true)],
            "resent in order with the same ids"
        );
        assert_eq!(o.puback(3), 1);
        assert_eq!(publishes(&mut o), vec![(3, 4, true)]);
        assert_eq!(o.puback(4), 1);
        assert_eq!(publishes(&mut o), vec![(4, 5, true)]);
        assert_eq!(o.puback(5), 1);
        assert_eq!(publishes(&mut o), vec![(5, 6, false)]);
        assert_eq!(o.puback(6), 1);
        assert!(o.is_empty());
    }

    #[test]
    fn a_full_window_waits_for_a_quarter_before_sending_more() {
        let mut o = Outbox::new(1000, Qos::AtLeastOnce, 64);
        for s in 0..200 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(publishes(&mut o).len(), 64);
        for pkid in 1..16 {
            assert_eq!(o.puback(pkid), 1);
            assert!(!o.wants_write(), "{pkid} free slots are not worth a write");
        }
        assert_eq!(o.puback(16), 1);
        assert!(o.wants_write(), "a quarter free");
        assert_eq!(publishes(&mut o).len(), 16, "refilled to the top");
    }

    #[test]
    fn a_small_window_reopens_on_every_answer() {
        let mut o = Outbox::new(100, Qos::AtLeastOnce, SMALL_WINDOW - 1);
        for s in 0..100 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(publishes(&mut o).len(), SMALL_WINDOW - 1);
        assert!(!o.wants_write());
        assert_eq!(o.puback(1), 1);
        assert!(
            o.wants_write(),
            "the broker's other answers may wait for our write"
        );
        assert_eq!(publishes(&mut o).len(), 1);
    }

    #[test]
    fn an_ack_arriving_for_an_event_not_yet_resent_skips_it() {
        let mut o = Outbox::new(100, Qos::AtLeastOnce, 10);
        for s in 0..3 {
            o.push(ev(s)).unwrap();
        }
        publishes(&mut o);
        o.rewind(true);
        assert_eq!(o.puback(2), 0);
        assert_eq!(publishes(&mut o), vec![(0, 1, true), (2, 3, true)]);
        assert_eq!(o.puback(1) + o.puback(3), 3);
        assert!(o.is_empty());
    }

    #[test]
    fn qos2_releases_and_resends_releases_after_reconnect() {
        let mut o = Outbox::new(100, Qos::ExactlyOnce, 10);
        for s in 0..3 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(publishes(&mut o).len(), 3);
        assert!(o.pubrec(1));
        assert!(o.pubrec(2));
        assert_eq!(o.pubcomp(1), 1);
        // lost: id 2 released, id 3 only published
        // (the window shrinks to the one message the broker held, id 2)
        o.rewind(true);
        assert_eq!(o.next(), Some(Next::Release { pkid: 2 }));
        assert_eq!(o.next(), None, "3 waits for the window");
        assert!(o.pubrec(3), "a PUBREC kept from the lost connection");
        assert_eq!(o.pubcomp(3), 0, "2 still open");
        assert_eq!(o.pubcomp(2), 2);
        assert!(o.is_empty());
    }

    #[test]
    fn qos2_publishes_again_when_the_broker_lost_the_session() {
        let mut o = Outbox::new(100, Qos::ExactlyOnce, 10);
        o.push(ev(0)).unwrap();
        publishes(&mut o);
        assert!(o.pubrec(1));
        o.rewind(false);
        assert_eq!(
            o.next(),
            Some(Next::Publish {
                ev: ev(0),
                pkid: 1,
                dup: true
            })
        );
    }

    #[test]
    fn qos2_gives_up_on_a_release_the_broker_keeps_refusing() {
        let mut o = Outbox::new(100, Qos::ExactlyOnce, 10);
        o.push(ev(0)).unwrap();
        publishes(&mut o);
        assert!(o.pubrec(1));
        for _ in 0..MAX_REL_TRIES {
            o.rewind(true);
            assert_eq!(o.next(), Some(Next::Release { pkid: 1 }));
        }
        o.rewind(true);
        assert!(matches!(o.next(), Some(Next::Publish { dup: true, .. })));
    }

    #[test]
    fn a_loss_halves_the_window_and_answers_grow_it_back() {
        let mut o = Outbox::new(1000, Qos::AtLeastOnce, 8);
        for s in 0..200 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(publishes(&mut o).len(), 8);
        o.rewind(true);
        assert_eq!(o.window(), 4);
        let again = publishes(&mut o);
        assert_eq!(
            again,
            vec![(0, 1, true), (1, 2, true), (2, 3, true), (3, 4, true)],
            "only the shrunk window goes again"
        );
        // a loss on a connection with nothing unanswered costs nothing
        o.rewind(true);
        o.rewind(true);
        assert_eq!(o.window(), 2, "one halving per connection lost");
        let mut window = 2;
        let mut acked = 0;
        while !o.is_empty() {
            for (_, pkid, _) in publishes(&mut o) {
                acked += o.puback(pkid);
            }
            assert!(o.window() >= window && o.window() <= 8);
            window = o.window();
        }
        assert_eq!(acked, 200);
        assert_eq!(o.window(), 8, "back to max_inflight, never past it");
    }

    #[test]
    fn qos2_a_reset_caps_the_window_at_what_the_broker_held() {
        // a broker that takes 20 messages awaiting PUBREL, then resets
        let mut o = Outbox::new(1000, Qos::ExactlyOnce, 1024);
        for s in 0..400 {
            o.push(ev(s)).unwrap();
        }
        assert_eq!(publishes_and_releases(&mut o).0, 400);
        for pkid in 1..=20 {
            assert!(o.pubrec(pkid));
        }
        o.rewind(true);
        assert_eq!(o.window(), 20);
        let (publishes, releases) = publishes_and_releases(&mut o);
        assert_eq!(
            (publishes, releases),
            (0, 20),
            "the releases free the broker; nothing more until they complete"
        );
        for pkid in 1..=10 {
            assert_eq!(o.pubcomp(pkid), 1);
        }
        assert_eq!(
            publishes_and_releases(&mut o),
            (10, 0),
            "what completed makes room, in order"
        );
        // and reset again with nothing acknowledged: halved
        o.rewind(true);
        assert_eq!(o.window(), 10);
        assert_eq!(publishes_and_releases(&mut o), (0, 10));
    }

    fn publishes_and_releases(o: &mut Outbox) -> (usize, usize) {
        let (mut p, mut r) = (0, 0);
        while let Some(n) = o.next() {
            match n {
                Next::Publish { .. } => p += 1,
                Next::Release { .. } => r += 1,
            }
        }
        (p, r)
    }

    #[test]
    fn full_buffer_refuses_and_ids_wrap() {
        let mut o = Outbox::new(2, Qos::AtLeastOnce, 2);
        o.push(ev(0)).unwrap();
        o.push(ev(1)).unwrap();
        assert_eq!(o.push(ev(2)), Err(ev(2)));
        assert!(!o.has_room());
        // run the ids around their range
        let mut seq = 0;
        o.clear();
        o.next_pkid = EVENT_PKIDS - 1;
        for _ in 0..2 {
            o.push(ev(seq)).unwrap();
            seq += 1;
        }
        let p = publishes(&mut o);
        assert_eq!(
            p.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![EVENT_PKIDS - 1, EVENT_PKIDS]
        );
        o.push(ev(seq)).unwrap_err();
        assert_eq!(o.puback(EVENT_PKIDS), 0);
        assert_eq!(o.puback(EVENT_PKIDS - 1), 2);
        o.push(ev(seq)).unwrap();
        assert_eq!(
            publishes(&mut o),
            vec![(seq, 1, false)],
            "wraps to 1, never 0"
        );
        assert_eq!(o.puback(1), 1);
    }

    #[test]
    fn control_ids_are_not_taken_for_events() {
        let mut o = Outbox::new(10, Qos::AtLeastOnce, 10);
        o.push(ev(0)).unwrap();
        publishes(&mut o);
        assert_eq!(o.puback(EVENT_PKIDS + 1), 0);
        assert_eq!(o.len(), 1);
    }
}
