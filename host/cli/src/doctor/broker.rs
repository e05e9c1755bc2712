//! The broker check of `doctor`: a TCP connection and an MQTT 3.1.1 CONNECT with the
//! daemon's credentials under a client id of its own (so a running daemon's session is
//! left alone), answered by CONNACK, then DISCONNECT.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::hw::Failure;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to connect.
pub struct Target<'a> {
    /// `mqtt://host:port` or `mqtts://...`, for messages.
    pub url: String,
    pub host: &'a str,
    pub port: u16,
    pub tls: bool,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

pub fn check(t: &Target<'_>) -> Result<String, Failure> {
    let addrs: Vec<_> = (t.host, t.port)
        .to_socket_addrs()
        .map_err(|e| {
            Failure::new(
                format!("cannot resolve {}: {e}", t.host),
                "check the host name in --broker, PYNQ_MQTT_BROKER or the config file",
            )
        })?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
        let fix = match e.kind() {
            ErrorKind::ConnectionRefused => {
                "start the broker (e.g. `systemctl start mosquitto`) or point --broker / \
                 PYNQ_MQTT_BROKER at a running one"
            }
            _ => "check the broker's address, the network and any firewall",
        };
        return Err(Failure::new(format!("{}: cannot connect: {e}", t.url), fix));
    };
    if t.tls {
        return Ok(format!(
            "{} accepts TCP connections (the TLS handshake and the login are checked by the \
             daemon when it connects)",
            t.url
        ));
    }
    let io = |e: std::io::Error| {
        Failure::new(
            format!(
                "{}: the connection broke during the MQTT handshake: {e}",
                t.url
            ),
            "is this an MQTT port? (mqtts:// for TLS ports such as 8883)",
        )
    };
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    stream
        .write_all(&connect_packet(
            &format!("pynq-mqtt-doctor-{}", std::process::id()),
            t.username,
            t.password,
        ))
        .map_err(io)?;
    let mut ack = [0u8; 4];
    stream.read_exact(&mut ack).map_err(io)?;
    if ack[0] != 0x20 || ack[1] != 2 {
        return Err(Failure::new(
            format!("{} answered {ack:02x?}, not an MQTT CONNACK", t.url),
            "is this an MQTT port? (mqtts:// for TLS ports such as 8883)",
        ));
    }
    let _ = stream.write_all(&[0xE0, 0x00]);
    match ack[3] {
        0 => Ok(format!("{} accepted an MQTT connection", t.url)),
        4 | 5 => Err(Failure::new(
            format!(
                "{} refused the login ({})",
                t.url,
                if ack[3] == 4 {
                    "bad user name or password"
                } else {
                    "not authorized"
                }
            ),
            "set --username and the password (PYNQ_MQTT_PASSWORD or --password-file) the \
             broker expects",
        )),
        rc => Err(Failure::new(
            format!("{} refused the connection (CONNACK code {rc})", t.url),
            "see the broker's log",
        )),
    }
}

/// An MQTT 3.1.1 CONNECT, clean session, keep-alive 10 s.
fn connect_packet(client_id: &str, username: Option<&str>, password: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4]);
    let mut flags = 0x02u8;
    if username.is_some() {
        flags |= 0x80;
        if password.is_some() {
            flags |= 0x40;
        }
    }
    body.push(flags);
    body.extend_from_slice(&10u16.to_be_bytes());
    let mut field = |s: &str| {
        let b = s.as_bytes();
        body.extend_from_slice(&(b.len().min(65_535) as u16).to_be_bytes());
        body.extend_from_slice(&b[..b.len().min(65_535)]);
    };
    field(client_id);
    if let Some(u) = username {
        field(u);
        if let Some(p) = password {
            field(p);
        }
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packets_are_well_formed() {
        let p = connect_packet("ab", None, None);
        assert_eq!(
            p,
            vec![0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 2, b'a', b'b']
        );
        let p = connect_packet("c", Some("u"), Some("pw"));
        assert_eq!(p[9], 0xC2);
        assert_eq!(&p[p.len() - 4..], &[0, 2, b'p', b'w']);
        assert_eq!(usize::from(p[1]), p.len() - 2);
        let long = "x".repeat(200);
        let p = connect_packet(&long, None, None);
        assert_eq!((p[1], p[2]), ((212 % 128) as u8 | 0x80, 1));
    }
}
