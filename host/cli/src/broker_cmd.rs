//! `pynq-mqtt broker` (hidden): the embedded broker of `sim` on its own, until
//! SIGINT/SIGTERM. The end-to-end tests start, kill and restart it as the second
//! real broker besides mosquitto; `--user` with `--password-file` makes it ask for a
//! user name and password (the settings are those of `sim`'s broker otherwise).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::runtime::Runtime;
use tracing::{error, info};

#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// Loopback port to listen on.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Require this user name (with --password-file).
    #[arg(long, requires = "password_file")]
    pub user: Option<String>,
    /// File whose first line is the user's password.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<String>,
}

pub fn run(rt: &Runtime, args: &BrokerArgs) -> Result<()> {
    let addr = match (&args.user, &args.password_file) {
        (Some(user), Some(file)) => {
            let pw = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {file}"))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            start_with_auth(args.port, HashMap::from([(user.clone(), pw)]))?
        }
        _ => crate::broker::start(args.port)?,
    };
    info!("embedded broker listening on {addr}");
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        anyhow::Ok(())
    })?;
    // the broker thread has no stop; the process ends here
    Ok(())
}

/// The embedded broker's settings (`broker.rs`) with user names and passwords.
fn start_with_auth(port: u16, users: HashMap<String, String>) -> Result<SocketAddr> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    drop(TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?);
    let server = ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: Some(users),
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
