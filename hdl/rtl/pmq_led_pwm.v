// LED outputs with per-LED brightness.
//
// One shared 12-bit counter; its top eight bits are the PWM phase, so the period is
// 4096 clock cycles (24 kHz at 100 MHz, 244 Hz at the simulation's 1 MHz). An LED that
// is on lights while the phase is below its brightness; 255 is steadily on.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_led_pwm #(
    parameter integer N_LEDS = 4
) (
    input  wire                clk,
    input  wire                rst,
    input  wire [N_LEDS-1:0]   on,
    input  wire [8*N_LEDS-1:0] brightness,
    output wire [N_LEDS-1:0]   led
);

    reg [11:0]       count_reg;
    reg [N_LEDS-1:0] led_reg;

    wire [7:0] phase = count_reg[11:4];

    always @(posedge clk) begin
        if (rst) begin
            count_reg <= 12'd0;
        end else begin
            count_reg <= count_reg + 12'd1;
        end
    end

    integer i;
    always @(posedge clk) begin
        for (i = 0; i < N_LEDS; i = i + 1) begin
            led_reg[i] <= !rst && on[i]
                       && (brightness[8*i +: 8] == 8'hFF || phase < brightness[8*i +: 8]);
        end
    end

    assign led = led_reg;

endmodule

`resetall
