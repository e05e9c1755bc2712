//! A board without a board, for tests (feature `test-support`): a fake sysfs tree laid
//! out as the kernel does it, a regular file standing in for `/dev/uioN` (mapped
//! `MAP_SHARED` exactly like the device), and pipes standing in for the interrupt.

use std::fs;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{symlink, FileExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{IrqFds, UioPaths};

/// A temporary root with `sys/`, `dev/` and `proc/`; removed on drop.
pub struct FakeUio {
    root: PathBuf,
    pub paths: UioPaths,
}

/// One UIO device to create.
#[derive(Clone, Debug)]
pub struct FakeDevice {
    pub index: u32,
    pub name: String,
    pub addr: u64,
    pub size: usize,
    pub offset: usize,
    /// Create the platform device bound to `uio_pdrv_genirq`.
    pub bound: bool,
}

impl FakeDevice {
    /// uio`index` named `name`: 64 KiB at 0x43C0_0000, bound to uio_pdrv_genirq.
    pub fn new(index: u32, name: &str) -> Self {
        Self {
            index,
            name: name.into(),
            addr: 0x43C0_0000,
            size: 0x1_0000,
            offset: 0,
            bound: true,
        }
    }
}

impl FakeUio {
    /// An empty tree with `uio_pdrv_genirq` registered and the PL programmed.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "pynq-mqtt-uio-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let paths = UioPaths {
            sys: root.join("sys"),
            dev: root.join("dev"),
            proc: root.join("proc"),
        };
        for d in [&paths.sys, &paths.dev, &paths.proc] {
            fs::create_dir_all(d).unwrap();
        }
        fs::create_dir_all(paths.class_uio()).unwrap();
        fs::create_dir_all(paths.genirq_driver()).unwrap();
        fs::create_dir_all(paths.sys.join("bus/platform/devices")).unwrap();
        let fake = Self { root, paths };
        fake.set_fpga_state("operating");
        fake
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes `/sys/bus/platform/drivers/uio_pdrv_genirq` (driver not loaded).
    pub fn remove_driver(&self) {
        fs::remove_dir_all(self.paths.genirq_driver()).unwrap();
    }

    /// Removes `/sys/class/uio` (no UIO device registered at all).
    pub fn remove_class(&self) {
        fs::remove_dir_all(self.paths.class_uio()).unwrap();
    }

    /// Writes the FPGA manager's state (`operating` when programmed).
    pub fn set_fpga_state(&self, state: &str) {
        let dir = self.paths.sys.join("class/fpga_manager/fpga0");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("state"), format!("{state}\n")).unwrap();
    }

    /// Adds the Xilinx kernel's `firmware` and `flags` files to `fpga0`.
    pub fn add_xilinx_fpga_files(&self) {
        let dir = self.paths.sys.join("class/fpga_manager/fpga0");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("firmware"), "\n").unwrap();
        fs::write(dir.join("flags"), "0\n").unwrap();
    }

    /// Writes `/proc/cmdline`.
    pub fn set_cmdline(&self, cmdline: &str) {
        fs::write(self.paths.proc.join("cmdline"), format!("{cmdline}\n")).unwrap();
    }

    /// A device-tree node asking for UIO name `uio_name`, bound to no driver.
    pub fn add_platform_node(&self, dir_name: &str, uio_name: &str, bound: bool) -> PathBuf {
        let dev = self.paths.sys.join("devices/platform").join(dir_name);
        fs::create_dir_all(dev.join("of_node")).unwrap();
        fs::write(
            dev.join("of_node/linux,uio-name"),
            format!("{uio_name}\0").as_bytes(),
        )
        .unwrap();
        fs::write(dev.join("of_node/compatible"), b"generic-uio\0").unwrap();
        if bound {
            symlink(self.paths.genirq_driver(), dev.join("driver")).unwrap();
        }
        let link = self.paths.sys.join("bus/platform/devices").join(dir_name);
        let _ = fs::remove_file(&link);
        symlink(&dev, link).unwrap();
        dev
    }

    /// Creates uioN in sysfs, its platform device, and `dev/uioN` as a zeroed file
    /// covering map0. Returns the node.
    pub fn add(&self, d: &FakeDevice) -> PathBuf {
        let platform = self.add_platform_node(
            &format!("{:x}.{}", d.addr, d.name.replace('_', "-")),
            &d.name,
            d.bound,
        );
        let sysfs = self.paths.class_uio().join(format!("uio{}", d.index));
        let map = sysfs.join("maps/map0");
        fs::create_dir_all(&map).unwrap();
        fs::write(sysfs.join("name"), format!("{}\n", d.name)).unwrap();
        fs::write(sysfs.join("version"), "devicetree\n").unwrap();
        symlink(&platform, sysfs.join("device")).unwrap();
        fs::write(map.join("name"), format!("{}\n", d.name)).unwrap();
        fs::write(map.join("addr"), format!("0x{:08x}\n", d.addr)).unwrap();
        fs::write(map.join("size"), format!("0x{:08x}\n", d.size)).unwrap();
        fs::write(map.join("offset"), format!("0x{:x}\n", d.offset)).unwrap();
        let node = self.node(d.index);
        let page = mmap_rs::MmapOptions::page_size();
        let f = fs::File::create(&node).unwrap();
        f.set_len(d.size.div_ceil(page).max(1) as u64 * page as u64)
            .unwrap();
        node
    }

    /// `dev/uioN`.
    pub fn node(&self, index: u32) -> PathBuf {
        self.paths.dev.join(format!("uio{index}"))
    }

    /// Writes a register: at map offset + `reg` in the device file.
    pub fn write_reg(&self, index: u32, reg: u32, value: u32) {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(self.node(index))
            .unwrap();
        f.write_all_at(&value.to_ne_bytes(), self.reg_pos(index, reg))
            .unwrap();
    }

    /// Reads a register from the device file.
    pub fn read_reg(&self, index: u32, reg: u32) -> u32 {
        let f = fs::File::open(self.node(index)).unwrap();
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, self.reg_pos(index, reg)).unwrap();
        u32::from_ne_bytes(b)
    }

    fn reg_pos(&self, index: u32, reg: u32) -> u64 {
        let map = self
            .paths
            .class_uio()
            .join(format!("uio{index}/maps/map0/offset"));
        let text = fs::read_to_string(map).unwrap();
        let offset = u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap();
        offset + u64::from(reg)
    }
}

impl Drop for FakeUio {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The test's side of the interrupt pipes: fire interrupts, see re-arms.
pub struct FakeIrq {
    fire: Option<PipeWriter>,
    rearms: PipeReader,
    count: u32,
    /// The descriptor number the bus waits on (owned by the bus).
    wait_fd: RawFd,
}

/// Pipes standing in for the device's interrupt: the bus gets [`IrqFds`], the test
/// keeps [`FakeIrq`].
pub fn irq_pipes() -> (IrqFds, FakeIrq) {
    let (wait_r, wait_w) = std::io::pipe().unwrap();
    let (rearm_r, rearm_w) = std::io::pipe().unwrap();
    let wait_fd = wait_r.as_raw_fd();
    (
        IrqFds {
            wait: OwnedFd::from(wait_r),
            rearm: OwnedFd::from(rearm_w),
        },
        FakeIrq {
            fire: Some(wait_w),
            rearms: rearm_r,
            count: 0,
            wait_fd,
        },
    )
}

impl FakeIrq {
    /// One interrupt: the cumulative count goes up by one and is written as 4 bytes.
    pub fn fire(&mut self) -> u32 {
        self.count += 1;
        self.fire
            .as_mut()
            .expect("interrupt pipe closed")
            .write_all(&self.count.to_ne_bytes())
            .unwrap();
        self.count
    }

    /// Closes the interrupt end, as if the device went away.
    pub fn close(&mut self) {
        self.fire = None;
    }

    /// The device is unregistered, as the kernel does it on an overlay's removal: the
    /// descriptor the bus waits on now polls readable and every read fails with EIO
    /// (what `uio_poll`'s `-EIO` mask and `uio_read` give). The file behind the bus's
    /// descriptor number becomes `/proc/self/mem` at address 0, which no process maps:
    /// the kernel's own "POLLIN, then EIO", with no error bit to give it away. A wait
    /// already blocked is woken through the old pipe.
    pub fn vanish(&mut self) {
        let mem = fs::File::open("/proc/self/mem").expect("open /proc/self/mem");
        // SAFETY: dup2 onto a descriptor number the bus owns: it atomically replaces
        // the file behind that number, so the bus still owns one open descriptor; both
        // numbers are valid for the call.
        let rc = unsafe { libc::dup2(mem.as_raw_fd(), self.wait_fd) };
        assert!(rc >= 0, "dup2: {}", std::io::Error::last_os_error());
        if let Some(w) = self.fire.as_mut() {
            // a poll in progress still watches the pipe: this ends it
            let _ = w.write_all(&0u32.to_ne_bytes());
        }
    }

    /// The next 4-byte re-arm write, waiting at most `wait`.
    pub fn next_rearm(&mut self, wait: Duration) -> Option<u32> {
        let mut fds = [libc::pollfd {
            fd: self.rearms.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd that outlives the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if n <= 0 {
            return None;
        }
        let mut b = [0u8; 4];
        self.rearms.read_exact(&mut b).ok()?;
        Some(u32::from_ne_bytes(b))
    }

    /// Every re-arm written so far, without waiting.
    pub fn rearms_so_far(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(v) = self.next_rearm(Duration::ZERO) {
            out.push(v);
        }
        out
    }
}
