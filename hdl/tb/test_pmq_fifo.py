"""cocotb bench for pmq_fifo, the synchronous FIFO with a show-ahead output register.

Every clock the bench drives in_valid/in_data/out_ready at the falling edge and samples
in the ReadOnly phase what the FIFO will see at the next rising edge; a scoreboard checks
order and data, and a model of the occupancy checks count, in_ready (low exactly when
the 2**DEPTH_LOG2 storage entries are full, so the capacity is one more with the output
register) and out_valid (the head appears the cycle after the storage got something
while the output register was empty, and a pop is refilled in the same clock, so one
pop per clock is sustained).
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from pmq_runner import run_bench

TIMEOUT_US = 2000  # simulated; a hung handshake fails instead of hanging


class FifoTB:
    def __init__(self, dut):
        self.dut = dut
        self.width = int(dut.WIDTH.value)
        self.depth = 1 << int(dut.DEPTH_LOG2.value)
        self.capacity = self.depth + 1
        dut.in_valid.value = 0
        dut.in_data.value = 0
        dut.out_ready.value = 0
        dut.rst.value = 1
        Clock(dut.clk, 10, unit="ns").start()
        self.pushed: deque[int] = deque()   # in the FIFO, oldest first (model)
        self.n_in = 0
        self.n_out = 0
        self.head_since = None  # (value) of a head waiting to be popped

    async def reset(self) -> None:
        self.dut.rst.value = 1
        self.dut.in_valid.value = 0
        self.dut.out_ready.value = 0
        await ClockCycles(self.dut.clk, 3)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.pushed.clear()
        self.prev = None

    async def step(self, in_valid: bool, out_ready: bool, data: int | None = None) -> dict:
        """One clock: drive, sample before the edge, check, update the model."""
        dut = self.dut
        await FallingEdge(dut.clk)
        if data is None:
            data = random.getrandbits(self.width)
        dut.in_valid.value = int(in_valid)
        dut.in_data.value = data
        dut.out_ready.value = int(out_ready)
        await ReadOnly()
        s = dict(
            in_ready=int(dut.in_ready.value),
            out_valid=int(dut.out_valid.value),
            out_data=int(dut.out_data.value) if int(dut.out_valid.value) else None,
            count=int(dut.count.value),
        )
        n = len(self.pushed)
        assert s["count"] == n, f"count {s['count']}, model holds {n}"
        stored = n - s["out_valid"]
        assert 0 <= stored <= self.depth, f"{stored} entries in a storage of {self.depth}"
        assert s["in_ready"] == (stored < self.depth), (
            f"in_ready {s['in_ready']} with {stored} of {self.depth} storage entries used"
        )
        if s["out_valid"]:
            assert s["out_data"] == self.pushed[0], (
                f"head {s['out_data']:#x}, expected {self.pushed[0]:#x} (entry {self.n_out})"
            )
        prev = self.prev
        if prev is not None:
            # the head appears one clock after the storage has something; a pop is
            # replaced at once while the storage has more
            if prev["count"] - prev["out_valid"] > 0 and (not prev["out_valid"] or prev["pop"]):
                assert s["out_valid"], "output register not refilled from the storage"
            if prev["out_valid"] and not prev["pop"]:
                assert s["out_valid"] and s["out_data"] == prev["out_data"], "head changed without a pop"
        push = in_valid and s["in_ready"]
        pop = s["out_valid"] and out_ready
        if pop:
            self.pushed.popleft()
            self.n_out += 1
        if push:
            self.pushed.append(data)
            self.n_in += 1
        s["pop"] = pop
        self.prev = s
        return s


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_fill_and_drain(dut):
    """Fills to DEPTH+1 (storage + output register), refuses more, drains in order."""
    tb = FifoTB(dut)
    await tb.reset()
    s = await tb.step(False, False)
    assert s["count"] == 0 and not s["out_valid"] and s["in_ready"]

    # one push per clock until in_ready falls: exactly the capacity goes in
    accepted = 0
    for _ in range(tb.capacity + 5):
        s = await tb.step(True, False)
        accepted += s["in_ready"]
    assert accepted == tb.capacity, f"accepted {accepted}, capacity is {tb.capacity}"
    s = await tb.step(True, False)
    assert not s["in_ready"] and s["count"] == tb.capacity

    # drain at one per clock: in order, no bubble
    popped = 0
    while tb.pushed:
        s = await tb.step(False, True)
        assert s["out_valid"], f"bubble after {popped} pops"
        popped += 1
    assert popped == tb.capacity
    s = await tb.step(False, True)
    assert not s["out_valid"] and s["count"] == 0


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_first_word_latency_and_throughput(dut):
    """A push into an empty FIFO is the head two clocks later; push+pop every clock streams."""
    tb = FifoTB(dut)
    await tb.reset()
    await tb.step(True, True, data=0x5 & ((1 << tb.width) - 1))
    s = await tb.step(False, True)
    assert not s["out_valid"], "head visible one clock after the push (storage, then register)"
    s = await tb.step(False, True)
    assert s["out_valid"], "head not visible two clocks after the push"
    await tb.step(False, False)

    # a stream: one in, one out per clock, for many clocks; the level stays constant
    # (the output register plus DEPTH - 1 stored: a full storage refuses pushes even
    # in a clock with a pop)
    for _ in range(tb.depth):
        await tb.step(True, False)
    level = len(tb.pushed)
    for k in range(4 * tb.capacity):
        s = await tb.step(True, True)
        assert s["out_valid"] and s["in_ready"], f"stream stalled at {k}"
        assert s["count"] == level
    while tb.pushed:
        await tb.step(False, True)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(p_in=[0.2, 0.5, 0.9], p_out=[0.2, 0.5, 0.9])
async def test_random_traffic(dut, p_in, p_out):
    """Random in_valid and out_ready: the model's checks every clock, nothing lost."""
    tb = FifoTB(dut)
    await tb.reset()
    for _ in range(600):
        await tb.step(random.random() < p_in, random.random() < p_out)
    while tb.pushed:
        await tb.step(False, random.random() < 0.7)
    assert tb.n_in == tb.n_out
    tb.dut._log.info("p_in=%.1f p_out=%.1f: %d through", p_in, p_out, tb.n_in)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_reset_empties(dut):
    """A reset in the middle of traffic empties the FIFO: count 0, out_valid 0, in_ready 1."""
    tb = FifoTB(dut)
    await tb.reset()
    for _ in range(tb.capacity + 2):
        await tb.step(True, False)
    await RisingEdge(dut.clk)
    await tb.reset()
    s = await tb.step(False, False)
    assert (s["count"], s["out_valid"], s["in_ready"]) == (0, 0, 1)
    for v in range(3):
        await tb.step(True, False, data=v)
    for _ in range(5):
        await tb.step(False, True)
    assert tb.n_out >= 3 and not tb.pushed


PARAM_SETS = {
    "d1": {"WIDTH": 8, "DEPTH_LOG2": 1},
    "d2": {"WIDTH": 8, "DEPTH_LOG2": 2},
    "d4w58": {"WIDTH": 58, "DEPTH_LOG2": 4},
}


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_pmq_fifo_runner(name: str) -> None:
    run_bench("pmq_fifo", "test_pmq_fifo", name, PARAM_SETS[name])
