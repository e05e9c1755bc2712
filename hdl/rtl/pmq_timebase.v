// Free-running microsecond counter: a prescaler of CLK_HZ / 1 MHz clock cycles and a
// 32-bit count of microseconds (wraps every 71.6 minutes; the host extends it).
// CLK_HZ must be a whole number of MHz for exact microseconds.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_timebase #(
    parameter integer CLK_HZ = 100000000
) (
    input  wire        clk,
    input  wire        rst,
    output wire [31:0] time_us,
    output wire        tick      // one cycle per microsecond, as time_us advances
);

    localparam integer TICKS = (CLK_HZ >= 1000000) ? CLK_HZ / 1000000 : 1;
    localparam integer PW = (TICKS > 1) ? $clog2(TICKS) : 1;
    localparam [PW-1:0] LAST = TICKS[PW-1:0] - 1'b1;

    reg [PW-1:0] pre_reg;
    reg [31:0]   time_reg;
    // the tick is a register (high while pre_reg is LAST), not a compare: a compare that
    // enables all 32 time bits is copied by the LUT mapper into every bit (30 LUTs more)
    reg          tick_reg;

    always @(posedge clk) begin
        if (rst || tick_reg) begin
            pre_reg <= {PW{1'b0}};
        end else begin
            pre_reg <= pre_reg + 1'b1;
        end
    end

    always @(posedge clk) begin
        if (TICKS == 1) begin
            tick_reg <= 1'b1;
        end else if (rst || tick_reg) begin
            tick_reg <= 1'b0;
        end else begin
            tick_reg <= (pre_reg == LAST - 1'b1);
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            time_reg <= 32'd0;
        end else if (tick_reg) begin
            time_reg <= time_reg + 32'd1;
        end
    end

    assign time_us = time_reg;
    assign tick = tick_reg;

endmodule

`resetall
