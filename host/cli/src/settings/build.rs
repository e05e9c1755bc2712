//! From the resolved values to the bridge's and the driver's configurations: the
//! checks that span several settings, and `pynq-mqtt config`'s output.

use std::path::Path;

use anyhow::Result;
use pynq_mqtt_bridge::{BridgeConfig, Discovery, Rule, Secret, TlsConfig, TopicError, TopicLayout};
use pynq_mqtt_driver::DriverConfig;

use super::{fail, quote, Settings, Shown, Source, Values};

/// The environment variable that carries the broker password (there is no flag:
/// a password on the command line is visible to every user in `ps`).
pub const PASSWORD_ENV: &str = "PYNQ_MQTT_PASSWORD";

/// This machine's host name, for the default client id.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "board".into())
}

/// The password: the environment variable, else the first line of the file.
fn password(file: Option<&Path>, source: &Source) -> Result<Option<(Secret, Source)>> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Some((Secret::new(p), Source::Env(PASSWORD_ENV))));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = format!("cannot read password file {}: {e}", path.display());
        fail(source, "password_file", &msg)
    })?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    Ok(Some((Secret::new(line), source.clone())))
}

fn source<'a>(shown: &'a [Shown], key: &str) -> &'a Source {
    let line = shown.iter().find(|s| s.key == key);
    &line.expect("a declared key").source
}

/// An error for the value of `key`, naming where it came from.
fn blame(shown: &[Shown], key: &str, msg: &str) -> anyhow::Error {
    fail(source(shown, key), key, msg)
}

/// Checks the values and hands each to the bridge or the driver.
pub(super) fn settings(
    v: Values,
    mut shown: Vec<Shown>,
    rules: Vec<Rule>,
    ha_remove: bool,
) -> Result<Settings> {
    if v.client_id.is_empty() || v.client_id.len() > 65_535 {
        return Err(blame(&shown, "client_id", "must be 1 to 65535 bytes"));
    }
    if v.reconnect_max.0 < v.reconnect_min.0 || v.reconnect_min.0.is_zero() {
        let msg = "reconnect_min must be above 0 and at most reconnect_max";
        return Err(blame(&shown, "reconnect_max", msg));
    }
    let password = password(v.password_file.as_deref(), source(&shown, "password_file"))?;
    if password.is_some() && v.username.is_none() {
        let msg = "a password is set (PYNQ_MQTT_PASSWORD or password_file) but no username";
        return Err(blame(&shown, "username", msg));
    }
    let tls = TlsConfig {
        ca_file: v.ca_file.clone(),
        client_cert: v.client_cert.clone(),
        client_key: v.client_key.clone(),
        server_name: v.server_name.clone(),
    };
    if !v.broker.tls && tls != TlsConfig::default() {
        let broker = source(&shown, "broker");
        let msg = format!("TLS settings are given but the broker ({broker}) is not mqtts://");
        return Err(blame(&shown, "ca_file", &msg));
    }
    let topics = TopicLayout {
        prefix: v.prefix.clone(),
        button_topic: v.button_topic.clone(),
        input_names: v.input_names.0.clone(),
        led_names: v.led_names.0.clone(),
    };
    if let Err(e) = topics.check() {
        // blame the setting the error is about, with its file and line
        let inputs = &topics.input_names;
        let key = match &e {
            TopicError::Prefix(_) => "prefix",
            TopicError::ButtonTopic(_) => "button_topic",
            TopicError::Name(n) if inputs.contains(n) => "input_names",
            TopicError::Duplicate(n) if inputs.iter().filter(|x| *x == n).count() > 1 => {
                "input_names"
            }
            TopicError::Name(_) | TopicError::Duplicate(_) => "led_names",
        };
        return Err(blame(&shown, key, &e.to_string()));
    }
    if v.ha_prefix.is_empty() || v.ha_prefix.contains(['+', '#', '\0']) {
        return Err(blame(&shown, "ha_prefix", "not a usable topic prefix"));
    }

    let mut bridge = BridgeConfig::new(&v.broker.addr.host, v.broker.addr.port);
    bridge.tls = v.broker.tls.then_some(tls);
    bridge.client_id = v.client_id.clone();
    bridge.username = v.username.clone();
    bridge.session = v.session;
    bridge.keep_alive = v.keep_alive.0;
    bridge.qos = v.qos;
    bridge.payload = v.payload;
    bridge.topics = topics;
    bridge.buffer_capacity = v.buffer_capacity.get();
    bridge.max_inflight = v.max_inflight.get();
    bridge.reconnect_min = v.reconnect_min.0;
    bridge.reconnect_max = v.reconnect_max.0;
    bridge.stats_interval = Some(v.stats_interval.0).filter(|d| !d.is_zero());
    bridge.shutdown_timeout = v.shutdown_timeout.0;
    bridge.rules = rules;
    bridge.discovery = v.ha_discovery.then(|| Discovery {
        prefix: v.ha_prefix.clone(),
        device_name: v.ha_device_name.clone(),
    });
    let driver = DriverConfig {
        channel_capacity: v.channel_capacity.get(),
        debounce_us: v.debounce_us.get(),
        coalesce_count: v.coalesce_count.get(),
        coalesce_us: v.coalesce_us.get(),
        rt_priority: v.rt_priority.get(),
        ..DriverConfig::default()
    };
    let after = shown
        .iter()
        .position(|s| s.key == "password_file")
        .expect("declared");
    shown.insert(
        after + 1,
        Shown {
            key: "password",
            value: password.as_ref().map(|_| quote("***")),
            source: password.as_ref().map_or(Source::Default, |p| p.1.clone()),
        },
    );
    bridge.password = password.map(|p| p.0);
    Ok(Settings {
        values: v,
        bridge,
        driver,
        ha_remove,
        shown,
    })
}
