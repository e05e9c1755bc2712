"""cocotb bench of pynq_mqtt_io, the interrupt: coalescing by IRQ_THRESHOLD and by
IRQ_TIMEOUT_US (from the head's own timestamp), IRQ_STATUS (EVENT a level, OVERFLOW and
GEN_DONE sticky, W1C; a cause in the same clock as its clear stays set), IRQ_ENABLE.

How every top bench runs (stress passes, parameter sets, one shared build): pmq_top_tb.py.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge

from pmq_top_tb import (
    ADDR, EVENT, FEATURE_TIMEOUT_US, GEN_DONE, OVERFLOW, PARAM_SETS, STRESS, TB, EventModel,
    RawAxi, bit, fill_with_generator, run_top, us_cycles,
)


class IrqWatch:
    """Samples irq at every rising edge: the cycles at which it changed."""

    def __init__(self, tb: TB):
        self.tb = tb
        self.changes: list[tuple[int, int]] = []
        self.last = tb.irq
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.tb.clk)
            v = self.tb.irq
            if v != self.last:
                self.changes.append((self.tb.cycle(), v))
                self.last = v

    def rises_after(self, cycle: int) -> list[int]:
        return [c for c, v in self.changes if v and c > cycle]

    def stop(self) -> None:
        self._task.cancel()


class StrobeProbe:
    """Records the register write strobes (an internal wire of the top: a timing
    reference for the cycle-exact tests) and irq, as sampled at every rising edge."""

    def __init__(self, tb: TB):
        self.tb, self.dut = tb, tb.dut
        self.strobes: list[tuple[int, int]] = []  # (edge, word address)
        self.irq: list[tuple[int, int]] = []
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.tb.clk)
            c = self.tb.cycle()
            if int(self.dut.reg_wr_en.value):
                self.strobes.append((c, int(self.dut.reg_wr_addr.value) & ~3))
            self.irq.append((c, self.tb.irq))

    def strobe_of(self, reg: str) -> list[int]:
        return [c for c, a in self.strobes if a == ADDR[reg]]

    def first_irq_high(self, after: int) -> int | None:
        return next((c for c, v in self.irq if c > after and v), None)

    def stop(self) -> None:
        self._task.cancel()



# =====================================================================================
# interrupt
# =====================================================================================


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_irq_coalescing(dut, stress):
    """Defaults: one irq per event. IRQ_THRESHOLD: irq when that many wait. IRQ_TIMEOUT_US:
    irq when the head is that old, by the head's own timestamp. 0 timeout: at once."""
    tb = TB(dut, stress)
    await tb.reset()
    assert await tb.read("IRQ_THRESHOLD") == 1 and await tb.read("IRQ_TIMEOUT_US") == 0
    await tb.write("IRQ_ENABLE", EVENT)
    model = EventModel(tb)

    async def status_and_irq():
        await ClockCycles(tb.clk, 2)
        return await tb.read("IRQ_STATUS"), tb.irq

    # defaults: EVENT while anything waits, irq with it; drained: both low
    for _ in range(min(3, tb.capacity)):
        await model.toggle(random.randrange(tb.n_inputs))
        st, irq = await status_and_irq()
        assert st == EVENT and irq == 1, f"defaults, {len(model.queue)} waiting: {st:#x} irq {irq}"
    await model.pop_all()
    st, irq = await status_and_irq()
    assert st == 0 and irq == 0, "drained: EVENT and irq low"
    # one interrupt per event: each event raises irq, its pop drops it
    watch = IrqWatch(tb)
    c0 = tb.cycle()
    for _ in range(4):
        await model.toggle(random.randrange(tb.n_inputs))
        model.check(await tb.pop())
        await ClockCycles(tb.clk, 3)
        assert tb.irq == 0
    watch.stop()
    assert len(watch.rises_after(c0)) == 4, f"irq changes {watch.changes}: not one rise per event"

    # by count: nothing below the threshold, irq at it, low again one below
    n = min(4, tb.capacity)
    await tb.write("IRQ_THRESHOLD", n)
    await tb.write("IRQ_TIMEOUT_US", 0xFFFFFFFF)
    for k in range(n):
        await model.toggle(random.randrange(tb.n_inputs))
        st, irq = await status_and_irq()
        due = int(k + 1 >= n)
        assert (st, irq) == (EVENT * due, due), f"threshold {n}, {k + 1} waiting: {st:#x} irq {irq}"
    model.check(await tb.pop())
    st, irq = await status_and_irq()
    assert (st, irq) == (0, 0), f"threshold {n}, {n - 1} waiting after a pop"
    await model.pop_all()

    # IRQ_ENABLE masks the line, not the status
    while len(model.queue) < n:
        await model.toggle(random.randrange(tb.n_inputs))
    await tb.write("IRQ_ENABLE", 0)
    st, irq = await status_and_irq()
    assert st == EVENT and irq == 0, "IRQ_ENABLE = 0: status EVENT, irq low"
    await tb.write("IRQ_ENABLE", EVENT)
    st, irq = await status_and_irq()
    assert irq == 1
    await model.pop_all()

    # by age only (threshold 0: never by count): irq when the head is T us old
    timeout = us_cycles(tb, 200, 4)
    await tb.write("IRQ_THRESHOLD", 0)
    await tb.write("IRQ_TIMEOUT_US", timeout)
    watch = IrqWatch(tb)
    i = random.randrange(tb.n_inputs)
    c_a = await tb.drive_btn(model.pins ^ (1 << i))
    model.pins ^= 1 << i
    half = timeout * tb.ticks // 2
    await ClockCycles(tb.clk, half)
    c_b = await tb.drive_btn(model.pins ^ (1 << i))
    model.pins ^= 1 << i
    assert await tb.read("IRQ_STATUS") == 0, "nothing is old enough yet"
    while not watch.rises_after(c_a):
        await RisingEdge(tb.clk)
        assert tb.cycle() - c_a < (timeout + 3) * tb.ticks + 20, "irq by age never came"
    rise_a = watch.rises_after(c_a)[0]
    lo, hi = (timeout - 1) * tb.ticks, (timeout + 1) * tb.ticks + 10
    assert lo <= rise_a - c_a <= hi, (
        f"irq {rise_a - c_a} clocks after the event; timeout {timeout} us = "
        f"{timeout * tb.ticks} clocks"
    )
    # pop the head: the next one is younger, so EVENT falls, and rises when *it* is T old
    first = await tb.pop()
    assert first.valid and first.input == i
    c_pop = tb.cycle()
    st, irq = await status_and_irq()
    assert (st, irq) == (0, 0), "after popping the old head, the younger one is not due"
    while not watch.rises_after(c_pop):
        await RisingEdge(tb.clk)
        assert tb.cycle() - c_b < (timeout + 3) * tb.ticks + 20, "irq for the second never came"
    rise_b = watch.rises_after(c_pop)[0]
    assert lo <= rise_b - c_b <= hi, (
        f"second irq {rise_b - c_b} clocks after its event (timeout {timeout * tb.ticks} "
        f"clocks): measured from the head's own timestamp, not from the pop"
    )
    watch.stop()
    second = await tb.pop()
    assert second.valid and second.seq == (first.seq + 1) & 0xFFFF
    assert (await tb.pop()).raw == 0
    model.seq = second.seq + 1

    # timeout 0 is due at once, whatever the threshold
    await tb.write("IRQ_THRESHOLD", n)
    await tb.write("IRQ_TIMEOUT_US", 0)
    await model.toggle(0)
    st, irq = await status_and_irq()
    assert st == EVENT and irq == 1, "IRQ_TIMEOUT_US = 0: one event is due at once"
    await model.pop_all()
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_irq_status_sticky_w1c(dut, stress):
    """OVERFLOW and GEN_DONE are sticky until written with 1, each on its own; writing 0,
    other bytes or EVENT clears nothing; irq is the OR of status and IRQ_ENABLE."""
    tb = TB(dut, stress)
    await tb.reset()
    x = random.randint(1, 4)
    await fill_with_generator(tb, tb.capacity + x)
    assert await tb.read("DROPPED") == x
    st = await tb.read("IRQ_STATUS")
    assert st == EVENT | OVERFLOW | GEN_DONE, f"after an overflowing run: {st:#x}"

    for enable in (0, EVENT, OVERFLOW, GEN_DONE, OVERFLOW | GEN_DONE):
        await tb.write("IRQ_ENABLE", enable)
        await ClockCycles(tb.clk, 2)
        assert tb.irq == int(bool(enable)), f"IRQ_ENABLE {enable:#x}: irq {tb.irq}"

    await tb.write("IRQ_STATUS", 0)
    await tb.write("IRQ_STATUS", EVENT)
    await tb.write_bytes(ADDR["IRQ_STATUS"] + 1, b"\xff")
    await tb.write_bytes(ADDR["IRQ_STATUS"] + 3, b"\xff")
    assert await tb.read("IRQ_STATUS") == EVENT | OVERFLOW | GEN_DONE, "nothing cleared"

    await tb.write("IRQ_ENABLE", OVERFLOW)
    await tb.write("IRQ_STATUS", OVERFLOW)
    assert await tb.read("IRQ_STATUS") == EVENT | GEN_DONE
    await ClockCycles(tb.clk, 2)
    assert tb.irq == 0, "OVERFLOW cleared: irq low with only OVERFLOW enabled"
    await tb.write("IRQ_ENABLE", GEN_DONE)
    await ClockCycles(tb.clk, 2)
    assert tb.irq == 1
    await tb.write_bytes(ADDR["IRQ_STATUS"], bytes([GEN_DONE | 0xF8]))
    assert await tb.read("IRQ_STATUS") == EVENT
    await ClockCycles(tb.clk, 2)
    assert tb.irq == 0

    # a new loss sets OVERFLOW again; draining drops EVENT, not the sticky bits
    await fill_with_generator(tb, 1)
    assert await tb.read("IRQ_STATUS") == EVENT | OVERFLOW | GEN_DONE
    got = await tb.drain(limit=tb.capacity)
    assert len(got) == tb.capacity and all(ev.synthetic for ev in got)
    assert await tb.read("IRQ_STATUS") == OVERFLOW | GEN_DONE
    await tb.write("IRQ_STATUS", 0xFFFFFFFF)
    assert await tb.read("IRQ_STATUS") == 0
    assert await tb.read("DROPPED") == x + 1


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_irq_clear_in_the_cause_cycle(dut, stress):
    """Raw, cycle-exact: a W1C of OVERFLOW / GEN_DONE in the same clock as a new cause
    leaves the bit set; one clock later it clears it; one clock earlier the cause sets it
    again.

    The cause is the second event of a two-event run, PERIOD clocks after the first: the
    slave writes from its AW/W buffers, so two write strobes are at least two clocks
    apart, and a cause one clock after the start could not be preceded by a clear."""
    tb = TB(dut, stress, master=False)
    raw = RawAxi(tb)
    await tb.reset()
    probe = StrobeProbe(tb)
    en = bit("GEN_CTRL", "ENABLE")
    run_period = 3  # clocks between the run's two events

    async def write(reg, value):
        await raw.write1(ADDR[reg], value)

    async def read(reg):
        return await raw.read1(ADDR[reg])

    async def run(cause_bit: int, clear_at: int | None) -> tuple[int, int, int | None]:
        """Starts a one-event generator run (the cause) and, clear_at clocks after its
        start, writes cause_bit to IRQ_STATUS. Returns (IRQ_STATUS after, the start
        edge, the clear edge)."""
        await write("IRQ_STATUS", OVERFLOW | GEN_DONE)
        await write("IRQ_ENABLE", cause_bit)
        assert await read("IRQ_STATUS") & (OVERFLOW | GEN_DONE) == 0
        writes = [(ADDR["GEN_CTRL"], en, 0xF)]
        aw_delay, w_delay = [0], [0]
        if clear_at is not None:
            writes.append((ADDR["IRQ_STATUS"], cause_bit, 0xF))
            # the later of AW and W makes the strobe; in the stress pass one of them
            # comes early and waits in the slave
            early = random.randint(0, clear_at - 1) if stress else 0
            late = clear_at - 1
            if random.random() < 0.5:
                aw_delay.append(late - early)
                w_delay.append(late)
            else:
                aw_delay.append(late)
                w_delay.append(late - early)
        if cause_bit == OVERFLOW:
            # one free entry: the run's first event fills the FIFO, its second is lost
            await read("EVT_POP")
        else:
            # room for both events (the smallest FIFO holds five)
            while await read("FIFO_LEVEL"):
                await read("EVT_POP")
        n0 = len(probe.strobes)
        await raw.writes(writes, aw_delay, w_delay, lambda c: True)
        await ClockCycles(tb.clk, 12)
        status = await read("IRQ_STATUS")
        new = probe.strobes[n0:]
        start = next(c for c, a in new if a == ADDR["GEN_CTRL"])
        clear = next((c for c, a in new if a == ADDR["IRQ_STATUS"]), None)
        return status, start, clear

    await write("GEN_PERIOD", 0)
    await write("GEN_PATTERN", 1)
    for name, cause_bit in (("GEN_DONE", GEN_DONE), ("OVERFLOW", OVERFLOW)):
        if cause_bit == OVERFLOW:
            # a full FIFO (without a loss yet): the next generated event is lost
            await write("GEN_PERIOD", 0)
            await write("GEN_COUNT", tb.capacity - await read("FIFO_LEVEL"))
            await write("GEN_CTRL", en)
            await ClockCycles(tb.clk, tb.capacity + 20)
            assert await read("FIFO_LEVEL") == tb.capacity
            assert await read("DROPPED") == 0
        await write("GEN_COUNT", 2)
        await write("GEN_PERIOD", run_period)
        # calibrate: the edge at which the cause sets the bit, seen through irq
        status, start, _ = await run(cause_bit, None)
        assert status & cause_bit, f"{name} not set by its cause"
        rise = probe.first_irq_high(start)
        assert rise is not None, f"no irq for {name}"
        cause = rise - 2 - start  # irq is registered from the status bit
        assert cause > run_period
        results = {}
        overflow_runs = 1
        for d in (cause - 1, cause, cause + 1):
            if d < 1:
                continue
            status, start, clear = await run(cause_bit, d)
            overflow_runs += 1
            assert clear - start == d, f"the clear landed {clear - start} clocks after the start, not {d}"
            results[d] = bool(status & cause_bit)
        tb.log.info("%s: cause %d clocks after the start; set after a clear at %s", name, cause, results)
        assert results[cause], f"{name}: a clear in the clock of its cause must leave it set"
        assert not results[cause + 1], f"{name}: a clear one clock after the cause must clear it"
        if cause - 1 in results:
            assert results[cause - 1], f"{name}: a cause one clock after the clear sets it again"
    probe.stop()
    assert await read("DROPPED") == overflow_runs, "one loss per OVERFLOW run"
    assert await read("FIFO_LEVEL") == tb.capacity


# =====================================================================================
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_top_irq_runner(name: str) -> None:
    run_top("test_top_irq", name)
