//! What the bridge is doing now, beside its counters: the broker connection, the
//! in-flight window and how long a batch takes from the driver's channel to the
//! socket. Read by the daemon's web page and `/metrics`; written by the link with
//! relaxed stores, once per loop turn or per batch, so it costs the hot path nothing
//! it would notice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::outbox::Outbox;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000, 10_000_000,
];

/// The bridge's gauges and its one histogram.
#[derive(Debug, Default)]
pub struct BridgeLive {
    /// A CONNACK was accepted and the connection has not broken since.
    pub connected: AtomicBool,
    /// Events written and not yet acknowledged (QoS 1/2).
    pub inflight: AtomicU64,
    /// How many may be in flight now (shrinks when the broker loses some).
    pub window: AtomicU64,
    /// From taking the oldest event of a batch off the driver's channel to the write
    /// that put the batch's last byte into the socket.
    pub drain_to_socket: Histogram,
}

/// The link's side of [`BridgeLive`]: nothing to do when no one reads it.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    live: Option<Arc<BridgeLive>>,
    /// When the oldest event not yet on the socket was taken off the channel.
    taken_at: Option<Instant>,
}

impl Probe {
    pub(crate) fn new(live: Option<Arc<BridgeLive>>) -> Self {
        Self {
            live,
            taken_at: None,
        }
    }

    pub(crate) fn connected(&self, up: bool) {
        if let Some(live) = &self.live {
            live.connected.store(up, Ordering::Relaxed);
        }
    }

    /// `taken` events came off the channel at `now`; the window as it stands.
    pub(crate) fn pulled(&mut self, taken: usize, now: Instant, outbox: &Outbox) {
        if let Some(live) = &self.live {
            if taken > 0 && self.taken_at.is_none() {
                self.taken_at = Some(now);
            }
            live.inflight
                .store(outbox.inflight() as u64, Ordering::Relaxed);
            live.window.store(outbox.window() as u64, Ordering::Relaxed);
        }
    }

    /// A batch is on the socket: how long its oldest event took from the channel.
    pub(crate) fn batch_written(&mut self, now: Instant) {
        if let (Some(live), Some(t0)) = (&self.live, self.taken_at.take()) {
            live.drain_to_socket
                .observe(now.saturating_duration_since(t0));
        }
    }
}

/// A fixed-bucket histogram of durations: one relaxed add per bucket it lands in.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Not cumulative: `buckets[i]` counts samples in (bound i-1, bound i];
    /// the last one those above every bound.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

/// A copy of a [`Histogram`].
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramView {
    /// (upper bound in seconds, samples above the previous bound and at or below
    /// this one), ascending; +Inf last. Not cumulative: the text encoders sum.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn view(&self) -> HistogramView {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            total += n;
            let bound = LATENCY_BOUNDS_US
                .get(i)
                .map_or(f64::INFINITY, |&us| us as f64 / 1e6);
            buckets.push((bound, n));
        }
        HistogramView {
            buckets,
            count: total,
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(10)); // on the bound: that bucket
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60)); // beyond every bound: +Inf
        let v = h.view();
        assert_eq!(v.count, 4);
        assert_eq!(v.buckets[0], (10e-6, 1));
        assert_eq!(v.buckets[1], (25e-6, 1));
        let at = |s: f64| v.buckets.iter().find(|(b, _)| *b == s).unwrap().1;
        assert_eq!(at(2.5e-3), 0);
        assert_eq!(at(5e-3), 1);
        assert_eq!(at(10.0), 0);
        assert_eq!(v.buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert_eq!(v.buckets.iter().map(|b| b.1).sum::<u64>(), v.count);
        assert!((v.sum_seconds - 60.003021).abs() < 1e-9);
    }
}
