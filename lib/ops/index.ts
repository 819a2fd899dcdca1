// Differentiable ops, one module per family; each op is one tape entry.
// defines: reshape, permute, transpose, slice, cat (shape)
export { reshape, permute, transpose, slice, cat } from "./shape";
// [gemm-exports]
// defines: matmul, linear (matmul)
export { matmul, linear } from "./matmul";
// [elementwise-exports]
// defines: add, sub, mul, div, neg, exp, log, sigmoid, logsigmoid, tanh, softplus, relu, gelu, silu, scale
// (elementwise), sum, mean, max (reduce)
export { add, sub, mul, div, neg, exp, log, sigmoid, logsigmoid, tanh, softplus, relu, gelu, silu, scale } from "./elementwise";
export type { GeluOptions } from "./elementwise";
export { sum, mean, max } from "./reduce";
export type { Dims } from "./reduce";
// [nn-exports]
// defines: softmax, logSoftmax, crossEntropy (softmax), layerNorm, multiHeadLayerNorm (norm), embedding,
// causalConv1d (conv1d), dropout
export { softmax, logSoftmax, crossEntropy } from "./softmax";
export type { CrossEntropyOptions } from "./softmax";
export { layerNorm, multiHeadLayerNorm } from "./norm";
export type { LayerNormOptions } from "./norm";
export { embedding } from "./embedding";
export { causalConv1d } from "./conv1d";
export { dropout } from "./dropout";
export type { DropoutOptions } from "./dropout";
// [recurrent-exports]
// defines: slstm, lstm (recurrent), headwiseLinear (headwise)
export { headwiseLinear, headwiseLinearConcat } from "./headwise";
export type { HeadwisePart } from "./headwise";
export { slstm, lstm } from "./recurrent";
export type { LstmOptions, RecurrentOutput, SlstmOptions } from "./recurrent";
// [mlstm-exports]
// defines: mlstm (mlstm), mlstmLayer (mlstm-layer), mlstmAutoChunk (mlstm-chunk)
export { mlstm } from "./mlstm";
export type { MlstmForm, MlstmState, MlstmOptions, MlstmOutput } from "./mlstm";
export { mlstmLayer } from "./mlstm-layer";
export { mlstmAutoChunk } from "./mlstm-chunk";
export type { MlstmLayerWeights, MlstmPreNorm } from "./mlstm-layer";
