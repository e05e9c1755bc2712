//! `pin-latency`: the time from a button pin to an independent subscriber.
//!
//! The simulated board runs in real time. A thread standing for the outside world
//! drives input 0 at a fixed rate; the wall-clock moment the clock thread changes the
//! pin is recorded. The driver and the bridge (JSON payload, which carries the
//! sequence number) publish through a fresh mosquitto on a free loopback port; the
//! bench's own raw-socket subscriber, in another process, stamps each arrival when its
//! read returns. Edge k has sequence number k (the board counts from reset and nothing
//! else makes events), so arrivals are matched by sequence number; an edge without an
//! arrival is lost. Clocks: both processes use the system's real-time clock.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::launch::{start_broker, Ctx};
use crate::peers::Place;
use crate::roles::{bridge_config, pin_thread, run_bridge};
use crate::wire;

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The interrupt settings compared: the daemon's default and its high-rate setting.
const MODES: [(&str, u16, u32); 2] = [("default", 1, 0), ("coalesce 64/200us", 64, 200)];

/// One measured case.
#[derive(Serialize, Debug)]
pub struct Case {
    pub placement: &'static str,
    pub mode: &'static str,
    pub rate: f64,
    pub driven: usize,
    pub received: usize,
    pub lost: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Simulated time the board skipped (it fell behind the wall clock), µs.
    pub sim_skipped_us: u64,
    pub loadavg_before: String,
}

/// The board process's line.
#[derive(Serialize, Deserialize)]
struct Driven {
    driven_ns: Vec<u64>,
    captured: u64,
    hw_dropped: u64,
    sim_skipped_us: u64,
}

/// The subscriber's line: (sequence number, arrival in Unix ns).
#[derive(Serialize, Deserialize)]
struct Arrivals {
    arrivals: Vec<(u64, u64)>,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The whole measurement: every placement, mode and rate; a table on stdout and, with
/// `out`, the cases as JSON.
pub fn main(
    rates: &[f64],
    secs: &[f64],
    placements: &str,
    out: Option<&std::path::Path>,
) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("pynq-mqtt-pin-latency-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let ctx = Ctx {
        self_cmd: vec![std::env::current_exe().context("own executable")?.into()],
        root: std::env::current_dir()?,
        tmp: tmp.clone(),
        e2e_sim_speed: 1.0,
        e2e_coalesce: (1, 0),
        e2e_rt_priority: 0,
    };
    let mut cases = Vec::new();
    for place in placements.split(',').map(|p| Place::parse(p.trim())) {
        let place = place?;
        let broker = start_broker(&ctx, place)?;
        for (mode, count, us) in MODES {
            for (i, &rate) in rates.iter().enumerate() {
                let secs = secs.get(i).or(secs.last()).copied().unwrap_or(5.0);
                let n = ((rate * secs).round() as u64).max(1);
                let load = loadavg();
                let case = one(&ctx, place, broker.port, (mode, count, us), rate, n, load)?;
                eprintln!(
                    "  {} {mode} {rate}/s: {} of {} received, p50 {:.0} p99 {:.0} p99.9 {:.0} max {:.0} us",
                    place.name(),
                    case.received,
                    case.driven,
                    case.p50_us,
                    case.p99_us,
                    case.p999_us,
                    case.max_us
                );
                cases.push(case);
            }
        }
        drop(broker);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!("| placement | interrupts | events/s | events | lost | p50 µs | p99 µs | p99.9 µs | max µs | sim skipped µs |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for c in &cases {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            c.placement,
            c.mode,
            c.rate,
            c.driven,
            c.lost,
            c.p50_us,
            c.p99_us,
            c.p999_us,
            c.max_us,
            c.sim_skipped_us
        );
    }
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&cases)?)?;
    }
    if cases.iter().any(|c| c.lost > 0) {
        bail!("events were lost");
    }
    Ok(())
}

fn one(
    ctx: &Ctx,
    place: Place,
    port: u16,
    (mode, count, us): (&'static str, u16, u32),
    rate: f64,
    n: u64,
    loadavg_before: String,
) -> Result<Case> {
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
        .stdout(Stdio::piped())
        .spawn()?;
    let mut sub_lines = BufReader::new(sub.stdout.take().expect("piped")).lines();
    match sub_lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => bail!("the subscriber did not start: {other:?}"),
    }
    let mut args = vec![
        "pin-latency-board".to_string(),
        "--port".into(),
        port.to_string(),
        "--n".into(),
        n.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--coalesce-count".into(),
        count.to_string(),
        "--coalesce-us".into(),
        us.to_string(),
    ];
    if place == Place::Shared {
        // the clock thread is the FPGA fabric and the pin driver the world outside:
        // neither takes the ARM core's cycles on a board
        args.extend(["--fabric-cpu".into(), "1".into()]);
    }
    let board = ctx.me(place, &args).stdout(Stdio::piped()).output()?;
    if !board.status.success() {
        let _ = sub.kill();
        bail!("the board process failed ({})", board.status);
    }
    let driven: Driven = serde_json::from_slice(
        board
            .stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .context("no line from the board process")?,
    )?;
    eprintln!(
        "    board: captured {}, hardware dropped {}",
        driven.captured, driven.hw_dropped
    );
    let line = sub_lines.next().context("no line from the subscriber")??;
    let _ = sub.wait();
    let arrivals: Arrivals = serde_json::from_str(&line)?;
    let mut at = vec![None; driven.driven_ns.len()];
    for (seq, ns) in arrivals.arrivals {
        if let Some(slot) = at.get_mut(seq as usize) {
            slot.get_or_insert(ns);
        }
    }
    if let Some(dump) = std::env::var_os("PIN_LATENCY_DUMP") {
        let series: Vec<Option<u64>> = at
            .iter()
            .zip(&driven.driven_ns)
            .map(|(a, &d)| a.map(|a| a.saturating_sub(d) / 1000))
            .collect();
        std::fs::write(dump, serde_json::to_string(&series)?)?;
    }
    let mut lat: Vec<f64> = at
        .iter()
        .zip(&driven.driven_ns)
        .filter_map(|(a, &d)| a.map(|a| a.saturating_sub(d) as f64 / 1000.0))
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Case {
        placement: place.name(),
        mode,
        rate,
        driven: driven.driven_ns.len(),
        received: lat.len(),
        lost: driven.driven_ns.len() - lat.len(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: lat.last().copied().unwrap_or(f64::NAN),
        sim_skipped_us: driven.sim_skipped_us,
        loadavg_before,
    })
}

/// The board process: the simulated board in real time, the driver, the bridge, and a
/// thread that drives input 0 `n` times at `rate`; prints the moments it drove.
pub fn board(
    port: u16,
    n: u64,
    rate: f64,
    coalesce: (u16, u32),
    fabric_cpu: Option<usize>,
) -> Result<()> {
    use pynq_mqtt_bus::Bus;
    use pynq_mqtt_sim::{SimBoard, SimConfig, Speed};
    let board = Arc::new(SimBoard::start(SimConfig {
        speed: Speed::RealTime(1.0),
        stimulus: Vec::new(),
    })?);
    if let Some(cpu) = fabric_cpu {
        pin_thread("sim-clock", cpu)?;
    }
    let bus: Arc<dyn Bus> = board.clone();
    let dcfg = pynq_mqtt_driver::DriverConfig {
        coalesce_count: coalesce.0,
        coalesce_us: coalesce.1,
        ..Default::default()
    };
    let (driver, ch) = pynq_mqtt_driver::Driver::start(Arc::clone(&bus), &dcfg)?;
    let dstats = driver.stats();
    let cfg = bridge_config(port, 0, true);
    let ds = Arc::clone(&dstats);
    let bridge = std::thread::spawn(move || run_bridge(cfg, ch.events, ds));
    let (_commands, _leds) = (ch.commands, ch.leds);
    // connected and idle first
    std::thread::sleep(Duration::from_secs(1));
    let b = Arc::clone(&board);
    let presser = std::thread::Builder::new()
        .name("pin-driver".into())
        .spawn(move || -> Vec<u64> {
            let (i0, u0) = (Instant::now(), unix_ns());
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut due = Instant::now() + Duration::from_millis(50);
            let mut driven = Vec::with_capacity(n as usize);
            for k in 0..n {
                // it sleeps, never spins: in the shared placement it sits on the fabric's
                // core, and a spinning presser took the clock thread's CPU
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let Some(t) = b.drive_input(0, k % 2 == 0) else {
                    break;
                };
                driven.push(u0 + t.duration_since(i0).as_nanos() as u64);
                // a late presser (no CPU for a while) does not make up for it with a
                // burst: edges closer than the input synchronizer resolves are one
                // edge on a board too
                due = (due + period).max(t + period / 2);
            }
            driven
        })?;
    if let Some(cpu) = fabric_cpu {
        pin_thread("pin-driver", cpu)?;
    }
    let driven_ns = presser.join().expect("pin driver");
    let until = Instant::now() + Duration::from_secs(10);
    while dstats.captured.load(Ordering::Relaxed) + dstats.hw_dropped.load(Ordering::Relaxed)
        < driven_ns.len() as u64
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    driver.stop();
    drop((_commands, _leds));
    bridge.join().expect("bridge thread")?;
    let line = Driven {
        driven_ns,
        captured: dstats.captured.load(Ordering::Relaxed),
        hw_dropped: dstats.hw_dropped.load(Ordering::Relaxed),
        sim_skipped_us: board.skipped().sim_us,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

/// The independent subscriber: stamps every PUBLISH on `button/+` when the read that
/// brought it returns (no batching pause: this one measures time, not throughput);
/// ends after `n` or 3 s without a message.
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
    println!("ready");
    std::io::stdout().flush()?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut arrivals = Vec::with_capacity(n as usize);
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
                break
            }
            Err(e) => return Err(e.into()),
        };
        let now = unix_ns();
        buf.extend_from_slice(&tmp[..k]);
        let mut pos = 0;
        while let Some((b0, h, l)) = wire::frame(&buf[pos..]) {
            if b0 & 0xf0 == 0x30 {
                let body = &buf[pos + h..pos + h + l];
                if let Some(seq) = seq_of(body) {
                    arrivals.push((seq, now));
                }
            }
            pos += h + l;
        }
        buf.drain(..pos);
        if !arrivals.is_empty() {
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
        }
    }
    println!("{}", json!({ "arrivals": arrivals }));
    Ok(())
}

/// The `seq` of a JSON payload, in a QoS 0 PUBLISH body.
fn seq_of(body: &[u8]) -> Option<u64> {
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
