// xLSTMBlock (modules layer; XLSTM_SPEC §6.3): pre-norm residual around an mLSTM or sLSTM layer, plus an
// optional pre-norm residual gated feed-forward network:
//   x = x + layer(xlstm_norm(x));  x = x + ffn(ffn_norm(x))
// Keys: xlstm_norm.weight, xlstm.*, ffn_norm.weight, ffn.proj_up.weight, ffn.proj_down.weight.
import * as ops from "../ops";
import { Generator } from "../rng";
import { Tensor } from "../tensor";
import { FeedForwardConfig, GatedFeedForward, LayerNorm } from "./components";
import { Module } from "./module";

/** A recurrent layer as blocks use it (sLSTMLayer, mLSTMLayer). States are plain objects of tensors. */
export interface BlockLayer extends Module {
  forward(x: Tensor, options?: { state?: LayerState | null; returnLastState?: boolean }): { y: Tensor; state?: LayerState };
  step(x: Tensor, state?: LayerState | null): { y: Tensor; state: LayerState };
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

  private ffnPart(x: Tensor): Tensor {
    return this.ffn ? ops.add(x, this.ffn.forward(this.ffn_norm!.forward(x))) : x;
  }

  forward(x: Tensor, options: { state?: LayerState | null; returnLastState?: boolean } = {}): { y: Tensor; state?: LayerState } {
    const r = this.xlstm.forward(this.xlstm_norm.forward(x), options);
    return { y: this.ffnPart(ops.add(x, r.y)), state: r.state };
  }

  step(x: Tensor, state: LayerState | null = null): { y: Tensor; state: LayerState } {
    const r = this.xlstm.step(this.xlstm_norm.forward(x), state);
    return { y: this.ffnPart(ops.add(x, r.y)), state: r.state };
  }
}
