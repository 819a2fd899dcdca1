// Shared by the fused inference session tests (test/56 on the CPU, test/57 on the GPU): the model cases, models whose
// parameters are all moved off their initial values, token streams and the step loops of both paths.
import { strict as assert } from "assert";
import { Generator, nn, noGrad, Tensor } from "../../lib";
import type { InferenceSession } from "../../lib/infer";
import { worstRatio } from "./gradcheck";

export interface Case {
  name: string;
  config: nn.xLSTMLMModelConfig;
  B: number;
}

export function baseConfig(over: Partial<nn.xLSTMLMModelConfig> = {}): nn.xLSTMLMModelConfig {
  return {
    vocab_size: 41,
    embedding_dim: 32,
    num_blocks: 3,
    slstm_at: [1],
    context_length: 64,
    mlstm_block: { mlstm: { num_heads: 2, conv1d_kernel_size: 4, qkv_proj_blocksize: 4, proj_factor: 2.0 } },
    slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
    ...over,
  };
}

export const CASES: Case[] = [
  { name: "mLSTM/sLSTM/mLSTM, conv 4, untied, B = 1", config: baseConfig(), B: 1 },
  {
    name: "tied weights, sLSTM function 'lstm', conv 2, B = 3",
    config: baseConfig({
      tie_weights: true,
      mlstm_block: { mlstm: { num_heads: 2, conv1d_kernel_size: 2, qkv_proj_blocksize: 4 } },
      slstm_block: { slstm: { num_heads: 4, conv1d_kernel_size: 2, function: "lstm" }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
    }),
    B: 3,
  },
  {
    name: "sLSTM only with conv 0, no group-norm weight, swish FFN with biases, no post norm, B = 2",
    config: baseConfig({
      mlstm_block: null,
      num_blocks: 2,
      slstm_at: "all",
      add_post_blocks_norm: false,
      slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 0, group_norm_weight: false }, feedforward: { proj_factor: 1.3, act_fn: "swish", bias: true } },
    }),
    B: 2,
  },
  {
    name: "mLSTM with biases, 4 heads (DH 16), q/k/v blocks of 8, sLSTM at 0 with a relu^2 FFN, B = 2",
    config: baseConfig({
      bias: true,
      slstm_at: [0],
      mlstm_block: { mlstm: { num_heads: 4, conv1d_kernel_size: 4, qkv_proj_blocksize: 8 } },
      slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "relu^2" } },
    }),
    B: 2,
  },
];

/** A model whose every parameter is moved off its (often zero) initial value, so gates, norms and biases all matter. */
export function makeModel(config: nn.xLSTMLMModelConfig, seed: number): nn.xLSTMLMModel {
  const m = new nn.xLSTMLMModel(config, { generator: new Generator(seed) }).eval();
  const g = new Generator(seed + 1000);
  for (const p of m.parameters()) {
    const a = p.f32();
    for (let i = 0; i < a.length; ++i) a[i] += 0.15 * g.normal();
  }
  return m;
}

export function tokens(B: number, S: number, V: number, seed: number): Int32Array {
  const g = new Generator(seed);
  return Int32Array.from({ length: B * S }, () => g.int(V));
}

/** Column t of row-major tokens [B, S]. */
export function column(tok: Int32Array, B: number, S: number, t: number): Int32Array {
  return Int32Array.from({ length: B }, (_, b) => tok[b * S + t]);
}

/** model.step over S positions from `state` (on the model's device): the logits of every step and the final state. */
export function tensorSteps(m: nn.xLSTMLMModel, tok: Int32Array, B: number, S: number, state: nn.StackState | null = null): { logits: Float32Array[]; state: nn.StackState | null } {
  const logits: Float32Array[] = [];
  noGrad(() => {
    for (let t = 0; t < S; ++t) {
      const r = m.step(new Tensor(column(tok, B, S, t), [B, 1]), state);
      state = r.state;
      logits.push((r.logits.device === "cuda" ? r.logits.cpu() : r.logits).f32().slice());
    }
  });
  return { logits, state };
}

export function fusedSteps(s: InferenceSession, tok: Int32Array, B: number, S: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let t = 0; t < S; ++t) out.push(s.step(column(tok, B, S, t)));
  return out;
}

export function assertLogitsClose(got: Float32Array[], want: Float32Array[], what: string, atol = 1e-4): void {
  assert.equal(got.length, want.length);
  for (let t = 0; t < want.length; ++t) {
    const r = worstRatio(got[t], want[t], 0, atol);
    assert.ok(r.ratio <= 1, `${what}: step ${t}: |Δ| = ${(r.ratio * atol).toExponential(2)} > ${atol} at index ${r.index} (got ${got[t][r.index]}, expected ${want[t][r.index]})`);
  }
}

