//! MQTT 5's transitions: the Receive Maximum window, topic aliases, the Maximum
//! Packet Size and reason codes, driven as `tests.rs` drives 3.1.1, and decoded
//! back with rumqttc's MQTT 5 codec.

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5 as m5;
use rumqttc::v5::mqttbytes::QoS as Q5;

use super::*;
use crate::config::{Discovery, Protocol};
use crate::error::Lost;
use crate::wire::ConnAckInfo;

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

fn session5(qos: Qos, tune: impl FnOnce(&mut BridgeConfig)) -> (Session, Arc<BridgeStats>) {
    let mut cfg = BridgeConfig::new("broker", 1883);
    cfg.qos = qos;
    cfg.protocol = Protocol::V5;
    cfg.stats_interval = None;
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

fn limits(receive_max: u16, max_packet: Option<u32>, alias_max: u16) -> Limits {
    Limits {
        receive_max,
        max_packet,
        alias_max,
    }
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One batch, written completely: its packets, as MQTT 5 reads them.
fn write_batch(s: &mut Session, now: Instant) -> Vec<m5::Packet> {
    if !s.batch_done() {
        let n = s.pending().len();
        s.on_written(n, now);
    }
    s.start_batch();
    s.fill();
    s.finish_batch();
    let mut bytes = BytesMut::from(s.pending());
    s.on_written(bytes.len(), now);
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(m5::Packet::read(&mut bytes, None).unwrap());
    }
    out
}

fn publishes(ps: &[m5::Packet]) -> Vec<&m5::Publish> {
    ps.iter()
        .filter_map(|p| match p {
            m5::Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn feed(s: &mut Session, packets: &[m5::Packet]) -> Result<(), Lost> {
    let mut b = BytesMut::new();
    for p in packets {
        p.write(&mut b, None).unwrap();
    }
    s.on_read(&mut b)
}

fn puback(pkid: u16) -> m5::Packet {
    m5::Packet::PubAck(m5::PubAck::new(pkid, None))
}

#[test]
fn the_receive_maximum_bounds_events_and_control_messages_together() {
    let (mut s, stats) = session5(Qos::AtLeastOnce, |c| {
        c.discovery = Some(Discovery {
            prefix: "homeassistant".into(),
            device_name: "board".into(),
        });
        c.max_inflight = 16;
    });
    let now = Instant::now();
    for k in 0..60 {
        assert!(s.push_event(ev(k)));
    }
    s.connected_with(false, limits(5, None, 0), now);
    let (mut control, mut events) = (0, 0);
    let mut open: Vec<u16> = Vec::new();
    for _round in 0..200 {
        let ps = write_batch(&mut s, now);
        for p in publishes(&ps) {
            if p.qos != Q5::AtMostOnce {
                open.push(p.pkid);
                if p.topic.starts_with(b"button/") {
                    events += 1;
                } else {
                    control += 1;
                }
            }
        }
        assert!(
            open.len() <= 5,
            "{} QoS 1 messages in flight over a Receive Maximum of 5",
            open.len()
        );
        if open.is_empty() {
            break;
        }
        // answered one at a time, oldest first
        let id = open.remove(0);
        feed(&mut s, &[puback(id)]).unwrap();
    }
    assert_eq!(events, 60, "every event went out");
    assert_eq!(get(&stats.published), 60);
    // `online`, and a discovery config per input and LED
    assert!(control >= 9, "the control messages went out too: {control}");
    assert!(s.outbox.is_empty());
}

#[test]
fn a_receive_maximum_of_one_still_delivers_everything_one_by_one() {
    let (mut s, stats) = session5(Qos::ExactlyOnce, |_| {});
    let now = Instant::now();
    for k in 0..5 {
        s.push_event(ev(k));
    }
    s.connected_with(false, limits(1, None, 0), now);
    let mut done = 0;
    for _ in 0..50 {
        let ps = write_batch(&mut s, now);
        let out: Vec<_> = publishes(&ps)
            .into_iter()
            .filter(|p| p.qos != Q5::AtMostOnce)
            .map(|p| (p.pkid, p.qos))
            .collect();
        let rels = ps
            .iter()
            .filter(|p| matches!(p, m5::Packet::PubRel(_)))
            .count();
        assert!(out.len() + rels <= 1, "{out:?} and {rels} releases at once");
        for (id, q) in out {
            if q == Q5::AtLeastOnce {
                feed(&mut s, &[puback(id)]).unwrap();
            } else {
                feed(&mut s, &[m5::Packet::PubRec(m5::PubRec::new(id, None))]).unwrap();
                let rel = write_batch(&mut s, now);
                assert!(matches!(rel[..], [m5::Packet::PubRel(_)]), "{rel:?}");
                feed(&mut s, &[m5::Packet::PubComp(m5::PubComp::new(id, None))]).unwrap();
                done += 1;
            }
        }
    }
    assert_eq!(done, 5);
    assert_eq!(get(&stats.published), 5);
}

#[test]
fn button_topics_get_aliases_bound_once_per_connection() {
    let (mut s, _) = session5(Qos::AtMostOnce, |_| {});
    let now = Instant::now();
    s.connected_with(false, limits(u16::MAX, None, 3), now);
    write_batch(&mut s, now);
    for k in 0..12 {
        s.push_event(ev(k));
    }
    let ps = write_batch(&mut s, now);
    let evs = publishes(&ps);
    assert_eq!(evs.len(), 12);
    for (k, p) in evs.iter().enumerate() {
        let input = k % 4;
        let alias = p.properties.as_ref().and_then(|p| p.topic_alias);
        let topic = format!("button/{input}");
        match (input, k < 4) {
            // input 3 is alias 4, over the broker's 3: always the topic, no alias
            (3, _) => assert_eq!((&p.topic[..], alias), (topic.as_bytes(), None)),
            // the first of each input binds its alias
            (_, true) => assert_eq!(
                (&p.topic[..], alias),
                (topic.as_bytes(), Some(input as u16 + 1))
            ),
            (_, false) => assert_eq!((&p.topic[..], alias), (&b""[..], Some(input as u16 + 1))),
        }
    }
    // a new connection binds again
    s.disconnected();
    s.connected_with(false, limits(u16::MAX, None, 3), now);
    write_batch(&mut s, now);
    s.push_event(ev(0));
    let ps = write_batch(&mut s, now);
    assert_eq!(&publishes(&ps)[0].topic[..], b"button/0");
    // a broker that takes no aliases gets topics only
    s.disconnected();
    s.connected_with(false, limits(u16::MAX, None, 0), now);
    write_batch(&mut s, now);
    s.push_event(ev(0));
    s.push_event(ev(4));
    let ps = write_batch(&mut s, now);
    for p in publishes(&ps) {
        assert_eq!(
            (&p.topic[..], p.properties.is_none()),
            (&b"button/0"[..], true)
        );
    }
}

#[test]
fn nothing_larger_than_the_maximum_packet_size_is_sent_and_it_is_counted() {
    let (mut s, stats) = session5(Qos::AtLeastOnce, |c| {
        c.discovery = Some(Discovery {
            prefix: "homeassistant".into(),
            device_name: "board".into(),
        });
        c.payload = crate::payload::PayloadFormat::Plain;
    });
    let now = Instant::now();
    s.connected_with(false, limits(u16::MAX, Some(128), 8), now);
    let ps = write_batch(&mut s, now);
    assert!(matches!(ps[0], m5::Packet::Subscribe(_)), "{ps:?}");
    let mut b = BytesMut::new();
    for p in &ps {
        b.clear();
        let n = p.write(&mut b, None).unwrap();
        assert!(n <= 128, "a packet of {n} bytes went out: {p:?}");
    }
    assert!(
        get(&stats.ctrl_too_large) >= 8,
        "the discovery configs were too large and counted"
    );
    // small events go; with a JSON payload they are too large, dropped and counted
    for k in 0..4 {
        s.push_event(ev(k));
    }
    let ps = write_batch(&mut s, now);
    assert_eq!(publishes(&ps).len(), 4);
    let (mut j, jstats) = session5(Qos::AtLeastOnce, |c| {
        c.payload = crate::payload::PayloadFormat::Json;
    });
    j.connected_with(false, limits(u16::MAX, Some(40), 8), now);
    write_batch(&mut j, now);
    for k in 0..6 {
        j.push_event(ev(k));
    }
    let ps = write_batch(&mut j, now);
    assert!(publishes(&ps).is_empty(), "{ps:?}");
    assert_eq!(get(&jstats.dropped_broker), 6);
    assert_eq!(get(&jstats.published), 0);
    assert!(j.outbox.is_empty(), "dropped events are finished");
}

#[test]
fn a_qos0_event_too_large_is_dropped_never_counted_as_published() {
    let (mut s, stats) = session5(Qos::AtMostOnce, |c| {
        c.payload = crate::payload::PayloadFormat::Json;
    });
    let now = Instant::now();
    s.connected_with(false, limits(u16::MAX, Some(40), 8), now);
    write_batch(&mut s, now);
    for k in 0..5 {
        s.push_event(ev(k));
    }
    let ps = write_batch(&mut s, now);
    assert!(publishes(&ps).is_empty(), "{ps:?}");
    assert_eq!(get(&stats.dropped_broker), 5);
    assert_eq!(get(&stats.published), 0, "dropped, so not published too");
    assert!(s.outbox.is_empty(), "dropped events are finished");
    // the same session with small payloads: those are published, and only those
    let (mut p, pstats) = session5(Qos::AtMostOnce, |_| {});
    p.connected_with(false, limits(u16::MAX, Some(40), 8), now);
    write_batch(&mut p, now);
    for k in 0..5 {
        p.push_event(ev(k));
    }
    assert_eq!(publishes(&write_batch(&mut p, now)).len(), 5);
    assert_eq!(get(&pstats.published), 5);
    assert_eq!(get(&pstats.dropped_broker), 0);
}

#[test]
fn a_refused_publish_is_finished_counted_and_the_rest_delivered() {
    let (mut s, stats) = session5(Qos::AtLeastOnce, |_| {});
    let now = Instant::now();
    s.connected_with(false, limits(u16::MAX, None, 0), now);
    write_batch(&mut s, now);
    for k in 0..3 {
        s.push_event(ev(k));
    }
    let ids: Vec<u16> = publishes(&write_batch(&mut s, now))
        .iter()
        .map(|p| p.pkid)
        .collect();
    let denied = m5::Packet::PubAck(m5::PubAck {
        pkid: ids[0],
        reason: m5::PubAckReason::NotAuthorized,
        properties: None,
    });
    feed(&mut s, &[denied, puback(ids[1]), puback(ids[2])]).unwrap();
    assert_eq!(get(&stats.dropped_broker), 1);
    assert_eq!(get(&stats.published), 2);
    assert!(s.outbox.is_empty());
}

#[test]
fn an_event_refused_for_a_quota_goes_again_on_a_new_connection() {
    let (mut s, stats) = session5(Qos::ExactlyOnce, |_| {});
    let now = Instant::now();
    s.connected_with(true, limits(20, None, 0), now);
    write_batch(&mut s, now);
    for k in 0..3 {
        s.push_event(ev(k));
    }
    let ids: Vec<u16> = publishes(&write_batch(&mut s, now))
        .iter()
        .map(|p| p.pkid)
        .collect();
    let quota = m5::Packet::PubRec(m5::PubRec {
        pkid: ids[1],
        reason: m5::PubRecReason::QuotaExceeded,
        properties: None,
    });
    let e = feed(&mut s, &[quota]).unwrap_err();
    assert!(matches!(e, Lost::OverQuota { code: 0x97 }), "{e:?}");
    assert!(e.to_string().contains("Quota exceeded"), "{e}");
    assert_eq!(get(&stats.dropped_broker), 0, "not lost");
    s.disconnected();
    s.connected_with(true, limits(20, None, 0), now);
    let again = publishes(&write_batch(&mut s, now))
        .iter()
        .filter(|p| p.topic.starts_with(b"button/"))
        .map(|p| (p.pkid, p.dup))
        .collect::<Vec<_>>();
    assert_eq!(again, ids.iter().map(|i| (*i, true)).collect::<Vec<_>>());
}

#[test]
fn the_brokers_disconnect_reason_ends_the_connection_named_and_shortened() {
    let (mut s, _) = session5(Qos::AtMostOnce, |_| {});
    let now = Instant::now();
    s.connected_with(false, limits(u16::MAX, None, 0), now);
    write_batch(&mut s, now);
    let d = m5::Packet::Disconnect(m5::Disconnect {
        reason_code: m5::DisconnectReasonCode::SessionTakenOver,
        properties: Some(m5::DisconnectProperties {
            session_expiry_interval: None,
            reason_string: Some(format!("another client\n{}", "x".repeat(500))),
            user_properties: Vec::new(),
            server_reference: None,
        }),
    });
    let e = feed(&mut s, &[d]).unwrap_err();
    assert!(matches!(e, Lost::BrokerSaid { code: 0x8E, .. }), "{e:?}");
    let line = e.to_string();
    assert!(
        line.contains("Session taken over") && line.contains("0x8e"),
        "{line}"
    );
    assert!(!line.contains('\n') && line.len() < 250, "{line}");
    // a DISCONNECT with no body is a normal disconnection
    s.connected_with(false, limits(u16::MAX, None, 0), now);
    let mut b = BytesMut::from(&[0xE0u8, 0x00][..]);
    assert!(matches!(
        s.on_read(&mut b),
        Err(Lost::BrokerSaid { code: 0, .. })
    ));
}

fn connack5(code: u8) -> ConnAckInfo {
    ConnAckInfo {
        session_present: true,
        code,
        protocol: Protocol::V5,
        reason: None,
        limits: Limits::NONE,
    }
}

#[test]
fn connack_reason_codes_are_named_and_judged() {
    assert!(verdict(&connack5(0)).unwrap());
    let login = verdict(&connack5(0x86)).unwrap_err();
    assert!(
        matches!(login, ConnectError::Refused(r) if r.is_login()),
        "{login}"
    );
    assert!(login.is_permanent());
    assert!(
        login.to_string().contains("Bad User Name or Password"),
        "{login}"
    );
    let busy = verdict(&connack5(0x89)).unwrap_err();
    assert!(!busy.is_permanent(), "a busy broker is retried");
    let banned = verdict(&connack5(0x8A)).unwrap_err();
    assert!(banned.is_permanent());
    assert!(banned.to_string().contains("Banned"), "{banned}");
    let quota = verdict(&connack5(0x97)).unwrap_err();
    assert!(!quota.is_permanent(), "a quota is retried");
    assert!(quota.to_string().contains("Quota exceeded"), "{quota}");
}

#[test]
fn connect_and_connack_carry_the_session_expiry_and_the_limits() {
    for (clean, expiry) in [(true, None), (false, Some(wire::SESSION_NEVER_EXPIRES))] {
        let mut buf = BytesMut::new();
        wire::connect(
            &mut buf,
            &wire::ConnectSpec {
                protocol: Protocol::V5,
                client_id: "id",
                keep_alive_s: 30,
                clean_session: clean,
                will_topic: Some("status"),
                username: None,
                password: None,
            },
        )
        .unwrap();
        let m5::Packet::Connect(c, will, _) = m5::Packet::read(&mut buf, None).unwrap() else {
            panic!()
        };
        assert_eq!(c.clean_start, clean);
        let props = c.properties.unwrap();
        assert_eq!(props.session_expiry_interval, expiry);
        assert_eq!(will.unwrap().message, Bytes::from_static(b"offline"));
    }
    let mut buf = BytesMut::new();
    m5::ConnAck {
        session_present: false,
        code: m5::ConnectReturnCode::Success,
        properties: Some(m5::ConnAckProperties {
            session_expiry_interval: None,
            receive_max: Some(20),
            max_qos: None,
            retain_available: None,
            max_packet_size: Some(1000),
            assigned_client_identifier: None,
            topic_alias_max: Some(10),
            reason_string: None,
            user_properties: Vec::new(),
            wildcard_subscription_available: None,
            subscription_identifiers_available: None,
            shared_subscription_available: None,
            server_keep_alive: None,
            response_information: None,
            server_reference: None,
            authentication_method: None,
            authentication_data: None,
        }),
    }
    .write(&mut buf)
    .unwrap();
    let Some(wire::Incoming::ConnAck(a)) = wire::read_as(&mut buf, Protocol::V5).unwrap() else {
        panic!()
    };
    assert_eq!(a.limits, limits(20, Some(1000), 10));
    // a 3.1.1 broker's "not this protocol" read by an MQTT 5 client
    let mut old = BytesMut::from(&[0x20u8, 0x02, 0x00, 0x01][..]);
    let Some(wire::Incoming::ConnAck(a)) = wire::read_as(&mut old, Protocol::V5).unwrap() else {
        panic!()
    };
    let e = verdict(&a).unwrap_err();
    assert!(
        matches!(e, ConnectError::Refused(Refusal::Mqtt5(0x84))),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("Unsupported Protocol Version"),
        "{e}"
    );
    assert!(e.is_permanent());
}

#[test]
fn a_short_acknowledgement_takes_no_reason_code_from_the_next_packet() {
    // PUBACK without a reason code (success), then a SUBACK, whose first byte (0x90)
    // reads as "Topic Name invalid" if taken for the PUBACK's reason
    let mut buf =
        BytesMut::from(&[0x40u8, 0x02, 0x00, 0x07, 0x90, 0x04, 0xF0, 0x01, 0x00, 0x01][..]);
    assert!(matches!(
        wire::read_as(&mut buf, Protocol::V5).unwrap(),
        Some(wire::Incoming::Packet(rumqttc::mqttbytes::v4::Packet::PubAck(a))) if a.pkid == 7
    ));
    assert!(matches!(
        wire::read_as(&mut buf, Protocol::V5).unwrap(),
        Some(wire::Incoming::Packet(
            rumqttc::mqttbytes::v4::Packet::SubAck(_)
        ))
    ));
    assert!(buf.is_empty());
    // with a reason code, it is the packet's own
    let mut failed = BytesMut::from(&[0x40u8, 0x03, 0x00, 0x07, 0x97, 0x90, 0x04][..]);
    assert!(matches!(
        wire::read_as(&mut failed, Protocol::V5).unwrap(),
        Some(wire::Incoming::Failed {
            pkid: 7,
            code: 0x97,
            ..
        })
    ));
}
