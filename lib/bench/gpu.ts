// GPU workloads (../shared/bench/WORKLOADS.md): G1 the sLSTM / LSTM recurrence alone (B 16, T 1024, hidden 768,
// one head), forward and forward+backward; G2 the chunkwise mLSTM cell forward+backward over 65,536 tokens (B 8,
// S 8192, 8 heads, DHqk 256, DHv 512), float32 and under the bf16 autocast (cuda/mlstm_bf16.cuh); G3 the W2 training step on the GPU, float32 and with the bf16 autocast of
// the matrix products; L1-cuda the xLSTM Large decode of L1 (125M config, batch 1) with bf16 and float32 matrix
// weights (lib/ops/bf16.ts, cuda/bf16.cu). The recurrences are float32 (TF32 off); their bf16 kernels come with issue 9. Each timing
// ends with cuda.synchronize(), so it covers the GPU's work, and every step runs in a cuda.scope so device memory
// stays flat. The rows name the GPU. G3's `-kernels` rows break one step (and 16 decoded tokens) down by device entry;
// its `-no-split-k` rows time the step with the GEMMs' split K off (cudaSetGemmSplitK), back to back, and
// `lm-train-grouped-gemm` with the float32 GEMM's uncut products on the grouped kernel (cudaSetGemmForm); the
// `-wide-gemm` rows of G1, G2 and G3 time the bf16 passes with the bf16 GEMM's opt-in shape-based choices
// (cudaSetGemmBf16Tiles("auto"): 64 x 128 tiles for products of many tiles, long K cut over a few waves of tiles: G1's
// dR), back to back with the default's, until these rows show them faster; G1's `-split-blocks{96,64,48}` rows time
// the bf16 recurrences with the split launch's blocks per head capped (cudaSetRecurrentSplitBlocks: fewer blocks of
// more units than one per SM), its `-gather` rows the bf16 backward with the gather exchange
// (cudaSetRecurrentExchange("gather")), each with the plan the emulated H100 takes for it, and its `-autotune` rows
// (float32 and bf16) the plans the autotune picks on the GPU at hand (cudaSetRecurrentAutotune; the picks in the row).
import * as cuda from "../cuda";
import { createInferenceSession, createLargeInferenceSession } from "../infer";
import { largeParameterCount, randomLargeStateDict, xLSTMLarge, xLSTMLargeConfig } from "../nn/large";
import { xLSTMLMModel } from "../nn/stack";
import * as ops from "../ops";
import { AdamW } from "../optim/adamw";
import { xlstmParamGroups } from "../optim/groups";
import { clipGradNorm } from "../optim/sgd";
import { Generator } from "../rng";
import { noGrad } from "../autograd";
import { native } from "../native";
import { Tensor } from "../tensor";
import { releaseReplacedState, StateTree } from "../train/state-tree";
import { BenchRow, registerWorkload, timeIt, tinyShapes } from "./index";
import { L1_CONFIG } from "./large-decode";
import { w6Workload } from "./lstm-d2l";
import { mlstmCellWorkload, MLSTM_CELL_SIZES } from "./mlstm-cell";
import { w3Workload } from "./slstm-layer";
import { w1Workload } from "./xlstm-models";
import { w2Config } from "./lm-train";

function gpuName(): string {
  return cuda.deviceProperties(0).name;
}

/**
 * A row with where one run of `fn` spends its GPU time (cuda.profileKernels: each device entry synchronised): value
 * the run's milliseconds so measured, `kernels` the 12 entries with the most time ([name, calls, ms]), `entry_ms`
 * their sum over all entries; what remains of `value` is host work between the calls.
 */
function kernelsRow(workload: string, name: string, fn: () => void): BenchRow {
  const p = cuda.profileKernels(fn);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const entryMs = p.kernels.reduce((a, k) => a + k.ms, 0);
  return {
    workload, name, metric: "ms", value: round(p.totalMs), device: "cuda", gpu: gpuName(), entry_ms: round(entryMs), calls: p.kernels.reduce((a, k) => a + k.calls, 0),
    kernels: p.kernels.slice(0, 12).map((k) => [k.name, k.calls, round(k.ms)]),
  };
}

/** Seconds per call of `fn` on the GPU (median of reps after a warm-up), the work synchronised at the end. */
async function timeGpu(fn: () => void, reps: number) {
  return timeIt(() => {
    cuda.scope(fn);
    cuda.synchronize();
  }, reps);
}

/**
 * `n` greedy tokens on the GPU after `prefill` (which returns the state): each token one `step` in a cuda.scope, its
 * logits read back for the choice (as generate() does), the replaced state released at once.
 */
function greedyDecode<S>(prefill: () => S, step: (token: number, state: S) => { logits: Tensor; state: S }, n: number): void {
  noGrad(() => {
    let st = cuda.scope(prefill);
    let tok = 0;
    for (let i = 0; i < n; ++i) {
      const r = cuda.scope(() => {
        const s = step(tok, st);
        const l = s.logits.cpu().f32();
        let best = 0;
        for (let v = 1; v < l.length; ++v) if (l[v] > l[best]) best = v;
        return { state: s.state, next: best };
      });
      releaseReplacedState(st as unknown as StateTree, r.state as unknown as StateTree);
      st = r.state;
      tok = r.next;
    }
    releaseReplacedState(st as unknown as StateTree, null);
  });
}

/**
 * The published figures of ../shared/bench/WORKLOADS.md (bf16, H100) a row is set against: `published_ms` the range,
 * `vs_published` our time over the range's best (below 1: faster than the best published kernel).
 */
function published(value: number, best: number, worst: number, source: string): Record<string, unknown> {
  return { published_ms: best === worst ? best : [best, worst], published_by: source, vs_published: Math.round((value / best) * 100) / 100 };
}

/**
 * fn timed with the bf16 GEMM's 64 x 128 tiles allowed (cudaSetGemmBf16Tiles("auto"), opt-in until timed here), the
 * setting restored after; null with a binary from before that setter (the "ab" step's base).
 */
async function withWideBf16Tiles<T>(fn: () => Promise<T>): Promise<T | null> {
  if (typeof native.cudaSetGemmBf16Tiles !== "function") return null;
  const prev = native.cudaSetGemmBf16Tiles("auto");
  try {
    return await fn();
  } finally {
    native.cudaSetGemmBf16Tiles(prev);
  }
}

/**
 * G1's timings under one launch of cuda/recurrent.cu (null: the automatic choice), float32 and, for the automatic
 * choice, under the bf16 autocast (the tensor-core form, cuda/recurrent_tc.cuh: FlashRNN's published figures are bf16).
 */
async function* g1Rows(workload: string, launch: "split" | "split-lane" | "rows" | null, reps: number): AsyncGenerator<BenchRow> {
  const gen = new Generator(0);
  const [B, T, H] = tinyShapes() ? [2, 8, 64] : [16, 1024, 768];
  const x = Tensor.randn([B, T, 4 * H], { generator: gen, device: "cuda", requiresGrad: true });
  const R = Tensor.randn([1, H, 4 * H], { generator: gen, std: 1 / Math.sqrt(H), device: "cuda", requiresGrad: true });
  const bias = Tensor.zeros([4 * H], { device: "cuda", requiresGrad: true });
  const dy = Tensor.randn([B, T, H], { generator: gen, device: "cuda" });
  const prev = native.cudaSetRecurrentLaunch(launch ?? "auto");
  try {
    for (const dtype of launch === null ? (["float32", "bfloat16"] as const) : (["float32"] as const))
      for (const kind of ["slstm", "lstm"] as const) {
        const f = kind === "slstm" ? ops.slstm : ops.lstm;
        const y = () => (dtype === "bfloat16" ? cuda.autocast(() => f(x, R, bias).y) : f(x, R, bias).y);
        const fwd = await timeGpu(() => void y(), reps);
        const step = () => {
          y().backward(dy);  // the backward follows the forward's form
          for (const p of [x, R, bias]) {
            p.grad?.dispose();
            p.grad = null;
          }
        };
        const both = await timeGpu(step, reps);
        const common = { device: "cuda" as const, gpu: gpuName(), dtype, launch: launch ?? "auto", reps };
        const tag = dtype === "bfloat16" ? "-autocast-bf16" : "";
        const pf = published(fwd.median * 1e3, 2.9, 4.9, "FlashRNN"), pb = published(both.median * 1e3, 8.2, 13.6, "FlashRNN");
        yield { workload, name: `${kind}-forward${tag}`, metric: "ms", value: fwd.median * 1e3, ...common, min: fwd.min * 1e3, max: fwd.max * 1e3, ...pf };
        yield { workload, name: `${kind}-forward-backward${tag}`, metric: "ms", value: both.median * 1e3, ...common, min: both.min * 1e3, max: both.max * 1e3, ...pb };
        // bf16: the same with dR's GEMM on the 64 x 128 tiles, cut along K (opt-in), back to back
        const wide = dtype === "bfloat16" ? await withWideBf16Tiles(() => timeGpu(step, reps)) : null;
        if (wide) yield { workload, name: `${kind}-forward-backward${tag}-wide-gemm`, metric: "ms", value: wide.median * 1e3, ...common, min: wide.min * 1e3, max: wide.max * 1e3, ...published(wide.median * 1e3, 8.2, 13.6, "FlashRNN") };
        // bf16: the split launch with fewer blocks per head (more units each): less exchange per step, a cheaper grid
        // barrier, more work per block; and the backward's gather exchange (dp gathered instead of partial ∂h summed;
        // the forward is the same); back to back with the default (one block per SM, partials), until these rows pick
        if (dtype === "bfloat16" && launch === null && typeof native.cudaSetRecurrentSplitBlocks === "function") {
          const variants: { cap: number; gather: boolean }[] = [{ cap: 96, gather: false }, { cap: 64, gather: false }, { cap: 48, gather: false }, { cap: 0, gather: true }, { cap: 48, gather: true }];
          const hasExchange = typeof native.cudaSetRecurrentExchange === "function";  // (a base binary may lack it)
          for (const { cap, gather } of variants.filter((v) => hasExchange || !v.gather)) {
            const prevCap = native.cudaSetRecurrentSplitBlocks(cap);
            const prevEx = hasExchange ? native.cudaSetRecurrentExchange(gather ? "gather" : "partials") : null;
            try {
              const plan = native.cudaRecurrentPlan(B, T, 1, H, false, true);
              const suffix = `${cap ? `-split-blocks${cap}` : ""}${gather ? "-gather" : ""}`;
              const capped = { ...common, split_blocks_per_head: cap || "auto", exchange: gather ? "gather" : "partials", emulated_plan: plan };
              if (!gather) {
                const cf = await timeGpu(() => void y(), reps);
                yield { workload, name: `${kind}-forward${tag}${suffix}`, metric: "ms", value: cf.median * 1e3, ...capped, min: cf.min * 1e3, max: cf.max * 1e3, ...published(cf.median * 1e3, 2.9, 4.9, "FlashRNN") };
              }
              const cb = await timeGpu(step, reps);
              yield { workload, name: `${kind}-forward-backward${tag}${suffix}`, metric: "ms", value: cb.median * 1e3, ...capped, min: cb.min * 1e3, max: cb.max * 1e3, ...published(cb.median * 1e3, 8.2, 13.6, "FlashRNN") };
            } finally {
              if (prevEx) native.cudaSetRecurrentExchange(prevEx);
              native.cudaSetRecurrentSplitBlocks(prevCap);
            }
          }
        }
        // both dtypes: the autotune's choice (cudaSetRecurrentAutotune: the warm-up call tunes the shape), with the
        // plans it chose
        if (launch === null && typeof native.cudaSetRecurrentAutotune === "function") {
          const prevTune = native.cudaSetRecurrentAutotune(true);
          try {
            const af = await timeGpu(() => void y(), reps), ab = await timeGpu(step, reps);
            const bf16 = dtype === "bfloat16", slstm = kind === "slstm";
            const tuned = { ...common, tuned_forward: native.cudaRecurrentTuned(slstm, B, T, 1, H, true, bf16), tuned_backward: native.cudaRecurrentTuned(slstm, B, T, 1, H, false, bf16) };
            yield { workload, name: `${kind}-forward${tag}-autotune`, metric: "ms", value: af.median * 1e3, ...tuned, min: af.min * 1e3, max: af.max * 1e3, ...published(af.median * 1e3, 2.9, 4.9, "FlashRNN") };
            yield { workload, name: `${kind}-forward-backward${tag}-autotune`, metric: "ms", value: ab.median * 1e3, ...tuned, min: ab.min * 1e3, max: ab.max * 1e3, ...published(ab.median * 1e3, 8.2, 13.6, "FlashRNN") };
          } finally {
            native.cudaSetRecurrentAutotune(prevTune);
          }
        }
      }
  } finally {
    native.cudaSetRecurrentLaunch(prev);
  }
}

registerWorkload({
  id: "G1",
  description: "sLSTM / LSTM recurrence on the GPU, forward and forward+backward: B 16, T 1024, hidden 768 (1 head), float32 and under the bf16 autocast (tensor-core recurrent products)",
  device: "cuda",
  // the launch auto picks: "split" on a GPU of many SMs (the head's 768 units over the SMs, a grid barrier per step)
  run: ({ reps }) => g1Rows("G1", null, reps),
});

registerWorkload({
  id: "G1-split-lane",
  description: "G1 under the split launch with the forward's gate products in the lane form (R in registers; opt-in until a GPU has run it), for comparison (only with --workload)",
  device: "cuda",
  onRequest: true,
  run: ({ reps }) => g1Rows("G1-split-lane", "split-lane", reps),
});

registerWorkload({
  id: "G1-rows",
  description: "G1 under the rows launch of cuda/recurrent.cu (a block per head and 4 batch rows: 4 blocks), for comparison (about a minute on an H200; only with --workload)",
  device: "cuda",
  onRequest: true,
  run: ({ reps }) => g1Rows("G1-rows", "rows", reps),
});

/** The mLSTM cell's inputs on the GPU (q, k, v, gates with f = 3 + N(0, 1), requiring grad) and an output cotangent. */
function mlstmCellInputs(gen: Generator, B: number, NH: number, S: number, DK: number, DV: number) {
  const leaf = (shape: number[], mean = 0) => Tensor.randn(shape, { generator: gen, mean, device: "cuda", requiresGrad: true });
  return {
    q: leaf([B, NH, S, DK]), k: leaf([B, NH, S, DK]), v: leaf([B, NH, S, DV]), i: leaf([B, NH, S]), f: leaf([B, NH, S], 3),
    dh: Tensor.randn([B, NH, S, DV], { generator: gen, device: "cuda" }),
  };
}

registerWorkload({
  id: "G2",
  description: "mLSTM cell (chunkwise) on the GPU, forward+backward: B 8, S 8192, 8 heads, DHqk 256, DHv 512, float32 (tiled kernels at chunk 64 and 256, and the composed form: the default at these heads) and under the bf16 autocast (tensor-core products; chunk 64, 128 and 256; the intra-chunk parts as products or fused, also forward only)",
  device: "cuda",
  async *run({ reps }) {
    const gen = new Generator(0);
    const [B, S, NH, DK, DV] = tinyShapes() ? [1, 256, 2, 32, 64] : [8, 8192, 8, 256, 512];
    const { q, k, v, i, f, dh } = mlstmCellInputs(gen, B, NH, S, DK, DV);
    // the bf16 form also at chunks 128 and 256 (fewer inter-chunk states to write and read, longer intra-chunk
    // products), the float32 form also at 256: the figures that calibrate chunkSize "auto" (ops.mlstmAutoChunk; each
    // row's `auto_chunk` is its choice here); the float32 composed form (opt-in) next to the tiled one
    const autoChunk = ops.mlstmAutoChunk(DK, DV, "cuda");
    // and the composed forms with the inter-chunk states as one grouped GEMM + a scan (cudaSetMlstmStates("scan"), opt-in)
    // and the bf16 rows at chunks 64 and 128 with the GEMM's 64 x 128 tiles (cudaSetGemmBf16Tiles("auto"), opt-in)
    // and the bf16 rows with the intra-chunk parts fused per tile (cudaSetMlstmIntra("fused"), opt-in; the
    // "-fused-intra" rows, chunks 64-256), plus forward-only bf16 rows of both intra forms (the forward's share)
    type Row = readonly [dtype: "float32" | "bfloat16", chunk: number, form: "tiles" | "composed", states: "walk" | "scan", wide: boolean, intra: "products" | "fused", backward: boolean];
    const rows: Row[] = [["float32", 64, "tiles", "walk", false, "products", true], ["float32", 256, "tiles", "walk", false, "products", true], ["float32", 64, "composed", "walk", false, "products", true], ["float32", 64, "composed", "scan", false, "products", true], ["bfloat16", 64, "tiles", "walk", false, "products", true], ["bfloat16", 64, "tiles", "walk", true, "products", true], ["bfloat16", 64, "tiles", "scan", false, "products", true], ["bfloat16", 128, "tiles", "walk", false, "products", true], ["bfloat16", 128, "tiles", "walk", true, "products", true], ["bfloat16", 256, "tiles", "walk", false, "products", true]];
    for (const chunk of [64, 128, 256]) rows.push(["bfloat16", chunk, "tiles", "walk", false, "fused", true]);
    for (const chunk of [64, 128, 256]) for (const intra of ["products", "fused"] as const) rows.push(["bfloat16", chunk, "tiles", "walk", false, intra, false]);
    // (a binary from before cudaSetMlstmStates / cudaSetMlstmIntra, as the "ab" step's base: its rows without those)
    const setStates = typeof native.cudaSetMlstmStates === "function" ? (st: "walk" | "scan") => native.cudaSetMlstmStates(st) : null;
    const setIntra = typeof native.cudaSetMlstmIntra === "function" ? (x: "products" | "fused") => native.cudaSetMlstmIntra(x) : null;
    for (const [dtype, chunk, form, states, wide, intra, backward] of rows) {
      if ((!setStates && states === "scan") || (!setIntra && intra === "fused")) continue;
      const prev = native.cudaSetMlstmForm(form);
      const prevStates = setStates?.(states) ?? "walk";
      const prevIntra = setIntra?.(intra) ?? "products";
      const pass = () => {
        const fwd = () => ops.mlstm(q, k, v, i, f, { form: "chunkwise", chunkSize: chunk }).h;
        if (!backward) return noGrad(() => (dtype === "bfloat16" ? cuda.autocast(fwd) : fwd())).dispose();
        (dtype === "bfloat16" ? cuda.autocast(fwd) : fwd()).backward(dh);
        for (const p of [q, k, v, i, f]) {
          p.grad?.dispose();
          p.grad = null;
        }
      };
      const t = await (wide ? withWideBf16Tiles(() => timeGpu(pass, reps)) : timeGpu(pass, reps)).finally(() => {
        native.cudaSetMlstmForm(prev);
        setStates?.(prevStates);
        setIntra?.(prevIntra);
      });
      if (!t) continue;  // a base binary without the wide tiles
      const name = `mlstm-chunkwise-forward${backward ? "-backward" : ""}${dtype === "bfloat16" ? "-autocast-bf16" : ""}${form === "composed" ? "-composed" : ""}${states === "scan" ? "-scan-states" : ""}${chunk !== 64 ? `-chunk${chunk}` : ""}${wide ? "-wide-gemm" : ""}${intra === "fused" ? "-fused-intra" : ""}`;
      yield { workload: "G2", name, metric: "ms", value: t.median * 1e3, device: "cuda", gpu: gpuName(), dtype, chunk, auto_chunk: autoChunk, tokens: B * S, min: t.min * 1e3, max: t.max * 1e3, reps, ...(backward ? published(t.median * 1e3, 15, 15, "TFLA") : {}) };
    }
  },
});

registerWorkload({
  id: "G2-forms",
  description: "the float32 mLSTM cell's two CUDA forms (tiled kernels; composed of grouped GEMMs) at the models' shapes: W4's (B 1, 4 heads, DH 64, S 256 / 4096), G3's (B 8, 4 heads, DH 128, S 256) and a quarter of G2 (B 2): the figures that choose the default form per shape (only with --workload)",
  device: "cuda",
  onRequest: true,
  async *run({ reps }) {
    const gen = new Generator(0);
    const shapes = tinyShapes() ? [[1, 2, 128, 32, 32], [1, 2, 64, 32, 64]] : [[1, 4, 256, 64, 64], [1, 4, 4096, 64, 64], [8, 4, 256, 128, 128], [2, 8, 8192, 256, 512]];
    for (const [B, NH, S, DK, DV] of shapes) {
      const { q, k, v, i, f, dh } = mlstmCellInputs(gen, B, NH, S, DK, DV);
      for (const form of ["tiles", "composed"] as const) {
        const prev = native.cudaSetMlstmForm(form);
        const t = await timeGpu(() => {
          ops.mlstm(q, k, v, i, f, { form: "chunkwise", chunkSize: 64 }).h.backward(dh);
          for (const p of [q, k, v, i, f]) {
            p.grad?.dispose();
            p.grad = null;
          }
        }, reps).finally(() => native.cudaSetMlstmForm(prev));
        yield { workload: "G2-forms", name: `mlstm-${form}-B${B}-NH${NH}-S${S}-DK${DK}-DV${DV}`, metric: "ms", value: t.median * 1e3, device: "cuda", gpu: gpuName(), dtype: "float32", form, min: t.min * 1e3, max: t.max * 1e3, reps };
      }
      for (const x of [q, k, v, i, f, dh]) x.dispose();
    }
  },
});

registerWorkload({
  id: "G3",
  description: "W2 (lm-train: xLSTMLMModel step with AdamW, B 8, S 256) on the GPU",
  device: "cuda",
  async *run({ reps }) {
    const gen = new Generator(0);
    const V = 256, [B, S] = tinyShapes() ? [1, 16] : [8, 256];
    const model = new xLSTMLMModel(w2Config(true), { generator: gen }).to("cuda");
    const opt = new AdamW(xlstmParamGroups(model, 0.1), { lr: 1e-3, weight_decay: 0.1 });
    const x = new Tensor(Int32Array.from({ length: B * S }, () => gen.int(V)), [B, S]);
    const y = new Tensor(Int32Array.from({ length: B * S }, () => gen.int(V)), [B * S]);
    for (const dtype of ["float32", "bfloat16"] as const) {
      const step = () => {
        const { logits } = model.forward(x);
        ops.crossEntropy(logits.reshape(B * S, V), y).backward();
      };
      const full = () => {
        if (dtype === "bfloat16") cuda.autocast(step);
        else step();
        clipGradNorm(opt.params, 1);
        opt.step();
        opt.zeroGrad();
      };
      const t = await timeGpu(full, reps);
      const name = dtype === "float32" ? "lm-train" : "lm-train-autocast-bf16";
      yield { workload: "G3", name, metric: "tokens_per_s", value: (B * S) / t.median, device: "cuda", gpu: gpuName(), dtype, seconds_per_step: t.median, reps };
      yield kernelsRow("G3", `${name}-kernels`, () => cuda.scope(full));
      // the same step with the GEMMs' split K off, back to back (its A/B on the same GPU)
      const prev = native.cudaSetGemmSplitK(false);
      const u = await timeGpu(full, reps).finally(() => native.cudaSetGemmSplitK(prev));
      yield { workload: "G3", name: `${name}-no-split-k`, metric: "tokens_per_s", value: (B * S) / u.median, device: "cuda", gpu: gpuName(), dtype, seconds_per_step: u.median, reps };
      // bf16: and with the GEMM's 64 x 128 tiles allowed (opt-in), back to back
      const wide = dtype === "bfloat16" ? await withWideBf16Tiles(() => timeGpu(full, reps)) : null;
      if (wide) yield { workload: "G3", name: `${name}-wide-gemm`, metric: "tokens_per_s", value: (B * S) / wide.median, device: "cuda", gpu: gpuName(), dtype, seconds_per_step: wide.median, reps };
      if (dtype === "float32") {
        // and with the float32 GEMM's uncut products on the grouped kernel instead of the tiled ones (cudaSetGemmForm)
        const form = native.cudaSetGemmForm("grouped");
        const w = await timeGpu(full, reps).finally(() => native.cudaSetGemmForm(form));
        yield { workload: "G3", name: `${name}-grouped-gemm`, metric: "tokens_per_s", value: (B * S) / w.median, device: "cuda", gpu: gpuName(), dtype, seconds_per_step: w.median, reps };
      }
    }
  },
});

registerWorkload({
  id: "G3-W5",
  description: "W5 on the GPU: greedy generation from the W2 model (ms/token over 256 tokens, batch 1) and the forward over a 256-token prompt",
  device: "cuda",
  async *run({ reps }) {
    const gen = new Generator(0);
    const model = new xLSTMLMModel(w2Config(true), { generator: gen }).eval().to("cuda");
    const [promptLen, steps] = tinyShapes() ? [16, 4] : [256, 256];
    const prompt = new Tensor(Int32Array.from({ length: promptLen }, () => gen.int(256)), [1, promptLen]);
    // each token: one step on the GPU, its logits read back for the choice (as generate() does), released at once
    const run = (n: number) =>
      greedyDecode(() => model.forward(ops.slice(prompt, 1, 0, 8), { returnLastState: true }).state!, (tok, st) => model.step(new Tensor(Int32Array.of(tok), [1, 1]), st), n);
    const pre = await timeGpu(() => run(0), reps);
    const g = await timeGpu(() => run(steps), reps);
    yield { workload: "G3", name: "generate-step", metric: "ms_per_token", value: ((g.median - pre.median) / steps) * 1000, device: "cuda", gpu: gpuName(), dtype: "float32", tokens: steps, reps };
    yield kernelsRow("G3", "generate-16-kernels", () => run(16));
    const p = await timeGpu(() => noGrad(() => void model.forward(prompt)), reps);
    yield { workload: "G3", name: "prefill-256", metric: "seconds", value: p.median, device: "cuda", gpu: gpuName(), dtype: "float32", min: p.min, max: p.max, reps };
    // the same through the device inference session (generate()'s path for xLSTM models on the GPU): one native call
    // per token enqueues its kernels and waits for the logits
    const session = createInferenceSession(model);
    const ids = prompt.toFlatArray();
    const head = Int32Array.from(ids.slice(0, 8)), all = Int32Array.from(ids);
    const sessionRun = (n: number) => {
      session.reset();
      let logits = session.prefill(head, head.length);
      for (let i = 0; i < n; ++i) {
        let best = 0;
        for (let v = 1; v < logits.length; ++v) if (logits[v] > logits[best]) best = v;
        logits = session.step(Int32Array.of(best));
      }
    };
    try {
      const sp = await timeGpu(() => sessionRun(0), reps), sg = await timeGpu(() => sessionRun(steps), reps);
      const perToken = ((sg.median - sp.median) / steps) * 1000;
      const tensorPath = ((g.median - pre.median) / steps) * 1000;
      yield { workload: "G3", name: "generate-step-session", metric: "ms_per_token", value: perToken, device: "cuda", gpu: gpuName(), dtype: "float32", tokens: steps, vs_tensor_path: Math.round((perToken / tensorPath) * 1000) / 1000, reps };
      const sf = await timeGpu(() => {
        session.reset();
        session.prefill(all, all.length);
      }, reps);
      yield { workload: "G3", name: "prefill-256-session", metric: "seconds", value: sf.median, device: "cuda", gpu: gpuName(), dtype: "float32", min: sf.min, max: sf.max, vs_tensor_path: Math.round((sf.median / p.median) * 1000) / 1000, reps };
      // the session's steps replayed from CUDA graphs (cuda.setSessionGraphs, opt-in until timed here), against the
      // eager session's steps just above
      const prev = cuda.setSessionGraphs(true);
      try {
        const gp = await timeGpu(() => sessionRun(0), reps), gg = await timeGpu(() => sessionRun(steps), reps);
        const graphed = ((gg.median - gp.median) / steps) * 1000;
        yield { workload: "G3", name: "generate-step-session-graphs", metric: "ms_per_token", value: graphed, device: "cuda", gpu: gpuName(), dtype: "float32", tokens: steps, graphs: session.cudaGraphs, vs_session: Math.round((graphed / perToken) * 1000) / 1000, reps };
      } finally {
        cuda.setSessionGraphs(prev);
      }
    } finally {
      session.dispose();
    }
  },
});

// W1, W3, W4 and W6 on the GPU (W2 and W5 are G3): the CPU workloads' own setups on device "cuda", each step in a
// cuda.scope with its gradients dropped inside it, so device memory stays flat over the repetitions.
function gpuStep(w: { step: () => void; zeroGrad: () => void }): () => void {
  return () => {
    w.step();
    w.zeroGrad();
  };
}

/** A CPU workload measured in tokens per second (`name` of `workload`), on the GPU. */
function registerTokensPerSecond(workload: string, name: string, setup: () => { step: () => void; zeroGrad: () => void; tokens: number }): void {
  registerWorkload({
    id: `${workload}-cuda`,
    description: `${workload} (${name}) on the GPU`,
    device: "cuda",
    async *run({ reps }) {
      const w = setup();
      const t = await timeGpu(gpuStep(w), reps);
      yield { workload, name, metric: "tokens_per_s", value: w.tokens / t.median, device: "cuda", gpu: gpuName(), dtype: "float32", seconds_per_step: t.median, reps };
    },
  });
}

registerTokensPerSecond("W1", "stack-train", () => w1Workload("cuda"));

registerWorkload({
  id: "W3-cuda",
  description: "W3 (slstm-layer) on the GPU",
  device: "cuda",
  async *run({ reps }) {
    const t = await timeGpu(gpuStep(w3Workload("cuda")), reps);
    yield { workload: "W3", name: "slstm-layer", metric: "seconds", value: t.median, device: "cuda", gpu: gpuName(), dtype: "float32", min: t.min, max: t.max, reps };
  },
});

registerWorkload({
  id: "W4-cuda",
  description: "W4 (mlstm-cell-S256 ... S16384) on the GPU, with the peak of device memory in tensors",
  device: "cuda",
  async *run({ reps }) {
    // sizes in increasing order, each size's inputs released after it: the process's peak so far is this size's
    for (const S of MLSTM_CELL_SIZES) {
      const w = mlstmCellWorkload(S, "cuda");
      const t = await timeGpu(gpuStep(w), reps);
      const peak = cuda.memoryStats().allocatedBytesPeak / 2 ** 20;
      w.dispose();
      yield { workload: "W4", name: `mlstm-cell-S${S}`, metric: "seconds", value: t.median, device: "cuda", gpu: gpuName(), dtype: "float32", peak_device_mb: Math.round(peak * 10) / 10, min: t.min, max: t.max, reps };
    }
  },
});

registerTokensPerSecond("W6", "lstm-d2l", () => w6Workload("cuda"));

registerWorkload({
  id: "L1-cuda",
  description: "L1 on the GPU: xLSTM Large 125M-config greedy decoding, batch 1, bf16 and float32 matrix weights (ms/token, GB/s of weights and state streamed)",
  device: "cuda",
  async *run({ reps }) {
    const config: xLSTMLargeConfig = tinyShapes() ? { embedding_dim: 64, num_heads: 2, num_blocks: 2, vocab_size: 128, mode: "inference" } : L1_CONFIG;
    const sd = randomLargeStateDict(config, 1);
    const prompt = new Tensor(Int32Array.from({ length: 16 }, (_, i) => (i * 7919) % config.vocab_size), [1, 16]);
    const steps = tinyShapes() ? 4 : 64;
    for (const dtype of ["bfloat16", "float32"] as const) {
      const model = new xLSTMLarge(config, { skipInit: true }).setWeightDtype(dtype);
      model.loadStateDict(sd);
      model.eval().to("cuda");
      const c = model.config;
      // bytes a token streams: every matrix weight but the embedding (one row), the recurrent state read and written
      const weights = model.parameters().reduce((a, p) => a + p.numel * (p.dtype === "bfloat16" ? 2 : 4), 0) - (c.vocab_size - 1) * c.embedding_dim * (dtype === "bfloat16" ? 2 : 4);
      const state = 2 * c.num_blocks * c.num_heads * (c.qk_head_dim * c.v_head_dim + c.qk_head_dim + 1) * 4;
      const run = (n: number) =>
        greedyDecode(() => model.forward(prompt.cuda(), { returnLastState: true }).state!, (tok, st) => {
          const s = model.forward(new Tensor(Int32Array.of(tok), [1, 1]).cuda(), { state: st, returnLastState: true });
          return { logits: s.logits, state: s.state! };
        }, n);
      const pre = await timeGpu(() => run(0), reps);
      const g = await timeGpu(() => run(steps), reps);
      const sec = (g.median - pre.median) / steps;
      yield { workload: "L1", name: "large-decode-125m", metric: "ms_per_token", value: sec * 1000, device: "cuda", gpu: gpuName(), dtype, batch: 1, tokens: steps, parameters: largeParameterCount(config).total, bytes_per_token: weights + state, gb_per_s: (weights + state) / sec / 1e9, reps };
      // the same decode through the device inference session (generate()'s path on the GPU): one native call a token
      const session = createLargeInferenceSession(model);
      try {
        const decode = (n: number) => {
          session.reset();
          let logits = session.step(Int32Array.of(0));
          for (let i = 0; i < n; ++i) {
            let best = 0;
            for (let v = 1; v < logits.length; ++v) if (logits[v] > logits[best]) best = v;
            logits = session.step(Int32Array.of(best));
          }
        };
        const sp = await timeGpu(() => decode(0), reps), sg = await timeGpu(() => decode(steps), reps);
        const ss = (sg.median - sp.median) / steps;
        yield { workload: "L1", name: "large-decode-125m-session", metric: "ms_per_token", value: ss * 1000, device: "cuda", gpu: gpuName(), dtype, batch: 1, tokens: steps, gb_per_s: (weights + state) / ss / 1e9, vs_tensor_path: Math.round((ss / sec) * 1000) / 1000, reps };
        const prev = cuda.setSessionGraphs(true);  // the steps from CUDA graphs, against the eager session's above
        try {
          const gp = await timeGpu(() => decode(0), reps), gg = await timeGpu(() => decode(steps), reps);
          const gs = (gg.median - gp.median) / steps;
          yield { workload: "L1", name: "large-decode-125m-session-graphs", metric: "ms_per_token", value: gs * 1000, device: "cuda", gpu: gpuName(), dtype, batch: 1, tokens: steps, gb_per_s: (weights + state) / gs / 1e9, graphs: session.cudaGraphs, vs_session: Math.round((gs / ss) * 1000) / 1000, reps };
        } finally {
          cuda.setSessionGraphs(prev);
        }
      } finally {
        session.dispose();
      }
      for (const p of model.parameters()) p.dispose();
    }
  },
});
