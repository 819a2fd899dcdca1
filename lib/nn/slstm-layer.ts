// sLSTMLayer (modules layer; XLSTM_SPEC §6.2): causal conv + SiLU feeding the i/f gates, block-diagonal gate
// projections, the fused sLSTM cell, dropout, per-head group norm. Parameter keys are the reference's:
//   conv1d.conv.weight [E,1,K], conv1d.conv.bias [E], {f,i,z,o}gate.weight [NH,DH,DH],
//   slstm_cell._recurrent_kernel_, slstm_cell._bias_, group_norm.weight [E]
// The cell parameters live in the reference's "cuda" layout (kernel [NH, DH, 4DH], bias (head, gate, unit)), so
// stateDict() writes that layout; loadStateDict() accepts either layout (the kernel's shape tells which).
import * as ops from "../ops";
import { defaultGenerator, Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { smallInit, uniformFanIn } from "./init";
import { checkConfigObject, checkEnum, checkInt, MAX_CONFIG_DEPTH, MAX_CONFIG_DIM } from "./config-check";
import { expectShape, floatArg, optionalBool, optionalFloatArg, optionsArg, stateArg } from "./entry-checks";
import { Module } from "./module";
import { biasVanillaToCuda, detectSlstmLayout, kernelVanillaToCuda } from "./slstm-layout";

export interface sLSTMLayerConfig {
  embedding_dim: number;
  /** Default 4. */
  num_heads?: number;
  /** Default 4; 0 disables the convolution. */
  conv1d_kernel_size?: number;
  /** Default true (residual weight 1 + w); false: no group-norm weight (scale 1). */
  group_norm_weight?: boolean;
  /** Default 0. */
  dropout?: number;
  /** "slstm" (default) or "lstm". */
  function?: "slstm" | "lstm";
  /** "powerlaw_blockdependent" (default), "small_init", "zeros" or "standard". */
  bias_init?: "powerlaw_blockdependent" | "small_init" | "zeros" | "standard";
  /** "zeros" (default) or "standard". */
  recurrent_weight_init?: "zeros" | "standard";
  /** Position of this layer's block in the stack (for the power-law bias), default 0. */
  _block_idx?: number;
  /** Number of blocks in the stack, default 1. */
  _num_blocks?: number;
  /** Accepted for compatibility with reference configs; xlstm always runs its own fused kernel. */
  backend?: string;
  [other: string]: unknown;
}

export interface sLSTMLayerState {
  /** [B, K-1, E] the last K-1 inputs (as the reference's forward(return_last_state=True)) */
  conv_state: Tensor | null;
  /** [NS, B, E] the cell state (h, c, n, m) or (h, c) */
  slstm_state: Tensor;
}

export class sLSTMLayer extends Module {
  readonly config: Required<Pick<sLSTMLayerConfig, "embedding_dim" | "num_heads" | "conv1d_kernel_size" | "group_norm_weight" | "dropout" | "function" | "bias_init" | "recurrent_weight_init" | "_block_idx" | "_num_blocks">>;
  readonly headDim: number;
  private readonly generator: Generator;

  constructor(config: sLSTMLayerConfig, options: { generator?: Generator } = {}) {
    super();
    checkConfigObject("sLSTMLayer", config);
    const c = {
      embedding_dim: config.embedding_dim,
      num_heads: config.num_heads ?? 4,
      conv1d_kernel_size: config.conv1d_kernel_size ?? 4,
      group_norm_weight: config.group_norm_weight ?? true,
      dropout: config.dropout ?? 0,
      function: config.function ?? "slstm",
      bias_init: config.bias_init ?? "powerlaw_blockdependent",
      recurrent_weight_init: config.recurrent_weight_init ?? "zeros",
      _block_idx: config._block_idx ?? 0,
      _num_blocks: config._num_blocks ?? 1,
    };
    const E = c.embedding_dim, NH = c.num_heads;
    if (!Number.isInteger(E) || E < 1) throw new RangeError(`sLSTMLayer: embedding_dim must be a positive integer, got ${E}`);
    if (!Number.isInteger(NH) || NH < 1 || E % NH !== 0) throw new RangeError(`sLSTMLayer: num_heads (${NH}) must divide embedding_dim (${E})`);
    if (!Number.isInteger(c.conv1d_kernel_size) || c.conv1d_kernel_size < 0) throw new RangeError(`sLSTMLayer: conv1d_kernel_size must be an integer >= 0, got ${c.conv1d_kernel_size}`);
    if (c.function !== "slstm" && c.function !== "lstm") throw new RangeError(`sLSTMLayer: function must be "slstm" or "lstm", got ${String(c.function)}`);
    if (typeof c.dropout !== "number" || !(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`sLSTMLayer: dropout must be in [0, 1), got ${String(c.dropout)}`);
    checkInt("sLSTMLayer", "embedding_dim", E, 1, MAX_CONFIG_DIM);
    checkInt("sLSTMLayer", "conv1d_kernel_size", c.conv1d_kernel_size, 0, 1 << 16);
    checkEnum("sLSTMLayer", "bias_init", c.bias_init, ["powerlaw_blockdependent", "small_init", "zeros", "standard"]);
    checkEnum("sLSTMLayer", "recurrent_weight_init", c.recurrent_weight_init, ["zeros", "standard"]);
    checkInt("sLSTMLayer", "_num_blocks", c._num_blocks, 1, MAX_CONFIG_DEPTH);
    checkInt("sLSTMLayer", "_block_idx", c._block_idx, 0, MAX_CONFIG_DEPTH);
    this.config = c;
    this.headDim = E / NH;
    this.generator = options.generator ?? defaultGenerator;
    const DH = this.headDim, K = c.conv1d_kernel_size;
    const conv = new ParamGroup();
    if (K > 0) {
      conv.add("weight", Tensor.zeros([E, 1, K]));
      conv.add("bias", Tensor.zeros([E]));
      const wrap = new ParamGroup();
      wrap.addModule("conv", conv);
      this.registerModule("conv1d", wrap);
    }
    for (const g of ["fgate", "igate", "zgate", "ogate"]) {
      const m = new ParamGroup();
      m.add("weight", Tensor.zeros([NH, DH, DH]));
      this.registerModule(g, m);
    }
    const cell = new ParamGroup();
    cell.add("_recurrent_kernel_", Tensor.zeros([NH, DH, 4 * DH]));
    cell.add("_bias_", Tensor.zeros([4 * E]));
    this.registerModule("slstm_cell", cell);
    if (c.group_norm_weight) {
      const gn = new ParamGroup();
      gn.add("weight", Tensor.zeros([E]));
      this.registerModule("group_norm", gn);
    }
    this.resetParameters();
  }

  private p(key: string): Tensor {
    const t = this.parameterByKey(key);
    if (!t) throw new Error(`sLSTMLayer: no parameter ${key}`);
    return t;
  }

  /** The reference's reset_parameters (XLSTM_SPEC §6.2, §2.5). */
  resetParameters(): void {
    const c = this.config, E = c.embedding_dim, NH = c.num_heads, DH = this.headDim, g = this.generator;
    const sd = this.stateDict();
    if (c.conv1d_kernel_size > 0) {
      uniformFanIn(sd.get("conv1d.conv.weight")!, c.conv1d_kernel_size, g);
      uniformFanIn(sd.get("conv1d.conv.bias")!, c.conv1d_kernel_size, g);
    }
    for (const k of ["fgate", "igate", "zgate", "ogate"]) smallInit(sd.get(`${k}.weight`)!, E, g);
    const R = sd.get("slstm_cell._recurrent_kernel_")!.f32();
    if (c.recurrent_weight_init === "zeros") R.fill(0);
    else g.fillUniform(R, -1 / Math.sqrt(E), 1 / Math.sqrt(E));
    // bias β[h, gate, k] in the stored (head, gate, unit) order
    const b = sd.get("slstm_cell._bias_")!.f32();
    b.fill(0);
    const at = (h: number, gate: number, k: number) => (h * 4 + gate) * DH + k;
    if (c.bias_init === "standard") g.fillUniform(b, -1 / Math.sqrt(E), 1 / Math.sqrt(E));
    for (let h = 0; h < NH; ++h)
      for (let k = 0; k < DH; ++k) {
        if (c.bias_init === "powerlaw_blockdependent") {
          const r = c._num_blocks > 1 ? c._block_idx / (c._num_blocks - 1) : 0;
          b[at(h, 1, k)] = 5 - 12 * Math.pow(k / (DH - 1), 0.3 + 1.3 * r);
        } else if (c.bias_init === "small_init") b[at(h, 1, k)] = DH === 1 ? 3 : 3 + (3 * k) / (DH - 1);
      }
    if (c.group_norm_weight) sd.get("group_norm.weight")!.f32().fill(0);
  }

  /** Accepts `slstm_cell.*` in the vanilla layout too, converting it to the stored cuda layout. */
  override normalizeStateDict(sd: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
    const kk = `${prefix}slstm_cell._recurrent_kernel_`, bk = `${prefix}slstm_cell._bias_`;
    const k = sd.get(kk), b = sd.get(bk);
    if (k && detectSlstmLayout(k.shape, this.config.num_heads) === "vanilla") {
      const NH = this.config.num_heads, DH = k.shape[2];
      sd.set(kk, Tensor.from(kernelVanillaToCuda(k.to("float32").f32(), NH, DH), [NH, DH, 4 * DH]));
      if (b) sd.set(bk, Tensor.from(biasVanillaToCuda(b.to("float32").f32(), NH, DH), [4 * NH * DH]));
    }
    return super.normalizeStateDict(sd, prefix);
  }

  /**
   * @param x [B, S, E]
   * @param state optional initial state (as returned with returnLastState)
   * @returns y [B, S, E] and, with returnLastState, the final { conv_state, slstm_state }
   * @throws TypeError for a non-Tensor / non-float32 / detached x or state part, options or state of the wrong kind;
   *   RangeError for wrong shapes (messages start with "sLSTMLayer.forward: " and name the argument)
   */
  forward(x: Tensor, options: { state?: { conv_state: Tensor | null; slstm_state: Tensor | null } | null; returnLastState?: boolean } = {}): { y: Tensor; state?: sLSTMLayerState } {
    const op = "sLSTMLayer.forward";
    const c = this.config, E = c.embedding_dim, NH = c.num_heads, DH = this.headDim, K = c.conv1d_kernel_size;
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[2] !== E) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected [B, S, embedding_dim] = [B, S, ${E}]`);
    const [B, S] = x.shape;
    options = optionsArg(op, options);
    optionalBool(op, "options.returnLastState", options.returnLastState);
    this.checkStateArg(op, "options.state", options.state, B, false);
    const state = options.state ?? null;
    let xc = x;
    // a carried conv state is the previous K-1 inputs: prepend them, drop their outputs (and keep the last K-1 of
    // this window as the next state)
    const xin = K > 0 && state?.conv_state ? ops.cat([state.conv_state, x], 1) : x;
    if (K > 0) {
      const prev = state?.conv_state ?? null;
      let conv = ops.causalConv1d(xin, this.p("conv1d.conv.weight"), this.p("conv1d.conv.bias"));
      if (prev) conv = ops.slice(conv, 1, K - 1);
      xc = ops.silu(conv);
    }
    // Quirk (XLSTM_SPEC §6.2): the module named fgate feeds the input gate and igate the forget gate.
    const gatesIn = ops.headwiseLinearConcat([
      { x: xc, weight: this.p("fgate.weight") }, // i
      { x: xc, weight: this.p("igate.weight") }, // f
      { x, weight: this.p("zgate.weight") }, // z
      { x, weight: this.p("ogate.weight") }, // o
    ]);
    // stored bias (head, gate, unit) -> the kernel's (gate, head, unit)
    const bias = ops.permute(this.p("slstm_cell._bias_").reshape(NH, 4, DH), [1, 0, 2]).reshape(4 * E);
    const s0 = state?.slstm_state ?? null;
    const cell = c.function === "slstm" ? ops.slstm(gatesIn, this.p("slstm_cell._recurrent_kernel_"), bias, s0) : ops.lstm(gatesIn, this.p("slstm_cell._recurrent_kernel_"), bias, s0);
    let y = cell.y;
    if (c.dropout > 0 && this.training) y = ops.dropout(y, c.dropout, { generator: this.generator });
    y = ops.multiHeadLayerNorm(y.reshape(B, S, NH, DH), c.group_norm_weight ? this.p("group_norm.weight") : null, null, { residualWeight: true, eps: 1e-5 }).reshape(B, S, E);
    if (!options.returnLastState) return { y };
    let convState: Tensor | null = null;
    if (K > 0) {
      const T = xin.shape[1];
      convState = T >= K - 1 ? ops.slice(xin, 1, T - (K - 1)) : ops.cat([Tensor.zeros([B, K - 1 - T, E], { device: x.device }), xin], 1);
    }
    return { y, state: { conv_state: convState, slstm_state: cell.state } };
  }

  /**
   * One time step with an explicit state, as the reference's step(): x [B, 1, E]; the state's conv_state holds
   * the last K inputs [B, K, E] (zeros when null), slstm_state [NS, B, E] (zeros when null).
   */
  step(x: Tensor, state: sLSTMLayerStepState | null = null): { y: Tensor; state: sLSTMLayerStepState } {
    const op = "sLSTMLayer.step";
    const E = this.config.embedding_dim;
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[1] !== 1 || x.shape[2] !== E) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected [B, 1, E] = [B, 1, ${E}]`);
    this.checkStateArg(op, "state", state, x.shape[0], true);
    return stepLayer(this, x, state);
  }

  /**
   * Checks a state argument of `op` (as the blocks and stacks do before running): null / undefined, or an object
   * whose conv_state (null, or float32 [B, K-1, E]; in step mode also the step window [B, K, E]) and slstm_state
   * (null, or float32 [NS, B, E], NS = 4 for "slstm", 2 for "lstm") fit this layer and batch size B.
   * @throws TypeError / RangeError starting with `${op}: ` and naming `${name}.<part>`
   */
  checkStateArg(op: string, name: string, state: unknown, B: number, step: boolean): void {
    const s = stateArg(op, name, state);
    if (!s) return;
    const c = this.config, E = c.embedding_dim, K = c.conv1d_kernel_size, NS = c.function === "lstm" ? 2 : 4;
    const conv = optionalFloatArg(op, `${name}.conv_state`, s.conv_state);
    if (conv && K > 0 && (conv.ndim !== 3 || conv.shape[0] !== B || (conv.shape[1] !== K - 1 && !(step && conv.shape[1] === K)) || conv.shape[2] !== E))
      throw new RangeError(
        step
          ? `${op}: ${name}.conv_state has shape ${formatShape(conv.shape)}, expected [B, K, E] = [${B}, ${K}, ${E}] (or forward's [B, K-1, E])`
          : `${op}: ${name}.conv_state has shape ${formatShape(conv.shape)}, expected [B, K-1, E] = [${B}, ${K - 1}, ${E}]`,
      );
    const st = optionalFloatArg(op, `${name}.slstm_state`, s.slstm_state);
    if (st) expectShape(op, `${name}.slstm_state`, st, [NS, B, E], "[NS, B, E]");
  }
}

export interface sLSTMLayerStepState {
  /** [B, K, E] the last K inputs (the reference's step-mode conv state) */
  conv_state: Tensor | null;
  /** [NS, B, E] */
  slstm_state: Tensor | null;
}

/** One step of sLSTMLayer (see sLSTMLayer.step). */
function stepLayer(layer: sLSTMLayer, x: Tensor, state: sLSTMLayerStepState | null): { y: Tensor; state: sLSTMLayerStepState } {
  const K = layer.config.conv1d_kernel_size;
  const [B, , E] = x.shape;
  // (arguments checked by sLSTMLayer.step) the step window is the last K inputs [B, K, E]; forward's returned state
  // (the last K-1) is accepted too
  const window = state?.conv_state ?? null;
  // the oldest slot of the step window never influences later outputs (XLSTM_SPEC §5.2)
  const prev = K > 0 ? (window ? (window.shape[1] === K ? ops.slice(window, 1, 1) : window) : Tensor.zeros([B, K - 1, E], { device: x.device })) : null;
  const r = layer.forward(x, { state: { conv_state: prev, slstm_state: state?.slstm_state ?? null }, returnLastState: true });
  const conv = K > 0 ? ops.cat([prev!, x], 1) : null;
  return { y: r.y, state: { conv_state: conv, slstm_state: r.state!.slstm_state } };
}

/** A plain holder of parameters and submodules (so keys nest like the reference's modules). */
export class ParamGroup extends Module {
  add(name: string, t: Tensor): Tensor {
    return this.registerParameter(name, t)!;
  }
  addModule(name: string, m: Module): Module {
    return this.registerModule(name, m);
  }
}
