//! Counters of the MQTT side and the `stats` message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pynq_mqtt_driver::{Stats as DriverStats, StatsSnapshot as DriverSnapshot};
use serde_json::{Map, Value};

pynq_mqtt_driver::counters! {
    /// Counters of the MQTT side; monotonic unless said otherwise.
    pub struct BridgeStats => BridgeStatsView {
        /// Events taken from the driver's channel.
        taken { json: None, log: None },
        /// Events finished: written (QoS 0), acknowledged (QoS 1) or completed (QoS 2).
        published { json: Some("published"), log: Some("published") },
        /// PUBLISH packets of events written again after a reconnect.
        resent { json: Some("broker.resent"), log: None },
        /// Events dropped because the retry buffer was full while the broker was away.
        dropped_buffer { json: Some("dropped.retry_buffer"), log: Some("dropped_retry_buffer") },
        /// Events still buffered when the shutdown timeout ran out.
        dropped_shutdown { json: Some("dropped.shutdown"), log: Some("dropped_at_shutdown") },
        /// QoS 0 events written to a connection that was lost before the broker's TCP
        /// acknowledged them (taken back from `published`).
        dropped_unacked { json: Some("dropped.unacknowledged"), log: Some("dropped_unacknowledged") },
        /// Connections lost at QoS 0 with events written on them whose fate cannot be
        /// known (TLS, or a reset: the socket's unsent bytes are gone); those events
        /// stay counted as published, and the final line says how often that happened.
        qos0_unknown { json: Some("broker.qos0_fate_unknown"), log: Some("qos0_links_lost_fate_unknown") },
        /// MQTT 5: events the broker refused (a failure reason code) or that were
        /// larger than its Maximum Packet Size; each logged, rate-limited.
        dropped_broker { json: Some("dropped.broker_refused"), log: Some("dropped_broker_refused") },
        /// MQTT 5: control messages (status, LED states, discovery, stats) larger than
        /// the broker's Maximum Packet Size, not sent.
        ctrl_too_large { json: Some("broker.control_too_large"), log: Some("control_too_large") },
        /// Events in the retry buffer now (a gauge).
        buffered { json: Some("buffered"), log: None },
        /// Write calls on the connection.
        writes { json: Some("writes"), log: Some("writes") },
        /// Bytes those writes took.
        bytes_written { json: Some("bytes_written"), log: None },
        /// LED commands accepted and sent down.
        commands { json: Some("led_commands.accepted"), log: Some("led_commands") },
        /// LED commands refused (bad topic, LED or payload), each logged.
        commands_rejected { json: Some("led_commands.rejected"), log: Some("rejected") },
        /// LED commands lost because the driver's command queue was full or closed.
        commands_dropped { json: Some("led_commands.dropped"), log: None },
        /// Connections made (CONNACK accepted); all but the first are reconnects.
        connects { json: Some("broker.connects"), log: None },
        /// Connection attempts that failed and connections that were lost.
        connection_errors { json: Some("broker.errors"), log: None },
    }
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

impl BridgeStatsView {
    /// Events the MQTT side lost (it never loses one silently).
    pub fn lost(&self) -> u64 {
        self.dropped_buffer + self.dropped_shutdown + self.dropped_unacked + self.dropped_broker
    }

    pub fn reconnects(&self) -> u64 {
        self.connects.saturating_sub(1)
    }
}

/// The counters of the final log line, driver's and bridge's, with the derived
/// `lost` and `reconnects` last.
pub fn summary(d: &DriverSnapshot, b: &BridgeStatsView) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = d
        .values()
        .chain(b.values())
        .filter_map(|(c, v)| Some((c.log?, v)))
        .collect();
    out.push(("lost", d.hw_dropped + d.channel_full + b.lost()));
    out.push(("reconnects", b.reconnects()));
    out
}

/// Adds `v` at the dotted `path` of a JSON object (summing with what is there).
fn add_at(root: &mut Map<String, Value>, path: &str, v: u64) {
    let (group, key) = match path.split_once('.') {
        Some((g, k)) => (Some(g), k),
        None => (None, path),
    };
    let obj = match group {
        None => root,
        Some(g) => match root.entry(g).or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(o) => o,
            _ => unreachable!("{g} is both a counter and a group"),
        },
    };
    let sum = obj.get(key).and_then(Value::as_u64).unwrap_or(0) + v;
    obj.insert(key.to_owned(), sum.into());
}

/// Builds the `stats` JSON; remembers the previous sample for the rates.
pub(crate) struct StatsReport {
    /// Which board the counters are of, for a fleet's dashboards.
    client_id: String,
    start: Instant,
    last: Instant,
    last_captured: u64,
    last_published: u64,
}

impl StatsReport {
    pub fn new(client_id: &str) -> Self {
        let now = Instant::now();
        Self {
            client_id: client_id.to_owned(),
            start: now,
            last: now,
            last_captured: 0,
            last_published: 0,
        }
    }

    pub fn json(&mut self, b: &BridgeStats, d: &DriverStats) -> String {
        let (v, d) = (b.snapshot(), d.snapshot());
        let mut root = Map::new();
        // the base overlay's own counters only where the driver runs on it
        let base = d.base_board != 0;
        for (c, n) in d.values().chain(v.values()) {
            if let Some(path) = c.json.filter(|p| base || !p.starts_with("base.")) {
                add_at(&mut root, path, n);
            }
        }
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64().max(1e-6);
        let rate =
            |now: u64, then: u64| ((now.saturating_sub(then)) as f64 / dt * 10.0).round() / 10.0;
        root.insert("client_id".into(), self.client_id.clone().into());
        root.insert("uptime_s".into(), self.start.elapsed().as_secs().into());
        root.insert(
            "rates".into(),
            serde_json::json!({
                "captured_per_s": rate(d.captured, self.last_captured),
                "published_per_s": rate(v.published, self.last_published),
            }),
        );
        add_at(&mut root, "broker.reconnects", v.reconnects());
        self.last = now;
        self.last_captured = d.captured;
        self.last_published = v.published;
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_overlays_counters_appear_only_on_it() {
        let b = BridgeStats::default();
        let d = DriverStats::default();
        d.missed_pulses.store(2, Ordering::Relaxed);
        d.bounces.store(5, Ordering::Relaxed);
        let v: serde_json::Value =
            serde_json::from_str(&StatsReport::new("c").json(&b, &d)).unwrap();
        assert!(v.get("base").is_none(), "not on our overlay");
        d.base_board.store(1, Ordering::Relaxed);
        let v: serde_json::Value =
            serde_json::from_str(&StatsReport::new("c").json(&b, &d)).unwrap();
        assert_eq!(v["base"]["missed_pulses"], 2);
        assert_eq!(v["base"]["bounces"], 5);
        assert_eq!(v["base"]["foreign_irqs"], 0);
        assert_eq!(v["base"]["intc_reenabled"], 0);
    }

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
        let v: serde_json::Value =
            serde_json::from_str(&StatsReport::new("pynq-mqtt-0a1b2c").json(&b, &d)).unwrap();
        assert_eq!(v["captured"], 9);
        assert_eq!(v["client_id"], "pynq-mqtt-0a1b2c");
        assert_eq!(v["published"], 5);
        assert_eq!(v["dropped"]["hardware_fifo"], 1);
        assert_eq!(v["dropped"]["channel"], 4);
        assert_eq!(v["dropped"]["retry_buffer"], 2);
        assert_eq!(v["broker"]["reconnects"], 2);
        assert!(v["rates"]["published_per_s"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn every_counter_key_of_the_stats_message_is_there_once() {
        let b = BridgeStats::default();
        let d = DriverStats::default();
        add(&b.commands_rejected, 2);
        d.led_rejected.store(3, Ordering::Relaxed);
        let v: serde_json::Value =
            serde_json::from_str(&StatsReport::new("pynq-mqtt-0a1b2c").json(&b, &d)).unwrap();
        let keys = |g: &str| {
            let mut k: Vec<String> = v[g].as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys("dropped"),
            [
                "broker_refused",
                "channel",
                "hardware_fifo",
                "retry_buffer",
                "sequence_gaps",
                "shutdown",
                "unacknowledged"
            ]
        );
        assert_eq!(
            keys("broker"),
            [
                "connects",
                "control_too_large",
                "errors",
                "qos0_fate_unknown",
                "reconnects",
                "resent"
            ]
        );
        assert_eq!(keys("led_commands"), ["accepted", "dropped", "rejected"]);
        assert_eq!(keys("rates"), ["captured_per_s", "published_per_s"]);
        assert_eq!(v["led_commands"]["rejected"], 5, "both sides' refusals");
        let mut top: Vec<&String> = v.as_object().unwrap().keys().collect();
        top.sort();
        assert_eq!(
            top,
            [
                "broker",
                "buffered",
                "bus_errors",
                "bytes_written",
                "captured",
                "client_id",
                "dropped",
                "irqs",
                "led_commands",
                "published",
                "rates",
                "uptime_s",
                "writes"
            ]
        );
    }

    #[test]
    fn the_final_line_names_each_counter_once() {
        let b = BridgeStats::default();
        let d = DriverStats::default();
        add(&b.published, 7);
        add(&b.dropped_buffer, 1);
        add(&b.connects, 3);
        d.captured.store(9, Ordering::Relaxed);
        d.channel_full.store(2, Ordering::Relaxed);
        let names: Vec<(&str, u64)> = summary(&d.snapshot(), &b.snapshot());
        assert_eq!(
            names,
            [
                ("captured", 9),
                ("dropped_hardware_fifo", 0),
                ("dropped_channel", 2),
                ("published", 7),
                ("dropped_retry_buffer", 1),
                ("dropped_at_shutdown", 0),
                ("dropped_unacknowledged", 0),
                ("qos0_links_lost_fate_unknown", 0),
                ("dropped_broker_refused", 0),
                ("control_too_large", 0),
                ("writes", 0),
                ("led_commands", 0),
                ("rejected", 0),
                ("lost", 3),
                ("reconnects", 2),
            ]
        );
    }
}
