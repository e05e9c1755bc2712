//! Home Assistant MQTT discovery: one retained config per input (a binary sensor)
//! and per LED (a switch), all under one device, available while `status` is online.

use serde_json::json;

use crate::config::Discovery;
use crate::payload::{PayloadFormat, StateFormat};
use crate::topics::Topics;

/// The node id in discovery topics: the client id with anything but `[A-Za-z0-9_-]`
/// replaced, as Home Assistant requires.
pub fn node_id(client_id: &str) -> String {
    client_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The retained config messages: (topic, payload).
pub fn configs(
    d: &Discovery,
    topics: &Topics,
    client_id: &str,
    format: PayloadFormat,
    states: StateFormat,
) -> Vec<(String, String)> {
    // JSON button payloads keep `"state": 1/0` whatever the state format
    let press = match format {
        PayloadFormat::Plain => states,
        PayloadFormat::Json => StateFormat::OneZero,
    };
    let node = node_id(client_id);
    let layout = topics.layout();
    let device = json!({
        "identifiers": [node],
        "name": d.device_name,
        "manufacturer": "pynq-mqtt",
        "model": "pynq_mqtt_io on PYNQ",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let mut out = Vec::new();
    for i in 0..topics.n_inputs() {
        let name = layout.input_name(i);
        let id = object_id("in", &name);
        let mut c = json!({
            "name": format!("Input {name}"),
            "unique_id": format!("{node}_{id}"),
            "state_topic": topics.button(i),
            "payload_on": press.text(true),
            "payload_off": press.text(false),
            "availability_topic": topics.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        });
        if format == PayloadFormat::Json {
            c["value_template"] = json!("{{ value_json.state }}");
        }
        out.push((
            format!("{}/binary_sensor/{node}/{id}/config", d.prefix),
            c.to_string(),
        ));
    }
    for i in 0..topics.n_leds() {
        let name = layout.led_name(i);
        let id = object_id("led", &name);
        let c = json!({
            "name": format!("LED {name}"),
            "unique_id": format!("{node}_{id}"),
            "command_topic": topics.led_set(i),
            "state_topic": topics.led(i),
            "payload_on": states.text(true),
            "payload_off": states.text(false),
            "state_on": states.text(true),
            "state_off": states.text(false),
            "availability_topic": topics.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        });
        out.push((
            format!("{}/switch/{node}/{id}/config", d.prefix),
            c.to_string(),
        ));
    }
    out
}

fn object_id(kind: &str, name: &str) -> String {
    node_id(&format!("{kind}_{name}"))
}

/// The topic Home Assistant announces itself on (`online` after it starts).
pub fn ha_status_topic(d: &Discovery) -> String {
    format!("{}/status", d.prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::TopicLayout;

    #[test]
    fn one_config_per_input_and_led_under_one_device() {
        let layout = TopicLayout {
            prefix: "pynq/b1/".into(),
            input_names: vec!["btn0".into()],
            ..TopicLayout::default()
        };
        let topics = Topics::new(&layout, 2, 1);
        let d = Discovery {
            prefix: "homeassistant".into(),
            device_name: "PYNQ b1".into(),
        };
        let c = configs(
            &d,
            &topics,
            "pynq-mqtt.b1",
            PayloadFormat::Json,
            StateFormat::OneZero,
        );
        let names: Vec<&str> = c.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "homeassistant/binary_sensor/pynq-mqtt_b1/in_btn0/config",
                "homeassistant/binary_sensor/pynq-mqtt_b1/in_1/config",
                "homeassistant/switch/pynq-mqtt_b1/led_0/config",
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&c[0].1).unwrap();
        assert_eq!(v["state_topic"], "pynq/b1/button/btn0");
        assert_eq!(v["availability_topic"], "pynq/b1/status");
        assert_eq!(v["value_template"], "{{ value_json.state }}");
        assert_eq!(v["device"]["identifiers"][0], "pynq-mqtt_b1");
        let s: serde_json::Value = serde_json::from_str(&c[2].1).unwrap();
        assert_eq!(s["command_topic"], "pynq/b1/led/0/set");
        assert_eq!(s["state_topic"], "pynq/b1/led/0");
        assert_ne!(v["unique_id"], s["unique_id"]);
        assert_eq!(ha_status_topic(&d), "homeassistant/status");
    }
}
