// Language models the trainer and generator drive (training layer): the xLSTM LM (nn.xLSTMLMModel) and a classic
// LSTM LM as in "Dive into Deep Learning" (one-hot input, nn.LSTM, linear head; keys rnn.* and linear.*, as d2l's
// RNNModel). Both expose forward(idx, { state, returnLastState }) and step(idx [B, 1], state).
import { Module } from "../nn/module";
import { LSTM } from "../nn/lstm";
import { xLSTMLMModel, xLSTMLMModelConfig } from "../nn/stack";
import * as ops from "../ops";
import { Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor, zeroedF32 } from "../tensor";
import type { StateTree } from "./state-tree";

// The mLSTM layer registers itself with the block stack when imported; load it if this version has it.
let mlstmLoadError: string | null = null;
try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require("../nn/mlstm-layer");
} catch (e) {
  mlstmLoadError = (e as Error).message.split("\n")[0];
}

/** Why the mLSTM layer is unavailable (null when it loaded). */
export function mlstmUnavailableReason(): string | null {
  return mlstmLoadError;
}

/** Config of the LSTM language model. */
export interface LSTMLMConfig {
  vocab_size: number;
  hidden_size: number;
  /** Default 1. */
  num_layers?: number;
  /** Between LSTM layers. Default 0. */
  dropout?: number;
}

export type ModelType = "xlstm" | "lstm";

/** What to build: the model type and its config (reference field names for xLSTM). */
export type ModelSpec = { type: "xlstm"; config: xLSTMLMModelConfig } | { type: "lstm"; config: LSTMLMConfig };

/** The interface the trainer and the generator use. */
export interface LanguageModel extends Module {
  readonly config: object;
  forward(idx: Tensor, options?: { state?: StateTree; returnLastState?: boolean }): { logits: Tensor; state?: StateTree };
  step(idx: Tensor, state?: StateTree): { logits: Tensor; state: StateTree };
}

/** d2l's RNNModel with an LSTM: logits = linear(LSTM(one_hot(idx))). */
export class LSTMLanguageModel extends Module implements LanguageModel {
  readonly config: Required<LSTMLMConfig>;
  readonly rnn: LSTM;
  readonly linear: Tensor;
  readonly linearBias: Tensor;

  /**
   * Weights as PyTorch initialises them: U(-1/sqrt(H), 1/sqrt(H)) for the LSTM and the head.
   * @throws RangeError for non-positive sizes
   */
  constructor(config: LSTMLMConfig, options: { generator?: Generator } = {}) {
    super();
    const c = { num_layers: 1, dropout: 0, ...config };
    for (const k of ["vocab_size", "hidden_size", "num_layers"] as const)
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`LSTMLMConfig.${k} must be a positive integer, got ${c[k]}`);
    this.config = c;
    const gen = options.generator ?? new Generator(0);
    this.rnn = this.registerModule("rnn", new LSTM({ input_size: c.vocab_size, hidden_size: c.hidden_size, num_layers: c.num_layers, dropout: c.dropout, batch_first: true, generator: gen }));
    const head = new Holder();
    this.linear = head.add("weight", Tensor.zeros([c.vocab_size, c.hidden_size]));
    this.linearBias = head.add("bias", Tensor.zeros([c.vocab_size]));
    this.registerModule("linear", head);
    const k = 1 / Math.sqrt(c.hidden_size);
    gen.fillUniform(this.linear.f32(), -k, k);
    gen.fillUniform(this.linearBias.f32(), -k, k);
  }

  private oneHot(idx: Tensor): Tensor {
    if (idx.ndim !== 2) throw new RangeError(`LSTMLanguageModel: idx has shape ${formatShape(idx.shape)}, expected [B, S]`);
    const [B, S] = idx.shape, V = this.config.vocab_size;
    const x = zeroedF32(B * S * V);
    const ids = idx.toFlatArray();
    ids.forEach((id, i) => {
      if (!(id >= 0 && id < V)) throw new RangeError(`LSTMLanguageModel: token id ${id} at position ${i} is outside [0, ${V})`);
      x[i * V + id] = 1;
    });
    return new Tensor(x, [B, S, V], { device: this.linear.device });
  }

  forward(idx: Tensor, options: { state?: StateTree; returnLastState?: boolean } = {}): { logits: Tensor; state?: StateTree } {
    const st = options.state as { h: Tensor; c: Tensor } | null | undefined;
    const [out, [h, c]] = this.rnn.forward(this.oneHot(idx), st ? [st.h, st.c] : null);
    const logits = ops.linear(out, this.linear, this.linearBias);
    return options.returnLastState ? { logits, state: { h, c } } : { logits };
  }

  step(idx: Tensor, state: StateTree = null): { logits: Tensor; state: StateTree } {
    if (idx.ndim !== 2 || idx.shape[1] !== 1) throw new RangeError(`LSTMLanguageModel.step: idx has shape ${formatShape(idx.shape)}, expected [B, 1]`);
    const r = this.forward(idx, { state, returnLastState: true });
    return { logits: r.logits, state: r.state! };
  }
}

class Holder extends Module {
  add(name: string, t: Tensor): Tensor {
    return this.registerParameter(name, t)!;
  }
}

/**
 * Build a model from its spec; parameters drawn from `generator` (the trainer seeds it).
 * @throws RangeError/TypeError naming the config field that is invalid
 */
export function buildModel(spec: ModelSpec, generator: Generator): LanguageModel {
  if (!spec || typeof spec !== "object") throw new TypeError("buildModel: expected { type, config }");
  if (spec.type === "xlstm") return new xLSTMLMModel(spec.config, { generator }) as unknown as LanguageModel;
  if (spec.type === "lstm") return new LSTMLanguageModel(spec.config, { generator });
  throw new RangeError(`buildModel: unknown model type ${JSON.stringify((spec as { type?: unknown }).type)} (expected "xlstm" or "lstm")`);
}

/** Number of distinct parameter values (tied weights once). */
export function countParameters(model: Module): number {
  return [...new Set(model.parameters())].reduce((a, p) => a + p.numel, 0);
}
