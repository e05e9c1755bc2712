//! The driver against the Verilated RTL.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pynq_mqtt_driver::{Driver, DriverConfig, LedAction, LedCommand, LedReport};
use pynq_mqtt_sim::{stimulus, SimBoard, SimConfig, Speed};

fn sim(stim: &str) -> Arc<SimBoard> {
    Arc::new(
        SimBoard::start(SimConfig {
            speed: Speed::Fast,
            stimulus: stimulus::parse(stim, "test", 4).unwrap(),
        })
        .unwrap(),
    )
}

#[test]
fn events_arrive_in_order_with_extended_stamps() {
    // 600 edges: bursts on all inputs in one microsecond, then single inputs
    let mut text = String::new();
    let mut expect = Vec::new();
    let mut level = [false; 4];
    let mut t = 10u64;
    for round in 0..100 {
        for i in 0..4u8 {
            level[i as usize] = !level[i as usize];
            text.push_str(&format!("{t} {i} {}\n", level[i as usize] as u8));
            expect.push((i, level[i as usize], t));
        }
        t += 37;
        let i = (round % 4) as u8;
        for _ in 0..2 {
            level[i as usize] = !level[i as usize];
            text.push_str(&format!("{t} {i} {}\n", level[i as usize] as u8));
            expect.push((i, level[i as usize], t));
            t += 5;
        }
    }
    let board = sim(&text);
    let (driver, ch) = Driver::start(board.clone(), &DriverConfig::default()).unwrap();
    board.start_stimulus();
    let mut got = Vec::new();
    while got.len() < expect.len() {
        match ch.events.recv_timeout(Duration::from_secs(10)) {
            Ok(e) => got.push(e),
            Err(_) => break,
        }
    }
    assert_eq!(got.len(), expect.len());
    for (k, (e, want)) in got.iter().zip(&expect).enumerate() {
        assert_eq!((e.input, e.level), (want.0, want.1), "event {k}");
        assert_eq!(e.seq, k as u64, "sequence numbers count every edge");
        // stamps keep the stimulus's spacing (time 0 is when the replay started)
        let got_dt = e.ts_us - got[0].ts_us;
        let want_dt = want.2 - expect[0].2;
        assert!(
            got_dt.abs_diff(want_dt) <= 1,
            "event {k}: {e:?} vs {want:?}"
        );
    }
    let stats = driver.stats();
    assert_eq!(stats.captured.load(Ordering::Relaxed), expect.len() as u64);
    assert_eq!(stats.hw_dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.seq_lost.load(Ordering::Relaxed), 0);
    driver.stop();
}

#[test]
fn led_commands_reach_the_pins_and_report_the_readback() {
    let board = sim("");
    let (driver, ch) = Driver::start(board.clone(), &DriverConfig::default()).unwrap();
    // the initial state of every LED
    for led in 0..4 {
        assert_eq!(
            ch.leds.recv_timeout(Duration::from_secs(5)).unwrap(),
            LedReport { led, on: false }
        );
    }
    let steps = [
        (2, LedAction::On, 0b0100),
        (0, LedAction::Toggle, 0b0101),
        (2, LedAction::Toggle, 0b0001),
        (0, LedAction::Off, 0b0000),
        (3, LedAction::On, 0b1000),
    ];
    for (led, action, pins) in steps {
        ch.commands.send(LedCommand { led, action }).unwrap();
        let r = ch.leds.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            r,
            LedReport {
                led,
                on: pins >> led & 1 == 1
            }
        );
        assert_eq!(board.leds(), pins);
    }
    ch.commands
        .send(LedCommand {
            led: 9,
            action: LedAction::On,
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        board.leds(),
        0b1000,
        "a LED that does not exist changes nothing"
    );
    assert_eq!(driver.stats().led_rejected.load(Ordering::Relaxed), 1);
    driver.stop();
}

#[test]
fn stop_wakes_the_waiting_thread_and_delivers_every_event() {
    let board = sim("");
    let (driver, ch) = Driver::start(
        board.clone(),
        &DriverConfig {
            // stop must not wait this out
            irq_timeout: Duration::from_secs(30),
            ..DriverConfig::default()
        },
    )
    .unwrap();
    for i in 0..4 {
        board.set_input(i, true);
    }
    std::thread::sleep(Duration::from_millis(50));
    driver.stop();
    let got: Vec<_> = ch.events.try_iter().collect();
    assert_eq!(got.len(), 4, "{got:?}");
}
