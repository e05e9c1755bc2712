# Recording stubs for every Vivado command, for running build.tcl in plain tclsh.
# Sourced by dry_run.tcl and fake_vivado.tcl. Set ::stub_build to the --build
# directory first: the stubs answer with paths under it, and `wait_on_run impl_1`
# writes there the two files Vivado would (the bitstream and the hardware handoff).
#
# Every command Tcl does not know is logged in ::calls and answered by stub_answer:
# set_property/get_property share a property store (::props), the IP catalog has every
# xilinx.com:ip, runs end at 100 % with positive slack, validate_bd_design propagates
# FCLK_CLK0's frequency to the IP's clock pin.

set ::calls {}
array set ::props {}
rename unknown ::tcl_unknown
proc unknown {cmd args} {
    if {[info exists ::auto_index($cmd)]} {
        return [uplevel 1 [list ::tcl_unknown $cmd {*}$args]]
    }
    lappend ::calls [concat [list $cmd] $args]
    return [stub_answer $cmd $args]
}

# The value of option $name in an argument list, or $default.
proc opt_value {arglist name {default ""}} {
    set i [lsearch -exact $arglist $name]
    if {$i < 0} {
        return $default
    }
    return [lindex $arglist [expr {$i + 1}]]
}

proc stub_answer {cmd arglist} {
    set build $::stub_build
    switch -- $cmd {
        set_property {
            # set_property NAME VALUE OBJECTS | set_property -dict LIST OBJECTS
            if {[lindex $arglist 0] eq "-dict"} {
                set objs [lindex $arglist 2]
                foreach {k v} [lindex $arglist 1] {
                    foreach o $objs { set ::props($o,[string toupper $k]) $v }
                }
            } else {
                foreach o [lindex $arglist 2] {
                    set ::props($o,[string toupper [lindex $arglist 0]]) [lindex $arglist 1]
                }
            }
            return ""
        }
        get_property {
            set name [string toupper [lindex $arglist 0]]
            set obj [lindex $arglist 1]
            if {[info exists ::props($obj,$name)]} {
                return $::props($obj,$name)
            }
            switch -glob -- $name {
                BUS_TYPE_VLNV {
                    switch -- $obj {
                        s_axi { return xilinx.com:interface:aximm:1.0 }
                        s_axi_aclk { return xilinx.com:signal:clock:1.0 }
                        s_axi_aresetn { return xilinx.com:signal:reset:1.0 }
                        irq { return xilinx.com:signal:interrupt:1.0 }
                    }
                    return ""
                }
                NAME { return $obj }
                CONFIG.FREQ_HZ {
                    # what validate_bd_design propagates from FCLK_CLK0
                    if {[info exists ::props(/ps7,CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ)]} {
                        return [expr {int($::props(/ps7,CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ) * 1000000)}]
                    }
                    return 50000000
                }
                CONFIG.PCW_FCLK0_PERIPHERAL_DIVISOR0 -
                CONFIG.PCW_FCLK0_PERIPHERAL_DIVISOR1 {
                    # what Vivado derives: the divisor pair (each 1..63) closest to the
                    # requested FCLK0 from the design's I/O PLL (::stub_iopll_mhz,
                    # default 1000 as on PYNQ), the smaller second divisor on a tie
                    set iopll [expr {[info exists ::stub_iopll_mhz] ? $::stub_iopll_mhz : 1000}]
                    set want 100.0
                    if {[info exists ::props(/ps7,CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ)]} {
                        set want $::props(/ps7,CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ)
                    }
                    set best {}
                    for {set d1 1} {$d1 < 64} {incr d1} {
                        for {set d0 1} {$d0 < 64} {incr d0} {
                            set err [expr {abs(double($iopll) / ($d0 * $d1) - $want)}]
                            if {$best eq {} || $err < [lindex $best 0] - 1e-9} {
                                set best [list $err $d0 $d1]
                            }
                        }
                    }
                    return [lindex $best [expr {[string match *DIVISOR0 $name] ? 1 : 2}]]
                }
                PROGRESS { return 100% }
                STATUS { return "write_bitstream Complete!" }
                STATS.WNS { return 2.345 }
                STATS.WHS { return 0.051 }
                DIRECTORY { return [file join $build vivado pynq_mqtt.runs [lindex $arglist 1]] }
                VALUE { return "" }
            }
            return ""
        }
        get_ipdefs {
            set filter [opt_value $arglist -filter]
            if {[regexp {VLNV =~ (\S+):\*} $filter -> prefix]} {
                # the catalog has xilinx.com:ip:* only (as Vivado <= 2023.2)
                if {[string match xilinx.com:ip:* $prefix]} {
                    return [list $prefix:1.0 $prefix:2.1 $prefix:2.10]
                }
                return {}
            }
            return [lindex $arglist end]
        }
        ipx::current_core { return core }
        ipx::get_bus_interfaces { return {s_axi s_axi_aclk s_axi_aresetn irq} }
        ipx::get_bus_parameters { return {} }
        ipx::add_bus_parameter { return "[lindex $arglist 1]/[lindex $arglist 0]" }
        ipx::get_memory_maps { return {} }
        ipx::add_memory_map { return "map_[lindex $arglist 0]" }
        ipx::get_address_blocks { return {} }
        ipx::add_address_block { return "block_[lindex $arglist 0]" }
        ipx::get_user_parameters { return "param_[lindex $arglist 0]" }
        ipx::get_registers { return {} }
        ipx::add_register { return "reg_[lindex $arglist 0]" }
        ipx::add_field { return "[lindex $arglist 1]/[lindex $arglist 0]" }
        create_bd_cell { return "/[lindex $arglist end]" }
        get_bd_cells -
        get_bd_pins -
        get_bd_intf_pins -
        get_bd_ports { return "/[lindex $arglist end]" }
        get_bd_addr_spaces { return "/[lindex $arglist end]" }
        get_bd_addr_segs { return /ps7/Data/SEG_pynq_mqtt_io_0_reg0 }
        get_files { return [lindex $arglist end] }
        get_runs { return [lindex $arglist end] }
        current_project { return pynq_mqtt }
        current_fileset { return sources_1 }
        make_wrapper {
            return [file join $build vivado pynq_mqtt.gen sources_1 bd pynq_mqtt hdl pynq_mqtt_wrapper.v]
        }
        wait_on_run {
            # what Vivado leaves behind after a successful implementation
            if {[lindex $arglist 0] eq "impl_1"} {
                set dir [file join $build vivado pynq_mqtt.runs impl_1]
                file mkdir $dir
                set fh [open [file join $dir pynq_mqtt_wrapper.bit] w]; puts $fh bit; close $fh
                set hw [file join $build vivado pynq_mqtt.gen sources_1 bd pynq_mqtt hw_handoff]
                file mkdir $hw
                set fh [open [file join $hw pynq_mqtt.hwh] w]; puts $fh hwh; close $fh
            }
            return ""
        }
        version { return 2022.1 }
    }
    return ""
}

# Calls to $cmd, each as its argument list.
proc calls_of {cmd} {
    set out {}
    foreach c $::calls {
        if {[lindex $c 0] eq $cmd} {
            lappend out [lrange $c 1 end]
        }
    }
    return $out
}

