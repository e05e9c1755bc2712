//! `pynq-mqtt-bench publish-rate`: the quick measurement the bridge's design was
//! chosen on (host/README.md, "Figures"): the bridge drained from a pre-filled channel,
//! plain rumqttc, or pre-encoded raw writes, into a discard sink or through a broker to
//! a subscriber in this process. Fails when a message did not arrive.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pynq_mqtt_bridge::{BridgeIo, BridgeStats, Protocol};
use pynq_mqtt_driver::ButtonEvent;

use crate::{roles, wire};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Publisher {
    /// pynq-mqtt's publisher, its channel filled with N events and closed.
    Bridge,
    /// rumqttc 0.25, one awaited publish per event.
    Rumqttc,
    /// Pre-encoded PUBLISH packets: 64 KiB writes (QoS 0), a window of 1024 (QoS 1).
    Raw,
}

#[derive(Clone, Copy, Debug)]
pub enum Sink {
    /// A server in this process that answers CONNECT, SUBSCRIBE and QoS 1, drops the rest.
    Discard,
    /// A broker on 127.0.0.1 at this port, a subscriber in this process counting.
    Broker(u16),
}

impl std::str::FromStr for Sink {
    type Err = String;
    fn from_str(s: &str) -> Result<Sink, String> {
        if s == "discard" {
            return Ok(Sink::Discard);
        }
        s.strip_prefix("broker:")
            .and_then(|p| p.parse().ok())
            .map(Sink::Broker)
            .ok_or_else(|| format!("{s:?}: expected discard or broker:PORT"))
    }
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Discard => f.write_str("discard"),
            Sink::Broker(p) => write!(f, "broker:{p}"),
        }
    }
}

/// Runs `publisher` into `sink` with `n` events at QoS `qos` (0 or 1; 2 for the
/// bridge) and prints one line: when the publisher was done, and when the last
/// message was counted. `max_inflight` sets the bridge's window, `protocol` its MQTT
/// version.
pub fn run(
    publisher: Publisher,
    sink: Sink,
    n: u64,
    qos: u8,
    (max_inflight, protocol): (Option<usize>, Protocol),
) -> Result<()> {
    anyhow::ensure!(
        qos <= 1 || (qos == 2 && publisher == Publisher::Bridge),
        "qos {qos}: 0 or 1 (2 for the bridge)"
    );
    anyhow::ensure!(
        qos < 2 || matches!(sink, Sink::Broker(_)),
        "qos 2 needs a broker (the discard sink answers QoS 1 only)"
    );
    anyhow::ensure!(
        (max_inflight.is_none() && protocol == Protocol::V311) || publisher == Publisher::Bridge,
        "--max-inflight and --protocol are the bridge's"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (port, counted) = match sink {
        Sink::Discard => discard_sink()?,
        Sink::Broker(port) => (port, subscriber(port, n)?),
    };
    let t0 = Instant::now();
    match publisher {
        Publisher::Bridge => rt.block_on(bridge(port, n, qos, max_inflight, protocol))?,
        Publisher::Rumqttc => rt.block_on(rumqttc_pub(port, n, qos))?,
        Publisher::Raw if qos == 1 => raw_qos1(port, n)?,
        Publisher::Raw => raw(port, n)?,
    }
    let published = t0.elapsed();
    while counted.load(Ordering::Relaxed) < n {
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("only {} of {n} arrived", counted.load(Ordering::Relaxed));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let delivered = t0.elapsed();
    let mut window = match max_inflight {
        Some(w) => format!(" window {w}"),
        None => String::new(),
    };
    if publisher == Publisher::Bridge {
        window += &format!(" MQTT {protocol}");
    }
    println!(
        "{:8} -> {:12} qos {qos}{window} n {n}: publisher done {:.3} s ({:.0} msg/s), all counted {:.3} s ({:.0} msg/s)",
        format!("{publisher:?}").to_lowercase(),
        sink.to_string(),
        published.as_secs_f64(),
        n as f64 / published.as_secs_f64(),
        delivered.as_secs_f64(),
        n as f64 / delivered.as_secs_f64()
    );
    Ok(())
}

fn event(k: u64) -> ButtonEvent {
    ButtonEvent {
        input: (k % 4) as u8,
        level: k.is_multiple_of(2),
        ts_us: k,
        seq: k,
        synthetic: false,
        utc_us: None,
    }
}

fn topic(e: &ButtonEvent) -> String {
    format!("button/{}", e.input)
}

fn level(e: &ButtonEvent) -> &'static [u8] {
    if e.level {
        b"1"
    } else {
        b"0"
    }
}

/// The bridge, its channel filled with `n` events and closed, as at a shutdown.
async fn bridge(
    port: u16,
    n: u64,
    qos: u8,
    max_inflight: Option<usize>,
    protocol: Protocol,
) -> Result<()> {
    let (tx, rx) = crossbeam_channel::bounded(n as usize + 1);
    for k in 0..n {
        tx.send(event(k))?;
    }
    drop(tx);
    let (cmd_tx, _cmd_rx) = crossbeam_channel::bounded(16);
    let (_, led_rx) = crossbeam_channel::bounded(16);
    let mut cfg = roles::bridge_config(port, qos, false);
    cfg.client_id = "publish-rate-bridge".into();
    cfg.buffer_capacity = 65_536;
    if let Some(w) = max_inflight {
        cfg.max_inflight = w;
    }
    cfg.protocol = protocol;
    let io = BridgeIo::new(rx, cmd_tx, led_rx, 4, 4);
    let v = pynq_mqtt_bridge::run(cfg, io, Arc::new(BridgeStats::default())).await?;
    eprintln!(
        "bridge: published {} in {} writes ({:.0} per write), {} bytes ({:.2} bytes per message)",
        v.published,
        v.writes,
        v.published as f64 / v.writes.max(1) as f64,
        v.bytes_written,
        v.bytes_written as f64 / v.published.max(1) as f64
    );
    Ok(())
}

/// rumqttc 0.25 as the seed-like daemon would use it: one awaited publish per event.
async fn rumqttc_pub(port: u16, n: u64, qos: u8) -> Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Outgoing, Packet, QoS};
    let qos = if qos == 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let mut opts = MqttOptions::new("publish-rate-rumqttc", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(1024);
    let (client, mut el) = AsyncClient::new(opts, 1024);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    let acked = Arc::new(AtomicU64::new(0));
    let a = Arc::clone(&acked);
    let driver = tokio::spawn(async move {
        loop {
            match el.poll().await? {
                Event::Incoming(Packet::PubAck(_)) => {
                    a.fetch_add(1, Ordering::Relaxed);
                }
                Event::Outgoing(Outgoing::Disconnect) => return anyhow::Ok(()),
                _ => {}
            }
        }
    });
    for k in 0..n {
        let e = event(k);
        client.publish(topic(&e), qos, false, level(&e)).await?;
    }
    // rumqttc drops what is in flight at a disconnect: wait for the acknowledgements
    while qos == QoS::AtLeastOnce && acked.load(Ordering::Relaxed) < n {
        if driver.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    client.disconnect().await?;
    driver.await?
}

/// CONNECT, then the CONNACK read; a refused CONNECT is an error.
pub(crate) fn connect(port: u16, id: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).context("connect")?;
    s.set_nodelay(true)?;
    s.write_all(&wire::connect(id))?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).context("CONNACK")?;
    if ack[0] != 0x20 || ack[3] != 0 {
        anyhow::bail!("the broker refused the CONNECT of {id}: {ack:?}");
    }
    Ok(s)
}

/// DISCONNECT, then read until the peer closes.
fn close(mut s: TcpStream) -> Result<()> {
    s.write_all(&wire::DISCONNECT)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut rd = [0u8; 4096];
    while matches!(s.read(&mut rd), Ok(k) if k > 0) {}
    Ok(())
}

/// Pre-encoded QoS 1 PUBLISH packets, pipelined: a window of 1024, refilled with one
/// write after every read of acknowledgements.
fn raw_qos1(port: u16, n: u64) -> Result<()> {
    const WINDOW: u64 = 1024;
    let mut s = connect(port, "publish-rate-raw1")?;
    let packets: Vec<Vec<u8>> = (0..n)
        .map(|k| {
            let e = event(k);
            let mut b = Vec::new();
            wire::publish(&mut b, &topic(&e), level(&e), Some((k % 60_000 + 1) as u16));
            b
        })
        .collect();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut rbuf = Vec::new();
    let mut rd = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    while acked < n {
        out.clear();
        while sent < n && sent - acked < WINDOW {
            out.extend_from_slice(&packets[sent as usize]);
            sent += 1;
        }
        if !out.is_empty() {
            s.write_all(&out)?;
        }
        let k = s.read(&mut rd)?;
        if k == 0 {
            bail!("the broker closed the connection");
        }
        rbuf.extend_from_slice(&rd[..k]);
        while let Some((b0, h, l)) = wire::frame(&rbuf) {
            rbuf.drain(..h + l);
            if b0 & 0xf0 == 0x40 {
                acked += 1;
            }
        }
    }
    close(s)
}

/// Pre-encoded PUBLISH packets in 64 KiB writes: the ceiling.
fn raw(port: u16, n: u64) -> Result<()> {
    let s = connect(port, "publish-rate-raw")?;
    let mut out = Vec::with_capacity(n as usize * 14);
    for k in 0..n {
        let e = event(k);
        wire::publish(&mut out, &topic(&e), level(&e), None);
    }
    let t = Instant::now();
    for chunk in out.chunks(64 * 1024) {
        (&s).write_all(chunk)?;
    }
    eprintln!("raw: {:.3} s of writes", t.elapsed().as_secs_f64());
    close(s)
}

/// The bench's discard sink, one connection after another on a thread, counting the
/// PUBLISH packets on `button/...`.
fn discard_sink() -> Result<(u16, Arc<AtomicU64>)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    let counted = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counted);
    std::thread::spawn(move || {
        while roles::sink_one(&l, |_, body| {
            if body.get(2..9) == Some(b"button/") {
                c.fetch_add(1, Ordering::Relaxed);
            }
        })
        .is_ok()
        {}
    });
    Ok((port, counted))
}

/// A subscriber on the broker that counts button messages (`button/#`).
fn subscriber(port: u16, n: u64) -> Result<Arc<AtomicU64>> {
    let counted = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counted);
    let mut s = TcpStream::connect(("127.0.0.1", port)).context("subscriber connect")?;
    let mut hello = wire::connect(&format!("publish-rate-sub-{}", std::process::id()));
    hello.extend_from_slice(&wire::subscribe("button/#", 0));
    s.write_all(&hello)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(1 << 20);
        let mut rd = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        let mut ready = Some(tx);
        while got < n {
            let k = match s.read(&mut rd) {
                Ok(0) | Err(_) => return,
                Ok(k) => k,
            };
            buf.extend_from_slice(&rd[..k]);
            let (mut pos, mut add) = (0, 0);
            while let Some((b0, h, l)) = wire::frame(&buf[pos..]) {
                match b0 & 0xf0 {
                    0x90 => {
                        if let Some(t) = ready.take() {
                            let _ = t.send(());
                        }
                    }
                    0x30 => add += 1,
                    _ => {}
                }
                pos += h + l;
            }
            buf.drain(..pos);
            got += add;
            c.fetch_add(add, Ordering::Relaxed);
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .context("no SUBACK from the broker")?;
    Ok(counted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse_and_print_back() {
        for s in ["discard", "broker:1883"] {
            assert_eq!(s.parse::<Sink>().unwrap().to_string(), s);
        }
        assert!("broker:".parse::<Sink>().is_err());
        assert!("broker:70000".parse::<Sink>().is_err());
        assert!("mosquitto".parse::<Sink>().is_err());
    }
}
