// AXI4-Lite slave front end of pynq_mqtt_io.
//
// Turns the five AXI4-Lite channels into a plain register port: one write strobe
// (address, data, byte strobes) and one read strobe (address) whose data the register
// block returns combinationally in the same cycle. The register block never sees AXI.
//
// - AW and W are accepted in either order or together, each into its own one-entry
//   buffer (READY is low while it is full), so a master may present them independently.
// - The write strobe comes from the two buffers only, in a cycle after both handshakes
//   and only when its B response can be issued (!BVALID or BREADY); BVALID rises the
//   cycle after the write. Writing from the buffers alone, never bypassing them, spares
//   a 52-bit multiplexer (51 LUT on xc7) at the price of one clock per write: at most
//   one write every two clocks, far above what a processor's AXI port issues.
// - A read strobe fires exactly once per AR handshake (reads may pop), and RDATA is
//   held with RVALID until RREADY.
// - Every response is OKAY: unmapped addresses read 0 and ignore writes.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_axil_slave #(
    parameter integer ADDR_WIDTH = 16
) (
    input  wire                  clk,
    input  wire                  rst,

    input  wire [ADDR_WIDTH-1:0] s_axi_awaddr,
    input  wire                  s_axi_awvalid,
    output wire                  s_axi_awready,
    input  wire [31:0]           s_axi_wdata,
    input  wire [3:0]            s_axi_wstrb,
    input  wire                  s_axi_wvalid,
    output wire                  s_axi_wready,
    output wire [1:0]            s_axi_bresp,
    output wire                  s_axi_bvalid,
    input  wire                  s_axi_bready,
    input  wire [ADDR_WIDTH-1:0] s_axi_araddr,
    input  wire                  s_axi_arvalid,
    output wire                  s_axi_arready,
    output wire [31:0]           s_axi_rdata,
    output wire [1:0]            s_axi_rresp,
    output wire                  s_axi_rvalid,
    input  wire                  s_axi_rready,

    output wire                  reg_wr_en,
    output wire [ADDR_WIDTH-1:0] reg_wr_addr,
    output wire [31:0]           reg_wr_data,
    output wire [3:0]            reg_wr_strb,
    output wire                  reg_rd_en,
    output wire [ADDR_WIDTH-1:0] reg_rd_addr,
    input  wire [31:0]           reg_rd_data
);

    // ---- write channel ---------------------------------------------------------
    reg                  aw_held_reg;
    reg [ADDR_WIDTH-1:0] aw_addr_reg;
    reg                  w_held_reg;
    reg [31:0]           w_data_reg;
    reg [3:0]            w_strb_reg;
    reg                  bvalid_reg;

    wire aw_hs = s_axi_awvalid && !aw_held_reg;
    wire w_hs  = s_axi_wvalid && !w_held_reg;
    wire do_write = aw_held_reg && w_held_reg && (!bvalid_reg || s_axi_bready);

    assign s_axi_awready = !aw_held_reg;
    assign s_axi_wready  = !w_held_reg;
    assign s_axi_bvalid  = bvalid_reg;
    assign s_axi_bresp   = 2'b00;

    assign reg_wr_en   = do_write;
    assign reg_wr_addr = aw_addr_reg;
    assign reg_wr_data = w_data_reg;
    assign reg_wr_strb = w_strb_reg;

    always @(posedge clk) begin
        if (rst) begin
            aw_held_reg <= 1'b0;
        end else if (do_write) begin
            aw_held_reg <= 1'b0;
        end else if (aw_hs) begin
            aw_held_reg <= 1'b1;
        end
    end

    always @(posedge clk) begin
        if (aw_hs) begin
            aw_addr_reg <= s_axi_awaddr;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            w_held_reg <= 1'b0;
        end else if (do_write) begin
            w_held_reg <= 1'b0;
        end else if (w_hs) begin
            w_held_reg <= 1'b1;
        end
    end

    always @(posedge clk) begin
        if (w_hs) begin
            w_data_reg <= s_axi_wdata;
            w_strb_reg <= s_axi_wstrb;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            bvalid_reg <= 1'b0;
        end else if (do_write) begin
            bvalid_reg <= 1'b1;
        end else if (s_axi_bready) begin
            bvalid_reg <= 1'b0;
        end
    end

    // ---- read channel ----------------------------------------------------------
    reg        rvalid_reg;
    reg [31:0] rdata_reg;

    wire ar_hs = s_axi_arvalid && s_axi_arready;

    assign s_axi_arready = !rvalid_reg || s_axi_rready;
    assign s_axi_rvalid  = rvalid_reg;
    assign s_axi_rdata   = rdata_reg;
    assign s_axi_rresp   = 2'b00;

    assign reg_rd_en   = ar_hs;
    assign reg_rd_addr = s_axi_araddr;

    always @(posedge clk) begin
        if (rst) begin
            rvalid_reg <= 1'b0;
        end else if (ar_hs) begin
            rvalid_reg <= 1'b1;
        end else if (s_axi_rready) begin
            rvalid_reg <= 1'b0;
        end
    end

    always @(posedge clk) begin
        if (ar_hs) begin
            rdata_reg <= reg_rd_data;
        end
    end

endmodule

`resetall
