// Per-input debouncer with a lockout, programmable at run time in microseconds.
//
// An input's first change passes at once (one clock later), so its event carries the
// exact time of first contact. The output then holds for LOCK_US microseconds whatever
// the contact does; at the end, a level that differs from the output passes as the next
// change and starts a new lockout. A contact that bounces for less than LOCK_US thus
// gives one change per press and one per release. LOCK_US = 0 turns it off (every
// change passes, one clock later). The lockout is counted in whole microsecond ticks:
// LOCK_US + 1 of them, as the first may come one clock after the change, so it lasts
// between LOCK_US and LOCK_US + 1 microseconds.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_debounce #(
    parameter integer WIDTH = 4,
    parameter integer TIME_WIDTH = 16
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  tick_us,
    input  wire [TIME_WIDTH-1:0] lock_us,
    input  wire [WIDTH-1:0]      in,
    output wire [WIDTH-1:0]      out
);

    genvar i;
    generate
        for (i = 0; i < WIDTH; i = i + 1) begin : g_input
            reg                  out_reg;
            reg [TIME_WIDTH:0]   left_reg;   // ticks left, up to lock_us + 1

            always @(posedge clk) begin
                if (rst) begin
                    out_reg <= in[i];
                end else if (left_reg == {(TIME_WIDTH + 1){1'b0}} && in[i] != out_reg) begin
                    out_reg <= in[i];
                end
            end

            always @(posedge clk) begin
                if (rst) begin
                    left_reg <= {(TIME_WIDTH + 1){1'b0}};
                end else if (left_reg == {(TIME_WIDTH + 1){1'b0}}) begin
                    if (in[i] != out_reg && lock_us != {TIME_WIDTH{1'b0}}) begin
                        left_reg <= {1'b0, lock_us} + 1'b1;
                    end
                end else if (tick_us) begin
                    left_reg <= left_reg - 1'b1;
                end
            end

            assign out[i] = out_reg;
        end
    endgenerate

endmodule

`resetall
