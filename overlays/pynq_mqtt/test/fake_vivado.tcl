# Stands in for `vivado -mode batch -source SCRIPT -tclargs ARGS` in plain tclsh, with
# the recording stubs of vivado_stubs.tcl: check.sh puts a `vivado` on the PATH that
# runs this, so that scripts/build-overlay is exercised end to end without Vivado.
#
#   tclsh fake_vivado.tcl SCRIPT [ARGS...]
set here [file dirname [file normalize [info script]]]
set script [lindex $argv 0]
set argv [lrange $argv 1 end]
set argc [llength $argv]
source [file join $here vivado_stubs.tcl]
set ::stub_build [file normalize [opt_value $argv --build [file join [pwd] build]]]
if {[catch {uplevel #0 [list source $script]} err]} {
    puts "ERROR: \[fake vivado\] $err"
    exit 1
}
puts "fake vivado: $script ran ([llength $::calls] Vivado calls stubbed)"
exit 0
