// Defaults of `xlstm train` and train() (training layer): the model, the data and the recipe that run when nothing
// is given. Sized to finish in a few minutes on 2 CPU cores while visibly learning the bundled time-machine text.
import type { xLSTMLMModelConfig } from "../nn/stack";

/** The mLSTM block of the mixed default (the reference's config (a) settings). */
export const MLSTM_BLOCK = { mlstm: { conv1d_kernel_size: 4, qkv_proj_blocksize: 4, num_heads: 4 } };

/**
 * ==== THE DEFAULT MODEL OF `xlstm train` (vocab_size comes from the tokenizer) ====
 * Mixed mLSTM + sLSTM (sLSTM at block 1, as the reference's config (a)). The line marked SWITCH picks the block
 * types: `mlstm_block: null, slstm_at: "all",` gives an sLSTM-only model (for builds without lib/nn/mlstm-layer.ts).
 * About 450k parameters; 800 steps of 16 x 128 characters take about 2 minutes on 2 cores.
 */
export const DEFAULT_XLSTM_CONFIG: Omit<xLSTMLMModelConfig, "vocab_size"> = {
  mlstm_block: MLSTM_BLOCK, slstm_at: [1], // SWITCH (see above)
  slstm_block: { slstm: { backend: "cuda", num_heads: 4, conv1d_kernel_size: 4, bias_init: "powerlaw_blockdependent" }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
  context_length: 128,
  num_blocks: 4,
  embedding_dim: 128,
  tie_weights: false,
  weight_decay_on_embedding: false,
  dropout: 0.1,
};

/** The default recipe (AdamW with the reference's weight-decay groups, warm-up + cosine). */
export const DEFAULT_TRAINING = {
  steps: 800,
  batchSize: 16,
  seqLen: 128,
  lr: 4e-3,
  warmupSteps: 50,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  clipGradNorm: 1,
  valFraction: 0.05,
  evalEvery: 100,
  evalBatches: 4,
  checkpointEvery: 200,
  keepCheckpoints: 2,
  seed: 0,
};
