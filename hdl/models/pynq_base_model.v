// MODEL, NOT XILINX'S DESIGN. The part of PYNQ's stock base overlay that the daemon's
// `--board base` mode touches, built from our behavioural models of AXI GPIO and AXI INTC
// (axi_gpio_model_core, axi_intc_model_core) at the base overlay's addresses, for tests.
//
//   0x4120_0000 switches_gpio      2 inputs, interrupt
//   0x4121_0000 btns_gpio          4 inputs, interrupt
//   0x4124_0000 rgbleds_gpio       6 outputs (2:0 LD4 blue/green/red, 5:3 LD5)
//   0x4125_0000 leds_gpio          4 outputs (with an interrupt on PYNQ-Z2, which never
//                                  fires: it has no inputs)
//   0x4180_0000 system_interrupts  level inputs; irq is IRQ_F2P[0], the `fabric` UIO device
//
// Each block decodes only the low 9 address bits, so a window aliases within its 64 KiB;
// other addresses read 0 and ignore writes. Interrupt-controller inputs, from the boards'
// base.tcl concat widths (video 6, two trace analyzers, [Z2: leds_gpio], the IOPs' concat
// (Z1: 3, Z2: 4), btns_gpio, switches_gpio):
//   BOARD_Z2 = 0 (PYNQ-Z1): 13 inputs, buttons 11, switches 12
//   BOARD_Z2 = 1 (PYNQ-Z2): 15 inputs, leds 8, buttons 13, switches 14
// Every other input comes from `intr_other`, so tests can play a notebook's interrupts.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pynq_base_model #(
    parameter integer BOARD_Z2 = 0
) (
    input  wire        s_axi_aclk,
    input  wire        s_axi_aresetn,
    input  wire [31:0] s_axi_awaddr,
    input  wire        s_axi_awvalid,
    output wire        s_axi_awready,
    input  wire [31:0] s_axi_wdata,
    input  wire [3:0]  s_axi_wstrb,
    input  wire        s_axi_wvalid,
    output wire        s_axi_wready,
    output wire [1:0]  s_axi_bresp,
    output wire        s_axi_bvalid,
    input  wire        s_axi_bready,
    input  wire [31:0] s_axi_araddr,
    input  wire        s_axi_arvalid,
    output wire        s_axi_arready,
    output wire [31:0] s_axi_rdata,
    output wire [1:0]  s_axi_rresp,
    output wire        s_axi_rvalid,
    input  wire        s_axi_rready,

    input  wire [3:0]  btns,
    input  wire [1:0]  sws,
    output wire [3:0]  leds,
    output wire [5:0]  rgbleds,
    input  wire [31:0] intr_other,
    output wire        irq
);

    localparam integer NUM_INTR = BOARD_Z2 != 0 ? 15 : 13;
    localparam integer BTN_BIT  = BOARD_Z2 != 0 ? 13 : 11;
    localparam integer SW_BIT   = BTN_BIT + 1;
    localparam integer LED_BIT  = 8;  // PYNQ-Z2 only

    localparam [15:0] W_SW = 16'h4120, W_BTN = 16'h4121, W_RGB = 16'h4124,
                      W_LED = 16'h4125, W_INTC = 16'h4180;

    wire        rst = !s_axi_aresetn;
    wire        reg_wr_en;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [31:0] reg_wr_addr;  // bits 15:9 alias within a window, as in the blocks
    wire [3:0]  reg_wr_strb;  // the blocks take every write as a full word
    wire [31:0] reg_rd_addr;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [31:0] reg_wr_data;
    wire        reg_rd_en;
    wire [31:0] reg_rd_data;

    pmq_axil_slave #(
        .ADDR_WIDTH(32)
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

    // ---- window decode: one select per block for writes and for reads ------------
    wire [4:0] wsel = {reg_wr_addr[31:16] == W_INTC, reg_wr_addr[31:16] == W_LED,
                       reg_wr_addr[31:16] == W_RGB, reg_wr_addr[31:16] == W_BTN,
                       reg_wr_addr[31:16] == W_SW};
    wire [4:0] rsel = {reg_rd_addr[31:16] == W_INTC, reg_rd_addr[31:16] == W_LED,
                       reg_rd_addr[31:16] == W_RGB, reg_rd_addr[31:16] == W_BTN,
                       reg_rd_addr[31:16] == W_SW};
    wire [31:0] rd_sw, rd_btn, rd_rgb, rd_led, rd_intc;

    // a block answers 0 when not read, so the OR is the selected block's word
    assign reg_rd_data = rd_sw | rd_btn | rd_rgb | rd_led | rd_intc;

    wire irq_sw, irq_btn, irq_led;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [1:0] sw_o, sw_t;
    wire [3:0] btn_o, btn_t;
    wire [5:0] rgb_t;
    wire [3:0] led_t;
    /* verilator lint_on UNUSEDSIGNAL */

    axi_gpio_model_core #(
        .GPIO_WIDTH(2), .ALL_INPUTS(1), .INTERRUPT_PRESENT(1)
    ) switches_gpio (
        .clk(s_axi_aclk), .rst(rst),
        .reg_wr_en(reg_wr_en && wsel[0]), .reg_wr_addr(reg_wr_addr[8:0]),
        .reg_wr_data(reg_wr_data),
        .reg_rd_en(reg_rd_en && rsel[0]), .reg_rd_addr(reg_rd_addr[8:0]),
        .reg_rd_data(rd_sw),
        .gpio_io_i(sws), .gpio_io_o(sw_o), .gpio_io_t(sw_t), .ip2intc_irpt(irq_sw)
    );

    axi_gpio_model_core #(
        .GPIO_WIDTH(4), .ALL_INPUTS(1), .INTERRUPT_PRESENT(1)
    ) btns_gpio (
        .clk(s_axi_aclk), .rst(rst),
        .reg_wr_en(reg_wr_en && wsel[1]), .reg_wr_addr(reg_wr_addr[8:0]),
        .reg_wr_data(reg_wr_data),
        .reg_rd_en(reg_rd_en && rsel[1]), .reg_rd_addr(reg_rd_addr[8:0]),
        .reg_rd_data(rd_btn),
        .gpio_io_i(btns), .gpio_io_o(btn_o), .gpio_io_t(btn_t), .ip2intc_irpt(irq_btn)
    );

    /* verilator lint_off PINCONNECTEMPTY */
    axi_gpio_model_core #(
        .GPIO_WIDTH(6), .ALL_OUTPUTS(1), .INTERRUPT_PRESENT(0)
    ) rgbleds_gpio (
        .clk(s_axi_aclk), .rst(rst),
        .reg_wr_en(reg_wr_en && wsel[2]), .reg_wr_addr(reg_wr_addr[8:0]),
        .reg_wr_data(reg_wr_data),
        .reg_rd_en(reg_rd_en && rsel[2]), .reg_rd_addr(reg_rd_addr[8:0]),
        .reg_rd_data(rd_rgb),
        .gpio_io_i(6'b0), .gpio_io_o(rgbleds), .gpio_io_t(rgb_t), .ip2intc_irpt()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    axi_gpio_model_core #(
        .GPIO_WIDTH(4), .ALL_OUTPUTS(1), .INTERRUPT_PRESENT(BOARD_Z2 != 0 ? 1 : 0)
    ) leds_gpio (
        .clk(s_axi_aclk), .rst(rst),
        .reg_wr_en(reg_wr_en && wsel[3]), .reg_wr_addr(reg_wr_addr[8:0]),
        .reg_wr_data(reg_wr_data),
        .reg_rd_en(reg_rd_en && rsel[3]), .reg_rd_addr(reg_rd_addr[8:0]),
        .reg_rd_data(rd_led),
        .gpio_io_i(4'b0), .gpio_io_o(leds), .gpio_io_t(led_t), .ip2intc_irpt(irq_led)
    );

    // ---- the controller's inputs: ours at the board's bits, the rest from outside --
    /* verilator lint_off UNUSEDSIGNAL */
    reg [31:0] intr_all;  // bits beyond this board's controller are not connected
    /* verilator lint_on UNUSEDSIGNAL */

    always @(*) begin
        intr_all = intr_other;
        intr_all[BTN_BIT] = irq_btn;
        intr_all[SW_BIT]  = irq_sw;
        if (BOARD_Z2 != 0) intr_all[LED_BIT] = irq_led;
    end

    axi_intc_model_core #(
        .NUM_INTR(NUM_INTR)
    ) system_interrupts (
        .clk(s_axi_aclk), .rst(rst),
        .reg_wr_en(reg_wr_en && wsel[4]), .reg_wr_addr(reg_wr_addr[8:0]),
        .reg_wr_data(reg_wr_data),
        .reg_rd_en(reg_rd_en && rsel[4]), .reg_rd_addr(reg_rd_addr[8:0]),
        .reg_rd_data(rd_intc),
        .intr(intr_all[NUM_INTR-1:0]), .irq(irq)
    );

endmodule

`resetall
