//! The config file: TOML read with toml_edit for the line of every key, each value
//! and each `[[rule]]` read by serde into its type (whose crate says how). No error
//! quotes the file's text: a password file given as `--config`, or a password
//! written unquoted, must not reach a log.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use pynq_mqtt_bridge::Rule;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Deserialize;
use toml_edit::{ImDocument, Item, Table};

use super::{fail, Source, KEYS};

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
        for (k, _) in file.doc.iter() {
            let span = file.doc.key(k).and_then(|k| k.span());
            if !KEYS.contains(&k) && k != "rule" {
                let near = KEYS
                    .iter()
                    .chain(&["rule"])
                    .min_by_key(|c| strsim::levenshtein(k, c));
                let hint = match near.filter(|c| strsim::levenshtein(k, c) <= 2) {
                    // a file is read by whoever may read the config: the password
                    // lives in a file of its own or in the environment
                    _ if k == "password" => format!(
                        " (the password is not a config key: use `password_file` = a file \
                         of its own, mode 600, or the environment variable {})",
                        super::PASSWORD_ENV
                    ),
                    Some(c) => format!(" (did you mean `{c}`?)"),
                    None => String::new(),
                };
                let (line, path) = (line_at(&file.text, span), path.display());
                return Err(anyhow!(
                    "config file {path}, line {line}: unknown key `{k}`{hint}"
                ));
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
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, Source)>> {
        let Some((k, item)) = self.doc.get_key_value(key) else {
            return Ok(None);
        };
        let source = self.source(k.span());
        let v = item
            .as_value()
            .cloned()
            .map(IntoDeserializer::into_deserializer);
        match v.map(T::deserialize) {
            Some(Ok(v)) => Ok(Some((v, source))),
            Some(Err(e)) => Err(fail(&source, key, &why(e.message()))),
            None => Err(fail(&source, key, "expected a value, found a table")),
        }
    }

    /// The `[[rule]]` tables, each read by the bridge's own `Rule`.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let Some(item) = self.doc.get("rule") else {
            return Ok(Vec::new());
        };
        let Item::ArrayOfTables(tables) = item else {
            let source = self.source(item.span());
            return Err(fail(&source, "rule", "expected [[rule]] tables"));
        };
        let rule = |t: &Table| {
            let at = |k: &str| self.source(t.key(k).and_then(|k| k.span()).or(t.span()));
            if let Some((k, _)) = t.iter().find(|(k, _)| !RULE_KEYS.contains(k)) {
                let msg = "unknown key (rule keys: topic, payloads, action, leds)";
                return Err(fail(&at(k), &format!("rule.{k}"), msg));
            }
            let v = toml_edit::Value::InlineTable(t.clone().into_inline_table());
            Rule::deserialize(v.into_deserializer()).map_err(|e| {
                // the bridge's reasons open with the key at fault
                let why = why(e.message());
                match why.split_once(": ").filter(|(k, _)| RULE_KEYS.contains(k)) {
                    Some((k, msg)) => fail(&at(k), &format!("rule.{k}"), msg),
                    None => fail(&at(""), "rule", &why),
                }
            })
        };
        tables.iter().map(rule).collect()
    }
}

/// serde's reason, in the words of the other errors and without the value, which a
/// misplaced secret could be: `expected a whole number, found string`.
fn why(msg: &str) -> String {
    // `unknown variant `<the value>`, expected ...`: the choices, not the value
    let variant = msg.strip_prefix("unknown variant `");
    if let Some((_, want)) = variant.and_then(|m| m.rsplit_once("`, expected ")) {
        return format!("unknown value, expected {want}");
    }
    let types = msg.strip_prefix("invalid type: ");
    let Some((found, want)) = types.and_then(|m| m.rsplit_once(", expected ")) else {
        return msg.to_owned();
    };
    let found = match found.split([' ', ',']).next().unwrap_or(found) {
        "floating" => "float",
        "sequence" => "array",
        "map" => "table",
        other => other,
    };
    let want = match want {
        "u8" | "u64" => "a whole number",
        "f64" => "seconds",
        "a boolean" => "true or false",
        "a sequence" => "a list of strings",
        other => other,
    };
    format!("expected {want}, found {found}")
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
