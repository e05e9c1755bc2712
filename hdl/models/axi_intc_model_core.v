// MODEL, NOT XILINX IP. Register block of a behavioural model of AXI INTC, written from the
// register map of the AXI Interrupt Controller product guide (PG099) for our tests of the
// daemon on PYNQ's stock base overlay. It is not Xilinx's RTL and claims nothing about it
// beyond the map.
//
// Behind a plain register port (see pmq_axil_slave): write strobe and combinational read.
//
//   0x00 ISR  status: an input's bit is recorded whatever IER says and held until
//             acknowledged; while MER.HIE = 0 software writes set bits (and inputs are
//             ignored), once HIE = 1 writes have no effect
//   0x04 IPR  pending: ISR & IER (read-only)
//   0x08 IER  enable
//   0x0C IAR  acknowledge: writing 1 clears that ISR bit (write-only, reads 0)
//   0x10 SIE  writing 1 sets that IER bit, 0 leaves it (write-only, reads 0)
//   0x14 CIE  writing 1 clears that IER bit, 0 leaves it (write-only, reads 0)
//   0x18 IVR  number of the lowest pending input, all ones if none
//   0x1C MER  bit 0 ME (master enable of irq), bit 1 HIE (hardware interrupts enabled;
//             once set, only reset clears it)
//   others    read 0, writes ignored
//
// Inputs: KIND_OF_INTR bit n = 1 makes input n rising-edge sensitive, 0 high-level
// sensitive. A level input still high after its acknowledge is recorded again in the next
// clock, so acknowledging before clearing the source just raises the interrupt again.
// irq is a registered active-high level: ME & |(ISR & IER).
`resetall
`timescale 1ns / 1ps
`default_nettype none

module axi_intc_model_core #(
    parameter integer NUM_INTR     = 16,
    parameter [31:0]  KIND_OF_INTR = 32'h0000_0000
) (
    input  wire                clk,
    input  wire                rst,

    input  wire                reg_wr_en,
    input  wire [8:0]          reg_wr_addr,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [31:0]         reg_wr_data,  // fewer than 32 inputs use the low bits only
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire                reg_rd_en,
    input  wire [8:0]          reg_rd_addr,
    output reg  [31:0]         reg_rd_data,

    input  wire [NUM_INTR-1:0] intr,
    output wire                irq
);

    localparam [8:0] A_ISR = 9'h00, A_IPR = 9'h04, A_IER = 9'h08, A_IAR = 9'h0C,
                     A_SIE = 9'h10, A_CIE = 9'h14, A_IVR = 9'h18, A_MER = 9'h1C;
    localparam [NUM_INTR-1:0] EDGE = KIND_OF_INTR[NUM_INTR-1:0];

    reg [NUM_INTR-1:0] isr_reg;
    reg [NUM_INTR-1:0] ier_reg;
    reg [NUM_INTR-1:0] intr_prev_reg;
    reg                me_reg;
    reg                hie_reg;
    reg                irq_reg;

    wire [NUM_INTR-1:0] wdata = reg_wr_data[NUM_INTR-1:0];
    wire wr_isr = reg_wr_en && reg_wr_addr == A_ISR;
    wire wr_ier = reg_wr_en && reg_wr_addr == A_IER;
    wire wr_iar = reg_wr_en && reg_wr_addr == A_IAR;
    wire wr_sie = reg_wr_en && reg_wr_addr == A_SIE;
    wire wr_cie = reg_wr_en && reg_wr_addr == A_CIE;
    wire wr_mer = reg_wr_en && reg_wr_addr == A_MER;

    wire [NUM_INTR-1:0] active = (EDGE & intr & ~intr_prev_reg) | (~EDGE & intr);
    wire [NUM_INTR-1:0] hw_set = hie_reg ? active : {NUM_INTR{1'b0}};
    wire [NUM_INTR-1:0] sw_set = wr_isr && !hie_reg ? wdata : {NUM_INTR{1'b0}};
    wire [NUM_INTR-1:0] ack    = wr_iar ? wdata : {NUM_INTR{1'b0}};
    wire [NUM_INTR-1:0] pending = isr_reg & ier_reg;

    always @(posedge clk) begin
        if (rst) begin
            intr_prev_reg <= {NUM_INTR{1'b0}};
        end else begin
            intr_prev_reg <= intr;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            isr_reg <= {NUM_INTR{1'b0}};
            ier_reg <= {NUM_INTR{1'b0}};
            me_reg  <= 1'b0;
            hie_reg <= 1'b0;
            irq_reg <= 1'b0;
        end else begin
            // an input active in the clock of its acknowledge is recorded, not lost
            isr_reg <= (isr_reg & ~ack) | hw_set | sw_set;
            if (wr_ier) begin
                ier_reg <= wdata;
            end else if (wr_sie) begin
                ier_reg <= ier_reg | wdata;
            end else if (wr_cie) begin
                ier_reg <= ier_reg & ~wdata;
            end
            if (wr_mer) begin
                me_reg  <= reg_wr_data[0];
                hie_reg <= hie_reg | reg_wr_data[1];
            end
            irq_reg <= me_reg && |pending;
        end
    end

    assign irq = irq_reg;

    // ---- read ----------------------------------------------------------------------
    reg [31:0] ivr;
    integer    k;

    always @(*) begin
        ivr = 32'hFFFF_FFFF;
        for (k = NUM_INTR - 1; k >= 0; k = k - 1) begin
            if (pending[k]) ivr = k;
        end
    end

    reg [31:0] isr_word;
    reg [31:0] ipr_word;
    reg [31:0] ier_word;

    always @(*) begin
        isr_word = 32'h0;
        ipr_word = 32'h0;
        ier_word = 32'h0;
        isr_word[NUM_INTR-1:0] = isr_reg;
        ipr_word[NUM_INTR-1:0] = pending;
        ier_word[NUM_INTR-1:0] = ier_reg;
    end

    always @(*) begin
        reg_rd_data = 32'h0;
        if (reg_rd_en) begin
            case (reg_rd_addr)
                A_ISR:   reg_rd_data = isr_word;
                A_IPR:   reg_rd_data = ipr_word;
                A_IER:   reg_rd_data = ier_word;
                A_IVR:   reg_rd_data = ivr;
                A_MER:   reg_rd_data = {30'h0, hie_reg, me_reg};
                default: reg_rd_data = 32'h0;
            endcase
        end
    end

endmodule

`resetall
