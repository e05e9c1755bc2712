// Two-flop synchronizer for a vector of asynchronous inputs.
// Each bit is synchronized on its own: bits of the vector are not coherent with each
// other, which is right for independent buttons.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_sync #(
    parameter integer WIDTH = 4
) (
    input  wire             clk,
    input  wire [WIDTH-1:0] in_async,
    output wire [WIDTH-1:0] out_sync
);

    (* ASYNC_REG = "TRUE" *) reg [WIDTH-1:0] meta_reg = {WIDTH{1'b0}};
    (* ASYNC_REG = "TRUE" *) reg [WIDTH-1:0] sync_reg = {WIDTH{1'b0}};

    always @(posedge clk) begin
        meta_reg <= in_async;
        sync_reg <= meta_reg;
    end

    assign out_sync = sync_reg;

endmodule

`resetall
