"""cocotb bench for pmq_event_gen, the synthetic event generator.

A reference model of the documented behaviour runs beside the RTL, clock by clock:
  - start begins a run (ignored while running): GEN_SENT back to 0, every synthetic
    level back to released, the pattern from its lowest input; stop ends it at once;
  - while running, an event is offered every PERIOD clocks (0 or 1: every clock),
    counted from the clock it was taken; an offer not taken (gen_ready low, a pin edge
    in that clock) waits, unchanged;
  - the inputs of PATTERN in turn, lowest first (PATTERN 0 acts as input 0), each event
    toggling that input's level, the first a press;
  - sent counts taken events; after COUNT of them (0: no limit) the run stops by itself
    and done pulses for one clock, the clock after the last one was taken.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from pmq_runner import run_bench

TIMEOUT_US = 2000  # simulated; a hung handshake fails instead of hanging


class GenModel:
    def __init__(self, n_inputs: int):
        self.n = n_inputs
        self.running = False
        self.sent = 0
        self.wait = 0
        self.pos = 0
        self.levels = 0
        self.done = False

    def order(self, pattern: int) -> list[int]:
        pat = pattern & ((1 << self.n) - 1)
        return [i for i in range(self.n) if (pat >> i) & 1] or [0]

    def offer(self, pattern: int):
        """(input, level) offered in this clock, or None."""
        if not (self.running and self.wait == 0):
            return None
        order = self.order(pattern)
        i = order[self.pos % len(order)]
        return i, 1 - ((self.levels >> i) & 1)

    def clock(self, start, stop, ready, count, period, pattern) -> None:
        offer = self.offer(pattern)
        take = offer is not None and ready
        last = take and count != 0 and self.sent + 1 >= count
        begin = start and not self.running
        if take:
            self.levels ^= 1 << offer[0]
            self.pos += 1
            self.sent += 1
            self.wait = period - 1 if period > 1 else 0
        elif self.wait:
            self.wait -= 1
        if begin:
            self.sent, self.wait, self.pos, self.levels = 0, 0, 0, 0
        self.running = False if (stop or last) else (True if start else self.running)
        self.done = last


class GenTB:
    def __init__(self, dut):
        self.dut = dut
        self.n = int(dut.N_INPUTS.value)
        self.model = GenModel(self.n)
        self.count, self.period, self.pattern = 0, 0, 1
        self.takes: list[tuple[int, int, int]] = []  # (edge, input, level)
        self.edge = 0
        for name in ("start", "stop", "gen_ready", "count", "period"):
            getattr(dut, name).value = 0
        dut.pattern.value = 1
        dut.rst.value = 1
        Clock(dut.clk, 10, unit="ns").start()

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.model = GenModel(self.n)

    async def step(self, start=False, stop=False, ready=True) -> dict:
        dut, m = self.dut, self.model
        await FallingEdge(dut.clk)
        dut.start.value = int(start)
        dut.stop.value = int(stop)
        dut.gen_ready.value = int(ready)
        dut.count.value = self.count
        dut.period.value = self.period
        dut.pattern.value = self.pattern
        await ReadOnly()
        s = dict(
            running=int(dut.running.value),
            sent=int(dut.sent.value),
            done=int(dut.done.value),
            valid=int(dut.gen_valid.value),
            input=int(dut.gen_input.value),
            level=int(dut.gen_level.value),
        )
        offer = m.offer(self.pattern)
        where = f"edge {self.edge}"
        assert s["running"] == m.running, f"{where}: running {s['running']}, expected {m.running}"
        assert s["sent"] == m.sent, f"{where}: sent {s['sent']}, expected {m.sent}"
        assert s["done"] == m.done, f"{where}: done {s['done']}, expected {m.done}"
        assert s["valid"] == (offer is not None), f"{where}: gen_valid {s['valid']}, expected {offer}"
        if offer is not None:
            assert (s["input"], s["level"]) == offer, (
                f"{where}: offers input {s['input']} level {s['level']}, expected {offer}"
            )
            if ready:
                self.takes.append((self.edge, *offer))
        m.clock(start, stop, ready, self.count, self.period, self.pattern)
        self.edge += 1
        return s


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(p_ready=[1.0, 0.5, 0.15])
async def test_against_model(dut, p_ready):
    """Random COUNT, PERIOD, PATTERN and gen_ready, runs started, stopped, restarted."""
    tb = GenTB(dut)
    await tb.reset()
    full = (1 << tb.n) - 1
    runs = 0
    for _ in range(14):
        # PATTERN changes only between runs here (test_pattern_change_mid_run has the
        # rest); COUNT and PERIOD may change under a run
        if random.random() < 0.5:
            await tb.step(stop=True, ready=random.random() < p_ready)
        if not tb.model.running:
            tb.pattern = random.choice([0, 1, full, random.getrandbits(tb.n)])
        tb.count = random.choice([0, 1, 2, 5, random.randint(1, 40)])
        tb.period = random.choice([0, 1, 2, 3, random.randint(4, 9)])
        await tb.step(start=True, ready=random.random() < p_ready)
        runs += 1
        for k in range(random.randint(20, 160)):
            r = random.random()
            start = r < 0.01   # ignored while running
            stop = 0.01 <= r < 0.015
            await tb.step(start=start, stop=stop, ready=random.random() < p_ready)
    for _ in range(10):
        await tb.step()
    assert len(tb.takes) > 30, f"only {len(tb.takes)} events in {runs} runs"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_count_period_pattern(dut):
    """COUNT events, one every PERIOD clocks, PATTERN lowest first, levels toggling,
    done one clock after the last; a start while running changes nothing."""
    tb = GenTB(dut)
    await tb.reset()
    full = (1 << tb.n) - 1
    tb.pattern = full & 0b1011 if tb.n > 1 else 1
    order = tb.model.order(tb.pattern)
    tb.count, tb.period = 3 * len(order) + 1, 3
    await tb.step(start=True)
    dones = []
    for k in range(tb.count * tb.period + 10):
        # starts while running are ignored (not after the run: that would be a new one)
        s = await tb.step(start=k < (tb.count - 1) * tb.period and random.random() < 0.1)
        if s["done"]:
            dones.append(tb.edge - 1)
    takes = tb.takes
    assert len(takes) == tb.count
    assert [t[1] for t in takes] == [order[k % len(order)] for k in range(tb.count)]
    for i in order:
        levels = [t[2] for t in takes if t[1] == i]
        assert levels == [1 - (k % 2) for k in range(len(levels))], f"input {i}: {levels}"
    edges = [t[0] for t in takes]
    assert all(b - a == tb.period for a, b in zip(edges, edges[1:])), edges
    assert dones == [edges[-1] + 1], f"done at {dones}, last event at {edges[-1]}"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_unlimited_and_stop(dut):
    """COUNT 0 runs until stopped; every clock at PERIOD 0 and 1; a restart starts over."""
    tb = GenTB(dut)
    await tb.reset()
    tb.count, tb.pattern = 0, 1
    for period in (0, 1):
        tb.period = period
        tb.takes.clear()
        await tb.step(start=True)
        for _ in range(100):
            await tb.step()
        await tb.step(stop=True, ready=False)
        for _ in range(5):
            s = await tb.step()
            assert not s["running"] and not s["valid"] and not s["done"]
        assert len(tb.takes) == 100, f"PERIOD {period}: {len(tb.takes)} events in 100 clocks"
        assert s["sent"] == 100
        # the restart: the first event is a press again
        assert tb.takes[0][2] == 1 and tb.takes[1][2] == 0


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_pattern_change_mid_run(dut):
    """A new PATTERN under a run: only its inputs are offered from then on, and every
    input's level keeps alternating."""
    tb = GenTB(dut)
    await tb.reset()
    full = (1 << tb.n) - 1
    tb.count, tb.period, tb.pattern = 0, 0, full
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    dut.gen_ready.value = 1
    last_level = {}
    for _ in range(8):
        pattern = random.getrandbits(tb.n)
        dut.pattern.value = pattern
        allowed = tb.model.order(pattern)
        for _ in range(random.randint(1, 12)):
            await ReadOnly()
            assert int(dut.running.value) and int(dut.gen_valid.value)
            i, level = int(dut.gen_input.value), int(dut.gen_level.value)
            assert i in allowed, f"pattern {pattern:#x}: input {i} offered"
            assert level == 1 - last_level.get(i, 0), f"input {i}: level {level} twice"
            last_level[i] = level
            await FallingEdge(dut.clk)
    dut.stop.value = 1
    await FallingEdge(dut.clk)
    await ReadOnly()
    assert not int(dut.running.value) and not int(dut.gen_valid.value)


PARAM_SETS = {
    "n1": {"N_INPUTS": 1, "IDX_WIDTH": 8},
    "n4": {"N_INPUTS": 4, "IDX_WIDTH": 8},
    "n7": {"N_INPUTS": 7, "IDX_WIDTH": 8},
}


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_pmq_event_gen_runner(name: str) -> None:
    run_bench("pmq_event_gen", "test_pmq_event_gen", name, PARAM_SETS[name])
