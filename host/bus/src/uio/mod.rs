//! The board backend: the peripheral through Linux UIO.
//!
//! [`UioBus::open`] finds the device by name in `/sys/class/uio/*/name` (or takes an
//! explicit `/dev/uioN`), reads map0's size and offset from sysfs, refuses a PL
//! without a bitstream, opens the node, takes an exclusive `flock` on it (one daemon
//! per device), maps map0 `MAP_SHARED` and re-arms the interrupt once (a daemon that
//! died between an interrupt and its re-arm leaves the line masked). Registers are
//! volatile 32-bit accesses; the interrupt is a 4-byte read under `ppoll`, re-armed
//! with a 4-byte write of 1.
//!
//! Every path comes from [`UioPaths`] and the interrupt descriptors can be replaced
//! ([`OpenOptions::irq_fds`]), so tests drive this exact code with a fake sysfs tree,
//! a regular file as the device and pipes as the interrupt.

mod error;
mod irq;
mod lock;
mod sysfs;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod window;
mod windows;

use std::fs::{File, OpenOptions as FsOpenOptions};
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use tracing::debug;

use crate::{Bus, BusError, IrqWait};
pub use error::{UioError, WindowsError};
pub use irq::IrqFds;
use irq::IrqLine;
pub use lock::openers;
pub use sysfs::{
    check_fpga, driver_status, find, fpga_state, list, loader_support, DeviceSpec, DriverStatus,
    LoaderSupport, MapInfo, UioDevice, UioPaths, GENIRQ_DRIVER,
};
use window::Window;
pub use windows::{WindowSource, WindowSpec, WindowsBus};

/// How the device is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read and write, the interrupt, and the exclusive lock: the daemon, `doctor`.
    Exclusive,
    /// Read only, no interrupt, no lock: looking at registers while a daemon runs.
    /// Writes fail with [`BusError::ReadOnly`]; the mapping itself is read-only.
    Observe,
}

/// Options of [`UioBus::open`].
#[derive(Debug)]
pub struct OpenOptions {
    pub mode: Mode,
    /// Bytes the register map needs from the register base; a smaller map0 is an error.
    pub min_size: usize,
    /// Wait for and re-arm the interrupt on these instead of the device file (tests).
    pub irq_fds: Option<IrqFds>,
}

impl OpenOptions {
    pub fn new(mode: Mode, min_size: usize) -> Self {
        Self {
            mode,
            min_size,
            irq_fds: None,
        }
    }

    /// Waits for and re-arms the interrupt on `fds` (pipes in tests).
    pub fn irq_fds(mut self, fds: IrqFds) -> Self {
        self.irq_fds = Some(fds);
        self
    }
}

/// The peripheral behind `/dev/uioN`.
pub struct UioBus {
    device: UioDevice,
    window: Window,
    irq: Option<IrqLine>,
    /// The open device file: holds the lock.
    _file: File,
}

impl UioBus {
    /// Finds, checks, opens, locks and maps the device.
    pub fn open(paths: &UioPaths, spec: &DeviceSpec, opts: OpenOptions) -> Result<Self, UioError> {
        let device = find(paths, spec)?;
        Self::open_device(paths, device, opts)
    }

    /// Opens a device that [`find`] returned.
    pub fn open_device(
        paths: &UioPaths,
        device: UioDevice,
        opts: OpenOptions,
    ) -> Result<Self, UioError> {
        let MapInfo { size, offset, .. } = device.map;
        if !offset.is_multiple_of(4) {
            return Err(UioError::Misaligned {
                node: device.node,
                offset,
            });
        }
        // the kernel maps whole pages: map0 spans `size` rounded up to a page, and
        // the registers start `offset` bytes into it
        let map_len = device.map.mapped_len();
        let window = device.map.window();
        if size == 0 || window < opts.min_size.max(4) {
            return Err(UioError::MapTooSmall {
                node: device.node,
                window,
                need: opts.min_size,
            });
        }
        check_fpga(paths)?;

        let writable = opts.mode == Mode::Exclusive;
        let file = FsOpenOptions::new()
            .read(true)
            .write(writable)
            .open(&device.node)
            .map_err(|e| open_error(&device, e))?;
        if writable {
            lock::lock_exclusive(&file, &device.node, &paths.proc)?;
        }
        let window = Window::map(&file, map_len, offset, writable).map_err(|e| UioError::Map {
            node: device.node.clone(),
            source: e,
        })?;
        let irq = if writable {
            let fds = match opts.irq_fds {
                Some(fds) => fds,
                None => {
                    let dup = |f: &File| {
                        f.try_clone()
                            .map(OwnedFd::from)
                            .map_err(|e| UioError::io("cannot duplicate", &device.node, e))
                    };
                    IrqFds {
                        wait: dup(&file)?,
                        rearm: dup(&file)?,
                    }
                }
            };
            let line = IrqLine::new(fds)
                .map_err(|e| UioError::io("cannot set up the interrupt of", &device.node, e))?;
            line.rearm_at_open().map_err(|e| match e {
                BusError::Io { source, .. } => {
                    UioError::io("cannot re-arm the interrupt of", &device.node, source)
                }
                other => UioError::io(
                    "cannot re-arm the interrupt of",
                    &device.node,
                    std::io::Error::other(other.to_string()),
                ),
            })?;
            Some(line)
        } else {
            None
        };
        debug!(
            node = %device.node.display(),
            name = %device.name,
            addr = format_args!("{:#x}", device.map.addr),
            size = device.map.size,
            offset = device.map.offset,
            ?opts.mode,
            "UIO device mapped"
        );
        Ok(Self {
            device,
            window,
            irq,
            _file: file,
        })
    }

    /// What sysfs said about the device.
    pub fn device(&self) -> &UioDevice {
        &self.device
    }

    /// Bytes of register window from the register base.
    pub fn window(&self) -> usize {
        self.window.len()
    }

    /// The kernel's interrupt count as of the last [`Bus::wait_irq`] that fired.
    pub fn irq_count(&self) -> u32 {
        self.irq.as_ref().map_or(0, IrqLine::count)
    }

    /// Whether the device is open read-only ([`Mode::Observe`]).
    pub fn read_only(&self) -> bool {
        !self.window.writable()
    }

    fn irq(&self) -> Result<&IrqLine, BusError> {
        self.irq.as_ref().ok_or(BusError::ReadOnly {
            op: "the interrupt",
        })
    }
}

impl Bus for UioBus {
    fn read32(&self, offset: u32) -> Result<u32, BusError> {
        self.window.read32(offset)
    }

    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        self.window.write32(offset, value)
    }

    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        self.irq()?.wait(timeout)
    }

    fn rearm_irq(&self) -> Result<(), BusError> {
        self.irq()?.rearm()
    }

    fn wake_waiter(&self) {
        if let Some(irq) = &self.irq {
            irq.wake();
        }
    }

    fn describe(&self) -> String {
        format!("uio:{} ({})", self.device.node.display(), self.device.name)
    }
}

/// Turns an `open` failure into the error that names its fix.
fn open_error(device: &UioDevice, e: std::io::Error) -> UioError {
    match e.kind() {
        ErrorKind::PermissionDenied => permission_error(device, &device.node),
        ErrorKind::NotFound => UioError::NoNode {
            node: device.node.clone(),
            sysfs: device.sysfs.clone(),
        },
        _ => UioError::io("cannot open", &device.node, e),
    }
}

/// [`UioError::Permission`] with the node's owner and mode.
pub fn permission_error(device: &UioDevice, node: &Path) -> UioError {
    let (owner, mode) = match std::fs::metadata(node) {
        Ok(m) => (
            format!("{}:{}", user_name(m.uid()), group_name(m.gid())),
            m.mode() & 0o7777,
        ),
        Err(_) => ("?".into(), 0),
    };
    UioError::Permission {
        node: node.into(),
        name: device.name.clone(),
        owner,
        mode,
    }
}

fn user_name(uid: u32) -> String {
    lookup_name("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
}

fn group_name(gid: u32) -> String {
    lookup_name("/etc/group", gid).unwrap_or_else(|| gid.to_string())
}

/// The name of id `id` in a passwd/group style file (`name:x:id:...`).
fn lookup_name(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        (f.next()?.parse::<u32>().ok()? == id).then(|| name.to_owned())
    })
}
