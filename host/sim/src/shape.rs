//! The shape the model was built with: how many inputs and LEDs, and what they are on
//! the PYNQ-Z1/Z2 board overlay, whose shape is the default (host/sim/build.rs).

/// The board overlay's inputs: BTN0-3, then SW0-1 (docs/board.md).
pub const BOARD_INPUTS: [&str; 6] = ["BTN0", "BTN1", "BTN2", "BTN3", "SW0", "SW1"];
/// The board overlay's LEDs: LD0-3, then the blue, green and red of LD4 and of LD5.
pub const BOARD_LEDS: [&str; 10] = [
    "LD0",
    "LD1",
    "LD2",
    "LD3",
    "LD4 blue",
    "LD4 green",
    "LD4 red",
    "LD5 blue",
    "LD5 green",
    "LD5 red",
];

/// `sim --help`'s paragraph on the shape: what this binary was built with and how to
/// build another.
pub const HELP: &str = concat!(
    "Simulated board of this build: ",
    env!("PMQ_SIM_N_INPUTS"),
    " inputs, ",
    env!("PMQ_SIM_N_LEDS"),
    " LEDs. The default is the board overlay's shape: inputs 0-3 are BTN0-3 and 4-5 \
     SW0-1; LEDs 0-3 are LD0-3, 4-6 the blue, green and red of LD4, 7-9 those of LD5 \
     (docs/board.md). Another shape, for hardware you extended, is a build-time choice: \
     PYNQ_MQTT_SIM_N_INPUTS=8 PYNQ_MQTT_SIM_N_LEDS=16 cargo build -p pynq-mqtt \
     (each 1 to 32)."
);

/// Input `i`'s name on the board, where the model has the board's shape.
pub fn input_name(n_inputs: u32, n_leds: u32, i: u32) -> Option<&'static str> {
    is_board(n_inputs, n_leds)
        .then(|| BOARD_INPUTS.get(i as usize).copied())
        .flatten()
}

/// LED `i`'s name on the board, where the model has the board's shape.
pub fn led_name(n_inputs: u32, n_leds: u32, i: u32) -> Option<&'static str> {
    is_board(n_inputs, n_leds)
        .then(|| BOARD_LEDS.get(i as usize).copied())
        .flatten()
}

fn is_board(n_inputs: u32, n_leds: u32) -> bool {
    n_inputs as usize == BOARD_INPUTS.len() && n_leds as usize == BOARD_LEDS.len()
}

/// One phrase for a start line: `6 inputs (BTN0-3, SW0-1), 10 LEDs (LD0-3, LD4 and LD5
/// blue/green/red)` for the board's shape, the counts otherwise.
pub fn describe(n_inputs: u32, n_leds: u32) -> String {
    if is_board(n_inputs, n_leds) {
        format!(
            "{n_inputs} inputs (BTN0-3, SW0-1), {n_leds} LEDs (LD0-3, LD4 and LD5 blue/green/red): \
             the board's shape"
        )
    } else {
        format!(
            "{n_inputs} inputs, {n_leds} LEDs (built with PYNQ_MQTT_SIM_N_INPUTS/_N_LEDS; \
             the board has 6 and 10)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_only_for_the_board_shape() {
        assert_eq!(input_name(6, 10, 4), Some("SW0"));
        assert_eq!(led_name(6, 10, 6), Some("LD4 red"));
        assert_eq!(led_name(6, 10, 10), None);
        assert_eq!(input_name(4, 4, 0), None);
        assert!(describe(6, 10).contains("board's shape"));
        assert!(describe(4, 4).starts_with("4 inputs, 4 LEDs"));
    }

    #[test]
    fn the_help_names_the_built_shape() {
        let n_in = env!("PMQ_SIM_N_INPUTS");
        let n_led = env!("PMQ_SIM_N_LEDS");
        assert!(
            HELP.contains(&format!("{n_in} inputs, {n_led} LEDs.")),
            "{HELP}"
        );
        assert_eq!(n_in.parse::<u32>().unwrap(), crate::ffi::n_inputs());
        assert_eq!(n_led.parse::<u32>().unwrap(), crate::ffi::n_leds());
    }
}
