// xLSTM Large, the mLSTM-only architecture of the 7B model (modules layer; XLSTM_SPEC §10, the reference's
// xlstm/xlstm_large/model.py). Two classes:
//   xLSTMLarge         the trainable model: float32 parameters under the reference's exact state_dict keys, either
//                      weight mode ("single" or "fused"; a checkpoint in the other mode is converted on load), every
//                      op on the tape (train mode = chunkwise mLSTM with gradients), and the reference's inference
//                      schedule (chunkwise prefix, halving chunk sizes, recurrent rest; S = 1 a recurrent step).
//                      setWeightDtype("bfloat16") keeps its matrix weights as bfloat16 for inference (how it runs on
//                      the GPU: loadModel(..., { device: "cuda" })), through ops.linear / ops.embedding's bf16 paths.
//   xLSTMLargeDecoder  inference only: weights packed once (bfloat16 or float32), four products per block (q, k, v,
//                      o and both gates in one; gate and up in one; out_proj; proj_down); the whole forward is one
//                      native call over them (csrc/kernels/large_decoder.h: bf16 kernels, the mLSTM kernels, norms
//                      and head split in C++), forwardAsync the same on a native worker thread. Built from a model, a
//                      state_dict or a (sharded) checkpoint without ever holding float32 weights, so a 7B checkpoint
//                      fits in ~14 GB as bfloat16.
// Both take and return the recurrent state explicitly, in the kernel library's convention (XLSTM_SPEC §4.3: the
// query is scaled by DK^-1/2, C and n are √DK times the small model's, m is the same):
//   { "<block>": { c [B, NH, DK, DV], n [B, NH, DK], m [B, NH, 1] } }   (float32; zero state C = n = 0, m = 0)
// Unlike the reference, a state passed in is never modified: a new one is returned (the reference copies into it;
// xLSTMLargeDecoder does too with { inPlace: true }, which decoding loops over large states want).
// Gradients: the mLSTM op's exact backward with the stabiliser m as a constant (XLSTM_SPEC §4.6); the reference
// differentiates through m as well, which only changes the ε term (the large_* fixtures' tolerances cover it).
//
// The mLSTM ops (lib/ops/mlstm.ts) keep the small model's convention; the library convention comes out exactly by
// feeding them q/√DK and k·√DK (their keys are divided by √DK again), so no state conversion is needed. For a
// power-of-two DK (every published config) both scalings are exact.
//
// bf16 accuracy (documented bounds, tested in test/58.large.test.ts). A decoder with bfloat16 weights differs from
// the float32 model
//   - with the same bf16-rounded weights, float32 activations: by float32 arithmetic only, <= 5e-4 · max|logit|
//     (measured 3e-5 .. 5e-5 on PyTorch-default-initialised models);
//   - with the unrounded float32 weights: by the weights' rounding (2^-9 relative each), <= 2e-2 · max|logit| on
//     PyTorch-default-initialised models (XLSTM_SPEC §11.2's bf16-vs-fp32 tolerance; measured 0.7 % .. 1.2 %, also
//     with activations rounded for AMX / AVX512_BF16). Ill-conditioned weights amplify it: the large_* fixtures' model
//     (lm_head x 20, gate weights x 12, soft caps saturated) shows 9 % of max|logit|, with the same greedy tokens.
// defines: xLSTMLargeConfig, XLSTM_LARGE_DEFAULTS, resolveLargeConfig, largeParameterShapes, largeParameterCount,
// LargeState, largeStateToTensors, largeStateFromTensors, inferenceSchedule, rmsNorm, softCap, convertLargeWeights,
// xLSTMLarge, readLargeConfig, loadLargeCheckpoint, xLSTMLargeDecoder, randomLargeStateDict
import * as fs from "fs";
import * as path from "path";
import { noGrad } from "../autograd";
import { shapeError } from "../errors";
import { FloatDType, openShardedCheckpoint, ShardedCheckpoint } from "../io/sharded";
import { native } from "../native";
import { permuteOrView } from "../ops/shape";
import * as ops from "../ops";
import { defaultGenerator, Generator } from "../rng";
import { formatShape } from "../shape";
import { bf16ToFloat, Tensor } from "../tensor";
import { Linear } from "./components";
import { kindOf, requireTensor } from "../ops/args";
import { MAX_CONFIG_DEPTH, MAX_CONFIG_DIM } from "./config-check";
import { optionalBool, optionalEnum, optionsArg } from "./entry-checks";
import { Module, StateDict } from "./module";

// ---- config ---------------------------------------------------------------------------------------------------

export type LargeMode = "train" | "train_with_padding" | "inference";
export type LargeWeightMode = "single" | "fused";

/** xLSTMLargeConfig with the reference's field names; all but the first four have the reference's defaults. */
export interface xLSTMLargeConfig {
  embedding_dim: number;
  num_heads: number;
  num_blocks: number;
  vocab_size: number;
  /** Biases on the projections and norms (the gate biases always exist). Default false. */
  use_bias?: boolean;
  /** Default 1e-6. */
  norm_eps?: number;
  /** Default true (reductions here are always at least float32). */
  norm_reduction_force_float32?: boolean;
  /** Default true. */
  add_out_norm?: boolean;
  /** Default 0.5. */
  qk_dim_factor?: number;
  /** Default 1.0. */
  v_dim_factor?: number;
  /** Recorded, not used: the kernels here are this package's (the same math). Default "chunkwise--triton_limit_chunk". */
  chunkwise_kernel?: string;
  /** Recorded, not used. Default "native_sequence__triton". */
  sequence_kernel?: string;
  /** Recorded, not used. Default "triton". */
  step_kernel?: string;
  /** Default "train". */
  mode?: LargeMode;
  /** Default 64. */
  chunk_size?: number;
  /** forward() returns (logits, state) by default. Default false. */
  return_last_states?: boolean;
  /** Recorded, not used (float32 compute; bf16 weights come from xLSTMLargeDecoder). Default "bfloat16". */
  autocast_kernel_dtype?: string;
  /** mLSTM normaliser epsilon. Default 1e-6. */
  eps?: number;
  /** Only "float32" is supported. Default "float32". */
  inference_state_dtype?: string;
  /** Default 2.6667. */
  ffn_proj_factor?: number;
  /** Default 64. */
  ffn_round_up_to_multiple_of?: number;
  /** null disables the cap. Default 15. */
  gate_soft_cap?: number | null;
  /** null disables the cap. Default 30. */
  output_logit_soft_cap?: number | null;
  /** Default "single". */
  weight_mode?: LargeWeightMode;
}

/** A config with every default filled in and the derived sizes (XLSTM_SPEC §10.1). */
export interface ResolvedLargeConfig extends Required<Omit<xLSTMLargeConfig, "gate_soft_cap" | "output_logit_soft_cap">> {
  gate_soft_cap: number | null;
  output_logit_soft_cap: number | null;
  /** int(E · qk_dim_factor) */
  qk_dim: number;
  /** int(E · v_dim_factor) */
  v_dim: number;
  /** DK = qk_dim / NH */
  qk_head_dim: number;
  /** DV = v_dim / NH */
  v_head_dim: number;
  /** floor((E · ffn_proj_factor + m − 1) / m) · m */
  ffn_up_proj_dim: number;
}

export const XLSTM_LARGE_DEFAULTS = Object.freeze({
  use_bias: false,
  norm_eps: 1e-6,
  norm_reduction_force_float32: true,
  add_out_norm: true,
  qk_dim_factor: 0.5,
  v_dim_factor: 1.0,
  chunkwise_kernel: "chunkwise--triton_limit_chunk",
  sequence_kernel: "native_sequence__triton",
  step_kernel: "triton",
  mode: "train" as LargeMode,
  chunk_size: 64,
  return_last_states: false,
  autocast_kernel_dtype: "bfloat16",
  eps: 1e-6,
  inference_state_dtype: "float32",
  ffn_proj_factor: 2.6667,
  ffn_round_up_to_multiple_of: 64,
  gate_soft_cap: 15.0 as number | null,
  output_logit_soft_cap: 30.0 as number | null,
  weight_mode: "single" as LargeWeightMode,
});

const DERIVED_KEYS = new Set(["qk_dim", "v_dim", "qk_head_dim", "v_head_dim", "ffn_up_proj_dim"]);
const CONFIG_KEYS = new Set(["embedding_dim", "num_heads", "num_blocks", "vocab_size", ...Object.keys(XLSTM_LARGE_DEFAULTS)]);

/**
 * Fill in defaults, check every field and compute the derived sizes.
 * @throws TypeError for a config that is not an object or an unknown field; RangeError naming the invalid field
 */
/** A config value for messages (JSON strings; String() for what JSON.stringify cannot print, e.g. BigInt). */
function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

export function resolveLargeConfig(config: xLSTMLargeConfig): ResolvedLargeConfig {
  const what = "xLSTMLargeConfig";
  if (typeof config !== "object" || config === null) throw new TypeError(`${what} must be an object, got ${config === null ? "null" : typeof config}`);
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (DERIVED_KEYS.has(k)) continue; // an already resolved config: recomputed below
    if (!CONFIG_KEYS.has(k)) throw new TypeError(`${what}: unknown field "${k}"`);
    given[k] = v;
  }
  const c = { ...XLSTM_LARGE_DEFAULTS, ...given } as ResolvedLargeConfig;
  for (const k of ["embedding_dim", "num_heads", "num_blocks", "vocab_size", "chunk_size", "ffn_round_up_to_multiple_of"] as const)
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`${what}.${k} must be a positive integer, got ${String(c[k])}`);
  // upper bounds: a config may come from an untrusted file, and these sizes are allocated before anything else
  for (const k of ["embedding_dim", "num_heads", "vocab_size", "chunk_size", "ffn_round_up_to_multiple_of"] as const)
    if (c[k] > MAX_CONFIG_DIM) throw new RangeError(`${what}.${k} must be at most ${MAX_CONFIG_DIM}, got ${c[k]}`);
  if (c.num_blocks > MAX_CONFIG_DEPTH) throw new RangeError(`${what}.num_blocks must be at most ${MAX_CONFIG_DEPTH}, got ${c.num_blocks}`);
  for (const k of ["qk_dim_factor", "v_dim_factor", "ffn_proj_factor"] as const)
    if (typeof c[k] !== "number" || !(c[k] > 0) || !Number.isFinite(c[k])) throw new RangeError(`${what}.${k} must be a positive number, got ${String(c[k])}`);
  for (const k of ["norm_eps", "eps"] as const)
    if (typeof c[k] !== "number" || !(c[k] >= 0) || !Number.isFinite(c[k])) throw new RangeError(`${what}.${k} must be a finite number >= 0, got ${String(c[k])}`);
  for (const k of ["gate_soft_cap", "output_logit_soft_cap"] as const)
    if (c[k] !== null && (typeof c[k] !== "number" || !(c[k]! > 0) || !Number.isFinite(c[k]))) throw new RangeError(`${what}.${k} must be a positive number or null, got ${String(c[k])}`);
  for (const k of ["use_bias", "norm_reduction_force_float32", "add_out_norm", "return_last_states"] as const)
    if (typeof c[k] !== "boolean") throw new TypeError(`${what}.${k} must be a boolean, got ${typeof c[k]}`);
  if (!["train", "train_with_padding", "inference"].includes(c.mode)) throw new RangeError(`${what}.mode must be "train", "train_with_padding" or "inference", got ${show(c.mode)}`);
  if (!["single", "fused"].includes(c.weight_mode)) throw new RangeError(`${what}.weight_mode must be "single" or "fused", got ${show(c.weight_mode)}`);
  if (c.inference_state_dtype !== "float32") throw new RangeError(`${what}.inference_state_dtype: only "float32" states are supported, got ${show(c.inference_state_dtype)}`);
  if (c.mode === "train_with_padding" && c.return_last_states)
    throw new RangeError(`${what}: mode "train_with_padding" cannot return last states (they would include the padding); set return_last_states false or use mode "inference"`);
  const E = c.embedding_dim, NH = c.num_heads;
  c.qk_dim = Math.trunc(E * c.qk_dim_factor);
  c.v_dim = Math.trunc(E * c.v_dim_factor);
  if (c.qk_dim < NH || c.qk_dim % NH !== 0) throw new RangeError(`${what}: qk_dim = int(embedding_dim * qk_dim_factor) = ${c.qk_dim} must be a positive multiple of num_heads = ${NH}`);
  if (c.v_dim < NH || c.v_dim % NH !== 0) throw new RangeError(`${what}: v_dim = int(embedding_dim * v_dim_factor) = ${c.v_dim} must be a positive multiple of num_heads = ${NH}`);
  c.qk_head_dim = c.qk_dim / NH;
  c.v_head_dim = c.v_dim / NH;
  const m = c.ffn_round_up_to_multiple_of;
  // the reference's round_up_to_next_multiple_of on the float product: int(((x + m - 1) // m) * m), not a ceil
  c.ffn_up_proj_dim = Math.floor((E * c.ffn_proj_factor + m - 1) / m) * m;
  if (c.ffn_up_proj_dim < 1) throw new RangeError(`${what}: the feed-forward width ${c.ffn_up_proj_dim} must be positive`);
  for (const [k, v] of [["qk_dim_factor", c.qk_dim], ["v_dim_factor", c.v_dim], ["ffn_proj_factor", c.ffn_up_proj_dim]] as const)
    if (v > MAX_CONFIG_DIM) throw new RangeError(`${what}.${k} gives a width of ${v}, above ${MAX_CONFIG_DIM}`);
  return c;
}

/** Number of parameters of a config (embedding and head counted separately, as they are separate tensors). */
export function largeParameterCount(config: xLSTMLargeConfig): { total: number; perBlock: number; embedding: number; head: number } {
  const c = resolveLargeConfig(config);
  const E = c.embedding_dim, NH = c.num_heads, up = c.ffn_up_proj_dim, b = c.use_bias ? 1 : 0;
  const mlstm = (2 * c.qk_dim + 2 * c.v_dim) * (E + b) + 2 * NH * (E + 1) + c.v_dim * (1 + b) + E * (c.v_dim + b);
  const ffn = 2 * up * (E + b) + E * (up + b);
  const perBlock = mlstm + ffn + 2 * E * (1 + b);
  const embedding = c.vocab_size * E, head = c.vocab_size * E;
  return { total: c.num_blocks * perBlock + embedding + head + (c.add_out_norm ? E * (1 + b) : 0), perBlock, embedding, head };
}

// ---- state ------------------------------------------------------------------------------------------------------

/** One block's mLSTM state, kernel-library convention: c [B, NH, DK, DV], n [B, NH, DK], m [B, NH, 1]. */
export interface LargeBlockState {
  c: Tensor;
  n: Tensor;
  m: Tensor;
}

/** The model's recurrent state: one entry per block, keyed by the block index ("0", "1", ...). */
export type LargeState = { [block: string]: LargeBlockState };

function checkState(state: LargeState | null | undefined, c: ResolvedLargeConfig, B: number, what: string): void {
  if (state === null || state === undefined) return;
  if (typeof state !== "object" || Array.isArray(state) || state instanceof Tensor) throw new TypeError(`${what}: state must be an object of per-block states or null, got ${kindOf(state)}`);
  const NH = c.num_heads, DK = c.qk_head_dim, DV = c.v_head_dim;
  for (let i = 0; i < c.num_blocks; ++i) {
    const s = state[String(i)];
    if (s === undefined || s === null) continue;
    if (typeof s !== "object" || Array.isArray(s) || s instanceof Tensor) throw new TypeError(`${what}: state["${i}"] must be an object { c, n, m } or null, got ${kindOf(s)}`);
    for (const [part, want] of [["c", [B, NH, DK, DV]], ["n", [B, NH, DK]], ["m", [B, NH, 1]]] as const) {
      const t = requireTensor(what, `state["${i}"].${part}`, (s as unknown as Record<string, unknown>)[part], { cuda: true });
      if (t.dtype !== "float32") throw new TypeError(`${what}: state["${i}"].${part} must be float32, got ${t.dtype}`);
      if (t.shape.length !== want.length || t.shape.some((x, j) => x !== want[j])) throw shapeError(`${what}: state["${i}"].${part}`, t.shape, formatShape(want));
    }
  }
}

/** The state as flat named tensors ("<block>.c", "<block>.n", "<block>.m"), e.g. for writeSafetensors. */
export function largeStateToTensors(state: LargeState): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [i, s] of Object.entries(state)) for (const p of ["c", "n", "m"] as const) out.set(`${i}.${p}`, s[p].detach());
  return out;
}

/**
 * Rebuild a state from largeStateToTensors' names (checked against `config` when given).
 * @throws RangeError for a block missing one of c, n, m, or shapes that do not fit the config
 */
export function largeStateFromTensors(tensors: Map<string, Tensor> | Record<string, Tensor>, config?: xLSTMLargeConfig): LargeState {
  const m = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const state: LargeState = {};
  const blocks = new Set<string>();
  for (const k of m.keys()) {
    const hit = /^(\d+)\.(c|n|m)$/.exec(k);
    if (!hit) throw new RangeError(`largeStateFromTensors: unexpected tensor "${k}" (expected "<block>.c", "<block>.n" or "<block>.m")`);
    blocks.add(hit[1]);
  }
  for (const b of blocks) {
    const parts = ["c", "n", "m"].map((p) => m.get(`${b}.${p}`));
    parts.forEach((t, j) => {
      if (!t) throw new RangeError(`largeStateFromTensors: block ${b} has no "${b}.${"cnm"[j]}"`);
    });
    state[b] = { c: parts[0]!, n: parts[1]!, m: parts[2]! };
  }
  if (config) {
    const c = resolveLargeConfig(config);
    const any = state[[...blocks][0]];
    checkState(state, c, any ? any.c.shape[0] : 1, "largeStateFromTensors");
  }
  return state;
}

// ---- the inference schedule ---------------------------------------------------------------------------------------

/** One kernel call of a forward pass over tokens [start, end). */
export interface ScheduleSegment {
  kernel: "chunkwise" | "recurrent_sequence" | "step";
  start: number;
  end: number;
  /** chunk length of a chunkwise segment */
  chunkSize?: number;
}

/**
 * The reference's kernel schedule for S tokens in mode "inference" (mlstm_kernels
 * wrap_chunkwise__arbitrary_sequence_length): S = 1 is one step; otherwise as many chunks of chunk_size as fit,
 * then of chunk_size/2, ... while the chunk size is >= 16, and the recurrent sequence kernel for the rest.
 */
export function inferenceSchedule(S: number, chunkSize: number): ScheduleSegment[] {
  if (!Number.isInteger(S) || S < 1) throw new RangeError(`inferenceSchedule: S must be a positive integer, got ${S}`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`inferenceSchedule: chunkSize must be a positive integer, got ${chunkSize}`);
  if (S === 1) return [{ kernel: "step", start: 0, end: 1 }];
  const out: ScheduleSegment[] = [];
  let pos = 0;
  for (let cs = chunkSize; cs >= 16 && pos < S; cs = Math.floor(cs / 2)) {
    const n = Math.floor((S - pos) / cs);
    if (n === 0) continue;
    out.push({ kernel: "chunkwise", start: pos, end: pos + n * cs, chunkSize: cs });
    pos += n * cs;
  }
  if (pos < S) out.push({ kernel: "recurrent_sequence", start: pos, end: S });
  return out;
}

// ---- differentiable pieces ----------------------------------------------------------------------------------------

/**
 * RMSNorm over the last dimension (XLSTM_SPEC §10.2): y = x / sqrt(mean(x²) + eps) · weight (+ bias), the weight is
 * the scale itself (no 1 + w). Composed of differentiable ops (the mean accumulates in float64; 1/sqrt as
 * exp(-log(·)/2)), so it has gradients w.r.t. x, weight and bias.
 * @param x float32 [..., D]; weight, bias float32 [D] or null
 * @throws TypeError for non-float32 tensors; RangeError for a weight/bias that is not [D] or a bad eps
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const op = "rmsNorm";
  if (!(x instanceof Tensor) || x.dtype !== "float32") throw new TypeError(`${op}: x must be a float32 Tensor`);
  if (x.ndim < 1) throw shapeError(`${op}: x`, x.shape, "[..., D]");
  const D = x.shape[x.ndim - 1];
  for (const [t, nm] of [[weight, "weight"], [bias, "bias"]] as const) {
    if (t === null) continue;
    if (!(t instanceof Tensor) || t.dtype !== "float32") throw new TypeError(`${op}: ${nm} must be a float32 Tensor or null`);
    if (t.ndim !== 1 || t.shape[0] !== D) throw shapeError(`${op}: ${nm}`, t.shape, `[D] = [${D}]`);
  }
  if (!(typeof eps === "number" && eps >= 0 && Number.isFinite(eps))) throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  const ms = ops.mean(ops.mul(x, x), -1, true);
  const inv = ops.exp(ops.scale(ops.log(ops.scale(ms, 1, eps)), -0.5));
  let y = ops.mul(x, inv);
  if (weight) y = ops.mul(y, weight);
  if (bias) y = ops.add(y, bias);
  return y;
}

/** cap · tanh(x / cap) (the reference's soft_cap); `cap` null returns x. Differentiable. */
export function softCap(x: Tensor, cap: number | null): Tensor {
  if (cap === null) return x;
  return ops.scale(ops.tanh(ops.scale(x, 1 / cap)), cap);
}

/** The mLSTM of one block over a schedule, library convention in and out (see the file header). */
function mlstmLibrary(q: Tensor, k: Tensor, v: Tensor, i: Tensor, f: Tensor, state: LargeBlockState | null, segments: ScheduleSegment[], eps: number): { h: Tensor; state: LargeBlockState } {
  const [B, NH, , DK] = q.shape;
  const s = Math.sqrt(DK);
  const qs = ops.scale(q, 1 / s), ks = ops.scale(k, s);
  let st = state ? { c: state.c, n: state.n, m: state.m } : null;
  const hs: Tensor[] = [];
  for (const seg of segments) {
    const cut = (t: Tensor) => (segments.length === 1 ? t : ops.slice(t, 2, seg.start, seg.end));
    const r = ops.mlstm(cut(qs), cut(ks), cut(v), cut(i), cut(f), {
      form: seg.kernel === "chunkwise" ? "chunkwise" : "recurrent",
      chunkSize: seg.chunkSize ?? 64,
      initialState: st,
      returnLastState: true,
      eps,
    });
    hs.push(r.h);
    st = r.state!;
  }
  return { h: hs.length === 1 ? hs[0] : ops.cat(hs, 2), state: { c: st!.c, n: st!.n, m: st!.m.reshape(B, NH, 1) } };
}

// ---- modules ------------------------------------------------------------------------------------------------------

function fillUniform(t: Tensor | null, bound: number, gen: Generator): void {
  if (t) gen.fillUniform(t.f32(), -bound, bound);
}

/** nn.Linear with PyTorch's default initialisation U(±1/√in) for weight and bias. */
function linearInit(inF: number, outF: number, bias: boolean, gen: Generator): Linear {
  const l = new Linear(inF, outF, bias);
  const b = 1 / Math.sqrt(inF);
  fillUniform(l.weight, b, gen);
  fillUniform(l.bias, b, gen);
  return l;
}

class NormWeights extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(n: number, bias: boolean) {
    super();
    this.weight = this.registerParameter("weight", Tensor.ones([n]))!;
    this.bias = bias ? this.registerParameter("bias", Tensor.zeros([n]))! : null;
  }
}

/** A plain container: named parameters and submodules (embedding, backbone, the block list, lm_head). */
class Container extends Module {
  add(name: string, t: Tensor): Tensor {
    return this.registerParameter(name, t)!;
  }
  addModule<M extends Module>(name: string, m: M): M {
    return this.registerModule(name, m);
  }
}

/** The reference's mLSTMLayer (xlstm_large): projections from the normed input, the mLSTM, per-head norm, gate. */
class LargeMlstmLayer extends Module {
  readonly lin: Record<string, Linear> = {};
  readonly multihead_norm: NormWeights;
  readonly out_proj: Linear;
  constructor(private readonly c: ResolvedLargeConfig, gen: Generator) {
    super();
    const E = c.embedding_dim, b = c.use_bias, NH = c.num_heads;
    const add = (name: string, outF: number, bias: boolean) => (this.lin[name] = this.registerModule(name, linearInit(E, outF, bias, gen)));
    if (c.weight_mode === "single") {
      add("q", c.qk_dim, b);
      add("k", c.qk_dim, b);
      add("v", c.v_dim, b);
      add("ogate_preact", c.v_dim, b);
      add("igate_preact", NH, true);
      add("fgate_preact", NH, true);
    } else {
      add("qkv_opreact", 2 * c.qk_dim + 2 * c.v_dim, b);
      add("ifgate_preact", 2 * NH, true);
    }
    this.multihead_norm = this.registerModule("multihead_norm", new NormWeights(c.v_dim, b));
    this.out_proj = this.registerModule("out_proj", linearInit(c.v_dim, E, b, gen));
  }

  forward(a: Tensor, state: LargeBlockState | null, segments: ScheduleSegment[]): { y: Tensor; state: LargeBlockState } {
    const c = this.c, [B, S] = a.shape, NH = c.num_heads, DK = c.qk_head_dim, DV = c.v_head_dim, qk = c.qk_dim, vd = c.v_dim;
    let q: Tensor, k: Tensor, v: Tensor, o: Tensor, ig: Tensor, fg: Tensor;
    if (c.weight_mode === "single") {
      [q, k, v, o] = ["q", "k", "v", "ogate_preact"].map((n) => this.lin[n].forward(a));
      ig = softCap(this.lin.igate_preact.forward(a), c.gate_soft_cap);
      fg = softCap(this.lin.fgate_preact.forward(a), c.gate_soft_cap);
    } else {
      const p = this.lin.qkv_opreact.forward(a);
      q = ops.slice(p, -1, 0, qk);
      k = ops.slice(p, -1, qk, 2 * qk);
      v = ops.slice(p, -1, 2 * qk, 2 * qk + vd);
      o = ops.slice(p, -1, 2 * qk + vd, 2 * qk + 2 * vd);
      const g = softCap(this.lin.ifgate_preact.forward(a), c.gate_soft_cap);
      ig = ops.slice(g, -1, 0, NH);
      fg = ops.slice(g, -1, NH, 2 * NH);
    }
    const heads = (t: Tensor, d: number) => permuteOrView(t.reshape(B, S, NH, d), [0, 2, 1, 3]);
    const r = mlstmLibrary(heads(q, DK), heads(k, DK), heads(v, DV), permuteOrView(ig, [0, 2, 1]), permuteOrView(fg, [0, 2, 1]), state, segments, c.eps);
    const hn = ops.multiHeadLayerNorm(permuteOrView(r.h, [0, 2, 1, 3]), this.multihead_norm.weight, this.multihead_norm.bias, { eps: c.norm_eps });
    const y = this.out_proj.forward(ops.mul(ops.sigmoid(o), hn.reshape(B, S, vd)));
    return { y, state: r.state };
  }
}

/** The reference's FeedForward (SwiGLU): proj_down(SiLU(proj_up_gate(x)) ⊙ proj_up(x)). */
class LargeFeedForward extends Module {
  readonly lin: Record<string, Linear> = {};
  constructor(private readonly c: ResolvedLargeConfig, gen: Generator) {
    super();
    const E = c.embedding_dim, up = c.ffn_up_proj_dim, b = c.use_bias;
    const add = (name: string, inF: number, outF: number) => (this.lin[name] = this.registerModule(name, linearInit(inF, outF, b, gen)));
    if (c.weight_mode === "single") {
      add("proj_up_gate", E, up);
      add("proj_up", E, up);
    } else add("proj_up_gate_z", E, 2 * up);
    add("proj_down", up, E);
  }

  forward(x: Tensor): Tensor {
    const up = this.c.ffn_up_proj_dim;
    let g: Tensor, z: Tensor;
    if (this.c.weight_mode === "single") {
      g = this.lin.proj_up_gate.forward(x);
      z = this.lin.proj_up.forward(x);
    } else {
      const p = this.lin.proj_up_gate_z.forward(x);
      g = ops.slice(p, -1, 0, up);
      z = ops.slice(p, -1, up, 2 * up);
    }
    return this.lin.proj_down.forward(ops.mul(ops.silu(g), z));
  }
}

class LargeBlock extends Module {
  readonly norm_mlstm: NormWeights;
  readonly mlstm_layer: LargeMlstmLayer;
  readonly norm_ffn: NormWeights;
  readonly ffn: LargeFeedForward;
  constructor(private readonly c: ResolvedLargeConfig, gen: Generator) {
    super();
    this.norm_mlstm = this.registerModule("norm_mlstm", new NormWeights(c.embedding_dim, c.use_bias));
    this.mlstm_layer = this.registerModule("mlstm_layer", new LargeMlstmLayer(c, gen));
    this.norm_ffn = this.registerModule("norm_ffn", new NormWeights(c.embedding_dim, c.use_bias));
    this.ffn = this.registerModule("ffn", new LargeFeedForward(c, gen));
  }

  forward(x: Tensor, state: LargeBlockState | null, segments: ScheduleSegment[]): { y: Tensor; state: LargeBlockState } {
    const eps = this.c.norm_eps;
    const r = this.mlstm_layer.forward(rmsNorm(x, this.norm_mlstm.weight, this.norm_mlstm.bias, eps), state, segments);
    x = ops.add(x, r.y);
    x = ops.add(x, this.ffn.forward(rmsNorm(x, this.norm_ffn.weight, this.norm_ffn.bias, eps)));
    return { y: x, state: r.state };
  }
}

// ---- weight-mode conversion ---------------------------------------------------------------------------------------

/** Fused parameter <- its single parts, in row order (XLSTM_SPEC §10.3). */
const FUSED_GROUPS: readonly { fused: string; parts: readonly string[] }[] = [
  { fused: "mlstm_layer.qkv_opreact", parts: ["mlstm_layer.q", "mlstm_layer.k", "mlstm_layer.v", "mlstm_layer.ogate_preact"] },
  { fused: "mlstm_layer.ifgate_preact", parts: ["mlstm_layer.igate_preact", "mlstm_layer.fgate_preact"] },
  { fused: "ffn.proj_up_gate_z", parts: ["ffn.proj_up_gate", "ffn.proj_up"] },
];

function partRows(c: ResolvedLargeConfig, part: string): number {
  switch (part) {
    case "mlstm_layer.q":
    case "mlstm_layer.k":
      return c.qk_dim;
    case "mlstm_layer.v":
    case "mlstm_layer.ogate_preact":
      return c.v_dim;
    case "mlstm_layer.igate_preact":
    case "mlstm_layer.fgate_preact":
      return c.num_heads;
    default:
      return c.ffn_up_proj_dim;
  }
}

/** Concatenate tensors along dim 0 (any dtype; row-major storage makes this a flat concatenation). */
function catRows(ts: Tensor[]): Tensor {
  const n = ts.reduce((a, t) => a + t.numel, 0);
  const rest = ts[0].shape.slice(1);
  for (const t of ts)
    if (t.dtype !== ts[0].dtype || t.shape.length !== ts[0].shape.length || t.shape.slice(1).some((x, j) => x !== rest[j]))
      throw new RangeError(`convertLargeWeights: cannot concatenate ${formatShape(t.shape)} ${t.dtype} with ${formatShape(ts[0].shape)} ${ts[0].dtype}`);
  const data = new (ts[0].data.constructor as new (n: number) => Float32Array | Uint16Array)(n);
  let off = 0;
  for (const t of ts) {
    data.set(t.data as Float32Array & Uint16Array, off);
    off += t.numel;
  }
  return new Tensor(data, [ts.reduce((a, t) => a + t.shape[0], 0), ...rest]);
}

/** Rows [r0, r1) of a tensor (copied). */
function rowSlice(t: Tensor, r0: number, r1: number): Tensor {
  const inner = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return new Tensor((t.data as Float32Array | Uint16Array).slice(r0 * inner, r1 * inner), [r1 - r0, ...t.shape.slice(1)]);
}

/** Where a parameter comes from: a state_dict, a sharded checkpoint, ... */
interface TensorSource {
  has(key: string): boolean;
  get(key: string): Tensor;
}

/**
 * `key` (in either weight mode) from `src` (in either mode): taken as is, concatenated from its single parts, or cut
 * from the fused tensor that holds it. null when neither is there.
 */
function readLargeParam(src: TensorSource, key: string, c: ResolvedLargeConfig): Tensor | null {
  if (src.has(key)) return src.get(key);
  const m = /^(backbone\.blocks\.\d+\.)(.+)\.(weight|bias)$/.exec(key);
  if (!m) return null;
  const [, prefix, mod, suffix] = m;
  for (const g of FUSED_GROUPS) {
    if (g.fused === mod) {
      const keys = g.parts.map((p) => `${prefix}${p}.${suffix}`);
      if (!keys.every((k) => src.has(k))) return null;
      return catRows(keys.map((k) => src.get(k)));
    }
    const j = g.parts.indexOf(mod);
    if (j >= 0) {
      const fk = `${prefix}${g.fused}.${suffix}`;
      if (!src.has(fk)) return null;
      const r0 = g.parts.slice(0, j).reduce((a, p) => a + partRows(c, p), 0);
      const full = src.get(fk);
      const total = g.parts.reduce((a, p) => a + partRows(c, p), 0);
      if (full.shape[0] !== total) throw shapeError(`convertLargeWeights: ${fk}`, full.shape, `[${total}, ...] for this config`);
      return rowSlice(full, r0, r0 + partRows(c, mod));
    }
  }
  return null;
}

/** Every parameter's key and shape for a config (its weight_mode), in state_dict order; allocates nothing. */
export function largeParameterShapes(config: xLSTMLargeConfig): Map<string, number[]> {
  const c = resolveLargeConfig(config);
  const E = c.embedding_dim, NH = c.num_heads, qk = c.qk_dim, vd = c.v_dim, up = c.ffn_up_proj_dim, b = c.use_bias;
  const out = new Map<string, number[]>();
  const lin = (name: string, inF: number, outF: number, bias: boolean) => {
    out.set(`${name}.weight`, [outF, inF]);
    if (bias) out.set(`${name}.bias`, [outF]);
  };
  const norm = (name: string, n: number) => {
    out.set(`${name}.weight`, [n]);
    if (b) out.set(`${name}.bias`, [n]);
  };
  out.set("embedding.weight", [c.vocab_size, E]);
  for (let i = 0; i < c.num_blocks; ++i) {
    const p = `backbone.blocks.${i}.`;
    norm(`${p}norm_mlstm`, E);
    if (c.weight_mode === "single") {
      lin(`${p}mlstm_layer.q`, E, qk, b);
      lin(`${p}mlstm_layer.k`, E, qk, b);
      lin(`${p}mlstm_layer.v`, E, vd, b);
      lin(`${p}mlstm_layer.ogate_preact`, E, vd, b);
      lin(`${p}mlstm_layer.igate_preact`, E, NH, true);
      lin(`${p}mlstm_layer.fgate_preact`, E, NH, true);
    } else {
      lin(`${p}mlstm_layer.qkv_opreact`, E, 2 * qk + 2 * vd, b);
      lin(`${p}mlstm_layer.ifgate_preact`, E, 2 * NH, true);
    }
    norm(`${p}mlstm_layer.multihead_norm`, vd);
    lin(`${p}mlstm_layer.out_proj`, vd, E, b);
    norm(`${p}norm_ffn`, E);
    if (c.weight_mode === "single") {
      lin(`${p}ffn.proj_up_gate`, E, up, b);
      lin(`${p}ffn.proj_up`, E, up, b);
    } else lin(`${p}ffn.proj_up_gate_z`, E, 2 * up, b);
    lin(`${p}ffn.proj_down`, up, E, b);
  }
  if (c.add_out_norm) norm("backbone.out_norm", E);
  out.set("lm_head.weight", [c.vocab_size, E]);
  return out;
}

/**
 * A state_dict converted to `to` ("single" <-> "fused") by row concatenation / splitting in the reference's orders:
 * (q, k, v, ogate_preact) -> qkv_opreact, (igate_preact, fgate_preact) -> ifgate_preact, (proj_up_gate, proj_up) ->
 * proj_up_gate_z, biases alike. Keys are matched per block exactly (the reference's own converter mismatches
 * blocks 1 and 10..19). Other entries pass through; the input is not modified. Works for any dtype.
 * @param config the model's config (sizes for splitting); its weight_mode is ignored
 */
export function convertLargeWeights(sd: StateDict | Record<string, Tensor>, to: LargeWeightMode, config: xLSTMLargeConfig): StateDict {
  if (to !== "single" && to !== "fused") throw new RangeError(`convertLargeWeights: to must be "single" or "fused", got ${JSON.stringify(to)}`);
  const c = resolveLargeConfig({ ...config, weight_mode: to });
  const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
  const out: StateDict = new Map();
  const used = new Set<string>();
  const source: TensorSource = { has: (k) => src.has(k), get: (k) => (used.add(k), src.get(k)!) };
  for (const k of largeParameterShapes(c).keys()) {
    const t = readLargeParam(source, k, c);
    if (t) out.set(k, t);
  }
  // anything not consumed (unknown keys, or parts of an incomplete group) passes through unchanged
  for (const [k, v] of src) if (!used.has(k) && !out.has(k)) out.set(k, v);
  return out;
}

// ---- the model ----------------------------------------------------------------------------------------------------

export interface LargeForwardOptions {
  /** State to continue from (see LargeState); null/absent = the zero state. Not modified. */
  state?: LargeState | null;
  /** Return the final state. Default: config.return_last_states, or true in mode "inference". */
  returnLastState?: boolean;
}

export interface LargeGenerateOptions {
  /** Tokens to generate. */
  maxLength: number;
  /** Only "greedy" (the reference's registry; sampled generation: lib/generate with this model). Default "greedy". */
  samplingType?: "greedy";
  /** State to continue from. */
  state?: LargeState | null;
  /** Token fed when there is no prefill. Default 0. */
  bosTokenId?: number;
  /** Batch size without prefill. Default 1. */
  batchSizeNoPrefill?: number;
}

export interface LargeGenerateResult {
  /** [B, maxLength] int64 */
  tokens: Tensor;
  /** the state after the prefill and all but the last generated token (the last one is not fed) */
  state: LargeState | null;
  /** [B, maxLength, V]: the last-position logits of each call */
  logits: Tensor;
}

/** The reference's generate_tokens with greedy sampling, over any "run tokens, return last logits" function. */
/** Most logits a generate() call may return (B · maxLength · V floats; 8 GiB). */
const MAX_GENERATE_LOGITS = 2 ** 31 - 1;

function greedyGenerate(
  run: (idx: Tensor, state: LargeState | null, owned: boolean) => { last: Float32Array; state: LargeState },
  c: ResolvedLargeConfig,
  prefillArg: Tensor | null,
  options: LargeGenerateOptions,
  what: string,
): LargeGenerateResult {
  const V = c.vocab_size;
  if (options === null || typeof options !== "object" || Array.isArray(options) || options instanceof Tensor)
    throw new TypeError(`${what}: options must be an object { maxLength, ... }, got ${kindOf(options)}`);
  const o = options;
  const maxLength = o.maxLength;
  if (!Number.isInteger(maxLength) || maxLength < 0) throw new RangeError(`${what}: maxLength must be an integer >= 0, got ${String(maxLength)}`);
  const sampling = o.samplingType ?? "greedy";
  if (sampling !== "greedy") throw new RangeError(`${what}: samplingType must be "greedy" (the reference's only one), got ${typeof sampling === "string" ? JSON.stringify(sampling) : kindOf(sampling)}; sample with lib/generate's generate()`);
  let prefill: Tensor;
  if (prefillArg === null) {
    const B = o.batchSizeNoPrefill ?? 1;
    if (!Number.isInteger(B) || B < 1) throw new RangeError(`${what}: batchSizeNoPrefill must be a positive integer, got ${String(B)}`);
    const bos = o.bosTokenId ?? 0;
    if (!Number.isInteger(bos) || bos < 0 || bos >= V) throw new RangeError(`${what}: bosTokenId must be an integer in [0, ${V}) (vocab_size = ${V}), got ${String(bos)}`);
    if (B > MAX_GENERATE_LOGITS) throw new RangeError(`${what}: batchSizeNoPrefill ${B} is too large`);
    prefill = new Tensor(new BigInt64Array(B).fill(BigInt(bos)), [B, 1]);
  } else {
    prefill = requireTensor(what, "prefillTokens", prefillArg, { cuda: true });
    if (prefill.ndim === 1) prefill = prefill.reshape(prefill.shape[0], 1);
    if (prefill.ndim !== 2) throw shapeError(`${what}: prefillTokens`, prefill.shape, "[B, S] or [B]");
    checkIdx(prefill, V, what, "prefillTokens");
  }
  const B = prefill.shape[0];
  if (B * maxLength * V > MAX_GENERATE_LOGITS)
    throw new RangeError(`${what}: maxLength ${maxLength} would return B·maxLength·V = ${B}·${maxLength}·${V} logits, more than ${MAX_GENERATE_LOGITS}`);
  checkState(o.state, c, B, what);
  const tokens = new BigInt64Array(B * maxLength), logits = new Float32Array(B * maxLength * V);
  let state = o.state ?? null;
  let last: Tensor = prefill;
  for (let g = 0; g < maxLength; ++g) {
    // the caller's state is never modified; the ones made here may be updated in place
    const r = run(last, state, g > 0);
    state = r.state;
    const next = new BigInt64Array(B);
    for (let b = 0; b < B; ++b) {
      const row = r.last.subarray(b * V, (b + 1) * V);
      logits.set(row, (b * maxLength + g) * V);
      let best = 0;
      for (let j = 1; j < V; ++j) if (row[j] > row[best]) best = j;
      next[b] = BigInt(best);
      tokens[b * maxLength + g] = BigInt(best);
    }
    last = new Tensor(next, [B, 1]);
  }
  return { tokens: new Tensor(tokens, [B, maxLength]), state, logits: new Tensor(logits, [B, maxLength, V]) };
}

function checkIdx(idxArg: unknown, V: number, what: string, name = "idx"): [number, number] {
  const idx = requireTensor(what, name, idxArg, { cuda: true });
  if (idx.dtype !== "int32" && idx.dtype !== "int64") throw new TypeError(`${what}: ${name} must be an int32 or int64 tensor, got ${idx.dtype}`);
  if (idx.ndim !== 2 || idx.shape[0] < 1 || idx.shape[1] < 1) throw shapeError(`${what}: ${name}`, idx.shape, "[B, S] with B, S >= 1");
  const r = idx._intRange();  // ids uploaded from the host carry their range: then nothing is read back from the GPU
  if (r && r.min >= 0 && r.max < V) return [idx.shape[0], idx.shape[1]];
  const d = (idx.device === "cpu" ? idx : idx.cpu()).data as Int32Array | BigInt64Array;  // other ids on the GPU are read back to be checked
  for (let j = 0; j < d.length; ++j) {
    const t = Number(d[j]);
    if (!(t >= 0 && t < V)) throw new RangeError(`${what}: ${name} holds token id ${d[j]} at flat position ${j}, outside [0, ${V})`);
  }
  return [idx.shape[0], idx.shape[1]];
}

/**
 * xLSTM Large (XLSTM_SPEC §10) with the reference's config, state_dict keys and modes.
 * @example
 *   const model = new nn.xLSTMLarge({ embedding_dim: 64, num_heads: 2, num_blocks: 2, vocab_size: 50, mode: "inference" });
 *   const { logits, state } = model.forward(idx, { returnLastState: true });  // prefill
 *   const next = model.step(tok, state);                                    // one token per row
 */
export class xLSTMLarge extends Module {
  readonly config: ResolvedLargeConfig;
  readonly embedding: Tensor;
  readonly blocks: LargeBlock[] = [];
  readonly outNorm: NormWeights | null;
  readonly lm_head: Tensor;

  /**
   * Parameters drawn as PyTorch's defaults (embedding N(0, 1), linear weights and biases U(±1/√in), norms 1 / 0),
   * from `options.generator` (default: the global one).
   * @throws TypeError/RangeError naming an invalid config field
   */
  constructor(config: xLSTMLargeConfig, options: { generator?: Generator; skipInit?: boolean } = {}) {
    super();
    const c = resolveLargeConfig(config);
    this.config = c;
    const gen = options.skipInit ? new Generator(0) : options.generator ?? defaultGenerator;
    const E = c.embedding_dim, V = c.vocab_size;
    const emb = new Container();
    this.embedding = emb.add("weight", options.skipInit ? Tensor.zeros([V, E]) : Tensor.randn([V, E], { generator: gen }));
    this.registerModule("embedding", emb);
    const backbone = new Container();
    const list = backbone.addModule("blocks", new Container());
    for (let i = 0; i < c.num_blocks; ++i) this.blocks.push(list.addModule(String(i), new LargeBlock(c, gen)));
    this.outNorm = c.add_out_norm ? backbone.addModule("out_norm", new NormWeights(E, c.use_bias)) : null;
    this.registerModule("backbone", backbone);
    const head = new Container();
    this.lm_head = head.add("weight", Tensor.zeros([V, E]));
    if (!options.skipInit) fillUniform(this.lm_head, 1 / Math.sqrt(E), gen);
    this.registerModule("lm_head", head);
  }

  /** Checkpoints in the other weight mode are converted (row concatenation/splitting) before loading. */
  override normalizeStateDict(sd: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
    if (prefix !== "") return super.normalizeStateDict(sd, prefix);
    const other = this.config.weight_mode === "single" ? "mlstm_layer.qkv_opreact.weight" : "mlstm_layer.q.weight";
    if (![...sd.keys()].some((k) => k.endsWith(other))) return sd;
    const conv = convertLargeWeights(sd, this.config.weight_mode, this.config);
    sd.clear();
    for (const [k, v] of conv) sd.set(k, v);
    return sd;
  }

  /** A copy of this model in the other weight mode (parameters converted, not shared). */
  toWeightMode(mode: LargeWeightMode): xLSTMLarge {
    const cfg = { ...this.configFields(), weight_mode: mode };
    const m = new xLSTMLarge(cfg, { skipInit: true });
    m.loadStateDict(convertLargeWeights(new Map([...this.stateDict()].map(([k, v]) => [k, v.detach()])), mode, cfg));
    return m;
  }

  /**
   * Stores the matrix weights (embedding, every projection, lm_head: the 2-D parameters, ~all of the bytes) as
   * `dtype`, in place and on their device; norms and biases stay float32. "bfloat16" halves the memory (a 7B model:
   * ~14 GB) and the bytes read per decoded token; activations, products and sums stay float32 (ops.linear and
   * ops.embedding widen the weights exactly, lib/ops/bf16.ts). bfloat16 weights are inference storage: they do not
   * require grad, so an optimizer over this model refuses them; "float32" makes them trainable again (same values).
   * @example const m = (await loadModel("xlstm-7b", { device: "cuda" })).model  // does this for bf16 checkpoints
   */
  setWeightDtype(dtype: "float32" | "bfloat16"): this {
    if (dtype !== "float32" && dtype !== "bfloat16") throw new RangeError(`xLSTMLarge.setWeightDtype: dtype must be "float32" or "bfloat16", got ${JSON.stringify(dtype)}`);
    for (const p of new Set(this.parameters())) if (p.ndim === 2) p._castInPlace(dtype);
    return this;
  }

  /**
   * @internal setWeightDtype without converting the values: the matrix weights become zeros of `dtype` (nothing is
   * read). For a module built with skipInit that a checkpoint fills next (loadModel onto the GPU): converting its
   * float32 zeros would cost seconds for a 7B model and touch every page of them.
   */
  _allocateWeightsAs(dtype: "float32" | "bfloat16"): this {
    for (const p of new Set(this.parameters())) if (p.ndim === 2) p._castInPlace(dtype, false);
    return this;
  }

  /** The dtype of the matrix weights (see setWeightDtype). */
  get weightDtype(): "float32" | "bfloat16" {
    return this.lm_head.dtype === "bfloat16" ? "bfloat16" : "float32";
  }

  /** The config as the reference's dataclass fields (no derived sizes). */
  configFields(): xLSTMLargeConfig {
    const out: Record<string, unknown> = {};
    for (const k of CONFIG_KEYS) out[k] = (this.config as unknown as Record<string, unknown>)[k];
    return out as unknown as xLSTMLargeConfig;
  }

  #run(idx: Tensor, state: LargeState | null, segments: ScheduleSegment[]): { logits: Tensor; state: LargeState } {
    const c = this.config;
    let x = ops.embedding(idx, this.embedding);
    const out: LargeState = {};
    this.blocks.forEach((b, i) => {
      const r = b.forward(x, state?.[String(i)] ?? null, segments);
      x = r.y;
      out[String(i)] = r.state;
    });
    if (this.outNorm) x = rmsNorm(x, this.outNorm.weight, this.outNorm.bias, c.norm_eps);
    return { logits: softCap(ops.linear(x, this.lm_head), c.output_logit_soft_cap), state: out };
  }

  /**
   * Logits (soft-capped) for token ids, in the config's mode: "train" one chunkwise pass (S a multiple of
   * chunk_size, as the reference requires), "train_with_padding" any S (no states), "inference" the reference's
   * kernel schedule (see inferenceSchedule). Every mode records on the tape when parameters require grad.
   * @param idx [B, S] int32/int64 token ids
   * @returns logits [B, S, V] and, with returnLastState, the final state
   * @throws RangeError for bad ids, shapes, or S not a multiple of chunk_size in mode "train"
   */
  forward(idx: Tensor, options: LargeForwardOptions = {}): { logits: Tensor; state?: LargeState } {
    const what = "xLSTMLarge.forward";
    const c = this.config;
    const [B, S] = checkIdx(idx, c.vocab_size, what);
    options = optionsArg(what, options);
    optionalBool(what, "options.returnLastState", options.returnLastState);
    checkState(options.state, c, B, what);
    const want = options.returnLastState ?? (c.return_last_states || c.mode === "inference");
    let segments: ScheduleSegment[];
    if (c.mode === "inference") segments = inferenceSchedule(S, c.chunk_size);
    else {
      if (c.mode === "train" && S % c.chunk_size !== 0)
        throw new RangeError(`${what}: mode "train" needs the sequence length S = ${S} to be a multiple of chunk_size = ${c.chunk_size} (use mode "train_with_padding" or "inference")`);
      if (c.mode === "train_with_padding" && want) throw new RangeError(`${what}: mode "train_with_padding" cannot return the last state (use mode "train" or "inference")`);
      segments = [{ kernel: "chunkwise", start: 0, end: S, chunkSize: c.chunk_size }];
    }
    const r = this.#run(idx, options.state ?? null, segments);
    return want ? r : { logits: r.logits };
  }

  /** One token per row, idx [B, 1] (the recurrent step whatever the mode): logits [B, 1, V] and the new state. */
  step(idx: Tensor, state: LargeState | null = null): { logits: Tensor; state: LargeState } {
    const what = "xLSTMLarge.step";
    const [B, S] = checkIdx(idx, this.config.vocab_size, what);
    if (S !== 1) throw shapeError(`${what}: idx`, idx.shape, "[B, 1]");
    checkState(state, this.config, B, what);
    return this.#run(idx, state, inferenceSchedule(1, this.config.chunk_size));
  }

  /**
   * The reference's generate(): the prefill in one call from `state` (default empty), then one generated token per
   * call; greedy (argmax, lowest id on ties). No gradients are recorded.
   * @param prefillTokens [B, S] (or [B]) ids, or null for one BOS token per row
   */
  generate(prefillTokens: Tensor | null, options: LargeGenerateOptions): LargeGenerateResult {
    const V = this.config.vocab_size;
    return noGrad(() =>
      greedyGenerate(
        (idx, state) => {
          const [B, S] = checkIdx(idx, V, "xLSTMLarge.generate");
          const r = this.#run(idx, state, inferenceSchedule(S, this.config.chunk_size));
          const last = new Float32Array(B * V), L = (r.logits.device === "cpu" ? r.logits : r.logits.cpu()).f32();
          for (let b = 0; b < B; ++b) last.set(L.subarray((b * S + S - 1) * V, (b * S + S) * V), b * V);
          return { last, state: r.state };
        },
        this.config,
        prefillTokens,
        options,
        "xLSTMLarge.generate",
      ),
    );
  }
}

// ---- checkpoints ----------------------------------------------------------------------------------------------------

/** Parse the flat `key: value` YAML of a pretrained checkpoint's config.yaml (scalars only). */
function parseFlatYaml(text: string, file: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  text.split(/\r?\n/).forEach((line, n) => {
    const s = line.replace(/\s+#.*$/, "");
    if (!s.trim() || s.trim().startsWith("#") || s.trim() === "---") return;
    const m = /^([A-Za-z_][\w]*)\s*:\s*(.*)$/.exec(s);
    if (!m) throw new SyntaxError(`${file}:${n + 1}: expected "key: value", got ${JSON.stringify(line)}`);
    const raw = m[2].trim();
    let v: unknown;
    if (raw === "" || raw === "null" || raw === "~") v = null;
    else if (raw === "true" || raw === "True") v = true;
    else if (raw === "false" || raw === "False") v = false;
    else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) v = Number(raw);
    else if (/^(["']).*\1$/.test(raw)) v = raw.slice(1, -1);
    else v = raw;
    out[m[1]] = v;
  });
  return out;
}

/**
 * The model config of a checkpoint directory: `config.json` or `config.yaml` (fields not of xLSTMLargeConfig, as in
 * Hugging Face configs, are dropped).
 * @throws Error when the directory has neither file
 */
export function readLargeConfig(dir: string): xLSTMLargeConfig {
  let raw: Record<string, unknown>;
  const json = path.join(dir, "config.json"), yaml = path.join(dir, "config.yaml");
  if (fs.existsSync(json)) raw = JSON.parse(fs.readFileSync(json, "utf8"));
  else if (fs.existsSync(yaml)) raw = parseFlatYaml(fs.readFileSync(yaml, "utf8"), yaml);
  else throw new Error(`readLargeConfig: ${dir} has no config.json or config.yaml`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (CONFIG_KEYS.has(k) && v !== undefined) out[k] = v;
  return out as unknown as xLSTMLargeConfig;
}

function sourceOf(ckpt: ShardedCheckpoint, dtype: FloatDType): TensorSource {
  return { has: (k) => ckpt.has(k), get: (k) => ckpt.get(k, dtype) };
}

/**
 * A float32 xLSTMLarge from a checkpoint (directory, index JSON or .safetensors; see openShardedCheckpoint), in
 * either weight mode whatever the checkpoint's. The config comes from `options.config` or the directory's
 * config.json/config.yaml; as the reference's load_from_pretrained, mode defaults to "inference".
 * @throws RangeError naming a missing parameter or a wrong shape; TypeError for a non-float stored dtype
 */
export function loadLargeCheckpoint(p: string, options: { config?: Partial<xLSTMLargeConfig> } = {}): xLSTMLarge {
  const dir = fs.statSync(p).isDirectory() ? p : path.dirname(p);
  const base = options.config && "embedding_dim" in options.config ? {} : readLargeConfig(dir);
  const model = new xLSTMLarge({ mode: "inference", ...base, ...(options.config ?? {}) } as xLSTMLargeConfig, { skipInit: true });
  const ckpt = openShardedCheckpoint(p);
  try {
    const src = sourceOf(ckpt, "float32");
    for (const [k, param] of model.namedParameters()) {
      const t = readLargeParam(src, k, model.config);
      if (!t) throw new RangeError(`loadLargeCheckpoint: ${ckpt.indexFile ?? p} has no parameter "${k}" (nor the tensors it is converted from)`);
      if (t.shape.length !== param.shape.length || t.shape.some((x, j) => x !== param.shape[j])) throw shapeError(`loadLargeCheckpoint: ${k}`, t.shape, formatShape(param.shape));
      param.f32().set(t.f32());
    }
  } finally {
    ckpt.close();
  }
  return model;
}

// ---- the decoder ----------------------------------------------------------------------------------------------------

interface PackedWeight {
  /** [rows, cols] row-major: bfloat16 bits or float32 */
  data: Uint16Array | Float32Array;
  rows: number;
  cols: number;
}

interface DecoderBlock {
  normM: Float32Array;
  normMb: Float32Array | null;
  /** rows: q (qk), k (qk), v (v), o (v), i (NH), f (NH) */
  wIn: PackedWeight;
  bIn: Float32Array | null;
  mhW: Float32Array;
  mhB: Float32Array | null;
  wOut: PackedWeight;
  bOut: Float32Array | null;
  normF: Float32Array;
  normFb: Float32Array | null;
  /** rows: gate (up), up (up) */
  wUp: PackedWeight;
  bUp: Float32Array | null;
  wDown: PackedWeight;
  bDown: Float32Array | null;
}

export interface LargeDecoderOptions {
  /** Weight storage: "bfloat16" (default; native bf16 kernels) or "float32" (the float32 GEMM). */
  dtype?: FloatDType;
  /**
   * bfloat16 only: round activations to bf16 so that the matrix products run on bf16 hardware: AMX tiles where the
   * CPU has them (Intel Xeon since Sapphire Rapids: ~1 TFLOP/s on 2 cores, 4.5-6.5x the float32 path), else
   * AVX512_BF16's vdpbf16ps (csrc/kernels/bf16.h; `backends().cpu.bf16` names which). "auto" (default): for calls
   * of >= 16 rows (B·S tokens) on CPUs with either; decode steps keep float32 activations (memory-bound, no gain).
   */
  roundActivations?: boolean | "auto";
}

export interface DecoderForwardOptions extends LargeForwardOptions {
  /** "all" (default): logits [B, S, V]; "last": only the last position's, [B, 1, V] (skips the head elsewhere). */
  logits?: "all" | "last";
  /**
   * Write the new state into the tensors of `state` (which must hold every block) and return that object, as the
   * reference does, instead of allocating a new one. For decoding loops over large states: fresh multi-megabyte
   * arrays every token cost page faults (7B: 4 MiB per block per token). Default false.
   */
  inPlace?: boolean;
  /**
   * A long prompt runs in pieces of about this many rows (B × tokens; whole chunks, at least one chunk per row), each
   * from the state the one before left, so that the activations' memory stays bounded whatever the prompt's length
   * (a 7B model: ~0.3 GB at the default 1,024 rows). The pieces agree with one whole-prompt pass up to the order of
   * float32 sums (with rounded activations, within bf16 rounding: such a difference can move a rounding). Default 1,024.
   */
  maxPieceRows?: number;
}

/** The factories' options, checked before anything is read or packed. */
function checkDecoderOptions(what: string, options: unknown): LargeDecoderOptions & { config?: Partial<xLSTMLargeConfig> } {
  const o = optionsArg(what, options as LargeDecoderOptions | undefined) as LargeDecoderOptions & { config?: unknown };
  optionalEnum(what, "options.dtype", o.dtype, ["bfloat16", "float32"]);
  const ra = o.roundActivations;
  if (ra !== undefined && ra !== "auto" && typeof ra !== "boolean") throw new TypeError(`${what}: options.roundActivations must be a boolean or "auto", got ${kindOf(ra)}`);
  if (o.config !== undefined && (o.config === null || typeof o.config !== "object" || Array.isArray(o.config))) throw new TypeError(`${what}: options.config must be an object, got ${kindOf(o.config)}`);
  return o as LargeDecoderOptions & { config?: Partial<xLSTMLargeConfig> };
}

/**
 * Inference-only xLSTM Large: packed weights (bfloat16 or float32), native kernels, explicit state (see the file
 * header). It implements forward/step like the models, so lib/generate's generate() samples from it.
 * @example
 *   const dec = xLSTMLargeDecoder.fromCheckpoint("xlstm-7b");        // bf16, ~14 GB for the 7B
 *   const { tokens } = dec.generate(prompt, { maxLength: 32 });
 */
export class xLSTMLargeDecoder extends Module {
  readonly config: ResolvedLargeConfig;
  readonly dtype: FloatDType;
  readonly roundActivations: boolean | "auto";
  readonly #embedding: PackedWeight;
  readonly #head: PackedWeight;
  readonly #blocks: DecoderBlock[] = [];
  readonly #outNorm: Float32Array | null;
  readonly #outNormB: Float32Array | null;
  /** the native forward's handle over the packed weights (csrc/binding/large_decoder.cc; it borrows them) */
  readonly #handle: object;

  /** Use fromModel / fromStateDict / fromCheckpoint. `get(key)` returns a parameter in either weight mode, or null. */
  private constructor(config: xLSTMLargeConfig, get: (key: string) => Tensor | null, options: LargeDecoderOptions, shareStorage = false) {
    super();
    const c = resolveLargeConfig({ ...config, weight_mode: "single" });
    this.config = c;
    this.training = false;
    const dtype = options.dtype ?? "bfloat16";
    if (dtype !== "bfloat16" && dtype !== "float32") throw new RangeError(`xLSTMLargeDecoder: dtype must be "bfloat16" or "float32", got ${JSON.stringify(dtype)}`);
    this.dtype = dtype;
    const ra = options.roundActivations ?? "auto";
    if (ra !== "auto" && typeof ra !== "boolean") throw new TypeError(`xLSTMLargeDecoder: roundActivations must be a boolean or "auto"`);
    this.roundActivations = ra;
    const E = c.embedding_dim;
    const need = (key: string, shape: number[]): Tensor => {
      const t = get(key);
      if (!t) throw new RangeError(`xLSTMLargeDecoder: parameter "${key}" is missing (nor are the tensors it is converted from)`);
      if (t.shape.length !== shape.length || t.shape.some((x, j) => x !== shape[j])) throw shapeError(`xLSTMLargeDecoder: ${key}`, t.shape, formatShape(shape));
      if (t.dtype !== "float32" && t.dtype !== "bfloat16") throw new TypeError(`xLSTMLargeDecoder: parameter "${key}" has dtype ${t.dtype}, expected float32 or bfloat16`);
      return t;
    };
    const f32 = (t: Tensor): Float32Array => (t.dtype === "float32" ? t.f32().slice() : bf16ToFloat(new Float32Array(t.numel), t.data as Uint16Array));
    const opt = (key: string, n: number): Float32Array | null => (c.use_bias ? f32(need(key, [n])) : null);
    // a packed weight from row groups (each a tensor [rows_i, cols]), converted to the storage dtype
    // shareStorage (tensors fresh from a checkpoint, nobody else holds them): a weight that is one tensor already in the
    // storage dtype is used as it is, so mapped checkpoint pages stay file pages instead of becoming heap copies
    const pack = (parts: Tensor[], cols: number): PackedWeight => {
      const rows = parts.reduce((a, t) => a + t.shape[0], 0);
      if (shareStorage && parts.length === 1 && parts[0].dtype === dtype) return { data: parts[0].data as Uint16Array | Float32Array, rows, cols };
      const data = dtype === "bfloat16" ? new Uint16Array(rows * cols) : new Float32Array(rows * cols);
      let off = 0;
      for (const t of parts) {
        if (data instanceof Uint16Array) {
          if (t.dtype === "bfloat16") data.set(t.data as Uint16Array, off);
          else native.bf16FromF32(data.subarray(off, off + t.numel), t.f32());
        } else if (t.dtype === "float32") data.set(t.f32(), off);
        else native.bf16ToF32(data.subarray(off, off + t.numel), t.data as Uint16Array);
        off += t.numel;
      }
      return { data, rows, cols };
    };
    const catBias = (keys: [string, number][], always: boolean): Float32Array | null => {
      if (!always && !c.use_bias) return null;
      const total = keys.reduce((a, [, n]) => a + n, 0);
      const out = new Float32Array(total);
      let off = 0;
      for (const [k, n] of keys) {
        if (always || c.use_bias) out.set(f32(need(k, [n])), off);
        off += n;
      }
      return out;
    };
    this.#embedding = pack([need("embedding.weight", [c.vocab_size, E])], E);
    for (let i = 0; i < c.num_blocks; ++i) {
      const p = `backbone.blocks.${i}.`;
      const ml = `${p}mlstm_layer.`;
      const parts: [string, number][] = [["q", c.qk_dim], ["k", c.qk_dim], ["v", c.v_dim], ["ogate_preact", c.v_dim], ["igate_preact", c.num_heads], ["fgate_preact", c.num_heads]];
      const wIn = pack(parts.map(([n, r]) => need(`${ml}${n}.weight`, [r, E])), E);
      let bIn: Float32Array | null = new Float32Array(wIn.rows);
      let off = 0;
      for (const [n, r] of parts) {
        if (c.use_bias || n === "igate_preact" || n === "fgate_preact") bIn.set(f32(need(`${ml}${n}.bias`, [r])), off);
        off += r;
      }
      if (!bIn.some((x) => x !== 0)) bIn = null;
      this.#blocks.push({
        normM: f32(need(`${p}norm_mlstm.weight`, [E])),
        normMb: opt(`${p}norm_mlstm.bias`, E),
        wIn,
        bIn,
        mhW: f32(need(`${ml}multihead_norm.weight`, [c.v_dim])),
        mhB: opt(`${ml}multihead_norm.bias`, c.v_dim),
        wOut: pack([need(`${ml}out_proj.weight`, [E, c.v_dim])], c.v_dim),
        bOut: opt(`${ml}out_proj.bias`, E),
        normF: f32(need(`${p}norm_ffn.weight`, [E])),
        normFb: opt(`${p}norm_ffn.bias`, E),
        wUp: pack([need(`${p}ffn.proj_up_gate.weight`, [c.ffn_up_proj_dim, E]), need(`${p}ffn.proj_up.weight`, [c.ffn_up_proj_dim, E])], E),
        bUp: catBias([[`${p}ffn.proj_up_gate.bias`, c.ffn_up_proj_dim], [`${p}ffn.proj_up.bias`, c.ffn_up_proj_dim]], false),
        wDown: pack([need(`${p}ffn.proj_down.weight`, [E, c.ffn_up_proj_dim])], c.ffn_up_proj_dim),
        bDown: opt(`${p}ffn.proj_down.bias`, E),
      });
    }
    this.#outNorm = c.add_out_norm ? f32(need("backbone.out_norm.weight", [E])) : null;
    this.#outNormB = c.add_out_norm ? opt("backbone.out_norm.bias", E) : null;
    this.#head = pack([need("lm_head.weight", [c.vocab_size, E])], E);
    this.#handle = native.largeDecoderCreate(
      {
        vocabSize: c.vocab_size, embeddingDim: E, numHeads: c.num_heads, qkHeadDim: c.qk_head_dim, vHeadDim: c.v_head_dim, ffnUpDim: c.ffn_up_proj_dim,
        chunkSize: c.chunk_size, normEps: c.norm_eps, eps: c.eps, gateSoftCap: c.gate_soft_cap, outputSoftCap: c.output_logit_soft_cap,
      },
      {
        embedding: this.#embedding.data, head: this.#head.data, outNorm: this.#outNorm, outNormBias: this.#outNormB,
        blocks: this.#blocks.map((b) => ({
          normM: b.normM, normMBias: b.normMb, wIn: b.wIn.data, bIn: b.bIn, mhW: b.mhW, mhB: b.mhB, wOut: b.wOut.data, bOut: b.bOut,
          normF: b.normF, normFBias: b.normFb, wUp: b.wUp.data, bUp: b.bUp, wDown: b.wDown.data, bDown: b.bDown,
        })),
      },
    );
  }

  /** A decoder with the weights of `model` (copied into the decoder's storage). */
  static fromModel(model: xLSTMLarge, options: LargeDecoderOptions = {}): xLSTMLargeDecoder {
    if (!(model instanceof xLSTMLarge)) throw new TypeError(`xLSTMLargeDecoder.fromModel: model must be an xLSTMLarge, got ${kindOf(model)}`);
    options = checkDecoderOptions("xLSTMLargeDecoder.fromModel", options);
    return xLSTMLargeDecoder.fromStateDict(model.configFields(), model.stateDict(), options);
  }

  /** From a state_dict in either weight mode (float32 or bfloat16 tensors). */
  static fromStateDict(config: xLSTMLargeConfig, sd: StateDict | Record<string, Tensor>, options: LargeDecoderOptions = {}): xLSTMLargeDecoder {
    const what = "xLSTMLargeDecoder.fromStateDict";
    if (config === null || typeof config !== "object" || Array.isArray(config)) throw new TypeError(`${what}: config must be an object, got ${kindOf(config)}`);
    if (sd === null || typeof sd !== "object" || Array.isArray(sd) || sd instanceof Tensor) throw new TypeError(`${what}: sd must be a Map or an object of name -> Tensor, got ${kindOf(sd)}`);
    options = checkDecoderOptions(what, options);
    const m = sd instanceof Map ? sd : new Map(Object.entries(sd));
    for (const [k, v] of m) requireTensor(what, `sd["${String(k)}"]`, v);
    const c = resolveLargeConfig({ ...config, weight_mode: "single" });
    const src: TensorSource = { has: (k) => m.has(k), get: (k) => m.get(k)! };
    return new xLSTMLargeDecoder(config, (k) => readLargeParam(src, k, c), options);
  }

  /**
   * From a checkpoint (directory, index JSON or .safetensors), read one tensor at a time straight into the
   * decoder's storage: peak memory is the packed weights plus one tensor.
   */
  static fromCheckpoint(p: string, options: LargeDecoderOptions & { config?: Partial<xLSTMLargeConfig> } = {}): xLSTMLargeDecoder {
    if (typeof p !== "string") throw new TypeError(`xLSTMLargeDecoder.fromCheckpoint: path must be a string, got ${kindOf(p)}`);
    options = checkDecoderOptions("xLSTMLargeDecoder.fromCheckpoint", options);
    const dir = fs.statSync(p).isDirectory() ? p : path.dirname(p);
    const base = options.config && "embedding_dim" in options.config ? {} : readLargeConfig(dir);
    const config = { ...base, ...(options.config ?? {}), mode: "inference" } as xLSTMLargeConfig;
    const c = resolveLargeConfig({ ...config, weight_mode: "single" });
    const ckpt = openShardedCheckpoint(p);
    try {
      const src = sourceOf(ckpt, options.dtype ?? "bfloat16");
      return new xLSTMLargeDecoder(config, (k) => readLargeParam(src, k, c), options, true);
    } finally {
      ckpt.close();
    }
  }

  /** Bytes of packed weights read per generated token (every block, the head and one embedding row). */
  weightBytesPerToken(): number {
    const el = this.dtype === "bfloat16" ? 2 : 4;
    let n = this.#head.rows * this.#head.cols + this.config.embedding_dim;
    for (const b of this.#blocks) n += b.wIn.data.length + b.wOut.data.length + b.wUp.data.length + b.wDown.data.length;
    return n * el;
  }

  /** Bytes of recurrent state per batch row (read and written once per token). */
  stateBytesPerRow(): number {
    const c = this.config;
    return c.num_blocks * c.num_heads * (c.qk_head_dim * c.v_head_dim + c.qk_head_dim + 1) * 4;
  }

  /**
   * Logits for token ids from `state` (the reference's inference mode: chunkwise prefix, halving chunks, recurrent
   * rest; S = 1 one step). Never records gradients. One native call (csrc/kernels/large_decoder.h) on this thread;
   * forwardAsync runs the same on a native worker thread.
   * @param idx [B, S] int32/int64
   * @returns logits [B, S, V] (or [B, 1, V] with logits "last") and the new state (with returnLastState; default true)
   */
  forward(idx: Tensor, options: DecoderForwardOptions = {}): { logits: Tensor; state?: LargeState } {
    const call = this.#prepare("xLSTMLargeDecoder.forward", idx, options);
    native.largeDecoderForward(this.#handle, ...call.args);
    return call.finish();
  }

  /**
   * forward() on a native worker thread: the event loop stays free while the tokens run through the model (a 7B
   * prefill takes seconds on a CPU). The arrays of `idx` are copied at the call; with inPlace, the state's tensors
   * are written when the promise settles (do not use them meanwhile).
   */
  async forwardAsync(idx: Tensor, options: DecoderForwardOptions = {}): Promise<{ logits: Tensor; state?: LargeState }> {
    const call = this.#prepare("xLSTMLargeDecoder.forwardAsync", idx, options);
    await native.largeDecoderForwardAsync(this.#handle, ...call.args);
    return call.finish();
  }

  // forward's checks, the native call's arguments and the result's assembly
  #prepare(what: string, idx: Tensor, options: DecoderForwardOptions) {
    const c = this.config;
    const [B, S] = checkIdx(idx, c.vocab_size, what);
    options = optionsArg(what, options);
    optionalBool(what, "options.returnLastState", options.returnLastState);
    optionalBool(what, "options.inPlace", options.inPlace);
    optionalEnum(what, "options.logits", options.logits, ["all", "last"]);
    const pieceRows = options.maxPieceRows ?? 0;
    if (options.maxPieceRows !== undefined && !(Number.isSafeInteger(pieceRows) && pieceRows >= 1))
      throw new RangeError(`${what}: options.maxPieceRows must be a positive integer, got ${typeof pieceRows === "number" ? pieceRows : kindOf(pieceRows)}`);
    checkState(options.state, c, B, what);
    const inPlace = !!options.inPlace;
    if (inPlace && !(options.state && this.#blocks.every((_, i) => options.state![String(i)])))
      throw new RangeError(`${what}: inPlace needs a state holding every block (e.g. the one returned by a first call)`);
    const lastOnly = (options.logits ?? "all") === "last";
    const NH = c.num_heads, DK = c.qk_head_dim, DV = c.v_head_dim;
    const tokens = idx.data instanceof Int32Array ? idx.data : Int32Array.from(idx.data as ArrayLike<number | bigint>, Number);
    const logits = new Float32Array(B * (lastOnly ? 1 : S) * c.vocab_size);
    const stateIn: (Float32Array | null)[] = [], stateOut: Float32Array[] = [];
    for (let i = 0; i < c.num_blocks; ++i) {
      const prev = options.state?.[String(i)] ?? null;
      stateIn.push(prev ? prev.c.f32() : null, prev ? prev.n.f32() : null, prev ? prev.m.f32() : null);
      if (inPlace) stateOut.push(prev!.c.f32(), prev!.n.f32(), prev!.m.f32());
      else stateOut.push(new Float32Array(B * NH * DK * DV), new Float32Array(B * NH * DK), new Float32Array(B * NH));
    }
    const rounding = this.roundActivations === "auto" ? 2 : this.roundActivations ? 1 : 0;
    const args = [logits, tokens, B, S, lastOnly, rounding, stateIn, stateOut, pieceRows] as const;
    const finish = (): { logits: Tensor; state?: LargeState } => {
      const out = new Tensor(logits, [B, lastOnly ? 1 : S, c.vocab_size]);
      if (inPlace) return { logits: out, state: options.state! };
      if (options.returnLastState === false) return { logits: out };
      const state: LargeState = {};
      for (let i = 0; i < c.num_blocks; ++i)
        state[String(i)] = { c: new Tensor(stateOut[3 * i], [B, NH, DK, DV]), n: new Tensor(stateOut[3 * i + 1], [B, NH, DK]), m: new Tensor(stateOut[3 * i + 2], [B, NH, 1]) };
      return { logits: out, state };
    };
    return { args, finish };
  }

  /** One token per row, idx [B, 1]: logits [B, 1, V] and the new state. */
  step(idx: Tensor, state: LargeState | null = null): { logits: Tensor; state: LargeState } {
    const what = "xLSTMLargeDecoder.step";
    const [B, S] = checkIdx(idx, this.config.vocab_size, what);
    if (S !== 1) throw shapeError(`${what}: idx`, idx.shape, "[B, 1]");
    checkState(state, this.config, B, what);
    const r = this.forward(idx, { state, returnLastState: true });
    return { logits: r.logits, state: r.state! };
  }

  /** The reference's generate() (greedy), as xLSTMLarge.generate, on the packed weights. */
  generate(prefillTokens: Tensor | null, options: LargeGenerateOptions): LargeGenerateResult {
    return greedyGenerate(
      (idx, state, owned) => {
        const r = this.forward(idx, { state, logits: "last", inPlace: owned });
        return { last: r.logits.f32(), state: r.state! };
      },
      this.config,
      prefillTokens,
      options,
      "xLSTMLargeDecoder.generate",
    );
  }
}

/**
 * Random weights for a config (single mode) without building a model, fast enough for 7B-sized blocks (benchmarks):
 * linear weights and biases U(±1/√in) from a xorshift stream, embedding U(±1), norm weights 1 and biases 0.
 */
export function randomLargeStateDict(config: xLSTMLargeConfig, seed = 0, dtype: FloatDType = "bfloat16"): StateDict {
  const shapes = largeParameterShapes({ ...config, weight_mode: "single" });
  let s = ((seed >>> 0) ^ 0x9e3779b9) >>> 0 || 1;
  const out: StateDict = new Map();
  for (const [k, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const f = new Float32Array(n);
    if (/norm/.test(k)) f.fill(k.endsWith(".weight") ? 1 : 0);
    else {
      const bound = k === "embedding.weight" ? 1 : 1 / Math.sqrt(k.endsWith(".bias") ? shapes.get(k.replace(/bias$/, "weight"))![1] : shape[1]);
      for (let j = 0; j < n; ++j) {
        // xorshift32: fast and good enough for benchmark weights
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        f[j] = ((s >>> 0) / 4294967296 - 0.5) * 2 * bound;
      }
    }
    if (dtype === "float32") out.set(k, new Tensor(f, shape));
    else {
      const u = new Uint16Array(n);
      native.bf16FromF32(u, f);
      out.set(k, new Tensor(u, shape));
    }
  }
  return out;
}
