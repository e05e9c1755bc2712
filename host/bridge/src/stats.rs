//! Counters of the MQTT side and the `stats` message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pynq_mqtt_driver::Stats as DriverStats;

/// Counters of the MQTT side; monotonic unless said otherwise.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Events taken from the driver's channel.
    pub taken: AtomicU64,
    /// Events finished: written (QoS 0), acknowledged (QoS 1) or completed (QoS 2).
    pub published: AtomicU64,
    /// PUBLISH packets of events written again after a reconnect.
    pub resent: AtomicU64,
    /// Events dropped because the retry buffer was full while the broker was away.
    pub dropped_buffer: AtomicU64,
    /// Events still buffered when the shutdown timeout ran out.
    pub dropped_shutdown: AtomicU64,
    /// Events in the retry buffer now (a gauge).
    pub buffered: AtomicU64,
    /// Write calls on the connection, and the bytes they took.
    pub writes: AtomicU64,
    pub bytes_written: AtomicU64,
    /// LED commands accepted and sent down.
    pub commands: AtomicU64,
    /// LED commands refused (bad topic, LED or payload), each logged.
    pub commands_rejected: AtomicU64,
    /// LED commands lost because the driver's command queue was full or closed.
    pub commands_dropped: AtomicU64,
    /// Connections made (CONNACK accepted); all but the first are reconnects.
    pub connects: AtomicU64,
    /// Connection attempts that failed and connections that were lost.
    pub connection_errors: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A plain copy of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeStatsView {
    pub taken: u64,
    pub published: u64,
    pub resent: u64,
    pub dropped_buffer: u64,
    pub dropped_shutdown: u64,
    pub buffered: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub commands: u64,
    pub commands_rejected: u64,
    pub commands_dropped: u64,
    pub connects: u64,
    pub connection_errors: u64,
}

impl BridgeStatsView {
    /// Events the MQTT side lost (it never loses one silently).
    pub fn lost(&self) -> u64 {
        self.dropped_buffer + self.dropped_shutdown
    }

    pub fn reconnects(&self) -> u64 {
        self.connects.saturating_sub(1)
    }
}

impl From<&BridgeStats> for BridgeStatsView {
    fn from(s: &BridgeStats) -> Self {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Self {
            taken: g(&s.taken),
            published: g(&s.published),
            resent: g(&s.resent),
            dropped_buffer: g(&s.dropped_buffer),
            dropped_shutdown: g(&s.dropped_shutdown),
            buffered: g(&s.buffered),
            writes: g(&s.writes),
            bytes_written: g(&s.bytes_written),
            commands: g(&s.commands),
            commands_rejected: g(&s.commands_rejected),
            commands_dropped: g(&s.commands_dropped),
            connects: g(&s.connects),
            connection_errors: g(&s.connection_errors),
        }
    }
}

/// Builds the `stats` JSON; remembers the previous sample for the rates.
pub(crate) struct StatsReport {
    start: Instant,
    last: Instant,
    last_captured: u64,
    last_published: u64,
}

impl StatsReport {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
            last_captured: 0,
            last_published: 0,
        }
    }

    pub fn json(&mut self, b: &BridgeStats, d: &DriverStats) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let v = BridgeStatsView::from(b);
        let captured = g(&d.captured);
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64().max(1e-6);
        let rate =
            |now: u64, then: u64| ((now.saturating_sub(then)) as f64 / dt * 10.0).round() / 10.0;
        let out = serde_json::json!({
            "uptime_s": self.start.elapsed().as_secs(),
            "captured": captured,
            "published": v.published,
            "buffered": v.buffered,
            "dropped": {
                "hardware_fifo": g(&d.hw_dropped),
                "sequence_gaps": g(&d.seq_lost),
                "channel": g(&d.channel_full),
                "retry_buffer": v.dropped_buffer,
                "shutdown": v.dropped_shutdown,
            },
            "rates": {
                "captured_per_s": rate(captured, self.last_captured),
                "published_per_s": rate(v.published, self.last_published),
            },
            "broker": {
                "connects": v.connects,
                "reconnects": v.reconnects(),
                "errors": v.connection_errors,
                "resent": v.resent,
            },
            "writes": v.writes,
            "bytes_written": v.bytes_written,
            "led_commands": {
                "accepted": v.commands,
                "rejected": v.commands_rejected + g(&d.led_rejected),
                "dropped": v.commands_dropped,
            },
            "irqs": g(&d.irqs),
            "bus_errors": g(&d.bus_errors),
        })
        .to_string();
        self.last = now;
        self.last_captured = captured;
        self.last_published = v.published;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_has_every_cause() {
        let b = BridgeStats::default();
        let d = DriverStats::default();
        add(&b.published, 5);
        add(&b.dropped_buffer, 2);
        add(&b.connects, 3);
        d.captured.store(9, Ordering::Relaxed);
        d.hw_dropped.store(1, Ordering::Relaxed);
        d.channel_full.store(4, Ordering::Relaxed);
        let v: serde_json::Value = serde_json::from_str(&StatsReport::new().json(&b, &d)).unwrap();
        assert_eq!(v["captured"], 9);
        assert_eq!(v["published"], 5);
        assert_eq!(v["dropped"]["hardware_fifo"], 1);
        assert_eq!(v["dropped"]["channel"], 4);
        assert_eq!(v["dropped"]["retry_buffer"], 2);
        assert_eq!(v["broker"]["reconnects"], 2);
        assert!(v["rates"]["published_per_s"].as_f64().unwrap() > 0.0);
    }
}
