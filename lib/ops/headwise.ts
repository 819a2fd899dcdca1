// Block-diagonal linear maps, the reference's LinearHeadwiseExpand (ops layer; XLSTM_SPEC §5.1; kernel in
// csrc/kernels/headwise.h): one tape entry, strided GEMMs in both directions. `headwiseLinearConcat` runs several
// maps side by side into one concatenated output (the sLSTM layer's four gate projections), so no separate
// concatenation or slicing happens in forward or backward.
import { record } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { sameShape } from "../shape";
import { Tensor } from "../tensor";
import { kindOf, optionalTensor, requireTensor } from "./args";
import { requireSameDevice } from "./cuda";
import { headwiseCuda } from "./cuda-layout";

export interface HeadwisePart {
  /** float32 [..., NB*I] */
  x: Tensor;
  /** float32 [NB, O, I] */
  weight: Tensor;
  /** float32 [NB*O] or null */
  bias?: Tensor | null;
}

/**
 * concat over parts p of y_p[..., hb*O + o] = Σ_d x_p[..., hb*I + d] · weight_p[hb, o, d] (+ bias_p), along the last
 * dimension. All x_p share their leading dimensions. Inputs may repeat (their gradients add up).
 * @throws TypeError for non-float32 tensors; RangeError for inconsistent shapes
 */
export function headwiseLinearConcat(parts: readonly HeadwisePart[]): Tensor {
  const op = "ops.headwiseLinearConcat";
  if (!Array.isArray(parts) || parts.length === 0) throw new RangeError(`${op}: expected a non-empty list of parts`);
  parts.forEach((p: unknown, i) => {
    if (p === null || typeof p !== "object") throw new TypeError(`${op}: parts[${i}] must be an object { x, weight, bias? }, got ${kindOf(p)}`);
    requireTensor(op, `parts[${i}].x`, (p as HeadwisePart).x, { cuda: true });
    requireTensor(op, `parts[${i}].weight`, (p as HeadwisePart).weight, { cuda: true });
    optionalTensor(op, `parts[${i}].bias`, (p as HeadwisePart).bias, { cuda: true });
  });
  const lead = parts[0].x.shape.slice(0, -1);
  const geo = parts.map((p, i) => {
    for (const [n, t] of [["x", p.x], ["weight", p.weight], ["bias", p.bias]] as const)
      if (t && t.dtype !== "float32") throw new TypeError(`${op}: parts[${i}].${n} must be float32, got ${t.dtype}`);
    if (p.weight.ndim !== 3) throw shapeError(`${op}: parts[${i}].weight`, p.weight.shape, "[NB, O, I]");
    const [NB, O, I] = p.weight.shape;
    if (p.x.ndim < 1 || p.x.shape[p.x.ndim - 1] !== NB * I) throw shapeError(`${op}: parts[${i}].x`, p.x.shape, `[..., NB*I] = [..., ${NB * I}]`);
    if (!sameShape(p.x.shape.slice(0, -1), lead)) throw shapeError(`${op}: parts[${i}].x`, p.x.shape, `[${lead.join(", ")}, ${NB * I}] (the leading dims of parts[0].x)`);
    if (p.bias && (p.bias.ndim !== 1 || p.bias.shape[0] !== NB * O)) throw shapeError(`${op}: parts[${i}].bias`, p.bias.shape, `[NB*O] = [${NB * O}]`);
    return { NB, O, I };
  });
  const offsets: number[] = [];
  let ld = 0;
  for (const g of geo) {
    offsets.push(ld);
    ld += g.NB * g.O;
  }
  const rows = lead.reduce((a: number, b: number) => a * b, 1);
  requireSameDevice(op, parts.flatMap((p, i) => [[`parts[${i}].x`, p.x], [`parts[${i}].weight`, p.weight], [`parts[${i}].bias`, p.bias]] as [string, Tensor | null | undefined][]));
  if (parts[0].x.device === "cuda") return headwiseCuda(parts.map((p, i) => ({ x: p.x, weight: p.weight, bias: p.bias ?? null, ...geo[i] })), offsets, lead, rows, ld);
  // the parts' column ranges tile [0, ld): every element written; the backward writes dW, db and a first dx with =
  const y = Tensor._uninit([...lead, ld]);
  parts.forEach((p, i) => {
    const { NB, O, I } = geo[i];
    native.headwiseLinearForward(y.data as Float32Array, p.x.f32(), p.weight.f32(), p.bias ? p.bias.f32() : null, rows, NB, I, O, offsets[i], ld);
  });
  const inputs: (Tensor | null)[] = parts.flatMap((p) => [p.x, p.weight, p.bias ?? null]);
  return record("headwiseLinearConcat", inputs, y, ([g]) => {
    if (!g) return inputs.map(() => null);
    const dxOf = new Map<Tensor, Tensor>();
    return parts.flatMap((p, i) => {
      const { NB, O, I } = geo[i];
      let dx: Tensor | null = null, accumulate = false;
      if (p.x.requiresGrad) {
        const prev = dxOf.get(p.x);
        accumulate = !!prev;
        dx = prev ?? Tensor._uninit(p.x.shape);
        dxOf.set(p.x, dx);
      }
      const dW = p.weight.requiresGrad ? Tensor._uninit(p.weight.shape) : null;
      const db = p.bias && p.bias.requiresGrad ? Tensor._uninit(p.bias.shape) : null;
      native.headwiseLinearBackward(dx ? (dx.data as Float32Array) : null, dW ? (dW.data as Float32Array) : null, db ? (db.data as Float32Array) : null, g.f32(), p.x.f32(), p.weight.f32(), rows, NB, I, O, offsets[i], ld, accumulate);
      // a repeated input gets its (accumulated) gradient once, at its first occurrence
      const first = parts.findIndex((q) => q.x === p.x) === i;
      return [first ? dx : null, dW, db];
    });
  });
}

/**
 * y[..., hb*O + o] = Σ_d x[..., hb*I + d] · weight[hb, o, d] (+ bias[hb*O + o]).
 * @param x float32 [..., NB*I]
 * @param weight float32 [NB, O, I]
 * @param bias float32 [NB*O] or null
 * @returns [..., NB*O]
 */
export function headwiseLinear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  requireTensor("ops.headwiseLinear", "x", x, { cuda: true });
  requireTensor("ops.headwiseLinear", "weight", weight, { cuda: true });
  optionalTensor("ops.headwiseLinear", "bias", bias, { cuda: true });
  return headwiseLinearConcat([{ x, weight, bias }]);
}
