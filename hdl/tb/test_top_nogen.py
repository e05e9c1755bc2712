"""cocotb bench of pynq_mqtt_io as the IP is built by default, without the event
generator (WITH_GEN=0):

- PARAMS.GENERATOR reads 0, so software can tell;
- every GEN_* register reads 0 after reset and after a write of all ones, and a start
  written to GEN_CTRL makes no event (FIFO_LEVEL and GEN_SENT stay 0);
- the GEN_DONE bits of IRQ_ENABLE and IRQ_STATUS read 0 and ignore writes; irq stays low;
- the pins still become events, none of them marked SYNTHETIC.

    .venv/bin/python -m pytest -q -p no:cacheprovider hdl/tb/test_top_nogen.py
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles

from pmq_top_tb import CORE_TIMEOUT_US, NOGEN_PARAMS, STRESS, TB, bit, field
from pmq_runner import run_bench

GEN_REGS = ["GEN_CTRL", "GEN_COUNT", "GEN_PERIOD", "GEN_PATTERN", "GEN_SENT"]


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_no_generator(dut, stress):
    tb = TB(dut, stress)
    await tb.reset()
    assert tb.with_gen == 0

    params = await tb.read("PARAMS")
    assert field(params, "PARAMS", "GENERATOR") == 0, f"PARAMS {params:#010x} claims a generator"

    for reg in GEN_REGS:
        assert await tb.read(reg) == 0, f"{reg} after reset"
        await tb.write(reg, 0xFFFFFFFF)
        assert await tb.read(reg) == 0, f"{reg} took a write"

    # a whole run asked for: nothing happens
    await tb.write("GEN_COUNT", 8)
    await tb.write("GEN_PATTERN", 1)
    await tb.write("GEN_CTRL", bit("GEN_CTRL", "ENABLE"))
    await ClockCycles(tb.clk, 64)
    assert await tb.read("FIFO_LEVEL") == 0, "events without a generator"
    assert await tb.read("GEN_SENT") == 0
    assert await tb.read("GEN_CTRL") == 0

    gen_done = bit("IRQ_ENABLE", "GEN_DONE")
    await tb.write("IRQ_ENABLE", 0xFFFFFFFF)
    enable = await tb.read("IRQ_ENABLE")
    assert enable == bit("IRQ_ENABLE", "EVENT") | bit("IRQ_ENABLE", "OVERFLOW"), f"IRQ_ENABLE {enable:#x}"
    await tb.write("IRQ_STATUS", 0xFFFFFFFF)
    assert await tb.read("IRQ_STATUS") & bit("IRQ_STATUS", "GEN_DONE") == 0
    assert tb.irq == 0, "irq with nothing due"
    await tb.write("IRQ_ENABLE", gen_done)
    assert await tb.read("IRQ_ENABLE") == 0

    # the pins still make events, from the pins
    await tb.drive_btn(1)
    await tb.wait_events_settled(1)
    await tb.drive_btn(0)
    await tb.wait_events_settled(1)
    events = await tb.drain(limit=2)
    assert [(e.input, e.level, e.synthetic) for e in events] == [(0, 1, 0), (0, 0, 0)], events


def test_top_nogen_runner() -> None:
    run_bench("pynq_mqtt_io", "test_top_nogen", "top-nogen", NOGEN_PARAMS)
