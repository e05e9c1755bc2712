//! The config file: TOML read with toml_edit for the line of every key, each value and
//! each table read by serde into its type. No error quotes the file's text: a password
//! file given as the config file, or a password written unquoted, must not reach a log.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, Item, Table};

use crate::{Error, Source};

/// The keys a file may hold, as the caller declares them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys<'a> {
    /// The values, each read by [`File::get`].
    pub values: &'a [&'a str],
    /// Arrays of tables (`[[name]]`) with the keys of each, read by [`File::tables`].
    pub tables: &'a [(&'a str, &'a [&'a str])],
    /// Keys refused with a reason of their own rather than the nearest known key.
    pub refused: &'a [(&'a str, &'a str)],
}

impl Keys<'_> {
    /// A key that holds a value: one a TOML parse error may name.
    fn holds_value(&self, k: &str) -> bool {
        let tables = self.tables.iter().flat_map(|(_, keys)| *keys);
        let refused = self.refused.iter().map(|(k, _)| k);
        self.values
            .iter()
            .chain(tables)
            .chain(refused)
            .any(|c| *c == k)
    }

    /// A key allowed at the top of the file.
    fn top(&self) -> impl Iterator<Item = &str> {
        let tables = self.tables.iter().map(|(name, _)| *name);
        self.values.iter().copied().chain(tables)
    }
}

pub struct File<'k> {
    path: PathBuf,
    text: String,
    doc: ImDocument<String>,
    keys: Keys<'k>,
}

impl<'k> File<'k> {
    /// Reads and parses the file, and refuses keys the caller does not know.
    pub fn load(path: &Path, keys: Keys<'k>) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        // a parse error names the file, the line and the key if it is the caller's; it
        // never quotes the file, which may be a password file or hold a bare password
        let doc = ImDocument::parse(text.clone()).map_err(|e| {
            let line = line_at(&text, e.span());
            let key = text.lines().nth(line - 1).and_then(|l| l.split_once('='));
            let key = key.map(|(k, _)| k.trim()).filter(|k| keys.holds_value(k));
            // toml's reason, but for a quoted name of its own (`.`, `=`) or ours
            let why = e.message().lines().next().unwrap_or("not TOML").split('`');
            let why: Vec<&str> = why
                .enumerate()
                .map(|(i, w)| {
                    let punct = w.chars().all(|c| c.is_ascii_punctuation());
                    if i % 2 == 1 && !punct && !keys.holds_value(w) {
                        "…"
                    } else {
                        w
                    }
                })
                .collect();
            Error::Toml {
                path: path.to_owned(),
                line,
                key: key.map(str::to_owned),
                why: why.join("`"),
            }
        })?;
        let file = Self {
            path: path.to_owned(),
            text,
            doc,
            keys,
        };
        if let Some((k, _)) = file.doc.iter().find(|(k, _)| !keys.top().any(|c| c == *k)) {
            let near = keys.top().min_by_key(|c| strsim::levenshtein(k, c));
            let refused = keys.refused.iter().find(|(r, _)| *r == k);
            let hint = match (refused, near.filter(|c| strsim::levenshtein(k, c) <= 2)) {
                (Some((_, why)), _) => format!(" ({why})"),
                (None, Some(c)) => format!(" (did you mean `{c}`?)"),
                (None, None) => String::new(),
            };
            return Err(Error::UnknownKey {
                path: path.to_owned(),
                line: line_at(&file.text, file.doc.key(k).and_then(|k| k.span())),
                key: k.to_owned(),
                hint,
            });
        }
        Ok(file)
    }

    fn source(&self, span: Option<Range<usize>>) -> Source {
        Source::File {
            path: self.path.clone(),
            line: line_at(&self.text, span),
        }
    }

    /// The value of `key`, if the file has it.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, Source)>, Error> {
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
            Some(Err(e)) => Err(Error::value(&source, key, &why(e.message()))),
            None => Err(Error::value(
                &source,
                key,
                "expected a value, found a table",
            )),
        }
    }

    /// The `[[name]]` tables, each read by serde into a `T`. A reason of `T`'s that
    /// opens with one of the table's keys (`leds: ...`) is blamed on that key's line.
    pub fn tables<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, Error> {
        let keys = self.keys.tables.iter().find(|(n, _)| *n == name);
        let keys = keys.map_or(&[][..], |(_, keys)| *keys);
        let Some(item) = self.doc.get(name) else {
            return Ok(Vec::new());
        };
        let Item::ArrayOfTables(tables) = item else {
            let msg = format!("expected [[{name}]] tables");
            return Err(Error::value(&self.source(item.span()), name, &msg));
        };
        let one = |t: &Table| {
            let at = |k: &str| self.source(t.key(k).and_then(|k| k.span()).or(t.span()));
            if let Some((k, _)) = t.iter().find(|(k, _)| !keys.contains(k)) {
                let msg = format!("unknown key ({name} keys: {})", keys.join(", "));
                return Err(Error::value(&at(k), &format!("{name}.{k}"), &msg));
            }
            let v = toml_edit::Value::InlineTable(t.clone().into_inline_table());
            T::deserialize(v.into_deserializer()).map_err(|e| {
                let why = why(e.message());
                match why.split_once(": ").filter(|(k, _)| keys.contains(k)) {
                    Some((k, msg)) => Error::value(&at(k), &format!("{name}.{k}"), msg),
                    None => Error::value(&at(""), name, &why),
                }
            })
        };
        tables.iter().map(one).collect()
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
fn line_at(text: &str, span: Option<Range<usize>>) -> usize {
    let at = span.map_or(0, |s| s.start).min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
