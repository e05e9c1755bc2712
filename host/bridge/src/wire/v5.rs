//! What only MQTT 5 has: the CONNACK's limits, reason codes and their names, its
//! CONNECT (session expiry), topic aliases, and reading its packets into the
//! 3.1.1 forms the session handles (see the parent module).

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::v4::{
    Connect, Packet, PubAck, PubComp, PubRec, PubRel, Publish, SubAck as V4SubAck, Subscribe,
    SubscribeReasonCode as V4SubCode, UnsubAck as V4UnsubAck, Unsubscribe as V4Unsubscribe,
};
use rumqttc::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5 as m5;
use rumqttc::v5::mqttbytes::{Error as Mqtt5Error, QoS as QoS5};

use super::{read, too_large, ConnectSpec, Incoming, WireError, MAX_INCOMING};
use crate::config::Protocol;

/// Session Expiry Interval of a persistent MQTT 5 session: the broker keeps it as a
/// 3.1.1 broker keeps a `clean_session = 0` one (the value means "never expires").
pub const SESSION_NEVER_EXPIRES: u32 = u32::MAX;

/// What the broker allows on one connection (MQTT 5's CONNACK properties); 3.1.1
/// says nothing, which is [`Limits::NONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// QoS 1/2 PUBLISHes we may leave unanswered at once (Receive Maximum).
    pub receive_max: u16,
    /// The largest packet the broker takes, in bytes (Maximum Packet Size).
    pub max_packet: Option<u32>,
    /// Topic aliases the broker takes from us (Topic Alias Maximum).
    pub alias_max: u16,
}

impl Limits {
    pub const NONE: Limits = Limits {
        receive_max: u16::MAX,
        max_packet: None,
        alias_max: 0,
    };

    /// Whether a packet of `len` bytes may be sent.
    pub fn fits(&self, len: usize) -> bool {
        self.max_packet.is_none_or(|m| len <= m as usize)
    }
}

/// A CONNACK of either protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAckInfo {
    pub session_present: bool,
    /// The return code (3.1.1: 0 to 5) or reason code (MQTT 5: 0, or 0x80 and up).
    pub code: u8,
    pub protocol: Protocol,
    /// MQTT 5's Reason String, as the broker wrote it (show it through `shown`).
    pub reason: Option<String>,
    pub limits: Limits,
}

/// The name the MQTT 5 specification gives a reason code (section 2.4).
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0x00 => "Success",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription Identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => "unknown reason code",
    }
}

/// MQTT 5's codec has a QoS type of its own.
pub(super) fn qos5(q: QoS) -> QoS5 {
    match q {
        QoS::AtMostOnce => QoS5::AtMostOnce,
        QoS::AtLeastOnce => QoS5::AtLeastOnce,
        QoS::ExactlyOnce => QoS5::ExactlyOnce,
    }
}

fn from_qos5(q: QoS5) -> QoS {
    match q {
        QoS5::AtMostOnce => QoS::AtMostOnce,
        QoS5::AtLeastOnce => QoS::AtLeastOnce,
        QoS5::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// The Topic Alias property of input `i`, when the broker takes that many aliases.
pub(super) fn alias_props(i: usize, max: u16) -> Option<m5::PublishProperties> {
    let alias = u16::try_from(i + 1).ok().filter(|a| *a <= max)?;
    Some(m5::PublishProperties {
        topic_alias: Some(alias),
        ..Default::default()
    })
}

/// MQTT 5's CONNECT: clean start as 3.1.1's clean session; a persistent session
/// asks the broker to keep it ([`SESSION_NEVER_EXPIRES`]), a clean one not at all;
/// the broker may send us packets up to [`MAX_INCOMING`].
pub(super) fn connect5(buf: &mut BytesMut, spec: &ConnectSpec<'_>) -> Result<(), WireError> {
    let mut props = m5::ConnectProperties::new();
    props.session_expiry_interval = (!spec.clean_session).then_some(SESSION_NEVER_EXPIRES);
    props.max_packet_size = Some(MAX_INCOMING as u32);
    let c = m5::Connect {
        keep_alive: spec.keep_alive_s,
        client_id: spec.client_id.to_owned(),
        clean_start: spec.clean_session,
        properties: Some(props),
    };
    let will = spec
        .will_topic
        .map(|t| m5::LastWill::new(t, "offline", QoS5::AtLeastOnce, true, None));
    let login = (spec.username.is_some() || spec.password.is_some()).then(|| {
        m5::Login::new(
            spec.username.unwrap_or_default(),
            spec.password.unwrap_or_default(),
        )
    });
    c.write(&will, &login, buf)?;
    Ok(())
}

/// The fixed header at the front of `buf`, if it is complete: its length, and the
/// remaining length it declares.
fn fixed_header(buf: &[u8]) -> Option<(usize, usize)> {
    let n = buf.get(1..)?.iter().take(4).position(|b| b & 0x80 == 0)? + 1;
    let remaining = buf[1..=n]
        .iter()
        .rev()
        .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7F));
    Some((1 + n, remaining))
}

/// [`read`] for MQTT 5. The reason codes are taken from the frame itself: rumqttc
/// turns them into names of its own, and the log wants the specification's.
pub(super) fn read5(buf: &mut BytesMut) -> Result<Option<Incoming>, WireError> {
    let Some((hlen, remaining)) = fixed_header(buf) else {
        return Ok(None);
    };
    let kind = buf[0] >> 4;
    let body_len = buf.len().saturating_sub(hlen);
    // a byte of this packet's body: never one of the next packet's
    let at = |k: usize| buf.get(hlen + k).copied().filter(|_| k < remaining);
    // a 3.1.1 broker answers our CONNECT with a 3.1.1 CONNACK (code 1: not this
    // protocol), which has no properties to read
    if kind == 2 && buf[1] == 2 && body_len >= 2 {
        return Ok(read(buf)?.map(|i| match i {
            Incoming::ConnAck(a) => Incoming::ConnAck(ConnAckInfo {
                protocol: Protocol::V5,
                ..a
            }),
            other => other,
        }));
    }
    // DISCONNECT and the acknowledgements may leave out the reason code (success)
    let code = match kind {
        2 => at(1),
        14 => at(0),
        4..=7 => at(2),
        _ => None,
    }
    .unwrap_or(0);
    if kind == 14 && buf[1] == 0 {
        // rumqttc reads no DISCONNECT without a body
        buf.advance(2);
        return Ok(Some(Incoming::Disconnect {
            code: 0,
            reason: None,
        }));
    }
    let p = match m5::Packet::read(buf, Some(MAX_INCOMING as u32)) {
        Ok(p) => p,
        Err(Mqtt5Error::InsufficientBytes(_)) => return Ok(None),
        Err(Mqtt5Error::PayloadSizeLimitExceeded { pkt_size, .. }) => {
            return Ok(too_large(buf, pkt_size))
        }
        Err(e) => return Err(e.into()),
    };
    let failed = |kind, pkid, reason: Option<String>| {
        Ok(Some(Incoming::Failed {
            kind,
            pkid,
            code,
            reason,
        }))
    };
    let p = match p {
        m5::Packet::ConnAck(a) => {
            let (receive_max, max_packet, alias_max, reason) = match a.properties {
                Some(p) => (
                    p.receive_max,
                    p.max_packet_size,
                    p.topic_alias_max,
                    p.reason_string,
                ),
                None => (None, None, None, None),
            };
            return Ok(Some(Incoming::ConnAck(ConnAckInfo {
                session_present: a.session_present,
                code,
                protocol: Protocol::V5,
                reason,
                limits: Limits {
                    // absent means 65535; 0 is a protocol error, read as 1
                    receive_max: receive_max.unwrap_or(u16::MAX).max(1),
                    max_packet,
                    alias_max: alias_max.unwrap_or(0),
                },
            })));
        }
        m5::Packet::Disconnect(d) => {
            let reason = d.properties.and_then(|p| p.reason_string);
            return Ok(Some(Incoming::Disconnect { code, reason }));
        }
        m5::Packet::PubAck(a) if code >= 0x80 => {
            return failed("PUBACK", a.pkid, a.properties.and_then(|p| p.reason_string))
        }
        m5::Packet::PubRec(r) if code >= 0x80 => {
            return failed("PUBREC", r.pkid, r.properties.and_then(|p| p.reason_string))
        }
        m5::Packet::PubComp(c) if code >= 0x80 => {
            return failed(
                "PUBCOMP",
                c.pkid,
                c.properties.and_then(|p| p.reason_string),
            )
        }
        m5::Packet::PubAck(a) => Packet::PubAck(PubAck::new(a.pkid)),
        m5::Packet::PubRec(r) => Packet::PubRec(PubRec::new(r.pkid)),
        m5::Packet::PubComp(c) => Packet::PubComp(PubComp::new(c.pkid)),
        m5::Packet::PubRel(r) => Packet::PubRel(PubRel::new(r.pkid)),
        m5::Packet::PingResp(_) => Packet::PingResp,
        m5::Packet::PingReq(_) => Packet::PingReq,
        m5::Packet::Publish(p) => {
            let topic = String::from_utf8_lossy(&p.topic).into_owned();
            let mut q = Publish::from_bytes(topic, from_qos5(p.qos), p.payload);
            q.pkid = p.pkid;
            q.dup = p.dup;
            q.retain = p.retain;
            Packet::Publish(q)
        }
        m5::Packet::SubAck(s) => {
            let return_codes = s
                .return_codes
                .iter()
                .map(|c| match c {
                    m5::SubscribeReasonCode::Success(q) => V4SubCode::Success(from_qos5(*q)),
                    _ => V4SubCode::Failure,
                })
                .collect();
            Packet::SubAck(V4SubAck {
                pkid: s.pkid,
                return_codes,
            })
        }
        m5::Packet::UnsubAck(u) => Packet::UnsubAck(V4UnsubAck { pkid: u.pkid }),
        // by type only: the rest is never sent to a client (an echo of ours)
        m5::Packet::Connect(..) => Packet::Connect(Connect::new("")),
        m5::Packet::Subscribe(_) => Packet::Subscribe(Subscribe::new_many([])),
        m5::Packet::Unsubscribe(_) => Packet::Unsubscribe(V4Unsubscribe::new("")),
        m5::Packet::Auth(_) => {
            return Ok(Some(Incoming::Failed {
                kind: "AUTH",
                pkid: 0,
                code,
                reason: None,
            }))
        }
    };
    Ok(Some(Incoming::Packet(p)))
}
