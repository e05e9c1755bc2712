//! From the resolved values to the bridge's and the driver's configurations, which
//! check what spans several settings.

use anyhow::Result;
use clap::parser::ValueSource;
use clap::ArgMatches;
use pynq_mqtt_bridge::{
    normalize_prefix, BridgeConfig, Brokers, Discovery, Rule, TlsConfig, TopicLayout,
};
use pynq_mqtt_driver::DriverConfig;

use super::{fail, show, BoardKind, Settings, Shown, Source, Values, PASSWORD_ENV};

/// `--broker` given several times: every one, in order (clap's value is the first).
pub(super) fn every_broker(m: &ArgMatches, v: &mut Values, shown: &mut [Shown]) -> Result<()> {
    let Ok(Some(mut all)) = m.try_get_many::<Brokers>("broker") else {
        return Ok(());
    };
    if m.value_source("broker") != Some(ValueSource::CommandLine) {
        return Ok(());
    }
    let first = all.next().cloned().expect("clap gives one value at least");
    let joined = all.try_fold(first, |acc, more| acc.join(more));
    v.broker = joined.map_err(|msg| fail(&Source::Flag("--broker".into()), "broker", &msg))?;
    if let Some(s) = shown.iter_mut().find(|s| s.key == "broker") {
        s.value = Some(show(&v.broker));
    }
    Ok(())
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
    if let (BoardKind::Uio | BoardKind::Base, Some(_)) = (v.board, &v.stimulus) {
        let msg = "a stimulus is for a simulated board (--board sim or base-sim), not a real one";
        return Err(fail(&shown[at("stimulus")].source, "stimulus", msg));
    }
    let pw_at = at("password_file");
    let pw_file = v.password_file.as_deref();
    let password = crate::secrets::password(pw_file)
        .map_err(|msg| fail(&shown[pw_at].source, "password_file", &msg))?;
    let tls = TlsConfig {
        ca_file: v.ca_file.clone(),
        client_cert: v.client_cert.clone(),
        client_key: v.client_key.clone(),
        server_name: v.server_name.clone(),
    };
    let broker = v.broker.first();
    if !broker.tls && tls != TlsConfig::default() {
        let broker = &shown[at("broker")].source;
        let msg = format!("TLS settings are given but the broker ({broker}) is not mqtts://");
        return Err(fail(&shown[at("ca_file")].source, "ca_file", &msg));
    }
    let mut bridge = BridgeConfig::new(&broker.addr.host, broker.addr.port);
    bridge.failover = v.broker.urls()[1..]
        .iter()
        .map(|u| u.addr.clone())
        .collect();
    bridge.tls = broker.tls.then_some(tls);
    bridge.client_id = v.client_id.clone();
    bridge.username = v.username.clone();
    bridge.password = password.as_ref().map(|p| p.0.clone());
    bridge.session = v.session;
    bridge.protocol = v.protocol;
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
    bridge.discovery = v.ha_discovery.0.then(|| Discovery {
        prefix: v.ha_prefix.clone(),
        device_name: v.ha_device_name.clone(),
    });
    if let Err(e) = bridge.validate() {
        return Err(fail(&shown[at(e.key)].source, e.key, &e.msg));
    }
    // the page's control beyond loopback without a token would let the network switch LEDs
    let web_token = std::env::var_os(pynq_mqtt_web::TOKEN_ENV);
    if let Some(a) = v
        .http
        .filter(|a| v.http_control.0 && !a.0.ip().is_loopback())
    {
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
        Some((_, true)) => (Some(show("***")), Source::Env(PASSWORD_ENV)),
        Some((_, false)) => (Some(show("***")), shown[pw_at].source.clone()),
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
        base: None,
    })
}
