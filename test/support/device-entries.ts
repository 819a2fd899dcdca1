// Valid calls of every device-buffer entry of the binding (csrc/binding/cuda_ops*.cc), for test/23's check that
// each refuses sizes its buffers cannot hold. `make(scale)` builds the arguments for small base sizes (buffers
// zero-filled: every kernel accepts zeros); `sizes` lists the argument positions that are sizes (numbers), and
// `shapes` the positions that are shapes (arrays of sizes). Growing any one of them past what the buffers hold must
// make the entry throw before any kernel runs.
import type { DeviceBuffer } from "../../binding";
import { native } from "../../lib/native";

export interface DeviceEntryCase {
  name: string;
  make: () => unknown[];
  sizes: number[];
  shapes?: number[];
}

/** A zeroed device buffer of n floats (n*4 bytes), or `bytes` bytes. */
function buf(n: number, bytes = n * 4): DeviceBuffer {
  const b = native.cudaMalloc(bytes);
  native.cudaZero(b);
  return b;
}

export function deviceEntryCases(): DeviceEntryCase[] {
  const n = 6, B = 2, S = 3, NH = 2, DH = 2, H = NH * DH, DK = 2, DV = 3;
  const rnn = (slstm: boolean): DeviceEntryCase[] => {
    const ns = slstm ? 4 : 2;
    const fwd = () => [buf(B * S * H), buf(ns * S * B * H), buf(B * S * 4 * H), buf(B * S * 4 * H), buf(ns * B * H), buf(NH * DH * 4 * DH), buf(4 * H), B, S, NH, DH];
    const bwd = () => [buf(B * S * 4 * H), buf(NH * DH * 4 * DH), buf(4 * H), buf(ns * B * H), buf(B * S * 4 * H), buf(ns * S * B * H), buf(B * S * H), buf(ns * B * H), buf(ns * B * H), buf(NH * DH * 4 * DH), B, S, NH, DH, ...(slstm ? [false] : [])];
    const k = slstm ? "Slstm" : "Lstm";
    return [
      { name: `cuda${k}ForwardDev`, make: fwd, sizes: [7, 8, 9, 10] },
      { name: `cuda${k}BackwardDev`, make: bwd, sizes: [10, 11, 12, 13] },
    ];
  };
  const bh = B * NH, chunk = 2;
  const mlstmIn = () => [buf(bh * S * DK), buf(bh * S * DK), buf(bh * S * DV), buf(bh * S), buf(bh * S)];
  const mfwd = (chunkwise: boolean) => () => {
    const saved = chunkwise ? native.mlstmChunkwiseSavedSize(B, NH, S, DK, DV, chunk) : native.mlstmRecurrentSavedSize(B, NH, S, DK, DV);
    return [buf(bh * S * DV), buf(bh * DK * DV), buf(bh * DK), buf(bh), buf(saved), ...mlstmIn(), buf(bh * DK * DV), buf(bh * DK), buf(bh), B, NH, S, DK, DV, ...(chunkwise ? [chunk, 1e-6, true] : [1e-6])];
  };
  const mbwd = (chunkwise: boolean) => () => {
    const saved = chunkwise ? native.mlstmChunkwiseSavedSize(B, NH, S, DK, DV, chunk) : native.mlstmRecurrentSavedSize(B, NH, S, DK, DV);
    const grads = [buf(bh * S * DK), buf(bh * S * DK), buf(bh * S * DV), buf(bh * S), buf(bh * S), buf(bh * DK * DV), buf(bh * DK), buf(bh), buf(saved)];
    return [...grads, ...(chunkwise ? [buf(bh * S * DV)] : []), buf(bh * S * DV), buf(bh * DK * DV), buf(bh * DK), ...mlstmIn(), B, NH, S, DK, DV, ...(chunkwise ? [chunk, 1e-6] : [1e-6])];
  };
  return [
    { name: "cudaUnaryDev", make: () => ["tanh", buf(n), buf(n), n, 1, 0], sizes: [3] },
    { name: "cudaUnaryBackwardDev", make: () => ["tanh", null, buf(n), buf(n), buf(n), n, 1], sizes: [5] },
    { name: "cudaBinaryDev", make: () => ["add", buf(n), [2, 3], buf(3), [3], buf(n)], sizes: [], shapes: [2, 4] },
    { name: "cudaBinaryBackwardDev", make: () => ["mul", buf(n), [2, 3], buf(3), [3], buf(n), buf(n), buf(n)], sizes: [], shapes: [2, 4] },
    // batch 2 of (3 x 4) * (4 x 5), leading dimensions 4 / 5 / 5, strides one after another
    { name: "cudaGemmDev", make: () => [false, false, 2, 3, 5, 4, 1, buf(24), 0, 4, 12, buf(40), 0, 5, 20, 0, buf(30), 0, 5, 15], sizes: [2, 3, 4, 5, 8, 9, 10, 12, 13, 14, 17, 18, 19] },
    { name: "cudaCopy2D", make: () => [buf(12), 0, 16, buf(12), 0, 16, 16, 3], sizes: [1, 2, 4, 5, 6, 7] },
    { name: "cudaSoftmaxDev", make: () => [true, buf(n), buf(n), 2, 3], sizes: [3, 4] },
    { name: "cudaSoftmaxBackwardDev", make: () => [false, buf(n), buf(n), buf(n), 2, 3], sizes: [4, 5] },
    { name: "cudaCrossEntropyDev", make: () => [buf(2), buf(2), buf(2), buf(0, 8), buf(n), buf(2), false, 2, 3, -100], sizes: [7, 8] },
    { name: "cudaCrossEntropyBackwardDev", make: () => [buf(n), buf(n), buf(2), buf(2), buf(2), false, buf(2), 2, 3, -100], sizes: [7, 8] },
    { name: "cudaLayerNormDev", make: () => [buf(12), buf(4), buf(4), buf(12), buf(6), buf(6), 2, 2, 3, 1e-5, true], sizes: [6, 7, 8] },
    { name: "cudaLayerNormBackwardDev", make: () => [buf(12), buf(6), buf(6), buf(12), buf(12), buf(4), buf(4), buf(6), 2, 2, 3, true], sizes: [8, 9, 10] },
    { name: "cudaEmbeddingDev", make: () => [buf(3 * 4), buf(5 * 4), buf(3), false, 3, 5, 4], sizes: [4, 5, 6] },
    { name: "cudaBf16LinearDev", make: () => [buf(2 * 3), buf(2 * 4), buf(0, 3 * 4 * 2), buf(3), 2, 4, 3, false], sizes: [4, 5, 6] },
    { name: "cudaBf16EmbeddingDev", make: () => [buf(3 * 4), buf(0, 5 * 4 * 2), buf(3), false, 3, 5, 4], sizes: [4, 5, 6] },
    { name: "cudaBf16ToF32Dev", make: () => [buf(6), buf(0, 6 * 2), 6], sizes: [2] },
    { name: "cudaEmbeddingBackwardDev", make: () => [buf(5 * 4), buf(3 * 4), buf(3, 24), true, 3, 5, 4], sizes: [4, 5, 6] },
    { name: "cudaReduceDev", make: () => ["max", buf(n), [2, 3], [1], buf(2), buf(2, 16)], sizes: [], shapes: [2] },
    { name: "cudaReduceBackwardDev", make: () => ["sum", buf(2), [2, 3], [1], buf(n), null], sizes: [], shapes: [2] },
    { name: "cudaCausalConv1dDev", make: () => [buf(B * S * 3), buf(B * S * 3), buf(3 * 2), buf(3), B, S, 3, 2], sizes: [4, 5, 6, 7] },
    { name: "cudaCausalConv1dBackwardDev", make: () => [buf(B * S * 3), buf(3 * 2), buf(3), buf(B * S * 3), buf(B * S * 3), buf(3 * 2), B, S, 3, 2], sizes: [6, 7, 8, 9] },
    { name: "cudaDropoutDev", make: () => [buf(n), buf(0, n), buf(n), n, 0.5, 1, 2], sizes: [3] },
    { name: "cudaDropoutBackwardDev", make: () => [buf(n), buf(n), buf(0, n), n, 0.5], sizes: [3] },
    { name: "cudaAdamwStepDev", make: () => [buf(n), buf(n), buf(n), buf(n), n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1], sizes: [4] },
    { name: "cudaSumSquaresDev", make: () => [buf(n), n, buf(0, 16), 1], sizes: [1, 3] },
    { name: "cudaScaleInPlaceDev", make: () => [buf(n), n, 0.5], sizes: [1] },
    { name: "cudaPermuteDev", make: () => [buf(n), buf(n), 4, [2, 3], [1, 0]], sizes: [], shapes: [3] },
    ...rnn(true),
    ...rnn(false),
    { name: "cudaMlstmChunkwiseForwardDev", make: mfwd(true), sizes: [13, 14, 15, 16, 17] },
    { name: "cudaMlstmRecurrentForwardDev", make: mfwd(false), sizes: [13, 14, 15, 16, 17] },
    { name: "cudaMlstmChunkwiseBackwardDev", make: mbwd(true), sizes: [18, 19, 20, 21, 22] },
    { name: "cudaMlstmRecurrentBackwardDev", make: mbwd(false), sizes: [17, 18, 19, 20, 21] },
    { name: "cudaUpload", make: () => [buf(n), 0, new Float32Array(n)], sizes: [1] },
    { name: "cudaDownload", make: () => [buf(n), 0, new Float32Array(n)], sizes: [1] },
  ];
}
