//! Publish-rate measurement behind the bridge's design (host/README.md): the bridge
//! fed from a pre-filled channel, plain rumqttc (one `publish().await` per message),
//! and pre-encoded raw writes, into a discard sink or through a broker to a
//! subscriber. Not a test and not the project's benchmark (benches/): a quick,
//! reproducible figure for one design question.
//!
//! ```text
//! cargo run --release -p pynq-mqtt-bridge --example publish_rate -- bridge discard 1000000
//! cargo run --release -p pynq-mqtt-bridge --example publish_rate -- rumqttc broker:1883 1000000 [qos]
//! ```
//! Publishers: `bridge`, `rumqttc`, `raw`. Sinks: `discard` (an in-process server
//! that answers CONNECT/SUBSCRIBE/QoS 1 and drops the rest) or `broker:PORT` (a
//! broker on 127.0.0.1, with a subscriber in this process counting deliveries).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pynq_mqtt_bridge::{BridgeConfig, BridgeIo, BridgeStats, SessionMode};
use pynq_mqtt_driver::{ButtonEvent, Stats};
use rumqttc::mqttbytes::v4::SubscribeReasonCode;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, Subscribe,
};
use rumqttc::QoS;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let publisher = args
        .first()
        .map(String::as_str)
        .unwrap_or("bridge")
        .to_owned();
    let sink = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("discard")
        .to_owned();
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let qos = match args.get(3).map(String::as_str) {
        Some("1") => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    let (port, counted): (u16, Arc<AtomicU64>) = if sink == "discard" {
        discard_sink()
    } else {
        let port: u16 = sink
            .strip_prefix("broker:")
            .and_then(|p| p.parse().ok())
            .expect("sink: discard or broker:PORT");
        (port, subscriber(port, n))
    };
    let t0 = Instant::now();
    match publisher.as_str() {
        "bridge" => rt.block_on(bridge(port, n, qos)),
        "rumqttc" => rt.block_on(rumqttc_pub(port, n, qos)),
        "raw" if qos == QoS::AtLeastOnce => raw_qos1(port, n),
        "raw" => raw(port, n),
        other => panic!("publisher {other:?}: bridge, rumqttc or raw"),
    }
    let published = t0.elapsed();
    while counted.load(Ordering::Relaxed) < n {
        if t0.elapsed() > Duration::from_secs(120) {
            panic!("only {} of {n} arrived", counted.load(Ordering::Relaxed));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let delivered = t0.elapsed();
    println!(
        "{publisher:8} -> {sink:12} qos {} n {n}: publisher done {:.3} s ({:.0} msg/s), all counted {:.3} s ({:.0} msg/s)",
        qos as u8,
        published.as_secs_f64(),
        n as f64 / published.as_secs_f64(),
        delivered.as_secs_f64(),
        n as f64 / delivered.as_secs_f64()
    );
}

fn event(k: u64) -> ButtonEvent {
    ButtonEvent {
        input: (k % 4) as u8,
        level: k.is_multiple_of(2),
        ts_us: k,
        seq: k,
        synthetic: false,
    }
}

/// The bridge, its channel filled with `n` events and closed, as at a shutdown.
async fn bridge(port: u16, n: u64, qos: QoS) {
    let (tx, rx) = crossbeam_channel::bounded(n as usize + 1);
    for k in 0..n {
        tx.send(event(k)).expect("send");
    }
    drop(tx);
    let (cmd_tx, _cmd_rx) = crossbeam_channel::bounded(16);
    let (led_tx, led_rx) = crossbeam_channel::bounded(16);
    drop(led_tx);
    let mut cfg = BridgeConfig::new("127.0.0.1", port);
    cfg.client_id = "publish-rate-bridge".into();
    cfg.session = SessionMode::Clean;
    cfg.qos = pynq_mqtt_bridge::Qos::try_from(qos as u8).expect("0, 1 or 2");
    cfg.stats_interval = None;
    cfg.buffer_capacity = 65_536;
    cfg.shutdown_timeout = Duration::from_secs(120);
    let stats = Arc::new(BridgeStats::default());
    let io = BridgeIo {
        events: rx,
        commands: cmd_tx,
        leds: led_rx,
        n_inputs: 4,
        n_leds: 4,
        driver_stats: Arc::new(Stats::default()),
    };
    let v = pynq_mqtt_bridge::run(cfg, io, stats).await.expect("bridge");
    eprintln!(
        "bridge: published {} in {} writes ({:.0} per write)",
        v.published,
        v.writes,
        v.published as f64 / v.writes.max(1) as f64
    );
}

/// rumqttc 0.25 as the seed-like daemon would use it: one awaited publish per event.
async fn rumqttc_pub(port: u16, n: u64, qos: QoS) {
    let mut opts = rumqttc::MqttOptions::new("publish-rate-rumqttc", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(1024);
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 1024);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    let acked = Arc::new(AtomicU64::new(0));
    let a = Arc::clone(&acked);
    let driver = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    a.fetch_add(1, Ordering::Relaxed);
                }
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => panic!("rumqttc: {e}"),
            }
        }
    });
    for k in 0..n {
        let e = event(k);
        client
            .publish(
                format!("button/{}", e.input),
                qos,
                false,
                if e.level { "1" } else { "0" },
            )
            .await
            .expect("publish");
    }
    // rumqttc drops what is in flight at a disconnect: wait for the acknowledgements
    while qos == QoS::AtLeastOnce && acked.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    client.disconnect().await.expect("disconnect");
    driver.await.expect("event loop");
}

/// Pre-encoded QoS 1 PUBLISH packets, pipelined: a window of 1024, refilled with one
/// write after every read of acknowledgements.
fn raw_qos1(port: u16, n: u64) {
    const WINDOW: u64 = 1024;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).ok();
    let mut buf = BytesMut::new();
    rumqttc::mqttbytes::v4::Connect::new("publish-rate-raw1")
        .write(&mut buf)
        .expect("connect");
    s.write_all(&buf).expect("write");
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).expect("connack");
    let packets: Vec<BytesMut> = (0..n)
        .map(|k| {
            let e = event(k);
            let mut p = Publish::new(
                format!("button/{}", e.input),
                QoS::AtLeastOnce,
                if e.level { "1" } else { "0" },
            );
            p.pkid = (k % 60_000 + 1) as u16;
            let mut b = BytesMut::new();
            p.write(&mut b).expect("encode");
            b
        })
        .collect();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut rbuf = BytesMut::new();
    let mut rd = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    while acked < n {
        out.clear();
        while sent < n && sent - acked < WINDOW {
            out.extend_from_slice(&packets[sent as usize]);
            sent += 1;
        }
        if !out.is_empty() {
            s.write_all(&out).expect("write");
        }
        let k = s.read(&mut rd).expect("read");
        assert!(k > 0, "broker closed");
        rbuf.extend_from_slice(&rd[..k]);
        frames(&mut rbuf, |p| {
            if let Packet::PubAck(_) = p {
                acked += 1;
            }
        });
    }
    s.write_all(&[0xE0, 0]).expect("disconnect");
    let _ = s.shutdown(std::net::Shutdown::Write);
    while matches!(s.read(&mut rd), Ok(k) if k > 0) {}
}

/// Pre-encoded PUBLISH packets in 64 KiB writes: the ceiling.
fn raw(port: u16, n: u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).ok();
    let mut buf = BytesMut::new();
    rumqttc::mqttbytes::v4::Connect::new("publish-rate-raw")
        .write(&mut buf)
        .expect("connect");
    s.write_all(&buf).expect("write");
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).expect("connack");
    let mut out = BytesMut::with_capacity(n as usize * 14);
    for k in 0..n {
        let e = event(k);
        Publish::new(
            format!("button/{}", e.input),
            QoS::AtMostOnce,
            if e.level { "1" } else { "0" },
        )
        .write(&mut out)
        .expect("encode");
    }
    let t = Instant::now();
    for chunk in out.chunks(64 * 1024) {
        s.write_all(chunk).expect("write");
    }
    s.write_all(&[0xE0, 0]).expect("disconnect");
    eprintln!("raw: {:.3} s of writes", t.elapsed().as_secs_f64());
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 64];
    while matches!(s.read(&mut sink), Ok(k) if k > 0) {}
}

/// Frames packets off `buf`, giving each to `f`.
fn frames(buf: &mut BytesMut, mut f: impl FnMut(Packet)) {
    while let Ok(p) = Packet::read(buf, 1 << 20) {
        f(p);
    }
}

/// A server that speaks just enough MQTT and counts what it drops.
fn discard_sink() -> (u16, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let counted = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counted);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let mut buf = BytesMut::with_capacity(1 << 20);
                let mut rd = vec![0u8; 256 * 1024];
                let mut out = BytesMut::new();
                loop {
                    let k = match s.read(&mut rd) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => k,
                    };
                    buf.extend_from_slice(&rd[..k]);
                    let mut publishes = 0;
                    let mut closing = false;
                    frames(&mut buf, |p| match p {
                        Packet::Connect(_) => {
                            let _ = ConnAck::new(ConnectReturnCode::Success, false).write(&mut out);
                        }
                        Packet::Subscribe(sub) => {
                            let _ = SubAck::new(
                                sub.pkid,
                                vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                            )
                            .write(&mut out);
                        }
                        Packet::Publish(p) => {
                            if p.topic.contains("button/") {
                                publishes += 1;
                            }
                            if p.qos == QoS::AtLeastOnce {
                                let _ = PubAck::new(p.pkid).write(&mut out);
                            }
                        }
                        Packet::PingReq => out.extend_from_slice(&[0xD0, 0]),
                        Packet::Disconnect => closing = true,
                        _ => {}
                    });
                    c.fetch_add(publishes, Ordering::Relaxed);
                    if !out.is_empty() {
                        let _ = s.write_all(&out);
                        out.clear();
                    }
                    if closing {
                        return;
                    }
                }
            });
        }
    });
    (port, counted)
}

/// A subscriber on the broker that counts button messages.
fn subscriber(port: u16, n: u64) -> Arc<AtomicU64> {
    let counted = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counted);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("subscriber connect");
    let mut buf = BytesMut::new();
    rumqttc::mqttbytes::v4::Connect::new(format!("publish-rate-sub-{}", std::process::id()))
        .write(&mut buf)
        .expect("connect");
    let mut sub = Subscribe::new("button/#", QoS::AtMostOnce);
    sub.pkid = 1;
    sub.write(&mut buf).expect("subscribe");
    s.write_all(&buf).expect("write");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = BytesMut::with_capacity(1 << 20);
        let mut rd = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        let mut ready = Some(tx);
        while got < n {
            let k = match s.read(&mut rd) {
                Ok(0) | Err(_) => return,
                Ok(k) => k,
            };
            buf.extend_from_slice(&rd[..k]);
            let mut add = 0;
            frames(&mut buf, |p| match p {
                Packet::SubAck(_) => {
                    if let Some(t) = ready.take() {
                        let _ = t.send(());
                    }
                }
                Packet::Publish(_) => add += 1,
                _ => {}
            });
            got += add;
            c.fetch_add(add, Ordering::Relaxed);
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("SUBACK");
    counted
}
