//! The driver's event decoder against a peripheral that answers arbitrary words: the
//! fuzzer's bytes are the interrupts and the values read from TIME, EVT_POP, EVT_TS
//! and DROPPED. Whatever the bus says, the driver neither panics nor hangs, hands up
//! only events of inputs that exist with rising sequence numbers, and counts every
//! event word it took.
#![no_main]
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_driver::{Driver, DriverConfig};
use pynq_mqtt_regs::{self as regs, offset, Params, Version};

struct FuzzBus {
    data: Mutex<(Vec<u8>, usize)>,
}

impl FuzzBus {
    fn take(&self, n: usize) -> Option<u32> {
        let mut g = self.data.lock().unwrap();
        let (d, at) = &mut *g;
        if *at + n > d.len() {
            *at = d.len();
            return None;
        }
        let mut v = 0u32;
        for b in &d[*at..*at + n] {
            v = v << 8 | u32::from(*b);
        }
        *at += n;
        Some(v)
    }
}

impl Bus for FuzzBus {
    fn read32(&self, o: u32) -> Result<u32, BusError> {
        Ok(match o {
            offset::ID => regs::ID_VALUE,
            offset::VERSION => {
                Version(0)
                    .with_major(regs::VERSION_MAJOR)
                    .with_minor(regs::VERSION_MINOR)
                    .0
            }
            offset::PARAMS => {
                Params(0)
                    .with_n_inputs(4)
                    .with_n_leds(4)
                    .with_fifo_depth_log2(4)
                    .0
            }
            offset::CLK_HZ => 100_000_000,
            // an exhausted input reads as an empty FIFO
            offset::EVT_POP | offset::EVT_TS | offset::TIME | offset::DROPPED => {
                let small = o == offset::DROPPED;
                let v = self.take(if small { 1 } else { 4 }).unwrap_or(0);
                if small && v > 250 {
                    u32::MAX
                } else {
                    v
                }
            }
            _ => 0,
        })
    }
    fn write32(&self, _: u32, _: u32) -> Result<(), BusError> {
        Ok(())
    }
    fn wait_irq(&self, _: Duration) -> Result<IrqWait, BusError> {
        match self.take(1) {
            Some(b) if b & 1 == 1 => Ok(IrqWait::Fired),
            Some(_) => Ok(IrqWait::TimedOut),
            None => Err(BusError::Closed),
        }
    }
    fn rearm_irq(&self) -> Result<(), BusError> {
        Ok(())
    }
    fn wake_waiter(&self) {}
    fn describe(&self) -> String {
        "fuzz".into()
    }
}

fuzz_target!(|data: &[u8]| {
    let bus = Arc::new(FuzzBus {
        data: Mutex::new((data.to_vec(), 0)),
    });
    let config = DriverConfig {
        channel_capacity: 1 << 16,
        irq_timeout: Duration::from_millis(1),
        ..DriverConfig::default()
    };
    let (driver, ch) = Driver::start(bus.clone(), &config).expect("a correct identity");
    // no LED commands: the LED thread ends at once instead of at its next poll
    let pynq_mqtt_driver::DriverChannels {
        events: rx,
        commands,
        leds: _leds,
    } = ch;
    drop(commands);
    // the events thread ends when the input is used up (the bus reports Closed)
    let mut events = Vec::new();
    while let Ok(e) = rx.recv_timeout(Duration::from_secs(20)) {
        events.push(e);
    }
    let stats = driver.stats();
    driver.stop();
    events.extend(rx.try_iter());
    assert!(
        events.iter().all(|e| e.input < 4),
        "an event of an input that does not exist"
    );
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "sequence numbers must rise"
    );
    let captured = stats.captured.load(Ordering::Relaxed);
    assert_eq!(
        captured,
        events.len() as u64 + stats.channel_full.load(Ordering::Relaxed)
    );
});
