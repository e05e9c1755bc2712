//! Several register windows as one bus (the base overlay's registers), over a file
//! standing in for /dev/mem and over a generic-uio device's maps, with the interrupt
//! of the fake `fabric` device.
#![cfg(target_os = "linux")]

use std::os::unix::fs::FileExt;
use std::time::Duration;

use pynq_mqtt_bus::uio::testing::{irq_pipes, FakeDevice, FakeUio};
use pynq_mqtt_bus::uio::{DeviceSpec, WindowSource, WindowSpec, WindowsBus, WindowsError};
use pynq_mqtt_bus::{Bus, IrqWait};

const WINDOWS: [WindowSpec; 2] = [
    WindowSpec {
        bus_offset: 0,
        phys: 0x4120_0000,
        len: 0x1_0000,
    },
    WindowSpec {
        bus_offset: 0x60_0000,
        phys: 0x4180_0000,
        len: 0x1_0000,
    },
];

fn fabric(tag: &str) -> FakeUio {
    let fake = FakeUio::new(tag);
    fake.add(&FakeDevice {
        addr: 0x4000_0000,
        ..FakeDevice::new(0, "fabric")
    });
    fake
}

#[test]
fn dev_mem_windows_land_at_their_physical_addresses() {
    let fake = fabric("windows-mem");
    let mem = fake.root().join("mem");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&mem)
        .unwrap();
    f.set_len(0x4190_0000).unwrap(); // sparse
    let (fds, mut irq) = irq_pipes();
    let bus = WindowsBus::open(
        &fake.paths,
        &WindowSource::DevMem(mem.clone()),
        &WINDOWS,
        &DeviceSpec::Name("fabric".into()),
        Some(fds),
    )
    .unwrap();
    bus.write32(0x128, 0x1).unwrap();
    bus.write32(0x60_0010, 1 << 11).unwrap();
    let mut word = [0u8; 4];
    f.read_exact_at(&mut word, 0x4120_0128).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 1);
    f.read_exact_at(&mut word, 0x4180_0010).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 1 << 11);
    assert!(bus.read32(0x1_0000).is_err(), "between windows");
    assert_eq!(irq.rearms_so_far(), [1], "re-armed at open");
    irq.fire();
    assert_eq!(
        bus.wait_irq(Duration::from_secs(5)).unwrap(),
        IrqWait::Fired
    );
    assert!(bus.describe().contains("fabric"));
}

#[test]
fn uio_maps_must_be_the_windows() {
    let fake = fabric("windows-uio");
    fake.add(&FakeDevice {
        addr: 0x4120_0000,
        ..FakeDevice::new(2, "pynq_base_regs")
    });
    let (fds, _irq) = irq_pipes();
    // map1 is missing: refused in one line naming the map
    let err = WindowsBus::open(
        &fake.paths,
        &WindowSource::Uio(DeviceSpec::Name("pynq_base_regs".into())),
        &WINDOWS,
        &DeviceSpec::Name("fabric".into()),
        Some(fds),
    )
    .err()
    .expect("refused");
    assert!(matches!(err, WindowsError::Map { map: 1, .. }), "{err}");
    assert!(err.to_string().contains("maps 0-4"));
}

#[test]
fn an_empty_pl_is_never_touched() {
    let fake = fabric("windows-empty");
    fake.set_fpga_state("unknown");
    let err = WindowsBus::open(
        &fake.paths,
        &WindowSource::DevMem(fake.root().join("mem")),
        &WINDOWS,
        &DeviceSpec::Name("fabric".into()),
        None,
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("unknown"), "{err}");
}

#[test]
fn uio_maps_are_mapped_in_order() {
    let fake = fabric("windows-maps");
    let node = fake.add(&FakeDevice {
        addr: 0x4120_0000,
        ..FakeDevice::new(2, "pynq_base_regs")
    });
    let windows: Vec<WindowSpec> = [0u32, 0x1_0000, 0x4_0000, 0x5_0000, 0x60_0000]
        .iter()
        .map(|&off| WindowSpec {
            bus_offset: off,
            phys: 0x4120_0000 + u64::from(off),
            len: 0x1_0000,
        })
        .collect();
    let sysfs = fake.paths.class_uio().join("uio2/maps");
    for (n, w) in windows.iter().enumerate().skip(1) {
        let map = sysfs.join(format!("map{n}"));
        std::fs::create_dir_all(&map).unwrap();
        std::fs::write(map.join("addr"), format!("0x{:08x}\n", w.phys)).unwrap();
        std::fs::write(map.join("size"), "0x00010000\n").unwrap();
    }
    let page = mmap_rs::MmapOptions::page_size() as u64;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
        .unwrap();
    f.set_len(4 * page + 0x1_0000).unwrap();
    let (fds, _irq) = irq_pipes();
    let bus = WindowsBus::open(
        &fake.paths,
        &WindowSource::Uio(DeviceSpec::Name("pynq_base_regs".into())),
        &windows,
        &DeviceSpec::Name("fabric".into()),
        Some(fds),
    )
    .unwrap();
    // the controller's SIE is map 4 (file offset 4 pages) + 0x10
    bus.write32(0x60_0010, 0xA5).unwrap();
    let mut word = [0u8; 4];
    f.read_exact_at(&mut word, 4 * page + 0x10).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 0xA5);
    assert!(bus.describe().contains("uio2"));
}

#[test]
fn openers_names_other_processes_holding_a_node() {
    let fake = fabric("windows-openers");
    let node = fake.node(0);
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec 3<'{}'; exec sleep 30", node.display()))
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let mut found = Vec::new();
    // until the shell, which opens the node before it execs, has become `sleep`
    while !found.iter().any(|(_, name)| name == "sleep") && t.elapsed() < Duration::from_secs(10) {
        found = pynq_mqtt_bus::uio::openers(&node, std::path::Path::new("/proc"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(found, [(child.id(), "sleep".to_owned())]);
    // this process opening it is not another process
    let _mine = std::fs::File::open(&node).unwrap();
    assert!(pynq_mqtt_bus::uio::openers(&node, std::path::Path::new("/proc")).is_empty());
}
