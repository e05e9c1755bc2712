//! The LED thread: applies commands through the set/clear/toggle registers and reports
//! each LED as read back from the hardware.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use pynq_mqtt_bus::{Bus, BusError};
use pynq_mqtt_regs::{self as regs, RegBus};
use tracing::{debug, error, warn};

use crate::{
    every_power_of_two, Bell, DeviceLost, LedAction, LedCommand, LedReport, Levels, LostFlag, Stats,
};

/// Switches the LEDs of `mask` on, off or over, through the set/clear/toggle
/// registers: no read-modify-write to race with.
pub(crate) fn write_leds(bus: &dyn Bus, action: LedAction, mask: u32) -> Result<(), BusError> {
    match action {
        LedAction::On => bus.write(regs::LED_SET, mask),
        LedAction::Off => bus.write(regs::LED_CLR, mask),
        LedAction::Toggle => bus.write(regs::LED_TOGGLE, mask),
    }
}

/// What an LED thread of any flavour takes its commands from, and what it tells of a
/// loss.
#[derive(Clone)]
pub(crate) struct LedInbox {
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) rx: Receiver<LedCommand>,
    /// A message (or a closed channel) at the stop or the loss.
    pub(crate) quit: Receiver<()>,
    pub(crate) lost: LostFlag,
}

impl LedInbox {
    /// The inbox of `rx`, and the sender that ends its wait at the stop (a message
    /// or its drop); the loss of the device ends it too. The thread sleeps until a
    /// command, the stop or the loss: no timer.
    pub(crate) fn new(
        bus: &Arc<dyn Bus>,
        stats: &Arc<Stats>,
        rx: Receiver<LedCommand>,
        lost: &LostFlag,
    ) -> (LedInbox, Sender<()>) {
        let (quit, quit_rx) = crossbeam_channel::bounded::<()>(1);
        let q = quit.clone();
        lost.on_lost(move || {
            let _ = q.try_send(());
        });
        let inbox = LedInbox {
            bus: Arc::clone(bus),
            stats: Arc::clone(stats),
            rx,
            quit: quit_rx,
            lost: lost.clone(),
        };
        (inbox, quit)
    }

    /// The LED thread's loop: does each command with `apply`, until a stop, a loss (a
    /// device gone ends the event thread's wait too), a message on `quit` or a closed
    /// channel. A failed command is counted and logged, and the loop goes on.
    pub(crate) fn serve(
        &self,
        stop: &AtomicBool,
        mut apply: impl FnMut(LedCommand) -> Result<(), BusError>,
    ) {
        while !stop.load(Ordering::SeqCst) && self.lost.get().is_none() {
            crossbeam_channel::select! {
                recv(self.rx) -> cmd => match cmd {
                    Ok(cmd) => match apply(cmd) {
                        Ok(()) => {}
                        Err(BusError::Gone(why)) => {
                            debug!("device gone: {why}");
                            let _ = self.lost.set(DeviceLost::Gone);
                            self.bus.wake_waiter();
                        }
                        Err(e) => {
                            Stats::add(&self.stats.bus_errors, 1);
                            error!("LED command {cmd:?} failed: {e}");
                        }
                    },
                    Err(_) => break,
                },
                // the loop's condition tells a stop from a loss
                recv(self.quit) -> q => if q.is_err() {
                    break;
                },
            }
        }
    }
}

/// The LED thread: its bus, its channels and the board state it keeps up to date.
pub(super) struct LedWorker {
    pub(super) inbox: LedInbox,
    pub(super) n_leds: u8,
    pub(super) tx: Sender<LedReport>,
    pub(super) board: Arc<Levels>,
    pub(super) bell: Bell,
}

impl LedWorker {
    /// Ends at a stop, or once the device is lost: closing the report channel is how
    /// the bridge learns that the driver is done.
    pub(super) fn run(&mut self, stop: &AtomicBool) {
        self.inbox.clone().serve(stop, |cmd| self.apply(cmd));
    }

    /// Records the loss and ends the event thread's wait, so that it stops too.
    fn set_lost(&self, lost: DeviceLost) {
        let _ = self.inbox.lost.set(lost);
        self.inbox.bus.wake_waiter();
    }

    fn apply(&mut self, cmd: LedCommand) -> Result<(), BusError> {
        if cmd.led >= self.n_leds {
            Stats::add(&self.inbox.stats.led_rejected, 1);
            warn!(
                led = cmd.led,
                leds = self.n_leds,
                "LED command for a LED that does not exist"
            );
            return Ok(());
        }
        // the event thread checks the identity at every wake, but a command may come
        // between two wakes: never write into an IP that is not ours
        if self.inbox.lost.get().is_some() {
            return Ok(());
        }
        let id = self.inbox.bus.read(regs::ID)?;
        if id != regs::ID_VALUE {
            self.set_lost(DeviceLost::Replaced { id });
            return Ok(());
        }
        let bit = 1u32 << cmd.led;
        write_leds(self.inbox.bus.as_ref(), cmd.action, bit)?;
        let back = self.inbox.bus.read(regs::LED)?;
        self.board.set_leds(back);
        Stats::add(&self.inbox.stats.led_commands, 1);
        let report = LedReport {
            led: cmd.led,
            on: back & bit != 0,
        };
        if self.tx.try_send(report).is_ok() {
            self.bell.ring();
        } else if let Some(n) = every_power_of_two(&self.inbox.stats.led_reports_lost, 1) {
            warn!(lost = n, "LED report channel full: read-backs not reported");
        }
        Ok(())
    }
}
