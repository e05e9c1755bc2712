"""An AXI4-Lite protocol checker for cocotb benches: watches the five channels of a slave
on every clock edge, whoever drives them (cocotbext-axi or the raw pin drivers).

Slave rules (the same as hdl/formal/axil_props.v):
  - BVALID / RVALID low in the cycle after reset;
  - BVALID / RVALID, once high, stay high until BREADY / RREADY with BRESP, RDATA,
    RRESP unchanged;
  - a B only for a write whose AW and W handshakes both happened at an earlier edge (never
    in their own handshake cycle); an R only for an AR accepted at an earlier edge; so
    responses never outnumber requests.
Master rules (checks the bench itself): AWVALID, WVALID, ARVALID held until the handshake
with their payload unchanged.

Signals are sampled at the rising edge, before the edge's updates: what the slave sees.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import RisingEdge


class AxilMonitor:
    def __init__(self, dut, prefix: str = "s_axi", clk=None, resetn=None, reset=None):
        self.dut = dut
        self.clk = clk if clk is not None else getattr(dut, f"{prefix}_aclk")
        self.resetn = resetn
        self.reset = reset
        if resetn is None and reset is None:
            self.resetn = getattr(dut, f"{prefix}_aresetn")
        self.sig = {
            name: getattr(dut, f"{prefix}_{name}")
            for name in (
                "awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
                "bresp", "bvalid", "bready", "araddr", "arvalid", "arready",
                "rdata", "rresp", "rvalid", "rready",
            )
        }
        self.errors: list[str] = []
        self.counts = dict(aw=0, w=0, b=0, ar=0, r=0)
        self.cycles = 0
        self._task = cocotb.start_soon(self._run())

    def _in_reset(self) -> bool:
        if self.resetn is not None:
            return int(self.resetn.value) == 0
        return int(self.reset.value) == 1

    def _fail(self, msg: str) -> None:
        msg = f"AXI4-Lite monitor, cycle {self.cycles}: {msg}"
        self.errors.append(msg)
        raise AssertionError(msg)

    async def _run(self) -> None:
        prev = None
        was_reset = True
        while True:
            await RisingEdge(self.clk)
            self.cycles += 1
            if self._in_reset():
                self.counts = dict(aw=0, w=0, b=0, ar=0, r=0)
                prev, was_reset = None, True
                continue
            # handshake bits as ints, payloads as bit strings (they may hold X while idle)
            s = {
                k: int(v.value) if k.endswith(("valid", "ready")) else str(v.value)
                for k, v in self.sig.items()
            }
            c = self.counts
            if was_reset and (s["bvalid"] or s["rvalid"]):
                self._fail("BVALID or RVALID high right after reset")
            if prev is not None:
                if prev["bvalid"] and not prev["bready"]:
                    if not s["bvalid"] or s["bresp"] != prev["bresp"]:
                        self._fail("B dropped or changed before BREADY")
                if prev["rvalid"] and not prev["rready"]:
                    if not s["rvalid"] or (s["rdata"], s["rresp"]) != (prev["rdata"], prev["rresp"]):
                        self._fail("R dropped or changed before RREADY")
                for ch, payload in (("aw", ("awaddr",)), ("w", ("wdata", "wstrb")), ("ar", ("araddr",))):
                    if prev[f"{ch}valid"] and not prev[f"{ch}ready"]:
                        if not s[f"{ch}valid"] or any(s[p] != prev[p] for p in payload):
                            self._fail(f"master dropped or changed {ch.upper()} before READY")
            if s["bvalid"] and c["b"] >= min(c["aw"], c["w"]):
                self._fail(
                    f"BVALID for write {c['b']} with only {c['aw']} AW and {c['w']} W "
                    "accepted at earlier edges"
                )
            if s["rvalid"] and c["r"] >= c["ar"]:
                self._fail(f"RVALID for read {c['r']} with only {c['ar']} AR accepted before")
            for ch in ("aw", "w", "ar"):
                if s[f"{ch}valid"] and s[f"{ch}ready"]:
                    c[ch] += 1
            if s["bvalid"] and s["bready"]:
                c["b"] += 1
            if s["rvalid"] and s["rready"]:
                c["r"] += 1
            prev, was_reset = s, False

    def check(self) -> None:
        """Raises if any rule was broken (also raised at the time, in the monitor task)."""
        assert not self.errors, "; ".join(self.errors[:5])
