//! Hardware faults on the Verilated RTL, through the driver: the event generator
//! faster than the drain (dropped == generated − captured, exactly), an interrupt that
//! never comes (events still drained, on the wait's timeout), and an interrupt line
//! stuck high (no busy loop: throttled, events still flow).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, BusError, IrqWait};
use pynq_mqtt_driver::diag::{self, Burst};
use pynq_mqtt_driver::{Driver, DriverConfig};
use pynq_mqtt_sim::{stimulus, SimBoard, SimConfig, Speed};

const PATIENCE: Duration = Duration::from_secs(60);

fn sim(stim: &str) -> Arc<SimBoard> {
    Arc::new(
        SimBoard::start(SimConfig {
            speed: Speed::Fast,
            stimulus: stimulus::parse(stim, "test", 4).unwrap(),
        })
        .unwrap(),
    )
}

fn stim(n: usize) -> String {
    let mut level = [0u8; 4];
    (0..n)
        .map(|k| {
            let i = k % 4;
            level[i] ^= 1;
            format!("{} {i} {}\n", 1000 + k * 50, level[i])
        })
        .collect()
}

/// The simulated board with its interrupt behaviour replaced.
struct Faulty {
    board: Arc<SimBoard>,
    never_fires: bool,
    stuck_high: bool,
    waits: AtomicU64,
}

impl Bus for Faulty {
    fn read32(&self, o: u32) -> Result<u32, BusError> {
        self.board.read32(o)
    }
    fn write32(&self, o: u32, v: u32) -> Result<(), BusError> {
        self.board.write32(o, v)
    }
    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        self.waits.fetch_add(1, Ordering::Relaxed);
        if self.never_fires {
            // the line is never seen: sleep out the timeout (a lost interrupt)
            std::thread::sleep(timeout);
            return Ok(IrqWait::TimedOut);
        }
        if self.stuck_high {
            return Ok(IrqWait::Fired);
        }
        self.board.wait_irq(timeout)
    }
    fn rearm_irq(&self) -> Result<(), BusError> {
        if self.never_fires || self.stuck_high {
            return Ok(());
        }
        self.board.rearm_irq()
    }
    fn wake_waiter(&self) {
        self.board.wake_waiter()
    }
    fn describe(&self) -> String {
        "faulty".into()
    }
}

fn collect_n(
    ch: &pynq_mqtt_driver::DriverChannels,
    n: usize,
) -> Vec<pynq_mqtt_driver::ButtonEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        if let Ok(e) = ch.events.recv_timeout(Duration::from_millis(100)) {
            got.push(e);
        }
    }
    got
}

#[test]
fn generator_faster_than_the_drain_drops_exactly_generated_minus_captured() {
    let board = sim("");
    let bus: Arc<dyn Bus> = board.clone();
    let (driver, ch) = Driver::start(bus, &DriverConfig::default()).unwrap();
    let generated = 20_000u32;
    let burst = Burst {
        count: generated,
        period: 0, // one event per clock: far beyond any drain
        pattern: 0b1111,
    };
    diag::generator_burst(board.as_ref(), burst).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while diag::generator_running(board.as_ref()).unwrap() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(diag::generator_sent(board.as_ref()).unwrap(), generated);
    std::thread::sleep(Duration::from_millis(300));
    let stats = driver.stats();
    driver.stop();
    let got: Vec<_> = ch.events.try_iter().collect();
    let hw = stats.hw_dropped.load(Ordering::Relaxed);
    let captured = stats.captured.load(Ordering::Relaxed);
    assert!(hw > 0, "the generator did not outrun the FIFO: not a test");
    assert_eq!(
        captured,
        got.len() as u64,
        "every captured event was handed up"
    );
    assert_eq!(
        hw + captured,
        u64::from(generated),
        "dropped ({hw}) + captured ({captured}) != generated ({generated})"
    );
    // the sequence numbers show the same loss
    let span = got.last().unwrap().seq - got[0].seq + 1;
    assert_eq!(
        span - got.len() as u64,
        stats.seq_lost.load(Ordering::Relaxed)
    );
    assert_eq!(stats.channel_full.load(Ordering::Relaxed), 0);
}

#[test]
fn an_interrupt_that_never_comes_costs_latency_not_events() {
    let n = 400;
    let board = sim(&stim(n));
    let bus = Arc::new(Faulty {
        board: board.clone(),
        never_fires: true,
        stuck_high: false,
        waits: AtomicU64::new(0),
    });
    let config = DriverConfig {
        irq_timeout: Duration::from_millis(20),
        ..DriverConfig::default()
    };
    let (driver, ch) = Driver::start(bus.clone(), &config).unwrap();
    board.start_stimulus();
    let got = collect_n(&ch, n);
    let stats = driver.stats();
    driver.stop();
    assert_eq!(got.len(), n, "events drained on the wait's timeout");
    assert_eq!(stats.irqs.load(Ordering::Relaxed), 0);
    assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[test]
fn an_interrupt_line_stuck_high_is_throttled_and_events_still_flow() {
    let n = 400;
    let board = sim(&stim(n));
    let bus = Arc::new(Faulty {
        board: board.clone(),
        never_fires: false,
        stuck_high: true,
        waits: AtomicU64::new(0),
    });
    let (driver, ch) = Driver::start(bus.clone(), &DriverConfig::default()).unwrap();
    board.start_stimulus();
    let got = collect_n(&ch, n);
    assert_eq!(got.len(), n, "events flow while the line is stuck");
    // one second of a line that fires with nothing to do: throttled to about one
    // wait per millisecond, not millions (bound generous: 5000/s)
    let w0 = bus.waits.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let rate = (bus.waits.load(Ordering::Relaxed) - w0) as f64 / t0.elapsed().as_secs_f64();
    let stats = driver.stats();
    driver.stop();
    assert!(
        rate < 5000.0,
        "{rate:.0} interrupt waits per second: a busy loop"
    );
    assert!(stats.empty_irqs.load(Ordering::Relaxed) >= 64);
}
