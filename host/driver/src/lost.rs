//! The device-lost flag: set once, read by every thread of the driver and the daemon
//! above, and watched without polling.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::DeviceLost;

type Watcher = Box<dyn FnOnce() + Send>;

/// Where the first [`DeviceLost`] is kept. A thread that must act at once registers a
/// watcher ([`LostFlag::on_lost`]) rather than looking at the flag on a timer: an idle
/// daemon has nothing to wake up for.
#[derive(Clone, Default)]
pub struct LostFlag(Arc<Inner>);

#[derive(Default)]
struct Inner {
    lost: OnceLock<DeviceLost>,
    watchers: Mutex<Vec<Watcher>>,
}

impl std::fmt::Debug for LostFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LostFlag").field(&self.get()).finish()
    }
}

impl LostFlag {
    /// The first loss recorded, if any.
    pub fn get(&self) -> Option<&DeviceLost> {
        self.0.lost.get()
    }

    /// Records the first loss and runs every watcher once; a later loss is ignored
    /// (false): the first one is why the driver stopped.
    pub fn set(&self, lost: DeviceLost) -> bool {
        if self.0.lost.set(lost).is_err() {
            return false;
        }
        let watchers = std::mem::take(&mut *self.watchers());
        for w in watchers {
            w();
        }
        true
    }

    /// Runs `f` once the device is lost, or at once when it already is.
    pub fn on_lost(&self, f: impl FnOnce() + Send + 'static) {
        let mut watchers = self.watchers();
        // `set` stores the loss before it takes the list: under this lock, either the
        // loss shows here or `set` has yet to take the list, so `f` runs exactly once
        if self.get().is_some() {
            drop(watchers);
            f();
        } else {
            watchers.push(Box::new(f));
        }
    }

    fn watchers(&self) -> MutexGuard<'_, Vec<Watcher>> {
        // a watcher that panicked leaves the list usable
        self.0.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter(flag: &LostFlag) -> Arc<AtomicUsize> {
        let n = Arc::new(AtomicUsize::new(0));
        let m = Arc::clone(&n);
        flag.on_lost(move || {
            m.fetch_add(1, Ordering::SeqCst);
        });
        n
    }

    #[test]
    fn a_watcher_runs_once_at_the_first_loss_and_the_first_loss_is_kept() {
        let flag = LostFlag::default();
        let n = counter(&flag);
        assert_eq!(n.load(Ordering::SeqCst), 0);
        assert!(flag.set(DeviceLost::Gone));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(!flag.clone().set(DeviceLost::Replaced { id: 7 }));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(flag.get(), Some(&DeviceLost::Gone));
    }

    #[test]
    fn a_watcher_registered_after_the_loss_runs_at_once() {
        let flag = LostFlag::default();
        flag.set(DeviceLost::Replaced { id: 1 });
        assert_eq!(counter(&flag).load(Ordering::SeqCst), 1);
    }

    #[test]
    fn racing_registrations_and_a_loss_run_every_watcher_exactly_once() {
        for _ in 0..200 {
            let flag = LostFlag::default();
            let setter = {
                let f = flag.clone();
                std::thread::spawn(move || f.set(DeviceLost::Gone))
            };
            let counts: Vec<_> = (0..8).map(|_| counter(&flag)).collect();
            assert!(setter.join().unwrap());
            for n in counts {
                assert_eq!(n.load(Ordering::SeqCst), 1);
            }
        }
    }
}
