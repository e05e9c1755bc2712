//! Whether the broker is still there: keep-alive pings, a batch that does not move,
//! acknowledgements that do not come.
//!
//! Only complete packets count as a sign of life. Bytes of a frame being skipped, or
//! of one that never completes (a peer that drips a byte a second), do not: a ping
//! goes out once nothing complete has come for a keep-alive, and the connection is
//! given up when the answer has not come one keep-alive later, so a dead or
//! dripping broker is found within 2 × keep-alive whatever we write meanwhile.
//!
//! ```text
//!   packet read ──► quiet ──(a keep-alive with no packet read, or no byte written)──► PINGREQ
//!        ▲                                                                            │
//!        └──────────────────────── any complete packet ◄──────────────────────────────┤
//!                                                                       keep-alive more
//!                                                                                     ▼
//!                                                                              NoAnswer
//! ```
//! Beside it: events waiting for an acknowledgement with none arriving for a
//! keep-alive give `NoAck`; a batch not taken by the socket for 2 × keep-alive gives
//! `Stalled`.

use std::time::{Duration, Instant};

use super::Session;
use crate::error::Lost;
use crate::wire;

/// The liveness bookkeeping of one connection.
#[derive(Debug)]
pub struct Watch {
    last_write: Instant,
    /// When the last complete packet was read.
    last_packet: Instant,
    ping_sent: Option<Instant>,
    /// While events wait for acknowledgements: since when none has come.
    acks_since: Option<Instant>,
}

impl Watch {
    pub fn new(now: Instant) -> Self {
        Self {
            last_write: now,
            last_packet: now,
            ping_sent: None,
            acks_since: None,
        }
    }

    /// The socket took bytes.
    pub fn wrote(&mut self, now: Instant) {
        self.last_write = now;
    }

    /// A complete packet arrived.
    pub fn packet(&mut self, now: Instant) {
        self.last_packet = now;
        self.ping_sent = None;
    }

    /// An acknowledgement arrived: the broker is taking our messages.
    pub fn acked(&mut self, now: Instant) {
        if self.acks_since.is_some() {
            self.acks_since = Some(now);
        }
    }

    /// Decides at `now`: Err when the connection is to be given up, else when to look
    /// again. `writing`: a batch is partly written; `waiting`: events await acks.
    /// `ka` bounds every wait; `pings`: PINGREQ when quiet (false without an MQTT
    /// keep-alive, where TCP's keep-alive watches an idle connection instead).
    fn check(
        &mut self,
        now: Instant,
        ka: Duration,
        pings: bool,
        writing: bool,
        waiting: bool,
    ) -> Result<(Instant, bool), Lost> {
        if let Some(t) = self.ping_sent {
            if now.duration_since(t) >= ka {
                return Err(Lost::NoAnswer(ka));
            }
        }
        if writing && now.duration_since(self.last_write) >= 2 * ka {
            return Err(Lost::Stalled(2 * ka));
        }
        if !waiting {
            self.acks_since = None;
        } else {
            let since = *self.acks_since.get_or_insert(now);
            if now.duration_since(since) >= ka {
                return Err(Lost::NoAck(ka));
            }
        }
        let quiet =
            now.duration_since(self.last_write) >= ka || now.duration_since(self.last_packet) >= ka;
        let ping = pings && self.ping_sent.is_none() && quiet;
        if ping {
            self.ping_sent = Some(now);
        }
        let mut next = match self.ping_sent {
            Some(t) => t + ka,
            None if pings => self.last_write.min(self.last_packet) + ka,
            None => now + ka,
        };
        if let Some(t) = self.acks_since {
            next = next.min(t + ka);
        }
        Ok((next, ping))
    }
}

impl Session {
    /// Keep-alive and liveness at `now`; returns when to look again.
    pub fn on_timer(&mut self, now: Instant) -> Result<Instant, Lost> {
        let ka = self.cfg.liveness();
        let pings = !self.cfg.keep_alive.is_zero();
        let grace = self.grace_until();
        let waiting = self.outbox.inflight() > 0;
        let Some(l) = self.live.as_mut() else {
            return Ok(now + ka);
        };
        let (mut next, ping) = l
            .watch
            .check(now, ka, pings, l.wpos < l.wbuf.len(), waiting)?;
        if ping {
            wire::pingreq(&mut l.ctrl);
        }
        if let Some(t) = self.ha_due() {
            if t <= now {
                self.queue_discovery_again(now);
            } else {
                next = next.min(t);
            }
        }
        if let Some(g) = grace {
            next = next.min(g);
        }
        Ok(next.max(now + Duration::from_millis(5)))
    }
}
