//! `GET /metrics`: the OpenMetrics text format, read from the layers' atomics at
//! each scrape (nothing is kept twice, nothing is updated on the hot path).
//!
//! Every counter of the `stats` message is here: `dropped.<cause>` as
//! `pynq_mqtt_events_dropped_total{cause}`, `led_commands.<result>` as
//! `pynq_mqtt_led_commands_total{result}`, the others under a name of their own (a
//! counter added to the message later appears under its path until it gets one).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::snapshot::{channel_depth, counters};
use crate::Sources;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a path of the `stats` message becomes a metric: (its path, or `group.` for
/// every member of a group; the metric's name; help; the label telling a group's
/// members apart; bytes as the unit; a gauge rather than a counter).
type Family = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
    bool,
);

#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    ("dropped.", "events_dropped", "Events lost, by cause (stats: dropped.<cause>)", Some("cause"), false, false),
    ("led_commands.", "led_commands", "LED commands, by result (stats: led_commands.<result>)", Some("result"), false, false),
    ("captured", "events_captured", "Events read out of the hardware FIFO", None, false, false),
    ("published", "events_published", "Events written (QoS 0), acknowledged (QoS 1) or completed (QoS 2)", None, false, false),
    ("buffered", "retry_buffer_events", "Events in the bridge's retry buffer now", None, false, true),
    ("writes", "socket_writes", "Write calls on the broker connection", None, false, false),
    ("bytes_written", "socket_written", "Bytes written to the broker connection", None, true, false),
    ("irqs", "irqs", "Interrupts serviced", None, false, false),
    ("bus_errors", "bus_errors", "Bus errors seen (each logged)", None, false, false),
    ("broker.connects", "broker_connects", "Connections made (CONNACK accepted); all but the first are reconnects", None, false, false),
    ("broker.errors", "broker_connection_errors", "Connection attempts that failed and connections that were lost", None, false, false),
    ("broker.resent", "broker_resent_events", "PUBLISH packets of events written again after a reconnect", None, false, false),
    ("broker.qos0_fate_unknown", "broker_qos0_fate_unknown", "Connections lost at QoS 0 with events whose fate cannot be known", None, false, false),
    ("broker.control_too_large", "broker_control_too_large", "Control messages not sent: larger than the broker's Maximum Packet Size (MQTT 5)", None, false, false),
];

fn family(path: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| match f.0.strip_suffix('.') {
        Some(group) => path.split_once('.').is_some_and(|(g, _)| g == group),
        None => f.0 == path,
    })
}

/// Reads the sources at every scrape.
struct Scrape(Arc<Sources>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: u64,
) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, unit, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    g.encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        // the members of one family must follow its descriptor: group them first
        let mut grouped: Vec<(&Family, Vec<(&str, u64)>)> = Vec::new();
        for (path, v) in counters(&s.driver, &s.bridge) {
            match family(path) {
                Some(f @ &(_, name, _, Some(_), _, _)) => {
                    let key = path.split_once('.').map_or(path, |(_, k)| k);
                    match grouped.iter_mut().find(|(g, _)| g.1 == name) {
                        Some((_, members)) => members.push((key, v)),
                        None => grouped.push((f, vec![(key, v)])),
                    }
                }
                Some(&(_, name, help, None, _, true)) => gauge(&mut e, name, help, v)?,
                Some(&(_, name, help, None, bytes, false)) => {
                    let unit = bytes.then_some(Unit::Bytes);
                    counter(&mut e, name, help, unit.as_ref(), v)?
                }
                None => {
                    let name = path.replace('.', "_");
                    counter(&mut e, &name, "A counter of the stats message", None, v)?
                }
            }
        }
        for (&(_, name, help, label, _, _), members) in grouped {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            let label = label.unwrap_or("kind");
            for (key, v) in members {
                let labels = [(label, key)];
                ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
            }
        }

        let live = &s.live;
        let connected = u64::from(live.connected.load(Ordering::Relaxed));
        gauge(
            &mut e,
            "broker_connected",
            "1 while connected to the broker (CONNACK accepted), else 0",
            connected,
        )?;
        gauge(
            &mut e,
            "inflight_events",
            "Events written and not yet acknowledged (QoS 1/2)",
            live.inflight.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut e,
            "inflight_window",
            "Events that may be in flight now (shrinks when the broker loses some)",
            live.window.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut e,
            "inflight_max",
            "The max_inflight setting",
            s.max_inflight,
        )?;
        gauge(
            &mut e,
            "channel_events",
            "Events waiting in the channel from the driver to the bridge",
            channel_depth(&s.driver, &s.bridge),
        )?;

        let h = live.drain_to_socket.view();
        let mut m = e.encode_descriptor(
            "drain_to_socket",
            "From taking a batch's oldest event off the driver's channel to the write that finished the batch",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;

        let (inputs, leds) = (s.levels.inputs(), s.levels.leds());
        let mut m = e.encode_descriptor(
            "input_pressed",
            "1 while input i is pressed (switched on)",
            None,
            MetricType::Gauge,
        )?;
        for i in 0..s.n_inputs {
            let labels = [("input", i.to_string())];
            ConstGauge::new(i64::from(inputs >> i & 1)).encode(m.encode_family(&labels)?)?;
        }
        let mut m = e.encode_descriptor(
            "led_on",
            "1 while LED i is lit, as read back from the hardware",
            None,
            MetricType::Gauge,
        )?;
        for i in 0..s.n_leds {
            let labels = [("led", i.to_string())];
            ConstGauge::new(i64::from(leds >> i & 1)).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The registry of one server.
pub fn registry(sources: Arc<Sources>) -> Registry {
    let mut r = Registry::with_prefix("pynq_mqtt");
    r.register_collector(Box::new(Scrape(sources)));
    r
}

/// The text of one scrape.
pub fn render(r: &Registry) -> String {
    let mut out = String::with_capacity(8 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, r) {
        tracing::error!("/metrics: cannot encode: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pynq_mqtt_bridge::{BridgeLive, BridgeStats};
    use pynq_mqtt_driver::{Levels, Stats as DriverStats};

    fn sources() -> Sources {
        Sources {
            driver: Arc::new(DriverStats::default()),
            bridge: Arc::new(BridgeStats::default()),
            live: Arc::new(BridgeLive::default()),
            levels: Arc::new(Levels::default()),
            n_inputs: 6,
            n_leds: 10,
            input_names: Vec::new(),
            led_names: Vec::new(),
            broker: "mqtt://127.0.0.1:1883".into(),
            client_id: "pynq-mqtt-test".into(),
            max_inflight: 16,
            settings: Vec::new(),
            pins: None,
            commands: None,
        }
    }

    #[test]
    fn every_counter_of_the_stats_message_has_a_name_of_its_own() {
        let s = sources();
        for path in counters(&s.driver, &s.bridge).keys() {
            assert!(
                family(path).is_some(),
                "{path} has no metric name in FAMILIES"
            );
        }
    }

    #[test]
    fn a_scrape_shows_the_counters_summed_by_path_and_the_histogram_once() {
        let s = sources();
        s.driver.captured.store(7, Ordering::Relaxed);
        s.driver.led_rejected.store(2, Ordering::Relaxed);
        s.bridge.commands_rejected.store(3, Ordering::Relaxed);
        s.bridge.bytes_written.store(99, Ordering::Relaxed);
        s.live
            .drain_to_socket
            .observe(std::time::Duration::from_micros(300));
        let text = render(&registry(Arc::new(s)));
        for line in [
            "pynq_mqtt_events_captured_total 7",
            "pynq_mqtt_led_commands_total{result=\"rejected\"} 5",
            "pynq_mqtt_socket_written_bytes_total 99",
            "pynq_mqtt_drain_to_socket_seconds_count 1",
            "pynq_mqtt_drain_to_socket_seconds_bucket{le=\"0.00025\"} 0",
            "pynq_mqtt_drain_to_socket_seconds_bucket{le=\"0.0005\"} 1",
            "pynq_mqtt_drain_to_socket_seconds_bucket{le=\"+Inf\"} 1",
            "pynq_mqtt_led_on{led=\"9\"} 0",
            "pynq_mqtt_input_pressed{input=\"5\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE pynq_mqtt_events_dropped counter")
                .count(),
            1
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
