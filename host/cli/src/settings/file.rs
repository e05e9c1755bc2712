//! The config file: TOML read with toml_edit for the line of every key, each value
//! read into its setting's type. No error quotes the file's text: a password file
//! given as `--config`, or a password written unquoted, must not reach a log.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use pynq_mqtt_bridge::{parse_action, Rule, RuleLeds};
use toml_edit::{ImDocument, Item, Table};

use super::value::{from_toml, Value};
use super::{fail, Names, Source, KEYS};

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
        // a parse error names the file, the line and the key if it is a setting; it
        // never quotes the file, which may be a password file or hold a bare password
        let doc = ImDocument::parse(text.clone()).map_err(|e| {
            let line = line_at(&text, e.span());
            let known = |k: &str| {
                KEYS.iter()
                    .chain(RULE_KEYS)
                    .chain(&["password"])
                    .any(|c| *c == k)
            };
            let key = text.lines().nth(line - 1).and_then(|l| l.split_once('='));
            let key = key.map(|(k, _)| k.trim()).filter(|k| known(k));
            let key = key.map(|k| format!(", key `{k}`")).unwrap_or_default();
            // toml's reason, but for a quoted name of its own (`.`, `=`) or ours
            let why = e.message().lines().next().unwrap_or("not TOML").split('`');
            let why: Vec<&str> = why
                .enumerate()
                .map(|(i, w)| {
                    let punct = w.chars().all(|c| c.is_ascii_punctuation());
                    if i % 2 == 1 && !punct && !known(w) {
                        "…"
                    } else {
                        w
                    }
                })
                .collect();
            let (path, why) = (path.display(), why.join("`"));
            anyhow!("config file {path}, line {line}{key}: TOML parse error: {why}")
        })?;
        let file = Self {
            path: path.to_owned(),
            text,
            doc,
        };
        for (k, item) in file.doc.iter() {
            let span = file.doc.key(k).and_then(|k| k.span());
            let source = file.source(span.clone());
            if !KEYS.contains(&k) && k != "rule" {
                let near = KEYS
                    .iter()
                    .chain(&["rule"])
                    .min_by_key(|c| strsim::levenshtein(k, c));
                let hint = near
                    .filter(|c| strsim::levenshtein(k, c) <= 2)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                let (line, path) = (line_at(&file.text, span), path.display());
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
        Source::File {
            path: self.path.clone(),
            line: line_at(&self.text, span),
        }
    }

    /// The value of the setting `key`, if the file has it.
    pub fn get<T: Value>(&self, key: &str) -> Result<Option<(T, Source)>> {
        self.value(self.doc.as_table(), key, key, from_toml)
    }

    /// The value of `key` in `table` (the top level or a rule), named `name` in errors.
    fn value<T>(
        &self,
        table: &Table,
        key: &str,
        name: &str,
        read: impl Fn(&toml_edit::Value) -> Result<T, String>,
    ) -> Result<Option<(T, Source)>> {
        let Some((k, item)) = table.get_key_value(key) else {
            return Ok(None);
        };
        let source = self.source(k.span());
        let v = item
            .as_value()
            .ok_or("expected a value, found a table".to_owned());
        match v.and_then(read) {
            Ok(v) => Ok(Some((v, source))),
            Err(e) => Err(fail(&source, name, &e)),
        }
    }

    /// The `[[rule]]` tables.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let Some(item) = self.doc.get("rule") else {
            return Ok(Vec::new());
        };
        let Item::ArrayOfTables(tables) = item else {
            return Err(fail(
                &self.source(item.span()),
                "rule",
                "expected [[rule]] tables",
            ));
        };
        let mut out = Vec::new();
        for t in tables.iter() {
            if let Some((k, _)) = t.iter().find(|(k, _)| !RULE_KEYS.contains(k)) {
                let source = self.source(t.key(k).and_then(|k| k.span()));
                let msg = "unknown key (rule keys: topic, payloads, action, leds)";
                return Err(fail(&source, &format!("rule.{k}"), msg));
            }
            let topic = self.value(t, "topic", "rule.topic", from_toml::<String>)?;
            let Some((topic, source)) = topic else {
                return Err(fail(&self.source(t.span()), "rule.topic", "missing"));
            };
            if topic.is_empty() || topic.contains('\0') {
                return Err(fail(&source, "rule.topic", "not a topic filter"));
            }
            let payloads = self.value(t, "payloads", "rule.payloads", from_toml::<Names>)?;
            let action = self.value(t, "action", "rule.action", |v| {
                let a = from_toml::<String>(v)?;
                parse_action(&a).map_err(|_| "expected on, off or toggle".to_owned())
            })?;
            let leds = self.value(t, "leds", "rule.leds", |v| match v {
                toml_edit::Value::String(s) if s.value() == "all" => Ok(RuleLeds::All),
                toml_edit::Value::Array(a) => {
                    let n = a
                        .iter()
                        .map(|x| x.as_integer().and_then(|i| u8::try_from(i).ok()));
                    n.collect::<Option<_>>()
                        .map(RuleLeds::Some)
                        .ok_or(LEDS.to_owned())
                }
                _ => Err(LEDS.to_owned()),
            })?;
            out.push(Rule {
                topic,
                payloads: payloads.map_or(Vec::new(), |(p, _)| p.0),
                action: action.map_or(pynq_mqtt_driver::LedAction::Toggle, |(a, _)| a),
                leds: leds.map_or(RuleLeds::All, |(l, _)| l),
            });
        }
        Ok(out)
    }
}

/// The line of a byte offset in `text`, from 1.
fn line_at(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    let at = span.map_or(0, |s| s.start).min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

const LEDS: &str = "expected \"all\" or a list of LED numbers 0 to 255";
