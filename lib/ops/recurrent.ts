// Differentiable fused recurrences (ops layer): the whole sLSTM / LSTM sequence is ONE tape entry whose backward
// is the native BPTT kernel (csrc/kernels/recurrent.h; XLSTM_SPEC §2, §3).
import { requireSameDevice } from "./cuda";
import { recurrentCuda } from "./cuda-rnn";
import { record } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { formatShape } from "../shape";
import { Tensor, uninitF32, zeroedF32 } from "../tensor";
import { optionalTensor, requireOptions, requireTensor } from "./args";
import { transpose } from "./shape";

export interface RecurrentOutput {
  /** [B, S, H] the hidden output of every step */
  y: Tensor;
  /** [NS, B, H] the final state ((h, c, n, m) for sLSTM, (h, c) for LSTM); differentiable */
  state: Tensor;
  /** [NS, S, B, H] the state after every step (not differentiable) */
  states: Tensor;
}

export interface SlstmOptions {
  /** Return the exact ∂m_0 (the vanilla backend's autograd) instead of 0 (the reference CUDA convention). Default false. */
  exactM0Grad?: boolean;
}

export interface LstmOptions {
  /**
   * R is given per head transposed, [NH, 4*DH, DH] (element [h, g*DH + k, j]) instead of [NH, DH, 4*DH]. For one
   * head this is torch.nn.LSTM's weight_hh [4H, H] as it is (reshaped to [1, 4H, H]): no transpose per call, and
   * the CPU backward's weight-gradient GEMM gets its better shape. Default false.
   */
  transposedR?: boolean;
}

function check(what: string, x: Tensor, R: Tensor, bias: Tensor, state0: Tensor | null | undefined, ns: number, transposedR: boolean) {
  requireTensor(what, "x", x, { cuda: true });
  requireTensor(what, "R", R, { cuda: true });
  requireTensor(what, "bias", bias, { cuda: true });
  optionalTensor(what, "state0", state0, { cuda: true });
  requireSameDevice(what, [["x", x], ["R", R], ["bias", bias], ["state0", state0]]);
  for (const [n, t] of [["x", x], ["R", R], ["bias", bias], ["state0", state0]] as const)
    if (t && t.dtype !== "float32") throw new TypeError(`${what}: ${n} must be float32, got ${t.dtype}`);
  if (transposedR) {
    if (R.ndim !== 3 || R.shape[1] !== 4 * R.shape[2]) throw shapeError(`${what}: R`, R.shape, "[NH, 4*DH, DH] (options.transposedR)");
  } else if (R.ndim !== 3 || R.shape[2] !== 4 * R.shape[1]) throw shapeError(`${what}: R`, R.shape, "[NH, DH, 4*DH] (the cuda layout; convert vanilla kernels with slstmParamsToInternal)");
  const NH = R.shape[0], DH = transposedR ? R.shape[2] : R.shape[1];
  const H = NH * DH;
  if (x.ndim !== 3 || x.shape[2] !== 4 * H) throw shapeError(`${what}: x`, x.shape, `[B, S, 4*NH*DH] = [B, S, ${4 * H}]`);
  const [B, S] = x.shape;
  if (B < 1 || S < 1) throw new RangeError(`${what}: x has shape ${formatShape(x.shape)}; B and S must be at least 1`);
  if (bias.ndim !== 1 || bias.shape[0] !== 4 * H) throw shapeError(`${what}: bias`, bias.shape, `[4*NH*DH] = [${4 * H}]`);
  if (state0 && (state0.ndim !== 3 || state0.shape[0] !== ns || state0.shape[1] !== B || state0.shape[2] !== H))
    throw shapeError(`${what}: state0`, state0.shape, `[${ns}, B, H] = [${ns}, ${B}, ${H}]`);
  return { B, S, NH, DH, H };
}

function run(kind: "slstm" | "lstm", x: Tensor, R: Tensor, bias: Tensor, state0: Tensor | null | undefined, exact: boolean, transposedR = false): RecurrentOutput {
  const ns = kind === "slstm" ? 4 : 2;
  const what = `ops.${kind}`;
  const { B, S, NH, DH, H } = check(what, x, R, bias, state0, ns, transposedR);
  // the CUDA kernels take the [NH, DH, 4DH] layout only: transpose there (differentiable)
  if (x.device === "cuda") return recurrentCuda(kind, x, transposedR ? transpose(R, 1, 2) : R, bias, state0 ?? null, exact, B, S, NH, DH);
  // the kernels write every element of their outputs (backward with =): no zero fill (uninitF32)
  const y = uninitF32(B * S * H), states = uninitF32(ns * S * B * H), gates = uninitF32(B * S * 4 * H);
  const s0 = state0 ? state0.f32() : null;
  (kind === "slstm" ? native.slstmForward : native.lstmForward)(y, states, gates, x.f32(), s0, R.f32(), bias.f32(), B, S, NH, DH, transposedR);
  // final state = states[:, S-1]
  const fin = zeroedF32(ns * B * H);
  for (let s = 0; s < ns; ++s) fin.set(states.subarray((s * S + S - 1) * B * H, (s * S + S) * B * H), s * B * H);
  const out = { y: new Tensor(y, [B, S, H]), state: new Tensor(fin, [ns, B, H]), states: new Tensor(states, [ns, S, B, H]) };
  record(kind, [x, R, bias, state0 ?? null], [out.y, out.state], ([gy, gstate]) => {
    const dx = uninitF32(B * S * 4 * H), dR = uninitF32(NH * DH * 4 * DH), db = uninitF32(4 * H);
    const ds0 = state0 && state0.requiresGrad ? uninitF32(ns * B * H) : null;
    const dy = gy ? gy.f32() : zeroedF32(B * S * H);
    const dfin = gstate ? gstate.f32() : null;
    if (kind === "slstm") native.slstmBackward(dx, dR, db, ds0, gates, states, dy, dfin, s0, R.f32(), B, S, NH, DH, exact, transposedR);
    else native.lstmBackward(dx, dR, db, ds0, gates, states, dy, dfin, s0, R.f32(), B, S, NH, DH, transposedR);
    return [new Tensor(dx, x.shape), new Tensor(dR, R.shape), new Tensor(db, bias.shape), ds0 ? new Tensor(ds0, [ns, B, H]) : null];
  });
  return out;
}

/**
 * The sLSTM cell over a whole sequence (XLSTM_SPEC §2): stabilised exponential gating with normaliser n and
 * stabiliser m, heads with block-diagonal recurrent weights.
 * @param x [B, S, 4H] gate inputs, last axis (gate i,f,z,o; head; unit)
 * @param R [NH, DH, 4DH] recurrent kernel in the cuda layout (see nn/slstm-layout.ts for conversions)
 * @param bias [4H] in (gate, head, unit) order
 * @param state0 [4, B, H] initial (h, c, n, m); omitted = zeros
 * @throws TypeError for non-float32 tensors, RangeError for inconsistent shapes
 */
export function slstm(x: Tensor, R: Tensor, bias: Tensor, state0?: Tensor | null, options: SlstmOptions = {}): RecurrentOutput {
  return run("slstm", x, R, bias, state0, !!requireOptions("ops.slstm", "options", options).exactM0Grad);
}

/**
 * The classic LSTM cell over a whole sequence (XLSTM_SPEC §3), same layouts as `slstm` with a (h, c) state
 * [2, B, H]. With NH = 1 it is torch.nn.LSTM's recurrence (R = weight_hhᵀ, bias = b_ih + b_hh; or, with
 * options.transposedR, R = weight_hh reshaped to [1, 4H, H]).
 */
export function lstm(x: Tensor, R: Tensor, bias: Tensor, state0?: Tensor | null, options: LstmOptions = {}): RecurrentOutput {
  const o = requireOptions("ops.lstm", "options", options);
  if (o.transposedR !== undefined && typeof o.transposedR !== "boolean") throw new TypeError(`ops.lstm: options.transposedR must be a boolean, got ${typeof o.transposedR}`);
  return run("lstm", x, R, bias, state0, false, !!o.transposedR);
}
