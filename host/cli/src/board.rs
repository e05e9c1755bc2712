//! Opening a board: a PYNQ through Linux UIO, or the simulated one.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use pynq_mqtt_bus::uio::{DeviceSpec, IrqFds, Mode, OpenOptions, UioBus, UioPaths};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_regs::REGISTERS;

/// Which board backend; `uio`, `sim`, `base` or `base-sim` in a config file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoardKind {
    /// A PYNQ board with our overlay, through Linux UIO.
    #[default]
    Uio,
    /// The Verilated RTL.
    Sim,
    /// A PYNQ board on its stock base overlay (no bitstream build).
    Base,
    /// The Verilated models of the base overlay's GPIO and interrupt controller.
    #[serde(rename = "base-sim")]
    BaseSim,
}

/// In a config file the name; a wrong one is refused without quoting it (it may be a
/// secret pasted into the wrong key).
impl<'de> serde::Deserialize<'de> for BoardKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(
                "unknown value, expected `uio` or `sim` (our overlay), or `base` or \
                 `base-sim` (PYNQ's base overlay)",
            )
        })
    }
}

impl BoardKind {
    /// A simulated board (its defaults follow the simulator's).
    pub fn simulated(self) -> bool {
        matches!(self, Self::Sim | Self::BaseSim)
    }

    /// PYNQ's base overlay, real or simulated.
    pub fn base(self) -> bool {
        matches!(self, Self::Base | Self::BaseSim)
    }
}

impl std::str::FromStr for BoardKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "uio" => Ok(Self::Uio),
            "sim" => Ok(Self::Sim),
            "base" => Ok(Self::Base),
            "base-sim" => Ok(Self::BaseSim),
            _ => Err(format!("{s:?}: expected uio, sim, base or base-sim")),
        }
    }
}

impl std::fmt::Display for BoardKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Uio => "uio",
            Self::Sim => "sim",
            Self::Base => "base",
            Self::BaseSim => "base-sim",
        })
    }
}

/// The UIO device the overlay names.
pub fn default_device() -> DeviceSpec {
    DeviceSpec::Name("pynq_mqtt".into())
}

/// Where sysfs, the device nodes and procfs are, for `run`, `doctor` and `regs`.
#[derive(clap::Args, Clone, Debug)]
pub struct SysPaths {
    /// Root of sysfs (tests point it at a fake tree).
    #[arg(long, hide = true, default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// Directory of the device nodes (tests).
    #[arg(long, hide = true, default_value = "/dev")]
    pub dev_dir: PathBuf,
    /// Root of procfs (tests).
    #[arg(long, hide = true, default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Wait for the interrupt on this file instead of the device (tests: a FIFO that
    /// the test writes counts into, and closes to play a device that went away). The
    /// test holds both FIFOs open first, so that opening them here does not block.
    #[arg(long, hide = true, requires = "irq_rearm")]
    pub irq_wait: Option<PathBuf>,
    /// Re-arm the interrupt through this file instead of the device (tests: a FIFO).
    #[arg(long, hide = true, requires = "irq_wait")]
    pub irq_rearm: Option<PathBuf>,
}

impl SysPaths {
    pub fn paths(&self) -> UioPaths {
        UioPaths {
            sys: self.sysfs_root.clone(),
            dev: self.dev_dir.clone(),
            proc: self.proc_root.clone(),
        }
    }
}

/// Bytes of register window the register map needs: up to its last register.
pub fn register_span() -> usize {
    REGISTERS
        .iter()
        .map(|r| r.offset as usize + 4)
        .max()
        .unwrap_or(4)
}

/// Opens the UIO device; errors name their cause and fix in one line.
pub fn open_uio(paths: &SysPaths, device: &DeviceSpec, mode: Mode) -> Result<Arc<UioBus>> {
    let mut opts = OpenOptions::new(mode, register_span());
    if let (Some(wait), Some(rearm), Mode::Exclusive) = (&paths.irq_wait, &paths.irq_rearm, mode) {
        let open = |path: &PathBuf, write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open(path)
                .with_context(|| {
                    format!(
                        "--irq-{}: {}",
                        if write { "rearm" } else { "wait" },
                        path.display()
                    )
                })
        };
        opts = opts.irq_fds(IrqFds {
            wait: open(wait, false)?.into(),
            rearm: open(rearm, true)?.into(),
        });
    }
    let bus = UioBus::open(&paths.paths(), device, opts).map_err(|e| {
        // on a PC the UIO advice (kernel command line, overlay) misleads: there is no
        // programmable logic to put the peripheral in
        let fpga = paths.sysfs_root.join("class/fpga_manager/fpga0");
        if fpga.exists() {
            anyhow::Error::from(e)
        } else {
            anyhow::anyhow!(
                "no PYNQ board here: this machine has no Zynq FPGA manager ({} is missing); \
                 to try pynq-mqtt without a board, run `pynq-mqtt sim` (or `--board sim`)",
                fpga.display()
            )
        }
    })?;
    Ok(Arc::new(bus))
}

/// An open board.
pub enum Board {
    Uio(Arc<UioBus>),
    #[cfg(feature = "sim")]
    Sim(Arc<pynq_mqtt_sim::SimBoard>),
    /// PYNQ's base overlay (real or simulated), with its driver settings.
    Base(Arc<dyn Bus>, pynq_mqtt_driver::base::BaseConfig),
}

impl Board {
    pub fn bus(&self) -> Arc<dyn Bus> {
        match self {
            Board::Uio(b) => Arc::clone(b) as Arc<dyn Bus>,
            #[cfg(feature = "sim")]
            Board::Sim(b) => Arc::clone(b) as Arc<dyn Bus>,
            Board::Base(b, _) => Arc::clone(b),
        }
    }
}

/// The simulated board in real time, no stimulus: for `doctor` and `regs`.
#[cfg(feature = "sim")]
pub fn open_sim() -> Result<Board> {
    let board = pynq_mqtt_sim::SimBoard::start(pynq_mqtt_sim::SimConfig::default())?;
    Ok(Board::Sim(Arc::new(board)))
}

#[cfg(not(feature = "sim"))]
pub fn open_sim() -> Result<Board> {
    anyhow::bail!("board sim: this build leaves the simulated board out (feature `sim`)")
}

/// Opens the board `kind` names.
pub fn open(kind: BoardKind, paths: &SysPaths, device: &DeviceSpec, mode: Mode) -> Result<Board> {
    match kind {
        BoardKind::Uio => Ok(Board::Uio(open_uio(paths, device, mode)?)),
        BoardKind::Sim => open_sim(),
        BoardKind::Base | BoardKind::BaseSim => {
            let defaults = crate::base_board::BaseSettings::default();
            crate::base_board::open(kind, &defaults, paths, mode)
        }
    }
}

/// `run --board uio`: the daemon on the UIO device.
pub fn run_uio(
    rt: &tokio::runtime::Runtime,
    settings: &crate::settings::Settings,
    paths: &SysPaths,
) -> Result<()> {
    let bus = open_uio(paths, &settings.values.device, Mode::Exclusive)?;
    tracing::info!(
        device = %bus.describe(),
        addr = format_args!("{:#x}", bus.device().map.addr),
        size = bus.device().map.size,
        "UIO device opened"
    );
    crate::daemon::run(rt, settings, bus as Arc<dyn Bus>, || {}, None)
}
