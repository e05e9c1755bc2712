//! The whole benchmark: a fresh mosquitto per placement, every peer of the table
//! (`peers.rs`) against it with the independent subscriber, repeated; then the sink,
//! callgrind, idle CPU, latency and the batch-size sweep. Results: the typed report
//! (`report.rs`) as `results.json`, and its table on stdout and in `table.md`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::launch::{find_root, measure, peer_cmd, start_broker, Ctx, Sample};
use crate::peers::{
    self, Accounting, Launch, Peer, PeerId, Place, Size, BASELINE, PEERS, SINK_BASELINE,
};
use crate::report::{
    median, Callgrind, Idle, Latency, PeakRss, PeerReport, PlacementReport, Report, SinkPeer,
    SinkReport, Sweep, SweepPlace, RATE_DEFINITION,
};
use crate::roles;
use crate::BenchArgs;
fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The peers' runs against the broker in one placement, every rep.
fn run_placement(
    ctx: &Ctx,
    args: &BenchArgs,
    place: Place,
    sizes: (u64, u64),
    reps: usize,
    failures: &mut Vec<String>,
) -> Result<(PlacementReport, BTreeMap<PeerId, Vec<Sample>>)> {
    let peers: Vec<&Peer> = PEERS
        .iter()
        .filter(|p| p.placements.contains(&place))
        .collect();
    let n_of = |p: &Peer| match p.size {
        Size::Fast => sizes.0,
        Size::Slow => sizes.1,
    };
    let broker = start_broker(ctx, place)?;
    let mut samples: BTreeMap<PeerId, Vec<Sample>> = BTreeMap::new();
    let mut accountings: BTreeMap<PeerId, Vec<Accounting>> = BTreeMap::new();
    for rep in 0..reps {
        let mut raw_rate: f64 = 0.0;
        for peer in &peers {
            let (key, name, n) = (peer.key, peer.name, n_of(peer));
            let mut e2e_rate = args.e2e_fraction * raw_rate.max(1000.0);
            if args.smoke {
                // the smoke run checks that it works, not its speed: a rate that a loaded machine keeps up with
                e2e_rate = e2e_rate.min(20_000.0);
            }
            let cmd = peer_cmd(ctx, place, peer, broker.port, n, e2e_rate)?;
            let burner = match peer.launch {
                Launch::EndToEndLoaded => Some(Burner::start(ctx, place)?),
                _ => None,
            };
            let s = measure(ctx, place, &broker, n, cmd, 0)?;
            drop(burner);
            let accounting = matches!(peer.launch, Launch::EndToEnd | Launch::EndToEndLoaded)
                .then(|| Accounting::of(n, s.received, &s.publisher, s.subscriber.broker_dropped));
            eprintln!(
                "  {} rep {} ({key}) {name}: {:.0} msg/s, {} of {n} delivered{}",
                place.name(),
                rep + 1,
                s.rate,
                s.received,
                if s.ok { "" } else { ", publisher FAILED" }
            );
            if peer.id == BASELINE {
                raw_rate = s.rate;
            }
            // beside a busy core a loss is expected, but every one must be counted
            let failed = match (&peer.launch, &accounting) {
                (Launch::EndToEndLoaded, Some(a)) => a.unaccounted > 0,
                _ => s.lost > 0,
            };
            if !s.ok || failed {
                let d = &s.subscriber;
                failures.push(format!(
                    "{} ({key}) {name}: ok={} lost={} (subscriber stopped: {}; longest gap {:.0} ms; broker dropped {}){}",
                    place.name(),
                    s.ok,
                    s.lost,
                    d.ended,
                    d.max_gap_ms,
                    d.broker_dropped.map_or("unknown".into(), |n| n.to_string()),
                    accounting.as_ref().map_or(String::new(), |a| format!("; {a:?}"))
                ));
            }
            if let Some(a) = accounting {
                accountings.entry(peer.id).or_default().push(a);
            }
            samples.entry(peer.id).or_default().push(s);
        }
    }
    drop(broker);
    // per rep, one peer's rate over another's of the same rep
    let ratios = |num: PeerId, den: PeerId| -> Vec<f64> {
        let (num, den) = (&samples[&num], &samples[&den]);
        num.iter()
            .zip(den)
            .map(|(n, d)| if d.rate > 0.0 { n.rate / d.rate } else { 0.0 })
            .collect()
    };
    let rows = peers
        .iter()
        .map(|peer| {
            let s = &samples[&peer.id];
            let rates: Vec<f64> = s.iter().map(|s| s.rate).collect();
            let r = ratios(peer.id, BASELINE);
            PeerReport {
                key: peer.key,
                name: peer.name,
                n: n_of(peer),
                median_rate: median(&rates),
                rates,
                median_ratio_to_a: median(&r),
                ratios_to_a: r,
                lost_total: s.iter().map(|s| s.lost).sum(),
                subscriber: s.iter().map(|s| s.subscriber.clone()).collect(),
                accounting: accountings.get(&peer.id).cloned().unwrap_or_default(),
                publisher: s.iter().map(|s| s.publisher.clone()).collect(),
                cost: s.iter().map(|s| s.cost.clone()).collect(),
            }
        })
        .collect();
    let (compared, with) = peers
        .iter()
        .find_map(|p| Some((p, p.compared_with?)))
        .context("no peer is compared with another")?;
    let q1 = ratios(compared.id, with);
    Ok((
        PlacementReport {
            peers: rows,
            compared: (compared.key, peers::peer(with).key),
            qos1_ratio: median(&q1),
            qos1_ratios: q1,
        },
        samples,
    ))
}

/// The `burn` role in a placement, killed when dropped.
struct Burner(std::process::Child);

impl Burner {
    fn start(ctx: &Ctx, place: Place) -> Result<Self> {
        let c = ctx
            .me(place, &["burn".into()])
            .stdout(Stdio::null())
            .spawn()
            .context("start the CPU-bound loop")?;
        Ok(Self(c))
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Into a discard sink: publisher rate (CONNECT to the last byte read).
fn run_sink(ctx: &Ctx, n: u64, reps: usize, failures: &mut Vec<String>) -> Result<SinkReport> {
    let mut rows = Vec::new();
    for peer in PEERS.iter().filter(|p| p.in_sink) {
        let key = peer.key;
        let mut rates = Vec::new();
        for _ in 0..reps {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let mut p = peer_cmd(ctx, Place::Spread, peer, port, n, 0.0)?
                .stdout(Stdio::null())
                .spawn()?;
            let mut button = 0u64;
            let r = roles::sink_one(&listener, |_, body| {
                if body.get(2..9) == Some(b"button/") {
                    button += 1;
                }
            })?;
            let st = p.wait()?;
            if button != n || !st.success() {
                failures.push(format!(
                    "sink ({key}): {button} of {n} ({} packets)",
                    r.publishes
                ));
            }
            rates.push(if r.secs > 0.0 {
                button as f64 / r.secs
            } else {
                0.0
            });
        }
        rows.push((
            peer.id,
            SinkPeer {
                key,
                name: peer.name,
                median_rate: median(&rates),
                rates,
                ratio: 0.0,
            },
        ));
    }
    let rate = |id: PeerId| {
        rows.iter()
            .find(|(i, _)| *i == id)
            .map_or(0.0, |(_, r)| r.median_rate)
    };
    let base = rate(SINK_BASELINE).max(1.0);
    let report = SinkReport {
        n,
        e_over_b: rate(PeerId::Bridge) / base,
        e_over_a: rate(PeerId::Bridge) / rate(PeerId::Raw).max(1.0),
        peers: rows
            .into_iter()
            .map(|(_, mut r)| {
                r.ratio = r.median_rate / base;
                r
            })
            .collect(),
    };
    Ok(report)
}

pub fn main(args: &BenchArgs) -> Result<()> {
    let smoke = args.smoke;
    let n_fast = args.n.unwrap_or(if smoke { 20_000 } else { 1_000_000 });
    let n_slow = args.n_slow.unwrap_or(if smoke { 5_000 } else { 200_000 });
    let reps = args.reps.unwrap_or(if smoke { 1 } else { 3 }).max(1);
    let idle_secs = args.idle_secs.unwrap_or(if smoke { 0 } else { 60 });
    let root = find_root(args.root.as_deref())?;
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
        self_cmd: vec![std::env::current_exe().context("own executable")?.into()],
        root,
        tmp: tmp.clone(),
        e2e_sim_speed: args.e2e_sim_speed,
        e2e_coalesce: (args.e2e_coalesce_count, args.e2e_coalesce_us),
        e2e_rt_priority: args.e2e_rt_priority,
    };
    if args.idle_only {
        // the daemon's idle CPU alone (issue 17's 0.1 % target), without the rest
        let i = idle_cpu(&ctx, args, idle_secs.max(1))?;
        println!("{}", serde_json::to_string(&i)?);
        eprintln!(
            "idle CPU of the daemon over {:.0} s: {:.3} % (its own threads; the simulated board's clock thread: {:.2} %)",
            i.secs, i.daemon_pct, i.sim_pct
        );
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(());
    }
    let places: Vec<Place> = args
        .placements
        .split(',')
        .map(|p| Place::parse(p.trim()))
        .collect::<Result<_>>()?;
    let load_before = uptime();
    eprintln!("bench: N = {n_fast} (paho {n_slow}), {reps} reps, load {load_before}");

    let mut failures = Vec::new();
    let mut placements = BTreeMap::new();
    let mut peak_rss = PeakRss { e: 0, f: 0 };
    for &place in &places {
        let (report, samples) =
            run_placement(&ctx, args, place, (n_fast, n_slow), reps, &mut failures)?;
        // peak RSS at full rate: the publisher processes of (e) and (f)
        let hwm = |id: PeerId| {
            samples
                .get(&id)
                .into_iter()
                .flatten()
                .filter_map(|s| s.vm_hwm_kib)
                .max()
                .unwrap_or(0)
        };
        peak_rss.e = peak_rss.e.max(hwm(PeerId::Bridge));
        peak_rss.f = peak_rss.f.max(hwm(PeerId::EndToEnd));
        placements.insert(place, report);
    }

    let sink = run_sink(
        &ctx,
        if smoke { 200_000 } else { 2_000_000 },
        reps,
        &mut failures,
    )?;

    // instructions per published event: callgrind, difference of two runs into the sink
    let callgrind = if !args.no_callgrind && !smoke {
        callgrind(&ctx)
            .map_err(|e| eprintln!("bench: callgrind skipped: {e:#}"))
            .ok()
    } else {
        None
    };

    // latency from the channel to the socket
    let latency = {
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
        let l: Option<Latency> = serde_json::from_slice(o.stdout.trim_ascii()).ok();
        if l.as_ref().map_or(0, |l| l.events) == 0 {
            failures.push("latency: no events".into());
        }
        l
    };

    // pin to subscriber: its own tables beside the report (pin-latency.{md,json})
    {
        let (rates, secs) = if smoke {
            ("1000", "0.5")
        } else {
            // 600 edges at 10/s: a p99 that is not the second-worst of 100
            ("10,1000,10000", "60,5,2")
        };
        let json = out.join("pin-latency.json");
        // a full run also measures spread with the simulated fabric kept off the core
        // the bridge wakes on, to show what of spread's latency is the simulator's
        let mut pin_placements = args.placements.clone();
        if !smoke && args.placements.split(',').any(|p| p.trim() == "spread") {
            pin_placements += ",spread-fabric-cpu1";
        }
        let mut args = vec![
            "--root".to_string(),
            ctx.root.display().to_string(),
            "pin-latency".into(),
            "--rates".into(),
            rates.into(),
            "--secs".into(),
            secs.into(),
            "--placements".into(),
            pin_placements,
            "--json".into(),
            json.display().to_string(),
        ];
        if smoke {
            args.extend(["--publishers".into(), "default,seed".into()]);
        }
        let o = ctx.me(Place::Spread, &args).output()?;
        std::fs::write(out.join("pin-latency.md"), &o.stdout)?;
        if !o.status.success() {
            failures.push(format!(
                "pin-latency: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            ));
        }
    }

    let idle = if idle_secs > 0 {
        idle_cpu(&ctx, args, idle_secs)
            .map_err(|e| eprintln!("bench: idle CPU skipped: {e:#}"))
            .ok()
    } else {
        None
    };

    let sweep = if !args.no_sweep && !smoke {
        Some(sweep(&ctx, &places, reps, n_fast.min(300_000))?)
    } else {
        None
    };

    let report = Report {
        n: n_fast,
        n_slow,
        reps,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        rate_definition: RATE_DEFINITION,
        load_before,
        load_after: uptime(),
        placements,
        sink,
        callgrind,
        latency,
        peak_rss_kib: peak_rss,
        idle,
        sweep,
        failures,
    };
    let table = report.table();
    println!("{table}");
    std::fs::write(out.join("table.md"), &table)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    eprintln!("bench: wrote {}", out.join("results.json").display());
    let _ = std::fs::remove_dir_all(&tmp);
    if !report.failures.is_empty() {
        bail!(
            "losses or failed peers:\n  {}",
            report.failures.join("\n  ")
        );
    }
    Ok(())
}

fn callgrind(ctx: &Ctx) -> Result<Callgrind> {
    let ns = [100_000u64, 300_000];
    let mut ir = [0u64; 2];
    for (n, ir) in ns.into_iter().zip(&mut ir) {
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
        *ir = total;
    }
    let per = (ir[1] - ir[0]) as f64 / (ns[1] - ns[0]) as f64;
    Ok(Callgrind {
        ns,
        ir,
        per_event: per,
    })
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

fn idle_cpu(ctx: &Ctx, args: &BenchArgs, secs: u64) -> Result<Idle> {
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
    Ok(Idle {
        secs: wall,
        daemon_pct: (o1 - o0) as f64 / hz / wall * 100.0,
        sim_pct: (s1 - s0) as f64 / hz / wall * 100.0,
        vm_hwm_kib: hwm,
    })
}

/// Delivered rate of the raw publisher against packets per write, beside rumqttc (one
/// packet per write) and pynq-mqtt's publisher (batches of up to 64 KiB).
fn sweep(ctx: &Ctx, places: &[Place], reps: usize, n: u64) -> Result<Sweep> {
    let batches = [1usize, 4, 16, 64, 256, 1024, 5041];
    let mut out = BTreeMap::new();
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
                rates.push(measure(ctx, place, &broker, n, c, 0)?.rate);
            }
            eprintln!("  sweep {} batch {b}: {:.0}", place.name(), median(&rates));
            raw.push(median(&rates));
        }
        let beside = |id: PeerId| -> Result<f64> {
            let mut rates = Vec::new();
            for _ in 0..reps {
                let c = peer_cmd(ctx, place, peers::peer(id), broker.port, n, 0.0)?;
                rates.push(measure(ctx, place, &broker, n, c, 0)?.rate);
            }
            Ok(median(&rates))
        };
        let rumqttc = beside(PeerId::Rumqttc)?;
        let pynq_mqtt = beside(PeerId::Bridge)?;
        out.insert(
            place,
            SweepPlace {
                raw,
                rumqttc,
                pynq_mqtt,
            },
        );
    }
    Ok(Sweep {
        n,
        batches: batches.to_vec(),
        places: out,
    })
}
