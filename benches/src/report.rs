//! The benchmark's figures as types: written to `results.json` (benches/plot.py reads
//! it), and rendered as the table on stdout and in `table.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::peers::{Accounting, Place};

pub const RATE_DEFINITION: &str = "delivered messages per second at an independent subscriber, first to last (Nth) delivered message";

#[derive(Serialize)]
pub struct Report {
    pub n: u64,
    pub n_slow: u64,
    pub reps: usize,
    pub cores: usize,
    pub rate_definition: &'static str,
    pub load_before: String,
    pub load_after: String,
    pub placements: BTreeMap<Place, PlacementReport>,
    pub sink: SinkReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callgrind: Option<Callgrind>,
    /// None when the latency role printed nothing readable.
    pub latency: Option<Latency>,
    pub peak_rss_kib: PeakRss,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    pub failures: Vec<String>,
}

#[derive(Serialize)]
pub struct PlacementReport {
    pub peers: Vec<PeerReport>,
    /// The keys of the peer compared with another (`Peer::compared_with`): (h), (g).
    #[serde(skip)]
    pub compared: (&'static str, &'static str),
    /// Its median ratio, and per rep: QoS 1, pynq-mqtt over raw pipelined writes.
    pub qos1_ratio: f64,
    pub qos1_ratios: Vec<f64>,
}

#[derive(Serialize)]
pub struct PeerReport {
    pub key: &'static str,
    pub name: &'static str,
    pub n: u64,
    pub rates: Vec<f64>,
    pub median_rate: f64,
    pub ratios_to_a: Vec<f64>,
    pub median_ratio_to_a: f64,
    pub lost_total: u64,
    /// The subscriber's line per rep: why it stopped, its longest gap, and what the
    /// broker counted as dropped meanwhile.
    pub subscriber: Vec<Delivered>,
    /// End-to-end runs: where each rep's undelivered events went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounting: Vec<Accounting>,
    /// The publisher's own last JSON line per rep (null when it printed none): each
    /// peer reports what it knows (bridge writes, the driver's counters, VmHWM).
    pub publisher: Vec<Value>,
    /// Per rep, what the run cost the machine outside the publisher (see [`RunCost`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cost: Vec<RunCost>,
}

/// One run's cost outside the publisher: the broker's CPU (on the shared core, the
/// time the publisher competes with) and the time the hypervisor took from each CPU.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct RunCost {
    /// The broker's CPU seconds from the publisher's start to the subscriber's end.
    pub broker_cpu_secs: Option<f64>,
    /// Steal time per CPU meanwhile, ms (`/proc/stat`): a VM's vCPU that did not run.
    pub steal_ms: Vec<u64>,
}

#[derive(Serialize)]
pub struct SinkReport {
    pub n: u64,
    pub peers: Vec<SinkPeer>,
    pub e_over_b: f64,
    pub e_over_a: f64,
}

#[derive(Serialize)]
pub struct SinkPeer {
    pub key: &'static str,
    #[serde(skip)]
    pub name: &'static str,
    pub rates: Vec<f64>,
    pub median_rate: f64,
    /// Over the sink's baseline (rumqttc), the table's last column.
    #[serde(skip)]
    pub ratio: f64,
}

#[derive(Serialize)]
pub struct Callgrind {
    pub ns: [u64; 2],
    pub ir: [u64; 2],
    pub per_event: f64,
}

/// The `latency` role's line.
#[derive(Serialize, Deserialize)]
pub struct Latency {
    pub events: usize,
    pub published: u64,
    pub rate: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// The `sub` role's line.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Delivered {
    pub received: u64,
    pub secs: f64,
    pub rate: f64,
    /// Why counting stopped: `all` (every message came), `idle` (nothing for the
    /// idle time after the publisher was done), `closed` (by the broker), `start`
    /// (nothing ever came), `cap` (nothing for 2 minutes without word from the harness).
    #[serde(default)]
    pub ended: String,
    /// The longest wait between two deliveries, ms.
    #[serde(default)]
    pub max_gap_ms: f64,
    /// What the broker counted as dropped meanwhile (`$SYS/broker/publish/messages/
    /// dropped`, last value seen minus first); None when it published no value.
    #[serde(default)]
    pub broker_dropped: Option<u64>,
    /// The counter's last value seen (or the baseline it was given, when none came).
    #[serde(default)]
    pub broker_dropped_total: Option<u64>,
}

/// A publisher role's line (`pub-raw`, `pub-raw-qos1`, `pub-rumqttc`, `pub-bridge`):
/// what it sent, what it knows of its own writes, its peak RSS.
#[derive(Serialize)]
pub struct Published {
    pub sent: u64,
    pub secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_bytes: Option<usize>,
    pub vm_hwm_kib: u64,
}

impl Published {
    pub fn new(sent: u64, secs: f64) -> Published {
        Published {
            sent,
            secs,
            lost: None,
            writes: None,
            bytes: None,
            packet_bytes: None,
            vm_hwm_kib: crate::roles::vm_hwm_kib(),
        }
    }

    pub fn print(&self) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string(self)?);
        Ok(())
    }
}

/// What the harness reads of any publisher's line (the end-to-end role's and the
/// seed's too): its peak RSS, when it reports one.
#[derive(Deserialize)]
pub struct PeakOf {
    pub vm_hwm_kib: Option<u64>,
}

/// Peak RSS of the publisher processes at full rate, over placements and reps.
#[derive(Serialize)]
pub struct PeakRss {
    /// (e), the publisher fed through the channel.
    pub e: u64,
    /// (f), end to end, the Verilated board included.
    pub f: u64,
}

#[derive(Serialize)]
pub struct Idle {
    pub secs: f64,
    pub daemon_pct: f64,
    pub sim_pct: f64,
    pub vm_hwm_kib: u64,
}

#[derive(Serialize)]
pub struct Sweep {
    pub n: u64,
    pub batches: Vec<usize>,
    #[serde(flatten)]
    pub places: BTreeMap<Place, SweepPlace>,
}

#[derive(Serialize)]
pub struct SweepPlace {
    /// The raw publisher's median rate per batch size, in the order of `batches`.
    pub raw: Vec<f64>,
    pub rumqttc: f64,
    pub pynq_mqtt: f64,
}

impl Report {
    /// The table printed on stdout and written to `table.md`.
    pub fn table(&self) -> String {
        let mut t = format!(
            "load average before {}, after {}; N = {} (paho {}); medians of {}\n",
            self.load_before, self.load_after, self.n, self.n_slow, self.reps
        );
        for (place, p) in &self.placements {
            let _ = writeln!(
                t,
                "\n**{}** ({}):\n\n| | publisher | N | delivered msg/s (median) | / (a) | lost |\n|---|---|---|---|---|---|",
                place.name(),
                place.describe()
            );
            for r in &p.peers {
                let _ = writeln!(
                    t,
                    "| ({}) | {} | {} | {:.0} | {:.3} | {} |",
                    r.key,
                    r.name,
                    r.n,
                    r.median_rate,
                    r.median_ratio_to_a,
                    r.lost_cell()
                );
            }
            let (a, b) = p.compared;
            let _ = writeln!(t, "\nQoS1: ({a}) / ({b}) = {:.3} (median)", p.qos1_ratio);
            if let Some(line) = p.core_line() {
                let _ = writeln!(t, "\n{line}");
            }
        }
        let _ = writeln!(
            t,
            "\n**into a discard sink** (spread; CONNECT to the last byte read):\n\n| | publisher | N | msg/s (median) | / (b) |\n|---|---|---|---|---|"
        );
        for s in &self.sink.peers {
            let _ = writeln!(
                t,
                "| ({}) | {} | {} | {:.0} | {:.2} |",
                s.key, s.name, self.sink.n, s.median_rate, s.ratio
            );
        }
        if let Some(c) = &self.callgrind {
            let _ = writeln!(t, "\ninstructions per published event (callgrind, pynq-mqtt publisher incl. feeding the channel): {:.0}", c.per_event);
        }
        let (p50, p99, max) = self.latency.as_ref().map_or_else(
            || ("null".to_owned(), "null".to_owned(), "null".to_owned()),
            |l| {
                (
                    l.p50_us.to_string(),
                    l.p99_us.to_string(),
                    l.max_us.to_string(),
                )
            },
        );
        let _ = writeln!(t, "\nlatency channel → socket read (10k events/s, loopback sink): p50 {p50} µs, p99 {p99} µs, max {max} µs");
        let _ = writeln!(t, "\npeak RSS at full rate: publisher (e) {:.1} MiB, end to end (f, incl. the Verilated board) {:.1} MiB", self.peak_rss_kib.e as f64 / 1024.0, self.peak_rss_kib.f as f64 / 1024.0);
        if let Some(i) = &self.idle {
            let _ = writeln!(t, "\nidle CPU of the daemon over {:.0} s: {:.3} % (its own threads; the simulated board's clock thread: {:.2} %); peak RSS {:.1} MiB",
                i.secs, i.daemon_pct, i.sim_pct, i.vm_hwm_kib as f64 / 1024.0);
        }
        t
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl PlacementReport {
    /// Where the CPU went in (f) against (a), medians per run: the broker's seconds in
    /// each, pynq-mqtt's own threads in (f) (the simulated fabric's aside: it stands for
    /// the FPGA), and the most steal of any CPU in a run. On the shared core the broker
    /// and pynq-mqtt divide one core, so this is what bounds (f) / (a) there.
    pub fn core_line(&self) -> Option<String> {
        let of = |key: &str| self.peers.iter().find(|p| p.key == key);
        let (a, f) = (of("a")?, of("f")?);
        let broker = |p: &PeerReport| {
            let v: Vec<f64> = p.cost.iter().filter_map(|c| c.broker_cpu_secs).collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let own: Vec<f64> = f.publisher.iter().filter_map(own_cpu_secs).collect();
        let steal = |p: &PeerReport| {
            let per_run = p
                .cost
                .iter()
                .map(|c| c.steal_ms.iter().copied().max().unwrap_or(0));
            per_run.max().unwrap_or(0)
        };
        Some(format!(
            "CPU per run of {} messages (medians): the broker {:.2} s in (a), {:.2} s in (f); \
             pynq-mqtt's threads in (f), the simulated fabric aside, {}; most steal of a CPU in a run: \
             {} ms in (a), {} ms in (f)",
            f.n,
            broker(a)?,
            broker(f)?,
            if own.is_empty() { "unknown".to_owned() } else { format!("{:.2} s", median(&own)) },
            steal(a),
            steal(f)
        ))
    }
}

/// The CPU seconds of an end-to-end publisher's threads but the simulated fabric's
/// (`threads` of its line).
fn own_cpu_secs(line: &Value) -> Option<f64> {
    let threads = line.get("threads")?.as_object()?;
    let secs = threads
        .iter()
        .filter(|(name, _)| name.as_str() != "sim-clock")
        .filter_map(|(_, t)| t.get("cpu_secs")?.as_f64());
    Some(secs.sum())
}

impl PeerReport {
    /// The loss, and beside a loss what the broker dropped in the same reps (a QoS 0
    /// message the broker drops never reaches the subscriber, whatever the publisher did).
    pub fn lost_cell(&self) -> String {
        if self.lost_total == 0 {
            return "0".into();
        }
        if !self.accounting.is_empty() {
            let sum = |f: fn(&Accounting) -> u64| self.accounting.iter().map(f).sum::<u64>();
            return format!(
                "{} (hardware FIFO {}, host {}, broker {}, unaccounted {})",
                self.lost_total,
                sum(|a| a.hardware),
                sum(|a| a.host),
                sum(|a| a.broker),
                sum(|a| a.unaccounted)
            );
        }
        let known: Vec<u64> = self
            .subscriber
            .iter()
            .filter_map(|d| d.broker_dropped)
            .collect();
        if known.is_empty() {
            format!("{} (broker's drop count unknown)", self.lost_total)
        } else {
            format!(
                "{} (broker dropped {})",
                self.lost_total,
                known.iter().sum::<u64>()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(key: &'static str, rate: f64) -> PeerReport {
        PeerReport {
            key,
            name: "a peer",
            n: 10,
            rates: vec![rate],
            median_rate: rate,
            ratios_to_a: vec![1.0],
            median_ratio_to_a: 1.0,
            lost_total: 0,
            subscriber: vec![],
            accounting: vec![],
            publisher: vec![Value::Null],
            cost: Vec::new(),
        }
    }

    fn delivered(broker_dropped: Option<u64>) -> Delivered {
        Delivered {
            received: 5,
            secs: 1.0,
            rate: 5.0,
            ended: "idle".into(),
            max_gap_ms: 1.0,
            broker_dropped,
            broker_dropped_total: None,
        }
    }

    #[test]
    fn a_loss_shows_what_the_broker_dropped_beside_it() {
        let mut r = peer("f", 1.0);
        assert_eq!(r.lost_cell(), "0");
        r.lost_total = 7;
        r.subscriber = vec![delivered(None)];
        assert_eq!(r.lost_cell(), "7 (broker's drop count unknown)");
        r.subscriber = vec![delivered(Some(2)), delivered(None), delivered(Some(5))];
        assert_eq!(r.lost_cell(), "7 (broker dropped 7)");
    }

    #[test]
    fn an_end_to_end_loss_is_split_by_the_stage_that_counted_it() {
        let line =
            serde_json::json!({"hw_dropped": 40, "seq_lost": 41, "channel_full": 2, "lost": 3});
        let a = Accounting::of(100, 50, &line, Some(1));
        assert_eq!(
            a,
            Accounting {
                hardware: 41,
                host: 5,
                broker: 1,
                unaccounted: 3
            }
        );
        let mut r = peer("j", 1.0);
        r.lost_total = 50;
        r.accounting = vec![a.clone(), a];
        assert_eq!(
            r.lost_cell(),
            "50 (hardware FIFO 82, host 10, broker 2, unaccounted 6)"
        );
        // nothing missing: nothing unaccounted, whatever the counters say
        assert_eq!(Accounting::of(10, 10, &line, None).unaccounted, 0);
    }

    #[test]
    fn an_older_subscriber_line_still_parses() {
        let d: Delivered =
            serde_json::from_str(r#"{"received": 3, "secs": 0.5, "rate": 4.0}"#).unwrap();
        assert_eq!(
            (d.received, d.broker_dropped, d.ended.as_str()),
            (3, None, "")
        );
    }

    fn report() -> Report {
        let placement = || PlacementReport {
            peers: vec![peer("a", 100.0), peer("h", 50.0)],
            compared: ("h", "g"),
            qos1_ratio: 0.5,
            qos1_ratios: vec![0.5],
        };
        Report {
            n: 10,
            n_slow: 5,
            reps: 1,
            cores: 2,
            rate_definition: RATE_DEFINITION,
            load_before: "1.00 1.00 1.00".into(),
            load_after: "2.00 2.00 2.00".into(),
            placements: BTreeMap::from([
                (Place::Shared, placement()),
                (Place::Spread, placement()),
            ]),
            sink: SinkReport {
                n: 20,
                peers: vec![SinkPeer {
                    key: "b",
                    name: "rumqttc",
                    rates: vec![7.0],
                    median_rate: 7.0,
                    ratio: 1.0,
                }],
                e_over_b: 3.0,
                e_over_a: 0.5,
            },
            callgrind: None,
            latency: None,
            peak_rss_kib: PeakRss { e: 2048, f: 4096 },
            idle: None,
            sweep: Some(Sweep {
                n: 10,
                batches: vec![1, 4],
                places: BTreeMap::from([(
                    Place::Spread,
                    SweepPlace {
                        raw: vec![1.0, 2.0],
                        rumqttc: 3.0,
                        pynq_mqtt: 4.0,
                    },
                )]),
            }),
            failures: Vec::new(),
        }
    }

    #[test]
    fn results_json_has_the_keys_its_readers_use() {
        let v = serde_json::to_value(report()).unwrap();
        // benches/plot.py
        assert_eq!(v["sweep"]["batches"], serde_json::json!([1, 4]));
        assert_eq!(v["sweep"]["spread"]["raw"], serde_json::json!([1.0, 2.0]));
        assert_eq!(v["sweep"]["spread"]["pynq_mqtt"], 4.0);
        assert_eq!(v["reps"], 1);
        assert_eq!(v["load_before"], "1.00 1.00 1.00");
        // placements by name, peers by key
        assert_eq!(v["placements"]["shared"]["peers"][1]["key"], "h");
        assert_eq!(v["placements"]["spread"]["qos1_ratio"], 0.5);
        assert_eq!(v["sink"]["peers"][0]["median_rate"], 7.0);
        assert!(v["sink"]["peers"][0].get("name").is_none());
        assert_eq!(v["peak_rss_kib"]["f"], 4096);
        assert!(v["latency"].is_null());
        assert!(v.get("callgrind").is_none() && v.get("idle").is_none());
    }

    #[test]
    fn the_table_is_rendered_from_the_report() {
        let t = report().table();
        assert!(t.starts_with("load average before 1.00 1.00 1.00, after 2.00 2.00 2.00; N = 10 (paho 5); medians of 1\n"));
        // spread first, as the placements run
        let (spread, shared) = (t.find("**spread**").unwrap(), t.find("**shared**").unwrap());
        assert!(spread < shared);
        assert!(t.contains("| (h) | a peer | 10 | 50 | 1.000 | 0 |"));
        assert!(t.contains("QoS1: (h) / (g) = 0.500 (median)"));
        assert!(t.contains("| (b) | rumqttc | 20 | 7 | 1.00 |"));
        assert!(t.contains("p50 null µs"));
        assert!(
            t.contains("publisher (e) 2.0 MiB, end to end (f, incl. the Verilated board) 4.0 MiB")
        );
        assert!(!t.contains("idle CPU") && !t.contains("callgrind"));
    }

    #[test]
    fn the_core_line_weighs_the_broker_against_pynq_mqtt() {
        let cost = |secs: f64, steal: Vec<u64>| RunCost {
            broker_cpu_secs: Some(secs),
            steal_ms: steal,
        };
        let mut a = peer("a", 100.0);
        a.cost = vec![
            cost(6.0, vec![0, 10]),
            cost(7.0, vec![0, 0]),
            cost(8.0, vec![30, 0]),
        ];
        let mut f = peer("f", 90.0);
        f.n = 1000;
        f.cost = vec![cost(7.5, vec![0, 0]); 3];
        let line = |drain: f64| {
            serde_json::json!({"threads": {"sim-clock": {"cpu_secs": 5.0},
                "driver-events": {"cpu_secs": drain}, "pynq-mqtt-bench": {"cpu_secs": 0.25}}})
        };
        f.publisher = vec![line(0.25), line(0.5), line(0.75)];
        let mut p = PlacementReport {
            peers: vec![a, f],
            compared: ("h", "g"),
            qos1_ratio: 0.5,
            qos1_ratios: vec![0.5],
        };
        assert_eq!(
            p.core_line().unwrap(),
            "CPU per run of 1000 messages (medians): the broker 7.00 s in (a), 7.50 s in (f); \
             pynq-mqtt's threads in (f), the simulated fabric aside, 0.75 s; most steal of a CPU \
             in a run: 30 ms in (a), 0 ms in (f)"
        );
        // without the broker's figures (an older run) there is no line
        p.peers[1].cost.clear();
        assert_eq!(p.core_line(), None);
        assert!(!report().table().contains("CPU per run"));
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
