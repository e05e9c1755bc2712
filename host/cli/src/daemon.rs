//! The daemon: driver below, MQTT bridge above, and an orderly stop.
//!
//! Stop order, so nothing captured is lost: the driver drains the FIFO one last time
//! and closes its channels; the bridge publishes everything still queued, then
//! `offline`, then disconnects cleanly.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pynq_mqtt_bridge::{BridgeConfig, BridgeIo};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::{Driver, DriverConfig};
use tokio::runtime::Runtime;
use tracing::{error, info, warn};

use crate::settings::Settings;

/// How long the bridge may take, after the driver stopped, to publish what is queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(20);

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
    let (driver, ch) = Driver::start(
        Arc::clone(&bus),
        &DriverConfig {
            channel_capacity: settings.channel_capacity,
            ..DriverConfig::default()
        },
    )
    .with_context(|| format!("board {}", bus.describe()))?;
    let info = driver.info();
    let driver_stats = driver.stats();

    let mut cfg = BridgeConfig::new(&settings.broker.host, settings.broker.port);
    cfg.prefix = settings.prefix.clone();
    cfg.qos = settings.qos;
    cfg.payload = settings.payload;
    cfg.stats_interval = settings.stats_interval;
    if let Some(id) = &settings.client_id {
        cfg.client_id = id.clone();
    }
    info!(broker = %settings.broker, prefix = %settings.prefix, "daemon starting");
    let mut bridge = rt.spawn(pynq_mqtt_bridge::run(
        cfg,
        BridgeIo {
            events: ch.events,
            commands: ch.commands,
            leds: ch.leds,
            n_leds: info.n_leds,
            driver_stats: Arc::clone(&driver_stats),
        },
    ));
    on_started();

    let bridge_ended_early = rt.block_on(async {
        let extra = async {
            match extra_stop {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = shutdown_signal() => { info!("{s}: stopping"); false }
            () = extra => { info!("stopping"); false }
            r = &mut bridge => {
                error!("MQTT bridge ended unexpectedly: {r:?}");
                true
            }
        }
    });

    // the last drain: every event captured so far goes into the channel
    driver.stop();
    if bridge_ended_early {
        anyhow::bail!("MQTT bridge ended unexpectedly");
    }
    let result = rt.block_on(async { tokio::time::timeout(FLUSH_TIMEOUT, &mut bridge).await });
    let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let captured = g(&driver_stats.captured);
    match result {
        Ok(Ok(Ok(b))) => {
            let lost =
                g(&driver_stats.hw_dropped) + g(&driver_stats.channel_full) + b.publish_failed;
            info!(
                captured,
                published = b.published,
                lost,
                led_commands = b.commands,
                rejected = b.commands_rejected,
                "stopped cleanly"
            );
            if lost > 0 {
                warn!(
                    lost,
                    "events were lost during this run (see the counters above)"
                );
            }
            Ok(())
        }
        Ok(Ok(Err(e))) => Err(e.into()),
        Ok(Err(join)) => Err(anyhow::anyhow!("MQTT bridge failed: {join}")),
        Err(_) => {
            bridge.abort();
            error!(
                captured,
                "broker did not take the remaining events within {FLUSH_TIMEOUT:?}; they are lost"
            );
            Ok(())
        }
    }
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
