"""cocotb bench of pynq_mqtt_io, LEDs and inputs: LED drives the led pins and reads back,
INPUTS shows the btn levels; LED_SET, LED_CLR, LED_TOGGLE; the PWM duty cycle of
LED_PWMk on the led pins.

How every top bench runs (stress passes, parameter sets, one shared build): pmq_top_tb.py.
"""

from __future__ import annotations

import math
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles

from pmq_top_tb import (
    ADDR, CORE_TIMEOUT_US, FEATURE_TIMEOUT_US, PARAM_SETS, PWM_PERIOD, STRESS, TB,
    apply_strb, run_top,
)


# =====================================================================================
# LEDs and inputs
# =====================================================================================


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_led_and_inputs(dut, stress):
    """LED drives the led pins (N_LEDS bits, through the PWM output register: one clock
    later) and reads back; INPUTS shows the btn levels."""
    tb = TB(dut, stress)
    await tb.reset()

    assert int(dut.led.value) == 0
    values = [0xFFFFFFFF, 0, 0xA5A5A5A5, 0x5A5A5A5A]
    values += [random.getrandbits(32) for _ in range(6)]
    led = 0
    for value in values:
        await tb.write("LED", value)
        led = value & tb.led_mask
        await ClockCycles(tb.clk, 2)
        assert int(dut.led.value) == led, f"led pins after writing {value:#010x}"
        assert await tb.read("LED") == led
    # WSTRB: only the written byte changes
    await tb.write("LED", 0)
    led = 0
    for lane in range(4):
        byte = random.getrandbits(8) | 1
        await tb.write_bytes(ADDR["LED"] + lane, bytes([byte]))
        led = apply_strb(led, byte << 8 * lane, 1 << lane, tb.led_mask)
        await ClockCycles(tb.clk, 2)
        assert int(dut.led.value) == led
        assert await tb.read("LED") == led
    await tb.reset()
    assert int(dut.led.value) == 0, "LED resets to 0"
    assert await tb.read("LED") == 0

    patterns = [tb.in_mask, 0, 1, tb.in_mask >> 1]
    patterns += [random.getrandbits(tb.n_inputs) for _ in range(6)]
    edges, pins = 0, 0
    for pattern in patterns:
        await tb.drive_btn(pattern)
        edges += bin(pattern ^ pins).count("1")
        pins = pattern
        await ClockCycles(tb.clk, 3)
        assert await tb.read("INPUTS") == pattern, f"INPUTS with btn = {pattern:#x}"
    # every INPUTS change was an event too: each one is waiting or counted as dropped
    # (once the snapshot queue, up to 5 snapshots of N_INPUTS edges, has drained)
    await tb.wait_events_settled(5 * tb.n_inputs)
    waiting = await tb.read("FIFO_LEVEL")
    assert waiting + await tb.read("DROPPED") == edges
    if tb.n_inputs == 1:  # one edge per snapshot: only a full FIFO can lose one
        assert waiting == min(edges, tb.capacity)


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_led_set_clr_toggle(dut, stress):
    """LED_SET, LED_CLR, LED_TOGGLE change only the bits written as 1, read 0, and never
    lose a change made in flight with another (strobes: test_wstrb_raw)."""
    tb = TB(dut, stress)
    await tb.reset()
    led = 0
    for _ in range(24):
        op = random.choice(["LED", "LED_SET", "LED_CLR", "LED_TOGGLE"])
        v = random.getrandbits(32)
        if random.random() < 0.3:  # one byte lane only
            lane = random.randrange(4)
            await tb.write_bytes(ADDR[op] + lane, bytes([(v >> 8 * lane) & 0xFF]))
            v &= 0xFF << 8 * lane
            if op == "LED":
                v |= led & ~(0xFF << 8 * lane)
        else:
            await tb.write(op, v)
        v &= tb.led_mask
        led = {"LED": v, "LED_SET": led | v, "LED_CLR": led & ~v, "LED_TOGGLE": led ^ v}[op]
        assert await tb.read("LED") == led, f"after {op} {v:#x}"
        await ClockCycles(tb.clk, 2)
        assert int(dut.led.value) == led, "led pins (brightness 255: steadily on)"
    for op in ("LED_SET", "LED_CLR", "LED_TOGGLE"):
        assert await tb.read(op) == 0, f"{op} reads 0"

    # three writers at once on disjoint bits: every change lands
    bits = random.sample(range(tb.n_leds), min(3, tb.n_leds))
    ops = ["LED_SET", "LED_CLR", "LED_TOGGLE"][: len(bits)]
    evs = [tb.axil.init_write(ADDR[op], (1 << b).to_bytes(4, "little")) for op, b in zip(ops, bits)]
    for ev in evs:
        await ev.wait()
    for op, b in zip(ops, bits):
        led = {"LED_SET": led | 1 << b, "LED_CLR": led & ~(1 << b), "LED_TOGGLE": led ^ 1 << b}[op]
    assert await tb.read("LED") == led


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_led_pwm(dut, stress):
    """Each LED that is on is high for 16 x brightness of every 4096 clocks (255: always),
    an LED that is off never; LED_PWMk holds LEDs 4k..4k+3 and honours WSTRB."""
    tb = TB(dut, stress)
    await tb.reset()
    for k in range(tb.pwm_words):
        assert await tb.read(f"LED_PWM{k}") == (1 << 8 * min(4, tb.n_leds - 4 * k)) - 1

    def expect(b: int, on: int) -> int:
        return 0 if not on else (PWM_PERIOD if b == 255 else 16 * b)

    # every window measures each LED once; the edge values are always among them
    required = [255, 0, 1, 254]
    special = [2, 15, 16, 127, 128, 200]
    windows = max(2, math.ceil(len(required) / tb.n_leds))
    values = required + [random.choice(special + [random.randrange(256)])
                         for _ in range(windows * tb.n_leds - len(required))]
    random.shuffle(values)
    for window in range(windows):
        bright = values[window * tb.n_leds : (window + 1) * tb.n_leds]
        on = random.getrandbits(tb.n_leds) if window == windows - 1 else tb.led_mask
        for k in range(tb.pwm_words):
            word = sum(b << 8 * j for j, b in enumerate(bright[4 * k : 4 * k + 4]))
            await tb.write(f"LED_PWM{k}", word)
            assert await tb.read(f"LED_PWM{k}") == word
        await tb.write("LED", on)
        await ClockCycles(tb.clk, 3)
        counts = await tb.led_high_counts(PWM_PERIOD)
        want = [expect(b, (on >> i) & 1) for i, b in enumerate(bright)]
        assert counts == want, (
            f"window {window}: high clocks per LED {counts}, expected {want} "
            f"(brightness {bright}, on {on:#x})"
        )

    # one byte of LED_PWM0: only that LED's brightness changes
    lane = random.randrange(min(4, tb.n_leds))
    before = await tb.read("LED_PWM0")
    await tb.write_bytes(ADDR["LED_PWM0"] + lane, b"\x40")
    after = await tb.read("LED_PWM0")
    assert after == (before & ~(0xFF << 8 * lane)) | (0x40 << 8 * lane)
    await tb.write("LED", 1 << lane)
    await ClockCycles(tb.clk, 3)
    counts = await tb.led_high_counts(PWM_PERIOD)
    assert counts[lane] == 16 * 0x40 and sum(counts) == counts[lane]


# =====================================================================================
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_top_leds_runner(name: str) -> None:
    run_top("test_top_leds", name)
