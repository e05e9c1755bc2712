//! The session's transitions, driven by packets and times, with no socket: what it
//! asks to write is decoded back with the codec.

use std::sync::atomic::Ordering;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    PubAck, PubComp, PubRec, PubRel, Publish, SubAck, SubscribeReasonCode as Rc,
};
use rumqttc::mqttbytes::QoS as CodecQos;

use super::*;
use crate::config::{Discovery, Rule, RuleLeds};
use crate::error::Lost;
use crate::payload::PayloadFormat;
use crate::wire::Incoming;
use pynq_mqtt_driver::LedAction;
use rumqttc::mqttbytes::v4::Packet;

fn ev(seq: u64) -> ButtonEvent {
    ButtonEvent {
        input: (seq % 4) as u8,
        level: seq.is_multiple_of(2),
        ts_us: seq,
        seq,
        synthetic: false,
        utc_us: None,
    }
}

fn session_with(qos: Qos, tune: impl FnOnce(&mut BridgeConfig)) -> (Session, Arc<BridgeStats>) {
    let mut cfg = BridgeConfig::new("broker", 1883);
    cfg.qos = qos;
    tune(&mut cfg);
    let stats = Arc::new(BridgeStats::default());
    let s = Session::new(
        Arc::new(cfg),
        4,
        4,
        Arc::clone(&stats),
        Arc::new(DriverStats::default()),
    );
    (s, stats)
}

fn session(qos: Qos) -> (Session, Arc<BridgeStats>) {
    session_with(qos, |_| {})
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One batch, written completely: the packets in it.
fn write_batch(s: &mut Session, now: Instant) -> Vec<Packet> {
    if !s.batch_done() {
        let n = s.pending().len();
        s.on_written(n, now);
    }
    s.start_batch();
    s.fill();
    s.finish_batch();
    let mut bytes = BytesMut::from(s.pending());
    s.on_written(bytes.len(), now);
    decode(&mut bytes)
}

fn decode(bytes: &mut BytesMut) -> Vec<Packet> {
    let mut out = Vec::new();
    while let Some(Incoming::Packet(p)) = wire::read(bytes).unwrap() {
        out.push(p);
    }
    assert!(bytes.is_empty());
    out
}

/// Connected with the announcements written and dropped.
fn connect(s: &mut Session, present: bool, now: Instant) {
    s.connected(present, now);
    let first = write_batch(s, now);
    assert!(matches!(first[0], Packet::Subscribe(_)), "{first:?}");
}

fn feed(s: &mut Session, packets: &[Packet]) -> Result<(), Lost> {
    let mut b = BytesMut::new();
    for p in packets {
        let r = match p {
            Packet::PubAck(a) => a.write(&mut b),
            Packet::PubRec(a) => a.write(&mut b),
            Packet::PubRel(a) => a.write(&mut b),
            Packet::PubComp(a) => a.write(&mut b),
            Packet::Publish(a) => a.write(&mut b),
            Packet::SubAck(a) => a.write(&mut b),
            Packet::Disconnect => rumqttc::mqttbytes::v4::Disconnect.write(&mut b),
            Packet::PingResp => rumqttc::mqttbytes::v4::PingResp.write(&mut b),
            other => panic!("{other:?}"),
        };
        r.unwrap();
    }
    s.on_read(&mut b)
}

fn publish(topic: &str, qos: CodecQos, pkid: u16, dup: bool, payload: &[u8]) -> Packet {
    let mut p = Publish::new(topic, qos, payload.to_vec());
    p.pkid = pkid;
    p.dup = dup;
    Packet::Publish(p)
}

/// (input, packet id, dup) of the events in `ps`.
fn event_ids(ps: &[Packet]) -> Vec<(u64, u16, bool)> {
    ps.iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => {
                let input = p.topic.strip_prefix("button/")?.parse().ok()?;
                Some((input, p.pkid, p.dup))
            }
            _ => None,
        })
        .collect()
}

fn publishes_to<'a>(ps: &'a [Packet], topic: &str) -> Vec<&'a Publish> {
    ps.iter()
        .filter_map(|p| match p {
            Packet::Publish(p) if p.topic == topic => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn connack_accepts_or_names_the_refusal() {
    assert!(connack(ConnectReturnCode::Success, true).unwrap());
    assert!(!connack(ConnectReturnCode::Success, false).unwrap());
    let e = connack(ConnectReturnCode::BadUserNamePassword, false).unwrap_err();
    assert!(matches!(e, ConnectError::Refused(Refusal::BadLogin)));
    assert!(e.is_permanent());
    assert!(e.to_string().contains("user name or password"), "{e}");
    let busy = connack(ConnectReturnCode::ServiceUnavailable, false).unwrap_err();
    assert!(!busy.is_permanent(), "a busy broker is retried");
    let r = connack(ConnectReturnCode::NotAuthorized, false).unwrap_err();
    assert!(matches!(r, ConnectError::Refused(x) if x.is_login()));
}

#[test]
fn a_permanent_refusal_ends_the_run_only_before_the_first_connection() {
    let (mut s, stats) = session(Qos::AtMostOnce);
    let refused = || ConnectError::Refused(Refusal::BadLogin);
    assert!(s.connect_failed(refused()).is_err(), "first: fatal");
    assert!(
        s.connect_failed(ConnectError::Timeout(Duration::from_secs(1)))
            .is_ok(),
        "a timeout is retried"
    );
    assert_eq!(get(&stats.connection_errors), 1);
    s.connected(false, Instant::now());
    s.disconnected();
    assert!(s.connect_failed(refused()).is_ok(), "later: retried");
    assert_eq!(get(&stats.connection_errors), 2);
}

#[test]
fn a_persistent_session_starts_fresh_once_per_process() {
    let (mut s, _) = session(Qos::AtLeastOnce);
    assert_eq!(s.connect_plan(), (true, false));
    s.connected(false, Instant::now());
    assert_eq!(s.connect_plan(), (false, false));
    let (c, _) = session_with(Qos::AtLeastOnce, |c| c.session = SessionMode::Clean);
    assert_eq!(c.connect_plan(), (false, true));
}

#[test]
fn every_connection_announces_subscriptions_online_led_states_and_discovery() {
    let (mut s, stats) = session_with(Qos::AtMostOnce, |c| {
        c.discovery = Some(Discovery {
            prefix: "homeassistant".into(),
            device_name: "board".into(),
        })
    });
    let now = Instant::now();
    s.led_report(LedReport { led: 2, on: true });
    s.led_report(LedReport { led: 9, on: true }); // no such LED: ignored
    for round in 1..=2 {
        s.connected(false, now);
        let ps = write_batch(&mut s, now);
        let Packet::Subscribe(sub) = &ps[0] else {
            panic!("{ps:?}")
        };
        let filters: Vec<&str> = sub.filters.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            filters,
            [
                "led/+/set",
                "led/set",
                "status",
                "led/+/get",
                "homeassistant/status"
            ]
        );
        let online = publishes_to(&ps, "status");
        assert_eq!(online.len(), 1);
        assert!(online[0].retain && &online[0].payload[..] == b"online");
        let led = publishes_to(&ps, "led/2");
        assert!(led.len() == 1 && led[0].retain && &led[0].payload[..] == b"1");
        let configs = ps
            .iter()
            .filter(|p| matches!(p, Packet::Publish(p) if p.topic.starts_with("homeassistant/")))
            .count();
        assert_eq!(configs, 8, "4 inputs and 4 LEDs");
        s.disconnected();
        assert_eq!(get(&stats.connects), round);
    }
}

#[test]
fn led_states_go_out_on_the_live_connection_only() {
    let (mut s, _) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    s.led_report(LedReport { led: 1, on: false });
    let ps = write_batch(&mut s, now);
    assert_eq!(publishes_to(&ps, "led/1").len(), 1);
    s.disconnected();
    s.led_report(LedReport { led: 1, on: true });
    assert!(s.pending().is_empty());
}

#[test]
fn qos0_events_finish_when_their_last_byte_is_written() {
    let (mut s, stats) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    for k in 0..3 {
        assert!(s.push_event(ev(k)));
    }
    s.start_batch();
    assert_eq!(s.fill(), Fill::Dry);
    s.finish_batch();
    let total = s.pending().len();
    let one = total / 3;
    s.on_written(one + 1, now);
    assert_eq!(get(&stats.published), 1, "the second is not complete");
    s.on_written(total - one - 1, now);
    assert_eq!(get(&stats.published), 3);
    assert!(s.outbox.is_empty() && s.batch_done());
}

#[test]
fn a_trace_records_each_event_once_its_last_byte_is_written() {
    for qos in [Qos::AtMostOnce, Qos::AtLeastOnce] {
        let (mut s, _) = session(qos);
        let trace = crate::WriteTrace {
            issued: Arc::new(pynq_mqtt_driver::EventTrace::new(16)),
            returned: Arc::new(pynq_mqtt_driver::EventTrace::new(16)),
        };
        s.trace = Some(trace.clone());
        assert!(s.tracing());
        let now = Instant::now();
        connect(&mut s, false, now);
        for k in 10..13 {
            assert!(s.push_event(ev(k)));
        }
        s.start_batch();
        assert_eq!(s.fill(), Fill::Dry);
        s.finish_batch();
        let total = s.pending().len();
        s.write_issued(1_000);
        s.on_written(total / 3 + 1, now);
        let seqs = |t: &pynq_mqtt_driver::EventTrace| -> Vec<u64> {
            t.snapshot().into_iter().map(|(seq, _)| seq).collect()
        };
        assert_eq!(
            seqs(&trace.returned),
            vec![10],
            "{qos:?}: only the first is complete"
        );
        assert_eq!(trace.issued.snapshot(), vec![(10, 1_000)], "{qos:?}");
        // the write that completes the other two was issued later
        s.write_issued(2_000);
        s.on_written(total - total / 3 - 1, now);
        assert_eq!(seqs(&trace.returned), vec![10, 11, 12], "{qos:?}");
        assert_eq!(
            trace.issued.snapshot(),
            vec![(10, 1_000), (11, 2_000), (12, 2_000)],
            "{qos:?}"
        );
        // the next batch (nothing new) records nothing again, and a stamp is used once
        write_batch(&mut s, now);
        assert_eq!(seqs(&trace.returned), vec![10, 11, 12], "{qos:?}");
        assert_eq!(seqs(&trace.issued), vec![10, 11, 12], "{qos:?}");
        assert_eq!(s.write_issued_ns, 0, "{qos:?}");
    }
}

#[test]
fn without_a_trace_a_batch_keeps_no_offsets() {
    let (mut s, _) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    assert!(s.push_event(ev(1)));
    s.start_batch();
    s.fill();
    assert!(s.live.as_ref().unwrap().traced.is_empty());
}

#[test]
fn qos0_bytes_not_taken_before_a_loss_go_again_and_none_twice() {
    let (mut s, stats) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    for k in 0..4 {
        s.push_event(ev(k));
    }
    s.start_batch();
    s.fill();
    s.finish_batch();
    let total = s.pending().len();
    s.on_written(total / 2, now);
    s.disconnected();
    s.connected(false, now);
    let ps = write_batch(&mut s, now);
    assert_eq!(event_ids(&ps).len(), 2);
    assert_eq!(get(&stats.published), 4);
}

#[test]
fn qos1_a_full_window_waits_and_acks_free_it() {
    // (a window of at least 64: smaller ones reopen on every answer)
    let (mut s, stats) = session_with(Qos::AtLeastOnce, |c| c.max_inflight = 64);
    let now = Instant::now();
    connect(&mut s, false, now);
    for k in 0..80 {
        s.push_event(ev(k));
    }
    let ps = write_batch(&mut s, now);
    assert_eq!(
        event_ids(&ps).iter().map(|e| e.1).collect::<Vec<_>>(),
        (1..=64).collect::<Vec<_>>()
    );
    assert!(!s.outbox_ready(), "window full");
    assert!(event_ids(&write_batch(&mut s, now)).is_empty());
    let acks: Vec<Packet> = (1..=15).map(|k| Packet::PubAck(PubAck::new(k))).collect();
    feed(&mut s, &acks).unwrap();
    assert_eq!(get(&stats.published), 15);
    assert!(!s.outbox_ready(), "15 free slots wait for a quarter");
    feed(
        &mut s,
        &[
            Packet::PubAck(PubAck::new(16)),
            Packet::PubAck(PubAck::new(16)),
        ],
    )
    .unwrap();
    assert_eq!(get(&stats.published), 16, "a repeated ack counts once");
    assert!(s.outbox_ready());
    assert_eq!(event_ids(&write_batch(&mut s, now)).len(), 16);
}

#[test]
fn qos1_unacknowledged_events_are_resent_in_order_with_dup() {
    let (mut s, stats) = session(Qos::AtLeastOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    for k in 0..3 {
        s.push_event(ev(k));
    }
    write_batch(&mut s, now);
    feed(&mut s, &[Packet::PubAck(PubAck::new(1))]).unwrap();
    s.disconnected();
    s.connected(true, now);
    let ps = write_batch(&mut s, now);
    assert_eq!(event_ids(&ps), [(1, 2, true), (2, 3, true)]);
    assert_eq!(get(&stats.resent), 2);
    assert!(
        matches!(ps[2], Packet::Subscribe(_)),
        "the control packets follow the events sent again"
    );
}

#[test]
fn a_resent_event_is_the_same_bytes_whatever_the_clock_did_since() {
    // mosquitto takes a QoS 2 resend whose payload differs from the message it holds
    // under that id for a new message ("Reused message ID"): the JSON `ts` of an
    // event is fixed when the driver drains it, never recomputed at a resend
    let mut cfg = BridgeConfig::new("broker", 1883);
    cfg.qos = Qos::ExactlyOnce;
    cfg.payload = PayloadFormat::Json;
    let driver = Arc::new(DriverStats::default());
    driver
        .wall_offset_us
        .store(1_764_653_000_000_000, Ordering::Relaxed);
    let mut s = Session::new(
        Arc::new(cfg),
        4,
        4,
        Arc::new(BridgeStats::default()),
        Arc::clone(&driver),
    );
    let now = Instant::now();
    connect(&mut s, true, now);
    let mut e = ev(1);
    e.utc_us = std::num::NonZeroU64::new(1_764_653_000_000_001);
    s.push_event(e);
    let first = write_batch(&mut s, now);
    let sent = publishes_to(&first, "button/1");
    assert_eq!(sent.len(), 1, "{first:?}");
    let payload = sent[0].payload.clone();
    assert!(
        std::str::from_utf8(&payload)
            .unwrap()
            .contains("\"ts\":\"2025-12-02T05:23:20.000001Z\""),
        "{payload:?}"
    );
    // the clock moves on (a new offset estimate), the link breaks, the event goes again
    driver
        .wall_offset_us
        .store(1_764_653_000_250_000, Ordering::Relaxed);
    s.disconnected();
    s.connected(true, now);
    let again = write_batch(&mut s, now);
    let resent = publishes_to(&again, "button/1");
    assert_eq!(resent.len(), 1, "{again:?}");
    assert!(resent[0].dup);
    assert_eq!(resent[0].pkid, sent[0].pkid);
    assert_eq!(
        resent[0].payload, payload,
        "the resend differs from the first send"
    );
}

#[test]
fn qos2_after_a_reset_the_releases_go_before_anything_else_and_the_window_shrinks() {
    // mosquitto held 20 of our QoS 2 messages awaiting PUBREL and reset the
    // connection on the 21st: on the next one, any PUBLISH before the PUBRELs would
    // be refused (and the connection reset) again
    let (mut s, _) = session_with(Qos::ExactlyOnce, |c| c.max_inflight = 1024);
    let now = Instant::now();
    connect(&mut s, false, now);
    s.led_report(LedReport { led: 0, on: true });
    for k in 0..400 {
        s.push_event(ev(k));
    }
    let mut sent = 0;
    loop {
        let ps = write_batch(&mut s, now);
        if event_ids(&ps).is_empty() {
            break;
        }
        sent += event_ids(&ps).len();
    }
    assert_eq!(sent, 400, "a window of 1024");
    let recs: Vec<Packet> = (1..=20).map(|k| Packet::PubRec(PubRec::new(k))).collect();
    feed(&mut s, &recs).unwrap();
    s.disconnected();
    s.connected(true, now);
    let ps = write_batch(&mut s, now);
    let first_other = ps
        .iter()
        .position(|p| !matches!(p, Packet::PubRel(_)))
        .unwrap();
    assert_eq!(first_other, 20, "{:?}", &ps[..21]);
    assert!(ps[..20]
        .iter()
        .enumerate()
        .all(|(k, p)| matches!(p, Packet::PubRel(r) if usize::from(r.pkid) == k + 1)));
    assert!(
        event_ids(&ps).is_empty(),
        "nothing more until the broker has completed some: the window is what it held"
    );
    assert!(!publishes_to(&ps, "status").is_empty() && !publishes_to(&ps, "led/0").is_empty());
    assert_eq!(s.outbox.window(), 20);
    let comps: Vec<Packet> = (1..=5).map(|k| Packet::PubComp(PubComp::new(k))).collect();
    feed(&mut s, &comps).unwrap();
    let ps = write_batch(&mut s, now);
    assert_eq!(
        event_ids(&ps).iter().map(|e| e.1).collect::<Vec<_>>(),
        [21, 22, 23, 24, 25],
        "sent again as room is made, in order"
    );
}

#[test]
fn qos2_publish_pubrec_pubrel_pubcomp() {
    let (mut s, stats) = session(Qos::ExactlyOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    s.push_event(ev(0));
    let ps = write_batch(&mut s, now);
    assert_eq!(event_ids(&ps), [(0, 1, false)]);
    feed(&mut s, &[Packet::PubRec(PubRec::new(1))]).unwrap();
    let ps = write_batch(&mut s, now);
    assert!(
        matches!(&ps[..], [Packet::PubRel(r)] if r.pkid == 1),
        "{ps:?}"
    );
    assert_eq!(get(&stats.published), 0);
    feed(&mut s, &[Packet::PubRec(PubRec::new(77))]).unwrap();
    let ps = write_batch(&mut s, now);
    assert!(
        matches!(&ps[..], [Packet::PubRel(r)] if r.pkid == 77),
        "an unknown PUBREC is released too"
    );
    feed(&mut s, &[Packet::PubComp(PubComp::new(1))]).unwrap();
    assert_eq!(get(&stats.published), 1);
    assert!(s.outbox.is_empty());
}

#[test]
fn qos2_a_released_event_is_released_again_after_a_reconnect() {
    let (mut s, _) = session(Qos::ExactlyOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    s.push_event(ev(0));
    write_batch(&mut s, now);
    feed(&mut s, &[Packet::PubRec(PubRec::new(1))]).unwrap();
    write_batch(&mut s, now);
    s.disconnected();
    s.connected(true, now);
    let ps = write_batch(&mut s, now);
    assert!(ps
        .iter()
        .any(|p| matches!(p, Packet::PubRel(r) if r.pkid == 1)));
    assert!(event_ids(&ps).is_empty());
    s.disconnected();
    s.connected(false, now);
    let ps = write_batch(&mut s, now);
    assert_eq!(
        event_ids(&ps),
        [(0, 1, true)],
        "a lost session is published again"
    );
}

#[test]
fn led_commands_are_decided_acknowledged_and_not_repeated_for_a_dup() {
    let (mut s, stats) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    feed(
        &mut s,
        &[publish(
            "led/1/set",
            CodecQos::AtLeastOnce,
            5,
            false,
            b"toggle",
        )],
    )
    .unwrap();
    assert_eq!(
        s.commands.drain(..).collect::<Vec<_>>(),
        [LedCommand {
            led: 1,
            action: LedAction::Toggle
        }]
    );
    feed(
        &mut s,
        &[publish(
            "led/1/set",
            CodecQos::AtLeastOnce,
            5,
            true,
            b"toggle",
        )],
    )
    .unwrap();
    assert!(s.commands.is_empty(), "the broker's resend is not acted on");
    let ps = write_batch(&mut s, now);
    assert_eq!(
        ps.iter()
            .filter(|p| matches!(p, Packet::PubAck(a) if a.pkid == 5))
            .count(),
        2,
        "both are acknowledged"
    );
    feed(
        &mut s,
        &[publish("led/set", CodecQos::ExactlyOnce, 6, false, b"ON")],
    )
    .unwrap();
    assert_eq!(s.commands.len(), 4, "all LEDs");
    let ps = write_batch(&mut s, now);
    assert!(ps
        .iter()
        .any(|p| matches!(p, Packet::PubRec(a) if a.pkid == 6)));
    feed(&mut s, &[Packet::PubRel(PubRel::new(6))]).unwrap();
    let ps = write_batch(&mut s, now);
    assert!(matches!(&ps[..], [Packet::PubComp(c)] if c.pkid == 6));
    s.commands.clear();
    feed(
        &mut s,
        &[
            publish("led/9/set", CodecQos::AtMostOnce, 0, false, b"on"),
            publish("led/0/set", CodecQos::AtMostOnce, 0, false, b"blink"),
        ],
    )
    .unwrap();
    assert!(s.commands.is_empty());
    assert_eq!(get(&stats.commands_rejected), 2);
}

#[test]
fn a_new_session_forgets_the_ids_of_commands_acted_on() {
    let (mut s, _) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    let cmd = publish("led/0/set", CodecQos::AtLeastOnce, 3, false, b"1");
    feed(&mut s, &[cmd]).unwrap();
    s.disconnected();
    connect(&mut s, false, now);
    feed(
        &mut s,
        &[publish("led/0/set", CodecQos::AtLeastOnce, 3, true, b"1")],
    )
    .unwrap();
    assert_eq!(s.commands.len(), 2);
}

#[test]
fn rules_and_home_assistant_birth() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| {
        c.rules = vec![
            Rule {
                topic: "button/0".into(),
                payloads: vec!["1".into()],
                action: LedAction::Toggle,
                leds: RuleLeds::All,
            },
            Rule {
                topic: "door/+".into(),
                payloads: vec![],
                action: LedAction::On,
                leds: RuleLeds::Some(vec![3]),
            },
        ];
        c.discovery = Some(Discovery {
            prefix: "ha".into(),
            device_name: "b".into(),
        });
    });
    let now = Instant::now();
    connect(&mut s, false, now);
    feed(
        &mut s,
        &[publish("button/0", CodecQos::AtMostOnce, 0, false, b"0")],
    )
    .unwrap();
    assert!(s.commands.is_empty(), "payload filter");
    feed(
        &mut s,
        &[publish("button/0", CodecQos::AtMostOnce, 0, false, b"1")],
    )
    .unwrap();
    assert_eq!(s.commands.len(), 4);
    s.commands.clear();
    // a rule without payloads: presses only (issue 15), not releases nor other words
    for other in [
        &b"0"[..],
        b"x",
        b"off",
        br#"{"state":0}"#,
        br#"{"state":"OFF"}"#,
    ] {
        feed(
            &mut s,
            &[publish("door/front", CodecQos::AtMostOnce, 0, false, other)],
        )
        .unwrap();
        assert!(s.commands.is_empty(), "{other:?}");
    }
    for press in [&b"ON"[..], b"true", br#"{"input":0,"state":1,"seq":3}"#] {
        feed(
            &mut s,
            &[publish("door/front", CodecQos::AtMostOnce, 0, false, press)],
        )
        .unwrap();
        assert_eq!(s.commands.len(), 1, "{press:?}");
        s.commands.clear();
    }
    feed(
        &mut s,
        &[publish("door/front", CodecQos::AtMostOnce, 0, false, b"1")],
    )
    .unwrap();
    assert_eq!(
        s.commands,
        [LedCommand {
            led: 3,
            action: LedAction::On
        }]
    );
    feed(
        &mut s,
        &[publish(
            "ha/status",
            CodecQos::AtMostOnce,
            0,
            false,
            b"online",
        )],
    )
    .unwrap();
    let ps = write_batch(&mut s, now);
    assert_eq!(
        ps.iter()
            .filter(|p| matches!(p, Packet::Publish(p) if p.topic.starts_with("ha/") && p.retain))
            .count(),
        8,
        "discovery configs again"
    );
}

#[test]
fn a_message_too_large_is_skipped_and_acknowledged() {
    let (mut s, stats) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    let mut big = BytesMut::new();
    let mut p = Publish::new(
        "led/0/set",
        CodecQos::AtLeastOnce,
        vec![b'x'; wire::MAX_INCOMING + 5],
    );
    p.pkid = 9;
    p.write(&mut big).unwrap();
    PubAck::new(1).write(&mut big).unwrap();
    // arrives in two parts
    let mut first = big.split_to(100);
    s.on_read(&mut first).unwrap();
    s.on_read(&mut big).unwrap();
    assert!(big.is_empty());
    assert_eq!(get(&stats.commands_rejected), 1);
    let ps = write_batch(&mut s, now);
    assert!(matches!(&ps[..], [Packet::PubAck(a)] if a.pkid == 9));
}

#[test]
fn the_broker_saying_disconnect_ends_the_connection() {
    let (mut s, _) = session(Qos::AtMostOnce);
    connect(&mut s, false, Instant::now());
    assert!(matches!(
        feed(&mut s, &[Packet::Disconnect]),
        Err(Lost::BrokerDisconnect)
    ));
    let suback = SubAck::new(EVENT_PKIDS + 1, vec![Rc::Success(CodecQos::AtLeastOnce)]);
    feed(&mut s, &[Packet::SubAck(suback), Packet::PingResp]).unwrap();
}

#[test]
fn keep_alive_pings_when_quiet_and_gives_up_without_an_answer() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| c.keep_alive = Duration::from_secs(10));
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    let ka = Duration::from_secs(10);
    assert_eq!(s.on_timer(t0 + ka / 2).unwrap(), t0 + ka, "nothing due yet");
    let next = s.on_timer(t0 + ka).unwrap();
    assert_eq!(next, t0 + 2 * ka);
    let ps = write_batch(&mut s, t0 + ka);
    assert!(matches!(&ps[..], [Packet::PingReq]), "{ps:?}");
    feed(&mut s, &[Packet::PingResp]).unwrap();
    let t1 = t0 + ka;
    s.on_timer(t1 + ka).unwrap();
    write_batch(&mut s, t1 + ka);
    assert!(matches!(
        s.on_timer(t1 + 2 * ka),
        Err(Lost::NoAnswer(d)) if d == ka
    ));
}

#[test]
fn without_a_keep_alive_no_ping_goes_out_and_silent_acks_still_end_the_link() {
    let (mut s, _) = session_with(Qos::AtLeastOnce, |c| c.keep_alive = Duration::ZERO);
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    let live = crate::config::NO_KEEP_ALIVE_LIVENESS;
    // an idle hour: no PINGREQ, and the timer wakes once a minute, not in a spin
    let mut t = t0;
    for _ in 0..60 {
        let next = s.on_timer(t).unwrap();
        assert_eq!(next, t + live);
        assert!(
            write_batch(&mut s, t).is_empty(),
            "nothing to write when idle"
        );
        t = next;
    }
    // events that the broker never acknowledges still recycle the connection
    s.push_event(ev(1));
    write_batch(&mut s, t);
    s.on_timer(t).unwrap();
    assert!(matches!(
        s.on_timer(t + live),
        Err(Lost::NoAck(d)) if d == live
    ));
}

#[test]
fn a_broker_that_takes_no_bytes_is_given_up() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| c.keep_alive = Duration::from_secs(10));
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    s.push_event(ev(0));
    s.start_batch();
    s.fill();
    s.finish_batch();
    // a PINGREQ goes into the next batch, but this one never moves
    s.on_timer(t0 + Duration::from_secs(10)).unwrap();
    feed(&mut s, &[Packet::PingResp]).unwrap();
    assert!(matches!(
        s.on_timer(t0 + Duration::from_secs(20)),
        Err(Lost::Stalled(_))
    ));
}

#[test]
fn a_full_buffer_refuses_and_counts() {
    let (mut s, stats) = session_with(Qos::AtLeastOnce, |c| c.buffer_capacity = 2);
    assert!(s.push_event(ev(0)) && s.push_event(ev(1)));
    assert!(!s.push_event(ev(2)));
    s.note_drops(1, Instant::now());
    s.note_drops(2, Instant::now());
    assert_eq!(get(&stats.dropped_buffer), 3);
}

#[test]
fn shutdown_with_a_broker_delivers_then_offline_then_disconnect() {
    let (mut s, stats) = session(Qos::AtLeastOnce);
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    s.push_event(ev(0));
    s.driver_stopped(t0);
    let grace = Grace {
        until: t0 + Duration::from_secs(15),
        abandoned: false,
    };
    assert_eq!(s.shutdown(), Shutdown::Draining(grace));
    s.advance_shutdown();
    assert_eq!(
        s.shutdown(),
        Shutdown::Draining(grace),
        "an event is unfinished"
    );
    let ps = write_batch(&mut s, t0);
    assert_eq!(event_ids(&ps).len(), 1);
    assert!(publishes_to(&ps, "status").is_empty());
    feed(&mut s, &[Packet::PubAck(PubAck::new(1))]).unwrap();
    s.advance_shutdown();
    let Shutdown::SayingOffline { pkid, .. } = s.shutdown() else {
        panic!("{:?}", s.shutdown())
    };
    let ps = write_batch(&mut s, t0);
    let off = publishes_to(&ps, "status");
    assert!(off.len() == 1 && off[0].retain && &off[0].payload[..] == b"offline");
    assert!(!s.finish_batch());
    feed(&mut s, &[Packet::PubAck(PubAck::new(pkid))]).unwrap();
    assert_eq!(s.shutdown(), Shutdown::Disconnecting(grace));
    let ps = write_batch(&mut s, t0);
    assert!(matches!(&ps[..], [Packet::Disconnect]));
    s.start_batch();
    s.fill();
    assert!(s.finish_batch(), "DISCONNECT is out: close");
    assert_eq!(get(&stats.dropped_shutdown), 0);
}

#[test]
fn a_connection_lost_while_saying_offline_ends_the_run() {
    let (mut s, _) = session(Qos::AtMostOnce);
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    s.driver_stopped(t0);
    s.advance_shutdown();
    assert!(matches!(s.shutdown(), Shutdown::SayingOffline { .. }));
    s.disconnected();
    assert!(matches!(s.shutdown(), Shutdown::Draining(_)));
    assert!(!s.wants_connection(), "the last will says offline");
}

#[test]
fn shutdown_without_a_broker_gives_up_at_the_deadline_then_closes() {
    let (mut s, stats) = session(Qos::AtLeastOnce);
    let t0 = Instant::now();
    assert!(s.wants_connection());
    s.push_event(ev(0));
    s.push_event(ev(1));
    s.driver_stopped(t0);
    assert!(s.wants_connection(), "events to deliver");
    let until = t0 + Duration::from_secs(15);
    assert_eq!(s.grace_until(), Some(until));
    s.check_deadline(until - Duration::from_millis(1));
    assert_eq!(s.outbox.len(), 2);
    s.check_deadline(until);
    assert_eq!(get(&stats.dropped_shutdown), 2);
    assert!(s.outbox.is_empty());
    assert_eq!(
        s.shutdown(),
        Shutdown::Draining(Grace {
            until: until + CLOSE_WAIT,
            abandoned: true
        })
    );
    assert!(!s.wants_connection());
    s.check_deadline(until + CLOSE_WAIT);
    assert_eq!(s.shutdown(), Shutdown::Closed);
}

#[test]
fn a_stop_with_nothing_buffered_and_no_broker_needs_no_connection() {
    let (mut s, _) = session(Qos::AtMostOnce);
    s.driver_stopped(Instant::now());
    assert!(!s.wants_connection());
}

#[test]
fn a_reconnect_while_draining_does_not_say_online() {
    let (mut s, _) = session(Qos::AtLeastOnce);
    let t0 = Instant::now();
    s.push_event(ev(0));
    s.driver_stopped(t0);
    s.connected(false, t0);
    let ps = write_batch(&mut s, t0);
    assert!(publishes_to(&ps, "status").is_empty());
    assert_eq!(event_ids(&ps).len(), 1);
}

#[test]
fn a_command_sent_again_with_dup_is_not_acted_on_twice() {
    let q = Qos::AtLeastOnce;
    let mut r = RecentIds::default();
    assert!(!r.repeated(q, false, 7, "led/0/set", b"toggle"));
    assert!(
        r.repeated(q, true, 7, "led/0/set", b"toggle"),
        "the broker's resend"
    );
    assert!(
        !r.repeated(q, true, 7, "led/1/set", b"toggle"),
        "another message with the id"
    );
    assert!(
        !r.repeated(q, false, 7, "led/0/set", b"toggle"),
        "a new message may reuse it"
    );
    assert!(
        !r.repeated(q, true, 8, "led/0/set", b"on"),
        "a dup never seen is acted on"
    );
    assert!(
        !r.repeated(Qos::AtMostOnce, true, 8, "led/0/set", b"on"),
        "QoS 0 has no ids"
    );
    for id in 100..100 + RecentIds::KEEP as u16 {
        r.repeated(q, false, id, "t", b"");
    }
    assert!(
        !r.repeated(q, true, 7, "led/0/set", b"toggle"),
        "forgotten after KEEP others"
    );
}

#[test]
fn a_dripping_broker_is_no_sign_of_life() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| c.keep_alive = Duration::from_secs(10));
    let ka = Duration::from_secs(10);
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    s.on_timer(t0 + ka).unwrap();
    let ps = write_batch(&mut s, t0 + ka);
    assert!(matches!(&ps[..], [Packet::PingReq]), "{ps:?}");
    // a PUBLISH that never completes, one byte a second
    let mut frame = BytesMut::new();
    Publish::new("led/0/set", CodecQos::AtMostOnce, b"1".to_vec())
        .write(&mut frame)
        .unwrap();
    let mut rbuf = BytesMut::new();
    for k in 1..frame.len() {
        rbuf.extend_from_slice(&frame[k - 1..k]);
        s.on_read_at(&mut rbuf, t0 + ka + Duration::from_secs(k as u64))
            .unwrap();
    }
    assert!(matches!(s.on_timer(t0 + 2 * ka), Err(Lost::NoAnswer(d)) if d == ka));
}

#[test]
fn a_broker_that_sends_nothing_while_we_write_is_pinged_and_given_up() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| c.keep_alive = Duration::from_secs(10));
    let ka = 10;
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    // events written every second: the socket takes them, the broker says nothing
    let mut pinged = false;
    for k in 1..=2 * ka {
        let now = t0 + Duration::from_secs(k);
        s.push_event(ev(k));
        let ps = write_batch(&mut s, now);
        pinged |= ps.iter().any(|p| matches!(p, Packet::PingReq));
        match s.on_timer(now) {
            Ok(_) => assert!(k < 2 * ka, "still alive at {k} s"),
            Err(Lost::NoAnswer(_)) => {
                assert!(pinged && k <= 2 * ka, "given up at {k} s");
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("a broker that answers nothing was not given up within 2 x keep-alive");
}

#[test]
fn the_bytes_of_a_skipped_message_are_no_sign_of_life() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| c.keep_alive = Duration::from_secs(10));
    let ka = Duration::from_secs(10);
    let t0 = Instant::now();
    connect(&mut s, false, t0);
    s.on_timer(t0 + ka).unwrap();
    write_batch(&mut s, t0 + ka);
    let mut big = BytesMut::new();
    Publish::new(
        "x",
        CodecQos::AtMostOnce,
        vec![b'x'; wire::MAX_INCOMING + 5],
    )
    .write(&mut big)
    .unwrap();
    let mut part = big.split_to(wire::MAX_INCOMING / 2);
    s.on_read_at(&mut part, t0 + ka + Duration::from_secs(5))
        .unwrap();
    assert!(matches!(s.on_timer(t0 + 2 * ka), Err(Lost::NoAnswer(_))));
}

#[test]
fn an_oversized_control_packet_ends_the_connection() {
    let (mut s, _) = session(Qos::AtLeastOnce);
    connect(&mut s, false, Instant::now());
    // a PUBACK claiming the largest length MQTT can say (268,435,455 bytes)
    let mut b = BytesMut::from(&[0x40u8, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1][..]);
    assert!(matches!(
        s.on_read(&mut b),
        Err(Lost::Oversized(n)) if n == 268_435_455 + 5
    ));
}

#[test]
fn events_left_unacknowledged_recycle_the_connection() {
    for qos in [Qos::AtLeastOnce, Qos::ExactlyOnce] {
        let (mut s, _) = session_with(qos, |c| c.keep_alive = Duration::from_secs(10));
        let ka = Duration::from_secs(10);
        let t0 = Instant::now();
        connect(&mut s, false, t0);
        for k in 0..3 {
            s.push_event(ev(k));
        }
        let ps = write_batch(&mut s, t0);
        let ids: Vec<u16> = event_ids(&ps).iter().map(|e| e.1).collect();
        assert_eq!(ids.len(), 3);
        let t1 = t0 + Duration::from_secs(1);
        s.on_timer(t1).unwrap();
        // the broker answers pings, and acks one event: that is progress
        let t2 = t1 + Duration::from_secs(8);
        let ack = match qos {
            Qos::AtLeastOnce => Packet::PubAck(PubAck::new(ids[0])),
            _ => Packet::PubRec(PubRec::new(ids[0])),
        };
        let mut b = BytesMut::new();
        match &ack {
            Packet::PubAck(a) => a.write(&mut b).unwrap(),
            Packet::PubRec(a) => a.write(&mut b).unwrap(),
            _ => unreachable!(),
        };
        rumqttc::mqttbytes::v4::PingResp.write(&mut b).unwrap();
        s.on_read_at(&mut b, t2).unwrap();
        assert!(s.on_timer(t1 + ka).is_ok(), "an ack came {qos:?}");
        // then nothing more is acknowledged, though pings are answered
        let mut t = t2;
        let end = loop {
            t += Duration::from_secs(1);
            let mut b = BytesMut::new();
            rumqttc::mqttbytes::v4::PingResp.write(&mut b).unwrap();
            s.on_read_at(&mut b, t).unwrap();
            write_batch(&mut s, t);
            if let Err(e) = s.on_timer(t) {
                break (t, e);
            }
            assert!(t < t2 + 3 * ka, "never given up ({qos:?})");
        };
        assert!(matches!(end.1, Lost::NoAck(d) if d == ka), "{:?}", end.1);
        assert!(
            end.0 <= t2 + ka,
            "{qos:?}: given up {:?} after the last ack",
            end.0 - t2
        );
    }
}

#[test]
fn control_packets_past_the_cap_stop_the_reading() {
    let (mut s, _) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    // a batch the socket does not take
    s.push_event(ev(0));
    s.start_batch();
    s.fill();
    s.finish_batch();
    assert!(s.wants_input());
    let mut pkid = 1u16;
    while s.wants_input() {
        let p: Vec<Packet> = (0..100)
            .map(|_| {
                pkid = pkid % 1000 + 1;
                publish("other", CodecQos::AtLeastOnce, pkid, false, b"x")
            })
            .collect();
        feed(&mut s, &p).unwrap();
        assert!(s.live().unwrap().ctrl.len() < CTRL_CAP + 1024);
    }
    // once the batch is out the acks go, and reading resumes
    let n = s.pending().len();
    s.on_written(n, now);
    let ps = write_batch(&mut s, now);
    assert!(ps.len() * 4 >= CTRL_CAP, "{} acks", ps.len());
    assert!(s.wants_input());
}

#[test]
fn a_flood_of_home_assistant_births_sends_discovery_once_per_interval() {
    let (mut s, _) = session_with(Qos::AtMostOnce, |c| {
        // no keep-alive business in this test
        c.keep_alive = Duration::from_secs(1000);
        c.discovery = Some(Discovery {
            prefix: "ha".into(),
            device_name: "b".into(),
        });
    });
    connect(&mut s, false, Instant::now());
    let births: Vec<Packet> = (0..10_000)
        .map(|_| publish("ha/status", CodecQos::AtMostOnce, 0, false, b"online"))
        .collect();
    feed(&mut s, &births).unwrap();
    // the birth is timed by the clock: look from just after it
    let now = Instant::now();
    let configs = |ps: &[Packet]| {
        ps.iter()
            .filter(|p| matches!(p, Packet::Publish(p) if p.topic.starts_with("ha/") && p.retain))
            .count()
    };
    assert_eq!(configs(&write_batch(&mut s, now)), 8, "once at once");
    feed(&mut s, &births).unwrap();
    assert_eq!(configs(&write_batch(&mut s, now)), 0, "not again so soon");
    // the births that came meanwhile are answered once the interval is over
    let due = s.on_timer(now + Duration::from_secs(1)).unwrap();
    assert!(due <= now + DISCOVERY_EVERY, "{:?}", due - now);
    s.on_timer(now + DISCOVERY_EVERY).unwrap();
    assert_eq!(configs(&write_batch(&mut s, now + DISCOVERY_EVERY)), 8);
    s.on_timer(now + 3 * DISCOVERY_EVERY).unwrap();
    assert_eq!(configs(&write_batch(&mut s, now + 3 * DISCOVERY_EVERY)), 0);
}

#[test]
fn qos0_events_never_acknowledged_at_a_loss_are_taken_back_from_published() {
    let (mut s, stats) = session(Qos::AtMostOnce);
    let now = Instant::now();
    connect(&mut s, false, now);
    let mut sizes = Vec::new();
    for k in 0..100 {
        s.push_event(ev(k));
        let before = get(&stats.bytes_written);
        write_batch(&mut s, now);
        sizes.push(get(&stats.bytes_written) - before);
    }
    assert_eq!(get(&stats.published), 100);
    // the last 10 events' bytes (and a part of the one before) never acknowledged
    let unacked: u64 = sizes[90..].iter().sum::<u64>() + 1;
    s.lost_unacked(Some(unacked));
    assert_eq!(get(&stats.published), 89);
    assert_eq!(get(&stats.dropped_unacked), 11);
    // unknown: nothing is taken back (the warning says so)
    s.lost_unacked(None);
    assert_eq!(get(&stats.published), 89);
    assert_eq!(
        get(&stats.qos0_unknown),
        1,
        "the final line counts the unknown link"
    );
}

#[test]
fn the_tail_counts_exactly_the_events_past_the_acknowledged_byte() {
    let mut t = unsent::Tail::default();
    // batches of 100 bytes: 20 of control packets, then 8 events of 10 bytes
    let ends: Vec<usize> = (1..=8).map(|k| 20 + 10 * k).collect();
    for _ in 0..2 * unsent::Tail::KEEP / 8 {
        // each batch in two writes, the first ending inside an event
        t.wrote(45, 45, &ends[..2]);
        t.wrote(55, 100, &ends[2..]);
    }
    for (unacked, lost) in [
        (0u64, 0u64),
        (1, 1),
        (10, 1),
        (11, 2),
        (80, 8),
        (81, 8),
        (100, 8),
        (101, 9),
        (1000, 80),
    ] {
        assert_eq!(t.lost(unacked), lost, "{unacked} bytes unacknowledged");
    }
    assert_eq!(
        t.lost(u64::MAX),
        unsent::Tail::KEEP as u64,
        "no more than kept"
    );
}
