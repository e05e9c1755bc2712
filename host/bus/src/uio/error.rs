//! What can keep the UIO device from opening. Every message names the cause and the
//! fix in one line: it is what a user reads when the daemon does not start.

use std::path::PathBuf;

/// Why a UIO device could not be found, opened or mapped.
#[derive(Debug, thiserror::Error)]
pub enum UioError {
    /// No `uio_pdrv_genirq` driver in the kernel (not built in, module not loaded).
    #[error(
        "the UIO driver uio_pdrv_genirq is not loaded ({path} is missing): add \
         uio_pdrv_genirq.of_id=generic-uio to the kernel command line and reboot, or \
         `modprobe uio_pdrv_genirq of_id=generic-uio`"
    )]
    DriverMissing { path: PathBuf },

    /// The overlay's node exists but no driver took it: `of_id` is not set.
    #[error(
        "the device-tree node {node} (linux,uio-name = \"{name}\") is not bound to \
         uio_pdrv_genirq: add uio_pdrv_genirq.of_id=generic-uio to the kernel command \
         line (stock PYNQ images have it) and reboot"
    )]
    NotBound { name: String, node: String },

    /// No UIO device of that name: the overlay is not loaded.
    #[error(
        "no UIO device named \"{name}\" (UIO devices here: {found}): load the overlay \
         (pynq_mqtt.bit with pynq_mqtt.dtbo beside it, e.g. Overlay(\"pynq_mqtt.bit\") \
         in PYNQ), or pass --device NAME|/dev/uioN"
    )]
    NotFound { name: String, found: String },

    /// Several UIO devices carry the name.
    #[error(
        "several UIO devices are named \"{name}\" ({nodes}): pass --device /dev/uioN to \
         choose one"
    )]
    Ambiguous { name: String, nodes: String },

    /// An explicit device path that is not `uioN`.
    #[error("{node} is not a UIO device node: expected /dev/uioN or a device name")]
    NotUioNode { node: PathBuf },

    /// An explicit `/dev/uioN` that sysfs does not know.
    #[error(
        "{node}: no such UIO device ({sysfs} is missing): load the overlay, or check \
         the number against /sys/class/uio/*/name"
    )]
    NoSuchDevice { node: PathBuf, sysfs: PathBuf },

    /// sysfs lists the device but its node is missing.
    #[error(
        "{node} is missing although {sysfs} exists: udev or devtmpfs did not create the \
         node; check that /dev is devtmpfs (`mount | grep devtmpfs`)"
    )]
    NoNode { node: PathBuf, sysfs: PathBuf },

    /// The device has no memory map.
    #[error(
        "{node} has no memory map ({path} is missing): the overlay's node needs a `reg` \
         property with the IP's address and size"
    )]
    NoMap { node: PathBuf, path: PathBuf },

    /// A sysfs attribute with an unexpected value.
    #[error(
        "{path}: cannot parse {value:?} as {what}: this kernel's UIO sysfs layout is not supported"
    )]
    BadSysfs {
        path: PathBuf,
        value: String,
        what: &'static str,
    },

    /// map0 is smaller than the register map.
    #[error(
        "map0 of {node} leaves {window} bytes for registers but the register map needs \
         {need}: make the `reg` size of the overlay's node at least {need:#x} (the IP's \
         window is 64 KiB)"
    )]
    MapTooSmall {
        node: PathBuf,
        window: usize,
        need: usize,
    },

    /// The register base inside the map is not word aligned.
    #[error("map0 of {node} starts {offset:#x} bytes into its page, which is not 4-byte aligned: fix the `reg` address of the overlay's node")]
    Misaligned { node: PathBuf, offset: usize },

    /// The programmable logic holds no bitstream: a register access would hang the bus.
    #[error(
        "the FPGA is not programmed ({path} says \"{state}\"): load the pynq_mqtt overlay \
         first; touching the registers of an unprogrammed PL hangs the board"
    )]
    FpgaNotProgrammed { path: PathBuf, state: String },

    /// The node exists but this user may not open it.
    #[error(
        "permission denied on {node} (owner {owner}, mode {mode:03o}): run as root, or add \
         a udev rule `SUBSYSTEM==\"uio\", ATTR{{name}}==\"{name}\", GROUP=\"pynq-mqtt\", \
         MODE=\"0660\"` and `usermod -aG pynq-mqtt $USER` (then log in again)"
    )]
    Permission {
        node: PathBuf,
        name: String,
        owner: String,
        mode: u32,
    },

    /// Another process holds the device's lock.
    #[error(
        "{node} is in use{holder}: another pynq-mqtt daemon is running; stop it first \
         (e.g. `systemctl stop pynq-mqtt`)"
    )]
    Busy { node: PathBuf, holder: String },

    /// mmap failed.
    #[error("cannot map {node}: {source}")]
    Map {
        node: PathBuf,
        #[source]
        source: mmap_rs::Error,
    },

    /// Any other operating-system error, with what was being done.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why the base overlay's register windows could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum WindowsError {
    /// /dev/mem cannot be opened: not root.
    #[error(
        "cannot open {path} for the base overlay's registers ({source}): run as root (as \
         PYNQ itself does), or insert the generic-uio overlay (docs/board.md) and pass \
         --base-regs uio:NAME"
    )]
    DevMem {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A map of the generic-uio device is missing or not at its window's address.
    #[error(
        "map{map} of {node} is {found}, expected {expected:#x}: the generic-uio node must \
         hold the base overlay's five windows as maps 0-4 (docs/board.md)"
    )]
    Map {
        node: PathBuf,
        map: usize,
        found: String,
        expected: u64,
    },
    /// Finding, opening or mapping failed as for any UIO device.
    #[error(transparent)]
    Uio(#[from] UioError),
}

impl UioError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        UioError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
