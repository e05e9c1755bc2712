#!/usr/bin/env bash
# Runs every formal proof of the pynq_mqtt_io RTL; fails if any fails.
#
# No SymbiYosys: yosys writes the design with its properties (read_verilog -formal) as
# SMT-LIB2 for yosys-smtbmc (z3) and as AIGER for abc's PDR, and this script runs:
#   bmc     yosys-smtbmc -t N       every assertion holds for N steps from reset
#   ind     yosys-smtbmc -i -t K    k-induction: the assertions hold in every reachable state
#   pdr     yosys-abc fold; pdr     unbounded proof, PDR finds its own invariants
#   cover   yosys-smtbmc -c -t N    every cover statement is reachable (no vacuous proof)
#
# Proofs (harnesses in this directory; properties in axil_props.v and the harnesses):
#   axil_slave   pmq_axil_slave: AXI4-Lite protocol and its register port
#   fifo_d1/2/3  pmq_fifo with 2, 4, 8 entries: count, no overflow, order and data
#   top          pynq_mqtt_io with its register block: AXI4-Lite protocol on its ports
#                (the default build, WITH_GEN=0)
#   top_gen      the same with the event generator (WITH_GEN=1)
#
# Usage: hdl/formal/run.sh [name...]   (default: all; from any directory)
#   PMQ_RTL=DIR   take the RTL from DIR instead of hdl/rtl (to check that a mutated
#                 copy fails)
# Counterexamples: hdl/formal/build/<name>-<engine>.vcd
set -euo pipefail
cd "$(dirname "$0")/../.."

rtl=${PMQ_RTL:-hdl/rtl}
fdir=hdl/formal
out=$fdir/build
mkdir -p "$out"

failed=()
t_all=$SECONDS

# yosys_read SOURCES TOP PARAMS: the read and elaboration part of a yosys script
yosys_read() {
  local srcs=$1 top=$2 params=$3
  local script="read_verilog -formal -DFORMAL -I$rtl $srcs;"
  if [[ -n $params ]]; then
    script+=" chparam $params $top;"
  fi
  script+=" prep -top $top;"
  printf '%s' "$script"
}

# prove NAME TOP "SOURCES" "CHPARAM ARGS" "ENGINES" [MEM]: ENGINES is a list of
# bmc:N, ind:K, pdr, cover:N; MEM=bits maps memories to flip-flops for the SMT2 engines
# (faster for a small FIFO, and for the top since its register block is generated:
# with SMT arrays z3 did not finish the top's induction step 4 in 16 CPU-minutes, with
# bits every top engine takes under a minute)
prove() {
  local name=$1 top=$2 srcs=$3 params=$4 engines=$5 mem=${6:-arrays}
  local read
  read=$(yosys_read "$srcs" "$top" "$params")
  local smt2=$out/$name.smt2 aig=$out/$name.aig
  local need_smt2=0 need_aig=0
  for e in $engines; do
    case $e in
      pdr) need_aig=1 ;;
      *) need_smt2=1 ;;
    esac
  done
  if ((need_smt2)); then
    local memmap=""
    if [[ $mem == bits ]]; then memmap="memory_map; opt -fast;"; fi
    yosys -q -l "$out/$name-smt2.log" -p "$read $memmap async2sync; dffunmap; write_smt2 -wires $smt2" \
      >/dev/null
  fi
  if ((need_aig)); then
    yosys -q -l "$out/$name-aig.log" -p "$read flatten; memory_map; opt -fast; techmap; opt -fast; async2sync; dffunmap; chformal -cover -remove; setundef -anyseq; aigmap; opt_clean; write_aiger -zinit -map $out/$name.aim $aig" \
      >/dev/null
  fi

  for e in $engines; do
    local kind=${e%%:*} n=${e#*:}
    local log=$out/$name-$kind.log
    local t0=$SECONDS ok=0 what
    case $kind in
      bmc)
        what="bmc, $n steps"
        if yosys-smtbmc -s z3 -t "$n" --dump-vcd "$out/$name-bmc.vcd" "$smt2" >"$log" 2>&1 \
            && grep -q 'Status: PASSED' "$log"; then ok=1; fi
        ;;
      ind)
        what="k-induction, k <= $n"
        if yosys-smtbmc -s z3 -i -t "$n" --dump-vcd "$out/$name-ind.vcd" "$smt2" >"$log" 2>&1 \
            && grep -q 'Temporal induction successful' "$log"; then
          ok=1
          what="k-induction, k = $(grep -c 'Trying induction in step' "$log")"
        fi
        ;;
      cover)
        what="cover, $n steps"
        if yosys-smtbmc -s z3 -c -t "$n" "$smt2" >"$log" 2>&1 \
            && grep -q 'Status: PASSED' "$log"; then
          ok=1
          what="cover, $(grep -c 'Reached cover statement' "$log") reached in <= $n steps"
        fi
        ;;
      pdr)
        what="abc pdr"
        if yosys-abc -c "read_aiger $aig; fold; pdr; write_cex -n $out/$name-pdr.cex" >"$log" 2>&1 \
            && grep -q 'Property proved' "$log"; then
          ok=1
          what="abc pdr, $(grep -o 'Invariant F\[[0-9]*\] : [0-9]* clauses' "$log" | head -1)"
        fi
        ;;
      *)
        echo "formal: unknown engine $e" >&2
        exit 2
        ;;
    esac
    local dt=$((SECONDS - t0))
    if ((ok)); then
      printf 'formal: ok    %-12s %-48s %3ds\n' "$name" "$what" "$dt"
    else
      printf 'formal: FAIL  %-12s %-48s %3ds  (log: %s)\n' "$name" "$what" "$dt" "$log" >&2
      grep -E 'failed|FAILED|Assert|Unreached|asserted|ERROR' "$log" | head -8 | sed 's/^/    /' >&2 || true
      failed+=("$name:$kind")
    fi
  done
}

# sel NAME: true if NAME was asked for on the command line, or nothing was
selected=("$@")
sel() {
  ((${#selected[@]} == 0)) && return 0
  local n
  for n in "${selected[@]}"; do
    [[ $n == "$1" ]] && return 0
  done
  return 1
}

if sel axil_slave; then
  prove axil_slave formal_axil_slave \
    "$rtl/pmq_axil_slave.v $fdir/axil_props.v $fdir/formal_axil_slave.v" "" \
    "bmc:20 ind:4 pdr cover:8"
fi
for d in 1 2 3; do
  if sel "fifo_d$d"; then
    engines="pdr"
    if ((d == 2)); then engines="pdr bmc:12 cover:12"; fi
    prove "fifo_d$d" formal_pmq_fifo "$rtl/pmq_fifo.v $fdir/formal_pmq_fifo.v" \
      "-set DEPTH_LOG2 $d" "$engines" bits
  fi
done
if sel top; then
  prove top formal_top "$rtl/*.v $fdir/axil_props.v $fdir/formal_top.v" "" \
    "pdr ind:4 bmc:8 cover:16" bits
fi
if sel top_gen; then
  prove top_gen formal_top "$rtl/*.v $fdir/axil_props.v $fdir/formal_top.v" "-set WITH_GEN 1" \
    "pdr ind:4 bmc:8 cover:16" bits
fi

if ((${#failed[@]})); then
  echo "formal: FAILED ${failed[*]} ($((SECONDS - t_all)) s)" >&2
  exit 1
fi
echo "formal: all proofs passed ($((SECONDS - t_all)) s)"
