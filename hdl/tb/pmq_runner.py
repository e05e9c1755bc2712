"""The pytest side of every cocotb bench here: build a design with Icarus, run a module.

``run_bench("pmq_fifo", "test_pmq_fifo", "d2", {"DEPTH_LOG2": 2})`` builds
hdl/rtl/*.v (plus any ``extra_sources``) into ``hdl/tb/sim_build-<toplevel>-<name>`` and
runs the cocotb tests of ``test_module`` in it; a failing cocotb test fails the pytest test.
Benches that pass the same toplevel and name share the build: it is compiled once per
pytest process (the top's six benches all run on one build per parameter set).

Environment:
  WAVES=1       write a waveform (<build dir>/<toplevel>.fst)
  PMQ_RTL=DIR   take the RTL from DIR instead of hdl/rtl, e.g. a mutated copy, to check
                that the benches catch a bug (formal/run.sh and synth/synth.sh take it too)
"""

from __future__ import annotations

import os
from pathlib import Path

TB_DIR = Path(__file__).resolve().parent
ROOT = TB_DIR.parent.parent
RTL_DIR = Path(os.environ.get("PMQ_RTL", ROOT / "hdl" / "rtl")).resolve()
REGMAP_TOML = ROOT / "hdl" / "regmap" / "pynq_mqtt_io.toml"


# the runners that built (toplevel, name, parameters) in this process: the RTL cannot
# change under a run, and each process builds afresh, so a build from another PMQ_RTL is
# never reused
_BUILT: dict[tuple[str, str, tuple], object] = {}


def rtl_sources() -> list[Path]:
    return sorted(RTL_DIR.glob("*.v"))  # the generated .vh files come in by `include


def run_bench(
    toplevel: str,
    test_module: str,
    name: str,
    parameters: dict[str, int],
    extra_sources: list[Path] | None = None,
    testcase: str | None = None,
) -> None:
    from cocotb_tools.runner import get_runner

    build_dir = TB_DIR / f"sim_build-{toplevel}-{name}"
    waves = os.environ.get("WAVES") == "1"
    if not waves:  # no stale trace from an earlier WAVES=1 run
        (build_dir / f"{toplevel}.fst").unlink(missing_ok=True)
    key = (toplevel, name, tuple(sorted(parameters.items())))
    runner = _BUILT.get(key)
    if runner is None:
        runner = get_runner("icarus")
        runner.build(
            sources=rtl_sources() + list(extra_sources or []),
            includes=[RTL_DIR],
            hdl_toplevel=toplevel,
            parameters=parameters,
            build_dir=build_dir,
            always=True,
            waves=waves,
            timescale=("1ns", "1ps"),
        )
        _BUILT[key] = runner
    runner.test(
        hdl_toplevel=toplevel,
        test_module=test_module,
        build_dir=build_dir,
        test_dir=build_dir,
        waves=waves,
        testcase=testcase,
    )
