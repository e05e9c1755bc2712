//! The batch being written on a live connection (its liveness is `alive.rs`).

use std::time::Instant;

use bytes::BytesMut;

use super::{Session, Shutdown, BATCH_BYTES};
use crate::config::Qos;
use crate::outbox::Next;
use crate::stats::add;
use crate::wire;
use tracing::warn;

/// The connection's side of the batch: what is to be written, how far it got.
#[derive(Debug)]
pub struct Live {
    /// The batch being written, `wbuf[wpos..]` still to go.
    pub(super) wbuf: BytesMut,
    pub(super) wpos: usize,
    /// QoS 0: end offset in `wbuf` of each event in it.
    pub(super) ends: Vec<usize>,
    pub(super) ends_done: usize,
    /// QoS 0: indexes in `ends` of events dropped as too large for the broker: they
    /// finish in order with the others but are not counted as published.
    pub(super) unsent: Vec<usize>,
    /// Control packets waiting for the next batch.
    pub(super) ctrl: BytesMut,
    pub(super) watch: super::alive::Watch,
    /// QoS 0: where recent events end in the stream, for a loss with bytes unacknowledged.
    pub(super) tail: super::unsent::Tail,
    pub(super) sub_pkid: u16,
    /// Bytes still to drop of a packet too large to read.
    pub(super) skip: usize,
    /// What the broker allows on this connection.
    pub(super) limits: crate::wire::Limits,
    /// Control messages (QoS 1) written and not acknowledged yet.
    pub(super) ctrl_out: usize,
    /// Control messages waiting for room under the Receive Maximum: packet id,
    /// topic, payload; and their bytes, which count towards [`super::CTRL_CAP`].
    pub(super) held: std::collections::VecDeque<(u16, String, Vec<u8>)>,
    pub(super) held_bytes: usize,
    /// Bench only, with a trace: end offset in `wbuf` and sequence number of each
    /// event PUBLISH in the batch; the first `traced_done` are recorded.
    pub(super) traced: Vec<(usize, u64)>,
    pub(super) traced_done: usize,
}

/// How [`Session::fill`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The batch holds [`BATCH_BYTES`].
    Full,
    /// The buffer has nothing more that may go now: pull more from the channel.
    Dry,
}

impl Session {
    /// Whether the batch is completely handed to the connection.
    pub fn batch_done(&self) -> bool {
        self.live.as_ref().is_none_or(|l| l.wpos == l.wbuf.len())
    }

    /// What is left of the batch to write.
    pub fn pending(&self) -> &[u8] {
        match &self.live {
            Some(l) => &l.wbuf[l.wpos..],
            None => &[],
        }
    }

    /// Starts a new batch with the control packets waiting; while events of an
    /// earlier connection go again, they come after the events instead. (mosquitto
    /// refuses, and resets the connection on, any QoS 1/2 PUBLISH while it holds its
    /// maximum of our QoS 2 messages awaiting PUBREL: the releases must reach it
    /// before our status and LED states do, or every reconnect ends the same way.)
    pub fn start_batch(&mut self) {
        self.balance();
        let resuming = self.outbox.resuming();
        let Some(l) = self.live.as_mut() else {
            return;
        };
        l.wbuf.clear();
        l.wpos = 0;
        l.ends.clear();
        l.ends_done = 0;
        l.unsent.clear();
        l.traced.clear();
        l.traced_done = 0;
        if !resuming {
            l.wbuf.extend_from_slice(&l.ctrl);
            l.ctrl.clear();
        }
    }

    /// Encodes events from the buffer into the batch until it is full or nothing
    /// more may go now. The hot path: one `next` and one `encode` per event.
    pub fn fill(&mut self) -> Fill {
        let Some(l) = self.live.as_mut() else {
            return Fill::Dry;
        };
        let qos0 = self.cfg.qos == Qos::AtMostOnce;
        let mut resent = 0u64;
        let r = loop {
            if l.wbuf.len() >= BATCH_BYTES {
                break Fill::Full;
            }
            match self.outbox.next() {
                Some(Next::Publish { ev, pkid, dup }) => {
                    let n = self.enc.encode(&mut l.wbuf, &ev, pkid, dup);
                    if !l.limits.fits(n) {
                        // never sent: finished here, counted as lost
                        l.wbuf.truncate(l.wbuf.len() - n);
                        self.enc.unbind(ev.input);
                        add(&self.stats.dropped_broker, 1);
                        if self.ratelog.admit(super::OVERSIZE, Instant::now()) {
                            warn!(
                                input = ev.input,
                                bytes = n,
                                max = l.limits.max_packet,
                                "{}: event dropped",
                                super::OVERSIZE
                            );
                        }
                        if !qos0 {
                            let k = self.outbox.refuse(pkid);
                            add(&self.stats.published, k as u64);
                            continue;
                        }
                        l.unsent.push(l.ends.len());
                    }
                    if qos0 {
                        l.ends.push(l.wbuf.len());
                    }
                    if self.trace.is_some() && l.limits.fits(n) {
                        l.traced.push((l.wbuf.len(), ev.seq));
                    }
                    resent += u64::from(dup);
                }
                Some(Next::Release { pkid }) => wire::pubrel(&mut l.wbuf, pkid),
                None => break Fill::Dry,
            }
        };
        add(&self.stats.resent, resent);
        r
    }

    /// Whether the buffer would give more now (so pulling from the channel can wait).
    pub fn outbox_ready(&self) -> bool {
        self.outbox.wants_write()
    }

    /// Ends the batch with what was queued while it was filled (LED states, the
    /// levels its edges changed), and says whether the run should close the
    /// connection now (DISCONNECT is out).
    pub fn finish_batch(&mut self) -> bool {
        self.queue_levels();
        let Some(l) = self.live.as_mut() else {
            return false;
        };
        l.wbuf.extend_from_slice(&l.ctrl);
        l.ctrl.clear();
        l.wbuf.is_empty() && matches!(self.shutdown, Shutdown::Disconnecting(_))
    }

    /// Bench only: whether writes are traced (the link then stamps each one it issues).
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Bench only: the write that the next [`Session::on_written`] reports was issued
    /// at `unix_ns`.
    pub fn write_issued(&mut self, unix_ns: u64) {
        self.write_issued_ns = unix_ns;
    }

    /// The connection took `n` bytes of the batch.
    pub fn on_written(&mut self, n: usize, now: Instant) {
        let Some(l) = self.live.as_mut() else {
            return;
        };
        l.wpos += n;
        l.watch.wrote(now);
        add(&self.stats.writes, 1);
        add(&self.stats.bytes_written, n as u64);
        // QoS 0: an event is finished once all of its bytes are taken
        let mut done = 0;
        let from = l.ends_done;
        while l.ends_done < l.ends.len() && l.ends[l.ends_done] <= l.wpos {
            l.ends_done += 1;
            done += 1;
        }
        l.tail.wrote(n, l.wpos, &l.ends[from..l.ends_done]);
        let issued = std::mem::take(&mut self.write_issued_ns);
        if let Some(trace) = &self.trace {
            let at = pynq_mqtt_driver::trace::unix_ns();
            while let Some(&(end, seq)) = l.traced.get(l.traced_done) {
                if end > l.wpos {
                    break;
                }
                trace.returned.record(seq, at);
                if issued != 0 {
                    trace.issued.record(seq, issued);
                }
                l.traced_done += 1;
            }
        }
        if done > 0 {
            let k = self.outbox.complete_written(done);
            let dropped = l.unsent.iter().filter(|i| (from..l.ends_done).contains(i));
            add(
                &self.stats.published,
                k.saturating_sub(dropped.count()) as u64,
            );
        }
    }
}
