//! Extending the hardware's narrow counters (32-bit microsecond time, 16-bit sequence
//! numbers) to 64 bits on the host.

use std::num::NonZeroU64;

/// Extends a wrapping 32-bit counter that is read at least once per wrap period.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock64 {
    last_raw: u32,
    now: u64,
}

impl Clock64 {
    /// Starts from a first raw reading.
    pub fn new(raw: u32) -> Self {
        Self {
            last_raw: raw,
            now: u64::from(raw),
        }
    }

    /// Feeds a new raw reading (taken less than one wrap after the previous) and
    /// returns the extended value.
    pub fn update(&mut self, raw: u32) -> u64 {
        self.now += u64::from(raw.wrapping_sub(self.last_raw));
        self.last_raw = raw;
        self.now
    }

    /// Extends a raw stamp taken within half a wrap (35 minutes) of the last reading,
    /// before or after it.
    pub fn extend(&self, raw: u32) -> u64 {
        let delta = raw.wrapping_sub(self.last_raw) as i32;
        self.now.saturating_add_signed(i64::from(delta))
    }
}

/// The offset from the peripheral's extended microsecond clock to the system clock
/// (Unix microseconds), estimated from a read of TIME bracketed by two readings of
/// the system clock: the midpoint of the bracket is taken as the moment of the read,
/// so one estimate is off by at most half the bracket (plus the system clock's own
/// error, e.g. NTP's). A bracket much wider than the recent ones (the thread was
/// preempted mid-read) is skipped, unless several in a row were.
#[derive(Clone, Copy, Debug, Default)]
pub struct WallOffset {
    /// Width of the last accepted bracket, µs.
    last_bracket: u64,
    /// Samples skipped since the last accepted one.
    skipped: u32,
    /// The last accepted offset (Unix µs minus the peripheral's µs); 0 before one.
    offset: u64,
}

/// Wider brackets than this many in a row are accepted all the same (the machine
/// got slower; an old estimate would drift with the clocks).
const SKIP_AT_MOST: u32 = 8;

impl WallOffset {
    /// One sample: `before` and `after` are the system clock (Unix µs) around the
    /// read that gave `hw_us`. Returns (offset µs, its error bound µs) when taken.
    pub fn sample(&mut self, before: u64, after: u64, hw_us: u64) -> Option<(u64, u64)> {
        let bracket = after.saturating_sub(before);
        let fresh = self.skipped == 0 && self.last_bracket == 0;
        if !fresh
            && bracket > self.last_bracket.saturating_mul(2).max(4)
            && self.skipped < SKIP_AT_MOST
        {
            self.skipped += 1;
            return None;
        }
        self.last_bracket = bracket.max(1);
        self.skipped = 0;
        let mid = before + bracket / 2;
        self.offset = mid.saturating_sub(hw_us);
        Some((self.offset, bracket / 2 + 1))
    }

    /// `hw_us` in Unix µs through the last accepted offset; `None` before one.
    pub fn utc(&self, hw_us: u64) -> Option<NonZeroU64> {
        if self.offset == 0 {
            return None;
        }
        NonZeroU64::new(hw_us.saturating_add(self.offset))
    }
}

/// Extends 16-bit sequence numbers and counts the ones that never arrived.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seq64 {
    next: Option<u64>,
}

impl Seq64 {
    /// Returns the extended sequence number of `raw` and how many were skipped
    /// before it (lost events).
    pub fn accept(&mut self, raw: u16) -> (u64, u64) {
        match self.next {
            None => {
                self.next = Some(u64::from(raw) + 1);
                (u64::from(raw), 0)
            }
            Some(next) => {
                let gap = u64::from(raw.wrapping_sub(next as u16));
                let seq = next + gap;
                self.next = Some(seq + 1);
                (seq, gap)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_extends_across_wraps() {
        let mut c = Clock64::new(u32::MAX - 10);
        assert_eq!(c.update(5), u64::from(u32::MAX) + 6);
        assert_eq!(c.update(u32::MAX), 2 * u64::from(u32::MAX) + 1);
        for _ in 0..10 {
            let before = c.update(c.last_raw.wrapping_add(3_000_000_000));
            assert!(before > u64::from(u32::MAX));
        }
    }

    #[test]
    fn stamps_just_before_and_after_the_reading() {
        let mut c = Clock64::new(100);
        c.update(u32::MAX - 5); // now = 2^32 - 6 after a long run
        let now = u64::from(u32::MAX) - 5;
        assert_eq!(c.extend(u32::MAX - 7), now - 2);
        assert_eq!(c.extend(2), now + 8, "a stamp after the wrap");
        assert_eq!(c.extend(u32::MAX - 5), now);
    }

    #[test]
    fn sequence_gaps_are_counted_across_the_16_bit_wrap() {
        let mut s = Seq64::default();
        assert_eq!(s.accept(65534), (65534, 0));
        assert_eq!(s.accept(65535), (65535, 0));
        assert_eq!(s.accept(0), (65536, 0));
        assert_eq!(s.accept(3), (65539, 2));
        assert_eq!(s.accept(4), (65540, 0));
    }

    #[test]
    fn wall_offset_takes_narrow_brackets_and_skips_a_preempted_read_a_few_times() {
        let mut w = WallOffset::default();
        // the read took 10 µs: midpoint 1_000_005, peripheral at 5
        assert_eq!(w.sample(1_000_000, 1_000_010, 5), Some((1_000_000, 6)));
        // a read preempted for 5 ms is not trusted...
        assert_eq!(w.sample(2_000_000, 2_005_000, 1_000_005), None);
        // ...a normal one again is
        assert_eq!(
            w.sample(3_000_000, 3_000_008, 2_000_004),
            Some((1_000_000, 5))
        );
        // a machine that became slow for good is followed after a few samples
        let taken = (0..=SKIP_AT_MOST as u64)
            .filter_map(|k| w.sample(4_000_000 + k, 4_000_500 + k, 3_000_250 + k))
            .count();
        assert_eq!(taken, 1);
    }
}
