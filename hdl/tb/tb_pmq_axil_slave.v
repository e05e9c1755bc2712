// Test harness for pmq_axil_slave (used by test_pmq_axil_slave.py): the slave with a
// small register block behind its register port, so a bench can see every strobe.
//
//   0x00..0x1C  eight read/write words, honouring the byte strobes
//   0x20        POP: reads the number of earlier reads of POP (each read strobe counts)
//   0x24        WRITES: the number of write strobes so far
//   0x28        LAST_WRITE: {strb, addr} of the last write strobe
//   others      read 0, writes ignored
`resetall
`timescale 1ns / 1ps
`default_nettype none

module tb_pmq_axil_slave (
    input  wire                  s_axi_aclk,
    input  wire                  s_axi_aresetn,
    input  wire [7:0]            s_axi_awaddr,
    input  wire [2:0]            s_axi_awprot,
    input  wire                  s_axi_awvalid,
    output wire                  s_axi_awready,
    input  wire [31:0]           s_axi_wdata,
    input  wire [3:0]            s_axi_wstrb,
    input  wire                  s_axi_wvalid,
    output wire                  s_axi_wready,
    output wire [1:0]            s_axi_bresp,
    output wire                  s_axi_bvalid,
    input  wire                  s_axi_bready,
    input  wire [7:0]            s_axi_araddr,
    input  wire [2:0]            s_axi_arprot,
    input  wire                  s_axi_arvalid,
    output wire                  s_axi_arready,
    output wire [31:0]           s_axi_rdata,
    output wire [1:0]            s_axi_rresp,
    output wire                  s_axi_rvalid,
    input  wire                  s_axi_rready
);

    localparam integer ADDR_WIDTH = 8;

    wire                  clk = s_axi_aclk;
    wire                  rst = !s_axi_aresetn;
    wire                  reg_wr_en;
    wire [ADDR_WIDTH-1:0] reg_wr_addr;
    wire [31:0]           reg_wr_data;
    wire [3:0]            reg_wr_strb;
    wire                  reg_rd_en;
    wire [ADDR_WIDTH-1:0] reg_rd_addr;
    reg  [31:0]           reg_rd_data;

    pmq_axil_slave #(
        .ADDR_WIDTH(ADDR_WIDTH)
    ) dut (
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

    reg [31:0] words [0:7];

    integer j;
    initial begin
        for (j = 0; j < 8; j = j + 1) begin
            words[j] = 32'd0;
        end
    end
    reg [31:0] pop_count;
    reg [31:0] write_count;
    reg [31:0] last_write;

    wire wr_word = reg_wr_en && (reg_wr_addr < 8'h20);
    wire [2:0] wr_idx = reg_wr_addr[4:2];

    // the written word with unstrobed bytes kept (words are not reset)
    reg [31:0] merged;
    integer b;
    always @(*) begin
        merged = words[wr_idx];
        for (b = 0; b < 4; b = b + 1) begin
            if (reg_wr_strb[b]) begin
                merged[8*b +: 8] = reg_wr_data[8*b +: 8];
            end
        end
    end

    always @(posedge clk) begin
        if (wr_word) begin
            words[wr_idx] <= merged;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            pop_count <= 32'd0;
            write_count <= 32'd0;
            last_write <= 32'd0;
        end else begin
            if (reg_rd_en && reg_rd_addr == 8'h20) begin
                pop_count <= pop_count + 32'd1;
            end
            if (reg_wr_en) begin
                write_count <= write_count + 32'd1;
                last_write <= {20'd0, reg_wr_strb, reg_wr_addr};
            end
        end
    end

    always @(*) begin
        if (reg_rd_addr < 8'h20) begin
            reg_rd_data = words[reg_rd_addr[4:2]];
        end else if (reg_rd_addr == 8'h20) begin
            reg_rd_data = pop_count;
        end else if (reg_rd_addr == 8'h24) begin
            reg_rd_data = write_count;
        end else if (reg_rd_addr == 8'h28) begin
            reg_rd_data = last_write;
        end else begin
            reg_rd_data = 32'd0;
        end
    end

    wire unused_ok = &{1'b0, s_axi_awprot, s_axi_arprot};

endmodule

`resetall
