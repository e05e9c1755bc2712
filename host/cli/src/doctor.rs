//! `pynq-mqtt doctor`: checks a board's set-up, one line per check with ✓ or ✗ (and
//! `-` for a check that could not run because an earlier one failed), each failure
//! with its fix. The settings are the daemon's (flags, environment, config file), so
//! it checks what `run` would use. Exits non-zero when a check failed.

mod broker;
mod hw;

pub(crate) use broker::hint as broker_hint;

use std::sync::Arc;

use anyhow::{bail, Result};
use pynq_mqtt_bus::uio::{self, DeviceSpec, Mode, OpenOptions, UioBus, UioError};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::{probe, DeviceInfo};
use pynq_mqtt_regs as regs;

use crate::board::{register_span, SysPaths};
use crate::settings::{self as s, default_device, BoardKind, Settings};
use hw::Failure;

/// What the checks use: the board and the broker (the file may hold every key).
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub common: s::CommonArgs,
    #[command(flatten)]
    pub broker: s::BrokerArgs,
    #[command(flatten)]
    pub tls: s::TlsArgs,
    #[command(flatten)]
    pub session: s::SessionArgs,
    #[command(flatten)]
    pub board: s::BoardArgs,
    #[command(flatten)]
    pub paths: SysPaths,
}

/// The lines printed so far, and how many failed.
#[derive(Default)]
struct Report {
    checks: usize,
    failed: usize,
}

impl Report {
    fn pass(&mut self, name: &str, detail: impl std::fmt::Display) {
        self.checks += 1;
        println!("✓ {name:<10} {detail}");
    }

    /// `cause_and_fix` is one sentence that already names the fix (the UIO and driver
    /// errors are written that way).
    fn fail_msg(&mut self, name: &str, cause_and_fix: impl std::fmt::Display) {
        self.checks += 1;
        self.failed += 1;
        println!("✗ {name:<10} {cause_and_fix}");
    }

    fn fail(&mut self, name: &str, f: Failure) {
        self.fail_msg(name, format_args!("{}; fix: {}", f.cause, f.fix));
    }

    /// A check that ran but could not test what it is for: counted, not failed.
    fn warn(&mut self, name: &str, why: impl std::fmt::Display) {
        self.checks += 1;
        println!("! {name:<10} {why}");
    }

    fn checked(&mut self, name: &str, r: Result<hw::Checked, Failure>) {
        match r {
            Ok(hw::Checked::Passed(d)) => self.pass(name, d),
            Ok(hw::Checked::NotTested(why)) => self.warn(name, why),
            Err(f) => self.fail(name, f),
        }
    }

    fn skip(&mut self, name: &str, why: &str) {
        println!("- {name:<10} not checked: {why}");
    }

    fn outcome(&mut self, name: &str, r: Result<String, Failure>) -> bool {
        match r {
            Ok(d) => {
                self.pass(name, d);
                true
            }
            Err(f) => {
                self.fail(name, f);
                false
            }
        }
    }
}

/// The bus to check, and whether doctor may change registers and take interrupts.
struct Opened {
    bus: Arc<dyn Bus>,
    exclusive: bool,
}

/// Runs the checks on `settings` (or reports why they do not resolve).
pub fn run(args: &DoctorArgs, settings: Result<Settings>) -> Result<()> {
    let mut r = Report::default();
    let settings = match settings {
        Ok(s) => {
            let board = s.values.board;
            let url = s.bridge.broker_url();
            r.pass("settings", format_args!("board {board}, broker {url}"));
            Some(s)
        }
        Err(e) => {
            r.fail_msg(
                "settings",
                format_args!(
                    "{e:#}; fix: correct it (`pynq-mqtt config` shows every setting and \
                     where it comes from)"
                ),
            );
            None
        }
    };
    // without valid settings, the board and device of the flags and variables
    let (kind, device) = match &settings {
        Some(s) => (s.values.board, s.values.device.clone()),
        None => {
            let device = args.board.device.clone().unwrap_or_else(default_device);
            (args.board.board.unwrap_or_default(), device)
        }
    };
    let opened = match kind {
        BoardKind::Uio => uio_checks(&mut r, &args.paths, &device),
        BoardKind::Sim => sim_checks(&mut r),
        BoardKind::Base | BoardKind::BaseSim => {
            let bs = match &settings {
                Some(s) => crate::base_board::BaseSettings::from_settings(s),
                None => crate::base_board::BaseSettings {
                    regs: args.board.base_regs.clone().unwrap_or_default(),
                    board: args.board.pynq_board.unwrap_or_default(),
                    ..Default::default()
                },
            };
            base_checks(&mut r, kind, &bs, &args.paths);
            return finish(r, settings.as_ref());
        }
    };

    let info = match &opened {
        Some(o) => identity(&mut r, o.bus.as_ref()),
        None => {
            r.skip("identity", "no device");
            None
        }
    };
    match (&opened, &info) {
        (Some(o), Some(info)) if o.exclusive => {
            r.checked("interrupt", hw::interrupt(o.bus.as_ref(), info));
            r.outcome("LEDs", hw::leds(o.bus.as_ref(), info.n_leds));
        }
        (Some(o), Some(_)) if !o.exclusive => {
            r.skip("interrupt", "the device is in use (see access)");
            r.skip("LEDs", "the device is in use (see access)");
        }
        _ => {
            r.skip("interrupt", "no pynq_mqtt_io to talk to");
            r.skip("LEDs", "no pynq_mqtt_io to talk to");
        }
    }
    drop(opened);
    finish(r, settings.as_ref())
}

/// The broker checks and the verdict.
fn finish(mut r: Report, settings: Option<&Settings>) -> Result<()> {
    match settings {
        Some(s) => {
            realtime(&mut r, s.driver.rt_priority);
            // each broker of a failover list: the daemon may end up on any
            for b in bridge_config(s).brokers() {
                r.outcome("broker", broker::check(&b));
            }
        }
        None => r.skip("broker", "the settings are invalid"),
    }

    if r.failed == 0 {
        println!("all {} checks passed", r.checks);
        Ok(())
    } else {
        bail!("{} of {} checks failed", r.failed, r.checks)
    }
}

/// Whether the event drain may run SCHED_FIFO at `priority`, tried on a thread of its
/// own: refused, the daemon still runs (so a warning, not a failure), but a busy CPU
/// can then hold the drain off until the FIFO overflows.
fn realtime(r: &mut Report, priority: u8) {
    if priority == 0 {
        r.pass(
            "realtime",
            "off (rt_priority = 0): the event drain runs at normal priority",
        );
        return;
    }
    let tried = std::thread::spawn(move || pynq_mqtt_bus::set_current_thread_realtime(priority))
        .join()
        .unwrap_or_else(|_| Err(std::io::ErrorKind::Other.into()));
    match tried {
        Ok(()) => r.pass(
            "realtime",
            format_args!("the event drain may run SCHED_FIFO {priority}"),
        ),
        Err(e) => r.warn(
            "realtime",
            format_args!(
                "the event drain cannot run SCHED_FIFO {priority} ({e}): under CPU load the \
                 FIFO can overflow; grant LimitRTPRIO={priority} (the installed unit does) or \
                 CAP_SYS_NICE, or set rt_priority = 0"
            ),
        ),
    }
}

/// The daemon's MQTT settings, broker included.
fn bridge_config(s: &Settings) -> pynq_mqtt_bridge::BridgeConfig {
    s.bridge.clone()
}

/// What `pynq-mqtt-overlay` needs to program the PL when PYNQ is not there to do it
/// (docs/board.md, "Without PYNQ"): PYNQ images have both.
fn loader_check(r: &mut Report, paths: &uio::UioPaths) {
    let Some(support) = uio::loader_support(paths) else {
        r.skip("loader", "no FPGA manager in sysfs");
        return;
    };
    if support.complete() {
        r.pass(
            "loader",
            "without PYNQ, pynq-mqtt-overlay can program the PL (clk_ignore_unused on the \
             kernel command line; fpga0 has the Xilinx kernel's firmware and flags)",
        );
        return;
    }
    let mut missing = Vec::new();
    match support.clk_ignore_unused {
        Some(true) => {}
        Some(false) => missing.push(
            "clk_ignore_unused is not on the kernel command line: the kernel gates FCLK0 at \
             boot and the peripheral gets no clock; add it to the bootargs",
        ),
        None => missing.push("cannot read /proc/cmdline to look for clk_ignore_unused"),
    }
    if !support.xilinx_fpga_sysfs {
        missing.push(
            "fpga0 has no firmware/flags files: this is not a Xilinx (linux-xlnx) kernel, \
             so the loader cannot program the PL through it; load the bitstream your own way",
        );
    }
    r.fail_msg(
        "loader",
        format_args!(
            "the fallback loader (without PYNQ) would fail: {}",
            missing.join("; ")
        ),
    );
}

/// FPGA, UIO driver, device, map and access, in the order a set-up goes wrong.
fn uio_checks(r: &mut Report, paths: &SysPaths, device: &DeviceSpec) -> Option<Opened> {
    let paths = paths.paths();
    let fpga_ok = match uio::fpga_state(&paths) {
        None => {
            r.skip("fpga", "no FPGA manager in sysfs (not a Zynq?)");
            true
        }
        Some(state) if state == "operating" => {
            r.pass("fpga", "the PL is programmed (fpga0: operating)");
            true
        }
        Some(_) => {
            if let Err(e) = uio::check_fpga(&paths) {
                r.fail_msg("fpga", e);
            }
            false
        }
    };

    loader_check(r, &paths);

    let status = uio::driver_status(&paths);
    let found = uio::find(&paths, device);
    match &found {
        Err(e @ (UioError::DriverMissing { .. } | UioError::NotBound { .. })) => {
            r.fail_msg("driver", e);
            r.skip("device", "no UIO driver for it");
            r.skip("map", "no device");
            r.skip("access", "no device");
            return None;
        }
        Ok(dev) => match dev.driver.as_deref() {
            Some(d) if d == uio::GENIRQ_DRIVER => {
                r.pass("driver", format_args!("{} is bound to {d}", dev.name))
            }
            Some(d) => r.pass(
                "driver",
                format_args!(
                    "{} is bound to {d} (not {}: interrupts may not re-arm)",
                    dev.name,
                    uio::GENIRQ_DRIVER
                ),
            ),
            None => r.pass("driver", format_args!("{} is a UIO device", dev.name)),
        },
        Err(_) if status.genirq => r.pass(
            "driver",
            format_args!(
                "{} is registered{}",
                uio::GENIRQ_DRIVER,
                match status.of_id_on_cmdline {
                    Some(true) => " and of_id is on the kernel command line",
                    _ => "",
                }
            ),
        ),
        Err(_) => r.fail_msg(
            "driver",
            UioError::DriverMissing {
                path: paths.genirq_driver(),
            },
        ),
    }
    let dev = match found {
        Ok(dev) => {
            r.pass(
                "device",
                format_args!(
                    "\"{}\" is {} (uio{})",
                    dev.name,
                    dev.node.display(),
                    dev.index
                ),
            );
            dev
        }
        Err(e) => {
            r.fail_msg("device", e);
            r.skip("map", "no device");
            r.skip("access", "no device");
            return None;
        }
    };

    let need = register_span();
    let window = dev.map.window();
    if window >= need {
        r.pass(
            "map",
            format_args!(
                "map0: {} bytes at {:#x} (the registers need {need}; the IP's window is {})",
                dev.map.size,
                dev.map.addr,
                regs::WINDOW_BYTES
            ),
        );
    } else {
        r.fail_msg(
            "map",
            UioError::MapTooSmall {
                node: dev.node.clone(),
                window,
                need,
            },
        );
        r.skip("access", "map0 is too small");
        return None;
    }
    if !fpga_ok {
        // a register access to an unprogrammed PL hangs the bus: stop here
        r.skip("access", "the PL is not programmed");
        return None;
    }

    let node = dev.node.clone();
    match UioBus::open_device(&paths, dev.clone(), OpenOptions::new(Mode::Exclusive, need)) {
        Ok(bus) => {
            r.pass(
                "access",
                format_args!(
                    "{} opened read/write, locked and mapped (MAP_SHARED)",
                    node.display()
                ),
            );
            Some(Opened {
                bus: Arc::new(bus),
                exclusive: true,
            })
        }
        Err(e @ UioError::Busy { .. }) => {
            r.fail_msg("access", &e);
            // look without touching: identity still tells something
            UioBus::open_device(&paths, dev, OpenOptions::new(Mode::Observe, need))
                .ok()
                .map(|bus| Opened {
                    bus: Arc::new(bus),
                    exclusive: false,
                })
        }
        Err(e) => {
            r.fail_msg("access", e);
            None
        }
    }
}

#[cfg(feature = "sim")]
fn sim_checks(r: &mut Report) -> Option<Opened> {
    match crate::board::open_sim() {
        Ok(crate::board::Board::Sim(sim)) => {
            r.pass(
                "board",
                format_args!(
                    "simulated pynq_mqtt_io (Verilated RTL, {} Hz clock, {} inputs, {} LEDs)",
                    sim.clk_hz(),
                    sim.n_inputs(),
                    sim.n_leds()
                ),
            );
            r.pass(
                "map",
                format_args!(
                    "a {}-byte register window (the registers need {})",
                    regs::WINDOW_BYTES,
                    register_span()
                ),
            );
            Some(Opened {
                bus: sim as Arc<dyn Bus>,
                exclusive: true,
            })
        }
        Ok(_) => None,
        Err(e) => {
            r.fail_msg("board", format_args!("{e:#}"));
            None
        }
    }
}

#[cfg(not(feature = "sim"))]
fn sim_checks(r: &mut Report) -> Option<Opened> {
    r.fail_msg(
        "board",
        "this build leaves the simulated board out; fix: use --board uio, or a build with \
         feature `sim`",
    );
    None
}

/// `--board base` / `base-sim`: what the daemon checks before it touches a register,
/// then the base overlay's blocks and interrupt controller as they stand.
fn base_checks(
    r: &mut Report,
    kind: BoardKind,
    bs: &crate::base_board::BaseSettings,
    paths: &SysPaths,
) {
    use crate::base_board as bb;
    use pynq_mqtt_regs::base::intc;
    use pynq_mqtt_regs::RegBus;
    if kind == BoardKind::Base {
        match bb::board_name(&paths.proc_root) {
            Some(n) => r.pass("board", format_args!("{n} (device tree)")),
            None => r.warn(
                "board",
                "the device tree names no PYNQ board; --pynq-board decides",
            ),
        }
        let root = paths
            .proc_root
            .parent()
            .unwrap_or(std::path::Path::new("/"));
        match bb::loaded_bitstream(root) {
            Some(n) if n.ends_with("base.bit") => r.pass("bitstream", format_args!("PYNQ loaded {n}")),
            Some(n) => r.fail_msg(
                "bitstream",
                format_args!("PYNQ loaded {n}, not base.bit; fix: reboot (the image loads base.bit) or load BaseOverlay(\"base.bit\")"),
            ),
            None => r.warn("bitstream", "no PYNQ record of the loaded bitstream; the registers are checked below"),
        }
        if let Ok(dev) = uio::find(&paths.paths(), &DeviceSpec::Name(bb::FABRIC.into())) {
            let others = uio::openers(&dev.node, &paths.proc_root);
            if others.is_empty() {
                r.pass(
                    "fabric",
                    format_args!(
                        "{} (the base overlay's interrupt), not open elsewhere",
                        dev.node.display()
                    ),
                );
            } else {
                let who: Vec<String> = others
                    .iter()
                    .map(|(p, c)| format!("pid {p} ({c})"))
                    .collect();
                r.warn(
                    "fabric",
                    format_args!(
                        "{} is open by {}: a notebook's Interrupt shares the controller with the daemon (docs/board.md)",
                        dev.node.display(),
                        who.join(", ")
                    ),
                );
            }
        }
    }
    let board = match bb::open(kind, bs, paths, uio::Mode::Exclusive) {
        Ok(b) => b,
        Err(e) => {
            r.fail_msg("access", format_args!("{e:#}"));
            return;
        }
    };
    let bus = board.bus();
    if let crate::board::Board::Base(_, cfg) = &board {
        r.pass(
            "access",
            format_args!(
                "{}; buttons on controller input {}, switches on {}",
                bus.describe(),
                cfg.bits.buttons,
                cfg.bits.switches
            ),
        );
    }
    match pynq_mqtt_driver::base::probe_base(bus.as_ref()) {
        Ok(_) => r.pass(
            "identity",
            "btns_gpio and switches_gpio answer as the base overlay's (6 inputs, 10 LEDs)",
        ),
        Err(e) => {
            r.fail_msg("identity", e);
            return;
        }
    }
    match (bus.read(intc::MER), bus.read(intc::IER)) {
        (Ok(mer), Ok(ier)) => r.pass(
            "interrupt",
            format_args!(
                "controller {} with inputs {:#x} enabled (read only: doctor changes no enable)",
                if mer.on() { "on" } else { "off" },
                ier.0
            ),
        ),
        (Err(e), _) | (_, Err(e)) => r.fail_msg("interrupt", e),
    }
}

/// ID and VERSION against what this daemon was built for.
fn identity(r: &mut Report, bus: &dyn Bus) -> Option<DeviceInfo> {
    match probe(bus) {
        Ok(info) => {
            r.pass(
                "identity",
                format_args!(
                    "pynq_mqtt_io {}.{} (this build: {}.{}), {} inputs, {} LEDs, FIFO {}, clock {} Hz, {}",
                    info.version_major,
                    info.version_minor,
                    regs::VERSION_MAJOR,
                    regs::VERSION_MINOR,
                    info.n_inputs,
                    info.n_leds,
                    info.fifo_depth,
                    info.clk_hz,
                    if info.generator {
                        "with the event generator"
                    } else {
                        "without the event generator"
                    }
                ),
            );
            Some(info)
        }
        Err(e) => {
            r.fail_msg("identity", e);
            None
        }
    }
}
