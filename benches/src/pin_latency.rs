//! `pin-latency`: the time from a button pin to an independent subscriber.
//!
//! The simulated board runs in real time (`Speed::RealTime(1.0)`). Its stimulus drives
//! input 0 at a fixed rate: edge k at simulated time `t0 + k / rate`, applied by the
//! model at that exact clock cycle (two edges are never merged however the host
//! schedules the clock thread). The moment an edge is driven is the wall clock that
//! real-time pacing gives its simulated time (`SimBoard::paced_unix_ns`): when a
//! board's pin would have changed. Every later delay, the simulated fabric's own lag
//! behind the wall clock included, counts towards the latency.
//!
//! Publishers, each fed the same stimulus:
//! - pynq-mqtt: the driver and the bridge (`--payload json`, which carries `seq`),
//!   with the daemon's default interrupt settings (one per event) and with coalescing.
//!   A bench-only trace (`DriverConfig::trace`, `BridgeIo::trace`) stamps each event
//!   when its FIFO pop returned and when the write that put its last byte into the
//!   socket returned, which splits the time.
//! - the seed notebook's loop (`benches/paho_pin_poll.py`): paho-mqtt reading the pins
//!   between `client.loop(timeout=.001)` calls, through a pin socket this process
//!   serves from the simulated board.
//!
//! Both publish through a fresh mosquitto on a free loopback port; the bench's own
//! raw-socket subscriber, in another process, stamps each arrival when its read
//! returns. Edge k has sequence number k (the board counts from reset and nothing else
//! makes events; the seed's loop sends the edge number it read), so arrivals are
//! matched by sequence number; an edge without an arrival is lost. Every process reads
//! the same real-time clock.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use pynq_mqtt_driver::trace::unix_ns;
use pynq_mqtt_driver::EventTrace;

use crate::launch::{start_broker, Ctx};
use crate::peers::Place;
use crate::wire;

/// Who publishes the edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Publisher {
    /// pynq-mqtt, the daemon's default interrupt settings: one interrupt per event.
    Default,
    /// pynq-mqtt, its high-rate setting: an interrupt per 64 events or 200 µs.
    Coalesce,
    /// The seed notebook's paho-mqtt polling loop.
    Seed,
}

impl Publisher {
    pub const ALL: [Publisher; 3] = [Publisher::Default, Publisher::Coalesce, Publisher::Seed];

    pub fn name(self) -> &'static str {
        match self {
            Publisher::Default => "pynq-mqtt, 1 irq/event",
            Publisher::Coalesce => "pynq-mqtt, coalesce 64/200us",
            Publisher::Seed => "seed paho loop",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Publisher::Default => "default",
            Publisher::Coalesce => "coalesce",
            Publisher::Seed => "seed",
        }
    }

    fn parse(s: &str) -> Result<Publisher> {
        Publisher::ALL
            .into_iter()
            .find(|p| p.arg() == s)
            .with_context(|| format!("publisher {s:?}: expected default, coalesce or seed"))
    }

    /// (IRQ_THRESHOLD count, IRQ_TIMEOUT µs) of the driver.
    fn coalesce(self) -> (u16, u32) {
        match self {
            Publisher::Coalesce => (64, 200),
            _ => (1, 0),
        }
    }
}

/// p50, p99, p99.9 and max of a set of durations, µs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pcts {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Nearest-rank percentiles (the smallest sample with at least that share of the
/// samples at or below it); None without samples.
pub fn percentiles(mut v: Vec<f64>) -> Option<Pcts> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = (p * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    Some(Pcts {
        n: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: v[v.len() - 1],
    })
}

/// For edges `0..n`, the first stamp recorded for each sequence number (others, out of
/// range, are ignored).
pub fn by_seq(n: usize, stamps: &[(u64, u64)]) -> Vec<Option<u64>> {
    let mut at = vec![None; n];
    for &(seq, ns) in stamps {
        if let Some(slot) = usize::try_from(seq).ok().and_then(|i| at.get_mut(i)) {
            slot.get_or_insert(ns);
        }
    }
    at
}

/// The µs from `from` to `to`, for every edge that has both (a `to` before its `from`
/// counts as 0: the clocks agree to well under a µs, so that is rounding).
pub fn spans(from: &[Option<u64>], to: &[Option<u64>]) -> Vec<f64> {
    from.iter()
        .zip(to)
        .filter_map(|(a, b)| Some(b.as_ref()?.saturating_sub(*a.as_ref()?) as f64 / 1000.0))
        .collect()
}

/// One measured case.
#[derive(Serialize, Debug)]
pub struct Case {
    pub placement: &'static str,
    /// `stimulus` or `thread` (see `Drive`).
    pub pin_driver: &'static str,
    pub publisher: &'static str,
    pub rate: f64,
    pub driven: usize,
    pub received: usize,
    pub lost: usize,
    /// Pin to subscriber.
    pub total: Option<Pcts>,
    /// pynq-mqtt only: pin to FIFO pop, pop to socket write (the write's return),
    /// write to subscriber.
    pub pin_pop: Option<Pcts>,
    pub pop_write: Option<Pcts>,
    pub write_sub: Option<Pcts>,
    /// pynq-mqtt only, pop to socket write in two: pop to the write(2) issued (the
    /// daemon's part), and the write(2) from its issue to its return (the kernel's
    /// send, which on loopback also queues the bytes at the broker and wakes it).
    #[serde(default)]
    pub pop_issue: Option<Pcts>,
    #[serde(default)]
    pub write_call: Option<Pcts>,
    /// How far the simulated fabric ran behind the wall clock (sampled every ms).
    pub fabric_lag: Option<Pcts>,
    /// pynq-mqtt only: this machine's floor under pop to socket write, measured right
    /// after the case in the same placement and at the same rate ([`wake_floor`]).
    #[serde(default)]
    pub wake_floor: Option<Pcts>,
    /// pynq-mqtt only: the same wake-up, then one QoS 0 PUBLISH written to this case's
    /// broker, notify to the write's return ([`wake_floor`] with the broker's port).
    #[serde(default)]
    pub write_floor: Option<Pcts>,
    /// The board process's own line (driver counters, or the seed's).
    pub board: serde_json::Value,
    pub loadavg_before: String,
    pub loadavg_after: String,
}

/// The board process's line.
#[derive(Serialize, Deserialize)]
struct Driven {
    driven_ns: Vec<u64>,
    pops: Vec<(u64, u64)>,
    /// When the write(2) that took each event's last byte was issued.
    #[serde(default)]
    issues: Vec<(u64, u64)>,
    /// When that write returned.
    writes: Vec<(u64, u64)>,
    counters: serde_json::Value,
}

/// The subscriber's line: (sequence number, arrival in Unix ns).
#[derive(Serialize, Deserialize)]
struct Arrivals {
    arrivals: Vec<(u64, u64)>,
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The whole measurement: every placement, publisher and rate; tables on stdout and,
/// with `out`, the cases as JSON. Fails when an event was lost (after the tables).
pub fn main(
    root: &std::path::Path,
    rates: &[f64],
    secs: &[f64],
    placements: &str,
    publishers: &str,
    thread_driver: bool,
    out: Option<&std::path::Path>,
) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("pynq-mqtt-pin-latency-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let ctx = Ctx {
        self_cmd: vec![std::env::current_exe().context("own executable")?.into()],
        root: root.to_path_buf(),
        tmp: tmp.clone(),
        e2e_sim_speed: 1.0,
        e2e_coalesce: (1, 0),
        e2e_rt_priority: 0,
    };
    let pubs = publishers
        .split(',')
        .map(|p| Publisher::parse(p.trim()))
        .collect::<Result<Vec<_>>>()?;
    let mut cases = Vec::new();
    let result = (|| -> Result<()> {
        for spec in placements.split(',').map(|p| p.trim()) {
            // `spread-fabric-cpu1`: spread, but the simulated fabric's clock thread on
            // CPU 1 only (as in shared), so that it does not take the core the bridge
            // wakes on; a board's fabric takes no ARM cycles at all
            let (place, fabric_apart) = match spec.strip_suffix("-fabric-cpu1") {
                Some(p) => (Place::parse(p)?, true),
                None => (Place::parse(spec)?, false),
            };
            let broker = start_broker(&ctx, place)?;
            for &publisher in &pubs {
                for (i, &rate) in rates.iter().enumerate() {
                    let secs = secs.get(i).or(secs.last()).copied().unwrap_or(5.0);
                    let n = ((rate * secs).round() as u64).max(1);
                    let case = one(
                        &ctx,
                        (place, fabric_apart),
                        broker.port,
                        (publisher, thread_driver),
                        rate,
                        n,
                    )?;
                    let t = case.total;
                    eprintln!(
                        "  {} / {} / {rate}/s: {} of {} received; pin->sub p50 {:.0} p99 {:.0} max {:.0} us",
                        case.placement,
                        publisher.name(),
                        case.received,
                        case.driven,
                        t.map_or(f64::NAN, |t| t.p50),
                        t.map_or(f64::NAN, |t| t.p99),
                        t.map_or(f64::NAN, |t| t.max),
                    );
                    cases.push(case);
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    print!("{}", tables(&cases));
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&cases)?)?;
    }
    result?;
    let lost: usize = cases
        .iter()
        .filter(|c| c.publisher != Publisher::Seed.name())
        .map(|c| c.lost)
        .sum();
    if lost > 0 {
        bail!("pynq-mqtt lost {lost} events");
    }
    if let Some(c) = cases.iter().find(|c| c.received == 0) {
        bail!(
            "{} delivered nothing at {}/s ({})",
            c.publisher,
            c.rate,
            c.placement
        );
    }
    Ok(())
}

fn cell(p: Option<Pcts>, f: impl Fn(Pcts) -> f64) -> String {
    p.map_or("–".into(), |p| format!("{:.0}", f(p)))
}

/// The cases as two Markdown tables: pin to subscriber, then pynq-mqtt's split.
pub fn tables(cases: &[Case]) -> String {
    let mut s = String::new();
    s += "| placement | pin driver | publisher | events/s | edges | lost | p50 µs | p99 µs | p99.9 µs | max µs |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|\n";
    for c in cases {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.placement,
            c.pin_driver,
            c.publisher,
            c.rate,
            c.driven,
            c.lost,
            cell(c.total, |p| p.p50),
            cell(c.total, |p| p.p99),
            cell(c.total, |p| p.p999),
            cell(c.total, |p| p.max),
        );
    }
    s += "\npynq-mqtt's split (µs, p50 / p99 / p99.9 / max):\n\n";
    s += "| placement | interrupts | events/s | pin → FIFO pop | pop → socket write | of which pop → write(2) issued | of which the write(2), issue to return | write → subscriber | simulated fabric behind the wall clock | machine floor: a thread wakes a runtime | machine floor: the wake and one PUBLISH written to the broker |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    let four = |p: Option<Pcts>| {
        p.map_or("–".into(), |p| {
            format!("{:.0} / {:.0} / {:.0} / {:.0}", p.p50, p.p99, p.p999, p.max)
        })
    };
    for c in cases.iter().filter(|c| c.board.get("captured").is_some()) {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.placement,
            c.publisher.trim_start_matches("pynq-mqtt, "),
            c.rate,
            four(c.pin_pop),
            four(c.pop_write),
            four(c.pop_issue),
            four(c.write_call),
            four(c.write_sub),
            four(c.fabric_lag),
            four(c.wake_floor),
            four(c.write_floor),
        );
    }
    s
}

fn one(
    ctx: &Ctx,
    (place, fabric_apart): (Place, bool),
    port: u16,
    (publisher, thread_driver): (Publisher, bool),
    rate: f64,
    n: u64,
) -> Result<Case> {
    let loadavg_before = loadavg();
    let mut sub = ctx
        .me(
            place,
            &[
                "pin-latency-sub".into(),
                "--port".into(),
                port.to_string(),
                "--n".into(),
                n.to_string(),
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut sub_lines = BufReader::new(sub.stdout.take().expect("piped")).lines();
    match sub_lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => bail!("the subscriber did not start: {other:?}"),
    }
    let (count, us) = publisher.coalesce();
    let mut args = vec![
        "pin-latency-board".to_string(),
        "--port".into(),
        port.to_string(),
        "--n".into(),
        n.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--publisher".into(),
        publisher.arg().into(),
        "--coalesce-count".into(),
        count.to_string(),
        "--coalesce-us".into(),
        us.to_string(),
    ];
    if publisher == Publisher::Seed {
        let py = ctx.root.join(".venv/bin/python");
        let py = if py.exists() {
            py.display().to_string()
        } else {
            "python3".into()
        };
        args.extend([
            "--python".into(),
            py,
            "--script".into(),
            ctx.root
                .join("benches/paho_pin_poll.py")
                .display()
                .to_string(),
            "--pins".into(),
            ctx.tmp
                .join(format!("pins-{}", std::process::id()))
                .display()
                .to_string(),
        ]);
    }
    if thread_driver {
        args.push("--thread-driver".into());
    }
    let fabric_apart = fabric_apart || place == Place::Shared;
    if fabric_apart {
        // the clock thread is the FPGA fabric and the stimulus the world outside:
        // neither takes the ARM core's cycles on a board
        args.extend(["--fabric-cpu".into(), "1".into()]);
    }
    let board = ctx
        .me(place, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()?;
    // the publisher is done: the subscriber takes what is still on its way, then ends
    if let Some(mut stdin) = sub.stdin.take() {
        let _ = stdin.write_all(b"stop\n");
    }
    let line = sub_lines.next().context("no line from the subscriber")??;
    let _ = sub.wait();
    if !board.status.success() {
        bail!("the board process failed ({})", board.status);
    }
    let driven: Driven = serde_json::from_slice(
        board
            .stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .context("no line from the board process")?,
    )?;
    let arrivals: Arrivals = serde_json::from_str(&line)?;
    let edges = driven.driven_ns.len();
    let pin: Vec<Option<u64>> = driven.driven_ns.iter().map(|&t| Some(t)).collect();
    let sub_at = by_seq(edges, &arrivals.arrivals);
    let received = sub_at.iter().flatten().count();
    let traced = publisher != Publisher::Seed;
    // edges the model never saw (a pin driver thread's two edges within one pause of
    // the simulator's clock) shift every later sequence number: the events then no
    // longer match edges by number, only their count is right
    let captured = driven.counters["captured"].as_u64();
    let matched = !traced || captured.is_some_and(|c| c >= edges as u64);
    let pct = |from: &[Option<u64>], to: &[Option<u64>]| {
        matched.then(|| percentiles(spans(from, to))).flatten()
    };
    let pop = by_seq(edges, &driven.pops);
    let issue = by_seq(edges, &driven.issues);
    let write = by_seq(edges, &driven.writes);
    let floor = if traced {
        floor_of(ctx, place, rate, n, port)?
    } else {
        Floor::default()
    };
    Ok(Case {
        placement: match (place, fabric_apart) {
            (Place::Spread, true) => "spread, fabric on CPU 1",
            _ => place.name(),
        },
        pin_driver: if thread_driver { "thread" } else { "stimulus" },
        publisher: publisher.name(),
        rate,
        driven: edges,
        received,
        lost: edges - received,
        total: pct(&pin, &sub_at),
        pin_pop: traced.then(|| pct(&pin, &pop)).flatten(),
        pop_write: traced.then(|| pct(&pop, &write)).flatten(),
        write_sub: traced.then(|| pct(&write, &sub_at)).flatten(),
        pop_issue: traced.then(|| pct(&pop, &issue)).flatten(),
        write_call: traced.then(|| pct(&issue, &write)).flatten(),
        fabric_lag: serde_json::from_value(driven.counters["fabric_lag_us"].clone()).ok(),
        wake_floor: floor.wake,
        write_floor: floor.write,
        board: driven.counters,
        loadavg_before,
        loadavg_after: loadavg(),
    })
}

/// What [`wake_floor`] prints.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Floor {
    /// Notify to the task running.
    pub wake: Option<Pcts>,
    /// Notify to the return of the task's PUBLISH write (with a broker).
    pub write: Option<Pcts>,
}

/// [`wake_floor`] in a child process under `place`, `n` wakes (at most 2,000) at `rate`,
/// each followed by a PUBLISH to the broker on `port`.
fn floor_of(ctx: &Ctx, place: Place, rate: f64, n: u64, port: u16) -> Result<Floor> {
    let out = ctx
        .me(
            place,
            &[
                "wake-floor".into(),
                "--rate".into(),
                rate.to_string(),
                "--n".into(),
                n.min(2000).to_string(),
                "--port".into(),
                port.to_string(),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("wake-floor failed: {}", out.status);
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// This machine's floor under the pop to socket write time: the one hand-over that
/// path cannot do without, the driver's thread waking the publisher's runtime. A
/// thread notifies a tokio `Notify` that a current-thread runtime in another thread
/// awaits (as the driver's bell wakes the bridge), `n` times at `rate`. With `port`,
/// the task then writes one QoS 0 PUBLISH of an event's size (a topic nobody
/// subscribes to) to the broker there, on a connection made before the first notify,
/// as the bridge writes an event. Prints a [`Floor`]: the percentiles of notify to the
/// task running and of notify to the write's return, µs, as one JSON line. Nothing
/// else runs in the process: it measures the machine's wake-up of an idle thread and
/// its loopback write to the broker, with no code of pynq-mqtt in between.
pub fn wake_floor(rate: f64, n: u64, port: Option<u16>) -> Result<()> {
    let notify = Arc::new(tokio::sync::Notify::new());
    // (the notify's moment in ns since t0) << 1 | 1, and 1 alone once the last was sent
    let sent = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let (nt, st) = (Arc::clone(&notify), Arc::clone(&sent));
    let waiter = std::thread::Builder::new()
        .name("floor-task".into())
        .spawn(move || -> Result<(Vec<f64>, Vec<f64>)> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                use tokio::io::AsyncWriteExt;
                let mut conn = match port {
                    Some(p) => {
                        let c = crate::publish_rate::connect(p, "pynq-mqtt-bench-floor")?;
                        c.set_nonblocking(true)?;
                        Some(tokio::net::TcpStream::from_std(c)?)
                    }
                    None => None,
                };
                // an event's size: pynq-mqtt's JSON payload is about this long
                let mut packet = Vec::new();
                wire::publish(&mut packet, "pynq-mqtt-bench/floor", &[b'x'; 72], None);
                let (mut wake, mut write) = (Vec::with_capacity(n as usize), Vec::new());
                let mut last = 0;
                loop {
                    nt.notified().await;
                    let at = t0.elapsed().as_nanos() as u64;
                    let s = st.load(Ordering::SeqCst);
                    if s == 1 {
                        if let Some(mut c) = conn {
                            let _ = c.write_all(&wire::DISCONNECT).await;
                        }
                        return Ok((wake, write));
                    }
                    // a notify that came while the task ran is one permit: counted once
                    if s != last {
                        last = s;
                        wake.push(at.saturating_sub(s >> 1) as f64 / 1e3);
                        if let Some(c) = conn.as_mut() {
                            c.write_all(&packet).await?;
                            let done = t0.elapsed().as_nanos() as u64;
                            write.push(done.saturating_sub(s >> 1) as f64 / 1e3);
                        }
                    }
                }
            })
        })?;
    std::thread::sleep(Duration::from_millis(20));
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let start = Instant::now();
    for i in 1..=n {
        let due = start + period.mul_f64(i as f64);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        sent.store((t0.elapsed().as_nanos() as u64) << 1 | 1, Ordering::SeqCst);
        notify.notify_one();
    }
    std::thread::sleep(Duration::from_millis(5));
    sent.store(1, Ordering::SeqCst);
    notify.notify_one();
    let (wake, write) = waiter.join().map_err(|_| anyhow::anyhow!("floor task"))??;
    let floor = Floor {
        wake: percentiles(wake),
        write: percentiles(write),
    };
    println!("{}", serde_json::to_string(&floor)?);
    Ok(())
}

/// Settings of the board process.
pub struct BoardArgs {
    pub port: u16,
    pub n: u64,
    pub rate: f64,
    pub publisher: String,
    pub coalesce: (u16, u32),
    pub fabric_cpu: Option<usize>,
    pub python: Option<String>,
    pub script: Option<String>,
    pub pins: Option<String>,
    /// A thread calls `SimBoard::set_input` at the rate, instead of the stimulus.
    pub thread_driver: bool,
}

/// Simulated µs from the start of the stimulus to its first edge.
const LEAD_US: u64 = 20_000;
/// The seed's loop ends when button 3 is pressed: this long after the last edge.
const SEED_END_US: u64 = 300_000;

/// The stimulus: edge k of input 0 at `LEAD_US + k * period_us` (rising first); with
/// `seed_end`, button 3 pressed after the last edge.
pub fn stimulus(n: u64, period_us: u64, seed_end: bool) -> Vec<pynq_mqtt_sim::Step> {
    let mut steps: Vec<_> = (0..n)
        .map(|k| pynq_mqtt_sim::Step {
            time_us: LEAD_US + k * period_us,
            input: 0,
            level: k.is_multiple_of(2),
        })
        .collect();
    if seed_end {
        steps.push(pynq_mqtt_sim::Step {
            time_us: LEAD_US + n.saturating_sub(1) * period_us + SEED_END_US,
            input: 3,
            level: true,
        });
    }
    steps
}

/// Edges of input 0 applied by simulated time `t_us` (µs since the stimulus started):
/// those scheduled strictly before it.
pub fn edges_by(t_us: u64, n: u64, period_us: u64) -> u64 {
    if t_us <= LEAD_US {
        0
    } else {
        ((t_us - LEAD_US - 1) / period_us + 1).min(n)
    }
}

/// The board process: the simulated board in real time with the stimulus, and either
/// pynq-mqtt's driver and bridge with their traces, or the seed's loop reading the
/// pins through a socket; prints the moments each edge was driven and the traces.
pub fn board(a: BoardArgs) -> Result<()> {
    use pynq_mqtt_sim::{SimBoard, SimConfig, Speed};
    let publisher = Publisher::parse(&a.publisher)?;
    let period_us = ((1e6 / a.rate).round() as u64).max(1);
    let seed = publisher == Publisher::Seed;
    let board = Arc::new(SimBoard::start(SimConfig {
        speed: Speed::RealTime(1.0),
        stimulus: if a.thread_driver {
            Vec::new()
        } else {
            stimulus(a.n, period_us, seed)
        },
    })?);
    if let Some(cpu) = a.fabric_cpu {
        crate::roles::pin_thread("sim-clock", cpu)?;
    }
    let drive = Arc::new(Drive {
        thread: a.thread_driver,
        seed_end: seed,
        n: a.n,
        period_us,
        fabric_cpu: a.fabric_cpu,
        origin: AtomicU64::new(u64::MAX),
        count: AtomicU64::new(0),
        lock: std::sync::Mutex::new(()),
        driver: std::sync::Mutex::new(None),
    });
    let done = Arc::new(AtomicBool::new(false));
    let (b, d) = (Arc::clone(&board), Arc::clone(&done));
    let sampler = std::thread::Builder::new()
        .name("lag-sampler".into())
        .spawn(move || fabric_lag(&b, &d))?;
    if let Some(cpu) = a.fabric_cpu {
        crate::roles::pin_thread("lag-sampler", cpu)?;
    }
    let (mut counters, pops, issues, writes) = if seed {
        let seed_line = run_seed(&a, &board, &drive)?;
        (seed_line, Vec::new(), Vec::new(), Vec::new())
    } else {
        run_daemon(&a, &board, &drive)?
    };
    done.store(true, Ordering::SeqCst);
    let lag = percentiles(sampler.join().expect("lag sampler"));
    if let Some(m) = counters.as_object_mut() {
        m.insert("fabric_lag_us".into(), serde_json::to_value(lag)?);
    }
    let driven_ns = drive.driven_ns(&board)?;
    let line = Driven {
        driven_ns,
        pops,
        issues,
        writes,
        counters,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

/// How the edges reach input 0: the stimulus (edge k at its exact simulated time), or
/// a thread standing for the world outside that calls `SimBoard::set_input` at the
/// rate and stamps each call. The simulator steps its model in chunks of 1024 cycles
/// and sleeps up to 1 ms between them, and `set_input` changes the pin of a model that
/// is not stepping: two calls within one such pause leave only the second level, so
/// the thread loses edges in the simulator itself once they come about 1 ms apart.
struct Drive {
    thread: bool,
    /// Press button 3 after the last edge (the seed's loop ends on it).
    seed_end: bool,
    n: u64,
    period_us: u64,
    fabric_cpu: Option<usize>,
    /// Stimulus: its start in simulated µs since reset (`u64::MAX` before).
    origin: AtomicU64,
    /// Thread: edges driven so far, changed together with the pin under `lock`.
    count: AtomicU64,
    lock: std::sync::Mutex<()>,
    /// Thread: the thread, which returns the moment of each edge.
    driver: std::sync::Mutex<Option<std::thread::JoinHandle<Vec<u64>>>>,
}

impl Drive {
    /// Starts driving the edges: now.
    fn start(self: &Arc<Self>, board: &Arc<pynq_mqtt_sim::SimBoard>) -> Result<()> {
        if !self.thread {
            let origin = board.start_stimulus().context("stimulus started twice")?;
            self.origin.store(origin, Ordering::SeqCst);
            return Ok(());
        }
        let (d, b) = (Arc::clone(self), Arc::clone(board));
        let h = std::thread::Builder::new()
            .name("pin-driver".into())
            .spawn(move || d.press(&b))?;
        if let Some(cpu) = self.fabric_cpu {
            crate::roles::pin_thread("pin-driver", cpu)?;
        }
        *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
        Ok(())
    }

    /// The thread: edge k at `LEAD_US + k * period` after its start; it sleeps, never
    /// spins (in the shared placement it sits on the fabric's core), and a late wake
    /// does not make up with a burst of edges closer than half a period.
    fn press(&self, board: &pynq_mqtt_sim::SimBoard) -> Vec<u64> {
        let period = Duration::from_micros(self.period_us);
        let mut due = Instant::now() + Duration::from_micros(LEAD_US);
        let mut driven = Vec::with_capacity(self.n as usize);
        for k in 0..self.n {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let at = {
                let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
                board.set_input(0, k.is_multiple_of(2));
                self.count.store(k + 1, Ordering::SeqCst);
                unix_ns()
            };
            driven.push(at);
            due = (due + period).max(Instant::now() + period / 2);
        }
        if self.seed_end {
            std::thread::sleep(Duration::from_micros(SEED_END_US));
            board.set_input(3, true);
        }
        driven
    }

    /// Waits until every edge is driven.
    fn wait_done(&self, board: &pynq_mqtt_sim::SimBoard, rate: f64) -> Result<()> {
        let span = Duration::from_secs_f64(self.n as f64 / rate) + Duration::from_secs(10);
        if self.thread {
            // joined in `driven_ns`
            let t0 = Instant::now();
            while self.count.load(Ordering::SeqCst) < self.n {
                if t0.elapsed() > span {
                    bail!("the pin driver did not end in time");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if self.seed_end {
                std::thread::sleep(Duration::from_micros(SEED_END_US));
            }
            return Ok(());
        }
        if !board.wait_stimulus_done(span) {
            bail!("the stimulus did not end in time");
        }
        Ok(())
    }

    /// The pins and the number of edges driven on input 0, as one consistent pair.
    fn read_pins(&self, board: &pynq_mqtt_sim::SimBoard) -> (u32, u64) {
        if self.thread {
            let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            return (board.inputs(), self.count.load(Ordering::SeqCst));
        }
        let edges = || {
            let o = self.origin.load(Ordering::SeqCst);
            if o == u64::MAX {
                0
            } else {
                edges_by(
                    board.sim_time_us().saturating_sub(o),
                    self.n,
                    self.period_us,
                )
            }
        };
        loop {
            let before = edges();
            let levels = board.inputs();
            if edges() == before {
                return (levels, before);
            }
        }
    }

    /// When each edge was driven, Unix ns.
    fn driven_ns(&self, board: &pynq_mqtt_sim::SimBoard) -> Result<Vec<u64>> {
        if self.thread {
            let h = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take();
            return h
                .context("the pin driver never started")?
                .join()
                .map_err(|_| anyhow::anyhow!("the pin driver panicked"));
        }
        let origin = self.origin.load(Ordering::SeqCst);
        (0..self.n)
            .map(|k| {
                board
                    .paced_unix_ns(origin + LEAD_US + k * self.period_us)
                    .context("the simulated board is not paced")
            })
            .collect()
    }
}

/// How far the simulated fabric runs behind the wall clock, µs, sampled about every
/// millisecond until `done`: the wall clock now less the moment pacing gives the
/// model's current simulated time. An edge waits at least this long before the model
/// sees it (the clock thread runs chunks of cycles, then sleeps up to 1 ms).
fn fabric_lag(board: &pynq_mqtt_sim::SimBoard, done: &AtomicBool) -> Vec<f64> {
    let mut lags = Vec::new();
    while !done.load(Ordering::SeqCst) && lags.len() < 1_000_000 {
        std::thread::sleep(Duration::from_micros(997));
        let sim = board.sim_time_us();
        let now = unix_ns();
        if let Some(p) = board.paced_unix_ns(sim) {
            lags.push(now.saturating_sub(p) as f64 / 1000.0);
        }
    }
    lags
}

/// The driver's counters, then (sequence number, Unix ns) at FIFO pop, at the write's
/// issue and at its return.
type Traced = (
    serde_json::Value,
    Vec<(u64, u64)>,
    Vec<(u64, u64)>,
    Vec<(u64, u64)>,
);

fn run_daemon(
    a: &BoardArgs,
    board: &Arc<pynq_mqtt_sim::SimBoard>,
    drive: &Arc<Drive>,
) -> Result<Traced> {
    use pynq_mqtt_bridge::{BridgeIo, BridgeLive, BridgeStats};
    use pynq_mqtt_bus::Bus;
    use pynq_mqtt_driver::{LedCommand, LedReport};
    let cap = a.n as usize + 64;
    let pop_trace = Arc::new(EventTrace::new(cap));
    let write_trace = pynq_mqtt_bridge::WriteTrace {
        issued: Arc::new(EventTrace::new(cap)),
        returned: Arc::new(EventTrace::new(cap)),
    };
    let bus: Arc<dyn Bus> = board.clone();
    // the daemon's default drain priority, or what its variable says (0: normal class)
    let rt_priority = std::env::var("PYNQ_MQTT_RT_PRIORITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(pynq_mqtt_driver::DEFAULT_RT_PRIORITY);
    let dcfg = pynq_mqtt_driver::DriverConfig {
        coalesce_count: a.coalesce.0,
        coalesce_us: a.coalesce.1,
        rt_priority,
        trace: Some(Arc::clone(&pop_trace)),
        ..Default::default()
    };
    let (driver, ch) = pynq_mqtt_driver::Driver::start(Arc::clone(&bus), &dcfg)?;
    let dstats = driver.stats();
    let live = Arc::new(BridgeLive::default());
    let (cmd_tx, _cmd_rx) = crossbeam_channel::bounded::<LedCommand>(16);
    let (_, led_rx) = crossbeam_channel::bounded::<LedReport>(1);
    let io = BridgeIo {
        driver_stats: Arc::clone(&dstats),
        live: Some(Arc::clone(&live)),
        trace: Some(write_trace.clone()),
        // the daemon's wake-up: the driver's threads ring the publisher
        bell: Some(ch.bell.clone()),
        ..BridgeIo::new(ch.events, cmd_tx, led_rx, 4, 0)
    };
    let cfg = crate::roles::bridge_config(a.port, 0, true);
    let bridge = std::thread::Builder::new().name("bridge".into()).spawn(
        move || -> Result<pynq_mqtt_bridge::BridgeStatsView> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(rt.block_on(pynq_mqtt_bridge::run(
                cfg,
                io,
                Arc::new(BridgeStats::default()),
            ))?)
        },
    )?;
    // the daemon holds the command and LED ends too; keep them open until the end
    let (_commands, _leds) = (ch.commands, ch.leds);
    let t0 = Instant::now();
    while !live.connected.load(Ordering::Relaxed) {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("the bridge did not connect");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // its announcements out of the way
    std::thread::sleep(Duration::from_millis(100));
    drive.start(board)?;
    drive.wait_done(board, a.rate)?;
    let until = Instant::now() + Duration::from_secs(10);
    while dstats.captured.load(Ordering::Relaxed) + dstats.hw_dropped.load(Ordering::Relaxed) < a.n
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    driver.stop();
    drop((_commands, _leds));
    let view = bridge.join().expect("bridge thread")?;
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let counters = json!({
        "captured": g(&dstats.captured), "hw_dropped": g(&dstats.hw_dropped),
        "seq_lost": g(&dstats.seq_lost), "channel_full": g(&dstats.channel_full),
        "irqs": g(&dstats.irqs), "published": view.published, "lost": view.lost(),
        "writes": view.writes, "rt_priority": rt_priority,
        "trace_overflow": pop_trace.overflowed()
            + write_trace.issued.overflowed()
            + write_trace.returned.overflowed(),
    });
    Ok((
        counters,
        pop_trace.snapshot(),
        write_trace.issued.snapshot(),
        write_trace.returned.snapshot(),
    ))
}

/// The seed's loop as a child process, reading the pins through a socket this process
/// serves from the simulated board; returns the loop's own line.
fn run_seed(
    a: &BoardArgs,
    board: &Arc<pynq_mqtt_sim::SimBoard>,
    drive: &Arc<Drive>,
) -> Result<serde_json::Value> {
    let path = a.pins.clone().context("--pins")?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).with_context(|| format!("bind {path}"))?;
    // spawned from this thread, on the placement's CPUs
    let mut child = Command::new(a.python.as_deref().context("--python")?)
        .arg(a.script.as_deref().context("--script")?)
        .args(["--port", &a.port.to_string(), "--pins", &path])
        .stdout(Stdio::piped())
        .spawn()
        .context("start the seed's loop")?;
    // the loop connects once its broker connection is up; a loop that died first
    // (its error is on stderr) must not leave this process waiting
    listener.set_nonblocking(true)?;
    let t0 = Instant::now();
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(st) = child.try_wait()? {
                    bail!("the seed's loop ended before reading a pin ({st})");
                }
                if t0.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    bail!("the seed's loop did not connect to the pin socket");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    };
    conn.set_nonblocking(false)?;
    let served = Arc::new(AtomicU64::new(0));
    let (b, d, s) = (Arc::clone(board), Arc::clone(drive), Arc::clone(&served));
    let server = std::thread::Builder::new()
        .name("pin-server".into())
        .spawn(move || serve_pins(conn, &b, &d, &s))?;
    if let Some(cpu) = a.fabric_cpu {
        // a pin read is a bus transaction, which the fabric serves
        crate::roles::pin_thread("pin-server", cpu)?;
    }
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => {
            let _ = child.kill();
            bail!("the seed's loop did not start: {other:?}");
        }
    }
    if let Err(e) = drive
        .start(board)
        .and_then(|()| drive.wait_done(board, a.rate))
    {
        let _ = child.kill();
        return Err(e);
    }
    // button 3 is pressed: the loop ends, publishes what it has and disconnects
    let last = lines.next().transpose()?.unwrap_or_default();
    let status = child.wait()?;
    let _ = server.join();
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        bail!("the seed's loop failed ({status})");
    }
    let mut v: serde_json::Value = serde_json::from_str(&last).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("pin_reads".into(), served.load(Ordering::Relaxed).into());
    }
    Ok(v)
}

/// Answers each byte read with `<levels> <edges>\n`: the pins as a bit mask, and how
/// many edges of input 0 have been driven (the seed's loop sends the last edge's
/// number), read as one consistent pair.
fn serve_pins(
    mut conn: std::os::unix::net::UnixStream,
    board: &pynq_mqtt_sim::SimBoard,
    drive: &Drive,
    served: &AtomicU64,
) {
    let mut req = [0u8; 64];
    loop {
        let k = match conn.read(&mut req) {
            Ok(0) | Err(_) => return,
            Ok(k) => k,
        };
        for _ in 0..k {
            let (levels, count) = drive.read_pins(board);
            served.fetch_add(1, Ordering::Relaxed);
            if conn
                .write_all(format!("{levels} {count}\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
    }
}

/// The independent subscriber: stamps every PUBLISH on `button/+` when the read that
/// brought it returns (no batching pause: this one measures time, not throughput).
/// Ends after `n` messages, or once told to stop on stdin (the publisher is done)
/// and 300 ms passed without a message.
pub fn sub(port: u16, n: u64) -> Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).context("connect to the broker")?;
    s.set_nodelay(true)?;
    s.write_all(&wire::connect(&format!(
        "bench-pinsub-{}",
        std::process::id()
    )))?;
    s.write_all(&wire::subscribe(crate::roles::FILTER, 0))?;
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 1 << 16];
    // CONNACK, SUBACK
    let mut acks = 0;
    while acks < 2 {
        let k = s.read(&mut tmp)?;
        if k == 0 {
            bail!("the broker closed the connection");
        }
        buf.extend_from_slice(&tmp[..k]);
        while let Some((b0, h, l)) = wire::frame(&buf) {
            if matches!(b0 & 0xf0, 0x20 | 0x90) {
                acks += 1;
            }
            buf.drain(..h + l);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        st.store(true, Ordering::SeqCst);
    });
    println!("ready");
    std::io::stdout().flush()?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut arrivals = Vec::with_capacity(n as usize);
    let mut quiet_since: Option<Instant> = None;
    while (arrivals.len() as u64) < n {
        let k = match s.read(&mut tmp) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    let q = *quiet_since.get_or_insert_with(Instant::now);
                    if q.elapsed() >= Duration::from_millis(300) {
                        break;
                    }
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let now = unix_ns();
        quiet_since = None;
        buf.extend_from_slice(&tmp[..k]);
        let mut pos = 0;
        while let Some((b0, h, l)) = wire::frame(&buf[pos..]) {
            if b0 & 0xf0 == 0x30 {
                if let Some(seq) = seq_of(&buf[pos + h..pos + h + l]) {
                    arrivals.push((seq, now));
                }
            }
            pos += h + l;
        }
        buf.drain(..pos);
    }
    println!("{}", json!({ "arrivals": arrivals }));
    Ok(())
}

/// The `seq` of a JSON payload, in a QoS 0 PUBLISH body.
pub fn seq_of(body: &[u8]) -> Option<u64> {
    let tl = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let payload = body.get(2 + tl..)?;
    let text = std::str::from_utf8(payload).ok()?;
    let p = text.find("\"seq\":")? + 6;
    let digits: String = text[p..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentiles(Vec::new()), None);
        let one = percentiles(vec![7.0]).unwrap();
        assert_eq!((one.p50, one.p99, one.p999, one.max), (7.0, 7.0, 7.0, 7.0));
        // 1..=1000 shuffled: p50 is the 500th, p99 the 990th, p99.9 the 999th
        let v: Vec<f64> = (1..=1000)
            .map(|i| f64::from((i * 389) % 1000 + 1))
            .collect();
        let p = percentiles(v).unwrap();
        assert_eq!(
            (p.n, p.p50, p.p99, p.p999, p.max),
            (1000, 500.0, 990.0, 999.0, 1000.0)
        );
        // 100 samples: p99.9 is the largest
        let p = percentiles((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((p.p50, p.p99, p.p999), (50.0, 99.0, 100.0));
    }

    #[test]
    fn matching_by_sequence_number_keeps_the_first_and_ignores_strangers() {
        let at = by_seq(4, &[(2, 30), (0, 10), (2, 99), (9, 5), (u64::MAX, 1)]);
        assert_eq!(at, vec![Some(10), None, Some(30), None]);
        let from = vec![Some(1_000), Some(2_000), Some(3_000), Some(4_000)];
        // edges without an arrival have no span; a stamp before its edge is 0
        let to = vec![Some(2_500), None, Some(2_000), Some(4_000)];
        assert_eq!(spans(&from, &to), vec![1.5, 0.0, 0.0]);
    }

    #[test]
    fn the_seq_of_a_json_publish() {
        let mut p = Vec::new();
        crate::wire::publish(
            &mut p,
            "button/0",
            br#"{"input":0,"state":1,"seq":1234,"ts_us":5}"#,
            None,
        );
        let (_, h, l) = crate::wire::frame(&p).unwrap();
        assert_eq!(seq_of(&p[h..h + l]), Some(1234));
        let mut q = Vec::new();
        crate::wire::publish(&mut q, "button/0", b"1", None);
        let (_, h, l) = crate::wire::frame(&q).unwrap();
        assert_eq!(seq_of(&q[h..h + l]), None);
    }

    #[test]
    fn the_stimulus_and_the_edge_count_agree() {
        let steps = stimulus(3, 100, true);
        let times: Vec<_> = steps
            .iter()
            .map(|s| (s.time_us, s.input, s.level))
            .collect();
        assert_eq!(
            times,
            vec![
                (LEAD_US, 0, true),
                (LEAD_US + 100, 0, false),
                (LEAD_US + 200, 0, true),
                (LEAD_US + 200 + SEED_END_US, 3, true),
            ]
        );
        assert_eq!(edges_by(0, 3, 100), 0);
        assert_eq!(
            edges_by(LEAD_US, 3, 100),
            0,
            "not applied before its cycle ends"
        );
        assert_eq!(edges_by(LEAD_US + 1, 3, 100), 1);
        assert_eq!(edges_by(LEAD_US + 100, 3, 100), 1);
        assert_eq!(edges_by(LEAD_US + 101, 3, 100), 2);
        assert_eq!(
            edges_by(LEAD_US + 10_000, 3, 100),
            3,
            "never more than driven"
        );
    }
}
