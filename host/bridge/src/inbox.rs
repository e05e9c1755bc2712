//! The driver's side of the link: its three channels (events, input levels, LED
//! states) read without blocking into the session, and the waker that tells the
//! link's task when one of them has something (the driver's bell, or a thread).

use crossbeam_channel::{Receiver, TryRecvError};
use pynq_mqtt_driver::{Bell, ButtonEvent, InputLevels, LedReport};

use crate::session::Session;
use crate::waker::Waker;
use crate::BridgeError;

/// Events taken from the channel at a time.
const PULL_CHUNK: usize = 4096;

pub(crate) struct Inbox {
    events: Receiver<ButtonEvent>,
    leds: Receiver<LedReport>,
    levels: Receiver<InputLevels>,
    events_open: bool,
    leds_open: bool,
    pub(crate) waker: Waker,
}

/// What one [`Inbox::pull`] moved.
pub(crate) struct Pulled {
    pub taken: usize,
    /// Events the session's buffer had no room for.
    pub dropped: u64,
}

impl Inbox {
    /// With the driver's `bell` the driver's threads wake the link; without one (or
    /// with a bell another reader hooked already) a thread of ours watches the channels.
    pub(crate) fn new(
        events: Receiver<ButtonEvent>,
        leds: Receiver<LedReport>,
        levels: Receiver<InputLevels>,
        bell: Option<&Bell>,
    ) -> Result<Self, BridgeError> {
        let waker = match bell.and_then(Waker::on_bell) {
            Some(w) => w,
            None => Waker::spawn(&events, &leds, &levels).map_err(BridgeError::Thread)?,
        };
        Ok(Self {
            events,
            leds,
            levels,
            events_open: true,
            leds_open: true,
            waker,
        })
    }

    /// Events waiting in the channel.
    pub(crate) fn waiting(&self) -> usize {
        self.events.len()
    }

    /// The driver has closed both its channels: it has stopped.
    pub(crate) fn closed(&self) -> bool {
        !self.events_open && !self.leds_open
    }

    /// Moves events, then input levels and LED states, into the session; re-arms
    /// the waker once every channel read empty.
    pub(crate) fn pull(&mut self, session: &mut Session) -> Pulled {
        let connected = session.live().is_some();
        let mut p = Pulled {
            taken: 0,
            dropped: 0,
        };
        let mut empty = !self.events_open;
        // the hot loop: one try_recv and one push per event
        while self.events_open && p.taken < PULL_CHUNK {
            if connected && !session.outbox.has_room() {
                // the broker is slow: leave the rest in the channel (back-pressure)
                break;
            }
            match self.events.try_recv() {
                Ok(ev) => {
                    p.taken += 1;
                    p.dropped += u64::from(!session.push_event(ev));
                }
                Err(e) => {
                    if e == TryRecvError::Disconnected {
                        self.events_open = false;
                        self.waker.set_closed(true, false);
                    }
                    empty = true;
                }
            }
            if empty {
                break;
            }
        }
        // readings only once the events channel read empty: the driver sends one after
        // the edges of each drain, so every edge sent before a reading is taken
        // before it, and the hardware has the last word
        if empty {
            loop {
                match self.levels.try_recv() {
                    Ok(l) => session.input_levels(l),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.waker.set_levels_closed();
                        break;
                    }
                }
            }
        }
        let mut leds_empty = !self.leds_open;
        while self.leds_open {
            match self.leds.try_recv() {
                Ok(r) => session.led_report(r),
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
        p
    }
}
