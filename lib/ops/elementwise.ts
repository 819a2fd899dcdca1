// Differentiable elementwise ops (ops layer): arithmetic with NumPy broadcasting (add, sub, mul, div) and
// activations (exp, log, sigmoid, logsigmoid, tanh, softplus, relu, gelu, silu, neg, scale). Each op is one tape
// entry over the native kernels of csrc/kernels/elementwise.cc (formulas: csrc/kernels/elementwise_math.h).
// Binary backward returns gradients in the broadcast shape; the tape sums them down to each input's shape.
import type { Binding } from "../../binding";
import { record1 } from "../autograd";
import { native } from "../native";
import { broadcastShapes, formatShape } from "../shape";
import { Tensor } from "../tensor";
import { requireOptions, requireTensor } from "./args";
import { binaryCuda, requireSameDevice, unaryCuda } from "./cuda";

/** Names of the native unary ops. */
export type UnaryOp = Parameters<Binding["unary"]>[0];
/** Names of the native binary ops. */
export type BinaryOp = Parameters<Binding["binary"]>[0];

/** Which saved arrays each op's backward reads (mirrors ew::unary_backward_reads in elementwise_math.h). */
const READS: Record<UnaryOp, "x" | "y" | "none"> = {
  exp: "y",
  log: "x",
  sigmoid: "y",
  logsigmoid: "x",
  tanh: "y",
  softplus: "x",
  relu: "x",
  gelu: "x",
  geluTanh: "x",
  silu: "x",
  neg: "none",
  affine: "none",
};

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

/** A float32 Tensor argument, or TypeError naming the op and the argument. */
function requireFloatTensor(x: unknown, what: string, name: string): Tensor {
  requireTensor(what, name, x, { cuda: true });
  if (!(x instanceof Tensor)) throw new TypeError(`${what}: ${name} must be a Tensor, got ${kindOf(x)}`);
  if (x.dtype !== "float32") throw new TypeError(`${what}: ${name} must be a float32 tensor, got ${x.dtype}`);
  return x;
}

function requireNumber(v: unknown, what: string, name: string): number {
  if (typeof v !== "number") throw new TypeError(`${what}: ${name} must be a number, got ${kindOf(v)}`);
  return v;
}

function unaryOp(name: string, op: UnaryOp, xIn: Tensor, alpha = 1, beta = 0): Tensor {
  const what = `ops.${name}`;
  const x = requireFloatTensor(xIn, what, "x");
  if (x.device === "cuda") return unaryCuda(name, op, x, alpha, beta, READS[op]);
  const xs = x.data as Float32Array;
  const out = Tensor._uninit(x.shape);  // unary / unaryBackward / binary / binaryBackward write every element
  const ys = out.data as Float32Array;
  native.unary(op, xs, ys, alpha, beta);
  const reads = READS[op];
  return record1(name, [x], out, (g) => {
    const dx = Tensor._uninit(x.shape);
    native.unaryBackward(op, reads === "x" ? xs : null, reads === "y" ? ys : null, g.f32(what), dx.data as Float32Array, alpha);
    return [dx];
  });
}

function binaryOp(name: string, op: BinaryOp, a: Tensor | number, b: Tensor | number): Tensor {
  const what = `ops.${name}`;
  if (typeof a === "number" && typeof b === "number")
    throw new TypeError(`${what}: at least one operand must be a Tensor, got two numbers (a = ${a}, b = ${b})`);
  if (typeof a !== "number") requireFloatTensor(a, what, "a");
  if (typeof b !== "number") requireFloatTensor(b, what, "b");
  requireSameDevice(what, [["a", a as Tensor], ["b", b as Tensor]]);
  const device = (typeof a === "number" ? (b as Tensor) : a).device;
  const ta = typeof a === "number" ? Tensor.scalar(a, { device }) : a;
  const tb = typeof b === "number" ? Tensor.scalar(b, { device }) : b;
  let shape: number[];
  try {
    shape = broadcastShapes(ta.shape, tb.shape, what);
  } catch (e) {
    throw new RangeError(`${(e as Error).message} (a has shape ${formatShape(ta.shape)}, b has shape ${formatShape(tb.shape)})`);
  }
  const inputs = [typeof a === "number" ? null : ta, typeof b === "number" ? null : tb];
  if (device === "cuda") return binaryCuda(name, op, ta, tb, inputs, shape);
  const out = Tensor._uninit(shape);
  const as = ta.data as Float32Array, bs = tb.data as Float32Array;
  native.binary(op, as, ta.shape, bs, tb.shape, out.data as Float32Array);
  return record1(name, inputs, out, (g) => {
    const da = inputs[0]?.requiresGrad ? Tensor._uninit(shape) : null;
    const db = inputs[1]?.requiresGrad ? Tensor._uninit(shape) : null;
    native.binaryBackward(op, as, ta.shape, bs, tb.shape, g.f32(what), (da?.data as Float32Array) ?? null, (db?.data as Float32Array) ?? null);
    return [da, db];
  });
}

/**
 * @internal act(h[..., :P]) * h[..., P:] for h [..., 2P] on the CPU: a gated feed-forward's activation in one native
 * pass and one tape entry, bit for bit the composed slice / activation / mul (whose three outputs, two slice
 * copies and their gradients it spares). `act` is a native unary op (GatedFeedForward picks it).
 * @throws TypeError for a non-float32 or CUDA tensor; RangeError for an odd or empty last dimension
 */
export function gatedActivation(h: Tensor, act: UnaryOp): Tensor {
  const what = "gatedActivation";
  requireFloatTensor(h, what, "h");
  if (h.device !== "cpu") throw new TypeError(`${what}: h must be on the CPU, got ${h.device}`);
  const last = h.ndim ? h.shape[h.ndim - 1] : 0;
  if (last < 2 || last % 2) throw new RangeError(`${what}: h has shape ${formatShape(h.shape)}, expected [..., 2P] with P >= 1`);
  const P = last / 2, rows = h.numel / last;
  const hs = h.data as Float32Array;
  const out = Tensor._uninit([...h.shape.slice(0, -1), P]);  // both kernels write every element
  native.gatedUnary(act, hs, rows, P, out.data as Float32Array);
  return record1(what, [h], out, (g) => {
    const dh = Tensor._uninit(h.shape);
    native.gatedUnaryBackward(act, hs, g.f32(what), rows, P, dh.data as Float32Array);
    return [dh];
  });
}

/**
 * a + b with NumPy broadcasting; either operand may be a number (a float32 scalar).
 * @throws TypeError for a non-float32 tensor or two numbers; RangeError for shapes that do not broadcast.
 * @example ops.add(x, bias)  // [B, N] + [N]
 */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp("add", "add", a, b);
}

/** a - b with NumPy broadcasting; either operand may be a number. */
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp("sub", "sub", a, b);
}

/** a * b with NumPy broadcasting; either operand may be a number. */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp("mul", "mul", a, b);
}

/** a / b (true division) with NumPy broadcasting; either operand may be a number. */
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp("div", "div", a, b);
}

/** -x. */
export function neg(x: Tensor): Tensor {
  return unaryOp("neg", "neg", x);
}

/** e^x (inf past about 88.72). */
export function exp(x: Tensor): Tensor {
  return unaryOp("exp", "exp", x);
}

/** Natural logarithm: -inf at 0, NaN below 0. */
export function log(x: Tensor): Tensor {
  return unaryOp("log", "log", x);
}

/** 1 / (1 + e^-x), computed without overflow on either tail. */
export function sigmoid(x: Tensor): Tensor {
  return unaryOp("sigmoid", "sigmoid", x);
}

/** log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), stable for large |x|. */
export function logsigmoid(x: Tensor): Tensor {
  return unaryOp("logsigmoid", "logsigmoid", x);
}

/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unaryOp("tanh", "tanh", x);
}

/** log(1 + e^x) as torch.nn.functional.softplus with beta 1, threshold 20 (x itself above 20); stable. */
export function softplus(x: Tensor): Tensor {
  return unaryOp("softplus", "softplus", x);
}

/** max(x, 0); NaN stays NaN; gradient 0 at x <= 0 (as torch). */
export function relu(x: Tensor): Tensor {
  return unaryOp("relu", "relu", x);
}

/** Options of {@link gelu}. */
export interface GeluOptions {
  /** "none" (default): x * Phi(x) with the exact normal CDF; "tanh": torch's tanh approximation. */
  approximate?: "none" | "tanh";
}

/**
 * GELU as torch.nn.functional.gelu.
 * @throws RangeError for an unknown `approximate`.
 * @example ops.gelu(x, { approximate: "tanh" })
 */
export function gelu(x: Tensor, options: GeluOptions = {}): Tensor {
  requireFloatTensor(x, "ops.gelu", "x");
  const approximate = requireOptions("ops.gelu", "options", options).approximate ?? "none";
  if (typeof approximate !== "string") throw new TypeError(`ops.gelu: approximate must be "none" or "tanh", got ${kindOf(approximate)}`);
  if (approximate !== "none" && approximate !== "tanh")
    throw new RangeError(`ops.gelu: approximate must be "none" or "tanh", got ${JSON.stringify(approximate)}`);
  return approximate === "tanh" ? unaryOp("gelu", "geluTanh", x) : unaryOp("gelu", "gelu", x);
}

/** x * sigmoid(x) (swish). */
export function silu(x: Tensor): Tensor {
  return unaryOp("silu", "silu", x);
}

/**
 * alpha * x + beta in one pass (gradient alpha).
 * @throws TypeError when alpha or beta is not a number.
 */
export function scale(x: Tensor, alpha: number, beta = 0): Tensor {
  requireFloatTensor(x, "ops.scale", "x");
  requireNumber(alpha, "ops.scale", "alpha");
  requireNumber(beta, "ops.scale", "beta");
  return unaryOp("scale", "affine", x, alpha, beta);
}
