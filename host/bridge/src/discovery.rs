//! Home Assistant MQTT discovery: one retained config per input (a binary sensor)
//! and per LED (a switch), all under one device, available while `status` is online.

use serde_json::json;

use crate::config::Discovery;
use crate::payload::StateFormat;
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

/// The device's name in Home Assistant when none is set: `PYNQ` and what is the
/// board's own in the client id (`pynq-mqtt-3f2a1c` gives `PYNQ 3f2a1c`), so that
/// entity ids do not say "pynq" twice.
pub fn default_device_name(client_id: &str) -> String {
    let own = client_id
        .strip_prefix("pynq-mqtt")
        .map(|rest| rest.trim_start_matches(['-', '_', '.']))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(client_id);
    format!("PYNQ {own}")
}

/// Home Assistant's slug of a name: lower-case letters and digits, single `_` between
/// words.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// The retained config messages: (topic, payload). An input is a binary sensor on
/// its retained level topic (`input/<name>`, in the state format), so Home Assistant
/// shows a switch that has not moved, also after its own restart; an LED is a switch.
/// An entity's name is the name given to its input or LED, else `Input <i>` or
/// `LED <i>`; its default entity id is the device's slug and the entity's.
pub fn configs(
    d: &Discovery,
    topics: &Topics,
    client_id: &str,
    states: StateFormat,
) -> Vec<(String, String)> {
    let node = node_id(client_id);
    let layout = topics.layout();
    let device = json!({
        "identifiers": [node],
        "name": d.device_name,
        "manufacturer": "pynq-mqtt",
        "model": "pynq_mqtt_io on PYNQ",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let device_slug = slug(&d.device_name);
    let entity = |domain: &str, kind: &str, given: Option<&String>, i: u8| {
        let name = match given {
            Some(n) => n.clone(),
            None => format!("{kind} {i}"),
        };
        let default_entity_id = match slug(&name) {
            s if device_slug.is_empty() => format!("{domain}.{s}"),
            s => format!("{domain}.{device_slug}_{s}"),
        };
        json!({
            "name": name,
            "default_entity_id": default_entity_id,
            "availability_topic": topics.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        })
    };
    let mut out = Vec::new();
    for i in 0..topics.n_inputs() {
        let id = object_id("in", &layout.input_name(i));
        let mut c = entity(
            "binary_sensor",
            "Input",
            layout.input_names.get(usize::from(i)),
            i,
        );
        c["unique_id"] = json!(format!("{node}_{id}"));
        c["state_topic"] = json!(topics.input(i));
        c["payload_on"] = json!(states.text(true));
        c["payload_off"] = json!(states.text(false));
        out.push((
            format!("{}/binary_sensor/{node}/{id}/config", d.prefix),
            c.to_string(),
        ));
    }
    for i in 0..topics.n_leds() {
        let id = object_id("led", &layout.led_name(i));
        let mut c = entity("switch", "LED", layout.led_names.get(usize::from(i)), i);
        c["unique_id"] = json!(format!("{node}_{id}"));
        c["command_topic"] = json!(topics.led_set(i));
        c["state_topic"] = json!(topics.led(i));
        c["payload_on"] = json!(states.text(true));
        c["payload_off"] = json!(states.text(false));
        c["state_on"] = json!(states.text(true));
        c["state_off"] = json!(states.text(false));
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

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

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
        let c = configs(&d, &topics, "pynq-mqtt.b1", StateFormat::OneZero);
        let names: Vec<&str> = c.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "homeassistant/binary_sensor/pynq-mqtt_b1/in_btn0/config",
                "homeassistant/binary_sensor/pynq-mqtt_b1/in_1/config",
                "homeassistant/switch/pynq-mqtt_b1/led_0/config",
            ]
        );
        let v = json(&c[0].1);
        // the retained level, not the edges: HA shows a switch that never moved
        assert_eq!(v["state_topic"], "pynq/b1/input/btn0");
        assert_eq!(v["availability_topic"], "pynq/b1/status");
        assert_eq!(v["value_template"], serde_json::Value::Null);
        assert_eq!(v["device"]["identifiers"][0], "pynq-mqtt_b1");
        let s = json(&c[2].1);
        assert_eq!(s["command_topic"], "pynq/b1/led/0/set");
        assert_eq!(s["state_topic"], "pynq/b1/led/0");
        assert_ne!(v["unique_id"], s["unique_id"]);
        assert_eq!(ha_status_topic(&d), "homeassistant/status");
    }

    #[test]
    fn given_names_name_the_entities_and_ids_say_pynq_once() {
        let layout = TopicLayout {
            input_names: vec!["Door".into(), "sw_1".into()],
            led_names: vec!["red".into()],
            ..TopicLayout::default()
        };
        let topics = Topics::new(&layout, 3, 2);
        let d = Discovery {
            prefix: "homeassistant".into(),
            device_name: default_device_name("pynq-mqtt-3f2a1c"),
        };
        assert_eq!(d.device_name, "PYNQ 3f2a1c");
        let c = configs(&d, &topics, "pynq-mqtt-3f2a1c", StateFormat::OnOff);
        let got: Vec<(String, String, String)> = c
            .iter()
            .map(|(_, body)| {
                let v = json(body);
                let s = |k: &str| v[k].as_str().unwrap().to_owned();
                (s("name"), s("default_entity_id"), s("unique_id"))
            })
            .collect();
        let want = [
            (
                "Door",
                "binary_sensor.pynq_3f2a1c_door",
                "pynq-mqtt-3f2a1c_in_Door",
            ),
            (
                "sw_1",
                "binary_sensor.pynq_3f2a1c_sw_1",
                "pynq-mqtt-3f2a1c_in_sw_1",
            ),
            (
                "Input 2",
                "binary_sensor.pynq_3f2a1c_input_2",
                "pynq-mqtt-3f2a1c_in_2",
            ),
            ("red", "switch.pynq_3f2a1c_red", "pynq-mqtt-3f2a1c_led_red"),
            (
                "LED 1",
                "switch.pynq_3f2a1c_led_1",
                "pynq-mqtt-3f2a1c_led_1",
            ),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        let door = json(&c[0].1);
        assert_eq!(door["state_topic"], "input/Door");
        assert_eq!(
            (door["payload_on"].as_str(), door["payload_off"].as_str()),
            (Some("ON"), Some("OFF"))
        );
        assert_eq!(
            door["object_id"],
            serde_json::Value::Null,
            "removed in HA 2026.4"
        );
    }

    #[test]
    fn the_default_device_name_keeps_what_is_the_boards() {
        assert_eq!(default_device_name("pynq-mqtt-sim"), "PYNQ sim");
        assert_eq!(default_device_name("pynq-mqtt.b1"), "PYNQ b1");
        assert_eq!(default_device_name("kitchen"), "PYNQ kitchen");
        assert_eq!(default_device_name("pynq-mqtt"), "PYNQ pynq-mqtt");
        assert_eq!(slug("PYNQ 3f2a1c"), "pynq_3f2a1c");
        assert_eq!(slug("  Küche -- Tür! "), "k_che_t_r");
        assert_eq!(slug("__"), "");
    }
}
