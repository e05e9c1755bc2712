# Packages hdl/rtl as the Vivado IP user.org:user:pynq_mqtt_io:<register map version>.
#
# Sourced by build.tcl; defines pmq_package_ip and its helpers, runs nothing by itself.
# Written for Vivado 2020.1 or later in batch mode, and for plain Tcl 8.5 (Vivado's
# interpreter): no lmap, try, string cat or other Tcl 8.6 commands.
#
# The IP-XACT description is inferred from the Verilog top `pynq_mqtt_io`, whose ports
# follow Xilinx naming, and then made explicit, so that a Vivado version that infers less
# still yields the same IP:
#   s_axi_*         one AXI4-Lite slave interface with a 64 KiB register block
#   s_axi_aclk      its clock                s_axi_aresetn  its reset, active low
#   irq             an interrupt, level sensitive, active high
#   N_INPUTS, N_LEDS, FIFO_DEPTH, CLK_HZ     user parameters, with their legal ranges
#   C_S_AXI_ADDR_WIDTH                       fixed at 16 (the 64 KiB window)

# Reads the register-map version ("major.minor") from hdl/regmap/pynq_mqtt_io.toml, so
# that the IP's version follows the register map it implements.
proc pmq_regmap_version {toml} {
    set fh [open $toml r]
    set text [read $fh]
    close $fh
    if {![regexp -line {^version_major\s*=\s*([0-9]+)} $text -> major] ||
        ![regexp -line {^version_minor\s*=\s*([0-9]+)} $text -> minor]} {
        error "pmq: no version_major/version_minor in $toml"
    }
    return "$major.$minor"
}

# Bytes from a Vivado range value such as 65536, 64K or 1M.
proc pmq_bytes {value} {
    if {[regexp {^([0-9]+)([KMG]?)$} $value -> n unit]} {
        switch -- $unit {
            K { return [expr {$n * 1024}] }
            M { return [expr {$n * 1024 * 1024}] }
            G { return [expr {$n * 1024 * 1024 * 1024}] }
            default { return $n }
        }
    }
    return [expr {$value + 0}]
}

# The bus interface of $core whose bus type is xilinx.com:<library>:<type>:*, or "".
proc pmq_find_intf {core type} {
    foreach intf [ipx::get_bus_interfaces -of_objects $core] {
        if {[string match "xilinx.com:*:${type}:*" [get_property BUS_TYPE_VLNV $intf]]} {
            return $intf
        }
    }
    return ""
}

# Makes sure an interface of bus type $type exists; infers it with $infer_cmd otherwise.
proc pmq_ensure_intf {core type infer_cmd what} {
    set intf [pmq_find_intf $core $type]
    if {$intf eq ""} {
        puts "pmq: $what was not inferred by package_project; inferring it explicitly"
        eval $infer_cmd
        set intf [pmq_find_intf $core $type]
    }
    if {$intf eq ""} {
        error "pmq: the packaged IP has no $what interface; check the port names of hdl/rtl/pynq_mqtt_io.v"
    }
    return $intf
}

# Sets bus parameter $name of $intf to $value, adding the parameter if needed.
proc pmq_bus_param {intf name value} {
    set param [ipx::get_bus_parameters $name -of_objects $intf]
    if {$param eq ""} {
        set param [ipx::add_bus_parameter $name $intf]
    }
    set_property value $value $param
}

# True if the bus parameter $name of $intf lists $item (colon separated).
proc pmq_bus_param_has {intf name item} {
    set param [ipx::get_bus_parameters $name -of_objects $intf]
    if {$param eq ""} {
        return 0
    }
    return [expr {[lsearch -exact [split [get_property value $param] :] $item] >= 0}]
}

# Exposes user parameter $name with a display name and a legal range or list.
proc pmq_user_param {core name display kind limits} {
    set param [ipx::get_user_parameters $name -of_objects $core]
    if {$param eq ""} {
        error "pmq: parameter $name of pynq_mqtt_io was not exposed by package_project"
    }
    set_property display_name $display $param
    if {$kind eq "range"} {
        set_property value_validation_type range_long $param
        set_property value_validation_range_minimum [lindex $limits 0] $param
        set_property value_validation_range_maximum [lindex $limits 1] $param
    } elseif {$kind eq "list"} {
        set_property value_validation_type list $param
        set_property value_validation_list $limits $param
    }
    return $param
}

# Packages the RTL in $rtl_dir as an IP into $ip_dir, using a throw-away project in
# $proj_dir for part $part. Returns a list: the IP's VLNV, the name of its AXI interface.
proc pmq_package_ip {rtl_dir regmap ip_dir proj_dir part} {
    set version [pmq_regmap_version $regmap]
    set vlnv "user.org:user:pynq_mqtt_io:$version"

    set sources [lsort [glob -nocomplain -directory $rtl_dir *.v]]
    set headers [lsort [glob -nocomplain -directory $rtl_dir *.vh]]
    if {[llength $sources] == 0} {
        error "pmq: no Verilog sources in $rtl_dir"
    }
    if {[lsearch -exact $sources [file join $rtl_dir pynq_mqtt_io.v]] < 0} {
        error "pmq: the top $rtl_dir/pynq_mqtt_io.v is missing"
    }

    file delete -force $ip_dir $proj_dir
    file mkdir $ip_dir
    create_project -force pmq_ip $proj_dir -part $part
    set_property target_language Verilog [current_project]
    add_files -norecurse [concat $sources $headers]
    foreach header $headers {
        set_property file_type {Verilog Header} [get_files $header]
    }
    set_property include_dirs [list $rtl_dir] [current_fileset]
    set_property top pynq_mqtt_io [current_fileset]
    update_compile_order -fileset sources_1

    # The sources stay where they are (hdl/rtl is the one copy); component.xml refers
    # to them by relative path.
    ipx::package_project -root_dir $ip_dir -vendor user.org -library user -taxonomy /UserIP
    set core [ipx::current_core]
    set_property vendor user.org $core
    set_property library user $core
    set_property name pynq_mqtt_io $core
    set_property version $version $core
    set_property display_name "pynq_mqtt_io (buttons to timestamped events, LEDs)" $core
    set_property description "Buttons and switches to timestamped, sequenced events in a FIFO with a coalescing interrupt; LEDs with PWM. One AXI4-Lite slave; register map version $version (docs/registers.md)." $core
    set_property vendor_display_name "pynq-mqtt" $core

    set axi [pmq_ensure_intf $core aximm \
        [list ipx::infer_bus_interfaces xilinx.com:interface:aximm_rtl:1.0 $core] "AXI4-Lite slave"]
    set clk [pmq_ensure_intf $core clock \
        [list ipx::infer_bus_interface s_axi_aclk xilinx.com:signal:clock_rtl:1.0 $core] "clock"]
    set rst [pmq_ensure_intf $core reset \
        [list ipx::infer_bus_interface s_axi_aresetn xilinx.com:signal:reset_rtl:1.0 $core] "reset"]
    set irq [pmq_ensure_intf $core interrupt \
        [list ipx::infer_bus_interface irq xilinx.com:signal:interrupt_rtl:1.0 $core] "interrupt"]
    set axi_name [get_property NAME $axi]
    set clk_name [get_property NAME $clk]
    set rst_name [get_property NAME $rst]

    pmq_bus_param $rst POLARITY ACTIVE_LOW
    pmq_bus_param $irq SENSITIVITY LEVEL_HIGH
    if {![pmq_bus_param_has $clk ASSOCIATED_BUSIF $axi_name]} {
        ipx::associate_bus_interfaces -busif $axi_name -clock $clk_name $core
    }
    if {![pmq_bus_param_has $clk ASSOCIATED_RESET $rst_name]} {
        ipx::associate_bus_interfaces -clock $clk_name -reset $rst_name $core
    }

    # One 64 KiB register block behind the slave (C_S_AXI_ADDR_WIDTH = 16).
    set maps [ipx::get_memory_maps -of_objects $core]
    if {[llength $maps] == 0} {
        set maps [ipx::add_memory_map $axi_name $core]
        set_property slave_memory_map_ref $axi_name $axi
    }
    set map [lindex $maps 0]
    set blocks [ipx::get_address_blocks -of_objects $map]
    if {[llength $blocks] == 0} {
        set blocks [ipx::add_address_block reg0 $map]
    }
    set block [lindex $blocks 0]
    if {[catch {set_property range 65536 $block} err]} {
        puts "pmq: range of [get_property NAME $block]: $err"
    }
    set_property width 32 $block
    if {[pmq_bytes [get_property RANGE $block]] != 65536} {
        error "pmq: the register block of the IP spans [get_property RANGE $block] bytes, not 65536"
    }

    pmq_user_param $core N_INPUTS "Inputs (buttons, switches)" range {1 32}
    pmq_user_param $core N_LEDS "LEDs" range {1 32}
    pmq_user_param $core FIFO_DEPTH "Event FIFO depth" list \
        {4 8 16 32 64 128 256 512 1024 2048 4096 8192 16384 32768}
    pmq_user_param $core CLK_HZ "s_axi_aclk frequency in Hz (a whole number of MHz)" range \
        {1000000 500000000}
    set width [pmq_user_param $core C_S_AXI_ADDR_WIDTH "AXI address width (64 KiB window)" none {}]
    set_property enablement_value false $width

    ipx::create_xgui_files $core
    ipx::update_checksums $core
    ipx::check_integrity $core
    ipx::save_core $core
    close_project
    puts "pmq: packaged $vlnv into $ip_dir (AXI interface $axi_name)"
    return [list $vlnv $axi_name]
}
