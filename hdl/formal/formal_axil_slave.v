// Formal harness of pmq_axil_slave: the AXI4-Lite protocol (axil_props.v) plus the
// register port contract that pynq_mqtt_io relies on:
//   - one read strobe per AR handshake, in that cycle, with ARADDR; RDATA is what the
//     register block returned in that cycle;
//   - one write strobe per AW/W pair, in a cycle after both were accepted (from the
//     buffers, never bypassing them), with the address of that AW and the data and
//     strobes of that W, only when its B can be issued (BVALID low or BREADY), as soon
//     as it can, and exactly one B per write strobe;
//   - BRESP and RRESP are OKAY.
// Every input of this module is free: the solver is the master and the register block.
// The last block ties the outstanding counts to the slave's visible state (it holds at
// most one AW and one W, READY low while it holds one); these invariants make the
// properties 1-inductive.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module formal_axil_slave #(
    parameter integer ADDR_WIDTH = 4
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire [ADDR_WIDTH-1:0] s_axi_awaddr,
    input  wire                  s_axi_awvalid,
    input  wire [31:0]           s_axi_wdata,
    input  wire [3:0]            s_axi_wstrb,
    input  wire                  s_axi_wvalid,
    input  wire                  s_axi_bready,
    input  wire [ADDR_WIDTH-1:0] s_axi_araddr,
    input  wire                  s_axi_arvalid,
    input  wire                  s_axi_rready,
    input  wire [31:0]           reg_rd_data
);

    localparam integer CW = 4;

    wire                  s_axi_awready;
    wire                  s_axi_wready;
    wire [1:0]            s_axi_bresp;
    wire                  s_axi_bvalid;
    wire                  s_axi_arready;
    wire [31:0]           s_axi_rdata;
    wire [1:0]            s_axi_rresp;
    wire                  s_axi_rvalid;
    wire                  reg_wr_en;
    wire [ADDR_WIDTH-1:0] reg_wr_addr;
    wire [31:0]           reg_wr_data;
    wire [3:0]            reg_wr_strb;
    wire                  reg_rd_en;
    wire [ADDR_WIDTH-1:0] reg_rd_addr;

    pmq_axil_slave #(
        .ADDR_WIDTH(ADDR_WIDTH)
    ) dut (
        .clk(clk),
        .rst(rst),
        .s_axi_awaddr(s_axi_awaddr),
        .s_axi_awvalid(s_axi_awvalid),
        .s_axi_awready(s_axi_awready),
        .s_axi_wdata(s_axi_wdata),
        .s_axi_wstrb(s_axi_wstrb),
        .s_axi_wvalid(s_axi_wvalid),
        .s_axi_wready(s_axi_wready),
        .s_axi_bresp(s_axi_bresp),
        .s_axi_bvalid(s_axi_bvalid),
        .s_axi_bready(s_axi_bready),
        .s_axi_araddr(s_axi_araddr),
        .s_axi_arvalid(s_axi_arvalid),
        .s_axi_arready(s_axi_arready),
        .s_axi_rdata(s_axi_rdata),
        .s_axi_rresp(s_axi_rresp),
        .s_axi_rvalid(s_axi_rvalid),
        .s_axi_rready(s_axi_rready),
        .reg_wr_en(reg_wr_en),
        .reg_wr_addr(reg_wr_addr),
        .reg_wr_data(reg_wr_data),
        .reg_wr_strb(reg_wr_strb),
        .reg_rd_en(reg_rd_en),
        .reg_rd_addr(reg_rd_addr),
        .reg_rd_data(reg_rd_data)
    );

    wire [CW-1:0] aw_out;
    wire [CW-1:0] w_out;
    wire [CW-1:0] ar_out;

    axil_props #(
        .ADDR_WIDTH(ADDR_WIDTH),
        .MAX_WR(2),
        .MAX_RD(1),
        .CW(CW)
    ) props (
        .clk(clk),
        .rst(rst),
        .awaddr(s_axi_awaddr),
        .awvalid(s_axi_awvalid),
        .awready(s_axi_awready),
        .wdata(s_axi_wdata),
        .wstrb(s_axi_wstrb),
        .wvalid(s_axi_wvalid),
        .wready(s_axi_wready),
        .bresp(s_axi_bresp),
        .bvalid(s_axi_bvalid),
        .bready(s_axi_bready),
        .araddr(s_axi_araddr),
        .arvalid(s_axi_arvalid),
        .arready(s_axi_arready),
        .rdata(s_axi_rdata),
        .rresp(s_axi_rresp),
        .rvalid(s_axi_rvalid),
        .rready(s_axi_rready),
        .aw_out(aw_out),
        .w_out(w_out),
        .ar_out(ar_out)
    );

    wire aw_hs = s_axi_awvalid && s_axi_awready;
    wire w_hs  = s_axi_wvalid && s_axi_wready;
    wire b_hs  = s_axi_bvalid && s_axi_bready;
    wire ar_hs = s_axi_arvalid && s_axi_arready;

    // ---- what the register port must see -----------------------------------------
    reg                  f_past_valid = 1'b0;
    reg [ADDR_WIDTH-1:0] f_awaddr;       // the last AW accepted
    reg [31:0]           f_wdata;        // the last W accepted
    reg [3:0]            f_wstrb;
    reg [31:0]           f_rdata;        // what the register block gave the last AR
    reg [CW-1:0]         f_wr_out = {CW{1'b0}};   // write strobes not yet answered by B

    always @(posedge clk) begin
        f_past_valid <= 1'b1;
        if (aw_hs) begin
            f_awaddr <= s_axi_awaddr;
        end
        if (w_hs) begin
            f_wdata <= s_axi_wdata;
            f_wstrb <= s_axi_wstrb;
        end
        if (ar_hs) begin
            f_rdata <= reg_rd_data;
        end
        if (rst) begin
            f_wr_out <= {CW{1'b0}};
        end else begin
            f_wr_out <= f_wr_out + {{(CW - 1){1'b0}}, reg_wr_en} - {{(CW - 1){1'b0}}, b_hs};
        end
    end

    // AW/W accepted before this cycle and not yet written
    wire [CW-1:0] aw_pending = aw_out - f_wr_out;
    wire [CW-1:0] w_pending = w_out - f_wr_out;

    always @(*) begin
        if (f_past_valid && !rst) begin
            assert(s_axi_bresp == 2'b00 && s_axi_rresp == 2'b00);

            // reads: one strobe per AR handshake, with its address
            assert(reg_rd_en == ar_hs);
            if (reg_rd_en) begin
                assert(reg_rd_addr == s_axi_araddr);
            end
            if (s_axi_rvalid) begin
                assert(s_axi_rdata == f_rdata);
            end

            // writes: one strobe per AW/W pair, with that pair's address, data, strobes
            assert(f_wr_out == {{(CW - 1){1'b0}}, s_axi_bvalid});
            if (reg_wr_en) begin
                assert(!s_axi_bvalid || s_axi_bready);
                assert(aw_pending != {CW{1'b0}} && w_pending != {CW{1'b0}});
                assert(reg_wr_addr == f_awaddr);
                assert(reg_wr_data == f_wdata && reg_wr_strb == f_wstrb);
            end
            // an accepted AW/W pair is written as soon as B is free
            if (aw_pending != {CW{1'b0}} && w_pending != {CW{1'b0}}
                    && (!s_axi_bvalid || s_axi_bready)) begin
                assert(reg_wr_en);
            end

            // induction invariants: at most one AW and one W held, READY low meanwhile,
            // the held address shown on the register port, one R outstanding at most
            assert(aw_pending == {{(CW - 1){1'b0}}, !s_axi_awready});
            assert(w_pending == {{(CW - 1){1'b0}}, !s_axi_wready});
            assert(ar_out == {{(CW - 1){1'b0}}, s_axi_rvalid});
            if (!s_axi_awready) begin
                assert(reg_wr_addr == f_awaddr);
            end
            if (!s_axi_wready) begin
                assert(reg_wr_data == f_wdata && reg_wr_strb == f_wstrb);
            end

            // reachable: a write while the last B is taken, a write while a read is
            // accepted, and a write beside a pending B whose master keeps BREADY low
            cover(reg_wr_en && s_axi_bvalid && s_axi_bready);
            cover(reg_wr_en && ar_hs);
            cover(!reg_wr_en && !s_axi_awready && !s_axi_wready && s_axi_bvalid);
        end
    end

endmodule

`resetall
