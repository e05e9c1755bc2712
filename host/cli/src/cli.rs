//! The command line: subcommands, logging, errors and exit status.
//!
//! Every error the binary prints is one style: `pynq-mqtt: error: <what>: <cause>`,
//! on one line; clap's usage errors add its usage and tip lines below. A closed
//! stdout or stderr (`pynq-mqtt … | head -1`) ends the process quietly, with
//! [`CLOSED_OUTPUT`].

use std::io::Write as _;
use std::process::ExitCode;
#[cfg(feature = "sim")]
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
#[cfg(feature = "sim")]
use pynq_mqtt_bus::Bus;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::settings::{self as s, BoardArgs, BoardKind, BrokerArgs, CommonArgs, Settings, TlsArgs};
#[cfg(feature = "sim")]
use crate::{bench_cmd, broker_cmd, sim_cmd};
use crate::{board, config_cmd, doctor, regs_cmd};

#[derive(Parser, Debug)]
#[command(name = "pynq-mqtt", version, about)]
pub struct Cli {
    #[command(flatten)]
    logging: Logging,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The log on stderr, for every subcommand. RUST_LOG is read when neither --log nor
/// PYNQ_MQTT_LOG is given; -v and -q then set the overall level.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Logging")]
struct Logging {
    /// Log filter: a level (off, error, warn, info, debug, trace) and `target=level`
    /// pairs, e.g. `info,pynq_mqtt_driver=debug`; over RUST_LOG.
    #[arg(long, global = true, env = "PYNQ_MQTT_LOG", default_value = "info")]
    #[arg(value_name = "FILTER", value_parser = log_filter)]
    log: String,
    /// More log lines: -v debug, -vv trace.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    /// Fewer log lines: -q warnings, -qq errors only, -qqq none.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    quiet: u8,
}

/// `--log` as tracing's EnvFilter reads it, but a bare word must be a level: EnvFilter
/// would read `--log garbage` as "only the target `garbage`", a silent log.
fn log_filter(s: &str) -> Result<String, String> {
    let bare = s
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('='));
    if let Some(d) = bare.into_iter().find(|d| d.parse::<LevelFilter>().is_err()) {
        return Err(format!(
            "{d:?} is not a level (off, error, warn, info, debug, trace) nor target=level"
        ));
    }
    EnvFilter::builder().parse(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// The log filter: --log or PYNQ_MQTT_LOG, else RUST_LOG, else `info`; -v/-q over
/// its overall level. The embedded broker logs every routine disconnect as an error:
/// it is quiet unless a filter names it.
fn filter(m: &ArgMatches, l: &Logging) -> Result<EnvFilter> {
    let given = matches!(
        m.value_source("log"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    let base = match std::env::var("RUST_LOG") {
        Ok(rust_log) if !given && !rust_log.trim().is_empty() => rust_log,
        _ => l.log.clone(),
    };
    let levels = ["off", "error", "warn", "info", "debug", "trace"];
    let level = (3 + i32::from(l.verbose) - i32::from(l.quiet)).clamp(0, 5);
    let shift = match l.verbose != 0 || l.quiet != 0 {
        true => format!(",{}", levels[level as usize]),
        false => String::new(),
    };
    EnvFilter::builder()
        .parse(format!("rumqttd=off,{base}{shift}"))
        .with_context(|| format!("RUST_LOG {base:?} is not a log filter"))
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the daemon until SIGINT/SIGTERM.
    #[command(after_help = crate::daemon::EXIT_STATUS_HELP)]
    Run(RunArgs),
    /// The demo: the Verilated RTL as the board and an embedded broker.
    #[cfg(feature = "sim")]
    #[command(after_help = pynq_mqtt_sim::shape::HELP)]
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

/// The settings of the daemon itself, for `run`, `sim` and `config`. Each
/// subcommand takes the setting groups it uses: `run` and `config` these and the
/// board, the broker and TLS; `sim` these (it is its own board and broker);
/// `doctor` the board, the broker, TLS and the session; `regs` the board.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DaemonArgs {
    #[command(flatten)]
    session: s::SessionArgs,
    #[command(flatten)]
    delivery: s::DeliveryArgs,
    #[command(flatten)]
    topics: s::TopicArgs,
    #[command(flatten)]
    payloads: s::PayloadArgs,
    #[command(flatten)]
    driver: s::DriverArgs,
    #[command(flatten)]
    ha: s::HaArgs,
    #[command(flatten)]
    web: s::WebArgs,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Remove the Home Assistant discovery configs (empty retained messages) and exit.
    #[arg(long, help_heading = "Home Assistant")]
    ha_remove: bool,
    #[command(flatten)]
    board: BoardArgs,
    #[command(flatten)]
    paths: board::SysPaths,
}

/// Log lines on stderr, or in the log pane of the interactive simulator's screen while
/// it is up (the terminal is in raw mode only then).
struct LogWriter;

/// The status of a process whose stdout or stderr was closed: the shell's for a
/// process ended by SIGPIPE. Nobody reads what it would say, so it says nothing.
pub const CLOSED_OUTPUT: u8 = 141;

fn closed_output() -> ! {
    std::process::exit(CLOSED_OUTPUT.into())
}

/// `print!` and `eprint!` panic on a closed stream: that panic ends the process
/// quietly, whichever thread wrote.
fn quiet_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p.downcast_ref::<String>().map(String::as_str);
        let msg = msg.or_else(|| p.downcast_ref::<&str>().copied());
        if msg.is_some_and(|m| m.starts_with("failed printing to std")) {
            closed_output();
        }
        default(info)
    }));
}

/// Prints an error in the one style of the binary, `pynq-mqtt: error: <what>`.
fn print_error(what: impl std::fmt::Display) {
    if writeln!(std::io::stderr(), "pynq-mqtt: error: {what}").is_err() {
        closed_output();
    }
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_lines(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => closed_output(),
            _ => e,
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl LogWriter {
    fn write_lines(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // the interactive simulator shows the logs in a pane of its screen
        #[cfg(feature = "sim")]
        if crate::tui::capture_log(buf) {
            return Ok(buf.len());
        }
        std::io::stderr().lock().write_all(buf)?;
        Ok(buf.len())
    }
}

/// The settings of the subcommand in `m`, resolved (clap knows where each came from).
pub fn resolve(m: &ArgMatches) -> Result<Settings> {
    let (name, sub) = m.subcommand().context("no subcommand")?;
    s::resolve(sub, name == "sim")
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
        .map_err(|e| match s::bad_value(&e) {
            Some(msg) => anyhow::anyhow!("{msg}"),
            None => anyhow::anyhow!("{}", e.to_string().trim_end()),
        })?;
    resolve(&m)
}

pub fn main() -> ExitCode {
    quiet_on_closed_output();
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_error(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e),
    };
    let filter = match filter(&matches, &cli.logging) {
        Ok(f) => f,
        Err(e) => {
            print_error(format_args!("{e:#}"));
            return ExitCode::FAILURE;
        }
    };
    // the web page shows the last warnings and errors (the same filter applies)
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish()
        .with(pynq_mqtt_web::RecentLayer)
        .init();
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(format_args!("{e:#}"));
            ExitCode::from(crate::daemon::exit_status(&e))
        }
    }
}

/// Help and version on stdout as clap prints them; an error in the binary's style:
/// a bad setting in one line naming its flag or variable (status 1, as a bad file
/// value), any other with clap's usage and tip lines (status 2).
fn clap_error(e: &clap::Error) -> ExitCode {
    let help = [ErrorKind::DisplayHelp, ErrorKind::DisplayVersion];
    if help.contains(&e.kind()) || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        e.exit()
    }
    match s::bad_value(e) {
        Some(msg) => {
            print_error(msg);
            ExitCode::FAILURE
        }
        None => {
            let text = e.to_string();
            print_error(text.trim_end().trim_start_matches("error: "));
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
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
                BoardKind::Base | BoardKind::BaseSim => {
                    crate::base_board::run(&rt, &settings, &args.paths)
                }
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
