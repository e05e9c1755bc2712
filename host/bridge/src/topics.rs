//! The topic layout of the MQTT contract, under an optional prefix.

/// Builds and recognizes the daemon's topics.
#[derive(Clone, Debug, Default)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// `prefix` is prepended verbatim (e.g. `pynq/board1/`); empty keeps the seed's topics.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn button(&self, input: u8) -> String {
        format!("{}button/{input}", self.prefix)
    }

    pub fn led(&self, led: u8) -> String {
        format!("{}led/{led}", self.prefix)
    }

    pub fn led_set_filter(&self) -> String {
        format!("{}led/+/set", self.prefix)
    }

    pub fn status(&self) -> String {
        format!("{}status", self.prefix)
    }

    pub fn stats(&self) -> String {
        format!("{}stats", self.prefix)
    }

    /// The LED index of a `<prefix>led/<i>/set` topic: decimal digits only, no sign,
    /// no leading zeros; None for any other topic.
    pub fn parse_led_set(&self, topic: &str) -> Option<u8> {
        let rest = topic.strip_prefix(&self.prefix)?;
        let index = rest.strip_prefix("led/")?.strip_suffix("/set")?;
        let canonical = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'));
        if !canonical {
            return None;
        }
        index.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_seed_topics_without_a_prefix() {
        let t = Topics::new("");
        assert_eq!(t.button(0), "button/0");
        assert_eq!(t.led(3), "led/3");
        assert_eq!(t.led_set_filter(), "led/+/set");
        assert_eq!(t.status(), "status");
    }

    #[test]
    fn recognizes_led_set_topics_strictly() {
        let t = Topics::new("pynq/b1/");
        assert_eq!(t.parse_led_set("pynq/b1/led/2/set"), Some(2));
        assert_eq!(t.parse_led_set("pynq/b1/led/0/set"), Some(0));
        for bad in [
            "led/2/set",
            "pynq/b1/led//set",
            "pynq/b1/led/02/set",
            "pynq/b1/led/-1/set",
            "pynq/b1/led/+/set",
            "pynq/b1/led/2/set/x",
            "pynq/b1/led/256/set",
            "pynq/b1/led/2",
        ] {
            assert_eq!(t.parse_led_set(bad), None, "{bad}");
        }
    }
}
