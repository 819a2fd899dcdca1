// Public entry point of the xlstm package.
// defines: Tensor, dtype/device types, autograd (noGrad, record, ...), RNG (Generator, manualSeed), runtime
// controls (backends, threads, SIMD level, float32 matmul precision), errors, and the `ops` namespace.
import { native } from "./native";
import type { Backends, SimdLevel } from "../binding";

export { Tensor, floatToBf16, bf16ToFloat, withElementBudget } from "./tensor";
export type { DType, Device, Storage, TensorOptions, RandomOptions } from "./tensor";
export { noGrad, isGradEnabled, record, record1, reduceToShape } from "./autograd";
export type { GradNode, TensorHook } from "./autograd";
export { Generator, manualSeed, defaultGenerator } from "./rng";
export type { GeneratorState } from "./rng";
export { CorruptFileError, NoBinaryFoundError } from "./errors";
export * as ops from "./ops";
export * as cuda from "./cuda";
export { scope } from "./scope";
export * as kernels from "./kernels";
export * as nn from "./nn";
export * as optim from "./optim";
export * from "./nn/slstm-layout";
export type { Backends, SimdLevel, Binding, CudaDeviceInfo, CudaMemoryStats } from "../binding";

/** What this machine and binary can run: CPU SIMD level and threads, CUDA devices or why there are none. */
export function backends(): Backends {
  return native.backends();
}

/** Threads used by CPU kernels (one pool for the whole addon). */
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Resize the CPU thread pool; 0 restores the default (XLSTM_NUM_THREADS or the number of cores). */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

/**
 * PyTorch's torch.set_float32_matmul_precision for the CPU's float32 products (process-wide); returns the previous
 * value. "highest" (default): float32 throughout. "medium": products of 128 rows or more (linear layers and their
 * input gradients, matmul, the fused layers' projections; with AVX512_BF16 also the sLSTM / LSTM step products for
 * heads of a multiple of 32 units and the chunkwise mLSTM cell's tile products) round their operands to bfloat16 and sum in float32 on the
 * AMX tile unit (Intel Xeons since Sapphire Rapids) or with AVX512_BF16's vdpbf16ps (AMD Zen 4 and 5, Intel Cooper
 * Lake), where the CPU has either (elsewhere nothing changes). Each product is then within 2^-8 Σ|a_k b_k| of the
 * float32 one. XLSTM_MATMUL_PRECISION=medium sets it at load.
 * @example
 *   setFloat32MatmulPrecision("medium");   // bf16 products on AMX / AVX512_BF16 for training or prefill
 */
export function setFloat32MatmulPrecision(precision: "highest" | "medium"): "highest" | "medium" {
  if (precision !== "highest" && precision !== "medium")
    throw new RangeError(`setFloat32MatmulPrecision: precision must be "highest" or "medium", got ${typeof precision === "string" ? JSON.stringify(precision) : typeof precision}`);
  return native.setFloat32MatmulPrecision(precision);
}

/** The float32 matrix-product precision in force (see setFloat32MatmulPrecision). */
export function getFloat32MatmulPrecision(): "highest" | "medium" {
  return native.getFloat32MatmulPrecision();
}

/** Cap the SIMD level CPU kernels use (for testing each path); returns the level in use. */
export function setSimdLevel(level: SimdLevel): SimdLevel {
  return native.setSimdLevel(level);
}
export * from "./io";
export * as infer from "./infer";
// training, generation, tokenizers/datasets and checkpoints (lib/train, lib/generate, lib/data, lib/checkpoint)
export * as data from "./data";
export { HFTokenizer } from "./data/hf-tokenizer";
export type { HFTokenizerOptions, HFTokenizerJSON } from "./data/hf-tokenizer";
export { train, Trainer, DEFAULT_XLSTM_CONFIG, DEFAULT_TRAINING, LSTMLanguageModel, buildModel } from "./train";
export type { TrainOptions, TrainResult, TrainEvent, ProgressEvent, LanguageModel, ModelSpec } from "./train";
export { generate, generateBatch, loadGenerator, openGenerator, sampleLogits } from "./generate";
export type { GenerateOptions, GeneratedToken, SamplingOptions, Generation, GeneratorThread, ThreadGenerateOptions } from "./generate";
export { saveCheckpoint, loadModel, resolveCheckpoint, readModelFile, writeModelFile, readTrainingState } from "./checkpoint";
export type { LoadedModel, LoadModelOptions, TrainingState, ModelCheckpoint } from "./checkpoint";
