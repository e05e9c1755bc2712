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
    // the initial state of every LED (as many as the model was built with)
    let n_leds = u8::try_from(board.n_leds()).unwrap();
    for led in 0..n_leds {
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
            led: n_leds,
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

/// Up to `n` events; waits at most `wait` for each.
fn collect(
    ch: &pynq_mqtt_driver::DriverChannels,
    n: usize,
    wait: Duration,
) -> Vec<pynq_mqtt_driver::ButtonEvent> {
    let mut got = Vec::new();
    while got.len() < n {
        match ch.events.recv_timeout(wait) {
            Ok(e) => got.push(e),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn a_bouncing_contact_gives_one_press_and_one_release() {
    // input 0 bounces for 1.3 ms on press and on release; debounce 2 ms
    let board = sim("1000 0 1\n1003 0 0\n1010 0 1\n1200 0 0\n1300 0 1\n\
                     50000 0 0\n50004 0 1\n50300 0 0\n51100 0 1\n51200 0 0\n");
    let (driver, ch) = Driver::start(
        board.clone(),
        &DriverConfig {
            debounce_us: 2000,
            ..DriverConfig::default()
        },
    )
    .unwrap();
    board.start_stimulus();
    // asks for one more than expected: nothing else may come within half a second
    let got = collect(&ch, 3, Duration::from_millis(500));
    let who: Vec<_> = got.iter().map(|e| (e.input, e.level)).collect();
    assert_eq!(who, vec![(0, true), (0, false)], "{got:?}");
    // the press keeps the time of first contact
    assert_eq!(got[1].ts_us - got[0].ts_us, 49_000);
    driver.stop();
}

#[test]
fn edge_selection_and_input_mask() {
    // inputs 1 (presses only), 2 (disabled), 3 (releases only) each pressed and released
    let board = sim("100 1 1\n100 2 1\n100 3 1\n200 1 0\n200 2 0\n200 3 0\n");
    let (driver, ch) = Driver::start(
        board.clone(),
        &DriverConfig {
            input_mask: !0b0100,
            rise_mask: !0b1000,
            fall_mask: !0b0010,
            ..DriverConfig::default()
        },
    )
    .unwrap();
    board.start_stimulus();
    // asks for one more than expected: nothing else may come within half a second
    let got = collect(&ch, 3, Duration::from_millis(500));
    let who: Vec<_> = got.iter().map(|e| (e.input, e.level)).collect();
    assert_eq!(who, vec![(1, true), (3, false)], "{got:?}");
    driver.stop();
}

#[test]
fn coalescing_takes_events_in_batches() {
    let mut text = String::new();
    for k in 0..64u64 {
        text.push_str(&format!(
            "{} {} {}\n",
            100 + k * 100,
            k % 4,
            (k / 4 + 1) % 2
        ));
    }
    let irqs = |config: DriverConfig| {
        let board = sim(&text);
        let (driver, ch) = Driver::start(board.clone(), &config).unwrap();
        board.start_stimulus();
        assert_eq!(collect(&ch, 64, Duration::from_secs(5)).len(), 64);
        let n = driver.stats().irqs.load(Ordering::Relaxed);
        driver.stop();
        n
    };
    // interrupts only: a drain on the wait's timeout (a loaded host) takes events
    // without one
    let interrupts_only = DriverConfig {
        irq_timeout: Duration::from_secs(3600),
        ..DriverConfig::default()
    };
    let one_each = irqs(interrupts_only.clone());
    let batched = irqs(DriverConfig {
        coalesce_count: 16,
        coalesce_us: 1_000_000,
        ..interrupts_only
    });
    // the drain itself takes simulated time, so a batch may grow past the threshold
    assert!(
        (1..=4).contains(&batched),
        "{batched} interrupts for 64 events"
    );
    // 100 simulated us apart, more than twice a drain (simulated time stands still from the
    // interrupt to the re-arm, but passes through each read): one interrupt each
    assert_eq!(one_each, 64, "{one_each} interrupts without coalescing");
}

#[test]
fn levels_follow_the_input_register_and_the_led_readback() {
    // input 2 pressed and held, input 0 pressed and released
    let board = sim("10 2 1\n20 0 1\n30 0 0\n");
    let (driver, ch) = Driver::start(board.clone(), &DriverConfig::default()).unwrap();
    let levels = driver.levels();
    assert_eq!((levels.inputs(), levels.leds()), (0, 0));
    board.start_stimulus();
    for _ in 0..3 {
        ch.events.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    // the register is read once the drain's events are handed over
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while levels.inputs() != 0b100 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        levels.inputs(),
        0b100,
        "what the pins say: {:#b}",
        board.inputs()
    );
    ch.commands
        .send(LedCommand {
            led: 1,
            action: LedAction::On,
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while levels.leds() != 0b10 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(levels.leds(), board.leds());
    assert_eq!(levels.leds(), 0b10);
    driver.stop();
}

#[test]
fn a_trace_records_every_popped_event_in_order() {
    let text: String = (0..20u64)
        .map(|k| format!("{} {} {}\n", 10 + 3 * k, k % 4, (k / 4 + 1) % 2))
        .collect();
    let board = sim(&text);
    let trace = Arc::new(pynq_mqtt_driver::EventTrace::new(64));
    let (driver, ch) = Driver::start(
        board.clone(),
        &DriverConfig {
            trace: Some(Arc::clone(&trace)),
            ..DriverConfig::default()
        },
    )
    .unwrap();
    let before = pynq_mqtt_driver::trace::unix_ns();
    board.start_stimulus();
    let got = collect(&ch, 20, Duration::from_secs(10));
    driver.stop();
    assert_eq!(got.len(), 20);
    let recorded = trace.snapshot();
    let seqs: Vec<u64> = recorded.iter().map(|&(s, _)| s).collect();
    let sent: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, sent, "one record per event, in the order handed up");
    assert!(
        recorded.windows(2).all(|w| w[0].1 <= w[1].1) && recorded[0].1 >= before,
        "stamps taken at the pops, in order: {recorded:?}"
    );
    assert_eq!(trace.overflowed(), 0);
}
