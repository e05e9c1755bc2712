//! The daemon's web page and Prometheus metrics (`--http ADDR`).
//!
//! It knows what the layers below show of themselves: the driver's counters and
//! levels, the bridge's counters and gauges, and the settings as `config` prints them
//! (secrets already masked). What it may do is handed in by the binary: drive a
//! simulated board's pins ([`Pins`]) and, with `--http-control`, send LED commands
//! down the driver's own command channel, so a page's command is applied, read back
//! and published exactly like an MQTT one.
//!
//! | path | what |
//! |---|---|
//! | `/` | the page: the board drawn in SVG, counters, a plot, settings, errors |
//! | `/events` | server-sent events: a [`snapshot`] every [`TICK`] |
//! | `/api/info` | what does not change: shape, names, settings, what the page may do |
//! | `/metrics` | OpenMetrics text ([`metrics`]) |
//! | `POST /api/input` | `{"input":i,"level":b}` on a simulated board |
//! | `POST /api/led` | `{"led":i,"action":"on"|"off"|"toggle"}` with `--http-control` |
//!
//! The POSTs take only `application/json`, which a browser sends cross-origin only
//! after a CORS preflight that this server never answers: another site open in the
//! same browser cannot press or switch anything. Off loopback they also need the
//! token (`X-Token` header), and the daemon refuses to start control there without one.
#![forbid(unsafe_code)]

mod addr;
pub mod metrics;
mod recent;
mod routes;
pub mod snapshot;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use pynq_mqtt_bridge::{BridgeLive, BridgeStats};
use pynq_mqtt_driver::{LedCommand, Levels, Stats as DriverStats};

pub use addr::HttpAddr;
pub use recent::{recent, RecentLayer};

/// How often the page is sent a snapshot.
pub const TICK: Duration = Duration::from_millis(250);

/// The environment variable holding the token for presses and LED commands (no flag:
/// a flag is visible to every user in `ps`).
pub const TOKEN_ENV: &str = "PYNQ_MQTT_HTTP_TOKEN";

/// A simulated board's input pins.
pub trait Pins: Send + Sync + 'static {
    /// Drives input `input` to `level`, as a finger on the button would.
    fn drive(&self, input: u8, level: bool);
}

/// One line of the settings table (as `pynq-mqtt config` shows it, secrets masked).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setting {
    pub key: String,
    pub value: Option<String>,
    pub source: String,
}

/// Everything the server reads and may act on.
pub struct Sources {
    pub driver: Arc<DriverStats>,
    pub bridge: Arc<BridgeStats>,
    pub live: Arc<BridgeLive>,
    pub levels: Arc<Levels>,
    pub n_inputs: u8,
    pub n_leds: u8,
    /// The inputs' and LEDs' names in topics (empty: by index).
    pub input_names: Vec<String>,
    pub led_names: Vec<String>,
    pub broker: String,
    pub client_id: String,
    pub max_inflight: u64,
    pub settings: Vec<Setting>,
    /// Present on a simulated board.
    pub pins: Option<Arc<dyn Pins>>,
    /// Present with `--http-control`.
    pub commands: Option<Sender<LedCommand>>,
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct WebConfig {
    pub addr: SocketAddr,
    /// `--http-control`: the page may switch LEDs.
    pub control: bool,
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("--http {0}: LED control from the page on an address other than loopback needs a token: set {TOKEN_ENV}, or serve on 127.0.0.1")]
    ControlWithoutToken(SocketAddr),
    #[error("--http {addr}: cannot listen: {source} (is another program on that port? pick another with --http HOST:PORT)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound listener, not yet serving: binding before the board is touched makes a
/// taken port a set-up error, not a surprise once the daemon runs.
pub struct Server {
    listener: tokio::net::TcpListener,
    cfg: WebConfig,
}

impl Server {
    /// Checks the configuration and binds. Needs a tokio runtime.
    pub async fn bind(cfg: WebConfig) -> Result<Server, WebError> {
        if cfg.control && !cfg.addr.ip().is_loopback() && cfg.token.is_none() {
            return Err(WebError::ControlWithoutToken(cfg.addr));
        }
        let listener = tokio::net::TcpListener::bind(cfg.addr)
            .await
            .map_err(|source| WebError::Bind {
                addr: cfg.addr,
                source,
            })?;
        Ok(Server { listener, cfg })
    }

    /// Where it listens (the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.cfg.addr)
    }

    /// Serves until the task is dropped or aborted.
    pub async fn serve(self, mut sources: Sources) {
        if !self.cfg.control {
            sources.commands = None;
        }
        let state = routes::State::new(sources, &self.cfg, self.local_addr());
        let app = routes::router(Arc::new(state));
        if let Err(e) = axum::serve(self.listener, app).await {
            tracing::error!("web page: the server stopped: {e}");
        }
    }
}
