// xLSTMBlock (modules layer; XLSTM_SPEC §6.3): pre-norm residual around an mLSTM or sLSTM layer, plus an
// optional pre-norm residual gated feed-forward network:
//   x = x + layer(xlstm_norm(x));  x = x + ffn(ffn_norm(x))
// Keys: xlstm_norm.weight, xlstm.*, ffn_norm.weight, ffn.proj_up.weight, ffn.proj_down.weight.
import * as ops from "../ops";
import { Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { FeedForwardConfig, GatedFeedForward, LayerNorm } from "./components";
import { floatArg, optionalBool, optionsArg } from "./entry-checks";
import { Module } from "./module";

/** A recurrent layer as blocks use it (sLSTMLayer, mLSTMLayer). States are plain objects of tensors. */
export interface BlockLayer extends Module {
  forward(x: Tensor, options?: { state?: LayerState | null; returnLastState?: boolean }): { y: Tensor; state?: LayerState };
  step(x: Tensor, state?: LayerState | null): { y: Tensor; state: LayerState };
  /**
   * Checks a state argument of the public entry `op` for batch size B (forward's state, or with `step` the step
   * state), throwing a TypeError / RangeError that starts with `${op}: ` and names `${name}.<part>`. Optional: a
   * layer without it is checked by its own forward / step.
   */
  checkStateArg?(op: string, name: string, state: unknown, B: number, step: boolean): void;
  /** x + this(norm(x)) as one fused op, or null where the layer cannot (the block composes it then). */
  fusedBlock?(x: Tensor, norm: LayerNorm): Tensor | null;
}

/** A layer's recurrent state: named tensors (conv_state, slstm_state, or mlstm_state.{c,n,m}). */
export type LayerState = { [key: string]: Tensor | null | LayerState };

export class xLSTMBlock extends Module {
  readonly xlstm_norm: LayerNorm;
  readonly xlstm: BlockLayer;
  readonly ffn_norm: LayerNorm | null;
  readonly ffn: GatedFeedForward | null;

  /**
   * @param layer the block's mLSTM or sLSTM layer
   * @param embeddingDim E
   * @param feedforward FFN config (null for none; mLSTM blocks have none)
   */
  constructor(layer: BlockLayer, embeddingDim: number, feedforward: (FeedForwardConfig & { _num_blocks?: number }) | null, options: { generator?: Generator } = {}) {
    super();
    this.xlstm_norm = this.registerModule("xlstm_norm", new LayerNorm(embeddingDim));
    this.xlstm = this.registerModule("xlstm", layer);
    if (feedforward) {
      this.ffn_norm = this.registerModule("ffn_norm", new LayerNorm(embeddingDim));
      this.ffn = this.registerModule("ffn", new GatedFeedForward({ ...feedforward, embedding_dim: embeddingDim }, options));
    } else {
      this.ffn_norm = null;
      this.ffn = null;
    }
  }

  resetParameters(): void {
    this.xlstm_norm.resetParameters();
    (this.xlstm as unknown as { resetParameters(): void }).resetParameters();
    this.ffn_norm?.resetParameters();
    this.ffn?.resetParameters();
  }

  /** x as a float32 [B, S, E] tensor (S = 1 with `step`); returns B. */
  private checkX(op: string, x: unknown, step: boolean): number {
    const t = floatArg(op, "x", x);
    const E = this.xlstm_norm.ndim;
    if (t.ndim !== 3 || t.shape[2] !== E || (step && t.shape[1] !== 1))
      throw new RangeError(`${op}: x has shape ${formatShape(t.shape)}, expected [B, ${step ? "1" : "S"}, E] = [B, ${step ? "1" : "S"}, ${E}]`);
    return t.shape[0];
  }

  private ffnPart(x: Tensor): Tensor {
    if (!this.ffn) return x;
    // fused into one op where it applies (same values)
    return this.ffn.fusedBlock(x, this.ffn_norm!) ?? ops.add(x, this.ffn.forward(this.ffn_norm!.forward(x)));
  }

  /**
   * @param x [B, S, E] float32
   * @param options.state the layer's state (as returned with returnLastState)
   * @throws TypeError / RangeError starting with "xLSTMBlock.forward: " and naming the argument
   */
  forward(x: Tensor, options: { state?: LayerState | null; returnLastState?: boolean } = {}): { y: Tensor; state?: LayerState } {
    const op = "xLSTMBlock.forward";
    const B = this.checkX(op, x, false);
    options = optionsArg(op, options);
    optionalBool(op, "options.returnLastState", options.returnLastState);
    this.xlstm.checkStateArg?.(op, "options.state", options.state, B, false);
    // the mLSTM layer fuses norm, layer and residual into one op where it can (same numbers)
    const fused = !options.state && !options.returnLastState ? this.xlstm.fusedBlock?.(x, this.xlstm_norm) : null;
    if (fused) return { y: this.ffnPart(fused) };
    const r = this.xlstm.forward(this.xlstm_norm.forward(x), options);
    return { y: this.ffnPart(ops.add(x, r.y)), state: r.state };
  }

  /**
   * One step, x [B, 1, E], from the layer's step state (null: zeros).
   * @throws TypeError / RangeError starting with "xLSTMBlock.step: " and naming the argument
   */
  step(x: Tensor, state: LayerState | null = null): { y: Tensor; state: LayerState } {
    const op = "xLSTMBlock.step";
    this.xlstm.checkStateArg?.(op, "state", state, this.checkX(op, x, true), true);
    const r = this.xlstm.step(this.xlstm_norm.forward(x), state);
    return { y: this.ffnPart(ops.add(x, r.y)), state: r.state };
  }
}
