//! The bridge as a library, in process, against the embedded broker (rumqttd) with
//! an independent subscriber (rumqttc's own client): every event of a pre-filled
//! channel arrives in order as its own PUBLISH, at QoS 0, 1 and 2, before `offline`;
//! far fewer writes than events; LED commands come back as `LedCommand`s.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use pynq_mqtt_bridge::{BridgeConfig, BridgeIo, BridgeStats, SessionMode};
use pynq_mqtt_driver::{Bell, ButtonEvent, LedAction, LedCommand, LedReport};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

fn start_broker() -> u16 {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = ServerSettings {
        name: "v4".into(),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: None,
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
    std::thread::spawn(move || {
        let _ = Broker::new(config).start();
    });
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return port;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("rumqttd did not start");
}

/// An independent subscriber: every message until `status` says `offline`.
async fn subscribe(
    port: u16,
    ready: tokio::sync::oneshot::Sender<AsyncClient>,
) -> Vec<(String, Vec<u8>)> {
    let mut opts = MqttOptions::new(format!("it-sub-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(opts, 1024);
    let mut ready = Some(ready);
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), el.poll()).await {
            Err(_) => panic!("subscriber: nothing for 30 s; got {}", got.len()),
            // rumqttd may refuse the first connects while it starts
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                client.subscribe("#", QoS::AtLeastOnce).await.unwrap();
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(client.clone());
                }
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let done = p.topic == "status" && &p.payload[..] == b"offline";
                got.push((p.topic.clone(), p.payload.to_vec()));
                if done {
                    return got;
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

fn event(k: u64) -> ButtonEvent {
    ButtonEvent {
        input: (k % 4) as u8,
        level: k % 8 < 4,
        ts_us: 1000 + k,
        seq: k,
        synthetic: false,
        utc_us: None,
    }
}

async fn run_once(qos: QoS, n: u64) {
    let port = start_broker();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sub = tokio::spawn(subscribe(port, ready_tx));
    let publisher = ready_rx.await.expect("subscriber ready");

    let (ev_tx, ev_rx) = crossbeam_channel::bounded(n as usize + 1);
    let (cmd_tx, cmd_rx) = crossbeam_channel::bounded::<LedCommand>(16);
    let (led_tx, led_rx) = crossbeam_channel::bounded::<LedReport>(16);
    led_tx.send(LedReport { led: 1, on: false }).unwrap();
    let mut cfg = BridgeConfig::new("127.0.0.1", port);
    cfg.client_id = format!("it-bridge-{port}");
    cfg.session = SessionMode::Persistent;
    cfg.qos = pynq_mqtt_bridge::Qos::try_from(qos as u8).unwrap();
    cfg.stats_interval = None;
    // the batching asserted below needs a window that lets batches form: the
    // default (16, under mosquitto's limit) caps a write at 16 events
    cfg.max_inflight = 1024;
    let stats = Arc::new(BridgeStats::default());
    // no level readings: this test is about the edges
    let bridge = tokio::spawn(pynq_mqtt_bridge::run(
        cfg,
        BridgeIo::new(ev_rx, cmd_tx, led_rx, 4, 4),
        Arc::clone(&stats),
    ));

    // an LED command from the subscriber's side comes down as a LedCommand
    let mut cmd = None;
    for _ in 0..100 {
        publisher
            .publish("led/1/set", QoS::AtLeastOnce, false, "toggle")
            .await
            .unwrap();
        if let Ok(c) = cmd_rx.recv_timeout(Duration::from_millis(100)) {
            cmd = Some(c);
            break;
        }
    }
    assert_eq!(
        cmd,
        Some(LedCommand {
            led: 1,
            action: LedAction::Toggle
        })
    );
    for k in 0..n {
        ev_tx.send(event(k)).unwrap();
    }
    // the driver stops: both channels close
    drop(ev_tx);
    drop(led_tx);
    let view = tokio::time::timeout(Duration::from_secs(60), bridge)
        .await
        .expect("bridge finished")
        .expect("bridge task")
        .expect("bridge ran");
    let got = sub.await.expect("subscriber");

    assert_eq!(view.published, n, "{view:?}");
    assert!(
        view.writes * 20 < n,
        "{} writes for {n} events",
        view.writes
    );
    let offline = got.len() - 1;
    let buttons: Vec<&(String, Vec<u8>)> = got[..offline]
        .iter()
        .filter(|(t, _)| t.starts_with("button/"))
        .collect();
    assert_eq!(buttons.len() as u64, n, "every event, before offline");
    for i in 0..4u8 {
        let mine: Vec<&[u8]> = buttons
            .iter()
            .filter(|(t, _)| *t == format!("button/{i}"))
            .map(|(_, p)| &p[..])
            .collect();
        let want: Vec<&[u8]> = (0..n)
            .map(event)
            .filter(|e| e.input == i)
            .map(|e| if e.level { &b"1"[..] } else { &b"0"[..] })
            .collect();
        assert!(mine == want, "input {i}: not every event in order");
    }
    assert!(
        got.iter().any(|(t, p)| t == "led/1" && p == b"0"),
        "LED state published"
    );
    assert!(got.iter().any(|(t, p)| t == "status" && p == b"online"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_every_event_in_order_before_offline() {
    run_once(QoS::AtMostOnce, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_every_event_in_order_before_offline() {
    run_once(QoS::AtLeastOnce, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_every_event_in_order_before_offline() {
    run_once(QoS::ExactlyOnce, 5_000).await;
}

/// The driver stops while the link is idle: its two channels close one after the
/// other (one thread each), so the link may see the first close on one look and the
/// second on the next, inside the same turn of its loop. The run must end at once
/// (offline, DISCONNECT) whenever the second close lands, not at the next keepalive.
/// 200 stops, the gap between the two closes spread from 0 to 400 us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_stopping_while_the_link_is_idle_ends_the_run_at_once() {
    stops_end_the_run_at_once(false).await;
}

/// The same with the driver's bell, as the daemon runs: no thread of the bridge
/// watches the channels, and the driver's threads ring once their channel closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_stopping_while_the_link_is_idle_ends_the_run_at_once_with_the_bell() {
    stops_end_the_run_at_once(true).await;
}

async fn stops_end_the_run_at_once(with_bell: bool) {
    let port = start_broker();
    for round in 0..200u64 {
        let (ev_tx, ev_rx) = crossbeam_channel::bounded::<ButtonEvent>(16);
        let (cmd_tx, _cmd_rx) = crossbeam_channel::bounded::<LedCommand>(16);
        let (led_tx, led_rx) = crossbeam_channel::bounded::<LedReport>(16);
        let mut cfg = BridgeConfig::new("127.0.0.1", port);
        cfg.client_id = format!("it-stop-{port}-{round}");
        cfg.stats_interval = None;
        // neither the keepalive nor the stop's grace may be what ends the run
        cfg.keep_alive = Duration::from_secs(3600);
        cfg.shutdown_timeout = Duration::from_secs(3600);
        let stats = Arc::new(BridgeStats::default());
        let bell = with_bell.then(Bell::default);
        let bridge = tokio::spawn(pynq_mqtt_bridge::run(
            cfg,
            BridgeIo {
                bell: bell.clone(),
                ..BridgeIo::new(ev_rx, cmd_tx, led_rx, 4, 4)
            },
            Arc::clone(&stats),
        ));
        let connected = std::time::Instant::now();
        while stats.connects.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            assert!(
                connected.elapsed() < Duration::from_secs(30),
                "round {round}: no CONNACK"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(b) = &bell {
            assert!(
                !b.set_hook(|| {}),
                "round {round}: the bridge did not take the bell"
            );
        }
        // let the link settle into its idle wait, then stop the "driver"
        tokio::time::sleep(Duration::from_millis(2)).await;
        let gap = Duration::from_micros(round * 2);
        std::thread::spawn(move || {
            drop(ev_tx);
            if let Some(b) = &bell {
                b.ring();
            }
            let t = std::time::Instant::now();
            while t.elapsed() < gap {
                std::hint::spin_loop();
            }
            drop(led_tx);
            if let Some(b) = &bell {
                b.ring();
            }
        });
        let view = tokio::time::timeout(Duration::from_secs(10), bridge)
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: the run did not end after the driver stopped")
            })
            .expect("bridge task")
            .expect("bridge ran");
        assert_eq!(view.published, 0, "{view:?}");
    }
}

/// With the driver's bell the link wakes on a ring and on nothing else: an event sent
/// without one waits (no thread watches the channel), a ring sends it, and the rings of
/// a busy link lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_bell_a_ring_wakes_the_link_and_nothing_else_does() {
    let port = start_broker();
    let (ev_tx, ev_rx) = crossbeam_channel::bounded::<ButtonEvent>(1024);
    let (cmd_tx, _cmd_rx) = crossbeam_channel::bounded::<LedCommand>(16);
    let (led_tx, led_rx) = crossbeam_channel::bounded::<LedReport>(16);
    let mut cfg = BridgeConfig::new("127.0.0.1", port);
    cfg.client_id = format!("it-bell-{port}");
    cfg.stats_interval = None;
    cfg.keep_alive = Duration::from_secs(3600);
    let stats = Arc::new(BridgeStats::default());
    let bell = Bell::default();
    let bridge = tokio::spawn(pynq_mqtt_bridge::run(
        cfg,
        BridgeIo {
            bell: Some(bell.clone()),
            ..BridgeIo::new(ev_rx, cmd_tx, led_rx, 4, 4)
        },
        Arc::clone(&stats),
    ));
    let published = || stats.published.load(std::sync::atomic::Ordering::Relaxed);
    let until = |n: u64| async move {
        let t = std::time::Instant::now();
        while published() < n && t.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        published()
    };
    while stats.connects.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // settle into the idle wait (the broker's answers to the start, SUBACK and the
    // like, are all in by then), then an event without a ring: it stays in the channel
    tokio::time::sleep(Duration::from_millis(500)).await;
    ev_tx.send(event(0)).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        published(),
        0,
        "published without a ring: something else watches"
    );
    bell.ring();
    assert_eq!(until(1).await, 1, "a ring did not wake the link");
    // a feeder that rings after every batch of 8, while the link is busy or not
    let feeder = {
        let bell = bell.clone();
        std::thread::spawn(move || {
            for k in 1..=4000u64 {
                ev_tx.send(event(k)).unwrap();
                if k % 8 == 0 {
                    bell.ring();
                }
            }
            drop(ev_tx);
            bell.ring();
        })
    };
    feeder.join().unwrap();
    assert_eq!(until(4001).await, 4001, "rings lost events");
    drop(led_tx);
    bell.ring();
    let view = tokio::time::timeout(Duration::from_secs(10), bridge)
        .await
        .expect("the run ends on the last ring")
        .expect("bridge task")
        .expect("bridge ran");
    assert_eq!(view.published, 4001, "{view:?}");
}
