//! The I/O around the [`Session`]: the driver's channels, the socket, the timers.
//! Every protocol decision is the session's; this loop only moves bytes and events.
//!
//! Hot path, per batch: take events from the driver's channel into the session's
//! buffer, let the session encode them into one batch, hand the batch to the socket
//! in one write. The read side (acknowledgements, LED commands) is polled in the same
//! `select!`, so a large write never holds up acknowledgements for long.
//!
//! While the broker is away the channel is still drained into the buffer, so losses
//! during an outage are counted by the session (`retry_buffer`), not by the driver.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Sender, TrySendError};
use pynq_mqtt_driver::LedCommand;
use tokio::io::AsyncReadExt;
use tokio::time::{sleep_until, Instant as TokioInstant, Interval, MissedTickBehavior, Sleep};
use tracing::{debug, info, warn};

use crate::backoff::Retry;
use crate::config::BridgeConfig;
use crate::connect::{self, Opened};
use crate::error::{ConnectError, Lost};
use crate::inbox::Inbox;
use crate::live::Probe;
use crate::session::{Fill, Session, Shutdown};
use crate::stats::{add, BridgeStats};
use crate::transport::{write_or_flush, Reader, Tls, TransportError, Writer};
use crate::BridgeError;

/// The cause of the rate-limited line about commands the driver did not take.
const DROPPED: &str = "LED command dropped";

/// Events waiting at a wake from which the link yields its core once before it
/// takes them (a burst: the batch is worth growing; fewer go at once).
const YIELD_AT: usize = 32;

/// How a connection ended.
enum End {
    /// DISCONNECT sent and the broker closed (or the grace ran out): the run is over.
    Finished,
    /// The connection broke; try again.
    Lost(Lost),
}

/// The channels, the socket's settings and the session.
pub(crate) struct Link {
    /// The broker connected to or tried next, of `brokers` (each, in the order tried).
    cfg: Arc<BridgeConfig>,
    tls: Option<Tls>,
    brokers: Vec<(Option<Tls>, Arc<BridgeConfig>)>,
    session: Session,
    connect_hint: Option<crate::ConnectHint>,
    /// The driver's channels to the link.
    inbox: Inbox,
    commands: Sender<LedCommand>,
    stats: Arc<BridgeStats>,
    /// Ticks only with `stats_interval` set (the `select!` branch is off otherwise).
    stats_tick: Interval,
    /// Gauges and the drain-to-socket histogram, for the web page.
    probe: Probe,
}

/// The socket of one live connection.
struct Conn {
    rd: Reader,
    rbuf: BytesMut,
    /// Taken by the orderly close.
    wr: Option<Writer>,
    /// TLS buffers what it writes: flush once a batch is out.
    flush_pending: bool,
    timer: std::pin::Pin<Box<Sleep>>,
}

impl Link {
    pub fn new(
        cfg: BridgeConfig,
        brokers: Vec<(Option<Tls>, Arc<BridgeConfig>)>,
        io: crate::BridgeIo,
        stats: Arc<BridgeStats>,
    ) -> Result<Self, BridgeError> {
        let cfg = Arc::new(cfg);
        let inbox = Inbox::new(io.events, io.leds, io.levels, io.bell.as_ref())?;
        let every = cfg.stats_interval.unwrap_or(Duration::from_secs(3600));
        let mut stats_tick = tokio::time::interval_at(TokioInstant::now() + every, every);
        stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut session = Session::new(
            Arc::clone(&cfg),
            io.n_inputs,
            io.n_leds,
            Arc::clone(&stats),
            io.driver_stats,
        );
        session.trace = io.trace;
        Ok(Self {
            connect_hint: io.connect_hint,
            cfg,
            tls: brokers[0].0.clone(),
            brokers,
            session,
            inbox,
            commands: io.commands,
            stats,
            stats_tick,
            probe: Probe::new(io.live),
        })
    }

    /// Runs until the driver has stopped and everything is delivered (or given up on).
    pub async fn run(mut self) -> Result<(), BridgeError> {
        let (min, max) = (self.cfg.reconnect_min, self.cfg.reconnect_max);
        let mut retry = Retry::new(min, max, self.connect_hint.take(), self.brokers.len());
        // stopping with nothing left to send and no connection: the broker has
        // published our last will (`offline`) if we ever were online
        while self.session.wants_connection() {
            (self.tls, self.cfg) = self.brokers[retry.broker()].clone();
            let url = self.cfg.broker_url();
            match self.connect().await {
                Ok(o) => {
                    let started = Instant::now();
                    let present = o.session_present;
                    self.session.connected_with(present, o.limits, started);
                    self.probe.connected(true);
                    let (buffered, resend) =
                        (self.session.outbox.len(), self.session.outbox.inflight());
                    info!(broker = %url, client_id = %self.cfg.client_id, session_present = present, buffered, "connected to broker");
                    if resend > 0 {
                        info!(events = resend, "sending unacknowledged events again");
                    }
                    let end = self.serve(o).await;
                    self.session.disconnected();
                    self.probe.connected(false);
                    self.send_commands();
                    let End::Lost(why) = end else {
                        return Ok(());
                    };
                    add(&self.stats.connection_errors, 1);
                    warn!(broker = %url, buffered = self.session.outbox.len(), "connection to broker lost: {why}");
                    retry.lost(started.elapsed(), &self.cfg.client_id);
                }
                Err(e) => {
                    let (hint, permanent) = (retry.hint(&e), e.is_permanent());
                    if let Some(h) = hint.as_ref().filter(|_| permanent) {
                        warn!("hint: {h}");
                    }
                    let e = retry
                        .refused(self.session.connect_failed(e), &self.stats)
                        .map_err(|source| BridgeError::Connect {
                            url: url.clone(),
                            source,
                        })?;
                    warn!(broker = %url, buffered = self.session.outbox.len(), "cannot connect to broker: {e}");
                    if let Some(h) = hint.filter(|_| !permanent) {
                        warn!("hint: {h}");
                    }
                    if !self.session.wants_connection() {
                        return Ok(());
                    }
                    if let Some(next) = retry.failed() {
                        let (to, buffered) = (&self.brokers[next].1, self.session.outbox.len());
                        warn!(from = %url, to = %to.broker_url(), buffered, "moving to the next broker");
                    }
                }
            }
            let delay = retry.next_delay();
            debug!("reconnecting in {delay:?}");
            self.wait_offline(delay).await;
        }
        Ok(())
    }

    /// Waits `delay` while keeping the channels drained, or until the run is over.
    async fn wait_offline(&mut self, delay: Duration) {
        let until = TokioInstant::now() + delay;
        loop {
            self.pull();
            self.session.check_deadline(Instant::now());
            if !self.session.wants_connection() || TokioInstant::now() >= until {
                return;
            }
            let deadline = match self.session.grace_until() {
                Some(g) => until.min(TokioInstant::from_std(g)),
                None => until,
            };
            tokio::select! {
                () = sleep_until(deadline) => {}
                () = self.inbox.waker.notified() => {}
            }
        }
    }

    /// Moves what the driver sent into the session. Returns the number of events taken.
    fn pull(&mut self) -> usize {
        let p = self.inbox.pull(&mut self.session);
        let now = Instant::now();
        if self.inbox.closed() {
            self.session.driver_stopped(now);
        }
        add(&self.stats.taken, p.taken as u64);
        if p.dropped > 0 {
            self.session.note_drops(p.dropped, now);
        }
        let buffered = self.session.outbox.len() as u64;
        self.stats.buffered.store(buffered, Ordering::Relaxed);
        self.probe.pulled(p.taken, now, &self.session.outbox);
        p.taken
    }

    /// Sends the LED commands the session decided on.
    fn send_commands(&mut self) {
        for c in self.session.commands.drain(..) {
            match self.commands.try_send(c) {
                Ok(()) => {
                    add(&self.stats.commands, 1);
                    debug!(led = c.led, action = %c.action, "LED command");
                }
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    add(&self.stats.commands_dropped, 1);
                    if self.session.ratelog.admit(DROPPED, Instant::now()) {
                        warn!(led = c.led, action = %c.action, "{DROPPED}: the driver is not taking commands");
                    }
                }
            }
        }
    }

    /// One connection attempt (two for the first persistent one), with the channels
    /// drained meanwhile.
    async fn connect(&mut self) -> Result<Opened, ConnectError> {
        let cfg = Arc::clone(&self.cfg);
        let tls = self.tls.clone();
        let (fresh_first, clean) = self.session.connect_plan();
        let attempt = async move { connect::open(&cfg, tls.as_ref(), fresh_first, clean).await };
        tokio::pin!(attempt);
        loop {
            // a stop's grace period also bounds a connection attempt
            let give_up = self.session.grace_until().map(TokioInstant::from_std);
            let far = TokioInstant::now() + Duration::from_secs(3600);
            tokio::select! {
                r = &mut attempt => return r,
                () = self.inbox.waker.notified() => {
                    self.pull();
                    // a stop with nothing to deliver does not wait for a CONNACK
                    if !self.session.wants_connection() {
                        return Err(ConnectError::Stopping);
                    }
                }
                () = sleep_until(give_up.unwrap_or(far)), if give_up.is_some() => {
                    return Err(ConnectError::Stopping);
                }
            }
        }
    }

    /// Serves one connection until it breaks or the run is over.
    async fn serve(&mut self, o: Opened) -> End {
        let ka = self.cfg.liveness();
        let timer = Box::pin(sleep_until(TokioInstant::now() + ka));
        let (rd, wr, rbuf) = (o.rd, o.wr, o.rbuf);
        let mut c = Conn {
            rd,
            wr: Some(wr),
            rbuf,
            flush_pending: false,
            timer,
        };
        let end = self.serve_conn(&mut c).await;
        if let (End::Lost(_), Some(wr)) = (&end, &c.wr) {
            // before the socket closes: what the broker never acknowledged
            self.session.lost_unacked(wr.unacked());
        }
        end
    }

    async fn serve_conn(&mut self, c: &mut Conn) -> End {
        loop {
            self.pull();
            let now = Instant::now();
            self.session.check_deadline(now);
            self.session.ratelog.tick(now);
            if self.session.shutdown() == Shutdown::Closed {
                return End::Finished;
            }
            self.session.advance_shutdown();
            let turn = self.session.shutdown();
            if let Some(g) = self.session.grace_until().map(TokioInstant::from_std) {
                // make sure the timer notices the grace period ending
                if c.timer.deadline() > g {
                    c.timer.as_mut().reset(g);
                }
            }
            if self.session.batch_done() && !c.flush_pending && self.refill() {
                if let Some(wr) = c.wr.take() {
                    connect::close(&mut c.rd, wr).await;
                }
                info!("disconnected from broker");
                return End::Finished;
            }
            self.send_commands();
            // the refill's pulls may have seen the driver stop (its channels close one
            // after the other): this turn's plan is stale, and the waker is gone
            if self.session.shutdown() != turn {
                continue;
            }
            let idle = self.session.batch_done() && !c.flush_pending;
            let tls = self.tls.as_ref();
            if c.rbuf.capacity() - c.rbuf.len() < 2048 {
                c.rbuf.reserve(16 * 1024);
            }
            let stats_on = self.cfg.stats_interval.is_some();
            // control packets piled up (the broker sends but does not read): stop
            // reading until the batch is out, so TCP pushes back on the broker
            let reading = self.session.wants_input();
            // bench only: the moment the write is issued, taken as its future first
            // runs (the write(2) follows at once unless the socket is full)
            let stamp = self.session.tracing();
            tokio::select! {
                biased;
                r = c.rd.read_buf(&mut c.rbuf), if reading => match r {
                    Ok(0) => return End::Lost(Lost::Closed),
                    Ok(_) => {
                        let r = self.session.on_read(&mut c.rbuf);
                        self.send_commands();
                        if let Err(e) = r {
                            return End::Lost(e);
                        }
                    }
                    Err(e) => return End::Lost(TransportError::of(e, tls).into()),
                },
                (r, issued) = async {
                    let issued = stamp.then(pynq_mqtt_driver::trace::unix_ns);
                    (write_or_flush(c.wr.as_mut(), self.session.pending()).await, issued)
                }, if !idle => match r {
                    Ok(Some(0)) => return End::Lost(Lost::WriteZero),
                    Ok(Some(n)) => {
                        let now = Instant::now();
                        if let Some(at) = issued {
                            self.session.write_issued(at);
                        }
                        self.session.on_written(n, now);
                        if self.session.batch_done() {
                            self.probe.batch_written(now);
                        }
                        c.flush_pending = self.tls.is_some() && self.session.batch_done();
                    }
                    Ok(None) => c.flush_pending = false,
                    Err(e) => return End::Lost(TransportError::of(e, tls).into()),
                },
                // woken with a burst waiting (a high rate): the core goes once to
                // whatever else is ready on it (the broker, its subscribers) before this
                // turn takes the channel, so on a loaded core a batch grows instead of
                // becoming one write per drain; a few events (a button) go at once, as
                // a yield can wait behind a busy thread on the same core
                () = self.inbox.waker.notified(), if idle => {
                    if self.inbox.waiting() >= YIELD_AT {
                        std::thread::yield_now();
                    }
                }
                () = c.timer.as_mut() => match self.session.on_timer(Instant::now()) {
                    Ok(next) => c.timer.as_mut().reset(TokioInstant::from_std(next)),
                    Err(e) => return End::Lost(e),
                },
                _ = self.stats_tick.tick(), if stats_on => self.session.queue_stats(),
            }
        }
    }

    /// Fills the next batch: control packets first, then events in order, pulling
    /// more from the channel while the buffer runs dry. True when the session is
    /// done with the connection (DISCONNECT written).
    fn refill(&mut self) -> bool {
        self.session.start_batch();
        while self.session.fill() == Fill::Dry {
            if self.session.outbox_ready() || self.pull() == 0 {
                break;
            }
        }
        self.session.finish_batch()
    }
}
