# Runs build.tcl in plain tclsh with every Vivado command replaced by a recording stub,
# then checks what the script asked Vivado to do. No Vivado needed.
#
#   tclsh overlays/pynq_mqtt/test/dry_run.tcl WORKDIR
#
# What this proves: build.tcl and package_ip.tcl parse, every branch that runs in a
# normal build runs (no undefined variable or procedure, no Tcl error), every source
# and constraint file they name exists, the PS7, the IP, the address map, the interrupt
# wiring and the external ports are what the overlay promises, the XDC puts each port
# on the pin the board has, and nothing needs Tcl 8.6 (Vivado's Tcl is 8.5).
# What it cannot prove: that Vivado accepts each property name and value. The stubs
# return plausible values (a property store, a catalog with every IP, runs that end at
# 100 % with positive slack) and simulate the two files Vivado would write.

set here [file dirname [file normalize [info script]]]
set overlay [file dirname $here]
set repo [file normalize [file join $overlay .. ..]]
if {[llength $argv] != 1} {
    puts stderr "usage: tclsh dry_run.tcl WORKDIR"
    exit 2
}
set work [file normalize [lindex $argv 0]]
file mkdir $work

set failures 0
proc fail {msg} {
    global failures
    incr failures
    puts "FAIL: $msg"
}
proc pass {msg} {
    puts "ok:   $msg"
}

source [file join $here vivado_stubs.tcl]
set ::stub_build [file join $work build]

proc expect_prop {obj name value what} {
    set key $obj,[string toupper $name]
    if {![info exists ::props($key)]} {
        fail "$what: $name of $obj never set"
    } elseif {$::props($key) ne $value} {
        fail "$what: $name of $obj is $::props($key), expected $value"
    } else {
        pass "$what: $name = $value"
    }
}

# ---- 1. Tcl 8.5: no 8.6-only commands ----------------------------------------------
foreach f [list [file join $overlay build.tcl] [file join $overlay package_ip.tcl]] {
    set fh [open $f r]
    set n 0
    set bad 0
    while {[gets $fh line] >= 0} {
        incr n
        if {[regexp {^\s*#} $line]} { continue }
        if {[regexp {(^|[\[\s;\{])(lmap|try|throw|tailcall|coroutine|yield|lpop|zipfs|oo::\w+)\s} $line -> _ word] ||
            [regexp {string\s+cat\s|file\s+tempfile\s|dict\s+map\s} $line word]} {
            fail "[file tail $f]:$n uses $word, which Vivado's Tcl 8.5 lacks"
            set bad 1
        }
    }
    close $fh
    if {!$bad} { pass "[file tail $f]: no Tcl 8.6-only commands" }
}

# ---- 2. run build.tcl ---------------------------------------------------------------
set out [file join $work out]
set build [file join $work build]
file delete -force $out $build
set argv [list --out $out --build $build --jobs 2]
set argc [llength $argv]
if {[catch {source [file join $overlay build.tcl]} err opts]} {
    fail "build.tcl stopped with an error: $err\n[dict get $opts -errorinfo]"
    puts "dry run: $failures failure(s)"
    exit 1
}
pass "build.tcl ran to the end under tclsh [info patchlevel] ([llength $::calls] Vivado calls)"
set main_calls $::calls
array set main_props [array get ::props]

# the FCLK0 check can fail: a design whose I/O PLL is not PYNQ's 1000 MHz gets divisors
# that clock the IP wrong on a PYNQ image (1200 MHz / 12 = 83.3 MHz there)
set ::calls {}
array unset ::props
set ::stub_iopll_mhz 1200
set argv [list --out [file join $work out-pll] --build [file join $work build-pll] --jobs 2]
set argc [llength $argv]
if {[catch {source [file join $overlay build.tcl]} err]} {
    if {[string match "*FCLK0 divisors 12 x 1 give 83333333 Hz*" $err]} {
        pass "FCLK0 check: divisors for a 1200 MHz I/O PLL are refused ($err)"
    } else {
        fail "FCLK0 check: build.tcl failed for another reason: $err"
    }
} else {
    fail "FCLK0 check: build.tcl accepted divisors that give 83.3 MHz on a PYNQ image"
}
unset ::stub_iopll_mhz
set ::calls $main_calls
array unset ::props
array set ::props [array get main_props]

# every file handed to Vivado that lives in the repository exists
set named 0
foreach c [calls_of add_files] {
    foreach f [lindex $c end] {
        if {[string first $build $f] == 0} { continue }
        incr named
        if {![file exists $f]} { fail "add_files names $f, which does not exist" }
    }
}
set rtl [lsort [concat [glob -directory [file join $repo hdl rtl] *.v] [glob -directory [file join $repo hdl rtl] *.vh]]]
set packaged [lsort [lindex [lindex [calls_of add_files] 0] end]]
if {$packaged ne $rtl} {
    fail "the IP packages [llength $packaged] files, hdl/rtl has [llength $rtl]"
} else {
    pass "the IP packages all [llength $rtl] files of hdl/rtl (.v and .vh)"
}
pass "$named repository files named to Vivado, all present"
set xdc [file join $overlay pynq_mqtt.xdc]
set constrs 0
foreach c [calls_of add_files] {
    if {[opt_value $c -fileset] eq "constrs_1" && [lindex $c end] eq $xdc} { set constrs 1 }
}
if {$constrs} { pass "pynq_mqtt.xdc added as the constraints" } else { fail "pynq_mqtt.xdc is not added to constrs_1" }

# the IP's interfaces and parameters
expect_prop s_axi_aresetn/POLARITY VALUE ACTIVE_LOW "reset"
expect_prop irq/SENSITIVITY VALUE LEVEL_HIGH "interrupt"
expect_prop block_reg0 RANGE 65536 "register block"
if {[llength [calls_of ipx::associate_bus_interfaces]] == 2} {
    pass "clock associated with the AXI interface and the reset"
} else {
    fail "expected two ipx::associate_bus_interfaces calls"
}
foreach p {N_INPUTS N_LEDS FIFO_DEPTH CLK_HZ WITH_GEN} {
    if {[info exists ::props(param_$p,VALUE_VALIDATION_TYPE)]} {
        pass "parameter $p exposed with validation $::props(param_$p,VALUE_VALIDATION_TYPE)"
    } else {
        fail "parameter $p has no validation"
    }
}
expect_prop param_C_S_AXI_ADDR_WIDTH ENABLEMENT_VALUE false "address width"
# every register and field of the IP-XACT description (pynq_mqtt_io_regs.xml, generated
# from the register map) is added to the packaged IP's address block, with its offset,
# access, reset and fields, and nothing else
set fh [open [file join $overlay pynq_mqtt_io_regs.xml] r]
set xml [read $fh]
close $fh
set want {}
set nfields 0
set bad 0
foreach {_ body} [regexp -all -inline {<spirit:register>(.*?)</spirit:register>} $xml] {
    regexp {<spirit:name>([^<]*)</spirit:name>} $body -> name
    regexp {<spirit:addressOffset>([^<]*)</spirit:addressOffset>} $body -> offset
    lappend want $name
    set reg reg_$name
    foreach {prop value} [list ADDRESS_OFFSET $offset SIZE 32] {
        if {![info exists ::props($reg,$prop)] || $::props($reg,$prop) != $value} {
            fail "register $name: $prop not $value"
            incr bad
        }
    }
    if {[regexp {<spirit:reset>\s*<spirit:value>([^<]*)</spirit:value>} $body -> reset] &&
        (![info exists ::props($reg,RESET_VALUE)] || $::props($reg,RESET_VALUE) != $reset)} {
        fail "register $name: reset value not $reset"
        incr bad
    }
    foreach {_ fbody} [regexp -all -inline {<spirit:field>(.*?)</spirit:field>} $body] {
        regexp {<spirit:name>([^<]*)</spirit:name>} $fbody -> fname
        incr nfields
        foreach {tag prop} {bitOffset BIT_OFFSET bitWidth BIT_WIDTH access ACCESS
                            modifiedWriteValue MODIFIED_WRITE_VALUE readAction READ_ACTION} {
            if {[regexp "<spirit:$tag>(\[^<\]*)</spirit:$tag>" $fbody -> value] &&
                (![info exists ::props($reg/$fname,$prop)] || $::props($reg/$fname,$prop) ne $value)} {
                fail "register $name field $fname: $prop not $value"
                incr bad
            }
        }
    }
}
set added {}
foreach c [calls_of ipx::add_register] {
    lappend added [lindex $c 0]
    if {[lindex $c 1] ne "block_reg0"} { fail "register [lindex $c 0] added to [lindex $c 1], not reg0"; incr bad }
}
if {[llength $want] < 30} {
    fail "pynq_mqtt_io_regs.xml describes only [llength $want] registers"
} elseif {$added ne $want} {
    fail "the IP's registers are {$added}, the IP-XACT description has {$want}"
} elseif {[llength [calls_of ipx::add_field]] != $nfields} {
    fail "[llength [calls_of ipx::add_field]] fields added, the IP-XACT description has $nfields"
} elseif {!$bad} {
    pass "register map applied to the IP: [llength $want] registers, $nfields fields, as in pynq_mqtt_io_regs.xml"
}
expect_prop reg_EVT_POP/VALID READ_ACTION modify "EVT_POP pops on read"
expect_prop reg_IRQ_STATUS/OVERFLOW MODIFIED_WRITE_VALUE oneToClear "IRQ_STATUS.OVERFLOW is write-1-to-clear"
expect_prop core VERSION [pmq_regmap_version [file join $repo hdl regmap pynq_mqtt_io.toml]] "IP version follows the register map"

# the PS7
foreach {k v} {
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100
    CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ 50
    CONFIG.PCW_EN_CLK0_PORT 1
    CONFIG.PCW_USE_M_AXI_GP0 1
    CONFIG.PCW_USE_FABRIC_INTERRUPT 1
    CONFIG.PCW_IRQ_F2P_INTR 1
} {
    expect_prop /ps7 $k $v "PS7"
}
# the IP instance
# (lean by default: no event generator unless --with-gen)
foreach {k v} {CONFIG.N_INPUTS 6 CONFIG.N_LEDS 10 CONFIG.FIFO_DEPTH 512 CONFIG.CLK_HZ 100000000 CONFIG.WITH_GEN 0} {
    expect_prop /pynq_mqtt_io_0 $k $v "IP instance"
}
# the address
expect_prop /ps7/Data/SEG_pynq_mqtt_io_0_reg0 OFFSET 0x43C00000 "address"
expect_prop /ps7/Data/SEG_pynq_mqtt_io_0_reg0 RANGE 64K "address"
set auto [lindex [calls_of apply_bd_automation] 1]
if {[opt_value [opt_value $auto -config] Master] eq "/ps7/M_AXI_GP0" &&
    [opt_value [opt_value $auto -config] Slave] eq "/pynq_mqtt_io_0/s_axi"} {
    pass "the IP's AXI slave hangs off M_AXI_GP0"
} else {
    fail "AXI automation is not M_AXI_GP0 -> pynq_mqtt_io_0/s_axi: $auto"
}
# the interrupt: irq -> concat In1, constant 0 -> In0, concat -> IRQ_F2P
set nets [calls_of connect_bd_net]
foreach {from to what} {
    /irq_none/dout /irq_concat/In0 "IRQ_F2P[0] tied to the constant"
    /pynq_mqtt_io_0/irq /irq_concat/In1 "irq on IRQ_F2P[1]"
    /irq_concat/dout /ps7/IRQ_F2P "the concat drives IRQ_F2P"
    /btn /pynq_mqtt_io_0/btn "btn port to the IP"
    /pynq_mqtt_io_0/led /led "the IP to the led port"
} {
    set found 0
    foreach n $nets {
        if {[lindex $n 0] eq $from && [lindex $n 1] eq $to} { set found 1 }
    }
    if {$found} { pass "net: $what" } else { fail "net missing: $what ($from -> $to)" }
}
expect_prop /irq_none CONFIG.CONST_VAL 0 "IRQ_F2P\[0\]"
expect_prop /irq_concat CONFIG.NUM_PORTS 2 "interrupt concat"
# the ports
set ports {}
foreach c [calls_of create_bd_port] {
    dict set ports [lindex $c end] [list [opt_value $c -dir] [opt_value $c -from] [opt_value $c -to]]
}
foreach {name want} {btn {I 5 0} led {O 9 0}} {
    if {[dict exists $ports $name] && [dict get $ports $name] eq $want} {
        pass "port $name: $want"
    } else {
        fail "port $name: expected $want, got [expr {[dict exists $ports $name] ? [dict get $ports $name] : {none}}]"
    }
}
# the outputs
foreach f {pynq_mqtt.bit pynq_mqtt.hwh pynq_mqtt.build-info} {
    if {[file exists [file join $out $f]]} { pass "wrote $f" } else { fail "did not write $f" }
}

# ---- 3. the XDC: every port on its board pin ------------------------------------------
# PYNQ-Z1 and PYNQ-Z2 (identical for these): buttons, switches, LEDs, RGB LEDs b/g/r.
set expected_pins {
    btn[0] D19 btn[1] D20 btn[2] L20 btn[3] L19 btn[4] M20 btn[5] M19
    led[0] R14 led[1] P14 led[2] N16 led[3] M14
    led[4] L15 led[5] G17 led[6] N15 led[7] G14 led[8] L14 led[9] M15
}
set ::calls {}
array unset ::props
proc get_ports {pattern} { return $pattern }
source $xdc
rename get_ports {}
set seen {}
foreach {port pin} $expected_pins {
    if {![info exists ::props($port,PACKAGE_PIN)]} {
        fail "XDC: $port has no PACKAGE_PIN"
        continue
    }
    if {$::props($port,PACKAGE_PIN) ne $pin} {
        fail "XDC: $port on $::props($port,PACKAGE_PIN), expected $pin"
    }
    if {[info exists ::props($port,IOSTANDARD)] && $::props($port,IOSTANDARD) eq "LVCMOS33"} {
    } else {
        fail "XDC: $port is not LVCMOS33"
    }
    lappend seen $port
}
set constrained {}
foreach key [array names ::props *,PACKAGE_PIN] {
    lappend constrained [lindex [split $key ,] 0]
}
if {[lsort $constrained] ne [lsort $seen]} {
    fail "XDC constrains [lsort $constrained], expected exactly [lsort $seen]"
} else {
    pass "XDC: [llength $seen] ports (btn\[5:0\], led\[9:0\]) on the PYNQ-Z1/Z2 pins, LVCMOS33"
}

puts ""
if {$failures} {
    puts "dry run: $failures failure(s)"
    exit 1
}
puts "dry run: all checks passed"
