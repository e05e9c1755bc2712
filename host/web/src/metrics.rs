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

/// How a path of the `stats` message becomes a metric.
struct Family {
    name: &'static str,
    help: &'static str,
    /// The label that tells the members of a group apart (`cause` for `dropped.*`).
    label: Option<&'static str>,
    unit: Option<Unit>,
    gauge: bool,
}

fn family(path: &str) -> Option<Family> {
    let (group, _) = path.split_once('.').unwrap_or(("", path));
    let f = |name, help, label, unit, gauge| {
        Some(Family {
            name,
            help,
            label,
            unit,
            gauge,
        })
    };
    match (group, path) {
        ("dropped", _) => f("events_dropped", "Events lost, by cause (stats: dropped.<cause>)", Some("cause"), None, false),
        ("led_commands", _) => f("led_commands", "LED commands, by result (stats: led_commands.<result>)", Some("result"), None, false),
        (_, "captured") => f("events_captured", "Events read out of the hardware FIFO", None, None, false),
        (_, "published") => f("events_published", "Events written (QoS 0), acknowledged (QoS 1) or completed (QoS 2)", None, None, false),
        (_, "buffered") => f("retry_buffer_events", "Events in the bridge's retry buffer now", None, None, true),
        (_, "writes") => f("socket_writes", "Write calls on the broker connection", None, None, false),
        (_, "bytes_written") => f("socket_written", "Bytes written to the broker connection", None, Some(Unit::Bytes), false),
        (_, "irqs") => f("irqs", "Interrupts serviced", None, None, false),
        (_, "bus_errors") => f("bus_errors", "Bus errors seen (each logged)", None, None, false),
        (_, "broker.connects") => f("broker_connects", "Connections made (CONNACK accepted); all but the first are reconnects", None, None, false),
        (_, "broker.errors") => f("broker_connection_errors", "Connection attempts that failed and connections that were lost", None, None, false),
        (_, "broker.resent") => f("broker_resent_events", "PUBLISH packets of events written again after a reconnect", None, None, false),
        (_, "broker.qos0_fate_unknown") => f("broker_qos0_fate_unknown", "Connections lost at QoS 0 with events whose fate cannot be known", None, None, false),
        _ => None,
    }
}

/// Reads the sources at every scrape.
struct Scrape(Arc<Sources>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> std::fmt::Result {
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
        let mut grouped: Vec<(Family, Vec<(&str, u64)>)> = Vec::new();
        for (path, v) in counters(&s.driver, &s.bridge) {
            match family(path) {
                Some(f) if f.label.is_some() => {
                    let key = path.split_once('.').map_or(path, |(_, k)| k);
                    match grouped.iter_mut().find(|(g, _)| g.name == f.name) {
                        Some((_, members)) => members.push((key, v)),
                        None => grouped.push((f, vec![(key, v)])),
                    }
                }
                Some(f) if f.gauge => gauge(&mut e, f.name, f.help, v)?,
                Some(f) => counter(&mut e, f.name, f.help, f.unit.as_ref(), v)?,
                None => {
                    let name = path.replace('.', "_");
                    counter(&mut e, &name, "A counter of the stats message", None, v)?
                }
            }
        }
        for (f, members) in grouped {
            let mut m = e.encode_descriptor(f.name, f.help, f.unit.as_ref(), MetricType::Counter)?;
            let label = f.label.unwrap_or("kind");
            for (key, v) in members {
                let labels = [(label, key)];
                ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
            }
        }

        let live = &s.live;
        let connected = u64::from(live.connected.load(Ordering::Relaxed));
        gauge(&mut e, "broker_connected", "1 while connected to the broker (CONNACK accepted), else 0", connected)?;
        gauge(&mut e, "inflight_events", "Events written and not yet acknowledged (QoS 1/2)", live.inflight.load(Ordering::Relaxed))?;
        gauge(&mut e, "inflight_window", "Events that may be in flight now (shrinks when the broker loses some)", live.window.load(Ordering::Relaxed))?;
        gauge(&mut e, "inflight_max", "The max_inflight setting", s.max_inflight)?;
        gauge(&mut e, "channel_events", "Events waiting in the channel from the driver to the bridge", channel_depth(&s.driver, &s.bridge))?;

        let h = live.drain_to_socket.view();
        let mut m = e.encode_descriptor(
            "drain_to_socket",
            "From taking a batch's oldest event off the driver's channel to the write that finished the batch",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;

        let (inputs, leds) = (s.levels.inputs(), s.levels.leds());
        let mut m = e.encode_descriptor("input_pressed", "1 while input i is pressed (switched on)", None, MetricType::Gauge)?;
        for i in 0..s.n_inputs {
            let labels = [("input", i.to_string())];
            ConstGauge::new(i64::from(inputs >> i & 1)).encode(m.encode_family(&labels)?)?;
        }
        let mut m = e.encode_descriptor("led_on", "1 while LED i is lit, as read back from the hardware", None, MetricType::Gauge)?;
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
