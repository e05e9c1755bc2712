//! LED command payloads and command topics as they come off the wire.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pynq_mqtt_bridge::{parse_command, printable, LedTarget, TopicLayout, Topics, MAX_COMMAND_LEN};

fuzz_target!(|data: &[u8]| {
    // payload: an answer for everything, only the five words accepted
    let r = parse_command(data);
    if r.is_ok() {
        assert!(data.len() <= MAX_COMMAND_LEN);
        let t = std::str::from_utf8(data)
            .unwrap()
            .trim()
            .to_ascii_lowercase();
        assert!(
            ["1", "0", "on", "off", "toggle"].contains(&t.as_str()),
            "{t:?}"
        );
    }
    let p = printable(data);
    assert!(p.is_ascii() && p.len() <= 200);
    // topic: the first byte picks a layout, the rest is the topic
    if let Some((&sel, rest)) = data.split_first() {
        let Ok(topic) = std::str::from_utf8(rest) else {
            return;
        };
        let layout = TopicLayout {
            prefix: if sel & 1 == 1 {
                "pynq/b1/".into()
            } else {
                String::new()
            },
            led_names: if sel & 2 == 2 {
                vec!["red".into(), "green".into(), "blue".into(), "x".into()]
            } else {
                Vec::new()
            },
            ..TopicLayout::default()
        };
        let n_leds = (sel >> 2) % 17;
        let t = Topics::new(&layout, 4, n_leds);
        match t.parse_led_set(topic) {
            Some(Ok(LedTarget::All)) => assert_eq!(topic, t.led_set_all()),
            Some(Ok(LedTarget::One(i))) => {
                assert!(i < n_leds);
                assert_eq!(topic, t.led_set(i));
            }
            _ => {}
        }
    }
});
