//! The bus layer: how the host reaches the registers and the interrupt of the
//! `pynq_mqtt_io` peripheral. It knows offsets and 32-bit words, nothing of what
//! they mean; the driver above it does.
//!
//! Backends: the Verilated RTL (`pynq-mqtt-sim`) and, on a board, Linux UIO
//! ([`uio`]). Only this crate contains `unsafe` code: the mapping, the volatile
//! register accesses and the system calls of the UIO backend.

use std::time::Duration;

#[cfg(target_os = "linux")]
pub mod uio;

/// Moves the calling thread to the real-time FIFO scheduling class at `priority`
/// (1..=99), so that the thread serving the interrupt runs as soon as it is woken
/// instead of waiting for a busy broker's time slice while the event FIFO fills.
/// Allowed to root, to CAP_SYS_NICE and within `RLIMIT_RTPRIO` (systemd `LimitRTPRIO=`).
#[cfg(target_os = "linux")]
pub fn set_current_thread_realtime(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is the
    // calling thread, and the call changes nothing but its scheduling class.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Real-time scheduling is a Linux feature; elsewhere the request is refused.
#[cfg(not(target_os = "linux"))]
pub fn set_current_thread_realtime(_priority: u8) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// What can go wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The offset is outside the register window or not word aligned.
    #[error(
        "register offset {offset:#x} is outside the {window:#x}-byte window or not 4-byte aligned"
    )]
    BadOffset { offset: u32, window: usize },
    /// The peripheral did not answer a transaction (simulated bus hang).
    #[error("bus transaction at {offset:#x} timed out")]
    Timeout { offset: u32 },
    /// The peripheral answered with an error response.
    #[error("bus transaction at {offset:#x} answered {resp} instead of OKAY")]
    Response { offset: u32, resp: u32 },
    /// The device was opened read-only (to look at it while a daemon runs).
    #[error("the device is open read-only: {op} is not allowed")]
    ReadOnly { op: &'static str },
    /// The backend has stopped (simulation ended, device closed).
    #[error("the bus backend has stopped")]
    Closed,
    /// The kernel unregistered the device under us: its overlay was removed or
    /// re-inserted (`pynq-mqtt-overlay unload`, a notebook's `Overlay(...)`). Nothing
    /// behind the old mapping may be touched again.
    #[error("the UIO device went away ({0}): its overlay was unloaded or reloaded")]
    Gone(String),
    /// An operating-system error from the backend.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Outcome of waiting for the interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqWait {
    /// The interrupt fired; it stays masked until [`Bus::rearm_irq`].
    Fired,
    /// The timeout passed without an interrupt.
    TimedOut,
}

/// Access to the peripheral's registers and interrupt line.
///
/// Every read and write is exactly one bus transaction: reads may have side effects
/// (popping an event), so implementations never repeat, merge or invent accesses.
/// The interrupt follows Linux UIO semantics: once [`Bus::wait_irq`] reports
/// [`IrqWait::Fired`] the line is masked until [`Bus::rearm_irq`]; a line still
/// high at re-arm fires again at once.
pub trait Bus: Send + Sync {
    /// Reads the 32-bit register at byte `offset`.
    fn read32(&self, offset: u32) -> Result<u32, BusError>;
    /// Writes the 32-bit register at byte `offset` (all byte lanes).
    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError>;
    /// Reads the registers at `offsets` in that order, one transaction each, exactly as
    /// that many [`Bus::read32`] calls would, and appends their values to `out`. On an
    /// error, `out` holds the values read before it and no later read happened. A
    /// backend whose every access is a hand-over to another thread (the simulator's
    /// clock) does the whole list in one; the default reads one by one.
    fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        for &offset in offsets {
            out.push(self.read32(offset)?);
        }
        Ok(())
    }
    /// [`Bus::read_many`] that goes on past the first read only if it returned
    /// `expect`; otherwise `out` holds that one value and nothing more was read. How a
    /// batch that opens with a peripheral's identity register leaves alone whatever
    /// answers there instead (a read can have side effects on another peripheral).
    fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        let Some((&first, rest)) = offsets.split_first() else {
            return Ok(());
        };
        let v = self.read32(first)?;
        out.push(v);
        if v != expect {
            return Ok(());
        }
        self.read_many(rest, out)
    }
    /// Blocks until the interrupt fires or `timeout` passes.
    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError>;
    /// [`Bus::wait_irq`] and, once the interrupt fired, [`Bus::read_many_if`] of
    /// `offsets` into `out`, as one step. The outer error is the wait's; the inner
    /// result is the reads' (only after `Fired`; `out` is untouched otherwise). Where
    /// the bus is another thread (the simulator) the reads run there the moment the
    /// interrupt is delivered, one hand-over in all, as a driver's first reads follow
    /// the interrupt on a board.
    fn wait_irq_and_read(
        &self,
        timeout: Duration,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(IrqWait, Result<(), BusError>), BusError> {
        Ok(match self.wait_irq(timeout)? {
            IrqWait::Fired => (IrqWait::Fired, self.read_many_if(expect, offsets, out)),
            IrqWait::TimedOut => (IrqWait::TimedOut, Ok(())),
        })
    }
    /// Unmasks the interrupt after it fired.
    fn rearm_irq(&self) -> Result<(), BusError>;
    /// Makes a [`Bus::wait_irq`] blocked in another thread return
    /// [`IrqWait::TimedOut`] now (or the next one, if none is blocked): how a driver
    /// stops without waiting out its timeout.
    fn wake_waiter(&self);
    /// A short name of the backend for logs ("sim", "uio:/dev/uio4").
    fn describe(&self) -> String;
}

impl<B: Bus + ?Sized> Bus for std::sync::Arc<B> {
    fn read32(&self, offset: u32) -> Result<u32, BusError> {
        (**self).read32(offset)
    }
    fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        (**self).write32(offset, value)
    }
    fn read_many(&self, offsets: &[u32], out: &mut Vec<u32>) -> Result<(), BusError> {
        (**self).read_many(offsets, out)
    }
    fn read_many_if(
        &self,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(), BusError> {
        (**self).read_many_if(expect, offsets, out)
    }
    fn wait_irq(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        (**self).wait_irq(timeout)
    }
    fn wait_irq_and_read(
        &self,
        timeout: Duration,
        expect: u32,
        offsets: &[u32],
        out: &mut Vec<u32>,
    ) -> Result<(IrqWait, Result<(), BusError>), BusError> {
        (**self).wait_irq_and_read(timeout, expect, offsets, out)
    }
    fn rearm_irq(&self) -> Result<(), BusError> {
        (**self).rearm_irq()
    }
    fn wake_waiter(&self) {
        (**self).wake_waiter()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Checks that `offset` is a word-aligned offset inside a window of `window` bytes.
pub fn check_offset(offset: u32, window: usize) -> Result<(), BusError> {
    if !offset.is_multiple_of(4) || offset as usize + 4 > window {
        return Err(BusError::BadOffset { offset, window });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_checked() {
        assert!(check_offset(0, 0x10000).is_ok());
        assert!(check_offset(0xFFFC, 0x10000).is_ok());
        assert!(matches!(
            check_offset(0x10000, 0x10000),
            Err(BusError::BadOffset { .. })
        ));
        assert!(matches!(
            check_offset(2, 0x10000),
            Err(BusError::BadOffset { .. })
        ));
    }
}
