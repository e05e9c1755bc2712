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
//! the next batch, the liveness watch (`alive.rs`) and the skip of a packet too large.
//!
//! Memory stays bounded whatever the broker does: control packets (acks, LED states,
//! discovery configs) wait in `ctrl` only up to [`CTRL_CAP`]; past it
//! [`Session::wants_input`] is false and the connection stops reading until the
//! batch is out, so a broker that sends but does not read is answered with TCP
//! back-pressure, not with our memory. Discovery is sent again on Home Assistant's
//! `online` at most once per [`DISCOVERY_EVERY`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pynq_mqtt_driver::{ButtonEvent, LedCommand, LedReport, Stats as DriverStats};
use rumqttc::mqttbytes::v4::ConnectReturnCode;
use tracing::{error, info, warn};

use crate::config::{BridgeConfig, Qos, SessionMode};
use crate::discovery;
use crate::error::{ConnectError, Refusal};
use crate::outbox::{Outbox, EVENT_PKIDS};
use crate::ratelog::RateLog;
use crate::stats::{add, BridgeStats, StatsReport};
use crate::topics::Topics;
use crate::wire::{self, ConnAckInfo, EventEncoder, Limits};

/// A batch buffer is filled up to about this many bytes before it is written.
pub const BATCH_BYTES: usize = 64 * 1024;
/// Control packets queued beyond this stop the reading of the connection until they
/// are written (back-pressure on a broker that sends but does not read).
pub const CTRL_CAP: usize = 64 * 1024;
/// Discovery configs go again on Home Assistant's `online` at most this often; an
/// `online` sooner is answered once the interval is over.
pub const DISCOVERY_EVERY: Duration = Duration::from_secs(30);
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

/// Everything of the session that outlives a connection.
pub struct Session {
    cfg: Arc<BridgeConfig>,
    topics: Topics,
    enc: EventEncoder,
    pub(crate) outbox: Outbox,
    led_state: Vec<Option<bool>>,
    /// Each input's level: None until the hardware said (INPUTS read by the driver),
    /// then followed by every edge and every later reading.
    levels: Vec<Option<bool>>,
    /// The levels published on this connection, to publish only what changed.
    levels_sent: Vec<Option<bool>>,
    subscriptions: Vec<(String, Qos)>,
    discovery: Vec<(String, String)>,
    ha_status: Option<String>,
    /// When discovery last went again on an `online`, and whether one waits for the
    /// interval to end.
    ha_sent: Option<Instant>,
    ha_pending: bool,
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
    /// Warnings a peer can cause, limited per cause.
    pub(crate) ratelog: RateLog,
    /// Whether another device says `online` on our status topic.
    pub(crate) shared_status: crate::fleet::SharedStatus,
    /// Bench only (see [`crate::BridgeIo::trace`]).
    pub(crate) trace: Option<crate::WriteTrace>,
    /// Bench only: when the write the next [`Session::on_written`] reports was
    /// issued, in Unix ns (0: not known).
    pub(crate) write_issued_ns: u64,
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

/// Queues a retained QoS 1 control message (status, LED state, discovery config);
/// returns its packet id. It waits in `held` until the broker's Receive Maximum
/// lets it go ([`Session::balance`]).
fn retained(live: &mut Live, ids: &mut u16, topic: &str, payload: &[u8]) -> u16 {
    let pkid = next_ctrl(ids);
    live.held_bytes += topic.len() + payload.len();
    live.held
        .push_back((pkid, topic.to_owned(), payload.to_vec()));
    pkid
}

/// The cause of the rate-limited line about packets over the broker's maximum size.
const OVERSIZE: &str = "packet larger than the broker takes";

/// The CONNACK's verdict in either protocol: the broker's session-present flag, or
/// why not (an MQTT 5 reason code by its own name; [`Refusal`] tells a login or a
/// busy broker among them).
pub fn verdict(a: &ConnAckInfo) -> Result<bool, ConnectError> {
    let r = match (a.protocol, a.code) {
        (_, 0) => return Ok(a.session_present),
        (crate::config::Protocol::V311, c) => {
            return connack(
                match c {
                    1 => ConnectReturnCode::RefusedProtocolVersion,
                    2 => ConnectReturnCode::BadClientId,
                    3 => ConnectReturnCode::ServiceUnavailable,
                    4 => ConnectReturnCode::BadUserNamePassword,
                    _ => ConnectReturnCode::NotAuthorized,
                },
                a.session_present,
            )
        }
        // a 3.1.1 broker's "not this protocol" to our MQTT 5 CONNECT
        (_, 1) => Refusal::Mqtt5(0x84),
        (_, c) => Refusal::Mqtt5(c),
    };
    Err(ConnectError::Refused(r))
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
            // our own status, to see another board that says `online` there too
            (topics.status().to_owned(), Qos::AtLeastOnce),
            (topics.led_get_filter(), Qos::AtLeastOnce),
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
                let configs = discovery::configs(d, &topics, &cfg.client_id, cfg.state_format);
                (configs, Some(status))
            }
            None => (Vec::new(), None),
        };
        Self {
            enc: EventEncoder::new(&topics, cfg.qos, cfg.payload)
                .with_protocol(cfg.protocol)
                .with_states(cfg.state_format),
            outbox: Outbox::new(cfg.buffer_capacity, cfg.qos, cfg.max_inflight),
            led_state: vec![None; usize::from(n_leds)],
            levels: vec![None; usize::from(n_inputs)],
            levels_sent: vec![None; usize::from(n_inputs)],
            topics,
            subscriptions,
            discovery,
            ha_status,
            ha_sent: None,
            ha_pending: false,
            next_ctrl: EVENT_PKIDS,
            recent_in: RecentIds::default(),
            shutdown: Shutdown::Running,
            fresh_done: cfg.session == SessionMode::Clean,
            ever_connected: false,
            live: None,
            commands: Vec::new(),
            stats,
            driver_stats,
            report: StatsReport::new(&cfg.client_id),
            last_drop_warning: None,
            drops_since_warning: 0,
            ratelog: RateLog::default(),
            shared_status: Default::default(),
            trace: None,
            write_issued_ns: 0,
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

    /// [`Session::connected_with`] a broker that sets no limits (3.1.1).
    #[cfg(test)]
    pub fn connected(&mut self, session_present: bool, now: Instant) {
        self.connected_with(session_present, Limits::NONE, now);
    }

    /// CONNACK accepted: everything unfinished goes again in order, and
    /// subscriptions, `online`, LED states and discovery configs are queued; the
    /// broker's `limits` hold for this connection.
    pub fn connected_with(&mut self, session_present: bool, limits: Limits, now: Instant) {
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
            unsent: Vec::new(),
            ctrl: BytesMut::with_capacity(4096),
            watch: alive::Watch::new(now),
            tail: unsent::Tail::default(),
            sub_pkid: next_ctrl(&mut self.next_ctrl),
            skip: 0,
            limits,
            ctrl_out: 0,
            held: Default::default(),
            held_bytes: 0,
            traced: Vec::new(),
            traced_done: 0,
        };
        self.enc.new_connection(limits.alias_max);
        let proto = self.cfg.protocol;
        wire::subscribe(&mut live.ctrl, proto, live.sub_pkid, &self.subscriptions);
        let n = live.ctrl.len();
        if !limits.fits(n) {
            live.ctrl.clear();
            add(&self.stats.ctrl_too_large, 1);
            error!(
                bytes = n,
                max = limits.max_packet,
                "{OVERSIZE}: the SUBSCRIBE is not sent, so no LED command will arrive"
            );
        }
        if self.shutdown == Shutdown::Running {
            let status = self.topics.status();
            retained(&mut live, &mut self.next_ctrl, status, b"online");
            self.shared_status.published();
        }
        for (i, s) in self.led_state.iter().enumerate() {
            if let Some(on) = s {
                let topic = self.topics.led(i as u8);
                retained(
                    &mut live,
                    &mut self.next_ctrl,
                    &topic,
                    self.cfg.state_format.state(*on),
                );
            }
        }
        self.live = Some(live);
        self.levels_again();
        self.queue_levels();
        self.ha_pending = false;
        self.queue_discovery();
        self.balance();
    }

    /// Moves held control messages out while the broker's Receive Maximum leaves
    /// room, and gives the events the rest. Control messages may take a quarter of
    /// the window (at least one) before events, so neither side starves the other:
    /// what is in flight never exceeds the Receive Maximum.
    pub(crate) fn balance(&mut self) {
        let events = self.outbox.in_flight();
        let Some(l) = self.live.as_mut() else {
            return;
        };
        let rm = usize::from(l.limits.receive_max);
        let proto = self.cfg.protocol;
        while l.ctrl_out + events < rm {
            let Some((pkid, topic, payload)) = l.held.pop_front() else {
                break;
            };
            l.held_bytes -= topic.len() + payload.len();
            let at = l.ctrl.len();
            let n = wire::publish(
                &mut l.ctrl,
                proto,
                &topic,
                Qos::AtLeastOnce,
                true,
                pkid,
                &payload,
            );
            if l.limits.fits(n) {
                l.ctrl_out += 1;
            } else {
                l.ctrl.truncate(at);
                add(&self.stats.ctrl_too_large, 1);
                if self.ratelog.admit(OVERSIZE, Instant::now()) {
                    warn!(topic = %crate::shown::text(&topic), bytes = n, max = l.limits.max_packet,
                        "{OVERSIZE}: not sent");
                }
            }
        }
        let reserve = if l.held.is_empty() {
            0
        } else {
            (rm / 4).max(1).saturating_sub(l.ctrl_out)
        };
        self.outbox.set_cap(rm.saturating_sub(l.ctrl_out + reserve));
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
            retained(live, &mut self.next_ctrl, topic, body.as_bytes());
        }
        self.balance();
    }

    /// Home Assistant announced itself: discovery goes again now, or once the
    /// interval since the last time is over (a flood of `online` costs one).
    pub(super) fn queue_discovery_again(&mut self, now: Instant) {
        if self
            .ha_sent
            .is_some_and(|t| now.duration_since(t) < DISCOVERY_EVERY)
        {
            self.ha_pending = true;
            return;
        }
        self.ha_sent = Some(now);
        self.ha_pending = false;
        info!("Home Assistant (re)started: sending the discovery configs and input levels again");
        self.queue_discovery();
        self.levels_again();
        self.queue_levels();
    }

    /// When a deferred discovery is due, if one waits.
    pub(super) fn ha_due(&self) -> Option<Instant> {
        match (self.ha_pending, self.ha_sent) {
            (true, Some(t)) => Some(t + DISCOVERY_EVERY),
            _ => None,
        }
    }

    /// Whether the connection may read more: false while the control packets
    /// waiting to be written are over [`CTRL_CAP`].
    pub fn wants_input(&self) -> bool {
        self.live
            .as_ref()
            .is_none_or(|l| l.ctrl.len() + l.held_bytes < CTRL_CAP)
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
        self.edge_level(&ev);
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
            let topic = self.topics.led(r.led);
            retained(
                live,
                &mut self.next_ctrl,
                &topic,
                self.cfg.state_format.state(r.on),
            );
            self.balance();
        }
    }

    /// The stats message, on this connection.
    pub fn queue_stats(&mut self) {
        let body = self.report.json(&self.stats, &self.driver_stats);
        if let Some(live) = self.live.as_mut() {
            let topic = self.topics.stats();
            let at = live.ctrl.len();
            let n = wire::publish(
                &mut live.ctrl,
                self.cfg.protocol,
                topic,
                Qos::AtMostOnce,
                false,
                0,
                body.as_bytes(),
            );
            if !live.limits.fits(n) {
                live.ctrl.truncate(at);
                add(&self.stats.ctrl_too_large, 1);
                if self.ratelog.admit(OVERSIZE, Instant::now()) {
                    warn!(
                        topic,
                        bytes = n,
                        max = live.limits.max_packet,
                        "{OVERSIZE}: not sent"
                    );
                }
            }
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
                let status = self.topics.status();
                let pkid = retained(live, &mut self.next_ctrl, status, b"offline");
                self.shutdown = Shutdown::SayingOffline { pkid, grace };
                self.balance();
            }
        }
    }
}

mod alive;
mod batch;
mod incoming;
mod levels;
pub(crate) mod unsent;

pub use batch::{Fill, Live};
use incoming::RecentIds;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v5;
