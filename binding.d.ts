// The exact types of the native module (csrc/binding/*.cc). lib/native.ts is the only file that loads it.
// Every function validates its arguments and throws TypeError (wrong kind) or RangeError (wrong size/value)
// naming the argument; none of them crash the process on bad input.

export type SimdLevel = "scalar" | "avx2" | "avx512";

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  multiprocessors: number;
}

export interface Backends {
  cpu: { available: true; simd: SimdLevel; simdSupported: SimdLevel; threads: number };
  cuda: { compiled: boolean; available: boolean; devices: CudaDeviceInfo[]; reason?: string };
}

export interface Binding {
  // ---- runtime (csrc/binding/addon.cc)
  getNumThreads(): number;
  /** Resize the addon's thread pool; 0 restores the default (XLSTM_NUM_THREADS or the core count). */
  setNumThreads(n: number): void;
  getSimdLevel(): SimdLevel;
  /** Cap the SIMD level (never above what the CPU supports); returns the level now in use. */
  setSimdLevel(level: SimdLevel): SimdLevel;
  backends(): Backends;

  // ---- gemm (csrc/binding/gemm.cc) [gemm-section]

  // ---- elementwise, activations, reductions (csrc/binding/elementwise.cc) [elementwise-section]

  // ---- softmax, cross-entropy, norms, embedding, conv1d, dropout (csrc/binding/nn.cc) [nn-section]
}
