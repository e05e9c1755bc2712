//! The publisher: one MQTT connection, owned end to end by one task.
//!
//! Hot path, per batch: take events from the driver's channel into the retry buffer
//! ([`Outbox`]), encode a PUBLISH for each into one buffer, hand the buffer to the
//! socket in one write. The read side (acknowledgements, LED commands) is polled in
//! the same `select!`, so a large write never holds up acknowledgements for long.
//!
//! Across connections: the buffer keeps every unfinished event and resends it, in
//! order, after a reconnect (exponential backoff with jitter, capped); subscriptions,
//! `online`, the LED states and the discovery configs are sent again on every
//! connection. While the broker is away the channel is still drained into the buffer,
//! so losses during an outage are counted here (`retry_buffer`), not in the driver.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use pynq_mqtt_driver::{ButtonEvent, LedAction, LedCommand, LedReport, Stats as DriverStats};
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet, SubscribeReasonCode};
use rumqttc::mqttbytes::{matches as topic_matches, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, Instant as TokioInstant, Interval, MissedTickBehavior, Sleep};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::{BridgeConfig, RuleLeds, SessionMode};
use crate::outbox::{Next, Outbox, EVENT_PKIDS};
use crate::payload::{parse_command, printable};
use crate::stats::{add, BridgeStats, StatsReport};
use crate::topics::{LedTarget, Topics};
use crate::transport::{self, describe_io, ConnectError, Reader, Tls, Writer};
use crate::waker::Waker;
use crate::wire::{self, ConnectSpec, EventEncoder, Incoming};
use crate::{discovery, BridgeError};

/// A batch buffer is filled up to about this many bytes before it is written.
const BATCH_BYTES: usize = 64 * 1024;
/// Events taken from the channel at a time.
const PULL_CHUNK: usize = 4096;
/// How long the broker may take to close the connection after our DISCONNECT.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How a connection ended.
enum End {
    /// DISCONNECT sent and the broker closed: the run is over.
    Finished,
    /// The connection broke; try again.
    Lost(String),
}

/// Why a connection attempt failed.
enum ConnectFail {
    Transient(String),
    /// Retrying will not help (refused credentials, untrusted certificate).
    Permanent(String),
}

/// Everything the publisher keeps across connections.
pub(crate) struct Publisher {
    cfg: Arc<BridgeConfig>,
    tls: Option<Tls>,
    topics: Topics,
    enc: EventEncoder,
    outbox: Outbox,
    events: Receiver<ButtonEvent>,
    leds: Receiver<LedReport>,
    events_open: bool,
    leds_open: bool,
    commands: Sender<LedCommand>,
    led_state: Vec<Option<bool>>,
    stats: Arc<BridgeStats>,
    driver_stats: Arc<DriverStats>,
    waker: Waker,
    report: StatsReport,
    stats_tick: Option<Interval>,
    subscriptions: Vec<(String, QoS)>,
    discovery: Vec<(String, String)>,
    ha_status: Option<String>,
    next_ctrl: u16,
    /// Persistent sessions: the first connection of the process starts fresh.
    fresh_session_done: bool,
    ever_connected: bool,
    /// Set when the driver has stopped: the end of the shutdown grace period.
    finish_by: Option<Instant>,
    gave_up: bool,
    last_drop_warning: Option<Instant>,
    drops_since_warning: u64,
    recent_in: RecentIds,
}

/// The last QoS 1/2 messages acted on (packet id and a hash of topic and payload):
/// a copy the broker sends again with `dup` after a reconnect (our PUBACK was lost)
/// is acknowledged, not acted on twice (a `toggle` twice would undo itself). The
/// hash keeps a broker that reuses ids at once from having a different message taken
/// for a copy.
#[derive(Debug, Default)]
struct RecentIds(std::collections::VecDeque<(u16, u64)>);

impl RecentIds {
    const KEEP: usize = 256;

    /// True when this message was already acted on; otherwise remembers it.
    fn repeated(&mut self, qos: QoS, dup: bool, pkid: u16, topic: &str, payload: &[u8]) -> bool {
        if qos == QoS::AtMostOnce {
            return false;
        }
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        topic.hash(&mut h);
        payload.hash(&mut h);
        let key = (pkid, h.finish());
        if dup && self.0.contains(&key) {
            return true;
        }
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back(key);
        false
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// One live connection.
struct Conn {
    rd: Reader,
    wr: Writer,
    tls: bool,
    rbuf: BytesMut,
    /// The batch being written, `wbuf[wpos..]` still to go.
    wbuf: BytesMut,
    wpos: usize,
    /// QoS 0: end offset in `wbuf` of each event in it.
    ends: Vec<usize>,
    ends_done: usize,
    /// Control packets waiting for the next batch.
    ctrl: BytesMut,
    flush_pending: bool,
    last_write: Instant,
    ping_sent: Option<Instant>,
    timer: std::pin::Pin<Box<Sleep>>,
    offline_pkid: Option<u16>,
    offline_acked: bool,
    disconnect_queued: bool,
    sub_pkid: u16,
    /// Bytes still to drop of a packet too large to read.
    skip: usize,
}

impl Publisher {
    pub fn new(
        cfg: BridgeConfig,
        tls: Option<Tls>,
        io: crate::BridgeIo,
        stats: Arc<BridgeStats>,
    ) -> Result<Self, BridgeError> {
        let topics = Topics::new(&cfg.topics, io.n_inputs, io.n_leds);
        let enc = EventEncoder::new(&topics, cfg.qos, cfg.payload);
        let outbox = Outbox::new(cfg.buffer_capacity, cfg.qos, cfg.max_inflight);
        let waker = Waker::spawn(&io.events, &io.leds).map_err(BridgeError::Thread)?;
        let mut subscriptions = vec![
            (topics.led_set_filter().to_owned(), QoS::AtLeastOnce),
            (topics.led_set_all().to_owned(), QoS::AtLeastOnce),
        ];
        for r in &cfg.rules {
            let f = format!("{}{}", topics.prefix(), r.topic);
            if !subscriptions.iter().any(|(s, _)| *s == f) {
                subscriptions.push((f, QoS::AtLeastOnce));
            }
        }
        let (discovery, ha_status) = match &cfg.discovery {
            Some(d) => {
                let status = discovery::ha_status_topic(d);
                subscriptions.push((status.clone(), QoS::AtLeastOnce));
                (
                    discovery::configs(d, &topics, &cfg.client_id, cfg.payload),
                    Some(status),
                )
            }
            None => (Vec::new(), None),
        };
        let stats_tick = cfg.stats_interval.map(|every| {
            let mut t = tokio::time::interval_at(TokioInstant::now() + every, every);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        Ok(Self {
            led_state: vec![None; usize::from(io.n_leds)],
            topics,
            enc,
            outbox,
            events: io.events,
            leds: io.leds,
            events_open: true,
            leds_open: true,
            commands: io.commands,
            stats,
            driver_stats: io.driver_stats,
            waker,
            report: StatsReport::new(),
            stats_tick,
            subscriptions,
            discovery,
            ha_status,
            next_ctrl: EVENT_PKIDS,
            fresh_session_done: cfg.session == SessionMode::Clean,
            ever_connected: false,
            finish_by: None,
            gave_up: false,
            last_drop_warning: None,
            drops_since_warning: 0,
            recent_in: RecentIds::default(),
            tls,
            cfg: Arc::new(cfg),
        })
    }

    /// Runs until the driver has stopped and everything is delivered (or given up on).
    pub async fn run(mut self) -> Result<(), BridgeError> {
        let url = self.cfg.broker_url();
        let mut backoff = Backoff::new(self.cfg.reconnect_min, self.cfg.reconnect_max);
        loop {
            if self.driver_done() && self.outbox.is_empty() {
                // stopping with nothing left to send and no connection: the broker
                // has published our last will (`offline`) if we ever were online
                return Ok(());
            }
            match self.connect().await {
                Ok((c, session_present)) => {
                    let started = Instant::now();
                    add(&self.stats.connects, 1);
                    info!(
                        broker = %url,
                        session_present,
                        buffered = self.outbox.len(),
                        "connected to broker"
                    );
                    self.ever_connected = true;
                    match self.serve(c, session_present).await {
                        End::Finished => return Ok(()),
                        End::Lost(why) => {
                            add(&self.stats.connection_errors, 1);
                            warn!(
                                broker = %url,
                                buffered = self.outbox.len(),
                                "connection to broker lost: {why}"
                            );
                        }
                    }
                    // a connection that lasted is a fresh start for the backoff; one
                    // that the broker closes at once (refusing something) is not
                    if started.elapsed() > Duration::from_secs(5) {
                        backoff.reset();
                    }
                }
                Err(ConnectFail::Permanent(why)) if !self.ever_connected => {
                    return Err(BridgeError::Connect(format!("broker {url}: {why}")));
                }
                Err(ConnectFail::Permanent(why)) | Err(ConnectFail::Transient(why)) => {
                    add(&self.stats.connection_errors, 1);
                    warn!(broker = %url, buffered = self.outbox.len(), "cannot connect to broker: {why}");
                }
            }
            if self.gave_up {
                return Ok(());
            }
            let delay = backoff.next_delay();
            debug!("reconnecting in {delay:?}");
            if self.wait_offline(delay).await {
                return Ok(());
            }
        }
    }

    fn driver_done(&self) -> bool {
        !self.events_open && !self.leds_open
    }

    /// Waits `delay` while keeping the channels drained; true when the run is over.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let until = TokioInstant::now() + delay;
        loop {
            self.pull(false);
            if self.check_deadline() {
                return true;
            }
            if self.driver_done() && self.outbox.is_empty() {
                return true;
            }
            let deadline = match self.finish_by {
                Some(f) => until.min(TokioInstant::from_std(f)),
                None => until,
            };
            tokio::select! {
                () = sleep_until(deadline) => {
                    if TokioInstant::now() >= until {
                        return false;
                    }
                }
                () = self.waker.notified() => {}
            }
        }
    }

    /// Past the shutdown grace period: what is still buffered is dropped (counted
    /// and logged). True when the run should end now.
    fn check_deadline(&mut self) -> bool {
        let Some(by) = self.finish_by else {
            return false;
        };
        if Instant::now() < by {
            return false;
        }
        if !self.gave_up {
            let n = self.outbox.clear() as u64;
            add(&self.stats.dropped_shutdown, n);
            self.stats
                .buffered
                .store(0, std::sync::atomic::Ordering::Relaxed);
            if n > 0 {
                error!(
                    lost = n,
                    "broker did not take the remaining events within {:?}; they are dropped",
                    self.cfg.shutdown_timeout
                );
            }
            self.gave_up = true;
            // a little more time to say `offline` on a live connection
            self.finish_by = Some(Instant::now() + CLOSE_WAIT);
            return false;
        }
        true
    }

    /// Moves events from the driver's channel into the buffer and LED states into
    /// `ctrl` (when connected). Returns the number of events taken.
    fn pull(&mut self, connected: bool) -> usize {
        self.pull_into(connected, None)
    }

    fn pull_into(&mut self, connected: bool, mut ctrl: Option<&mut BytesMut>) -> usize {
        let mut taken = 0;
        let mut dropped = 0u64;
        let mut empty = !self.events_open;
        if self.events_open {
            while taken < PULL_CHUNK {
                if connected && !self.outbox.has_room() {
                    // the broker is slow: leave the rest in the channel (back-pressure)
                    break;
                }
                match self.events.try_recv() {
                    Ok(ev) => {
                        taken += 1;
                        if self.outbox.push(ev).is_err() {
                            dropped += 1;
                        }
                    }
                    Err(TryRecvError::Empty) => {
                        empty = true;
                        break;
                    }
                    Err(TryRecvError::Disconnected) => {
                        self.events_open = false;
                        self.waker.set_closed(true, false);
                        empty = true;
                        break;
                    }
                }
            }
        }
        let mut leds_empty = !self.leds_open;
        while self.leds_open {
            match self.leds.try_recv() {
                Ok(r) => {
                    if let Some(slot) = self.led_state.get_mut(usize::from(r.led)) {
                        *slot = Some(r.on);
                    }
                    if let Some(c) = ctrl.as_deref_mut() {
                        let pkid = next_ctrl(&mut self.next_ctrl);
                        wire::publish(
                            c,
                            &self.topics.led(r.led),
                            QoS::AtLeastOnce,
                            true,
                            pkid,
                            if r.on { b"1" } else { b"0" },
                        );
                    }
                }
                Err(TryRecvError::Empty) => {
                    leds_empty = true;
                    break;
                }
                Err(TryRecvError::Disconnected) => {
                    self.leds_open = false;
                    self.waker.set_closed(false, true);
                    leds_empty = true;
                    break;
                }
            }
        }
        if empty && leds_empty {
            self.waker.arm();
        }
        if self.driver_done() && self.finish_by.is_none() {
            self.finish_by = Some(Instant::now() + self.cfg.shutdown_timeout);
        }
        add(&self.stats.taken, taken as u64);
        if dropped > 0 {
            self.note_drops(dropped);
        }
        self.stats.buffered.store(
            self.outbox.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        taken
    }

    /// Counts events dropped on a full buffer; logs at most every few seconds.
    fn note_drops(&mut self, n: u64) {
        add(&self.stats.dropped_buffer, n);
        self.drops_since_warning += n;
        let due = match self.last_drop_warning {
            None => true,
            Some(t) => t.elapsed() > Duration::from_secs(5),
        };
        if due {
            warn!(
                dropped = self.drops_since_warning,
                capacity = self.outbox.capacity(),
                "retry buffer full while the broker is unreachable: new events are dropped \
                 (raise buffer_capacity to hold longer outages)"
            );
            self.last_drop_warning = Some(Instant::now());
            self.drops_since_warning = 0;
        }
    }

    /// One connection attempt (two for the first persistent one), with the channels
    /// drained meanwhile.
    async fn connect(&mut self) -> Result<(Conn, bool), ConnectFail> {
        let cfg = Arc::clone(&self.cfg);
        let tls = self.tls.clone();
        let fresh_first = !self.fresh_session_done;
        let attempt = async move {
            if fresh_first {
                // drop what an earlier process left in our session (stale LED
                // commands, half-done QoS 2 ids), then start the persistent one
                let (rd, mut wr, _, _) = connect_once(&cfg, tls.as_ref(), true, true).await?;
                let mut b = BytesMut::new();
                wire::disconnect(&mut b);
                let _ = wr.write_all(&b).await;
                let _ = wr.shutdown().await;
                drain_until_close(rd).await;
            }
            let clean = cfg.session == SessionMode::Clean;
            connect_once(&cfg, tls.as_ref(), clean, true).await
        };
        tokio::pin!(attempt);
        let (rd, wr, rbuf, session_present) = loop {
            // a stop's grace period also bounds a connection attempt
            let give_up = self.finish_by.map(TokioInstant::from_std);
            tokio::select! {
                r = &mut attempt => break r?,
                () = self.waker.notified() => { self.pull(false); }
                () = sleep_until_opt(give_up) => {
                    return Err(ConnectFail::Transient("stopping: no time left to connect".into()));
                }
            }
        };
        self.fresh_session_done = true;
        let now = Instant::now();
        Ok((
            Conn {
                rd,
                wr,
                tls: self.tls.is_some(),
                rbuf,
                wbuf: BytesMut::with_capacity(BATCH_BYTES + 4096),
                wpos: 0,
                ends: Vec::new(),
                ends_done: 0,
                ctrl: BytesMut::with_capacity(4096),
                flush_pending: false,
                last_write: now,
                ping_sent: None,
                timer: Box::pin(sleep_until(TokioInstant::from_std(
                    now + self.cfg.keep_alive,
                ))),
                offline_pkid: None,
                offline_acked: false,
                disconnect_queued: false,
                sub_pkid: 0,
                skip: 0,
            },
            session_present,
        ))
    }

    /// Subscriptions, `online`, LED states and discovery: on every connection.
    fn announce(&mut self, c: &mut Conn) {
        c.sub_pkid = next_ctrl(&mut self.next_ctrl);
        wire::subscribe(&mut c.ctrl, c.sub_pkid, &self.subscriptions);
        if !self.driver_done() {
            let pkid = next_ctrl(&mut self.next_ctrl);
            wire::publish(
                &mut c.ctrl,
                self.topics.status(),
                QoS::AtLeastOnce,
                true,
                pkid,
                b"online",
            );
        }
        for (i, s) in self.led_state.iter().enumerate() {
            if let Some(on) = s {
                let pkid = next_ctrl(&mut self.next_ctrl);
                wire::publish(
                    &mut c.ctrl,
                    &self.topics.led(i as u8),
                    QoS::AtLeastOnce,
                    true,
                    pkid,
                    if *on { b"1" } else { b"0" },
                );
            }
        }
        self.queue_discovery(c);
    }

    fn queue_discovery(&mut self, c: &mut Conn) {
        for (topic, body) in &self.discovery {
            let pkid = next_ctrl(&mut self.next_ctrl);
            wire::publish(
                &mut c.ctrl,
                topic,
                QoS::AtLeastOnce,
                true,
                pkid,
                body.as_bytes(),
            );
        }
    }

    /// Serves one connection until it breaks or the run is over.
    async fn serve(&mut self, mut c: Conn, session_present: bool) -> End {
        self.outbox.rewind(session_present);
        if !session_present {
            // a new session numbers the broker's messages afresh
            self.recent_in.clear();
        }
        let resend = self.outbox.inflight();
        if resend > 0 {
            info!(events = resend, "sending unacknowledged events again");
        }
        self.announce(&mut c);
        loop {
            self.pull_into(true, Some(&mut c.ctrl));
            if self.check_deadline() {
                return End::Finished;
            }
            self.check_finish(&mut c);
            if c.wpos == c.wbuf.len() && !c.flush_pending {
                self.refill(&mut c);
                if c.wbuf.is_empty() && c.disconnect_queued {
                    return close(c).await;
                }
            }
            if c.rbuf.capacity() - c.rbuf.len() < 2048 {
                c.rbuf.reserve(16 * 1024);
            }
            let idle = c.wpos == c.wbuf.len() && !c.flush_pending;
            let stats_tick = self.stats_tick.as_mut();
            tokio::select! {
                biased;
                r = c.rd.read_buf(&mut c.rbuf) => match r {
                    Ok(0) => return End::Lost("the broker closed the connection".into()),
                    Ok(_) => {
                        if let Err(e) = self.on_read(&mut c) {
                            return End::Lost(e);
                        }
                    }
                    Err(e) => return End::Lost(describe_io(&e, self.tls.as_ref())),
                },
                r = write_or_flush(&mut c.wr, &c.wbuf[c.wpos..]), if !idle => match r {
                    Ok(Some(0)) => return End::Lost("the connection takes no more data".into()),
                    Ok(Some(n)) => self.on_written(&mut c, n),
                    Ok(None) => c.flush_pending = false,
                    Err(e) => return End::Lost(describe_io(&e, self.tls.as_ref())),
                },
                () = self.waker.notified(), if idle => {}
                () = c.timer.as_mut() => {
                    if let Err(e) = self.on_timer(&mut c) {
                        return End::Lost(e);
                    }
                }
                () = tick(stats_tick) => {
                    let body = self.report.json(&self.stats, &self.driver_stats);
                    wire::publish(&mut c.ctrl, self.topics.stats(), QoS::AtMostOnce, false, 0, body.as_bytes());
                }
            }
        }
    }

    /// Fills the batch buffer: control packets first, then events in order.
    fn refill(&mut self, c: &mut Conn) {
        c.wbuf.clear();
        c.wpos = 0;
        c.ends.clear();
        c.ends_done = 0;
        if !c.ctrl.is_empty() {
            c.wbuf.extend_from_slice(&c.ctrl);
            c.ctrl.clear();
        }
        let qos0 = self.cfg.qos == QoS::AtMostOnce;
        let mut resent = 0u64;
        while c.wbuf.len() < BATCH_BYTES {
            match self.outbox.next() {
                Some(Next::Publish { ev, pkid, dup }) => {
                    self.enc.encode(&mut c.wbuf, &ev, pkid, dup);
                    if qos0 {
                        c.ends.push(c.wbuf.len());
                    }
                    resent += u64::from(dup);
                }
                Some(Next::Release { pkid }) => wire::pubrel(&mut c.wbuf, pkid),
                None => {
                    if self.outbox.wants_write() || self.pull_into(true, Some(&mut c.ctrl)) == 0 {
                        break;
                    }
                }
            }
        }
        // what the pulls above queued (LED states) goes in this batch, not the next
        if !c.ctrl.is_empty() {
            c.wbuf.extend_from_slice(&c.ctrl);
            c.ctrl.clear();
        }
        add(&self.stats.resent, resent);
    }

    fn on_written(&mut self, c: &mut Conn, n: usize) {
        c.wpos += n;
        c.last_write = Instant::now();
        add(&self.stats.writes, 1);
        add(&self.stats.bytes_written, n as u64);
        // QoS 0: an event is finished once all of its bytes are taken
        let mut done = 0;
        while c.ends_done < c.ends.len() && c.ends[c.ends_done] <= c.wpos {
            c.ends_done += 1;
            done += 1;
        }
        if done > 0 {
            let k = self.outbox.complete_written(done);
            add(&self.stats.published, k as u64);
        }
        if c.wpos == c.wbuf.len() {
            c.flush_pending = c.tls;
        }
    }

    /// Handles every complete packet in the read buffer.
    fn on_read(&mut self, c: &mut Conn) -> Result<(), String> {
        c.ping_sent = None; // anything from the broker shows it is alive
        loop {
            if c.skip > 0 {
                let n = c.skip.min(c.rbuf.len());
                c.rbuf.advance(n);
                c.skip -= n;
                if c.skip > 0 {
                    return Ok(());
                }
            }
            let p = match wire::read(&mut c.rbuf).map_err(|e| e.to_string())? {
                None => return Ok(()),
                Some(Incoming::Packet(p)) => p,
                Some(Incoming::TooLarge { frame_len, publish }) => {
                    // skipped, and acknowledged so that it does not come back
                    c.skip = frame_len;
                    let why = format!("message of {frame_len} bytes is too large");
                    match publish {
                        Some((topic, qos, pkid)) => {
                            if self.topics.parse_led_set(&topic).is_some() {
                                self.reject(&topic, b"", &why);
                            } else {
                                warn!(topic = %topic.escape_debug(), "{why}; ignored");
                            }
                            match qos {
                                QoS::AtMostOnce => {}
                                QoS::AtLeastOnce => wire::puback(&mut c.ctrl, pkid),
                                QoS::ExactlyOnce => wire::pubrec(&mut c.ctrl, pkid),
                            }
                        }
                        None => warn!("{why}; skipped"),
                    }
                    continue;
                }
            };
            match p {
                Packet::PubAck(a) => {
                    if a.pkid > EVENT_PKIDS {
                        if Some(a.pkid) == c.offline_pkid {
                            c.offline_acked = true;
                        }
                    } else {
                        let n = self.outbox.puback(a.pkid);
                        add(&self.stats.published, n as u64);
                    }
                }
                Packet::PubRec(r) => {
                    // answered with PUBREL also when we no longer know the id, so the
                    // broker can release its state
                    self.outbox.pubrec(r.pkid);
                    wire::pubrel(&mut c.ctrl, r.pkid);
                }
                Packet::PubComp(r) => {
                    let n = self.outbox.pubcomp(r.pkid);
                    add(&self.stats.published, n as u64);
                }
                Packet::SubAck(s) => {
                    for (code, (filter, _)) in s.return_codes.iter().zip(&self.subscriptions) {
                        if *code == SubscribeReasonCode::Failure {
                            error!(filter = %filter, "the broker refused the subscription (ACL?)");
                        }
                    }
                }
                Packet::PingResp => {}
                Packet::Publish(p) => {
                    if self
                        .recent_in
                        .repeated(p.qos, p.dup, p.pkid, &p.topic, &p.payload)
                    {
                        debug!(topic = %p.topic, pkid = p.pkid, "message sent again: acknowledged, not acted on twice");
                    } else {
                        self.on_message(&p.topic, &p.payload, c);
                    }
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => wire::puback(&mut c.ctrl, p.pkid),
                        QoS::ExactlyOnce => wire::pubrec(&mut c.ctrl, p.pkid),
                    }
                }
                Packet::PubRel(r) => wire::pubcomp(&mut c.ctrl, r.pkid),
                Packet::Disconnect => return Err("the broker sent DISCONNECT".into()),
                other => debug!(?other, "ignored packet from the broker"),
            }
        }
    }

    /// An incoming message: LED command, rule, or Home Assistant's birth message.
    fn on_message(&mut self, topic: &str, payload: &[u8], c: &mut Conn) {
        if let Some(target) = self.topics.parse_led_set(topic) {
            match target {
                Err(why) => self.reject(topic, payload, &why),
                Ok(target) => match parse_command(payload) {
                    Err(e) => self.reject(topic, payload, &e.to_string()),
                    Ok(action) => {
                        let leds: Vec<u8> = match target {
                            LedTarget::One(i) => vec![i],
                            LedTarget::All => (0..self.topics.n_leds()).collect(),
                        };
                        self.send_commands(&leds, action);
                    }
                },
            }
        }
        let prefix_len = self.topics.prefix().len();
        let relative = topic
            .get(prefix_len..)
            .filter(|_| topic.starts_with(self.topics.prefix()));
        let rules: Vec<(Vec<u8>, LedAction)> = self
            .cfg
            .rules
            .iter()
            .filter(|r| relative.is_some_and(|t| topic_matches(t, &r.topic)))
            .filter(|r| r.payloads.is_empty() || r.payloads.iter().any(|p| p.as_bytes() == payload))
            .map(|r| {
                let leds = match &r.leds {
                    RuleLeds::All => (0..self.topics.n_leds()).collect(),
                    RuleLeds::Some(v) => v.clone(),
                };
                (leds, r.action)
            })
            .collect();
        for (leds, action) in rules {
            debug!(topic, %action, "rule");
            self.send_commands(&leds, action);
        }
        if self.ha_status.as_deref() == Some(topic) && payload == b"online" {
            info!("Home Assistant (re)started: sending the discovery configs again");
            self.queue_discovery(c);
        }
    }

    fn reject(&self, topic: &str, payload: &[u8], why: &str) {
        add(&self.stats.commands_rejected, 1);
        warn!(
            topic = %topic.escape_debug(),
            payload = %printable(payload),
            "LED command rejected: {why}"
        );
    }

    fn send_commands(&self, leds: &[u8], action: LedAction) {
        for &led in leds {
            match self.commands.try_send(LedCommand { led, action }) {
                Ok(()) => {
                    add(&self.stats.commands, 1);
                    debug!(led, %action, "LED command");
                }
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    add(&self.stats.commands_dropped, 1);
                    warn!(led, %action, "LED command dropped: the driver is not taking commands");
                }
            }
        }
    }

    /// Keep-alive and liveness; the timer is re-armed for the next check.
    fn on_timer(&mut self, c: &mut Conn) -> Result<(), String> {
        let ka = self.cfg.keep_alive;
        let now = Instant::now();
        if let Some(t) = c.ping_sent {
            if now.duration_since(t) >= ka {
                return Err(format!("no answer from the broker within {ka:?}"));
            }
        }
        if c.wpos < c.wbuf.len() && now.duration_since(c.last_write) >= 2 * ka {
            return Err(format!("the broker has taken no data for {:?}", 2 * ka));
        }
        if c.ping_sent.is_none() && now.duration_since(c.last_write) >= ka {
            wire::pingreq(&mut c.ctrl);
            c.ping_sent = Some(now);
        }
        let mut next = match c.ping_sent {
            Some(t) => t + ka,
            None => c.last_write + ka,
        };
        if let Some(f) = self.finish_by {
            next = next.min(f);
        }
        let next = next.max(now + Duration::from_millis(5));
        c.timer.as_mut().reset(TokioInstant::from_std(next));
        Ok(())
    }

    /// The orderly end: when the driver has stopped and every event is finished,
    /// `offline` goes out; once the broker acknowledged it, DISCONNECT.
    fn check_finish(&mut self, c: &mut Conn) {
        if !self.driver_done() {
            return;
        }
        if let Some(f) = self.finish_by {
            // make sure the timer notices the grace period ending
            let at = TokioInstant::from_std(f);
            if c.timer.deadline() > at {
                c.timer.as_mut().reset(at);
            }
        }
        if self.outbox.is_empty() && c.offline_pkid.is_none() {
            let pkid = next_ctrl(&mut self.next_ctrl);
            wire::publish(
                &mut c.ctrl,
                self.topics.status(),
                QoS::AtLeastOnce,
                true,
                pkid,
                b"offline",
            );
            c.offline_pkid = Some(pkid);
        }
        if c.offline_acked && !c.disconnect_queued {
            wire::disconnect(&mut c.ctrl);
            c.disconnect_queued = true;
        }
    }
}

/// The next control packet id (above the events' range, never 0).
fn next_ctrl(n: &mut u16) -> u16 {
    *n = if *n == u16::MAX {
        EVENT_PKIDS + 1
    } else {
        *n + 1
    };
    *n
}

async fn sleep_until_opt(t: Option<TokioInstant>) {
    match t {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Writes some of `buf` (Some(bytes taken)), or flushes when it is empty (None).
async fn write_or_flush(wr: &mut Writer, buf: &[u8]) -> std::io::Result<Option<usize>> {
    if buf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write(buf).await.map(Some)
    }
}

async fn tick(t: Option<&mut Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// DISCONNECT is written: close our side and read until the broker closes, so the
/// close is never a reset that could discard what the broker has not yet read.
async fn close(mut c: Conn) -> End {
    let _ = c.wr.flush().await;
    let _ = c.wr.shutdown().await;
    drain_until_close(c.rd).await;
    info!("disconnected from broker");
    End::Finished
}

async fn drain_until_close(mut rd: Reader) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// TCP (+ TLS), CONNECT (with our last will when `will`), CONNACK. Returns the
/// halves, what was read after the CONNACK, and the broker's session-present flag.
async fn connect_once(
    cfg: &BridgeConfig,
    tls: Option<&Tls>,
    clean: bool,
    will: bool,
) -> Result<(Reader, Writer, BytesMut, bool), ConnectFail> {
    let will_topic = format!("{}status", cfg.topics.prefix);
    let attempt = async {
        let (mut rd, mut wr) =
            transport::open(&cfg.host, cfg.port, tls)
                .await
                .map_err(|e| match e {
                    ConnectError::Tls(s) => ConnectFail::Permanent(s),
                    other => ConnectFail::Transient(other.to_string()),
                })?;
        let mut buf = BytesMut::new();
        let keep_alive_s = cfg.keep_alive.as_secs().clamp(1, u64::from(u16::MAX)) as u16;
        wire::connect(
            &mut buf,
            &ConnectSpec {
                client_id: &cfg.client_id,
                keep_alive_s,
                clean_session: clean,
                will_topic: will.then_some(will_topic.as_str()),
                username: cfg.username.as_deref(),
                password: cfg.password.as_ref().map(|p| p.expose()),
            },
        )
        .map_err(|e| ConnectFail::Permanent(e.to_string()))?;
        let io_fail = |e: std::io::Error| {
            let s = describe_io(&e, tls);
            if transport::tls_error_of(&e).is_some() {
                ConnectFail::Permanent(s)
            } else {
                ConnectFail::Transient(s)
            }
        };
        wr.write_all(&buf).await.map_err(io_fail)?;
        wr.flush().await.map_err(io_fail)?;
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        loop {
            match wire::read(&mut rbuf).map_err(|e| ConnectFail::Transient(e.to_string()))? {
                Some(Incoming::Packet(Packet::ConnAck(a))) => {
                    return match a.code {
                        ConnectReturnCode::Success => Ok((rd, wr, rbuf, a.session_present)),
                        ConnectReturnCode::ServiceUnavailable => Err(ConnectFail::Transient(
                            "the broker is unavailable (CONNACK 3)".into(),
                        )),
                        code => Err(ConnectFail::Permanent(refusal(code))),
                    };
                }
                Some(other) => {
                    return Err(ConnectFail::Transient(format!(
                        "expected CONNACK, got {other:?}"
                    )))
                }
                None => {}
            }
            match rd.read_buf(&mut rbuf).await {
                Ok(0) => {
                    // rumqttd answers bad credentials this way, without a CONNACK code
                    let hint = if cfg.username.is_some() {
                        " (user name or password refused?)"
                    } else {
                        ""
                    };
                    return Err(ConnectFail::Transient(format!(
                        "the broker closed the connection before CONNACK{hint}"
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(io_fail(e)),
            }
        }
    };
    match tokio::time::timeout(cfg.connect_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ConnectFail::Transient(format!(
            "no CONNACK within {:?}",
            cfg.connect_timeout
        ))),
    }
}

fn refusal(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword => {
            "the broker refused the user name or password (CONNACK 4)".into()
        }
        ConnectReturnCode::NotAuthorized => {
            "the broker refused us: not authorized (CONNACK 5; credentials or ACL)".into()
        }
        ConnectReturnCode::BadClientId => "the broker refused the client id (CONNACK 2)".into(),
        ConnectReturnCode::RefusedProtocolVersion => {
            "the broker does not speak MQTT 3.1.1 (CONNACK 1)".into()
        }
        other => format!("the broker refused the connection: {other:?}"),
    }
}

/// Publishes empty retained configs over the discovery topics, so Home Assistant
/// forgets the device; returns how many topics were cleared.
pub(crate) async fn remove_discovery(
    cfg: &BridgeConfig,
    tls: Option<&Tls>,
    n_inputs: u8,
    n_leds: u8,
) -> Result<usize, BridgeError> {
    let Some(d) = &cfg.discovery else {
        return Ok(0);
    };
    let topics = Topics::new(&cfg.topics, n_inputs, n_leds);
    let configs = discovery::configs(d, &topics, &cfg.client_id, cfg.payload);
    let mut own = cfg.clone();
    own.client_id = format!("{}-ha-remove", cfg.client_id);
    let url = cfg.broker_url();
    // no last will: this short connection must not say the board is offline
    let (mut rd, mut wr, mut rbuf, _) =
        connect_once(&own, tls, true, false)
            .await
            .map_err(|e| match e {
                ConnectFail::Permanent(s) | ConnectFail::Transient(s) => {
                    BridgeError::Connect(format!("broker {url}: {s}"))
                }
            })?;
    let mut buf = BytesMut::new();
    let mut pending = std::collections::HashSet::new();
    let mut id = EVENT_PKIDS;
    for (topic, _) in &configs {
        let pkid = next_ctrl(&mut id);
        wire::publish(&mut buf, topic, QoS::AtLeastOnce, true, pkid, b"");
        pending.insert(pkid);
    }
    let io = |e: std::io::Error| BridgeError::Connect(format!("broker {url}: {e}"));
    wr.write_all(&buf).await.map_err(io)?;
    wr.flush().await.map_err(io)?;
    let wait = async {
        while !pending.is_empty() {
            while let Some(p) =
                wire::read(&mut rbuf).map_err(|e| BridgeError::Connect(e.to_string()))?
            {
                if let Incoming::Packet(Packet::PubAck(a)) = p {
                    pending.remove(&a.pkid);
                }
            }
            if pending.is_empty() {
                break;
            }
            if rd.read_buf(&mut rbuf).await.map_err(io)? == 0 {
                return Err(BridgeError::Connect(format!(
                    "broker {url} closed the connection before acknowledging"
                )));
            }
        }
        Ok(())
    };
    tokio::time::timeout(cfg.connect_timeout, wait)
        .await
        .map_err(|_| BridgeError::Connect(format!("broker {url}: no acknowledgement in time")))??;
    buf.clear();
    wire::disconnect(&mut buf);
    let _ = wr.write_all(&buf).await;
    let _ = wr.shutdown().await;
    drain_until_close(rd).await;
    Ok(configs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_sent_again_with_dup_is_not_acted_on_twice() {
        let q = QoS::AtLeastOnce;
        let mut r = RecentIds::default();
        assert!(!r.repeated(q, false, 7, "led/0/set", b"toggle"));
        assert!(
            r.repeated(q, true, 7, "led/0/set", b"toggle"),
            "the broker's resend"
        );
        assert!(
            !r.repeated(q, true, 7, "led/1/set", b"toggle"),
            "another message with the id"
        );
        assert!(
            !r.repeated(q, false, 7, "led/0/set", b"toggle"),
            "a new message may reuse it"
        );
        assert!(
            !r.repeated(q, true, 8, "led/0/set", b"on"),
            "a dup never seen is acted on"
        );
        assert!(
            !r.repeated(QoS::AtMostOnce, true, 8, "led/0/set", b"on"),
            "QoS 0 has no ids"
        );
        for id in 100..100 + RecentIds::KEEP as u16 {
            r.repeated(q, false, id, "t", b"");
        }
        assert!(
            !r.repeated(q, true, 7, "led/0/set", b"toggle"),
            "forgotten after KEEP others"
        );
        r.clear();
        assert!(!r.repeated(q, true, 100, "t", b""));
    }
}
