//! The MQTT side of pynq-mqtt: button events out, LED commands in.
//!
//! It knows events and commands (the driver's types) and nothing of registers.
//! One forwarder thread takes events and LED states from the driver's channels and
//! hands them to the MQTT client in order; one task drives the client's connection,
//! (re)subscribes and announces `online` on every connect, and turns incoming
//! `led/<i>/set` messages into [`LedCommand`]s. When the driver's channels close, the
//! forwarder publishes `offline` and disconnects after everything queued before it.

mod payload;
mod topics;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, Receiver, Sender, TrySendError};
use pynq_mqtt_driver::{ButtonEvent, LedCommand, LedReport, Stats as DriverStats};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, NetworkOptions, Outgoing, Packet, QoS};
use tracing::{debug, info, warn};

pub use payload::{
    button_payload, parse_command, printable, CommandError, PayloadFormat, MAX_COMMAND_LEN,
};
pub use topics::Topics;

/// Settings of the MQTT side.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// Prepended to every topic, e.g. `pynq/board1/`.
    pub prefix: String,
    /// QoS of the button events.
    pub qos: QoS,
    pub payload: PayloadFormat,
    pub keep_alive: Duration,
    /// Period of the `stats` message; None turns it off.
    pub stats_interval: Option<Duration>,
    /// Requests the MQTT client buffers before the forwarder waits.
    pub request_capacity: usize,
}

impl BridgeConfig {
    pub fn new(host: &str, port: u16) -> Self {
        Self {
            host: host.to_owned(),
            port,
            client_id: format!("pynq-mqtt-{}", std::process::id()),
            prefix: String::new(),
            qos: QoS::AtMostOnce,
            payload: PayloadFormat::Plain,
            keep_alive: Duration::from_secs(30),
            stats_interval: Some(Duration::from_secs(30)),
            request_capacity: 4096,
        }
    }
}

/// The driver's ends of the channels, and what the bridge reports about it.
pub struct BridgeIo {
    pub events: Receiver<ButtonEvent>,
    pub commands: Sender<LedCommand>,
    pub leds: Receiver<LedReport>,
    pub n_leds: u8,
    pub driver_stats: Arc<DriverStats>,
}

/// Counters of the MQTT side; all monotonic.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Button events handed to the MQTT client.
    pub published: AtomicU64,
    /// Button events the client refused (it had shut down).
    pub publish_failed: AtomicU64,
    /// LED commands accepted and sent down.
    pub commands: AtomicU64,
    /// LED commands refused (bad topic, LED or payload), each logged.
    pub commands_rejected: AtomicU64,
    /// LED commands lost because the driver's command queue was full or closed.
    pub commands_dropped: AtomicU64,
    /// Connections made to the broker.
    pub connects: AtomicU64,
    /// Connection failures and losses.
    pub connection_errors: AtomicU64,
}

/// What can end the bridge with an error.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot start the forwarder thread: {0}")]
    Thread(std::io::Error),
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// State shared by the forwarder, the connection task and the stats task.
struct Shared {
    cfg: BridgeConfig,
    topics: Topics,
    stats: BridgeStats,
    driver_stats: Arc<DriverStats>,
    /// Last known state of each LED, republished (retained) after every connect.
    leds: Mutex<Vec<Option<bool>>>,
    finishing: AtomicBool,
}

/// Runs the MQTT side until the driver's channels close and `offline` has been
/// delivered with a clean disconnect. Returns the bridge's counters.
pub async fn run(cfg: BridgeConfig, io: BridgeIo) -> Result<BridgeStatsView, BridgeError> {
    let topics = Topics::new(&cfg.prefix);
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(cfg.keep_alive)
        .set_clean_session(true)
        .set_last_will(LastWill::new(
            topics.status(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    let (client, mut eventloop) = AsyncClient::new(opts, cfg.request_capacity.max(16));
    // a button press must not wait for the previous packet's ACK (Nagle)
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);

    let shared = Arc::new(Shared {
        topics,
        stats: BridgeStats::default(),
        driver_stats: io.driver_stats,
        leds: Mutex::new(vec![None; usize::from(io.n_leds)]),
        finishing: AtomicBool::new(false),
        cfg,
    });

    let forwarder = {
        let (sh, c, rt) = (
            Arc::clone(&shared),
            client.clone(),
            tokio::runtime::Handle::current(),
        );
        let (events, leds) = (io.events, io.leds);
        std::thread::Builder::new()
            .name("mqtt-forwarder".into())
            .spawn(move || forward(&sh, &c, &rt, events, leds))
            .map_err(BridgeError::Thread)?
    };
    let stats_task = shared
        .cfg
        .stats_interval
        .map(|every| tokio::spawn(publish_stats(Arc::clone(&shared), client.clone(), every)));

    let commands = io.commands;
    let n_leds = io.n_leds;
    let mut backoff = Duration::from_millis(100);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                let reconnect = shared.stats.connects.fetch_add(1, Ordering::Relaxed) > 0;
                backoff = Duration::from_millis(100);
                info!(
                    broker = %format!("{}:{}", shared.cfg.host, shared.cfg.port),
                    session_present = ack.session_present,
                    "connected to broker"
                );
                tokio::spawn(announce(Arc::clone(&shared), client.clone(), reconnect));
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                handle_command(&shared, &commands, n_leds, &p.topic, &p.payload);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                bump(&shared.stats.connection_errors);
                warn!(
                    "broker {}:{}: {e}; retrying in {backoff:?}",
                    shared.cfg.host, shared.cfg.port
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    // DISCONNECT is written: read until the broker closes, so our close never turns
    // into a reset that could discard what the broker has not yet read
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while eventloop.poll().await.is_ok() {}
    })
    .await;
    if let Some(t) = stats_task {
        t.abort();
    }
    let _ = tokio::task::spawn_blocking(move || forwarder.join()).await;
    info!("disconnected from broker");
    Ok(BridgeStatsView::from(&shared.stats))
}

/// A plain copy of the counters at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeStatsView {
    pub published: u64,
    pub publish_failed: u64,
    pub commands: u64,
    pub commands_rejected: u64,
    pub commands_dropped: u64,
    pub connects: u64,
    pub connection_errors: u64,
}

impl From<&BridgeStats> for BridgeStatsView {
    fn from(s: &BridgeStats) -> Self {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Self {
            published: g(&s.published),
            publish_failed: g(&s.publish_failed),
            commands: g(&s.commands),
            commands_rejected: g(&s.commands_rejected),
            commands_dropped: g(&s.commands_dropped),
            connects: g(&s.connects),
            connection_errors: g(&s.connection_errors),
        }
    }
}

/// After every connect: subscribe again (clean sessions forget), say `online`, and
/// after a reconnect restore the retained LED states (a restarted broker forgets them;
/// on the first connect the forwarder publishes them).
async fn announce(sh: Arc<Shared>, client: AsyncClient, reconnect: bool) {
    if sh.finishing.load(Ordering::SeqCst) {
        return;
    }
    let t = &sh.topics;
    let _ = client.subscribe(t.led_set_filter(), QoS::AtLeastOnce).await;
    let _ = client
        .publish(t.status(), QoS::AtLeastOnce, true, "online")
        .await;
    if !reconnect {
        return;
    }
    let leds: Vec<(u8, bool)> = {
        let l = sh.leds.lock().unwrap_or_else(|p| p.into_inner());
        l.iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|on| (i as u8, on)))
            .collect()
    };
    for (led, on) in leds {
        let _ = client
            .publish(
                t.led(led),
                QoS::AtLeastOnce,
                true,
                if on { "1" } else { "0" },
            )
            .await;
    }
}

fn handle_command(
    sh: &Shared,
    commands: &Sender<LedCommand>,
    n_leds: u8,
    topic: &str,
    payload: &[u8],
) {
    let reject = |why: &str| {
        bump(&sh.stats.commands_rejected);
        warn!(
            topic = %topic.escape_debug(),
            payload = %printable(payload),
            "LED command rejected: {why}"
        );
    };
    let Some(led) = sh.topics.parse_led_set(topic) else {
        return reject("not a led/<i>/set topic");
    };
    if led >= n_leds {
        return reject(&format!("the board has {n_leds} LEDs"));
    }
    let action = match parse_command(payload) {
        Ok(a) => a,
        Err(e) => return reject(&e.to_string()),
    };
    match commands.try_send(LedCommand { led, action }) {
        Ok(()) => {
            bump(&sh.stats.commands);
            debug!(led, %action, "LED command");
        }
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            bump(&sh.stats.commands_dropped);
            warn!(led, %action, "LED command dropped: the driver is not taking commands");
        }
    }
}

/// Moves events and LED states from the driver to the client, in order, then says
/// `offline` and disconnects once both channels have closed and drained.
fn forward(
    sh: &Shared,
    client: &AsyncClient,
    rt: &tokio::runtime::Handle,
    events: Receiver<ButtonEvent>,
    leds: Receiver<LedReport>,
) {
    let (mut events, mut leds) = (Some(events), Some(leds));
    let never_ev = never::<ButtonEvent>();
    let never_led = never::<LedReport>();
    while events.is_some() || leds.is_some() {
        select! {
            recv(events.as_ref().unwrap_or(&never_ev)) -> m => match m {
                Ok(e) => {
                    let topic = sh.topics.button(e.input);
                    let body = button_payload(sh.cfg.payload, &e);
                    match rt.block_on(client.publish(topic, sh.cfg.qos, false, body)) {
                        Ok(()) => bump(&sh.stats.published),
                        Err(err) => {
                            bump(&sh.stats.publish_failed);
                            warn!("event {} not published: {err}", e.seq);
                        }
                    }
                }
                Err(_) => events = None,
            },
            recv(leds.as_ref().unwrap_or(&never_led)) -> m => match m {
                Ok(r) => {
                    if let Some(slot) = sh
                        .leds
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(usize::from(r.led))
                    {
                        *slot = Some(r.on);
                    }
                    let body = if r.on { "1" } else { "0" };
                    let _ = rt.block_on(client.publish(sh.topics.led(r.led), QoS::AtLeastOnce, true, body));
                }
                Err(_) => leds = None,
            },
        }
    }
    sh.finishing.store(true, Ordering::SeqCst);
    let _ = rt.block_on(client.publish(sh.topics.status(), QoS::AtLeastOnce, true, "offline"));
    let _ = rt.block_on(client.disconnect());
    debug!("forwarder done");
}

/// Publishes the counters as JSON every `every`.
async fn publish_stats(sh: Arc<Shared>, client: AsyncClient, every: Duration) {
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if sh.finishing.load(Ordering::SeqCst) {
            return;
        }
        let body = stats_json(&sh, start, &mut last);
        let _ = client
            .publish(sh.topics.stats(), QoS::AtMostOnce, false, body)
            .await;
    }
}

fn stats_json(sh: &Shared, start: Instant, last: &mut (Instant, u64)) -> String {
    let d = &sh.driver_stats;
    let b = BridgeStatsView::from(&sh.stats);
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let now = Instant::now();
    let dt = now.duration_since(last.0).as_secs_f64().max(1e-9);
    let rate = (b.published - last.1) as f64 / dt;
    *last = (now, b.published);
    serde_json::json!({
        "uptime_s": start.elapsed().as_secs(),
        "captured": g(&d.captured),
        "published": b.published,
        "dropped": {
            "hardware": g(&d.hw_dropped),
            "sequence_gaps": g(&d.seq_lost),
            "channel_full": g(&d.channel_full),
            "publish_failed": b.publish_failed,
        },
        "rates": { "published_per_s": (rate * 10.0).round() / 10.0 },
        "irqs": g(&d.irqs),
        "bus_errors": g(&d.bus_errors),
        "led_commands": b.commands,
        "led_commands_rejected": b.commands_rejected + g(&d.led_rejected),
        "led_commands_dropped": b.commands_dropped,
        "broker": { "connects": b.connects, "errors": b.connection_errors },
    })
    .to_string()
}
