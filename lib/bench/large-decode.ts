// L1 `large-decode`: greedy decoding with xLSTM Large in bfloat16 on the CPU (lib/nn/large.ts xLSTMLargeDecoder,
// csrc/kernels/bf16*), batch 1. Decode is memory-bound: every token streams all block weights and the head once
// (plus the recurrent state, read and written), so the figures are ms/token and the fraction of the machine's
// read bandwidth reached: bytes streamed per token / time, over the rate of a multi-threaded bf16 read of a 512 MiB
// buffer measured just before each repetition (median of the per-repetition ratios).
// Rows:
//   large-decode-125m   E 768, 4 heads, 12 blocks, vocab 32000 (134 M parameters, 110 M streamed per token; the
//                       published configs' proportions: qk 0.5 E, v E, FFN 2.6667 E), random U(±1/√in) weights
//   large-prefill-256-125m  the 125M model's forward over a 256-token prompt (ms, last position's logits), with
//                       roundActivations "auto" (bf16-rounded activations on AMX tiles or vdpbf16ps where the CPU
//                       has them: bf16_hardware) and, back to back, with float32 activations (float32_activations_ms,
//                       vs_float32_activations)
//   large-decode-7b-est the 7B config (E 4096, 8 heads, 32 blocks, vocab 50304): ONE 7B-shaped block is built and
//                       timed, then 32 x its time + the 50304 x 4096 head at the block's measured bandwidth. An
//                       extrapolation, not a run of the whole model (that needs ~14 GB).
import { native } from "../native";
import { largeParameterCount, largeStateFromTensors, largeStateToTensors, randomLargeStateDict, xLSTMLargeConfig, xLSTMLargeDecoder } from "../nn/large";
import { Tensor } from "../tensor";
import { getNumThreadsForBench, registerWorkload } from "./index";

export const L1_CONFIG: xLSTMLargeConfig = { embedding_dim: 768, num_heads: 4, num_blocks: 12, vocab_size: 32000, mode: "inference" };
export const XLSTM_7B_CONFIG: xLSTMLargeConfig = { embedding_dim: 4096, num_heads: 8, num_blocks: 32, vocab_size: 50304, mode: "inference" };

/** A 512 MiB bf16 buffer with every page touched: the machine-bandwidth probe (one multi-threaded bf16Sum). */
function probeBuffer(): Uint16Array {
  const buf = new Uint16Array(256 * 1024 * 1024);
  for (let i = 0; i < buf.length; i += 2048) buf[i] = 0x3f80;
  return buf;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Decode `steps` greedy tokens (batch 1) after a 16-token prefill, `reps` times after a warm-up, each repetition
 * right after one bandwidth probe: the machine is shared and its bandwidth drifts, so each repetition's fraction
 * compares two measurements taken a moment apart. Returns medians: seconds per token, probe bytes/s, fraction.
 */
async function decodeRun(dec: xLSTMLargeDecoder, steps: number, reps: number, probe: Uint16Array, bytesPerToken: number) {
  const V = dec.config.vocab_size;
  const prompt = new Tensor(Int32Array.from({ length: 16 }, (_, i) => (i * 7919) % V), [1, 16]);
  const pre = dec.forward(prompt, { logits: "last" });
  const decode = () => {
    // the loop owns its state: updated in place, as generate() does after the prefill
    const state = largeStateFromTensors(new Map([...largeStateToTensors(pre.state!)].map(([k, t]) => [k, t.clone()])));
    let logits = pre.logits.f32();
    for (let s = 0; s < steps; ++s) {
      let best = 0;
      for (let j = 1; j < V; ++j) if (logits[j] > logits[best]) best = j;
      logits = dec.forward(new Tensor(Int32Array.of(best), [1, 1]), { state, logits: "last", inPlace: true }).logits.f32();
    }
  };
  decode();
  native.bf16Sum(probe);
  const perToken: number[] = [], bw: number[] = [], frac: number[] = [];
  for (let r = 0; r < reps; ++r) {
    const t0 = process.hrtime.bigint();
    native.bf16Sum(probe);
    const t1 = process.hrtime.bigint();
    decode();
    const t2 = process.hrtime.bigint();
    const b = probe.byteLength / (Number(t1 - t0) / 1e9), sec = Number(t2 - t1) / 1e9 / steps;
    perToken.push(sec);
    bw.push(b);
    frac.push(bytesPerToken / sec / b);
    await new Promise<void>((res) => setImmediate(res));
  }
  return { sec: median(perToken), min: Math.min(...perToken), max: Math.max(...perToken), bw: median(bw), frac: median(frac) };
}

registerWorkload({
  id: "L1",
  description: "large-decode: xLSTM Large greedy decoding, bf16 weights, batch 1 (ms/token, bandwidth fraction); 125M config measured, 7B extrapolated from one 7B-shaped block",
  device: "cpu",
  async *run({ reps }) {
    reps = Math.max(5, reps);
    const threads = getNumThreadsForBench();
    const probe = probeBuffer();
    const common = { device: "cpu" as const, dtype: "bfloat16", batch: 1, threads, reps, bf16_dot_instructions: native.bf16DotAvailable(), bf16_hardware: native.backends().cpu.bf16 };

    const sd = randomLargeStateDict(L1_CONFIG, 1);
    const dec = xLSTMLargeDecoder.fromStateDict(L1_CONFIG, sd);  // roundActivations "auto"
    const bytes = dec.weightBytesPerToken() + 2 * dec.stateBytesPerRow();
    const r = await decodeRun(dec, 32, reps, probe, bytes);
    const count = largeParameterCount(L1_CONFIG);
    yield {
      workload: "L1",
      name: "large-decode-125m",
      metric: "ms_per_token",
      value: r.sec * 1000,
      min: r.min * 1000,
      max: r.max * 1000,
      ...common,
      parameters: count.total,
      bytes_per_token: bytes,
      gb_per_s: bytes / r.sec / 1e9,
      machine_read_gb_per_s: r.bw / 1e9,
      bandwidth_fraction: r.frac,
    };

    // prefill: a 256-token prompt through the 125M model, activations rounded to bf16 where "auto" does (AMX or
    // vdpbf16ps: `dec`) and kept in float32, back to back (the products' hardware is what differs)
    const plain = xLSTMLargeDecoder.fromStateDict(L1_CONFIG, sd, { roundActivations: false });
    const prompt = new Tensor(Int32Array.from({ length: 256 }, (_, i) => (i * 7919) % L1_CONFIG.vocab_size), [1, 256]);
    const prefill = async (d: xLSTMLargeDecoder) => {
      d.forward(prompt, { logits: "last" });
      const t: number[] = [];
      for (let i = 0; i < reps; ++i) {
        const t0 = process.hrtime.bigint();
        d.forward(prompt, { logits: "last" });
        t.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await new Promise<void>((res) => setImmediate(res));
      }
      return { ms: median(t), min: Math.min(...t), max: Math.max(...t) };
    };
    const pr = await prefill(dec), pf = await prefill(plain);
    yield {
      workload: "L1",
      name: "large-prefill-256-125m",
      metric: "ms",
      value: pr.ms,
      min: pr.min,
      max: pr.max,
      ...common,
      tokens: 256,
      round_activations: native.bf16AmxAvailable() || native.bf16DotAvailable(),
      float32_activations_ms: pf.ms,
      vs_float32_activations: Math.round((pr.ms / pf.ms) * 1000) / 1000,
    };

    // one 7B-shaped block (the head of this stand-in is tiny); whole-model time extrapolated
    const blockCfg: xLSTMLargeConfig = { ...XLSTM_7B_CONFIG, num_blocks: 1, vocab_size: 256 };
    const blk = xLSTMLargeDecoder.fromStateDict(blockCfg, randomLargeStateDict(blockCfg, 2));
    const blockBytes = blk.weightBytesPerToken() + 2 * blk.stateBytesPerRow();
    const rb = await decodeRun(blk, 4, reps, probe, blockBytes);
    const rate = blockBytes / rb.sec;
    const c7 = largeParameterCount(XLSTM_7B_CONFIG);
    const headBytes = 2 * c7.head;
    const est = XLSTM_7B_CONFIG.num_blocks * rb.sec + headBytes / rate;
    const bytes7 = XLSTM_7B_CONFIG.num_blocks * blockBytes + headBytes;
    yield {
      workload: "L1",
      name: "large-decode-7b-est",
      metric: "ms_per_token",
      value: est * 1000,
      ...common,
      parameters: c7.total,
      bytes_per_token: bytes7,
      block_ms: rb.sec * 1000,
      gb_per_s: rate / 1e9,
      machine_read_gb_per_s: rb.bw / 1e9,
      bandwidth_fraction: rb.frac,
      bandwidth_bound_ms: (bytes7 / rb.bw) * 1000,
      method: "32 x one measured 7B-shaped block + the 50304x4096 head at that block's bandwidth",
    };
  },
});
