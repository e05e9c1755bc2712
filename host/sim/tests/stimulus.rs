//! The stimulus parser: any text gets an answer (never a panic), a generated valid file
//! reads back as what was written, and an error names its line.

use proptest::prelude::*;
use pynq_mqtt_sim::{stimulus, Step, StimulusError};

fn steps() -> impl Strategy<Value = Vec<(u64, u32, bool)>> {
    proptest::collection::vec((0u64..1_000_000, 0u32..6, any::<bool>()), 0..60).prop_map(|mut v| {
        v.sort_by_key(|s| s.0);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_gets_an_answer(text in "(([0-9 #\t-]|[a-z]|\u{e9}|\r){0,24}\n){0,12}", n in 0u32..8) {
        match stimulus::parse(&text, "fuzz", n) {
            Ok(v) => {
                prop_assert!(v.windows(2).all(|w| w[0].time_us <= w[1].time_us), "unsorted result");
                prop_assert!(v.iter().all(|s| s.input < n));
            }
            Err(StimulusError::Parse { line, origin, .. }) => {
                prop_assert!(line >= 1 && line <= text.lines().count(), "line {} of {}", line, text.lines().count());
                prop_assert_eq!(origin, "fuzz");
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
        }
    }

    #[test]
    fn a_valid_file_reads_back(v in steps(), comments in any::<bool>()) {
        let mut text = String::new();
        for (t, i, l) in &v {
            text += &format!("{t} {i} {}", u8::from(*l));
            if comments { text += "  # note"; }
            text += "\n";
        }
        let got = stimulus::parse(&text, "gen", 6).unwrap();
        let want: Vec<Step> = v.iter().map(|&(time_us, input, level)| Step { time_us, input, level }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn one_bad_line_is_named(v in steps(), at in any::<prop::sample::Index>(), bad in prop_oneof![
        Just("x 0 1"), Just("10 0"), Just("10 0 2"), Just("10 9 1"), Just("-1 0 1"), Just("10 0 1 1"),
        Just("99999999999999999999999 0 1"),
    ]) {
        let mut lines: Vec<String> = v.iter().map(|(t, i, l)| format!("{t} {i} {}", u8::from(*l))).collect();
        let k = if lines.is_empty() { 0 } else { at.index(lines.len() + 1) };
        lines.insert(k, bad.to_string());
        let text = lines.join("\n");
        match stimulus::parse(&text, "gen", 6) {
            Err(StimulusError::Parse { line, .. }) => prop_assert!(line <= k + 1, "error at line {} after the bad line {}", line, k + 1),
            other => return Err(TestCaseError::fail(format!("{bad:?} at line {} gave {other:?}", k + 1))),
        }
    }
}
