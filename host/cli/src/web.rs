//! `--http`: the daemon's page and `/metrics` (host/web), wired to this run's layers.

use std::sync::Arc;

use anyhow::Result;
use crossbeam_channel::Sender;
use pynq_mqtt_bridge::{BridgeLive, BridgeStats};
use pynq_mqtt_driver::{Driver, LedCommand};
use pynq_mqtt_web::{Pins, Server, Setting, Sources, WebConfig, TOKEN_ENV};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::settings::Settings;

/// Binds the server, if the settings ask for one (before the board is touched, so a
/// taken port is a set-up error).
pub fn bind(rt: &Runtime, settings: &Settings) -> Result<Option<Server>> {
    let Some(addr) = settings.values.http else {
        return Ok(None);
    };
    let cfg = WebConfig {
        addr: addr.0,
        control: settings.values.http_control.0,
        token: std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
    };
    Ok(Some(rt.block_on(Server::bind(cfg))?))
}

/// What the page reads and may act on, from this run.
pub struct Parts<'a> {
    pub settings: &'a Settings,
    pub driver: &'a Driver,
    pub bridge: Arc<BridgeStats>,
    pub live: Arc<BridgeLive>,
    pub commands: Sender<LedCommand>,
    pub pins: Option<Arc<dyn Pins>>,
}

pub fn spawn(rt: &Runtime, server: Server, p: Parts<'_>) -> JoinHandle<()> {
    let s = p.settings;
    let info = p.driver.info();
    let sources = Sources {
        driver: p.driver.stats(),
        bridge: p.bridge,
        live: p.live,
        levels: p.driver.levels(),
        n_inputs: info.n_inputs,
        n_leds: info.n_leds,
        input_names: s.bridge.topics.input_names.clone(),
        led_names: s.bridge.topics.led_names.clone(),
        broker: s.bridge.broker_url(),
        client_id: s.bridge.client_id.clone(),
        max_inflight: s.bridge.max_inflight as u64,
        settings: s
            .shown
            .iter()
            .map(|sh| Setting {
                key: sh.key.into(),
                value: sh.value.clone(),
                source: sh.source.to_string(),
            })
            .collect(),
        pins: p.pins,
        commands: Some(p.commands),
    };
    let addr = server.local_addr();
    tracing::info!(
        control = s.values.http_control.0,
        "web page on http://{addr}/, metrics on http://{addr}/metrics"
    );
    rt.spawn(server.serve(sources))
}

/// A simulated board's pins, for the page's clicks.
#[cfg(feature = "sim")]
pub struct SimPins(pub Arc<pynq_mqtt_sim::SimBoard>);

#[cfg(feature = "sim")]
impl Pins for SimPins {
    fn drive(&self, input: u8, level: bool) {
        self.0.set_input(u32::from(input), level);
    }
}
