//! The daemon: driver below, MQTT bridge above, and an orderly stop.
//!
//! Stop order, so nothing captured is lost: the driver drains the FIFO one last time
//! and closes its channels; the bridge delivers everything still buffered (within
//! its shutdown timeout, retrying the broker if need be), then `offline`, then
//! disconnects cleanly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pynq_mqtt_bridge::{BridgeConfig, BridgeIo, BridgeStats, BridgeStatsView};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::Driver;
use tokio::runtime::Runtime;
use tracing::{error, info, warn};

use crate::settings::Settings;

/// Beyond the bridge's own shutdown timeout, how long to wait for it before
/// abandoning it (it gives up by itself first; this only guards against a hang).
const ABANDON_MARGIN: Duration = Duration::from_secs(10);

/// What ends the daemon besides a signal.
pub type StopFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs the daemon on `bus` until SIGINT/SIGTERM (or `extra_stop`). `on_started`
/// runs once the driver is taking events (the simulated board starts its stimulus).
pub fn run(
    rt: &Runtime,
    settings: &Settings,
    bus: Arc<dyn Bus>,
    on_started: impl FnOnce(),
    extra_stop: Option<StopFuture>,
) -> Result<()> {
    let cfg = settings.bridge.clone();
    // TLS files and topic names are checked before the board is touched
    pynq_mqtt_bridge::check(&cfg)?;
    if settings.ha_remove {
        return remove_discovery(rt, &cfg, bus.as_ref());
    }
    for w in crate::secrets::warnings(settings.values.password_file.as_deref(), &cfg) {
        warn!("{w}");
    }
    let (driver, ch) = Driver::start(Arc::clone(&bus), &settings.driver)
        .with_context(|| format!("board {}", bus.describe()))?;
    let info = driver.info();
    let driver_stats = driver.stats();
    let bridge_stats = Arc::new(BridgeStats::default());

    info!(
        broker = %cfg.broker_url(),
        client_id = %cfg.client_id,
        prefix = %cfg.topics.prefix,
        qos = cfg.qos as u8,
        "daemon starting"
    );
    let shutdown_timeout = cfg.shutdown_timeout;
    let mut bridge = rt.spawn(pynq_mqtt_bridge::run(
        cfg,
        BridgeIo {
            events: ch.events,
            commands: ch.commands,
            leds: ch.leds,
            n_inputs: info.n_inputs,
            n_leds: info.n_leds,
            driver_stats: Arc::clone(&driver_stats),
        },
        Arc::clone(&bridge_stats),
    ));
    on_started();

    let ended_early = rt.block_on(async {
        let extra = async {
            match extra_stop {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = shutdown_signal() => { info!("{s}: stopping"); None }
            () = extra => { info!("stopping"); None }
            r = &mut bridge => Some(r),
        }
    });

    // the last drain: every event captured so far goes into the channel
    driver.stop();
    if let Some(r) = ended_early {
        return match r {
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Err(anyhow::anyhow!("MQTT bridge ended unexpectedly")),
            Err(join) => Err(anyhow::anyhow!("MQTT bridge failed: {join}")),
        };
    }
    let result = rt.block_on(async {
        tokio::time::timeout(shutdown_timeout + ABANDON_MARGIN, &mut bridge).await
    });
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let captured = g(&driver_stats.captured);
    let b = match result {
        Ok(Ok(Ok(b))) => b,
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(Err(join)) => return Err(anyhow::anyhow!("MQTT bridge failed: {join}")),
        Err(_) => {
            bridge.abort();
            error!(
                captured,
                "the MQTT bridge did not finish; buffered events are lost"
            );
            BridgeStatsView::from(bridge_stats.as_ref())
        }
    };
    let counters = pynq_mqtt_bridge::summary(&driver_stats.snapshot(), &b);
    let lost = counters
        .iter()
        .find_map(|&(k, v)| (k == "lost").then_some(v))
        .unwrap_or(0);
    let line: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    info!("stopped cleanly {}", line.join(" "));
    if lost > 0 {
        warn!(
            lost,
            "events were lost during this run (see the counters above)"
        );
    }
    Ok(())
}

/// `--ha-remove`: clears the discovery configs of this board and returns.
fn remove_discovery(rt: &Runtime, cfg: &BridgeConfig, bus: &dyn Bus) -> Result<()> {
    if cfg.discovery.is_none() {
        anyhow::bail!("--ha-remove: Home Assistant discovery is not configured (ha_discovery = true, with the same ha_prefix and client_id as the daemon)");
    }
    let info = pynq_mqtt_driver::probe(bus).with_context(|| format!("board {}", bus.describe()))?;
    let n = rt.block_on(pynq_mqtt_bridge::remove_discovery(
        cfg,
        info.n_inputs,
        info.n_leds,
    ))?;
    info!(configs = n, "Home Assistant discovery configs removed");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
