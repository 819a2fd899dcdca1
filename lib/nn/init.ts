// Initialisers of the reference (modules layer; XLSTM_SPEC §5.6, §2.5).
import { Generator } from "../rng";
import { Tensor } from "../tensor";

/** N(0, σ²) with σ = sqrt(2 / (5 dim)). */
export function smallInit(t: Tensor, dim: number, gen: Generator): Tensor {
  gen.fillNormal(t.f32(), 0, Math.sqrt(2 / (5 * dim)));
  return t;
}

/** N(0, σ²) with σ = 2 / (num_blocks sqrt(dim)). */
export function wangInit(t: Tensor, dim: number, numBlocks: number, gen: Generator): Tensor {
  gen.fillNormal(t.f32(), 0, 2 / (numBlocks * Math.sqrt(dim)));
  return t;
}

/** U(-1/√fanIn, 1/√fanIn): PyTorch's default for Conv1d/Linear weights and biases. */
export function uniformFanIn(t: Tensor, fanIn: number, gen: Generator): Tensor {
  const k = 1 / Math.sqrt(fanIn);
  gen.fillUniform(t.f32(), -k, k);
  return t;
}
