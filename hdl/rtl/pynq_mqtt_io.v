// pynq_mqtt_io: buttons in, LEDs out, over one AXI4-Lite slave.
//
//   btn -> pmq_sync -> pmq_debounce -> pmq_event_capture -> event FIFO -> EVT_POP/EVT_TS
//                         pmq_event_gen ----^                      `-> coalescing irq
//   AXI -> pmq_axil_slave -> register block (this file) -> pmq_led_pwm -> led
//
// The register map is generated from hdl/regmap/pynq_mqtt_io.toml into
// pynq_mqtt_io_regs.vh (constants), pynq_mqtt_io_decode.vh (strobes) and
// pynq_mqtt_io_readmux.vh (read multiplexer); docs/registers.md describes every register.
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
    // event FIFO entry: {synthetic, level, input, seq, timestamp}
    localparam integer EVT_WIDTH = 2 + IDX_WIDTH + SEQ_WIDTH + 32;

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

`include "pynq_mqtt_io_decode.vh"

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

    // the written value with unstrobed bytes as zeros (for set/clear/subtract registers)
    wire [31:0] wr_bits = apply_strb(32'd0, reg_wr_data, reg_wr_strb);

    localparam [N_INPUTS-1:0] INPUT_ONES = {N_INPUTS{1'b1}};
    localparam integer        PWM_WORDS = (N_LEDS + 3) / 4;

    // ---- time, inputs ----------------------------------------------------------
    wire [31:0] time_us;
    wire        tick_us;

    pmq_timebase #(
        .CLK_HZ(CLK_HZ)
    ) timebase (
        .clk(clk),
        .rst(rst),
        .time_us(time_us),
        .tick(tick_us)
    );

    reg  [15:0]         debounce_reg;
    reg  [N_INPUTS-1:0] input_enable_reg;
    reg  [N_INPUTS-1:0] edge_rise_reg;
    reg  [N_INPUTS-1:0] edge_fall_reg;
    wire [N_INPUTS-1:0] btn_sync;
    wire [N_INPUTS-1:0] btn_level;

    pmq_sync #(
        .WIDTH(N_INPUTS)
    ) sync (
        .clk(clk),
        .in_async(btn),
        .out_sync(btn_sync)
    );

    pmq_debounce #(
        .WIDTH(N_INPUTS),
        .TIME_WIDTH(16)
    ) debounce (
        .clk(clk),
        .rst(rst),
        .tick_us(tick_us),
        .lock_us(debounce_reg),
        .in(btn_sync),
        .out(btn_level)
    );

    wire [31:0] debounce_reg_wr = apply_strb({16'd0, debounce_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            debounce_reg <= PMQ_RESET_DEBOUNCE_US[15:0];
        end else if (pmq_wr_DEBOUNCE_US) begin
            debounce_reg <= debounce_reg_wr[15:0];
        end
    end

    wire [31:0] input_enable_reg_wr = apply_strb({{(32 - N_INPUTS){1'b0}}, input_enable_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            input_enable_reg <= INPUT_ONES;
        end else if (pmq_wr_INPUT_ENABLE) begin
            input_enable_reg <= input_enable_reg_wr[N_INPUTS-1:0];
        end
    end

    wire [31:0] edge_rise_reg_wr = apply_strb({{(32 - N_INPUTS){1'b0}}, edge_rise_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            edge_rise_reg <= INPUT_ONES;
        end else if (pmq_wr_EDGE_RISE) begin
            edge_rise_reg <= edge_rise_reg_wr[N_INPUTS-1:0];
        end
    end

    wire [31:0] edge_fall_reg_wr = apply_strb({{(32 - N_INPUTS){1'b0}}, edge_fall_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            edge_fall_reg <= INPUT_ONES;
        end else if (pmq_wr_EDGE_FALL) begin
            edge_fall_reg <= edge_fall_reg_wr[N_INPUTS-1:0];
        end
    end

    // ---- event generator -------------------------------------------------------
    reg  [31:0]         gen_count_reg;
    reg  [31:0]         gen_period_reg;
    reg  [N_INPUTS-1:0] gen_pattern_reg;
    wire                gen_running;
    wire [31:0]         gen_sent;
    wire                gen_done;
    wire                gen_valid;
    wire [IDX_WIDTH-1:0] gen_input;
    wire                gen_level;
    wire                gen_ready;
    wire [31:0]         gen_ctrl_next = apply_strb({31'd0, gen_running}, reg_wr_data, reg_wr_strb);

    pmq_event_gen #(
        .N_INPUTS(N_INPUTS),
        .IDX_WIDTH(IDX_WIDTH)
    ) generator (
        .clk(clk),
        .rst(rst),
        .start(pmq_wr_GEN_CTRL && gen_ctrl_next[PMQ_GEN_CTRL_ENABLE_LSB]),
        .stop(pmq_wr_GEN_CTRL && !gen_ctrl_next[PMQ_GEN_CTRL_ENABLE_LSB]),
        .count(gen_count_reg),
        .period(gen_period_reg),
        .pattern(gen_pattern_reg),
        .running(gen_running),
        .sent(gen_sent),
        .done(gen_done),
        .gen_valid(gen_valid),
        .gen_input(gen_input),
        .gen_level(gen_level),
        .gen_ready(gen_ready)
    );

    always @(posedge clk) begin
        if (rst) begin
            gen_count_reg <= PMQ_RESET_GEN_COUNT;
        end else if (pmq_wr_GEN_COUNT) begin
            gen_count_reg <= apply_strb(gen_count_reg, reg_wr_data, reg_wr_strb);
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            gen_period_reg <= PMQ_RESET_GEN_PERIOD;
        end else if (pmq_wr_GEN_PERIOD) begin
            gen_period_reg <= apply_strb(gen_period_reg, reg_wr_data, reg_wr_strb);
        end
    end

    wire [31:0] gen_pattern_reg_wr = apply_strb({{(32 - N_INPUTS){1'b0}}, gen_pattern_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            gen_pattern_reg <= PMQ_RESET_GEN_PATTERN[N_INPUTS-1:0];
        end else if (pmq_wr_GEN_PATTERN) begin
            gen_pattern_reg <= gen_pattern_reg_wr[N_INPUTS-1:0];
        end
    end

    // ---- capture and FIFO --------------------------------------------------------
    wire                  cap_valid;
    wire                  cap_synthetic;
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
        .level(btn_level),
        .enable(input_enable_reg),
        .rise(edge_rise_reg),
        .fall(edge_fall_reg),
        .time_us(time_us),
        .gen_valid(gen_valid),
        .gen_input(gen_input),
        .gen_level(gen_level),
        .gen_ready(gen_ready),
        .evt_valid(cap_valid),
        .evt_synthetic(cap_synthetic),
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
        .in_data({cap_synthetic, cap_level, cap_input, cap_seq, cap_ts}),
        .in_valid(cap_valid),
        .in_ready(fifo_in_ready),
        .out_data(head),
        .out_valid(head_valid),
        .out_ready(pop),
        .count(fifo_count)
    );

    wire                 head_synth = head[EVT_WIDTH-1];
    wire                 head_level = head[EVT_WIDTH-2];
    wire [IDX_WIDTH-1:0] head_input = head[SEQ_WIDTH+32 +: IDX_WIDTH];
    wire [SEQ_WIDTH-1:0] head_seq   = head[32 +: SEQ_WIDTH];
    wire [31:0]          head_ts    = head[31:0];

    assign pop = pmq_rd_EVT_POP && head_valid;

    reg [31:0] evt_ts_reg;
    reg [31:0] dropped_reg;

    always @(posedge clk) begin
        if (rst) begin
            evt_ts_reg <= PMQ_RESET_EVT_TS;
        end else if (pop) begin
            evt_ts_reg <= head_ts;
        end
    end

    // saturating both ways: a write subtracts (floor 0), losses add (ceiling 2^32-1)
    wire [31:0] dropped_left = (pmq_wr_DROPPED && wr_bits > dropped_reg) ? 32'd0
                             : dropped_reg - (pmq_wr_DROPPED ? wr_bits : 32'd0);
    wire [32:0] dropped_sum = {1'b0, dropped_left} + {{(33 - LOST_WIDTH){1'b0}}, lost_count};

    always @(posedge clk) begin
        if (rst) begin
            dropped_reg <= PMQ_RESET_DROPPED;
        end else begin
            dropped_reg <= dropped_sum[32] ? 32'hFFFFFFFF : dropped_sum[31:0];
        end
    end

    // ---- interrupt ---------------------------------------------------------------
    reg  [2:0]  irq_enable_reg;
    reg  [15:0] irq_threshold_reg;
    reg  [31:0] irq_timeout_reg;
    reg         overflow_reg;
    reg         gen_done_reg;
    reg         irq_reg;

    wire [15:0] waiting = {{(15 - FIFO_LOG2){1'b0}}, fifo_count};
    wire        due_count = (irq_threshold_reg != 16'd0) && (waiting >= irq_threshold_reg);
    // the head's own timestamp tells how long the oldest event has waited
    wire        due_age = head_valid && ((time_us - head_ts) >= irq_timeout_reg);
    wire        status_event = due_count || due_age;
    wire [2:0]  status = {gen_done_reg, overflow_reg, status_event};

    wire [31:0] irq_enable_reg_wr = apply_strb({29'd0, irq_enable_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            irq_enable_reg <= PMQ_RESET_IRQ_ENABLE[2:0];
        end else if (pmq_wr_IRQ_ENABLE) begin
            irq_enable_reg <= irq_enable_reg_wr[2:0];
        end
    end

    wire [31:0] irq_threshold_reg_wr = apply_strb({16'd0, irq_threshold_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            irq_threshold_reg <= PMQ_RESET_IRQ_THRESHOLD[15:0];
        end else if (pmq_wr_IRQ_THRESHOLD) begin
            irq_threshold_reg <= irq_threshold_reg_wr[15:0];
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            irq_timeout_reg <= PMQ_RESET_IRQ_TIMEOUT_US;
        end else if (pmq_wr_IRQ_TIMEOUT_US) begin
            irq_timeout_reg <= apply_strb(irq_timeout_reg, reg_wr_data, reg_wr_strb);
        end
    end

    // sticky causes: a new cause in the same cycle as its clear stays set
    always @(posedge clk) begin
        if (rst) begin
            overflow_reg <= 1'b0;
        end else if (lost_count != {LOST_WIDTH{1'b0}}) begin
            overflow_reg <= 1'b1;
        end else if (pmq_wr_IRQ_STATUS && wr_bits[PMQ_IRQ_STATUS_OVERFLOW_LSB]) begin
            overflow_reg <= 1'b0;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            gen_done_reg <= 1'b0;
        end else if (gen_done) begin
            gen_done_reg <= 1'b1;
        end else if (pmq_wr_IRQ_STATUS && wr_bits[PMQ_IRQ_STATUS_GEN_DONE_LSB]) begin
            gen_done_reg <= 1'b0;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            irq_reg <= 1'b0;
        end else begin
            irq_reg <= |(status & irq_enable_reg);
        end
    end

    // ---- LEDs ----------------------------------------------------------------------
    reg  [N_LEDS-1:0]     led_reg;
    reg  [32*PWM_WORDS-1:0] pwm_reg;
    wire [N_LEDS-1:0]     wr_led_bits = wr_bits[N_LEDS-1:0];

    wire [31:0] led_reg_wr = apply_strb({{(32 - N_LEDS){1'b0}}, led_reg}, reg_wr_data, reg_wr_strb);

    always @(posedge clk) begin
        if (rst) begin
            led_reg <= PMQ_RESET_LED[N_LEDS-1:0];
        end else if (pmq_wr_LED) begin
            led_reg <= led_reg_wr[N_LEDS-1:0];
        end else if (pmq_wr_LED_SET) begin
            led_reg <= led_reg | wr_led_bits;
        end else if (pmq_wr_LED_CLR) begin
            led_reg <= led_reg & ~wr_led_bits;
        end else if (pmq_wr_LED_TOGGLE) begin
            led_reg <= led_reg ^ wr_led_bits;
        end
    end

    genvar w;
    generate
        for (w = 0; w < PWM_WORDS; w = w + 1) begin : g_pwm_word
            always @(posedge clk) begin
                if (rst) begin
                    pwm_reg[32*w +: 32] <= PMQ_RESET_LED_PWM;
                end else if (pmq_wr_LED_PWM[w]) begin
                    pwm_reg[32*w +: 32] <= apply_strb(pwm_reg[32*w +: 32], reg_wr_data, reg_wr_strb);
                end
            end
        end
    endgenerate

    pmq_led_pwm #(
        .N_LEDS(N_LEDS)
    ) pwm (
        .clk(clk),
        .rst(rst),
        .on(led_reg),
        .brightness(pwm_reg[8*N_LEDS-1:0]),
        .led(led)
    );

    // ---- scratch ---------------------------------------------------------------------
    reg [31:0] scratch_reg;

    always @(posedge clk) begin
        if (rst) begin
            scratch_reg <= PMQ_RESET_SCRATCH;
        end else if (pmq_wr_SCRATCH) begin
            scratch_reg <= apply_strb(scratch_reg, reg_wr_data, reg_wr_strb);
        end
    end

    // ---- read values ---------------------------------------------------------------
    wire [31:0] pmq_rv_ID             = PMQ_ID_VALUE;
    wire [31:0] pmq_rv_VERSION        = {PMQ_VERSION_MAJOR, PMQ_VERSION_MINOR, 16'd0};
    wire [31:0] pmq_rv_SCRATCH        = scratch_reg;
    wire [31:0] pmq_rv_PARAMS         = {11'd0, FIFO_LOG2[4:0], N_LEDS[7:0], N_INPUTS[7:0]};
    wire [31:0] pmq_rv_CLK_HZ         = CLK_HZ;
    wire [31:0] pmq_rv_TIME           = time_us;
    wire [31:0] pmq_rv_IRQ_ENABLE     = {29'd0, irq_enable_reg};
    wire [31:0] pmq_rv_IRQ_STATUS     = {29'd0, status};
    wire [31:0] pmq_rv_IRQ_THRESHOLD  = {16'd0, irq_threshold_reg};
    wire [31:0] pmq_rv_IRQ_TIMEOUT_US = irq_timeout_reg;
    wire [31:0] pmq_rv_EVT_POP        = head_valid
                                        ? {1'b1, head_level, head_synth, 5'd0, head_input, head_seq}
                                        : 32'd0;
    wire [31:0] pmq_rv_EVT_TS         = evt_ts_reg;
    wire [31:0] pmq_rv_FIFO_LEVEL     = {{(31 - FIFO_LOG2){1'b0}}, fifo_count};
    wire [31:0] pmq_rv_DROPPED        = dropped_reg;
    wire [31:0] pmq_rv_INPUTS         = {{(32 - N_INPUTS){1'b0}}, btn_level};
    wire [31:0] pmq_rv_INPUTS_RAW     = {{(32 - N_INPUTS){1'b0}}, btn_sync};
    wire [31:0] pmq_rv_INPUT_ENABLE   = {{(32 - N_INPUTS){1'b0}}, input_enable_reg};
    wire [31:0] pmq_rv_EDGE_RISE      = {{(32 - N_INPUTS){1'b0}}, edge_rise_reg};
    wire [31:0] pmq_rv_EDGE_FALL      = {{(32 - N_INPUTS){1'b0}}, edge_fall_reg};
    wire [31:0] pmq_rv_DEBOUNCE_US    = {16'd0, debounce_reg};
    wire [31:0] pmq_rv_GEN_CTRL       = {31'd0, gen_running};
    wire [31:0] pmq_rv_GEN_COUNT      = gen_count_reg;
    wire [31:0] pmq_rv_GEN_PERIOD     = gen_period_reg;
    wire [31:0] pmq_rv_GEN_PATTERN    = {{(32 - N_INPUTS){1'b0}}, gen_pattern_reg};
    wire [31:0] pmq_rv_GEN_SENT       = gen_sent;
    wire [31:0] pmq_rv_LED            = {{(32 - N_LEDS){1'b0}}, led_reg};
    wire [255:0] pmq_rv_LED_PWM       = {{(256 - 32 * PWM_WORDS){1'b0}}, pwm_reg};

`include "pynq_mqtt_io_readmux.vh"

    assign irq = irq_reg;

    // AXI protection bits carry nothing for this slave; the merged write values are
    // wider than the registers they feed
    wire unused_ok = &{1'b0, s_axi_awprot, s_axi_arprot, reg_wr_addr[1:0], reg_rd_addr[1:0],
                       debounce_reg_wr, input_enable_reg_wr, edge_rise_reg_wr, edge_fall_reg_wr,
                       gen_pattern_reg_wr, irq_enable_reg_wr, irq_threshold_reg_wr, led_reg_wr};

endmodule

`resetall
