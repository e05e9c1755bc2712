//! `--board base` and `--board base-sim`: the daemon on PYNQ's stock base overlay (no
//! bitstream build), and on the Verilated models of that overlay's AXI GPIO and AXI
//! INTC for tests (behavioural models written from PG144/PG099, not Xilinx's IP).
//!
//! On a board, before any register is touched: the PL must hold a bitstream, PYNQ's
//! record of what it loaded must name `base.bit` (when the record is there), the
//! `fabric` UIO device must exist (it carries the base overlay's interrupt), and the
//! board (PYNQ-Z1 or -Z2) decides which interrupt-controller inputs are ours. A
//! process already holding `fabric` open (a notebook's `Interrupt`) is named in a
//! warning: it shares the interrupt controller with the daemon. While the daemon runs,
//! a process that opens it later is named too (`watch_openers`, every 5 s).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pynq_mqtt_bus::uio::{self, DeviceSpec, Mode, WindowSource, WindowSpec, WindowsBus};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::base::{BaseBits, BaseConfig};
use pynq_mqtt_regs::base as regs;
use tracing::{info, warn};

use crate::board::{Board, BoardKind, SysPaths};
use crate::settings::Settings;

/// The name of the UIO device that carries the base overlay's interrupt (IRQ_F2P[0]).
pub const FABRIC: &str = "fabric";

/// Where the base overlay's registers are mapped from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BaseRegs {
    /// /dev/mem, as PYNQ itself maps them (root).
    #[default]
    DevMem,
    /// A generic-uio device of this name holding the five windows as maps 0-4.
    Uio(String),
}

impl std::str::FromStr for BaseRegs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "devmem" => Ok(Self::DevMem),
            t => match t.strip_prefix("uio:") {
                Some(name) if !name.is_empty() => Ok(Self::Uio(name.to_owned())),
                _ => Err(format!("{s:?}: expected devmem or uio:NAME")),
            },
        }
    }
}

impl std::fmt::Display for BaseRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DevMem => f.write_str("devmem"),
            Self::Uio(name) => write!(f, "uio:{name}"),
        }
    }
}

/// Which board's interrupt layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PynqBoard {
    /// From `/proc/device-tree/chosen/pynq_board`.
    #[default]
    Auto,
    Z1,
    Z2,
}

impl std::str::FromStr for PynqBoard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "z1" | "pynq-z1" => Ok(Self::Z1),
            "z2" | "pynq-z2" => Ok(Self::Z2),
            _ => Err(format!("{s:?}: expected auto, z1 or z2")),
        }
    }
}

impl std::fmt::Display for PynqBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Z1 => "z1",
            Self::Z2 => "z2",
        })
    }
}

macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_text!(BaseRegs, PynqBoard);

/// What opening the base overlay needs of the settings.
#[derive(Clone, Debug)]
pub struct BaseSettings {
    pub regs: BaseRegs,
    pub board: PynqBoard,
    pub debounce_us: u32,
    #[cfg(feature = "sim")]
    pub speed: pynq_mqtt_sim::Speed,
    #[cfg(feature = "sim")]
    pub stimulus: Option<std::path::PathBuf>,
}

impl Default for BaseSettings {
    fn default() -> Self {
        Self {
            regs: BaseRegs::DevMem,
            board: PynqBoard::Auto,
            debounce_us: pynq_mqtt_driver::base::DEFAULT_DEBOUNCE_US,
            #[cfg(feature = "sim")]
            speed: pynq_mqtt_sim::Speed::default(),
            #[cfg(feature = "sim")]
            stimulus: None,
        }
    }
}

impl BaseSettings {
    pub fn from_settings(s: &Settings) -> Self {
        let v = &s.values;
        Self {
            regs: v.base_regs.clone(),
            board: v.pynq_board,
            debounce_us: u32::try_from(v.soft_debounce_us.get::<u64>()).unwrap_or(u32::MAX),
            #[cfg(feature = "sim")]
            speed: v.sim_speed,
            #[cfg(feature = "sim")]
            stimulus: v.stimulus.clone(),
        }
    }
}

/// The board PYNQ's image names in the device tree (`Pynq-Z1`, `Pynq-Z2`), if any.
pub fn board_name(proc_root: &Path) -> Option<String> {
    let raw = std::fs::read(proc_root.join("device-tree/chosen/pynq_board")).ok()?;
    let text = String::from_utf8_lossy(&raw);
    Some(text.trim_end_matches('\0').trim().to_owned())
}

/// Our interrupt-controller inputs for `board`, or why they cannot be told.
pub fn bits(board: PynqBoard, proc_root: &Path) -> Result<BaseBits> {
    match board {
        PynqBoard::Z1 => Ok(BaseBits::Z1),
        PynqBoard::Z2 => Ok(BaseBits::Z2),
        PynqBoard::Auto => match board_name(proc_root)
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            Some(n) if n.ends_with("z1") => Ok(BaseBits::Z1),
            Some(n) if n.ends_with("z2") => Ok(BaseBits::Z2),
            Some(n) => bail!(
                "this board is {n:?}, not a PYNQ-Z1 or -Z2: the base overlay's interrupt \
                 inputs are known for those two only (pass --pynq-board z1|z2 if it is one)"
            ),
            None => bail!(
                "cannot tell a PYNQ-Z1 from a -Z2 ({} is missing): pass --pynq-board z1|z2",
                proc_root.join("device-tree/chosen/pynq_board").display()
            ),
        },
    }
}

/// What PYNQ recorded as loaded: the `bitfile_name` of its global state file. PYNQ 3
/// writes `global_pl_state.json` into its `pl_server` package directory
/// (`global_state.STATE_DIR`, the module's own directory) at every download, and
/// removes it at a cold boot until an overlay is loaded; its venv is
/// /usr/local/share/pynq-venv. None when there is no record.
pub fn loaded_bitstream(root: &Path) -> Option<String> {
    let venv = root.join("usr/local/share/pynq-venv/lib");
    for py in std::fs::read_dir(venv).ok()?.flatten() {
        let dir = py.path().join("site-packages/pynq/pl_server");
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("global_pl_state") && name.ends_with(".json") {
                let text = std::fs::read_to_string(f.path()).ok()?;
                return bitfile_name(&text);
            }
        }
    }
    None
}

/// `"bitfile_name": "..."` of a PYNQ state file.
fn bitfile_name(json: &str) -> Option<String> {
    let at = json.find("\"bitfile_name\"")?;
    let rest = json[at + "\"bitfile_name\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// The five windows of the base overlay on one bus.
pub fn windows() -> Vec<WindowSpec> {
    regs::WINDOWS
        .iter()
        .map(|&(_, off)| WindowSpec {
            bus_offset: off,
            phys: u64::from(regs::BASE_ADDR + off),
            len: regs::WINDOW as usize,
        })
        .collect()
}

/// Opens PYNQ's base overlay on this board, after the checks that keep an unknown PL
/// untouched; errors are one line with the fix.
pub fn open_real(
    s: &BaseSettings,
    paths: &SysPaths,
    mode: Mode,
) -> Result<(Arc<WindowsBus>, BaseConfig)> {
    let up = paths.paths();
    let fpga = paths.sysfs_root.join("class/fpga_manager/fpga0");
    if !fpga.exists() {
        bail!(
            "no PYNQ board here: this machine has no Zynq FPGA manager ({} is missing); to \
             try the base overlay without a board, use --board base-sim",
            fpga.display()
        );
    }
    uio::check_fpga(&up)?;
    let root = paths.proc_root.parent().unwrap_or(Path::new("/"));
    if let Some(name) = loaded_bitstream(root) {
        if !name.ends_with("base.bit") {
            bail!(
                "PYNQ's base overlay is not what is loaded (PYNQ loaded {name}): reboot the \
                 board (its image loads base.bit) or load it: sudo python3 -c 'from \
                 pynq.overlays.base import BaseOverlay; BaseOverlay(\"base.bit\")'"
            );
        }
    }
    let bits = bits(s.board, &paths.proc_root)?;
    let fabric = DeviceSpec::Name(FABRIC.into());
    if let Err(e) = uio::find(&up, &fabric) {
        bail!(
            "the base overlay's interrupt device is missing ({e}): a stock PYNQ image has a \
             UIO device named \"fabric\" (uio_pdrv_genirq.of_id=generic-uio on the kernel \
             command line); is this a PYNQ image?"
        );
    }
    let source = match &s.regs {
        BaseRegs::DevMem => WindowSource::DevMem(paths.dev_dir.join("mem")),
        BaseRegs::Uio(name) => WindowSource::Uio(DeviceSpec::Name(name.clone())),
    };
    let bus = match mode {
        Mode::Exclusive => WindowsBus::open(&up, &source, &windows(), &fabric, None)?,
        Mode::Observe => WindowsBus::observe(&up, &source, &windows(), &fabric)?,
    };
    let mut seen = BTreeSet::new();
    warn_new_openers(&bus.irq_device().node, &paths.proc_root, &mut seen);
    Ok((
        Arc::new(bus),
        BaseConfig {
            bits,
            debounce_us: s.debounce_us,
        },
    ))
}

/// How often the daemon looks for other processes holding the interrupt device.
const OPENERS_EVERY: Duration = Duration::from_secs(5);
/// At most this many processes are named in one warning.
const OPENERS_NAMED: usize = 4;

/// The processes holding `node` (not this one) that are not in `seen`, which then
/// holds exactly the current holders: a process that closes and opens it again is new
/// again.
pub fn new_openers(node: &Path, proc_root: &Path, seen: &mut BTreeSet<u32>) -> Vec<(u32, String)> {
    let now = uio::openers(node, proc_root);
    let new: Vec<(u32, String)> = now
        .iter()
        .filter(|(pid, _)| !seen.contains(pid))
        .cloned()
        .collect();
    *seen = now.iter().map(|(pid, _)| *pid).collect();
    new
}

/// Warns, in one line, of the processes that newly hold the interrupt device.
fn warn_new_openers(node: &Path, proc_root: &Path, seen: &mut BTreeSet<u32>) {
    let new = new_openers(node, proc_root, seen);
    if new.is_empty() {
        return;
    }
    let mut who: Vec<String> = new
        .iter()
        .take(OPENERS_NAMED)
        .map(|(p, c)| format!("pid {p} ({c})"))
        .collect();
    if new.len() > OPENERS_NAMED {
        who.push(format!("{} more", new.len() - OPENERS_NAMED));
    }
    warn!(
        "{} is also open by {}: a notebook using PYNQ's Interrupt or a button wait \
         shares the base overlay's interrupt controller and resets its enables \
         (docs/board.md: what not to run beside it)",
        node.display(),
        who.join(", ")
    );
}

/// While the daemon runs: names each process that starts holding the interrupt device
/// (a notebook opened after the daemon), once per time it opens it; `seen` holds those
/// already named.
async fn watch_openers(node: PathBuf, proc_root: PathBuf, mut seen: BTreeSet<u32>) {
    let mut tick = tokio::time::interval(OPENERS_EVERY);
    loop {
        tick.tick().await;
        let (n, p) = (node.clone(), proc_root.clone());
        // reading /proc blocks: off the runtime's workers
        match tokio::task::spawn_blocking(move || {
            warn_new_openers(&n, &p, &mut seen);
            seen
        })
        .await
        {
            Ok(s) => seen = s,
            Err(_) => return,
        }
    }
}

/// The Verilated models of the base overlay, with the stimulus of the settings.
#[cfg(feature = "sim")]
pub fn open_sim(s: &BaseSettings) -> Result<(Arc<pynq_mqtt_sim::base::SimBaseBoard>, BaseConfig)> {
    use pynq_mqtt_sim::base::{BaseLayout, BaseSimConfig, SimBaseBoard, N_INPUTS};
    let layout = match s.board {
        PynqBoard::Z2 => BaseLayout::Z2,
        PynqBoard::Z1 | PynqBoard::Auto => BaseLayout::Z1,
    };
    let stimulus = match &s.stimulus {
        Some(p) => pynq_mqtt_sim::stimulus::load(p, N_INPUTS)?,
        None => Vec::new(),
    };
    let board = SimBaseBoard::start(BaseSimConfig {
        speed: s.speed,
        stimulus,
        layout,
    })?;
    let bits = match layout {
        BaseLayout::Z1 => BaseBits::Z1,
        BaseLayout::Z2 => BaseBits::Z2,
    };
    Ok((
        Arc::new(board),
        BaseConfig {
            bits,
            debounce_us: s.debounce_us,
        },
    ))
}

/// Opens `base` or `base-sim` for `doctor` and `regs`.
pub fn open(kind: BoardKind, s: &BaseSettings, paths: &SysPaths, mode: Mode) -> Result<Board> {
    if kind == BoardKind::BaseSim {
        #[cfg(feature = "sim")]
        {
            let (b, cfg) = open_sim(s)?;
            return Ok(Board::Base(b as Arc<dyn Bus>, cfg));
        }
        #[cfg(not(feature = "sim"))]
        bail!("board base-sim: this build leaves the simulated boards out (feature `sim`)");
    }
    let (b, cfg) = open_real(s, paths, mode)?;
    Ok(Board::Base(b as Arc<dyn Bus>, cfg))
}

/// `run --board base` and `run --board base-sim`.
pub fn run(rt: &tokio::runtime::Runtime, settings: &Settings, paths: &SysPaths) -> Result<()> {
    let bs = BaseSettings::from_settings(settings);
    let mut settings = settings.clone();
    if settings.values.board == BoardKind::BaseSim {
        #[cfg(feature = "sim")]
        {
            let (board, cfg) = open_sim(&bs)?;
            settings.base = Some(cfg);
            let b = Arc::clone(&board);
            return crate::daemon::run(
                rt,
                &settings,
                board as Arc<dyn Bus>,
                move || {
                    b.start_stimulus();
                },
                None,
            );
        }
        #[cfg(not(feature = "sim"))]
        bail!("board base-sim: this build leaves the simulated boards out (feature `sim`)");
    }
    let (bus, cfg) = open_real(&bs, paths, Mode::Exclusive).context("board base")?;
    info!(
        device = %bus.describe(),
        buttons_irq = cfg.bits.buttons,
        switches_irq = cfg.bits.switches,
        "PYNQ base overlay opened"
    );
    settings.base = Some(cfg);
    // the holders at open were named then; the watcher names those that come later
    let node = bus.irq_device().node.clone();
    let mut seen = BTreeSet::new();
    new_openers(&node, &paths.proc_root, &mut seen);
    let watcher = rt.spawn(watch_openers(node, paths.proc_root.clone(), seen));
    let r = crate::daemon::run(rt, &settings, bus as Arc<dyn Bus>, || {}, None);
    watcher.abort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_as_written() {
        for t in ["devmem", "uio:pynq_base"] {
            assert_eq!(t.parse::<BaseRegs>().unwrap().to_string(), t);
        }
        assert!("uio:".parse::<BaseRegs>().is_err());
        assert!("mem".parse::<BaseRegs>().is_err());
        for t in ["auto", "z1", "z2"] {
            assert_eq!(t.parse::<PynqBoard>().unwrap().to_string(), t);
        }
        assert_eq!("Pynq-Z2".parse::<PynqBoard>(), Ok(PynqBoard::Z2));
    }

    /// A process holding `node`, once it has become `sleep` (the shell opens it first).
    fn holder(node: &Path) -> std::process::Child {
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3<'{}'; exec sleep 30", node.display()))
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while !uio::openers(node, Path::new("/proc"))
            .iter()
            .any(|(p, c)| *p == child.id() && c == "sleep")
            && t.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    #[test]
    fn a_process_that_opens_the_interrupt_device_later_is_new_once_per_open() {
        let node = std::env::temp_dir().join(format!("pmq-openers-{}", std::process::id()));
        std::fs::write(&node, b"").unwrap();
        let proc_root = Path::new("/proc");
        let mut seen = BTreeSet::new();
        assert!(new_openers(&node, proc_root, &mut seen).is_empty());
        let mut a = holder(&node);
        let new = new_openers(&node, proc_root, &mut seen);
        assert_eq!(
            new,
            [(a.id(), "sleep".to_owned())],
            "the new holder is named"
        );
        assert!(
            new_openers(&node, proc_root, &mut seen).is_empty(),
            "and only once"
        );
        let _ = a.kill();
        let _ = a.wait();
        assert!(new_openers(&node, proc_root, &mut seen).is_empty());
        assert!(seen.is_empty(), "a holder that closed is forgotten");
        // opened again (a notebook restarted): named again
        let mut b = holder(&node);
        let new = new_openers(&node, proc_root, &mut seen);
        let _ = b.kill();
        let _ = b.wait();
        let _ = std::fs::remove_file(&node);
        assert_eq!(new, [(b.id(), "sleep".to_owned())]);
    }

    #[test]
    fn pynqs_state_file_names_the_bitstream() {
        let json = r#"{"bitfile_name": "/usr/local/share/pynq-venv/lib/python3.10/site-packages/pynq/overlays/base/base.bit", "timestamp": "x"}"#;
        assert!(bitfile_name(json).unwrap().ends_with("/base/base.bit"));
        assert_eq!(bitfile_name("{}"), None);
    }

    #[test]
    fn the_board_is_read_from_the_device_tree() {
        let root = std::env::temp_dir().join(format!("pmq-base-dt-{}", std::process::id()));
        let chosen = root.join("device-tree/chosen");
        std::fs::create_dir_all(&chosen).unwrap();
        assert!(bits(PynqBoard::Auto, &root)
            .unwrap_err()
            .to_string()
            .contains("--pynq-board"));
        std::fs::write(chosen.join("pynq_board"), b"Pynq-Z2\0").unwrap();
        assert_eq!(bits(PynqBoard::Auto, &root).unwrap(), BaseBits::Z2);
        std::fs::write(chosen.join("pynq_board"), b"Pynq-Z1\0").unwrap();
        assert_eq!(bits(PynqBoard::Auto, &root).unwrap(), BaseBits::Z1);
        assert_eq!(bits(PynqBoard::Z2, &root).unwrap(), BaseBits::Z2);
        std::fs::write(chosen.join("pynq_board"), b"ZCU104\0").unwrap();
        assert!(bits(PynqBoard::Auto, &root).is_err());
        let _ = std::fs::remove_dir_all(root);
    }
}
