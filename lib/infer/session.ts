// Fused inference sessions for xLSTMLMModel (products layer; XLSTM_SPEC §9): the whole per-token computation of
// every block in ONE native call (csrc/kernels/xlstm_infer.h) instead of ~150 tensor ops, for generation and
// prompt prefill. The session's state uses the layouts of xLSTMLMModel.step's StackState, so a state can move
// between the Tensor path and the fused path in either direction (getState / setState). A model on the GPU gets the
// device session (csrc/binding/cuda_infer_session.h): the same API, its parameters, state and scratch in device
// memory, one native call per token that enqueues the step's kernels and waits once for the logits.
import type { DeviceBuffer } from "../../binding";
import { native } from "../native";
import { InferenceSessionBusyError, InferenceSessionDisposedError, NativeSession } from "./native-session";
import { optionsArg } from "../nn/entry-checks";
import { kindOf, requireTensor } from "../ops/args";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { LayerNorm } from "../nn/components";
import { mLSTMLayer } from "../nn/mlstm-layer";
import { sLSTMLayer } from "../nn/slstm-layer";
import { LayerState } from "../nn/block";
import { StackState, xLSTMLMModel } from "../nn/stack";

/** Most batch rows a session may have (the native session's limit). */
export const MAX_BATCH = 1 << 20;

export { InferenceSessionBusyError, InferenceSessionDisposedError };

export interface InferenceSessionOptions {
  /** Batch rows B the session steps together (default 1); every call takes B tokens per position. */
  batch?: number;
}

type BlockConfig = Parameters<typeof native.inferCreate>[0]["blocks"][number];

/** Per-block state shapes, for getState / setState. */
interface BlockLayout {
  kind: "mlstm" | "slstm";
  /** conv window [B, K, F], or null (sLSTM with K = 0) */
  conv: [number, number, number] | null;
  NH: number;
  DH: number;
  /** sLSTM state components (4, or 2 for "lstm") */
  NS: number;
}

function checkNorm(n: LayerNorm, where: string): void {
  if (!n.residualWeight || n.bias || !n.weight || n.eps !== 1e-5)
    throw new RangeError(`createInferenceSession: ${where} must be the blocks' LayerNorm (weight 1 + w, no bias, eps 1e-5)`);
}

function describeModel(model: xLSTMLMModel): { config: Parameters<typeof native.inferCreate>[0]; layouts: BlockLayout[] } {
  const stack = model.xlstm_block_stack;
  const E = stack.config.embedding_dim;
  const blocks: BlockConfig[] = [];
  const layouts: BlockLayout[] = [];
  stack.blocks.forEach((block, i) => {
    checkNorm(block.xlstm_norm, `block ${i}'s xlstm_norm`);
    const ffn = block.ffn ? { projUpDim: block.ffn.projUpDim, act: block.ffn.config.act_fn } : null;
    if (block.ffn_norm) checkNorm(block.ffn_norm, `block ${i}'s ffn_norm`);
    const layer = block.xlstm as unknown;
    if (layer instanceof mLSTMLayer) {
      const c = layer.config;
      blocks.push({ kind: "mlstm", numHeads: c.num_heads, innerDim: layer.innerDim, qkvBlocksize: c.qkv_proj_blocksize, convKernel: c.conv1d_kernel_size, ffn });
      layouts.push({ kind: "mlstm", conv: [0, c.conv1d_kernel_size, layer.innerDim], NH: c.num_heads, DH: layer.headDim, NS: 0 });
    } else if (layer instanceof sLSTMLayer) {
      const c = layer.config;
      blocks.push({ kind: "slstm", numHeads: c.num_heads, convKernel: c.conv1d_kernel_size, function: c.function, ffn });
      layouts.push({ kind: "slstm", conv: c.conv1d_kernel_size > 0 ? [0, c.conv1d_kernel_size, E] : null, NH: c.num_heads, DH: layer.headDim, NS: c.function === "lstm" ? 2 : 4 });
    } else {
      throw new TypeError(`createInferenceSession: block ${i} holds neither an mLSTMLayer nor an sLSTMLayer`);
    }
  });
  if (stack.post_blocks_norm) checkNorm(stack.post_blocks_norm, "post_blocks_norm");
  return { config: { vocabSize: model.config.vocab_size, embeddingDim: E, postNorm: !!stack.post_blocks_norm, blocks }, layouts };
}

/** The device the model's parameters are on (all on one; float32 only). */
function modelDevice(model: xLSTMLMModel): "cpu" | "cuda" {
  let device: "cpu" | "cuda" | null = null;
  for (const [k, t] of model.stateDict()) {
    if (t.dtype !== "float32") throw new TypeError(`createInferenceSession: parameter ${k} is ${t.dtype}; sessions take float32 parameters`);
    if (device && t.device !== device) throw new TypeError(`createInferenceSession: parameter ${k} is on ${t.device} but others are on ${device}; move the whole model with model.to()`);
    device = t.device as "cpu" | "cuda";
  }
  return device ?? "cpu";
}

/** The parameters as the native session reads them: Float32Arrays (CPU, copied by it) or device buffers (GPU, borrowed). */
function snapshotParams(model: xLSTMLMModel, device: "cpu" | "cuda"): Record<string, Float32Array | DeviceBuffer> {
  const params: Record<string, Float32Array | DeviceBuffer> = {};
  for (const [k, t] of model.stateDict()) params[k] = device === "cuda" ? t._buffer(`createInferenceSession: parameter ${k}`) : t.f32(`createInferenceSession: parameter ${k}`);
  return params;
}

/**
 * A native inference session over an xLSTMLMModel: `step` runs one token per batch row through every block in one
 * native call and returns the logits; `prefill` consumes a prompt (its projections done as matrix products).
 *
 * The session holds a SNAPSHOT of the model's parameters, copied once into native memory at creation: later
 * changes to the model's weights (training, loadStateDict) are not seen until `refresh()` (or a new session).
 * It always runs in evaluation mode (no dropout). The native memory is released by `dispose()` or, failing that,
 * when the session is garbage-collected.
 *
 * A model on the GPU gets a device session (`device` "cuda"): state and scratch in device memory, the per-token
 * kernels enqueued by one native call. It reads the model's parameter buffers where they are instead of copying them
 * (the sLSTM biases are permuted into its own memory by every call), so its `nativeBytes` are the state and scratch,
 * and changes made to the weights in place (an optimizer step, loadStateDict) are seen by its next call: unlike the
 * CPU session's snapshot, it needs no `refresh()` (which does no harm); change them only while no stepAsync /
 * prefillAsync is pending (its kernels would read a mix of old and new weights). Parameters freed or moved off the GPU after
 * creation stay allocated, unchanged, for the session until `dispose()`. Tokens and logits stay host arrays;
 * getState returns CUDA tensors.
 */
export class InferenceSession extends NativeSession {
  readonly model: xLSTMLMModel;
  protected readonly kind = "InferenceSession";
  private readonly layouts: BlockLayout[];

  /** Prefer createInferenceSession(). */
  constructor(model: xLSTMLMModel, options: InferenceSessionOptions = {}) {
    if (!(model instanceof xLSTMLMModel)) throw new TypeError(`createInferenceSession: model must be an xLSTMLMModel, got ${kindOf(model)}`);
    options = optionsArg("createInferenceSession", options);
    const batch = options.batch ?? 1;
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH)
      throw new RangeError(`createInferenceSession: options.batch must be a positive integer <= ${MAX_BATCH}, got ${typeof batch === "number" ? batch : kindOf(batch)}`);
    const { config, layouts } = describeModel(model);
    for (const l of layouts) if (l.conv) l.conv[0] = batch;
    const device = modelDevice(model);
    super(native.inferCreate(config, snapshotParams(model, device), batch, device === "cuda"), batch, model.config.vocab_size, device);
    this.model = model;
    this.layouts = layouts;
  }

  /**
   * A copy of the recurrent state, in xLSTMLMModel.step's StackState layout: per block `block_<i>`, mLSTM
   * { conv_state [B,K,Di], mlstm_state { c [B,NH,DH,DH], n [B,NH,DH], m [B,NH] } }, sLSTM { conv_state [B,K,E] (null
   * when K = 0), slstm_state [NS,B,E] }. Pass it to model.step to continue on the Tensor path. A device session's
   * state comes back as CUDA tensors (its model's device).
   */
  getState(): StackState {
    return this.readState("getState", this.device);
  }

  /** The state as tensors on `device` (refresh keeps it on the host: no device tensors left for the GC). */
  private readState(method: string, device: "cpu" | "cuda"): StackState {
    const h = this.live(method);
    const B = this.batch;
    const out: StackState = {};
    const read = (i: number, part: "conv" | "c" | "n" | "m" | "slstm", shape: number[]) => {
      const t = Tensor.zeros(shape);
      native.inferGetState(h, i, part, t.f32());
      return device === "cuda" ? t.to("cuda") : t;
    };
    this.layouts.forEach((l, i) => {
      const conv = l.conv ? read(i, "conv", l.conv) : null;
      if (l.kind === "mlstm") {
        const mlstm_state: LayerState = { c: read(i, "c", [B, l.NH, l.DH, l.DH]), n: read(i, "n", [B, l.NH, l.DH]), m: read(i, "m", [B, l.NH]) };
        out[`block_${i}`] = { conv_state: conv, mlstm_state };
      } else {
        out[`block_${i}`] = { conv_state: conv, slstm_state: read(i, "slstm", [l.NS, B, l.NH * l.DH]) };
      }
    });
    return out;
  }

  /**
   * Replaces the recurrent state (copied): a StackState from model.step / model.forward(…, { returnLastState }) or
   * getState(). Missing blocks or parts mean the zero state; null resets everything. Conv states may have K rows
   * (step) or K-1 rows (forward's returned state). Trailing singleton dims of n and m are accepted.
   * @throws TypeError (non-float32 tensors), RangeError naming the entry with a wrong shape or an unknown key
   */
  setState(state: StackState | null): void {
    const h = this.live("setState");
    if (state === null || state === undefined) return native.inferReset(h);
    if (typeof state !== "object" || Array.isArray(state) || state instanceof Tensor)
      throw new TypeError(`InferenceSession.setState: state must be an object (a StackState) or null, got ${kindOf(state)}`);
    const B = this.batch;
    for (const k of Object.keys(state))
      if (!/^block_\d+$/.test(k) || Number(k.slice(6)) >= this.layouts.length)
        throw new RangeError(`InferenceSession.setState: state has key "${k}", but the model's blocks are block_0..block_${this.layouts.length - 1}`);
    // check everything first, so a bad entry leaves the session's state unchanged
    const writes: Array<[number, "conv" | "c" | "n" | "m" | "slstm", Float32Array | null]> = [];
    const tensorOf = (value: unknown, what: string): Tensor | null => {
      if (value === null || value === undefined) return null;
      if (!(value instanceof Tensor)) throw new TypeError(`InferenceSession.setState: ${what} must be a Tensor or null, got ${kindOf(value)}`);
      const v = requireTensor("InferenceSession.setState", what, value, { cuda: true });
      if (v.dtype !== "float32") throw new TypeError(`InferenceSession.setState: ${what} must be float32, got ${v.dtype}`);
      return v.device === "cpu" ? v : v.cpu();  // the binding copies host arrays in (either session)
    };
    const expect = (t: Tensor, what: string, want: number[], allowTrailingOnes = false) => {
      let s = [...t.shape];
      if (allowTrailingOnes) while (s.length > want.length && s[s.length - 1] === 1) s = s.slice(0, -1);
      if (s.length !== want.length || s.some((x, j) => x !== want[j])) throw new RangeError(`InferenceSession.setState: ${what} has shape ${formatShape(t.shape)}, expected ${formatShape(want)}`);
    };
    this.layouts.forEach((l, i) => {
      const key = `block_${i}`;
      const st = (state[key] ?? null) as LayerState | null;
      if (st !== null && (typeof st !== "object" || Array.isArray(st) || st instanceof Tensor)) throw new TypeError(`InferenceSession.setState: ${key} must be an object (a layer state) or null, got ${kindOf(st)}`);
      if (l.conv) {
        const [, K, F] = l.conv;
        const conv = tensorOf(st?.conv_state, `${key}.conv_state`);
        if (!conv) writes.push([i, "conv", null]);
        else if (conv.ndim === 3 && conv.shape[0] === B && conv.shape[1] === K - 1 && conv.shape[2] === F) {
          const full = new Float32Array(B * K * F); // forward's K-1 rows: the oldest slot of the step window is zero
          const src = conv.f32();
          for (let b = 0; b < B; ++b) full.set(src.subarray(b * (K - 1) * F, (b + 1) * (K - 1) * F), (b * K + 1) * F);
          writes.push([i, "conv", full]);
        } else {
          if (!(conv.ndim === 3 && conv.shape[0] === B && conv.shape[1] === K && conv.shape[2] === F))
            throw new RangeError(`InferenceSession.setState: ${key}.conv_state has shape ${formatShape(conv.shape)}, expected [B, K, F] = [${B}, ${K}, ${F}] (or [B, K-1, F])`);
          writes.push([i, "conv", conv.f32()]);
        }
      }
      if (l.kind === "mlstm") {
        const ms = (st?.mlstm_state ?? null) as LayerState | null;
        if (ms !== null && (typeof ms !== "object" || Array.isArray(ms) || ms instanceof Tensor)) throw new TypeError(`InferenceSession.setState: ${key}.mlstm_state must be an object { c, n, m } or null, got ${kindOf(ms)}`);
        const c = tensorOf(ms?.c, `${key}.mlstm_state.c`), n = tensorOf(ms?.n, `${key}.mlstm_state.n`), m = tensorOf(ms?.m, `${key}.mlstm_state.m`);
        if (c) expect(c, `${key}.mlstm_state.c`, [B, l.NH, l.DH, l.DH]);
        if (n) expect(n, `${key}.mlstm_state.n`, [B, l.NH, l.DH], true);
        if (m) expect(m, `${key}.mlstm_state.m`, [B, l.NH], true);
        writes.push([i, "c", c?.f32() ?? null], [i, "n", n?.f32() ?? null], [i, "m", m?.f32() ?? null]);
      } else {
        const s = tensorOf(st?.slstm_state, `${key}.slstm_state`);
        if (s) expect(s, `${key}.slstm_state`, [l.NS, B, l.NH * l.DH]);
        writes.push([i, "slstm", s?.f32() ?? null]);
      }
    });
    for (const [i, part, src] of writes) native.inferSetState(h, i, part, src);
  }

  /** Reads the model's current parameters again (after training or loadStateDict), keeping the state. */
  refresh(): void {
    const old = this.live("refresh");
    const state = this.readState("refresh", "cpu");
    const { config } = describeModel(this.model);
    if (modelDevice(this.model) !== this.device) throw new TypeError(`InferenceSession.refresh: the model moved from ${this.device} to ${modelDevice(this.model)}; create a new session`);
    this.handle = native.inferCreate(config, snapshotParams(this.model, this.device), this.batch, this.device === "cuda");
    native.inferDispose(old);
    this.setState(state);
  }

}

/**
 * Creates a fused inference session over `model` (a snapshot of its parameters; see InferenceSession).
 * @param options.batch batch rows B (default 1)
 * @throws TypeError when model is not an xLSTMLMModel, RangeError for a bad batch or an unsupported layer setup
 * @example
 *   const session = createInferenceSession(model, { batch: 1 });
 *   const logits = session.prefill(promptIds, promptIds.length); // [1, V]
 *   const next = session.step(Int32Array.of(argmax(logits)));    // [1, V]
 *   session.dispose();
 */
export function createInferenceSession(model: xLSTMLMModel, options: InferenceSessionOptions = {}): InferenceSession {
  return new InferenceSession(model, options);
}
