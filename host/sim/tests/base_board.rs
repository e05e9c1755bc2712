//! The simulated base overlay (models of AXI GPIO and AXI INTC) through its one bus:
//! windows, pins, and the interrupt path of each board layout.

use std::time::Duration;

use pynq_mqtt_bus::{Bus, IrqWait};
use pynq_mqtt_sim::base::{BaseLayout, BaseSimConfig, SimBaseBoard, BASE_SPAN};
use pynq_mqtt_sim::Speed;

const SW: u32 = 0x0;
const BTN: u32 = 0x1_0000;
const RGB: u32 = 0x4_0000;
const LED: u32 = 0x5_0000;
const INTC: u32 = 0x60_0000;

fn board(layout: BaseLayout) -> SimBaseBoard {
    SimBaseBoard::start(BaseSimConfig {
        speed: Speed::RealTime(1.0),
        stimulus: Vec::new(),
        layout,
    })
    .unwrap()
}

#[test]
fn windows_reach_their_blocks_and_pins() {
    let b = board(BaseLayout::Z1);
    b.write32(LED, 0b1010).unwrap();
    b.write32(RGB, 0b10_0101).unwrap();
    assert_eq!(b.read32(LED).unwrap(), 0b1010);
    assert_eq!(
        b.leds(),
        0b10_0101 << 4 | 0b1010,
        "LEDs 0-3, then RGB bits 0-5"
    );
    b.set_input(2, true);
    b.set_input(5, true);
    b.step(4);
    assert_eq!(b.read32(BTN).unwrap(), 0b0100, "BTN2");
    assert_eq!(b.read32(SW).unwrap(), 0b10, "SW1");
    assert_eq!(b.read32(BTN + 0x4).unwrap(), 0xF, "all inputs (TRI)");
    assert!(b.read32(BASE_SPAN as u32).is_err(), "outside the span");
    // between windows nothing answers but zero
    assert_eq!(b.read32(0x2_0000).unwrap(), 0);
    assert_eq!(b.read32(INTC + 0x1C).unwrap(), 0, "MER after reset");
}

fn button_raises_the_line(layout: BaseLayout, bit: u32) {
    let b = board(layout);
    b.write32(BTN + 0x11C, 0x8000_0000).unwrap();
    b.write32(BTN + 0x128, 1).unwrap();
    b.write32(INTC + 0x10, 1 << bit).unwrap();
    b.write32(INTC + 0x1C, 3).unwrap();
    assert_eq!(
        b.wait_irq(Duration::from_millis(20)).unwrap(),
        IrqWait::TimedOut
    );
    b.set_input(0, true);
    assert_eq!(b.wait_irq(Duration::from_secs(5)).unwrap(), IrqWait::Fired);
    assert_eq!(
        b.read32(INTC + 0x04).unwrap(),
        1 << bit,
        "IPR: the buttons' input"
    );
    assert_eq!(b.read32(BTN + 0x120).unwrap(), 1, "GPIO ISR");
    b.write32(BTN + 0x120, 1).unwrap();
    b.write32(INTC + 0x0C, 1 << bit).unwrap();
    b.step(4);
    assert_eq!(b.read32(INTC + 0x04).unwrap(), 0, "acknowledged");
    b.rearm_irq().unwrap();
    assert_eq!(
        b.wait_irq(Duration::from_millis(20)).unwrap(),
        IrqWait::TimedOut
    );
}

#[test]
fn z1_buttons_are_controller_input_11() {
    button_raises_the_line(BaseLayout::Z1, 11);
}

#[test]
fn z2_buttons_are_controller_input_13() {
    button_raises_the_line(BaseLayout::Z2, 13);
}

#[test]
fn a_pulse_is_seen_by_the_gpio_status_but_not_its_data() {
    let b = board(BaseLayout::Z2);
    b.pulse_input(1, 3);
    b.step(4);
    assert_eq!(b.read32(BTN).unwrap(), 0, "the level is back");
    assert_eq!(b.read32(BTN + 0x120).unwrap(), 1, "the change was recorded");
}
