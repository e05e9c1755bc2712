//! Starting the processes of a run: the checkout's scripts, a fresh mosquitto, the
//! independent subscriber and a peer of the table, each placed (`taskset -c 0` when
//! shared); one run's sample.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::peers::{Launch, Peer, Place};
use crate::report::{Delivered, PeakOf, RunCost};
use crate::roles;

pub struct Ctx {
    pub self_cmd: Vec<OsString>,
    pub root: PathBuf,
    pub tmp: PathBuf,
    /// Simulated seconds per wall second of the end-to-end run's board.
    pub e2e_sim_speed: f64,
    /// Its driver's interrupt coalescing (count, µs).
    pub e2e_coalesce: (u16, u32),
    /// Its driver's real-time priority.
    pub e2e_rt_priority: u8,
}

impl Ctx {
    /// A command placed: under `taskset -c 0` when shared.
    pub fn cmd(&self, place: Place, prog: &[OsString]) -> Command {
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
    pub fn me(&self, place: Place, args: &[String]) -> Command {
        let mut c = self.cmd(place, &self.self_cmd);
        c.args(args);
        c
    }
}

pub struct Broker {
    child: Child,
    pub port: u16,
    /// The broker's drop counter as last seen. mosquitto publishes a `$SYS` value
    /// (retained, expiring after 60 s) only when it changes: a subscriber that sees
    /// none knows it is unchanged since then.
    dropped: std::cell::Cell<Option<u64>>,
}

impl Broker {
    /// The broker's CPU seconds so far (mosquitto is one thread).
    pub fn cpu_secs(&self) -> Option<f64> {
        roles::task_cpu_secs(Path::new(&format!("/proc/{}", self.child.id())))
    }
}

/// Steal time of each CPU so far, ms (`/proc/stat`, in its 100 Hz ticks).
fn steal_ms() -> Vec<u64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| l.split_whitespace().nth(8)?.parse::<u64>().ok())
        .map(|ticks| ticks * 10)
        .collect()
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

pub fn start_broker(ctx: &Ctx, place: Place) -> Result<Broker> {
    let port = free_port()?;
    let conf = ctx.tmp.join(format!("mosquitto-{}.conf", place.name()));
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_queued_bytes 0\nlog_dest none\nsys_interval 1\n"
        ),
    )?;
    let child = ctx
        .cmd(place, &["mosquitto".into(), "-c".into(), conf.into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start mosquitto (apt-get install mosquitto)")?;
    let b = Broker {
        child,
        port,
        dropped: std::cell::Cell::new(None),
    };
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
/// JSON lines. The subscriber hears when the publisher has exited, and only then stops
/// on a quiet line: a publisher that stalls is waited for, not counted as lossy.
pub fn measure(
    ctx: &Ctx,
    place: Place,
    broker: &Broker,
    n: u64,
    publisher: Command,
    sub_qos: u8,
) -> Result<Sample> {
    let mut args: Vec<String> = vec![
        "sub".into(),
        "--port".into(),
        broker.port.to_string(),
        "--n".into(),
        n.to_string(),
        "--qos".into(),
        sub_qos.to_string(),
    ];
    if let Some(b) = broker.dropped.get() {
        args.extend(["--dropped-baseline".into(), b.to_string()]);
    }
    let mut sub = ctx
        .me(place, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut sub_in = sub.stdin.take();
    let mut lines = BufReader::new(sub.stdout.take().expect("piped")).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => bail!("subscriber did not start: {other:?}"),
    }
    let (broker_before, steal_before) = (broker.cpu_secs(), steal_ms());
    let mut publisher = publisher;
    let mut p = publisher
        .stdout(Stdio::piped())
        .spawn()
        .context("start publisher")?;
    let (line_tx, line_rx) = crossbeam_channel::bounded(1);
    let reader = std::thread::spawn(move || {
        let _ = line_tx.send(lines.next().transpose().ok().flatten().unwrap_or_default());
    });
    let mut status = None;
    let mut sub_line = None;
    // once the subscriber is done, the publisher has delivered what it will: give it
    // a moment to exit cleanly
    let mut sub_done_at = None::<Instant>;
    loop {
        if status.is_none() {
            if let Some(s) = p.try_wait()? {
                status = Some(Some(s));
                // the publisher is done: the subscriber may stop once the line is quiet
                if let Some(mut w) = sub_in.take() {
                    let _ = w.write_all(b"done\n");
                }
            }
        }
        if sub_line.is_none() {
            if let Ok(l) = line_rx.try_recv() {
                sub_line = Some(l);
                sub_done_at = Some(Instant::now());
            }
        }
        if status.is_some() && sub_line.is_some() {
            break;
        }
        if status.is_none() && sub_done_at.is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            let _ = p.kill();
            let _ = p.wait();
            status = Some(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let cost = RunCost {
        broker_cpu_secs: broker.cpu_secs().zip(broker_before).map(|(b, a)| b - a),
        steal_ms: steal_ms()
            .iter()
            .zip(&steal_before)
            .map(|(b, a)| b.saturating_sub(*a))
            .collect(),
    };
    drop(sub_in);
    let _ = sub.wait();
    let _ = reader.join();
    let status = status.flatten();
    let sub_line = sub_line.unwrap_or_default();
    let mut pub_out = String::new();
    std::io::Read::read_to_string(&mut p.stdout.take().expect("piped"), &mut pub_out)?;
    let d: Delivered = serde_json::from_str(&sub_line).unwrap_or(Delivered {
        received: 0,
        secs: 0.0,
        rate: 0.0,
        ended: "no line".into(),
        max_gap_ms: 0.0,
        broker_dropped: None,
        broker_dropped_total: None,
    });
    if d.broker_dropped_total.is_some() {
        broker.dropped.set(d.broker_dropped_total);
    }
    let publisher: Value = pub_out
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Ok(Sample {
        rate: d.rate,
        received: d.received,
        lost: n.saturating_sub(d.received),
        ok: status.is_some_and(|s| s.success()),
        vm_hwm_kib: serde_json::from_value::<PeakOf>(publisher.clone())
            .ok()
            .and_then(|p| p.vm_hwm_kib),
        publisher,
        subscriber: d,
        cost,
    })
}

pub struct Sample {
    pub rate: f64,
    pub received: u64,
    pub lost: u64,
    pub ok: bool,
    /// The publisher's own line, kept as it printed it (each peer reports its own).
    pub publisher: Value,
    /// Its peak RSS, when it reported one.
    pub vm_hwm_kib: Option<u64>,
    /// The subscriber's line: why it stopped, its longest gap, the broker's drops.
    pub subscriber: Delivered,
    /// The broker's CPU and the steal time over the run.
    pub cost: RunCost,
}

pub fn peer_cmd(
    ctx: &Ctx,
    place: Place,
    peer: &Peer,
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
    Ok(match peer.launch {
        Launch::Role(role) => me(role),
        Launch::PahoSeed => {
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
        Launch::MosquittoPub => {
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
        Launch::EndToEnd | Launch::EndToEndLoaded => {
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
    })
}

/// The checkout the bench runs in: `--root`, else the first directory holding
/// `Cargo.toml` and `benches/paho_seed.py` above the current directory, else above
/// this executable (`target/<profile>/`).
pub fn find_root(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(r) = given {
        return r
            .canonicalize()
            .with_context(|| format!("--root {}", r.display()));
    }
    let is_root =
        |d: &Path| d.join("Cargo.toml").is_file() && d.join("benches/paho_seed.py").is_file();
    let cwd = std::env::current_dir().context("current directory")?;
    let exe = std::env::current_exe().context("own executable")?;
    let found = [cwd.as_path(), exe.as_path()]
        .into_iter()
        .find_map(|start| {
            start
                .ancestors()
                .find(|d| is_root(d))
                .map(Path::to_path_buf)
        });
    found.with_context(|| {
            format!(
                "no pynq-mqtt checkout (Cargo.toml and benches/) above {} or {}: run from the checkout or pass --root",
                cwd.display(),
                exe.display()
            )
        })
}
