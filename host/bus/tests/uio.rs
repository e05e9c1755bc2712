//! The UIO backend without a board: a fake sysfs tree, a regular file mapped
//! `MAP_SHARED` in place of `/dev/uioN`, pipes in place of the interrupt. Every test
//! runs the same code the daemon runs on a PYNQ board.

#![cfg(target_os = "linux")]

use std::fs;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use pynq_mqtt_bus::uio::testing::{irq_pipes, FakeDevice, FakeIrq, FakeUio};
use pynq_mqtt_bus::uio::{
    self as uio, driver_status, find, DeviceSpec, MapInfo, Mode, OpenOptions, UioBus, UioError,
    UioPaths,
};
use pynq_mqtt_bus::{Bus, BusError, IrqWait};

const NEED: usize = 0xC0;
/// Long enough never to be reached when the code is right.
const NEVER: Duration = Duration::from_secs(3600);
const PATIENCE: Duration = Duration::from_secs(30);

fn name(n: &str) -> DeviceSpec {
    DeviceSpec::Name(n.into())
}

/// A board with the stock `fabric` device as uio0 and ours as uio3.
fn board(tag: &str) -> FakeUio {
    let fake = FakeUio::new(tag);
    fake.add(&FakeDevice {
        addr: 0x4120_0000,
        size: 0x1_0000,
        ..FakeDevice::new(0, "fabric")
    });
    fake.add(&FakeDevice::new(3, "pynq_mqtt"));
    fake
}

fn open(fake: &FakeUio) -> (UioBus, FakeIrq) {
    let (fds, irq) = irq_pipes();
    let bus = UioBus::open(
        &fake.paths,
        &name("pynq_mqtt"),
        OpenOptions::new(Mode::Exclusive, NEED).irq_fds(fds),
    )
    .unwrap();
    (bus, irq)
}

fn open_err(paths: &UioPaths, spec: &DeviceSpec) -> UioError {
    match UioBus::open(paths, spec, OpenOptions::new(Mode::Exclusive, NEED)) {
        Ok(_) => panic!("{spec} opened"),
        Err(e) => e,
    }
}

fn assert_mentions(e: &UioError, words: &[&str]) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    for w in words {
        assert!(msg.contains(w), "{w:?} missing from: {msg}");
    }
}

#[test]
fn finds_the_device_by_name_and_reads_map0_from_sysfs() {
    let fake = board("find");
    let dev = find(&fake.paths, &name("pynq_mqtt")).unwrap();
    assert_eq!(dev.index, 3);
    assert_eq!(dev.name, "pynq_mqtt");
    assert_eq!(dev.node, fake.node(3));
    assert_eq!(dev.driver.as_deref(), Some("uio_pdrv_genirq"));
    assert_eq!(
        dev.map,
        MapInfo {
            addr: 0x43C0_0000,
            size: 0x1_0000,
            offset: 0
        }
    );
    assert_eq!(find(&fake.paths, &name("fabric")).unwrap().index, 0);
}

#[test]
fn an_explicit_node_is_taken_as_given() {
    let fake = board("node");
    let spec = DeviceSpec::Node(fake.node(3));
    let dev = find(&fake.paths, &spec).unwrap();
    assert_eq!((dev.index, dev.name.as_str()), (3, "pynq_mqtt"));

    // the udev rule's link names the same device
    let link = fake.paths.dev.join("pynq-mqtt");
    std::os::unix::fs::symlink(fake.node(3), &link).unwrap();
    let dev = find(&fake.paths, &DeviceSpec::Node(link.clone())).unwrap();
    assert_eq!((dev.index, dev.node), (3, link));

    std::fs::write(fake.paths.dev.join("ttyS0"), "").unwrap();
    let e = open_err(&fake.paths, &DeviceSpec::Node(fake.paths.dev.join("ttyS0")));
    assert!(matches!(e, UioError::NotUioNode { .. }), "{e}");
    let e = open_err(&fake.paths, &DeviceSpec::Node(fake.node(7)));
    assert!(matches!(e, UioError::NoSuchDevice { .. }), "{e}");
    assert_mentions(&e, &["uio7", "load the overlay"]);
}

#[test]
fn registers_are_the_device_memory_through_a_shared_map() {
    let fake = board("regs");
    fake.write_reg(3, 0x00, 0x504D_5154);
    fake.write_reg(3, 0xBC, 0xDEAD_BEEF);
    let (bus, _irq) = open(&fake);
    assert_eq!(bus.read32(0x00).unwrap(), 0x504D_5154);
    assert_eq!(bus.read32(0xBC).unwrap(), 0xDEAD_BEEF);
    // a store reaches the device file: the map is shared, not a private copy
    bus.write32(0x80, 0b1010).unwrap();
    assert_eq!(fake.read_reg(3, 0x80), 0b1010);
    // and a change on the device side shows in the next load (volatile, not cached)
    fake.write_reg(3, 0x80, 0b0101);
    assert_eq!(bus.read32(0x80).unwrap(), 0b0101);
    assert_eq!(bus.window(), 0x1_0000);
    assert!(matches!(
        bus.read32(0x1_0000),
        Err(BusError::BadOffset { .. })
    ));
    assert!(matches!(bus.read32(0x82), Err(BusError::BadOffset { .. })));
    assert_eq!(
        bus.describe(),
        format!("uio:{} (pynq_mqtt)", fake.node(3).display())
    );
}

#[test]
fn the_sysfs_offset_moves_the_register_base() {
    let fake = FakeUio::new("offset");
    fake.add(&FakeDevice {
        size: 0x1000,
        offset: 0x100,
        ..FakeDevice::new(1, "pynq_mqtt")
    });
    fake.write_reg(1, 0x04, 0x0002_0000);
    let (bus, _irq) = open(&fake);
    assert_eq!(bus.read32(0x04).unwrap(), 0x0002_0000);
    let page = mmap_rs_page_size();
    assert_eq!(bus.window(), 0x1000_usize.div_ceil(page) * page - 0x100);
}

fn mmap_rs_page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) as usize
}

#[test]
fn a_map_smaller_than_the_register_map_is_refused() {
    let fake = FakeUio::new("small");
    fake.add(&FakeDevice {
        size: 0x1000,
        ..FakeDevice::new(0, "pynq_mqtt")
    });
    let e = UioBus::open(
        &fake.paths,
        &name("pynq_mqtt"),
        OpenOptions::new(Mode::Exclusive, 0x1_0000),
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, UioError::MapTooSmall { need: 0x1_0000, .. }),
        "{e}"
    );
    assert_mentions(&e, &["0x10000", "`reg` size"]);

    let fake = FakeUio::new("misaligned");
    fake.add(&FakeDevice {
        offset: 2,
        ..FakeDevice::new(0, "pynq_mqtt")
    });
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::Misaligned { offset: 2, .. }), "{e}");
}

#[test]
fn a_missing_driver_names_the_kernel_command_line() {
    let fake = FakeUio::new("nodriver");
    fake.remove_class();
    fake.remove_driver();
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::DriverMissing { .. }), "{e}");
    assert_mentions(
        &e,
        &["uio_pdrv_genirq.of_id=generic-uio", "kernel command line"],
    );
    let st = driver_status(&fake.paths);
    assert!(!st.uio_class && !st.genirq);
}

#[test]
fn an_unbound_overlay_node_names_the_missing_binding() {
    // the overlay is in, but without of_id nobody binds its generic-uio node; the
    // stock `fabric` device is there and bound
    let fake = FakeUio::new("unbound");
    fake.add(&FakeDevice::new(0, "fabric"));
    fake.add_platform_node("43c00000.pynq-mqtt-io", "pynq_mqtt", false);
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::NotBound { .. }), "{e}");
    assert_mentions(
        &e,
        &[
            "43c00000.pynq-mqtt-io",
            "not bound",
            "uio_pdrv_genirq.of_id=generic-uio",
        ],
    );
}

#[test]
fn a_missing_overlay_lists_what_is_there() {
    let fake = FakeUio::new("nooverlay");
    fake.add(&FakeDevice::new(0, "fabric"));
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::NotFound { .. }), "{e}");
    assert_mentions(
        &e,
        &[
            "\"pynq_mqtt\"",
            "uio0 \"fabric\"",
            "load the overlay",
            "--device",
        ],
    );

    let empty = FakeUio::new("noclass");
    empty.remove_class();
    let e = open_err(&empty.paths, &name("pynq_mqtt"));
    assert_mentions(&e, &["none", "load the overlay"]);
}

#[test]
fn two_devices_of_one_name_ask_for_a_node() {
    let fake = board("twice");
    fake.add(&FakeDevice {
        addr: 0x43C1_0000,
        ..FakeDevice::new(5, "pynq_mqtt")
    });
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::Ambiguous { .. }), "{e}");
    assert_mentions(&e, &["uio3", "uio5", "--device"]);
}

#[test]
fn sysfs_without_node_or_map_or_with_garbage_is_explained() {
    let fake = board("broken");
    std::fs::remove_file(fake.node(3)).unwrap();
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::NoNode { .. }), "{e}");
    assert_mentions(&e, &["uio3", "devtmpfs"]);

    let fake = board("nomap");
    let map0 = fake.paths.class_uio().join("uio3/maps/map0");
    std::fs::remove_dir_all(&map0).unwrap();
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::NoMap { .. }), "{e}");
    assert_mentions(&e, &["`reg`"]);

    let fake = board("garbage");
    std::fs::write(fake.paths.class_uio().join("uio3/maps/map0/size"), "lots\n").unwrap();
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::BadSysfs { .. }), "{e}");
}

#[test]
fn an_unprogrammed_fpga_is_refused_before_any_access() {
    let fake = board("fpga");
    fake.set_fpga_state("unknown");
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::FpgaNotProgrammed { .. }), "{e}");
    assert_mentions(
        &e,
        &["not programmed", "unknown", "load the pynq_mqtt overlay"],
    );
}

#[test]
fn a_second_daemon_is_refused_naming_the_holder() {
    let mut fake = board("lock");
    // the holder comes from the real /proc/locks
    fake.paths.proc = "/proc".into();
    let (first, _irq) = open(&fake);
    let e = open_err(&fake.paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::Busy { .. }), "{e}");
    assert_mentions(&e, &["in use", "stop it first"]);
    let pid = std::process::id();
    assert!(e.to_string().contains(&format!("pid {pid}")), "{e}");

    // looking is allowed while it runs, touching is not
    let observer = UioBus::open(
        &fake.paths,
        &name("pynq_mqtt"),
        OpenOptions::new(Mode::Observe, NEED),
    )
    .unwrap();
    first.write32(0x08, 77).unwrap();
    assert_eq!(observer.read32(0x08).unwrap(), 77);
    assert!(observer.read_only());
    assert!(matches!(
        observer.write32(0x08, 1),
        Err(BusError::ReadOnly { .. })
    ));
    assert!(matches!(
        observer.wait_irq(Duration::ZERO),
        Err(BusError::ReadOnly { .. })
    ));
    assert!(matches!(
        observer.rearm_irq(),
        Err(BusError::ReadOnly { .. })
    ));

    // the lock goes with the first daemon
    drop(first);
    let (_second, _irq) = open(&fake);
}

#[test]
fn permission_denied_names_the_udev_fix() {
    let fake = board("perm");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // root opens anything: run the check in a child that is `nobody`
        use std::os::unix::process::CommandExt;
        // `nobody` may not reach the build directory (a cache under /root): run a copy
        // from the fake tree; under emulation (a board build run by qemu-user, see
        // .cargo/config.toml) the copy needs the same runner
        let exe = fake.root().join("uio-tests");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        let mut child = match std::env::var_os("PYNQ_MQTT_TEST_RUNNER") {
            Some(runner) => {
                let mut c = std::process::Command::new(runner);
                c.arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        let out = child
            .args([
                "--exact",
                "permission_child",
                "--include-ignored",
                "--nocapture",
            ])
            .env("PYNQ_MQTT_TEST_UIO_ROOT", fake.root())
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(fake.node(3), std::fs::Permissions::from_mode(0o400)).unwrap();
        check_permission_error(&fake.paths);
    }
}

/// Runs as `nobody` from `permission_denied_names_the_udev_fix`.
#[test]
#[ignore = "run by permission_denied_names_the_udev_fix"]
fn permission_child() {
    let root = std::path::PathBuf::from(std::env::var("PYNQ_MQTT_TEST_UIO_ROOT").unwrap());
    check_permission_error(&UioPaths {
        sys: root.join("sys"),
        dev: root.join("dev"),
        proc: root.join("proc"),
    });
}

fn check_permission_error(paths: &UioPaths) {
    let e = open_err(paths, &name("pynq_mqtt"));
    assert!(matches!(e, UioError::Permission { .. }), "{e}");
    assert_mentions(
        &e,
        &[
            "permission denied",
            "uio3",
            "ATTR{name}==\"pynq_mqtt\"",
            "run as root",
        ],
    );
}

#[test]
fn an_interrupt_is_a_4_byte_read_and_a_rearm_a_4_byte_write_of_1() {
    let fake = board("irq");
    let (bus, mut irq) = open(&fake);
    // opening unmasks a line a dead daemon may have left masked
    assert_eq!(irq.rearms_so_far(), vec![1]);
    assert_eq!(bus.wait_irq(Duration::ZERO).unwrap(), IrqWait::TimedOut);

    assert_eq!(irq.fire(), 1);
    assert_eq!(bus.wait_irq(NEVER).unwrap(), IrqWait::Fired);
    assert_eq!(bus.irq_count(), 1);
    // nothing more until the next interrupt
    assert_eq!(bus.wait_irq(Duration::ZERO).unwrap(), IrqWait::TimedOut);
    bus.rearm_irq().unwrap();
    assert_eq!(irq.next_rearm(PATIENCE), Some(1));

    irq.fire();
    irq.fire();
    assert_eq!(bus.wait_irq(NEVER).unwrap(), IrqWait::Fired);
    assert_eq!(bus.irq_count(), 2);
    assert_eq!(bus.wait_irq(NEVER).unwrap(), IrqWait::Fired);
    assert_eq!(bus.irq_count(), 3);
    assert!(irq.rearms_so_far().is_empty(), "no re-arm was asked for");
}

#[test]
fn a_wait_times_out_without_an_interrupt() {
    let fake = board("timeout");
    let (bus, _irq) = open(&fake);
    assert_eq!(
        bus.wait_irq(Duration::from_millis(20)).unwrap(),
        IrqWait::TimedOut
    );
}

#[test]
fn wake_waiter_ends_a_blocked_wait() {
    let fake = board("wake");
    let (bus, mut irq) = open(&fake);
    let bus = Arc::new(bus);
    let (tx, rx) = mpsc::channel();
    let b = Arc::clone(&bus);
    let waiter = std::thread::spawn(move || {
        tx.send(()).unwrap();
        let r = b.wait_irq(NEVER);
        r.unwrap()
    });
    rx.recv().unwrap();
    bus.wake_waiter();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(waiter.join().unwrap()).unwrap());
    assert_eq!(done_rx.recv_timeout(PATIENCE), Ok(IrqWait::TimedOut));

    // a wake with nobody waiting ends the next wait; only that one
    bus.wake_waiter();
    assert_eq!(bus.wait_irq(NEVER).unwrap(), IrqWait::TimedOut);
    assert_eq!(bus.wait_irq(Duration::ZERO).unwrap(), IrqWait::TimedOut);
    // and an interrupt still gets through after wakes
    irq.fire();
    assert_eq!(bus.wait_irq(NEVER).unwrap(), IrqWait::Fired);
}

#[test]
fn a_hung_up_interrupt_descriptor_is_a_device_gone() {
    let fake = board("closed");
    let (bus, mut irq) = open(&fake);
    irq.fire();
    irq.close();
    // error bits are looked at before POLLIN: a count still buffered in a device that
    // went away is not an interrupt
    assert!(matches!(bus.wait_irq(NEVER), Err(BusError::Gone(_))));
}

#[test]
fn a_device_that_polls_readable_but_reads_eio_is_gone() {
    // what an unregistered UIO device does: POLLIN set, and the read fails with EIO
    let fake = board("eio");
    let (bus, mut irq) = open(&fake);
    irq.fire();
    assert_eq!(bus.wait_irq(NEVER).unwrap(), IrqWait::Fired);
    irq.vanish();
    let e = bus.wait_irq(NEVER).unwrap_err();
    assert!(matches!(e, BusError::Gone(_)), "{e}");
    assert!(e.to_string().contains("went away"), "{e}");
}

#[test]
fn a_wait_blocked_when_the_device_goes_ends_with_gone() {
    let fake = board("eio-blocked");
    let (bus, mut irq) = open(&fake);
    let bus = Arc::new(bus);
    let b = Arc::clone(&bus);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(b.wait_irq(NEVER).map_err(|e| e.to_string())));
    std::thread::sleep(Duration::from_millis(50));
    irq.vanish();
    let r = rx.recv_timeout(PATIENCE).expect("the wait never ended");
    assert!(r.as_ref().is_err_and(|e| e.contains("went away")), "{r:?}");
}

#[test]
fn without_test_descriptors_the_device_file_carries_the_interrupt() {
    // on a board, the wait and the re-arm go to /dev/uioN itself: the open re-arm
    // lands in the node as the 4-byte word 1
    let fake = board("devfd");
    let bus = UioBus::open(
        &fake.paths,
        &name("pynq_mqtt"),
        OpenOptions::new(Mode::Exclusive, NEED),
    )
    .unwrap();
    assert_eq!(fake.read_reg(3, 0), 1);
    drop(bus);
}

#[test]
fn the_fallback_loaders_kernel_needs_are_seen() {
    let fake = board("loader");
    fs::remove_dir_all(fake.paths.sys.join("class/fpga_manager")).unwrap();
    assert_eq!(uio::loader_support(&fake.paths), None, "no FPGA manager");
    fake.set_fpga_state("operating");
    fake.set_cmdline("console=ttyPS0,115200 root=/dev/mmcblk0p2 rw");
    let mainline = uio::loader_support(&fake.paths).unwrap();
    assert_eq!(mainline.clk_ignore_unused, Some(false));
    assert!(!mainline.xilinx_fpga_sysfs);
    assert!(!mainline.complete());
    fake.set_cmdline("console=ttyPS0,115200 clk_ignore_unused uio_pdrv_genirq.of_id=generic-uio");
    fake.add_xilinx_fpga_files();
    let pynq = uio::loader_support(&fake.paths).unwrap();
    assert_eq!(pynq.clk_ignore_unused, Some(true));
    assert!(pynq.xilinx_fpga_sysfs);
    assert!(pynq.complete());
}
