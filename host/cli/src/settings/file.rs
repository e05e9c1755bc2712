//! The config file: TOML read with toml_edit for the line of every key, each value
//! read through serde into its setting's type.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use pynq_mqtt_bridge::{Rule, RuleLeds};
use pynq_mqtt_driver::LedAction;
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, Table};

use super::{fail, quote, FromToml, Names, Setting, Source, KEYS};

const RULE_KEYS: &[&str] = &["topic", "payloads", "action", "leds"];

pub(super) struct File {
    path: PathBuf,
    text: String,
    doc: ImDocument<String>,
}

impl File {
    /// Reads and parses the file, and refuses keys this program does not know.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let doc = ImDocument::parse(text.clone()).map_err(|e| {
            let e = e.to_string();
            anyhow!("config file {}: {}", path.display(), e.trim_end())
        })?;
        let file = Self {
            path: path.to_owned(),
            text,
            doc,
        };
        for (k, item) in file.doc.iter() {
            let source = file.source(file.doc.key(k).and_then(|k| k.span()));
            if !KEYS.contains(&k) && k != "rule" {
                let near = KEYS
                    .iter()
                    .chain(&["rule"])
                    .min_by_key(|c| strsim::levenshtein(k, c));
                let hint = near
                    .filter(|c| strsim::levenshtein(k, c) <= 2)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                let Source::File { line, .. } = source else {
                    unreachable!()
                };
                let path = path.display();
                return Err(anyhow!(
                    "config file {path}, line {line}: unknown key `{k}`{hint}"
                ));
            }
            if k != "rule" && !item.is_value() {
                return Err(fail(&source, k, "expected a value, found a table"));
            }
        }
        Ok(file)
    }

    fn source(&self, span: Option<std::ops::Range<usize>>) -> Source {
        let at = span.map_or(0, |s| s.start).min(self.text.len());
        let line = self.text[..at].matches('\n').count() + 1;
        Source::File {
            path: self.path.clone(),
            line,
        }
    }

    /// The value of the setting `key`, if the file has it.
    pub fn get<T: Setting>(&self, key: &str) -> Result<Option<(T, Source)>> {
        let v = self.value::<FromToml<T>>(self.doc.as_table(), key, key)?;
        Ok(v.map(|(v, source)| (v.0, source)))
    }

    /// The value of `key` in `table` (the top level or a rule), named `name` in errors.
    fn value<T: DeserializeOwned>(
        &self,
        table: &Table,
        key: &str,
        name: &str,
    ) -> Result<Option<(T, Source)>> {
        let Some((k, item)) = table.get_key_value(key) else {
            return Ok(None);
        };
        let source = self.source(k.span());
        let Some(v) = item.as_value() else {
            return Err(fail(&source, name, "expected a value, found a table"));
        };
        match T::deserialize(v.clone().into_deserializer()) {
            Ok(v) => Ok(Some((v, source))),
            Err(e) => Err(fail(&source, name, e.message())),
        }
    }

    /// The `[[rule]]` tables.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let Some(item) = self.doc.get("rule") else {
            return Ok(Vec::new());
        };
        let Some(tables) = item.as_array_of_tables() else {
            return Err(fail(
                &self.source(item.span()),
                "rule",
                "expected [[rule]] tables",
            ));
        };
        let mut out = Vec::new();
        for t in tables.iter() {
            for (k, _) in t.iter() {
                if !RULE_KEYS.contains(&k) {
                    let source = self.source(t.key(k).and_then(|k| k.span()));
                    let msg = "unknown key (rule keys: topic, payloads, action, leds)";
                    return Err(fail(&source, &format!("rule.{k}"), msg));
                }
            }
            let topic = self.value::<FromToml<String>>(t, "topic", "rule.topic")?;
            let Some((FromToml(topic), source)) = topic else {
                return Err(fail(&self.source(t.span()), "rule.topic", "missing"));
            };
            if topic.is_empty() || topic.contains('\0') {
                return Err(fail(&source, "rule.topic", "not a topic filter"));
            }
            let payloads = self.value::<FromToml<Names>>(t, "payloads", "rule.payloads")?;
            let action = self.value::<FromToml<LedAction>>(t, "action", "rule.action")?;
            let leds = match self.value::<Leds>(t, "leds", "rule.leds")? {
                None => RuleLeds::All,
                Some((Leds::Numbers(v), _)) => RuleLeds::Some(v),
                Some((Leds::Word(w), _)) if w == "all" => RuleLeds::All,
                Some((Leds::Word(_), source)) => return Err(fail(&source, "rule.leds", LEDS)),
            };
            out.push(Rule {
                topic,
                payloads: payloads.map_or(Vec::new(), |(FromToml(Names(p)), _)| p),
                action: action.map_or(LedAction::Toggle, |(FromToml(a), _)| a),
                leds,
            });
        }
        Ok(out)
    }
}

impl Setting for LedAction {
    fn parse(s: &str) -> Result<Self, String> {
        pynq_mqtt_bridge::parse_action(s).map_err(|_| "expected on, off or toggle".into())
    }
    fn show(&self) -> String {
        quote(&self.to_string())
    }
}

const LEDS: &str = "expected \"all\" or a list of LED numbers 0 to 255";

/// A rule's LEDs: `"all"` or a list of LED numbers.
#[derive(serde::Deserialize)]
#[serde(
    untagged,
    expecting = "expected \"all\" or a list of LED numbers 0 to 255"
)]
enum Leds {
    Word(String),
    Numbers(Vec<u8>),
}
