"""cocotb bench of pynq_mqtt_io, events and FIFO: edges become events (input, level,
sequence number, timestamp), FIFO_LEVEL, simultaneous edges lowest input first, bursts
faster than one event per clock, FIFO overflow, edge select (EDGE_RISE, EDGE_FALL) and
INPUT_ENABLE, DROPPED (a write subtracts what it writes, floor 0; losses saturate).

How every top bench runs (stress passes, parameter sets, one shared build): pmq_top_tb.py.
"""

from __future__ import annotations

import random
from fractions import Fraction

import cocotb
import pytest
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from pmq_top_tb import (
    ADDR, CORE_TIMEOUT_US, FEATURE_TIMEOUT_US, PARAM_SETS, STRESS, TB, Event, EventModel,
    fill_with_generator, run_top,
)


# =====================================================================================
# events
# =====================================================================================


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_events_and_irq(dut, stress):
    """Edges become events (input, level, seq, timestamp); FIFO_LEVEL; irq follows IRQ_ENABLE."""
    tb = TB(dut, stress)
    await tb.reset()
    model = EventModel(tb)

    assert (await tb.pop()).raw == 0, "EVT_POP with nothing detected"

    # a few single edges, at random spacing, with IRQ_ENABLE = 0
    read_start = tb.cycle()
    t_before = await tb.read("TIME")
    n = min(tb.capacity, 10)
    for _ in range(n):
        await model.toggle(random.randrange(tb.n_inputs), settle=False)
        await ClockCycles(tb.clk, random.randint(3, 3 * tb.ticks + 3))
        assert int(dut.irq.value) == 0, "irq with IRQ_ENABLE = 0"
    await tb.wait_events_settled(1)
    assert await tb.read("FIFO_LEVEL") == n
    assert int(dut.irq.value) == 0, "irq with IRQ_ENABLE = 0 and events waiting"
    t_after = await tb.read("TIME")

    await tb.write("IRQ_ENABLE", 1)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 1, "irq low with IRQ_ENABLE = 1 and events waiting"
    await tb.write("IRQ_ENABLE", 0)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0, "irq still high after IRQ_ENABLE = 0"
    await tb.write("IRQ_ENABLE", 1)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 1

    # the first event is stamped with TIME at its detection, 2-3 cycles after the pins
    # changed; t_before was sampled at most (toggle - read_start) cycles before that
    first_cycle = model.queue[0].cycle
    max_ts = t_before + (first_cycle + 4 - read_start) // tb.ticks + 1

    last_ts = None
    for k in range(n):
        got = await tb.pop()
        assert t_before <= got.ts <= t_after, (
            f"event {k} stamped {got.ts}, TIME was {t_before}..{t_after}"
        )
        if k == 0:
            assert got.ts <= max_ts, f"first event stamped {got.ts}, TIME was {t_before}"
        model.check(got)
        last_ts = got.ts
        level = await tb.read("FIFO_LEVEL")
        assert level == n - k - 1, f"FIFO_LEVEL {level} after {k + 1} of {n} pops"
        await ClockCycles(tb.clk, 2)
        assert int(dut.irq.value) == (1 if level else 0), f"irq with {level} events waiting"
    assert not model.queue

    # empty: VALID = 0, nothing popped, EVT_TS keeps the last popped timestamp
    for _ in range(3):
        assert (await tb.read("EVT_POP")) == 0
    assert await tb.read("EVT_TS") == last_ts
    assert await tb.read("FIFO_LEVEL") == 0
    assert int(dut.irq.value) == 0

    # the next edge continues the sequence (the empty pops consumed nothing) and
    # raises irq by itself
    await model.toggle(tb.n_inputs - 1)
    assert int(dut.irq.value) == 1, "irq did not rise for a new event"
    now = await tb.read("TIME")
    got = await tb.pop()
    assert got.seq == n
    assert got.ts <= now
    model.check(got)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0

    # pops pipelined back to back: each AR pops exactly one event, in order
    m = min(tb.capacity, 6)
    for _ in range(m):
        await model.toggle(random.randrange(tb.n_inputs))
    assert await tb.read("FIFO_LEVEL") == m
    reads = [tb.axil.init_read(ADDR["EVT_POP"], 4) for _ in range(m + 2)]
    for ev in reads:
        await ev.wait()
    words = [int.from_bytes(ev.data.data, "little") for ev in reads]
    for word in words[:m]:
        ev = Event.decode(word)
        exp = model.queue.popleft()
        assert (ev.valid, ev.seq, ev.input, ev.level) == (1, exp.seq, exp.input, exp.level)
    assert words[m:] == [0, 0]
    assert await tb.read("FIFO_LEVEL") == 0
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_simultaneous_edges(dut, stress):
    """Edges in one cycle come out lowest input first, one timestamp; bursts are accounted."""
    tb = TB(dut, stress)
    await tb.reset()
    model = EventModel(tb)
    n = tb.n_inputs

    async def pop_group(count):
        got = [await tb.pop() for _ in range(count)]
        for ev in got:
            model.check(ev)
        assert len({ev.ts for ev in got}) == 1, f"one cycle, several timestamps: {got}"
        return got

    # all inputs at once, up and down, then random subsets
    patterns = [tb.in_mask, 0] + [random.randint(0, tb.in_mask) for _ in range(4)]
    for pattern in patterns:
        changed = pattern ^ model.pins
        if not changed:
            continue
        width = bin(changed).count("1")
        first = model.seq
        await model.set_pins(pattern)
        assert await tb.read("FIFO_LEVEL") == width
        got = await pop_group(width)
        assert [ev.input for ev in got] == [i for i in range(n) if (changed >> i) & 1]
        assert [ev.seq for ev in got] == list(range(first, first + width))
    assert (await tb.pop()).raw == 0
    assert await tb.read("DROPPED") == 0

    # every input toggling on every clock, for a few clocks: faster than one event per
    # clock, so snapshots (or events, when the FIFO fills) may be lost, but never
    # unaccounted for
    await model.set_pins(0)
    while model.queue:
        model.check(await tb.pop())
    await tb.write("DROPPED", await tb.read("DROPPED"))  # a write subtracts: clears it
    base_seq = model.seq
    for burst in range(2):
        cycles = random.randint(4, 9) if stress else 8
        pins = 0
        t0 = tb.cycle() + 1
        for _ in range(cycles):
            pins ^= tb.in_mask
            await tb.drive_btn(pins)
        edges = cycles * n
        await ClockCycles(tb.clk, 5 * n + 30)  # snapshot queue (5) drains, n per snapshot
        dropped = await tb.read("DROPPED")
        waiting = await tb.read("FIFO_LEVEL")
        assert waiting + dropped == edges, (
            f"burst {burst}: {edges} edges, {waiting} waiting + {dropped} dropped"
        )
        assert waiting <= tb.capacity
        got = [await tb.pop() for _ in range(waiting)]
        assert (await tb.pop()).raw == 0
        seqs = [ev.seq - base_seq for ev in got]
        assert all(0 <= s < edges for s in seqs), f"seq out of range: {seqs}"
        assert seqs == sorted(set(seqs)), f"seq not strictly increasing: {seqs}"
        assert edges - len(seqs) == dropped, "sequence gaps must equal DROPPED"
        for ev, s in zip(got, seqs):
            snap = s // n  # the clock cycle of the burst this edge happened in
            assert ev.input == s % n, f"seq {ev.seq}: input {ev.input}, expected {s % n}"
            assert ev.level == (1 if snap % 2 == 0 else 0), f"seq {ev.seq}: level {ev.level}"
        # one timestamp per cycle, advancing with the cycles
        stamps = {}
        for ev, s in zip(got, seqs):
            stamps.setdefault(s // n, set()).add(ev.ts)
        assert all(len(v) == 1 for v in stamps.values()), f"timestamps {stamps}"
        snaps = sorted(stamps)
        ref_ts = next(iter(stamps[snaps[0]]))
        for snap in snaps:
            ts = next(iter(stamps[snap]))
            assert abs(ts - ref_ts - Fraction(snap - snaps[0], tb.ticks)) < 1, (
                f"snapshot {snap}: ts {ts}, first delivered {snaps[0]} ts {ref_ts}"
            )
        tb.log.info(
            "burst %d: %d cycles x %d inputs from cycle %d: %d delivered, %d dropped",
            burst, cycles, n, t0, len(got), dropped,
        )
        # clear DROPPED (a write subtracts, floor 0); the next edge continues the
        # sequence after the burst
        await tb.write("DROPPED", dropped + random.choice([0, 1, 1000, 0xFFFFFFFF - dropped]))
        assert await tb.read("DROPPED") == 0
        base_seq += edges
        model = EventModel(tb)
        model.pins, model.seq = pins, base_seq
        await model.toggle(random.randrange(n))
        got1 = await tb.pop()
        assert got1.seq == base_seq & 0xFFFF
        model.check(got1)
        await model.set_pins(0)
        while model.queue:
            model.check(await tb.pop())
        base_seq = model.seq
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
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
# FIFO overflow and DROPPED
# =====================================================================================


@cocotb.test(timeout_time=CORE_TIMEOUT_US * 5, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_fifo_overflow(dut, stress):
    """A full FIFO drops exactly the excess; DROPPED counts it, seq shows it, writing back
    what was read clears it."""
    tb = TB(dut, stress)
    await tb.reset()
    await tb.write("IRQ_ENABLE", 1)
    model = EventModel(tb)
    n = tb.n_inputs
    cap = tb.capacity

    async def single_edges(count):
        # one edge every other clock: the serializer keeps up, only the FIFO can overflow
        for _ in range(count):
            await model.toggle(model.seq % n, settle=False)
            await ClockCycles(tb.clk, 1)
        await tb.wait_events_settled(1)

    x1 = random.randint(1, 5)
    await single_edges(cap + x1)
    assert model.dropped == x1
    assert await tb.read("FIFO_LEVEL") == cap, "FIFO capacity is FIFO_DEPTH + 1"
    assert await tb.read("DROPPED") == x1
    assert await tb.read("DROPPED") == x1, "reading DROPPED must not clear it"
    assert int(dut.irq.value) == 1

    # make room for two, then overflow again: DROPPED accumulates
    model.check(await tb.pop())
    model.check(await tb.pop())
    assert await tb.read("FIFO_LEVEL") == cap - 2
    x2 = random.randint(1, 4)
    await single_edges(2 + x2)
    assert await tb.read("FIFO_LEVEL") == cap
    assert await tb.read("DROPPED") == x1 + x2 == model.dropped

    # a write subtracts what it writes: 0 changes nothing, the value read clears it
    await tb.write_bytes(ADDR["DROPPED"] + random.randrange(4), b"\x00")
    assert await tb.read("DROPPED") == x1 + x2, "writing 0 subtracts nothing"
    await tb.write("DROPPED", x1)
    assert await tb.read("DROPPED") == x2
    await tb.write("DROPPED", x2)
    assert await tb.read("DROPPED") == 0
    await single_edges(1)
    assert await tb.read("DROPPED") == 1, "a loss after the clear counts again"
    # more than it holds: floor 0
    await tb.write("DROPPED", 0xFFFFFFFF)
    assert await tb.read("DROPPED") == 0

    # drain: seq 2..cap-1, then a gap of x1 (lost), the two accepted after the first
    # pops, then nothing more was accepted
    seqs = []
    while model.queue:
        got = await tb.pop()
        model.check(got)
        seqs.append(got.seq)
    assert seqs[: cap - 2] == list(range(2, cap))
    after = seqs[cap - 2 :]
    assert after == [cap + x1, cap + x1 + 1], f"after the first overflow (x1={x1}): {after}"
    assert (await tb.pop()).raw == 0
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0

    # inputs keep being captured: the sequence resumes after every lost edge
    expected_next = cap + x1 + 2 + x2 + 1
    assert model.seq == expected_next
    await single_edges(3)
    assert await tb.read("FIFO_LEVEL") == 3
    got = await tb.pop()
    assert got.seq == expected_next
    model.check(got)
    await model.pop_all()
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
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
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_top_events_runner(name: str) -> None:
    run_top("test_top_events", name)
