// pynq_mqtt_io: buttons in, LEDs out, over one AXI4-Lite slave.
//
//   btn -> pmq_sync -> pmq_debounce -> pmq_event_capture -> event FIFO -> EVT_POP/EVT_TS
//          (WITH_GEN) pmq_event_gen ----^                      `-> coalescing irq
//   AXI -> pmq_axil_slave -> pmq_regs (generated) -> pmq_led_pwm -> led
//
// The register block pmq_regs.v (storage, reset, access behaviour and read packing of
// every register) and pynq_mqtt_io_regs.vh (field positions) are generated from
// hdl/regmap/pynq_mqtt_io.toml; this file sees only their hardware-side signals
// (reg2hw_*, hw2reg_*). docs/registers.md describes every register.
//
// WITH_GEN = 1 builds the event generator, a test instrument (benchmarks, the
// interrupt self-test, the simulated board); with 0, the default, neither it nor its
// registers' storage exist, the GEN_* registers read 0 and PARAMS.GENERATOR says so.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pynq_mqtt_io #(
    parameter integer N_INPUTS = 4,          // 1..32
    parameter integer N_LEDS = 4,            // 1..32
    parameter integer FIFO_DEPTH = 512,      // a power of two, 4..32768
    parameter integer CLK_HZ = 100000000,    // a whole number of MHz
    parameter integer WITH_GEN = 0,          // 1: the event generator (GEN_* registers)
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
    wire [31:0]   reg_rd_data;

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


    // ---- hardware-side signals of the generated register block -----------------
    wire [31:0]           reg2hw_scratch;
    wire                  reg2hw_irq_enable_event;
    wire                  reg2hw_irq_enable_overflow;
    wire                  reg2hw_irq_enable_gen_done;
    wire                  reg2hw_irq_status_overflow;
    wire                  reg2hw_irq_status_gen_done;
    wire [15:0]           reg2hw_irq_threshold_count;
    wire [31:0]           reg2hw_irq_timeout_us;
    wire                  reg2hw_evt_pop_re;
    wire [31:0]           reg2hw_evt_ts;
    wire [31:0]           reg2hw_dropped;
    wire [N_INPUTS-1:0]   reg2hw_input_enable;
    wire [N_INPUTS-1:0]   reg2hw_edge_rise;
    wire [N_INPUTS-1:0]   reg2hw_edge_fall;
    wire [15:0]           reg2hw_debounce_us_time;
    wire                  reg2hw_gen_ctrl_qe;
    wire                  reg2hw_gen_ctrl_enable;
    wire [31:0]           reg2hw_gen_count;
    wire [31:0]           reg2hw_gen_period;
    wire [N_INPUTS-1:0]   reg2hw_gen_pattern;
    wire [N_LEDS-1:0]     reg2hw_led;
    wire                  reg2hw_led_set_qe;
    wire [N_LEDS-1:0]     reg2hw_led_set;
    wire                  reg2hw_led_clr_qe;
    wire [N_LEDS-1:0]     reg2hw_led_clr;
    wire                  reg2hw_led_toggle_qe;
    wire [N_LEDS-1:0]     reg2hw_led_toggle;
    wire [8*N_LEDS-1:0]   reg2hw_led_pwm;

    wire [31:0]           time_us;
    wire                  tick_us;
    wire                  status_event;
    wire                  lost_any;
    wire                  gen_done;
    wire                  gen_running;
    wire [31:0]           gen_sent;
    wire                  head_valid;
    wire [EVT_WIDTH-1:0]  head;
    wire [FIFO_LOG2:0]    fifo_count;
    wire [LOST_WIDTH-1:0] lost_count;
    wire [N_INPUTS-1:0]   btn_sync;
    wire [N_INPUTS-1:0]   btn_level;
    wire [N_LEDS-1:0]     led_next;

    // an empty FIFO reads as all zeros (VALID = 0): pmq_fifo's head is zero while invalid
    wire                  head_synth = head[EVT_WIDTH-1];
    wire                  head_level = head[EVT_WIDTH-2];
    wire [IDX_WIDTH-1:0]  head_input = head[SEQ_WIDTH+32 +: IDX_WIDTH];
    wire [SEQ_WIDTH-1:0]  head_seq   = head[32 +: SEQ_WIDTH];
    wire [31:0]           head_ts    = head[31:0];
    wire                  pop = reg2hw_evt_pop_re && head_valid;

    pmq_regs #(
        .N_INPUTS(N_INPUTS),
        .N_LEDS(N_LEDS),
        .FIFO_DEPTH(FIFO_DEPTH),
        .CLK_HZ(CLK_HZ),
        .WITH_GEN(WITH_GEN),
        .ADDR_WIDTH(AW)
    ) regs (
        .clk(clk),
        .rst(rst),
        .reg_wr_en(reg_wr_en),
        .reg_wr_addr(reg_wr_addr),
        .reg_wr_data(reg_wr_data),
        .reg_wr_strb(reg_wr_strb),
        .reg_rd_en(reg_rd_en),
        .reg_rd_addr(reg_rd_addr),
        .reg_rd_data(reg_rd_data),
        .reg2hw_scratch(reg2hw_scratch),
        .hw2reg_time(time_us),
        .reg2hw_irq_enable_event(reg2hw_irq_enable_event),
        .reg2hw_irq_enable_overflow(reg2hw_irq_enable_overflow),
        .reg2hw_irq_enable_gen_done(reg2hw_irq_enable_gen_done),
        .hw2reg_irq_status_event(status_event),
        .reg2hw_irq_status_overflow(reg2hw_irq_status_overflow),
        .hw2reg_irq_status_overflow_set(lost_any),
        .reg2hw_irq_status_gen_done(reg2hw_irq_status_gen_done),
        .hw2reg_irq_status_gen_done_set(gen_done),
        .reg2hw_irq_threshold_count(reg2hw_irq_threshold_count),
        .reg2hw_irq_timeout_us(reg2hw_irq_timeout_us),
        .reg2hw_evt_pop_re(reg2hw_evt_pop_re),
        .hw2reg_evt_pop_seq(head_seq),
        .hw2reg_evt_pop_input(head_input),
        .hw2reg_evt_pop_synthetic(head_synth),
        .hw2reg_evt_pop_level(head_level),
        .hw2reg_evt_pop_valid(head_valid),
        .reg2hw_evt_ts(reg2hw_evt_ts),
        .hw2reg_evt_ts_d(head_ts),
        .hw2reg_evt_ts_de(pop),
        .hw2reg_fifo_level_count({{(15 - FIFO_LOG2){1'b0}}, fifo_count}),
        .reg2hw_dropped(reg2hw_dropped),
        .hw2reg_dropped_add({{(PMQ_DROPPED_ADD_WIDTH - LOST_WIDTH){1'b0}}, lost_count}),
        .hw2reg_inputs(btn_level),
        .hw2reg_inputs_raw(btn_sync),
        .reg2hw_input_enable(reg2hw_input_enable),
        .reg2hw_edge_rise(reg2hw_edge_rise),
        .reg2hw_edge_fall(reg2hw_edge_fall),
        .reg2hw_debounce_us_time(reg2hw_debounce_us_time),
        .reg2hw_gen_ctrl_qe(reg2hw_gen_ctrl_qe),
        .hw2reg_gen_ctrl_enable(gen_running),
        .reg2hw_gen_ctrl_enable(reg2hw_gen_ctrl_enable),
        .reg2hw_gen_count(reg2hw_gen_count),
        .reg2hw_gen_period(reg2hw_gen_period),
        .reg2hw_gen_pattern(reg2hw_gen_pattern),
        .hw2reg_gen_sent(gen_sent),
        .reg2hw_led(reg2hw_led),
        .hw2reg_led_d(led_next),
        .hw2reg_led_de(reg2hw_led_set_qe || reg2hw_led_clr_qe || reg2hw_led_toggle_qe),
        .reg2hw_led_set_qe(reg2hw_led_set_qe),
        .reg2hw_led_set(reg2hw_led_set),
        .reg2hw_led_clr_qe(reg2hw_led_clr_qe),
        .reg2hw_led_clr(reg2hw_led_clr),
        .reg2hw_led_toggle_qe(reg2hw_led_toggle_qe),
        .reg2hw_led_toggle(reg2hw_led_toggle),
        .reg2hw_led_pwm(reg2hw_led_pwm)
    );

    // ---- time, inputs ----------------------------------------------------------
    pmq_timebase #(
        .CLK_HZ(CLK_HZ)
    ) timebase (
        .clk(clk),
        .rst(rst),
        .time_us(time_us),
        .tick(tick_us)
    );

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
        .lock_us(reg2hw_debounce_us_time),
        .in(btn_sync),
        .out(btn_level)
    );

    // ---- event generator -------------------------------------------------------
    wire                 gen_valid;
    wire [IDX_WIDTH-1:0] gen_input;
    wire                 gen_level;
    wire                 gen_ready;

    generate
        if (WITH_GEN != 0) begin : g_gen
            pmq_event_gen #(
                .N_INPUTS(N_INPUTS),
                .IDX_WIDTH(IDX_WIDTH)
            ) generator (
                .clk(clk),
                .rst(rst),
                .start(reg2hw_gen_ctrl_qe && reg2hw_gen_ctrl_enable),
                .stop(reg2hw_gen_ctrl_qe && !reg2hw_gen_ctrl_enable),
                .count(reg2hw_gen_count),
                .period(reg2hw_gen_period),
                .pattern(reg2hw_gen_pattern),
                .running(gen_running),
                .sent(gen_sent),
                .done(gen_done),
                .gen_valid(gen_valid),
                .gen_input(gen_input),
                .gen_level(gen_level),
                .gen_ready(gen_ready)
            );
        end else begin : g_no_gen
            // the register block reads 0 for every GEN_* register in this build
            assign gen_running = 1'b0;
            assign gen_sent = 32'd0;
            assign gen_done = 1'b0;
            assign gen_valid = 1'b0;
            assign gen_input = {IDX_WIDTH{1'b0}};
            assign gen_level = 1'b0;
            wire unused_ok = &{1'b0, reg2hw_gen_ctrl_qe, reg2hw_gen_ctrl_enable, reg2hw_gen_count,
                               reg2hw_gen_period, reg2hw_gen_pattern, gen_ready};
        end
    endgenerate

    // ---- capture and FIFO --------------------------------------------------------
    wire                  cap_valid;
    wire                  cap_synthetic;
    wire [IDX_WIDTH-1:0]  cap_input;
    wire                  cap_level;
    wire [31:0]           cap_ts;
    wire [SEQ_WIDTH-1:0]  cap_seq;
    wire                  fifo_in_ready;

    pmq_event_capture #(
        .N_INPUTS(N_INPUTS),
        .SEQ_WIDTH(SEQ_WIDTH),
        .IDX_WIDTH(IDX_WIDTH),
        .WITH_GEN(WITH_GEN),
        .LOST_WIDTH(LOST_WIDTH)
    ) capture (
        .clk(clk),
        .rst(rst),
        .level(btn_level),
        .enable(reg2hw_input_enable),
        .rise(reg2hw_edge_rise),
        .fall(reg2hw_edge_fall),
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

    assign lost_any = (lost_count != {LOST_WIDTH{1'b0}});

    // ---- interrupt ---------------------------------------------------------------
    wire [15:0] waiting = {{(15 - FIFO_LOG2){1'b0}}, fifo_count};
    wire        due_count = (reg2hw_irq_threshold_count != 16'd0)
                         && (waiting >= reg2hw_irq_threshold_count);
    // the head's own timestamp tells how long the oldest event has waited
    wire        due_age = head_valid && ((time_us - head_ts) >= reg2hw_irq_timeout_us);
    assign status_event = due_count || due_age;

    reg irq_reg;

    always @(posedge clk) begin
        if (rst) begin
            irq_reg <= 1'b0;
        end else begin
            irq_reg <= (status_event && reg2hw_irq_enable_event)
                    || (reg2hw_irq_status_overflow && reg2hw_irq_enable_overflow)
                    || (reg2hw_irq_status_gen_done && reg2hw_irq_enable_gen_done);
        end
    end

    assign irq = irq_reg;

    // ---- LEDs ----------------------------------------------------------------------
    // LED_SET, LED_CLR and LED_TOGGLE load LED; one bus write per clock, so at most one acts
    assign led_next = reg2hw_led_set_qe ? (reg2hw_led | reg2hw_led_set)
                    : reg2hw_led_clr_qe ? (reg2hw_led & ~reg2hw_led_clr)
                    : (reg2hw_led ^ reg2hw_led_toggle);

    pmq_led_pwm #(
        .N_LEDS(N_LEDS)
    ) pwm (
        .clk(clk),
        .rst(rst),
        .on(reg2hw_led),
        .brightness(reg2hw_led_pwm),
        .led(led)
    );

    // AXI protection bits carry nothing for this slave; SCRATCH, EVT_TS and DROPPED are
    // for the host only
    wire unused_ok = &{1'b0, s_axi_awprot, s_axi_arprot, reg2hw_scratch, reg2hw_evt_ts,
                       reg2hw_dropped};

endmodule

`resetall
