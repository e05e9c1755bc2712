"""cocotb bench for pmq_event_capture: edge detection, snapshot queue, serializer,
sequence numbers and loss accounting.

The bench drives the (already debounced) levels, the masks, time_us (a counter: the
stamp names the clock of detection), the generator's offer and evt_ready at the falling
edge, and samples in the ReadOnly phase. A model of the documented behaviour predicts
every event:
  - an edge counts if its input is enabled and its direction selected (rise/fall);
  - a clock with counted edges is one snapshot: one event per edge, lowest input first,
    one timestamp (time_us at detection), consecutive sequence numbers;
  - a clock without pin edges takes the generator's offer (gen_ready is high exactly
    then) as one SYNTHETIC event with the offered input and level;
  - the sequence number advances at detection for every event, kept or lost;
  - events leave one per clock, in order; one detected two clocks ago or earlier is
    never held back (no bubbles);
  - a loss is either a whole snapshot (the snapshot queue full) or the event emitted
    while evt_ready is low; lost_count says how many in that clock, so the losses add up
    exactly and the sequence gaps are exactly the losses.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from pmq_runner import run_bench

TIMEOUT_US = 2000  # simulated; a hung handshake fails instead of hanging

SEQ_MASK = 0xFFFF


@dataclass
class Ev:
    seq: int
    input: int
    level: int
    ts: int
    synthetic: int
    edge: int  # the clock edge of detection


class CaptureTB:
    def __init__(self, dut):
        self.dut = dut
        self.n = int(dut.N_INPUTS.value)
        self.queue_cap = (1 << int(dut.QUEUE_LOG2.value)) + 1
        self.mask = (1 << self.n) - 1
        self.level = 0
        self.prev_level = 0
        self.enable = self.rise = self.fall = self.mask
        self.time = random.getrandbits(32)
        self.edge = 0
        self.seq = 0
        # snapshots kept, each a deque of events still to leave, oldest first
        self.snaps: deque[deque[Ev]] = deque()
        self.delivered: list[Ev] = []
        self.lost = 0          # sum of lost_count
        self.lost_model = 0    # what the model counted
        self.detected = 0
        self.snap_losses = 0
        for name in ("level", "gen_valid", "gen_input", "gen_level", "evt_ready"):
            getattr(dut, name).value = 0
        for name in ("enable", "rise", "fall"):
            getattr(dut, name).value = self.mask
        dut.time_us.value = self.time
        dut.rst.value = 1
        Clock(dut.clk, 10, unit="ns").start()

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await self.step(self.level, check=False)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.seq = 0
        self.snaps.clear()

    async def step(
        self,
        level: int | None = None,
        gen: tuple[int, int] | None = None,
        ready: bool = True,
        check: bool = True,
    ) -> dict:
        """One clock: drive, sample, check against the model, advance the model."""
        dut = self.dut
        await FallingEdge(dut.clk)
        if level is not None:
            self.level = level & self.mask
        self.time = (self.time + 1) & 0xFFFFFFFF
        dut.level.value = self.level
        dut.enable.value = self.enable
        dut.rise.value = self.rise
        dut.fall.value = self.fall
        dut.time_us.value = self.time
        dut.gen_valid.value = int(gen is not None)
        dut.gen_input.value = gen[0] if gen else random.randrange(self.n)
        dut.gen_level.value = gen[1] if gen else random.getrandbits(1)
        dut.evt_ready.value = int(ready)
        await ReadOnly()
        s = dict(
            gen_ready=int(dut.gen_ready.value),
            valid=int(dut.evt_valid.value),
            lost=int(dut.lost_count.value),
        )
        if s["valid"]:
            s.update(
                synthetic=int(dut.evt_synthetic.value),
                input=int(dut.evt_input.value),
                level=int(dut.evt_level.value),
                ts=int(dut.evt_ts.value),
                seq=int(dut.evt_seq.value),
            )
        if check:
            self._check(s, gen, ready)
        self.prev_level = self.level
        self.edge += 1
        return s

    def _check(self, s: dict, gen, ready: bool) -> None:
        k = self.edge
        where = f"edge {k}"
        # ---- detection at this edge
        changed = self.level ^ self.prev_level
        sel = (self.level & self.rise) | (~self.level & self.fall)
        pins = changed & self.enable & sel & self.mask
        assert s["gen_ready"] == (pins == 0), f"{where}: gen_ready {s['gen_ready']} with pin edges {pins:#x}"
        new: list[Ev] = []
        if pins:
            for i in range(self.n):
                if (pins >> i) & 1:
                    new.append(Ev(self.seq, i, (self.level >> i) & 1, self.time, 0, k))
                    self.seq += 1
        elif gen is not None:
            new.append(Ev(self.seq, gen[0], gen[1], self.time, 1, k))
            self.seq += 1
        self.detected += len(new)

        # ---- what leaves at this edge
        outstanding = len(self.snaps)
        if s["valid"]:
            assert self.snaps, f"{where}: an event left, none expected: {s}"
            exp = self.snaps[0][0]
            got = (s["seq"], s["input"], s["level"], s["ts"], s["synthetic"])
            want = (exp.seq & SEQ_MASK, exp.input, exp.level, exp.ts, exp.synthetic)
            assert got == want, f"{where}: event {got}, expected {want} (seq, input, level, ts, synthetic)"
            self.snaps[0].popleft()
            if not self.snaps[0]:
                self.snaps.popleft()
            if ready:
                self.delivered.append(exp)
        elif self.snaps:
            head = self.snaps[0][0]
            assert head.edge >= k - 1, (
                f"{where}: no event out, but seq {head.seq} detected at edge {head.edge} waits"
            )

        # ---- losses at this edge: the emitted event if not ready, and/or a whole snapshot
        emitted_loss = int(bool(s["valid"]) and not ready)
        snap_loss = s["lost"] - emitted_loss
        assert snap_loss in (0, len(new)) and snap_loss >= 0, (
            f"{where}: lost_count {s['lost']} with {emitted_loss} emitted while not ready "
            f"and {len(new)} detected"
        )
        if new and snap_loss:
            assert outstanding >= self.queue_cap - 1, (
                f"{where}: snapshot lost with only {outstanding} snapshots queued"
            )
            self.snap_losses += 1
        elif new:
            self.snaps.append(deque(new))
        assert len(self.snaps) <= self.queue_cap, "more snapshots queued than the queue holds"
        self.lost += s["lost"]
        self.lost_model += emitted_loss + snap_loss

    async def drain(self) -> None:
        for _ in range(self.n * (self.queue_cap + 1) + 5):
            await self.step()
        assert not self.snaps, "events still expected after draining"

    def check_accounting(self) -> None:
        assert self.detected == len(self.delivered) + self.lost, (
            f"{self.detected} detected, {len(self.delivered)} delivered + {self.lost} lost"
        )
        seqs = [e.seq for e in self.delivered]
        gaps = sum(b - a - 1 for a, b in zip(seqs, seqs[1:])) + (seqs[0] if seqs else 0)
        gaps += self.seq - (seqs[-1] + 1 if seqs else 0)
        assert gaps == self.lost, f"sequence gaps {gaps}, lost {self.lost}"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_single_edges(dut):
    """One edge at a time: input, level, the stamp of its clock, consecutive seq."""
    tb = CaptureTB(dut)
    await tb.reset()
    for _ in range(40):
        await tb.step(tb.level ^ (1 << random.randrange(tb.n)))
        for _ in range(random.randint(0, 3)):
            await tb.step()
    await tb.drain()
    assert len(tb.delivered) == 40 and tb.lost == 0
    assert [e.seq for e in tb.delivered] == list(range(40))
    tb.check_accounting()


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_simultaneous_edges(dut):
    """Edges on many inputs in one clock: lowest input first, one stamp, one per clock."""
    tb = CaptureTB(dut)
    await tb.reset()
    for pattern in [tb.mask, 0] + [random.getrandbits(tb.n) for _ in range(10)]:
        await tb.step(pattern)
        for _ in range(tb.n + 3):
            await tb.step()
    await tb.drain()
    assert tb.lost == 0
    tb.check_accounting()


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_enable_and_edge_select(dut):
    """Masked inputs and unselected directions make no event and take no sequence number."""
    tb = CaptureTB(dut)
    await tb.reset()
    cases = [(tb.mask, tb.mask, 0), (tb.mask, 0, tb.mask), (0, tb.mask, tb.mask)]
    cases += [tuple(random.getrandbits(tb.n) for _ in range(3)) for _ in range(8)]
    for enable, rise, fall in cases:
        tb.enable, tb.rise, tb.fall = enable, rise, fall
        for _ in range(12):
            await tb.step(random.getrandbits(tb.n))
            for _ in range(tb.n):
                await tb.step()
    await tb.drain()
    assert tb.lost == 0
    tb.check_accounting()


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_generator_events(dut):
    """Offers are taken only in clocks without pin edges, as SYNTHETIC events."""
    tb = CaptureTB(dut)
    await tb.reset()
    synthetic = 0
    for _ in range(300):
        level = tb.level ^ (1 << random.randrange(tb.n)) if random.random() < 0.2 else None
        gen = (random.randrange(tb.n), random.getrandbits(1)) if random.random() < 0.7 else None
        s = await tb.step(level, gen)
        synthetic += int(gen is not None and s["gen_ready"])
    await tb.drain()
    assert synthetic > 50
    assert sum(e.synthetic for e in tb.delivered) + tb.lost >= synthetic
    tb.check_accounting()


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(p_edge=[0.05, 0.4], p_ready=[1.0, 0.7, 0.1])
async def test_random_losses(dut, p_edge, p_ready):
    """Random edges, masks, offers and evt_ready: every event kept or counted as lost."""
    tb = CaptureTB(dut)
    await tb.reset()
    for _ in range(800):
        if random.random() < 0.02:
            tb.enable, tb.rise, tb.fall = (random.getrandbits(tb.n) | random.getrandbits(tb.n) for _ in range(3))
        level = tb.level
        for i in range(tb.n):
            if random.random() < p_edge:
                level ^= 1 << i
        gen = (random.randrange(tb.n), random.getrandbits(1)) if random.random() < 0.3 else None
        await tb.step(level, gen, ready=random.random() < p_ready)
    await tb.drain()
    tb.check_accounting()
    dut._log.info(
        "p_edge=%.2f p_ready=%.1f: %d detected, %d delivered, %d lost (%d snapshots)",
        p_edge, p_ready, tb.detected, len(tb.delivered), tb.lost, tb.snap_losses,
    )
    if p_edge > 0.3 and tb.n > 1:
        assert tb.snap_losses > 0, "the snapshot queue never overflowed"


PARAM_SETS = {
    "n1": {"N_INPUTS": 1},
    "n3": {"N_INPUTS": 3},
    "n4": {"N_INPUTS": 4},
    "n8": {"N_INPUTS": 8},
}


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_pmq_event_capture_runner(name: str) -> None:
    run_bench("pmq_event_capture", "test_pmq_event_capture", name, PARAM_SETS[name])
