//! A bench-only record of when each event passed one point of the path (the driver's
//! FIFO pop, the bridge's socket write), so that a latency bench can split the time
//! from pin to subscriber. Off unless a caller hands one in (`DriverConfig::trace`,
//! and the layer above may take the same type); the daemon never does, and then the
//! hot path pays one `None` check per event and reads no clock.
//!
//! Bounded: the capacity is fixed at creation and never grows; records past it are
//! counted ([`EventTrace::overflowed`]), not kept. Lock-free: a record claims a slot
//! with one atomic add, so the thread that records never waits for a reader.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The system's real-time clock in nanoseconds since the Unix epoch (0 before 1970):
/// one clock that processes on the same host share, so stamps taken in another
/// process (a subscriber) compare with these.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Up to `capacity` (sequence number, Unix ns) pairs, in the order they were recorded.
#[derive(Debug)]
pub struct EventTrace {
    seqs: Box<[AtomicU64]>,
    /// 0: the slot is claimed but not written yet (or was never claimed).
    stamps: Box<[AtomicU64]>,
    next: AtomicUsize,
}

impl EventTrace {
    /// A trace that keeps the first `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            seqs: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            stamps: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Records that event `seq` passed the point at `unix_ns`; dropped (and counted)
    /// once the trace is full.
    pub fn record(&self, seq: u64, unix_ns: u64) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if let (Some(s), Some(t)) = (self.seqs.get(i), self.stamps.get(i)) {
            s.store(seq, Ordering::Relaxed);
            // published last: a reader that sees the stamp sees the sequence number
            t.store(unix_ns.max(1), Ordering::Release);
        }
    }

    /// The records kept so far, in order; a slot still being written is left out.
    pub fn snapshot(&self) -> Vec<(u64, u64)> {
        let n = self.next.load(Ordering::Relaxed).min(self.stamps.len());
        (0..n)
            .filter_map(|i| {
                let t = self.stamps[i].load(Ordering::Acquire);
                (t != 0).then(|| (self.seqs[i].load(Ordering::Relaxed), t))
            })
            .collect()
    }

    /// Records that did not fit.
    pub fn overflowed(&self) -> u64 {
        let n = self.next.load(Ordering::Relaxed);
        n.saturating_sub(self.stamps.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_records_in_order_up_to_its_capacity_and_counts_the_rest() {
        let t = EventTrace::new(3);
        assert!(t.snapshot().is_empty());
        for (seq, ns) in [(7, 100), (8, 200), (9, 300), (10, 400), (11, 500)] {
            t.record(seq, ns);
        }
        assert_eq!(t.snapshot(), vec![(7, 100), (8, 200), (9, 300)]);
        assert_eq!(t.overflowed(), 2);
    }

    #[test]
    fn records_from_several_threads_are_all_kept() {
        let t = std::sync::Arc::new(EventTrace::new(4000));
        let hs: Vec<_> = (0..4u64)
            .map(|k| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        t.record(k * 1000 + i, unix_ns());
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let mut seqs: Vec<u64> = t.snapshot().into_iter().map(|(s, _)| s).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..4000).collect::<Vec<_>>());
        assert_eq!(t.overflowed(), 0);
    }

    #[test]
    fn a_zero_stamp_is_still_a_record() {
        let t = EventTrace::new(1);
        t.record(5, 0);
        assert_eq!(t.snapshot(), vec![(5, 1)]);
    }
}
