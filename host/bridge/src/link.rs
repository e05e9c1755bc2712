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
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use pynq_mqtt_driver::{ButtonEvent, LedCommand, LedReport};
use tokio::io::AsyncReadExt;
use tokio::time::{sleep_until, Instant as TokioInstant, Interval, MissedTickBehavior, Sleep};
use tracing::{debug, info, warn};

use crate::backoff::Retry;
use crate::config::BridgeConfig;
use crate::connect::{self, Opened};
use crate::error::{ConnectError, Lost};
use crate::live::BridgeLive;
use crate::session::{Fill, Session, Shutdown};
use crate::stats::{add, BridgeStats};
use crate::transport::{write_or_flush, Reader, Tls, TransportError, Writer};
use crate::waker::Waker;
use crate::BridgeError;

/// The cause of the rate-limited line about commands the driver did not take.
const DROPPED: &str = "LED command dropped";

/// Events taken from the channel at a time.
const PULL_CHUNK: usize = 4096;

/// How a connection ended.
enum End {
    /// DISCONNECT sent and the broker closed (or the grace ran out): the run is over.
    Finished,
    /// The connection broke; try again.
    Lost(Lost),
}

/// The channels, the socket's settings and the session.
pub(crate) struct Link {
    cfg: Arc<BridgeConfig>,
    tls: Option<Tls>,
    session: Session,
    connect_hint: Option<crate::ConnectHint>,
    events: Receiver<ButtonEvent>,
    leds: Receiver<LedReport>,
    events_open: bool,
    leds_open: bool,
    commands: Sender<LedCommand>,
    stats: Arc<BridgeStats>,
    waker: Waker,
    /// Ticks only with `stats_interval` set (the `select!` branch is off otherwise).
    stats_tick: Interval,
    live: Option<Arc<BridgeLive>>,
    /// When the oldest event not yet on the socket was taken off the channel.
    taken_at: Option<Instant>,
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
        tls: Option<Tls>,
        io: crate::BridgeIo,
        stats: Arc<BridgeStats>,
    ) -> Result<Self, BridgeError> {
        let cfg = Arc::new(cfg);
        let waker = Waker::spawn(&io.events, &io.leds).map_err(BridgeError::Thread)?;
        let every = cfg.stats_interval.unwrap_or(Duration::from_secs(3600));
        let mut stats_tick = tokio::time::interval_at(TokioInstant::now() + every, every);
        stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let session = Session::new(
            Arc::clone(&cfg),
            io.n_inputs,
            io.n_leds,
            Arc::clone(&stats),
            io.driver_stats,
        );
        Ok(Self {
            connect_hint: io.connect_hint,
            cfg,
            tls,
            session,
            events: io.events,
            leds: io.leds,
            events_open: true,
            leds_open: true,
            commands: io.commands,
            stats,
            waker,
            stats_tick,
            live: io.live,
            taken_at: None,
        })
    }

    /// Runs until the driver has stopped and everything is delivered (or given up on).
    pub async fn run(mut self) -> Result<(), BridgeError> {
        let url = self.cfg.broker_url();
        let (min, max) = (self.cfg.reconnect_min, self.cfg.reconnect_max);
        let mut retry = Retry::new(min, max, self.connect_hint.take());
        // stopping with nothing left to send and no connection: the broker has
        // published our last will (`offline`) if we ever were online
        while self.session.wants_connection() {
            match self.connect().await {
                Ok(o) => {
                    let started = Instant::now();
                    let present = o.session_present;
                    self.session.connected(present, started);
                    self.show_connected(true);
                    let (buffered, resend) =
                        (self.session.outbox.len(), self.session.outbox.inflight());
                    info!(broker = %url, client_id = %self.cfg.client_id, session_present = present, buffered, "connected to broker");
                    if resend > 0 {
                        info!(events = resend, "sending unacknowledged events again");
                    }
                    let end = self.serve(o).await;
                    self.session.disconnected();
                    self.show_connected(false);
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
                    let e =
                        self.session
                            .connect_failed(e)
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
                () = self.waker.notified() => {}
            }
        }
    }

    /// Moves events from the driver's channel into the session, and LED states.
    /// Returns the number of events taken.
    fn pull(&mut self) -> usize {
        let connected = self.session.live().is_some();
        let mut taken = 0;
        let mut dropped = 0u64;
        let mut empty = !self.events_open;
        if self.events_open {
            // the hot loop: one try_recv and one push per event
            while taken < PULL_CHUNK {
                if connected && !self.session.outbox.has_room() {
                    // the broker is slow: leave the rest in the channel (back-pressure)
                    break;
                }
                match self.events.try_recv() {
                    Ok(ev) => {
                        taken += 1;
                        if !self.session.push_event(ev) {
                            dropped += 1;
                        }
                    }
                    Err(e) => {
                        if e == TryRecvError::Disconnected {
                            self.events_open = false;
                            self.waker.set_closed(true, false);
                        }
                        empty = true;
                        break;
                    }
                }
            }
        }
        let mut leds_empty = !self.leds_open;
        while self.leds_open {
            match self.leds.try_recv() {
                Ok(r) => self.session.led_report(r),
                Err(e) => {
                    if e == TryRecvError::Disconnected {
                        self.leds_open = false;
                        self.waker.set_closed(false, true);
                    }
                    leds_empty = true;
                    break;
                }
            }
        }
        if empty && leds_empty {
            self.waker.arm();
        }
        let now = Instant::now();
        if !self.events_open && !self.leds_open {
            self.session.driver_stopped(now);
        }
        add(&self.stats.taken, taken as u64);
        if dropped > 0 {
            self.session.note_drops(dropped, now);
        }
        let buffered = self.session.outbox.len() as u64;
        self.stats.buffered.store(buffered, Ordering::Relaxed);
        if let Some(live) = &self.live {
            if taken > 0 && self.taken_at.is_none() {
                self.taken_at = Some(now);
            }
            let o = &self.session.outbox;
            live.inflight.store(o.inflight() as u64, Ordering::Relaxed);
            live.window.store(o.window() as u64, Ordering::Relaxed);
        }
        taken
    }

    fn show_connected(&self, up: bool) {
        if let Some(live) = &self.live {
            live.connected.store(up, Ordering::Relaxed);
        }
    }

    /// A batch is on the socket: how long its oldest event took from the channel.
    fn batch_written(&mut self, now: Instant) {
        if let (Some(live), Some(t0)) = (&self.live, self.taken_at.take()) {
            live.drain_to_socket
                .observe(now.saturating_duration_since(t0));
        }
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
                () = self.waker.notified() => {
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
        let ka = self.cfg.keep_alive;
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
            let idle = self.session.batch_done() && !c.flush_pending;
            let tls = self.tls.as_ref();
            if c.rbuf.capacity() - c.rbuf.len() < 2048 {
                c.rbuf.reserve(16 * 1024);
            }
            let stats_on = self.cfg.stats_interval.is_some();
            // control packets piled up (the broker sends but does not read): stop
            // reading until the batch is out, so TCP pushes back on the broker
            let reading = self.session.wants_input();
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
                r = write_or_flush(c.wr.as_mut(), self.session.pending()), if !idle => match r {
                    Ok(Some(0)) => return End::Lost(Lost::WriteZero),
                    Ok(Some(n)) => {
                        let now = Instant::now();
                        self.session.on_written(n, now);
                        if self.session.batch_done() {
                            self.batch_written(now);
                        }
                        c.flush_pending = self.tls.is_some() && self.session.batch_done();
                    }
                    Ok(None) => c.flush_pending = false,
                    Err(e) => return End::Lost(TransportError::of(e, tls).into()),
                },
                () = self.waker.notified(), if idle => {}
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
