// Synchronous FIFO with a show-ahead output register.
//
// Storage is a plain array written on one port and read into a register on the other,
// so synthesis maps it to block RAM (or distributed RAM when small). The output register
// holds the head, valid as soon as out_valid is high, and all zeros while it is low. in_ready is low when the storage
// is full; the producer decides what to do then (pynq_mqtt_io counts a drop).
// Capacity is 2**DEPTH_LOG2 entries plus the output register.
`resetall
`timescale 1ns / 1ps
`default_nettype none

module pmq_fifo #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH_LOG2 = 4
) (
    input  wire                  clk,
    input  wire                  rst,

    input  wire [WIDTH-1:0]      in_data,
    input  wire                  in_valid,
    output wire                  in_ready,

    output wire [WIDTH-1:0]      out_data,
    output wire                  out_valid,
    input  wire                  out_ready,

    output wire [DEPTH_LOG2:0]   count
);

    localparam integer DEPTH = 1 << DEPTH_LOG2;

    reg [WIDTH-1:0]      mem [0:DEPTH-1];
    reg [DEPTH_LOG2:0]   wr_ptr_reg;
    reg [DEPTH_LOG2:0]   rd_ptr_reg;
    reg [WIDTH-1:0]      out_data_reg;
    reg                  out_valid_reg;

    wire ram_empty = (wr_ptr_reg == rd_ptr_reg);
    wire ram_full  = (wr_ptr_reg == {~rd_ptr_reg[DEPTH_LOG2], rd_ptr_reg[DEPTH_LOG2-1:0]});
    wire push = in_valid && !ram_full;
    wire pop  = out_valid_reg && out_ready;
    wire load = !ram_empty && (!out_valid_reg || pop);

    assign in_ready  = !ram_full;
    assign out_data  = out_data_reg;
    assign out_valid = out_valid_reg;
    assign count     = (wr_ptr_reg - rd_ptr_reg) + {{DEPTH_LOG2{1'b0}}, out_valid_reg};

    always @(posedge clk) begin
        if (push) begin
            mem[wr_ptr_reg[DEPTH_LOG2-1:0]] <= in_data;
        end
    end

    // cleared as the last entry leaves: the synchronous reset of the RAM's output
    // register costs nothing, a mask after it costs a LUT per bit in the user
    always @(posedge clk) begin
        if (rst || (pop && ram_empty)) begin
            out_data_reg <= {WIDTH{1'b0}};
        end else if (load) begin
            out_data_reg <= mem[rd_ptr_reg[DEPTH_LOG2-1:0]];
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            wr_ptr_reg <= {(DEPTH_LOG2 + 1){1'b0}};
        end else if (push) begin
            wr_ptr_reg <= wr_ptr_reg + 1'b1;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            rd_ptr_reg <= {(DEPTH_LOG2 + 1){1'b0}};
        end else if (load) begin
            rd_ptr_reg <= rd_ptr_reg + 1'b1;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            out_valid_reg <= 1'b0;
        end else if (load) begin
            out_valid_reg <= 1'b1;
        end else if (pop) begin
            out_valid_reg <= 1'b0;
        end
    end

endmodule

`resetall
