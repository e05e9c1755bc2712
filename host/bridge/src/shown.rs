//! What of a peer's bytes may go into a log line: topics and payloads cut to a few
//! bytes and escaped (no control character, no newline, so one message is one short
//! line whatever the peer sends), and packets named by their type and size only,
//! never by their `Debug` output (which, for a CONNECT echoed back, holds our
//! password).

use std::fmt;

use rumqttc::mqttbytes::v4::Packet;

use crate::wire::Incoming;

/// Bytes of a topic or payload shown at most; the rest is only counted.
pub const SHOWN_BYTES: usize = 64;

/// A topic (or any text from the peer) for a log line: at most [`SHOWN_BYTES`] of
/// it, printable ASCII as is, everything else escaped, and the full length when cut.
pub fn text(s: &str) -> Shown<'_> {
    Shown::Text(s)
}

/// A payload for a log line: as [`text`], bytes that are not printable ASCII as `\xNN`.
pub fn bytes(b: &[u8]) -> Shown<'_> {
    Shown::Bytes(b, SHOWN_BYTES)
}

/// Peer data made safe to print; see [`text`] and [`bytes`].
#[derive(Clone, Copy)]
pub enum Shown<'a> {
    Text(&'a str),
    Bytes(&'a [u8], usize),
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = match *self {
            Shown::Text(s) => {
                let mut end = s.len().min(SHOWN_BYTES);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                for c in s[..end].chars() {
                    match c {
                        ' '..='~' if c != '\\' => f.write_fmt(format_args!("{c}"))?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\r' => f.write_str("\\r")?,
                        '\t' => f.write_str("\\t")?,
                        _ => f.write_fmt(format_args!("{}", c.escape_unicode()))?,
                    }
                }
                (s.len() > end).then_some(s.len())
            }
            Shown::Bytes(b, max) => {
                let end = b.len().min(max);
                f.write_fmt(format_args!("{}", b[..end].escape_ascii()))?;
                (b.len() > end).then_some(b.len())
            }
        };
        match total {
            Some(n) => write!(f, "... ({n} bytes)"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A packet for a log line or an error: its type only. Never the packet's own
/// `Debug`: a CONNECT (a peer may echo ours) carries the password.
pub fn kind(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

/// The size of a packet's variable part as the peer declared it, for a log line.
pub fn size(p: &Packet) -> usize {
    p.size()
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incoming::Packet(p) => write!(f, "{} of {} bytes", kind(p), size(p)),
            Incoming::TooLarge { frame_len, .. } => write!(f, "a packet of {frame_len} bytes"),
            Incoming::ConnAck(a) => write!(f, "CONNACK {:#04x}", a.code),
            Incoming::Disconnect { code, .. } => write!(f, "DISCONNECT {code:#04x}"),
            Incoming::Failed { kind, code, .. } => write!(f, "{kind} {code:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use rumqttc::mqttbytes::v4::{Connect, Login};

    #[test]
    fn text_is_escaped_and_cut() {
        assert_eq!(text("led/0/set").to_string(), "led/0/set");
        assert_eq!(
            text("a\nb\r\t\u{1b}[31m\\\u{0}").to_string(),
            "a\\nb\\r\\t\\u{1b}[31m\\\\\\u{0}"
        );
        assert_eq!(text("l\u{e9}d\u{202e}").to_string(), "l\\u{e9}d\\u{202e}");
        let long = "x".repeat(60_000);
        let s = text(&long).to_string();
        assert_eq!(s, format!("{}... (60000 bytes)", "x".repeat(SHOWN_BYTES)));
        // a cut inside a character falls back to its start
        let multi = "\u{e9}".repeat(40); // 80 bytes
        let s = text(&multi).to_string();
        assert!(
            s.starts_with(&"\\u{e9}".repeat(32)) && s.ends_with("... (80 bytes)"),
            "{s}"
        );
        assert!(!s.contains('\n'));
    }

    #[test]
    fn bytes_are_escaped_and_cut() {
        assert_eq!(bytes(b"on").to_string(), "on");
        assert_eq!(bytes(b"a\nb\xff\x00").to_string(), "a\\nb\\xff\\x00");
        let s = bytes(&[0xffu8; 1000]).to_string();
        assert!(s.ends_with("... (1000 bytes)"), "{s}");
        assert_eq!(s.len(), 4 * SHOWN_BYTES + "... (1000 bytes)".len());
        assert_eq!(format!("{:?}", bytes(b"\"")), "\"\\\"\"");
    }

    #[test]
    fn every_printed_form_has_no_control_character_and_a_bounded_length() {
        let nasty: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let b = bytes(&nasty).to_string();
        let t = String::from_utf8_lossy(&nasty).into_owned();
        let t = text(&t).to_string();
        for s in [b, t] {
            assert!(s.chars().all(|c| (' '..='~').contains(&c)), "{s}");
            assert!(s.len() < 12 * SHOWN_BYTES, "{}", s.len());
        }
    }

    #[test]
    fn a_connect_is_named_without_its_login() {
        let mut c = Connect::new("board");
        c.login = Some(Login::new("board1", "S3cr3t"));
        let mut buf = BytesMut::new();
        c.write(&mut buf).unwrap();
        let p = Packet::read(&mut buf, 1 << 20).unwrap();
        assert_eq!(kind(&p), "CONNECT");
        assert!(size(&p) > "S3cr3t".len());
        // what the codec's Debug would have shown, and what ours shows
        assert!(format!("{p:?}").contains("S3cr3t"));
        let shown = format!("{:?}", Incoming::Packet(p));
        assert!(
            shown.starts_with("CONNECT of ") && !shown.contains("S3cr3t"),
            "{shown}"
        );
    }
}
