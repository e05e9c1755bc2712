//! LED command payloads and command topics: whatever arrives on the wire, the parser
//! answers (never panics), accepts exactly the documented words (`1`, `0`, `on`,
//! `off`, `true`, `false`, `toggle`, any case, trimmed) and JSON states
//! (`{"state": "ON"|"OFF"|"TOGGLE"}`, the value in any case, the one key exactly),
//! takes an empty payload for a query, and no topic other than
//! `<prefix>led/<name>/set` or `<prefix>led/set` addresses an LED.

use proptest::prelude::*;
use pynq_mqtt_bridge::{
    parse_command, printable, CommandError, LedTarget, TopicLayout, Topics, MAX_COMMAND_LEN,
};
use pynq_mqtt_driver::LedAction;

fn words() -> impl Strategy<Value = (String, LedAction)> {
    prop_oneof![
        Just(("1".to_string(), LedAction::On)),
        Just(("0".to_string(), LedAction::Off)),
        Just(("on".to_string(), LedAction::On)),
        Just(("off".to_string(), LedAction::Off)),
        Just(("true".to_string(), LedAction::On)),
        Just(("false".to_string(), LedAction::Off)),
        Just(("toggle".to_string(), LedAction::Toggle)),
    ]
}

/// What the grammar says of a trimmed, lower-cased word.
fn word(t: &str) -> Option<LedAction> {
    match t {
        "1" | "on" | "true" => Some(LedAction::On),
        "0" | "off" | "false" => Some(LedAction::Off),
        "toggle" => Some(LedAction::Toggle),
        _ => None,
    }
}

/// What the grammar says of a JSON text: an object of exactly the key `state` with
/// a string that is `on`, `off` or `toggle` in any case.
fn json_state(text: &str) -> Option<LedAction> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    match o.get("state")?.as_str()?.to_ascii_lowercase().as_str() {
        "on" => Some(LedAction::On),
        "off" => Some(LedAction::Off),
        "toggle" => Some(LedAction::Toggle),
        _ => None,
    }
}

fn random_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_get_an_answer(payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let r = parse_command(&payload);
        if payload.len() > MAX_COMMAND_LEN {
            prop_assert_eq!(r, Err(CommandError::TooLong(payload.len())));
        } else if std::str::from_utf8(&payload).is_err() {
            prop_assert_eq!(r, Err(CommandError::NotUtf8));
        } else if payload.is_empty() {
            prop_assert_eq!(r, Err(CommandError::Empty));
        } else {
            // exactly the words (any case, trimmed) and the JSON states are commands
            let text = std::str::from_utf8(&payload).unwrap();
            let want = word(&text.trim().to_ascii_lowercase()).or_else(|| json_state(text));
            match want {
                Some(a) => prop_assert_eq!(r, Ok(a)),
                None => prop_assert_eq!(r, Err(CommandError::Unknown)),
            }
        }
        // the log line of any payload is short and printable ASCII
        let p = printable(&payload);
        prop_assert!(p.is_ascii() && !p.contains('\n') && p.len() <= 32 * 4 + 32, "{:?}", p);
    }

    #[test]
    fn the_words_in_any_case_with_whitespace_are_accepted(
        (w, a) in words(), mask in any::<u64>(), pre in "[ \t]{0,3}", post in "[ \t\r\n]{0,3}",
    ) {
        let text = format!("{pre}{}{post}", random_case(&w, mask));
        prop_assume!(text.len() <= MAX_COMMAND_LEN);
        prop_assert_eq!(parse_command(text.as_bytes()), Ok(a));
    }

    #[test]
    fn near_misses_are_refused((w, _) in words(), junk in "[a-z0-9+#/.,-]{1,3}", front in any::<bool>()) {
        let text = if front { format!("{junk}{w}") } else { format!("{w}{junk}") };
        prop_assume!(word(&text.to_ascii_lowercase()).is_none());
        prop_assert!(parse_command(text.as_bytes()).is_err(), "{:?} accepted", text);
    }

    #[test]
    fn json_states_are_accepted_exactly(
        value in prop_oneof![
            Just("on"), Just("off"), Just("toggle"), Just("true"), Just("1"), Just("onn"), Just(""),
        ],
        mask in any::<u64>(),
        key in prop_oneof![Just("state"), Just("State"), Just("led"), Just("state ")],
        quoted in any::<bool>(),
        extra in proptest::option::of("\"[a-z]{1,5}\":[0-9]{1,3}"),
        ws in proptest::collection::vec("[ \t\r\n]{0,2}", 6),
    ) {
        let v = random_case(value, mask);
        let v = if quoted { format!("\"{v}\"") } else { v };
        let extra = extra.map(|e| format!(",{e}")).unwrap_or_default();
        let text = format!("{}{{{}\"{key}\"{}:{}{v}{}{extra}}}{}", ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]);
        prop_assume!(text.len() <= MAX_COMMAND_LEN);
        let r = parse_command(text.as_bytes());
        let lower = value.to_ascii_lowercase();
        let good = key == "state"
            && quoted
            && extra.is_empty()
            && matches!(lower.as_str(), "on" | "off" | "toggle");
        if good {
            prop_assert_eq!(r, Ok(word(&lower).unwrap()), "{:?}", text);
        } else {
            prop_assert_eq!(r, Err(CommandError::Unknown), "{:?}", text);
        }
    }

    #[test]
    fn only_our_led_topics_address_an_led(
        topic in "(pynq/b1/)?(led|button|status|stats|#|\\+)?(/[a-z0-9+#]{0,4}){0,4}(/set)?",
        prefixed in any::<bool>(),
        n_leds in 1u8..=16,
    ) {
        let layout = TopicLayout { prefix: if prefixed { "pynq/b1/".into() } else { String::new() }, ..TopicLayout::default() };
        let t = Topics::new(&layout, 4, n_leds);
        match t.parse_led_set(&topic) {
            Some(Ok(LedTarget::All)) => prop_assert_eq!(topic.as_str(), t.led_set_all()),
            Some(Ok(LedTarget::One(i))) => {
                prop_assert!(i < n_leds);
                prop_assert_eq!(topic, t.led_set(i));
            }
            Some(Err(msg)) => prop_assert!(msg.contains("no LED named"), "{}", msg),
            None => {}
        }
    }
}

#[test]
fn wildcard_looking_and_neighbouring_topics_address_nothing() {
    let t = Topics::new(&TopicLayout::default(), 4, 4);
    for bad in [
        "led/+/set",
        "led/#",
        "led/#/set",
        "led/+",
        "+/+/set",
        "#",
        "led/0",
        "led/0/set/x",
        "led/0/get",
        "led//set",
        "led/ 0/set",
        "led/00/set",
        "led/-1/set",
        "led/4/set",
        "led/1e0/set",
        "button/0",
        "status",
        "stats",
        "/led/0/set",
        "led/0/set/",
    ] {
        assert!(
            !matches!(t.parse_led_set(bad), Some(Ok(_))),
            "{bad:?} addressed an LED"
        );
    }
}
