// Per-input debouncer with a lockout, programmable at run time in microseconds.
//
// An input's first change passes at once (one clock later), so its event carries the
// exact time of first contact. The output then holds for LOCK_US microseconds whatever
// the contact does; at the end, a level that differs from the output passes as the next
// change and starts a new lockout. A contact that bounces for less than LOCK_US thus
// gives one change per press and one per release. LOCK_US = 0 turns it off (every
// change passes, one clock later). The lockout is counted in whole microsecond ticks:
// it ends at the (LOCK_US + 1)th tick counted from the clock of the change, so it
// lasts between LOCK_US and LOCK_US + 1 microseconds.
//
// Each input keeps a deadline, not a counter: one adder shared by every input computes
// now + LOCK_US + 1 on a microsecond count of its own, and an input is held until that
// count equals its deadline. An equality costs a third of a loadable down-counter.
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

    // one bit wider than lock_us: a deadline lock_us + 1 <= 2^TIME_WIDTH ticks ahead is
    // never the current count
    reg  [TIME_WIDTH:0] now_reg;
    wire [TIME_WIDTH:0] deadline = now_reg + {1'b0, lock_us} + 1'b1;
    wire                lock_on  = (lock_us != {TIME_WIDTH{1'b0}});

    always @(posedge clk) begin
        if (rst) begin
            now_reg <= {(TIME_WIDTH + 1){1'b0}};
        end else if (tick_us) begin
            now_reg <= now_reg + 1'b1;
        end
    end

    genvar i;
    generate
        for (i = 0; i < WIDTH; i = i + 1) begin : g_input
            reg                out_reg;
            reg                held_reg;
            reg [TIME_WIDTH:0] until_reg;
            // free: not held, or the deadline is reached in this clock
            wire               free = !held_reg || (now_reg == until_reg);
            wire               pass = free && (in[i] != out_reg);

            always @(posedge clk) begin
                if (rst) begin
                    out_reg <= in[i];
                end else if (pass) begin
                    out_reg <= in[i];
                end
            end

            always @(posedge clk) begin
                if (rst) begin
                    held_reg <= 1'b0;
                end else if (free) begin
                    held_reg <= pass && lock_on;
                end
            end

            always @(posedge clk) begin
                if (pass) begin
                    until_reg <= deadline;
                end
            end

            assign out[i] = out_reg;
        end
    endgenerate

endmodule

`resetall
