// MODEL, NOT XILINX IP. A behavioural model of AXI INTC as PYNQ's base overlay uses it
// (system_interrupts: up to 32 level- or edge-sensitive inputs, one active-high level irq),
// written from the register map of the AXI Interrupt Controller product guide (PG099). Our
// tests of the daemon's base-overlay mode run against it; nothing here is Xilinx's RTL.
//
// The AXI4-Lite side is our own pmq_axil_slave (AW and W in either order, backpressure on
// B and R, every response OKAY); the registers are in axi_intc_model_core.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module axi_intc_model #(
    parameter integer NUM_INTR     = 16,
    parameter [31:0]  KIND_OF_INTR = 32'h0000_0000
) (
    input  wire                  s_axi_aclk,
    input  wire                  s_axi_aresetn,
    input  wire [8:0]            s_axi_awaddr,
    input  wire                  s_axi_awvalid,
    output wire                  s_axi_awready,
    input  wire [31:0]           s_axi_wdata,
    input  wire [3:0]            s_axi_wstrb,
    input  wire                  s_axi_wvalid,
    output wire                  s_axi_wready,
    output wire [1:0]            s_axi_bresp,
    output wire                  s_axi_bvalid,
    input  wire                  s_axi_bready,
    input  wire [8:0]            s_axi_araddr,
    input  wire                  s_axi_arvalid,
    output wire                  s_axi_arready,
    output wire [31:0]           s_axi_rdata,
    output wire [1:0]            s_axi_rresp,
    output wire                  s_axi_rvalid,
    input  wire                  s_axi_rready,

    input  wire [NUM_INTR-1:0]   intr,
    output wire                  irq
);

    wire        rst = !s_axi_aresetn;
    wire        reg_wr_en;
    wire [8:0]  reg_wr_addr;
    wire [31:0] reg_wr_data;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [3:0]  reg_wr_strb;  // the model takes every write as a full word
    /* verilator lint_on UNUSEDSIGNAL */
    wire        reg_rd_en;
    wire [8:0]  reg_rd_addr;
    wire [31:0] reg_rd_data;

    pmq_axil_slave #(
        .ADDR_WIDTH(9)
    ) axil (
        .clk          (s_axi_aclk),
        .rst          (rst),
        .s_axi_awaddr (s_axi_awaddr),
        .s_axi_awvalid(s_axi_awvalid),
        .s_axi_awready(s_axi_awready),
        .s_axi_wdata  (s_axi_wdata),
        .s_axi_wstrb  (s_axi_wstrb),
        .s_axi_wvalid (s_axi_wvalid),
        .s_axi_wready (s_axi_wready),
        .s_axi_bresp  (s_axi_bresp),
        .s_axi_bvalid (s_axi_bvalid),
        .s_axi_bready (s_axi_bready),
        .s_axi_araddr (s_axi_araddr),
        .s_axi_arvalid(s_axi_arvalid),
        .s_axi_arready(s_axi_arready),
        .s_axi_rdata  (s_axi_rdata),
        .s_axi_rresp  (s_axi_rresp),
        .s_axi_rvalid (s_axi_rvalid),
        .s_axi_rready (s_axi_rready),
        .reg_wr_en    (reg_wr_en),
        .reg_wr_addr  (reg_wr_addr),
        .reg_wr_data  (reg_wr_data),
        .reg_wr_strb  (reg_wr_strb),
        .reg_rd_en    (reg_rd_en),
        .reg_rd_addr  (reg_rd_addr),
        .reg_rd_data  (reg_rd_data)
    );

    axi_intc_model_core #(
        .NUM_INTR    (NUM_INTR),
        .KIND_OF_INTR(KIND_OF_INTR)
    ) core (
        .clk        (s_axi_aclk),
        .rst        (rst),
        .reg_wr_en  (reg_wr_en),
        .reg_wr_addr(reg_wr_addr),
        .reg_wr_data(reg_wr_data),
        .reg_rd_en  (reg_rd_en),
        .reg_rd_addr(reg_rd_addr),
        .reg_rd_data(reg_rd_data),
        .intr       (intr),
        .irq        (irq)
    );

endmodule

`resetall
