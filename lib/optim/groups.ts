// Weight-decay parameter groups of the reference's training recipe (optimizers layer; XLSTM_SPEC §7.5,
// WeightDecayOptimGroupMixin and xLSTMLMModel._create_weight_decay_optim_groups): decay on every parameter whose
// name contains "weight" and not "norm", except the token embedding unless weight_decay_on_embedding; no decay on
// the rest (biases, norms, learnable_skip, _recurrent_kernel_, _bias_). Tied weights count once, under the first
// name (as named_parameters() deduplicates).
import type { Module } from "../nn/module";
import type { Tensor } from "../tensor";

export interface WeightDecayGroupOptions {
  /** Key of the token embedding. Default "token_embedding.weight". */
  embeddingKey?: string;
  /** Decay the token embedding too. Default: the model's config.weight_decay_on_embedding, else false. */
  weightDecayOnEmbedding?: boolean;
}

/** The names that go into each group (for logging and tests). */
export function splitWeightDecayNames(model: Module, options: WeightDecayGroupOptions = {}): { decay: string[]; noDecay: string[] } {
  const embKey = options.embeddingKey ?? "token_embedding.weight";
  const cfg = (model as unknown as { config?: { weight_decay_on_embedding?: boolean } }).config;
  const onEmb = options.weightDecayOnEmbedding ?? cfg?.weight_decay_on_embedding ?? false;
  const seen = new Set<Tensor>();
  const decay: string[] = [], noDecay: string[] = [];
  let embedding: string | null = null;
  for (const [name, p] of model.namedParameters()) {
    if (seen.has(p)) continue;
    seen.add(p);
    if (name === embKey) embedding = name;
    else if (name.includes("weight") && !name.includes("norm")) decay.push(name);
    else noDecay.push(name);
  }
  if (embedding) (onEmb ? decay : noDecay).push(embedding);
  return { decay, noDecay };
}

/**
 * Two optimizer groups: `{ params: decayed, weight_decay }` and `{ params: the rest, weight_decay: 0 }` (empty
 * groups are left out).
 * @example new optim.AdamW(optim.xlstmParamGroups(model, 0.1), { lr: 1e-3 })
 */
export function xlstmParamGroups(model: Module, weightDecay: number, options: WeightDecayGroupOptions = {}): { params: Tensor[]; weight_decay: number }[] {
  if (!(weightDecay >= 0)) throw new RangeError(`xlstmParamGroups: weightDecay must be >= 0, got ${weightDecay}`);
  const sd = new Map(model.namedParameters());
  const { decay, noDecay } = splitWeightDecayNames(model, options);
  return [
    { params: decay.map((n) => sd.get(n)!), weight_decay: weightDecay },
    { params: noDecay.map((n) => sd.get(n)!), weight_decay: 0 },
  ].filter((g) => g.params.length > 0);
}
