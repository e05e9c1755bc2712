//! The config file parser and the broker URL parser of the CLI: any file gets an
//! answer (never a panic), unknown keys and wrong types are refused naming the key,
//! and a valid value reads back.

use proptest::prelude::*;
use pynq_mqtt::cli::settings_of;
use pynq_mqtt::settings::{self, parse_broker};

fn resolve_text(text: &str) -> Result<settings::Settings, String> {
    let dir = std::env::temp_dir().join(format!("pynq-mqtt-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("c-{:?}.toml", std::thread::current().id()));
    std::fs::write(&path, text).unwrap();
    let path = path.display().to_string();
    settings_of([
        "config",
        "--config",
        &path,
        "--broker",
        "mqtt://127.0.0.1:1883",
    ])
    .map_err(|e| format!("{e:#}"))
}

const KEYS: &[&str] = &[
    "board",
    "broker",
    "prefix",
    "client_id",
    "qos",
    "payload",
    "session",
    "keep_alive",
    "buffer_capacity",
    "max_inflight",
    "reconnect_min",
    "reconnect_max",
    "stats_interval",
    "shutdown_timeout",
    "channel_capacity",
    "username",
    "button_topic",
    "input_names",
    "led_names",
    "ha_discovery",
    "ha_prefix",
    "sim_speed",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,22}(\\.[0-9]{0,3})?",
        "\"[a-z0-9:/.+#{}\\\\ -]{0,12}\"",
        Just("true".into()),
        Just("[]".into()),
        Just("[1, \"a\"]".into()),
        Just("{ a = 1 }".into()),
        Just("1979-05-27T07:32:00Z".into()),
        Just("nan".into()),
        Just("inf".into()),
        Just("\"\\u0000\"".into()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_gets_an_answer(text in "([a-z_\\[\\]=\" 0-9.#{},\n-]|\u{fffd}){0,120}") {
        let _ = resolve_text(&text);
    }

    #[test]
    fn any_known_key_with_any_value_gets_an_answer(
        kv in proptest::collection::vec((prop::sample::select(KEYS), value()), 0..6),
    ) {
        let mut seen = std::collections::HashSet::new();
        let text: String = kv
            .iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        if let Err(e) = resolve_text(&text) {
            // a value TOML itself refuses: the file, line and column (with toml's
            // snippet below); any other refusal: one line naming the key
            if e.contains("TOML parse error") {
                prop_assert!(e.contains(".toml") && e.contains("line "), "{}", e);
            } else {
                prop_assert!(!e.contains('\n'), "{}", e);
                let words = e.replace(' ', "_");
                prop_assert!(kv.iter().any(|(k, _)| words.contains(k)), "{}", e);
            }
        }
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line(key in "[a-z][a-z_]{0,12}", pad in 0usize..4) {
        prop_assume!(!KEYS.contains(&key.as_str()) && !["rule", "password_file", "ca_file",
            "client_cert", "client_key", "server_name", "ha_device_name", "stimulus", "device"].contains(&key.as_str()));
        let text = format!("{}{key} = 1\n", "\n".repeat(pad));
        let e = resolve_text(&text).expect_err("unknown key accepted");
        prop_assert!(e.contains(&key), "{}", e);
        prop_assert!(e.contains(&format!("line {}", pad + 1)), "no line {} in {}", pad + 1, e);
    }

    #[test]
    fn a_wrong_type_is_refused_naming_the_key(
        key in prop::sample::select(&["qos", "keep_alive", "buffer_capacity", "max_inflight", "channel_capacity"][..]),
    ) {
        let e = resolve_text(&format!("{key} = [1]\n")).expect_err("array accepted");
        prop_assert!(e.contains(key), "{}", e);
    }

    #[test]
    fn broker_urls_get_an_answer(url in "(mqtts?://)?[a-z0-9.:\\[\\]@/-]{0,20}") {
        if let Ok((addr, tls)) = parse_broker(&url) {
            prop_assert!(!addr.host.is_empty() && addr.port > 0);
            prop_assert_eq!(tls, url.starts_with("mqtts://"));
        }
    }

    #[test]
    fn broker_urls_read_back(host in "[a-z][a-z0-9.-]{0,15}", port in 1u16..,  tls in any::<bool>()) {
        let url = format!("{}://{host}:{port}", if tls { "mqtts" } else { "mqtt" });
        let (addr, t) = parse_broker(&url).unwrap();
        prop_assert_eq!((addr.host.as_str(), addr.port, t), (host.as_str(), port, tls));
    }
}

/// A bad `prefix` or `button_topic` in the file is refused naming that key, the file
/// and its line (not the last topic setting read, as it once was).
#[test]
fn a_bad_prefix_in_the_file_names_the_file_line_and_key() {
    for (key, value) in [("prefix", "\"a+/\""), ("button_topic", "\"x/#\"")] {
        let e = resolve_text(&format!("\n{key} = {value}\n")).expect_err("wildcard accepted");
        assert!(
            e.contains(".toml") && e.contains("line 2") && e.contains(key),
            "{e}"
        );
    }
}

#[test]
fn wildcards_in_topic_settings_are_refused() {
    for (key, value) in [
        ("prefix", "\"a+/\""),
        ("prefix", "\"#/\""),
        ("button_topic", "\"x/#\""),
        ("led_names", "[\"a\", \"+\", \"c\", \"d\"]"),
    ] {
        let e = resolve_text(&format!("{key} = {value}\n")).expect_err("wildcard accepted");
        assert!(
            !e.contains('\n') && (e.contains("wildcards") || e.contains("+, #")),
            "{e}"
        );
    }
}
