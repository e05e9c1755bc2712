// Remaps a register index to a dense read slot: slot = MAP[idx] when en is high, NONE
// otherwise (and for indices MAP sends there).
//
// The register block's read multiplexer selects by slot, not by address: slots are
// ordered widest register first, so each bit of the read data chooses among a few
// adjacent slots and the high bits, which only the 32-bit registers have, among the
// first ten. Selecting by address instead scatters the same sources over 64 indices
// and costs about 20 LUTs more. A module of its own, like pmq_decoder: behind this
// boundary each slot bit is one net, not a decode copied into every data bit.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_remap #(
    parameter integer IDX_WIDTH = 6,
    parameter integer SLOT_WIDTH = 6,
    parameter [(SLOT_WIDTH << IDX_WIDTH)-1:0] MAP = {(SLOT_WIDTH << IDX_WIDTH){1'b0}},
    parameter [SLOT_WIDTH-1:0] NONE = {SLOT_WIDTH{1'b0}}
) (
    input  wire                  en,
    input  wire [IDX_WIDTH-1:0]  idx,
    output wire [SLOT_WIDTH-1:0] slot
);

    wire [SLOT_WIDTH-1:0] table_w [0:(1 << IDX_WIDTH)-1];

    genvar k;
    generate
        for (k = 0; k < (1 << IDX_WIDTH); k = k + 1) begin : g_entry
            assign table_w[k] = MAP[k * SLOT_WIDTH +: SLOT_WIDTH];
        end
    endgenerate

    assign slot = en ? table_w[idx] : NONE;

endmodule

`resetall
