// mLSTMLayer (modules layer; XLSTM_SPEC §6.1, §4.1): the "pre up-projection" block body. proj_up splits into the
// mLSTM branch x_m and the gate z; x_m goes through the causal conv + SiLU (x_c); q, k from x_c and v from x_m by
// block-diagonal projections; the mLSTM cell (gates from concat(q, k, v), matrix memory, per-head output norm);
// the learnable skip; output gating by SiLU(z); proj_down. Keys are the reference's:
//   proj_up.weight [2Di, E], {q,k,v}_proj.weight [Di/Bq, Bq, Bq], conv1d.conv.{weight [Di,1,K], bias [Di]},
//   mlstm_cell.{igate,fgate}.{weight [NH, 3Di], bias [NH]}, mlstm_cell.outnorm.weight [Di], learnable_skip [Di],
//   proj_down.weight [E, Di]  (+ biases with bias: true)
import * as ops from "../ops";
import { mlstm, MlstmState } from "../ops/mlstm";
import { mlstmLayer, MlstmLayerWeights } from "../ops/mlstm-layer";
import { permuteOrView } from "../ops/shape";
import { defaultGenerator, Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { LayerState } from "./block";
import { BlockNorm, Linear, projUpDim } from "./components";
import { smallInit, uniformFanIn, wangInit } from "./init";
import { checkConfigObject, checkInt, checkNumber, MAX_CONFIG_DEPTH, MAX_CONFIG_DIM } from "./config-check";
import { expectShape, expectShapeTrailingOnes, floatArg, optionalBool, optionalEnum, optionalFloatArg, optionsArg, stateArg } from "./entry-checks";
import { Module } from "./module";
import { ParamGroup } from "./slstm-layer";
import { registerMlstmLayerFactory } from "./stack";

export interface mLSTMLayerConfig {
  embedding_dim: number;
  /** Default 4. */
  num_heads?: number;
  /** Default 4. */
  conv1d_kernel_size?: number;
  /** Default 4. */
  qkv_proj_blocksize?: number;
  /** Default 2.0. */
  proj_factor?: number;
  /** Default true. */
  round_proj_up_dim_up?: boolean;
  /** Default 64. */
  round_proj_up_to_multiple_of?: number;
  /** Default false. */
  bias?: boolean;
  /** Default 0. */
  dropout?: number;
  /** Accepted for compatibility; sequences of any length work. */
  context_length?: number;
  /** Default 1. */
  _num_blocks?: number;
  [other: string]: unknown;
}

/** The layer's recurrent state: the conv window and the cell's (c, n, m) (recurrent-form scaling, XLSTM_SPEC §4.3). */
export interface mLSTMLayerState {
  conv_state: Tensor | null;
  mlstm_state: MlstmState | null;
}

export class mLSTMLayer extends Module {
  readonly config: { embedding_dim: number; num_heads: number; conv1d_kernel_size: number; qkv_proj_blocksize: number; bias: boolean; dropout: number; _num_blocks: number };
  /** Di, the up-projected width */
  readonly innerDim: number;
  readonly headDim: number;
  /**
   * Run full sequences from the zero state through the fused native layer (ops.mlstmLayer: one native call each
   * way) instead of composing single ops. Default true; the composed path is used anyway with projection biases,
   * an initial or returned state, a form other than "auto", or CUDA tensors (the fused layer is CPU-only). Both give
   * the same numbers up to rounding.
   */
  fused = true;
  private readonly generator: Generator;

  constructor(config: mLSTMLayerConfig, options: { generator?: Generator } = {}) {
    super();
    checkConfigObject("mLSTMLayerConfig", config);
    const E = config.embedding_dim;
    const c = {
      embedding_dim: E,
      num_heads: config.num_heads ?? 4,
      conv1d_kernel_size: config.conv1d_kernel_size ?? 4,
      qkv_proj_blocksize: config.qkv_proj_blocksize ?? 4,
      bias: config.bias ?? false,
      dropout: config.dropout ?? 0,
      _num_blocks: config._num_blocks ?? 1,
    };
    if (!Number.isInteger(E) || E < 1) throw new RangeError(`mLSTMLayerConfig.embedding_dim must be a positive integer, got ${E}`);
    checkInt("mLSTMLayerConfig", "embedding_dim", E, 1, MAX_CONFIG_DIM);
    const factor = checkNumber("mLSTMLayerConfig", "proj_factor", config.proj_factor ?? 2.0, 0, 1024);
    const multiple = checkInt("mLSTMLayerConfig", "round_proj_up_to_multiple_of", config.round_proj_up_to_multiple_of ?? 64, 1, MAX_CONFIG_DIM);
    const Di = projUpDim(E, factor, multiple, config.round_proj_up_dim_up ?? true);
    if (!(Di >= 1 && Di <= MAX_CONFIG_DIM))
      throw new RangeError(`mLSTMLayerConfig.proj_factor ${factor} gives an inner dim of ${Di} (embedding_dim ${E}, round_proj_up_to_multiple_of ${multiple}), outside [1, ${MAX_CONFIG_DIM}]`);
    if (!Number.isInteger(c.num_heads) || c.num_heads < 1 || Di % c.num_heads) throw new RangeError(`mLSTMLayerConfig.num_heads (${c.num_heads}) must divide the inner dim (${Di})`);
    if (!Number.isInteger(c.qkv_proj_blocksize) || c.qkv_proj_blocksize < 1 || Di % c.qkv_proj_blocksize) throw new RangeError(`mLSTMLayerConfig.qkv_proj_blocksize (${c.qkv_proj_blocksize}) must divide the inner dim (${Di})`);
    if (!Number.isInteger(c.conv1d_kernel_size) || c.conv1d_kernel_size < 1) throw new RangeError(`mLSTMLayerConfig.conv1d_kernel_size must be a positive integer, got ${c.conv1d_kernel_size}`);
    if (typeof c.dropout !== "number" || !(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`mLSTMLayerConfig.dropout must be in [0, 1), got ${String(c.dropout)}`);
    checkInt("mLSTMLayerConfig", "conv1d_kernel_size", c.conv1d_kernel_size, 1, 1 << 16);
    checkInt("mLSTMLayerConfig", "_num_blocks", c._num_blocks, 1, MAX_CONFIG_DEPTH);
    this.config = c;
    this.innerDim = Di;
    this.headDim = Di / c.num_heads;
    this.generator = options.generator ?? defaultGenerator;
    const NH = c.num_heads, Bq = c.qkv_proj_blocksize, NP = Di / Bq, K = c.conv1d_kernel_size;
    this.registerParameter("learnable_skip", Tensor.ones([Di]));
    this.registerModule("proj_up", new Linear(E, 2 * Di, c.bias));
    for (const n of ["q_proj", "k_proj", "v_proj"]) {
      const g = new ParamGroup();
      g.add("weight", Tensor.zeros([NP, Bq, Bq]));
      if (c.bias) g.add("bias", Tensor.zeros([Di]));
      this.registerModule(n, g);
    }
    const conv = new ParamGroup();
    conv.add("weight", Tensor.zeros([Di, 1, K]));
    conv.add("bias", Tensor.zeros([Di]));
    const convWrap = new ParamGroup();
    convWrap.addModule("conv", conv);
    this.registerModule("conv1d", convWrap);
    const cell = new ParamGroup();
    for (const gname of ["igate", "fgate"]) {
      const g = new ParamGroup();
      g.add("weight", Tensor.zeros([NH, 3 * Di]));
      g.add("bias", Tensor.zeros([NH]));
      cell.addModule(gname, g);
    }
    const outnorm = new ParamGroup();
    outnorm.add("weight", Tensor.zeros([Di]));
    cell.addModule("outnorm", outnorm);
    this.registerModule("mlstm_cell", cell);
    this.registerModule("proj_down", new Linear(Di, E, c.bias));
    this.resetParameters();
  }

  private p(key: string): Tensor {
    const t = this.parameterByKey(key);
    if (!t) throw new Error(`mLSTMLayer: no parameter ${key}`);
    return t;
  }
  private maybe(key: string): Tensor | null {
    return this.parameterByKey(key);
  }

  /** The reference's reset_parameters (XLSTM_SPEC §6.1, §4.1). */
  resetParameters(): void {
    const c = this.config, E = c.embedding_dim, NH = c.num_heads, g = this.generator;
    const sd = this.stateDict();
    smallInit(sd.get("proj_up.weight")!, E, g);
    for (const n of ["q_proj", "k_proj", "v_proj"]) smallInit(sd.get(`${n}.weight`)!, E, g);
    wangInit(sd.get("proj_down.weight")!, E, c._num_blocks, g);
    for (const [k, t] of sd) if (k.endsWith(".bias") && !k.startsWith("conv1d") && !k.startsWith("mlstm_cell")) t.f32().fill(0);
    sd.get("learnable_skip")!.f32().fill(1);
    uniformFanIn(sd.get("conv1d.conv.weight")!, c.conv1d_kernel_size, g);
    uniformFanIn(sd.get("conv1d.conv.bias")!, c.conv1d_kernel_size, g);
    sd.get("mlstm_cell.igate.weight")!.f32().fill(0);
    sd.get("mlstm_cell.fgate.weight")!.f32().fill(0);
    const fb = sd.get("mlstm_cell.fgate.bias")!.f32();
    for (let h = 0; h < NH; ++h) fb[h] = NH === 1 ? 3 : 3 + (3 * h) / (NH - 1);
    g.fillNormal(sd.get("mlstm_cell.igate.bias")!.f32(), 0, 0.1);
    sd.get("mlstm_cell.outnorm.weight")!.f32().fill(0);
  }

  /**
   * @param x [B, S, E]
   * @param options.state a state returned with returnLastState (conv window of the last K-1 inputs, cell state)
   * @throws TypeError for a non-Tensor / non-float32 / detached x or state part, options or state of the wrong kind;
   *   RangeError for wrong shapes or an unknown form (messages start with "mLSTMLayer.forward: " and name the argument)
   */
  forward(x: Tensor, options: { state?: LayerState | null; returnLastState?: boolean; form?: "auto" | "parallel" | "chunkwise" | "recurrent" } = {}): { y: Tensor; state?: LayerState } {
    const op = "mLSTMLayer.forward";
    const E = this.config.embedding_dim;
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[2] !== E) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected [B, S, embedding_dim] = [B, S, ${E}]`);
    options = optionsArg(op, options);
    optionalBool(op, "options.returnLastState", options.returnLastState);
    optionalEnum(op, "options.form", options.form, ["auto", "parallel", "chunkwise", "recurrent"]);
    this.checkStateArg(op, "options.state", options.state, x.shape[0], false);
    const r = this.run(x, options);
    return options.returnLastState ? { y: r.y, state: r.state } : { y: r.y };
  }

  /**
   * @internal The pre-norm residual half of an xLSTM block around this layer, x + layer(norm(x)), as one fused op
   * (ops.mlstmLayer with preNorm) where the fused layer applies and `norm` has a weight and no bias; else null (the
   * block composes it). The same numbers as composing them.
   */
  fusedBlock(x: Tensor, norm: BlockNorm): Tensor | null {
    const c = this.config;
    if (!this.fused || x.device !== "cpu" || x.dtype !== "float32" || c.bias || (c.dropout > 0 && this.training)) return null;
    if (!norm.weight || norm.bias || x.ndim !== 3 || x.shape[2] !== c.embedding_dim) return null;
    return mlstmLayer(x, this.fusedWeights(), { numHeads: c.num_heads, preNorm: { weight: norm.weight, eps: norm.eps, residualWeight: norm.residualWeight } });
  }

  private fusedWeights(): MlstmLayerWeights {
    const sd = this.stateDict();
    const p = (k: string) => sd.get(k)!;
    return {
      wUp: p("proj_up.weight"), wConv: p("conv1d.conv.weight"), bConv: p("conv1d.conv.bias"),
      wQ: p("q_proj.weight"), wK: p("k_proj.weight"), wV: p("v_proj.weight"),
      wI: p("mlstm_cell.igate.weight"), bI: p("mlstm_cell.igate.bias"), wF: p("mlstm_cell.fgate.weight"), bF: p("mlstm_cell.fgate.bias"),
      wNorm: p("mlstm_cell.outnorm.weight"), skip: p("learnable_skip"), wDown: p("proj_down.weight"),
    };
  }

  /** The output dropout (training only). */
  private dropout(y: Tensor): Tensor {
    const p = this.config.dropout;
    return p > 0 && this.training ? ops.dropout(y, p, { generator: this.generator }) : y;
  }

  // stepWindow: the returned conv_state is the whole window [prev, xm] (step's K inputs), not its last K-1
  private run(x: Tensor, options: { state?: LayerState | null; returnLastState?: boolean; form?: "auto" | "parallel" | "chunkwise" | "recurrent"; stepWindow?: boolean }): { y: Tensor; state?: LayerState; xm: Tensor | null } {
    const c = this.config, E = c.embedding_dim, Di = this.innerDim, NH = c.num_heads, DH = this.headDim, K = c.conv1d_kernel_size;
    if (x.dtype !== "float32") throw new TypeError(`mLSTMLayer.forward: x must be float32, got ${x.dtype}`);
    if (x.ndim !== 3 || x.shape[2] !== E) throw new RangeError(`mLSTMLayer.forward: x has shape ${formatShape(x.shape)}, expected [B, S, embedding_dim] = [B, S, ${E}]`);
    const [B, S] = x.shape;
    const state = (options.state ?? null) as mLSTMLayerState | null;
    if (this.fused && x.device === "cpu" && !state && !options.returnLastState && (options.form ?? "auto") === "auto" && !c.bias) {
      const y = mlstmLayer(x, this.fusedWeights(), { numHeads: NH });
      return { y: this.dropout(y), xm: null };
    }
    const up = ops.linear(x, this.p("proj_up.weight"), this.maybe("proj_up.bias"));
    const xm = ops.slice(up, 2, 0, Di), z = ops.slice(up, 2, Di, 2 * Di);
    const prev = state?.conv_state ?? null;
    if (prev && (prev.ndim !== 3 || prev.shape[0] !== B || prev.shape[1] !== K - 1 || prev.shape[2] !== Di))
      throw new RangeError(`mLSTMLayer.forward: conv_state has shape ${formatShape(prev.shape)}, expected [B, K-1, Di] = [${B}, ${K - 1}, ${Di}]`);
    const hist = prev ? ops.cat([prev, xm], 1) : xm;  // the conv's input, and the next conv state's source
    let conv = ops.causalConv1d(hist, this.p("conv1d.conv.weight"), this.p("conv1d.conv.bias"));
    if (prev) conv = ops.slice(conv, 1, K - 1);
    const xc = ops.silu(conv);
    const q = ops.headwiseLinear(xc, this.p("q_proj.weight"), this.maybe("q_proj.bias"));
    const k = ops.headwiseLinear(xc, this.p("k_proj.weight"), this.maybe("k_proj.bias"));
    const v = ops.headwiseLinear(xm, this.p("v_proj.weight"), this.maybe("v_proj.bias"));
    const u = ops.cat([q, k, v], 2);
    const ig = permuteOrView(ops.linear(u, this.p("mlstm_cell.igate.weight"), this.p("mlstm_cell.igate.bias")), [0, 2, 1]); // [B, NH, S]
    const fg = permuteOrView(ops.linear(u, this.p("mlstm_cell.fgate.weight"), this.p("mlstm_cell.fgate.bias")), [0, 2, 1]);
    const heads = (t: Tensor) => permuteOrView(t.reshape(B, S, NH, DH), [0, 2, 1, 3]); // [B, NH, S, DH]
    const cell = mlstm(heads(q), heads(k), heads(v), ig, fg, { form: options.form ?? "auto", initialState: state?.mlstm_state ?? null, returnLastState: !!options.returnLastState });
    // outnorm: per-head layer norm over DH on [B, S, NH, DH]
    const hNorm = ops.multiHeadLayerNorm(permuteOrView(cell.h, [0, 2, 1, 3]), this.p("mlstm_cell.outnorm.weight"), null, { residualWeight: true, eps: 1e-5 }).reshape(B, S, Di);
    const h = ops.mul(ops.add(hNorm, ops.mul(this.p("learnable_skip"), xc)), ops.silu(z));
    const y = this.dropout(ops.linear(h, this.p("proj_down.weight"), this.maybe("proj_down.bias")));
    if (!options.returnLastState) return { y, xm };
    const T = hist.shape[1];
    const convState = options.stepWindow ? hist : T >= K - 1 ? ops.slice(hist, 1, T - (K - 1)) : ops.cat([Tensor.zeros([B, K - 1 - T, Di], { device: x.device }), hist], 1);
    return { y, xm, state: { conv_state: convState, mlstm_state: cell.state as unknown as LayerState } };
  }

  /**
   * One step as the reference's step(): x [B, 1, E]; conv_state holds the last K inputs [B, K, Di] (zeros when
   * missing); mlstm_state (c, n, m) in the recurrent-form scaling (zeros, m = 0, when missing).
   */
  step(x: Tensor, state: LayerState | null = null): { y: Tensor; state: LayerState } {
    const op = "mLSTMLayer.step";
    const K = this.config.conv1d_kernel_size, Di = this.innerDim, E = this.config.embedding_dim;
    floatArg(op, "x", x);
    if (x.ndim !== 3 || x.shape[1] !== 1 || x.shape[2] !== E) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected [B, 1, E] = [B, 1, ${E}]`);
    const B = x.shape[0];
    this.checkStateArg(op, "state", state, B, true);
    const s = (state ?? {}) as unknown as mLSTMLayerState;
    // the step window is the last K inputs [B, K, Di]; forward's returned state (the last K-1) is accepted too
    const window = s.conv_state ?? null;
    const prev = window ? (window.shape[1] === K ? ops.slice(window, 1, 1) : window) : Tensor.zeros([B, K - 1, Di], { device: x.device });
    // the step window returned: the K-1 previous inputs of the conv branch and this one (the conv's own input)
    const r = this.run(x, { state: { conv_state: prev, mlstm_state: (s.mlstm_state ?? null) as unknown as LayerState }, returnLastState: true, form: "recurrent", stepWindow: true });
    const st = r.state as unknown as mLSTMLayerState;
    return { y: r.y, state: { conv_state: st.conv_state, mlstm_state: st.mlstm_state as unknown as LayerState } };
  }

  /**
   * Checks a state argument of `op` (as the blocks and stacks do before running): null / undefined, or an object
   * whose conv_state (null, or float32 [B, K-1, Di]; in step mode also the step window [B, K, Di]) and mlstm_state
   * (null, or { c [B, NH, DH, DH], n [B, NH, DH], m [B, NH] } float32, n and m may carry trailing 1s) fit this layer
   * and batch size B.
   * @throws TypeError / RangeError starting with `${op}: ` and naming `${name}.<part>`
   */
  checkStateArg(op: string, name: string, state: unknown, B: number, step: boolean): void {
    const s = stateArg(op, name, state);
    if (!s) return;
    const K = this.config.conv1d_kernel_size, Di = this.innerDim, NH = this.config.num_heads, DH = this.headDim;
    const conv = optionalFloatArg(op, `${name}.conv_state`, s.conv_state);
    if (conv && (conv.ndim !== 3 || conv.shape[0] !== B || (conv.shape[1] !== K - 1 && !(step && conv.shape[1] === K)) || conv.shape[2] !== Di))
      throw new RangeError(
        step
          ? `${op}: ${name}.conv_state has shape ${formatShape(conv.shape)}, expected [B, K, Di] = [${B}, ${K}, ${Di}] (or forward's [B, K-1, Di])`
          : `${op}: ${name}.conv_state has shape ${formatShape(conv.shape)}, expected [B, K-1, Di] = [${B}, ${K - 1}, ${Di}]`,
      );
    const ms = stateArg(op, `${name}.mlstm_state`, s.mlstm_state);
    if (!ms) return;
    const c = floatArg(op, `${name}.mlstm_state.c`, ms.c);
    const n = floatArg(op, `${name}.mlstm_state.n`, ms.n);
    const m = floatArg(op, `${name}.mlstm_state.m`, ms.m);
    expectShape(op, `${name}.mlstm_state.c`, c, [B, NH, DH, DH], "[B, NH, DH, DH]");
    expectShapeTrailingOnes(op, `${name}.mlstm_state.n`, n, [B, NH, DH], "[B, NH, DH]");
    expectShapeTrailingOnes(op, `${name}.mlstm_state.m`, m, [B, NH], "[B, NH]");
  }
}

registerMlstmLayerFactory((config, generator) => new mLSTMLayer(config as mLSTMLayerConfig, { generator }));
