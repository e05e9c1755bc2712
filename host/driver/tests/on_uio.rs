//! The driver on the UIO backend, over a fake sysfs tree with a regular file as the
//! device and pipes as its interrupt: the path a PYNQ board takes, without the board.
//! A file does not pop on read, so here EVT_POP reads empty and the FIFO behaviour is
//! the business of `scripted.rs` and `on_sim.rs`; this checks the wiring.

#![cfg(target_os = "linux")]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use pynq_mqtt_bus::uio::testing::{irq_pipes, FakeDevice, FakeIrq, FakeUio};
use pynq_mqtt_bus::uio::{DeviceSpec, Mode, OpenOptions, UioBus};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::{
    DeviceLost, Driver, DriverChannels, DriverConfig, DriverError, LedAction, LedCommand, LedReport,
};
use pynq_mqtt_regs::{self as regs, offset, Params, Version};

const PATIENCE: Duration = Duration::from_secs(30);

fn board(tag: &str, id: u32) -> (FakeUio, Arc<UioBus>, FakeIrq) {
    let fake = FakeUio::new(tag);
    fake.add(&FakeDevice::new(2, "pynq_mqtt"));
    fake.write_reg(2, offset::ID, id);
    let version = Version(0)
        .with_major(regs::VERSION_MAJOR)
        .with_minor(regs::VERSION_MINOR);
    fake.write_reg(2, offset::VERSION, version.0);
    let params = Params(0)
        .with_n_inputs(4)
        .with_n_leds(4)
        .with_fifo_depth_log2(10);
    fake.write_reg(2, offset::PARAMS, params.0);
    fake.write_reg(2, offset::CLK_HZ, 100_000_000);
    let (fds, mut irq) = irq_pipes();
    let bus = UioBus::open(
        &fake.paths,
        &DeviceSpec::Name("pynq_mqtt".into()),
        OpenOptions::new(Mode::Exclusive, regs::WINDOW_BYTES).irq_fds(fds),
    )
    .unwrap();
    assert_eq!(irq.next_rearm(PATIENCE), Some(1), "open re-arms");
    (fake, Arc::new(bus), irq)
}

#[test]
fn the_driver_runs_on_the_uio_backend() {
    let (fake, bus, mut irq) = board("driver", regs::ID_VALUE);
    fake.write_reg(2, offset::LED, 0b0100);
    let (driver, ch) = Driver::start(
        Arc::clone(&bus) as Arc<dyn Bus>,
        &DriverConfig {
            irq_timeout: Duration::from_secs(3600),
            debounce_us: 2000,
            ..DriverConfig::default()
        },
    )
    .unwrap();
    assert_eq!(driver.info().fifo_depth, 1024);
    // configuration went through the map into the "device"
    assert_eq!(fake.read_reg(2, offset::DEBOUNCE_US), 2000);
    assert_eq!(fake.read_reg(2, offset::IRQ_ENABLE), 1);

    // an interrupt: drained (EVT_POP reads empty) and re-armed with a 4-byte 1
    irq.fire();
    assert_eq!(irq.next_rearm(PATIENCE), Some(1));
    assert_eq!(driver.stats().irqs.load(Ordering::Relaxed), 1);
    assert!(irq.rearms_so_far().is_empty(), "one re-arm per interrupt");

    // an LED command is a write to LED_SET and a report of what LED reads back
    let initial: Vec<LedReport> = (0..4)
        .map(|_| ch.leds.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert!(initial[2].on && !initial[0].on);
    ch.commands
        .send(LedCommand {
            led: 3,
            action: LedAction::On,
        })
        .unwrap();
    assert_eq!(
        ch.leds.recv_timeout(PATIENCE).unwrap(),
        LedReport { led: 3, on: false },
        "the report is the hardware's read-back (a file does not act on LED_SET)"
    );
    assert_eq!(fake.read_reg(2, offset::LED_SET), 0b1000);

    // stop ends the blocked wait at once (eventfd) and disables the interrupt
    driver.stop();
    assert_eq!(fake.read_reg(2, offset::IRQ_ENABLE), 0);
    assert_eq!(driver_events(&ch), 0);
}

fn driver_events(ch: &pynq_mqtt_driver::DriverChannels) -> usize {
    ch.events.try_iter().count()
}

#[test]
fn a_wrong_bitstream_is_refused_at_start() {
    let (_fake, bus, _irq) = board("wrongid", 0x1234_5678);
    match Driver::start(bus as Arc<dyn Bus>, &DriverConfig::default()) {
        Err(e @ DriverError::WrongId { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("0x12345678") && msg.contains("load the pynq_mqtt overlay"),
                "{msg}"
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started on a wrong ID"),
    }
}

/// Starts the driver on a fresh fake board, LED initial reports taken.
fn started(tag: &str) -> (FakeUio, Driver, DriverChannels, FakeIrq) {
    let (fake, bus, irq) = board(tag, regs::ID_VALUE);
    let (driver, ch) = Driver::start(
        bus as Arc<dyn Bus>,
        &DriverConfig {
            irq_timeout: Duration::from_millis(20),
            ..DriverConfig::default()
        },
    )
    .unwrap();
    for _ in 0..4 {
        ch.leds.recv_timeout(PATIENCE).unwrap();
    }
    (fake, driver, ch, irq)
}

/// Waits until both of the driver's outgoing channels are closed: how the bridge
/// learns that the driver is done.
fn channels_close(ch: &DriverChannels) -> bool {
    let deadline = std::time::Instant::now() + PATIENCE;
    let closed = |r: Result<(), RecvTimeoutError>| r == Err(RecvTimeoutError::Disconnected);
    loop {
        let ev = closed(ch.events.recv_timeout(Duration::from_millis(10)).map(drop));
        let led = closed(ch.leds.recv_timeout(Duration::from_millis(10)).map(drop));
        if ev && led {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
    }
}

const LED_ON: LedCommand = LedCommand {
    led: 1,
    action: LedAction::On,
};

#[test]
fn a_device_that_goes_away_ends_the_driver_without_another_write() {
    // the kernel unregistered the device: poll says readable, every read fails EIO
    let (fake, driver, ch, mut irq) = started("gone");
    irq.vanish();
    assert!(channels_close(&ch), "the driver kept its channels open");
    assert_eq!(driver.lost().get(), Some(&DeviceLost::Gone));
    // a command after that is not written, and stop does not touch the device
    let _ = ch.commands.send(LED_ON);
    std::thread::sleep(Duration::from_millis(100));
    driver.stop();
    assert_eq!(
        fake.read_reg(2, offset::LED_SET),
        0,
        "an LED write after the device went"
    );
    assert_eq!(
        fake.read_reg(2, offset::IRQ_ENABLE),
        1,
        "stop wrote to a device that went"
    );
}

#[test]
fn another_bitstream_under_the_daemon_ends_it_before_any_led_write() {
    // a notebook loaded base.bit: the same window now answers with another IP's ID
    let (fake, driver, ch, _irq) = started("replaced");
    fake.write_reg(2, offset::ID, 0x0000_0000);
    assert!(channels_close(&ch), "the driver kept its channels open");
    assert_eq!(driver.lost().get(), Some(&DeviceLost::Replaced { id: 0 }));
    let _ = ch.commands.send(LED_ON);
    std::thread::sleep(Duration::from_millis(100));
    driver.stop();
    assert_eq!(
        fake.read_reg(2, offset::LED_SET),
        0,
        "an LED write into another IP"
    );
    assert_eq!(
        fake.read_reg(2, offset::IRQ_ENABLE),
        1,
        "stop wrote into another IP"
    );
}

#[test]
fn an_led_command_checks_the_identity_before_it_writes() {
    // the ID changes between two wakes of the event thread (its wait is an hour): the
    // command itself must notice
    let (fake, bus, _irq) = board("led-id", regs::ID_VALUE);
    let (driver, ch) = Driver::start(
        bus as Arc<dyn Bus>,
        &DriverConfig {
            irq_timeout: Duration::from_secs(3600),
            ..DriverConfig::default()
        },
    )
    .unwrap();
    fake.write_reg(2, offset::ID, 0xDEAD_BEEF);
    ch.commands.send(LED_ON).unwrap();
    assert!(channels_close(&ch));
    assert_eq!(
        driver.lost().get(),
        Some(&DeviceLost::Replaced { id: 0xDEAD_BEEF })
    );
    assert_eq!(
        fake.read_reg(2, offset::LED_SET),
        0,
        "an LED write into another IP"
    );
    driver.stop();
}
