//! A minimal MQTT 3.1.1 codec of the bench's own, independent of the code under test:
//! what the raw peers write and what the subscriber and the sink read.

/// Appends a remaining-length field.
pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// CONNECT, clean session, keep-alive off.
pub fn connect(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4); // 3.1.1
    body.push(0x02); // clean session
    body.extend_from_slice(&0u16.to_be_bytes());
    put_str(&mut body, client_id.as_bytes());
    let mut out = vec![0x10];
    put_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// SUBSCRIBE to one filter.
pub fn subscribe(filter: &str, qos: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1u16.to_be_bytes());
    put_str(&mut body, filter.as_bytes());
    body.push(qos);
    let mut out = vec![0x82];
    put_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// PUBLISH at QoS 0 (`pkid` None) or QoS 1.
pub fn publish(out: &mut Vec<u8>, topic: &str, payload: &[u8], pkid: Option<u16>) {
    let len = 2 + topic.len() + payload.len() + if pkid.is_some() { 2 } else { 0 };
    out.push(if pkid.is_some() { 0x32 } else { 0x30 });
    put_len(out, len);
    put_str(out, topic.as_bytes());
    if let Some(id) = pkid {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

pub const DISCONNECT: [u8; 2] = [0xe0, 0];

/// One complete packet at the start of `buf`: (first byte, header length, body length).
pub fn frame(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let mut len = 0usize;
    let mut mul = 1usize;
    for i in 1..5 {
        let b = *buf.get(i)?;
        len += usize::from(b & 0x7f) * mul;
        if b & 0x80 == 0 {
            let hdr = i + 1;
            return (buf.len() >= hdr + len).then_some((buf[0], hdr, len));
        }
        mul *= 128;
    }
    None
}
