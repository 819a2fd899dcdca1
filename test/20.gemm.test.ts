// Layer 2 (kernels): the native gemm family (csrc/binding/gemm.cc, csrc/kernels/gemm*.cc, cuda/gemm.cu) against an
// independent float64 JS reference: every transpose combination, sizes that leave edge tiles in M, N and K (and
// cross the cache blocks), alpha/beta, beta = 0 over NaNs, batched with broadcast strides, every SIMD level and
// 1 thread vs the default pool; strided operands (gemmStrided) on each of the driver's paths (op(A) / op(B) read in
// place or packed, the K split, the smaller KC block for far-apart rows) and the model's shapes; argument errors;
// the async variant and the event loop; the CUDA twin's tiling (host run of its index helpers) and, with a GPU,
// its results.
import { strict as assert } from "assert";
import { backends, Generator, getFloat32MatmulPrecision, getNumThreads, ops, setFloat32MatmulPrecision, setNumThreads, setSimdLevel, Tensor } from "../lib";
import type { SimdLevel } from "../lib";
import { native } from "../lib/native";

function randArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  new Generator(seed).fillNormal(a, 0, 1);
  return a;
}

interface Case {
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
}

/** float64 reference of alpha op(A) op(B) + beta C, with a per-element error bound for float32 accumulation. */
function reference(c: Case, A: Float32Array, B: Float32Array, C0: Float32Array): { value: Float64Array; tol: Float64Array } {
  const { ta, tb, M, N, K, alpha, beta } = c;
  const value = new Float64Array(M * N), tol = new Float64Array(M * N);
  for (let i = 0; i < M; ++i)
    for (let j = 0; j < N; ++j) {
      let s = 0, mag = 0;
      for (let p = 0; p < K; ++p) {
        const a = ta ? A[p * M + i] : A[i * K + p];
        const b = tb ? B[j * K + p] : B[p * N + j];
        s += a * b;
        mag += Math.abs(a * b);
      }
      const cOld = beta === 0 ? 0 : beta * C0[i * N + j];
      value[i * N + j] = alpha * s + cOld;
      // float32 rounding of K products and sums: well inside (K + 8) * 2^-23 * (|alpha| sum|ab| + |beta c|)
      tol[i * N + j] = 2.4e-7 * (K + 8) * (Math.abs(alpha) * mag + Math.abs(cOld)) + 1e-6;
    }
  return { value, tol };
}

function assertWithin(got: Float32Array, ref: { value: Float64Array; tol: Float64Array }, what: string): void {
  assert.equal(got.length, ref.value.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < got.length; ++i) {
    const r = Math.abs(got[i] - ref.value[i]) / ref.tol[i];
    if (!(r <= worst)) {
      worst = r;
      at = i;
      if (Number.isNaN(r)) break;
    }
  }
  assert.ok(worst <= 1, `${what}: worst error/tolerance ${worst.toFixed(2)} at ${at}: got ${got[at]}, expected ${ref.value[at]}`);
}

interface StridedCase extends Case {
  lda: number;
  ldb: number;
  ldc: number;
  /** The driver path this case is meant to exercise (checked with gemmPlan, so that coverage cannot drift). */
  plan?: Partial<ReturnType<typeof native.gemmPlan>>;
}

/** float64 reference of alpha op(A) op(B) + beta C for strided operands (M x N result, dense), with error bounds. */
function referenceStrided(c: StridedCase, A: Float32Array, B: Float32Array, C0: Float32Array): { value: Float64Array; tol: Float64Array } {
  const { ta, tb, M, N, K, alpha, beta, lda, ldb, ldc } = c;
  const value = new Float64Array(M * N), tol = new Float64Array(M * N);
  for (let i = 0; i < M; ++i)
    for (let j = 0; j < N; ++j) {
      let s = 0, mag = 0;
      for (let p = 0; p < K; ++p) {
        const a = ta ? A[p * lda + i] : A[i * lda + p];
        const b = tb ? B[j * ldb + p] : B[p * ldb + j];
        s += a * b;
        mag += Math.abs(a * b);
      }
      const cOld = beta === 0 ? 0 : beta * C0[i * ldc + j];
      value[i * N + j] = alpha * s + cOld;
      tol[i * N + j] = 2.4e-7 * (K + 8) * (Math.abs(alpha) * mag + Math.abs(cOld)) + 1e-6;
    }
  return { value, tol };
}

const levels: SimdLevel[] = ["scalar", "avx2", "avx512"];
const best = backends().cpu.simdSupported;
const supported = levels.slice(0, levels.indexOf(best) + 1);
const cuda = backends().cuda;
const itCompiledCuda = cuda.compiled ? it : (t: string, fn: () => void) => it.skip(`${t} [this binary was built without CUDA]`, fn);
const itCuda = cuda.available && !cuda.emulated ? it : (t: string, fn: () => void) => it.skip(`${t} [no CUDA device: ${cuda.emulated ? "host emulation (XLSTM_CUDA_EMULATE): the CUDA kernels need a GPU" : cuda.reason}]`, fn);

const variants: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
const name = (ta: boolean, tb: boolean) => `${ta ? "t" : "n"}${tb ? "t" : "n"}`;

describe("20 gemm", () => {
  const defaultThreads = getNumThreads();
  afterEach(() => {
    setSimdLevel(best);
    setNumThreads(0);
  });

  it("matches a float64 reference for every transpose, edge sizes, SIMD level and thread count", function () {
    this.timeout(120000);
    // direct loop (M*N*K <= 512); matrix-vector paths (M or N = 1; the last two large enough to be threaded);
    // packed path with edge tiles in M (14/6/4-row tiles) and N (32/16/8) and K across the 256 block; threaded
    // packed path (>= 20 MFLOP) with several row blocks, with column groups (M too small to feed every thread),
    // with N across two column blocks, and with K large enough to shrink the column block
    const sizes: [number, number, number][] = [
      [1, 1, 1], [4, 5, 6], [8, 8, 8], [1, 37, 3], [29, 1, 70], [1, 1, 700], [1, 2048, 1100], [1100, 1, 2048],
      [7, 33, 5], [33, 7, 100], [100, 257, 33], [257, 100, 7], [15, 33, 257], [29, 65, 300], [64, 64, 64],
      [600, 64, 300], [5, 4200, 600], [5, 500, 5000],
    ];
    const ab: [number, number][] = [[1, 0], [0.5, 1], [-1.5, 0.25]];
    let k = 0;
    for (const [M, N, K] of sizes)
      for (const [ta, tb] of variants) {
        const [alpha, beta] = ab[k++ % ab.length];
        const c: Case = { ta, tb, M, N, K, alpha, beta };
        const A = randArray(M * K, k), B = randArray(K * N, 1000 + k), C0 = randArray(M * N, 2000 + k);
        const ref = reference(c, A, B, C0);
        for (const level of supported) {
          setSimdLevel(level);
          const results: Float32Array[] = [];
          for (const threads of [1, defaultThreads]) {
            setNumThreads(threads);
            const C = C0.slice();
            native.gemm(ta, tb, M, N, K, alpha, A, B, beta, C);
            assertWithin(C, ref, `${M}x${N}x${K} ${name(ta, tb)} alpha=${alpha} beta=${beta} ${level} threads=${threads}`);
            results.push(C);
          }
          // the split over threads never changes an element's summation order
          assert.deepEqual(results[0], results[1], `${M}x${N}x${K} ${name(ta, tb)} ${level}: 1 thread vs ${defaultThreads}`);
        }
      }
  });

  it("ignores NaNs in C when beta = 0, and skips A and B when alpha = 0 or K = 0", () => {
    for (const level of supported) {
      setSimdLevel(level);
      for (const [M, N, K] of [[5, 6, 7], [40, 70, 50]]) {
        for (const [ta, tb] of variants) {
          const A = randArray(M * K, 1), B = randArray(K * N, 2);
          const C = new Float32Array(M * N).fill(NaN);
          native.gemm(ta, tb, M, N, K, 2, A, B, 0, C);
          assertWithin(C, reference({ ta, tb, M, N, K, alpha: 2, beta: 0 }, A, B, C), `beta=0 over NaN ${M}x${N}x${K} ${name(ta, tb)} ${level}`);
          // alpha = 0: C = beta C even when A holds NaN (BLAS semantics)
          const An = A.slice().fill(NaN), C1 = randArray(M * N, 3), C2 = C1.slice();
          native.gemm(ta, tb, M, N, K, 0, An, B, -2, C2);
          C2.forEach((v, i) => assert.equal(v, -2 * C1[i], `alpha=0 element ${i}`));
        }
      }
    }
    const C = new Float32Array(6).fill(NaN);
    native.gemm(false, false, 2, 3, 0, 1, new Float32Array(0), new Float32Array(0), 0, C);
    assert.deepEqual(Array.from(C), [0, 0, 0, 0, 0, 0], "K = 0, beta = 0 gives zeros");
    const D = Float32Array.from([1, 2, 3, 4]);
    native.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 3, D);
    assert.deepEqual(Array.from(D), [3, 6, 9, 12], "K = 0 scales C by beta");
  });

  it("runs batched products with broadcast (stride 0) operands", function () {
    this.timeout(120000);
    // tiny products (sequential), small ones spread over the threads (>= 20 MFLOP in all), large ones in sequence
    const cases: [number, number, number, number][] = [[7, 5, 6, 7], [4, 100, 128, 200], [2, 200, 200, 110], [2, 300, 200, 200]];
    for (const [batch, M, N, K] of cases)
      for (const [ta, tb] of variants)
        for (const [bcA, bcB] of [[false, false], [true, false], [false, true]]) {
          const sA = bcA ? 0 : M * K, sB = bcB ? 0 : K * N;
          const A = randArray(bcA ? M * K : batch * M * K, 5), B = randArray(bcB ? K * N : batch * K * N, 6);
          const C0 = randArray(batch * M * N, 7);
          const refs = Array.from({ length: batch }, (_, i) =>
            reference({ ta, tb, M, N, K, alpha: 0.75, beta: 0.5 }, A.subarray(i * sA, i * sA + M * K),
              B.subarray(i * sB, i * sB + K * N), C0.subarray(i * M * N, (i + 1) * M * N)));
          for (const level of supported) {
            setSimdLevel(level);
            const C = C0.slice();
            native.gemmBatched(ta, tb, batch, M, N, K, 0.75, A, sA, B, sB, 0.5, C, M * N);
            refs.forEach((ref, i) => assertWithin(C.subarray(i * M * N, (i + 1) * M * N), ref,
              `batched ${batch}x${M}x${N}x${K} ${name(ta, tb)} strides ${sA}/${sB} entry ${i} ${level}`));
          }
        }
    // a gap between C matrices (strideC > M*N) is left untouched; both operands broadcast
    const C = new Float32Array(14).fill(-7);
    native.gemmBatched(false, false, 2, 2, 3, 1, 1, Float32Array.from([1, 2]), 0, Float32Array.from([1, 1, 1]), 0, 0, C, 8);
    assert.deepEqual(Array.from(C), [1, 1, 1, 2, 2, 2, -7, -7, 1, 1, 1, 2, 2, 2]);
  });

  /**
   * Runs gemmStrided on a strided case at every SIMD level with 1 thread and the default pool, against the float64
   * reference: C's elements between rows (ldc > N) must keep their values, and both thread counts must agree bit
   * for bit.
   */
  function checkStrided(c: StridedCase, seed: number): void {
    const { ta, tb, M, N, K, alpha, beta, lda, ldb, ldc } = c;
    const aRows = ta ? K : M, bRows = tb ? N : K;
    const A = randArray(aRows * lda, seed), B = randArray(bRows * ldb, seed + 1), C0 = randArray(M * ldc, seed + 2);
    if (beta === 0) for (let i = 0; i < M; ++i) C0.fill(NaN, i * ldc, i * ldc + N);  // beta = 0 ignores C
    const ref = referenceStrided(c, A, B, C0);
    const what = `${M}x${N}x${K} ${name(ta, tb)} lda=${lda} ldb=${ldb} ldc=${ldc} alpha=${alpha} beta=${beta}`;
    for (const level of supported) {
      setSimdLevel(level);
      if (c.plan) {
        const plan = native.gemmPlan(ta, tb, M, N, K, lda, ldb);
        for (const [key, want] of Object.entries(c.plan))
          assert.equal(plan[key as keyof typeof plan], want, `${what} ${level}: plan.${key} (plan ${JSON.stringify(plan)})`);
      }
      const results: Float32Array[] = [];
      for (const threads of [1, defaultThreads]) {
        setNumThreads(threads);
        const C = C0.slice();
        native.gemmStrided(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        const got = new Float32Array(M * N);
        for (let i = 0; i < M; ++i) {
          got.set(C.subarray(i * ldc, i * ldc + N), i * N);
          for (let j = N; j < ldc; ++j)
            assert.ok(Object.is(C[i * ldc + j], C0[i * ldc + j]), `${what} ${level}: C[${i}, ${j}] beyond N was written`);
        }
        assertWithin(got, ref, `${what} ${level} threads=${threads}`);
        results.push(C);
      }
      assert.deepEqual(results[0], results[1], `${what} ${level}: 1 thread vs ${defaultThreads}`);
    }
  }

  it("strided operands on every path of the blocked driver, at every SIMD level", function () {
    this.timeout(120000);
    // The driver's choices depend on the shape and strides only (not on the ISA), so each case takes the same path
    // at every level. Sizes are odd so that every tile kind (full and edge rows, full and masked columns) is hit.
    const cases: StridedCase[] = [
      // rows of A in place (nn, nt), op(B) in place (nn: M <= 336) or packed (nt)
      { ta: false, tb: false, M: 201, N: 67, K: 70, alpha: 1, beta: 0, lda: 83, ldb: 70, ldc: 72, plan: { path: "blocked", aInPlace: true, bInPlace: true } },
      { ta: false, tb: true, M: 201, N: 67, K: 70, alpha: -0.5, beta: 1, lda: 256, ldb: 77, ldc: 67, plan: { path: "blocked", aInPlace: true, bInPlace: false } },
      // rows of A packed (lda a multiple of 1024 floats), K across KC blocks
      { ta: false, tb: true, M: 45, N: 37, K: 300, alpha: 1.5, beta: 0.25, lda: 1024, ldb: 301, ldc: 40, plan: { aInPlace: false, bInPlace: false, kc: 256 } },
      { ta: false, tb: false, M: 45, N: 37, K: 300, alpha: 1, beta: 0, lda: 2048, ldb: 40, ldc: 37, plan: { aInPlace: false, bInPlace: true } },
      // op(B) packed without trans: M > 336 and ldb > 128
      { ta: false, tb: false, M: 350, N: 131, K: 70, alpha: 1, beta: 0, lda: 70, ldb: 140, ldc: 133, plan: { aInPlace: true, bInPlace: false } },
      // A^T in place (tn, tt: N <= 128 or M <= 128) and packed (M > 128 and N > 128)
      { ta: true, tb: false, M: 67, N: 45, K: 300, alpha: 1, beta: 0, lda: 70, ldb: 45, ldc: 50, plan: { path: "blocked", aInPlace: true, bInPlace: true, kc: 256 } },
      { ta: true, tb: true, M: 67, N: 45, K: 300, alpha: 0.75, beta: -1, lda: 67, ldb: 333, ldc: 45, plan: { aInPlace: true, bInPlace: false } },
      { ta: true, tb: false, M: 150, N: 131, K: 77, alpha: 1, beta: 0, lda: 151, ldb: 131, ldc: 140, plan: { aInPlace: false, bInPlace: true } },
      // A^T and B in place with rows almost 4 KiB apart: the smaller KC block (each k step touches a page or two)
      { ta: true, tb: false, M: 30, N: 33, K: 700, alpha: 1, beta: 0.5, lda: 1000, ldb: 1000, ldc: 33, plan: { path: "blocked", aInPlace: true, bInPlace: true, kc: 64 } },
      // rows a page or more apart: read in place where the ISA keeps up (AVX-512), else packed; either way correct
      { ta: true, tb: false, M: 30, N: 33, K: 700, alpha: -1, beta: 0, lda: 1030, ldb: 1024, ldc: 40 },
      // ... but beyond 4 row slivers packed at every level (in place they would cap KC at 64 steps)
      { ta: false, tb: false, M: 101, N: 40, K: 300, alpha: 1, beta: 0.5, lda: 301, ldb: 1024, ldc: 41, plan: { path: "blocked", aInPlace: true, bInPlace: false, kc: 256 } },
      // threaded (>= 20 MFLOP): row blocks over rows of A in place, op(B) packed with trans
      { ta: false, tb: true, M: 1500, N: 100, K: 70, alpha: 1, beta: 0, lda: 75, ldb: 70, ldc: 101, plan: { path: "blocked", aInPlace: true, bInPlace: false } },
    ];
    cases.forEach((c, i) => checkStrided(c, 100 + 10 * i));
  });

  it("splits a long K into slabs (small C: weight gradients), every transpose, strided, every SIMD level", function () {
    this.timeout(120000);
    // K >= 2048, M*N <= 64K and K >= 8 max(M, N): slabs of K summed in a fixed order; the last two are threaded
    // (>= 20 MFLOP) and give the same bits on one thread
    const cases: StridedCase[] = [
      { ta: true, tb: false, M: 29, N: 33, K: 2100, alpha: 1, beta: 0, lda: 31, ldb: 1000, ldc: 40, plan: { path: "kSplit", slabs: 2, aInPlace: true, bInPlace: true } },
      { ta: false, tb: false, M: 15, N: 17, K: 2600, alpha: -2, beta: 0.5, lda: 2601, ldb: 20, ldc: 17, plan: { path: "kSplit", slabs: 2 } },
      { ta: false, tb: true, M: 13, N: 31, K: 3001, alpha: 1, beta: 1, lda: 3001, ldb: 3005, ldc: 31, plan: { path: "kSplit", slabs: 2 } },
      { ta: true, tb: true, M: 20, N: 9, K: 2050, alpha: 0.5, beta: 0, lda: 25, ldb: 2050, ldc: 9, plan: { path: "kSplit", slabs: 2 } },
      { ta: true, tb: false, M: 65, N: 63, K: 2600, alpha: 1, beta: 0, lda: 1000, ldb: 1000, ldc: 70, plan: { path: "kSplit", slabs: 2, kc: 64 } },
      { ta: true, tb: false, M: 64, N: 64, K: 4096, alpha: 1, beta: 0, lda: 256, ldb: 1024, ldc: 256, plan: { path: "kSplit", slabs: 4 } },
    ];
    cases.forEach((c, i) => checkStrided(c, 300 + 10 * i));
  });

  it("the block-diagonal projection shapes: forward (nt), dx (nn) and dW (tn) with strided rows", function () {
    this.timeout(120000);
    // M = 4096 rows of 64 taken from 256- or 1024-wide rows, W 64 x 64
    const cases: StridedCase[] = [
      { ta: false, tb: true, M: 4096, N: 64, K: 64, alpha: 1, beta: 0, lda: 256, ldb: 64, ldc: 1024 },
      { ta: false, tb: false, M: 4096, N: 64, K: 64, alpha: 1, beta: 1, lda: 256, ldb: 64, ldc: 256 },
      { ta: true, tb: false, M: 64, N: 64, K: 4096, alpha: 1, beta: 0, lda: 1024, ldb: 256, ldc: 64 },
    ];
    cases.forEach((c, i) => checkStrided(c, 500 + 10 * i));
  });

  describe("setFloat32MatmulPrecision(\"medium\"): bf16 operands, float32 sums, on AMX or AVX512_BF16", () => {
    // the bf16 hardware paths this CPU has, each tested alone: AMX tiles, and vdpbf16ps on the GEMM's tiles (the path
    // without AMX: AMD Zen 4 / 5, Intel Cooper Lake)
    const amx = native.bf16AmxAvailable(), dot = native.bf16DotAvailable();
    const backendsHere: ("amx" | "vdpbf16ps")[] = [...(amx ? ["amx" as const] : []), ...(dot ? ["vdpbf16ps" as const] : [])];
    const withBackend = <T>(b: "amx" | "vdpbf16ps", fn: () => T): T => {
      native.bf16SetAmxEnabled(b === "amx");
      native.bf16SetDotEnabled(true);
      try {
        return fn();
      } finally {
        native.bf16SetAmxEnabled(true);
      }
    };
    const itBf16 = (t: string, fn: (b: "amx" | "vdpbf16ps") => void) => {
      if (backendsHere.length === 0) it.skip(`${t} [no AMX or AVX512_BF16 on this CPU: "medium" changes nothing here]`, () => {});
      for (const b of backendsHere) it(`${t} (${b})`, () => withBackend(b, () => fn(b)));
    };
    const roundBf16 = (a: Float32Array) => {
      const out = new Float32Array(a.length), bits = new Uint16Array(a.length);
      native.bf16FromF32(bits, a);
      native.bf16ToF32(out, bits);
      return out;
    };
    const withPrecision = <T>(p: "highest" | "medium", fn: () => T): T => {
      const before = setFloat32MatmulPrecision(p);
      try {
        return fn();
      } finally {
        setFloat32MatmulPrecision(before);
      }
    };

    it("defaults to \"highest\", reports it in backends(), refuses other values", () => {
      assert.equal(getFloat32MatmulPrecision(), "highest");
      assert.equal(backends().cpu.matmulPrecision, "highest");
      withPrecision("medium", () => assert.equal(backends().cpu.matmulPrecision, "medium"));
      assert.equal(getFloat32MatmulPrecision(), "highest");
      assert.throws(() => setFloat32MatmulPrecision("high" as never), (e: Error) => e instanceof RangeError && /precision must be "highest" or "medium", got "high"/.test(e.message));
      assert.throws(() => native.setFloat32MatmulPrecision("low" as never), (e: Error) => e instanceof RangeError && /setFloat32MatmulPrecision: precision/.test(e.message));
    });

    itBf16("products of 128+ rows equal float32 sums of the bf16-rounded operands: every transpose, edge sizes, strides, alpha / beta, 1 thread and all", () => {
      const cases: StridedCase[] = [
        { ta: false, tb: false, M: 130, N: 70, K: 100, alpha: 1, beta: 0, lda: 100, ldb: 70, ldc: 70 },
        { ta: false, tb: true, M: 128, N: 32, K: 32, alpha: 1, beta: 0, lda: 32, ldb: 32, ldc: 32 },
        { ta: false, tb: true, M: 257, N: 95, K: 77, alpha: 0.5, beta: 2, lda: 80, ldb: 81, ldc: 100 },
        { ta: false, tb: false, M: 200, N: 48, K: 300, alpha: -1, beta: 1, lda: 310, ldb: 50, ldc: 48 },
        // transposed A (weight gradients: dyᵀ x), packed from A's rows: edge rows, odd K, strides
        { ta: true, tb: false, M: 130, N: 40, K: 77, alpha: 1, beta: 0, lda: 130, ldb: 40, ldc: 40 },
        { ta: true, tb: true, M: 143, N: 33, K: 64, alpha: 2, beta: -1, lda: 150, ldb: 70, ldc: 35 },
        // vdpbf16ps: 16 x 16 blocks of a transposed B's pairs with tails in both directions, a K of more than one KC
        // block of pairs (512 values) and odd, several 14 x 32 tiles with edge rows and columns
        { ta: false, tb: true, M: 300, N: 77, K: 1101, alpha: 1, beta: 0.5, lda: 1101, ldb: 1103, ldc: 80 },
        { ta: true, tb: false, M: 157, N: 130, K: 531, alpha: -0.5, beta: 0, lda: 160, ldb: 130, ldc: 130 },
      ];
      const threads = getNumThreads();
      for (const c of cases) {
        const A = randArray((c.ta ? c.K : c.M) * c.lda, 1), B = randArray((c.tb ? c.N : c.K) * c.ldb, 2), C0 = randArray(c.M * c.ldc, 3);
        const what = `${name(c.ta, c.tb)} ${c.M}x${c.N}x${c.K} lda ${c.lda} ldb ${c.ldb} ldc ${c.ldc}`;
        assert.equal(withPrecision("medium", () => native.gemmPlan(c.ta, c.tb, c.M, c.N, c.K, c.lda, c.ldb).path), "bf16", what);
        const run = (T: number) => {
          setNumThreads(T);
          const C = C0.slice();
          withPrecision("medium", () => native.gemmStrided(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.lda, B, c.ldb, c.beta, C, c.ldc));
          return C;
        };
        const one = run(1), all = run(threads);
        setNumThreads(threads);
        assert.deepEqual(one, all, `${what}: 1 thread vs ${threads}`);
        const dense = new Float32Array(c.M * c.N);
        for (let i = 0; i < c.M; ++i) dense.set(all.subarray(i * c.ldc, i * c.ldc + c.N), i * c.N);
        // within float32 accumulation of the rounded operands ...
        assertWithin(dense, referenceStrided(c, roundBf16(A), roundBf16(B), C0), `${what} vs rounded operands`);
        // ... and really rounded: the float32 operands' reference is out of float32 reach somewhere
        const exact = referenceStrided(c, A, B, C0);
        assert.ok(dense.some((x, i) => Math.abs(x - exact.value[i]) > exact.tol[i]), `${what}: no element shows the rounding`);
        // columns past N in C's rows are not written
        for (let i = 0; i < c.M; ++i) for (let j = c.N; j < c.ldc; ++j) assert.equal(all[i * c.ldc + j], C0[i * c.ldc + j], `${what}: C[${i}][${j}]`);
      }
    });

    it("leaves short products and machines or settings without AMX or AVX512_BF16 in float32 (bit for bit the \"highest\" result)", () => {
      const shapes: [boolean, boolean, number, number, number][] = [[true, false, 100, 64, 64], [false, true, 100, 64, 64], [false, false, 300, 16, 64], [true, true, 300, 64, 16]];
      for (const [ta, tb, M, N, K] of shapes) {
        const A = randArray(M * K, 4), B = randArray(K * N, 5);
        const hi = new Float32Array(M * N), med = new Float32Array(M * N);
        native.gemm(ta, tb, M, N, K, 1, A, B, 0, hi);
        withPrecision("medium", () => native.gemm(ta, tb, M, N, K, 1, A, B, 0, med));
        assert.deepEqual(med, hi, `${name(ta, tb)} ${M}x${N}x${K}`);
      }
      // AMX and vdpbf16ps turned off: a product that would take the bf16 path runs in float32
      native.bf16SetAmxEnabled(false);
      native.bf16SetDotEnabled(false);
      try {
        const A = randArray(130 * 64, 6), B = randArray(64 * 64, 7);
        const hi = new Float32Array(130 * 64), med = new Float32Array(130 * 64);
        native.gemm(false, false, 130, 64, 64, 1, A, B, 0, hi);
        withPrecision("medium", () => {
          assert.equal(native.gemmPlan(false, false, 130, 64, 64, 64, 64).path, "blocked");
          native.gemm(false, false, 130, 64, 64, 1, A, B, 0, med);
        });
        assert.deepEqual(med, hi);
      } finally {
        native.bf16SetAmxEnabled(true);
        native.bf16SetDotEnabled(true);
      }
    });

    itBf16("a linear layer under \"medium\": within bf16 rounding of float32, forward, input and weight gradients", () => {
      const x = Tensor.randn([256, 96], { generator: new Generator(8), requiresGrad: true });
      const w = Tensor.randn([160, 96], { generator: new Generator(9), requiresGrad: true }); // dW = dyᵀ x: 160 rows, a transposed A
      const run = () => {
        x.grad = null;
        w.grad = null;
        const y = ops.linear(x, w);
        ops.sum(ops.mul(y, y)).backward();
        return { y: y.f32().slice(), gx: x.grad!.f32().slice(), gw: w.grad!.f32().slice() };
      };
      const hi = run();
      const med = withPrecision("medium", run);
      const rel = (a: Float32Array, b: Float32Array) => {
        let num = 0, den = 0;
        for (let i = 0; i < a.length; ++i) num = Math.max(num, Math.abs(a[i] - b[i])), den = Math.max(den, Math.abs(b[i]));
        return num / den;
      };
      assert.ok(rel(med.y, hi.y) > 1e-5 && rel(med.y, hi.y) < 2e-2, `y: ${rel(med.y, hi.y)}`);
      assert.ok(rel(med.gx, hi.gx) > 1e-5 && rel(med.gx, hi.gx) < 4e-2, `dx: ${rel(med.gx, hi.gx)}`);
      assert.ok(rel(med.gw, hi.gw) > 1e-5 && rel(med.gw, hi.gw) < 4e-2, `dw: ${rel(med.gw, hi.gw)}`);
    });
  });

  it("rejects bad arguments with errors naming the argument", () => {
    const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8);
    const isRange = (re: RegExp) => (e: Error) => e instanceof RangeError && re.test(e.message);
    const isType = (re: RegExp) => (e: Error) => e instanceof TypeError && re.test(e.message);
    assert.throws(() => native.gemm(false, false, 2, 4, 3, 1, new Float32Array(5), b, 0, c), isRange(/^gemm: a has 5 elements, expected M\*K \(M=2, K=3\) = 6/));
    assert.throws(() => native.gemm(false, false, 2, 4, 3, 1, a, new Float32Array(11), 0, c), isRange(/gemm: b has 11 elements, expected K\*N \(K=3, N=4\) = 12/));
    assert.throws(() => native.gemm(false, false, 2, 4, 3, 1, a, b, 0, new Float32Array(9)), isRange(/gemm: c has 9 elements, expected M\*N \(M=2, N=4\) = 8/));
    assert.throws(() => native.gemm(false, false, -2, 4, 3, 1, a, b, 0, c), isRange(/gemm: M must be an integer/));
    assert.throws(() => native.gemm(false, false, 2, 4, 2.5, 1, a, b, 0, c), isRange(/gemm: K must be an integer/));
    assert.throws(() => native.gemm(false, false, 2, 4, 3, 1, a, new Float64Array(12) as never, 0, c), isType(/gemm: b must be a Float32Array, got Float64Array/));
    assert.throws(() => native.gemm(false, false, 2, 4, 3, 1, [0, 0, 0, 0, 0, 0] as never, b, 0, c), isType(/gemm: a must be a Float32Array, got Array/));
    assert.throws(() => native.gemm(0 as never, false, 2, 4, 3, 1, a, b, 0, c), isType(/gemm: transA must be a boolean/));
    assert.throws(() => native.gemm(false, false, 2, 4, 3, "1" as never, a, b, 0, c), isType(/gemm: alpha must be a number/));
    assert.throws(() => (native.gemm as (...x: unknown[]) => void)(false, false, 2, 4, 3, 1, a, b, 0), isType(/gemm: expected 10 arguments, got 9/));
    // c overlapping an input (same buffer)
    const buf = new Float32Array(20);
    assert.throws(() => native.gemm(false, false, 2, 2, 2, 1, buf.subarray(0, 4), buf.subarray(10, 14), 0, buf.subarray(2, 6)), isRange(/gemm: c overlaps a/));
    assert.throws(() => native.gemm(false, false, 2, 2, 2, 1, buf.subarray(0, 4), buf.subarray(10, 14), 0, buf.subarray(12, 16)), isRange(/gemm: c overlaps b/));
    // batched: every slice inside its array, C entries apart
    assert.throws(() => native.gemmBatched(false, false, 3, 2, 4, 3, 1, new Float32Array(17), 6, new Float32Array(12), 0, 0, new Float32Array(24), 8),
      isRange(/gemmBatched: a has 17 elements, but batch entry 2 needs \(batch-1\)\*strideA \+ M\*K = 18 \(batch=3, strideA=6, M=2, K=3\)/));
    assert.throws(() => native.gemmBatched(false, false, 3, 2, 4, 3, 1, new Float32Array(6), 0, new Float32Array(12), 12, 0, new Float32Array(24), 8),
      isRange(/gemmBatched: b has 12 elements, but batch entry 2 needs/));
    assert.throws(() => native.gemmBatched(false, false, 3, 2, 4, 3, 1, new Float32Array(6), 0, new Float32Array(12), 0, 0, new Float32Array(24), 4),
      isRange(/gemmBatched: strideC must be at least M\*N = 8/));
    assert.throws(() => native.gemmBatched(false, false, 2, 2, 4, 3, 1, new Float32Array(6), -1, new Float32Array(12), 0, 0, new Float32Array(16), 8),
      isRange(/gemmBatched: strideA must be an integer/));
    assert.throws(() => native.gemmBatched(false, false, 2, 2, 4, 3, 1, new Float32Array(6), 0, new Int32Array(12) as never, 0, 0, new Float32Array(16), 8),
      isType(/gemmBatched: b must be a Float32Array, got Int32Array/));
    const big = new Float32Array(40);
    assert.throws(() => native.gemmBatched(false, false, 2, 2, 2, 2, 1, big.subarray(0, 8), 4, big.subarray(30, 34), 0, 0, big.subarray(6, 14), 4),
      isRange(/gemmBatched: c overlaps a/));
    // strided: leading dimensions at least the row length, arrays long enough for (rows-1)*ld + row length
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(6), 2, f(12), 4, 0, f(8), 4), isRange(/^gemmStrided: lda must be at least K = 3 \(the row length of a\), got 2/));
    assert.throws(() => native.gemmStrided(true, false, 2, 4, 3, 1, f(6), 1, f(12), 4, 0, f(8), 4), isRange(/gemmStrided: lda must be at least M = 2/));
    assert.throws(() => native.gemmStrided(false, true, 2, 4, 3, 1, f(6), 3, f(12), 2, 0, f(8), 4), isRange(/gemmStrided: ldb must be at least K = 3/));
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(6), 3, f(12), 4, 0, f(8), 3), isRange(/gemmStrided: ldc must be at least N = 4/));
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(7), 5, f(12), 4, 0, f(8), 4), isRange(/gemmStrided: a has 7 elements, expected at least \(M-1\)\*lda \+ K = 8 \(M=2, K=3, lda=5\)/));
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(6), 3, f(13), 5, 0, f(8), 4), isRange(/gemmStrided: b has 13 elements, expected at least \(K-1\)\*ldb \+ N = 14/));
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(6), 3, f(12), 4, 0, f(9), 6), isRange(/gemmStrided: c has 9 elements, expected at least \(M-1\)\*ldc \+ N = 10/));
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(6), 0, f(12), 4, 0, f(8), 4), isRange(/gemmStrided: lda must be an integer/));
    assert.throws(() => native.gemmStrided(false, false, 2, 4, 3, 1, f(6), 3, new Float64Array(12) as never, 4, 0, f(8), 4), isType(/gemmStrided: b must be a Float32Array, got Float64Array/));
    assert.throws(() => (native.gemmStrided as (...x: unknown[]) => void)(false, false, 2, 4, 3, 1, f(6), 3, f(12), 4, 0, f(8)), isType(/gemmStrided: expected 13 arguments, got 12/));
    assert.throws(() => native.gemmStrided(false, false, 2, 2, 2, 1, buf.subarray(0, 4), 2, buf.subarray(10, 14), 2, 0, buf.subarray(3, 8), 3), isRange(/gemmStrided: c overlaps a/));
    assert.throws(() => native.gemmPlan(false, false, 2, 2, 2, 0, 2), isRange(/^gemmPlan: lda must be an integer/));
    assert.throws(() => native.gemmPlan(false, 1 as never, 2, 2, 2, 2, 2), isType(/^gemmPlan: transB must be a boolean/));
    // async: argument errors are thrown synchronously
    assert.throws(() => native.gemmAsync(false, false, 2, 4, 3, 1, new Float32Array(5), b, 0, c), isRange(/gemmAsync: a has 5 elements/));
    // tile coverage of the CUDA kernel: counts must hold M*N int32 values
    if (cuda.compiled)
      assert.throws(() => native.cudaGemmTileCoverage(false, false, 3, 3, 1, new Int32Array(8)), isRange(/cudaGemmTileCoverage: counts has 8 elements, expected M\*N/));
    if (!cuda.available)
      assert.throws(() => native.cudaGemmHost(false, false, 2, 4, 3, 1, a, b, 0, c), (e: Error) => /cudaGemmHost: .*(without CUDA|CUDA|device)/i.test(e.message));
  });

  it("gemmAsync resolves with the synchronous result and leaves the event loop running", async function () {
    this.timeout(60000);
    const M = 1536, N = 1536, K = 1536;
    const A = randArray(M * K, 11), B = randArray(K * N, 12);
    const sync = new Float32Array(M * N);
    native.gemm(false, true, M, N, K, 1, A, B, 0, sync);
    const C = new Float32Array(M * N);
    let ticks = 0, done = false;
    const spin = () => {
      if (done) return;
      ticks++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const t0 = process.hrtime.bigint();
    await native.gemmAsync(false, true, M, N, K, 1, A, B, 0, C);
    done = true;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(ticks >= 3, `only ${ticks} event-loop ticks during a ${ms.toFixed(1)} ms async gemm`);
    assert.deepEqual(C, sync, "async and sync results are identical");
    // spot-check a few elements against float64 dot products
    for (const [i, j] of [[0, 0], [1535, 1535], [700, 3], [5, 1200]]) {
      let s = 0;
      for (let p = 0; p < K; ++p) s += A[i * K + p] * B[j * K + p];
      assert.ok(Math.abs(C[i * N + j] - s) <= 1e-4 * Math.sqrt(K) * 4, `C[${i}, ${j}] = ${C[i * N + j]}, expected ${s}`);
    }
    await assert.rejects(
      async () => native.gemmAsync(false, false, 2, 4, 3, 1, new Float32Array(6), new Float32Array(12), 0, new Float32Array(7)),
      (e: Error) => e instanceof RangeError && /gemmAsync: c has 7 elements/.test(e.message),
    );
  });

  itCompiledCuda("CUDA kernel tiling covers every C element once and stages every shared slot once", () => {
    // the last two launch enough 128 x 64 tiles to use them (the big tiling), the others the 64 x 64 one
    for (const [M, N, K] of [[1, 1, 1], [64, 64, 16], [65, 130, 17], [200, 3, 40], [3, 257, 5], [2000, 1100, 3], [1537, 577, 9]])
      for (const [ta, tb] of variants) {
        const counts = new Int32Array(M * N).fill(-1);
        const bad = native.cudaGemmTileCoverage(ta, tb, M, N, K, counts);
        assert.equal(bad, 0, `${M}x${N}x${K} ${name(ta, tb)}: shared-memory slots not loaded exactly once`);
        const wrong = counts.findIndex((v) => v !== 1);
        assert.equal(wrong, -1, `${M}x${N}x${K} ${name(ta, tb)}: C element ${wrong} written ${counts[wrong]} times`);
      }
  });

  itCompiledCuda("bf16 tensor-core kernel tiling covers every C element once and stages every shared slot once", () => {
    for (const [M, N] of [[1, 1], [64, 64], [65, 130], [200, 3], [3, 257]])
      for (const [ta, tb] of variants) {
        const counts = new Int32Array(M * N).fill(-1);
        assert.equal(native.cudaGemmBf16TileCoverage(ta, tb, M, N, counts), 0, `${M}x${N} ${name(ta, tb)}: shared slots or warp parts not covered exactly once`);
        const wrong = counts.findIndex((v) => v !== 1);
        assert.equal(wrong, -1, `${M}x${N} ${name(ta, tb)}: C element ${wrong} written ${counts[wrong]} times`);
      }
  });

  itCompiledCuda("bf16 GEMM's opt-in choices (cudaSetGemmBf16Tiles(\"auto\")): products of >= 256 tiles of 64 x 128 with few pad columns take them (wide tiles), long K over a few waves of tiles is cut; that tiling covers every C element once and stages every shared slot once", () => {
    assert.deepEqual(native.cudaGemmBf16Tile(1, 1024, 2048), [64, 64], "64 x 64 tiles are the default");
    const prev = native.cudaSetGemmBf16Tiles("auto");
    try {
      assert.equal(prev, "64x64", "the setter returns the previous setting");
      // [batch, M, N, tile columns]: 256 wide tiles and 255; 64 x 512 products per (head, chunk) of the mLSTM; pad
      // columns: N 600 pads to 640 either way, N 192 to 256 against 192 (a third more), N 320 to 384 against 320
      for (const [batch, M, N, cols] of [[1, 1024, 2048, 128], [1, 1024, 1920, 64], [64, 64, 512, 128], [63, 64, 512, 64], [40, 70, 600, 128], [128, 64, 192, 64], [512, 64, 320, 64], [300, 64, 64, 64], [1, 1030, 2100, 128]])
        assert.deepEqual(native.cudaGemmBf16Tile(batch, M, N), [64, cols], `${batch} x ${M} x ${N}`);
      // the long-K cut (under "auto" only): G1's dR, 4 products of 768 x 768 over K 16,368 on 288 wide tiles (1.09
      // waves), cut into 4 ranges; 256 tiles of 64 x 64 over K 8192 into 8 of 1024; not below K 4096, not at 4 waves
      // of tiles (16 such products: 1,152 wide tiles), not the float32 GEMM
      assert.deepEqual(native.cudaGemmSplitPlan(4, 768, 768, 16368, true), { splits: 4, chunk: 4096 });
      assert.deepEqual(native.cudaGemmSplitPlan(1, 1024, 1024, 8192, true), { splits: 8, chunk: 1024 });
      for (const [batch, M, N, K, bf16] of [[4, 768, 768, 4000, true], [16, 768, 768, 16368, true], [4, 768, 768, 16368, false]] as const)
        assert.deepEqual(native.cudaGemmSplitPlan(batch, M, N, K, bf16), { splits: 1, chunk: 0 }, `${batch} x ${M} x ${N} x ${K} bf16=${bf16}`);
      for (const [M, N] of [[1024, 2048], [1030, 2100]])
        for (const [ta, tb] of variants) {
          const counts = new Int32Array(M * N).fill(-1);
          assert.equal(native.cudaGemmBf16TileCoverage(ta, tb, M, N, counts), 0, `${M}x${N} ${name(ta, tb)}: shared slots or warp parts not covered exactly once`);
          const wrong = counts.findIndex((v) => v !== 1);
          assert.equal(wrong, -1, `${M}x${N} ${name(ta, tb)}: C element ${wrong} written ${counts[wrong]} times`);
        }
    } finally {
      native.cudaSetGemmBf16Tiles(prev);
    }
    assert.deepEqual(native.cudaGemmSplitPlan(4, 768, 768, 16368, true), { splits: 1, chunk: 0 }, "no long-K cut by default");
    assert.throws(() => native.cudaSetGemmBf16Tiles("128x128" as never), (e: Error) => e instanceof RangeError && /^cudaSetGemmBf16Tiles: tiles must be "64x64" or "auto", got "128x128"/.test(e.message));
    assert.throws(() => native.cudaGemmBf16Tile(0, 1, 1), (e: Error) => e instanceof RangeError && /^cudaGemmBf16Tile: batch/.test(e.message));
  });

  itCompiledCuda("split-K plan: long K over few tiles is cut into BK-aligned ranges that cover K once; full grids and short K are not", () => {
    const tiles = (batch: number, M: number, N: number) => batch * Math.ceil(M / 64) * Math.ceil(N / 64);
    let cut = 0;
    for (const bf16 of [false, true]) {
      const BK = bf16 ? 32 : 16;
      for (const batch of [1, 3, 128])
        for (const M of [1, 4, 64, 300, 1024, 2048])
          for (const N of [1, 4, 65, 256, 1536])
            for (const K of [0, 1, 255, 256, 1000, 2048, 16384]) {
              const { splits, chunk } = native.cudaGemmSplitPlan(batch, M, N, K, bf16);
              const what = `${batch}x${M}x${N}x${K} bf16=${bf16}: ${splits} x ${chunk}`;
              if (tiles(batch, M, N) >= 256 || K < 256) {
                assert.deepEqual([splits, chunk], [1, 0], `${what}: cut, though it fills the GPU or K is short`);
                continue;
              }
              if (splits === 1) {
                assert.equal(chunk, 0, what);
                continue;
              }
              cut += 1;
              assert.ok(splits >= 2 && splits <= 16, `${what}: number of ranges`);
              assert.ok(chunk % BK === 0 && chunk >= 128, `${what}: ranges BK-aligned and at least 128 deep`);
              assert.ok((splits - 1) * chunk < K && K <= splits * chunk, `${what}: the ranges do not cover K exactly once`);
              assert.ok(batch * M * N * splits <= 1 << 23, `${what}: scratch over 2^23 floats`);
              assert.ok(tiles(batch, M, N) * (splits - 1) < 512, `${what}: more ranges than the 512-block target needs`);
            }
    }
    assert.ok(cut > 50, `only ${cut} products cut`);
    // the weight gradient of a 256 -> 1024 projection over 2048 rows: 64 tiles of K 2048, cut 8 ways
    assert.deepEqual(native.cudaGemmSplitPlan(1, 1024, 256, 2048, false), { splits: 8, chunk: 256 });
    assert.throws(() => native.cudaGemmSplitPlan(0, 1, 1, 1, false), (e: Error) => e instanceof RangeError && /cudaGemmSplitPlan: batch/.test(e.message));
    // the A/B switch: off, nothing is cut; the setter returns the previous setting
    assert.equal(native.cudaSetGemmSplitK(false), true);
    try {
      assert.deepEqual(native.cudaGemmSplitPlan(1, 1024, 256, 2048, false), { splits: 1, chunk: 0 });
      assert.deepEqual(native.cudaGemmSplitPlan(128, 4, 4, 2048, true), { splits: 1, chunk: 0 });
    } finally {
      assert.equal(native.cudaSetGemmSplitK(true), false);
    }
    assert.deepEqual(native.cudaGemmSplitPlan(128, 4, 4, 2048, true), { splits: 4, chunk: 512 });
    assert.throws(() => native.cudaSetGemmSplitK(1 as never), (e: Error) => e instanceof TypeError && /cudaSetGemmSplitK: enabled/.test(e.message));
    // the float32 GEMM's kernel switch: tiled by default, the setter returns the previous form
    assert.equal(native.cudaSetGemmForm("grouped"), "tiled");
    assert.equal(native.cudaSetGemmForm("tiled"), "grouped");
    assert.throws(() => native.cudaSetGemmForm("fast" as never), (e: Error) => e instanceof RangeError && /cudaSetGemmForm: form must be "grouped" or "tiled", got "fast"/.test(e.message));
  });

  itCuda("CUDA gemm matches the CPU gemm (odd sizes, transposes, alpha/beta, beta = 0 over NaN), either kernel", () => {
    for (const form of ["tiled", "grouped"] as const) {
      const prev = native.cudaSetGemmForm(form);
      try {
        matchesCpu(form);
      } finally {
        native.cudaSetGemmForm(prev);
      }
    }
  });
  function matchesCpu(form: string): void {
    for (const [M, N, K] of [[1, 1, 1], [7, 33, 5], [65, 130, 17], [100, 257, 33], [257, 64, 300]])
      for (const [ta, tb] of variants)
        for (const [alpha, beta] of [[1, 0], [-0.5, 1.5]]) {
          const A = randArray(M * K, 21), B = randArray(K * N, 22), C0 = randArray(M * N, 23);
          if (beta === 0) C0.fill(NaN);
          const ref = reference({ ta, tb, M, N, K, alpha, beta }, A, B, C0);
          const gpu = C0.slice(), cpu = C0.slice();
          native.cudaGemmHost(ta, tb, M, N, K, alpha, A, B, beta, gpu);
          native.gemm(ta, tb, M, N, K, alpha, A, B, beta, cpu);
          assertWithin(gpu, ref, `cuda (${form}) ${M}x${N}x${K} ${name(ta, tb)} alpha=${alpha} beta=${beta}`);
          assertWithin(cpu, ref, `cpu ${M}x${N}x${K} ${name(ta, tb)} alpha=${alpha} beta=${beta}`);
        }
  }
});
