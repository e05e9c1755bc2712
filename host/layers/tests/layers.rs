//! The mechanism as a caller uses it: a clap command with two values, a file, and
//! the source and the wording of every answer.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Arg, ArgMatches, Command};
use pynq_mqtt_layers::{bad_value, parser, pick, show, Bool, Error, File, Int, Keys, Source};
use serde::{Deserialize, Serialize};

type Level = Int<0, 9>;

/// An enum as the project's crates write theirs: FromStr for text, serde for TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fast,
    Slow,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(Mode::Fast),
            "slow" => Ok(Mode::Slow),
            _ => Err("expected fast or slow".into()),
        }
    }
}

/// A table whose reasons open with the key at fault, as the bridge's rules do.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawRoute")]
struct Route {
    topic: String,
    leds: Vec<u8>,
}

#[derive(Deserialize)]
struct RawRoute {
    topic: String,
    leds: Vec<u8>,
}

impl TryFrom<RawRoute> for Route {
    type Error = String;
    fn try_from(r: RawRoute) -> Result<Self, String> {
        match r.leds.is_empty() {
            true => Err("leds: at least one LED".into()),
            false => Ok(Route {
                topic: r.topic,
                leds: r.leds,
            }),
        }
    }
}

const VALUES: &[&str] = &["level", "mode", "on", "name"];
const ROUTE_KEYS: &[&str] = &["topic", "leds"];
const REFUSED: &[(&str, &str)] = &[("secret", "a secret is not a config key")];
const KEYS: Keys = Keys {
    values: VALUES,
    tables: &[("route", ROUTE_KEYS)],
    refused: REFUSED,
};

fn command(env: &'static str) -> Command {
    Command::new("t")
        .arg(
            Arg::new("level")
                .long("level")
                .env(env)
                .value_parser(parser::<Level>()),
        )
        .arg(Arg::new("mode").long("mode").value_parser(parser::<Mode>()))
}

fn matches(env: &'static str, argv: &[&str]) -> Result<ArgMatches, clap::Error> {
    let argv = std::iter::once("t").chain(argv.iter().copied());
    command(env).try_get_matches_from(argv)
}

/// A file of `text` under the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pynq-mqtt-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        Scratch(path)
    }
    fn load(&self) -> Result<File<'static>, Error> {
        File::load(&self.0, KEYS)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn at_line(f: &Scratch, line: usize) -> Source {
    Source::File {
        path: f.0.clone(),
        line,
    }
}

#[test]
fn flag_over_environment_over_file_over_default() {
    const ENV: &str = "PYNQ_MQTT_LAYERS_TEST_PRECEDENCE";
    let f = Scratch::new("precedence", "# levels\n\nlevel = 3\n");
    let file = f.load().unwrap();
    let level = |m: &ArgMatches, file: Option<&File>| pick::<Level>(m, "level", ENV, file);

    std::env::remove_var(ENV);
    let m = matches(ENV, &[]).unwrap();
    assert_eq!(
        level(&m, None).unwrap(),
        None,
        "the default is the caller's"
    );
    assert_eq!(
        level(&m, Some(&file)).unwrap(),
        Some((Int(3), at_line(&f, 3)))
    );

    std::env::set_var(ENV, "5");
    let m = matches(ENV, &[]).unwrap();
    assert_eq!(
        level(&m, Some(&file)).unwrap(),
        Some((Int(5), Source::Env(ENV)))
    );
    let m = matches(ENV, &["--level", "7"]).unwrap();
    let flag = Source::Flag("--level".into());
    assert_eq!(
        level(&m, Some(&file)).unwrap(),
        Some((Int(7), flag.clone()))
    );

    // the same value from two places is labelled by the one that won
    std::env::set_var(ENV, "7");
    let m = matches(ENV, &["--level", "7"]).unwrap();
    assert_eq!(level(&m, Some(&file)).unwrap(), Some((Int(7), flag)));
    std::env::remove_var(ENV);

    assert_eq!(Source::Env(ENV).to_string(), ENV);
    assert_eq!(at_line(&f, 3).to_string(), format!("{}:3", f.0.display()));
    assert_eq!(Source::Default.to_string(), "default");
}

#[test]
fn a_bad_flag_or_variable_is_one_line_naming_it() {
    const ENV: &str = "PYNQ_MQTT_LAYERS_TEST_BAD";
    std::env::remove_var(ENV);
    let e = matches(ENV, &["--level", "12"]).unwrap_err();
    assert_eq!(bad_value(&e), Some("--level: 12: expected 0 to 9"));
    let e = matches(ENV, &["--mode", "warp"]).unwrap_err();
    assert_eq!(bad_value(&e), Some("--mode: expected fast or slow"));
    std::env::set_var(ENV, "x");
    let e = matches(ENV, &[]).unwrap_err();
    let want = format!("environment variable {ENV}: expected a whole number, found \"x\"");
    assert_eq!(bad_value(&e), Some(want.as_str()));
    std::env::remove_var(ENV);
    // clap's own errors are not a bad value
    let e = matches(ENV, &["--nope"]).unwrap_err();
    assert_eq!(bad_value(&e), None);
}

#[test]
fn a_subcommand_without_the_flag_still_takes_its_variable() {
    const ENV: &str = "PYNQ_MQTT_LAYERS_TEST_NO_FLAG";
    let f = Scratch::new("no-flag", "level = 3\n");
    let file = f.load().unwrap();
    // `doctor` has no --level: clap neither knows the variable nor reads it
    let without = || {
        Command::new("t")
            .arg(Arg::new("mode").long("mode").value_parser(parser::<Mode>()))
            .try_get_matches_from(["t"])
            .unwrap()
    };
    let level = |file: Option<&File>| pick::<Level>(&without(), "level", ENV, file);

    std::env::remove_var(ENV);
    assert_eq!(level(None).unwrap(), None);
    assert_eq!(level(Some(&file)).unwrap(), Some((Int(3), at_line(&f, 1))));

    // over the file, as for a subcommand that has the flag
    std::env::set_var(ENV, "5");
    assert_eq!(
        level(Some(&file)).unwrap(),
        Some((Int(5), Source::Env(ENV)))
    );

    // refused in the same words as clap's, naming the variable; set but empty is set
    for (raw, why) in [
        ("x", "expected a whole number, found \"x\""),
        ("12", "12: expected 0 to 9"),
        ("", "expected a whole number, found \"\""),
    ] {
        std::env::set_var(ENV, raw);
        let e = level(Some(&file)).unwrap_err().to_string();
        assert_eq!(e, format!("environment variable {ENV}: {why}"), "{raw:?}");
        let clap = matches(ENV, &[]).unwrap_err();
        assert_eq!(bad_value(&clap), Some(e.as_str()), "{raw:?}");
    }
    std::env::remove_var(ENV);
}

#[test]
fn values_read_from_the_file_with_their_lines() {
    let f = Scratch::new("values", "mode = \"slow\"\n\n\non = true\nname = \"n\"\n");
    let file = f.load().unwrap();
    assert_eq!(
        file.get("mode").unwrap(),
        Some((Mode::Slow, at_line(&f, 1)))
    );
    assert_eq!(file.get("on").unwrap(), Some((Bool(true), at_line(&f, 4))));
    assert_eq!(file.get::<Level>("level").unwrap(), None);
    let (name, _) = file.get::<String>("name").unwrap().unwrap();
    assert_eq!(show(&name), "\"n\"");
}

#[test]
fn an_unknown_key_names_its_line_and_the_nearest_known_one() {
    let path = |f: &Scratch| f.0.display().to_string();
    let f = Scratch::new("near", "level = 1\n\nmoed = \"fast\"\n");
    let e = f.load().err().unwrap().to_string();
    let want = format!(
        "config file {}, line 3: unknown key `moed` (did you mean `mode`?)",
        path(&f)
    );
    assert_eq!(e, want);
    // a table's name is a known key too
    let f = Scratch::new("near-table", "\nroutes = 1\n");
    let e = f.load().err().unwrap().to_string();
    assert!(
        e.ends_with("line 2: unknown key `routes` (did you mean `route`?)"),
        "{e}"
    );
    // far from every key: no guess
    let f = Scratch::new("far", "colour = 1\n");
    let e = f.load().err().unwrap().to_string();
    assert!(e.ends_with("line 1: unknown key `colour`"), "{e}");
    // a refused key gets the caller's reason, not a guess
    let f = Scratch::new("refused", "level = 2\nsecret = \"hunter2\"\n");
    let e = f.load().err().unwrap().to_string();
    assert!(
        e.ends_with("line 2: unknown key `secret` (a secret is not a config key)"),
        "{e}"
    );
}

#[test]
fn tables_read_with_the_line_of_the_key_at_fault() {
    let text =
        "level = 1\n[[route]]\ntopic = \"a\"\nleds = [0]\n\n[[route]]\ntopic = \"b\"\nleds = []\n";
    let f = Scratch::new("tables", text);
    let e = f.load().unwrap().tables::<Route>("route").unwrap_err();
    let want = format!(
        "config file {}, line 8, key `route.leds`: at least one LED",
        f.0.display()
    );
    assert_eq!(e.to_string(), want);

    let f = Scratch::new("tables-ok", &text.replace("[]", "[1, 2]"));
    let routes = f.load().unwrap().tables::<Route>("route").unwrap();
    let read: Vec<_> = routes
        .iter()
        .map(|r| (r.topic.as_str(), r.leds.len()))
        .collect();
    assert_eq!(read, [("a", 1), ("b", 2)]);

    let f = Scratch::new("tables-key", "[[route]]\ntopic = \"a\"\nled = [1]\n");
    let e = f
        .load()
        .unwrap()
        .tables::<Route>("route")
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("line 3, key `route.led`: unknown key (route keys: topic, leds)"),
        "{e}"
    );

    let f = Scratch::new("tables-none", "level = 1\n");
    assert!(f
        .load()
        .unwrap()
        .tables::<Route>("route")
        .unwrap()
        .is_empty());
    let f = Scratch::new("tables-value", "\nroute = 1\n");
    let e = f
        .load()
        .unwrap()
        .tables::<Route>("route")
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("line 2, key `route`: expected [[route]] tables"),
        "{e}"
    );
}

/// A secret written where a value belongs, or a password file given as the config,
/// never reaches an error.
#[test]
fn no_error_quotes_a_value_of_the_file() {
    const SECRET: &str = "Hunter2zz";
    let cases = [
        // not TOML: a bare password, a bare value, a broken string
        format!("{SECRET}\n"),
        format!("level = {SECRET}\n"),
        format!("name = \"{SECRET}\n"),
        format!("level = 1\n{SECRET}\n"),
        // TOML, refused by the type
        format!("level = \"{SECRET}\"\n"),
        format!("mode = \"{SECRET}\"\n"),
        format!("on = \"{SECRET}\"\n"),
        format!("mode = [\"{SECRET}\"]\n"),
        format!("level = {{ a = \"{SECRET}\" }}\n"),
        format!("[[route]]\ntopic = [\"{SECRET}\"]\nleds = [1]\n"),
        format!("[[route]]\ntopic = \"t\"\nleds = [\"{SECRET}\"]\n"),
    ];
    for text in cases {
        let f = Scratch::new("secret", &text);
        let e = match f.load() {
            Err(e) => e,
            Ok(file) => [
                file.get::<Level>("level").err(),
                file.get::<Mode>("mode").err(),
                file.get::<Bool>("on").err(),
                file.tables::<Route>("route").err(),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_else(|| panic!("accepted: {text}")),
        };
        let e = e.to_string();
        assert!(!e.contains(SECRET) && !e.contains('\n'), "{text:?}: {e}");
        assert!(
            e.starts_with(&format!("config file {}, line ", f.0.display())),
            "{e}"
        );
    }
}

#[test]
fn serde_reasons_in_our_words() {
    let f = Scratch::new(
        "words",
        "level = \"3\"\nmode = \"warp\"\non = 1\n\nname = 2.5\n",
    );
    let file = f.load().unwrap();
    let level = file.get::<Level>("level").unwrap_err().to_string();
    assert!(
        level.ends_with("line 1, key `level`: expected a whole number, found string"),
        "{level}"
    );
    let mode = file.get::<Mode>("mode").unwrap_err().to_string();
    assert!(
        mode.ends_with("line 2, key `mode`: unknown value, expected `fast` or `slow`"),
        "{mode}"
    );
    let on = file.get::<Bool>("on").unwrap_err().to_string();
    assert!(
        on.ends_with("line 3, key `on`: expected true or false, found integer"),
        "{on}"
    );
    let name = file.get::<String>("name").unwrap_err().to_string();
    assert!(
        name.ends_with("line 5, key `name`: expected a string, found float"),
        "{name}"
    );
}

#[test]
fn a_parse_error_names_the_line_and_a_known_key_only() {
    let f = Scratch::new("parse", "level = 1\n\nmode = fast\n");
    let e = f.load().err().unwrap().to_string();
    let head = format!(
        "config file {}, line 3, key `mode`: TOML parse error: ",
        f.0.display()
    );
    assert!(e.starts_with(&head), "{e}");
    let f = Scratch::new("parse-unknown", "\ncolour = red\n");
    let e = f.load().err().unwrap().to_string();
    let head = format!("config file {}, line 2: TOML parse error: ", f.0.display());
    assert!(e.starts_with(&head), "{e}");
}

#[test]
fn an_unreadable_file_names_it() {
    let path = std::env::temp_dir().join("pynq-mqtt-layers-no-such-file.toml");
    let e = File::load(&path, KEYS).err().unwrap();
    assert!(matches!(e, Error::Read { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("cannot read config file {}", path.display())
    );
}
