//! The processes the harness starts: the independent subscriber and each publisher.
//! Each prints one JSON line on stdout when it is done.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crossbeam_channel::bounded;
use pynq_mqtt_bridge::{BridgeConfig, BridgeIo, BridgeStats, PayloadFormat, SessionMode};
use pynq_mqtt_driver::{ButtonEvent, LedCommand, LedReport, Stats as DriverStats};
use serde_json::json;

use crate::report::{Delivered, Latency, Published};
use crate::wire;

pub const TOPIC: &str = "button/0";
pub const FILTER: &str = "button/+";

fn payload(i: u64) -> &'static [u8] {
    if i.is_multiple_of(2) {
        b"1"
    } else {
        b"0"
    }
}

/// Peak resident set of this process (VmHWM), KiB.
pub fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The first thread of this process named `name`: its id.
fn thread_id(name: &str) -> Option<String> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|t| {
        let t = t.ok()?.path();
        let comm = std::fs::read_to_string(t.join("comm")).ok()?;
        (comm.trim() == name).then(|| t.file_name()?.to_str().map(str::to_owned))?
    })
}

/// CPU time (utime + stime, clock ticks) in the text of a `/proc/.../stat` file.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields 14 and 15 of stat, counted after the command name's closing parenthesis
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU seconds used so far by the task whose /proc directory is `dir` (a process's is
/// its main thread's): the scheduler's own nanoseconds where the kernel keeps them (the
/// tick-sampled stat misplaces the time of threads that run in short bursts), else the
/// stat's ticks (1/100 s on Linux).
pub fn task_cpu_secs(dir: &std::path::Path) -> Option<f64> {
    let exact = std::fs::read_to_string(dir.join("schedstat")).ok();
    if let Some(ns) = exact.and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok()) {
        return Some(ns as f64 / 1e9);
    }
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    stat_cpu_ticks(&stat).map(|t| t as f64 / 100.0)
}

/// Every thread of this process as it stands: name -> (CPU seconds, voluntary and
/// involuntary context switches), summed over the threads of one name. Where a
/// shared core's time goes in an end-to-end run (the drain, the bridge, the waker).
fn threads_cpu() -> serde_json::Map<String, serde_json::Value> {
    let mut by_name: std::collections::BTreeMap<String, (f64, u64, u64)> = Default::default();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return serde_json::Map::new();
    };
    for t in dir.flatten() {
        let t = t.path();
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(t.join("comm")),
            std::fs::read_to_string(t.join("status")),
        ) else {
            continue;
        };
        let switches = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let e = by_name.entry(comm.trim().to_owned()).or_default();
        e.0 += task_cpu_secs(&t).unwrap_or(0.0);
        e.1 += switches("voluntary_ctxt_switches:");
        e.2 += switches("nonvoluntary_ctxt_switches:");
    }
    by_name
        .into_iter()
        .map(|(k, (cpu, v, nv))| (k, json!({"cpu_secs": cpu, "vcsw": v, "nvcsw": nv})))
        .collect()
}

/// CPU seconds used so far by the thread named `name` (clock ticks are 1/100 s on Linux).
fn thread_cpu_secs(name: &str) -> f64 {
    thread_id(name)
        .and_then(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok())
        .and_then(|stat| stat_cpu_ticks(&stat))
        .map_or(0.0, |t| t as f64 / 100.0)
}

/// The id of the thread named `name`, waiting for it to have named itself (a new
/// thread does so once it first runs, which on a busy core can be a while).
fn wait_thread_id(name: &str) -> Result<String> {
    let t0 = Instant::now();
    loop {
        if let Some(tid) = thread_id(name) {
            return Ok(tid);
        }
        if t0.elapsed() > Duration::from_secs(5) {
            bail!("no thread named {name}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Pins the thread named `name` to one CPU (`taskset -p`, which a thread of a process
/// started under `taskset -c 0` may do).
pub(crate) fn pin_thread(name: &str, cpu: usize) -> Result<()> {
    let tid = wait_thread_id(name)?;
    let st = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid])
        .stdout(std::process::Stdio::null())
        .status()
        .context("taskset")?;
    anyhow::ensure!(st.success(), "taskset -p -c {cpu} {tid} failed");
    Ok(())
}

fn connect(port: u16, id: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).context("connect to the broker")?;
    s.set_nodelay(true)?;
    s.write_all(&wire::connect(id))?;
    Ok(s)
}

/// Reads packets until one whose first byte is `want` (masked with 0xf0) arrived.
fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, want: u8) -> Result<()> {
    let mut tmp = [0u8; 4096];
    loop {
        while let Some((b0, h, l)) = wire::frame(buf) {
            buf.drain(..h + l);
            if b0 & 0xf0 == want {
                return Ok(());
            }
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            bail!("the broker closed the connection");
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// A read shorter than this makes the subscriber pause for [`SUB_PAUSE`].
const SUB_BATCH_BYTES: usize = 16 * 1024;
const SUB_PAUSE: Duration = Duration::from_micros(300);

/// The broker's count of messages it dropped (queue limits, a client too slow), which
/// mosquitto publishes every `sys_interval` (the bench's broker sets 1 s).
pub const BROKER_DROPPED: &str = "$SYS/broker/publish/messages/dropped";

/// How often the subscriber looks at the clock while nothing arrives.
const SUB_TICK: Duration = Duration::from_millis(100);

/// Without word from the harness (a publisher that never ends, or a subscriber run by
/// hand), counting ends after this long without a message.
const SUB_CAP: Duration = Duration::from_secs(120);

/// A `$SYS` counter: the value before the run (the harness's last sighting, else the
/// first value seen) and the last value seen.
struct SysCounter {
    baseline: Option<u64>,
    last: Option<u64>,
}

impl SysCounter {
    fn see(&mut self, payload: &[u8]) {
        if let Some(v) = std::str::from_utf8(payload)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            self.baseline.get_or_insert(v);
            self.last = Some(v);
        }
    }

    /// The counter's change over the run; None when its value was never known.
    fn delta(&self) -> Option<u64> {
        let base = self.baseline?;
        Some(self.last.unwrap_or(base).saturating_sub(base))
    }

    /// The value as it stands, for the next run's baseline.
    fn total(&self) -> Option<u64> {
        self.last.or(self.baseline)
    }
}

/// Set once the harness says the publisher is done (a line or the end of stdin).
fn publisher_done_watch() -> Arc<std::sync::OnceLock<Instant>> {
    let done = Arc::new(std::sync::OnceLock::new());
    let d = Arc::clone(&done);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = d.set(Instant::now());
    });
    done
}

/// The independent subscriber: counts PUBLISH packets on `button/+` up to `n`; the rate
/// is measured from the first to the last delivered message, on its own clock.
///
/// It stops counting when all `n` arrived, when the broker closes, or `idle` after
/// both the last message and the harness's word that the publisher is done (so a
/// publisher that stalls for a while, with messages still to come, is waited for). It
/// also watches the broker's drop counter, and reports why it stopped and the longest
/// wait between two deliveries: a shortfall comes with what explains it.
pub fn sub(
    port: u16,
    n: u64,
    qos: u8,
    (idle, start_timeout): (Duration, Duration),
    dropped_baseline: Option<u64>,
) -> Result<()> {
    let done = publisher_done_watch();
    let mut s = connect(port, &format!("bench-sub-{}", std::process::id()))?;
    let mut pending = Vec::new();
    read_until(&mut s, &mut pending, 0x20)?;
    s.write_all(&wire::subscribe(FILTER, qos))?;
    read_until(&mut s, &mut pending, 0x90)?;
    s.write_all(&wire::subscribe(BROKER_DROPPED, 0))?;
    read_until(&mut s, &mut pending, 0x90)?;
    println!("ready");
    std::io::stdout().flush()?;
    s.set_read_timeout(Some(SUB_TICK))?;
    let started = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut fill = pending.len();
    buf[..fill].copy_from_slice(&pending);
    let (mut count, mut first, mut last) = (0u64, None::<Instant>, Instant::now());
    let mut max_gap = Duration::ZERO;
    let mut dropped = SysCounter {
        baseline: dropped_baseline,
        last: None,
    };
    let mut acks = Vec::new();
    let ended = 'outer: loop {
        let mut pos = 0;
        let now = Instant::now();
        while let Some((b0, h, l)) = wire::frame(&buf[pos..fill]) {
            if b0 & 0xf0 == 0x30 {
                let body = &buf[pos + h..pos + h + l];
                let tl = usize::from(u16::from_be_bytes([body[0], body[1]]));
                let topic = &body[2..2 + tl];
                let id_len = if b0 & 0x06 != 0 { 2 } else { 0 };
                if topic.starts_with(b"$SYS/") {
                    dropped.see(&body[2 + tl + id_len..]);
                } else {
                    count += 1;
                    if first.is_none() {
                        first = Some(now);
                    } else {
                        max_gap = max_gap.max(now - last);
                    }
                    last = now;
                }
                if b0 & 0x06 != 0 {
                    // QoS 1: acknowledge (topic length, topic, packet id)
                    acks.extend_from_slice(&[0x40, 2, body[2 + tl], body[3 + tl]]);
                }
            }
            pos += h + l;
            if count >= n {
                break 'outer "all";
            }
        }
        if !acks.is_empty() {
            s.write_all(&acks)?;
            acks.clear();
        }
        buf.copy_within(pos..fill, 0);
        fill -= pos;
        if fill == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match s.read(&mut buf[fill..]) {
            Ok(0) => break "closed",
            Ok(k) => {
                fill += k;
                if k < SUB_BATCH_BYTES && first.is_some() {
                    // a measuring instrument should cost little: woken for every packet
                    // the broker writes, this process took 60 % of a core (recv calls of
                    // 13 bytes) and with it the CPU the broker and publisher need. Letting
                    // a few hundred packets accumulate costs at most this pause at the end.
                    std::thread::sleep(SUB_PAUSE);
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                let quiet_since = first.map_or(started, |_| last);
                match done.get() {
                    Some(&d) if quiet_since.max(d).elapsed() >= idle => break "idle",
                    Some(_) => {}
                    None if first.is_none() && started.elapsed() >= start_timeout => break "start",
                    None if first.is_some() && last.elapsed() >= SUB_CAP => break "cap",
                    None => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    let rate = if secs > 0.0 {
        (count - 1) as f64 / secs
    } else {
        0.0
    };
    let line = Delivered {
        received: count,
        secs,
        rate,
        ended: ended.into(),
        max_gap_ms: max_gap.as_secs_f64() * 1e3,
        broker_dropped: dropped.delta(),
        broker_dropped_total: dropped.total(),
    };
    println!("{}", serde_json::to_string(&line)?);
    let _ = s.write_all(&wire::DISCONNECT);
    Ok(())
}

/// Keeps one core busy until killed, as a notebook's Python loop would.
pub fn burn() -> Result<()> {
    let mut x = 1u64;
    loop {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// Pre-encoded QoS 0 PUBLISH packets written in `write_bytes` writes (or `batch`
/// packets per write): the ceiling for one connection.
pub fn pub_raw(port: u16, n: u64, write_bytes: usize, batch: Option<usize>) -> Result<()> {
    let mut all = Vec::with_capacity(n as usize * 16);
    let mut pkt_len = 0;
    for i in 0..n {
        let before = all.len();
        wire::publish(&mut all, TOPIC, payload(i), None);
        pkt_len = all.len() - before;
    }
    let chunk = batch.map_or(write_bytes, |b| (b * pkt_len).max(1));
    let mut s = connect(port, &format!("bench-raw-{}", std::process::id()))?;
    let mut pending = Vec::new();
    read_until(&mut s, &mut pending, 0x20)?;
    let t0 = Instant::now();
    let mut writes = 0u64;
    for c in all.chunks(chunk) {
        s.write_all(c)?;
        writes += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    finish(s)?;
    Published {
        writes: Some(writes),
        packet_bytes: Some(pkt_len),
        ..Published::new(n, secs)
    }
    .print()
}

/// DISCONNECT, then wait for the broker to close.
fn finish(mut s: TcpStream) -> Result<()> {
    s.write_all(&wire::DISCONNECT)?;
    s.shutdown(std::net::Shutdown::Write)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tmp = [0u8; 4096];
    while matches!(s.read(&mut tmp), Ok(k) if k > 0) {}
    Ok(())
}

/// Pre-encoded QoS 1 PUBLISH packets, pipelined: at most `window` unacknowledged,
/// written in batches of up to `window` packets while a thread reads the PUBACKs.
pub fn pub_raw_qos1(port: u16, n: u64, window: u64) -> Result<()> {
    let mut all = Vec::with_capacity(n as usize * 16);
    let mut offs = Vec::with_capacity(n as usize + 1);
    for i in 0..n {
        offs.push(all.len());
        let pkid = (i % 65_535) as u16 + 1;
        wire::publish(&mut all, TOPIC, payload(i), Some(pkid));
    }
    offs.push(all.len());
    let mut s = connect(port, &format!("bench-raw1-{}", std::process::id()))?;
    let mut pending = Vec::new();
    read_until(&mut s, &mut pending, 0x20)?;
    let acked = Arc::new(AtomicU64::new(0));
    let mut r = s.try_clone()?;
    let a = Arc::clone(&acked);
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut fill = 0;
        loop {
            let k = match r.read(&mut buf[fill..]) {
                Ok(0) | Err(_) => return,
                Ok(k) => k,
            };
            fill += k;
            let mut pos = 0;
            let mut got = 0;
            while let Some((b0, h, l)) = wire::frame(&buf[pos..fill]) {
                if b0 & 0xf0 == 0x40 {
                    got += 1;
                }
                pos += h + l;
            }
            a.fetch_add(got, Ordering::Release);
            buf.copy_within(pos..fill, 0);
            fill -= pos;
        }
    });
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < n {
        let room = acked.load(Ordering::Acquire) + window - sent;
        if room == 0 {
            std::thread::yield_now();
            continue;
        }
        let k = room.min(n - sent);
        s.write_all(&all[offs[sent as usize]..offs[(sent + k) as usize]])?;
        sent += k;
    }
    while acked.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
    let secs = t0.elapsed().as_secs_f64();
    finish(s)?;
    let _ = reader.join();
    Published::new(n, secs).print()
}

/// rumqttc 0.25 used plainly: one `publish().await` per message.
pub fn pub_rumqttc(port: u16, n: u64) -> Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let mut opts = MqttOptions::new(
            format!("bench-rumqttc-{}", std::process::id()),
            "127.0.0.1",
            port,
        );
        opts.set_keep_alive(Duration::from_secs(60));
        let (client, mut ev) = AsyncClient::new(opts, 100);
        let poller = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        });
        let t0 = Instant::now();
        for i in 0..n {
            client
                .publish(TOPIC, QoS::AtMostOnce, false, payload(i))
                .await?;
        }
        client.disconnect().await?;
        poller.await??;
        let secs = t0.elapsed().as_secs_f64();
        Published::new(n, secs).print()
    })
}

pub fn bridge_config(port: u16, qos: u8, json_payload: bool) -> BridgeConfig {
    let mut cfg = BridgeConfig::new("127.0.0.1", port);
    cfg.client_id = format!("bench-pynq-mqtt-{}", std::process::id());
    cfg.session = SessionMode::Clean;
    cfg.stats_interval = None;
    cfg.shutdown_timeout = Duration::from_secs(120);
    cfg.qos = pynq_mqtt_bridge::Qos::try_from(qos.min(2)).unwrap_or_default();
    if json_payload {
        cfg.payload = PayloadFormat::Json;
    }
    cfg
}

/// Runs the bridge on the events of `events` until the channel closes and all is
/// delivered; the LED side is idle (no LEDs).
fn run_bridge(
    cfg: BridgeConfig,
    events: crossbeam_channel::Receiver<ButtonEvent>,
    driver_stats: Arc<DriverStats>,
    bell: Option<pynq_mqtt_driver::Bell>,
) -> Result<pynq_mqtt_bridge::BridgeStatsView> {
    let (cmd_tx, _cmd_rx) = bounded::<LedCommand>(16);
    let (_, led_rx) = bounded::<LedReport>(1);
    let io = BridgeIo {
        driver_stats,
        bell,
        ..BridgeIo::new(events, cmd_tx, led_rx, 4, 0)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let view = rt.block_on(pynq_mqtt_bridge::run(
        cfg,
        io,
        Arc::new(BridgeStats::default()),
    ))?;
    Ok(view)
}

/// pynq-mqtt's publisher fed through the channel, as the driver feeds it.
pub fn pub_bridge(port: u16, n: u64, qos: u8, protocol: pynq_mqtt_bridge::Protocol) -> Result<()> {
    let (tx, rx) = bounded(65_536);
    let feeder = std::thread::spawn(move || {
        for i in 0..n {
            let ev = ButtonEvent {
                input: 0,
                level: i.is_multiple_of(2),
                ts_us: i,
                seq: i,
                synthetic: true,
                utc_us: None,
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    // the window of (g), so that (h)/(g) compares publishers, not windows (the
    // daemon's default, 16, is weighed by `publish-rate --max-inflight`)
    let mut cfg = bridge_config(port, qos, false);
    cfg.max_inflight = 1024;
    cfg.protocol = protocol;
    let t0 = Instant::now();
    let view = run_bridge(cfg, rx, Arc::new(DriverStats::default()), None)?;
    let secs = t0.elapsed().as_secs_f64();
    let _ = feeder.join();
    Published {
        lost: Some(view.lost()),
        writes: Some(view.writes),
        bytes: Some(view.bytes_written),
        ..Published::new(view.published, secs)
    }
    .print()
}

/// pynq-mqtt end to end: the simulated board's hardware event generator at `rate`
/// events per second of wall time, the driver, the bridge. The board runs at most
/// `max_speed` simulated seconds per wall second; with `fabric_cpu` its clock thread
/// (the FPGA, not the ARM cores) is pinned to that CPU.
///
/// The generator's period is a whole number of clocks, so at a fixed speed the rate
/// comes in steps (at 3 MHz simulated, 7 clocks give 429k/s and 8 give 375k/s) and a
/// rounded period could run faster than asked. So the period is the longest that
/// `max_speed` allows, and the speed is the one that gives `rate` exactly with it.
pub fn pub_e2e(
    port: u16,
    n: u64,
    rate: f64,
    max_speed: f64,
    fabric_cpu: Option<usize>,
    (coalesce_count, coalesce_us): (u16, u32),
    rt_priority: u8,
) -> Result<()> {
    use pynq_mqtt_bus::Bus;
    use pynq_mqtt_driver::diag::{self, Burst};
    use pynq_mqtt_sim::{SimBoard, SimConfig, Speed};
    // the generator's period, in simulated clocks, and the speed that together give
    // `rate` in wall time
    let clk = pynq_mqtt_sim::model_clk_hz() as f64;
    let period = ((clk * max_speed / rate).floor() as u32).max(1);
    let sim_speed = rate * f64::from(period) / clk;
    let board = Arc::new(SimBoard::start(SimConfig {
        speed: Speed::RealTime(sim_speed),
        stimulus: Vec::new(),
    })?);
    if let Some(cpu) = fabric_cpu {
        pin_thread("sim-clock", cpu)?;
    }
    board.start_stimulus();
    let bus: Arc<dyn Bus> = board.clone();
    // the events come from the IP's generator: refuse in one line, before anything
    // starts, on a model built without it (PYNQ_MQTT_SIM_WITH_GEN=0)
    diag::require_generator(bus.as_ref())?;
    // the daemon's high-rate setting (`--coalesce-count`, `--coalesce-us`): one
    // interrupt per `coalesce_count` events or per `coalesce_us` of the oldest one; and
    // the board's installed `rt_priority` (refused without the right, it warns and runs)
    let dcfg = pynq_mqtt_driver::DriverConfig {
        coalesce_count,
        coalesce_us,
        rt_priority,
        ..Default::default()
    };
    let (driver, ch) = pynq_mqtt_driver::Driver::start(Arc::clone(&bus), &dcfg)?;
    let dstats = driver.stats();
    let cfg = bridge_config(port, 0, false);
    let ds = Arc::clone(&dstats);
    let bell = Some(ch.bell.clone());
    let bridge = std::thread::spawn(move || run_bridge(cfg, ch.events, ds, bell));
    // the daemon holds the command and LED ends too; keep them open until the end
    let (_commands, _leds) = (ch.commands, ch.leds);
    let burst = Burst {
        count: n as u32,
        period,
        pattern: 1,
    };
    burst.load(bus.as_ref())?;
    let t0 = Instant::now();
    diag::generator_start(bus.as_ref())?;
    let deadline = t0 + Duration::from_secs_f64(n as f64 / rate * 3.0 + 30.0);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if u64::from(diag::generator_sent(bus.as_ref())?) >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!("the generator did not finish in time");
        }
    }
    let gen_secs = t0.elapsed().as_secs_f64();
    let fabric_cpu_secs = thread_cpu_secs("sim-clock");
    let threads = threads_cpu();
    // the generator is done: let the driver take the last events, then stop it
    let until = Instant::now() + Duration::from_secs(10);
    while dstats.captured.load(Ordering::Relaxed) + dstats.hw_dropped.load(Ordering::Relaxed) < n
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    driver.stop();
    drop((_commands, _leds));
    let view = bridge.join().expect("bridge thread")?;
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({"sent": view.published, "lost": view.lost(), "captured": g(&dstats.captured),
               "hw_dropped": g(&dstats.hw_dropped), "seq_lost": g(&dstats.seq_lost),
               "channel_full": g(&dstats.channel_full), "irqs": g(&dstats.irqs),
               "writes": view.writes, "bytes": view.bytes_written, "gen_secs": gen_secs, "rate": rate, "period": period,
               "sim_speed": sim_speed, "fabric_cpu_secs": fabric_cpu_secs,
               "coalesce_count": coalesce_count, "coalesce_us": coalesce_us,
               "rt_priority": rt_priority, "threads": threads,
               "vm_hwm_kib": vm_hwm_kib()})
    );
    Ok(())
}

/// A discard sink: answers CONNECT (and SUBSCRIBE, PINGREQ, QoS 1 PUBLISH), reads
/// and drops the rest. Serves one connection; `on_publish` sees each PUBLISH body.
pub struct SinkResult {
    pub publishes: u64,
    /// From the CONNECT to the last byte read.
    pub secs: f64,
}

pub fn sink_one(
    listener: &TcpListener,
    mut on_publish: impl FnMut(u8, &[u8]),
) -> Result<SinkResult> {
    let (mut s, _) = listener.accept()?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut fill, mut count) = (0usize, 0u64);
    let mut t0 = None;
    let mut last = Instant::now();
    let mut out = Vec::new();
    'outer: loop {
        let k = match s.read(&mut buf[fill..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => k,
        };
        last = Instant::now();
        fill += k;
        let mut pos = 0;
        while let Some((b0, h, l)) = wire::frame(&buf[pos..fill]) {
            let body = &buf[pos + h..pos + h + l];
            match b0 & 0xf0 {
                0x30 => {
                    count += 1;
                    on_publish(b0, body);
                    if b0 & 0x06 != 0 {
                        let tl = usize::from(u16::from_be_bytes([body[0], body[1]]));
                        let code = if b0 & 0x06 == 2 { 0x40 } else { 0x50 };
                        out.extend_from_slice(&[code, 2, body[2 + tl], body[3 + tl]]);
                    }
                }
                0x10 => {
                    t0.get_or_insert(last);
                    out.extend_from_slice(&[0x20, 2, 0, 0]);
                }
                0x80 => {
                    // SUBSCRIBE: packet id, then (filter, qos) pairs
                    let mut codes = Vec::new();
                    let mut p = 2;
                    while p + 2 <= body.len() {
                        p += 2 + usize::from(u16::from_be_bytes([body[p], body[p + 1]])) + 1;
                        codes.push(0u8);
                    }
                    out.push(0x90);
                    wire::put_len(&mut out, 2 + codes.len());
                    out.extend_from_slice(&body[..2]);
                    out.extend_from_slice(&codes);
                }
                0x60 => out.extend_from_slice(&[0x70, 2, body[0], body[1]]),
                0xc0 => out.extend_from_slice(&[0xd0, 0]),
                0xe0 => break 'outer,
                _ => {}
            }
            pos += h + l;
        }
        if !out.is_empty() {
            s.write_all(&out)?;
            out.clear();
        }
        buf.copy_within(pos..fill, 0);
        fill -= pos;
        if fill == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    let secs = t0.map_or(0.0, |t| (last - t).as_secs_f64());
    Ok(SinkResult {
        publishes: count,
        secs,
    })
}

/// Latency from the channel (where the driver puts a popped event) to the socket:
/// events at `rate` per second for `secs`, each stamped when it enters the channel
/// (the `ts_us` of its JSON payload), read back by an in-process sink on loopback.
pub fn latency(rate: f64, secs: f64) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let epoch = Instant::now();
    let sink = std::thread::spawn(move || {
        let mut lat = Vec::new();
        let r = sink_one(&listener, |_, body| {
            let now = epoch.elapsed().as_micros() as u64;
            let text = String::from_utf8_lossy(body);
            if let Some(p) = text.find("\"ts_us\":") {
                let digits: String = text[p + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let Ok(ts) = digits.parse::<u64>() {
                    lat.push(now.saturating_sub(ts));
                }
            }
        });
        (r, lat)
    });
    let n = (rate * secs) as u64;
    let (tx, rx) = bounded(65_536);
    let feeder = std::thread::spawn(move || {
        // connected and idle first
        std::thread::sleep(Duration::from_millis(300));
        let period = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now();
        for i in 0..n {
            let due = start + period * i as u32;
            while Instant::now() < due {
                let left = due - Instant::now();
                if left > Duration::from_micros(200) {
                    std::thread::sleep(left - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
            }
            let ev = ButtonEvent {
                input: 0,
                level: i.is_multiple_of(2),
                ts_us: epoch.elapsed().as_micros() as u64,
                seq: i,
                synthetic: true,
                utc_us: None,
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    let view = run_bridge(
        bridge_config(port, 0, true),
        rx,
        Arc::new(DriverStats::default()),
        None,
    )?;
    let _ = feeder.join();
    let (r, mut lat) = sink.join().expect("sink thread");
    r?;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    let line = Latency {
        events: lat.len(),
        published: view.published,
        rate,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        max_us: lat.last().copied().unwrap_or(0),
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(baseline: Option<u64>, seen: &[&[u8]]) -> SysCounter {
        let mut c = SysCounter {
            baseline,
            last: None,
        };
        for s in seen {
            c.see(s);
        }
        c
    }

    #[test]
    fn the_brokers_drop_counter_is_a_change_over_the_run() {
        // a fresh broker's retained value is the baseline
        let c = counter(None, &[b"0", b"3"]);
        assert_eq!((c.delta(), c.total()), (Some(3), Some(3)));
        // no value seen: unchanged since the harness's last sighting (expired retain)
        let c = counter(Some(7), &[]);
        assert_eq!((c.delta(), c.total()), (Some(0), Some(7)));
        // a change seen: measured from that sighting, not from the first value seen
        let c = counter(Some(7), &[b"12"]);
        assert_eq!(c.delta(), Some(5));
        // never known, and garbage ignored
        let c = counter(None, &[b"many"]);
        assert_eq!((c.delta(), c.total()), (None, None));
    }
}
