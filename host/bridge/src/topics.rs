//! The topic layout of the MQTT contract, under an optional prefix, with a name per
//! input and per LED (the index by default, so the seed's `button/0` keeps working).

use std::collections::HashMap;

/// How topics are spelled; checked by [`TopicLayout::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicLayout {
    /// Prepended to every topic, e.g. `pynq/board1/`; empty keeps the seed's. A prefix
    /// without its trailing `/` gets one (see [`normalize_prefix`]).
    pub prefix: String,
    /// Topic of an input's events below the prefix: `{name}` is the input's name,
    /// `{i}` its index. Default `button/{name}`.
    pub button_topic: String,
    /// Names of the inputs, by index; inputs without one are named by their index.
    pub input_names: Vec<String>,
    /// Names of the LEDs in `led/<name>` and `led/<name>/set`; the index by default.
    pub led_names: Vec<String>,
}

impl Default for TopicLayout {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            button_topic: "button/{name}".into(),
            input_names: Vec::new(),
            led_names: Vec::new(),
        }
    }
}

/// A topic layout that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("prefix {0:?}: MQTT wildcards (+, #) and NUL are not allowed in topics")]
    Prefix(String),
    #[error("button topic {0:?}: needs {{name}} or {{i}}, and no +, # or NUL")]
    ButtonTopic(String),
    #[error("name {0:?}: must be non-empty, without /, +, #, spaces or NUL")]
    Name(String),
    #[error("name {0:?} is used twice")]
    Duplicate(String),
}

fn bad_chars(s: &str) -> bool {
    s.contains(['+', '#', '\0'])
}

/// A prefix ends in `/`: `pynq` would otherwise glue onto every topic (`pynqstatus`,
/// `pynqbutton/0`) and make the filter `pynq#`, which no broker accepts. Empty stays
/// empty, the seed's layout.
pub fn normalize_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

/// Whether `filter` is a valid MQTT subscription filter (MQTT 3.1.1 section 4.7):
/// non-empty, no NUL, `+` only as a whole level, `#` only as the whole last level.
/// Checked before subscribing, because a broker answers a bad filter by closing the
/// connection or by a failed SUBACK, neither of which names the filter.
pub fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("an empty topic filter".into());
    }
    if filter.contains('\0') {
        return Err("NUL in a topic filter".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('+') && *level != "+" {
            return Err(format!("{filter:?}: + must be a whole level, e.g. a/+/b"));
        }
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!(
                "{filter:?}: # must be the whole last level, e.g. a/#"
            ));
        }
    }
    Ok(())
}

impl TopicLayout {
    /// Checks the layout for the names it would produce.
    pub fn check(&self) -> Result<(), TopicError> {
        if bad_chars(&self.prefix) {
            return Err(TopicError::Prefix(self.prefix.clone()));
        }
        let t = &self.button_topic;
        if bad_chars(t) || !(t.contains("{name}") || t.contains("{i}")) {
            return Err(TopicError::ButtonTopic(t.clone()));
        }
        for names in [&self.input_names, &self.led_names] {
            let mut seen = std::collections::HashSet::new();
            for n in names {
                if n.is_empty() || n.contains(['/', '+', '#', '\0', ' ']) {
                    return Err(TopicError::Name(n.clone()));
                }
                if !seen.insert(n) {
                    return Err(TopicError::Duplicate(n.clone()));
                }
            }
        }
        Ok(())
    }

    /// The name of input `i`.
    pub fn input_name(&self, i: u8) -> String {
        self.input_names
            .get(usize::from(i))
            .cloned()
            .unwrap_or_else(|| i.to_string())
    }

    /// The name of LED `i`.
    pub fn led_name(&self, i: u8) -> String {
        self.led_names
            .get(usize::from(i))
            .cloned()
            .unwrap_or_else(|| i.to_string())
    }
}

/// What an incoming `led/...` topic addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedTarget {
    One(u8),
    All,
}

/// Every topic of one board, built once.
#[derive(Clone, Debug)]
pub struct Topics {
    layout: TopicLayout,
    buttons: Vec<String>,
    inputs: Vec<String>,
    leds: Vec<String>,
    led_set: HashMap<String, u8>,
    led_set_all: String,
    led_set_filter: String,
    status: String,
    stats: String,
}

impl Topics {
    pub fn new(layout: &TopicLayout, n_inputs: u8, n_leds: u8) -> Self {
        let layout = &TopicLayout {
            prefix: normalize_prefix(&layout.prefix),
            ..layout.clone()
        };
        let p = &layout.prefix;
        let buttons = (0..n_inputs)
            .map(|i| {
                let t = layout
                    .button_topic
                    .replace("{name}", &layout.input_name(i))
                    .replace("{i}", &i.to_string());
                format!("{p}{t}")
            })
            .collect();
        let inputs = (0..n_inputs)
            .map(|i| format!("{p}input/{}", layout.input_name(i)))
            .collect();
        let leds: Vec<String> = (0..n_leds)
            .map(|i| format!("{p}led/{}", layout.led_name(i)))
            .collect();
        let led_set = leds
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{t}/set"), i as u8))
            .collect();
        Self {
            buttons,
            inputs,
            leds,
            led_set,
            led_set_all: format!("{p}led/set"),
            led_set_filter: format!("{p}led/+/set"),
            status: format!("{p}status"),
            stats: format!("{p}stats"),
            layout: layout.clone(),
        }
    }

    pub fn layout(&self) -> &TopicLayout {
        &self.layout
    }

    pub fn prefix(&self) -> &str {
        &self.layout.prefix
    }

    /// The topic of input `input`'s events (inputs beyond the board's get the
    /// default spelling, so nothing is ever unpublishable).
    pub fn button(&self, input: u8) -> String {
        match self.buttons.get(usize::from(input)) {
            Some(t) => t.clone(),
            None => format!("{}button/{input}", self.layout.prefix),
        }
    }

    /// The retained level topic of input `input`: `<prefix>input/<name>`, beside the
    /// edges rather than below them, so a subscriber of `button/#` sees only edges.
    pub fn input(&self, input: u8) -> String {
        match self.inputs.get(usize::from(input)) {
            Some(t) => t.clone(),
            None => format!("{}input/{input}", self.layout.prefix),
        }
    }

    pub fn n_inputs(&self) -> u8 {
        self.buttons.len() as u8
    }

    pub fn n_leds(&self) -> u8 {
        self.leds.len() as u8
    }

    /// The retained state topic of LED `led`.
    pub fn led(&self, led: u8) -> String {
        match self.leds.get(usize::from(led)) {
            Some(t) => t.clone(),
            None => format!("{}led/{led}", self.layout.prefix),
        }
    }

    /// The command topic of LED `led`.
    pub fn led_set(&self, led: u8) -> String {
        format!("{}/set", self.led(led))
    }

    pub fn led_set_all(&self) -> &str {
        &self.led_set_all
    }

    /// The subscription that catches every `led/<x>/set`, also for LEDs that do not
    /// exist, so that those are rejected and logged rather than silently ignored.
    pub fn led_set_filter(&self) -> &str {
        &self.led_set_filter
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    pub fn stats(&self) -> &str {
        &self.stats
    }

    /// What a `led/...` command topic addresses: `Some(Ok(..))` for one of ours,
    /// `Some(Err(..))` for a `led/<x>/set` with no such LED, None for other topics.
    pub fn parse_led_set(&self, topic: &str) -> Option<Result<LedTarget, String>> {
        if topic == self.led_set_all {
            return Some(Ok(LedTarget::All));
        }
        if let Some(&i) = self.led_set.get(topic) {
            return Some(Ok(LedTarget::One(i)));
        }
        let name = topic
            .strip_prefix(&self.layout.prefix)?
            .strip_prefix("led/")?
            .strip_suffix("/set")?;
        let names: Vec<String> = (0..self.n_leds())
            .map(|i| self.layout.led_name(i))
            .collect();
        Some(Err(format!(
            "no LED named {:?} (the LEDs are {})",
            crate::shown::text(name),
            names.join(", ")
        )))
    }

    /// `<prefix>led/<name>/get`, the question for one LED's state: which LED.
    pub fn parse_led_get(&self, topic: &str) -> Option<u8> {
        let set = format!("{}/set", topic.strip_suffix("/get")?);
        self.led_set.get(&set).copied()
    }

    /// The filter of the `led/<name>/get` questions.
    pub fn led_get_filter(&self) -> String {
        format!("{}led/+/get", self.layout.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_seed_topics_without_a_prefix() {
        let t = Topics::new(&TopicLayout::default(), 4, 4);
        assert_eq!(t.button(0), "button/0");
        assert_eq!(t.input(3), "input/3");
        assert_eq!(t.led(3), "led/3");
        assert_eq!(t.led_set(3), "led/3/set");
        assert_eq!(t.led_set_filter(), "led/+/set");
        assert_eq!(t.led_set_all(), "led/set");
        assert_eq!(t.status(), "status");
        assert_eq!(t.stats(), "stats");
    }

    #[test]
    fn names_and_templates() {
        let layout = TopicLayout {
            prefix: "pynq/b1/".into(),
            button_topic: "{name}/state".into(),
            input_names: vec!["btn0".into(), "btn1".into()],
            led_names: vec!["red".into()],
        };
        layout.check().unwrap();
        let t = Topics::new(&layout, 3, 2);
        assert_eq!(t.button(0), "pynq/b1/btn0/state");
        assert_eq!(
            t.input(0),
            "pynq/b1/input/btn0",
            "the level topic follows the name, not the button template"
        );
        assert_eq!(t.input(2), "pynq/b1/input/2");
        assert_eq!(
            t.button(2),
            "pynq/b1/2/state",
            "unnamed inputs use the index"
        );
        assert_eq!(t.led(0), "pynq/b1/led/red");
        assert_eq!(t.led(1), "pynq/b1/led/1");
        assert_eq!(
            t.parse_led_set("pynq/b1/led/red/set"),
            Some(Ok(LedTarget::One(0)))
        );
        assert_eq!(t.parse_led_set("pynq/b1/led/set"), Some(Ok(LedTarget::All)));
        let i = TopicLayout {
            button_topic: "in/{i}/{name}".into(),
            input_names: vec!["sw0".into()],
            ..TopicLayout::default()
        };
        assert_eq!(Topics::new(&i, 1, 0).button(0), "in/0/sw0");
    }

    #[test]
    fn recognizes_led_set_topics_strictly() {
        let t = Topics::new(
            &TopicLayout {
                prefix: "pynq/b1/".into(),
                ..TopicLayout::default()
            },
            4,
            4,
        );
        assert_eq!(
            t.parse_led_set("pynq/b1/led/2/set"),
            Some(Ok(LedTarget::One(2)))
        );
        assert_eq!(
            t.parse_led_set("pynq/b1/led/0/set"),
            Some(Ok(LedTarget::One(0)))
        );
        for bad in [
            "pynq/b1/led//set",
            "pynq/b1/led/02/set",
            "pynq/b1/led/-1/set",
            "pynq/b1/led/+/set",
            "pynq/b1/led/4/set",
            "pynq/b1/led/256/set",
        ] {
            assert!(matches!(t.parse_led_set(bad), Some(Err(_))), "{bad}");
        }
        for other in [
            "led/2/set",
            "pynq/b1/led/2/set/x",
            "pynq/b1/led/2",
            "pynq/b1/button/0",
        ] {
            assert_eq!(t.parse_led_set(other), None, "{other}");
        }
    }

    #[test]
    fn an_unknown_led_is_named_short_and_escaped() {
        let t = Topics::new(&TopicLayout::default(), 4, 4);
        let huge = format!("led/{}\n/set", "x".repeat(60_000));
        let Some(Err(why)) = t.parse_led_set(&huge) else {
            panic!("not refused");
        };
        assert!(why.len() < 200 && !why.contains('\n'), "{why}");
        assert!(why.contains("(60001 bytes)"), "{why}");
    }

    #[test]
    fn a_prefix_without_its_slash_gets_one() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("pynq"), "pynq/");
        assert_eq!(normalize_prefix("pynq/b1/"), "pynq/b1/");
        let t = Topics::new(
            &TopicLayout {
                prefix: "pynq".into(),
                ..TopicLayout::default()
            },
            4,
            4,
        );
        assert_eq!(t.status(), "pynq/status");
        assert_eq!(t.button(0), "pynq/button/0");
        assert_eq!(t.led_set_filter(), "pynq/led/+/set");
        assert_eq!(t.prefix(), "pynq/");
        assert_eq!(
            t.parse_led_set("pynq/led/1/set"),
            Some(Ok(LedTarget::One(1)))
        );
    }

    #[test]
    fn filters_are_checked_level_by_level() {
        for good in ["#", "+", "a/#", "a/+/b", "+/+", "/a", "a//b", "button/0"] {
            assert_eq!(check_filter(good), Ok(()), "{good}");
        }
        for bad in ["", "pynq#", "a/b#", "a/#/b", "a+/b", "a/+b", "x\0"] {
            assert!(check_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_layouts_are_refused() {
        let bad = |f: fn(&mut TopicLayout)| {
            let mut l = TopicLayout::default();
            f(&mut l);
            l.check().is_err()
        };
        assert!(bad(|l| l.prefix = "a/#/".into()));
        assert!(bad(|l| l.button_topic = "button".into()));
        assert!(bad(|l| l.button_topic = "b/+/{i}".into()));
        assert!(bad(|l| l.input_names = vec!["a/b".into()]));
        assert!(bad(|l| l.led_names = vec!["x".into(), "x".into()]));
        assert!(bad(|l| l.led_names = vec![String::new()]));
        assert!(!bad(|_| {}));
    }
}
