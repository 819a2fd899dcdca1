// The low-level kernel API (use case 2 of DESIGN.md): the fused recurrences on plain Float32Arrays with explicit
// sizes, no Tensor or autograd needed. Each call allocates its outputs; `*Async` variants run off the main thread
// on private copies of their inputs, taken when the call is made: the caller may modify, transfer (detach) or
// resize its arrays while the promise is pending without affecting the result. Layouts: see
// csrc/kernels/recurrent.h.
//
// @example
//   import { kernels } from "xlstm";
//   const dims = { B: 2, S: 16, NH: 4, DH: 8 };           // H = 32
//   const fw = kernels.slstmForward({ x, R, bias, ...dims }); // x: [B,S,4H], R: [NH,DH,4DH], bias: [4H]
//   const bw = kernels.slstmBackward({ ...fw, x, R, dy, ...dims });
import { inputs, withPooledInputs } from "./kernels-inputs";
import { native } from "./native";

export interface RecurrentDims {
  /** batch */
  B: number;
  /** time steps */
  S: number;
  /** heads */
  NH: number;
  /** head dim (H = NH*DH) */
  DH: number;
  /**
   * R (and the backward's dR) per head transposed: [NH, 4*DH, DH], element [h, g*DH + k, j] (for one head,
   * torch.nn.LSTM's weight_hh [4H, H] as it is). Default false: [NH, DH, 4*DH].
   */
  rTransposed?: boolean;
}

export interface RecurrentForwardArgs extends RecurrentDims {
  /** [B, S, 4H] gate inputs, last axis (gate i,f,z,o; head; unit) */
  x: Float32Array;
  /** [NH, DH, 4*DH] recurrent kernel, element [h, j, g*DH + k] (the reference "cuda" layout; see rTransposed) */
  R: Float32Array;
  /** [4H] in (gate, head, unit) order */
  bias: Float32Array;
  /** [NS, B, H] initial state (NS = 4 for sLSTM: h, c, n, m; 2 for LSTM: h, c); omitted = zeros */
  state0?: Float32Array | null;
}

export interface RecurrentForwardResult {
  /** [B, S, H] outputs h_t */
  y: Float32Array;
  /** [NS, S, B, H] the state after every step (the last step is the final state) */
  states: Float32Array;
  /**
   * [B, S, 4H] saved for backward: the sLSTM's gate pre-activations p = x + R·h_{t-1} + bias, the LSTM's gate
   * activations (σ(p_i), σ(p_f), tanh(p_z), σ(p_o)) of them
   */
  gates: Float32Array;
}

export interface RecurrentBackwardArgs extends RecurrentDims {
  gates: Float32Array;
  states: Float32Array;
  R: Float32Array;
  state0?: Float32Array | null;
  /** [B, S, H] cotangent of y */
  dy: Float32Array;
  /** [NS, B, H] cotangent of the final state (its m part is ignored) */
  dstateFinal?: Float32Array | null;
  /** sLSTM only: return the exact ∂m_0 (vanilla backend) instead of 0 (CUDA convention). Default false. */
  exactM0Grad?: boolean;
}

export interface RecurrentBackwardResult {
  /** [B, S, 4H] */
  dx: Float32Array;
  /** [NH, DH, 4DH] ([NH, 4DH, DH] with rTransposed) */
  dR: Float32Array;
  /** [4H] */
  dbias: Float32Array;
  /** [NS, B, H] */
  dstate0: Float32Array;
}

// ---- inputs of the Promise variants (copied when the call is made: see lib/kernels-inputs.ts) -------------------

const FORWARD_INPUTS = ["x", "R", "bias", "state0"] as const;
const BACKWARD_INPUTS = ["gates", "states", "R", "state0", "dy", "dstateFinal"] as const;

function sizes(a: RecurrentDims, ns: number) {
  for (const k of ["B", "S", "NH", "DH"] as const)
    if (!Number.isInteger(a[k]) || a[k] < 1) throw new RangeError(`kernels: ${k} must be a positive integer, got ${a[k]}`);
  const H = a.NH * a.DH;
  return { H, y: a.B * a.S * H, states: ns * a.S * a.B * H, gates: a.B * a.S * 4 * H, r: a.NH * a.DH * 4 * a.DH, s0: ns * a.B * H };
}

function forwardOut(a: RecurrentForwardArgs, ns: number): RecurrentForwardResult {
  const n = sizes(a, ns);
  return { y: new Float32Array(n.y), states: new Float32Array(n.states), gates: new Float32Array(n.gates) };
}

function backwardOut(a: RecurrentBackwardArgs, ns: number): RecurrentBackwardResult {
  const n = sizes(a, ns);
  return { dx: new Float32Array(n.gates), dR: new Float32Array(n.r), dbias: new Float32Array(4 * n.H), dstate0: new Float32Array(n.s0) };
}

/** sLSTM forward over a whole sequence (XLSTM_SPEC §2.3). */
export function slstmForward(a: RecurrentForwardArgs): RecurrentForwardResult {
  a = inputs("slstmForward", a, FORWARD_INPUTS);
  const o = forwardOut(a, 4);
  native.slstmForward(o.y, o.states, o.gates, a.x, a.state0 ?? null, a.R, a.bias, a.B, a.S, a.NH, a.DH, !!a.rTransposed);
  return o;
}

/** slstmForward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function slstmForwardAsync(a: RecurrentForwardArgs): Promise<RecurrentForwardResult> {
  return withPooledInputs("slstmForwardAsync", a, FORWARD_INPUTS, async (a) => {
    const o = forwardOut(a, 4);
    await native.slstmForwardAsync(o.y, o.states, o.gates, a.x, a.state0 ?? null, a.R, a.bias, a.B, a.S, a.NH, a.DH, !!a.rTransposed);
    return o;
  });
}

/** sLSTM backward (BPTT, reference CUDA convention, XLSTM_SPEC §2.4). */
export function slstmBackward(a: RecurrentBackwardArgs): RecurrentBackwardResult {
  a = inputs("slstmBackward", a, BACKWARD_INPUTS);
  const o = backwardOut(a, 4);
  native.slstmBackward(o.dx, o.dR, o.dbias, o.dstate0, a.gates, a.states, a.dy, a.dstateFinal ?? null, a.state0 ?? null, a.R, a.B, a.S, a.NH, a.DH, !!a.exactM0Grad, !!a.rTransposed);
  return o;
}

/** slstmBackward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function slstmBackwardAsync(a: RecurrentBackwardArgs): Promise<RecurrentBackwardResult> {
  return withPooledInputs("slstmBackwardAsync", a, BACKWARD_INPUTS, async (a) => {
    const o = backwardOut(a, 4);
    await native.slstmBackwardAsync(o.dx, o.dR, o.dbias, o.dstate0, a.gates, a.states, a.dy, a.dstateFinal ?? null, a.state0 ?? null, a.R, a.B, a.S, a.NH, a.DH, !!a.exactM0Grad, !!a.rTransposed);
    return o;
  });
}

/** Classic LSTM forward over a whole sequence (XLSTM_SPEC §3; state (h, c)). */
export function lstmForward(a: RecurrentForwardArgs): RecurrentForwardResult {
  a = inputs("lstmForward", a, FORWARD_INPUTS);
  const o = forwardOut(a, 2);
  native.lstmForward(o.y, o.states, o.gates, a.x, a.state0 ?? null, a.R, a.bias, a.B, a.S, a.NH, a.DH, !!a.rTransposed);
  return o;
}

/** lstmForward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function lstmForwardAsync(a: RecurrentForwardArgs): Promise<RecurrentForwardResult> {
  return withPooledInputs("lstmForwardAsync", a, FORWARD_INPUTS, async (a) => {
    const o = forwardOut(a, 2);
    await native.lstmForwardAsync(o.y, o.states, o.gates, a.x, a.state0 ?? null, a.R, a.bias, a.B, a.S, a.NH, a.DH, !!a.rTransposed);
    return o;
  });
}

/** Classic LSTM backward. */
export function lstmBackward(a: RecurrentBackwardArgs): RecurrentBackwardResult {
  a = inputs("lstmBackward", a, BACKWARD_INPUTS);
  const o = backwardOut(a, 2);
  native.lstmBackward(o.dx, o.dR, o.dbias, o.dstate0, a.gates, a.states, a.dy, a.dstateFinal ?? null, a.state0 ?? null, a.R, a.B, a.S, a.NH, a.DH, !!a.rTransposed);
  return o;
}

/** lstmBackward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function lstmBackwardAsync(a: RecurrentBackwardArgs): Promise<RecurrentBackwardResult> {
  return withPooledInputs("lstmBackwardAsync", a, BACKWARD_INPUTS, async (a) => {
    const o = backwardOut(a, 2);
    await native.lstmBackwardAsync(o.dx, o.dR, o.dbias, o.dstate0, a.gates, a.states, a.dy, a.dstateFinal ?? null, a.state0 ?? null, a.R, a.B, a.S, a.NH, a.DH, !!a.rTransposed);
    return o;
  });
}
export * from "./kernels-mlstm";
