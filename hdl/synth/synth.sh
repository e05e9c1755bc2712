#!/usr/bin/env bash
# Synthesizes pynq_mqtt_io for Xilinx 7-series with yosys and writes the resource report
# hdl/synth/report.txt (committed; regenerated here, deterministic, so a diff shows
# what an RTL change costs). Fails unless the event FIFO maps to block RAM
# (RAMB18E1/RAMB36E1 inside the event FIFO's pmq_fifo) in every run, and when the default
# run needs more LUTs than lut_budget below.
#
#   yosys: synth_xilinx -family xc7 -noiopad -top pynq_mqtt_io
#   runs:  the default parameters (FIFO_DEPTH=512), and FIFO_DEPTH=1024
#
# Usage: hdl/synth/synth.sh   (from any directory; logs in hdl/synth/build/)
#   PMQ_RTL=DIR   take the RTL from DIR instead of hdl/rtl (report in hdl/synth/build/)
set -euo pipefail
cd "$(dirname "$0")/../.."

# The LUT budget of the default top (N_INPUTS 4, N_LEDS 4, FIFO_DEPTH 512): LUT1..LUT6 of
# the whole hierarchy as yosys counts them. The run fails above it. Issue 3 asked for 600;
# every feature together measures 820..830 (report.txt lists what each module costs;
# abc varies by about 10 LUT between runs), so the budget is that with 3 % headroom: a
# ceiling that stops the design growing unnoticed, not the target. The target stays
# 600 and every run says, loudly, that it is not met (issue 13).
lut_budget=850
lut_target=600

rtl=${PMQ_RTL:-hdl/rtl}
out=hdl/synth/build
report=hdl/synth/report.txt
mkdir -p "$out"
if [[ -n ${PMQ_RTL:-} ]]; then
  report=$out/report.txt  # another RTL's report does not overwrite the committed one
fi

# name  chparam arguments
runs=(
  "default|"
  "fifo1024|-set FIFO_DEPTH 1024"
)

shopt -s nullglob
srcs=("$rtl"/*.v)
shopt -u nullglob
((${#srcs[@]})) || { echo "synth: no RTL under $rtl" >&2; exit 1; }

for run in "${runs[@]}"; do
  name=${run%%|*}
  params=${run#*|}
  t0=$SECONDS
  script="read_verilog -I$rtl ${srcs[*]};"
  if [[ -n $params ]]; then
    script+=" chparam $params pynq_mqtt_io;"
  fi
  script+=" synth_xilinx -family xc7 -noiopad -top pynq_mqtt_io;"
  script+=" tee -q -o $out/$name.stat stat -top pynq_mqtt_io"
  if ! yosys -q -l "$out/$name.log" -p "$script" >/dev/null 2>&1; then
    echo "synth: FAIL $name: yosys failed (log: $out/$name.log)" >&2
    tail -20 "$out/$name.log" >&2
    exit 1
  fi
  echo "synth: $name done ($((SECONDS - t0)) s)"
done

# report.txt from the stat outputs; exit 1 if the event FIFO is not in block RAM
python3 - "$out" "$report" "$lut_budget" "$lut_target" "${runs[@]}" <<'EOF'
import re
import sys
from pathlib import Path

out, report, budget, target = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
runs = [r.split("|", 1) for r in sys.argv[5:]]
FEATURES = {
    "pmq_axil_slave": "AXI4-Lite front end (AW/W buffers, B and R held)",
    "pmq_regs": "register block: storage, access types, read multiplexer (generated)",
    "pmq_sync": "input synchronizers",
    "pmq_debounce": "debounce (a lockout deadline per input, one shared adder)",
    "pmq_decoder": "register index decoder: one-hot write selects",
    "pmq_event_capture": "edge detect, enable/edge select, serializer, sequence, loss count",
    "pmq_fifo (snapshot)": "snapshot queue of the capture (same-clock edges)",
    "pmq_fifo (event)": "event FIFO (block RAM) and its pointers",
    "pmq_event_gen": "event generator (count, period, pattern)",
    "pmq_led_pwm": "LED brightness (PWM)",
    "pmq_timebase": "microsecond timebase (prescaler, 32-bit time)",
    "pynq_mqtt_io": "top: interrupt coalescing (threshold, age), LED set/clear/toggle",
}


def parse(text):
    """{module: {cell type: count}}; the key 'TOTAL' is the whole hierarchy."""
    mods, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^=== (.*) ===$", line.strip())
        if m:
            cur = "TOTAL" if m.group(1) == "design hierarchy" else m.group(1)
            mods[cur] = {}
            continue
        m = re.match(r"^\s+([A-Za-z0-9_$\\.=']+)\s+(\d+)$", line)
        if cur and m and not line.strip().startswith("Number"):
            mods[cur][m.group(1)] = int(m.group(2))
    return mods


def summary(cells):
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    ffs = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    lutram = sum(v for k, v in cells.items() if re.fullmatch(r"RAM\d+[A-Z0-9]*", k))
    return {
        "LUT": luts,
        "FF": ffs,
        "RAMB36E1": cells.get("RAMB36E1", 0),
        "RAMB18E1": cells.get("RAMB18E1", 0),
        "LUTRAM": lutram,
        "CARRY4": cells.get("CARRY4", 0),
        "MUXF7/8": cells.get("MUXF7", 0) + cells.get("MUXF8", 0),
        "INV": cells.get("INV", 0),
        "DSP48E1": cells.get("DSP48E1", 0),
    }


def base(module):
    """$paramod$<hash>\\name or $paramod\\name\\PARAM=... -> name"""
    parts = module.split("\\")
    return parts[1] if parts[0].startswith("$paramod") and len(parts) > 1 else module


cols = ["LUT", "FF", "RAMB36E1", "RAMB18E1", "LUTRAM", "CARRY4", "MUXF7/8", "INV", "DSP48E1"]
lines = [
    "Resources of pynq_mqtt_io on Xilinx 7-series. Generated by hdl/synth/synth.sh; do not edit.",
    "yosys 0.23: synth_xilinx -family xc7 -noiopad -top pynq_mqtt_io (no place and route:",
    "Vivado packs differently; INV cells are absorbed into LUTs there).",
    "",
    f"{'run':<10} " + " ".join(f"{c:>8}" for c in cols),
]
per_module = []
ok = True
for name, params in runs:
    mods = parse((out / f"{name}.stat").read_text())
    total = summary(mods.get("TOTAL", {}))
    lines.append(f"{name:<10} " + " ".join(f"{total[c]:>8}" for c in cols))
    if name == "default":
        default_luts = total["LUT"]
        if total["LUT"] > budget:
            print(f"synth: FAIL {name}: {total['LUT']} LUT, above the budget of {budget} "
                  f"(lut_budget in hdl/synth/synth.sh)", file=sys.stderr)
            ok = False
        if total["LUT"] > target:
            print(f"synth: NOT MET: the LUT target of {target} (issue 13): {total['LUT']} LUT "
                  f"(enforced ceiling {budget}; what each feature costs: {report})", file=sys.stderr)
    fifo_bram = [
        m for m, cells in mods.items()
        if base(m) == "pmq_fifo" and (cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0)) > 0
    ]
    if not fifo_bram:
        print(f"synth: FAIL {name}: the event FIFO is not in block RAM", file=sys.stderr)
        ok = False
    per_module.append((name, params, mods))

lines += ["", "runs: " + "; ".join(f"{n} = {p or 'default parameters (FIFO_DEPTH=512)'}"
                                   for n, p in runs), ""]
for name, params, mods in per_module:
    lines.append(f"per module, {name}:")
    lines.append(f"{'module':<22} " + " ".join(f"{c:>8}" for c in cols))
    rows = []
    for m, cells in mods.items():
        if m == "TOTAL":
            continue
        s = summary(cells)
        mod = base(m)
        if mod == "pmq_fifo":
            mod += " (event)" if s["RAMB36E1"] + s["RAMB18E1"] else " (snapshot)"
        rows.append((mod, s))
    for mod, s in sorted(rows, key=lambda r: (r[0], -r[1]["LUT"])):
        lines.append(f"{mod:<22} " + " ".join(f"{s[c]:>8}" for c in cols))
    lines.append("")
    if name == "default":
        lines.append(f"LUT budget (default run): {default_luts} of {budget}; what each feature costs:")
        for mod, s in sorted(rows, key=lambda r: -r[1]["LUT"]):
            lines.append(f"  {s['LUT']:>4} LUT {s['FF']:>4} FF  {mod:<20} {FEATURES.get(mod, '')}")
        lines.append("")

report.write_text("\n".join(lines).rstrip() + "\n")
print("\n".join(lines[4 : 4 + len(runs) + 1]))
if not ok:
    sys.exit(1)
print(f"synth: event FIFO in block RAM in every run; default {default_luts} LUT, budget {budget}; "
      f"report: {report}")
EOF
