//! The interrupt of a UIO device: a 4-byte read returns the cumulative interrupt count
//! (blocking until one arrives), a 4-byte write of 1 unmasks the line again
//! (`uio_pdrv_genirq` masks it in its handler). Waiting is a `ppoll` on that descriptor
//! and an eventfd, so that [`IrqLine::wake`] ends a wait at once.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{BusError, IrqWait};

/// The descriptors the interrupt is waited for and re-armed on. On a board both are
/// the device file; tests hand in the two ends of pipes, which have the same 4-byte
/// read and write behaviour.
#[derive(Debug)]
pub struct IrqFds {
    /// Readable when an interrupt arrived; a 4-byte read returns the count.
    pub wait: OwnedFd,
    /// Takes the 4-byte `1` that re-arms.
    pub rearm: OwnedFd,
}

/// A UIO interrupt line with its wake-up eventfd.
#[derive(Debug)]
pub(crate) struct IrqLine {
    wait: File,
    rearm: File,
    wake: File,
    /// The count the last read returned.
    count: AtomicU32,
}

impl IrqLine {
    pub(crate) fn new(fds: IrqFds) -> std::io::Result<Self> {
        set_nonblocking(&fds.wait)?;
        // SAFETY: eventfd takes no pointers; the flags are valid constants.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor that eventfd just created and nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self {
            wait: File::from(fds.wait),
            rearm: File::from(fds.rearm),
            wake: File::from(wake),
            count: AtomicU32::new(0),
        })
    }

    /// The interrupt count the last wait read (0 before the first).
    pub(crate) fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn wait(&self, timeout: Duration) -> Result<IrqWait, BusError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            let mut fds = [
                libc::pollfd {
                    fd: self.wait.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let ts = timespec_of(left);
            // SAFETY: `fds` is a valid array of two pollfd that outlives the call, `ts`
            // is a valid timespec, and a null signal mask means "leave it unchanged".
            let n = unsafe {
                libc::ppoll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    &ts,
                    std::ptr::null(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(io("waiting for the interrupt", e));
            }
            let irq = fds[0].revents;
            // first: an unregistered UIO device answers poll with -EIO, a mask with
            // every bit set, POLLIN included; reading it would only fail again
            if irq & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(BusError::Gone(poll_bits(irq)));
            }
            if irq & libc::POLLIN != 0 {
                match self.read_count() {
                    Ok(Some(count)) => {
                        self.count.store(count, Ordering::Relaxed);
                        return Ok(IrqWait::Fired);
                    }
                    // someone else took it, or a spurious wake-up: wait on
                    Ok(None) => continue,
                    Err(e) => return Err(e),
                }
            }
            if fds[1].revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 8];
                // resets the eventfd; a concurrent wake may have taken it already
                let _ = (&self.wake).read(&mut buf);
                return Ok(IrqWait::TimedOut);
            }
            if n == 0 || left.is_zero() {
                return Ok(IrqWait::TimedOut);
            }
        }
    }

    /// One 4-byte read; `None` when nothing was there after all.
    fn read_count(&self) -> Result<Option<u32>, BusError> {
        let mut buf = [0u8; 4];
        match (&self.wait).read(&mut buf) {
            Ok(4) => Ok(Some(u32::from_ne_bytes(buf))),
            Ok(0) => Err(BusError::Gone("end of file on the interrupt".into())),
            Ok(n) => Err(io(
                "reading the interrupt count",
                std::io::Error::other(format!("short read of {n} bytes")),
            )),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                Ok(None)
            }
            // a node without an interrupt fails its first re-arm at open already, so
            // here these mean the device was unregistered
            Err(e) if is_gone(&e) => Err(BusError::Gone(format!("reading the interrupt: {e}"))),
            Err(e) => Err(io("reading the interrupt count", e)),
        }
    }

    /// Unmasks the line: a 4-byte write of 1.
    pub(crate) fn rearm(&self) -> Result<(), BusError> {
        match (&self.rearm).write(&1u32.to_ne_bytes()) {
            Err(e) if is_gone(&e) => Err(BusError::Gone(format!("re-arming the interrupt: {e}"))),
            other => rearm_result(other),
        }
    }

    /// The re-arm of [`UioBus::open`](super::UioBus::open): there an EIO means a node
    /// without an interrupt, not a device that went away.
    pub(crate) fn rearm_at_open(&self) -> Result<(), BusError> {
        match (&self.rearm).write(&1u32.to_ne_bytes()) {
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Err(io(
                "re-arming the interrupt (the UIO device has no interrupt: the overlay's \
                 node needs `interrupts = <0 30 4>`)",
                e,
            )),
            other => rearm_result(other),
        }
    }

    /// Ends the current (or next) [`IrqLine::wait`] with `TimedOut`.
    pub(crate) fn wake(&self) {
        // a full eventfd counter (EAGAIN) already wakes the waiter
        let _ = (&self.wake).write(&1u64.to_ne_bytes());
    }
}

fn rearm_result(r: std::io::Result<usize>) -> Result<(), BusError> {
    match r {
        Ok(4) => Ok(()),
        Ok(n) => Err(io(
            "re-arming the interrupt",
            std::io::Error::other(format!("short write of {n} bytes")),
        )),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Err(io(
            "re-arming the interrupt (this UIO driver cannot unmask it: bind the node to \
             uio_pdrv_genirq)",
            e,
        )),
        Err(e) => Err(io("re-arming the interrupt", e)),
    }
}

/// What an unregistered UIO device answers: EIO from `uio_read`/`uio_write` once its
/// info is gone, EINVAL or ENODEV from a node whose driver left.
fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO) | Some(libc::EINVAL) | Some(libc::ENODEV)
    )
}

/// The error bits of a poll answer, for the log line.
fn poll_bits(revents: libc::c_short) -> String {
    let names = [
        (libc::POLLERR, "POLLERR"),
        (libc::POLLHUP, "POLLHUP"),
        (libc::POLLNVAL, "POLLNVAL"),
        (libc::POLLIN, "POLLIN"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| revents & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    format!("poll answered {}", set.join("|"))
}

fn io(what: &str, source: std::io::Error) -> BusError {
    BusError::Io {
        what: what.into(),
        source,
    }
}

fn set_nonblocking(fd: &impl AsFd) -> std::io::Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we borrow; no pointers involved.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `d` as a `timespec` for `ppoll`, saturated at the largest `time_t`.
///
/// `time_t` and `c_long` are 32 bits on armv7 (PYNQ-Z1/Z2) and 64 bits on aarch64 and
/// x86-64, so neither field may be built with `From`: a wait "forever"
/// (`Duration::MAX`) must become the largest wait the target can express, not wrap.
fn timespec_of(d: Duration) -> libc::timespec {
    match libc::time_t::try_from(d.as_secs()) {
        Ok(secs) => libc::timespec {
            tv_sec: secs,
            // below 10^9, so it fits c_long on every target; a cast, because the
            // conversion is lossless on 64-bit targets and only fallible in type on armv7
            tv_nsec: d.subsec_nanos() as libc::c_long,
        },
        Err(_) => libc::timespec {
            tv_sec: libc::time_t::MAX,
            tv_nsec: 999_999_999,
        },
    }
}

#[cfg(test)]
mod timespec_tests {
    use super::*;

    #[test]
    fn a_wait_forever_saturates_instead_of_wrapping() {
        let ts = timespec_of(Duration::MAX);
        assert_eq!(ts.tv_sec, libc::time_t::MAX);
        assert!(
            ts.tv_sec > 0,
            "a forever wait must not become a negative timeout"
        );
        assert_eq!(ts.tv_nsec, 999_999_999);
    }

    // `i64::from` is a no-op on 64-bit targets and a widening on armv7
    #[allow(clippy::useless_conversion)]
    #[test]
    fn beyond_a_32_bit_time_t_saturates_and_short_waits_are_exact() {
        // 2^31 s is past a 32-bit time_t (armv7): saturate there, exact on 64-bit targets
        let long = Duration::new(1 << 31, 5);
        let ts = timespec_of(long);
        if std::mem::size_of::<libc::time_t>() == 4 {
            assert_eq!(ts.tv_sec, libc::time_t::MAX);
        } else {
            assert_eq!(i64::from(ts.tv_sec), 1 << 31);
            assert_eq!(ts.tv_nsec, 5);
        }
        let short = timespec_of(Duration::new(3, 250_000_000));
        assert_eq!(
            (i64::from(short.tv_sec), i64::from(short.tv_nsec)),
            (3, 250_000_000)
        );
    }
}
