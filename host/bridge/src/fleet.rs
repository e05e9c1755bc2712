//! Two boards that fight on one broker, found and named once: the same client id
//! (the broker hands the id to whichever connected last, so each daemon's
//! connections end right after they are made), or the same `status` topic (another
//! device says `online` where only this one should).

use std::time::Duration;

/// A connection the broker ends sooner than this after its CONNACK counts as taken
/// over; the same bound at which the reconnect backoff restarts.
pub const QUICK: Duration = Duration::from_secs(5);
/// Quick ends in a row before the line is logged: one or two are a flaky link or a
/// broker restart.
pub const QUICK_IN_A_ROW: u32 = 3;

/// The prefix the docs recommend for a board: `pynq/<id>/`, the id being the client
/// id without its `pynq-mqtt-`.
pub fn suggested_prefix(client_id: &str) -> String {
    format!(
        "pynq/{}/",
        client_id.strip_prefix("pynq-mqtt-").unwrap_or(client_id)
    )
}

/// Counts connections that end at once; says "now" once per run.
#[derive(Debug, Default)]
pub struct Takeover {
    in_a_row: u32,
    said: bool,
}

impl Takeover {
    /// A connection ended after `lasted`: whether to log the takeover line now.
    pub fn ended(&mut self, lasted: Duration) -> bool {
        if lasted >= QUICK {
            self.in_a_row = 0;
            return false;
        }
        self.in_a_row += 1;
        if self.in_a_row >= QUICK_IN_A_ROW && !self.said {
            self.said = true;
            return true;
        }
        false
    }
}

/// The takeover line.
pub fn takeover_line(client_id: &str, n: u32) -> String {
    format!(
        "the broker ended {n} connections in a row within {}s of their start: another client \
         uses this client id ({client_id:?}) and the broker hands the id to whichever connected \
         last; give each board its own client_id (the default, from the board's MAC, is unique) \
         and its own prefix, e.g. prefix = \"{}\"",
        QUICK.as_secs(),
        suggested_prefix(client_id)
    )
}

/// Our own `online` comes back to us (MQTT 3.1.1 has no "no local"); one more than we
/// published is another device's.
#[derive(Debug, Default)]
pub struct SharedStatus {
    own_pending: u32,
    said: bool,
}

impl SharedStatus {
    /// We published `online` (retained) on our status topic.
    pub fn published(&mut self) {
        self.own_pending = self.own_pending.saturating_add(1);
    }

    /// A live (not retained) `online` on our status topic: whether it is another
    /// device's, the first time.
    pub fn received(&mut self) -> bool {
        if self.own_pending > 0 {
            self.own_pending -= 1;
            return false;
        }
        !std::mem::replace(&mut self.said, true)
    }
}

/// The shared-status line.
pub fn shared_status_line(status: &str, client_id: &str) -> String {
    format!(
        "another device publishes `online` on this board's status topic {status:?}: two boards \
         share one topic prefix, and their buttons, LEDs and availability mix; give each board \
         its own prefix, e.g. prefix = \"{}\"",
        suggested_prefix(client_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_quick_ends_in_a_row_say_it_once() {
        let mut t = Takeover::default();
        let quick = Duration::from_millis(300);
        assert!(!t.ended(quick) && !t.ended(quick));
        assert!(
            !t.ended(Duration::from_secs(60)),
            "a connection that lasted"
        );
        assert!(!t.ended(quick) && !t.ended(quick));
        assert!(t.ended(quick));
        assert!(
            !t.ended(quick) && !t.ended(quick) && !t.ended(quick),
            "once"
        );
        let line = takeover_line("pynq-mqtt-0a1b2c", 3);
        assert!(
            line.contains("\"pynq-mqtt-0a1b2c\"") && line.contains("prefix = \"pynq/0a1b2c/\"")
        );
    }

    #[test]
    fn our_own_online_is_not_another_devices() {
        let mut s = SharedStatus::default();
        s.published();
        assert!(!s.received(), "our own echo");
        s.published();
        s.published();
        assert!(!s.received() && !s.received());
        assert!(s.received(), "one more than we sent");
        assert!(!s.received(), "said once");
        assert_eq!(suggested_prefix("lab"), "pynq/lab/");
    }
}
