//! LED command payloads and command topics: whatever arrives on the wire, the parser
//! answers (never panics), accepts exactly the documented words, and no topic other
//! than `<prefix>led/<name>/set` or `<prefix>led/set` addresses an LED.

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
        Just(("toggle".to_string(), LedAction::Toggle)),
    ]
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
        } else if let Ok(a) = r {
            // only the five words (any case, trimmed) are commands
            let t = std::str::from_utf8(&payload).unwrap().trim().to_ascii_lowercase();
            let want = match t.as_str() {
                "1" | "on" => LedAction::On,
                "0" | "off" => LedAction::Off,
                "toggle" => LedAction::Toggle,
                other => return Err(TestCaseError::fail(format!("accepted {other:?}"))),
            };
            prop_assert_eq!(a, want);
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
        prop_assume!(!matches!(text.to_ascii_lowercase().as_str(), "1" | "0" | "on" | "off" | "toggle"));
        prop_assert!(parse_command(text.as_bytes()).is_err(), "{:?} accepted", text);
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
