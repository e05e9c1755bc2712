"""cocotb bench of pynq_mqtt_io, the event generator: GEN_CTRL, GEN_COUNT, GEN_PERIOD,
GEN_PATTERN, GEN_SENT, SYNTHETIC; pin edges take precedence and nothing is lost; faster
than the drain, delivered + DROPPED = generated exactly and the sequence gaps are
DROPPED.

How every top bench runs (stress passes, parameter sets, one shared build): pmq_top_tb.py.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge

from pmq_top_tb import (
    ADDR, FEATURE_TIMEOUT_US, GEN_DONE, OVERFLOW, PARAM_SETS, STRESS, TB, Event, run_top,
)


def pattern_order(tb: TB, pattern: int) -> list[int]:
    return [i for i in range(tb.n_inputs) if (pattern >> i) & 1] or [0]


def check_generated(tb: TB, got: list[Event], pattern: int, seq0: int) -> None:
    """Generated events k = seq - seq0: input order[k % n], level alternating per input,
    starting with a press; all SYNTHETIC."""
    order = pattern_order(tb, pattern)
    for ev in got:
        k = (ev.seq - seq0) & 0xFFFF
        assert ev.synthetic == 1, f"not SYNTHETIC: {ev}"
        assert ev.input == order[k % len(order)], f"event {k}: input {ev.input}, order {order}"
        assert ev.level == 1 - (k // len(order)) % 2, f"event {k}: level {ev.level}"



# =====================================================================================
# event generator
# =====================================================================================


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_generator(dut, stress):
    """GEN_COUNT events, GEN_PERIOD clocks apart, GEN_PATTERN lowest first, levels toggling,
    SYNTHETIC; ENABLE clears itself, GEN_SENT counts, GEN_DONE; COUNT 0 runs until
    stopped; pins are untouched."""
    tb = TB(dut, stress)
    await tb.reset()
    await tb.write("IRQ_ENABLE", GEN_DONE)
    seq = 0
    for run in range(2):
        count = random.randint(2, min(12, tb.capacity))
        period = random.randint(2, 7)
        pattern = random.getrandbits(tb.n_inputs) if run else 0
        await tb.start_gen(count, period, pattern)
        await tb.wait_gen_done(count * period + 500)
        assert await tb.read("GEN_CTRL") == 0, "ENABLE clears itself after GEN_COUNT"
        assert await tb.read("GEN_SENT") == count
        assert await tb.read("IRQ_STATUS") & GEN_DONE
        assert tb.irq == 1, "irq for GEN_DONE"
        assert await tb.read("INPUTS") == 0, "synthetic levels are not the pins"
        got = await tb.drain()
        assert len(got) == count and [ev.seq for ev in got] == [(seq + k) & 0xFFFF for k in range(count)]
        check_generated(tb, got, pattern, seq)
        span = got[-1].ts - got[0].ts
        assert abs(span - (count - 1) * period / tb.ticks) <= 1, (
            f"{count} events {period} clocks apart over {span} us"
        )
        seq += count
        await tb.write("IRQ_STATUS", GEN_DONE)
        await ClockCycles(tb.clk, 2)
        assert tb.irq == 0

    # COUNT 0: until ENABLE is written 0; a restart counts GEN_SENT from 0
    period = 40
    for _ in range(2):
        await tb.start_gen(0, period, 1)
        await ClockCycles(tb.clk, min(tb.capacity - 2, 5) * period)
        assert await tb.read("GEN_CTRL") == 1, "COUNT 0 does not stop by itself"
        await tb.write("GEN_CTRL", 0)
        sent = await tb.read("GEN_SENT")
        await ClockCycles(tb.clk, 2 * period)
        assert await tb.read("GEN_SENT") == sent, "stopped"
        assert await tb.read("IRQ_STATUS") & GEN_DONE == 0, "a stop is not GEN_DONE"
        got = await tb.drain()
        assert len(got) == sent >= 2
        check_generated(tb, got, 1, seq)
        seq += sent
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_generator_yields_to_pins(dut, stress):
    """With the generator offering an event every clock, clocks with pin edges take the
    pins; the generated events wait, none is lost."""
    tb = TB(dut, stress)
    await tb.reset()
    stretch = min(6, tb.capacity // 3)
    count = min(10, tb.capacity - stretch - 1)
    i = random.randrange(tb.n_inputs)

    async def pins_when_started():
        # input i toggles on every clock for `stretch` clocks, from the clock the
        # generator starts: each of those clocks has a pin edge
        while True:
            await RisingEdge(tb.clk)
            if int(dut.reg_wr_en.value) and int(dut.reg_wr_addr.value) & ~3 == ADDR["GEN_CTRL"]:
                break
        pins = 0
        for _ in range(stretch):
            pins ^= 1 << i
            await tb.drive_btn(pins)

    task = cocotb.start_soon(pins_when_started())
    await tb.start_gen(count, 1, 1)
    await task
    await tb.wait_gen_done(2000)
    await ClockCycles(tb.clk, 20)
    got = await tb.drain()
    assert await tb.read("DROPPED") == 0
    assert await tb.read("GEN_SENT") == count
    assert [ev.seq for ev in got] == list(range(count + stretch)), "no gap: nothing lost"
    synth = [ev for ev in got if ev.synthetic]
    pins = [ev for ev in got if not ev.synthetic]
    assert len(synth) == count and len(pins) == stretch
    assert [(ev.input, ev.level) for ev in synth] == [(0, 1 - k % 2) for k in range(count)], (
        "generated events: input 0, levels alternating"
    )
    assert [(ev.input, ev.level) for ev in pins] == [(i, 1 - k % 2) for k in range(stretch)]
    # the pin edges came on consecutive clocks: one block, no generated event inside
    idx = [k for k, ev in enumerate(got) if not ev.synthetic]
    assert idx == list(range(idx[0], idx[0] + stretch)), f"pin events at {idx}"
    if count >= 8:
        assert 0 < idx[0] and idx[-1] < len(got) - 1, "generated events before and after the pins"


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_generator_faster_than_drain(dut, stress):
    """The generator outruns the host's drain: delivered + DROPPED = GEN_SENT = GEN_COUNT,
    the sequence gaps are exactly DROPPED, every delivered event is where its sequence
    number says, OVERFLOW and GEN_DONE are set."""
    tb = TB(dut, stress)
    await tb.reset()
    await tb.write("IRQ_ENABLE", OVERFLOW)
    count = 2 * tb.capacity + random.randint(10, 40)
    period = random.choice([0, 1, 2])
    pattern = random.getrandbits(tb.n_inputs) | 1
    await tb.start_gen(count, period, pattern)
    got: list[Event] = []
    while True:
        ev = await tb.pop()
        if ev.valid:
            got.append(ev)
        elif not await tb.read("GEN_CTRL"):
            got += await tb.drain()
            break
    dropped = await tb.read("DROPPED")
    sent = await tb.read("GEN_SENT")
    tb.log.info("%d generated every %d clocks: %d delivered, %d dropped", count, period, len(got), dropped)
    assert sent == count
    assert len(got) + dropped == count, f"{len(got)} delivered + {dropped} dropped != {count}"
    assert dropped > 0, "the generator did not outrun the drain"
    seqs = [ev.seq for ev in got]
    assert seqs == sorted(set(seqs)) and seqs[0] == 0 and seqs[-1] < count
    assert count - len(seqs) == dropped, "sequence gaps must equal DROPPED"
    check_generated(tb, got, pattern, 0)
    ts = [ev.ts for ev in got]
    assert ts == sorted(ts)
    for ev in got:
        assert abs(ev.ts - ts[0] - ev.seq * max(1, period) / tb.ticks) <= 1, (
            f"seq {ev.seq} stamped {ev.ts - ts[0]} us after the first"
        )
    assert await tb.read("IRQ_STATUS") == OVERFLOW | GEN_DONE
    assert tb.irq == 1
    await tb.write("DROPPED", dropped)
    await tb.write("IRQ_STATUS", OVERFLOW | GEN_DONE)
    await ClockCycles(tb.clk, 2)
    assert await tb.read("DROPPED") == 0 and tb.irq == 0


# =====================================================================================
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_top_generator_runner(name: str) -> None:
    run_top("test_top_generator", name)
