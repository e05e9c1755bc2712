//! Reconnect delays: exponential from a minimum up to a cap, with jitter so that a
//! fleet of boards does not reconnect in lockstep after a broker restart; and, with
//! several brokers, which one to try next.

use std::time::Duration;

use tracing::warn;

use crate::error::ConnectError;
use crate::fleet::{takeover_line, Takeover, QUICK, QUICK_IN_A_ROW};
use crate::stats::{add, BridgeStats};
use crate::ConnectHint;

/// What the reconnect loop decides between connections: how long to wait, which
/// broker to try, when the broker is handing our client id to another board, and the
/// broker hint, which is said once per run (it is the same at every retry).
///
/// Brokers: a lost connection is tried again on the same broker (the link may have
/// broken, not the broker); each failed attempt moves to the next broker in the
/// list, round and round. Within a round the next broker is tried after the
/// minimum delay (it is another machine, and the events are waiting); each round
/// that fails as a whole grows the backoff, as one broker's failures do.
pub(crate) struct Retry {
    backoff: Backoff,
    takeover: Takeover,
    hint: Option<ConnectHint>,
    /// How many brokers, and the one tried next (0 first).
    brokers: usize,
    at: usize,
    /// Attempts failed since the last connection.
    failed: usize,
}

impl Retry {
    pub fn new(min: Duration, max: Duration, hint: Option<ConnectHint>, brokers: usize) -> Self {
        let (backoff, takeover) = (Backoff::new(min, max), Takeover::default());
        Self {
            backoff,
            takeover,
            hint,
            brokers: brokers.max(1),
            at: 0,
            failed: 0,
        }
    }

    /// The broker to try next, by its place in the list.
    pub fn broker(&self) -> usize {
        self.at
    }

    /// Whether a broker of the list is still untried since the last connection, not
    /// counting the attempt that just failed.
    pub fn untried_left(&self) -> bool {
        self.failed + 1 < self.brokers
    }

    /// The session's verdict on a failed attempt, `Err` when it ends the run (a login
    /// refused before any connection, ...): with a broker of the list still untried,
    /// the run goes on there instead, since another broker may take what this one
    /// refused; counted as a connection error like any other.
    pub fn refused(
        &self,
        verdict: Result<ConnectError, ConnectError>,
        stats: &BridgeStats,
    ) -> Result<ConnectError, ConnectError> {
        match verdict {
            Err(e) if self.untried_left() => {
                add(&stats.connection_errors, 1);
                Ok(e)
            }
            v => v,
        }
    }

    /// An attempt failed: the next broker, when there is another to move to.
    pub fn failed(&mut self) -> Option<usize> {
        self.failed += 1;
        if self.brokers < 2 {
            return None;
        }
        self.at = (self.at + 1) % self.brokers;
        Some(self.at)
    }

    /// A connection was lost after `lasted`. One that lasted restarts the backoff;
    /// one the broker ends at once (refusing something, or taking the id over) does not.
    pub fn lost(&mut self, lasted: Duration, client_id: &str) {
        self.failed = 0;
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
        if !self.failed.is_multiple_of(self.brokers) {
            // a broker not yet tried in this round
            return self.backoff.shortest();
        }
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
        self.jitter(d)
    }

    /// The minimum delay, jittered, leaving the growth where it is.
    pub fn shortest(&mut self) -> Duration {
        self.jitter(self.min)
    }

    /// Uniform in [d/2, d].
    fn jitter(&mut self, d: Duration) -> Duration {
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

    fn retry(brokers: usize) -> Retry {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        Retry::new(min, max, None, brokers)
    }

    #[test]
    fn one_broker_never_moves_and_backs_off_at_every_failure() {
        let mut r = retry(1);
        let delays: Vec<Duration> = (0..5)
            .map(|_| {
                assert_eq!(r.failed(), None);
                assert_eq!(r.broker(), 0);
                r.next_delay()
            })
            .collect();
        // the k-th delay is within [100ms * 2^k / 2, 100ms * 2^k]
        for (k, d) in delays.iter().enumerate() {
            let full = Duration::from_millis(100) * (1 << k);
            assert!(*d >= full / 2 && *d <= full, "attempt {k}: {d:?}");
        }
    }

    #[test]
    fn failures_move_round_the_brokers_in_order() {
        let mut r = retry(3);
        assert_eq!(r.broker(), 0);
        let moves: Vec<Option<usize>> = (0..7).map(|_| r.failed()).collect();
        assert_eq!(
            moves,
            [
                Some(1),
                Some(2),
                Some(0),
                Some(1),
                Some(2),
                Some(0),
                Some(1)
            ]
        );
        assert_eq!(r.broker(), 1);
    }

    #[test]
    fn a_refusal_moves_on_until_every_broker_was_tried() {
        let mut one = retry(1);
        assert!(
            !one.untried_left(),
            "one broker: a refusal is final, as ever"
        );
        let mut r = retry(3);
        assert!(r.untried_left(), "broker 0 refused; 1 and 2 are untried");
        r.failed();
        assert!(r.untried_left(), "broker 1 refused; 2 is untried");
        r.failed();
        assert!(!r.untried_left(), "broker 2 refused: the round is complete");
        r.lost(Duration::from_secs(60), "id");
        assert!(r.untried_left(), "a new round after a connection");
        one.failed();
        assert!(!one.untried_left());
    }

    #[test]
    fn a_final_refusal_ends_the_run_only_once_every_broker_refused() {
        use std::sync::atomic::Ordering;
        let stats = BridgeStats::default();
        let refused = || ConnectError::Refused(crate::Refusal::BadLogin);
        let mut r = retry(2);
        let v = r.refused(Err(refused()), &stats);
        assert!(v.is_ok(), "broker 1 is untried: go on there");
        assert_eq!(stats.connection_errors.load(Ordering::Relaxed), 1);
        r.failed();
        assert!(r.refused(Err(refused()), &stats).is_err(), "both refused");
        assert!(
            r.refused(Ok(refused()), &stats).is_ok(),
            "a retryable failure stays one"
        );
        let one = retry(1);
        assert!(
            one.refused(Err(refused()), &stats).is_err(),
            "one broker: as before"
        );
    }

    #[test]
    fn a_lost_connection_is_retried_on_the_same_broker_first() {
        let mut r = retry(3);
        assert_eq!(r.failed(), Some(1));
        // connected to broker 1, then lost: the next attempt is broker 1 again
        r.lost(Duration::from_secs(60), "id");
        assert_eq!(r.broker(), 1);
        assert_eq!(r.failed(), Some(2), "the retry failed: move on");
    }

    #[test]
    fn an_untried_broker_waits_the_minimum_and_each_failed_round_grows_the_backoff() {
        let min = Duration::from_millis(100);
        let mut r = retry(3);
        let round = |r: &mut Retry| -> Vec<Duration> {
            (0..3)
                .map(|_| {
                    r.failed();
                    r.next_delay()
                })
                .collect()
        };
        let first = round(&mut r);
        let second = round(&mut r);
        for d in [first[0], first[1], second[0], second[1]] {
            assert!(d >= min / 2 && d <= min, "moving within a round: {d:?}");
        }
        // a whole round failed: the backoff's own delays, 100 ms then 200 ms
        assert!(first[2] >= min / 2 && first[2] <= min, "{:?}", first[2]);
        assert!(second[2] >= min && second[2] <= min * 2, "{:?}", second[2]);
        // a connection that lasted: the backoff starts again, the rounds too
        r.lost(Duration::from_secs(60), "id");
        let d = r.next_delay();
        assert!(d <= min, "after a good connection: {d:?}");
        r.failed();
        assert!(
            r.next_delay() <= min,
            "the next broker, untried in the new round"
        );
    }
}
