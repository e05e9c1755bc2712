// Edge detection and event serialization.
//
// Every cycle, the inputs are compared with their previous level; an edge counts when
// its input is enabled and its direction selected. A cycle with one or more edges
// becomes one snapshot (edge mask, new levels, timestamp, first sequence number) in a
// small queue; the serializer then emits one event per clock from the queue head,
// lowest input first. So edges on several inputs in the same cycle all become events,
// in a fixed order, and sequence numbers follow detection order. A cycle without pin
// edges may instead take one synthetic event from the generator (marked as such).
//
// The sequence counter advances at detection, for every edge, whether or not the event
// survives: a loss (snapshot queue full, or the downstream FIFO full when an event is
// emitted) leaves a gap that the host sees, and lost_count says how many were lost in
// this cycle so the drop counter is exact.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_event_capture #(
    parameter integer N_INPUTS = 4,
    parameter integer SEQ_WIDTH = 16,
    parameter integer IDX_WIDTH = 8,
    parameter integer QUEUE_LOG2 = 2,
    // 0: no generator in this build; the gen_* inputs are ignored and cost nothing
    parameter integer WITH_GEN = 1,
    // wide enough for N_INPUTS + 1 losses in one cycle
    parameter integer LOST_WIDTH = $clog2(N_INPUTS + 2)
) (
    input  wire                  clk,
    input  wire                  rst,

    input  wire [N_INPUTS-1:0]   level,
    input  wire [N_INPUTS-1:0]   enable,
    input  wire [N_INPUTS-1:0]   rise,
    input  wire [N_INPUTS-1:0]   fall,
    input  wire [31:0]           time_us,

    input  wire                  gen_valid,
    input  wire [IDX_WIDTH-1:0]  gen_input,
    input  wire                  gen_level,
    output wire                  gen_ready,

    output wire                  evt_valid,
    output wire                  evt_synthetic,
    output wire [IDX_WIDTH-1:0]  evt_input,
    output wire                  evt_level,
    output wire [31:0]           evt_ts,
    output wire [SEQ_WIDTH-1:0]  evt_seq,
    input  wire                  evt_ready,

    output wire [LOST_WIDTH-1:0] lost_count
);

    // snapshot: {synthetic, edge mask, levels, timestamp, first sequence number}
    localparam integer SNAP_WIDTH = 1 + N_INPUTS + N_INPUTS + 32 + SEQ_WIDTH;
    localparam integer K_WIDTH = (N_INPUTS > 1) ? $clog2(N_INPUTS) : 1;

    function [LOST_WIDTH-1:0] popcount;
        input [N_INPUTS-1:0] v;
        integer i;
        begin
            popcount = {LOST_WIDTH{1'b0}};
            for (i = 0; i < N_INPUTS; i = i + 1) begin
                popcount = popcount + {{(LOST_WIDTH - 1){1'b0}}, v[i]};
            end
        end
    endfunction

    function [IDX_WIDTH-1:0] index_of;
        input [N_INPUTS-1:0] onehot;
        integer i;
        begin
            index_of = {IDX_WIDTH{1'b0}};
            for (i = 0; i < N_INPUTS; i = i + 1) begin
                if (onehot[i]) begin
                    index_of = i[IDX_WIDTH-1:0];
                end
            end
        end
    endfunction

    // ---- detection -----------------------------------------------------------
    reg  [N_INPUTS-1:0]  prev_reg = {N_INPUTS{1'b0}};
    reg  [SEQ_WIDTH-1:0] seq_reg;

    wire [N_INPUTS-1:0]   pin_edges = (level ^ prev_reg) & enable & ((level & rise) | (~level & fall));
    wire                  pin_any = |pin_edges;

    // a cycle without pin edges may carry one generated event instead
    wire                  gen_take = (WITH_GEN != 0) && gen_valid && !pin_any;
    wire [N_INPUTS-1:0]   gen_bit = ({N_INPUTS{1'b0}} + 1'b1) << gen_input;
    wire [N_INPUTS-1:0]   edges = pin_any ? pin_edges : (gen_take ? gen_bit : {N_INPUTS{1'b0}});
    wire [N_INPUTS-1:0]   levels = gen_take ? ((level & ~gen_bit) | (gen_level ? gen_bit : {N_INPUTS{1'b0}}))
                                            : level;
    wire [LOST_WIDTH-1:0] n_edges = popcount(edges);

    assign gen_ready = !pin_any;

    always @(posedge clk) begin
        prev_reg <= level;
    end

    always @(posedge clk) begin
        if (rst) begin
            seq_reg <= {SEQ_WIDTH{1'b0}};
        end else begin
            seq_reg <= seq_reg + {{(SEQ_WIDTH - LOST_WIDTH){1'b0}}, n_edges};
        end
    end

    // ---- snapshot queue ------------------------------------------------------
    wire                  snap_in_valid = |edges;
    wire                  snap_in_ready;
    wire [SNAP_WIDTH-1:0] snap_head;
    wire                  snap_valid;
    wire                  snap_pop;
    wire [QUEUE_LOG2:0]   snap_count;

    pmq_fifo #(
        .WIDTH(SNAP_WIDTH),
        .DEPTH_LOG2(QUEUE_LOG2)
    ) snap_queue (
        .clk(clk),
        .rst(rst),
        .in_data({gen_take, edges, levels, time_us, seq_reg}),
        .in_valid(snap_in_valid),
        .in_ready(snap_in_ready),
        .out_data(snap_head),
        .out_valid(snap_valid),
        .out_ready(snap_pop),
        .count(snap_count)
    );

    // ---- serializer ----------------------------------------------------------
    wire                 head_synth = snap_head[SNAP_WIDTH-1];
    wire [N_INPUTS-1:0]  head_mask  = snap_head[SNAP_WIDTH-2 -: N_INPUTS];
    wire [N_INPUTS-1:0]  head_level = snap_head[SEQ_WIDTH+32 +: N_INPUTS];
    wire [31:0]          head_ts    = snap_head[SEQ_WIDTH +: 32];
    wire [SEQ_WIDTH-1:0] head_seq   = snap_head[SEQ_WIDTH-1:0];

    reg  [N_INPUTS-1:0]  done_reg;
    reg  [K_WIDTH-1:0]   k_reg;

    wire [N_INPUTS-1:0]  remaining = head_mask & ~done_reg;
    wire [N_INPUTS-1:0]  lowest = remaining & (~remaining + 1'b1);
    wire                 last = (remaining == lowest);

    assign snap_pop = snap_valid && last;

    always @(posedge clk) begin
        if (rst || snap_pop) begin
            done_reg <= {N_INPUTS{1'b0}};
            k_reg <= {K_WIDTH{1'b0}};
        end else if (snap_valid) begin
            done_reg <= done_reg | lowest;
            k_reg <= k_reg + 1'b1;
        end
    end

    assign evt_valid = snap_valid;
    assign evt_synthetic = head_synth;
    assign evt_input = index_of(lowest);
    assign evt_level = |(head_level & lowest);
    assign evt_ts    = head_ts;
    assign evt_seq   = head_seq + {{(SEQ_WIDTH - K_WIDTH){1'b0}}, k_reg};

    assign lost_count = (snap_in_ready ? {LOST_WIDTH{1'b0}} : n_edges)
                      + {{(LOST_WIDTH - 1){1'b0}}, (evt_valid && !evt_ready)};

    // snap_count is for debug views only
    wire unused_ok = &{1'b0, snap_count};

endmodule

`resetall
