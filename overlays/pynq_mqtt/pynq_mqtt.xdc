## Pins of the pynq_mqtt overlay on PYNQ-Z1 and PYNQ-Z2 (both xc7z020clg400-1; these
## pins are the same on both boards). Every pin is a 3.3 V bank: LVCMOS33.
##
## The block design (build.tcl) makes the IP's ports external as btn[5:0] and led[9:0].
## Index = register bit = MQTT topic number (button/<i>, led/<i>):
##
##   btn[0..3]  push buttons BTN0..BTN3          btn[4..5]  slide switches SW0, SW1
##   led[0..3]  green LEDs LD0..LD3
##   led[4..6]  RGB LED LD4 blue, green, red     led[7..9]  RGB LED LD5 blue, green, red
##
## (blue, green, red is the order of PYNQ's base overlay and its RGBLED driver: colour
## value 1 = blue, 2 = green, 4 = red.)
##
## The 125 MHz sysclk on H16 is not used: the IP runs on FCLK_CLK0 (100 MHz) from the PS,
## whose clock constraint the processing_system7 IP supplies.

## Push buttons BTN0..BTN3 (active high)
set_property -dict {PACKAGE_PIN D19 IOSTANDARD LVCMOS33} [get_ports {btn[0]}]
set_property -dict {PACKAGE_PIN D20 IOSTANDARD LVCMOS33} [get_ports {btn[1]}]
set_property -dict {PACKAGE_PIN L20 IOSTANDARD LVCMOS33} [get_ports {btn[2]}]
set_property -dict {PACKAGE_PIN L19 IOSTANDARD LVCMOS33} [get_ports {btn[3]}]

## Slide switches SW0, SW1 (read 1 when switched on)
set_property -dict {PACKAGE_PIN M20 IOSTANDARD LVCMOS33} [get_ports {btn[4]}]
set_property -dict {PACKAGE_PIN M19 IOSTANDARD LVCMOS33} [get_ports {btn[5]}]

## Green LEDs LD0..LD3
set_property -dict {PACKAGE_PIN R14 IOSTANDARD LVCMOS33} [get_ports {led[0]}]
set_property -dict {PACKAGE_PIN P14 IOSTANDARD LVCMOS33} [get_ports {led[1]}]
set_property -dict {PACKAGE_PIN N16 IOSTANDARD LVCMOS33} [get_ports {led[2]}]
set_property -dict {PACKAGE_PIN M14 IOSTANDARD LVCMOS33} [get_ports {led[3]}]

## RGB LED LD4: blue, green, red
set_property -dict {PACKAGE_PIN L15 IOSTANDARD LVCMOS33} [get_ports {led[4]}]
set_property -dict {PACKAGE_PIN G17 IOSTANDARD LVCMOS33} [get_ports {led[5]}]
set_property -dict {PACKAGE_PIN N15 IOSTANDARD LVCMOS33} [get_ports {led[6]}]

## RGB LED LD5: blue, green, red
set_property -dict {PACKAGE_PIN G14 IOSTANDARD LVCMOS33} [get_ports {led[7]}]
set_property -dict {PACKAGE_PIN L14 IOSTANDARD LVCMOS33} [get_ports {led[8]}]
set_property -dict {PACKAGE_PIN M15 IOSTANDARD LVCMOS33} [get_ports {led[9]}]

## Buttons and switches are asynchronous by design (the IP synchronizes them with two
## flip-flops), and LEDs have no timing requirement: no path to or from these pins is
## timed.
set_false_path -from [get_ports {btn[*]}]
set_false_path -to [get_ports {led[*]}]
