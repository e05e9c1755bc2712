//! `pynq-mqtt sim`: the Verilated RTL as the board, an embedded broker, and what a
//! subscriber sees, drawn in the terminal. In a terminal, digit keys press buttons
//! and `q` quits; otherwise it replays `--stimulus` and runs until a signal or
//! `--duration`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use pynq_mqtt_sim::SimBoard;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::cli::open_sim;
use crate::daemon;
use crate::settings::{BrokerAddr, CommonArgs, Settings};

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
}

pub fn run(rt: &Runtime, args: &SimArgs, mut settings: Settings) -> Result<()> {
    let addr = crate::broker::start(args.port)?;
    settings.bridge.host = addr.ip().to_string();
    settings.bridge.port = addr.port();
    let prefix = settings.bridge.topics.prefix.clone();
    let board = open_sim(&settings)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let n_leds = board.n_leds();

    let mut out = Out::new(interactive);
    out.line(&format!(
        "pynq-mqtt sim: Verilated pynq_mqtt_io at {} Hz, broker mqtt://{addr}, topics under {:?}",
        board.clk_hz(),
        prefix
    ));
    if interactive {
        out.line(&format!(
            "keys 0-{} press a button, q quits; try: mosquitto_pub -p {} -t {}led/0/set -m toggle",
            board.n_inputs() - 1,
            addr.port(),
            prefix
        ));
    }
    out.line("what a subscriber sees:");

    let broker = BrokerAddr {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let observer = rt.spawn(observe(broker, prefix, n_leds, interactive));

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let keys = interactive.then(|| spawn_keys(Arc::clone(&board), stop_tx));
    let stop: daemon::StopFuture = match (args.duration, keys.is_some()) {
        (Some(secs), _) => Box::pin(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
        }),
        (None, true) => Box::pin(async move {
            let _ = stop_rx.await;
        }),
        (None, false) => Box::pin(std::future::pending()),
    };
    if interactive {
        crossterm::terminal::enable_raw_mode()?;
    }
    let b = Arc::clone(&board);
    let start = move || {
        b.start_stimulus();
    };
    let pins = Arc::new(crate::web::SimPins(Arc::clone(&board)));
    let result = daemon::run_with_pins(rt, &settings, board, Some(pins), start, Some(stop));
    // let the subscriber print `offline`
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    observer.abort();
    if interactive {
        let _ = crossterm::terminal::disable_raw_mode();
    }
    drop(keys);
    result
}

/// Lines on stdout; in raw mode a line needs its carriage return.
struct Out {
    raw: bool,
}

impl Out {
    fn new(raw: bool) -> Self {
        Self { raw }
    }
    fn line(&mut self, s: &str) {
        let mut o = std::io::stdout().lock();
        let _ = write!(o, "{s}{}", if self.raw { "\r\n" } else { "\n" });
        let _ = o.flush();
    }
}

/// An independent MQTT client on the embedded broker: prints every message.
async fn observe(broker: BrokerAddr, prefix: String, n_leds: u32, raw: bool) {
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
    let mut out = Out::new(raw);
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
                out.line(&line);
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Reads keys in raw mode: a digit clicks that button (pressed for 100 ms), q quits.
fn spawn_keys(board: Arc<SimBoard>, stop: oneshot::Sender<()>) -> std::thread::JoinHandle<()> {
    use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
    std::thread::spawn(move || {
        let mut stop = Some(stop);
        loop {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let Ok(TermEvent::Key(k)) = event::read() else {
                continue;
            };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            match k.code {
                KeyCode::Char('q') | KeyCode::Esc => break,
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => break,
                KeyCode::Char(c) if c.is_ascii_digit() => {
                    let input = c as u32 - '0' as u32;
                    if input < board.n_inputs() {
                        board.set_input(input, true);
                        let b = Arc::clone(&board);
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(100));
                            b.set_input(input, false);
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = stop.take() {
            let _ = s.send(());
        }
    })
}
