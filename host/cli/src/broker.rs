//! The embedded broker of `pynq-mqtt sim`: rumqttd on a loopback port.
//!
//! rumqttd serves MQTT 3.1.1 and MQTT 5 on listeners of their own, and a client of
//! the other version is dropped without a word. So the port users know is a small
//! front ([`front`]) that reads the protocol level of each CONNECT (without taking
//! it off the socket) and joins the connection to the listener of that version,
//! both on loopback ports of their own.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::{debug, error, warn};

/// Starts rumqttd on 127.0.0.1:`port` in its own thread and waits until it listens.
pub fn start(port: u16) -> Result<SocketAddr> {
    start_with(port, None)
}

/// Like [`start`], with user names and passwords when `users` is given.
pub fn start_with(port: u16, users: Option<HashMap<String, String>>) -> Result<SocketAddr> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let public = TcpListener::bind(addr).with_context(|| {
        format!("embedded broker: cannot listen on {addr} (is another broker running? try --port)")
    })?;
    let addr = public.local_addr()?;
    // rumqttd only logs a failed bind: its ports are free ones, found here
    let free = || TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)));
    let (a, b) = (free()?, free()?);
    let (v4, v5) = (a.local_addr()?, b.local_addr()?);
    drop((a, b));
    let server = |name: &str, listen| ServerSettings {
        name: name.into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: users.clone(),
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("v4".to_owned(), server("v4", v4))])),
        v5: Some(HashMap::from([("v5".to_owned(), server("v5", v5))])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = Broker::new(config).start() {
                error!("embedded broker stopped: {e}");
            }
        })
        .context("cannot start the embedded broker thread")?;

    let deadline = Instant::now() + Duration::from_secs(5);
    for inner in [v4, v5] {
        while TcpStream::connect_timeout(&inner, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("embedded broker did not start listening on {inner}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    public.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("embedded-front".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt.and_then(|rt| rt.block_on(async { front(public, v4, v5).await })) {
                Ok(()) => {}
                Err(e) => error!("embedded broker: its port stopped: {e}"),
            }
        })
        .context("cannot start the embedded broker's front thread")?;
    Ok(addr)
}

/// The protocol level of a CONNECT at the front of `b` (4: MQTT 3.1.1, 5: MQTT 5),
/// None until enough has arrived, Some(0) for anything that is not a CONNECT.
fn connect_level(b: &[u8]) -> Option<u8> {
    let (&first, rest) = b.split_first()?;
    if first != 0x10 {
        return Some(0);
    }
    // remaining length: 1 to 4 bytes, then "\0\x04MQTT" and the level
    let len_len = rest.iter().take(4).position(|x| x & 0x80 == 0)? + 1;
    let var = rest.get(len_len..len_len + 7)?;
    Some(if &var[..6] == b"\0\x04MQTT" {
        var[6]
    } else {
        0
    })
}

/// Accepts on the public port and joins each connection to rumqttd's listener of
/// its protocol.
async fn front(public: TcpListener, v4: SocketAddr, v5: SocketAddr) -> std::io::Result<()> {
    let public = tokio::net::TcpListener::from_std(public)?;
    loop {
        let (client, peer) = match public.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!("embedded broker: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = join(client, peer, v4, v5).await {
                debug!(%peer, "embedded broker: connection ended: {e}");
            }
        });
    }
}

async fn join(
    mut client: tokio::net::TcpStream,
    peer: SocketAddr,
    v4: SocketAddr,
    v5: SocketAddr,
) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut head = [0u8; 16];
    // the CONNECT is read in place (peek) and left for rumqttd, within rumqttd's
    // own connection timeout
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let level = loop {
        let n = tokio::time::timeout_at(deadline, client.peek(&mut head))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Ok(());
        }
        if let Some(l) = connect_level(&head[..n]) {
            break l;
        }
        if n == head.len() {
            break 0;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let to = match level {
        5 => {
            debug!(%peer, "embedded broker: an MQTT 5 client");
            v5
        }
        // 3.1.1, and what rumqttd's 3.1.1 listener refuses as it always did
        _ => v4,
    };
    let mut broker = tokio::net::TcpStream::connect(to).await?;
    let _ = broker.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut client, &mut broker).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::connect_level;

    #[test]
    fn the_protocol_level_is_read_from_the_connect() {
        let v4 = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c";
        let v5 = b"\x10\x11\x00\x04MQTT\x05\x02\x00\x3c\x00";
        assert_eq!(connect_level(v4), Some(4));
        assert_eq!(connect_level(v5), Some(5));
        assert_eq!(connect_level(&v5[..8]), None, "wait for the level byte");
        assert_eq!(connect_level(b""), None);
        assert_eq!(connect_level(b"GET / HTTP/1.1"), Some(0));
        // a two-byte remaining length
        assert_eq!(connect_level(b"\x10\x80\x01\x00\x04MQTT\x05"), Some(5));
    }
}
