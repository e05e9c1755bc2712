//! The MQTT session as a state machine without I/O: [`crate::link`] feeds it what
//! happened (events pulled, LED states, bytes read, bytes written, the time) and
//! writes what it asks for (the batch buffer), sends the LED commands it decided on,
//! and sleeps until its next deadline. So every transition is tested below without a
//! socket, as rumqttc tests its `state.rs`.
//!
//! The shutdown is one enum, [`Shutdown`]:
//! ```text
//!  Running ──driver stopped──► Draining(grace) ──buffer empty──► SayingOffline{pkid, grace}
//!                                 ▲                                   │ its PUBACK
//!                                 └───────connection lost─────────────┤
//!                                                                     ▼
//!                                                        Disconnecting(grace) ─written─► Closed
//!  grace.until passes once: the buffer is dropped (counted) and CLOSE_WAIT is left
//!  (grace.abandoned) to say `offline`; passes again: Closed, from any of the three.
//! ```
//! A connection lost once the buffer is empty ends the run (the broker's last will
//! says `offline`); one lost while draining is retried until the grace runs out.
//!
//! Per connection ([`Live`]): the batch being written, control packets waiting for
//! the next batch, the keep-alive bookkeeping and the skip of a packet too large.
//! The hooks the next changes need sit here: a cap on `ctrl` (bounded control
//! buffers), a per-packet time in the outbox checked in [`Session::on_timer`] (ack
//! timeouts), and `last_read` beside `ping_sent` (liveness per packet).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use pynq_mqtt_driver::{ButtonEvent, LedAction, LedCommand, LedReport, Stats as DriverStats};
use rumqttc::mqttbytes::matches as topic_matches;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet, SubscribeReasonCode};
use tracing::{debug, error, info, warn};

use crate::config::{BridgeConfig, Qos, Rule, RuleLeds, SessionMode};
use crate::discovery;
use crate::error::{ConnectError, Lost, Refusal};
use crate::outbox::{Next, Outbox, EVENT_PKIDS};
use crate::payload::{parse_command, printable};
use crate::stats::{add, BridgeStats, StatsReport};
use crate::topics::{LedTarget, Topics};
use crate::wire::{self, EventEncoder, Incoming};

/// A batch buffer is filled up to about this many bytes before it is written.
pub const BATCH_BYTES: usize = 64 * 1024;
/// How long the broker may take to close the connection after our DISCONNECT, and
/// how long `offline` may still take once the buffer was given up.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The grace period of a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grace {
    pub until: Instant,
    /// The buffer was given up at the first deadline; `until` is the last one.
    pub abandoned: bool,
}

/// Where the run stands; one value instead of a flag per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// The driver runs: events flow.
    Running,
    /// The driver stopped: what is buffered goes out, reconnecting if need be.
    Draining(Grace),
    /// Buffer empty: retained `offline` written with this id on this connection.
    SayingOffline { pkid: u16, grace: Grace },
    /// `offline` acknowledged: DISCONNECT queued; close once it is written.
    Disconnecting(Grace),
    /// The run is over.
    Closed,
}

/// The connection's side of the batch: what is to be written, how far it got.
#[derive(Debug)]
pub struct Live {
    /// The batch being written, `wbuf[wpos..]` still to go.
    wbuf: BytesMut,
    wpos: usize,
    /// QoS 0: end offset in `wbuf` of each event in it.
    ends: Vec<usize>,
    ends_done: usize,
    /// Control packets waiting for the next batch.
    ctrl: BytesMut,
    last_write: Instant,
    ping_sent: Option<Instant>,
    sub_pkid: u16,
    /// Bytes still to drop of a packet too large to read.
    skip: usize,
}

/// How [`Session::fill`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The batch holds [`BATCH_BYTES`].
    Full,
    /// The buffer has nothing more that may go now: pull more from the channel.
    Dry,
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
    fn repeated(&mut self, qos: Qos, dup: bool, pkid: u16, topic: &str, payload: &[u8]) -> bool {
        if qos == Qos::AtMostOnce {
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
}

/// Everything of the session that outlives a connection.
pub struct Session {
    cfg: Arc<BridgeConfig>,
    topics: Topics,
    enc: EventEncoder,
    pub(crate) outbox: Outbox,
    led_state: Vec<Option<bool>>,
    subscriptions: Vec<(String, Qos)>,
    discovery: Vec<(String, String)>,
    ha_status: Option<String>,
    next_ctrl: u16,
    recent_in: RecentIds,
    shutdown: Shutdown,
    /// Persistent sessions: the first connection of the process starts fresh.
    fresh_done: bool,
    ever_connected: bool,
    live: Option<Live>,
    /// LED commands decided on, for the I/O side to send down.
    pub(crate) commands: Vec<LedCommand>,
    stats: Arc<BridgeStats>,
    driver_stats: Arc<DriverStats>,
    report: StatsReport,
    last_drop_warning: Option<Instant>,
    drops_since_warning: u64,
}

/// The next control packet id (above the events' range, never 0).
pub fn next_ctrl(n: &mut u16) -> u16 {
    *n = if *n == u16::MAX {
        EVENT_PKIDS + 1
    } else {
        *n + 1
    };
    *n
}

/// The CONNACK's verdict: the broker's session-present flag, or why not.
pub fn connack(code: ConnectReturnCode, session_present: bool) -> Result<bool, ConnectError> {
    let r = match code {
        ConnectReturnCode::Success => return Ok(session_present),
        ConnectReturnCode::RefusedProtocolVersion => Refusal::Protocol,
        ConnectReturnCode::BadClientId => Refusal::ClientId,
        ConnectReturnCode::ServiceUnavailable => Refusal::Unavailable,
        ConnectReturnCode::BadUserNamePassword => Refusal::BadLogin,
        ConnectReturnCode::NotAuthorized => Refusal::NotAuthorized,
    };
    Err(ConnectError::Refused(r))
}

fn pub_ack(ctrl: &mut BytesMut, qos: Qos, pkid: u16) {
    match qos {
        Qos::AtMostOnce => {}
        Qos::AtLeastOnce => wire::puback(ctrl, pkid),
        Qos::ExactlyOnce => wire::pubrec(ctrl, pkid),
    }
}

impl Session {
    pub fn new(
        cfg: Arc<BridgeConfig>,
        n_inputs: u8,
        n_leds: u8,
        stats: Arc<BridgeStats>,
        driver_stats: Arc<DriverStats>,
    ) -> Self {
        let topics = Topics::new(&cfg.topics, n_inputs, n_leds);
        let mut subscriptions = vec![
            (topics.led_set_filter().to_owned(), Qos::AtLeastOnce),
            (topics.led_set_all().to_owned(), Qos::AtLeastOnce),
        ];
        for r in &cfg.rules {
            let f = format!("{}{}", topics.prefix(), r.topic);
            if !subscriptions.iter().any(|(s, _)| *s == f) {
                subscriptions.push((f, Qos::AtLeastOnce));
            }
        }
        let (discovery, ha_status) = match &cfg.discovery {
            Some(d) => {
                let status = discovery::ha_status_topic(d);
                subscriptions.push((status.clone(), Qos::AtLeastOnce));
                let configs = discovery::configs(d, &topics, &cfg.client_id, cfg.payload);
                (configs, Some(status))
            }
            None => (Vec::new(), None),
        };
        Self {
            enc: EventEncoder::new(&topics, cfg.qos, cfg.payload),
            outbox: Outbox::new(cfg.buffer_capacity, cfg.qos, cfg.max_inflight),
            led_state: vec![None; usize::from(n_leds)],
            topics,
            subscriptions,
            discovery,
            ha_status,
            next_ctrl: EVENT_PKIDS,
            recent_in: RecentIds::default(),
            shutdown: Shutdown::Running,
            fresh_done: cfg.session == SessionMode::Clean,
            ever_connected: false,
            live: None,
            commands: Vec::new(),
            stats,
            driver_stats,
            report: StatsReport::new(),
            last_drop_warning: None,
            drops_since_warning: 0,
            cfg,
        }
    }

    pub fn shutdown(&self) -> Shutdown {
        self.shutdown
    }

    /// The deadline of the stop, if one runs.
    pub fn grace_until(&self) -> Option<Instant> {
        match self.shutdown {
            Shutdown::Draining(g)
            | Shutdown::SayingOffline { grace: g, .. }
            | Shutdown::Disconnecting(g) => Some(g.until),
            _ => None,
        }
    }

    /// Whether another connection is worth making: the run is not over, and after a
    /// stop only while something is left to deliver and time is left.
    pub fn wants_connection(&self) -> bool {
        match self.shutdown {
            Shutdown::Running => true,
            Shutdown::Draining(g) => !g.abandoned && !self.outbox.is_empty(),
            _ => false,
        }
    }

    /// The first connection of a persistent process goes once with a clean session
    /// (dropping what an earlier process left), then the session proper.
    /// Returns (clean-start first, clean_session of the real connection).
    pub fn connect_plan(&self) -> (bool, bool) {
        (!self.fresh_done, self.cfg.session == SessionMode::Clean)
    }

    /// A failed attempt: Err when it should end the run (a permanent refusal before
    /// the first success), else counted for a retry.
    pub fn connect_failed(&self, e: ConnectError) -> Result<ConnectError, ConnectError> {
        if e.is_permanent() && !self.ever_connected {
            return Err(e);
        }
        add(&self.stats.connection_errors, 1);
        Ok(e)
    }

    /// CONNACK accepted: everything unfinished goes again in order, and
    /// subscriptions, `online`, LED states and discovery configs are queued.
    pub fn connected(&mut self, session_present: bool, now: Instant) {
        self.fresh_done = true;
        self.ever_connected = true;
        add(&self.stats.connects, 1);
        self.outbox.rewind(session_present);
        if !session_present {
            // a new session numbers the broker's messages afresh
            self.recent_in = RecentIds::default();
        }
        if let Shutdown::SayingOffline { grace, .. } = self.shutdown {
            self.shutdown = Shutdown::Draining(grace);
        }
        let mut live = Live {
            wbuf: BytesMut::with_capacity(BATCH_BYTES + 4096),
            wpos: 0,
            ends: Vec::new(),
            ends_done: 0,
            ctrl: BytesMut::with_capacity(4096),
            last_write: now,
            ping_sent: None,
            sub_pkid: next_ctrl(&mut self.next_ctrl),
            skip: 0,
        };
        wire::subscribe(&mut live.ctrl, live.sub_pkid, &self.subscriptions);
        if self.shutdown == Shutdown::Running {
            let pkid = next_ctrl(&mut self.next_ctrl);
            let status = self.topics.status();
            wire::publish(
                &mut live.ctrl,
                status,
                Qos::AtLeastOnce,
                true,
                pkid,
                b"online",
            );
        }
        for (i, s) in self.led_state.iter().enumerate() {
            if let Some(on) = s {
                let pkid = next_ctrl(&mut self.next_ctrl);
                let payload: &[u8] = if *on { b"1" } else { b"0" };
                let topic = self.topics.led(i as u8);
                wire::publish(
                    &mut live.ctrl,
                    &topic,
                    Qos::AtLeastOnce,
                    true,
                    pkid,
                    payload,
                );
            }
        }
        self.live = Some(live);
        self.queue_discovery();
    }

    /// The connection is gone (lost or closed).
    pub fn disconnected(&mut self) {
        self.live = None;
        if let Shutdown::SayingOffline { grace, .. } = self.shutdown {
            self.shutdown = Shutdown::Draining(grace);
        }
    }

    pub fn live(&mut self) -> Option<&mut Live> {
        self.live.as_mut()
    }

    fn queue_discovery(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        for (topic, body) in &self.discovery {
            let pkid = next_ctrl(&mut self.next_ctrl);
            wire::publish(
                &mut live.ctrl,
                topic,
                Qos::AtLeastOnce,
                true,
                pkid,
                body.as_bytes(),
            );
        }
    }

    /// The driver's channels have both closed: the grace period starts.
    pub fn driver_stopped(&mut self, now: Instant) {
        if self.shutdown == Shutdown::Running {
            self.shutdown = Shutdown::Draining(Grace {
                until: now + self.cfg.shutdown_timeout,
                abandoned: false,
            });
        }
    }

    /// An event from the driver's channel; false when the buffer was full (dropped,
    /// counted by [`Session::note_drops`]).
    #[inline]
    pub fn push_event(&mut self, ev: ButtonEvent) -> bool {
        self.outbox.push(ev).is_ok()
    }

    /// Counts events dropped on a full buffer; warns at most every few seconds.
    pub fn note_drops(&mut self, n: u64, now: Instant) {
        add(&self.stats.dropped_buffer, n);
        self.drops_since_warning += n;
        if self
            .last_drop_warning
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
        {
            warn!(
                dropped = self.drops_since_warning,
                capacity = self.outbox.capacity(),
                "retry buffer full while the broker is unreachable: new events are dropped \
                 (raise buffer_capacity to hold longer outages)"
            );
            self.last_drop_warning = Some(now);
            self.drops_since_warning = 0;
        }
    }

    /// An LED's state read back: remembered for the next connection, and published
    /// retained on this one.
    pub fn led_report(&mut self, r: LedReport) {
        if let Some(slot) = self.led_state.get_mut(usize::from(r.led)) {
            *slot = Some(r.on);
        }
        if let Some(live) = self.live.as_mut() {
            let pkid = next_ctrl(&mut self.next_ctrl);
            let payload: &[u8] = if r.on { b"1" } else { b"0" };
            let topic = self.topics.led(r.led);
            wire::publish(
                &mut live.ctrl,
                &topic,
                Qos::AtLeastOnce,
                true,
                pkid,
                payload,
            );
        }
    }

    /// The stats message, on this connection.
    pub fn queue_stats(&mut self) {
        let body = self.report.json(&self.stats, &self.driver_stats);
        if let Some(live) = self.live.as_mut() {
            let topic = self.topics.stats();
            wire::publish(
                &mut live.ctrl,
                topic,
                Qos::AtMostOnce,
                false,
                0,
                body.as_bytes(),
            );
        }
    }

    /// Past a grace deadline: the first time the buffer is dropped (counted, logged)
    /// and `CLOSE_WAIT` is left to say `offline`; the second time the run is over.
    pub fn check_deadline(&mut self, now: Instant) {
        let grace = match self.shutdown {
            Shutdown::Draining(g)
            | Shutdown::SayingOffline { grace: g, .. }
            | Shutdown::Disconnecting(g) => g,
            _ => return,
        };
        if now < grace.until {
            return;
        }
        if grace.abandoned {
            self.shutdown = Shutdown::Closed;
            return;
        }
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
        let grace = Grace {
            until: now + CLOSE_WAIT,
            abandoned: true,
        };
        self.shutdown = match self.shutdown {
            Shutdown::SayingOffline { pkid, .. } => Shutdown::SayingOffline { pkid, grace },
            Shutdown::Disconnecting(_) => Shutdown::Disconnecting(grace),
            _ => Shutdown::Draining(grace),
        };
    }

    /// The orderly end on a live connection: once the driver stopped and every
    /// event is finished, `offline`; once that is acknowledged, DISCONNECT.
    pub fn advance_shutdown(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        if let Shutdown::Draining(grace) = self.shutdown {
            if self.outbox.is_empty() {
                let pkid = next_ctrl(&mut self.next_ctrl);
                let status = self.topics.status();
                wire::publish(
                    &mut live.ctrl,
                    status,
                    Qos::AtLeastOnce,
                    true,
                    pkid,
                    b"offline",
                );
                self.shutdown = Shutdown::SayingOffline { pkid, grace };
            }
        }
    }

    /// Whether the batch is completely handed to the connection.
    pub fn batch_done(&self) -> bool {
        self.live.as_ref().is_none_or(|l| l.wpos == l.wbuf.len())
    }

    /// What is left of the batch to write.
    pub fn pending(&self) -> &[u8] {
        match &self.live {
            Some(l) => &l.wbuf[l.wpos..],
            None => &[],
        }
    }

    /// Starts a new batch with the control packets waiting.
    pub fn start_batch(&mut self) {
        let Some(l) = self.live.as_mut() else {
            return;
        };
        l.wbuf.clear();
        l.wpos = 0;
        l.ends.clear();
        l.ends_done = 0;
        l.wbuf.extend_from_slice(&l.ctrl);
        l.ctrl.clear();
    }

    /// Encodes events from the buffer into the batch until it is full or nothing
    /// more may go now. The hot path: one `next` and one `encode` per event.
    pub fn fill(&mut self) -> Fill {
        let Some(l) = self.live.as_mut() else {
            return Fill::Dry;
        };
        let qos0 = self.cfg.qos == Qos::AtMostOnce;
        let mut resent = 0u64;
        let r = loop {
            if l.wbuf.len() >= BATCH_BYTES {
                break Fill::Full;
            }
            match self.outbox.next() {
                Some(Next::Publish { ev, pkid, dup }) => {
                    self.enc.encode(&mut l.wbuf, &ev, pkid, dup);
                    if qos0 {
                        l.ends.push(l.wbuf.len());
                    }
                    resent += u64::from(dup);
                }
                Some(Next::Release { pkid }) => wire::pubrel(&mut l.wbuf, pkid),
                None => break Fill::Dry,
            }
        };
        add(&self.stats.resent, resent);
        r
    }

    /// Whether the buffer would give more now (so pulling from the channel can wait).
    pub fn outbox_ready(&self) -> bool {
        self.outbox.wants_write()
    }

    /// Ends the batch with what was queued while it was filled (LED states), and
    /// says whether the run should close the connection now (DISCONNECT is out).
    pub fn finish_batch(&mut self) -> bool {
        let Some(l) = self.live.as_mut() else {
            return false;
        };
        l.wbuf.extend_from_slice(&l.ctrl);
        l.ctrl.clear();
        l.wbuf.is_empty() && matches!(self.shutdown, Shutdown::Disconnecting(_))
    }

    /// The connection took `n` bytes of the batch.
    pub fn on_written(&mut self, n: usize, now: Instant) {
        let Some(l) = self.live.as_mut() else {
            return;
        };
        l.wpos += n;
        l.last_write = now;
        add(&self.stats.writes, 1);
        add(&self.stats.bytes_written, n as u64);
        // QoS 0: an event is finished once all of its bytes are taken
        let mut done = 0;
        while l.ends_done < l.ends.len() && l.ends[l.ends_done] <= l.wpos {
            l.ends_done += 1;
            done += 1;
        }
        if done > 0 {
            let k = self.outbox.complete_written(done);
            add(&self.stats.published, k as u64);
        }
    }

    /// Handles every complete packet at the front of `rbuf` (what the connection
    /// read); an incomplete one stays there.
    pub fn on_read(&mut self, rbuf: &mut BytesMut) -> Result<(), Lost> {
        let Some(l) = self.live.as_mut() else {
            return Ok(());
        };
        l.ping_sent = None; // anything from the broker shows it is alive
        loop {
            let Some(l) = self.live.as_mut() else {
                return Ok(());
            };
            if l.skip > 0 {
                let n = l.skip.min(rbuf.len());
                rbuf.advance(n);
                l.skip -= n;
                if l.skip > 0 {
                    return Ok(());
                }
            }
            match wire::read(rbuf)? {
                None => return Ok(()),
                Some(Incoming::Packet(p)) => self.on_packet(p)?,
                Some(Incoming::TooLarge { frame_len, publish }) => {
                    // skipped, and acknowledged so that it does not come back
                    l.skip = frame_len;
                    let why = format!("message of {frame_len} bytes is too large");
                    match publish {
                        Some((topic, qos, pkid)) => {
                            pub_ack(&mut l.ctrl, qos, pkid);
                            if self.topics.parse_led_set(&topic).is_some() {
                                self.reject(&topic, b"", &why);
                            } else {
                                warn!(topic = %topic.escape_debug(), "{why}; ignored");
                            }
                        }
                        None => warn!("{why}; skipped"),
                    }
                }
            }
        }
    }

    fn on_packet(&mut self, p: Packet) -> Result<(), Lost> {
        let Some(l) = self.live.as_mut() else {
            return Ok(());
        };
        match p {
            Packet::PubAck(a) if a.pkid > EVENT_PKIDS => {
                if let Shutdown::SayingOffline { pkid, grace } = self.shutdown {
                    if pkid == a.pkid {
                        wire::disconnect(&mut l.ctrl);
                        self.shutdown = Shutdown::Disconnecting(grace);
                    }
                }
            }
            Packet::PubAck(a) => {
                let n = self.outbox.puback(a.pkid);
                add(&self.stats.published, n as u64);
            }
            Packet::PubRec(r) => {
                // answered with PUBREL also when we no longer know the id, so the
                // broker can release its state
                self.outbox.pubrec(r.pkid);
                wire::pubrel(&mut l.ctrl, r.pkid);
            }
            Packet::PubComp(r) => {
                let n = self.outbox.pubcomp(r.pkid);
                add(&self.stats.published, n as u64);
            }
            Packet::SubAck(s) if s.pkid == l.sub_pkid => {
                for (code, (filter, _)) in s.return_codes.iter().zip(&self.subscriptions) {
                    if *code == SubscribeReasonCode::Failure {
                        error!(filter = %filter, "the broker refused the subscription (ACL?)");
                    }
                }
            }
            Packet::Publish(p) => {
                let qos = wire::from_qos(p.qos);
                if self
                    .recent_in
                    .repeated(qos, p.dup, p.pkid, &p.topic, &p.payload)
                {
                    debug!(topic = %p.topic, pkid = p.pkid, "message sent again: acknowledged, not acted on twice");
                } else {
                    self.on_message(&p.topic, &p.payload);
                }
                if let Some(l) = self.live.as_mut() {
                    pub_ack(&mut l.ctrl, qos, p.pkid);
                }
            }
            Packet::PubRel(r) => wire::pubcomp(&mut l.ctrl, r.pkid),
            Packet::Disconnect => return Err(Lost::BrokerDisconnect),
            Packet::PingResp => {}
            other => debug!(?other, "ignored packet from the broker"),
        }
        Ok(())
    }

    /// An incoming message: LED command, rule, or Home Assistant's birth message.
    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        if let Some(target) = self.topics.parse_led_set(topic) {
            match target.and_then(|t| {
                parse_command(payload)
                    .map(|a| (t, a))
                    .map_err(|e| e.to_string())
            }) {
                Err(why) => self.reject(topic, payload, &why),
                Ok((LedTarget::One(i), action)) => self.command(i..i + 1, action),
                Ok((LedTarget::All, action)) => self.command(0..self.topics.n_leds(), action),
            }
        }
        let relative = topic.strip_prefix(self.topics.prefix());
        let cfg = Arc::clone(&self.cfg);
        let hits = cfg
            .rules
            .iter()
            .filter(|r| rule_matches(r, relative, payload));
        for r in hits {
            debug!(topic, action = %r.action, "rule");
            match &r.leds {
                RuleLeds::All => self.command(0..self.topics.n_leds(), r.action),
                RuleLeds::Some(v) => {
                    for &led in v {
                        self.commands.push(LedCommand {
                            led,
                            action: r.action,
                        });
                    }
                }
            }
        }
        if self.ha_status.as_deref() == Some(topic) && payload == b"online" {
            info!("Home Assistant (re)started: sending the discovery configs again");
            self.queue_discovery();
        }
    }

    fn command(&mut self, leds: std::ops::Range<u8>, action: LedAction) {
        self.commands
            .extend(leds.map(|led| LedCommand { led, action }));
    }

    fn reject(&self, topic: &str, payload: &[u8], why: &str) {
        add(&self.stats.commands_rejected, 1);
        warn!(
            topic = %topic.escape_debug(),
            payload = %printable(payload),
            "LED command rejected: {why}"
        );
    }

    /// Keep-alive and liveness at `now`; returns when to look again.
    pub fn on_timer(&mut self, now: Instant) -> Result<Instant, Lost> {
        let ka = self.cfg.keep_alive;
        let grace = self.grace_until();
        let Some(l) = self.live.as_mut() else {
            return Ok(now + ka);
        };
        if let Some(t) = l.ping_sent {
            if now.duration_since(t) >= ka {
                return Err(Lost::NoAnswer(ka));
            }
        }
        if l.wpos < l.wbuf.len() && now.duration_since(l.last_write) >= 2 * ka {
            return Err(Lost::Stalled(2 * ka));
        }
        if l.ping_sent.is_none() && now.duration_since(l.last_write) >= ka {
            wire::pingreq(&mut l.ctrl);
            l.ping_sent = Some(now);
        }
        let mut next = l.ping_sent.unwrap_or(l.last_write) + ka;
        if let Some(g) = grace {
            next = next.min(g);
        }
        Ok(next.max(now + Duration::from_millis(5)))
    }
}

fn rule_matches(r: &Rule, relative: Option<&str>, payload: &[u8]) -> bool {
    relative.is_some_and(|t| topic_matches(t, &r.topic))
        && (r.payloads.is_empty() || r.payloads.iter().any(|p| p.as_bytes() == payload))
}

#[cfg(test)]
mod tests;
