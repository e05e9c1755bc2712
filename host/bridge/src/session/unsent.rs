//! QoS 0 events finished when their bytes were handed to the socket, and taken back
//! when the connection is lost with those bytes never acknowledged by the broker's
//! TCP: `published` counts what the broker's host received, not what our kernel
//! accepted.
//!
//! The connection's byte offset at the end of each QoS 0 event is kept, as the
//! distance from the previous one (4 bytes an event), for the last [`Tail::KEEP`]
//! events: at a loss, the events whose last byte is among the final `unacked`
//! bytes are counted, exactly. A send queue longer than the events kept (over
//! 512 Ki events in the kernel's buffer) counts only those kept.

use std::collections::VecDeque;

use tracing::warn;

use super::Session;
use crate::config::Qos;
use crate::stats::add;

/// The recent QoS 0 events of one connection, by where their bytes end.
#[derive(Debug, Default)]
pub struct Tail {
    /// Bytes the socket took on this connection.
    total: u64,
    /// Stream offset of the end of the newest event kept.
    last_end: u64,
    /// Per event, oldest first: its end minus the previous event's end.
    steps: VecDeque<u32>,
}

impl Tail {
    pub const KEEP: usize = 1 << 19;

    /// The socket took `n` bytes, after which `wpos` bytes of the batch are written;
    /// `ends` are the batch offsets of the events those bytes finished.
    pub fn wrote(&mut self, n: usize, wpos: usize, ends: &[usize]) {
        self.total += n as u64;
        let base = self.total - wpos as u64;
        for &e in ends {
            let end = base + e as u64;
            let step = u32::try_from(end - self.last_end).unwrap_or(u32::MAX);
            self.last_end = end;
            if self.steps.len() == Self::KEEP {
                self.steps.pop_front();
            }
            self.steps.push_back(step);
        }
    }

    /// Events whose last byte is among the final `unacked` bytes written.
    pub fn lost(&self, unacked: u64) -> u64 {
        let acked = self.total.saturating_sub(unacked);
        let mut end = self.last_end;
        let mut n = 0;
        for &step in self.steps.iter().rev() {
            if end <= acked {
                break;
            }
            n += 1;
            end = end.saturating_sub(u64::from(step));
        }
        n
    }
}

impl Session {
    /// The connection is lost with `unacked` bytes (None: unknown) never acknowledged
    /// by the broker: at QoS 0 the events among them are counted lost, not published.
    pub fn lost_unacked(&mut self, unacked: Option<u64>) {
        if self.cfg.qos != Qos::AtMostOnce {
            return; // QoS 1/2 events are finished by the broker's acknowledgement
        }
        let Some(l) = self.live.as_ref() else {
            return;
        };
        let Some(q) = unacked else {
            if l.tail.total > 0 {
                add(&self.stats.qos0_unknown, 1);
                warn!(
                    "QoS 0: how much of the last data written reached the broker is unknown \
                     (TLS, or the connection was reset); events written to a dead link may \
                     be counted as published (the final line counts such links)"
                );
            }
            return;
        };
        let n = l.tail.lost(q);
        if n == 0 {
            return;
        }
        let published = &self.stats.published;
        let taken = published
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |p| Some(p.saturating_sub(n)),
            )
            .unwrap_or_else(|p| p)
            .min(n);
        add(&self.stats.dropped_unacked, taken);
        warn!(
            lost = taken,
            bytes = q,
            "QoS 0 events written but never acknowledged by the broker's TCP: counted as lost"
        );
    }
}
