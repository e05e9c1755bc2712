// Formal harness of pmq_fifo: every input is free (the solver is producer and consumer).
//
//   - count equals pushes minus pops (push = in_valid && in_ready, pop = out_valid &&
//     out_ready), never above the capacity 2**DEPTH_LOG2 + 1;
//   - the storage never overflows: in_ready is low exactly when the storage (what is not
//     in the output register) holds 2**DEPTH_LOG2 entries;
//   - out_valid only with something counted; the output register is refilled the
//     cycle after it is empty while the storage holds something, and in the same clock
//     as a pop (one pop per clock is sustained); the head is stable while not popped;
//   - order and data: an arbitrary pushed element (f_choose picks it) is tracked with
//     the number of elements ahead of it; it leaves exactly after those, with its value.
//     As the element and its value are arbitrary, this covers every element: nothing is
//     lost, duplicated, reordered or corrupted.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module formal_pmq_fifo #(
    parameter integer WIDTH = 2,
    parameter integer DEPTH_LOG2 = 2
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [WIDTH-1:0] in_data,
    input  wire             in_valid,
    input  wire             out_ready,
    input  wire             f_choose
);

    localparam integer DEPTH = 1 << DEPTH_LOG2;
    localparam integer CW = DEPTH_LOG2 + 2;

    wire                in_ready;
    wire [WIDTH-1:0]    out_data;
    wire                out_valid;
    wire [DEPTH_LOG2:0] count;

    pmq_fifo #(
        .WIDTH(WIDTH),
        .DEPTH_LOG2(DEPTH_LOG2)
    ) dut (
        .clk(clk),
        .rst(rst),
        .in_data(in_data),
        .in_valid(in_valid),
        .in_ready(in_ready),
        .out_data(out_data),
        .out_valid(out_valid),
        .out_ready(out_ready),
        .count(count)
    );

    reg f_past_valid = 1'b0;
    always @(posedge clk) begin
        f_past_valid <= 1'b1;
    end

    always @(*) begin
        if (!f_past_valid) begin
            assume(rst);
        end
    end

    wire push = in_valid && in_ready;
    wire pop  = out_valid && out_ready;

    // ---- occupancy -------------------------------------------------------------
    reg [CW-1:0] f_count = {CW{1'b0}};

    always @(posedge clk) begin
        if (rst) begin
            f_count <= {CW{1'b0}};
        end else begin
            f_count <= f_count + {{(CW - 1){1'b0}}, push} - {{(CW - 1){1'b0}}, pop};
        end
    end

    wire [CW-1:0] f_stored = f_count - {{(CW - 1){1'b0}}, out_valid};

    always @(*) begin
        if (f_past_valid && !rst) begin
            assert({1'b0, count} == f_count);
            assert(f_count <= DEPTH + 1);
            assert(f_stored <= DEPTH);
            assert(in_ready == (f_stored != DEPTH));
            if (out_valid) begin
                assert(f_count != {CW{1'b0}});
            end
        end
    end

    always @(posedge clk) begin
        if (f_past_valid && !$past(rst) && !rst) begin
            if ($past(!out_valid && f_count != {CW{1'b0}})) begin
                assert(out_valid);
            end
            // one pop per clock: a popped head is replaced at once from the storage
            if ($past(pop && f_stored != {CW{1'b0}})) begin
                assert(out_valid);
            end
            if ($past(out_valid && !out_ready)) begin
                assert(out_valid && out_data == $past(out_data));
            end
        end
    end

    // ---- one arbitrary element, tracked ----------------------------------------
    reg             f_tracking = 1'b0;
    reg [WIDTH-1:0] f_value;
    reg [CW-1:0]    f_ahead;    // elements in front of it

    always @(posedge clk) begin
        if (rst) begin
            f_tracking <= 1'b0;
        end else if (f_tracking) begin
            if (pop) begin
                if (f_ahead == {CW{1'b0}}) begin
                    f_tracking <= 1'b0;
                end else begin
                    f_ahead <= f_ahead - 1'b1;
                end
            end
        end else if (f_choose && push) begin
            f_tracking <= 1'b1;
            f_value <= in_data;
            f_ahead <= f_count - {{(CW - 1){1'b0}}, pop};
        end
    end

    always @(*) begin
        if (f_past_valid && !rst && f_tracking) begin
            assert(f_ahead < f_count);
            if (f_ahead == {CW{1'b0}} && out_valid) begin
                assert(out_data == f_value);
            end
        end
    end

    // reachable: a full FIFO refusing a push, and a tracked element leaving after DEPTH others
    reg [CW-1:0] f_ahead_at_push;
    always @(posedge clk) begin
        if (!f_tracking && f_choose && push) begin
            f_ahead_at_push <= f_count - {{(CW - 1){1'b0}}, pop};
        end
    end

    always @(*) begin
        if (f_past_valid && !rst) begin
            cover(f_count == DEPTH + 1 && in_valid && !in_ready);
            cover(f_tracking && f_ahead == {CW{1'b0}} && pop && f_ahead_at_push == DEPTH);
        end
    end

endmodule

`resetall
