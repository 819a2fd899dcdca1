// Components of the xLSTM blocks (modules layer; XLSTM_SPEC §5.3, §5.5): LayerNorm with the residual weight
// (scale 1 + w, no bias, eps 1e-5) and the gated feed-forward network.
import * as ops from "../ops";
import { gatedActivation, UnaryOp } from "../ops/elementwise";
import { ffnBlock } from "../ops/ffn-block";
import { defaultGenerator, Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { smallInit, wangInit } from "./init";
import { checkConfigObject, checkInt, checkNumber, MAX_CONFIG_DEPTH, MAX_CONFIG_DIM } from "./config-check";
import { floatArg } from "./entry-checks";
import { Module } from "./module";

/** LayerNorm(ndim) of the reference: y = (x - mean) / sqrt(var + eps) * (1 + w) [+ b]; w starts at 0. */
export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly ndim: number,
    options: { weight?: boolean; bias?: boolean; eps?: number; residualWeight?: boolean } = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    this.residualWeight = options.residualWeight ?? true;
    this.weight = options.weight === false ? null : this.registerParameter("weight", Tensor.zeros([ndim]))!;
    this.bias = options.bias ? this.registerParameter("bias", Tensor.zeros([ndim]))! : null;
    this.resetParameters();
  }
  readonly eps: number;
  readonly residualWeight: boolean;

  resetParameters(): void {
    this.weight?.f32().fill(this.residualWeight ? 0 : 1);
    this.bias?.f32().fill(0);
  }

  /**
   * @param x [..., ndim] float32
   * @throws TypeError (not a float32 Tensor), RangeError (last dimension not ndim), both starting "LayerNorm.forward: "
   */
  forward(x: Tensor): Tensor {
    floatArg("LayerNorm.forward", "x", x);
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.ndim) throw new RangeError(`LayerNorm.forward: x has shape ${formatShape(x.shape)}, expected [..., ${this.ndim}]`);
    return ops.layerNorm(x, this.weight, this.bias, { eps: this.eps, residualWeight: this.residualWeight });
  }
}

export interface FeedForwardConfig {
  /** Default 1.3. */
  proj_factor?: number;
  /** "gelu" (default, exact erf form), "relu", "relu^2", "sigmoid", "swish", "selu". */
  act_fn?: string;
  /** Default 0. */
  dropout?: number;
  /** Default false. */
  bias?: boolean;
  /** Default "ffn_gated" (the only type). */
  ff_type?: string;
  /** Default true. */
  round_proj_up_dim_up?: boolean;
  /** Default 64. */
  round_proj_up_to_multiple_of?: number;
  embedding_dim?: number;
  _num_blocks?: number;
  [other: string]: unknown;
}

/** P = ceil(proj_factor E / m) m (or floor without round_proj_up_dim_up), as the reference (XLSTM_SPEC §5.5). */
export function projUpDim(E: number, factor: number, multiple: number, roundUp: boolean): number {
  const q = (factor * E) / multiple;
  return (roundUp ? Math.ceil(q) : Math.floor(q)) * multiple;
}

/** What a fused block half reads of the block's LayerNorm (mLSTMLayer / GatedFeedForward fusedBlock). */
export type BlockNorm = Pick<LayerNorm, "weight" | "bias" | "eps" | "residualWeight">;

// The activations that are one native unary op: their gated form runs fused (ops/elementwise.ts gatedActivation)
const GATED_NATIVE = new Map<string, UnaryOp>([["gelu", "gelu"], ["relu", "relu"], ["sigmoid", "sigmoid"], ["swish", "silu"]]);

function activation(name: string, x: Tensor): Tensor {
  switch (name) {
    case "gelu":
      return ops.gelu(x);
    case "relu":
      return ops.relu(x);
    case "relu^2": {
      const r = ops.relu(x);
      return ops.mul(r, r);
    }
    case "sigmoid":
      return ops.sigmoid(x);
    case "swish":
      return ops.silu(x);
    case "selu": {
      // selu(x) = λ (max(0, x) + min(0, α (e^x - 1)))
      const a = 1.6732632423543772, l = 1.0507009873554805;
      const neg = ops.scale(ops.neg(ops.relu(ops.neg(ops.sub(ops.exp(x), 1)))), a);
      return ops.scale(ops.add(ops.relu(x), neg), l);
    }
    default:
      throw new RangeError(`GatedFeedForward: act_fn must be one of gelu, relu, relu^2, sigmoid, swish, selu; got "${name}"`);
  }
}

/** GatedFeedForward: [a | u] = proj_up(x); y = dropout(proj_down(act(a) * u)). */
export class GatedFeedForward extends Module {
  readonly projUpDim: number;
  readonly embeddingDim: number;
  readonly config: Required<Pick<FeedForwardConfig, "proj_factor" | "act_fn" | "dropout" | "bias">> & { _num_blocks: number };
  private readonly generator: Generator;
  private readonly up: { weight: Tensor; bias: Tensor | null };
  private readonly down: { weight: Tensor; bias: Tensor | null };

  constructor(config: FeedForwardConfig & { embedding_dim: number }, options: { generator?: Generator } = {}) {
    super();
    checkConfigObject("GatedFeedForward", config);
    const E = config.embedding_dim;
    if (!Number.isInteger(E) || E < 1) throw new RangeError(`GatedFeedForward: embedding_dim must be a positive integer, got ${E}`);
    checkInt("GatedFeedForward", "embedding_dim", E, 1, MAX_CONFIG_DIM);
    if (config.ff_type !== undefined && config.ff_type !== "ffn_gated") throw new RangeError(`GatedFeedForward: ff_type must be "ffn_gated", got "${config.ff_type}"`);
    this.config = { proj_factor: config.proj_factor ?? 1.3, act_fn: config.act_fn ?? "gelu", dropout: config.dropout ?? 0, bias: config.bias ?? false, _num_blocks: config._num_blocks ?? 1 };
    activation(this.config.act_fn, Tensor.zeros([1])); // validates the name now
    this.embeddingDim = E;
    const factor = checkNumber("GatedFeedForward", "proj_factor", this.config.proj_factor, 0, 1024);
    const multiple = checkInt("GatedFeedForward", "round_proj_up_to_multiple_of", config.round_proj_up_to_multiple_of ?? 64, 1, MAX_CONFIG_DIM);
    checkNumber("GatedFeedForward", "dropout", this.config.dropout, 0, 1 - Number.EPSILON, true);
    checkInt("GatedFeedForward", "_num_blocks", this.config._num_blocks, 1, MAX_CONFIG_DEPTH);
    this.projUpDim = projUpDim(E, factor, multiple, config.round_proj_up_dim_up ?? true);
    if (!(this.projUpDim >= 1 && this.projUpDim <= MAX_CONFIG_DIM))
      throw new RangeError(`GatedFeedForward: proj_factor ${factor} gives a hidden dim of ${this.projUpDim} (embedding_dim ${E}, round_proj_up_to_multiple_of ${multiple}), outside [1, ${MAX_CONFIG_DIM}]`);
    this.generator = options.generator ?? defaultGenerator;
    const P = this.projUpDim;
    const up = new Linear(E, 2 * P, this.config.bias), down = new Linear(P, E, this.config.bias);
    this.registerModule("proj_up", up);
    this.registerModule("proj_down", down);
    this.up = up;
    this.down = down;
    this.resetParameters();
  }

  resetParameters(): void {
    smallInit(this.up.weight, this.embeddingDim, this.generator);
    wangInit(this.down.weight, this.embeddingDim, this.config._num_blocks, this.generator);
    this.up.bias?.f32().fill(0);
    this.down.bias?.f32().fill(0);
  }

  /**
   * @internal x + this(norm(x)) as one fused op (ops/ffn-block.ts) where it applies: CPU, no biases, no dropout while
   * training, an activation with a native op, `norm` with a weight and no bias; else null (the block composes it).
   * The same values as composing them.
   */
  fusedBlock(x: Tensor, norm: BlockNorm): Tensor | null {
    const act = GATED_NATIVE.get(this.config.act_fn);
    if (!act || x.device !== "cpu" || x.dtype !== "float32" || this.up.bias || this.down.bias) return null;
    if ((this.config.dropout > 0 && this.training) || !norm.weight || norm.bias) return null;
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.embeddingDim) return null;
    return ffnBlock(x, { normWeight: norm.weight, normEps: norm.eps, residualWeight: norm.residualWeight, wUp: this.up.weight, wDown: this.down.weight, act });
  }

  /**
   * @param x [..., embedding_dim] float32
   * @throws TypeError (not a float32 Tensor), RangeError (wrong last dimension), starting "GatedFeedForward.forward: "
   */
  forward(x: Tensor): Tensor {
    floatArg("GatedFeedForward.forward", "x", x);
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.embeddingDim) throw new RangeError(`GatedFeedForward.forward: x has shape ${formatShape(x.shape)}, expected [..., ${this.embeddingDim}]`);
    const P = this.projUpDim;
    const h = ops.linear(x, this.up.weight, this.up.bias);
    const act = GATED_NATIVE.get(this.config.act_fn);
    const a = act && h.device === "cpu"
      ? gatedActivation(h, act)
      : ops.mul(activation(this.config.act_fn, ops.slice(h, -1, 0, P)), ops.slice(h, -1, P, 2 * P));
    let y = ops.linear(a, this.down.weight, this.down.bias);
    if (this.config.dropout > 0 && this.training) y = ops.dropout(y, this.config.dropout, { generator: this.generator });
    return y;
  }
}

/** nn.Linear's parameters (weight [out, in], optional bias), initialised by the owning module. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(inFeatures: number, outFeatures: number, bias = false) {
    super();
    this.weight = this.registerParameter("weight", Tensor.zeros([outFeatures, inFeatures]))!;
    this.bias = bias ? this.registerParameter("bias", Tensor.zeros([outFeatures]))! : null;
  }
  /**
   * @param x [..., in] float32
   * @throws TypeError (not a float32 Tensor), RangeError (wrong last dimension), both starting "Linear.forward: "
   */
  forward(x: Tensor): Tensor {
    floatArg("Linear.forward", "x", x);
    const inF = this.weight.shape[1];
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) throw new RangeError(`Linear.forward: x has shape ${formatShape(x.shape)}, expected [..., in] = [..., ${inF}]`);
    return ops.linear(x, this.weight, this.bias);
  }
}
