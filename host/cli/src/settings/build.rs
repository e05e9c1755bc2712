//! From the resolved values to the bridge's and the driver's configurations, which
//! check what spans several settings; and the password, from its variable or file.

use std::path::Path;

use anyhow::Result;
use pynq_mqtt_bridge::{
    normalize_prefix, BridgeConfig, Discovery, Rule, Secret, TlsConfig, TopicLayout,
};
use pynq_mqtt_driver::DriverConfig;

use super::{fail, show, Settings, Shown, Source, Values};

/// The environment variable that carries the broker password (there is no flag:
/// a password on the command line is visible to every user in `ps`).
pub const PASSWORD_ENV: &str = "PYNQ_MQTT_PASSWORD";

/// This machine's host name, for the default client id.
pub(crate) fn hostname() -> String {
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

/// Hands each value to the bridge or the driver, and blames a refusal on its source.
pub(super) fn settings(
    mut v: Values,
    mut shown: Vec<Shown>,
    rules: Vec<Rule>,
    ha_remove: bool,
) -> Result<Settings> {
    // `pynq` means `pynq/`: topics as `pynqstatus` are never what was meant, and
    // `config` shows the prefix as it will be used
    v.prefix = normalize_prefix(&v.prefix);
    if let Some(s) = shown.iter_mut().find(|s| s.key == "prefix") {
        s.value = Some(show(&v.prefix));
    }
    let at = |key: &str| shown.iter().position(|s| s.key == key).expect("declared");
    let pw_at = at("password_file");
    let password = password(v.password_file.as_deref(), &shown[pw_at].source)?;
    let tls = TlsConfig {
        ca_file: v.ca_file.clone(),
        client_cert: v.client_cert.clone(),
        client_key: v.client_key.clone(),
        server_name: v.server_name.clone(),
    };
    if !v.broker.tls && tls != TlsConfig::default() {
        let broker = &shown[at("broker")].source;
        let msg = format!("TLS settings are given but the broker ({broker}) is not mqtts://");
        return Err(fail(&shown[at("ca_file")].source, "ca_file", &msg));
    }
    let mut bridge = BridgeConfig::new(&v.broker.addr.host, v.broker.addr.port);
    bridge.tls = v.broker.tls.then_some(tls);
    bridge.client_id = v.client_id.clone();
    bridge.username = v.username.clone();
    bridge.password = password.as_ref().map(|p| p.0.clone());
    bridge.session = v.session;
    bridge.keep_alive = v.keep_alive.0;
    bridge.qos = v.qos;
    bridge.payload = v.payload;
    bridge.state_format = v.state_format;
    bridge.topics = TopicLayout {
        prefix: v.prefix.clone(),
        button_topic: v.button_topic.clone(),
        input_names: v.input_names.0.clone(),
        led_names: v.led_names.0.clone(),
    };
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
    if let Err(e) = bridge.validate() {
        return Err(fail(&shown[at(e.key)].source, e.key, &e.msg));
    }
    // the page's control beyond loopback without a token would let the network switch LEDs
    let web_token = std::env::var_os(pynq_mqtt_web::TOKEN_ENV);
    if let Some(a) = v.http.filter(|a| v.http_control && !a.0.ip().is_loopback()) {
        let msg = pynq_mqtt_web::WebError::ControlWithoutToken(a.0).to_string();
        let source = &shown[at("http_control")].source;
        if web_token.is_none() {
            return Err(fail(source, "http_control", &msg));
        }
    }
    let driver = DriverConfig {
        channel_capacity: v.channel_capacity.get(),
        debounce_us: v.debounce_us.get(),
        coalesce_count: v.coalesce_count.get(),
        coalesce_us: v.coalesce_us.get(),
        rt_priority: v.rt_priority.get(),
        ..DriverConfig::default()
    };
    let (value, source) = match password {
        Some((_, source)) => (Some(show("***")), source),
        None => (None, Source::Default),
    };
    let key = "password";
    shown.insert(pw_at + 1, Shown { key, value, source });
    Ok(Settings {
        values: v,
        bridge,
        driver,
        ha_remove,
        shown,
    })
}
