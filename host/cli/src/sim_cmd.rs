//! `pynq-mqtt sim`: the Verilated RTL as the board, an embedded broker, and what a
//! subscriber sees, drawn in the terminal. In a terminal, the board panel of
//! [`crate::tui`] takes the keys; otherwise it replays `--stimulus` and runs until a
//! signal or `--duration`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::cli::open_sim;
use crate::cli::DaemonArgs;
use crate::daemon;
use crate::settings::{BrokerAddr, CommonArgs, Settings};
use crate::tui;

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Loopback port of the embedded broker.
    #[arg(long, env = "PYNQ_MQTT_SIM_PORT", default_value_t = 1883)]
    pub port: u16,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM or `q`).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Remove the Home Assistant discovery configs (empty retained messages) and exit.
    #[arg(long, help_heading = "Home Assistant")]
    pub ha_remove: bool,
}

pub fn run(rt: &Runtime, args: &SimArgs, mut settings: Settings) -> Result<()> {
    let addr = crate::broker::start(args.port)?;
    settings.bridge.host = addr.ip().to_string();
    settings.bridge.port = addr.port();
    let prefix = settings.bridge.topics.prefix.clone();
    let board = open_sim(&settings)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let n_leds = board.n_leds();

    let title = format!(
        "pynq-mqtt sim: Verilated pynq_mqtt_io at {} Hz, {}, broker mqtt://{addr}, topics under {:?}",
        board.clk_hz(),
        pynq_mqtt_sim::shape::describe(board.n_inputs(), n_leds),
        prefix
    );
    // in a terminal, the board panel of crate::tui; otherwise lines on stdout
    let view = interactive.then(|| Arc::new(tui::View::default()));
    if !interactive {
        print_line(&title);
        print_line("what a subscriber sees:");
    }

    let broker = BrokerAddr {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    // pynq_mqtt_bridge::Topics puts the stats here
    let stats_topic = format!("{prefix}stats");
    let observer = rt.spawn(observe(
        broker,
        prefix.clone(),
        n_leds,
        view.clone(),
        stats_topic,
    ));

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let keys = match &view {
        Some(v) => {
            let header = vec![
                title,
                format!(
                    "try: mosquitto_pub -p {} -t {prefix}led/0/set -m toggle",
                    addr.port()
                ),
            ];
            let debounce_us = u64::from(settings.driver.debounce_us);
            Some(tui::start(
                Arc::clone(&board),
                Arc::clone(v),
                header,
                debounce_us,
                stop_tx,
            )?)
        }
        None => None,
    };
    let stop: daemon::StopFuture = match (args.duration, keys.is_some()) {
        (Some(secs), _) => Box::pin(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
        }),
        (None, true) => Box::pin(async move {
            let _ = stop_rx.await;
        }),
        (None, false) => Box::pin(std::future::pending()),
    };
    let b = Arc::clone(&board);
    let start = move || {
        b.start_stimulus();
    };
    let pins = Arc::new(crate::web::SimPins(Arc::clone(&board)));
    let result = daemon::run_with_pins(rt, &settings, board, Some(pins), start, Some(stop));
    // let the subscriber print `offline`
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    observer.abort();
    drop(keys);
    result
}

/// A line on stdout, flushed: a pipe reads each message as it comes.
fn print_line(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

/// An independent MQTT client on the embedded broker: prints every message.
async fn observe(
    broker: BrokerAddr,
    prefix: String,
    n_leds: u32,
    view: Option<Arc<tui::View>>,
    stats_topic: String,
) {
    let mut opts = MqttOptions::new(
        format!("pynq-mqtt-sim-view-{}", std::process::id()),
        broker.host,
        broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let start = Instant::now();
    let mut leds = vec![false; n_leds as usize];
    let filter = format!("{prefix}#");
    if let Err(why) = pynq_mqtt_bridge::check_filter(&filter) {
        // the settings normalize the prefix, so this is a bug, said rather than hidden
        tracing::error!("the simulator's view cannot subscribe: {why}");
        return;
    }
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = client.subscribe(filter.as_str(), QoS::AtMostOnce).await {
                    tracing::error!("the simulator's view cannot subscribe to {filter}: {e}");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(a))) => {
                let failed = a
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                if failed {
                    tracing::error!(
                        "the broker refused the simulator's view its subscription to {filter}: \
                         nothing will be shown"
                    );
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let body = String::from_utf8_lossy(&p.payload);
                let mut line = format!(
                    "{:>9.3} s  {:<24} {}",
                    start.elapsed().as_secs_f64(),
                    p.topic,
                    body
                );
                if let Some(v) = &view {
                    // stats on their own line; the panel draws the LEDs from the pins
                    if p.topic == stats_topic {
                        v.stats(&body);
                    } else {
                        v.message(line);
                    }
                    continue;
                }
                let led = p
                    .topic
                    .strip_prefix(&prefix)
                    .and_then(|t| t.strip_prefix("led/"))
                    .and_then(|i| i.parse::<usize>().ok());
                if let Some(i) = led.filter(|i| *i < leds.len()) {
                    leds[i] = body == "1" || body == "ON"; // either state_format
                    let drawn: String = leds
                        .iter()
                        .map(|on| if *on { " ●" } else { " ○" })
                        .collect();
                    line.push_str(&format!("    LEDs{drawn}"));
                }
                print_line(&line);
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
