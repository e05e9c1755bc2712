//! The daemon: driver below, MQTT bridge above, and an orderly stop.
//!
//! Stop order, so nothing captured is lost: the driver drains the FIFO one last time
//! and closes its channels; the bridge delivers everything still buffered (within
//! its shutdown timeout, retrying the broker if need be), then `offline`, then
//! disconnects cleanly.
//!
//! A second SIGINT/SIGTERM during that flush quits at once: what was still buffered
//! is counted as dropped, and the exit status says that events were lost.
//!
//! A device that goes away or changes identity takes the same road, after the driver
//! stopped writing to it; the exit status then says which (see [`EXIT_STATUS_HELP`]).
//! Under systemd (`Type=notify`) it reports READY=1 once the broker accepted it, and
//! pings the watchdog from the async runtime that runs the MQTT link.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pynq_mqtt_bridge::{BridgeConfig, BridgeIo, BridgeLive, BridgeStats, BridgeStatsView};
use pynq_mqtt_bus::Bus;
use pynq_mqtt_driver::{DeviceLost, Driver, DriverError, LostFlag};
use tokio::runtime::Runtime;
use tracing::{error, info, warn};

use crate::settings::Settings;

/// Beyond the bridge's own shutdown timeout, how long to wait for it before
/// abandoning it (it gives up by itself first; this only guards against a hang).
const ABANDON_MARGIN: Duration = Duration::from_secs(10);

/// Exit status: the UIO device went away (overlay unloaded or reloaded). The unit
/// restarts the daemon, which finds the device again once it is back.
pub const EXIT_DEVICE_GONE: u8 = 75;
/// Exit status: the peripheral is not pynq_mqtt_io (another bitstream in the PL). The
/// unit does not restart it (`RestartPreventExitStatus=`): a notebook owns the PL now.
pub const EXIT_OTHER_BITSTREAM: u8 = 78;

/// Exit status: stopped on a signal, but events were lost during the run (the final
/// line's `lost=` counts them: a second signal, the shutdown timeout, full buffers).
pub const EXIT_EVENTS_LOST: u8 = 3;

/// The exit statuses of `run`, for its `--help` (docs/board.md says the same).
pub const EXIT_STATUS_HELP: &str = "Exit status: 0 stopped cleanly (SIGTERM/SIGINT), \
nothing lost; 1 a set-up, settings or broker error; 3 stopped, but events were lost \
(the final line's lost= says how many; a second SIGTERM/SIGINT drops what is still \
buffered); 75 the UIO device went away (overlay unloaded or \
reloaded; the service restarts); 78 the peripheral no longer answers as pynq_mqtt_io \
(another bitstream was loaded; the service stays stopped).";

/// The run ended as asked, but not every captured event reached the broker.
#[derive(Debug)]
pub struct EventsLost(pub u64);

impl std::fmt::Display for EventsLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events were lost during this run", self.0)
    }
}

impl std::error::Error for EventsLost {}

/// The process exit status for an error that ended a command.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<EventsLost>().is_some() {
        return EXIT_EVENTS_LOST;
    }
    match (
        e.downcast_ref::<DeviceLost>(),
        e.downcast_ref::<DriverError>(),
    ) {
        (Some(DeviceLost::Gone), _) => EXIT_DEVICE_GONE,
        (Some(DeviceLost::Replaced { .. } | DeviceLost::BaseReplaced { .. }), _)
        | (_, Some(DriverError::WrongId { .. } | DriverError::NotBase { .. })) => {
            EXIT_OTHER_BITSTREAM
        }
        _ => 1,
    }
}

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
    run_with_pins(rt, settings, bus, None, on_started, extra_stop)
}

/// [`run`], with the pins a simulated board lets the web page press.
pub fn run_with_pins(
    rt: &Runtime,
    settings: &Settings,
    bus: Arc<dyn Bus>,
    pins: Option<Arc<dyn pynq_mqtt_web::Pins>>,
    on_started: impl FnOnce(),
    extra_stop: Option<StopFuture>,
) -> Result<()> {
    let cfg = settings.bridge.clone();
    // TLS files and topic names are checked before the board is touched
    pynq_mqtt_bridge::check(&cfg)?;
    if settings.ha_remove {
        return remove_discovery(rt, &cfg, bus.as_ref(), settings.base.is_some());
    }
    for w in crate::secrets::warnings(settings.values.password_file.as_deref(), &cfg) {
        warn!("{w}");
    }
    // before anything can announce the daemon (the bridge's first log line, READY=1):
    // a SIGTERM from then on is a clean stop, never the default action's kill
    let mut signals = {
        let _rt = rt.enter();
        Signals::install()
    };
    let web = crate::web::bind(rt, settings)?;
    let (driver, ch) = match &settings.base {
        Some(base) => Driver::start_base(Arc::clone(&bus), &settings.driver, base),
        None => Driver::start(Arc::clone(&bus), &settings.driver),
    }
    .with_context(|| format!("board {}", bus.describe()))?;
    let info = driver.info();
    let lost = driver.lost();
    let driver_stats = driver.stats();
    let bridge_stats = Arc::new(BridgeStats::default());
    let live = Arc::new(BridgeLive::default());
    let web = web.map(|server| {
        let parts = crate::web::Parts {
            settings,
            driver: &driver,
            bridge: Arc::clone(&bridge_stats),
            live: Arc::clone(&live),
            commands: ch.commands.clone(),
            pins,
        };
        crate::web::spawn(rt, server, parts)
    });

    for (what, names, n) in [
        ("input_names", &cfg.topics.input_names, info.n_inputs),
        ("led_names", &cfg.topics.led_names, info.n_leds),
    ] {
        if names.len() > usize::from(n) {
            let unused = names[usize::from(n)..].join(", ");
            warn!(
                "{what}: {} names for the board's {n}; unused: {unused}",
                names.len()
            );
        }
    }
    let brokers: Vec<String> = cfg.brokers().iter().map(|b| b.broker_url()).collect();
    info!(
        broker = %brokers.join(","),
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
            levels: ch.levels,
            n_inputs: info.n_inputs,
            n_leds: info.n_leds,
            driver_stats: Arc::clone(&driver_stats),
            connect_hint: Some(Box::new(|e| crate::doctor::broker_hint(e).to_owned())),
            live: Some(live),
            trace: None,
            bell: Some(ch.bell),
        },
        Arc::clone(&bridge_stats),
    ));
    let notifier = rt.spawn(notify::run(Arc::clone(&bridge_stats)));
    on_started();

    let ended_early = rt.block_on(async {
        let extra = async {
            match extra_stop {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = signals.next() => { info!("{s}: stopping"); None }
            () = extra => { info!("stopping"); None }
            () = device_lost(&lost) => None,
            r = &mut bridge => Some(r),
        }
    });
    notify::stopping();

    // the last drain: every event captured so far goes into the channel (none when the
    // device is lost: the driver has already stopped touching it)
    driver.stop();
    let device_lost = lost.get().copied();
    if let Some(l) = device_lost {
        error!("{l}: publishing offline and exiting");
    }
    let result = match ended_early {
        // the driver closed its channels on a lost device, and the bridge finished
        Some(Ok(Ok(view))) if device_lost.is_some() => Ok(Ok(Ok(view))),
        Some(r) => {
            notifier.abort();
            return match r {
                Ok(Err(e)) => Err(e.into()),
                Ok(Ok(_)) => Err(anyhow::anyhow!("MQTT bridge ended unexpectedly")),
                Err(join) => Err(anyhow::anyhow!("MQTT bridge failed: {join}")),
            };
        }
        None => {
            let pending = pending(&driver_stats, &bridge_stats);
            info!(
                events = pending,
                timeout = ?shutdown_timeout,
                "flushing {pending} buffered events for at most {shutdown_timeout:?} \
                 (a second SIGINT/SIGTERM quits at once and drops them)"
            );
            rt.block_on(async {
                tokio::select! {
                    r = tokio::time::timeout(shutdown_timeout + ABANDON_MARGIN, &mut bridge) => {
                        r.map_err(|_| None)
                    }
                    s = signals.next() => Err(Some(s)),
                }
            })
        }
    };
    notifier.abort();
    if let Some(w) = web {
        w.abort();
    }
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let captured = g(&driver_stats.captured);
    let b = match result {
        Ok(Ok(Ok(b))) => b,
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(Err(join)) => return Err(anyhow::anyhow!("MQTT bridge failed: {join}")),
        Err(why) => {
            bridge.abort();
            // the task holds the buffer until it is gone: count after it is
            let _ = rt.block_on(&mut bridge);
            let dropped = pending(&driver_stats, &bridge_stats);
            bridge_stats
                .dropped_shutdown
                .fetch_add(dropped, Ordering::Relaxed);
            bridge_stats.buffered.store(0, Ordering::Relaxed);
            match why {
                Some(s) => error!(
                    dropped,
                    "{s} again: quitting now, {dropped} buffered events dropped"
                ),
                None => error!(
                    captured,
                    dropped, "the MQTT bridge did not finish; buffered events are lost"
                ),
            }
            BridgeStatsView::from(bridge_stats.as_ref())
        }
    };
    let counters = pynq_mqtt_bridge::summary(&driver_stats.snapshot(), &b);
    let lost = counters
        .iter()
        .find_map(|&(k, v)| (k == "lost").then_some(v))
        .unwrap_or(0);
    let line: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(l) = device_lost {
        info!("stopped {}", line.join(" "));
        return Err(l.into());
    }
    if lost > 0 {
        info!("stopped with {lost} events lost {}", line.join(" "));
        return Err(EventsLost(lost).into());
    }
    info!("stopped cleanly {}", line.join(" "));
    Ok(())
}

/// Events captured but not yet delivered: in the driver's channel, and in the
/// bridge's retry buffer (sent but unacknowledged included).
fn pending(d: &pynq_mqtt_driver::Stats, b: &BridgeStats) -> u64 {
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let in_channel = g(&d.captured)
        .saturating_sub(g(&d.channel_full))
        .saturating_sub(g(&b.taken));
    in_channel + g(&b.buffered)
}

/// `--ha-remove`: clears the discovery configs of this board and returns.
fn remove_discovery(rt: &Runtime, cfg: &BridgeConfig, bus: &dyn Bus, base: bool) -> Result<()> {
    if cfg.discovery.is_none() {
        anyhow::bail!("--ha-remove: Home Assistant discovery is not configured (ha_discovery = true, with the same ha_prefix and client_id as the daemon)");
    }
    let info = if base {
        pynq_mqtt_driver::base::probe_base(bus)
    } else {
        pynq_mqtt_driver::probe(bus)
    }
    .with_context(|| format!("board {}", bus.describe()))?;
    let n = rt.block_on(pynq_mqtt_bridge::remove_discovery(
        cfg,
        info.n_inputs,
        info.n_leds,
    ))?;
    info!(configs = n, "Home Assistant discovery configs removed");
    Ok(())
}

/// Returns once the driver reports the device lost.
async fn device_lost(lost: &LostFlag) {
    let notify = Arc::new(tokio::sync::Notify::new());
    let n = Arc::clone(&notify);
    // notify_one keeps a permit: a loss before the await below still ends it
    lost.on_lost(move || n.notify_one());
    notify.notified().await;
}

/// SIGTERM and SIGINT, installed once for the whole run: the first one stops, the
/// second one quits at once.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    /// Needs the runtime's context.
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            _ => {
                warn!("cannot install signal handlers; stop with SIGKILL");
                Self(None)
            }
        }
    }

    async fn next(&mut self) -> &'static str {
        let Some((term, int)) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}

/// The systemd notification protocol (`sd_notify(3)`): datagrams to `$NOTIFY_SOCKET`,
/// written with the standard library, so the board build gains no dependency.
mod notify {
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use pynq_mqtt_bridge::BridgeStats;
    use tracing::{debug, warn};

    /// How often readiness is looked for at first (the bridge counts accepted
    /// CONNACKs), and at the most.
    const POLL: Duration = Duration::from_millis(50);
    const POLL_MAX: Duration = Duration::from_secs(1);

    /// Where systemd listens, if it does: a path, or `@name` in the abstract namespace.
    fn socket() -> Option<(UnixDatagram, SocketAddr)> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(&path),
        };
        // never blocking: a listener that stops reading (its queue holds ten
        // datagrams) would otherwise stall the runtime worker that pings, or the stop
        // itself; a message it has no room for is dropped, as a ping it missed
        let sock = UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s));
        match (sock, addr) {
            (Ok(s), Ok(a)) => Some((s, a)),
            (Err(e), _) | (_, Err(e)) => {
                warn!("NOTIFY_SOCKET is set but unusable: {e}");
                None
            }
        }
    }

    fn send(msg: &str) {
        if let Some((sock, addr)) = socket() {
            if let Err(e) = sock.send_to_addr(msg.as_bytes(), &addr) {
                debug!("sd_notify {msg:?}: {e}");
            }
        }
    }

    /// Half the watchdog period systemd asks for, if it asks this process.
    fn watchdog_every() -> Option<Duration> {
        if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
            if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
                return None;
            }
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    /// READY=1 once the broker first accepted us (the probe came before the bridge
    /// started), then WATCHDOG=1 every half period. A task of the runtime that runs
    /// the MQTT link: a runtime that stops scheduling stops the pings. It wakes only
    /// for those: readiness is looked for every POLL at first, less often the longer
    /// the broker keeps us waiting (so an idle daemon without a broker is idle too).
    pub(super) async fn run(stats: Arc<BridgeStats>) {
        use tokio::time::{sleep_until, Instant};
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return;
        }
        let every = watchdog_every();
        let now = Instant::now();
        let mut ready = false;
        let mut look = POLL;
        let mut next_look = now + look;
        let mut next_ping = every.map(|e| now + e);
        loop {
            let wake = match (ready, next_ping) {
                (false, Some(p)) => next_look.min(p),
                (false, None) => next_look,
                (true, Some(p)) => p,
                (true, None) => return,
            };
            sleep_until(wake).await;
            let now = Instant::now();
            if !ready {
                if stats.connects.load(Ordering::Relaxed) > 0 {
                    send("READY=1\nSTATUS=connected to the broker");
                    ready = true;
                } else if now >= next_look {
                    look = (look * 2).min(POLL_MAX);
                    next_look = now + look;
                }
            }
            if let (Some(p), Some(e)) = (next_ping, every) {
                if now >= p {
                    send("WATCHDOG=1");
                    next_ping = Some(now + e);
                }
            }
        }
    }

    /// Tells systemd that the stop has begun.
    pub(super) fn stopping() {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            send("STOPPING=1");
        }
    }
}
