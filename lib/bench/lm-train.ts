// W2 `lm-train` (../shared/bench/WORKLOADS.md): one full training step of xLSTMLMModel: forward, cross-entropy,
// backward, clip-grad-norm 1.0, AdamW (lr 1e-3, wd 0.1, the reference's weight-decay groups). Vocab 256, E 256,
// 6 blocks with sLSTM at [3] and mLSTM blocks elsewhere (4 heads, conv 4, qkv blocksize 4, FFN 1.3 gelu); B 8, S 256.
// While this build has no mLSTM layer (lib/nn/mlstm-layer.ts), every block is an sLSTM block and the row says so.
// Metric: tokens per second (B*S / step time).
import { xLSTMLMModel, xLSTMLMModelConfig } from "../nn/stack";
import * as ops from "../ops";
import { AdamW } from "../optim/adamw";
import { xlstmParamGroups } from "../optim/groups";
import { clipGradNorm } from "../optim/sgd";
import { Generator } from "../rng";
import { Tensor } from "../tensor";
import { countParameters, mlstmUnavailableReason } from "../train/models";
import { getNumThreadsForBench, registerWorkload, scopedStep, timeIt } from "./index";

const V = 256, E = 256, B = 8, S = 256;

/** The W2 model config; sLSTM-only when the mLSTM layer is not available. */
export function w2Config(mixed: boolean): xLSTMLMModelConfig {
  return {
    vocab_size: V,
    embedding_dim: E,
    num_blocks: 6,
    context_length: S,
    mlstm_block: mixed ? { mlstm: { conv1d_kernel_size: 4, qkv_proj_blocksize: 4, num_heads: 4 } } : null,
    slstm_at: mixed ? [3] : "all",
    slstm_block: { slstm: { backend: "cuda", num_heads: 4, conv1d_kernel_size: 4, bias_init: "powerlaw_blockdependent" }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
  };
}

function buildW2(gen: Generator): { model: xLSTMLMModel; mixed: boolean } {
  if (mlstmUnavailableReason() === null) {
    try {
      return { model: new xLSTMLMModel(w2Config(true), { generator: gen }), mixed: true };
    } catch {
      // the mLSTM layer module loaded but cannot build this config yet: fall back below
    }
  }
  return { model: new xLSTMLMModel(w2Config(false), { generator: gen }), mixed: false };
}

registerWorkload({
  id: "W2",
  description: "lm-train: one xLSTMLMModel training step with AdamW (vocab 256, E 256, 6 blocks, sLSTM at [3], B 8, S 256)",
  device: "cpu",
  async *run({ reps }) {
    const gen = new Generator(0);
    const { model, mixed } = buildW2(gen);
    const opt = new AdamW(xlstmParamGroups(model, 0.1), { lr: 1e-3, weight_decay: 0.1 });
    const params = opt.params;
    const ids = Int32Array.from({ length: B * (S + 1) }, () => gen.int(V));
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let b = 0; b < B; ++b) {
      x.set(ids.subarray(b * (S + 1), b * (S + 1) + S), b * S);
      y.set(ids.subarray(b * (S + 1) + 1, (b + 1) * (S + 1)), b * S);
    }
    const xt = new Tensor(x, [B, S]), yt = new Tensor(y, [B * S]);
    const step = scopedStep(() => {
      const { logits } = model.forward(xt);
      const loss = ops.crossEntropy(logits.reshape(B * S, V), yt);
      loss.backward();
      clipGradNorm(params, 1);
      opt.step();
      opt.zeroGrad();
    });
    const t = await timeIt(step, reps);
    const row = {
      workload: "W2", name: "lm-train", metric: "tokens_per_s", value: (B * S) / t.median, device: "cpu" as const, min: (B * S) / t.max, max: (B * S) / t.min,
      seconds_per_step: t.median, parameters: countParameters(model), block_map: model.xlstm_block_stack.blockMap.join(","), threads: getNumThreadsForBench(), reps,
    };
    yield mixed ? row : { ...row, note: "sLSTM-only until the mLSTM layer lands" };
  },
});
