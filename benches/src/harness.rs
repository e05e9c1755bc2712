//! The whole benchmark: a fresh mosquitto per placement, every peer against it with
//! the independent subscriber, repeated; then the sink, callgrind, idle CPU, latency
//! and the batch-size sweep. Results: a table on stdout, `results.json`, `table.md`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::roles;
use crate::BenchArgs;

#[derive(Clone, Copy, PartialEq)]
enum Place {
    Spread,
    Shared,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Spread => "spread",
            Place::Shared => "shared",
        }
    }
}

struct Ctx {
    self_cmd: Vec<OsString>,
    root: PathBuf,
    tmp: PathBuf,
    /// Simulated seconds per wall second of the end-to-end run's board.
    e2e_sim_speed: f64,
    /// Its driver's interrupt coalescing (count, µs).
    e2e_coalesce: (u16, u32),
    /// Its driver's real-time priority.
    e2e_rt_priority: u8,
}

impl Ctx {
    /// A command placed: under `taskset -c 0` when shared.
    fn cmd(&self, place: Place, prog: &[OsString]) -> Command {
        let mut c = if place == Place::Shared {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&prog[0]);
            c
        } else {
            Command::new(&prog[0])
        };
        c.args(&prog[1..]);
        c
    }
    fn me(&self, place: Place, args: &[String]) -> Command {
        let mut c = self.cmd(place, &self.self_cmd);
        c.args(args);
        c
    }
}

struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_broker(ctx: &Ctx, place: Place) -> Result<Broker> {
    let port = free_port()?;
    let conf = ctx.tmp.join(format!("mosquitto-{}.conf", place.name()));
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_queued_bytes 0\nlog_dest none\n"
        ),
    )?;
    let child = ctx
        .cmd(place, &["mosquitto".into(), "-c".into(), conf.into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start mosquitto (apt-get install mosquitto)")?;
    let b = Broker { child, port };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("mosquitto did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(b)
}

/// One run: the subscriber, then the publisher; the subscriber's and the publisher's
/// JSON lines.
fn measure(
    ctx: &Ctx,
    place: Place,
    port: u16,
    n: u64,
    publisher: Command,
    sub_qos: u8,
) -> Result<Sample> {
    let mut sub = ctx
        .me(
            place,
            &[
                "sub".into(),
                "--port".into(),
                port.to_string(),
                "--n".into(),
                n.to_string(),
                "--qos".into(),
                sub_qos.to_string(),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(sub.stdout.take().expect("piped")).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => bail!("subscriber did not start: {other:?}"),
    }
    let mut publisher = publisher;
    let mut p = publisher
        .stdout(Stdio::piped())
        .spawn()
        .context("start publisher")?;
    let sub_line = lines.next().transpose()?.unwrap_or_default();
    let _ = sub.wait();
    // the publisher has delivered what it will: give it a moment to exit cleanly
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = p.try_wait()? {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = p.kill();
            let _ = p.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut pub_out = String::new();
    std::io::Read::read_to_string(&mut p.stdout.take().expect("piped"), &mut pub_out)?;
    let s: Value = serde_json::from_str(&sub_line).unwrap_or(Value::Null);
    let received = s["received"].as_u64().unwrap_or(0);
    Ok(Sample {
        rate: s["rate"].as_f64().unwrap_or(0.0),
        received,
        lost: n.saturating_sub(received),
        ok: status.is_some_and(|s| s.success()),
        publisher: pub_out
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null),
    })
}

#[derive(Clone)]
struct Sample {
    rate: f64,
    received: u64,
    lost: u64,
    ok: bool,
    publisher: Value,
}

fn median(v: &[f64]) -> f64 {
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

const PEERS: [(&str, &str); 8] = [
    ("a", "raw QoS0 PUBLISH, 64 KiB writes (ceiling)"),
    ("b", "rumqttc 0.25, publish().await each"),
    ("c", "seed's paho-mqtt loop (CONNACK read)"),
    ("d", "mosquitto_pub -l"),
    ("e", "pynq-mqtt publisher (channel)"),
    ("f", "pynq-mqtt end to end (sim generator)"),
    ("g", "raw QoS1, pipelined (window 1024)"),
    ("h", "pynq-mqtt publisher QoS1"),
];

fn peer_cmd(
    ctx: &Ctx,
    place: Place,
    key: &str,
    port: u16,
    n: u64,
    e2e_rate: f64,
) -> Result<Command> {
    let p = port.to_string();
    let nn = n.to_string();
    let me = |r: &[&str]| {
        let mut a: Vec<String> = r.iter().map(|s| s.to_string()).collect();
        a.extend(["--port".into(), p.clone(), "--n".into(), nn.clone()]);
        ctx.me(place, &a)
    };
    Ok(match key {
        "a" => me(&["pub-raw"]),
        "b" => me(&["pub-rumqttc"]),
        "c" => {
            let py = ctx.root.join(".venv/bin/python");
            let py = if py.exists() {
                py.into_os_string()
            } else {
                "python3".into()
            };
            let mut c = ctx.cmd(place, &[py, ctx.root.join("benches/paho_seed.py").into()]);
            c.args(["--port", &p, "--n", &nn]);
            c
        }
        "d" => {
            let lines = ctx.tmp.join(format!("lines-{n}"));
            if !lines.exists() {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&lines)?);
                for i in 0..n {
                    f.write_all(if i.is_multiple_of(2) { b"1\n" } else { b"0\n" })?;
                }
            }
            let mut c = ctx.cmd(place, &["mosquitto_pub".into()]);
            c.args(["-h", "127.0.0.1", "-p", &p, "-t", roles::TOPIC, "-l"])
                .stdin(std::fs::File::open(&lines)?);
            c
        }
        "e" => me(&["pub-bridge"]),
        "f" => {
            let mut c = me(&["pub-e2e"]);
            c.args(["--rate", &format!("{e2e_rate:.0}")]);
            c.args(["--sim-speed", &ctx.e2e_sim_speed.to_string()]);
            c.args(["--coalesce-count", &ctx.e2e_coalesce.0.to_string()]);
            c.args(["--coalesce-us", &ctx.e2e_coalesce.1.to_string()]);
            c.args(["--rt-priority", &ctx.e2e_rt_priority.to_string()]);
            if place == Place::Shared {
                // the simulated board's clock thread stands for the FPGA fabric, which
                // takes no cycles from the ARM cores: it goes to the other core
                c.args(["--fabric-cpu", "1"]);
            }
            c
        }
        "g" => me(&["pub-raw-qos1"]),
        "h" => me(&["pub-bridge", "--qos", "1"]),
        _ => unreachable!(),
    })
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn main(args: &BenchArgs, self_cmd: Vec<OsString>) -> Result<()> {
    let smoke = args.smoke;
    let n_fast = args.n.unwrap_or(if smoke { 20_000 } else { 1_000_000 });
    let n_slow = args.n_slow.unwrap_or(if smoke { 5_000 } else { 200_000 });
    let reps = args.reps.unwrap_or(if smoke { 1 } else { 3 }).max(1);
    let idle_secs = args.idle_secs.unwrap_or(if smoke { 0 } else { 60 });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let out = args.out.clone().unwrap_or_else(|| {
        if smoke {
            root.join("target/bench-smoke")
        } else {
            root.join("benches/results")
        }
    });
    std::fs::create_dir_all(&out)?;
    let tmp = std::env::temp_dir().join(format!("pynq-mqtt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let ctx = Ctx {
        self_cmd,
        root,
        tmp: tmp.clone(),
        e2e_sim_speed: args.e2e_sim_speed,
        e2e_coalesce: (args.e2e_coalesce_count, args.e2e_coalesce_us),
        e2e_rt_priority: args.e2e_rt_priority,
    };
    let places: Vec<Place> = args
        .placements
        .split(',')
        .map(|p| match p.trim() {
            "spread" => Ok(Place::Spread),
            "shared" => Ok(Place::Shared),
            o => Err(anyhow::anyhow!(
                "placement {o:?}: expected spread or shared"
            )),
        })
        .collect::<Result<_>>()?;
    let load_before = uptime();
    eprintln!("bench: N = {n_fast} (paho {n_slow}), {reps} reps, load {load_before}");

    let mut report = json!({
        "n": n_fast, "n_slow": n_slow, "reps": reps, "load_before": load_before,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "rate_definition": "delivered messages per second at an independent subscriber, first to last (Nth) delivered message",
        "placements": {},
    });
    let mut failures = Vec::new();
    let mut table = String::new();
    for &place in &places {
        let broker = start_broker(&ctx, place)?;
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); PEERS.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); PEERS.len()];
        for rep in 0..reps {
            let mut raw_rate: f64 = 0.0;
            for (i, (key, name)) in PEERS.iter().enumerate() {
                let n = if *key == "c" { n_slow } else { n_fast };
                let mut e2e_rate = args.e2e_fraction * raw_rate.max(1000.0);
                if smoke {
                    // the smoke run checks that it works, not its speed: a rate that a loaded machine keeps up with
                    e2e_rate = e2e_rate.min(20_000.0);
                }
                let cmd = peer_cmd(&ctx, place, key, broker.port, n, e2e_rate)?;
                let s = measure(&ctx, place, broker.port, n, cmd, 0)?;
                eprintln!(
                    "  {} rep {} ({key}) {name}: {:.0} msg/s, {} of {n} delivered{}",
                    place.name(),
                    rep + 1,
                    s.rate,
                    s.received,
                    if s.ok { "" } else { ", publisher FAILED" }
                );
                if *key == "a" {
                    raw_rate = s.rate;
                }
                if !s.ok || s.lost > 0 {
                    failures.push(format!(
                        "{} ({key}) {name}: ok={} lost={}",
                        place.name(),
                        s.ok,
                        s.lost
                    ));
                }
                samples[i].push(s);
            }
            for i in 0..PEERS.len() {
                let base = samples[0][rep].rate;
                let r = samples[i][rep].rate;
                ratios[i].push(if base > 0.0 { r / base } else { 0.0 });
            }
        }
        drop(broker);
        let _ = writeln!(
            table,
            "\n**{}** ({}):\n\n| | publisher | N | delivered msg/s (median) | / (a) | lost |\n|---|---|---|---|---|---|",
            place.name(),
            if place == Place::Spread { "no pinning, both cores" } else { "broker, publisher and subscriber on one core, `taskset -c 0`" }
        );
        let mut rows = Vec::new();
        for (i, (key, name)) in PEERS.iter().enumerate() {
            let rates: Vec<f64> = samples[i].iter().map(|s| s.rate).collect();
            let lost: u64 = samples[i].iter().map(|s| s.lost).sum();
            let n = if *key == "c" { n_slow } else { n_fast };
            let m = median(&rates);
            let r = median(&ratios[i]);
            let _ = writeln!(
                table,
                "| ({key}) | {name} | {n} | {m:.0} | {r:.3} | {lost} |"
            );
            rows.push(json!({
                "key": key, "name": name, "n": n, "rates": rates, "median_rate": m,
                "ratios_to_a": ratios[i], "median_ratio_to_a": r, "lost_total": lost,
                "publisher": samples[i].iter().map(|s| s.publisher.clone()).collect::<Vec<_>>(),
            }));
        }
        let q1: Vec<f64> = (0..reps)
            .map(|k| {
                let g = samples[6][k].rate;
                if g > 0.0 {
                    samples[7][k].rate / g
                } else {
                    0.0
                }
            })
            .collect();
        let _ = writeln!(table, "\nQoS1: (h) / (g) = {:.3} (median)", median(&q1));
        report["placements"][place.name()] =
            json!({"peers": rows, "qos1_ratio": median(&q1), "qos1_ratios": q1});
    }

    // into a discard sink: publisher rate (CONNECT to the last byte read)
    let _ = writeln!(table, "\n**into a discard sink** (spread; CONNECT to the last byte read):\n\n| | publisher | N | msg/s (median) | / (b) |\n|---|---|---|---|---|");
    let n_sink = if smoke { 200_000 } else { 2_000_000 };
    let mut sink_rows = Vec::new();
    let mut sink_rates = Vec::new();
    for key in ["a", "b", "e"] {
        let mut rates = Vec::new();
        for _ in 0..reps {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let mut p = peer_cmd(&ctx, Place::Spread, key, port, n_sink, 0.0)?
                .stdout(Stdio::null())
                .spawn()?;
            let mut button = 0u64;
            let r = roles::sink_one(&listener, |_, body| {
                if body.get(2..9) == Some(b"button/") {
                    button += 1;
                }
            })?;
            let st = p.wait()?;
            if button != n_sink || !st.success() {
                failures.push(format!(
                    "sink ({key}): {button} of {n_sink} ({} packets)",
                    r.publishes
                ));
            }
            rates.push(if r.secs > 0.0 {
                button as f64 / r.secs
            } else {
                0.0
            });
        }
        sink_rates.push(median(&rates));
        sink_rows.push(json!({"key": key, "rates": rates, "median_rate": median(&rates)}));
    }
    for (i, key) in ["a", "b", "e"].iter().enumerate() {
        let name = PEERS
            .iter()
            .find(|p| p.0 == *key)
            .map(|p| p.1)
            .unwrap_or("");
        let _ = writeln!(
            table,
            "| ({key}) | {name} | {n_sink} | {:.0} | {:.2} |",
            sink_rates[i],
            sink_rates[i] / sink_rates[1].max(1.0)
        );
    }
    report["sink"] = json!({"n": n_sink, "peers": sink_rows, "e_over_b": sink_rates[2] / sink_rates[1].max(1.0), "e_over_a": sink_rates[2] / sink_rates[0].max(1.0)});

    // instructions per published event: callgrind, difference of two runs into the sink
    if !args.no_callgrind && !smoke {
        match callgrind(&ctx) {
            Ok(v) => {
                let _ = writeln!(table, "\ninstructions per published event (callgrind, pynq-mqtt publisher incl. feeding the channel): {:.0}", v["per_event"].as_f64().unwrap_or(0.0));
                report["callgrind"] = v;
            }
            Err(e) => eprintln!("bench: callgrind skipped: {e:#}"),
        }
    }

    // latency from the channel to the socket
    {
        let secs = if smoke { "0.5" } else { "3" };
        let o = ctx
            .me(
                Place::Spread,
                &[
                    "latency".into(),
                    "--rate".into(),
                    "10000".into(),
                    "--secs".into(),
                    secs.into(),
                ],
            )
            .output()?;
        let v: Value = serde_json::from_slice(o.stdout.trim_ascii()).unwrap_or(Value::Null);
        let _ = writeln!(table, "\nlatency channel → socket read (10k events/s, loopback sink): p50 {} µs, p99 {} µs, max {} µs", v["p50_us"], v["p99_us"], v["max_us"]);
        if v["events"].as_u64().unwrap_or(0) == 0 {
            failures.push("latency: no events".into());
        }
        report["latency"] = v;
    }

    // peak RSS at full rate: the publisher processes of (e) and (f)
    let hwm = |place: &str, key: &str| -> u64 {
        report["placements"][place]["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["key"] == key)
            .flat_map(|r| r["publisher"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["vm_hwm_kib"].as_u64())
            .max()
            .unwrap_or(0)
    };
    let (he, hf) = places.iter().fold((0, 0), |(a, b), p| {
        (a.max(hwm(p.name(), "e")), b.max(hwm(p.name(), "f")))
    });
    let _ = writeln!(table, "\npeak RSS at full rate: publisher (e) {:.1} MiB, end to end (f, incl. the Verilated board) {:.1} MiB", he as f64 / 1024.0, hf as f64 / 1024.0);
    report["peak_rss_kib"] = json!({"e": he, "f": hf});

    if idle_secs > 0 {
        match idle_cpu(&ctx, args, idle_secs) {
            Ok(v) => {
                let _ = writeln!(table, "\nidle CPU of the daemon over {idle_secs} s: {:.3} % (its own threads; the simulated board's clock thread: {:.2} %); peak RSS {:.1} MiB",
                    v["daemon_pct"].as_f64().unwrap_or(0.0), v["sim_pct"].as_f64().unwrap_or(0.0), v["vm_hwm_kib"].as_f64().unwrap_or(0.0) / 1024.0);
                report["idle"] = v;
            }
            Err(e) => eprintln!("bench: idle CPU skipped: {e:#}"),
        }
    }

    if !args.no_sweep && !smoke {
        report["sweep"] = sweep(&ctx, &places, reps, n_fast.min(300_000))?;
    }

    let load_after = uptime();
    report["load_after"] = json!(load_after);
    report["failures"] = json!(failures);
    let head = format!("load average before {load_before}, after {load_after}; N = {n_fast} (paho {n_slow}); medians of {reps}\n");
    table = head + &table;
    println!("{table}");
    std::fs::write(out.join("table.md"), &table)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    eprintln!("bench: wrote {}", out.join("results.json").display());
    let _ = std::fs::remove_dir_all(&tmp);
    if !failures.is_empty() {
        bail!("losses or failed peers:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

use std::fmt::Write as _;

fn callgrind(ctx: &Ctx) -> Result<Value> {
    let mut ir = Vec::new();
    let ns = [100_000u64, 300_000];
    for n in ns {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let f = ctx.tmp.join(format!("callgrind.{n}"));
        let mut c = Command::new("valgrind");
        c.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", f.display()))
            .args(&ctx.self_cmd)
            .args([
                "pub-bridge",
                "--port",
                &port.to_string(),
                "--n",
                &n.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut p = c.spawn().context("valgrind")?;
        roles::sink_one(&listener, |_, _| {})?;
        p.wait()?;
        let text = std::fs::read_to_string(&f)?;
        let total: u64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("summary: ")
                    .or_else(|| l.strip_prefix("totals: "))
            })
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .context("no summary in the callgrind output")?;
        ir.push(total);
    }
    let per = (ir[1] - ir[0]) as f64 / (ns[1] - ns[0]) as f64;
    Ok(json!({"ns": ns, "ir": ir, "per_event": per}))
}

fn ticks(pid: u32) -> Result<(u64, u64)> {
    let (mut own, mut sim) = (0, 0);
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let t = t?.path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.join("stat"))?;
        let v = roles::stat_cpu_ticks(&stat).context("unreadable /proc stat")?;
        if comm.trim() == "sim-clock" {
            sim += v;
        } else {
            own += v;
        }
    }
    Ok((own, sim))
}

fn idle_cpu(ctx: &Ctx, args: &BenchArgs, secs: u64) -> Result<Value> {
    let daemon = args.daemon.clone().unwrap_or_else(|| {
        let me = PathBuf::from(&ctx.self_cmd[0]);
        me.parent().unwrap_or(Path::new(".")).join("pynq-mqtt")
    });
    let broker = start_broker(ctx, Place::Spread)?;
    let mut d = Command::new(&daemon)
        .args([
            "run",
            "--board",
            "sim",
            "--broker",
            &format!("mqtt://127.0.0.1:{}", broker.port),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", daemon.display()))?;
    std::thread::sleep(Duration::from_secs(3));
    let (o0, s0) = ticks(d.id())?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (o1, s1) = ticks(d.id())?;
    let wall = t0.elapsed().as_secs_f64();
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", d.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let _ = Command::new("kill")
        .args(["-TERM", &d.id().to_string()])
        .status();
    let _ = d.wait();
    let hz = 100.0; // USER_HZ on Linux
    Ok(
        json!({"secs": wall, "daemon_pct": (o1 - o0) as f64 / hz / wall * 100.0,
              "sim_pct": (s1 - s0) as f64 / hz / wall * 100.0, "vm_hwm_kib": hwm}),
    )
}

/// Delivered rate of the raw publisher against packets per write, beside rumqttc (one
/// packet per write) and pynq-mqtt's publisher (batches of up to 64 KiB).
fn sweep(ctx: &Ctx, places: &[Place], reps: usize, n: u64) -> Result<Value> {
    let batches = [1usize, 4, 16, 64, 256, 1024, 5041];
    let mut out = json!({"n": n, "batches": batches});
    for &place in places {
        let broker = start_broker(ctx, place)?;
        let mut raw = Vec::new();
        for b in batches {
            let mut rates = Vec::new();
            for _ in 0..reps {
                let mut c = ctx.me(
                    place,
                    &[
                        "pub-raw".into(),
                        "--port".into(),
                        broker.port.to_string(),
                        "--n".into(),
                        n.to_string(),
                        "--batch".into(),
                        b.to_string(),
                    ],
                );
                c.stdout(Stdio::null());
                rates.push(measure(ctx, place, broker.port, n, c, 0)?.rate);
            }
            eprintln!("  sweep {} batch {b}: {:.0}", place.name(), median(&rates));
            raw.push(median(&rates));
        }
        let mut refs = json!({});
        for key in ["b", "e"] {
            let mut rates = Vec::new();
            for _ in 0..reps {
                let c = peer_cmd(ctx, place, key, broker.port, n, 0.0)?;
                rates.push(measure(ctx, place, broker.port, n, c, 0)?.rate);
            }
            refs[key] = json!(median(&rates));
        }
        out[place.name()] = json!({"raw": raw, "rumqttc": refs["b"], "pynq_mqtt": refs["e"]});
    }
    Ok(out)
}
