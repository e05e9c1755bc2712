"""cocotb bench for pmq_debounce, the per-input lockout debouncer.

The bench drives tick_us (one clock in every TICK: a microsecond of TICK clocks) and
the inputs at the falling edge, samples in the ReadOnly phase, and checks the documented
behaviour on every clock, for every input on its own:
  - DEBOUNCE 0 (lock_us = 0): every change passes exactly one clock later;
  - otherwise an input's first change passes one clock later (the event carries the time
    of first contact), then the output holds for at least lock_us microseconds
    (lock_us * TICK clocks) and at most lock_us + 1 microseconds: a level that differs
    at the end passes as the next change;
  - the output only ever takes a value the input had (no invented edges);
  - a contact that bounces for less than lock_us gives exactly one change per press and
    one per release.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from pmq_runner import run_bench

TIMEOUT_US = 2000  # simulated; a hung handshake fails instead of hanging


class DebounceTB:
    def __init__(self, dut, tick: int):
        self.dut = dut
        self.width = int(dut.WIDTH.value)
        self.tick = tick
        self.phase = random.randrange(tick)
        self.edge = 0          # rising edges since the bench started
        self.lock = 0          # lock_us as driven from the next clock on
        self.inputs = 0
        self.changes = [[] for _ in range(self.width)]  # edges at which out[i] changed
        self.last_change = [None] * self.width  # (edge, lock at that time)
        self.prev = None
        dut.rst.value = 1
        dut.tick_us.value = 0
        dut.lock_us.value = 0
        getattr(dut, "in").value = 0
        Clock(dut.clk, 10, unit="ns").start()

    @property
    def pin(self):
        return getattr(self.dut, "in")

    async def reset(self, inputs: int = 0) -> None:
        self.dut.rst.value = 1
        self.pin.value = inputs
        self.inputs = inputs
        for _ in range(3):
            await self.step(inputs, check=False)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.prev = None
        self.last_change = [None] * self.width

    def set_lock(self, lock: int) -> None:
        """lock_us from the next step on."""
        self.lock = lock

    async def step(self, inputs: int | None = None, check: bool = True) -> int:
        """One clock with these inputs; returns the output sampled before the edge."""
        dut = self.dut
        await FallingEdge(dut.clk)
        if inputs is not None:
            self.inputs = inputs
        self.pin.value = self.inputs
        dut.lock_us.value = self.lock
        tick = int(self.tick == 1 or (self.edge + self.phase) % self.tick == 0)
        dut.tick_us.value = tick
        await ReadOnly()
        out = int(dut.out.value)
        if check and self.prev is not None:
            self._check(out)
        self.prev = dict(inputs=self.inputs, out=out, tick=tick, lock=self.lock)
        self.edge += 1
        return out

    def _check(self, out: int) -> None:
        prev, k = self.prev, self.edge  # prev: sampled before edge k - 1
        for i in range(self.width):
            was, now, inp = (prev["out"] >> i) & 1, (out >> i) & 1, (prev["inputs"] >> i) & 1
            last = self.last_change[i]
            since = None if last is None else (k - 1) - last[0]  # clocks since the change
            lock = prev["lock"] if last is None else last[1]
            if now != was:
                assert now == inp, f"input {i}: output took {now}, input was {inp}"
                if last is not None and lock:
                    assert since >= lock * self.tick, (
                        f"input {i}: changed again {since} clocks after the last change; "
                        f"lock {lock} us = {lock * self.tick} clocks"
                    )
                self.last_change[i] = (k - 1, prev["lock"])
                self.changes[i].append(k - 1)
            elif inp != was:
                # a differing level must pass once the lockout (at most lock + 1 us) is over
                expired = last is None or lock == 0 or since >= (lock + 1) * self.tick + 1
                assert not expired, (
                    f"input {i}: level {inp} not passed, {since} clocks after the last "
                    f"change (lock {lock} us = {lock * self.tick} clocks)"
                )


TICKS = [1, 4]


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(tick=TICKS)
async def test_off_passes_every_change(dut, tick):
    """lock_us = 0: the output is the input one clock later, whatever it does."""
    tb = DebounceTB(dut, tick)
    await tb.reset()
    tb.set_lock(0)
    outs, ins = [], []
    for _ in range(200):
        v = random.getrandbits(tb.width)
        outs.append(await tb.step(v))
        ins.append(v)
    outs.append(await tb.step())
    assert outs[1:] == ins, "the output must be the input one clock later"


async def bounce(tb: DebounceTB, i: int, level: int, lock: int) -> int:
    """Input i goes to level, bounces until just under lock us after the first contact
    (its last clocks at the old level), then stays; returns the edge of first contact."""
    mask = 1 << i
    first = tb.edge
    span = lock * tb.tick - 1  # clocks of bouncing: the contact settles within lock us
    pattern: list[int] = []
    cur = level
    while len(pattern) < span:
        pattern += [cur] * random.randint(1, max(1, span // 4))
        cur ^= 1
    pattern = pattern[:span]
    if span >= 2:
        pattern[-1] = 1 - level  # the last bounce right before the lock can end
    for cur in pattern:
        await tb.step((tb.inputs & ~mask) | (mask if cur else 0))
    v = (tb.inputs & ~mask) | (mask if level else 0)
    for _ in range((lock + 2) * tb.tick + 3):
        await tb.step(v)
    return first


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(tick=TICKS, lock=[1, 2, 7])
async def test_bouncing_contact(dut, tick, lock):
    """A contact bouncing for less than the lock: one change per press, one per release,
    the press passed one clock after the first contact."""
    tb = DebounceTB(dut, tick)
    await tb.reset()
    tb.set_lock(lock)
    await tb.step()
    for rep in range(3):
        for i in random.sample(range(tb.width), tb.width):
            n0 = len(tb.changes[i])
            first = await bounce(tb, i, 1, lock)
            assert tb.changes[i][n0:] == [first], (
                f"press {rep} of input {i}: changes at {tb.changes[i][n0:]}, "
                f"first contact at edge {first}"
            )
            first = await bounce(tb, i, 0, lock)
            assert tb.changes[i][n0 + 1:] == [first], (
                f"release {rep} of input {i}: changes at {tb.changes[i][n0 + 1:]}, "
                f"first contact at edge {first}"
            )


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(tick=TICKS)
async def test_short_pulse_passes_at_lockout_end(dut, tick):
    """A press released within the lockout: the release passes when the lockout ends."""
    tb = DebounceTB(dut, tick)
    await tb.reset()
    lock = 3
    tb.set_lock(lock)
    await tb.step()
    start = tb.edge
    await tb.step(1)
    await tb.step(0)  # a one-clock pulse
    for _ in range((lock + 2) * tick + 4):
        await tb.step(0)
    changes = tb.changes[0]
    assert len(changes) == 2, f"changes at {changes}, pulse at {start}"
    assert changes[0] == start, "the press passes one clock after it"
    held = changes[1] - changes[0]
    assert lock * tick <= held <= (lock + 1) * tick + 1, (
        f"release passed {held} clocks after the press; lock {lock} us of {tick} clocks"
    )


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(tick=TICKS)
async def test_random_inputs_and_lock_changes(dut, tick):
    """Random activity on every input, lock_us changed now and then: the rules every clock."""
    tb = DebounceTB(dut, tick)
    await tb.reset(random.getrandbits(tb.width))
    inputs = tb.inputs
    for _ in range(6):
        tb.set_lock(random.choice([0, 1, 2, 5]))
        for _ in range(300):
            if random.random() < 0.15:
                inputs ^= 1 << random.randrange(tb.width)
            await tb.step(inputs)
    assert sum(len(c) for c in tb.changes) > 10


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_reset_takes_the_input_level(dut):
    """After reset the output is the input level: an input held high gives no change."""
    tb = DebounceTB(dut, 1)
    ones = (1 << tb.width) - 1
    await tb.reset(ones)
    tb.set_lock(2)
    for _ in range(5):
        assert await tb.step(ones) == ones
    assert all(not c for c in tb.changes)


PARAM_SETS = {
    "w2": {"WIDTH": 2, "TIME_WIDTH": 16},
    "w5t4": {"WIDTH": 5, "TIME_WIDTH": 4},
}


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_pmq_debounce_runner(name: str) -> None:
    run_bench("pmq_debounce", "test_pmq_debounce", name, PARAM_SETS[name])
