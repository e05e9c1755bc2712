//! The simulated board against its own RTL: registers, events, interrupt semantics
//! and stimulus replay speed.

use std::time::{Duration, Instant};

use pynq_mqtt_bus::{Bus, IrqWait};
use pynq_mqtt_sim::{stimulus, SimBoard, SimConfig, Speed};

use pynq_mqtt_regs::{
    GenCtrl, IrqEnable, RegBus, CLK_HZ, DROPPED, EVT_POP, EVT_TS, GEN_COUNT, GEN_CTRL, GEN_PATTERN,
    GEN_PERIOD, GEN_SENT, ID, IRQ_ENABLE, LED, LED_SET, LED_TOGGLE, PARAMS, SCRATCH,
};

fn board(speed: Speed, stim: &str) -> SimBoard {
    let steps = stimulus::parse(stim, "test", 4).unwrap();
    SimBoard::start(SimConfig {
        speed,
        stimulus: steps,
    })
    .unwrap()
}

#[test]
fn identity_scratch_and_leds() {
    let b = board(Speed::RealTime(1.0), "");
    assert_eq!(b.read(ID).unwrap(), 0x504D_5154);
    assert_eq!(b.read(SCRATCH).unwrap(), 0);
    b.write(SCRATCH, 0xA5A5_1234).unwrap();
    assert_eq!(b.read(SCRATCH).unwrap(), 0xA5A5_1234);
    // the shape the model was built with (host/sim/build.rs), as the RTL reports it
    let (n_inputs, n_leds) = (b.n_inputs(), b.n_leds());
    assert_eq!(
        b.read(PARAMS).unwrap().0 & 0xFFFF,
        n_leds << 8 | n_inputs,
        "PARAMS: N_INPUTS and N_LEDS"
    );
    assert_eq!(u64::from(b.read(CLK_HZ).unwrap()), b.clk_hz());
    b.write(LED, 0b1010).unwrap();
    assert_eq!(b.leds(), 0b1010);
    b.write(LED, 0xFFFF_FFFF).unwrap();
    let all = if n_leds == 32 {
        u32::MAX
    } else {
        (1 << n_leds) - 1
    };
    assert_eq!(b.read(LED).unwrap(), all, "masked to N_LEDS");
    assert!(b.read32(0x1_0000).is_err(), "outside the window");
}

#[test]
fn stimulus_edges_become_events_with_irq_semantics() {
    // all four inputs in the same microsecond, then input 2 alone; in real time, so the
    // stimulus ends before the interrupt is serviced (fast mode would pause for it)
    let b = board(
        Speed::RealTime(1.0),
        "100 0 1\n100 1 1\n100 2 1\n100 3 1\n250 2 0\n",
    );
    b.write(IRQ_ENABLE, IrqEnable::default().with_event(true))
        .unwrap();
    let origin = b.start_stimulus().expect("replay not started before");
    assert!(b.wait_stimulus_done(Duration::from_secs(10)));
    assert_eq!(b.wait_irq(Duration::from_secs(5)).unwrap(), IrqWait::Fired);
    // masked until re-armed, although the line is still high
    assert_eq!(
        b.wait_irq(Duration::from_millis(50)).unwrap(),
        IrqWait::TimedOut
    );
    let mut got = Vec::new();
    loop {
        let w = b.read(EVT_POP).unwrap().0;
        if w >> 31 == 0 {
            break;
        }
        let ts = b.read(EVT_TS).unwrap();
        got.push(((w >> 16) & 0xFF, (w >> 30) & 1, w & 0xFFFF, ts));
    }
    let who: Vec<_> = got.iter().map(|g| (g.0, g.1, g.2)).collect();
    assert_eq!(
        who,
        vec![(0, 1, 0), (1, 1, 1), (2, 1, 2), (3, 1, 3), (2, 0, 4)]
    );
    // same microsecond, same stamp; the next edge 150 us later. Time 0 is the replay's
    // start, which a slow host (an emulated ARM core) reaches later after reset: stamps
    // are compared with it, not with reset.
    assert!(got[..4].iter().all(|g| g.3 == got[0].3), "{got:?}");
    let since_origin = u64::from(got[0].3) - origin;
    assert!(
        (100..=110).contains(&since_origin),
        "origin {origin}: {got:?}"
    );
    assert_eq!(got[4].3 - got[0].3, 150);
    b.rearm_irq().unwrap();
    assert_eq!(
        b.wait_irq(Duration::from_millis(50)).unwrap(),
        IrqWait::TimedOut,
        "FIFO drained: no interrupt after re-arm"
    );
}

#[test]
fn five_second_stimulus_replays_every_edge() {
    let mut text = String::new();
    for k in 0..2000u64 {
        text.push_str(&format!("{} {} {}\n", k * 2500, k % 4, (k / 4 + 1) % 2));
    }
    let b = board(Speed::Fast, &text);
    b.write(IRQ_ENABLE, IrqEnable::default().with_event(true))
        .unwrap();
    b.start_stimulus();
    let t0 = Instant::now();
    let mut n = 0;
    while n < 2000 {
        if b.wait_irq(Duration::from_secs(5)).unwrap() == IrqWait::TimedOut {
            break;
        }
        while b.read(EVT_POP).unwrap().0 >> 31 == 1 {
            n += 1;
        }
        b.rearm_irq().unwrap();
    }
    let wall = t0.elapsed();
    assert_eq!(n, 2000, "every edge of the stimulus became an event");
    assert!(b.sim_time_us() >= 4_997_500);
    eprintln!("5 s of simulated stimulus in {wall:?}");
}

/// Drains the FIFO once: (input, level, seq, synthetic) of each event.
fn drain(b: &SimBoard) -> Vec<(u32, u32, u32, bool)> {
    let mut got = Vec::new();
    loop {
        let w = b.read(EVT_POP).unwrap().0;
        if w >> 31 == 0 {
            return got;
        }
        got.push((
            (w >> 16) & 0xFF,
            (w >> 30) & 1,
            w & 0xFFFF,
            (w >> 29) & 1 == 1,
        ));
    }
}

#[test]
fn generator_overflow_is_counted_exactly() {
    let b = board(Speed::RealTime(1.0), "");
    b.write(GEN_COUNT, 2000).unwrap();
    b.write(GEN_PERIOD, 0).unwrap();
    b.write(GEN_PATTERN, 0b1011).unwrap();
    // one event per clock for 2000 clocks: far more than the 513 the FIFO holds
    b.write(GEN_CTRL, GenCtrl::default().with_enable(true))
        .unwrap();
    while b.read(GEN_CTRL).unwrap().enable() {}
    assert_eq!(b.read(GEN_SENT).unwrap(), 2000);
    let got = drain(&b);
    let dropped = b.read(DROPPED).unwrap() as usize;
    assert!(dropped > 0, "the generator outran the FIFO");
    assert_eq!(got.len() + dropped, 2000, "delivered + dropped = generated");
    // the delivered ones are synthetic, cycle through inputs 0, 1, 3 and toggle per input
    for (k, g) in got.iter().take(12).enumerate() {
        assert!(g.3, "{g:?} is marked synthetic");
        assert_eq!(g.0, [0, 1, 3][k % 3]);
        assert_eq!(g.1, if (k / 3) % 2 == 0 { 1 } else { 0 }, "{k}: {g:?}");
        assert_eq!(g.2 as usize, k);
    }
    // the sequence numbers show exactly the missing ones
    let last_seq = got.last().unwrap().2 as usize;
    assert_eq!(last_seq + 1 - got.len(), dropped - (1999 - last_seq));
    // writing back what was read clears the count
    b.write(DROPPED, dropped as u32).unwrap();
    assert_eq!(b.read(DROPPED).unwrap(), 0);
}

#[test]
fn led_set_and_toggle_registers_are_atomic_ops() {
    let b = board(Speed::RealTime(1.0), "");
    b.write(LED_SET, 0b0101).unwrap();
    assert_eq!(b.read(LED).unwrap(), 0b0101);
    b.write(LED_TOGGLE, 0b0011).unwrap();
    assert_eq!(b.read(LED).unwrap(), 0b0110);
    assert_eq!(
        b.read32(LED_SET.offset()).unwrap(),
        0,
        "write-only registers read 0"
    );
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(b.leds(), 0b0110);
}

#[test]
fn pacing_maps_simulated_time_to_the_wall_clock_never_ahead_of_it() {
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let b = board(Speed::RealTime(1.0), "");
    std::thread::sleep(Duration::from_millis(20));
    let sim = b.sim_time_us();
    let paced = b.paced_unix_ns(sim).expect("real time is paced");
    // the model runs behind (or at) the wall clock, never ahead
    assert!(paced <= now_ns());
    // one simulated second later is one wall second later at speed 1
    let later = b.paced_unix_ns(sim + 1_000_000).unwrap();
    assert_eq!(later - paced, 1_000_000_000);
    let fast = board(Speed::Fast, "0 0 1\n");
    fast.start_stimulus();
    assert!(fast.wait_stimulus_done(Duration::from_secs(5)));
    // fast replay has ended, and real-time pacing is back
    assert!(fast.paced_unix_ns(fast.sim_time_us()).is_some());
}

#[test]
fn a_press_and_release_within_one_clock_chunk_are_two_edges_apart_in_time() {
    // The clock thread steps the model in chunks of up to a millisecond; a pin driven
    // twice inside one (a demo key pressed and released) used to land in one cycle, and
    // the press vanished. Each change now lands at its own wall-clock moment.
    let b = board(Speed::RealTime(1.0), "");
    for round in 0..20u32 {
        b.set_input(1, true);
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(300) {
            std::hint::spin_loop();
        }
        b.set_input(1, false);
        let t = Instant::now();
        let mut got = Vec::new();
        while got.len() < 2 && t.elapsed() < Duration::from_secs(2) {
            let w = b.read(EVT_POP).unwrap().0;
            if w >> 31 == 1 {
                got.push(((w >> 16) & 0xFF, (w >> 30) & 1, b.read(EVT_TS).unwrap()));
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got.len(), 2, "round {round}: both edges captured: {got:?}");
        assert_eq!((got[0].0, got[0].1, got[1].0, got[1].1), (1, 1, 1, 0));
        let apart = got[1].2.wrapping_sub(got[0].2);
        // at least the 300 us the host waited between them (a stall of this thread
        // can only add to that)
        assert!(apart >= 300, "round {round}: edges {apart} us apart");
    }
}

#[test]
fn a_wait_and_read_takes_the_interrupt_and_its_reads_in_one_step() {
    use pynq_mqtt_regs::offset;
    let b = board(
        Speed::RealTime(1.0),
        "100 0 1\n100 1 1\n100 2 1\n400000 3 1\n",
    );
    b.write(IRQ_ENABLE, IrqEnable::default().with_event(true))
        .unwrap();
    let reads = [
        offset::ID,
        offset::EVT_POP,
        offset::EVT_TS,
        offset::EVT_POP,
        offset::EVT_TS,
        offset::FIFO_LEVEL,
    ];
    let id = b.read(ID).unwrap();
    // nothing yet: a timeout, the reads not made (nothing popped, `out` untouched)
    let mut out = vec![7];
    let (woke, read) = b
        .wait_irq_and_read(Duration::from_millis(20), id, &reads, &mut out)
        .unwrap();
    assert_eq!(
        (woke, read.is_ok(), &out[..]),
        (IrqWait::TimedOut, true, &[7][..])
    );
    // a wake-up from another thread ends the wait the same way
    let waker = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut out = Vec::new();
            let r = b.wait_irq_and_read(Duration::from_secs(10), id, &reads, &mut out);
            (r.map(|(w, _)| w).ok(), out)
        });
        std::thread::sleep(Duration::from_millis(20));
        b.wake_waiter();
        h.join().unwrap()
    });
    assert_eq!(waker, (Some(IrqWait::TimedOut), vec![]));
    b.start_stimulus().expect("replay not started before");
    out.clear();
    let (woke, read) = b
        .wait_irq_and_read(Duration::from_secs(5), id, &reads, &mut out)
        .unwrap();
    read.unwrap();
    assert_eq!(woke, IrqWait::Fired);
    assert_eq!(out.len(), reads.len());
    assert_eq!(out[0], id);
    let evt = |w: u32| ((w >> 31) & 1, (w >> 16) & 0xFF, w & 0xFFFF);
    // the reads ran as the interrupt was delivered: the first two edges popped, the
    // third waiting (the one 400 ms later not yet there)
    assert_eq!(evt(out[1]), (1, 0, 0));
    assert_eq!(evt(out[3]), (1, 1, 1));
    assert_eq!(out[5] & 0xFFFF, 1, "FIFO_LEVEL after two pops");
    // delivered, so masked until the re-arm, the line still high
    let mut again = Vec::new();
    let (woke, _) = b
        .wait_irq_and_read(Duration::from_millis(20), id, &reads, &mut again)
        .unwrap();
    assert_eq!((woke, again.len()), (IrqWait::TimedOut, 0));
    b.rearm_irq().unwrap();
    let (woke, read) = b
        .wait_irq_and_read(Duration::from_secs(5), id, &reads, &mut again)
        .unwrap();
    read.unwrap();
    assert_eq!(woke, IrqWait::Fired);
    assert_eq!(evt(again[1]), (1, 2, 2));
    assert_eq!(evt(again[3]).0, 0, "the FIFO was empty after one pop");
    // an identity that does not match: one read, nothing popped
    b.rearm_irq().unwrap();
    let mut other = Vec::new();
    let (woke, read) = b
        .wait_irq_and_read(Duration::from_secs(5), !id, &reads, &mut other)
        .unwrap();
    read.unwrap();
    assert_eq!((woke, other), (IrqWait::Fired, vec![id]));
    assert_eq!(b.read(pynq_mqtt_regs::FIFO_LEVEL).unwrap().0 & 0xFFFF, 1);
}
