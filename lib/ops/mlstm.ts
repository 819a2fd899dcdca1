// The differentiable mLSTM cell (ops layer; XLSTM_SPEC §4): parallel, chunkwise and recurrent forms on native
// kernels (csrc/kernels/mlstm.h), the whole cell ONE tape entry whose backward is the matching native backward.
import { requireSameDevice } from "./cuda";
import { mlstmCuda } from "./cuda-mlstm";
import { record, needsGrad } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { formatShape } from "../shape";
import { Tensor, zeroedF32 } from "../tensor";
import { kindOf, optionalNumber, optionalString, requireOptions, requireTensor } from "./args";
import { resolveChunkSize } from "./mlstm-chunk";

/** Which algorithm computes the cell (XLSTM_SPEC §4.3–§4.5). */
export type MlstmForm = "auto" | "parallel" | "chunkwise" | "recurrent";

/**
 * The mLSTM recurrent state in ONE convention: the small model's recurrent form (XLSTM_SPEC §4.3, keys scaled by
 * 1/√DHQK), C and n stabilised by m (C = C̃·exp(−m)); the zero state is C = n = 0, m = 0. `chunkwise_simple` and the
 * kernel library keep C and n √DHQK times larger (convert with `c * √DHQK`, `n * √DHQK`; m is the same).
 * Every form returns and accepts this same state, so calls can be chained in any mix of forms.
 */
export interface MlstmState {
  /** [B, NH, DHQK, DHV] */
  c: Tensor;
  /** [B, NH, DHQK] (a trailing singleton dim, [B, NH, DHQK, 1], is accepted on input) */
  n: Tensor;
  /** [B, NH] (trailing singleton dims accepted on input); never differentiable as an output */
  m: Tensor;
}

export interface MlstmOptions {
  /**
   * Default "auto": the chunkwise kernel with `chunkSize`, which for S <= chunkSize is the parallel form, with
   * parallel_stabilized_simple's stabiliser for the zero state (the small model's training path, linear memory for
   * long S); with an initial state and S <= 8, the recurrent kernel (same numbers, less overhead for generation).
   * "parallel": one chunk of length S (quadratic memory), parallel_stabilized_simple semantics from the zero state.
   * "chunkwise": chunkwise_simple semantics (zero state m = 0), chunk `chunkSize`; S need not be a multiple.
   * "recurrent": recurrent_step_stabilized_simple step by step.
   * All forms agree up to rounding and the ε term of XLSTM_SPEC §4.7.
   */
  form?: MlstmForm;
  /**
   * Chunk length for "auto" and "chunkwise" (default 64, the reference's), or "auto": chosen per shape and device by
   * mlstmAutoChunk (lib/ops/mlstm-chunk.ts). Every length computes the same function up to rounding.
   */
  chunkSize?: number | "auto";
  /** State to start from (default: the zero state). Differentiable in c, n and m. */
  initialState?: MlstmState | null;
  /** Return the final state (default false). Its c and n carry gradients; m is detached (XLSTM_SPEC §4.6 caveat). */
  returnLastState?: boolean;
  /** Normaliser epsilon (default 1e-6, the reference's). */
  eps?: number;
}

export interface MlstmOutput {
  /** [B, NH, S, DHV] */
  h: Tensor;
  /** the final state (only with returnLastState) */
  state?: MlstmState;
}

const FORMS: readonly MlstmForm[] = ["auto", "parallel", "chunkwise", "recurrent"];

function checkShape(what: string, t: Tensor, want: number[], wantText: string, allowTrailingOnes = false) {
  let s = [...t.shape];
  if (allowTrailingOnes) while (s.length > want.length && s[s.length - 1] === 1) s = s.slice(0, -1);
  if (s.length !== want.length || s.some((x, j) => x !== want[j])) throw shapeError(`ops.mlstm: ${what}`, t.shape, `${wantText} = ${formatShape(want)}`);
}

/**
 * The mLSTM cell over a sequence (XLSTM_SPEC §4): matrix memory C_t = f_t C_{t-1} + i_t k_t v_tᵀ with exponential
 * input gate, sigmoid forget gate, normaliser n and stabiliser m; h_t = C_tᵀ q_t / (max(|n_t·q_t|, e^{−m_t}) + ε).
 * Keys are scaled by 1/√DHQK. Differentiable w.r.t. q, k, v, i, f and the initial state (exact backward with the
 * stabilisers as constants, XLSTM_SPEC §4.6), one tape entry.
 * @param q [B, NH, S, DHQK] queries
 * @param k [B, NH, S, DHQK] keys
 * @param v [B, NH, S, DHV] values
 * @param i [B, NH, S] (or [B, NH, S, 1]) input-gate pre-activations ĩ
 * @param f [B, NH, S] (or [B, NH, S, 1]) forget-gate pre-activations f̃
 * @throws TypeError for non-float32 tensors, RangeError for inconsistent shapes or bad options
 * @example
 *   const { h, state } = ops.mlstm(q, k, v, i, f, { returnLastState: true });        // prefill
 *   const step = ops.mlstm(q1, k1, v1, i1, f1, { initialState: state, returnLastState: true }); // S = 1
 */
export function mlstm(q: Tensor, k: Tensor, v: Tensor, i: Tensor, f: Tensor, options: MlstmOptions = {}): MlstmOutput {
  for (const [name, t] of [["q", q], ["k", k], ["v", v], ["i", i], ["f", f]] as const) requireTensor("ops.mlstm", name, t, { cuda: true });
  requireOptions("ops.mlstm", "options", options);
  optionalNumber("ops.mlstm", "eps", options.eps);
  optionalString("ops.mlstm", "form", options.form);
  if (options.initialState != null && typeof options.initialState !== "object")
    throw new TypeError(`ops.mlstm: initialState must be an object { c, n, m } (or null), got ${kindOf(options.initialState)}`);
  const st = options.initialState ?? null;
  for (const [name, t] of [["q", q], ["k", k], ["v", v], ["i", i], ["f", f], ["initialState.c", st?.c], ["initialState.n", st?.n], ["initialState.m", st?.m]] as const) {
    if (st && !t) throw new TypeError(`ops.mlstm: ${name} is missing (initialState needs c, n and m)`);
    if (t && !(t instanceof Tensor)) throw new TypeError(`ops.mlstm: ${name} must be a Tensor`);
    if (t) requireTensor("ops.mlstm", name, t, { cuda: true });
    if (t && t.dtype !== "float32") throw new TypeError(`ops.mlstm: ${name} must be float32, got ${t.dtype}`);
  }
  if (q.ndim !== 4) throw shapeError("ops.mlstm: q", q.shape, "[B, NH, S, DHQK]");
  const [B, NH, S, DK] = q.shape;
  if (B < 1 || NH < 1 || S < 1 || DK < 1) throw new RangeError(`ops.mlstm: q has shape ${formatShape(q.shape)}; every size must be at least 1`);
  checkShape("k", k, [B, NH, S, DK], "[B, NH, S, DHQK] like q");
  if (v.ndim !== 4 || v.shape[0] !== B || v.shape[1] !== NH || v.shape[2] !== S || v.shape[3] < 1)
    throw shapeError("ops.mlstm: v", v.shape, `[B, NH, S, DHV] = [${B}, ${NH}, ${S}, DHV]`);
  const DV = v.shape[3];
  checkShape("i", i, [B, NH, S], "[B, NH, S] (or [B, NH, S, 1])", true);
  checkShape("f", f, [B, NH, S], "[B, NH, S] (or [B, NH, S, 1])", true);
  if (st) {
    checkShape("initialState.c", st.c, [B, NH, DK, DV], "[B, NH, DHQK, DHV]");
    checkShape("initialState.n", st.n, [B, NH, DK], "[B, NH, DHQK]", true);
    checkShape("initialState.m", st.m, [B, NH], "[B, NH]", true);
  }
  const form = options.form ?? "auto";
  if (!FORMS.includes(form)) throw new RangeError(`ops.mlstm: form must be one of ${FORMS.join(", ")}, got ${String(form)}`);
  const chunkSize = resolveChunkSize("ops.mlstm", options.chunkSize, 64, DK, DV, q.device);
  const eps = options.eps ?? 1e-6;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new RangeError(`ops.mlstm: eps must be a finite number >= 0, got ${eps}`);

  // which kernel: recurrent, or chunkwise with (chunk, parallelInit)
  const recurrent = form === "recurrent" || (form === "auto" && st !== null && S <= 8);
  const chunk = form === "parallel" ? S : Math.min(chunkSize, S);
  const parallelInit = form === "parallel" || form === "auto";

  const inputs = [q, k, v, i, f, st?.c ?? null, st?.n ?? null, st?.m ?? null];
  const grad = needsGrad(inputs);
  const tapeName = `mlstm(${recurrent ? "recurrent" : form === "parallel" ? "parallel" : "chunkwise"})`;
  requireSameDevice("ops.mlstm", [["q", q], ["k", k], ["v", v], ["i", i], ["f", f], ["initialState.c", st?.c], ["initialState.n", st?.n], ["initialState.m", st?.m]]);
  if (q.device === "cuda") return mlstmCuda(q, k, v, i, f, st, recurrent, chunk, parallelInit, eps, !!options.returnLastState, grad, tapeName);
  const bh = B * NH;
  const h = zeroedF32(bh * S * DV), cl = zeroedF32(bh * DK * DV), nl = zeroedF32(bh * DK), ml = new Float32Array(bh);
  const c0 = st ? st.c.f32() : null, n0 = st ? st.n.f32() : null, m0 = st ? st.m.f32() : null;
  let saved: Float32Array | null = null;
  if (recurrent) {
    if (grad) saved = zeroedF32(native.mlstmRecurrentSavedSize(B, NH, S, DK, DV));
    native.mlstmRecurrentForward(h, cl, nl, ml, saved, q.f32(), k.f32(), v.f32(), i.f32(), f.f32(), c0, n0, m0, B, NH, S, DK, DV, eps);
  } else {
    if (grad) saved = zeroedF32(native.mlstmChunkwiseSavedSize(B, NH, S, DK, DV, chunk));
    native.mlstmChunkwiseForward(h, cl, nl, ml, saved, q.f32(), k.f32(), v.f32(), i.f32(), f.f32(), c0, n0, m0, B, NH, S, DK, DV, chunk, eps, parallelInit);
  }
  const out: MlstmOutput = { h: new Tensor(h, [B, NH, S, DV]) };
  const outputs = [out.h];
  if (options.returnLastState) {
    out.state = { c: new Tensor(cl, [B, NH, DK, DV]), n: new Tensor(nl, [B, NH, DK]), m: new Tensor(ml, [B, NH]) };
    outputs.push(out.state.c, out.state.n);
  }
  if (!grad) return out;
  const savedBuf = saved!;
  record(tapeName, inputs, outputs, ([gh, gc, gn]) => {
    const dq = zeroedF32(q.numel), dk = zeroedF32(k.numel), dv = zeroedF32(v.numel);
    const di = zeroedF32(bh * S), df = zeroedF32(bh * S);
    const wantState = st !== null && (st.c.requiresGrad || st.n.requiresGrad || st.m.requiresGrad);
    const dc0 = wantState ? zeroedF32(bh * DK * DV) : null, dn0 = wantState ? zeroedF32(bh * DK) : null, dm0 = wantState ? new Float32Array(bh) : null;
    const dh = gh ? gh.f32() : zeroedF32(bh * S * DV);
    const dcl = gc ? gc.f32() : null, dnl = gn ? gn.f32() : null;
    if (recurrent) native.mlstmRecurrentBackward(dq, dk, dv, di, df, dc0, dn0, dm0, savedBuf, dh, dcl, dnl, q.f32(), k.f32(), v.f32(), i.f32(), f.f32(), B, NH, S, DK, DV, eps);
    else native.mlstmChunkwiseBackward(dq, dk, dv, di, df, dc0, dn0, dm0, savedBuf, h, dh, dcl, dnl, q.f32(), k.f32(), v.f32(), i.f32(), f.f32(), B, NH, S, DK, DV, chunk, eps);
    return [
      new Tensor(dq, q.shape),
      new Tensor(dk, k.shape),
      new Tensor(dv, v.shape),
      new Tensor(di, i.shape),
      new Tensor(df, f.shape),
      dc0 ? new Tensor(dc0, st!.c.shape) : null,
      dn0 ? new Tensor(dn0, st!.n.shape) : null,
      dm0 ? new Tensor(dm0, st!.m.shape) : null,
    ];
  });
  return out;
}
