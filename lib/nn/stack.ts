// xLSTMBlockStack and xLSTMLMModel (modules layer; XLSTM_SPEC §7). Configs use the reference's field names and
// are resolved exactly as the reference's post-init does (slstm_at, _block_map, per-block _block_idx and
// _num_blocks, embedding_dim/dropout/bias propagation).
import * as ops from "../ops";
import { defaultGenerator, Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { BlockLayer, LayerState, xLSTMBlock } from "./block";
import { FeedForwardConfig, LayerNorm } from "./components";
import { smallInit } from "./init";
import { checkConfigObject, checkInt, MAX_CONFIG_DEPTH, MAX_CONFIG_DIM } from "./config-check";
import { floatArg, optionalBool, optionsArg, stateArg, tokenArg } from "./entry-checks";
import { Module } from "./module";
import { sLSTMLayer, sLSTMLayerConfig } from "./slstm-layer";

export interface xLSTMBlockStackConfig {
  mlstm_block?: { mlstm?: Record<string, unknown>; [k: string]: unknown } | null;
  slstm_block?: { slstm?: sLSTMLayerConfig | Record<string, unknown>; feedforward?: FeedForwardConfig | null; [k: string]: unknown } | null;
  /** Default -1 (no limit here: any length works). */
  context_length?: number;
  /** Default 1. */
  num_blocks?: number;
  /** Default 128. */
  embedding_dim?: number;
  /** Default true. */
  add_post_blocks_norm?: boolean;
  /** Default false. */
  bias?: boolean;
  /** Default 0. */
  dropout?: number;
  /** Block indices with an sLSTM block, or "all". Default []. */
  slstm_at?: number[] | "all";
  _block_map?: string;
  [other: string]: unknown;
}

export interface xLSTMLMModelConfig extends xLSTMBlockStackConfig {
  vocab_size: number;
  /** Default false. */
  tie_weights?: boolean;
  /** Default false. */
  weight_decay_on_embedding?: boolean;
  /** Default false. */
  add_embedding_dropout?: boolean;
}

/** Builds an mLSTM layer; registered by mlstm-layer.ts (kept apart so the stack does not depend on its kernels). */
export type MlstmLayerFactory = (config: Record<string, unknown>, generator: Generator) => BlockLayer;
let mlstmFactory: MlstmLayerFactory | null = null;
export function registerMlstmLayerFactory(f: MlstmLayerFactory): void {
  mlstmFactory = f;
}

/** The per-position block types (0 = mLSTM, 1 = sLSTM), as the reference's _block_map. */
export function resolveBlockMap(c: xLSTMBlockStackConfig): number[] {
  const n = c.num_blocks ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`xLSTMBlockStackConfig.num_blocks must be a positive integer, got ${String(n)}`);
  checkInt("xLSTMBlockStackConfig", "num_blocks", n, 1, MAX_CONFIG_DEPTH);
  let at = c.slstm_at ?? [];
  if (!c.mlstm_block) at = "all";
  const idx = at === "all" ? [...Array(n).keys()] : at;
  if (!Array.isArray(idx)) throw new TypeError(`xLSTMBlockStackConfig.slstm_at must be a list of block indices or "all"`);
  for (const i of idx) if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`xLSTMBlockStackConfig.slstm_at: index ${i} is out of range for num_blocks = ${n}`);
  if (idx.length && !c.slstm_block) throw new RangeError("xLSTMBlockStackConfig: slstm_at names sLSTM blocks but slstm_block is null");
  const set = new Set(idx); // a Set: a hostile config may list millions of indices
  return [...Array(n).keys()].map((i) => (set.has(i) ? 1 : 0));
}

export class xLSTMBlockStack extends Module {
  readonly config: xLSTMBlockStackConfig & { embedding_dim: number; num_blocks: number };
  readonly blockMap: number[];
  readonly blocks: xLSTMBlock[] = [];
  readonly post_blocks_norm: LayerNorm | null;

  constructor(config: xLSTMBlockStackConfig, options: { generator?: Generator } = {}) {
    super();
    checkConfigObject("xLSTMBlockStack", config);
    const gen = options.generator ?? defaultGenerator;
    const E = config.embedding_dim ?? 128, n = config.num_blocks ?? 1;
    if (!Number.isInteger(E) || E < 1) throw new RangeError(`xLSTMBlockStackConfig.embedding_dim must be a positive integer, got ${String(E)}`);
    checkInt("xLSTMBlockStackConfig", "embedding_dim", E, 1, MAX_CONFIG_DIM);
    this.config = { ...config, embedding_dim: E, num_blocks: n };
    this.blockMap = resolveBlockMap(this.config);
    const holder = new BlockList();
    this.registerModule("blocks", holder);
    this.blockMap.forEach((kind, i) => {
      let block: xLSTMBlock;
      if (kind === 1) {
        const sb = config.slstm_block!;
        const layer = new sLSTMLayer({ ...(sb.slstm as sLSTMLayerConfig), embedding_dim: E, dropout: config.dropout ?? 0, _num_blocks: n, _block_idx: i }, { generator: gen });
        const ff = sb.feedforward === undefined ? {} : sb.feedforward;
        block = new xLSTMBlock(layer as unknown as BlockLayer, E, ff ? { ...ff, _num_blocks: n } : null, { generator: gen });
      } else {
        if (!mlstmFactory) throw new Error("xLSTMBlockStack: mLSTM blocks need lib/nn/mlstm-layer (import it, or use slstm_at: \"all\")");
        const layer = mlstmFactory({ ...(config.mlstm_block?.mlstm ?? {}), embedding_dim: E, bias: config.bias ?? false, dropout: config.dropout ?? 0, context_length: config.context_length ?? -1, _num_blocks: n }, gen);
        block = new xLSTMBlock(layer, E, null, { generator: gen });
      }
      holder.add(String(i), block);
      this.blocks.push(block);
    });
    this.post_blocks_norm = config.add_post_blocks_norm ?? true ? this.registerModule("post_blocks_norm", new LayerNorm(E)) : null;
  }

  resetParameters(): void {
    for (const b of this.blocks) b.resetParameters();
    this.post_blocks_norm?.resetParameters();
  }

  /**
   * @param x [B, S, E]
   * @param options.state per-block states { block_0: ..., block_1: ... } as returned with returnLastState
   * @throws TypeError / RangeError starting with "xLSTMBlockStack.forward: " and naming the argument
   */
  forward(x: Tensor, options: { state?: StackState | null; returnLastState?: boolean } = {}): { y: Tensor; state?: StackState } {
    const op = "xLSTMBlockStack.forward";
    const E = this.config.embedding_dim;
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[2] !== E) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected [B, S, embedding_dim] = [B, S, ${E}]`);
    options = optionsArg(op, options);
    optionalBool(op, "options.returnLastState", options.returnLastState);
    this.checkStackState(op, "options.state", options.state, x.shape[0], false);
    const out: StackState = {};
    this.blocks.forEach((b, i) => {
      const r = b.forward(x, { state: options.state?.[`block_${i}`] ?? null, returnLastState: options.returnLastState });
      x = r.y;
      if (r.state) out[`block_${i}`] = r.state;
    });
    const y = this.post_blocks_norm ? this.post_blocks_norm.forward(x) : x;
    return options.returnLastState ? { y, state: out } : { y };
  }

  /**
   * One step, x [B, 1, E], from an explicit state (missing entries mean zero state).
   * @throws TypeError / RangeError starting with "xLSTMBlockStack.step: " and naming the argument
   */
  step(x: Tensor, state: StackState | null = null): { y: Tensor; state: StackState } {
    const op = "xLSTMBlockStack.step";
    const E = this.config.embedding_dim;
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[1] !== 1 || x.shape[2] !== E) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected [B, 1, embedding_dim] = [B, 1, ${E}]`);
    this.checkStackState(op, "state", state, x.shape[0], true);
    const out: StackState = {};
    this.blocks.forEach((b, i) => {
      const r = b.step(x, state?.[`block_${i}`] ?? null);
      x = r.y;
      out[`block_${i}`] = r.state;
    });
    return { y: this.post_blocks_norm ? this.post_blocks_norm.forward(x) : x, state: out };
  }

  /**
   * Checks a stack state argument of `op` for batch size B: null / undefined, or an object whose "block_<i>" entries
   * fit block i (see the layers' checkStateArg; `step`: the step states). Other keys are ignored, as by forward.
   * @throws TypeError / RangeError starting with `${op}: ` and naming `${name}.block_<i>.<part>`
   */
  checkStackState(op: string, name: string, state: unknown, B: number, step: boolean): void {
    const s = stateArg(op, name, state);
    if (!s) return;
    this.blocks.forEach((b, i) => b.xlstm.checkStateArg?.(op, `${name}.block_${i}`, s[`block_${i}`], B, step));
  }
}

/** The recurrent state of a stack: one entry per block, "block_<i>". */
export type StackState = { [block: string]: LayerState };

/** Holds the blocks under keys "0", "1", ... (the reference's ModuleList). */
class BlockList extends Module {
  add(name: string, m: Module): void {
    this.registerModule(name, m);
  }
}

export class xLSTMLMModel extends Module {
  readonly config: xLSTMLMModelConfig;
  readonly token_embedding: Tensor;
  readonly xlstm_block_stack: xLSTMBlockStack;
  readonly lm_head: Tensor;
  private readonly generator: Generator;

  /**
   * The parameters are drawn as after the reference's reset_parameters() (XLSTM_SPEC §7.4).
   * @throws RangeError naming the config field that is invalid
   */
  constructor(config: xLSTMLMModelConfig, options: { generator?: Generator } = {}) {
    super();
    checkConfigObject("xLSTMLMModel", config);
    if (!Number.isInteger(config.vocab_size) || config.vocab_size < 1) throw new RangeError(`xLSTMLMModelConfig.vocab_size must be a positive integer, got ${String(config.vocab_size)}`);
    checkInt("xLSTMLMModelConfig", "vocab_size", config.vocab_size, 1, MAX_CONFIG_DIM);
    checkInt("xLSTMLMModelConfig", "embedding_dim", config.embedding_dim ?? 128, 1, MAX_CONFIG_DIM);
    this.config = config;
    this.generator = options.generator ?? defaultGenerator;
    const E = config.embedding_dim ?? 128, V = config.vocab_size;
    const emb = new ParamHolder();
    this.token_embedding = emb.add("weight", Tensor.zeros([V, E]));
    this.registerModule("token_embedding", emb);
    this.xlstm_block_stack = this.registerModule("xlstm_block_stack", new xLSTMBlockStack(config, { generator: this.generator }));
    const head = new ParamHolder();
    this.lm_head = config.tie_weights ? head.add("weight", this.token_embedding) : head.add("weight", Tensor.zeros([V, E]));
    this.registerModule("lm_head", head);
    this.resetParameters();
  }

  resetParameters(): void {
    const E = this.config.embedding_dim ?? 128;
    smallInit(this.token_embedding, E, this.generator);
    if (!this.config.tie_weights) smallInit(this.lm_head, E, this.generator);
    this.xlstm_block_stack.resetParameters();
  }

  /** Parameters once each (tied weights appear once; stateDict() still lists both keys, as the reference). */
  override parameters(): Tensor[] {
    return [...new Set(super.parameters())];
  }

  /**
   * @param idx token ids [B, S] (int32 or int64)
   * @returns logits [B, S, V], and the final state with returnLastState
   * @throws TypeError for a non-Tensor / detached / non-integer idx, options or state parts of the wrong kind;
   *   RangeError for wrong shapes or ids outside [0, vocab_size) (messages start with "xLSTMLMModel.forward: ")
   */
  forward(idx: Tensor, options: { state?: StackState | null; returnLastState?: boolean } = {}): { logits: Tensor; state?: StackState } {
    const op = "xLSTMLMModel.forward";
    const [B] = tokenArg(op, "idx", idx, this.config.vocab_size);
    options = optionsArg(op, options);
    optionalBool(op, "options.returnLastState", options.returnLastState);
    this.xlstm_block_stack.checkStackState(op, "options.state", options.state, B, false);
    let x = ops.embedding(idx, this.token_embedding);
    if (this.config.add_embedding_dropout && (this.config.dropout ?? 0) > 0 && this.training) x = ops.dropout(x, this.config.dropout!, { generator: this.generator });
    const r = this.xlstm_block_stack.forward(x, options);
    return { logits: ops.linear(r.y, this.lm_head), state: r.state };
  }

  /**
   * One token per row, idx [B, 1], from an explicit state: logits [B, 1, V] and the new state.
   * @throws TypeError / RangeError starting with "xLSTMLMModel.step: " and naming the argument
   */
  step(idx: Tensor, state: StackState | null = null): { logits: Tensor; state: StackState } {
    const op = "xLSTMLMModel.step";
    const [B] = tokenArg(op, "idx", idx, this.config.vocab_size, true);
    this.xlstm_block_stack.checkStackState(op, "state", state, B, true);
    const r = this.xlstm_block_stack.step(ops.embedding(idx, this.token_embedding), state);
    return { logits: ops.linear(r.y, this.lm_head), state: r.state };
  }
}

class ParamHolder extends Module {
  add(name: string, t: Tensor): Tensor {
    return this.registerParameter(name, t)!;
  }
}
