//! Stimulus files: lines `<time_us> <input> <level>`, simulated microseconds from the
//! start, sorted by time; several lines may share a time. `#` starts a comment.

use std::path::Path;

/// One scheduled pin change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub time_us: u64,
    pub input: u32,
    pub level: bool,
}

/// A stimulus that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StimulusError {
    // the cause is in the message and not a `source`: error chains print sources too,
    // and the cause came out twice
    #[error("cannot read stimulus {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}:{line}: {msg}")]
    Parse {
        origin: String,
        line: usize,
        msg: String,
    },
}

/// Reads and checks a stimulus file against the number of inputs of the board.
pub fn load(path: &Path, n_inputs: u32) -> Result<Vec<Step>, StimulusError> {
    let text = std::fs::read_to_string(path).map_err(|cause| StimulusError::Read {
        path: path.display().to_string(),
        cause,
    })?;
    parse(&text, &path.display().to_string(), n_inputs)
}

/// Parses stimulus text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str, n_inputs: u32) -> Result<Vec<Step>, StimulusError> {
    // editors on Windows start UTF-8 files with a byte order mark
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut steps = Vec::new();
    let mut last = 0u64;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |msg: String| StimulusError::Parse {
            origin: origin.to_owned(),
            line: i + 1,
            msg,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [t, input, level] = fields[..] else {
            return Err(err(format!(
                "expected `<time_us> <input> <level>`, found {line:?}"
            )));
        };
        let time_us: u64 = t
            .parse()
            .map_err(|_| err(format!("time {t:?} is not a whole number of microseconds")))?;
        let input: u32 = input
            .parse()
            .map_err(|_| err(format!("input {input:?} is not a number")))?;
        if input >= n_inputs {
            return Err(err(format!(
                "input {input} does not exist (the board has {n_inputs})"
            )));
        }
        let level = match level {
            "0" => false,
            "1" => true,
            _ => return Err(err(format!("level {level:?} is neither 0 nor 1"))),
        };
        if time_us < last {
            return Err(err(format!(
                "time {time_us} is before the previous line's {last}: lines must be sorted"
            )));
        }
        last = time_us;
        steps.push(Step {
            time_us,
            input,
            level,
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_no_part_of_the_first_line() {
        let s = parse("\u{feff}1000 0 1\n2000 0 0\n", "t", 4).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].time_us, 1000);
        assert!(
            parse("1000 0 1\n\u{feff}2000 0 0\n", "t", 4).is_err(),
            "only at the start"
        );
    }

    #[test]
    fn a_missing_file_says_its_cause_once() {
        let e = load(Path::new("/nonexistent/s.stim"), 4).unwrap_err();
        let all = anyhow_like(&e);
        assert_eq!(all.matches("No such file").count(), 1, "{all}");
    }

    /// The message and every source below it, as an error chain prints them.
    fn anyhow_like(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s.push_str(&format!(": {c}"));
            cur = c.source();
        }
        s
    }

    #[test]
    fn parses_sorted_lines_with_comments() {
        let s = parse("# t in out\n0 0 1\n\n5 3 1 # all\n5 1 1\n9 0 0\n", "t", 4).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[1],
            Step {
                time_us: 5,
                input: 3,
                level: true
            }
        );
        assert!(!s[3].level);
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        let cases = [
            ("1 0\n", "expected"),
            ("x 0 1\n", "time"),
            ("1 4 1\n", "does not exist"),
            ("1 0 2\n", "neither"),
            ("5 0 1\n4 0 0\n", "sorted"),
            ("-1 0 1\n", "time"),
        ];
        for (text, want) in cases {
            let e = parse(text, "f.stim", 4).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?} gave {e}");
            assert!(e.starts_with("f.stim:"), "{e}");
        }
    }
}
