// One pass of a GPU workload's kernels, for a profiler on the device machine (scripts/gpu-check.sh's "profile" step
// runs it under Nsight Compute): `node scripts/gpu-profile.js g1` runs the G1 sLSTM forward and backward once
// (B 16, T 1024, hidden 768, one head; lib/bench/gpu.ts) in float32, `g1-bf16[:cap]` under the bf16 autocast (the
// tensor-core form, rec_split_tc_*; a cap on the blocks per head after a colon: cudaSetRecurrentSplitBlocks),
// `g1-gather[:cap]` the same with the backward's gather exchange (rec_split_gather_*), `g2` the G2 mLSTM cell forward and backward once (`g2-bf16`
// under the bf16 autocast, `g2-fused[:chunk]` also with the fused intra-chunk kernels, cudaSetMlstmIntra("fused"), at
// chunk 64 or the one given). Needs dist/ (npm run build:ts) and a GPU.
"use strict";
const { Tensor, Generator, ops, cuda } = require("../dist");

const [which, arg] = (process.argv[2] ?? "g1").split(":");  // "g2-fused:128": the chunk after a colon
const gen = new Generator(0);
if (which === "g1" || which === "g1-bf16" || which === "g1-gather") {
  const B = 16, T = 1024, H = 768;
  const x = Tensor.randn([B, T, 4 * H], { generator: gen, device: "cuda", requiresGrad: true });
  const R = Tensor.randn([1, H, 4 * H], { generator: gen, std: 1 / Math.sqrt(H), device: "cuda", requiresGrad: true });
  const bias = Tensor.zeros([4 * H], { device: "cuda", requiresGrad: true });
  const { native } = require("../dist/native");
  if (arg !== undefined) native.cudaSetRecurrentSplitBlocks(Number(arg));
  if (which === "g1-gather") native.cudaSetRecurrentExchange("gather");
  const y = which === "g1" ? ops.slstm(x, R, bias).y : cuda.autocast(() => ops.slstm(x, R, bias).y);
  y.backward(Tensor.randn([B, T, H], { generator: gen, device: "cuda" }));
} else if (which === "g2" || which === "g2-bf16" || which === "g2-fused") {
  const B = 8, S = 8192, NH = 8, DK = 256, DV = 512;
  const t = (shape, mean = 0) => Tensor.randn(shape, { generator: gen, mean, device: "cuda", requiresGrad: true });
  const q = t([B, NH, S, DK]), k = t([B, NH, S, DK]), v = t([B, NH, S, DV]), i = t([B, NH, S]), f = t([B, NH, S], 3);
  const chunkSize = which === "g2-fused" ? Number(arg ?? 64) : 64;
  if (which === "g2-fused") require("../dist/native").native.cudaSetMlstmIntra("fused");
  const fwd = () => ops.mlstm(q, k, v, i, f, { form: "chunkwise", chunkSize }).h;
  const h = which === "g2" ? fwd() : cuda.autocast(fwd);
  h.backward(Tensor.randn([B, NH, S, DV], { generator: gen, device: "cuda" }));
} else {
  throw new Error(`unknown workload "${which}": g1, g1-bf16, g1-gather, g2, g2-bf16 or g2-fused`);
}
cuda.synchronize();
