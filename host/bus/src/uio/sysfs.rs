//! Finding the device: `/sys/class/uio/uioN/{name,maps/map0/*}`, and the reasons it
//! may be missing (driver not loaded, node not bound, overlay not loaded, PL not
//! programmed). Every path hangs off [`UioPaths`], so tests use a fake tree.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::UioError;

/// The UIO driver the overlay binds to.
pub const GENIRQ_DRIVER: &str = "uio_pdrv_genirq";

/// Where sysfs, the device nodes and procfs are: `/sys`, `/dev`, `/proc` on a board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UioPaths {
    pub sys: PathBuf,
    pub dev: PathBuf,
    pub proc: PathBuf,
}

impl Default for UioPaths {
    fn default() -> Self {
        Self {
            sys: "/sys".into(),
            dev: "/dev".into(),
            proc: "/proc".into(),
        }
    }
}

impl UioPaths {
    /// `/sys/class/uio`.
    pub fn class_uio(&self) -> PathBuf {
        self.sys.join("class/uio")
    }

    /// `/sys/bus/platform/drivers/uio_pdrv_genirq`.
    pub fn genirq_driver(&self) -> PathBuf {
        self.sys.join("bus/platform/drivers").join(GENIRQ_DRIVER)
    }

    /// `/sys/class/fpga_manager/fpga0/state`.
    pub fn fpga_state(&self) -> PathBuf {
        self.sys.join("class/fpga_manager/fpga0/state")
    }
}

/// Which device: by its UIO name, or an explicit node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The name in `/sys/class/uio/*/name` (the overlay's `linux,uio-name`).
    Name(String),
    /// A node such as `/dev/uio4`.
    Node(PathBuf),
}

impl FromStr for DeviceSpec {
    type Err = std::convert::Infallible;

    /// A path (containing `/`) is a node; anything else is a name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s.contains('/') {
            DeviceSpec::Node(s.into())
        } else {
            DeviceSpec::Name(s.into())
        })
    }
}

/// In a config file, the device's text: a name or a node.
impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or_else(|e| match e {}))
    }
}

impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Name(n) => write!(f, "{n}"),
            DeviceSpec::Node(p) => write!(f, "{}", p.display()),
        }
    }
}

/// map0 as sysfs describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// Physical address (`maps/map0/addr`).
    pub addr: u64,
    /// Size in bytes (`maps/map0/size`).
    pub size: usize,
    /// Where the registers start inside the first mapped page (`maps/map0/offset`).
    pub offset: usize,
}

impl MapInfo {
    /// Bytes mapped: the kernel maps whole pages, so `size` rounded up to a page.
    pub fn mapped_len(&self) -> usize {
        let page = mmap_rs::MmapOptions::page_size();
        self.size.div_ceil(page).saturating_mul(page)
    }

    /// Bytes of register window: from the register base (`offset` into the first
    /// page) to the end of the mapping.
    pub fn window(&self) -> usize {
        self.mapped_len().saturating_sub(self.offset)
    }
}

/// A UIO device found in sysfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UioDevice {
    /// N of uioN.
    pub index: u32,
    /// Its UIO name.
    pub name: String,
    /// `/dev/uioN`.
    pub node: PathBuf,
    /// `/sys/class/uio/uioN`.
    pub sysfs: PathBuf,
    /// The kernel driver behind it (`uio_pdrv_genirq`), if sysfs tells.
    pub driver: Option<String>,
    pub map: MapInfo,
}

/// Finds the device and reads its map0; every way this fails has its own error.
pub fn find(paths: &UioPaths, spec: &DeviceSpec) -> Result<UioDevice, UioError> {
    match spec {
        DeviceSpec::Name(name) => find_by_name(paths, name),
        DeviceSpec::Node(node) => {
            // /dev/uioN, or a link to it such as the udev rule's /dev/pynq-mqtt
            let index = uio_index(node)
                .or_else(|| fs::canonicalize(node).ok().and_then(|p| uio_index(&p)))
                .ok_or_else(|| UioError::NotUioNode { node: node.clone() })?;
            let sysfs = paths.class_uio().join(format!("uio{index}"));
            if !sysfs.is_dir() {
                return Err(UioError::NoSuchDevice {
                    node: node.clone(),
                    sysfs,
                });
            }
            describe(paths, index, node.clone())
        }
    }
}

/// N of a path ending in `uioN`.
fn uio_index(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_prefix("uio")?
        .parse()
        .ok()
}

fn find_by_name(paths: &UioPaths, name: &str) -> Result<UioDevice, UioError> {
    let present = list(paths)?;
    let matches: Vec<&(u32, String)> = present.iter().filter(|(_, n)| n == name).collect();
    match matches.as_slice() {
        [] => Err(explain_missing(paths, name, &present)),
        [(index, _)] => describe(paths, *index, paths.dev.join(format!("uio{index}"))),
        several => Err(UioError::Ambiguous {
            name: name.into(),
            nodes: several
                .iter()
                .map(|(i, _)| paths.dev.join(format!("uio{i}")).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Every UIO device as (N, name), sorted by N; empty when there is no UIO class.
pub fn list(paths: &UioPaths) -> Result<Vec<(u32, String)>, UioError> {
    let class = paths.class_uio();
    let entries = match fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(UioError::io("cannot list", class, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(index) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix("uio"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // a device that vanishes while we look is simply not there
        if let Ok(name) = fs::read_to_string(entry.path().join("name")) {
            out.push((index, name.trim_end().to_owned()));
        }
    }
    out.sort();
    Ok(out)
}

/// Why no UIO device carries `name`: driver missing, node unbound, or overlay absent.
fn explain_missing(paths: &UioPaths, name: &str, present: &[(u32, String)]) -> UioError {
    let driver = paths.genirq_driver();
    if !driver.is_dir() {
        return UioError::DriverMissing { path: driver };
    }
    if let Some(node) = unbound_node_named(paths, name) {
        return UioError::NotBound {
            name: name.into(),
            node,
        };
    }
    let found = if present.is_empty() {
        "none".to_owned()
    } else {
        present
            .iter()
            .map(|(i, n)| format!("uio{i} \"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    UioError::NotFound {
        name: name.into(),
        found,
    }
}

/// A platform device whose device-tree node asks for UIO name `name` but that no
/// driver has bound.
fn unbound_node_named(paths: &UioPaths, name: &str) -> Option<String> {
    let devices = fs::read_dir(paths.sys.join("bus/platform/devices")).ok()?;
    for dev in devices.flatten() {
        let path = dev.path();
        let Ok(raw) = fs::read(path.join("of_node/linux,uio-name")) else {
            continue;
        };
        let uio_name = String::from_utf8_lossy(&raw);
        if uio_name.trim_end_matches(['\0', '\n']) == name && !path.join("driver").exists() {
            return Some(dev.file_name().to_string_lossy().into_owned());
        }
    }
    None
}

/// Reads name, driver and map0 of uioN.
fn describe(paths: &UioPaths, index: u32, node: PathBuf) -> Result<UioDevice, UioError> {
    let sysfs = paths.class_uio().join(format!("uio{index}"));
    let name = read_attr(&sysfs.join("name"))?;
    let driver = fs::read_link(sysfs.join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
    let map_dir = sysfs.join("maps/map0");
    if !map_dir.is_dir() {
        return Err(UioError::NoMap {
            node,
            path: map_dir,
        });
    }
    let map = MapInfo {
        addr: read_hex(&map_dir.join("addr"))?,
        size: usize::try_from(read_hex(&map_dir.join("size"))?).unwrap_or(usize::MAX),
        // older kernels have no offset attribute: the map starts at its page
        offset: match fs::read_to_string(map_dir.join("offset")) {
            Ok(_) => usize::try_from(read_hex(&map_dir.join("offset"))?).unwrap_or(usize::MAX),
            Err(_) => 0,
        },
    };
    if !node.exists() {
        return Err(UioError::NoNode { node, sysfs });
    }
    Ok(UioDevice {
        index,
        name,
        node,
        sysfs,
        driver,
        map,
    })
}

/// Whether the PL is programmed, from the FPGA manager; `None` without one (not a
/// Zynq, or an old kernel), `Some(state)` otherwise ("operating" when programmed).
pub fn fpga_state(paths: &UioPaths) -> Option<String> {
    fs::read_to_string(paths.fpga_state())
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// Fails when the FPGA manager says the PL holds no bitstream.
pub fn check_fpga(paths: &UioPaths) -> Result<(), UioError> {
    match fpga_state(paths) {
        Some(state) if state != "operating" => Err(UioError::FpgaNotProgrammed {
            path: paths.fpga_state(),
            state,
        }),
        _ => Ok(()),
    }
}

/// What the kernel offers for UIO, for `doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverStatus {
    /// `/sys/class/uio` exists (the UIO core is loaded).
    pub uio_class: bool,
    /// `uio_pdrv_genirq` is registered.
    pub genirq: bool,
    /// `uio_pdrv_genirq.of_id=generic-uio` is on the kernel command line (`None`:
    /// cannot read it).
    pub of_id_on_cmdline: Option<bool>,
}

/// Looks at what the kernel offers for UIO.
pub fn driver_status(paths: &UioPaths) -> DriverStatus {
    DriverStatus {
        uio_class: paths.class_uio().is_dir(),
        genirq: paths.genirq_driver().is_dir(),
        of_id_on_cmdline: on_cmdline(paths, |w| w.starts_with("uio_pdrv_genirq.of_id=")),
    }
}

/// Whether a word of the kernel command line matches (`None`: cannot read it).
fn on_cmdline(paths: &UioPaths, matches: impl Fn(&str) -> bool) -> Option<bool> {
    fs::read_to_string(paths.proc.join("cmdline"))
        .ok()
        .map(|c| c.split_whitespace().any(|w| matches(w.trim_matches('"'))))
}

/// What `pynq-mqtt-overlay` needs of the kernel to program the PL without PYNQ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderSupport {
    /// `clk_ignore_unused` is on the kernel command line (`None`: cannot read it).
    /// Without it the kernel gates the PL clocks nothing claims (FCLK0) at boot, and
    /// the peripheral sits unclocked; PYNQ images set it.
    pub clk_ignore_unused: Option<bool>,
    /// `fpga0` has the `firmware` and `flags` files of the Xilinx kernel (linux-xlnx);
    /// the mainline FPGA manager has neither, so the loader cannot program through it.
    pub xilinx_fpga_sysfs: bool,
}

impl LoaderSupport {
    /// Both are there.
    pub fn complete(&self) -> bool {
        self.clk_ignore_unused == Some(true) && self.xilinx_fpga_sysfs
    }
}

/// What the fallback overlay loader would find; `None` without an FPGA manager.
pub fn loader_support(paths: &UioPaths) -> Option<LoaderSupport> {
    let fpga0 = paths.fpga_state().parent()?.to_path_buf();
    if !fpga0.is_dir() {
        return None;
    }
    Some(LoaderSupport {
        clk_ignore_unused: on_cmdline(paths, |w| w == "clk_ignore_unused"),
        xilinx_fpga_sysfs: fpga0.join("firmware").exists() && fpga0.join("flags").exists(),
    })
}

fn read_attr(path: &Path) -> Result<String, UioError> {
    fs::read_to_string(path)
        .map(|s| s.trim_end().to_owned())
        .map_err(|e| UioError::io("cannot read", path, e))
}

fn read_hex(path: &Path) -> Result<u64, UioError> {
    let value = read_attr(path)?;
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(&value);
    u64::from_str_radix(digits, 16).map_err(|_| UioError::BadSysfs {
        path: path.into(),
        value,
        what: "a hexadecimal number",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs() {
        assert_eq!(
            "pynq_mqtt".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Name("pynq_mqtt".into())
        );
        assert_eq!(
            "/dev/uio4".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Node("/dev/uio4".into())
        );
        assert_eq!(
            "./uio1".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Node("./uio1".into())
        );
    }
}
