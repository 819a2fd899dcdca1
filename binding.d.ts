// The exact types of the native module (csrc/binding/*.cc). lib/native.ts is the only file that loads it.
// Every function validates its arguments and throws TypeError (wrong kind) or RangeError (wrong size/value)
// naming the argument; none of them crash the process on bad input.

export type SimdLevel = "scalar" | "avx2" | "avx512";

/** A block of device memory (csrc/binding/cuda_memory.cc); opaque. */
export interface DeviceBuffer {
  readonly __deviceBuffer: unique symbol;
}
/** The caching allocator over a simulated device (tests). */
export interface AllocatorSim {
  readonly __allocatorSim: unique symbol;
}
/** Counters of the caching allocator (bytes are rounded block sizes unless named "requested"). */
export interface AllocatorStats {
  allocatedBytes: number;
  allocatedBytesPeak: number;
  requestedBytes: number;
  reservedBytes: number;
  reservedBytesPeak: number;
  activeBlocks: number;
  cachedBlocks: number;
  segments: number;
  allocCalls: number;
  freeCalls: number;
  cacheHits: number;
  segmentAllocs: number;
  segmentFrees: number;
  ooms: number;
}
export interface CudaMemoryStats extends AllocatorStats {
  deviceFreeBytes: number;
  deviceTotalBytes: number;
  /**
   * Bytes of live device buffers reported to the garbage collector as external memory: those made outside any
   * cuda.scope or kept past one (a scope frees the rest itself, so they are not reported).
   */
  gcReportedBytes: number;
}
export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  multiprocessors: number;
}

/** largeDecoderCreate's config (xLSTMLargeConfig's sizes; soft caps null when off). */
export interface LargeDecoderConfig {
  vocabSize: number;
  embeddingDim: number;
  numHeads: number;
  qkHeadDim: number;
  vHeadDim: number;
  ffnUpDim: number;
  chunkSize: number;
  normEps: number;
  eps: number;
  gateSoftCap: number | null;
  outputSoftCap: number | null;
}

/** largeDecoderCreate's weights: the decoder's packed layout (wIn rows q, k, v, o, i, f; wUp rows gate, up). */
export interface LargeDecoderWeights {
  embedding: Uint16Array | Float32Array;
  head: Uint16Array | Float32Array;
  outNorm: Float32Array | null;
  outNormBias: Float32Array | null;
  blocks: readonly {
    normM: Float32Array;
    normMBias: Float32Array | null;
    wIn: Uint16Array | Float32Array;
    bIn: Float32Array | null;
    mhW: Float32Array;
    mhB: Float32Array | null;
    wOut: Uint16Array | Float32Array;
    bOut: Float32Array | null;
    normF: Float32Array;
    normFBias: Float32Array | null;
    wUp: Uint16Array | Float32Array;
    bUp: Float32Array | null;
    wDown: Uint16Array | Float32Array;
    bDown: Float32Array | null;
  }[];
}

export interface Backends {
  /** bf16: the bf16 hardware that bf16Linear's roundX (rounded activations, xLSTM Large prefill) runs on now. */
  cpu: { available: true; simd: SimdLevel; simdSupported: SimdLevel; threads: number; bf16: "amx" | "avx512bf16" | "none"; matmulPrecision: "highest" | "medium" };
  /** emulated: the XLSTM_CUDA_EMULATE host emulation (device memory in host memory, CPU kernels), not a GPU. */
  cuda: { compiled: boolean; available: boolean; emulated: boolean; devices: CudaDeviceInfo[]; reason?: string };
}

/** Opaque handle on a fused mLSTM layer's saved activations (mlstmLayerForward with keepSaved). */
export type MlstmLayerSaved = { readonly __brand: "MlstmLayerSaved" };

export interface Binding {
  // ---- runtime (csrc/binding/addon.cc)
  getNumThreads(): number;
  /** Resize the addon's thread pool; 0 restores the default (XLSTM_NUM_THREADS or the core count). */
  setNumThreads(n: number): void;
  getSimdLevel(): SimdLevel;
  /** Cap the SIMD level (never above what the CPU supports); returns the level now in use. */
  setSimdLevel(level: SimdLevel): SimdLevel;
  backends(): Backends;

  // ---- host memory (csrc/binding/host_memory.cc): xlstm.scope's CPU half (lib/host-scope.ts)
  /**
   * For each buffer: adds bytes[i] back to V8's external-memory count (the scope took them off when it allocated the
   * buffer), then detaches it (its memory freed, its views left with length 0) unless pending Promise calls use it,
   * it cannot be detached or it holds no memory. Returns the bytes released.
   */
  releaseHostBuffers(buffers: ArrayBuffer[], bytes: number[]): number;
  /**
   * Adds delta bytes (an integer, |delta| <= 2^40; negative: takes them off) to V8's external-memory count, the one
   * that forces a full collection 64 MB above its low point; returns the count after it (delta 0 reads it).
   */
  reportHostMemory(delta: number): number;

  // ---- gemm (csrc/binding/gemm.cc) [gemm-section]
  // Row-major float32: a is M x K (K x M when transA), b is K x N (N x K when transB), c is M x N, updated in place:
  // c = alpha * op(a) * op(b) + beta * c (beta 0 ignores c's old values, NaNs included). c must not overlap a or b.
  /** c = alpha op(a) op(b) + beta c (CPU, blocked SIMD kernel, all threads). */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, a: Float32Array,
    b: Float32Array, beta: number, c: Float32Array): void;
  /** gemm off the JS thread; resolves once c is written. Do not touch a, b, c until it settles. */
  gemmAsync(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, a: Float32Array,
    b: Float32Array, beta: number, c: Float32Array): Promise<void>;
  /**
   * `batch` products; entry i uses a[i*strideA ..], b[i*strideB ..], c[i*strideC ..] (element strides). strideA or
   * strideB 0 broadcasts one matrix; strideC must be >= M*N when batch > 1. Every slice must lie inside its array.
   */
  gemmBatched(transA: boolean, transB: boolean, batch: number, M: number, N: number, K: number, alpha: number,
    a: Float32Array, strideA: number, b: Float32Array, strideB: number, beta: number, c: Float32Array,
    strideC: number): void;
  /**
   * gemm with leading dimensions (row-major, as in BLAS): rows of a are lda elements apart (a is K rows of M with
   * transA, else M rows of K), likewise b/ldb and c/ldc (ld >= the row length). Elements between rows are neither
   * read nor written; each array must hold (rows-1)*ld + row length elements at least.
   */
  gemmStrided(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, a: Float32Array,
    lda: number, b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number): void;
  /**
   * How gemm computes this shape (row strides lda, ldb) at the current SIMD level: "small" direct loop, "gemv",
   * "blocked" or "kSplit" (K slabs summed in order; `slabs` of them), whether op(a) / op(b) are read in place (else
   * packed) and the KC block (0 unless blocked or kSplit); "scale" when M, N or K is 0.
   */
  gemmPlan(transA: boolean, transB: boolean, M: number, N: number, K: number, lda: number, ldb: number): {
    path: "scale" | "small" | "gemv" | "blocked" | "kSplit" | "bf16"; aInPlace: boolean; bInPlace: boolean; kc: number;
    slabs: number;
  };
  /**
   * torch.set_float32_matmul_precision for the CPU GEMM (process-wide; returns the previous value): "highest"
   * (default) computes in float32; "medium" lets products of 128 rows or more round op(A) and op(B) to bfloat16 and sum
   * in float32 on the AMX tile unit or with AVX512_BF16's vdpbf16ps, where the CPU has either (gemmPlan's path "bf16").
   * XLSTM_MATMUL_PRECISION sets the starting value.
   */
  setFloat32MatmulPrecision(precision: "highest" | "medium"): "highest" | "medium";
  getFloat32MatmulPrecision(): "highest" | "medium";
  /** gemm by the CUDA kernel on device 0 (host arrays copied in and out). Throws when CUDA is not available. */
  cudaGemmHost(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, a: Float32Array,
    b: Float32Array, beta: number, c: Float32Array): void;
  /**
   * Runs the CUDA kernel's tile-index helpers on the host: fills counts (M*N) with how many threads write each C
   * element and returns how many shared-memory tile slots are not loaded exactly once (0 when the tiling is right).
   * Needs a CUDA build, not a GPU.
   */
  cudaGemmTileCoverage(transA: boolean, transB: boolean, M: number, N: number, K: number, counts: Int32Array): number;
  /**
   * The bf16 tensor-core GEMM kernel's tile helpers (cuda/gemm_bf16.cu) run on the host: counts (M*N) gets the writes
   * of each C element; returns the shared-memory slots not covered exactly once (-1: an index outside its tile).
   * Needs a CUDA build, not a GPU.
   */
  cudaGemmBf16TileCoverage(transA: boolean, transB: boolean, M: number, N: number, counts: Int32Array): number;
  /**
   * The split-K cut the CUDA GEMM makes of a batch x M x N x K product (bf16: the tensor-core kernel of the autocast):
   * K in `splits` ranges of `chunk` (the last shorter), each (batch, range) block summing its range, the sums then
   * added in range order; { splits: 1, chunk: 0 } when not cut (enough tiles, or K under two 128-deep ranges).
   * Needs a CUDA build, not a GPU.
   */
  cudaGemmSplitPlan(batch: number, M: number, N: number, K: number, bf16: boolean): { splits: number; chunk: number };
  /**
   * Whether the CUDA GEMMs cut long K over few tiles at all (default true; process-wide, device launches and host
   * replays alike; for A/B measurements: off, every product runs uncut). Returns the previous setting.
   */
  cudaSetGemmSplitK(enabled: boolean): boolean;
  /** The CUDA float32 GEMM's kernel for uncut products: "tiled" (default) or "grouped"; returns the previous one. */
  cudaSetGemmForm(form: "grouped" | "tiled"): "grouped" | "tiled";
  /**
   * The bf16 tensor-core GEMM's tiles: "64x64" (default) or "auto" (products of at least 256 tiles of 64 x 128, with
   * few pad columns, run on those, and products of a few waves of tiles over a K of 4096 or more are cut along K:
   * opt-in until timed on a GPU); process-wide, device and host replays alike. Returns the previous setting.
   */
  cudaSetGemmBf16Tiles(tiles: "64x64" | "auto"): "64x64" | "auto";
  /** The C tile [rows, columns] the bf16 tensor-core GEMM runs a batch x M x N product on (cudaSetGemmBf16Tiles). Needs a CUDA build. */
  cudaGemmBf16Tile(batch: number, M: number, N: number): [number, number];

  // ---- elementwise, activations, reductions (csrc/binding/elementwise.cc) [elementwise-section]
  // Ops: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" (torch beta 1, threshold 20) | "relu" |
  // "gelu" (erf form) | "geluTanh" (torch approximate="tanh") | "silu" | "neg" | "affine" (alpha*x + beta);
  // binary "add" | "sub" | "mul" | "div" with NumPy broadcasting; reductions "sum" | "mean" | "max".
  // An unknown op name is a RangeError listing the valid ones. Arrays are dense row-major; outputs are
  // overwritten and may be the very same array as an input of their size (in place), never a partial overlap.
  /** out[i] = op(x[i]); alpha, beta (default 1, 0) are used by "affine" only. */
  unary(
    op: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine",
    x: Float32Array,
    out: Float32Array,
    alpha?: number,
    beta?: number,
  ): void;
  /**
   * dx[i] = dy[i] * op'(x[i]). Reads x (the forward input) for log, logsigmoid, softplus, relu, gelu, geluTanh, silu;
   * y (the forward output) for exp, sigmoid, tanh; neither for neg, affine (pass null for what is not read).
   * alpha: the affine slope (default 1).
   */
  unaryBackward(
    op: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine",
    x: Float32Array | null,
    y: Float32Array | null,
    dy: Float32Array,
    dx: Float32Array,
    alpha?: number,
  ): void;
  /**
   * The gated activation of a gated feed-forward: h [rows, 2P] holds (gate | value) per row, y [rows, P] =
   * op(gate) * value; per element the arithmetic of unary then binary "mul". alpha, beta as for unary.
   */
  gatedUnary(
    op: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine",
    h: Float32Array,
    rows: number,
    P: number,
    y: Float32Array,
    alpha?: number,
    beta?: number,
  ): void;
  /** dh [rows, 2P] = (op'(gate) * dy * value | op(gate) * dy), dy [rows, P]; op(gate) recomputed from h. */
  gatedUnaryBackward(
    op: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine",
    h: Float32Array,
    dy: Float32Array,
    rows: number,
    P: number,
    dh: Float32Array,
    alpha?: number,
    beta?: number,
  ): void;
  /** out = a op b with NumPy broadcasting; out has numel(broadcast(aShape, bShape)) elements. At most 16 dims. */
  binary(op: "add" | "sub" | "mul" | "div", a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], out: Float32Array): void;
  /**
   * Gradients of sum(out * dy) w.r.t. a and b, in the broadcast (output) shape: the caller sums them down to
   * aShape / bShape. Pass null for a gradient that is not needed.
   */
  binaryBackward(
    op: "add" | "sub" | "mul" | "div",
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    dy: Float32Array,
    da: Float32Array | null,
    db: Float32Array | null,
  ): void;
  /**
   * Reduce x (of `shape`) over `axes` (negative counts from the end; [] reduces nothing). out holds the kept axes
   * in order (keepdim does not change the layout). Sums accumulate in float64. max: NaN wins, else the first
   * maximum; argmax (max only, optional) receives the flat index into x of each chosen element. Empty sums are 0,
   * empty means NaN, an empty max is a RangeError.
   */
  reduce(op: "sum" | "mean" | "max", x: Float32Array, shape: readonly number[], axes: readonly number[], out: Float32Array, argmax?: BigInt64Array | null): void;
  /** dx (numel(shape)) from dy (the kept axes): broadcast for sum, / count for mean, to the argmax for max (argmax required). */
  reduceBackward(op: "sum" | "mean" | "max", dy: Float32Array, shape: readonly number[], axes: readonly number[], dx: Float32Array, argmax?: BigInt64Array | null): void;
  /** unary on the CUDA device (copies in and out); Error with backends().cuda.reason when no GPU is usable. */
  cudaUnary(
    op: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine",
    x: Float32Array,
    out: Float32Array,
    alpha?: number,
    beta?: number,
  ): void;
  /** unaryBackward on the CUDA device. */
  cudaUnaryBackward(
    op: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine",
    x: Float32Array | null,
    y: Float32Array | null,
    dy: Float32Array,
    dx: Float32Array,
    alpha?: number,
  ): void;
  /** binary on the CUDA device. */
  cudaBinary(op: "add" | "sub" | "mul" | "div", a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], out: Float32Array): void;
  /** binaryBackward on the CUDA device. */
  cudaBinaryBackward(
    op: "add" | "sub" | "mul" | "div",
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    dy: Float32Array,
    da: Float32Array | null,
    db: Float32Array | null,
  ): void;

  // ---- softmax, cross-entropy, norms, embedding, conv1d, dropout (csrc/binding/nn.cc) [nn-section]
  // Row-major float32 buffers; sizes are element counts. Outputs must not overlap inputs. Gradients are written
  // (not accumulated). Index arrays are Int32Array or BigInt64Array and are range-checked before any work.
  /** y[r, :] = softmax(x[r, :]) over rows of `cols` elements (stable: the row max is subtracted). */
  softmaxForward(y: Float32Array, x: Float32Array, rows: number, cols: number): void;
  /** y[r, :] = log_softmax(x[r, :]). */
  logSoftmaxForward(y: Float32Array, x: Float32Array, rows: number, cols: number): void;
  /** dx = y * (dy - sum(dy * y)) per row, y = softmax output. */
  softmaxBackward(dx: Float32Array, y: Float32Array, dy: Float32Array, rows: number, cols: number): void;
  /** dx = dy - exp(y) * sum(dy) per row, y = log-softmax output. */
  logSoftmaxBackward(dx: Float32Array, y: Float32Array, dy: Float32Array, rows: number, cols: number): void;
  /**
   * Fused log-softmax + NLL: loss[i] = logsumexp(logits[i, :]) - logits[i, targets[i]] (0 where targets[i] ===
   * ignoreIndex); saves rowMax and logSum ([n] each, logsumexp = rowMax + logSum) for the backward. Returns the
   * number of rows not ignored. RangeError naming the position for a target outside [0, v) that is not ignoreIndex.
   */
  crossEntropyForward(
    loss: Float32Array,
    rowMax: Float32Array,
    logSum: Float32Array,
    logits: Float32Array,
    targets: Int32Array | BigInt64Array,
    n: number,
    v: number,
    ignoreIndex: number,
  ): number;
  /** dlogits[i, :] = g[i] * (softmax(logits[i, :]) - onehot(targets[i])); zero rows where targets[i] === ignoreIndex. */
  crossEntropyBackward(
    dlogits: Float32Array,
    logits: Float32Array,
    rowMax: Float32Array,
    logSum: Float32Array,
    targets: Int32Array | BigInt64Array,
    g: Float32Array,
    n: number,
    v: number,
    ignoreIndex: number,
  ): void;
  /**
   * Layer norm of every (row, group) vector of `dim` elements in x [rows, groups, dim]; weight/bias [groups * dim]
   * or null; scale = 1 + weight when residualWeight. Writes y, and mean/rstd [rows * groups] for the backward.
   */
  layerNormForward(
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    bias: Float32Array | null,
    rows: number,
    groups: number,
    dim: number,
    eps: number,
    residualWeight: boolean,
  ): void;
  /** Gradients of layerNormForward; dweight/dbias may be null (not computed). */
  layerNormBackward(
    dx: Float32Array,
    dweight: Float32Array | null,
    dbias: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    weight: Float32Array | null,
    rows: number,
    groups: number,
    dim: number,
    residualWeight: boolean,
  ): void;
  /** out[i, :] = weight[indices[i], :] with weight [v, e] and out [indices.length, e]. */
  embeddingForward(out: Float32Array, weight: Float32Array, indices: Int32Array | BigInt64Array, v: number, e: number): void;
  /** dweight = scatter-add of dout [indices.length, e] into rows indices[i] of a zeroed [v, e]. */
  embeddingBackward(dweight: Float32Array, dout: Float32Array, indices: Int32Array | BigInt64Array, v: number, e: number): void;
  /**
   * Depthwise causal conv1d (the reference's CausalConv1d): x, y [b, s, f], weight [f, 1, k], bias [f] or null;
   * y[b, t, c] = bias[c] + sum_j weight[c, j] * x[b, t - k + 1 + j, c] (zero before t = 0).
   */
  causalConv1dForward(
    y: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    bias: Float32Array | null,
    b: number,
    s: number,
    f: number,
    k: number,
  ): void;
  /** Gradients of causalConv1dForward; dx, dweight and dbias may each be null (not computed). */
  causalConv1dBackward(
    dx: Float32Array | null,
    dweight: Float32Array | null,
    dbias: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    b: number,
    s: number,
    f: number,
    k: number,
  ): void;
  /**
   * Dropout with a Philox4x32-10 mask keyed by (key0, key1) (uint32 each): element i keeps iff
   * (word i of the stream >>> 8) >= ceil(p * 2^24); mask[i] = 1 when kept; y = kept ? x / (1 - p) : 0.
   */
  dropoutForward(y: Float32Array, mask: Uint8Array, x: Float32Array, p: number, key0: number, key1: number): void;
  /** dx = mask ? dy / (1 - p) : 0 (0 everywhere for p = 1). */
  dropoutBackward(dx: Float32Array, dy: Float32Array, mask: Uint8Array, p: number): void;
  /** One Philox4x32-10 block: counter (4 uint32) and key (2 uint32) to 4 uint32 words. */
  philox4x32(counter: [number, number, number, number], key: [number, number]): [number, number, number, number];

  // ---- fused sLSTM / LSTM recurrences (csrc/binding/recurrent.cc; layouts in csrc/kernels/recurrent.h)
  // H = NH*DH; NS = 4 (sLSTM: h, c, n, m) or 2 (LSTM: h, c). Outputs are written (=) into the first arrays.
  /** y [B,S,H], states [NS,S,B,H], gates [B,S,4H] (saved for backward: sLSTM pre-activations, LSTM gate activations)
   *  from x [B,S,4H], state0 [NS,B,H] | null, R [NH,DH,4DH], bias [4H].
   *  rTransposed (default false): R per head transposed, [NH,4DH,DH] (one head: torch.nn.LSTM's weight_hh); dR likewise. */
  slstmForward(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number, rTransposed?: boolean): void;
  slstmForwardAsync(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number, rTransposed?: boolean): Promise<void>;
  /** dx [B,S,4H], dR [NH,DH,4DH], dbias [4H], dstate0 [NS,B,H] | null from the saved gates/states, dy [B,S,H], dstateFinal [NS,B,H] | null. */
  slstmBackward(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean, rTransposed?: boolean): void;
  slstmBackwardAsync(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean, rTransposed?: boolean): Promise<void>;
  lstmForward(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number, rTransposed?: boolean): void;
  lstmForwardAsync(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number, rTransposed?: boolean): Promise<void>;
  lstmBackward(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, rTransposed?: boolean): void;
  lstmBackwardAsync(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, rTransposed?: boolean): Promise<void>;

  // ---- block-diagonal linear map, LinearHeadwiseExpand (csrc/binding/headwise.cc; csrc/kernels/headwise.h)
  /**
   * y[:, yOffset + hb*O + o] = Σ_d x[:, hb*I + d] W[hb, o, d] (+ bias), W [NB, O, I]; y is [rows, ldy] and this map
   * fills columns [yOffset, yOffset + NB*O), so several maps can write one concatenated output.
   */
  headwiseLinearForward(y: Float32Array, x: Float32Array, W: Float32Array, bias: Float32Array | null, rows: number, NB: number, I: number, O: number, yOffset: number, ldy: number): void;
  /** dx [rows, NB*I] (= or += with accumulateDx), dW [NB, O, I], dbias [NB*O] (each skipped when null) from columns [dyOffset, dyOffset + NB*O) of dy [rows, ldy]. */
  headwiseLinearBackward(dx: Float32Array | null, dW: Float32Array | null, dbias: Float32Array | null, dy: Float32Array, x: Float32Array, W: Float32Array, rows: number, NB: number, I: number, O: number, dyOffset: number, ldy: number, accumulateDx: boolean): void;

  // ---- dimension permutation (csrc/binding/shape.cc)
  /** out = x (of shape `shape`) with its dimensions reordered: out dim d is x dim perm[d]. Same typed-array kind. */
  permute<T extends Float32Array | Int32Array | BigInt64Array | Uint16Array | Uint8Array>(out: T, x: T, shape: readonly number[], perm: readonly number[]): void;

  // ---- optimizers (csrc/binding/optim.cc; csrc/kernels/optim.h) [optim-section]
  /** torch.optim.AdamW in place on one parameter at 1-based `step`: p, m (exp_avg), v (exp_avg_sq), g all of length n. */
  adamwStep(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  /** torch.optim.SGD in place on one parameter (bitwise lib/optim/sgd.ts's loop): buf is the momentum buffer (null
   * when momentum is 0), `first` the step that initialises it. */
  sgdStep(p: Float32Array, buf: Float32Array | null, g: Float32Array, lr: number, momentum: number, dampening: number, weightDecay: number, nesterov: boolean, first: boolean): void;
  /** Σ x² accumulated in float64 (for the global gradient norm). */
  sumSquares(x: Float32Array): number;
  /** x *= alpha in place. */
  scaleInPlace(x: Float32Array, alpha: number): void;

  // ---- mLSTM (csrc/binding/mlstm.cc)
  // Layouts and the state convention in csrc/kernels/mlstm.h: q, k [B,NH,S,DHQK], v, h [B,NH,S,DHV], i, f [B,NH,S]
  // gate pre-activations; state c [B,NH,DHQK,DHV], n [B,NH,DHQK], m [B,NH] (recurrent-form scaling; c0/n0/m0 all
  // null = zero state). `saved` (length from the *SavedSize functions) carries what the backward needs; it may be
  // null in a forward that no backward follows. Outputs are written (=) into the first arrays.
  /** Number of floats of the chunkwise `saved` buffer. */
  mlstmChunkwiseSavedSize(B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number): number;
  /** Number of floats of the recurrent `saved` buffer (state checkpoints). */
  mlstmRecurrentSavedSize(B: number, NH: number, S: number, DHQK: number, DHV: number): number;
  /** Chunkwise form (chunkSize >= S: the parallel form); parallelInit: parallel_stabilized_simple's stabiliser for the zero state. */
  mlstmChunkwiseForward(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean): void;
  mlstmChunkwiseForwardAsync(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean): Promise<void>;
  /** Gradients of the chunkwise forward (exact mode, XLSTM_SPEC §4.6) from h, dh and the final-state cotangents (nullable). */
  mlstmChunkwiseBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, h: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number): void;
  mlstmChunkwiseBackwardAsync(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, h: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number): Promise<void>;
  /** Recurrent step form (XLSTM_SPEC §4.3) over S steps. */
  mlstmRecurrentForward(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): void;
  mlstmRecurrentForwardAsync(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): Promise<void>;
  /** Gradients of the recurrent forward (BPTT, recomputing states from the checkpoints in `saved`). */
  mlstmRecurrentBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): void;
  mlstmRecurrentBackwardAsync(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): Promise<void>;

  // ---- fused mLSTM layer (csrc/binding/mlstm_layer.cc; csrc/kernels/mlstm_layer.h)
  // The whole pre-up-projection mLSTM layer body in one call each way. Parameters in this order (P): wUp [2Di, E],
  // wConv [Di, K], bConv [Di], wQ, wK, wV [Di/Bq, Bq, Bq], wI [NH, 3Di], bI [NH], wF [NH, 3Di], bF [NH], wNorm [Di],
  // skip [Di], wDown [E, Di]; gradients in the same order, written (=). x, y, dx, dy [B, S, E]. With keepSaved the
  // forward returns an opaque handle on the activations the backward reads (native memory, reported to the GC);
  // mlstmLayerRelease frees it at once (idempotent), a finalizer otherwise.
  /**
   * (y, x, ...13 params, B, S, E, Di, NH, Bq, K, chunk, cellEps, normEps, keepSaved[, lnW, lnEps, lnResidual]): with
   * lnW [E], the block form y = x + layer(LayerNorm(x)) (weight lnW, gamma = 1 + lnW when lnResidual, no bias).
   */
  mlstmLayerForward(y: Float32Array, x: Float32Array, ...paramsThenDims: (Float32Array | number | boolean)[]): MlstmLayerSaved | undefined;
  /**
   * (dx, ...13 grads, dy, x, saved, ...13 params, B, S, E, Di, NH, Bq, K, chunk, cellEps, normEps[, lnW, dlnW]):
   * lnW and dlnW (nullable) exactly when the forward ran the block form.
   */
  mlstmLayerBackward(dx: Float32Array, ...gradsThenInputs: (Float32Array | MlstmLayerSaved | number | null)[]): void;
  mlstmLayerRelease(saved: MlstmLayerSaved): void;

  // ---- fused feed-forward half of a block (csrc/binding/ffn_block.cc; csrc/kernels/ffn_block.h)
  // y = x + act(LN(x) W_gᵀ) ⊙ (LN(x) W_vᵀ) W_downᵀ with W_up = [W_g; W_v] [2P, E], W_down [E, P], LN weight lnW [E]
  // (gamma = 1 + lnW when lnResidual, no bias); x, y, dx, dy [N, E]. `saved` (ffnBlockSavedSize floats, nullable in
  // the forward) holds what the backward reads; gradients written (=), null ones skipped.
  ffnBlockSavedSize(N: number, E: number, P: number): number;
  ffnBlockForward(
    y: Float32Array, saved: Float32Array | null, x: Float32Array, lnW: Float32Array, wUp: Float32Array, wDown: Float32Array,
    N: number, E: number, P: number, lnEps: number, lnResidual: boolean,
    act: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine", alpha: number, beta: number,
  ): void;
  ffnBlockBackward(
    dx: Float32Array, dlnW: Float32Array | null, dwUp: Float32Array | null, dwDown: Float32Array | null, dy: Float32Array, x: Float32Array,
    saved: Float32Array, lnW: Float32Array, wUp: Float32Array, wDown: Float32Array, N: number, E: number, P: number, lnEps: number, lnResidual: boolean,
    act: "exp" | "log" | "sigmoid" | "logsigmoid" | "tanh" | "softplus" | "relu" | "gelu" | "geluTanh" | "silu" | "neg" | "affine", alpha: number, beta: number,
  ): void;

  // ---- fused inference (csrc/binding/infer.cc)
  // A session is an opaque handle (a type-tagged External) owning a snapshot of an xLSTMLMModel's parameters, packed
  // for matrix-vector products, plus the recurrent state of every block for `batch` rows (layouts in
  // csrc/kernels/xlstm_infer.h, the same as xLSTMLMModel.step's state). `params` maps the model's state_dict keys to
  // Float32Arrays (copied; optional biases and group_norm.weight may be absent). The handle's finalizer frees the
  // native memory, whose size is reported to the GC; inferDispose frees it at once (idempotent).
  /** Copies and packs the parameters; the state starts at zero. */
  inferCreate(
    config: {
      vocabSize: number;
      embeddingDim: number;
      postNorm: boolean;
      blocks: ReadonlyArray<
        | { kind: "mlstm"; numHeads: number; innerDim: number; qkvBlocksize: number; convKernel: number; ffn?: { projUpDim: number; act: string } | null }
        | { kind: "slstm"; numHeads: number; convKernel: number; function: "slstm" | "lstm"; ffn?: { projUpDim: number; act: string } | null }
      >;
    },
    params: { readonly [stateDictKey: string]: Float32Array | DeviceBuffer },
    batch: number,
    /** true: params are device buffers and the session runs on the GPU (csrc/binding/cuda_infer_session.h) */
    device?: boolean,
  ): object;
  /**
   * An xLSTM Large device session (csrc/binding/cuda_large_session.h) from device buffers under the model's state_dict
   * keys ("embedding.weight", "backbone.blocks.0.mlstm_layer.qkv_opreact.weight", ...; matrix weights of `dtype`,
   * norms and biases float32). The calls below then take it (inferRun: S steps; state parts "c", "n", "m").
   */
  inferCreateLarge(
    config: {
      vocabSize: number; embeddingDim: number; numHeads: number; qkDim: number; vDim: number; ffnUpDim: number; numBlocks: number;
      weightMode: "single" | "fused"; dtype: "float32" | "bfloat16"; useBias: boolean; normEps: number; eps: number;
      gateSoftCap: number | null; outputSoftCap: number | null; outNorm: boolean;
    },
    params: { readonly [stateDictKey: string]: DeviceBuffer },
    batch: number,
  ): object;
  /** Runs tokens [B, S] (ids in [0, V)) from the session's state and writes the logits of the last position [B, V]; S = 1 is one step. */
  inferRun(session: object, logits: Float32Array, tokens: Int32Array, S: number): void;
  /**
   * inferRun on a libuv worker (tokens copied at the call; logits written when the promise resolves). Until it
   * settles, other calls with the session throw (inferBytes answers the size last reported; inferDispose frees the
   * session once the run is done).
   */
  inferRunAsync(session: object, logits: Float32Array, tokens: Int32Array, S: number): Promise<void>;
  /** Zero state for every block. */
  inferReset(session: object): void;
  /** Copies one state part of block `block` into out: "conv" [B,K,F], mLSTM "c" [B,NH,DH,DH], "n" [B,NH,DH], "m" [B,NH], sLSTM "slstm" [NS,B,E]. */
  inferGetState(session: object, block: number, part: "conv" | "c" | "n" | "m" | "slstm", out: Float32Array): void;
  /** Sets one state part from src (null: zeros). */
  inferSetState(session: object, block: number, part: "conv" | "c" | "n" | "m" | "slstm", src: Float32Array | null): void;
  /** Bytes of native memory the session holds (parameters, state, scratch). */
  inferBytes(session: object): number;
  /** Frees the session's native memory now; later calls with the handle (except inferDispose) throw. */
  inferDispose(session: object): void;
  /**
   * A device session's decode-step graphs (csrc/binding/session_graphs.h): "off", "on: N graphs" (N captured so
   * far; after a failed capture: "on: N graphs; capture failed (k of 3, retrying | no more tries): <why>") or
   * "failed: <why>" (3 captures failed and none worked: no more are tried until a kernel setting changes; steps
   * without a graph run eagerly); "cpu" for a CPU session.
   */
  inferGraphs(session: object): string;
  /**
   * Whether the device inference sessions replay their decode steps (one token per row) from CUDA graphs: the
   * first step from each state-buffer parity runs eagerly, the second is captured, later ones launch the graph
   * (default false until timed on a GPU; process-wide; under host emulation a graph replays the step's calls).
   * Returns the previous setting.
   */
  cudaSetSessionGraphs(enabled: boolean): boolean;
  /**
   * Test hook of the emulated device (XLSTM_CUDA_EMULATE): its next n graph captures fail, before their work runs or
   * (afterRun) once it has, as a capture whose memory is refused at its end. Throws on a real device.
   */
  cudaEmulateRefuseCaptures(n: number, afterRun?: boolean): void;

  // ---- bfloat16 weights (csrc/binding/bf16.cc; csrc/kernels/bf16.h) [bf16-section]
  // bfloat16 data is a Uint16Array of raw bits. Outputs are written (=) and must not overlap inputs.
  /** y [rows*outF] = x [rows*inF] · wᵀ (+ bias), w [outF*inF] bf16; roundX rounds x to bf16 first (then AMX tiles when present, else AVX512_BF16 vdpbf16ps when present). */
  bf16Linear(y: Float32Array, x: Float32Array, w: Uint16Array, bias: Float32Array | null, rows: number, inFeatures: number, outFeatures: number, roundX: boolean): void;
  /** float32 -> bf16 bits, round to nearest even (NaN stays NaN); out.length === x.length. */
  bf16FromF32(out: Uint16Array, x: Float32Array): void;
  /** bf16 bits -> float32 (exact); out.length === x.length. */
  bf16ToF32(out: Float32Array, x: Uint16Array): void;
  /** Σ x (float64 result); reads every element once (a memory-bandwidth probe). */
  bf16Sum(x: Uint16Array): number;
  /** Whether AVX512_BF16's vdpbf16ps is usable now (CPU support, SIMD level, not disabled); roundX runs on it when AMX is not available. */
  bf16DotAvailable(): boolean;
  /** Allow or forbid the AVX512_BF16 path (tests); returns bf16DotAvailable(). */
  bf16SetDotEnabled(enabled: boolean): boolean;
  /** The kernel bf16Linear takes for this many rows now: "amx", "vdpbf16ps-gemm" (AVX512_BF16 GEMM tiles, many rows), "vdpbf16ps" (dot-product tiles), else the float32 path "avx512" / "avx2" / "scalar". */
  bf16LinearPath(rows: number, roundX: boolean): "amx" | "vdpbf16ps-gemm" | "vdpbf16ps" | "avx512" | "avx2" | "scalar";
  /** Whether bf16Linear's roundX runs on AMX tiles now (preferred over vdpbf16ps: the same exact products, summed in another order). */
  bf16AmxAvailable(): boolean;
  /** Allow or forbid the AMX path (tests, A/B timing); returns bf16AmxAvailable(). */
  bf16SetAmxEnabled(enabled: boolean): boolean;
  /** bf16Linear on device buffers (cuda/bf16.cu): y = x · wᵀ (+ bias), w bf16 bits; GEMV for rows <= 8, widen + GEMM above. */
  cudaBf16LinearDev(y: DeviceBuffer, x: DeviceBuffer, w: DeviceBuffer, bias: DeviceBuffer | null, rows: number, inFeatures: number, outFeatures: number, roundX: boolean): void;

  // ---- xLSTMLargeDecoder's forward (csrc/binding/large_decoder.cc; csrc/kernels/large_decoder.h)
  /**
   * A handle over a decoder's packed weights (borrowed, not copied; matrices Uint16Array bf16 bits or Float32Array,
   * vectors Float32Array, absent biases null). Every array is re-checked at each forward call.
   */
  largeDecoderCreate(config: LargeDecoderConfig, weights: LargeDecoderWeights): object;
  /**
   * logits [B*S*V] (or [B*V] with lastOnly) for tokens [B*S] from stateIn (3 arrays per block: c, n, m; null = the
   * zero state) into stateOut (the same arrays as stateIn's for in place). rounding: 0 float32 activations, 1 rounded
   * to bf16, 2 auto. A long prompt runs in pieces of about maxPieceRows rows (B x tokens, whole chunks; default 1,024),
   * each from the state the one before left: the activations' scratch stays bounded whatever the prompt's length.
   */
  largeDecoderForward(decoder: object, logits: Float32Array, tokens: Int32Array, B: number, S: number, lastOnly: boolean, rounding: number, stateIn: readonly (Float32Array | null)[], stateOut: readonly Float32Array[], maxPieceRows?: number): void;
  /** largeDecoderForward on a libuv worker thread (tokens copied at the call; the other arrays pinned until it settles). */
  largeDecoderForwardAsync(decoder: object, logits: Float32Array, tokens: Int32Array, B: number, S: number, lastOnly: boolean, rounding: number, stateIn: readonly (Float32Array | null)[], stateOut: readonly Float32Array[], maxPieceRows?: number): Promise<void>;
  /** out [n*e] float32 = rows indices[i] of weight [v*e] (bf16 bits), widened; indices int32 (or int64 with int64Indices) in [0, v). */
  cudaBf16EmbeddingDev(out: DeviceBuffer, weight: DeviceBuffer, indices: DeviceBuffer, int64Indices: boolean, n: number, v: number, e: number): void;
  /** out [n] float32 = x [n] bf16 bits widened (exact). */
  cudaBf16ToF32Dev(out: DeviceBuffer, x: DeviceBuffer, n: number): void;
  /** The bf16 GEMV's output map (host code): counts [rows*outFeatures] += writes of y[r, o] over the launch; returns the grid size. rows in 1..8. */
  cudaBf16GemvCoverage(rows: number, inFeatures: number, outFeatures: number, counts: Int32Array): number;

  // ---- memory-mapped files (csrc/binding/mmap.cc) [mmap-section]
  /**
   * The whole file mapped (opened read-only, private copy-on-write mapping, pages read lazily) as an external
   * ArrayBuffer that unmaps when garbage-collected; an empty file gives an empty ArrayBuffer. Throws an Error
   * naming the file (with .code, e.g. "ENOENT") when it cannot be opened or mapped, or is not a regular file.
   */
  mmapFile(path: string): ArrayBuffer;
  // ---- CUDA twins of the nn kernels (csrc/binding/cuda_nn.cc) [cuda-nn-section]
  // For each CPU export X below, cudaXHost takes X's arguments and runs the CUDA twin on the current device
  // (copies in, runs, copies back, synchronises): an Error "cudaXHost: CUDA is not available: <reason>" without a
  // usable GPU. cudaXEmulate takes X's arguments plus `writes` and replays the CUDA launch on the host (no GPU
  // needed; every block and thread, the kernels' own code and reduction order), setting writes[k] to how many
  // times output element k was written (outputs concatenated in argument order; absent optional outputs take no
  // room). Throws "... built without CUDA" in CPU-only builds.
  cudaSoftmaxForwardHost(y: Float32Array, x: Float32Array, rows: number, cols: number): void;
  cudaSoftmaxForwardEmulate(y: Float32Array, x: Float32Array, rows: number, cols: number, writes: Int32Array): void;
  cudaLogSoftmaxForwardHost(y: Float32Array, x: Float32Array, rows: number, cols: number): void;
  cudaLogSoftmaxForwardEmulate(y: Float32Array, x: Float32Array, rows: number, cols: number, writes: Int32Array): void;
  cudaSoftmaxBackwardHost(dx: Float32Array, y: Float32Array, dy: Float32Array, rows: number, cols: number): void;
  cudaSoftmaxBackwardEmulate(dx: Float32Array, y: Float32Array, dy: Float32Array, rows: number, cols: number, writes: Int32Array): void;
  cudaLogSoftmaxBackwardHost(dx: Float32Array, y: Float32Array, dy: Float32Array, rows: number, cols: number): void;
  cudaLogSoftmaxBackwardEmulate(dx: Float32Array, y: Float32Array, dy: Float32Array, rows: number, cols: number, writes: Int32Array): void;
  cudaCrossEntropyForwardHost(
    loss: Float32Array,
    rowMax: Float32Array,
    logSum: Float32Array,
    logits: Float32Array,
    targets: Int32Array | BigInt64Array,
    n: number,
    v: number,
    ignoreIndex: number,
  ): number;
  /** writes: 3 * n counters (loss, rowMax, logSum). */
  cudaCrossEntropyForwardEmulate(
    loss: Float32Array,
    rowMax: Float32Array,
    logSum: Float32Array,
    logits: Float32Array,
    targets: Int32Array | BigInt64Array,
    n: number,
    v: number,
    ignoreIndex: number,
    writes: Int32Array,
  ): number;
  cudaCrossEntropyBackwardHost(
    dlogits: Float32Array,
    logits: Float32Array,
    rowMax: Float32Array,
    logSum: Float32Array,
    targets: Int32Array | BigInt64Array,
    g: Float32Array,
    n: number,
    v: number,
    ignoreIndex: number,
  ): void;
  cudaCrossEntropyBackwardEmulate(
    dlogits: Float32Array,
    logits: Float32Array,
    rowMax: Float32Array,
    logSum: Float32Array,
    targets: Int32Array | BigInt64Array,
    g: Float32Array,
    n: number,
    v: number,
    ignoreIndex: number,
    writes: Int32Array,
  ): void;
  cudaLayerNormForwardHost(
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    bias: Float32Array | null,
    rows: number,
    groups: number,
    dim: number,
    eps: number,
    residualWeight: boolean,
  ): void;
  /** writes: y.length + mean.length + rstd.length counters. */
  cudaLayerNormForwardEmulate(
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    bias: Float32Array | null,
    rows: number,
    groups: number,
    dim: number,
    eps: number,
    residualWeight: boolean,
    writes: Int32Array,
  ): void;
  cudaLayerNormBackwardHost(
    dx: Float32Array,
    dweight: Float32Array | null,
    dbias: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    weight: Float32Array | null,
    rows: number,
    groups: number,
    dim: number,
    residualWeight: boolean,
  ): void;
  /** writes: dx.length (+ dweight.length) (+ dbias.length) counters. */
  cudaLayerNormBackwardEmulate(
    dx: Float32Array,
    dweight: Float32Array | null,
    dbias: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    weight: Float32Array | null,
    rows: number,
    groups: number,
    dim: number,
    residualWeight: boolean,
    writes: Int32Array,
  ): void;
  cudaEmbeddingForwardHost(out: Float32Array, weight: Float32Array, indices: Int32Array | BigInt64Array, v: number, e: number): void;
  cudaEmbeddingForwardEmulate(out: Float32Array, weight: Float32Array, indices: Int32Array | BigInt64Array, v: number, e: number, writes: Int32Array): void;
  /** Deterministic: every dweight element is summed by one thread in index order (bitwise equal to the CPU). */
  cudaEmbeddingBackwardHost(dweight: Float32Array, dout: Float32Array, indices: Int32Array | BigInt64Array, v: number, e: number): void;
  /** writes counts the initialising write of each dweight element (the index-order additions are not counted). */
  cudaEmbeddingBackwardEmulate(dweight: Float32Array, dout: Float32Array, indices: Int32Array | BigInt64Array, v: number, e: number, writes: Int32Array): void;
  // ---- CUDA twins of reduce/conv1d/dropout/optim/permute (csrc/binding/cuda_misc.cc) [cuda-misc-section]
  // Each cuda<Export>Host takes exactly the arguments of its CPU export and writes the same outputs, computed on the
  // GPU (host arrays copied in and out, synchronous); without a usable GPU it throws an Error
  // "<export>: CUDA is not available: <backends().cuda.reason>". The *Coverage exports run a kernel launch's index
  // maps on the host (no GPU needed; a CUDA build) and return how many inconsistencies they found.
  /** reduce on the GPU (same results; sums in float64 in another order, so rarely one ulp apart). */
  cudaReduceHost(op: "sum" | "mean" | "max", x: Float32Array, shape: readonly number[], axes: readonly number[], out: Float32Array, argmax?: BigInt64Array | null): void;
  /** reduceBackward on the GPU; for "max" each argmax[o] must be in output o's reduction set (RangeError otherwise). */
  cudaReduceBackwardHost(op: "sum" | "mean" | "max", dy: Float32Array, shape: readonly number[], axes: readonly number[], dx: Float32Array, argmax?: BigInt64Array | null): void;
  /** Float64 sum of x on the GPU (twin of the CPU kernel sum_all). */
  cudaSumAllHost(x: Float32Array): number;
  /**
   * Host run of the reduction kernels' launch for x of `shape` reduced over `axes`: reads[i] = how often x[i] is read;
   * errors counts reads for the wrong output and outputs not written exactly once; mode is the launch mode (null for
   * the fill/copy cases: empty or nothing reduced), pieces the pieces per output.
   */
  cudaReduceCoverage(shape: readonly number[], axes: readonly number[], reads: Int32Array): { errors: number; mode: "serial" | "block" | "columns" | null; pieces: number };
  /** Host run of the two-pass sums' partition (cudaSumAllHost, cudaSumSquaresHost) over reads.length elements. */
  cudaSumCoverage(reads: Int32Array): number;
  cudaCausalConv1dForwardHost(y: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array | null, b: number, s: number, f: number, k: number): void;
  cudaCausalConv1dBackwardHost(dx: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null, dy: Float32Array, x: Float32Array, weight: Float32Array, b: number, s: number, f: number, k: number): void;
  /**
   * Host run of the conv1d kernels' maps: yWrites [b*s*f] writes per y/dx element, dweightTerms [f*k] and dbiasTerms
   * [f] the (row, tap) terms each weight/bias gradient element adds up.
   */
  cudaCausalConv1dCoverage(b: number, s: number, f: number, k: number, yWrites: Int32Array, dweightTerms: Int32Array, dbiasTerms: Int32Array): number;
  /** dropoutForward on the GPU: the same Philox4x32-10 stream, so bit-identical mask and y for the same key. */
  cudaDropoutForwardHost(y: Float32Array, mask: Uint8Array, x: Float32Array, p: number, key0: number, key1: number): void;
  cudaDropoutBackwardHost(dx: Float32Array, dy: Float32Array, mask: Uint8Array, p: number): void;
  /** adamwStep on the GPU (bitwise the CPU's p, m, v). */
  cudaAdamwStepHost(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  /** sumSquares on the GPU (float64, another summation order). */
  cudaSumSquaresHost(x: Float32Array): number;
  cudaScaleInPlaceHost(x: Float32Array, alpha: number): void;
  /** permute on the GPU (any element size the CPU supports). */
  cudaPermuteHost<T extends Float32Array | Int32Array | BigInt64Array | Uint16Array | Uint8Array>(out: T, x: T, shape: readonly number[], perm: readonly number[]): void;
  /** Host run of the permute kernel's map: reads[i] = how often input element i is read. */
  cudaPermuteCoverage(shape: readonly number[], perm: readonly number[], reads: Int32Array): number;
  /**
   * Host replays of the reduction / conv1d launches (no GPU needed; a CUDA build): the CPU export's arguments plus
   * `writes`, which receives how many times each output element was written (outputs concatenated in argument order,
   * absent ones taking no room). Each replay runs the kernels' own __host__ __device__ code over every block and
   * thread, in the device's combine order.
   */
  cudaReduceEmulate(op: "sum" | "mean" | "max", x: Float32Array, shape: readonly number[], axes: readonly number[], out: Float32Array, argmax: BigInt64Array | null, writes: Int32Array): void;
  /** As cudaReduceBackwardHost: for "max" each argmax[o] must be in output o's reduction set (RangeError otherwise). */
  cudaReduceBackwardEmulate(op: "sum" | "mean" | "max", dy: Float32Array, shape: readonly number[], axes: readonly number[], dx: Float32Array, argmax: BigInt64Array | null, writes: Int32Array): void;
  cudaCausalConv1dForwardEmulate(y: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array | null, b: number, s: number, f: number, k: number, writes: Int32Array): void;
  cudaCausalConv1dBackwardEmulate(dx: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null, dy: Float32Array, x: Float32Array, weight: Float32Array, b: number, s: number, f: number, k: number, writes: Int32Array): void;
  // ---- CUDA twins of the sLSTM/LSTM recurrences (csrc/binding/cuda_recurrent.cc) [cuda-recurrent-section]
  // Each cuda<Export>Host takes exactly the arguments of its CPU export and writes the same outputs, computed on the
  // GPU (host arrays copied in and out, synchronous; cuda/recurrent.cu, the CPU's cell math); without a usable GPU it
  // throws an Error "<export>: CUDA is not available: <backends().cuda.reason>".
  /** slstmForward on the GPU (y, states, gates within float32 rounding of the CPU). */
  cudaSlstmForwardHost(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  /** slstmBackward on the GPU (dR, dbias: chunked float sums added in double, deterministic). */
  cudaSlstmBackwardHost(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean): void;
  /** lstmForward on the GPU. */
  cudaLstmForwardHost(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  /** lstmBackward on the GPU. */
  cudaLstmBackwardHost(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number): void;
  /**
   * The CUDA kernels' own __host__ __device__ code replayed on the host (no GPU needed; a CUDA build): every block,
   * each phase run by all its threads before the next, shared memory planned as on an H100. Same arguments and
   * outputs as slstmForward / slstmBackward / lstmForward / lstmBackward.
   */
  cudaSlstmForwardEmulate(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaSlstmBackwardEmulate(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean): void;
  cudaLstmForwardEmulate(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaLstmBackwardEmulate(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number): void;
  /**
   * The form under the bf16 autocast (cuda/recurrent_tc.cuh): the recurrent matrix products on tensor cores with bf16
   * operands (R and h_{t-1} forward, R and the pre-activation gradients backward) and float32 sums; cell, states, dx,
   * dR and dbias float32. Where the tensor-core form does not apply (the rows launch, B > 64, more than 32 units per
   * block, shared memory) the float32 kernels run. Same arguments and outputs as the exports above; *Bf16Host on the GPU,
   * *Bf16Emulate replayed on the host (its 16 x 16 x 16 products as fma chains in k order).
   */
  cudaSlstmForwardBf16Host(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaSlstmBackwardBf16Host(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean): void;
  cudaLstmForwardBf16Host(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaLstmBackwardBf16Host(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaSlstmForwardBf16Emulate(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaSlstmBackwardBf16Emulate(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean): void;
  cudaLstmForwardBf16Emulate(y: Float32Array, states: Float32Array, gates: Float32Array, x: Float32Array, state0: Float32Array | null, R: Float32Array, bias: Float32Array, B: number, S: number, NH: number, DH: number): void;
  cudaLstmBackwardBf16Emulate(dx: Float32Array, dR: Float32Array, dbias: Float32Array, dstate0: Float32Array | null, gates: Float32Array, states: Float32Array, dy: Float32Array, dstateFinal: Float32Array | null, state0: Float32Array | null, R: Float32Array, B: number, S: number, NH: number, DH: number): void;
  /**
   * Host run of the recurrent kernels' launch maps (no GPU needed; a CUDA build), NS = 4 when slstm else 2:
   * writes = global writes per output element, the outputs concatenated y [B*S*H], states [NS*S*B*H],
   * gates [B*S*4H], dx [B*S*4H], dR [NH*DH*4DH], dbias [4H], dstate0 [NS*B*H]; returns the number of other
   * inconsistencies (shared-memory slots, block ownership, parameter-gradient partials and row chunks).
   */
  cudaRecurrentCoverage(slstm: boolean, B: number, S: number, NH: number, DH: number, writes: Int32Array): number;
  /** Which launch the sLSTM / LSTM recurrences take on the GPU and in the *Emulate replays: "auto" (default), "rows" (a block per head and <= 4 rows), "split" (a head's units over many co-resident blocks with a grid barrier per step, cuda/recurrent_split.cuh) or "split-lane" (the split launch with R in registers, the "lane" form, where it applies; not yet run on a GPU); returns the previous mode. */
  cudaSetRecurrentLaunch(mode: "auto" | "rows" | "split" | "split-lane"): "auto" | "rows" | "split" | "split-lane";
  /** The split launch's blocks per head at most: 0 (default) as many as the device holds (one per SM), else that cap (>= 2: fewer blocks, more units each); returns the previous cap. Process-wide, for benchmarks (G1's `-split-blocks` rows) and tests. */
  cudaSetRecurrentSplitBlocks(perHead: number): number;
  /** The split plan the *Emulate replays follow (an H100: 132 SMs, 227 KiB of shared memory per block) for the forward or backward, float32 or bf16, under the current launch mode and cap: null for the rows launch; tensorCoreTiles 0 where the bf16 tensor-core form does not apply. */
  cudaRecurrentPlan(B: number, S: number, NH: number, DH: number, forward: boolean, bf16: boolean): { blocksPerHead: number; unitsPerBlock: number; tensorCoreTiles: number; exchange: "partials" | "gather" } | null;
  /** How the bf16 tensor-core backward's blocks of a head exchange the recurrent gradient: "partials" (default: each block's partial ∂h of all units, summed by the owners) or "gather" (each block's dp gathered by all, cuda/recurrent_gather.cuh; where its shared memory fits; not yet run on a GPU); returns the previous one. */
  cudaSetRecurrentExchange(exchange: "partials" | "gather"): "partials" | "gather";
  /** The split plan's autotune (off by default; not yet run on a GPU): on, the first call of a shape (T >= 64) on the GPU times the candidate plans (the settings' own, caps on the blocks per head down to a quarter, the bf16 backward's other exchange) on its own inputs and every call of the shape takes the fastest (overriding the cap and exchange settings). Turning it on or off forgets the choices. Returns the previous setting. */
  cudaSetRecurrentAutotune(on: boolean): boolean;
  /** The plans the autotune would time for a shape on the emulated device (an H100), the current settings' first. */
  cudaRecurrentTuneCandidates(B: number, S: number, NH: number, DH: number, forward: boolean, bf16: boolean): { cap: number; exchange: "partials" | "gather" }[];
  /** The autotune's choice for a shape on the current GPU (S does not enter it), null when none was made. */
  cudaRecurrentTuned(slstm: boolean, B: number, S: number, NH: number, DH: number, forward: boolean, bf16: boolean): { cap: number; exchange: "partials" | "gather" } | null;
  /** Host check of the bf16 tensor-core recurrences' wmma tiles at a shape's emulated plans under the current cap (forward; backward with either exchange): the count of misaligned tiles, leading dimensions off wmma's rules and tiles outside their arrays. */
  cudaRecurrentWmmaErrors(B: number, S: number, NH: number, DH: number): number;
  // ---- CUDA twins of the mLSTM cell (csrc/binding/cuda_mlstm.cc) [cuda-mlstm-section]
  /** mlstmChunkwiseForward on the GPU (cuda/mlstm.cu): same arguments, layouts, `saved` contents and state convention. */
  cudaMlstmChunkwiseForwardHost(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean): void;
  /** mlstmChunkwiseBackward on the GPU (deterministic: no atomics, fixed summation orders). */
  cudaMlstmChunkwiseBackwardHost(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, h: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number): void;
  /** mlstmRecurrentForward on the GPU (the same segment checkpoints in `saved`). */
  cudaMlstmRecurrentForwardHost(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): void;
  /** mlstmRecurrentBackward on the GPU. */
  cudaMlstmRecurrentBackwardHost(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): void;
  /**
   * Host replay of cudaMlstmChunkwiseForwardHost's launches (no GPU needed; CUDA builds only): the kernels' own
   * __host__ __device__ code, every block and thread, the device's summation orders. Same arguments and results.
   */
  cudaMlstmChunkwiseForwardEmulate(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean): void;
  /** Host replay of cudaMlstmChunkwiseBackwardHost's launches (no GPU needed; CUDA builds only). */
  cudaMlstmChunkwiseBackwardEmulate(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, h: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number): void;
  /**
   * cudaMlstmChunkwiseForwardHost under the bf16 autocast (cuda/mlstm_bf16.cuh: the products on tensor cores with
   * bfloat16 operands and float32 sums; sm_80+). Same arguments, `saved` layout and results up to bf16 rounding.
   */
  cudaMlstmChunkwiseForwardBf16Host(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean): void;
  /** cudaMlstmChunkwiseBackwardHost under the bf16 autocast. */
  cudaMlstmChunkwiseBackwardBf16Host(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, h: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number): void;
  /**
   * Host replay of cudaMlstmChunkwiseForwardBf16Host's launches (CUDA builds; no GPU needed): the same item code, the
   * products by the grouped GEMM's host reference; exactProducts: the products unrounded (float32), so the results
   * match the float32 kernels to float32 rounding.
   */
  cudaMlstmChunkwiseForwardBf16Emulate(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean, exactProducts?: boolean): void;
  /**
   * Which float32 chunkwise form the CUDA mLSTM entries and their host replays run (process-wide; returns the previous):
   * "tiles" (the tiled kernels), "composed" (the bf16 form's structure with float32 grouped GEMMs on the SIMT cores)
   * or "auto" (default: composed from DK·DV >= 2^16, where an H100 ran it faster, tiled below). CUDA builds; throws in
   * a CPU-only build.
   */
  cudaSetMlstmForm(form: "tiles" | "composed" | "auto"): "tiles" | "composed" | "auto";
  /** How the composed forms compute the inter-chunk states: "walk" (default, the state kernels) or "scan" (grouped GEMM + scan); returns the previous. */
  cudaSetMlstmStates(form: "walk" | "scan"): "walk" | "scan";
  /**
   * How the bf16 form computes the chunkwise intra-chunk parts (forward h; backward dq, dk, dv): "products" (default:
   * grouped GEMMs over an L x L scratch) or "fused" (a kernel per output, a block per (chunk, 64-row tile) with its
   * rows' weights in shared memory, tiled along the chunk, no scratch; chunks up to 256, longer ones take the
   * products; opt-in until timed on a GPU); returns the previous. CUDA builds only.
   */
  cudaSetMlstmIntra(form: "products" | "fused"): "products" | "fused";
  /** Host replay of cudaMlstmChunkwiseBackwardBf16Host's launches (exactProducts as the forward's). */
  cudaMlstmChunkwiseBackwardBf16Emulate(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, h: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, exactProducts?: boolean): void;
  /** Host replay of cudaMlstmRecurrentForwardHost's launches (no GPU needed; CUDA builds only). */
  cudaMlstmRecurrentForwardEmulate(h: Float32Array, cLast: Float32Array, nLast: Float32Array, mLast: Float32Array, saved: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, c0: Float32Array | null, n0: Float32Array | null, m0: Float32Array | null, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): void;
  /** Host replay of cudaMlstmRecurrentBackwardHost's launches (no GPU needed; CUDA builds only). */
  cudaMlstmRecurrentBackwardEmulate(dq: Float32Array, dk: Float32Array, dv: Float32Array, di: Float32Array, df: Float32Array, dc0: Float32Array | null, dn0: Float32Array | null, dm0: Float32Array | null, saved: Float32Array, dh: Float32Array, dcLast: Float32Array | null, dnLast: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, i: Float32Array, f: Float32Array, B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number): void;
  /**
   * Host replay (no GPU needed; CUDA builds only) of every mLSTM kernel launch's write maps for these sizes: per
   * output ("chunkwiseForward.h", ..., "recurrentBackward.dm0", and "tile.sharedSlots" for the tile kernel's staging)
   * the number of elements not written exactly once; errors is their sum.
   */
  cudaMlstmCoverage(B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number): { outputs: Record<string, number>; errors: number };
  // ---- CUDA device memory and device-buffer kernels (csrc/binding/cuda_memory.cc) [cuda-memory-section]
  /**
   * Device memory from the caching allocator (cuda/caching_allocator.h) on device 0, held by the returned handle;
   * freed by cudaFree or, failing that, by garbage collection. gcTracked (default true): its bytes are reported to V8
   * as external memory so that garbage collection weighs the handle; false for memory a cuda.scope frees (reporting
   * a step's short-lived activations made V8 run full collections several times per step; cudaTrackGc reports it
   * later). Error "cudaMalloc: CUDA is not available: <why>" without a usable GPU; "cudaMalloc: CUDA out of memory:
   * tried to allocate ..." when the device is full.
   */
  cudaMalloc(bytes: number, gcTracked?: boolean): DeviceBuffer;
  /** Reports an untracked live buffer's bytes to V8 as external memory (it left its cuda.scope); else nothing. */
  cudaTrackGc(buffer: DeviceBuffer): void;
  /** Gives the buffer's memory back to the allocator now; freeing a freed buffer does nothing. */
  cudaFree(buffer: DeviceBuffer): void;
  /** Copies the typed array `src` into the buffer at byteOffset; returns when the copy is done. */
  cudaUpload(buffer: DeviceBuffer, byteOffset: number, src: ArrayBufferView): void;
  /** Fills the typed array `dst` from the buffer at byteOffset; waits for the work queued before it. */
  cudaDownload(buffer: DeviceBuffer, byteOffset: number, dst: ArrayBufferView): void;
  /** Device-to-device copy of `bytes` bytes (enqueued). */
  cudaCopyBuffer(dst: DeviceBuffer, dstByteOffset: number, src: DeviceBuffer, srcByteOffset: number, bytes: number): void;
  /** Sets every byte of the buffer to 0 (enqueued). */
  cudaZero(buffer: DeviceBuffer): void;
  /** Waits until every kernel and copy queued on the package's stream has finished. */
  cudaSynchronize(): void;
  /** The allocator's counters and the device's free/total memory (cudaMemGetInfo). */
  cudaMemoryStats(): CudaMemoryStats;
  /** Returns every wholly free cached segment to the driver. */
  cudaEmptyCache(): void;
  /** The caching allocator over a simulated device of `capacityBytes` (addresses only; no GPU needed; for tests). */
  allocatorSimCreate(capacityBytes: number): AllocatorSim;
  /** A block of at least `bytes`: its (simulated) address, or null when the simulated device is out of memory. */
  allocatorSimAlloc(sim: AllocatorSim, bytes: number): number | null;
  /** Returns a block; RangeError for an address that is not a live block. */
  allocatorSimFree(sim: AllocatorSim, address: number): void;
  allocatorSimEmptyCache(sim: AllocatorSim): void;
  allocatorSimStats(sim: AllocatorSim): AllocatorStats & { rawUsedBytes: number; rawSegments: number };
  /** "" when the allocator's invariants hold, else the first broken one. */
  allocatorSimCheck(sim: AllocatorSim): string;
  /**
   * A CUDA graph capture's memory bookkeeping (cuda/capture_scratch.h) over the simulated allocator, for tests: ops
   * in order allocate (`alloc` bytes), free the i-th allocation (`free`) or a block from before the capture
   * (`freeAddress`). Returns each allocation's address, the blocks the graph would keep, how many blocks allocated
   * inside were left live, and why the capture is refused ("" when it is not). The blocks stay allocated in the sim.
   */
  allocatorSimCapture(sim: AllocatorSim, ops: readonly ({ alloc: number } | { free: number } | { freeAddress: number })[]): { addresses: number[]; outliving: number; keep: number[]; refused: string };
  /** unary on device buffers (n floats; out may be x). Enqueued on the package's stream. */
  cudaUnaryDev(op: Parameters<Binding["unary"]>[0], x: DeviceBuffer, out: DeviceBuffer, n: number, alpha?: number, beta?: number): void;
  /** unaryBackward on device buffers. */
  cudaUnaryBackwardDev(op: Parameters<Binding["unary"]>[0], x: DeviceBuffer | null, y: DeviceBuffer | null, dy: DeviceBuffer, dx: DeviceBuffer, n: number, alpha?: number): void;
  /** binary on device buffers; out in the broadcast shape (may be an operand of that shape). */
  cudaBinaryDev(op: "add" | "sub" | "mul" | "div", a: DeviceBuffer, aShape: readonly number[], b: DeviceBuffer, bShape: readonly number[], out: DeviceBuffer): void;
  /** binaryBackward on device buffers: gradients in the broadcast shape. */
  cudaBinaryBackwardDev(
    op: "add" | "sub" | "mul" | "div", a: DeviceBuffer, aShape: readonly number[], b: DeviceBuffer, bShape: readonly number[],
    dy: DeviceBuffer, da: DeviceBuffer | null, db: DeviceBuffer | null,
  ): void;
  /** (log-)softmax over rows of `cols` on device buffers (y distinct from x). */
  cudaSoftmaxDev(log: boolean, x: DeviceBuffer, y: DeviceBuffer, rows: number, cols: number): void;
  /** Backward of cudaSoftmaxDev from its output y. */
  cudaSoftmaxBackwardDev(log: boolean, y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, rows: number, cols: number): void;
  /** Fused cross-entropy per row on device buffers; targets (int32, or int64 with int64Targets) must be in range or ignoreIndex. */
  cudaCrossEntropyDev(
    loss: DeviceBuffer, rowMax: DeviceBuffer, logSum: DeviceBuffer, count: DeviceBuffer, logits: DeviceBuffer, targets: DeviceBuffer,
    int64Targets: boolean, n: number, v: number, ignoreIndex: number,
  ): void;
  /** dlogits = (softmax(logits) - onehot(target)) * g per row, on device buffers. */
  cudaCrossEntropyBackwardDev(
    dlogits: DeviceBuffer, logits: DeviceBuffer, rowMax: DeviceBuffer, logSum: DeviceBuffer, targets: DeviceBuffer, int64Targets: boolean,
    g: DeviceBuffer, n: number, v: number, ignoreIndex: number,
  ): void;
  /** layerNormForward on device buffers (x viewed as [rows, groups, dim]). */
  cudaLayerNormDev(
    y: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, x: DeviceBuffer, w: DeviceBuffer | null, b: DeviceBuffer | null,
    rows: number, groups: number, dim: number, eps: number, residual: boolean,
  ): void;
  /** layerNormBackward on device buffers. */
  cudaLayerNormBackwardDev(
    dx: DeviceBuffer, dw: DeviceBuffer | null, db: DeviceBuffer | null, dy: DeviceBuffer, x: DeviceBuffer, mean: DeviceBuffer,
    rstd: DeviceBuffer, w: DeviceBuffer | null, rows: number, groups: number, dim: number, residual: boolean,
  ): void;
  /** embeddingForward on device buffers; indices (int32, or int64) must be in [0, v). */
  cudaEmbeddingDev(out: DeviceBuffer, weight: DeviceBuffer, indices: DeviceBuffer, int64Indices: boolean, n: number, v: number, e: number): void;
  /** embeddingBackward on device buffers (dweight written, not accumulated). */
  cudaEmbeddingBackwardDev(dweight: DeviceBuffer, dout: DeviceBuffer, indices: DeviceBuffer, int64Indices: boolean, n: number, v: number, e: number): void;
  /**
   * Batched GEMM on device buffers: C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, row-major with leading
   * dimensions lda/ldb/ldc, A_i at element aOffset + i*strideA of a (stride 0 broadcasts one A), likewise B and C.
   * The C_i may not overlap (one after another, or side by side within each row).
   */
  cudaGemmDev(
    transA: boolean, transB: boolean, batch: number, M: number, N: number, K: number, alpha: number,
    a: DeviceBuffer, aOffset: number, lda: number, strideA: number, b: DeviceBuffer, bOffset: number, ldb: number, strideB: number,
    beta: number, c: DeviceBuffer, cOffset: number, ldc: number, strideC: number, bf16?: boolean,
  ): void;
  /** reduce on device buffers (argmax: int64 per output, required for max). */
  cudaReduceDev(op: "sum" | "mean" | "max", x: DeviceBuffer, shape: readonly number[], axes: readonly number[], out: DeviceBuffer, argmax?: DeviceBuffer | null): void;
  /** reduceBackward on device buffers. */
  cudaReduceBackwardDev(op: "sum" | "mean" | "max", dy: DeviceBuffer, shape: readonly number[], axes: readonly number[], dx: DeviceBuffer, argmax?: DeviceBuffer | null): void;
  /** causalConv1dForward on device buffers. */
  cudaCausalConv1dDev(y: DeviceBuffer, x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer | null, b: number, s: number, f: number, k: number): void;
  /** causalConv1dBackward on device buffers (absent outputs are not computed). */
  cudaCausalConv1dBackwardDev(
    dx: DeviceBuffer | null, dweight: DeviceBuffer | null, dbias: DeviceBuffer | null, dy: DeviceBuffer, x: DeviceBuffer, weight: DeviceBuffer,
    b: number, s: number, f: number, k: number,
  ): void;
  /** dropoutForward on device buffers: the CPU's Philox mask for the same keys (mask: n bytes). */
  cudaDropoutDev(y: DeviceBuffer, mask: DeviceBuffer, x: DeviceBuffer, n: number, p: number, key0: number, key1: number): void;
  /** dropoutBackward on device buffers. */
  cudaDropoutBackwardDev(dx: DeviceBuffer, dy: DeviceBuffer, mask: DeviceBuffer, n: number, p: number): void;
  /** adamwStep on device buffers (p, m, v updated in place). */
  cudaAdamwStepDev(p: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, g: DeviceBuffer, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  /** out[index] (float64) = sum of squares of x's n floats. */
  cudaSumSquaresDev(x: DeviceBuffer, n: number, out: DeviceBuffer, index: number): void;
  /** x *= alpha on a device buffer. */
  cudaScaleInPlaceDev(x: DeviceBuffer, n: number, alpha: number): void;
  /** permute on device buffers (elemSize bytes per element). */
  cudaPermuteDev(out: DeviceBuffer, input: DeviceBuffer, elemSize: number, inShape: readonly number[], perm: readonly number[]): void;
  /** slstmForward on device buffers; bf16: the form under the bf16 autocast (as cudaSlstmForwardBf16Host). */
  cudaSlstmForwardDev(y: DeviceBuffer, states: DeviceBuffer, gates: DeviceBuffer, x: DeviceBuffer, state0: DeviceBuffer | null, R: DeviceBuffer, bias: DeviceBuffer, B: number, S: number, NH: number, DH: number, bf16?: boolean): void;
  /** slstmBackward on device buffers; bf16 as cudaSlstmForwardDev's. */
  cudaSlstmBackwardDev(
    dx: DeviceBuffer, dR: DeviceBuffer, dbias: DeviceBuffer, dstate0: DeviceBuffer | null, gates: DeviceBuffer, states: DeviceBuffer, dy: DeviceBuffer,
    dstateFinal: DeviceBuffer | null, state0: DeviceBuffer | null, R: DeviceBuffer, B: number, S: number, NH: number, DH: number, exactM0Grad: boolean, bf16?: boolean,
  ): void;
  /** lstmForward on device buffers; bf16 as cudaSlstmForwardDev's. */
  cudaLstmForwardDev(y: DeviceBuffer, states: DeviceBuffer, gates: DeviceBuffer, x: DeviceBuffer, state0: DeviceBuffer | null, R: DeviceBuffer, bias: DeviceBuffer, B: number, S: number, NH: number, DH: number, bf16?: boolean): void;
  /** lstmBackward on device buffers; bf16 as cudaSlstmForwardDev's. */
  cudaLstmBackwardDev(
    dx: DeviceBuffer, dR: DeviceBuffer, dbias: DeviceBuffer, dstate0: DeviceBuffer | null, gates: DeviceBuffer, states: DeviceBuffer, dy: DeviceBuffer,
    dstateFinal: DeviceBuffer | null, state0: DeviceBuffer | null, R: DeviceBuffer, B: number, S: number, NH: number, DH: number, bf16?: boolean,
  ): void;
  /**
   * mlstmChunkwiseForward on device buffers (saved: mlstmChunkwiseSavedSize floats, or null without backward); bf16:
   * the form under the bf16 autocast (products on tensor cores, cuda/mlstm_bf16.cuh), same `saved` layout.
   */
  cudaMlstmChunkwiseForwardDev(
    h: DeviceBuffer, cLast: DeviceBuffer, nLast: DeviceBuffer, mLast: DeviceBuffer, saved: DeviceBuffer | null, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer,
    i: DeviceBuffer, f: DeviceBuffer, c0: DeviceBuffer | null, n0: DeviceBuffer | null, m0: DeviceBuffer | null,
    B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, parallelInit: boolean, bf16?: boolean,
  ): void;
  /** mlstmRecurrentForward on device buffers. */
  cudaMlstmRecurrentForwardDev(
    h: DeviceBuffer, cLast: DeviceBuffer, nLast: DeviceBuffer, mLast: DeviceBuffer, saved: DeviceBuffer | null, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer,
    i: DeviceBuffer, f: DeviceBuffer, c0: DeviceBuffer | null, n0: DeviceBuffer | null, m0: DeviceBuffer | null,
    B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number,
  ): void;
  /** mlstmChunkwiseBackward on device buffers (bf16: the bf16-autocast form, as the forward's). */
  cudaMlstmChunkwiseBackwardDev(
    dq: DeviceBuffer, dk: DeviceBuffer, dv: DeviceBuffer, di: DeviceBuffer, df: DeviceBuffer, dc0: DeviceBuffer | null, dn0: DeviceBuffer | null, dm0: DeviceBuffer | null,
    saved: DeviceBuffer, h: DeviceBuffer, dh: DeviceBuffer, dcLast: DeviceBuffer | null, dnLast: DeviceBuffer | null,
    q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, i: DeviceBuffer, f: DeviceBuffer,
    B: number, NH: number, S: number, DHQK: number, DHV: number, chunkSize: number, eps: number, bf16?: boolean,
  ): void;
  /** mlstmRecurrentBackward on device buffers. */
  cudaMlstmRecurrentBackwardDev(
    dq: DeviceBuffer, dk: DeviceBuffer, dv: DeviceBuffer, di: DeviceBuffer, df: DeviceBuffer, dc0: DeviceBuffer | null, dn0: DeviceBuffer | null, dm0: DeviceBuffer | null,
    saved: DeviceBuffer, dh: DeviceBuffer, dcLast: DeviceBuffer | null, dnLast: DeviceBuffer | null,
    q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, i: DeviceBuffer, f: DeviceBuffer,
    B: number, NH: number, S: number, DHQK: number, DHV: number, eps: number,
  ): void;
  /** `height` rows of widthBytes bytes from src (+srcOffset, rows srcPitch apart) to dst (+dstOffset, rows dstPitch apart). */
  cudaCopy2D(dst: DeviceBuffer, dstOffset: number, dstPitch: number, src: DeviceBuffer, srcOffset: number, srcPitch: number, widthBytes: number, height: number): void;
}
