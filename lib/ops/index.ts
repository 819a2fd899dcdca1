// Differentiable ops, one module per family; each op is one tape entry.
// defines: reshape, permute, transpose, slice, cat (shape)
export { reshape, permute, transpose, slice, cat } from "./shape";
// [gemm-exports]
// [elementwise-exports]
// [nn-exports]
