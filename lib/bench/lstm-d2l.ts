// W6 `lstm-d2l` (../shared/bench/WORKLOADS.md): one training step of the classic character LSTM from "Dive into
// Deep Learning": one-hot input (vocab 28), one LSTM layer (hidden 256), linear head, cross-entropy, SGD lr 1 with
// gradient clipping at 1.0; B 32, 35 steps. Metric: tokens per second (B*S / step time).
import { Generator } from "../rng";
import { Device, Tensor } from "../tensor";
import { LSTM } from "../nn/lstm";
import * as ops from "../ops";
import { SGD, clipGradNorm } from "../optim/sgd";
import { getNumThreadsForBench, registerWorkload, scopedStep, timeIt } from "./index";

const V = 28, H = 256, B = 32, S = 35;

/** W6's model, data and optimizer on `device`: `step` is one training step (zero grads, forward, backward, clip, SGD). */
export function w6Workload(device: Device): { step: () => void; zeroGrad: () => void; tokens: number } {
  const gen = new Generator(0);
  const lstm = new LSTM({ input_size: V, hidden_size: H, batch_first: true, generator: gen }).to(device);
  const head = { weight: Tensor.randn([V, H], { generator: gen, std: 0.01, requiresGrad: true, device }), bias: Tensor.zeros([V], { requiresGrad: true, device }) };
  const params = [...lstm.parameters(), head.weight, head.bias];
  const opt = new SGD(params, { lr: 1 });
  const ids = Int32Array.from({ length: B * (S + 1) }, () => gen.int(V));
  const oneHot = new Float32Array(B * S * V);
  const targets = new Int32Array(B * S);
  for (let b = 0; b < B; ++b)
    for (let t = 0; t < S; ++t) {
      oneHot[(b * S + t) * V + ids[b * (S + 1) + t]] = 1;
      targets[b * S + t] = ids[b * (S + 1) + t + 1];
    }
  const x = new Tensor(oneHot, [B, S, V]).to(device);
  const y = new Tensor(targets, [B * S]);
  const step = scopedStep(() => {
    const [out] = lstm.forward(x);
    const logits = ops.linear(out.reshape(B * S, H), head.weight, head.bias);
    const loss = ops.crossEntropy(logits, y);
    opt.zeroGrad();
    loss.backward();
    clipGradNorm(params, 1);
    opt.step();
  });
  return { step, zeroGrad: () => opt.zeroGrad(), tokens: B * S };
}

registerWorkload({
  id: "W6",
  description: "lstm-d2l: one d2l character-LSTM training step (vocab 28, hidden 256, B 32, 35 steps)",
  device: "cpu",
  async *run({ reps }) {
    const w = w6Workload("cpu");
    const t = await timeIt(w.step, reps);
    yield { workload: "W6", name: "lstm-d2l", metric: "tokens_per_s", value: w.tokens / t.median, device: "cpu", min: w.tokens / t.max, max: w.tokens / t.min, seconds_per_step: t.median, threads: getNumThreadsForBench(), reps };
  },
});
