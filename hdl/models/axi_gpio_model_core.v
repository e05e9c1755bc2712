// MODEL, NOT XILINX IP. Register block of a behavioural model of AXI GPIO, written from the
// register map of the AXI GPIO product guide (PG144) for our tests of the daemon on PYNQ's
// stock base overlay. It is not Xilinx's RTL and claims nothing about it beyond the map.
//
// One channel (the base overlay's blocks are single-channel), behind a plain register port
// (see pmq_axil_slave): write strobe and a combinational read.
//
//   0x000 GPIO_DATA  inputs: the synchronized pins; outputs: the output register
//   0x004 GPIO_TRI   1 = input; fixed all-ones (ALL_INPUTS) or zero (ALL_OUTPUTS)
//   0x11C GIER       bit 31: global interrupt enable
//   0x120 IP ISR     bit 0: channel 1 status, set by any change of an input pin;
//                    toggle-on-write (writing 1 flips it, so software writes back only
//                    the bits it read as 1)
//   0x128 IP IER     bit 0: channel 1 enable
//   others           read 0, writes ignored (also the interrupt registers when
//                    INTERRUPT_PRESENT = 0)
//
// The status bit records a change whatever the enables; ip2intc_irpt is the registered
// GIER & (ISR & IER), a level held until software clears the status. Inputs pass two flops
// before anyone sees them, so a pin change is visible in GPIO_DATA and in ISR in the same
// clock. WSTRB is ignored: every write is a full word.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module axi_gpio_model_core #(
    parameter integer     GPIO_WIDTH        = 4,
    parameter integer     ALL_INPUTS        = 0,
    parameter integer     ALL_OUTPUTS       = 0,
    parameter integer     INTERRUPT_PRESENT = 1,
    parameter [31:0]      DOUT_DEFAULT      = 32'h0000_0000,
    parameter [31:0]      TRI_DEFAULT       = 32'hFFFF_FFFF
) (
    input  wire                  clk,
    input  wire                  rst,

    input  wire                  reg_wr_en,
    input  wire [8:0]            reg_wr_addr,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [31:0]           reg_wr_data,  // narrow channels use the low bits only
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire                  reg_rd_en,
    input  wire [8:0]            reg_rd_addr,
    output reg  [31:0]           reg_rd_data,

    input  wire [GPIO_WIDTH-1:0] gpio_io_i,
    output wire [GPIO_WIDTH-1:0] gpio_io_o,
    output wire [GPIO_WIDTH-1:0] gpio_io_t,
    output wire                  ip2intc_irpt
);

    localparam [8:0] A_DATA = 9'h000, A_TRI = 9'h004, A_GIER = 9'h11C,
                     A_ISR = 9'h120, A_IER = 9'h128;
    localparam       HAS_IRQ = INTERRUPT_PRESENT != 0;

    // ---- pins ------------------------------------------------------------------
    reg [GPIO_WIDTH-1:0] dout_reg;
    reg [GPIO_WIDTH-1:0] tri_reg;
    reg [GPIO_WIDTH-1:0] meta_reg;
    reg [GPIO_WIDTH-1:0] sync_reg;
    reg [GPIO_WIDTH-1:0] seen_reg;

    wire [GPIO_WIDTH-1:0] tri_now = ALL_INPUTS != 0  ? {GPIO_WIDTH{1'b1}} :
                                    ALL_OUTPUTS != 0 ? {GPIO_WIDTH{1'b0}} : tri_reg;
    wire [GPIO_WIDTH-1:0] data_now = (sync_reg & tri_now) | (dout_reg & ~tri_now);
    // only pins that are inputs can interrupt; an all-outputs block never does
    wire input_changed = |((sync_reg ^ seen_reg) & tri_now);

    assign gpio_io_o = dout_reg;
    assign gpio_io_t = tri_now;

    always @(posedge clk) begin
        meta_reg <= gpio_io_i;
        sync_reg <= meta_reg;
        seen_reg <= sync_reg;
    end

    wire wr_data = reg_wr_en && reg_wr_addr == A_DATA;
    wire wr_tri  = reg_wr_en && reg_wr_addr == A_TRI;
    wire wr_gier = reg_wr_en && reg_wr_addr == A_GIER && HAS_IRQ;
    wire wr_isr  = reg_wr_en && reg_wr_addr == A_ISR && HAS_IRQ;
    wire wr_ier  = reg_wr_en && reg_wr_addr == A_IER && HAS_IRQ;

    always @(posedge clk) begin
        if (rst) begin
            dout_reg <= DOUT_DEFAULT[GPIO_WIDTH-1:0];
            tri_reg  <= TRI_DEFAULT[GPIO_WIDTH-1:0];
        end else begin
            if (wr_data) dout_reg <= reg_wr_data[GPIO_WIDTH-1:0];
            if (wr_tri)  tri_reg  <= reg_wr_data[GPIO_WIDTH-1:0];
        end
    end

    // ---- interrupt ---------------------------------------------------------------
    reg gier_reg;
    reg isr_reg;
    reg ier_reg;
    reg irq_reg;

    // a change in the very clock of a toggle-on-write that clears the bit wins: the
    // status ends set, so no change is ever lost to a clear
    wire isr_toggled = wr_isr && reg_wr_data[0] ? !isr_reg : isr_reg;
    wire isr_next    = HAS_IRQ && (input_changed || isr_toggled);

    always @(posedge clk) begin
        if (rst) begin
            gier_reg <= 1'b0;
            isr_reg  <= 1'b0;
            ier_reg  <= 1'b0;
            irq_reg  <= 1'b0;
        end else begin
            if (wr_gier) gier_reg <= reg_wr_data[31];
            if (wr_ier)  ier_reg  <= reg_wr_data[0];
            isr_reg <= isr_next;
            irq_reg <= gier_reg && isr_reg && ier_reg;
        end
    end

    assign ip2intc_irpt = irq_reg;

    // ---- read ----------------------------------------------------------------------
    reg [31:0] data_word;
    reg [31:0] tri_word;

    always @(*) begin
        data_word = 32'h0;
        tri_word  = 32'h0;
        data_word[GPIO_WIDTH-1:0] = data_now;
        tri_word[GPIO_WIDTH-1:0]  = tri_now;
    end

    always @(*) begin
        reg_rd_data = 32'h0;
        if (reg_rd_en) begin
            case (reg_rd_addr)
                A_DATA: reg_rd_data = data_word;
                A_TRI:  reg_rd_data = tri_word;
                A_GIER: reg_rd_data = HAS_IRQ ? {gier_reg, 31'h0} : 32'h0;
                A_ISR:  reg_rd_data = HAS_IRQ ? {31'h0, isr_reg} : 32'h0;
                A_IER:  reg_rd_data = HAS_IRQ ? {31'h0, ier_reg} : 32'h0;
                default: reg_rd_data = 32'h0;
            endcase
        end
    end

endmodule

`resetall
