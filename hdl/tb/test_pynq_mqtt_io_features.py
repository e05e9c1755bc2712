"""cocotb bench for the v0.2 features of pynq_mqtt_io, at the top level:

  debounce             DEBOUNCE_US: a bouncing contact is one press and one release, the
                       press stamped at first contact; 0 turns it off
  edge select, enable  EDGE_RISE, EDGE_FALL, INPUT_ENABLE
  coalescing irq       IRQ_THRESHOLD, IRQ_TIMEOUT_US (from the head's own timestamp),
                       IRQ_STATUS (EVENT a level, OVERFLOW and GEN_DONE sticky, W1C; a cause
                       in the same clock as its clear stays set), IRQ_ENABLE
  DROPPED              a write subtracts what it writes (floor 0), losses saturate
  LEDs                 LED_SET, LED_CLR, LED_TOGGLE; PWM duty cycle on the led pins
  event generator      GEN_CTRL, GEN_COUNT, GEN_PERIOD, GEN_PATTERN, GEN_SENT, SYNTHETIC;
                       faster than the drain: delivered + DROPPED = generated exactly, and
                       the sequence gaps are DROPPED

Every test runs with stress=False and stress=True (random idle cycles on AW, W, AR and
random backpressure on B, R; the raw tests randomize their own channel timing), on every
parameter set of pmq_top_tb.PARAM_SETS; the AXI4-Lite monitor checks every clock.
"""

from __future__ import annotations

import math
import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from pmq_runner import run_bench
from pmq_top_tb import (
    ADDR,
    PARAM_SETS,
    PWM_PERIOD,
    STRESS,
    TB,
    Event,
    EventModel,
    RawAxi,
    apply_strb,
    bit,
    field,
)

TIMEOUT_US = 3000  # simulated

EVENT = bit("IRQ_STATUS", "EVENT")
OVERFLOW = bit("IRQ_STATUS", "OVERFLOW")
GEN_DONE = bit("IRQ_STATUS", "GEN_DONE")


def us_cycles(tb: TB, min_cycles: int, at_least_us: int = 3) -> int:
    """A time in microseconds that lasts at least min_cycles clocks in this build."""
    return max(at_least_us, math.ceil(min_cycles / tb.ticks))


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
# debounce, edge select, enable
# =====================================================================================


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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_edge_select_and_enable(dut, stress):
    """Only enabled inputs and selected directions become events, and only they take
    sequence numbers; INPUTS shows every level regardless."""
    tb = TB(dut, stress)
    await tb.reset()
    full = tb.in_mask
    for reg in ("INPUT_ENABLE", "EDGE_RISE", "EDGE_FALL"):
        assert await tb.read(reg) == full, f"{reg} resets to every input"
        await tb.write(reg, 0xFFFFFFFF)
        assert await tb.read(reg) == full, f"{reg}: only the implemented inputs"
    model = EventModel(tb)
    cases = [(full, full, 0), (full, 0, full), (0, full, full)]
    cases += [tuple(random.getrandbits(tb.n_inputs) for _ in range(3)) for _ in range(3)]
    cases += [(full, full, full)]
    for enable, rise, fall in cases:
        await tb.write("INPUT_ENABLE", enable)
        await tb.write("EDGE_RISE", rise)
        await tb.write("EDGE_FALL", fall)
        model.enable, model.rise, model.fall = enable, rise, fall
        for _ in range(6):
            await model.set_pins(random.getrandbits(tb.n_inputs))
            assert await tb.read("INPUTS") == model.pins
            assert await tb.read("FIFO_LEVEL") == len(model.queue)
            await model.pop_all()
    assert await tb.read("DROPPED") == 0


# =====================================================================================
# interrupt
# =====================================================================================


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


async def fill_with_generator(tb: TB, count: int, period: int = 0, pattern: int = 1) -> None:
    await tb.start_gen(count, period, pattern)
    await tb.wait_gen_done(count * max(1, period) + 2000)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_irq_clear_in_the_cause_cycle(dut, stress):
    """Raw, cycle-exact: a W1C of OVERFLOW / GEN_DONE in the same clock as a new cause
    leaves the bit set; one clock later it clears it; one clock earlier the cause sets it
    again."""
    tb = TB(dut, stress, master=False)
    raw = RawAxi(tb)
    await tb.reset()
    probe = StrobeProbe(tb)
    en = bit("GEN_CTRL", "ENABLE")

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
        n0 = len(probe.strobes)
        await raw.writes(writes, aw_delay, w_delay, lambda c: True)
        await ClockCycles(tb.clk, 12)
        status = await read("IRQ_STATUS")
        new = probe.strobes[n0:]
        start = next(c for c, a in new if a == ADDR["GEN_CTRL"])
        clear = next((c for c, a in new if a == ADDR["IRQ_STATUS"]), None)
        return status, start, clear

    await write("GEN_COUNT", 1)
    await write("GEN_PERIOD", 0)
    await write("GEN_PATTERN", 1)
    for name, cause_bit in (("GEN_DONE", GEN_DONE), ("OVERFLOW", OVERFLOW)):
        if cause_bit == OVERFLOW:
            # a full FIFO (without a loss yet): the next generated event is lost
            await write("GEN_COUNT", tb.capacity - await read("FIFO_LEVEL"))
            await write("GEN_CTRL", en)
            await ClockCycles(tb.clk, tb.capacity + 20)
            assert await read("FIFO_LEVEL") == tb.capacity
            assert await read("DROPPED") == 0
            await write("GEN_COUNT", 1)
        # calibrate: the edge at which the cause sets the bit, seen through irq
        status, start, _ = await run(cause_bit, None)
        assert status & cause_bit, f"{name} not set by its cause"
        rise = probe.first_irq_high(start)
        assert rise is not None, f"no irq for {name}"
        cause = rise - 2 - start  # irq is registered from the status bit
        assert cause >= 1
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
# DROPPED
# =====================================================================================


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_dropped_subtract_and_saturate(dut, stress):
    """A write subtracts the value written (strobed bytes only, floor 0); a write-back
    racing losses misses none; losses saturate at 0xFFFFFFFF."""
    tb = TB(dut, stress)
    await tb.reset()
    x = random.randint(5, 9)
    await fill_with_generator(tb, tb.capacity + x)
    assert await tb.read("DROPPED") == x
    await tb.write("DROPPED", 2)
    assert await tb.read("DROPPED") == x - 2
    await tb.write("DROPPED", x)
    assert await tb.read("DROPPED") == 0, "floor 0"

    async def deposit(value: int) -> None:
        await FallingEdge(tb.clk)
        dut.regs.dropped_reg.value = value  # white box: 2^32 losses take too long
        await RisingEdge(tb.clk)

    await deposit(0x00123456)
    assert await tb.read("DROPPED") == 0x00123456
    await tb.write_bytes(ADDR["DROPPED"] + 1, b"\x02")
    assert await tb.read("DROPPED") == 0x00123256, "only the strobed byte is subtracted"
    await tb.write_bytes(ADDR["DROPPED"] + 2, b"\x02\xff")
    assert await tb.read("DROPPED") == 0, "0xFF020000 > value: floor 0"

    # saturation: losses never wrap
    await deposit(0xFFFFFFFC)
    await fill_with_generator(tb, 7)
    assert await tb.read("DROPPED") == 0xFFFFFFFF
    await tb.write("DROPPED", 1)
    assert await tb.read("DROPPED") == 0xFFFFFFFE
    await tb.write("DROPPED", 0xFFFFFFFF)
    assert await tb.read("DROPPED") == 0

    # write back what was read while losses keep coming: nothing is missed
    period = random.randint(3, 12)
    await tb.start_gen(0, period, 1)
    subtracted = 0
    for _ in range(6):
        await ClockCycles(tb.clk, random.randint(5, 60))
        v = await tb.read("DROPPED")
        await tb.write("DROPPED", v)
        subtracted += v
    await tb.write("GEN_CTRL", 0)
    sent = await tb.read("GEN_SENT")
    left = await tb.read("DROPPED")
    assert sent > 6
    assert subtracted + left == sent, (
        f"{sent} generated into a full FIFO, {subtracted} subtracted + {left} left"
    )
    assert await tb.read("FIFO_LEVEL") == tb.capacity


# =====================================================================================
# LEDs
# =====================================================================================


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_wstrb_raw(dut, stress):
    """Raw writes with garbage in the unstrobed bytes: LED, LED_SET/CLR/TOGGLE, DROPPED
    and IRQ_STATUS act on the strobed bytes only."""
    tb = TB(dut, stress, master=False)
    raw = RawAxi(tb)
    await tb.reset()

    led = 0
    for _ in range(20):
        op = random.choice(["LED", "LED_SET", "LED_CLR", "LED_TOGGLE"])
        data, strb = random.getrandbits(32), random.choice([1, 2, 4, 8, 3, 12, random.getrandbits(4)])
        await raw.write1(ADDR[op], data, strb)
        v = apply_strb(0, data, strb, tb.led_mask)
        if op == "LED":
            led = apply_strb(led, data, strb, tb.led_mask)
        else:
            led = {"LED_SET": led | v, "LED_CLR": led & ~v, "LED_TOGGLE": led ^ v}[op]
        assert await raw.read1(ADDR["LED"]) == led, f"{op} data {data:#010x} strobes {strb:#x}"

    # DROPPED: only the strobed bytes are subtracted; IRQ_STATUS: only strobed bits clear
    en = bit("GEN_CTRL", "ENABLE")
    await raw.write1(ADDR["GEN_COUNT"], tb.capacity + 0x30)
    await raw.write1(ADDR["GEN_CTRL"], en)
    await ClockCycles(tb.clk, tb.capacity + 0x30 + 20)
    assert await raw.read1(ADDR["DROPPED"]) == 0x30
    await raw.write1(ADDR["DROPPED"], 0xA5A5A511, 0b0001)
    assert await raw.read1(ADDR["DROPPED"]) == 0x30 - 0x11
    await raw.write1(ADDR["DROPPED"], 0x000000FF, 0b1110)
    assert await raw.read1(ADDR["DROPPED"]) == 0x30 - 0x11, "unstrobed byte 0 subtracted"
    await raw.write1(ADDR["DROPPED"], 0x5A5A5A1F, 0b0001)
    assert await raw.read1(ADDR["DROPPED"]) == 0
    sticky = OVERFLOW | GEN_DONE
    assert await raw.read1(ADDR["IRQ_STATUS"]) == EVENT | sticky
    await raw.write1(ADDR["IRQ_STATUS"], 0xFFFFFFFF, 0b1110)
    assert await raw.read1(ADDR["IRQ_STATUS"]) == EVENT | sticky, "unstrobed byte 0 cleared"
    await raw.write1(ADDR["IRQ_STATUS"], 0xFFFFFF00 | OVERFLOW, 0b0001)
    assert await raw.read1(ADDR["IRQ_STATUS"]) == EVENT | GEN_DONE


# =====================================================================================
# event generator
# =====================================================================================


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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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
# pytest entry
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_pynq_mqtt_io_features_runner(name: str) -> None:
    run_bench("pynq_mqtt_io", "test_pynq_mqtt_io_features", f"features-{name}", PARAM_SETS[name])
