//! Extending the hardware's narrow counters (32-bit microsecond time, 16-bit sequence
//! numbers) to 64 bits on the host.

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
}
