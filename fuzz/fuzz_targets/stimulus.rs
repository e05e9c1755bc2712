//! Stimulus files (`<time_us> <input> <level>` lines). The parser is included from
//! source so that this target needs no Verilator build.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../host/sim/src/stimulus.rs"]
mod stimulus;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let n_inputs = u32::from(n % 33);
    match stimulus::parse(text, "fuzz", n_inputs) {
        Ok(steps) => {
            assert!(steps.windows(2).all(|w| w[0].time_us <= w[1].time_us));
            assert!(steps.iter().all(|s| s.input < n_inputs));
        }
        Err(stimulus::StimulusError::Parse { line, .. }) => {
            assert!(line >= 1 && line <= text.lines().count());
        }
        Err(e) => panic!("{e}"),
    }
});
