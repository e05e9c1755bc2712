//! Several register windows as one bus, with the interrupt of another UIO device: how
//! the daemon reaches PYNQ's base overlay (`--board base`), whose GPIO blocks and
//! interrupt controller sit in five 64 KiB windows and whose interrupt is the stock
//! `fabric` UIO device.
//!
//! A bus offset is a window's `bus_offset` plus the register's offset in the window.
//! The windows come from /dev/mem at their physical addresses (root, as PYNQ itself
//! maps them), or from a generic-uio device holding them as maps 0..n (a small
//! device-tree overlay; no interrupt of its own, since `fabric` owns the line).

use std::fs::{File, OpenOptions as FsOpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{UioError, WindowsError};
use super::irq::{IrqFds, IrqLine};
use super::sysfs::{check_fpga, find, DeviceSpec, UioDevice, UioPaths};
use super::window::Window;
use super::{lock, open_error};
use crate::{Bus, BusError, IrqWait};

/// Where the register windows are mapped from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSource {
    /// /dev/mem (or a file standing in for it) at each window's physical address.
    DevMem(PathBuf),
    /// A generic-uio device whose maps 0..n are the windows, in order.
    Uio(DeviceSpec),
}

/// One register window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Where it starts on the bus.
    pub bus_offset: u32,
    /// Its physical address.
    pub phys: u64,
    /// Its size in bytes (a page multiple).
    pub len: usize,
}

/// The windows and the interrupt.
pub struct WindowsBus {
    windows: Vec<(WindowSpec, Window)>,
    /// None when opened to look only ([`WindowsBus::observe`]).
    irq: Option<IrqLine>,
    irq_device: UioDevice,
    source: String,
    _files: Vec<File>,
}

impl WindowsBus {
    /// Maps the windows from `source`, opens and locks the interrupt device `irq` and
    /// re-arms it once. The PL must hold a bitstream (touching registers of an empty PL
    /// hangs the board); that it is the right one is the caller's to check.
    pub fn open(
        paths: &UioPaths,
        source: &WindowSource,
        windows: &[WindowSpec],
        irq: &DeviceSpec,
        irq_fds: Option<IrqFds>,
    ) -> Result<Self, WindowsError> {
        Self::open_with(paths, source, windows, irq, Some(irq_fds))
    }

    /// Maps the windows to look at them beside a running daemon: no interrupt, no
    /// lock (`regs`). Registers may still be written: the caller writes none.
    pub fn observe(
        paths: &UioPaths,
        source: &WindowSource,
        windows: &[WindowSpec],
        irq: &DeviceSpec,
    ) -> Result<Self, WindowsError> {
        Self::open_with(paths, source, windows, irq, None)
    }

    fn open_with(
        paths: &UioPaths,
        source: &WindowSource,
        windows: &[WindowSpec],
        irq: &DeviceSpec,
        irq_fds: Option<Option<IrqFds>>,
    ) -> Result<Self, WindowsError> {
        check_fpga(paths)?;
        let irq_device = find(paths, irq)?;
        let irq_file = FsOpenOptions::new()
            .read(true)
            .write(irq_fds.is_some())
            .open(&irq_device.node)
            .map_err(|e| open_error(&irq_device, e))?;
        if irq_fds.is_some() {
            lock::lock_exclusive(&irq_file, &irq_device.node, &paths.proc)?;
        }
        let mut files = Vec::new();
        let mut mapped = Vec::new();
        let describe;
        match source {
            WindowSource::DevMem(path) => {
                let file = FsOpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_SYNC)
                    .open(path)
                    .map_err(|e| WindowsError::DevMem {
                        path: path.clone(),
                        source: e,
                    })?;
                for w in windows {
                    let win = Window::map_at(&file, w.phys, w.len, 0, true)
                        .map_err(|e| map_error(path, e))?;
                    mapped.push((*w, win));
                }
                describe = path.display().to_string();
                files.push(file);
            }
            WindowSource::Uio(spec) => {
                let dev = find(paths, spec)?;
                let file = FsOpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&dev.node)
                    .map_err(|e| open_error(&dev, e))?;
                let page = mmap_rs::MmapOptions::page_size();
                for (n, w) in windows.iter().enumerate() {
                    let (addr, size) = read_map(&dev.sysfs, n);
                    if addr != Some(w.phys) || size.is_none_or(|s| s < w.len) {
                        return Err(WindowsError::Map {
                            node: dev.node.clone(),
                            map: n,
                            found: match (addr, size) {
                                (Some(a), Some(s)) => format!("{a:#x} ({s} bytes)"),
                                _ => "missing".into(),
                            },
                            expected: w.phys,
                        });
                    }
                    let win = Window::map_at(&file, (n * page) as u64, w.len, 0, true)
                        .map_err(|e| map_error(&dev.node, e))?;
                    mapped.push((*w, win));
                }
                describe = dev.node.display().to_string();
                files.push(file);
            }
        }
        let line = match irq_fds {
            None => None,
            Some(given) => {
                let fds = match given {
                    Some(fds) => fds,
                    None => {
                        let dup = |f: &File| {
                            f.try_clone()
                                .map(OwnedFd::from)
                                .map_err(|e| UioError::io("cannot duplicate", &irq_device.node, e))
                        };
                        IrqFds {
                            wait: dup(&irq_file)?,
                            rearm: dup(&irq_file)?,
                        }
                    }
                };
                let line = IrqLine::new(fds).map_err(|e| {
                    UioError::io("cannot set up the interrupt of", &irq_device.node, e)
                })?;
                line.rearm_at_open().map_err(|e| {
                    UioError::io(
                        "cannot re-arm the interrupt of",
                        &irq_device.node,
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                Some(line)
            }
        };
        files.push(irq_file);
        Ok(Self {
            windows: mapped,
            irq: line,
            irq_device,
            source: describe,
            _files: files,
        })
    }

    /// The interrupt's UIO device (`fabric`).
    pub fn irq_device(&self) -> &UioDevice {
        &self.irq_device
    }

    fn irq(&self) -> Result<&IrqLine, BusError> {
        self.irq.as_ref().ok_or(BusError::ReadOnly {
            op: "the interrupt",
        })
    }

    fn find(&self, offset: u32) -> Result<(&Window, u32), BusError> {
        self.windows
            .iter()
            .find(|(w, _)| offset >= w.bus_offset && ((offset - w.bus_offset) as usize) < w.len)
            .map(|(w, win)| (win, offset - w.bus_offset))
            .ok_or(BusError::BadOffset {
                offset,
                window: self
                    .windows
                    .last()
                    .map_or(0, |(w, _)| w.bus_offset as usize + w.len),
            })
    }
}

/// Reads `maps/map<n>/{addr,size}` of a UIO device from sysfs.
fn read_map(sysfs: &Path, n: usize) -> (Option<u64>, Option<usize>) {
    let read = |f: &str| {
        let text = std::fs::read_to_string(sysfs.join(format!("maps/map{n}/{f}"))).ok()?;
        let t = text.trim();
        u64::from_str_radix(t.trim_start_matches("0x"), 16).ok()
    };
    (
        read("addr"),
        read("size").and_then(|s| usize::try_from(s).ok()),
    )
}

fn map_error(path: &Path, e: mmap_rs::Error) -> UioError {
    UioError::Map {
        node: path.to_owned(),
        source: e,
    }
}

impl Bus for WindowsBus {
    fn read32(&self, offset: u32) -> Result<u32, BusError> {
        let (win, at) = self.find(offset)?;
        win.read32(at)
    }

    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        let (win, at) = self.find(offset)?;
        win.write32(at, value)
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
        format!(
            "base:{} + irq {} ({})",
            self.source,
            self.irq_device.node.display(),
            self.irq_device.name
        )
    }
}
