"""cocotb bench of pynq_mqtt_io, debounce: DEBOUNCE_US = 0 passes every bounce; a
bouncing contact is one press and one release, the press stamped at first contact; a
pulse shorter than the lockout is released when it ends.

How every top bench runs (stress passes, parameter sets, one shared build): pmq_top_tb.py.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge

from pmq_top_tb import (
    FEATURE_TIMEOUT_US, PARAM_SETS, STRESS, TB, EventModel, run_top, us_cycles,
)


def bounce_pattern(span: int, level: int) -> list[int]:
    """Per-clock levels of a contact going to `level` and bouncing for `span` clocks, the
    last bounce (at the old level) right before it settles."""
    pattern: list[int] = []
    cur = level
    while len(pattern) < span:
        pattern += [cur] * random.randint(1, max(1, span // 5))
        cur ^= 1
    pattern = pattern[:span] or [level]
    if span >= 3:
        pattern[-2] = 1 - level
    pattern[-1] = level
    return pattern



# =====================================================================================
# debounce
# =====================================================================================


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_debounce(dut, stress):
    """0 (reset): every bounce is an event. DEBOUNCE_US = D: contacts bouncing for less
    than D give one press and one release each, stamped at first contact; a pulse shorter
    than D is released when the lockout ends, D to D + 1 us after the press."""
    tb = TB(dut, stress)
    await tb.reset()
    assert await tb.read("DEBOUNCE_US") == 0

    # off: each change of a bouncing contact is its own event
    model = EventModel(tb)
    i = random.randrange(tb.n_inputs)
    for _ in range(5):
        await model.toggle(i)
    await model.pop_all()
    await model.set_pins(0)
    await model.pop_all()

    lock = us_cycles(tb, 150)  # long enough for a few AXI reads inside the lockout
    await tb.write("DEBOUNCE_US", lock)
    assert await tb.read("DEBOUNCE_US") == lock
    await ClockCycles(tb.clk, tb.ticks * 2)

    # up to three inputs bouncing together, each starting on its own clock
    inputs = random.sample(range(tb.n_inputs), min(3, tb.n_inputs))
    span = lock * tb.ticks - 4  # clocks of bouncing, inside the lockout
    for level in (1, 0):
        c_start = tb.cycle()
        t_before = await tb.read("TIME")  # TIME as sampled between c_start and c_end
        c_end = tb.cycle()
        await RisingEdge(tb.clk)
        starts = {j: random.randint(0, 5) for j in inputs}
        patterns = {j: bounce_pattern(span, level) for j in inputs}
        first_contact = {}
        pins = 0 if level else tb.in_mask & sum(1 << j for j in inputs)
        for t in range(span + 6):
            for j in inputs:
                k = t - starts[j]
                if 0 <= k < span:
                    if k == 0:
                        first_contact[j] = tb.cycle() + 1
                    pins = (pins & ~(1 << j)) | (patterns[j][k] << j)
            await tb.drive_btn(pins)
        await ClockCycles(tb.clk, (lock + 2) * tb.ticks)
        got = await tb.drain()
        assert sorted(ev.input for ev in got) == sorted(inputs), (
            f"{'press' if level else 'release'} of bouncing inputs {inputs}: events {got}"
        )
        assert all(ev.level == level for ev in got)
        for ev in got:
            c = first_contact[ev.input]
            # stamped at first contact (+ synchronizer and debounce clocks)
            lo = t_before + (c - c_end) // tb.ticks - 1
            hi = t_before + (c + 6 - c_start) // tb.ticks + 1
            assert lo <= ev.ts <= hi, (
                f"input {ev.input}: stamped {ev.ts}, first contact {c - c_end} clocks "
                f"after TIME read {t_before} ({tb.ticks} clocks/us)"
            )
        assert await tb.read("INPUTS") == (pins if level else 0)

    # a pulse shorter than the lockout: the press at once, the release at its end
    i = random.randrange(tb.n_inputs)
    c_press = await tb.drive_btn(1 << i)
    await ClockCycles(tb.clk, 2)
    await tb.drive_btn(0)
    await ClockCycles(tb.clk, 8)
    raw = await tb.read("INPUTS_RAW")
    debounced = await tb.read("INPUTS")
    if tb.cycle() - c_press < lock * tb.ticks - 4:
        assert raw == 0 and debounced == 1 << i, (
            f"inside the lockout: INPUTS_RAW {raw:#x}, INPUTS {debounced:#x}"
        )
    else:
        tb.log.warning("the INPUTS reads took longer than the lockout; not checked")
    await ClockCycles(tb.clk, (lock + 2) * tb.ticks)
    got = await tb.drain()
    assert [(ev.input, ev.level) for ev in got] == [(i, 1), (i, 0)], got
    held = got[1].ts - got[0].ts
    assert lock <= held <= lock + 2, f"released {held} us after the press; DEBOUNCE_US {lock}"
    assert got[1].seq == (got[0].seq + 1) & 0xFFFF
    assert await tb.read("INPUTS") == 0

    # back to 0 (once the lockout the release started is over): every change passes
    await ClockCycles(tb.clk, (lock + 2) * tb.ticks)
    await tb.write("DEBOUNCE_US", 0)
    model = EventModel(tb)
    model.seq = got[1].seq + 1
    for _ in range(4):
        await model.toggle(i)
    await model.pop_all()
    assert await tb.read("DROPPED") == 0


# =====================================================================================
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_top_debounce_runner(name: str) -> None:
    run_top("test_top_debounce", name)
