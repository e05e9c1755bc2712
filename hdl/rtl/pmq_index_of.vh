// index_of(onehot): the index of the set bit of a one-hot vector (0 when none is set).
// Included inside a module body that defines N_INPUTS and IDX_WIDTH.

    function [IDX_WIDTH-1:0] index_of;
        input [N_INPUTS-1:0] onehot;
        integer b;
        begin
            index_of = {IDX_WIDTH{1'b0}};
            for (b = 0; b < N_INPUTS; b = b + 1) begin
                if (onehot[b]) begin
                    index_of = b[IDX_WIDTH-1:0];
                end
            end
        end
    endfunction
