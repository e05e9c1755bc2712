//! Reconnect delays: exponential from a minimum up to a cap, with jitter so that a
//! fleet of boards does not reconnect in lockstep after a broker restart.

use std::time::Duration;

use tracing::warn;

use crate::error::ConnectError;
use crate::fleet::{takeover_line, Takeover, QUICK, QUICK_IN_A_ROW};
use crate::ConnectHint;

/// What the reconnect loop decides between connections: how long to wait, when the
/// broker is handing our client id to another board, and the broker hint, which is
/// said once per run (it is the same at every retry).
pub(crate) struct Retry {
    backoff: Backoff,
    takeover: Takeover,
    hint: Option<ConnectHint>,
}

impl Retry {
    pub fn new(min: Duration, max: Duration, hint: Option<ConnectHint>) -> Self {
        let (backoff, takeover) = (Backoff::new(min, max), Takeover::default());
        Self {
            backoff,
            takeover,
            hint,
        }
    }

    /// A connection was lost after `lasted`. One that lasted restarts the backoff;
    /// one the broker ends at once (refusing something, or taking the id over) does not.
    pub fn lost(&mut self, lasted: Duration, client_id: &str) {
        if self.takeover.ended(lasted) {
            warn!("{}", takeover_line(client_id, QUICK_IN_A_ROW));
        }
        if lasted > QUICK {
            self.backoff.reset();
        }
    }

    /// The hint for a failed attempt, the first time only.
    pub fn hint(&mut self, e: &ConnectError) -> Option<String> {
        match e {
            ConnectError::Stopping => None,
            e => self.hint.take().map(|h| h(e)),
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        self.backoff.next_delay()
    }
}

#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Self {
            min: min.max(Duration::from_millis(1)),
            max: max.max(min),
            attempt: 0,
            rng: h.finish() | 1,
        }
    }

    /// Back to the minimum (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay: uniform in [d/2, d] with d = min * 2^attempt, capped at max.
    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: plenty for jitter
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + 0.5 * frac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut b = Backoff::new(min, max);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        for (k, d) in delays.iter().enumerate() {
            let full = (min * (1 << k.min(20))).min(max);
            assert!(
                *d >= full / 2 && *d <= full,
                "attempt {k}: {d:?} outside [{:?}, {full:?}]",
                full / 2
            );
        }
        assert!(delays[11] >= max / 2, "capped");
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
