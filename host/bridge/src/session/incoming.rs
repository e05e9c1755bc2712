//! What the broker sends: acknowledgements, LED commands, rules' messages and Home
//! Assistant's birth message.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use pynq_mqtt_driver::{LedAction, LedCommand};
use rumqttc::mqttbytes::matches as topic_matches;
use rumqttc::mqttbytes::v4::{Packet, SubscribeReasonCode};
use tracing::{debug, error, info, warn};

use super::{Session, Shutdown};
use crate::config::{Qos, Rule, RuleLeds};
use crate::error::Lost;
use crate::outbox::EVENT_PKIDS;
use crate::payload::{parse_command, CommandError};
use crate::shown;
use crate::stats::add;
use crate::topics::LedTarget;
use crate::wire::{self, Incoming};

/// The last QoS 1/2 messages acted on (packet id and a hash of topic and payload):
/// a copy the broker sends again with `dup` after a reconnect (our PUBACK was lost)
/// is acknowledged, not acted on twice (a `toggle` twice would undo itself). The
/// hash keeps a broker that reuses ids at once from having a different message taken
/// for a copy.
#[derive(Debug, Default)]
pub(super) struct RecentIds(std::collections::VecDeque<(u16, u64)>);

impl RecentIds {
    pub(super) const KEEP: usize = 256;

    /// True when this message was already acted on; otherwise remembers it.
    pub(super) fn repeated(
        &mut self,
        qos: Qos,
        dup: bool,
        pkid: u16,
        topic: &str,
        payload: &[u8],
    ) -> bool {
        if qos == Qos::AtMostOnce {
            return false;
        }
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        topic.hash(&mut h);
        payload.hash(&mut h);
        let key = (pkid, h.finish());
        if dup && self.0.contains(&key) {
            return true;
        }
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back(key);
        false
    }
}

/// Causes of the rate-limited log lines (`ratelog`), named as their lines begin.
const REJECTED: &str = "LED command rejected";
const TOO_LARGE: &str = "message too large";
const RETAINED: &str = "retained LED command ignored";
const HA_ONLINE: &str = "Home Assistant (re)started";
const REFUSED: &str = "the broker refused a message";

fn pub_ack(ctrl: &mut BytesMut, qos: Qos, pkid: u16) {
    match qos {
        Qos::AtMostOnce => {}
        Qos::AtLeastOnce => wire::puback(ctrl, pkid),
        Qos::ExactlyOnce => wire::pubrec(ctrl, pkid),
    }
}

impl Session {
    /// Handles every complete packet at the front of `rbuf` (what the connection
    /// read); an incomplete one stays there.
    pub fn on_read(&mut self, rbuf: &mut BytesMut) -> Result<(), Lost> {
        self.on_read_at(rbuf, Instant::now())
    }

    /// [`Session::on_read`] at `now`. Only a complete packet is a sign of life: the
    /// bytes of one being skipped, or of one not complete yet, are not.
    pub fn on_read_at(&mut self, rbuf: &mut BytesMut, now: Instant) -> Result<(), Lost> {
        loop {
            let Some(l) = self.live.as_mut() else {
                return Ok(());
            };
            if l.skip > 0 {
                let n = l.skip.min(rbuf.len());
                rbuf.advance(n);
                l.skip -= n;
                if l.skip > 0 {
                    return Ok(());
                }
            }
            match wire::read_as(rbuf, self.cfg.protocol)? {
                None => return Ok(()),
                Some(Incoming::Packet(p)) => {
                    l.watch.packet(now);
                    self.on_packet(p, now)?;
                }
                Some(Incoming::Disconnect { code, reason }) => {
                    return Err(Lost::BrokerSaid { code, reason });
                }
                Some(Incoming::Failed {
                    kind,
                    pkid,
                    code,
                    reason,
                }) => {
                    l.watch.packet(now);
                    l.watch.acked(now);
                    self.on_failed(kind, pkid, code, reason.as_deref(), now)?;
                }
                Some(Incoming::ConnAck(_)) => {
                    l.watch.packet(now);
                    debug!("a second CONNACK from the broker: ignored");
                }
                Some(Incoming::TooLarge {
                    frame_len,
                    publish: None,
                }) => {
                    // only a PUBLISH may be large; anything else is not a broker we
                    // can follow, and skipping it could swallow every later ack
                    return Err(Lost::Oversized(frame_len));
                }
                Some(Incoming::TooLarge {
                    frame_len,
                    publish: Some((topic, qos, pkid)),
                }) => {
                    // skipped, and acknowledged so that it does not come back
                    l.skip = frame_len;
                    let why = format!("message of {frame_len} bytes is too large");
                    pub_ack(&mut l.ctrl, qos, pkid);
                    if self.topics.parse_led_set(&topic).is_some() {
                        self.reject(&topic, b"", &why);
                    } else if self.ratelog.admit(TOO_LARGE, now) {
                        warn!(topic = %shown::text(&topic), "{why}; ignored");
                    }
                }
            }
        }
    }

    fn on_packet(&mut self, p: Packet, now: Instant) -> Result<(), Lost> {
        let Some(l) = self.live.as_mut() else {
            return Ok(());
        };
        if matches!(
            p,
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_)
        ) {
            l.watch.acked(now);
        }
        match p {
            Packet::PubAck(a) if a.pkid > EVENT_PKIDS => {
                l.ctrl_out = l.ctrl_out.saturating_sub(1);
                self.ctrl_acked(a.pkid);
            }
            Packet::PubAck(a) => {
                let n = self.outbox.puback(a.pkid);
                add(&self.stats.published, n as u64);
                self.balance();
            }
            Packet::PubRec(r) => {
                // answered with PUBREL also when we no longer know the id, so the
                // broker can release its state
                self.outbox.pubrec(r.pkid);
                wire::pubrel(&mut l.ctrl, r.pkid);
            }
            Packet::PubComp(r) => {
                let n = self.outbox.pubcomp(r.pkid);
                add(&self.stats.published, n as u64);
                self.balance();
            }
            Packet::SubAck(s) if s.pkid == l.sub_pkid => {
                for (code, (filter, _)) in s.return_codes.iter().zip(&self.subscriptions) {
                    if *code == SubscribeReasonCode::Failure {
                        error!(filter = %filter, "the broker refused the subscription (ACL?)");
                    }
                }
            }
            Packet::Publish(p) => {
                let qos = wire::from_qos(p.qos);
                if self
                    .recent_in
                    .repeated(qos, p.dup, p.pkid, &p.topic, &p.payload)
                {
                    debug!(topic = %shown::text(&p.topic), pkid = p.pkid, "message sent again: acknowledged, not acted on twice");
                } else {
                    self.on_message(&p.topic, &p.payload, p.retain);
                }
                if let Some(l) = self.live.as_mut() {
                    pub_ack(&mut l.ctrl, qos, p.pkid);
                }
            }
            Packet::PubRel(r) => wire::pubcomp(&mut l.ctrl, r.pkid),
            Packet::Disconnect => return Err(Lost::BrokerDisconnect),
            Packet::PingResp => {}
            // by type and size only: an echoed CONNECT would show our password
            other => debug!(
                packet = shown::kind(&other),
                bytes = shown::size(&other),
                "ignored packet from the broker"
            ),
        }
        Ok(())
    }

    /// A control message acknowledged: room for the next held one; `offline`'s
    /// acknowledgement lets the DISCONNECT go.
    fn ctrl_acked(&mut self, id: u16) {
        if let (Shutdown::SayingOffline { pkid, grace }, Some(l)) =
            (self.shutdown, self.live.as_mut())
        {
            if pkid == id {
                wire::disconnect(&mut l.ctrl);
                self.shutdown = Shutdown::Disconnecting(grace);
            }
        }
        self.balance();
    }

    /// MQTT 5: an acknowledgement with a failure reason code. The message's flow is
    /// over and it was not delivered: an event is counted as lost, and every
    /// refusal is logged, rate-limited, with the broker's reason shortened. An event
    /// refused for a quota (Receive Maximum exceeded, Quota exceeded) is not lost: it
    /// stays unanswered and the connection ends, so that it goes again on the next
    /// one. (mosquitto 2.0 can answer so right after a reconnect, counting messages
    /// of the old connection; a new one counts afresh.)
    fn on_failed(
        &mut self,
        kind: &'static str,
        pkid: u16,
        code: u8,
        reason: Option<&str>,
        now: Instant,
    ) -> Result<(), Lost> {
        if matches!(code, 0x93 | 0x97) && (1..=EVENT_PKIDS).contains(&pkid) {
            return Err(Lost::OverQuota { code });
        }
        if self.ratelog.admit(REFUSED, now) {
            warn!(packet = kind, pkid, code = format_args!("{code:#04x}"),
                reason = %reason.map(shown::text).map(|r| r.to_string()).unwrap_or_default(),
                "{REFUSED}: {}", wire::reason_name(code));
        }
        if pkid > EVENT_PKIDS {
            if let Some(l) = self.live.as_mut() {
                l.ctrl_out = l.ctrl_out.saturating_sub(1);
            }
            self.ctrl_acked(pkid);
        } else if pkid > 0 {
            add(&self.stats.dropped_broker, 1);
            let n = self.outbox.refuse(pkid);
            add(&self.stats.published, n as u64);
            self.balance();
        }
        Ok(())
    }

    /// An incoming message: LED command, rule, or Home Assistant's birth message.
    /// A retained one drives no LED: the broker hands it out again at every
    /// subscription, that is at every reconnect, where nobody sent it.
    fn on_message(&mut self, topic: &str, payload: &[u8], retained: bool) {
        if let Some(target) = self.topics.parse_led_set(topic) {
            if retained {
                self.ignore_retained(topic);
            } else {
                self.led_set(topic, target, payload);
            }
        } else if let Some(led) = self.topics.parse_led_get(topic) {
            if retained {
                self.ignore_retained(topic);
            } else {
                self.republish(led..led + 1);
            }
        }
        let relative = topic.strip_prefix(self.topics.prefix());
        let cfg = Arc::clone(&self.cfg);
        let mut hits = cfg
            .rules
            .iter()
            .filter(|r| rule_matches(r, relative, payload))
            .peekable();
        if retained {
            if hits.peek().is_some() {
                self.ignore_retained(topic);
            }
        } else {
            for r in hits {
                debug!(topic = %shown::text(topic), action = %r.action, "rule");
                match &r.leds {
                    RuleLeds::All => self.command(0..self.topics.n_leds(), r.action),
                    RuleLeds::Some(v) => {
                        for &led in v {
                            self.commands.push(LedCommand {
                                led,
                                action: r.action,
                            });
                        }
                    }
                }
            }
        }
        if topic == self.topics.status()
            && payload == b"online"
            && !retained
            && self.shared_status.received()
        {
            let line = crate::fleet::shared_status_line(topic, &self.cfg.client_id);
            warn!("{line}");
        }
        if self.ha_status.as_deref() == Some(topic) && payload == b"online" {
            let now = Instant::now();
            if self.ratelog.admit(HA_ONLINE, now) {
                info!("{HA_ONLINE}: discovery configs again (once per interval at most)");
            }
            self.queue_discovery_again(now);
        }
    }

    /// A command on `led/<name>/set` or `led/set`: acted on, or rejected and logged.
    fn led_set(&mut self, topic: &str, target: Result<LedTarget, String>, payload: &[u8]) {
        let parsed = target.and_then(|t| match parse_command(payload) {
            Ok(a) => Ok((t, Some(a))),
            // an empty payload asks for the state (Tasmota's habit)
            Err(CommandError::Empty) => Ok((t, None)),
            Err(e) => Err(e.to_string()),
        });
        match parsed {
            Ok((LedTarget::One(i), None)) => self.republish(i..i + 1),
            Ok((LedTarget::All, None)) => self.republish(0..self.topics.n_leds()),
            Err(why) => self.reject(topic, payload, &why),
            Ok((LedTarget::One(i), Some(action))) => self.command(i..i + 1, action),
            Ok((LedTarget::All, Some(action))) => self.command(0..self.topics.n_leds(), action),
        }
    }

    /// The state of `leds` published again (retained, as always), for those whose
    /// state was read back already.
    fn republish(&mut self, leds: std::ops::Range<u8>) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        for led in leds {
            if let Some(Some(on)) = self.led_state.get(usize::from(led)) {
                let topic = self.topics.led(led);
                let payload = self.cfg.state_format.state(*on);
                super::retained(live, &mut self.next_ctrl, &topic, payload);
            }
        }
        self.balance();
    }

    /// A retained command: not acted on; the first of the run says how to clear it.
    fn ignore_retained(&mut self, topic: &str) {
        let t = shown::text(topic);
        if self.ratelog.once(RETAINED, Instant::now()) {
            warn!(
                topic = %t,
                "{RETAINED} (the broker would send it again at every reconnect): \
                 clear it with an empty retained message, e.g. `mosquitto_pub -r -n -t '{t}'`"
            );
        } else {
            debug!(topic = %t, "{RETAINED}");
        }
    }

    fn command(&mut self, leds: std::ops::Range<u8>, action: LedAction) {
        self.commands
            .extend(leds.map(|led| LedCommand { led, action }));
    }

    fn reject(&mut self, topic: &str, payload: &[u8], why: &str) {
        add(&self.stats.commands_rejected, 1);
        if self.ratelog.admit(REJECTED, Instant::now()) {
            warn!(
                topic = %shown::text(topic),
                payload = %shown::bytes(payload),
                "{REJECTED}: {why}"
            );
        }
    }
}

/// A rule without `payloads` acts on presses only: on both edges a toggle would undo
/// itself at every click.
fn rule_matches(r: &Rule, relative: Option<&str>, payload: &[u8]) -> bool {
    relative.is_some_and(|t| topic_matches(t, &r.topic))
        && match r.payloads.is_empty() {
            true => is_press(payload),
            false => r.payloads.iter().any(|p| p.as_bytes() == payload),
        }
}

/// A payload that says "pressed" or "on": `1`, `on`, `true` (any case), or a JSON
/// object whose `state` is one of those, 1 or true (the button's JSON payload).
fn is_press(payload: &[u8]) -> bool {
    let word = |w: &str| {
        ["1", "on", "true"]
            .iter()
            .any(|p| w.eq_ignore_ascii_case(p))
    };
    let Ok(text) = std::str::from_utf8(payload) else {
        return false;
    };
    if word(text.trim()) {
        return true;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => match o.get("state") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
            Some(serde_json::Value::String(s)) => word(s),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use pynq_mqtt_driver::{LedReport, Stats as DriverStats};
    use rumqttc::mqttbytes::v4::Publish;
    use rumqttc::mqttbytes::QoS;

    use super::*;
    use crate::config::BridgeConfig;
    use crate::stats::BridgeStats;

    /// A connected session of a board with 4 LEDs and the seed's rule (`button/0`
    /// toggles every LED), its announcements taken out.
    fn session() -> (Session, Arc<BridgeStats>) {
        let mut cfg = BridgeConfig::new("broker", 1883);
        cfg.rules.push(Rule {
            topic: "button/0".into(),
            payloads: Vec::new(),
            action: LedAction::Toggle,
            leds: RuleLeds::All,
        });
        let stats = Arc::new(BridgeStats::default());
        let mut s = Session::new(
            Arc::new(cfg),
            4,
            4,
            Arc::clone(&stats),
            Arc::new(DriverStats::default()),
        );
        s.connected(false, Instant::now());
        s.live().expect("connected").ctrl.clear();
        (s, stats)
    }

    fn feed(s: &mut Session, topic: &str, payload: &[u8], retain: bool, pkid: u16) {
        let mut p = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec());
        p.pkid = pkid;
        p.retain = retain;
        let mut b = BytesMut::new();
        p.write(&mut b).unwrap();
        s.on_read(&mut b).unwrap();
    }

    const SENT: [(&str, &[u8]); 4] = [
        ("led/0/set", b"toggle"),
        ("led/set", b"on"),
        ("led/9/set", b"on"),
        ("button/0", b"1"),
    ];

    #[test]
    fn retained_commands_and_rule_triggers_drive_no_led_but_are_acknowledged() {
        let (mut s, stats) = session();
        for (k, (topic, payload)) in SENT.iter().enumerate() {
            feed(&mut s, topic, payload, true, k as u16 + 1);
        }
        assert!(s.commands.is_empty(), "{:?}", s.commands);
        assert_eq!(stats.commands_rejected.load(Ordering::Relaxed), 0);
        let mut ctrl = s.live().expect("connected").ctrl.split();
        let mut acked = Vec::new();
        while let Some(Incoming::Packet(Packet::PubAck(a))) = wire::read(&mut ctrl).unwrap() {
            acked.push(a.pkid);
        }
        assert_eq!(
            acked,
            [1, 2, 3, 4],
            "a retained command is acknowledged all the same"
        );
        // the same, sent now (not retained): acted on
        for (k, (topic, payload)) in SENT.iter().enumerate() {
            feed(&mut s, topic, payload, false, k as u16 + 11);
        }
        assert_eq!(s.commands.len(), 1 + 4 + 4, "{:?}", s.commands);
        assert_eq!(stats.commands_rejected.load(Ordering::Relaxed), 1);
    }

    /// The retained PUBLISHes in the session's control buffer: (topic, payload).
    fn published(s: &mut Session) -> Vec<(String, Vec<u8>)> {
        let mut ctrl = s.live().expect("connected").ctrl.split();
        let mut out = Vec::new();
        while let Some(Incoming::Packet(p)) = wire::read(&mut ctrl).unwrap() {
            if let Packet::Publish(p) = p {
                out.push((p.topic.clone(), p.payload.to_vec()));
            }
        }
        out
    }

    #[test]
    fn an_empty_command_or_a_get_publishes_the_state_again_unless_retained() {
        let (mut s, stats) = session();
        s.led_report(LedReport { led: 1, on: true });
        s.led_report(LedReport { led: 2, on: false });
        let _ = published(&mut s);
        feed(&mut s, "led/1/set", b"", false, 1);
        feed(&mut s, "led/2/get", b"anything", false, 2);
        feed(&mut s, "led/set", b"", false, 3);
        // LED 0 and 3 were never read back: nothing to say about them
        feed(&mut s, "led/0/get", b"", false, 4);
        let want: Vec<(String, Vec<u8>)> = [
            ("led/1", b"1"),
            ("led/2", b"0"),
            ("led/1", b"1"),
            ("led/2", b"0"),
        ]
        .iter()
        .map(|(t, p)| (t.to_string(), p.to_vec()))
        .collect();
        assert_eq!(published(&mut s), want);
        assert!(s.commands.is_empty(), "{:?}", s.commands);
        assert_eq!(stats.commands_rejected.load(Ordering::Relaxed), 0);
        // retained questions are not answered (the broker replays them at every reconnect)
        feed(&mut s, "led/1/get", b"", true, 5);
        feed(&mut s, "led/1/set", b"", true, 6);
        assert_eq!(published(&mut s), []);
        // an empty payload for an LED that does not exist is still refused
        feed(&mut s, "led/9/set", b"", false, 7);
        assert_eq!(stats.commands_rejected.load(Ordering::Relaxed), 1);
        assert!(s.subscriptions.iter().any(|(f, _)| f == "led/+/get"));
    }

    #[test]
    fn the_state_format_applies_to_readbacks() {
        let mut cfg = BridgeConfig::new("broker", 1883);
        cfg.state_format = crate::payload::StateFormat::OnOff;
        let mut s = Session::new(
            Arc::new(cfg),
            4,
            4,
            Arc::new(BridgeStats::default()),
            Arc::new(DriverStats::default()),
        );
        s.led_report(LedReport { led: 0, on: true });
        s.connected(false, Instant::now());
        let at_connect = published(&mut s);
        assert!(
            at_connect.contains(&("led/0".into(), b"ON".to_vec())),
            "{at_connect:?}"
        );
        s.led_report(LedReport { led: 0, on: false });
        feed(&mut s, "led/0/get", b"", false, 1);
        assert_eq!(
            published(&mut s),
            [
                ("led/0".into(), b"OFF".to_vec()),
                ("led/0".into(), b"OFF".to_vec())
            ]
        );
    }

    #[test]
    fn every_rejection_is_counted_and_only_the_first_few_are_shown() {
        let (mut s, stats) = session();
        let t0 = Instant::now();
        let n = 5_000u64;
        for k in 0..n {
            feed(
                &mut s,
                "led/0/set",
                b"blink!",
                false,
                (k % 60_000) as u16 + 1,
            );
        }
        assert_eq!(stats.commands_rejected.load(Ordering::Relaxed), n);
        let quiet: u64 = s
            .ratelog
            .drain(t0)
            .iter()
            .filter(|c| c.what == REJECTED)
            .map(|c| c.n)
            .sum();
        assert_eq!(quiet, n - u64::from(crate::ratelog::FIRST));
    }
}
