//! What the page is sent on every tick, read from the layers' atomics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pynq_mqtt_bridge::BridgeStats;
use pynq_mqtt_driver::Stats as DriverStats;

use crate::recent::{recent, Recent};
use crate::Sources;

/// Warnings and errors sent with each snapshot, newest last.
const ERRORS_SHOWN: usize = 8;

/// The board and the daemon at one moment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Snapshot {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// Bit i: input i pressed.
    pub inputs: u32,
    /// Bit i: LED i lit.
    pub leds: u32,
    /// Every counter of the `stats` message by its dotted path, summed where two
    /// share one.
    pub counters: BTreeMap<&'static str, u64>,
    pub connected: bool,
    pub inflight: u64,
    pub window: u64,
    /// Events waiting in the driver's channel.
    pub channel: u64,
    /// Events in the bridge's retry buffer.
    pub buffered: u64,
    pub errors: Vec<Recent>,
}

/// The `stats` message's counters, by path.
pub fn counters(d: &DriverStats, b: &BridgeStats) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    let (d, b) = (d.snapshot(), b.snapshot());
    // the base overlay's own counters only where the driver runs on it
    let base = d.base_board != 0;
    for (c, v) in d.values().chain(b.values()) {
        if let Some(path) = c.json.filter(|p| base || !p.starts_with("base.")) {
            *out.entry(path).or_insert(0) += v;
        }
    }
    out
}

/// Events captured, not dropped at the channel, not yet taken by the bridge.
pub fn channel_depth(d: &DriverStats, b: &BridgeStats) -> u64 {
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    g(&d.captured)
        .saturating_sub(g(&d.channel_full))
        .saturating_sub(g(&b.taken))
}

pub fn take(s: &Sources) -> Snapshot {
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut errors = recent();
    let skip = errors.len().saturating_sub(ERRORS_SHOWN);
    errors.drain(..skip);
    Snapshot {
        at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        inputs: s.levels.inputs(),
        leds: s.levels.leds(),
        counters: counters(&s.driver, &s.bridge),
        connected: s.live.connected.load(Ordering::Relaxed),
        inflight: g(&s.live.inflight),
        window: g(&s.live.window),
        channel: channel_depth(&s.driver, &s.bridge),
        buffered: g(&s.bridge.buffered),
        errors,
    }
}
