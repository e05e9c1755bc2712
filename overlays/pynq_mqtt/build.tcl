# Builds the pynq_mqtt overlay for PYNQ-Z1 and PYNQ-Z2: pynq_mqtt.bit and pynq_mqtt.hwh.
#
#   vivado -mode batch -source overlays/pynq_mqtt/build.tcl \
#          -tclargs [--out DIR] [--build DIR] [--jobs N] [--package-only] [--with-gen]
#
# --with-gen builds the IP with its event generator (WITH_GEN=1, the GEN_* registers), a
# test instrument for on-board benchmarks and doctor's interrupt self-test. By default
# the overlay is lean (WITH_GEN=0, the IP's default: about 185 LUT less; doctor then
# warns that it cannot self-test the interrupt, and a press of a button tests it).
#
# (scripts/build-overlay runs this and also compiles the device-tree overlay.)
#
# 1. packages hdl/rtl as the IP user.org:user:pynq_mqtt_io (package_ip.tcl);
# 2. block design `pynq_mqtt`: the Zynq PS7 with FCLK_CLK0 at 100 MHz, the IP on
#    M_AXI_GP0 at 0x43C0_0000 / 64 KiB, its irq on IRQ_F2P[1] (an xlconcat whose In0
#    is tied low: a stock PYNQ image claims IRQ_F2P[0] for its own `fabric` node), its
#    pins btn[5:0] and led[9:0] external (pynq_mqtt.xdc);
# 3. synthesis, implementation, bitstream; fails on negative slack;
# 4. copies the bitstream and the hardware handoff to DIR as pynq_mqtt.bit and
#    pynq_mqtt.hwh, the pair PYNQ's Overlay() reads.
#
# Written for Vivado 2020.1 or later (the .gen directory layout of 2020.2 and the older
# .srcs layout both work) and Tcl 8.5. Both boards use the xc7z020clg400-1 and the same
# pins, so one bitstream serves both. The PS7 settings below are the ones a PL-only
# overlay depends on: PYNQ keeps the PS as the boot image configured it and only
# programs the FCLK divisors recorded in the .hwh.

set here [file dirname [file normalize [info script]]]
set repo [file normalize [file join $here .. ..]]

# ---- options ---------------------------------------------------------------------
set opt(out) [file join $here out]
set opt(build) [file join $here build]
set opt(jobs) 2
set opt(part) xc7z020clg400-1
set opt(package_only) 0
set opt(with_gen) 0
set args $argv
while {[llength $args] > 0} {
    set arg [lindex $args 0]
    set args [lrange $args 1 end]
    switch -- $arg {
        --out { set opt(out) [file normalize [lindex $args 0]]; set args [lrange $args 1 end] }
        --build { set opt(build) [file normalize [lindex $args 0]]; set args [lrange $args 1 end] }
        --jobs { set opt(jobs) [lindex $args 0]; set args [lrange $args 1 end] }
        --part { set opt(part) [lindex $args 0]; set args [lrange $args 1 end] }
        --package-only { set opt(package_only) 1 }
        --with-gen { set opt(with_gen) 1 }
        default { error "build.tcl: unknown argument $arg (expected --out DIR, --build DIR, --jobs N, --part PART, --package-only, --with-gen)" }
    }
}

# ---- the board configuration --------------------------------------------------------
# Index = register bit = MQTT topic number: inputs 0-3 are BTN0-BTN3, 4-5 are SW0-SW1;
# LEDs 0-3 are LD0-LD3, 4-6 are LD4 blue/green/red, 7-9 are LD5 blue/green/red.
set n_inputs 6
set n_leds 10
set fifo_depth 512
set clk_hz 100000000
set with_gen $opt(with_gen)
set fclk_mhz 100
set ip_base 0x43C00000
set ip_range 65536
set bd_name pynq_mqtt
set ip_cell pynq_mqtt_io_0

source [file join $here package_ip.tcl]

# The newest version of an IP in the catalog among the VLNV prefixes given (Vivado 2024
# also calls the concat and constant cells inline_hdl:ilconcat / ilconstant).
proc pmq_latest_vlnv {args} {
    foreach prefix $args {
        set defs [get_ipdefs -filter "VLNV =~ ${prefix}:*"]
        if {[llength $defs] > 0} {
            return [lindex [lsort -dictionary $defs] end]
        }
    }
    error "pmq: none of $args is in this Vivado's IP catalog"
}

# Fails a run that did not complete, naming its log.
proc pmq_check_run {run} {
    set progress [get_property PROGRESS [get_runs $run]]
    if {$progress ne "100%"} {
        error "pmq: $run did not complete ($progress, [get_property STATUS [get_runs $run]]); see [get_property DIRECTORY [get_runs $run]]/runme.log"
    }
}

file mkdir $opt(build) $opt(out)

# ---- 1. the IP ------------------------------------------------------------------------
set packaged [pmq_package_ip [file join $repo hdl rtl] \
    [file join $repo hdl regmap pynq_mqtt_io.toml] \
    [file join $opt(build) ip pynq_mqtt_io] [file join $opt(build) ip_project] $opt(part)]
set ip_vlnv [lindex $packaged 0]
set ip_axi [lindex $packaged 1]
if {$opt(package_only)} {
    puts "pmq: --package-only: IP repository [file join $opt(build) ip]"
    return
}

# ---- 2. the block design -------------------------------------------------------------
create_project -force pynq_mqtt [file join $opt(build) vivado] -part $opt(part)
set_property target_language Verilog [current_project]
set_property ip_repo_paths [list [file join $opt(build) ip]] [current_project]
update_ip_catalog -rebuild
if {[llength [get_ipdefs $ip_vlnv]] == 0} {
    error "pmq: the packaged IP $ip_vlnv is not in the catalog after update_ip_catalog"
}

create_bd_design $bd_name

# Zynq PS7. PYNQ-Z1/Z2 have a 50 MHz PS reference clock.
set ps [create_bd_cell -type ip -vlnv [pmq_latest_vlnv xilinx.com:ip:processing_system7] ps7]
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
    -config {make_external "FIXED_IO, DDR" apply_board_preset "0" Master "Disable" Slave "Disable"} $ps
set_property -dict [list \
    CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ {50} \
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $fclk_mhz \
    CONFIG.PCW_FCLK0_PERIPHERAL_CLKSRC {IO PLL} \
    CONFIG.PCW_EN_CLK0_PORT {1} \
    CONFIG.PCW_EN_RST0_PORT {1} \
    CONFIG.PCW_USE_M_AXI_GP0 {1} \
    CONFIG.PCW_USE_FABRIC_INTERRUPT {1} \
    CONFIG.PCW_IRQ_F2P_INTR {1} \
] $ps

# The peripheral, with the board's parameters.
set ip [create_bd_cell -type ip -vlnv $ip_vlnv $ip_cell]
set_property -dict [list \
    CONFIG.N_INPUTS $n_inputs \
    CONFIG.N_LEDS $n_leds \
    CONFIG.FIFO_DEPTH $fifo_depth \
    CONFIG.CLK_HZ $clk_hz \
    CONFIG.WITH_GEN $with_gen \
] $ip

# M_AXI_GP0 -> AXI interconnect -> the IP; FCLK_CLK0 clocks all of it, and a
# proc_sys_reset on FCLK_RESET0_N drives the resets.
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
    Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
    Master {/ps7/M_AXI_GP0} Slave "/$ip_cell/$ip_axi" \
    ddr_seg {Auto} intc_ip {New AXI Interconnect} master_apm {0}] \
    [get_bd_intf_pins $ip_cell/$ip_axi]

# irq -> IRQ_F2P[1]; IRQ_F2P[0] tied low.
set concat [create_bd_cell -type ip \
    -vlnv [pmq_latest_vlnv xilinx.com:ip:xlconcat xilinx.com:inline_hdl:ilconcat] irq_concat]
set_property -dict [list CONFIG.NUM_PORTS {2} CONFIG.IN0_WIDTH {1} CONFIG.IN1_WIDTH {1}] $concat
set zero [create_bd_cell -type ip \
    -vlnv [pmq_latest_vlnv xilinx.com:ip:xlconstant xilinx.com:inline_hdl:ilconstant] irq_none]
set_property -dict [list CONFIG.CONST_VAL {0} CONFIG.CONST_WIDTH {1}] $zero
connect_bd_net [get_bd_pins irq_none/dout] [get_bd_pins irq_concat/In0]
connect_bd_net [get_bd_pins $ip_cell/irq] [get_bd_pins irq_concat/In1]
connect_bd_net [get_bd_pins irq_concat/dout] [get_bd_pins ps7/IRQ_F2P]

# Pins (pynq_mqtt.xdc).
create_bd_port -dir I -from [expr {$n_inputs - 1}] -to 0 btn
create_bd_port -dir O -from [expr {$n_leds - 1}] -to 0 led
connect_bd_net [get_bd_ports btn] [get_bd_pins $ip_cell/btn]
connect_bd_net [get_bd_pins $ip_cell/led] [get_bd_ports led]

# Address: 0x43C0_0000, 64 KiB, as the device-tree overlay says. (The AXI automation
# has usually assigned it already; assign_bd_address then only has nothing to do.)
if {[catch {assign_bd_address} err]} {
    puts "pmq: assign_bd_address: $err"
}
set segs [get_bd_addr_segs -of_objects [get_bd_addr_spaces ps7/Data] -filter "NAME =~ *${ip_cell}*"]
if {[llength $segs] != 1} {
    error "pmq: expected one address segment of $ip_cell in ps7/Data, found: $segs"
}
set seg [lindex $segs 0]
set_property range 64K $seg
set_property offset $ip_base $seg
if {[get_property OFFSET $seg] != $ip_base || [pmq_bytes [get_property RANGE $seg]] != $ip_range} {
    error "pmq: $seg is at [get_property OFFSET $seg] / [get_property RANGE $seg], expected $ip_base / $ip_range"
}

validate_bd_design

# The IP counts microseconds with CLK_HZ: its clock must really be that.
set freq [get_property CONFIG.FREQ_HZ [get_bd_pins $ip_cell/s_axi_aclk]]
if {![string is double -strict $freq]} {
    error "pmq: the clock of $ip_cell/s_axi_aclk has no frequency ($freq) after validate_bd_design"
}
if {abs($freq - $clk_hz) > $clk_hz / 1000.0} {
    error "pmq: $ip_cell/s_axi_aclk runs at $freq Hz but the IP is built for CLK_HZ = $clk_hz"
}
# On the board the frequency is not the design's: PYNQ's Overlay() (pynq/pl_server
# and clocks.py) writes only FCLK0's two divisors from the .hwh into the SLCR and keeps
# the I/O PLL as the image booted it: 1000 MHz on the PYNQ-Z1/Z2 images (50 MHz crystal
# x FBDIV 20). Divisors chosen for another PLL frequency would clock the IP, and its
# microsecond counter, wrong without any error.
set pynq_iopll_hz 1000000000
set ps_clksrc [get_property CONFIG.PCW_FCLK0_PERIPHERAL_CLKSRC $ps]
set fclk0_div0 [get_property CONFIG.PCW_FCLK0_PERIPHERAL_DIVISOR0 $ps]
set fclk0_div1 [get_property CONFIG.PCW_FCLK0_PERIPHERAL_DIVISOR1 $ps]
if {$ps_clksrc ne "IO PLL"} {
    error "pmq: FCLK0 comes from '$ps_clksrc', but PYNQ images drive it from the I/O PLL"
}
if {![string is integer -strict $fclk0_div0] || ![string is integer -strict $fclk0_div1] ||
    $fclk0_div0 < 1 || $fclk0_div1 < 1} {
    error "pmq: FCLK0 divisors '$fclk0_div0' x '$fclk0_div1' are not set after validate_bd_design"
}
set on_pynq_hz [expr {double($pynq_iopll_hz) / ($fclk0_div0 * $fclk0_div1)}]
if {abs($on_pynq_hz - $clk_hz) > $clk_hz / 1000.0} {
    error "pmq: FCLK0 divisors $fclk0_div0 x $fclk0_div1 give [expr {round($on_pynq_hz)}] Hz from the\
        1000 MHz I/O PLL of a PYNQ image, not CLK_HZ = $clk_hz (set the design's I/O PLL to 1000 MHz)"
}
puts "pmq: $ip_cell at [get_property OFFSET $seg], clock $freq Hz (FCLK0 = 1000 MHz I/O PLL / $fclk0_div0 / $fclk0_div1 on PYNQ), irq on IRQ_F2P\[1\]"
save_bd_design

# ---- 3. implementation -------------------------------------------------------------
set bd_file [get_files $bd_name.bd]
set_property synth_checkpoint_mode None $bd_file
generate_target all $bd_file
add_files -norecurse [make_wrapper -files $bd_file -top]
set_property top ${bd_name}_wrapper [current_fileset]
add_files -fileset constrs_1 -norecurse [file join $here pynq_mqtt.xdc]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs $opt(jobs)
wait_on_run synth_1
pmq_check_run synth_1
launch_runs impl_1 -to_step write_bitstream -jobs $opt(jobs)
wait_on_run impl_1
pmq_check_run impl_1

set wns [get_property STATS.WNS [get_runs impl_1]]
set whs [get_property STATS.WHS [get_runs impl_1]]
puts "pmq: timing: WNS $wns ns, WHS $whs ns"
if {$wns < 0 || $whs < 0} {
    error "pmq: timing not met (WNS $wns ns, WHS $whs ns); see [get_property DIRECTORY [get_runs impl_1]]"
}
open_run impl_1
report_utilization -file [file join $opt(build) utilization.rpt]
report_timing_summary -file [file join $opt(build) timing_summary.rpt]

# ---- 4. the overlay files ----------------------------------------------------------
set bit [file join [get_property DIRECTORY [get_runs impl_1]] ${bd_name}_wrapper.bit]
set hwh ""
foreach dir {pynq_mqtt.gen pynq_mqtt.srcs} {
    set candidate [file join $opt(build) vivado $dir sources_1 bd $bd_name hw_handoff $bd_name.hwh]
    if {[file exists $candidate]} {
        set hwh $candidate
        break
    }
}
if {![file exists $bit]} {
    error "pmq: no bitstream at $bit"
}
if {$hwh eq ""} {
    error "pmq: no hardware handoff $bd_name.hwh under [file join $opt(build) vivado]"
}
file copy -force $bit [file join $opt(out) pynq_mqtt.bit]
file copy -force $hwh [file join $opt(out) pynq_mqtt.hwh]
set info [open [file join $opt(out) pynq_mqtt.build-info] w]
puts $info "ip $ip_vlnv"
puts $info "part $opt(part)"
puts $info "vivado [version -short]"
puts $info "params N_INPUTS=$n_inputs N_LEDS=$n_leds FIFO_DEPTH=$fifo_depth CLK_HZ=$clk_hz WITH_GEN=$with_gen"
puts $info "address [format 0x%08X $ip_base] range $ip_range irq IRQ_F2P\[1\]"
puts $info "timing WNS $wns WHS $whs"
close $info
puts "pmq: wrote [file join $opt(out) pynq_mqtt.bit] and [file join $opt(out) pynq_mqtt.hwh]"
