#!/usr/bin/env bash
# Synthesizes pynq_mqtt_io for Xilinx 7-series with yosys and writes the resource report
# hdl/synth/report.txt (committed; regenerated here, deterministic, so a diff shows
# what an RTL change costs). Fails unless the event FIFO maps to block RAM
# (RAMB18E1/RAMB36E1 inside the event FIFO's pmq_fifo) in every run, and when a run with a
# budget needs more LUTs than it.
#
#   yosys: synth_xilinx -family xc7 -noiopad -top pynq_mqtt_io
#   runs:  default   the default parameters (FIFO_DEPTH=512, WITH_GEN=0): lut_budget
#          fifo1024  FIFO_DEPTH=1024 (no budget: the FIFO is block RAM either way)
#          gen       WITH_GEN=1, the event generator built in: lut_budget_gen
#   report.txt also lists, per module, what the generator costs (gen - default).
#
# Usage: hdl/synth/synth.sh   (from any directory; logs in hdl/synth/build/)
#   PMQ_RTL=DIR   take the RTL from DIR instead of hdl/rtl (report in hdl/synth/build/)
set -euo pipefail
cd "$(dirname "$0")/../.."

# The LUT budgets: LUT1..LUT6 of the whole hierarchy as yosys counts them; a run fails
# above its budget. Issue 3 asked for 600 for the default top (N_INPUTS 4, N_LEDS 4,
# FIFO_DEPTH 512), and that is its budget: it measures 579 since the AXI slave writes
# from its AW/W buffers only (630 before). The event generator is a test instrument,
# built only with WITH_GEN=1 (issue 13); that build measures 756 and is budgeted at
# about 3 % above (abc varies by about 10 LUT between runs): a ceiling that stops the
# design growing unnoticed. hdl/README.md, "Resources", says what each feature costs.
lut_budget=600
lut_budget_gen=780

rtl=${PMQ_RTL:-hdl/rtl}
out=hdl/synth/build
report=hdl/synth/report.txt
mkdir -p "$out"
if [[ -n ${PMQ_RTL:-} ]]; then
  report=$out/report.txt  # another RTL's report does not overwrite the committed one
fi

# name|chparam arguments|LUT budget (empty: none)
runs=(
  "default||$lut_budget"
  "fifo1024|-set FIFO_DEPTH 1024|"
  "gen|-set WITH_GEN 1|$lut_budget_gen"
)

shopt -s nullglob
srcs=("$rtl"/*.v)
shopt -u nullglob
((${#srcs[@]})) || { echo "synth: no RTL under $rtl" >&2; exit 1; }

for run in "${runs[@]}"; do
  name=${run%%|*}
  params=${run#*|}
  params=${params%|*}
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
python3 - "$out" "$report" "$lut_budget" "${runs[@]}" <<'EOF'
import re
import sys
from pathlib import Path

out, report, target = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
runs = [r.split("|", 2) for r in sys.argv[4:]]
FEATURES = {
    "pmq_axil_slave": "AXI4-Lite front end (AW/W buffers, B and R held)",
    "pmq_regs": "register block: storage, access types, read multiplexer (generated)",
    "pmq_sync": "input synchronizers",
    "pmq_debounce": "debounce (a lockout deadline per input, one shared adder)",
    "pmq_decoder": "register index decoder: one-hot write selects",
    "pmq_event_capture": "edge detect, enable/edge select, serializer, sequence, loss count",
    "pmq_fifo (snapshot)": "snapshot queue of the capture (same-clock edges)",
    "pmq_fifo (event)": "event FIFO (block RAM) and its pointers",
    "pmq_event_gen": "event generator (count, period, pattern; WITH_GEN=1 only)",
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
luts, budgets = {}, {}
for name, params, budget in runs:
    mods = parse((out / f"{name}.stat").read_text())
    total = summary(mods.get("TOTAL", {}))
    lines.append(f"{name:<10} " + " ".join(f"{total[c]:>8}" for c in cols))
    luts[name] = total["LUT"]
    if budget:
        budgets[name] = int(budget)
        if total["LUT"] > int(budget):
            print(f"synth: FAIL {name}: {total['LUT']} LUT, above its budget of {budget} "
                  f"(hdl/synth/synth.sh)", file=sys.stderr)
            ok = False
    fifo_bram = [
        m for m, cells in mods.items()
        if base(m) == "pmq_fifo" and (cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0)) > 0
    ]
    if not fifo_bram:
        print(f"synth: FAIL {name}: the event FIFO is not in block RAM", file=sys.stderr)
        ok = False
    per_module.append((name, params, mods))

lines += ["", "runs: " + "; ".join(f"{n} = {p or 'default parameters (FIFO_DEPTH=512, WITH_GEN=0)'}"
                                   for n, p, _ in runs),
          "LUT budgets: " + "; ".join(f"{n} {luts[n]} of {b}" for n, b in budgets.items())
          + f" (issue 3's {target} for the default top)",
          ""]


def rows_of(mods):
    rows = []
    for m, cells in mods.items():
        if m == "TOTAL":
            continue
        s = summary(cells)
        mod = base(m)
        if mod == "pmq_fifo":
            mod += " (event)" if s["RAMB36E1"] + s["RAMB18E1"] else " (snapshot)"
        rows.append((mod, s))
    return rows


for name, params, mods in per_module:
    lines.append(f"per module, {name}:")
    lines.append(f"{'module':<22} " + " ".join(f"{c:>8}" for c in cols))
    rows = rows_of(mods)
    for mod, s in sorted(rows, key=lambda r: (r[0], -r[1]["LUT"])):
        lines.append(f"{mod:<22} " + " ".join(f"{s[c]:>8}" for c in cols))
    lines.append("")
    if name == "default":
        lines.append(f"LUT budget (default run): {luts[name]} of {budgets[name]}; what each module costs:")
        for mod, s in sorted(rows, key=lambda r: -r[1]["LUT"]):
            lines.append(f"  {s['LUT']:>4} LUT {s['FF']:>4} FF  {mod:<20} {FEATURES.get(mod, '')}")
        lines.append("")

# what the event generator costs: the gen run against the default one, module by module
by_run = {n: dict(rows_of(m)) for n, _, m in per_module}
if "default" in by_run and "gen" in by_run:
    d, g = by_run["default"], by_run["gen"]
    lines.append("what the event generator costs (WITH_GEN=1 run - default run), per module:")
    tot_l = tot_f = 0
    for mod in sorted(set(d) | set(g)):
        dl = g.get(mod, {}).get("LUT", 0) - d.get(mod, {}).get("LUT", 0)
        df = g.get(mod, {}).get("FF", 0) - d.get(mod, {}).get("FF", 0)
        if dl or df:
            lines.append(f"  {dl:>+5} LUT {df:>+5} FF  {mod}")
        tot_l += dl
        tot_f += df
    lines.append(f"  {tot_l:>+5} LUT {tot_f:>+5} FF  in all ({luts['default']} -> {luts['gen']} LUT)")
    lines.append("")

report.write_text("\n".join(lines).rstrip() + "\n")
print("\n".join(lines[4 : 4 + len(runs) + 1]))
if not ok:
    sys.exit(1)
print("synth: event FIFO in block RAM in every run; "
      + "; ".join(f"{n} {luts[n]} LUT, budget {b}" for n, b in budgets.items())
      + f"; report: {report}")
EOF
