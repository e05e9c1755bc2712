// pynq_mqtt_io: buttons in, LEDs out, over one AXI4-Lite slave.
//
//   btn -> pmq_sync -> pmq_event_capture -> event FIFO -> EVT_POP / EVT_TS, irq
//   AXI -> pmq_axil_slave -> register block (this file) -> led
//
// The register map is generated from hdl/regmap/pynq_mqtt_io.toml into
// pynq_mqtt_io_regs.vh; docs/registers.md describes every register.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pynq_mqtt_io #(
    parameter integer N_INPUTS = 4,          // 1..32
    parameter integer N_LEDS = 4,            // 1..32
    parameter integer FIFO_DEPTH = 512,      // a power of two, 4..32768
    parameter integer CLK_HZ = 100000000,    // a whole number of MHz
    parameter integer C_S_AXI_ADDR_WIDTH = 16
) (
    input  wire                          s_axi_aclk,
    input  wire                          s_axi_aresetn,

    input  wire [C_S_AXI_ADDR_WIDTH-1:0] s_axi_awaddr,
    input  wire [2:0]                    s_axi_awprot,
    input  wire                          s_axi_awvalid,
    output wire                          s_axi_awready,
    input  wire [31:0]                   s_axi_wdata,
    input  wire [3:0]                    s_axi_wstrb,
    input  wire                          s_axi_wvalid,
    output wire                          s_axi_wready,
    output wire [1:0]                    s_axi_bresp,
    output wire                          s_axi_bvalid,
    input  wire                          s_axi_bready,
    input  wire [C_S_AXI_ADDR_WIDTH-1:0] s_axi_araddr,
    input  wire [2:0]                    s_axi_arprot,
    input  wire                          s_axi_arvalid,
    output wire                          s_axi_arready,
    output wire [31:0]                   s_axi_rdata,
    output wire [1:0]                    s_axi_rresp,
    output wire                          s_axi_rvalid,
    input  wire                          s_axi_rready,

    input  wire [N_INPUTS-1:0]           btn,
    output wire [N_LEDS-1:0]             led,
    output wire                          irq
);

`include "pynq_mqtt_io_regs.vh"

    localparam integer AW = C_S_AXI_ADDR_WIDTH;
    localparam integer FIFO_LOG2 = $clog2(FIFO_DEPTH);
    localparam integer SEQ_WIDTH = PMQ_EVT_POP_SEQ_WIDTH;
    localparam integer IDX_WIDTH = PMQ_EVT_POP_INPUT_WIDTH;
    localparam integer LOST_WIDTH = $clog2(N_INPUTS + 2);
    // event FIFO entry: {level, input, seq, timestamp}
    localparam integer EVT_WIDTH = 1 + IDX_WIDTH + SEQ_WIDTH + 32;

    wire clk = s_axi_aclk;
    wire rst = !s_axi_aresetn;

    // ---- AXI4-Lite front end ---------------------------------------------------
    wire          reg_wr_en;
    wire [AW-1:0] reg_wr_addr;
    wire [31:0]   reg_wr_data;
    wire [3:0]    reg_wr_strb;
    wire          reg_rd_en;
    wire [AW-1:0] reg_rd_addr;
    reg  [31:0]   reg_rd_data;

    pmq_axil_slave #(
        .ADDR_WIDTH(AW)
    ) axil (
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

    // word addresses: the two low address bits never select a register
    wire [AW-1:0] wr_word = {reg_wr_addr[AW-1:2], 2'b00};
    wire [AW-1:0] rd_word = {reg_rd_addr[AW-1:2], 2'b00};

    function [31:0] apply_strb;
        input [31:0] old;
        input [31:0] data;
        input [3:0]  strb;
        integer b;
        begin
            for (b = 0; b < 4; b = b + 1) begin
                apply_strb[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];
            end
        end
    endfunction

    // ---- inputs, time, events ------------------------------------------------
    wire [N_INPUTS-1:0] btn_sync;
    wire [31:0]         time_us;

    pmq_sync #(
        .WIDTH(N_INPUTS)
    ) sync (
        .clk(clk),
        .in_async(btn),
        .out_sync(btn_sync)
    );

    pmq_timebase #(
        .CLK_HZ(CLK_HZ)
    ) timebase (
        .clk(clk),
        .rst(rst),
        .time_us(time_us)
    );

    wire                  cap_valid;
    wire [IDX_WIDTH-1:0]  cap_input;
    wire                  cap_level;
    wire [31:0]           cap_ts;
    wire [SEQ_WIDTH-1:0]  cap_seq;
    wire                  fifo_in_ready;
    wire [LOST_WIDTH-1:0] lost_count;

    pmq_event_capture #(
        .N_INPUTS(N_INPUTS),
        .SEQ_WIDTH(SEQ_WIDTH),
        .IDX_WIDTH(IDX_WIDTH),
        .LOST_WIDTH(LOST_WIDTH)
    ) capture (
        .clk(clk),
        .rst(rst),
        .level(btn_sync),
        .time_us(time_us),
        .evt_valid(cap_valid),
        .evt_input(cap_input),
        .evt_level(cap_level),
        .evt_ts(cap_ts),
        .evt_seq(cap_seq),
        .evt_ready(fifo_in_ready),
        .lost_count(lost_count)
    );

    wire [EVT_WIDTH-1:0] head;
    wire                 head_valid;
    wire                 pop;
    wire [FIFO_LOG2:0]   fifo_count;

    pmq_fifo #(
        .WIDTH(EVT_WIDTH),
        .DEPTH_LOG2(FIFO_LOG2)
    ) event_fifo (
        .clk(clk),
        .rst(rst),
        .in_data({cap_level, cap_input, cap_seq, cap_ts}),
        .in_valid(cap_valid),
        .in_ready(fifo_in_ready),
        .out_data(head),
        .out_valid(head_valid),
        .out_ready(pop),
        .count(fifo_count)
    );

    wire                 head_level = head[EVT_WIDTH-1];
    wire [IDX_WIDTH-1:0] head_input = head[SEQ_WIDTH+32 +: IDX_WIDTH];
    wire [SEQ_WIDTH-1:0] head_seq   = head[32 +: SEQ_WIDTH];
    wire [31:0]          head_ts    = head[31:0];

    // ---- register block --------------------------------------------------------
    reg [31:0] scratch_reg;
    reg [31:0] irq_enable_reg;
    reg [31:0] dropped_reg;
    reg [31:0] led_reg;
    reg [31:0] evt_ts_reg;
    reg        irq_reg;

    wire wr_scratch    = reg_wr_en && (wr_word == PMQ_ADDR_SCRATCH);
    wire wr_irq_enable = reg_wr_en && (wr_word == PMQ_ADDR_IRQ_ENABLE);
    wire wr_dropped    = reg_wr_en && (wr_word == PMQ_ADDR_DROPPED);
    wire wr_led        = reg_wr_en && (wr_word == PMQ_ADDR_LED);
    wire rd_pop        = reg_rd_en && (rd_word == PMQ_ADDR_EVT_POP);

    assign pop = rd_pop && head_valid;

    localparam [31:0] IRQ_ENABLE_MASK = 32'h1 << PMQ_IRQ_ENABLE_EVENT_LSB;
    localparam [31:0] LED_MASK = (N_LEDS >= 32) ? 32'hFFFFFFFF : ((32'h1 << N_LEDS) - 32'h1);

    always @(posedge clk) begin
        if (rst) begin
            scratch_reg <= PMQ_RESET_SCRATCH;
        end else if (wr_scratch) begin
            scratch_reg <= apply_strb(scratch_reg, reg_wr_data, reg_wr_strb);
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            irq_enable_reg <= PMQ_RESET_IRQ_ENABLE;
        end else if (wr_irq_enable) begin
            irq_enable_reg <= apply_strb(irq_enable_reg, reg_wr_data, reg_wr_strb) & IRQ_ENABLE_MASK;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            led_reg <= PMQ_RESET_LED;
        end else if (wr_led) begin
            led_reg <= apply_strb(led_reg, reg_wr_data, reg_wr_strb) & LED_MASK;
        end
    end

    // saturating; a clear and a loss in the same cycle leave the new loss counted
    wire [32:0] dropped_sum = {1'b0, wr_dropped ? 32'd0 : dropped_reg}
                            + {{(33 - LOST_WIDTH){1'b0}}, lost_count};

    always @(posedge clk) begin
        if (rst) begin
            dropped_reg <= PMQ_RESET_DROPPED;
        end else begin
            dropped_reg <= dropped_sum[32] ? 32'hFFFFFFFF : dropped_sum[31:0];
        end
    end

    always @(posedge clk) begin
        if (pop) begin
            evt_ts_reg <= head_ts;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            irq_reg <= 1'b0;
        end else begin
            irq_reg <= irq_enable_reg[PMQ_IRQ_ENABLE_EVENT_LSB] && head_valid;
        end
    end

    always @(*) begin
        reg_rd_data = 32'd0;
        case (rd_word)
            PMQ_ADDR_ID:         reg_rd_data = PMQ_ID_VALUE;
            PMQ_ADDR_VERSION:    reg_rd_data = {PMQ_VERSION_MAJOR, PMQ_VERSION_MINOR, 16'd0};
            PMQ_ADDR_SCRATCH:    reg_rd_data = scratch_reg;
            PMQ_ADDR_PARAMS:     reg_rd_data = {11'd0, FIFO_LOG2[4:0], N_LEDS[7:0], N_INPUTS[7:0]};
            PMQ_ADDR_CLK_HZ:     reg_rd_data = CLK_HZ;
            PMQ_ADDR_TIME:       reg_rd_data = time_us;
            PMQ_ADDR_IRQ_ENABLE: reg_rd_data = irq_enable_reg;
            PMQ_ADDR_FIFO_LEVEL: reg_rd_data = {{(31 - FIFO_LOG2){1'b0}}, fifo_count};
            PMQ_ADDR_DROPPED:    reg_rd_data = dropped_reg;
            PMQ_ADDR_INPUTS:     reg_rd_data = {{(32 - N_INPUTS){1'b0}}, btn_sync};
            PMQ_ADDR_EVT_POP:    reg_rd_data = head_valid
                                     ? {1'b1, head_level, 6'd0, head_input, head_seq}
                                     : 32'd0;
            PMQ_ADDR_EVT_TS:     reg_rd_data = evt_ts_reg;
            PMQ_ADDR_LED:        reg_rd_data = led_reg;
            default:             reg_rd_data = 32'd0;
        endcase
    end

    assign led = led_reg[N_LEDS-1:0];
    assign irq = irq_reg;

    // AXI protection bits carry nothing for this slave
    wire unused_ok = &{1'b0, s_axi_awprot, s_axi_arprot, reg_wr_addr[1:0], reg_rd_addr[1:0]};

endmodule

`resetall
