// The CUDA side of the ops (ops layer): the same ops and tape entries as their CPU forms in elementwise.ts and
// matmul.ts, for tensors on device "cuda", over the device-buffer kernels of csrc/binding/cuda_ops.cc (the CUDA
// twins cuda/elementwise.cu and cuda/gemm.cu). Outputs and gradients are CUDA tensors too; every kernel is queued
// on the package's one stream, so nothing here waits for the GPU until a value is read back (toFlatArray, cpu()).
// Broadcast gradients are summed down with GEMMs against a vector of ones (reduceToShapeCuda), so the tape needs no
// separate reduction kernel.
import type { Binding } from "../../binding";
import { record1 } from "../autograd";
import { native } from "../native";
import { formatShape, numel } from "../shape";
import { autocastActive } from "../device";
import { Tensor } from "../tensor";

type UnaryOp = Parameters<Binding["unary"]>[0];
type BinaryOp = Parameters<Binding["binary"]>[0];

/** TypeError unless every tensor given is on the same device as the first. */
export function requireSameDevice(what: string, named: [string, Tensor | null | undefined][]): void {
  const present = named.filter((p): p is [string, Tensor] => p[1] instanceof Tensor);
  if (present.length < 2) return;
  const [n0, t0] = present[0];
  for (const [n, t] of present.slice(1))
    if (t.device !== t0.device)
      throw new TypeError(`${what}: ${n0} is on ${t0.device} but ${n} is on ${t.device}; move them to one device first (.to("${t0.device}"))`);
}

/** ops.<name> for a CUDA tensor x (see unaryOp in elementwise.ts). */
export function unaryCuda(name: string, op: UnaryOp, x: Tensor, alpha: number, beta: number, reads: "x" | "y" | "none"): Tensor {
  const what = `ops.${name}`;
  const out = Tensor._empty(x.shape);
  native.cudaUnaryDev(op, x._buffer(what), out._buffer(what), x.numel, alpha, beta);
  return record1(name, [x], out, (g) => {
    const dx = Tensor._empty(x.shape);
    native.cudaUnaryBackwardDev(op, reads === "x" ? x._buffer(what) : null, reads === "y" ? out._buffer(what) : null, g._buffer(what), dx._buffer(what), x.numel, alpha);
    return [dx];
  });
}

/** ops.<name>(a, b) for CUDA operands (numbers already turned into CUDA scalars), out in the broadcast `shape`. */
export function binaryCuda(name: string, op: BinaryOp, ta: Tensor, tb: Tensor, inputs: (Tensor | null)[], shape: number[]): Tensor {
  const what = `ops.${name}`;
  const out = Tensor._empty(shape);
  native.cudaBinaryDev(op, ta._buffer(what), ta.shape, tb._buffer(what), tb.shape, out._buffer(what));
  return record1(name, inputs, out, (g) => {
    const da = inputs[0]?.requiresGrad ? Tensor._empty(shape) : null;
    const db = inputs[1]?.requiresGrad ? Tensor._empty(shape) : null;
    native.cudaBinaryBackwardDev(op, ta._buffer(what), ta.shape, tb._buffer(what), tb.shape, g._buffer(what), da?._buffer(what) ?? null, db?._buffer(what) ?? null);
    return [da, db];
  });
}

/** C = op(A) op(B) + beta C on dense CUDA tensors (batch products at the given element strides); bf16: autocast. */
function gemm(what: string, ta: boolean, tb: boolean, batch: number, M: number, N: number, K: number, A: Tensor, sa: number, B: Tensor, sb: number, beta: number, C: Tensor, sc: number, bf16 = false): void {
  native.cudaGemmDev(ta, tb, batch, M, N, K, 1, A._buffer(what), 0, ta ? M : K, sa, B._buffer(what), 0, tb ? K : N, sb, beta, C._buffer(what), 0, N, sc, bf16);
}

/** One operand of gemmStrided: a tensor, the element offset of the first matrix, its leading dimension, batch stride. */
export interface Strided {
  t: Tensor;
  off: number;
  ld: number;
  stride: number;
}

/** C_i = op(A_i) op(B_i) + beta C_i over strided views of CUDA tensors (see cudaGemmDev); bf16: autocast. */
export function gemmStrided(what: string, ta: boolean, tb: boolean, batch: number, M: number, N: number, K: number, A: Strided, B: Strided, beta: number, C: Strided, bf16 = false): void {
  native.cudaGemmDev(ta, tb, batch, M, N, K, 1, A.t._buffer(what), A.off, A.ld, A.stride, B.t._buffer(what), B.off, B.ld, B.stride, beta, C.t._buffer(what), C.off, C.ld, C.stride, bf16);
}

const onesCache = new Map<number, Tensor>();
/** A CUDA vector of n ones (cached per length; kept for the life of the process, outside any cuda.scope). */
export function ones(n: number): Tensor {
  let t = onesCache.get(n);
  if (!t || t.isDisposed) {
    t = Tensor.full([n], 1, { device: "cuda" });  // filled on the device
    t._unscoped();  // a cuda.scope around the first call must not release the cached vector at its end
    onesCache.set(n, t);
  }
  return t;
}

/**
 * The CUDA form of autograd's reduceToShape: sums `grad` over its leading dimensions and over the dimensions
 * `shape` has as 1. Dimensions are merged into alternating kept / summed runs; each summed run is one batched
 * GEMM [1 x R] x [R x inner] against a vector of ones (float32 accumulation, unlike the CPU's float64).
 */
export function reduceToShapeCuda(grad: Tensor, shape: readonly number[]): Tensor {
  const gs = grad.shape, lead = gs.length - shape.length;
  let dims: { n: number; sum: boolean }[] = [];
  gs.forEach((n, i) => {
    const sum = i < lead || (shape[i - lead] === 1 && n !== 1);
    if (n === 1) return;
    const last = dims[dims.length - 1];
    if (last && last.sum === sum) last.n *= n;
    else dims.push({ n, sum });
  });
  let cur = grad;
  while (dims.some((d) => d.sum)) {
    const j = dims.map((d) => d.sum).lastIndexOf(true);
    const outer = numel(dims.slice(0, j).map((d) => d.n)), R = dims[j].n, inner = numel(dims.slice(j + 1).map((d) => d.n));
    const next = Tensor._empty([outer * inner]);
    gemm("backward (sum of a broadcast gradient)", false, false, outer, 1, inner, R, ones(R), 0, cur, R * inner, 0, next, inner);
    if (cur !== grad) cur.dispose();
    cur = next;
    dims = [...dims.slice(0, j), ...dims.slice(j + 1)];
  }
  const out = cur === grad ? grad.clone() : cur;
  return out._viewAs(shape);
}

/** ops.matmul for CUDA operands: a [..., M, K] with b [K, N] or with b of the same batch dims [..., K, N]. */
export function matmulCuda(a: Tensor, b: Tensor, M: number, N: number, K: number, aBatch: number[], bBatch: number[], outShape: number[]): Tensor {
  const what = "ops.matmul";
  const sameBatch = aBatch.length === bBatch.length && aBatch.every((s, i) => s === bBatch[i]);
  if (bBatch.length > 0 && !sameBatch)
    throw new RangeError(`${what}: on CUDA, b must be 2-D or have a's batch dimensions (a has shape ${formatShape(a.shape)}, b has shape ${formatShape(b.shape)}); broadcasting batch dimensions is CPU-only for now`);
  const batch = numel(aBatch);
  const bf = autocastActive();
  const out = Tensor._empty(outShape);
  if (bBatch.length === 0) gemm(what, false, false, 1, batch * M, N, K, a, 0, b, 0, 0, out, 0, bf);
  else gemm(what, false, false, batch, M, N, K, a, M * K, b, K * N, 0, out, M * N, bf);
  return record1("matmul", [a, b], out, (g) => {
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = Tensor._empty(a.shape);
      if (bBatch.length === 0) gemm(what, false, true, 1, batch * M, K, N, g, 0, b, 0, 0, ga, 0, bf);
      else gemm(what, false, true, batch, M, K, N, g, M * N, b, K * N, 0, ga, M * K, bf);
    }
    if (b.requiresGrad) {
      gb = Tensor._empty(b.shape);
      if (bBatch.length === 0) gemm(what, true, false, 1, K, N, batch * M, a, 0, g, 0, 0, gb, 0, bf);
      else gemm(what, true, false, batch, K, N, M, a, M * K, g, M * N, 0, gb, K * N, bf);
    }
    return [ga, gb];
  });
}

/** ops.linear for CUDA tensors: y = x W^T + bias over `rows` rows of `inF` features. */
export function linearCuda(x: Tensor, weight: Tensor, bias: Tensor | null, rows: number, inF: number, outF: number): Tensor {
  const what = "ops.linear";
  const bf = autocastActive();  // (the bias stays float32)
  const out = Tensor._empty([...x.shape.slice(0, -1), outF]);
  if (bias) gemm(what, false, false, 1, rows, outF, 1, ones(rows), 0, bias, 0, 0, out, 0);  // bias broadcast to every row
  gemm(what, false, true, 1, rows, outF, inF, x, 0, weight, 0, bias ? 1 : 0, out, 0, bf);
  return record1("linear", [x, weight, bias], out, (g) => {
    let gx: Tensor | null = null, gw: Tensor | null = null, gbias: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor._empty(x.shape);
      gemm(what, false, false, 1, rows, inF, outF, g, 0, weight, 0, 0, gx, 0, bf);
    }
    if (weight.requiresGrad) {
      gw = Tensor._empty(weight.shape);
      gemm(what, true, false, 1, outF, inF, rows, g, 0, x, 0, 0, gw, 0, bf);
    }
    if (bias?.requiresGrad) {
      gbias = Tensor._empty(bias.shape);
      gemm(what, true, false, 1, outF, 1, rows, g, 0, ones(rows), 0, 0, gbias, 0);
    }
    return [gx, gw, gbias];
  });
}
