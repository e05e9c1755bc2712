// AXI4-Lite slave protocol properties, our own, for any slave with a synchronous
// active-high reset. Instantiate it beside the slave (see the formal_*.v wrappers) with
// every channel signal as an input.
//
// Assumptions on the master:
//   - reset is asserted in the first cycle; the master keeps AWVALID, WVALID and ARVALID
//     low while reset is asserted;
//   - AWVALID, WVALID and ARVALID, once high, stay high until the handshake, with their
//     payload (AWADDR; WDATA, WSTRB; ARADDR) unchanged.
// Assertions on the slave:
//   - BVALID and RVALID are low in the cycle after reset;
//   - BVALID and RVALID, once high, stay high until BREADY / RREADY, with BRESP and
//     RDATA, RRESP unchanged;
//   - a B is offered only for a write whose AW and W handshakes both completed in an
//     earlier cycle (so never before both, and never in their handshake cycle), and an R
//     only for an AR accepted in an earlier cycle: responses never outnumber requests;
//   - the slave accepts at most MAX_WR writes (AW or W) and MAX_RD reads beyond the
//     responses it has given, so the counters below cannot wrap.
// Covers show that handshakes, full buffers and a held B are reachable (not vacuous).
// The outstanding counts are outputs, so that a wrapper can tie them to the slave's
// own state as induction invariants.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module axil_props #(
    parameter integer ADDR_WIDTH = 16,
    parameter integer MAX_WR = 2,
    parameter integer MAX_RD = 1,
    parameter integer CW = 4
) (
    input  wire                  clk,
    input  wire                  rst,

    input  wire [ADDR_WIDTH-1:0] awaddr,
    input  wire                  awvalid,
    input  wire                  awready,
    input  wire [31:0]           wdata,
    input  wire [3:0]            wstrb,
    input  wire                  wvalid,
    input  wire                  wready,
    input  wire [1:0]            bresp,
    input  wire                  bvalid,
    input  wire                  bready,
    input  wire [ADDR_WIDTH-1:0] araddr,
    input  wire                  arvalid,
    input  wire                  arready,
    input  wire [31:0]           rdata,
    input  wire [1:0]            rresp,
    input  wire                  rvalid,
    input  wire                  rready,

    // accepted before this cycle and not yet answered
    output wire [CW-1:0]         aw_out,
    output wire [CW-1:0]         w_out,
    output wire [CW-1:0]         ar_out
);

    reg f_past_valid = 1'b0;
    always @(posedge clk) begin
        f_past_valid <= 1'b1;
    end

    wire aw_hs = awvalid && awready;
    wire w_hs  = wvalid && wready;
    wire b_hs  = bvalid && bready;
    wire ar_hs = arvalid && arready;
    wire r_hs  = rvalid && rready;

    // ---- the master ------------------------------------------------------------
    always @(*) begin
        if (!f_past_valid) begin
            assume(rst);
        end
        if (rst) begin
            assume(!awvalid && !wvalid && !arvalid);
        end
    end

    always @(posedge clk) begin
        if (f_past_valid && !$past(rst) && !rst) begin
            if ($past(awvalid && !awready)) begin
                assume(awvalid && awaddr == $past(awaddr));
            end
            if ($past(wvalid && !wready)) begin
                assume(wvalid && wdata == $past(wdata) && wstrb == $past(wstrb));
            end
            if ($past(arvalid && !arready)) begin
                assume(arvalid && araddr == $past(araddr));
            end
        end
    end

    // ---- outstanding requests --------------------------------------------------
    reg [CW-1:0] aw_out_reg = {CW{1'b0}};
    reg [CW-1:0] w_out_reg = {CW{1'b0}};
    reg [CW-1:0] ar_out_reg = {CW{1'b0}};

    always @(posedge clk) begin
        if (rst) begin
            aw_out_reg <= {CW{1'b0}};
            w_out_reg <= {CW{1'b0}};
            ar_out_reg <= {CW{1'b0}};
        end else begin
            aw_out_reg <= aw_out_reg + {{(CW - 1){1'b0}}, aw_hs} - {{(CW - 1){1'b0}}, b_hs};
            w_out_reg <= w_out_reg + {{(CW - 1){1'b0}}, w_hs} - {{(CW - 1){1'b0}}, b_hs};
            ar_out_reg <= ar_out_reg + {{(CW - 1){1'b0}}, ar_hs} - {{(CW - 1){1'b0}}, r_hs};
        end
    end

    assign aw_out = aw_out_reg;
    assign w_out = w_out_reg;
    assign ar_out = ar_out_reg;

    // ---- the slave -------------------------------------------------------------
    always @(*) begin
        if (f_past_valid && !rst) begin
            // a response only for a request completed in an earlier cycle
            if (bvalid) begin
                assert(aw_out_reg != {CW{1'b0}} && w_out_reg != {CW{1'b0}});
            end
            if (rvalid) begin
                assert(ar_out_reg != {CW{1'b0}});
            end
            assert(aw_out_reg <= MAX_WR && w_out_reg <= MAX_WR);
            assert(ar_out_reg <= MAX_RD);
        end
    end

    always @(posedge clk) begin
        if (f_past_valid && $past(rst)) begin
            assert(!bvalid && !rvalid);
        end
        if (f_past_valid && !$past(rst) && !rst) begin
            if ($past(bvalid && !bready)) begin
                assert(bvalid && bresp == $past(bresp));
            end
            if ($past(rvalid && !rready)) begin
                assert(rvalid && rdata == $past(rdata) && rresp == $past(rresp));
            end
        end
    end

    // ---- reachability: the properties are not vacuous ---------------------------
    always @(*) begin
        if (f_past_valid && !rst) begin
            cover(b_hs);
            cover(r_hs);
            cover(aw_out_reg == MAX_WR && w_out_reg == MAX_WR);
            cover(bvalid && !bready && aw_hs);
        end
    end

endmodule

`resetall
