//! The command line: subcommands, logging and exit status.

use std::process::ExitCode;
#[cfg(feature = "sim")]
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
#[cfg(feature = "sim")]
use pynq_mqtt_bus::Bus;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::settings::{self, BoardArgs, BoardKind, BrokerArgs, CommonArgs, Settings};
#[cfg(feature = "sim")]
use crate::{bench_cmd, broker_cmd, sim_cmd};
use crate::{board, config_cmd, doctor, regs_cmd};

#[derive(Parser, Debug)]
#[command(name = "pynq-mqtt", version, about)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `pynq_mqtt_driver=debug`.
    #[arg(long, global = true, env = "PYNQ_MQTT_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the daemon until SIGINT/SIGTERM.
    #[command(after_help = crate::daemon::EXIT_STATUS_HELP)]
    Run(RunArgs),
    /// The demo: the Verilated RTL as the board and an embedded broker.
    #[cfg(feature = "sim")]
    Sim(sim_cmd::SimArgs),
    /// Print the effective configuration (sources shown, secrets masked) and check it.
    Config(config_cmd::ConfigArgs),
    /// Check a board's set-up, one line per check with its fix.
    Doctor(doctor::DoctorArgs),
    /// Dump every register of the peripheral by name, fields decoded.
    Regs(regs_cmd::RegsArgs),
    /// The embedded broker alone (for tests).
    #[cfg(feature = "sim")]
    #[command(hide = true)]
    Broker(broker_cmd::BrokerArgs),
    /// Publish rate and end to end against real peers and mosquitto (benches/README.md):
    /// runs pynq-mqtt-bench.
    #[cfg(feature = "sim")]
    Bench(bench_cmd::BenchArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    board: BoardArgs,
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    paths: board::SysPaths,
    #[command(flatten)]
    common: CommonArgs,
}

/// Log lines on stderr; with `crlf`, each newline also returns the carriage, for the
/// terminal in raw mode during the interactive demo.
struct LogWriter {
    crlf: bool,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        if self.crlf {
            for part in buf.split_inclusive(|b| *b == b'\n') {
                match part.strip_suffix(b"\n") {
                    Some(line) => {
                        err.write_all(line)?;
                        err.write_all(b"\r\n")?;
                    }
                    None => err.write_all(part)?,
                }
            }
        } else {
            err.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The settings of the subcommand in `m`, resolved (clap knows where each came from).
pub fn resolve(m: &ArgMatches) -> Result<Settings> {
    let (_, sub) = m.subcommand().context("no subcommand")?;
    settings::resolve(sub)
}

/// The settings a command line gives, `argv` without the program's name: what the
/// binary would resolve (tests and fuzz targets use it).
pub fn settings_of<I, T>(argv: I) -> Result<Settings>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv = std::iter::once("pynq-mqtt".into()).chain(argv.into_iter().map(Into::into));
    let m = Cli::command()
        .try_get_matches_from::<_, std::ffi::OsString>(argv)
        .map_err(|e| match settings::bad_value(&e) {
            Some(msg) => anyhow::anyhow!("{msg}"),
            None => anyhow::anyhow!("{}", e.to_string().trim_end()),
        })?;
    resolve(&m)
}

pub fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        // a bad setting is one line naming its flag or variable, like a bad file value
        Err(e) => match settings::bad_value(&e) {
            Some(msg) => {
                eprintln!("pynq-mqtt: error: {msg}");
                return ExitCode::FAILURE;
            }
            None => e.exit(),
        },
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    #[cfg(feature = "sim")]
    let crlf = matches!(cli.cmd, Cmd::Sim(_))
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    #[cfg(not(feature = "sim"))]
    let crlf = false;
    // the embedded broker logs every routine disconnect as an error: quiet unless asked
    let filter = EnvFilter::try_new(format!("rumqttd=off,{}", cli.log))
        .unwrap_or_else(|_| EnvFilter::new("rumqttd=off,info"));
    // the web page shows the last warnings and errors (the same filter applies)
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || LogWriter { crlf })
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish()
        .with(pynq_mqtt_web::RecentLayer)
        .init();
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pynq-mqtt: error: {e:#}");
            ExitCode::from(crate::daemon::exit_status(&e))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli, m: &ArgMatches) -> Result<()> {
    match cli.cmd {
        Cmd::Run(args) => {
            let settings = resolve(m)?;
            let rt = runtime()?;
            match settings.values.board {
                BoardKind::Sim => run_sim_board(&rt, &settings),
                BoardKind::Uio => board::run_uio(&rt, &settings, &args.paths),
            }
        }
        #[cfg(feature = "sim")]
        Cmd::Sim(args) => {
            let mut settings = resolve(m)?;
            settings.values.board = BoardKind::Sim;
            let rt = runtime()?;
            sim_cmd::run(&rt, &args, settings)
        }
        Cmd::Config(_) => config_cmd::run(resolve(m)?),
        Cmd::Doctor(args) => doctor::run(&args, resolve(m)),
        Cmd::Regs(args) => regs_cmd::run(&args),
        #[cfg(feature = "sim")]
        Cmd::Broker(args) => broker_cmd::run(&runtime()?, &args),
        #[cfg(feature = "sim")]
        Cmd::Bench(args) => bench_cmd::run(&args),
    }
}

#[cfg(feature = "sim")]
fn run_sim_board(rt: &tokio::runtime::Runtime, settings: &Settings) -> Result<()> {
    let board = open_sim(settings)?;
    let b = Arc::clone(&board);
    let pins = Arc::new(crate::web::SimPins(Arc::clone(&board)));
    crate::daemon::run_with_pins(
        rt,
        settings,
        board as Arc<dyn Bus>,
        Some(pins),
        move || {
            b.start_stimulus();
        },
        None,
    )
}

#[cfg(not(feature = "sim"))]
fn run_sim_board(_: &tokio::runtime::Runtime, _: &Settings) -> Result<()> {
    anyhow::bail!("board sim: this build leaves the simulated board out (feature `sim`)")
}

/// The Verilated board with the stimulus of the settings, not yet started.
#[cfg(feature = "sim")]
pub(crate) fn open_sim(settings: &Settings) -> Result<Arc<pynq_mqtt_sim::SimBoard>> {
    use pynq_mqtt_sim::{stimulus, SimBoard, SimConfig};
    let steps = match &settings.values.stimulus {
        Some(p) => stimulus::load(p, pynq_mqtt_sim::model_n_inputs())?,
        None => Vec::new(),
    };
    let board = SimBoard::start(SimConfig {
        speed: settings.values.sim_speed,
        stimulus: steps,
    })?;
    Ok(Arc::new(board))
}
