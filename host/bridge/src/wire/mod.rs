//! MQTT 3.1.1 and 5 packets, encoded and decoded by rumqttc's `mqttbytes` (a
//! maintained, tested implementation of the wire format); this module only decides
//! what goes into which buffer. The hot path is [`EventEncoder::encode`]: one PUBLISH
//! per event, appended to the batch buffer, with the topic strings built once per input.
//!
//! The session sees one set of packets whatever the protocol: MQTT 5 answers are read
//! into their 3.1.1 form, and what only MQTT 5 says (the CONNACK's limits, reason
//! codes of a refusal, a DISCONNECT or a failed acknowledgement) comes as variants of
//! [`Incoming`] of its own. PUBACK, PUBREC, PUBREL, PUBCOMP, PINGREQ and a plain
//! DISCONNECT are the same bytes in both protocols, so only CONNECT, PUBLISH and
//! SUBSCRIBE are written per protocol.

use bytes::{Bytes, BytesMut};
use pynq_mqtt_driver::ButtonEvent;
use rumqttc::mqttbytes::v4::{
    Connect, Disconnect, LastWill, Login, Packet, PingReq, PubAck, PubComp, PubRec, PubRel,
    Publish, Subscribe, SubscribeFilter,
};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use rumqttc::v5::mqttbytes::v5 as m5;
use rumqttc::v5::mqttbytes::Error as Mqtt5Error;

use crate::config::{Protocol, Qos};

use crate::payload::{write_json, PayloadFormat, StateFormat};
use crate::topics::Topics;

mod v5;

#[cfg(test)]
pub use v5::SESSION_NEVER_EXPIRES;
use v5::{alias_props, connect5, qos5, read5};
pub use v5::{reason_name, ConnAckInfo, Limits};

/// The codec's QoS for ours.
pub fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// Ours for the codec's.
pub fn from_qos(q: QoS) -> Qos {
    match q {
        QoS::AtMostOnce => Qos::AtMostOnce,
        QoS::AtLeastOnce => Qos::AtLeastOnce,
        QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

/// Largest packet accepted from the broker (LED commands are a few bytes; this is
/// only a guard against a runaway message).
pub const MAX_INCOMING: usize = 1 << 20;

/// A packet that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("MQTT packet: {0}")]
    V311(#[from] MqttError),
    #[error("MQTT 5 packet: {0}")]
    V5(#[from] Mqtt5Error),
}

/// Encodes button events into PUBLISH packets.
pub struct EventEncoder {
    /// One PUBLISH per input, reused: only id, dup flag and payload change per event.
    templates: Vec<Publish>,
    /// MQTT 5 instead: its templates and this connection's topic aliases.
    v5: Option<Aliases>,
    topics: Topics,
    format: PayloadFormat,
    states: StateFormat,
    qos: QoS,
    /// JSON payloads are written here and split off, so they cost no allocation each.
    scratch: BytesMut,
}

/// MQTT 5's topic aliases of `button/<i>`: input `i` is alias `i + 1` when the broker
/// takes that many. The first PUBLISH of an input on a connection carries the topic
/// and binds the alias; the next ones carry the alias alone. Aliases live as long as
/// the connection, so every connection starts unbound.
struct Aliases {
    templates: Vec<m5::Publish>,
    topics: Vec<Bytes>,
    bound: Vec<bool>,
    max: u16,
}

impl EventEncoder {
    pub fn new(topics: &Topics, qos: Qos, format: PayloadFormat) -> Self {
        let qos = self::qos(qos);
        let templates = (0..topics.n_inputs())
            .map(|i| Publish::from_bytes(topics.button(i), qos, Bytes::new()))
            .collect();
        Self {
            templates,
            v5: None,
            topics: topics.clone(),
            format,
            states: StateFormat::OneZero,
            qos,
            scratch: BytesMut::new(),
        }
    }

    /// How plain payloads say pressed and released.
    pub fn with_states(mut self, states: StateFormat) -> Self {
        self.states = states;
        self
    }

    /// Which protocol the PUBLISH packets are written in.
    pub fn with_protocol(mut self, p: Protocol) -> Self {
        self.v5 = (p == Protocol::V5).then(|| Aliases {
            templates: Vec::new(),
            topics: Vec::new(),
            bound: Vec::new(),
            max: 0,
        });
        self
    }

    /// A new connection whose broker takes `alias_max` topic aliases (MQTT 5).
    pub fn new_connection(&mut self, alias_max: u16) {
        if let Some(a) = self.v5.as_mut() {
            a.max = alias_max;
            a.bound.iter_mut().for_each(|b| *b = false);
            for (i, t) in a.templates.iter_mut().enumerate() {
                t.properties = alias_props(i, alias_max);
            }
        }
    }

    /// The PUBLISH of input `input` was not sent after all (too large): the alias
    /// it would have bound is still unbound.
    pub fn unbind(&mut self, input: u8) {
        if let Some(b) = self
            .v5
            .as_mut()
            .and_then(|a| a.bound.get_mut(usize::from(input)))
        {
            *b = false;
        }
    }

    /// Appends the PUBLISH of `ev` to `buf`; returns its length in bytes.
    pub fn encode(&mut self, buf: &mut BytesMut, ev: &ButtonEvent, pkid: u16, dup: bool) -> usize {
        let i = usize::from(ev.input);
        let payload = match self.format {
            PayloadFormat::Plain => Bytes::from_static(self.states.state(ev.level)),
            PayloadFormat::Json => {
                if self.scratch.capacity() < 128 {
                    self.scratch.reserve(16 * 1024);
                }
                write_json(&mut self.scratch, ev);
                self.scratch.split().freeze()
            }
        };
        if let Some(a) = self.v5.as_mut() {
            while a.templates.len() <= i {
                let n = a.templates.len();
                let topic = Bytes::from(self.topics.button(n as u8).to_owned());
                a.templates.push(m5::Publish {
                    qos: qos5(self.qos),
                    properties: alias_props(n, a.max),
                    ..Default::default()
                });
                a.topics.push(topic);
                a.bound.push(false);
            }
            let t = &mut a.templates[i];
            t.topic = if t.properties.is_some() && a.bound[i] {
                Bytes::new()
            } else {
                a.topics[i].clone()
            };
            a.bound[i] = t.properties.is_some();
            t.pkid = pkid;
            t.dup = dup;
            t.payload = payload;
            // fails only for a zero id at QoS 1/2, which the outbox never hands out
            let r = t.write(buf);
            debug_assert!(r.is_ok(), "{r:?}");
            return r.unwrap_or(0);
        }
        while self.templates.len() <= i {
            let n = self.templates.len() as u8;
            self.templates.push(Publish::from_bytes(
                self.topics.button(n),
                self.qos,
                Bytes::new(),
            ));
        }
        let t = &mut self.templates[i];
        t.pkid = pkid;
        t.dup = dup;
        t.payload = payload;
        let r = t.write(buf);
        debug_assert!(r.is_ok(), "{r:?}");
        r.unwrap_or(0)
    }
}

/// Appends any PUBLISH; returns its length in bytes.
pub fn publish(
    buf: &mut BytesMut,
    proto: Protocol,
    topic: &str,
    qos: Qos,
    retain: bool,
    pkid: u16,
    payload: &[u8],
) -> usize {
    let qos = self::qos(qos);
    let pkid = if qos == QoS::AtMostOnce { 0 } else { pkid };
    let r = match proto {
        Protocol::V311 => {
            let mut p = Publish::new(topic, qos, payload);
            p.retain = retain;
            p.pkid = pkid;
            p.write(buf).map_err(WireError::from)
        }
        Protocol::V5 => {
            let mut p = m5::Publish::new(topic, qos5(qos), payload.to_vec(), None);
            p.retain = retain;
            p.pkid = pkid;
            p.write(buf).map_err(WireError::from)
        }
    };
    debug_assert!(r.is_ok(), "{r:?}");
    r.unwrap_or(0)
}

pub fn puback(buf: &mut BytesMut, pkid: u16) {
    let _ = PubAck::new(pkid).write(buf);
}

pub fn pubrec(buf: &mut BytesMut, pkid: u16) {
    let _ = PubRec::new(pkid).write(buf);
}

pub fn pubrel(buf: &mut BytesMut, pkid: u16) {
    let _ = PubRel::new(pkid).write(buf);
}

pub fn pubcomp(buf: &mut BytesMut, pkid: u16) {
    let _ = PubComp::new(pkid).write(buf);
}

pub fn pingreq(buf: &mut BytesMut) {
    let _ = PingReq.write(buf);
}

pub fn disconnect(buf: &mut BytesMut) {
    let _ = Disconnect.write(buf);
}

/// Appends one SUBSCRIBE for all `filters`.
pub fn subscribe(buf: &mut BytesMut, proto: Protocol, pkid: u16, filters: &[(String, Qos)]) {
    let r = match proto {
        Protocol::V311 => {
            let mut s = Subscribe::new_many(
                filters
                    .iter()
                    .map(|(f, q)| SubscribeFilter::new(f.clone(), qos(*q))),
            );
            s.pkid = pkid;
            s.write(buf).map_err(WireError::from)
        }
        Protocol::V5 => {
            let mut s = m5::Subscribe::new_many(
                filters
                    .iter()
                    .map(|(f, q)| m5::Filter::new(f.clone(), qos5(qos(*q)))),
                None,
            );
            s.pkid = pkid;
            s.write(buf).map_err(WireError::from)
        }
    };
    debug_assert!(r.is_ok(), "{r:?}");
}

/// What goes into CONNECT.
pub struct ConnectSpec<'a> {
    pub protocol: Protocol,
    pub client_id: &'a str,
    pub keep_alive_s: u16,
    pub clean_session: bool,
    /// Retained `offline` on this topic, QoS 1, as the last will.
    pub will_topic: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

pub fn connect(buf: &mut BytesMut, spec: &ConnectSpec<'_>) -> Result<(), WireError> {
    if spec.protocol == Protocol::V5 {
        return connect5(buf, spec);
    }
    let mut c = Connect::new(spec.client_id);
    c.keep_alive = spec.keep_alive_s;
    c.clean_session = spec.clean_session;
    c.last_will = spec
        .will_topic
        .map(|t| LastWill::new(t, "offline", QoS::AtLeastOnce, true));
    if spec.username.is_some() || spec.password.is_some() {
        c.login = Some(Login::new(
            spec.username.unwrap_or_default(),
            spec.password.unwrap_or_default(),
        ));
    }
    c.write(buf)?;
    Ok(())
}

/// What [`read`] found at the front of the buffer. Its `Debug` names the packet's
/// type only (`shown`): an echoed CONNECT holds our password.
pub enum Incoming {
    /// Any packet but a CONNACK, in its 3.1.1 form.
    Packet(Packet),
    ConnAck(ConnAckInfo),
    /// MQTT 5: the broker's DISCONNECT, with its reason.
    Disconnect {
        code: u8,
        reason: Option<String>,
    },
    /// MQTT 5: a PUBACK, PUBREC or PUBCOMP with a failure reason code: the flow of
    /// `pkid` is over, its message not delivered.
    Failed {
        kind: &'static str,
        pkid: u16,
        code: u8,
        reason: Option<String>,
    },
    /// A packet larger than [`MAX_INCOMING`]: to be skipped (`frame_len` bytes from
    /// the front, maybe more than are there yet) rather than read. For a PUBLISH,
    /// what is needed to acknowledge it, so that the broker does not send it again.
    TooLarge {
        frame_len: usize,
        publish: Option<(String, Qos, u16)>,
    },
}

/// Takes one complete packet off the front of `buf`; None until one is complete
/// (or, for a packet too large, until its topic and id are there).
pub fn read_as(buf: &mut BytesMut, proto: Protocol) -> Result<Option<Incoming>, WireError> {
    match proto {
        Protocol::V311 => read(buf),
        Protocol::V5 => read5(buf),
    }
}

/// [`read_as`] MQTT 3.1.1.
pub fn read(buf: &mut BytesMut) -> Result<Option<Incoming>, WireError> {
    match Packet::read(buf, MAX_INCOMING) {
        Ok(Packet::ConnAck(a)) => Ok(Some(Incoming::ConnAck(ConnAckInfo {
            session_present: a.session_present,
            code: a.code as u8,
            protocol: Protocol::V311,
            reason: None,
            limits: Limits::NONE,
        }))),
        Ok(p) => Ok(Some(Incoming::Packet(p))),
        Err(MqttError::InsufficientBytes(_)) => Ok(None),
        Err(MqttError::PayloadSizeLimitExceeded(len)) => Ok(too_large(buf, len)),
        Err(e) => Err(e.into()),
    }
}

/// The frame length of a packet too large to read, and, for a PUBLISH, its topic,
/// QoS and packet id (None until those bytes have arrived).
fn too_large(buf: &[u8], remaining: usize) -> Option<Incoming> {
    // fixed header: one byte, then the remaining length in 1 to 4 bytes
    let len_len = buf[1..].iter().take(4).position(|b| b & 0x80 == 0)? + 1;
    let header = 1 + len_len;
    let frame_len = header + remaining;
    if buf[0] >> 4 != 3 {
        return Some(Incoming::TooLarge {
            frame_len,
            publish: None,
        });
    }
    let qos = match (buf[0] >> 1) & 3 {
        0 => Qos::AtMostOnce,
        1 => Qos::AtLeastOnce,
        _ => Qos::ExactlyOnce,
    };
    let topic_len = usize::from(u16::from_be_bytes([
        *buf.get(header)?,
        *buf.get(header + 1)?,
    ]));
    let topic_end = header + 2 + topic_len;
    let topic = String::from_utf8_lossy(buf.get(header + 2..topic_end)?).into_owned();
    let pkid = match qos {
        Qos::AtMostOnce => 0,
        _ => u16::from_be_bytes([*buf.get(topic_end)?, *buf.get(topic_end + 1)?]),
    };
    Some(Incoming::TooLarge {
        frame_len,
        publish: Some((topic, qos, pkid)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::TopicLayout;

    #[test]
    fn events_encode_to_what_mqttbytes_decodes() {
        let topics = Topics::new(&TopicLayout::default(), 4, 4);
        for (qos, format) in [
            (Qos::AtMostOnce, PayloadFormat::Plain),
            (Qos::AtLeastOnce, PayloadFormat::Json),
            (Qos::ExactlyOnce, PayloadFormat::Plain),
        ] {
            let mut enc = EventEncoder::new(&topics, qos, format);
            let mut buf = BytesMut::new();
            let evs: Vec<ButtonEvent> = (0..1000u64)
                .map(|s| ButtonEvent {
                    input: (s % 6) as u8, // 4 and 5 are beyond the board's inputs
                    level: s % 3 == 0,
                    ts_us: s * 7,
                    seq: s,
                    synthetic: false,
                    utc_us: None,
                })
                .collect();
            for (k, e) in evs.iter().enumerate() {
                enc.encode(&mut buf, e, (k % 100 + 1) as u16, k % 5 == 0);
            }
            for (k, e) in evs.iter().enumerate() {
                let Some(Incoming::Packet(Packet::Publish(p))) = read(&mut buf).unwrap() else {
                    panic!("not a publish")
                };
                assert_eq!(p.topic, format!("button/{}", e.input));
                assert_eq!(p.qos, super::qos(qos));
                assert!(!p.retain);
                if qos != Qos::AtMostOnce {
                    assert_eq!(p.pkid, (k % 100 + 1) as u16);
                    assert_eq!(p.dup, k % 5 == 0);
                }
                assert_eq!(p.payload.to_vec(), crate::button_payload(format, e));
            }
            assert!(buf.is_empty());
            assert!(read(&mut buf).unwrap().is_none());
        }
    }

    #[test]
    fn control_packets_round_trip() {
        let mut buf = BytesMut::new();
        connect(
            &mut buf,
            &ConnectSpec {
                protocol: Protocol::V311,
                client_id: "id",
                keep_alive_s: 30,
                clean_session: false,
                will_topic: Some("p/status"),
                username: Some("u"),
                password: Some("pw"),
            },
        )
        .unwrap();
        subscribe(
            &mut buf,
            Protocol::V311,
            0xF001,
            &[
                ("a/+/set".into(), Qos::AtLeastOnce),
                ("b".into(), Qos::AtMostOnce),
            ],
        );
        publish(
            &mut buf,
            Protocol::V311,
            "p/status",
            Qos::AtLeastOnce,
            true,
            0xF002,
            b"online",
        );
        pubrel(&mut buf, 7);
        disconnect(&mut buf);
        let Some(Incoming::Packet(Packet::Connect(c))) = read(&mut buf).unwrap() else {
            panic!()
        };
        assert!(!c.clean_session);
        let w = c.last_will.unwrap();
        assert_eq!(
            (w.topic.as_str(), &w.message[..], w.retain),
            ("p/status", &b"offline"[..], true)
        );
        assert_eq!(c.login.unwrap().password, "pw");
        let Some(Incoming::Packet(Packet::Subscribe(s))) = read(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!((s.pkid, s.filters.len()), (0xF001, 2));
        let Some(Incoming::Packet(Packet::Publish(p))) = read(&mut buf).unwrap() else {
            panic!()
        };
        assert!(p.retain && p.pkid == 0xF002);
        assert!(
            matches!(read(&mut buf).unwrap(), Some(Incoming::Packet(Packet::PubRel(r))) if r.pkid == 7)
        );
        assert!(matches!(
            read(&mut buf).unwrap(),
            Some(Incoming::Packet(Packet::Disconnect))
        ));
    }

    #[test]
    fn partial_packets_wait_and_garbage_fails() {
        let mut full = BytesMut::new();
        publish(
            &mut full,
            Protocol::V311,
            "t",
            Qos::AtMostOnce,
            false,
            0,
            b"x",
        );
        let mut part = BytesMut::from(&full[..2]);
        assert!(read(&mut part).unwrap().is_none());
        part.extend_from_slice(&full[2..]);
        assert!(read(&mut part).unwrap().is_some());
        let mut bad = BytesMut::from(&[0xF0u8, 0x00][..]);
        assert!(read(&mut bad).is_err());
    }

    #[test]
    fn packets_too_large_are_described_for_skipping() {
        let mut big = BytesMut::new();
        publish(
            &mut big,
            Protocol::V311,
            "led/0/set",
            Qos::AtLeastOnce,
            false,
            77,
            &vec![b'x'; MAX_INCOMING + 10],
        );
        let total = big.len();
        // only the start has arrived: enough to describe it
        let mut part = BytesMut::from(&big[..20]);
        match read(&mut part).unwrap() {
            Some(Incoming::TooLarge {
                frame_len,
                publish: Some((topic, qos, pkid)),
            }) => {
                assert_eq!(frame_len, total);
                assert_eq!(
                    (topic.as_str(), qos, pkid),
                    ("led/0/set", Qos::AtLeastOnce, 77)
                );
            }
            other => panic!("{other:?}"),
        }
        // not even the topic yet: wait
        let mut tiny = BytesMut::from(&big[..5]);
        assert!(read(&mut tiny).unwrap().is_none());
    }
}
