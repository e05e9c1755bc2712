//! pynq-mqtt benchmarks: delivered messages per second at an independent subscriber,
//! pynq-mqtt side by side with real peers against the same freshly started mosquitto,
//! in two placements (spread over the cores, and everything on one core as on the
//! board), reported as ratios against pre-encoded raw writes, medians of every rep.
//! See `benches/README.md`.
#![forbid(unsafe_code)]

mod harness;
mod launch;
mod peers;
pub mod pin_latency;
mod publish_rate;
mod report;
mod roles;
mod wire;

use std::time::Duration;

use anyhow::Result;

/// `pynq-mqtt-bench` (or `pynq-mqtt bench`): without a role, the whole benchmark.
#[derive(clap::Parser, Debug)]
#[command(
    name = "pynq-mqtt-bench",
    about = "Publish-rate and end-to-end benchmarks"
)]
pub struct BenchArgs {
    /// A small run of everything that asserts that each peer ran and nothing was lost.
    #[arg(long)]
    pub smoke: bool,
    /// Messages per run for the fast peers (default 1000000; smoke 20000).
    #[arg(long)]
    pub n: Option<u64>,
    /// Messages per run for the seed's paho-mqtt loop (default 200000; smoke 5000).
    #[arg(long)]
    pub n_slow: Option<u64>,
    /// Repetitions; every figure is the median (default 3; smoke 1).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Placements: `spread`, `shared` or both, comma-separated.
    #[arg(long, default_value = "spread,shared")]
    pub placements: String,
    /// Generator rate of the end-to-end run as a fraction of the raw ceiling measured
    /// just before it in the same placement.
    #[arg(long, default_value_t = 0.95)]
    pub e2e_fraction: f64,
    /// The most simulated seconds per wall second of the end-to-end run's board (its
    /// model is built at 1 MHz; the board's fabric runs at 100 MHz), the same in both
    /// placements. The run's speed is the one at or below it that gives the generator's
    /// rate exactly with a whole period of clocks (reported as `sim_speed`). At 1.0 the
    /// simulated AXI reads (about 4 clocks per event) would cap the drain near 250k
    /// events/s, a limit of the simulation, not of the board.
    #[arg(long, default_value_t = 3.0)]
    pub e2e_sim_speed: f64,
    /// Interrupt coalescing of the end-to-end run's driver (the daemon's
    /// `--coalesce-count`): an interrupt per this many events... Half the default
    /// 512-event FIFO: the other half is the room for the interrupt's latency (about
    /// 700 µs at 0.95 × (a)). Measured 2026-12-03, 3 reps each: 64 / 200 lost 530 and
    /// 1,094 events to the FIFO spread and delivered 0.77 M shared; 256 / 1000 lost
    /// none spread and delivered 0.85 M shared.
    #[arg(long, default_value_t = 256)]
    pub e2e_coalesce_count: u16,
    /// ...or once the oldest waiting event is this old, in simulated µs (`--coalesce-us`).
    #[arg(long, default_value_t = 1000)]
    pub e2e_coalesce_us: u32,
    /// Real-time priority of its event drain, as the installed board config sets it
    /// (`rt_priority`; 0: normal scheduling).
    #[arg(long, default_value_t = 10)]
    pub e2e_rt_priority: u8,
    /// Seconds of the daemon's idle-CPU measurement (0 skips it; default 60; smoke 0).
    #[arg(long)]
    pub idle_secs: Option<u64>,
    /// Only the daemon's idle-CPU measurement (`--idle-secs`, default 60), printed as
    /// one JSON line; nothing else runs and no result file is written.
    #[arg(long)]
    pub idle_only: bool,
    /// Skip the callgrind instruction count.
    #[arg(long)]
    pub no_callgrind: bool,
    /// Skip the batch-size sweep (the plot's data).
    #[arg(long)]
    pub no_sweep: bool,
    /// The checkout whose scripts the bench runs (default: the first directory holding
    /// Cargo.toml and benches/ above the current directory, else above this program).
    #[arg(long)]
    pub root: Option<std::path::PathBuf>,
    /// Where results.json and table.md go (default <checkout>/benches/results; smoke
    /// <checkout>/target/bench-smoke).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// The `pynq-mqtt` binary for the idle-CPU run (default: beside this one).
    #[arg(long)]
    pub daemon: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub role: Option<Role>,
}

/// The processes the harness starts (hidden), and the bridge's design measurement.
#[derive(clap::Subcommand, Debug)]
pub enum Role {
    /// The figures the bridge's design was chosen on (host/README.md): one publisher
    /// into a discard sink or through a broker; fails when a message is lost.
    PublishRate {
        publisher: publish_rate::Publisher,
        /// `discard`, or `broker:PORT` (a broker on 127.0.0.1).
        #[arg(default_value = "discard")]
        sink: publish_rate::Sink,
        #[arg(default_value_t = 1_000_000)]
        n: u64,
        /// 0 or 1 (2 for the bridge only).
        #[arg(default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
        qos: u8,
        /// The bridge's in-flight window at QoS 1/2 (default: the daemon's default), to
        /// weigh a window that fits a broker's default limits against a large one.
        #[arg(long)]
        max_inflight: Option<usize>,
        /// The bridge's MQTT version: `3.1.1` or `5` (topic aliases when the broker
        /// takes them; the line then says the bytes per message of each).
        #[arg(long, default_value = "3.1.1")]
        protocol: pynq_mqtt_bridge::Protocol,
    },
    /// Latency from a button pin of the simulated board (real time) to an independent
    /// subscriber through a fresh mosquitto: p50/p99/p99.9/max per rate, pynq-mqtt with
    /// the default interrupt settings and with coalescing (split at FIFO pop and socket
    /// write), and the seed notebook's paho loop fed the same stimulus; per placement.
    PinLatency {
        /// Events per second, comma-separated.
        #[arg(long, default_value = "10,1000,10000", value_delimiter = ',')]
        rates: Vec<f64>,
        /// Seconds per rate, comma-separated (the last one repeats).
        #[arg(long, default_value = "30,10,5", value_delimiter = ',')]
        secs: Vec<f64>,
        /// `spread`, `shared`, `spread-fabric-cpu1` (spread with the simulated
        /// fabric's threads on CPU 1), comma-separated.
        #[arg(long, default_value = "spread,shared")]
        placements: String,
        /// `default`, `coalesce`, `seed`, comma-separated.
        #[arg(long, default_value = "default,coalesce,seed")]
        publishers: String,
        /// Drive the pin from a thread calling `SimBoard::set_input` at the rate (each
        /// call stamped) instead of the simulator's stimulus replay; on this simulator
        /// edges about 1 ms apart or closer then merge in the model (counted lost).
        #[arg(long)]
        thread_driver: bool,
        /// Also write the cases as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    #[command(hide = true)]
    PinLatencyBoard {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        publisher: String,
        #[arg(long, default_value_t = 1)]
        coalesce_count: u16,
        #[arg(long, default_value_t = 0)]
        coalesce_us: u32,
        #[arg(long)]
        fabric_cpu: Option<usize>,
        #[arg(long)]
        python: Option<String>,
        #[arg(long)]
        script: Option<String>,
        #[arg(long)]
        pins: Option<String>,
        #[arg(long)]
        thread_driver: bool,
    },
    #[command(hide = true)]
    PinLatencySub {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
    },
    #[command(hide = true)]
    Sub {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 0)]
        qos: u8,
        #[arg(long, default_value_t = 3000)]
        idle_ms: u64,
        /// The broker's drop counter as last seen by the harness: a value this
        /// subscriber does not see has not changed since.
        #[arg(long)]
        dropped_baseline: Option<u64>,
    },
    #[command(hide = true)]
    PubRaw {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
        #[arg(long)]
        batch: Option<usize>,
    },
    #[command(hide = true)]
    PubRawQos1 {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 1024)]
        window: u64,
    },
    #[command(hide = true)]
    PubRumqttc {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
    },
    #[command(hide = true)]
    PubBridge {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 0)]
        qos: u8,
        #[arg(long, default_value = "3.1.1")]
        protocol: pynq_mqtt_bridge::Protocol,
    },
    #[command(hide = true)]
    PubE2e {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        n: u64,
        #[arg(long)]
        rate: f64,
        /// The most simulated seconds per wall second; the run's own speed is the one
        /// that gives `rate` exactly with a whole generator period.
        #[arg(long, default_value_t = 1.0)]
        sim_speed: f64,
        /// Pins the simulated board's clock thread (the FPGA, not the ARM cores) here.
        #[arg(long)]
        fabric_cpu: Option<usize>,
        #[arg(long, default_value_t = 1)]
        coalesce_count: u16,
        #[arg(long, default_value_t = 0)]
        coalesce_us: u32,
        #[arg(long, default_value_t = 0)]
        rt_priority: u8,
    },
    /// A CPU-bound loop at normal priority until killed: the load beside (j).
    #[command(hide = true)]
    Burn,
    /// The machine's floor under pop to socket write (pin-latency's last two columns).
    #[command(hide = true)]
    WakeFloor {
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        n: u64,
        /// Also write a PUBLISH to the broker on this port after each wake-up.
        #[arg(long)]
        port: Option<u16>,
    },
    #[command(hide = true)]
    Latency {
        #[arg(long, default_value_t = 10_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 2.0)]
        secs: f64,
    },
}

/// Runs a role, or the whole benchmark.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.role {
        Some(Role::PublishRate {
            publisher,
            sink,
            n,
            qos,
            max_inflight,
            protocol,
        }) => publish_rate::run(publisher, sink, n, qos, (max_inflight, protocol)),
        Some(Role::Sub {
            port,
            n,
            qos,
            idle_ms,
            dropped_baseline,
        }) => roles::sub(
            port,
            n,
            qos,
            (Duration::from_millis(idle_ms), Duration::from_secs(60)),
            dropped_baseline,
        ),
        Some(Role::PubRaw { port, n, batch }) => roles::pub_raw(port, n, 64 * 1024, batch),
        Some(Role::PubRawQos1 { port, n, window }) => roles::pub_raw_qos1(port, n, window),
        Some(Role::PubRumqttc { port, n }) => roles::pub_rumqttc(port, n),
        Some(Role::PubBridge {
            port,
            n,
            qos,
            protocol,
        }) => roles::pub_bridge(port, n, qos, protocol),
        Some(Role::PubE2e {
            port,
            n,
            rate,
            sim_speed,
            fabric_cpu,
            coalesce_count,
            coalesce_us,
            rt_priority,
        }) => roles::pub_e2e(
            port,
            n,
            rate,
            sim_speed,
            fabric_cpu,
            (coalesce_count, coalesce_us),
            rt_priority,
        ),
        Some(Role::Latency { rate, secs }) => roles::latency(rate, secs),
        Some(Role::Burn) => roles::burn(),
        Some(Role::WakeFloor { rate, n, port }) => pin_latency::wake_floor(rate, n, port),
        Some(Role::PinLatency {
            rates,
            secs,
            placements,
            publishers,
            thread_driver,
            json,
        }) => pin_latency::main(
            &launch::find_root(args.root.as_deref())?,
            &rates,
            &secs,
            &placements,
            &publishers,
            thread_driver,
            json.as_deref(),
        ),
        Some(Role::PinLatencyBoard {
            port,
            n,
            rate,
            publisher,
            coalesce_count,
            coalesce_us,
            fabric_cpu,
            python,
            script,
            pins,
            thread_driver,
        }) => pin_latency::board(pin_latency::BoardArgs {
            port,
            n,
            rate,
            publisher,
            coalesce: (coalesce_count, coalesce_us),
            fabric_cpu,
            python,
            script,
            pins,
            thread_driver,
        }),
        Some(Role::PinLatencySub { port, n }) => pin_latency::sub(port, n),
        None => harness::main(&args),
    }
}
