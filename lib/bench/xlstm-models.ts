// W1 `stack-train` and W5 `generate-step` / `prefill-256` (../shared/bench/WORKLOADS.md) on the xLSTM models; W5
// also on a fused inference session (`generate-step-fused`, `prefill-256-fused`).
import * as ops from "../ops";
import { noGrad } from "../autograd";
import { Generator } from "../rng";
import { Device, Tensor } from "../tensor";
import "../nn/mlstm-layer";
import { xLSTMBlockStack, xLSTMLMModel, xLSTMLMModelConfig, xLSTMBlockStackConfig } from "../nn/stack";
import { createInferenceSession } from "../infer";
import { getNumThreadsForBench, registerWorkload, scopedStep, timeIt } from "./index";

/** The blocks of W1/W2/W5: 4 heads, conv 4, qkv block size 4, FFN 1.3 gelu. */
export function workloadStackConfig(E: number, numBlocks: number, slstmAt: number[]): xLSTMBlockStackConfig {
  return {
    embedding_dim: E,
    num_blocks: numBlocks,
    slstm_at: slstmAt,
    context_length: 256,
    mlstm_block: { mlstm: { num_heads: 4, conv1d_kernel_size: 4, qkv_proj_blocksize: 4, proj_factor: 2.0 } },
    slstm_block: { slstm: { num_heads: 4, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
  };
}

/** The W2/W5 model: vocab 256, E 256, 6 blocks, sLSTM at [3] (2.64 M parameters). */
export function workloadLMConfig(): xLSTMLMModelConfig {
  return { ...workloadStackConfig(256, 6, [3]), vocab_size: 256 };
}

/** W1's model and input on `device`: `step` runs forward + backward (loss mean(y^2)), `zeroGrad` drops the grads. */
export function w1Workload(device: Device): { step: () => void; zeroGrad: () => void; tokens: number } {
  const gen = new Generator(0);
  const stack = new xLSTMBlockStack(workloadStackConfig(128, 7, [1]), { generator: gen }).to(device);
  const B = 4, S = 256;
  const x = Tensor.randn([B, S, 128], { generator: gen, device });
  // a step's intermediates released when it ends, as train() does (xlstm.scope)
  const step = scopedStep(() => {
    const y = stack.forward(x).y;
    ops.mean(ops.mul(y, y)).backward();
  });
  return { step, zeroGrad: () => stack.zeroGrad(), tokens: B * S };
}

registerWorkload({
  id: "W1",
  description: "stack-train: xLSTMBlockStack forward+backward, E 128, 7 blocks, sLSTM at [1], B 4, S 256",
  device: "cpu",
  async *run({ reps }) {
    const w = w1Workload("cpu");
    const t = await timeIt(() => {
      w.zeroGrad();
      w.step();
    }, reps);
    yield { workload: "W1", name: "stack-train", metric: "tokens_per_s", value: w.tokens / t.median, device: "cpu", min: w.tokens / t.max, max: w.tokens / t.min, seconds_per_step: t.median, threads: getNumThreadsForBench(), reps };
  },
});

registerWorkload({
  id: "W5",
  description: "generate-step (greedy, batch 1, ms/token over 256 tokens) and prefill-256 (forward over a 256-token prompt) on the W2 model",
  device: "cpu",
  async *run({ reps }) {
    const gen = new Generator(0);
    const model = new xLSTMLMModel(workloadLMConfig(), { generator: gen }).eval();
    const prompt = new Tensor(Int32Array.from({ length: 256 }, () => gen.int(256)), [1, 256]);
    const steps = 256;
    const generate = () =>
      noGrad(() => {
        let st = model.forward(ops.slice(prompt, 1, 0, 8), { returnLastState: true }).state!;
        let tok = new Tensor(Int32Array.of(0), [1, 1]);
        for (let i = 0; i < steps; ++i) {
          const r = model.step(tok, st);
          st = r.state;
          const logits = r.logits.f32();
          let best = 0;
          for (let v = 1; v < logits.length; ++v) if (logits[v] > logits[best]) best = v;
          tok = new Tensor(Int32Array.of(best), [1, 1]);
        }
      });
    // time the 256 steps only (the 8-token prefill above is part of each repetition; it is small and subtracted)
    const pre = await timeIt(() => noGrad(() => void model.forward(ops.slice(prompt, 1, 0, 8), { returnLastState: true })), reps);
    const g = await timeIt(generate, reps);
    const msPerToken = ((g.median - pre.median) / steps) * 1000;
    yield { workload: "W5", name: "generate-step", metric: "ms_per_token", value: msPerToken, device: "cpu", tokens: steps, threads: getNumThreadsForBench(), reps };
    const p = await timeIt(() => noGrad(() => void model.forward(prompt)), reps);
    yield { workload: "W5", name: "prefill-256", metric: "seconds", value: p.median, device: "cpu", min: p.min, max: p.max, threads: getNumThreadsForBench(), reps };
    // the same two measurements on a fused inference session (lib/infer): one native call per token / prompt
    const session = createInferenceSession(model);
    const promptIds = prompt.data as Int32Array;
    const generateFused = () => {
      session.reset();
      session.prefill(promptIds.subarray(0, 8), 8);
      let tok = 0;
      for (let i = 0; i < steps; ++i) {
        const logits = session.step(Int32Array.of(tok));
        let best = 0;
        for (let v = 1; v < logits.length; ++v) if (logits[v] > logits[best]) best = v;
        tok = best;
      }
    };
    const preF = await timeIt(() => {
      session.reset();
      session.prefill(promptIds.subarray(0, 8), 8);
    }, reps);
    const gF = await timeIt(generateFused, reps);
    yield { workload: "W5", name: "generate-step-fused", metric: "ms_per_token", value: ((gF.median - preF.median) / steps) * 1000, device: "cpu", tokens: steps, threads: getNumThreadsForBench(), reps };
    const pF = await timeIt(() => {
      session.reset();
      session.prefill(promptIds, 256);
    }, reps);
    yield { workload: "W5", name: "prefill-256-fused", metric: "seconds", value: pF.median, device: "cpu", min: pF.min, max: pF.max, threads: getNumThreadsForBench(), reps };
    session.dispose();
  },
});
