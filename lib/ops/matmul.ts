// Matrix products (ops layer): matmul (torch.matmul semantics: 1-D, 2-D and batched with broadcasting over the
// leading dimensions) and linear (PyTorch layout: weight [out, in]). Each is one tape entry; the forward and every
// gradient run on the native gemm (csrc/kernels/gemm.cc) with transposes instead of copies:
//   matmul  C = A B          dA = dC B^T (gemm nt)        dB = A^T dC (gemm tn)
//   linear  y = x W^T + b    dx = dy W   (gemm nn)        dW = dy^T x (gemm tn)     db = dy^T 1
// Gradients of broadcast batch dimensions are returned in the broadcast shape; the tape sums them down.
import { record1 } from "../autograd";
import { native } from "../native";
import { broadcastShapes, formatShape, numel } from "../shape";
import { Tensor } from "../tensor";
import { requireTensor } from "./args";
import { linearBf16 } from "./bf16";
import { linearCuda, matmulCuda, requireSameDevice } from "./cuda";

/** The float32 storage of a CPU tensor argument (an empty array for a CUDA one: its values stay on the GPU). */
function f32Of(t: unknown, op: string, name: string): Float32Array {
  requireTensor(op, name, t, { cuda: true });
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${t === null ? "null" : typeof t}`);
  if (t.dtype !== "float32") throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${t.dtype}`);
  return t.device === "cuda" ? EMPTY : (t.data as Float32Array);
}
const EMPTY = new Float32Array(0);

/** One run of equal-stride batch entries: `count` products, a/b/c advancing by sa/sb/sc elements. */
interface BatchGroup {
  count: number;
  sa: number;
  sb: number;
  sc: number;
}

/**
 * C[i] = op(A[ia]) op(B[ib]) over a broadcast batch: `aBatch`, `bBatch` (each padded with leading 1s) broadcast to
 * `outBatch`; C is contiguous [...outBatch, M, N]. Dimensions whose strides line up are merged, the innermost run
 * becomes one gemmBatched call (or one gemm when it can be folded into M), outer runs are iterated here.
 */
function batchedGemm(
  ta: boolean, tb: boolean, M: number, N: number, K: number,
  A: Float32Array, aBatch: readonly number[], B: Float32Array, bBatch: readonly number[],
  outBatch: readonly number[], C: Float32Array,
): void {
  const nd = outBatch.length;
  if (numel(outBatch) === 0 || M * N === 0) return;
  const pad = (s: readonly number[]) => [...new Array<number>(nd - s.length).fill(1), ...s];
  const ab = pad(aBatch), bb = pad(bBatch);
  // element strides per batch dim (0 where broadcast)
  const sa = new Array<number>(nd), sb = new Array<number>(nd), sc = new Array<number>(nd);
  let accA = M * K, accB = K * N, accC = M * N;
  for (let d = nd - 1; d >= 0; --d) {
    sa[d] = ab[d] === 1 ? 0 : accA;
    sb[d] = bb[d] === 1 ? 0 : accB;
    sc[d] = accC;
    accA *= ab[d];
    accB *= bb[d];
    accC *= outBatch[d];
  }
  // merge from the innermost dim outwards while every operand's stride continues the run
  const groups: BatchGroup[] = [];
  for (let d = nd - 1; d >= 0; --d) {
    if (outBatch[d] === 1) continue;
    const g = groups[groups.length - 1];
    if (g && sa[d] === g.sa * g.count && sb[d] === g.sb * g.count && sc[d] === g.sc * g.count) g.count *= outBatch[d];
    else groups.push({ count: outBatch[d], sa: sa[d], sb: sb[d], sc: sc[d] });
  }
  if (groups.length === 0) groups.push({ count: 1, sa: 0, sb: 0, sc: 0 });
  const inner = groups[0];
  const lda = ta ? M : K;
  const runInner = (offA: number, offB: number, offC: number) => {
    const a = A.subarray(offA), b = B.subarray(offB), c = C.subarray(offC, offC + inner.count * M * N);
    if (inner.count === 1) {
      native.gemm(ta, tb, M, N, K, 1, a.subarray(0, M * K), b.subarray(0, K * N), 0, c);
    } else if (!ta && inner.sb === 0 && inner.sa === M * K && lda === K) {
      // one matrix B for consecutive A blocks: the batch folds into the rows of a single product
      native.gemm(false, tb, inner.count * M, N, K, 1, a.subarray(0, inner.count * M * K), b.subarray(0, K * N), 0, c);
    } else {
      const lenA = (inner.count - 1) * inner.sa + M * K, lenB = (inner.count - 1) * inner.sb + K * N;
      native.gemmBatched(ta, tb, inner.count, M, N, K, 1, a.subarray(0, lenA), inner.sa, b.subarray(0, lenB), inner.sb, 0, c, inner.sc);
    }
  };
  const outer = groups.slice(1);
  if (outer.length === 0) {
    runInner(0, 0, 0);
    return;
  }
  const idx = new Array<number>(outer.length).fill(0);
  for (;;) {
    let oa = 0, ob = 0, oc = 0;
    outer.forEach((g, i) => {
      oa += idx[i] * g.sa;
      ob += idx[i] * g.sb;
      oc += idx[i] * g.sc;
    });
    runInner(oa, ob, oc);
    let i = 0;
    while (i < outer.length && ++idx[i] === outer[i].count) idx[i++] = 0;
    if (i === outer.length) break;
  }
}

/**
 * Matrix product with torch.matmul semantics: 2-D x 2-D is [M, K] x [K, N] -> [M, N]; with 3 or more dims the
 * leading (batch) dims broadcast (e.g. [B, H, M, K] x [K, N] or [B, 1, M, K] x [H, K, N]); a 1-D first operand
 * is a row vector and a 1-D second operand a column vector, whose dimension is removed from the result.
 * One tape entry; gradients use gemm with transposed operands.
 * @throws TypeError when an operand is not a float32 Tensor; RangeError when the shapes do not match.
 * @example ops.matmul(Tensor.randn([8, 4, 5]), Tensor.randn([5, 3]))  // [8, 4, 3]
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const op = "ops.matmul";
  const A = f32Of(a, op, "a"), B = f32Of(b, op, "b");
  if (a.ndim === 0) throw new RangeError(`${op}: a has shape [], expected at least 1 dimension`);
  if (b.ndim === 0) throw new RangeError(`${op}: b has shape [], expected at least 1 dimension`);
  const aS = a.ndim === 1 ? [1, a.shape[0]] : [...a.shape];
  const bS = b.ndim === 1 ? [b.shape[0], 1] : [...b.shape];
  const M = aS[aS.length - 2], K = aS[aS.length - 1], N = bS[bS.length - 1];
  if (bS[bS.length - 2] !== K)
    throw new RangeError(
      `${op}: b has shape ${formatShape(b.shape)}, expected ${b.ndim === 1 ? `[K] = [${K}]` : `[..., K, N] with K = ${K}`} (a has shape ${formatShape(a.shape)})`,
    );
  const aBatch = aS.slice(0, -2), bBatch = bS.slice(0, -2);
  const outBatch = broadcastShapes(aBatch, bBatch, `${op}: batch dimensions of a ${formatShape(a.shape)} and b ${formatShape(b.shape)}`);
  const outShape = [...outBatch, ...(a.ndim === 1 ? [] : [M]), ...(b.ndim === 1 ? [] : [N])];
  requireSameDevice(op, [["a", a], ["b", b]]);
  if (a.device === "cuda") return matmulCuda(a, b, M, N, K, aBatch, bBatch, outShape);
  const out = Tensor._uninit(outShape);  // the products below run with beta 0: every element written
  batchedGemm(false, false, M, N, K, A, aBatch, B, bBatch, outBatch, out.data as Float32Array);

  return record1("matmul", [a, b], out, (g) => {
    const G = g.f32("matmul backward");
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      // dA[i] = dC[i] B[i]^T, in the broadcast batch shape (reduced by the tape where a was broadcast)
      const sameBatch = aBatch.length === outBatch.length && aBatch.every((s, i) => s === outBatch[i]);
      ga = Tensor._uninit(sameBatch ? a.shape : [...outBatch, M, K]);
      batchedGemm(false, true, M, K, N, G, outBatch, B, bBatch, outBatch, ga.data as Float32Array);
    }
    if (b.requiresGrad) {
      const bBroadcastAll = bBatch.every((s) => s === 1);
      if (bBroadcastAll && outBatch.length > 0) {
        // one B for every batch entry (then a is not broadcast: outBatch = aBatch up to leading 1s):
        // dB = sum_i A[i]^T dC[i] = A_flat^T dC_flat, a single product over all rows
        gb = Tensor._uninit(b.shape);
        native.gemm(true, false, K, N, numel(outBatch) * M, 1, A, G, 0, gb.data as Float32Array);
      } else {
        const sameBatch = bBatch.length === outBatch.length && bBatch.every((s, i) => s === outBatch[i]);
        gb = Tensor._uninit(sameBatch ? b.shape : [...outBatch, K, N]);
        batchedGemm(true, false, K, N, M, A, aBatch, G, outBatch, outBatch, gb.data as Float32Array);
      }
    }
    return [ga, gb];
  });
}

/**
 * Affine map with PyTorch's layout: y = x W^T + bias, for x [..., in], weight [out, in], bias [out] -> [..., out].
 * One tape entry; the forward is one gemm (x W^T, bias preloaded into y), the backward three (dx = dy W,
 * dW = dy^T x, dbias = dy^T 1). The weight may be a bfloat16 tensor (inference storage, e.g. xLSTM Large): it is
 * widened exactly, products and sums stay float32, and gradients reach x and bias only (see lib/ops/bf16.ts).
 * @throws TypeError when an argument is not a float32 Tensor (the weight: float32 or bfloat16); RangeError when the shapes do not match.
 * @example ops.linear(Tensor.randn([2, 5, 16]), Tensor.randn([32, 16]), Tensor.zeros([32]))  // [2, 5, 32]
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const op = "ops.linear";
  const X = f32Of(x, op, "x");
  // a bfloat16 weight is inference storage (xLSTM Large checkpoints): linearBf16 widens it on the fly
  const bf16 = weight instanceof Tensor && weight.dtype === "bfloat16";
  const W = bf16 ? (requireTensor(op, "weight", weight, { cuda: true }), EMPTY) : f32Of(weight, op, "weight");
  const Bv = bias == null ? null : f32Of(bias, op, "bias");
  if (x.ndim === 0) throw new RangeError(`${op}: x has shape [], expected [..., in]`);
  const inF = x.shape[x.ndim - 1];
  if (weight.ndim !== 2) throw new RangeError(`${op}: weight has shape ${formatShape(weight.shape)}, expected [out, in] = [out, ${inF}]`);
  const outF = weight.shape[0];
  if (weight.shape[1] !== inF)
    throw new RangeError(`${op}: weight has shape ${formatShape(weight.shape)}, expected [out, in] = [${outF}, ${inF}] (x has shape ${formatShape(x.shape)})`);
  if (bias != null && (bias.ndim !== 1 || bias.shape[0] !== outF))
    throw new RangeError(`${op}: bias has shape ${formatShape(bias.shape)}, expected [out] = [${outF}]`);
  const rows = numel(x.shape.slice(0, -1));
  requireSameDevice(op, [["x", x], ["weight", weight], ["bias", bias]]);
  if (bf16) return linearBf16(x, weight, bias ?? null, rows, inF, outF);
  if (x.device === "cuda") return linearCuda(x, weight, bias ?? null, rows, inF, outF);
  const out = Tensor._uninit([...x.shape.slice(0, -1), outF]);  // bias rows or beta 0: every element written
  const Y = out.data as Float32Array;
  if (Bv) for (let r = 0; r < rows; ++r) Y.set(Bv, r * outF);
  native.gemm(false, true, rows, outF, inF, 1, X, W, Bv ? 1 : 0, Y);

  return record1("linear", [x, weight, bias], out, (g) => {
    const G = g.f32("linear backward");
    let gx: Tensor | null = null, gw: Tensor | null = null, gbias: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor._uninit(x.shape);
      native.gemm(false, false, rows, inF, outF, 1, G, W, 0, gx.data as Float32Array);
    }
    if (weight.requiresGrad) {
      gw = Tensor._uninit(weight.shape);
      native.gemm(true, false, outF, inF, rows, 1, G, X, 0, gw.data as Float32Array);
    }
    if (bias != null && bias.requiresGrad) {
      gbias = Tensor.zeros(bias.shape);
      native.gemm(true, false, outF, 1, rows, 1, G, new Float32Array(rows).fill(1), 0, gbias.data as Float32Array);
    }
    return [gx, gw, gbias];
  });
}
