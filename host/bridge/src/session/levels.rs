//! Each input's current level, retained on `<prefix>input/<name>` beside the edges on
//! `button/<name>`: a subscriber that comes later (Home Assistant after its restart)
//! sees a switch that has not moved since the start.
//!
//! The level comes from the hardware: the driver reads the INPUTS register at start
//! and at every wake (each interrupt, and at least every `irq_timeout`), and hands up
//! a reading after the events of each drain and whenever it changed; the link takes
//! readings only once the events before them are taken, so the register has the last
//! word. In between, every edge is the input's new level.
//! An input's level is published only once the hardware has given one, then on every
//! connection, on Home Assistant's `online`, and at the end of each batch whose edges
//! or readings changed it: a burst of edges costs one message per input, the last.

use pynq_mqtt_driver::{ButtonEvent, InputLevels};

use super::Session;
use crate::config::Qos;
use crate::stats::add;
use crate::wire;

impl Session {
    /// The inputs' levels as read from the hardware.
    pub fn input_levels(&mut self, l: InputLevels) {
        for (i, level) in self.levels.iter_mut().enumerate() {
            *level = Some(l.level(i as u8));
        }
    }

    /// An edge is its input's new level, once the hardware has given the first
    /// (generated events move no pin).
    #[inline]
    pub(super) fn edge_level(&mut self, ev: &ButtonEvent) {
        if ev.synthetic {
            return;
        }
        if let Some(level @ Some(_)) = self.levels.get_mut(usize::from(ev.input)) {
            *level = Some(ev.level);
        }
    }

    /// Forgets what this connection was told: the next [`Session::queue_levels`]
    /// publishes every known level.
    pub(super) fn levels_again(&mut self) {
        self.levels_sent.fill(None);
    }

    /// Publishes, retained, each known level that differs from what this connection
    /// last said. At QoS 0: a level lost with its connection is said again by the
    /// next one, and level messages take no place in the window of unacknowledged
    /// messages the broker allows (its receive maximum), which belongs to the events.
    pub(super) fn queue_levels(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        for (i, (now, sent)) in self.levels.iter().zip(&mut self.levels_sent).enumerate() {
            if let (Some(on), false) = (now, now == sent) {
                let topic = self.topics.input(i as u8);
                let payload = self.cfg.state_format.state(*on);
                let (at, proto) = (live.ctrl.len(), self.cfg.protocol);
                let n = wire::publish(
                    &mut live.ctrl,
                    proto,
                    &topic,
                    Qos::AtMostOnce,
                    true,
                    0,
                    payload,
                );
                if !live.limits.fits(n) {
                    // a prefix longer than the broker's packet limit: counted, never sent
                    live.ctrl.truncate(at);
                    add(&self.stats.ctrl_too_large, 1);
                }
                *sent = *now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::BytesMut;
    use pynq_mqtt_driver::Stats as DriverStats;
    use rumqttc::mqttbytes::v4::{Packet, Publish};
    use rumqttc::mqttbytes::QoS as CodecQos;

    use super::*;
    use crate::config::{BridgeConfig, Discovery};
    use crate::payload::StateFormat;
    use crate::stats::BridgeStats;
    use crate::wire::Incoming;

    fn session(tune: impl FnOnce(&mut BridgeConfig)) -> Session {
        let mut cfg = BridgeConfig::new("broker", 1883);
        cfg.qos = Qos::AtLeastOnce;
        cfg.keep_alive = Duration::from_secs(1000);
        tune(&mut cfg);
        Session::new(
            Arc::new(cfg),
            4,
            4,
            Arc::new(BridgeStats::default()),
            Arc::new(DriverStats::default()),
        )
    }

    /// One batch, written completely: its PUBLISH packets.
    fn batch(s: &mut Session) -> Vec<Publish> {
        let now = Instant::now();
        if !s.batch_done() {
            let n = s.pending().len();
            s.on_written(n, now);
        }
        s.start_batch();
        s.fill();
        s.finish_batch();
        let mut bytes = BytesMut::from(s.pending());
        s.on_written(bytes.len(), now);
        let mut out = Vec::new();
        while let Some(Incoming::Packet(p)) = wire::read(&mut bytes).unwrap() {
            if let Packet::Publish(p) = p {
                out.push(p);
            }
        }
        out
    }

    /// The (topic, payload, retained at QoS 0) of the level messages in `ps`.
    fn levels(ps: &[Publish]) -> Vec<(String, String, bool)> {
        ps.iter()
            .filter(|p| p.topic.starts_with("input/"))
            .map(|p| {
                let payload = String::from_utf8(p.payload.to_vec()).unwrap();
                let qos0 = p.qos == CodecQos::AtMostOnce && p.pkid == 0;
                (p.topic.clone(), payload, p.retain && qos0)
            })
            .collect()
    }

    fn level(topic: &str, payload: &str) -> (String, String, bool) {
        (topic.into(), payload.into(), true)
    }

    fn edge(input: u8, on: bool, seq: u64, synthetic: bool) -> ButtonEvent {
        ButtonEvent {
            input,
            level: on,
            ts_us: seq,
            seq,
            synthetic,
            utc_us: None,
        }
    }

    #[test]
    fn the_hardware_reading_goes_out_retained_on_every_connection() {
        let mut s = session(|_| {});
        s.connected(false, Instant::now());
        assert!(levels(&batch(&mut s)).is_empty(), "nothing known yet");
        // input 3 is a switch held high since before the start
        s.input_levels(InputLevels(0b1000));
        let got = levels(&batch(&mut s));
        assert_eq!(
            got,
            [
                level("input/0", "0"),
                level("input/1", "0"),
                level("input/2", "0"),
                level("input/3", "1")
            ]
        );
        assert!(levels(&batch(&mut s)).is_empty(), "said once");
        s.disconnected();
        s.connected(true, Instant::now());
        assert_eq!(
            levels(&batch(&mut s)).len(),
            4,
            "every connection hears all"
        );
    }

    #[test]
    fn edges_move_the_level_once_per_batch_and_generated_ones_do_not() {
        let mut s = session(|c| c.state_format = StateFormat::OnOff);
        s.input_levels(InputLevels(0));
        s.connected(false, Instant::now());
        assert_eq!(levels(&batch(&mut s)).len(), 4);
        s.push_event(edge(1, true, 0, false));
        let ps = batch(&mut s);
        assert!(ps.iter().any(|p| p.topic == "button/1"), "the edge itself");
        assert_eq!(levels(&ps), [level("input/1", "ON")]);
        // a press and its release in one batch: the level did not change
        s.push_event(edge(2, true, 1, false));
        s.push_event(edge(2, false, 2, false));
        // three edges on input 0: one message, the last level
        for (k, on) in [true, false, true].into_iter().enumerate() {
            s.push_event(edge(0, on, 3 + k as u64, false));
        }
        assert_eq!(levels(&batch(&mut s)), [level("input/0", "ON")]);
        s.push_event(edge(3, true, 6, true));
        let ps = batch(&mut s);
        assert!(ps.iter().any(|p| p.topic == "button/3"));
        assert!(levels(&ps).is_empty(), "a generated event moves no pin");
        // a reading that disagrees with the edges wins (an edge the daemon missed)
        s.input_levels(InputLevels(0b0010));
        assert_eq!(levels(&batch(&mut s)), [level("input/0", "OFF")]);
    }

    #[test]
    fn edges_before_the_first_reading_publish_no_level() {
        let mut s = session(|_| {});
        s.connected(false, Instant::now());
        batch(&mut s);
        s.push_event(edge(0, true, 0, false));
        assert!(levels(&batch(&mut s)).is_empty());
    }

    #[test]
    fn home_assistants_birth_brings_the_levels_again() {
        let mut s = session(|c| {
            c.discovery = Some(Discovery {
                prefix: "homeassistant".into(),
                device_name: "PYNQ sim".into(),
            })
        });
        s.input_levels(InputLevels(0b0100));
        s.connected(false, Instant::now());
        assert_eq!(levels(&batch(&mut s)).len(), 4);
        assert!(levels(&batch(&mut s)).is_empty());
        let mut b = BytesMut::new();
        Publish::new(
            "homeassistant/status",
            CodecQos::AtMostOnce,
            b"online".to_vec(),
        )
        .write(&mut b)
        .unwrap();
        s.on_read(&mut b).unwrap();
        let ps = batch(&mut s);
        let got = levels(&ps);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.contains(&level("input/2", "1")));
        let configs = ps
            .iter()
            .filter(|p| p.topic.starts_with("homeassistant/binary_sensor/"))
            .count();
        assert_eq!(configs, 4, "with the discovery configs");
    }
}
