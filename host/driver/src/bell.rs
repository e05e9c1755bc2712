//! How the driver's threads tell the layer above that a channel has something, from
//! the thread that sent it: no thread waits on the channels in between, so an event
//! costs the publisher one wake-up, not two.
//!
//! The layer above sets a hook once (e.g. a `Notify` of its async runtime); the driver
//! rings after each batch it sent and once more as its threads end, when their
//! channels have closed. Without a hook a ring does nothing, and the channels are
//! plain channels for whoever reads them.

use std::sync::{Arc, OnceLock};

type Hook = Box<dyn Fn() + Send + Sync>;

/// Rung by the driver's threads; see the module's text.
#[derive(Clone, Default)]
pub struct Bell(Arc<OnceLock<Hook>>);

impl Bell {
    /// Sets what a ring calls. Once: false (and `hook` unused) when one is set already.
    /// The hook runs on the driver's threads, one of them real-time: it must not
    /// block (a `Notify::notify_one` or an unpark).
    pub fn set_hook(&self, hook: impl Fn() + Send + Sync + 'static) -> bool {
        self.0.set(Box::new(hook)).is_ok()
    }

    /// Calls the hook, if one is set.
    pub fn ring(&self) {
        if let Some(h) = self.0.get() {
            h();
        }
    }
}

impl std::fmt::Debug for Bell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bell")
            .field("hooked", &self.0.get().is_some())
            .finish()
    }
}
