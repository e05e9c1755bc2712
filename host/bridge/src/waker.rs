//! Wakes the async publisher when the driver's channels have something.
//!
//! The driver's channels are crossbeam channels (its threads must never block on an
//! async runtime). Two ways to learn that one has something:
//! - **The driver's bell** (the daemon): the driver's threads call the publisher's
//!   `Notify` themselves after each batch they sent, and once more as they end. One
//!   wake-up per batch, from the thread that sent it; a ring while the publisher is
//!   busy leaves one permit, which costs it at most one look at empty channels.
//! - **A thread of ours** (any other feeder): it waits until either channel is ready,
//!   without taking anything from it, and notifies the publisher task; it then waits
//!   to be re-armed, which the publisher does only after it has found a channel empty.
//!   The level reports ride along: they close with the events (one driver thread sends
//!   both). So a busy publisher costs the waker nothing: one wake-up per batch, not per
//!   event, but two threads woken for each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Select, Sender, TrySendError};
use pynq_mqtt_driver::{Bell, ButtonEvent, InputLevels, LedReport};
use tokio::sync::Notify;

/// The publisher's end.
pub struct Waker {
    notify: Arc<Notify>,
    /// None: the driver rings.
    watcher: Option<Watcher>,
}

/// The publisher's hold on the waiting thread.
struct Watcher {
    arm: Sender<()>,
    events_closed: Arc<AtomicBool>,
    leds_closed: Arc<AtomicBool>,
    levels_closed: Arc<AtomicBool>,
}

/// What the waiting thread watches.
struct Watched {
    events: Receiver<ButtonEvent>,
    leds: Receiver<LedReport>,
    levels: Receiver<InputLevels>,
    events_closed: Arc<AtomicBool>,
    leds_closed: Arc<AtomicBool>,
    levels_closed: Arc<AtomicBool>,
}

impl Waker {
    /// Hooks the publisher's wake-up to the driver's bell; None when another reader
    /// has hooked it already.
    pub fn on_bell(bell: &Bell) -> Option<Self> {
        let notify = Arc::new(Notify::new());
        let n = Arc::clone(&notify);
        bell.set_hook(move || n.notify_one()).then_some(Self {
            notify,
            watcher: None,
        })
    }

    /// Starts the waiting thread on clones of the three receivers.
    pub fn spawn(
        events: &Receiver<ButtonEvent>,
        leds: &Receiver<LedReport>,
        levels: &Receiver<InputLevels>,
    ) -> std::io::Result<Self> {
        let notify = Arc::new(Notify::new());
        let (arm, armed) = bounded::<()>(1);
        let w = Watched {
            events: events.clone(),
            leds: leds.clone(),
            levels: levels.clone(),
            events_closed: Arc::default(),
            leds_closed: Arc::default(),
            levels_closed: Arc::default(),
        };
        let (events_closed, leds_closed, levels_closed) = (
            Arc::clone(&w.events_closed),
            Arc::clone(&w.leds_closed),
            Arc::clone(&w.levels_closed),
        );
        let n = Arc::clone(&notify);
        std::thread::Builder::new()
            .name("mqtt-waker".into())
            .spawn(move || wait_loop(&w, &armed, &n))?;
        let _ = arm.try_send(());
        Ok(Self {
            notify,
            watcher: Some(Watcher {
                arm,
                events_closed,
                leds_closed,
                levels_closed,
            }),
        })
    }

    /// Resolves once a channel may have something (or spuriously).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The publisher found the channels empty: wake it on the next message (the
    /// driver's bell rings anyway).
    pub fn arm(&self) {
        if let Some(w) = &self.watcher {
            match w.arm.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {}
            }
        }
    }

    /// A channel reported disconnected: stop watching it (else it is always ready).
    pub fn set_closed(&self, events: bool, leds: bool) {
        if let Some(w) = &self.watcher {
            if events {
                w.events_closed.store(true, Ordering::SeqCst);
            }
            if leds {
                w.leds_closed.store(true, Ordering::SeqCst);
            }
        }
    }

    /// The level channel reported disconnected: stop watching it.
    pub fn set_levels_closed(&self) {
        if let Some(w) = &self.watcher {
            w.levels_closed.store(true, Ordering::SeqCst);
        }
    }
}

fn wait_loop(w: &Watched, armed: &Receiver<()>, notify: &Notify) {
    // the publisher dropping its end (it ended) stops this thread
    while armed.recv().is_ok() {
        let (e_open, l_open) = (
            !w.events_closed.load(Ordering::SeqCst),
            !w.leds_closed.load(Ordering::SeqCst),
        );
        if !e_open && !l_open {
            // the last word: a publisher that waits on us after all is woken, not
            // left waiting for a thread that is gone
            notify.notify_one();
            return;
        }
        let mut sel = Select::new();
        if e_open {
            sel.recv(&w.events);
        }
        if l_open {
            sel.recv(&w.leds);
        }
        if !w.levels_closed.load(Ordering::SeqCst) {
            sel.recv(&w.levels);
        }
        // bounded waits, so that an ended publisher does not leave this thread behind
        loop {
            if sel.ready_timeout(Duration::from_secs(5)).is_ok() {
                break;
            }
            if armed_is_gone(armed) {
                return;
            }
        }
        notify.notify_one();
    }
}

fn armed_is_gone(armed: &Receiver<()>) -> bool {
    // recv would block; a disconnected, empty channel is what we look for
    matches!(
        armed.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    )
}
