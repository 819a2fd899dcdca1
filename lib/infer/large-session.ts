// The xLSTM Large device inference session (products layer): decode steps of an xLSTMLarge model on the GPU, each
// one native call (csrc/binding/cuda_large_session.h) that enqueues the step's kernels on preallocated device
// buffers and waits once for the logits, instead of 30-40 tensor ops per block from JavaScript. The state uses
// LargeState's layout (per block "0", "1", ...: c [B,NH,DK,DV], n [B,NH,DK], m [B,NH,1]), so a prompt prefilled by
// model.forward (the chunkwise kernels) continues here (setState), and the session's state continues on model.step.
import type { DeviceBuffer } from "../../binding";
import { native } from "../native";
import { optionsArg } from "../nn/entry-checks";
import { LargeState, xLSTMLarge } from "../nn/large";
import { kindOf, requireTensor } from "../ops/args";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { NativeSession } from "./native-session";
import { InferenceSessionOptions, MAX_BATCH } from "./session";

/**
 * A device session over an xLSTMLarge model whose parameters are on the GPU (float32 or bfloat16 matrix weights, as
 * the model holds them). `step` / `stepAsync` run one token per batch row; `prefill` runs S steps (for long prompts,
 * prefill with model.forward and setState its state instead: the chunkwise kernels). The session reads the model's
 * parameter buffers where they are, without a copy (a 7B model's weights would double its device memory): its own
 * device memory (`nativeBytes`) is the state and the scratch. Parameters freed or moved off the GPU after creation
 * stay allocated, unchanged, for the session until `dispose()`; changes made in place (an optimizer step,
 * loadStateDict) are seen by its next step (make them while no stepAsync is pending).
 */
export class LargeInferenceSession extends NativeSession {
  readonly model: xLSTMLarge;
  protected readonly kind = "LargeInferenceSession";

  /** Prefer createLargeInferenceSession(). */
  constructor(model: xLSTMLarge, options: InferenceSessionOptions = {}) {
    const what = "createLargeInferenceSession";
    if (!(model instanceof xLSTMLarge)) throw new TypeError(`${what}: model must be an xLSTMLarge, got ${kindOf(model)}`);
    options = optionsArg(what, options);
    const batch = options.batch ?? 1;
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH)
      throw new RangeError(`${what}: options.batch must be a positive integer <= ${MAX_BATCH}, got ${typeof batch === "number" ? batch : kindOf(batch)}`);
    const c = model.config;
    const params: Record<string, DeviceBuffer> = {};
    for (const [k, t] of model.stateDict()) {
      if (t.device !== "cuda") throw new TypeError(`${what}: parameter ${k} is on ${t.device}; the session runs on the GPU (model.to("cuda"))`);
      params[k] = t._buffer(`${what}: parameter ${k}`);
    }
    const config = {
      vocabSize: c.vocab_size, embeddingDim: c.embedding_dim, numHeads: c.num_heads, qkDim: c.qk_dim, vDim: c.v_dim, ffnUpDim: c.ffn_up_proj_dim,
      numBlocks: c.num_blocks, weightMode: c.weight_mode, dtype: model.weightDtype, useBias: c.use_bias, normEps: c.norm_eps, eps: c.eps,
      gateSoftCap: c.gate_soft_cap, outputSoftCap: c.output_logit_soft_cap, outNorm: c.add_out_norm,
    };
    super(native.inferCreateLarge(config, params, batch), batch, c.vocab_size, "cuda");
    this.model = model;
  }

  /** A copy of the state (CUDA tensors, LargeState's layout): per block c [B,NH,DK,DV], n [B,NH,DK], m [B,NH,1]. */
  getState(): LargeState {
    const h = this.live("getState");
    const c = this.model.config, B = this.batch;
    const read = (i: number, part: "c" | "n" | "m", shape: number[]) => {
      const t = Tensor.zeros(shape);
      native.inferGetState(h, i, part, t.f32());
      return t.to("cuda");
    };
    const out: LargeState = {};
    for (let i = 0; i < c.num_blocks; ++i)
      out[String(i)] = { c: read(i, "c", [B, c.num_heads, c.qk_head_dim, c.v_head_dim]), n: read(i, "n", [B, c.num_heads, c.qk_head_dim]), m: read(i, "m", [B, c.num_heads, 1]) };
    return out;
  }

  /**
   * Replaces the state (copied) with a LargeState (CPU or CUDA tensors) from model.forward / model.step or
   * getState(); missing blocks mean the zero state, null resets everything.
   * @throws TypeError / RangeError naming the entry that does not fit (the state is then unchanged)
   */
  setState(state: LargeState | null): void {
    const what = "LargeInferenceSession.setState";
    const h = this.live("setState");
    if (state === null || state === undefined) return native.inferReset(h);
    if (typeof state !== "object" || Array.isArray(state) || state instanceof Tensor) throw new TypeError(`${what}: state must be an object (a LargeState) or null, got ${kindOf(state)}`);
    const c = this.model.config, B = this.batch;
    for (const k of Object.keys(state))
      if (!/^\d+$/.test(k) || Number(k) >= c.num_blocks) throw new RangeError(`${what}: state has key "${k}", but the model's blocks are 0..${c.num_blocks - 1}`);
    const writes: Array<[number, "c" | "n" | "m", Float32Array | null]> = [];
    const shapes = { c: [B, c.num_heads, c.qk_head_dim, c.v_head_dim], n: [B, c.num_heads, c.qk_head_dim], m: [B, c.num_heads, 1] };
    for (let i = 0; i < c.num_blocks; ++i) {
      const st = state[String(i)] ?? null;
      if (st !== null && (typeof st !== "object" || Array.isArray(st) || st instanceof Tensor)) throw new TypeError(`${what}: ${i} must be an object { c, n, m } or null, got ${kindOf(st)}`);
      for (const part of ["c", "n", "m"] as const) {
        const v = st ? (st as unknown as Record<string, unknown>)[part] : null;
        if (v === null || v === undefined) {
          writes.push([i, part, null]);
          continue;
        }
        const t = requireTensor(what, `${i}.${part}`, v, { cuda: true });
        if (t.dtype !== "float32") throw new TypeError(`${what}: ${i}.${part} must be float32, got ${t.dtype}`);
        if (t.numel !== shapes[part].reduce((a, b) => a * b, 1)) throw new RangeError(`${what}: ${i}.${part} has shape ${formatShape(t.shape)}, expected ${formatShape(shapes[part])}`);
        writes.push([i, part, (t.device === "cpu" ? t : t.cpu()).f32()]);
      }
    }
    for (const [i, part, src] of writes) native.inferSetState(h, i, part, src);
  }
}

/**
 * Creates a device inference session over an xLSTMLarge model on the GPU (see LargeInferenceSession).
 * @example
 *   const s = createLargeInferenceSession(model);                    // model.to("cuda") first
 *   const pre = noGrad(() => model.forward(prompt, { returnLastState: true }));
 *   s.setState(pre.state!);
 *   const logits = s.step(Int32Array.of(nextId));                    // [1, V]
 */
export function createLargeInferenceSession(model: xLSTMLarge, options: InferenceSessionOptions = {}): LargeInferenceSession {
  return new LargeInferenceSession(model, options);
}
