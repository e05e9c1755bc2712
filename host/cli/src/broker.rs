//! The embedded broker of `pynq-mqtt sim`: rumqttd on a loopback port.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::error;

/// Starts rumqttd on 127.0.0.1:`port` in its own thread and waits until it listens.
pub fn start(port: u16) -> Result<SocketAddr> {
    start_with(port, None)
}

/// Like [`start`], with user names and passwords when `users` is given.
pub fn start_with(port: u16, users: Option<HashMap<String, String>>) -> Result<SocketAddr> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // rumqttd only logs a failed bind: find out here, with a clear message
    drop(TcpListener::bind(addr).with_context(|| {
        format!("embedded broker: cannot listen on {addr} (is another broker running? try --port)")
    })?);

    let server = ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: users,
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
        v4: Some(HashMap::from([("v4".to_owned(), server)])),
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
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!("embedded broker did not start listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(addr)
}
