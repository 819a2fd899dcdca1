// The mLSTM cell kernels on plain Float32Arrays (use case 2 of DESIGN.md; re-exported by lib/kernels.ts): chunkwise
// (and, with chunkSize >= S, parallel) and recurrent forms, forward and backward, no Tensor or autograd needed.
// Each call allocates its outputs; `*Async` variants run off the main thread on private copies of their inputs, taken
// when the call is made (the caller may modify, transfer or resize its arrays while the promise is pending). Layouts, the state convention and the stabiliser semantics: csrc/kernels/mlstm.h, XLSTM_SPEC §4.
//
// @example
//   import { kernels } from "xlstm";
//   const dims = { B: 1, NH: 4, S: 1024, DHQK: 64, DHV: 64 };
//   const fw = kernels.mlstmChunkwiseForward({ q, k, v, i, f, ...dims });   // q, k [B,NH,S,DHQK], i, f [B,NH,S]
//   const bw = kernels.mlstmChunkwiseBackward({ ...fw, q, k, v, i, f, dh, ...dims });
//   const step = kernels.mlstmRecurrentForward({ q: q1, k: k1, v: v1, i: i1, f: f1, c0: fw.c, n0: fw.n, m0: fw.m, ...dims, S: 1 });
import { inputs, withPooledInputs } from "./kernels-inputs";
import { native } from "./native";

export interface MlstmDims {
  /** batch */
  B: number;
  /** heads */
  NH: number;
  /** time steps */
  S: number;
  /** query/key head dim */
  DHQK: number;
  /** value head dim */
  DHV: number;
}

export interface MlstmKernelInputs extends MlstmDims {
  /** [B, NH, S, DHQK] */
  q: Float32Array;
  /** [B, NH, S, DHQK] */
  k: Float32Array;
  /** [B, NH, S, DHV] */
  v: Float32Array;
  /** [B, NH, S] input-gate pre-activations ĩ */
  i: Float32Array;
  /** [B, NH, S] forget-gate pre-activations f̃ */
  f: Float32Array;
  /** normaliser epsilon, default 1e-6 */
  eps?: number;
}

export interface MlstmKernelForwardArgs extends MlstmKernelInputs {
  /** [B, NH, DHQK, DHV] initial C (recurrent-form scaling); c0, n0, m0 omitted = the zero state */
  c0?: Float32Array | null;
  /** [B, NH, DHQK] */
  n0?: Float32Array | null;
  /** [B, NH] */
  m0?: Float32Array | null;
  /** Keep what the backward needs (default true); false for inference. */
  saveForBackward?: boolean;
}

export interface MlstmChunkwiseForwardArgs extends MlstmKernelForwardArgs {
  /** chunk length L (default 64); chunkSize >= S is the parallel form. S need not be a multiple. */
  chunkSize?: number;
  /** Zero state with parallel_stabilized_simple's stabiliser (μ_t = max_s Λ_ts) instead of m_0 = 0. Default false. */
  parallelInit?: boolean;
}

export interface MlstmForwardResult {
  /** [B, NH, S, DHV] */
  h: Float32Array;
  /** [B, NH, DHQK, DHV] final C */
  c: Float32Array;
  /** [B, NH, DHQK] final n */
  n: Float32Array;
  /** [B, NH] final m */
  m: Float32Array;
  /** what the backward needs (null when saveForBackward is false) */
  saved: Float32Array | null;
}

export interface MlstmKernelBackwardArgs extends MlstmKernelInputs {
  /** from the forward */
  saved: Float32Array | null;
  /** [B, NH, S, DHV] cotangent of h */
  dh: Float32Array;
  /** [B, NH, DHQK, DHV] cotangent of the final C (omitted = 0) */
  dc?: Float32Array | null;
  /** [B, NH, DHQK] cotangent of the final n (omitted = 0) */
  dn?: Float32Array | null;
}

export interface MlstmChunkwiseBackwardArgs extends MlstmKernelBackwardArgs {
  /** [B, NH, S, DHV] the forward's output */
  h: Float32Array;
  /** the forward's chunk size (default 64) */
  chunkSize?: number;
}

export interface MlstmBackwardResult {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  /** [B, NH, S] */
  di: Float32Array;
  /** [B, NH, S] */
  df: Float32Array;
  /** [B, NH, DHQK, DHV] gradient of the initial C */
  dc0: Float32Array;
  /** [B, NH, DHQK] */
  dn0: Float32Array;
  /** [B, NH] exact ⟨∂C_0, C_0⟩ + ⟨∂n_0, n_0⟩ */
  dm0: Float32Array;
}

// ---- inputs of the Promise variants (copied when the call is made: see lib/kernels-inputs.ts) -------------------

const FORWARD_INPUTS = ["q", "k", "v", "i", "f", "c0", "n0", "m0"] as const;
const BACKWARD_INPUTS = ["q", "k", "v", "i", "f", "saved", "h", "dh", "dc", "dn"] as const;

function sizes(a: MlstmDims) {
  for (const key of ["B", "NH", "S", "DHQK", "DHV"] as const)
    if (!Number.isInteger(a[key]) || a[key] < 1) throw new RangeError(`kernels: ${key} must be a positive integer, got ${a[key]}`);
  const bh = a.B * a.NH;
  return { qk: bh * a.S * a.DHQK, vh: bh * a.S * a.DHV, gate: bh * a.S, c: bh * a.DHQK * a.DHV, n: bh * a.DHQK, m: bh };
}

function forwardOut(a: MlstmKernelForwardArgs, savedLen: () => number): MlstmForwardResult {
  const n = sizes(a);
  return {
    h: new Float32Array(n.vh),
    c: new Float32Array(n.c),
    n: new Float32Array(n.n),
    m: new Float32Array(n.m),
    saved: a.saveForBackward === false ? null : new Float32Array(savedLen()),
  };
}

function backwardOut(a: MlstmKernelBackwardArgs): MlstmBackwardResult {
  const n = sizes(a);
  return {
    dq: new Float32Array(n.qk),
    dk: new Float32Array(n.qk),
    dv: new Float32Array(n.vh),
    di: new Float32Array(n.gate),
    df: new Float32Array(n.gate),
    dc0: new Float32Array(n.c),
    dn0: new Float32Array(n.n),
    dm0: new Float32Array(n.m),
  };
}

function needSaved(a: MlstmKernelBackwardArgs): Float32Array {
  if (!a.saved) throw new TypeError("kernels: saved is null; run the forward with saveForBackward (the default)");
  return a.saved;
}

const chunkOf = (a: { chunkSize?: number }) => a.chunkSize ?? 64;
const epsOf = (a: { eps?: number }) => a.eps ?? 1e-6;

function cwForwardArgs(a: MlstmChunkwiseForwardArgs, o: MlstmForwardResult) {
  return [o.h, o.c, o.n, o.m, o.saved, a.q, a.k, a.v, a.i, a.f, a.c0 ?? null, a.n0 ?? null, a.m0 ?? null, a.B, a.NH, a.S, a.DHQK, a.DHV, chunkOf(a), epsOf(a), !!a.parallelInit] as const;
}

function cwBackwardArgs(a: MlstmChunkwiseBackwardArgs, o: MlstmBackwardResult) {
  return [o.dq, o.dk, o.dv, o.di, o.df, o.dc0, o.dn0, o.dm0, needSaved(a), a.h, a.dh, a.dc ?? null, a.dn ?? null, a.q, a.k, a.v, a.i, a.f, a.B, a.NH, a.S, a.DHQK, a.DHV, chunkOf(a), epsOf(a)] as const;
}

function recForwardArgs(a: MlstmKernelForwardArgs, o: MlstmForwardResult) {
  return [o.h, o.c, o.n, o.m, o.saved, a.q, a.k, a.v, a.i, a.f, a.c0 ?? null, a.n0 ?? null, a.m0 ?? null, a.B, a.NH, a.S, a.DHQK, a.DHV, epsOf(a)] as const;
}

function recBackwardArgs(a: MlstmKernelBackwardArgs, o: MlstmBackwardResult) {
  return [o.dq, o.dk, o.dv, o.di, o.df, o.dc0, o.dn0, o.dm0, needSaved(a), a.dh, a.dc ?? null, a.dn ?? null, a.q, a.k, a.v, a.i, a.f, a.B, a.NH, a.S, a.DHQK, a.DHV, epsOf(a)] as const;
}

const cwSaved = (a: MlstmChunkwiseForwardArgs) => () => native.mlstmChunkwiseSavedSize(a.B, a.NH, a.S, a.DHQK, a.DHV, chunkOf(a));
const recSaved = (a: MlstmKernelForwardArgs) => () => native.mlstmRecurrentSavedSize(a.B, a.NH, a.S, a.DHQK, a.DHV);

/** mLSTM chunkwise form (XLSTM_SPEC §4.5; chunkSize >= S: the parallel form §4.4), forward. */
export function mlstmChunkwiseForward(a: MlstmChunkwiseForwardArgs): MlstmForwardResult {
  a = inputs("mlstmChunkwiseForward", a, FORWARD_INPUTS);
  const o = forwardOut(a, cwSaved(a));
  native.mlstmChunkwiseForward(...cwForwardArgs(a, o));
  return o;
}

/** mlstmChunkwiseForward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function mlstmChunkwiseForwardAsync(a: MlstmChunkwiseForwardArgs): Promise<MlstmForwardResult> {
  return withPooledInputs("mlstmChunkwiseForwardAsync", a, FORWARD_INPUTS, async (a) => {
    const o = forwardOut(a, cwSaved(a));
    await native.mlstmChunkwiseForwardAsync(...cwForwardArgs(a, o));
    return o;
  });
}

/** Gradients of mlstmChunkwiseForward (exact mode of XLSTM_SPEC §4.6; the L×L tiles are recomputed). */
export function mlstmChunkwiseBackward(a: MlstmChunkwiseBackwardArgs): MlstmBackwardResult {
  a = inputs("mlstmChunkwiseBackward", a, BACKWARD_INPUTS);
  const o = backwardOut(a);
  native.mlstmChunkwiseBackward(...cwBackwardArgs(a, o));
  return o;
}

/** mlstmChunkwiseBackward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function mlstmChunkwiseBackwardAsync(a: MlstmChunkwiseBackwardArgs): Promise<MlstmBackwardResult> {
  return withPooledInputs("mlstmChunkwiseBackwardAsync", a, BACKWARD_INPUTS, async (a) => {
    const o = backwardOut(a);
    await native.mlstmChunkwiseBackwardAsync(...cwBackwardArgs(a, o));
    return o;
  });
}

/** mLSTM recurrent step form (XLSTM_SPEC §4.3) over S steps from the given (or zero) state, forward. */
export function mlstmRecurrentForward(a: MlstmKernelForwardArgs): MlstmForwardResult {
  a = inputs("mlstmRecurrentForward", a, FORWARD_INPUTS);
  const o = forwardOut(a, recSaved(a));
  native.mlstmRecurrentForward(...recForwardArgs(a, o));
  return o;
}

/** mlstmRecurrentForward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function mlstmRecurrentForwardAsync(a: MlstmKernelForwardArgs): Promise<MlstmForwardResult> {
  return withPooledInputs("mlstmRecurrentForwardAsync", a, FORWARD_INPUTS, async (a) => {
    const o = forwardOut(a, recSaved(a));
    await native.mlstmRecurrentForwardAsync(...recForwardArgs(a, o));
    return o;
  });
}

/** Gradients of mlstmRecurrentForward (BPTT over the steps, recomputing states from checkpoints). */
export function mlstmRecurrentBackward(a: MlstmKernelBackwardArgs): MlstmBackwardResult {
  a = inputs("mlstmRecurrentBackward", a, BACKWARD_INPUTS);
  const o = backwardOut(a);
  native.mlstmRecurrentBackward(...recBackwardArgs(a, o));
  return o;
}

/** mlstmRecurrentBackward off the main thread (a Promise); the inputs are copied when the call is made. */
export async function mlstmRecurrentBackwardAsync(a: MlstmKernelBackwardArgs): Promise<MlstmBackwardResult> {
  return withPooledInputs("mlstmRecurrentBackwardAsync", a, BACKWARD_INPUTS, async (a) => {
    const o = backwardOut(a);
    await native.mlstmRecurrentBackwardAsync(...recBackwardArgs(a, o));
    return o;
  });
}
