//! The inputs' levels, read from the INPUTS register of the Verilated RTL: at start
//! and whenever a wake finds them changed (that the first reading comes before any
//! interrupt is shown in scripted.rs, where no event can say it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pynq_mqtt_driver::{Driver, DriverChannels, DriverConfig, InputLevels};
use pynq_mqtt_sim::{SimBoard, SimConfig, Speed};

fn sim() -> Arc<SimBoard> {
    Arc::new(
        SimBoard::start(SimConfig {
            speed: Speed::Fast,
            stimulus: Vec::new(),
        })
        .unwrap(),
    )
}

/// Readings until one equals `want`; all of them, or None on a timeout.
fn until(ch: &DriverChannels, want: u32) -> Option<Vec<InputLevels>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Ok(l) = ch
        .levels
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        seen.push(l);
        if l.0 == want {
            return Some(seen);
        }
    }
    None
}

#[test]
fn a_switch_held_before_the_start_is_the_first_reading() {
    let board = sim();
    board.set_input(3, true);
    // a few clocks for the synchronizer: any bus access runs the clock
    std::thread::sleep(Duration::from_millis(20));
    let (driver, ch) = Driver::start(board.clone(), &DriverConfig::default()).unwrap();
    let first = ch.levels.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        first,
        InputLevels(0b1000),
        "read at start, before any drain"
    );
    assert!(first.level(3) && !first.level(0));
    // a press later is a new reading
    board.set_input(1, true);
    assert!(until(&ch, 0b1010).is_some());
    driver.stop();
}

#[test]
fn an_input_without_events_still_gets_its_level_read() {
    let board = sim();
    let (driver, ch) = Driver::start(
        board.clone(),
        &DriverConfig {
            // input 2 makes no events at all: only the register tells
            input_mask: !0b0100,
            irq_timeout: Duration::from_millis(50),
            ..DriverConfig::default()
        },
    )
    .unwrap();
    assert_eq!(
        ch.levels.recv_timeout(Duration::from_secs(5)).unwrap(),
        InputLevels(0)
    );
    board.set_input(2, true);
    let seen = until(&ch, 0b0100).expect("the reading at a timed-out wake");
    assert_eq!(seen.len(), 1, "only changes are reported: {seen:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(ch.events.try_recv().is_err(), "no event for a masked input");
    assert!(
        ch.levels.try_recv().is_err(),
        "nothing new while nothing moves"
    );
    driver.stop();
}
