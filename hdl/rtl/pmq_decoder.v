// One-hot decoder of a register index: sel[k] is high when en is and idx is k, for the
// indices USED marks (the others are constant 0).
//
// A module of its own on purpose: the register block is synthesized with its hierarchy,
// and behind this boundary each select is one net. Decoded inside the register block,
// the LUT mapper copies the decode into every bit that a select gates (one copy per
// flop or adder bit), which cost more than the decoder.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_decoder #(
    parameter integer IDX_WIDTH = 6,
    parameter [(1 << IDX_WIDTH)-1:0] USED = {(1 << IDX_WIDTH){1'b1}}
) (
    input  wire                        en,
    input  wire [IDX_WIDTH-1:0]        idx,
    output wire [(1 << IDX_WIDTH)-1:0] sel
);

    genvar k;
    generate
        for (k = 0; k < (1 << IDX_WIDTH); k = k + 1) begin : g_sel
            if (USED[k]) begin : g_used
                assign sel[k] = en && (idx == k);
            end else begin : g_unused
                assign sel[k] = 1'b0;
            end
        end
    endgenerate

endmodule

`resetall
