// The CUDA side of the layout-bound ops (ops layer): block-diagonal linear maps (headwiseLinearConcat) as strided
// batched GEMMs, one batch entry per block, and slice (step 1) / cat as 2-D copies (cudaCopy2D). Same tape entries
// and gradients as the CPU forms in headwise.ts and shape.ts.
import { record, record1 } from "../autograd";
import { autocastActive, ELEMENT_BYTES } from "../device";
import { native } from "../native";
import { Tensor } from "../tensor";
import { gemmStrided, ones } from "./cuda";

/** One map of headwiseLinearConcat with its geometry. */
export interface HeadwiseGeometry {
  x: Tensor;
  weight: Tensor;
  bias: Tensor | null;
  NB: number;
  O: number;
  I: number;
}

/**
 * headwiseLinearConcat on CUDA tensors: y[r, off_p + hb*O + o] = Σ_d x_p[r, hb*I + d] W_p[hb, o, d] (+ b_p), with
 * `ld` output columns. Per part and block: forward y_hb = x_hb W_hb^T, backward dx_hb = dy_hb W_hb,
 * dW_hb = dy_hb^T x_hb, db_hb = dy_hb^T 1, each one batched GEMM over the NB blocks.
 */
export function headwiseCuda(parts: HeadwiseGeometry[], offsets: number[], lead: number[], rows: number, ld: number): Tensor {
  const what = "ops.headwiseLinearConcat";
  const bf = autocastActive();
  const y = Tensor._empty([...lead, ld]);
  parts.forEach((p, i) => {
    const { NB, O, I } = p;
    const Y = { t: y, off: offsets[i], ld, stride: O };
    if (p.bias) gemmStrided(what, false, false, NB, rows, O, 1, { t: ones(rows), off: 0, ld: 1, stride: 0 }, { t: p.bias, off: 0, ld: O, stride: O }, 0, Y);
    gemmStrided(what, false, true, NB, rows, O, I, { t: p.x, off: 0, ld: NB * I, stride: I }, { t: p.weight, off: 0, ld: I, stride: O * I }, p.bias ? 1 : 0, Y, bf);
  });
  const inputs: (Tensor | null)[] = parts.flatMap((p) => [p.x, p.weight, p.bias]);
  return record("headwiseLinearConcat", inputs, y, ([g]) => {
    if (!g) return inputs.map(() => null);
    const dxOf = new Map<Tensor, Tensor>();
    return parts.flatMap((p, i) => {
      const { NB, O, I } = p;
      const G = { t: g, off: offsets[i], ld, stride: O };
      let dx: Tensor | null = null, accumulate = false;
      if (p.x.requiresGrad) {
        const prev = dxOf.get(p.x);
        accumulate = !!prev;
        dx = prev ?? Tensor._empty(p.x.shape);
        dxOf.set(p.x, dx);
        gemmStrided(what, false, false, NB, rows, I, O, G, { t: p.weight, off: 0, ld: I, stride: O * I }, accumulate ? 1 : 0, { t: dx, off: 0, ld: NB * I, stride: I }, bf);
      }
      let dW: Tensor | null = null, db: Tensor | null = null;
      if (p.weight.requiresGrad) {
        dW = Tensor._empty(p.weight.shape);
        gemmStrided(what, true, false, NB, O, I, rows, G, { t: p.x, off: 0, ld: NB * I, stride: I }, 0, { t: dW, off: 0, ld: I, stride: O * I }, bf);
      }
      if (p.bias?.requiresGrad) {
        db = Tensor._empty(p.bias.shape);
        gemmStrided(what, true, false, NB, O, 1, rows, G, { t: ones(rows), off: 0, ld: 1, stride: 0 }, 0, { t: db, off: 0, ld: 1, stride: O });
      }
      const first = parts.findIndex((q) => q.x === p.x) === i;
      return [first ? dx : null, dW, db];
    });
  });
}

/** ops.slice with step 1 on a CUDA tensor (any dtype) viewed as [outer, n, inner], keeping [lo, lo + count). */
export function sliceCuda(x: Tensor, outShape: number[], outer: number, n: number, inner: number, lo: number, count: number): Tensor {
  const what = "ops.slice";
  const BYTES = ELEMENT_BYTES[x.dtype];
  const out = Tensor._empty(outShape, x.dtype);
  native.cudaCopy2D(out._buffer(what), 0, count * inner * BYTES, x._buffer(what), lo * inner * BYTES, n * inner * BYTES, count * inner * BYTES, outer);
  return record1("slice", [x], out, (g) => {
    const gx = Tensor.zeros(x.shape, { device: "cuda" });
    native.cudaCopy2D(gx._buffer(what), lo * inner * BYTES, n * inner * BYTES, g._buffer(what), 0, count * inner * BYTES, count * inner * BYTES, outer);
    return [gx];
  });
}

/** ops.cat of CUDA tensors (one dtype) along a dimension: each viewed as [outer, rows_k] into [outer, rowOut]. */
export function catCuda(tensors: readonly Tensor[], outShape: number[], outer: number, rows: number[], rowOut: number): Tensor {
  const what = "ops.cat";
  const BYTES = ELEMENT_BYTES[tensors[0].dtype];
  const out = Tensor._empty(outShape, tensors[0].dtype);
  const offsets: number[] = [];
  let off = 0;
  tensors.forEach((t, k) => {
    offsets.push(off);
    native.cudaCopy2D(out._buffer(what), off * BYTES, rowOut * BYTES, t._buffer(what), 0, rows[k] * BYTES, rows[k] * BYTES, outer);
    off += rows[k];
  });
  return record1("cat", tensors, out, (g) =>
    tensors.map((t, k) => {
      const gt = Tensor._empty(t.shape);
      native.cudaCopy2D(gt._buffer(what), 0, rows[k] * BYTES, g._buffer(what), offsets[k] * BYTES, rowOut * BYTES, rows[k] * BYTES, outer);
      return gt;
    }),
  );
}
