//! QoS 0 events finished when their bytes were handed to the socket, and taken back
//! when the connection is lost with those bytes never acknowledged by the broker's
//! TCP: `published` counts what the broker's host received, not what our kernel
//! accepted.
//!
//! Each write that finished events is remembered as a span of the connection's byte
//! stream with the number of events whose last byte fell in it. At a loss, the
//! `unacked` bytes at the end of the stream are mapped back onto the spans; in the
//! span the acknowledged point cuts, the share of its events past the cut is
//! rounded up, so the count never overstates `published`. Spans are merged oldest
//! first beyond [`Tail::SPANS`], which only blurs the oldest bytes, the ones least
//! likely to be unacknowledged.

use std::collections::VecDeque;

use tracing::warn;

use super::Session;
use crate::config::Qos;
use crate::stats::add;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u64,
    end: u64,
    events: u64,
}

/// The recent QoS 0 writes of one connection.
#[derive(Debug, Default)]
pub struct Tail {
    total: u64,
    spans: VecDeque<Span>,
}

impl Tail {
    pub const SPANS: usize = 1024;

    /// The socket took `n` bytes, with which `events` events were finished.
    pub fn wrote(&mut self, n: usize, events: usize) {
        let start = self.total;
        self.total += n as u64;
        if events == 0 {
            return;
        }
        self.spans.push_back(Span {
            start,
            end: self.total,
            events: events as u64,
        });
        if self.spans.len() > Self::SPANS {
            let a = self.spans.pop_front().unwrap_or_else(|| unreachable!());
            if let Some(b) = self.spans.front_mut() {
                b.start = a.start;
                b.events += a.events;
            }
        }
    }

    /// Events whose last byte is among the final `unacked` bytes written.
    pub fn lost(&self, unacked: u64) -> u64 {
        let acked = self.total.saturating_sub(unacked);
        self.spans
            .iter()
            .rev()
            .take_while(|s| s.end > acked)
            .map(|s| {
                if s.start >= acked {
                    s.events
                } else {
                    let past = u128::from(s.end - acked);
                    let len = u128::from(s.end - s.start);
                    (u128::from(s.events) * past).div_ceil(len) as u64
                }
            })
            .sum()
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
                warn!(
                    "QoS 0: how much of the last data written reached the broker is unknown \
                     (TLS, or the connection was reset); events written to a dead link may \
                     be counted as published"
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
