// Formal harness of the whole peripheral, pynq_mqtt_io with its register block: the
// AXI4-Lite protocol (axil_props.v) on its ports, with the buttons free, plus
//   - BRESP and RRESP are OKAY, irq is low in the cycle after reset;
//   - the slave's state, as seen on its ports, accounts for every outstanding request
//     (the induction invariants of formal_axil_slave.v, on the top's ports);
//   - covers: an event popped through EVT_POP (VALID set) and irq are reachable.
// Small parameters keep the state space small; the AXI front end does not depend on them.
// run.sh proves it with and without the event generator (WITH_GEN).
`resetall
`timescale 1ns / 1ps
`default_nettype none

module formal_top #(
    parameter integer N_INPUTS = 2,
    parameter integer N_LEDS = 1,
    parameter integer FIFO_DEPTH = 4,
    parameter integer CLK_HZ = 1000000,
    parameter integer WITH_GEN = 0
) (
    input  wire                clk,
    input  wire                rst,
    input  wire [15:0]         s_axi_awaddr,
    input  wire [2:0]          s_axi_awprot,
    input  wire                s_axi_awvalid,
    input  wire [31:0]         s_axi_wdata,
    input  wire [3:0]          s_axi_wstrb,
    input  wire                s_axi_wvalid,
    input  wire                s_axi_bready,
    input  wire [15:0]         s_axi_araddr,
    input  wire [2:0]          s_axi_arprot,
    input  wire                s_axi_arvalid,
    input  wire                s_axi_rready,
    input  wire [N_INPUTS-1:0] btn
);

    localparam integer CW = 4;

    wire              s_axi_awready;
    wire              s_axi_wready;
    wire [1:0]        s_axi_bresp;
    wire              s_axi_bvalid;
    wire              s_axi_arready;
    wire [31:0]       s_axi_rdata;
    wire [1:0]        s_axi_rresp;
    wire              s_axi_rvalid;
    wire [N_LEDS-1:0] led;
    wire              irq;

    pynq_mqtt_io #(
        .N_INPUTS(N_INPUTS),
        .N_LEDS(N_LEDS),
        .FIFO_DEPTH(FIFO_DEPTH),
        .CLK_HZ(CLK_HZ),
        .WITH_GEN(WITH_GEN)
    ) dut (
        .s_axi_aclk(clk),
        .s_axi_aresetn(!rst),
        .s_axi_awaddr(s_axi_awaddr),
        .s_axi_awprot(s_axi_awprot),
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
        .s_axi_arprot(s_axi_arprot),
        .s_axi_arvalid(s_axi_arvalid),
        .s_axi_arready(s_axi_arready),
        .s_axi_rdata(s_axi_rdata),
        .s_axi_rresp(s_axi_rresp),
        .s_axi_rvalid(s_axi_rvalid),
        .s_axi_rready(s_axi_rready),
        .btn(btn),
        .led(led),
        .irq(irq)
    );

    wire [CW-1:0] aw_out;
    wire [CW-1:0] w_out;
    wire [CW-1:0] ar_out;

    axil_props #(
        .ADDR_WIDTH(16),
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

    reg f_past_valid = 1'b0;
    always @(posedge clk) begin
        f_past_valid <= 1'b1;
    end

    always @(*) begin
        if (f_past_valid && !rst) begin
            assert(s_axi_bresp == 2'b00 && s_axi_rresp == 2'b00);
            assert(aw_out == {{(CW - 2){1'b0}}, 1'b0, s_axi_bvalid} + {{(CW - 1){1'b0}}, !s_axi_awready});
            assert(w_out == {{(CW - 2){1'b0}}, 1'b0, s_axi_bvalid} + {{(CW - 1){1'b0}}, !s_axi_wready});
            assert(ar_out == {{(CW - 1){1'b0}}, s_axi_rvalid});
        end
    end

    always @(posedge clk) begin
        if (f_past_valid && $past(rst)) begin
            assert(!irq);
        end
    end

    // reachable: an event read through EVT_POP (VALID set), and the interrupt
    always @(*) begin
        if (f_past_valid && !rst) begin
            cover(s_axi_rvalid && s_axi_rready && s_axi_rdata[31]);
            cover(irq);
        end
    end

endmodule

`resetall
