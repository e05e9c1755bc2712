// Event generator: synthetic input changes, up to one per clock, for benchmarking the
// whole path on a board without pressing a button.
//
// While running it offers an event every PERIOD cycles (0 or 1: every cycle) on the
// inputs of PATTERN in turn, lowest first; each event toggles that input's synthetic
// level, starting with a press. The capture stage takes an offer when no pin changed in
// that cycle (gen_ready); an offer not taken waits. After COUNT taken events (0: no
// limit) it stops by itself and pulses done.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_event_gen #(
    parameter integer N_INPUTS = 4,
    parameter integer IDX_WIDTH = 8
) (
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 start,       // begin a run (ignored while running)
    input  wire                 stop,        // end the run now
    input  wire [31:0]          count,
    input  wire [31:0]          period,
    input  wire [N_INPUTS-1:0]  pattern,

    output wire                 running,
    output wire [31:0]          sent,
    output wire                 done,        // one-cycle pulse after the last event

    output wire                 gen_valid,
    output wire [IDX_WIDTH-1:0] gen_input,
    output wire                 gen_level,
    input  wire                 gen_ready
);

    function [IDX_WIDTH-1:0] index_of;
        input [N_INPUTS-1:0] onehot;
        integer k;
        begin
            index_of = {IDX_WIDTH{1'b0}};
            for (k = 0; k < N_INPUTS; k = k + 1) begin
                if (onehot[k]) begin
                    index_of = k[IDX_WIDTH-1:0];
                end
            end
        end
    endfunction

    reg                running_reg;
    reg [31:0]         sent_reg;
    reg [31:0]         since_reg;    // clocks since the last take, held once it reaches gap_reg
    reg [31:0]         gap_reg;      // PERIOD as it was at the last take (0 at a start)
    reg [N_INPUTS-1:0] done_mask_reg;
    reg [N_INPUTS-1:0] level_reg;
    reg                done_reg;

    wire [N_INPUTS-1:0] pat       = (pattern == {N_INPUTS{1'b0}}) ? {N_INPUTS{1'b0}} + 1'b1 : pattern;
    wire [N_INPUTS-1:0] remaining = pat & ~done_mask_reg;
    // when the pattern changed under a run, start its cycle again
    wire [N_INPUTS-1:0] pool      = (remaining == {N_INPUTS{1'b0}}) ? pat : remaining;
    wire [N_INPUTS-1:0] lowest    = pool & (~pool + 1'b1);

    // The next offer comes PERIOD clocks after a take (PERIOD 0 or 1: the next clock), with
    // PERIOD as it was at the take. An up-count from 1 against that copy costs an equality;
    // a loadable down-counter costs a multiplexer per bit as well.
    wire [31:0] sent_next = sent_reg + 32'd1;
    wire waiting = (since_reg != gap_reg) && (gap_reg[31:1] != 31'd0);
    wire offer = running_reg && !waiting;
    wire take  = offer && gen_ready;
    wire last  = take && (count != 32'd0) && (sent_next >= count);

    assign running   = running_reg;
    assign sent      = sent_reg;
    assign done      = done_reg;
    assign gen_valid = offer;
    assign gen_input = index_of(lowest);
    assign gen_level = ~|(level_reg & lowest);

    always @(posedge clk) begin
        if (rst || stop || last) begin
            running_reg <= 1'b0;
        end else if (start) begin
            running_reg <= 1'b1;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            done_reg <= 1'b0;
        end else begin
            done_reg <= last;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            sent_reg <= 32'd0;
        end else if (start && !running_reg) begin
            sent_reg <= 32'd0;
        end else if (take) begin
            sent_reg <= sent_next;
        end
    end

    always @(posedge clk) begin
        if (rst || (start && !running_reg)) begin
            gap_reg <= 32'd0;
        end else if (take) begin
            gap_reg <= period;
        end
    end

    always @(posedge clk) begin
        if (rst || take) begin
            since_reg <= 32'd1;
        end else if (waiting) begin
            since_reg <= since_reg + 32'd1;
        end
    end

    always @(posedge clk) begin
        if (rst || (start && !running_reg)) begin
            done_mask_reg <= {N_INPUTS{1'b0}};
        end else if (take) begin
            done_mask_reg <= ((pool & ~lowest) == {N_INPUTS{1'b0}}) ? {N_INPUTS{1'b0}}
                                                                     : (pat & ~pool) | lowest;
        end
    end

    always @(posedge clk) begin
        if (rst || (start && !running_reg)) begin
            level_reg <= {N_INPUTS{1'b0}};
        end else if (take) begin
            level_reg <= level_reg ^ lowest;
        end
    end

endmodule

`resetall
