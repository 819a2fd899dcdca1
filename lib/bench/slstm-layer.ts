// W3 `slstm-layer` (../shared/bench/WORKLOADS.md): forward + backward of one sLSTMLayer (loss mean(y^2));
// E 256, 4 heads, conv 4, B 8, S 512. Metric: seconds per forward+backward.
import { Generator } from "../rng";
import { Device, Tensor } from "../tensor";
import { sLSTMLayer } from "../nn/slstm-layer";
import * as ops from "../ops";
import { getNumThreadsForBench, registerWorkload, scopedStep, timeIt } from "./index";

/** W3's layer and input on `device`: `step` runs forward + backward (loss mean(y^2)), `zeroGrad` drops the grads. */
export function w3Workload(device: Device): { step: () => void; zeroGrad: () => void } {
  const gen = new Generator(0);
  const layer = new sLSTMLayer({ embedding_dim: 256, num_heads: 4, conv1d_kernel_size: 4 }, { generator: gen }).to(device);
  const x = Tensor.randn([8, 512, 256], { generator: gen, device });
  const step = scopedStep(() => {
    const y = layer.forward(x).y;
    ops.mean(ops.mul(y, y)).backward();
  });
  return { step, zeroGrad: () => layer.zeroGrad() };
}

registerWorkload({
  id: "W3",
  description: "slstm-layer: sLSTMLayer forward+backward, E 256, 4 heads, conv 4, B 8, S 512",
  device: "cpu",
  async *run({ reps }) {
    const w = w3Workload("cpu");
    const t = await timeIt(() => {
      w.zeroGrad();
      w.step();
    }, reps);
    yield { workload: "W3", name: "slstm-layer", metric: "seconds", value: t.median, device: "cpu", min: t.min, max: t.max, threads: getNumThreadsForBench(), reps };
  },
});
