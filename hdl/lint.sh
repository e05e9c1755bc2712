#!/usr/bin/env bash
# Lints the pynq_mqtt_io RTL and the models in hdl/models; fails on any warning.
#
#   verilator --lint-only -Wall   for the default parameters and a few -G sets, with
#                                 and without the event generator (WITH_GEN)
#   iverilog -g2005               parses and elaborates (plain Verilog-2005)
#   yosys read_verilog            parses, and hierarchy -top elaborates
#
# Usage: hdl/lint.sh   (from any directory)
set -euo pipefail
cd "$(dirname "$0")/.."

top=pynq_mqtt_io
inc=hdl/rtl
shopt -s nullglob
rtl=(hdl/rtl/*.v)
shopt -u nullglob
if ((${#rtl[@]} == 0)); then
  echo "lint: no RTL files under hdl/rtl" >&2
  exit 1
fi

# parameter sets for verilator: each entry is one space-separated list of NAME=VALUE
# (WITH_GEN: the default builds no event generator; the sets with WITH_GEN=1 build it)
param_sets=(
  ""
  "WITH_GEN=1"
  "N_INPUTS=1 N_LEDS=1 FIFO_DEPTH=4"
  "N_INPUTS=1 N_LEDS=1 FIFO_DEPTH=4 WITH_GEN=1"
  "N_INPUTS=32 N_LEDS=32 WITH_GEN=1"
  "CLK_HZ=125000000"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0

# run_tool NAME CMD...: runs CMD, fails if it exits non-zero or prints anything that
# looks like a warning or an error
run_tool() {
  local name=$1
  shift
  local log="$tmp/out.log"
  local rc=0
  "$@" >"$log" 2>&1 || rc=$?
  if ((rc != 0)) || grep -qiE 'warning|error' "$log"; then
    echo "lint: FAIL $name (exit $rc)" >&2
    sed 's/^/  /' "$log" >&2
    failed=1
  else
    echo "lint: ok   $name"
  fi
}

for pset in "${param_sets[@]}"; do
  read -r -a kvs <<<"$pset"
  gargs=()
  pargs=()
  for kv in "${kvs[@]}"; do
    gargs+=("-G$kv")
    pargs+=("-P$top.$kv")
  done
  label=${pset:-defaults}
  run_tool "verilator -Wall ($label)" \
    verilator --lint-only -Wall "-I$inc" "${gargs[@]}" --top-module "$top" "${rtl[@]}"
  run_tool "iverilog -g2005 ($label)" \
    iverilog -g2005 -Wall "-I$inc" "${pargs[@]}" -s "$top" \
      -o "$tmp/$top.vvp" "${rtl[@]}"
done

run_tool "yosys read_verilog + hierarchy -top $top" \
  yosys -q -p "read_verilog -I$inc ${rtl[*]}; hierarchy -check -top $top"

# the behavioural models of the base overlay's Xilinx blocks (hdl/models), on our AXI slave
models=(hdl/rtl/pmq_axil_slave.v hdl/models/*.v)
model_sets=(
  "axi_gpio_model"
  "axi_gpio_model ALL_INPUTS=1 GPIO_WIDTH=32"
  "axi_gpio_model ALL_OUTPUTS=1 GPIO_WIDTH=1 INTERRUPT_PRESENT=0"
  "axi_intc_model"
  "axi_intc_model NUM_INTR=1 KIND_OF_INTR=1"
  "axi_intc_model NUM_INTR=32"
  "pynq_base_model BOARD_Z2=0"
  "pynq_base_model BOARD_Z2=1"
)
for mset in "${model_sets[@]}"; do
  read -r -a kvs <<<"$mset"
  mtop=${kvs[0]}
  gargs=()
  pargs=()
  for kv in "${kvs[@]:1}"; do
    gargs+=("-G$kv")
    pargs+=("-P$mtop.$kv")
  done
  run_tool "verilator -Wall (model: $mset)" \
    verilator --lint-only -Wall "${gargs[@]}" --top-module "$mtop" "${models[@]}"
  run_tool "iverilog -g2005 (model: $mset)" \
    iverilog -g2005 -Wall "${pargs[@]}" -s "$mtop" -o "$tmp/$mtop.vvp" "${models[@]}"
done

if ((failed)); then
  echo "lint: FAILED" >&2
  exit 1
fi
echo "lint: all clean"
