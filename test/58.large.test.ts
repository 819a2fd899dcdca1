// Layer 5: xLSTM Large (lib/nn/large.ts, lib/io/sharded.ts, csrc/kernels/bf16*). The large_* golden fixtures through
// the runner (train-mode logits, loss, every gradient and final states in both weight modes; inference mode with
// its kernel schedule, token-by-token, prefill + steps, greedy generate); the config's defaults and derived sizes;
// exact state_dict keys; weight-mode conversion; the decoder (float32 against the fixture, bfloat16 within the
// documented bounds); the bf16 kernels against float64 references at every SIMD level, with and without
// AVX512_BF16, 1 thread vs all; sharded checkpoints (round trip, every layout, errors naming the shard/key/dtype);
// the state's serialisation; bad inputs.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { getNumThreads, noGrad, setNumThreads, Tensor } from "../lib";
import { formatResult, runFixture } from "../lib/fixtures";
import { readSafetensors, writeSafetensors } from "../lib/io/safetensors";
import { openShardedCheckpoint, writeShardedCheckpoint } from "../lib/io/sharded";
import {
  convertLargeWeights,
  inferenceSchedule,
  largeParameterCount,
  largeParameterShapes,
  largeStateFromTensors,
  largeStateToTensors,
  LargeState,
  loadLargeCheckpoint,
  randomLargeStateDict,
  readLargeConfig,
  resolveLargeConfig,
  rmsNorm,
  xLSTMLarge,
  xLSTMLargeConfig,
  xLSTMLargeDecoder,
} from "../lib/nn/large";
import { native } from "../lib/native";
import * as ops from "../lib/ops";
import { Generator } from "../lib/rng";
import { bf16ToFloat, floatToBf16 } from "../lib/tensor";
import { assertClose, gradCheck, randnGrad, worstRatio } from "./support/gradcheck";
import { fixturesAvailable, fixtureEntry, fixturePath } from "./support/fixtures";
import { forEachSimdLevel } from "./support/simd";

const TINY: xLSTMLargeConfig = { embedding_dim: 32, num_heads: 2, num_blocks: 2, vocab_size: 40, chunk_size: 16 };

function ids(B: number, S: number, V: number, seed: number): Tensor {
  const g = new Generator(seed);
  return new Tensor(Int32Array.from({ length: B * S }, () => g.int(V)), [B, S]);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-large-"));
}

describe("58 xLSTM Large", function () {
  this.timeout(60_000);

  describe("config", () => {
    it("fills the reference's defaults and derives the sizes (7B: qk 2048, v 4096, FFN 10944)", () => {
      const c = resolveLargeConfig({ embedding_dim: 4096, num_heads: 8, num_blocks: 32, vocab_size: 50304 });
      assert.deepEqual([c.qk_dim, c.v_dim, c.qk_head_dim, c.v_head_dim, c.ffn_up_proj_dim], [2048, 4096, 256, 512, 10944]);
      assert.equal(c.mode, "train");
      assert.equal(c.chunk_size, 64);
      assert.equal(c.gate_soft_cap, 15);
      assert.equal(c.output_logit_soft_cap, 30);
      assert.equal(c.weight_mode, "single");
      assert.equal(c.norm_eps, 1e-6);
      // the FFN width is floor((E f + 63) / 64) 64 on the float product, not a ceil: E = 96 gives 256, ceil 320
      assert.equal(resolveLargeConfig({ embedding_dim: 96, num_heads: 2, num_blocks: 1, vocab_size: 4 }).ffn_up_proj_dim, 256);
      // the parameter count adds up with the shapes
      const cnt = largeParameterCount({ ...TINY, use_bias: true });
      const shapes = largeParameterShapes({ ...TINY, use_bias: true });
      assert.equal(cnt.total, [...shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0));
    });

    it("names the invalid field", () => {
      assert.throws(() => resolveLargeConfig({ ...TINY, num_heads: 0 }), (e: Error) => e instanceof RangeError && /num_heads/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, num_heads: 3 }), (e: Error) => e instanceof RangeError && /qk_dim/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, mode: "fast" as never }), (e: Error) => e instanceof RangeError && /mode/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, weight_mode: "packed" as never }), (e: Error) => e instanceof RangeError && /weight_mode/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, inference_state_dtype: "bfloat16" }), (e: Error) => e instanceof RangeError && /inference_state_dtype/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, mode: "train_with_padding", return_last_states: true }), (e: Error) => e instanceof RangeError && /train_with_padding/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, embeding_dim: 3 } as never), (e: Error) => e instanceof TypeError && /embeding_dim/.test(e.message));
      assert.throws(() => resolveLargeConfig({ ...TINY, gate_soft_cap: -1 }), (e: Error) => e instanceof RangeError && /gate_soft_cap/.test(e.message));
    });

    it("reads config.json and the flat config.yaml of pretrained checkpoints (unknown fields dropped)", () => {
      const dir = tmpDir();
      fs.writeFileSync(path.join(dir, "config.yaml"), "# xLSTM\nembedding_dim: 32\nnum_heads: 2\nnum_blocks: 2\nvocab_size: 40\nmode: inference\nnorm_eps: 1.0e-06\ngate_soft_cap: 15.0\nadd_out_norm: true\nweight_mode: 'single'\nsomething_else: 3\n");
      assert.deepEqual(readLargeConfig(dir), { embedding_dim: 32, num_heads: 2, num_blocks: 2, vocab_size: 40, mode: "inference", norm_eps: 1e-6, gate_soft_cap: 15, add_out_norm: true, weight_mode: "single" });
      fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...TINY, architectures: ["xLSTM"] }));
      assert.deepEqual(readLargeConfig(dir), TINY);
    });
  });

  describe("the inference schedule", () => {
    it("is the reference's: chunks of chunk_size, then halved while >= 16, the recurrent kernel for the rest", () => {
      assert.deepEqual(inferenceSchedule(1, 64), [{ kernel: "step", start: 0, end: 1 }]);
      assert.deepEqual(inferenceSchedule(45, 16), [
        { kernel: "chunkwise", start: 0, end: 32, chunkSize: 16 },
        { kernel: "recurrent_sequence", start: 32, end: 45 },
      ]);
      assert.deepEqual(inferenceSchedule(64 + 32 + 16 + 5, 64), [
        { kernel: "chunkwise", start: 0, end: 64, chunkSize: 64 },
        { kernel: "chunkwise", start: 64, end: 96, chunkSize: 32 },
        { kernel: "chunkwise", start: 96, end: 112, chunkSize: 16 },
        { kernel: "recurrent_sequence", start: 112, end: 117 },
      ]);
      assert.deepEqual(inferenceSchedule(10, 8), [{ kernel: "recurrent_sequence", start: 0, end: 10 }]);
      assert.throws(() => inferenceSchedule(0, 16), RangeError);
    });
  });

  describe("golden fixtures", () => {
    const a = fixturesAvailable();
    if (!a.ok) {
      it.skip(`large_* fixtures (skipped: ${a.reason})`, () => undefined);
      return;
    }
    for (const f of a.manifest.fixtures.filter((e) => e.config_class === "xLSTMLargeConfig")) {
      it(`${f.name} passes through the runner`, () => {
        const r = runFixture(f, a.dir);
        assert.ok(r.ok, formatResult(r) + "\n" + r.checks.filter((c) => !(c.ratio <= 1)).map((c) => `  ${c.tensor}: ratio ${c.ratio} at ${c.index}`).join("\n"));
        const expected = f.tensors.filter((t) => ["output", "state", "grad"].includes(t.role)).length;
        assert.ok(r.checks.length >= expected, `${r.checks.length} checks for ${expected} expected tensors`);
        if (f.tensors.some((t) => t.name.startsWith("aux:single."))) assert.ok(r.checks.some((c) => c.tensor.startsWith("converter:")), "the converter was checked");
      });
    }

    it("state_dict keys are the reference's, in order, in both weight modes", () => {
      for (const name of ["large_model", "large_model_fused"]) {
        const e = fixtureEntry(name);
        const model = new xLSTMLarge(e.config as unknown as xLSTMLargeConfig, { generator: new Generator(0) });
        assert.deepEqual([...model.stateDict().keys()], e.tensors.filter((t) => t.role === "param").map((t) => t.name), name);
        const shapes = largeParameterShapes(e.config as unknown as xLSTMLargeConfig);
        for (const t of e.tensors.filter((x) => x.role === "param")) assert.deepEqual(shapes.get(t.name), t.shape, t.name);
      }
    });

    it("the float32 decoder reproduces large_model_step (logits, steps, generated tokens) within its tolerances", () => {
      const e = fixtureEntry("large_model_step");
      const { tensors } = readSafetensors(fixturePath(e));
      const sd = new Map([...tensors].filter(([k]) => !k.includes(":")));
      const dec = xLSTMLargeDecoder.fromStateDict(e.config as unknown as xLSTMLargeConfig, sd, { dtype: "float32" });
      const idx = tensors.get("input:idx")!;
      const tol = (name: string) => e.tensors.find((t) => t.name === name)!;
      const full = dec.forward(idx);
      const check = (name: string, got: Tensor) => {
        const t = tol(name);
        const r = worstRatio(got.f32(), tensors.get(name)!.f32(), t.rtol!, t.atol!);
        assert.ok(r.ratio <= 1, `${name}: ratio ${r.ratio}`);
      };
      check("output:logits", full.logits);
      for (const [k, v] of largeStateToTensors(full.state!)) check(`state:last.${k}`, v);
      let st: LargeState | null = null;
      const steps: Tensor[] = [];
      for (let t = 0; t < idx.shape[1]; ++t) {
        const r = dec.step(ops.slice(idx, 1, t, t + 1), st);
        steps.push(r.logits);
        st = r.state;
      }
      check("output:logits_step", ops.cat(steps, 1));
      const P = (e.derived as { prefill_len: number; generate_len: number }).prefill_len;
      const g = dec.generate(ops.slice(idx, 1, 0, P), { maxLength: (e.derived as { generate_len: number }).generate_len });
      assert.deepEqual([...(g.tokens.data as BigInt64Array)], [...(tensors.get("output:generated")!.data as BigInt64Array)]);
      check("output:generated_logits", g.logits);
    });
  });

  describe("model", () => {
    it("train, train_with_padding and inference modes agree; step by step equals the forward", () => {
      const gen = new Generator(3);
      const train = new xLSTMLarge({ ...TINY, return_last_states: true }, { generator: gen });
      const sd = train.stateDict();
      const make = (over: Partial<xLSTMLargeConfig>) => {
        const m = new xLSTMLarge({ ...TINY, ...over }, { skipInit: true });
        m.loadStateDict(sd);
        return m;
      };
      const idx = ids(2, 32, TINY.vocab_size, 4);
      const t = noGrad(() => train.forward(idx));
      const inf = noGrad(() => make({ mode: "inference" }).forward(idx));
      assertClose(inf.logits.f32(), t.logits.f32(), "inference vs train logits", 1e-4, 1e-4);
      for (const [k, v] of largeStateToTensors(inf.state!)) assertClose(v.f32(), largeStateToTensors(t.state!).get(k)!.f32(), `state ${k}`, 1e-4, 1e-5);
      // padding mode on a length that is not a multiple: the logits of the first 20 positions
      const pad = noGrad(() => make({ mode: "train_with_padding" }).forward(ops.slice(idx, 1, 0, 20)));
      assert.equal(pad.state, undefined);
      assertClose(pad.logits.f32(), ops.slice(t.logits, 1, 0, 20).f32(), "train_with_padding logits", 1e-4, 1e-4);
      assert.throws(() => train.forward(ops.slice(idx, 1, 0, 20)), (e: Error) => e instanceof RangeError && /multiple of chunk_size/.test(e.message));
      // step by step
      let st: LargeState | null = null;
      const steps: Tensor[] = [];
      for (let j = 0; j < 32; ++j) {
        const r = noGrad(() => train.step(ops.slice(idx, 1, j, j + 1), st));
        steps.push(r.logits);
        st = r.state;
      }
      assertClose(ops.cat(steps, 1).f32(), t.logits.f32(), "step vs forward", 1e-4, 1e-4);
      // the state passed in is not modified
      const before = largeStateToTensors(t.state!).get("0.c")!.f32().slice();
      noGrad(() => train.forward(ops.slice(idx, 1, 0, 16), { state: t.state! }));
      assert.deepEqual(largeStateToTensors(t.state!).get("0.c")!.f32(), before);
    });

    it("trains: every parameter gets a gradient, and a step of SGD lowers the loss", () => {
      const model = new xLSTMLarge({ ...TINY, use_bias: true }, { generator: new Generator(5) });
      const idx = ids(2, 16, TINY.vocab_size, 6);
      const lossOf = () => {
        const logits = model.forward(idx).logits;
        return ops.crossEntropy(ops.slice(logits, 1, 0, 15).reshape(30, TINY.vocab_size), ops.slice(idx, 1, 1, 16).reshape(30));
      };
      const l0 = lossOf();
      l0.backward();
      for (const [k, p] of model.namedParameters()) assert.ok(p.grad && maxAbs(p.grad.f32()) > 0, `${k} has a gradient`);
      noGrad(() => {
        for (const p of model.parameters()) p.f32().forEach((v, i, arr) => (arr[i] = v - 0.05 * p.grad!.f32()[i]));
      });
      assert.ok(lossOf().item() < l0.item());
    });

    it("rmsNorm: forward and gradients against float64 finite differences", () => {
      const D = 5;
      gradCheck({
        name: "rmsNorm",
        op: ([x, w, b]) => rmsNorm(x, w, b, 1e-6),
        ref64: ([x, w, b]) => {
          const y = new Float64Array(x.length);
          for (let r = 0; r < x.length / D; ++r) {
            let s = 0;
            for (let d = 0; d < D; ++d) s += x[r * D + d] ** 2;
            const inv = 1 / Math.sqrt(s / D + 1e-6);
            for (let d = 0; d < D; ++d) y[r * D + d] = x[r * D + d] * inv * w[d] + b[d];
          }
          return y;
        },
        inputs: [randnGrad([3, D], 1), randnGrad([D], 2), randnGrad([D], 3)],
      });
      assert.throws(() => rmsNorm(Tensor.zeros([2, 4]), Tensor.zeros([3]), null, 1e-6), (e: Error) => e instanceof RangeError && /weight/.test(e.message));
    });

    it("single and fused weights: the same logits and concatenated gradients; conversion round trips (>= 11 blocks)", () => {
      const single = new xLSTMLarge({ ...TINY, use_bias: true }, { generator: new Generator(7) });
      const fused = single.toWeightMode("fused");
      assert.ok(fused.stateDict().has("backbone.blocks.0.mlstm_layer.qkv_opreact.bias"));
      const idx = ids(1, 16, TINY.vocab_size, 8);
      const ls = single.forward(idx).logits, lf = fused.forward(idx).logits;
      assert.ok(maxDiff(ls.f32(), lf.f32()) <= 1e-5 * maxAbs(ls.f32()));
      ops.sum(ls).backward();
      ops.sum(lf).backward();
      const cat = (ks: string[]) => Float32Array.from(ks.flatMap((k) => [...single.stateDict().get(`backbone.blocks.1.${k}.weight`)!.grad!.f32()]));
      const gq = fused.stateDict().get("backbone.blocks.1.mlstm_layer.qkv_opreact.weight")!.grad!.f32();
      assertClose(gq, cat(["mlstm_layer.q", "mlstm_layer.k", "mlstm_layer.v", "mlstm_layer.ogate_preact"]), "fused gradient", 1e-4, 1e-6);
      // loadStateDict converts a checkpoint in the other mode
      const back = new xLSTMLarge({ ...TINY, use_bias: true }, { skipInit: true });
      back.loadStateDict(fused.stateDict());
      for (const [k, v] of single.stateDict()) assert.deepEqual(back.stateDict().get(k)!.f32(), v.f32(), k);
      // 12 blocks: block 1 must not pick up blocks 10 and 11 (the reference converter's bug)
      const cfg12 = { ...TINY, num_blocks: 12 };
      const sd12 = new Map([...largeParameterShapes(cfg12)].map(([k, s], j) => [k, Tensor.full(s, j)]));
      const f12 = convertLargeWeights(sd12, "fused", cfg12);
      assert.deepEqual([...f12.keys()], [...largeParameterShapes({ ...cfg12, weight_mode: "fused" }).keys()]);
      const s12 = convertLargeWeights(f12, "single", cfg12);
      for (const [k, v] of sd12) assert.deepEqual(s12.get(k)!.f32(), v.f32(), k);
    });

    it("errors name the bad input", () => {
      const model = new xLSTMLarge({ ...TINY, mode: "inference" }, { generator: new Generator(1) });
      assert.throws(() => model.forward(Tensor.zeros([2, 3])), (e: Error) => e instanceof TypeError && /idx/.test(e.message));
      assert.throws(() => model.forward(new Tensor(Int32Array.of(1, 99), [1, 2])), (e: Error) => e instanceof RangeError && /token id 99/.test(e.message));
      assert.throws(() => model.step(ids(1, 2, 40, 1)), (e: Error) => e instanceof RangeError && /\[B, 1\]/.test(e.message));
      const st = model.forward(ids(2, 3, 40, 1)).state!;
      assert.throws(() => model.forward(ids(1, 3, 40, 1), { state: st }), (e: Error) => e instanceof RangeError && /state\["0"\]\.c/.test(e.message));
      assert.throws(() => model.generate(ids(1, 3, 40, 1), { maxLength: 2, samplingType: "top_k" as never }), (e: Error) => e instanceof RangeError && /samplingType/.test(e.message));
      assert.throws(() => model.loadStateDict(new Map([["embedding.weight", Tensor.zeros([40, 32])]])), (e: Error) => e instanceof RangeError && /missing keys/.test(e.message));
    });

    it("the state serialises (safetensors) and continues exactly", () => {
      const model = new xLSTMLarge({ ...TINY, mode: "inference" }, { generator: new Generator(9) });
      const idx = ids(2, 21, TINY.vocab_size, 10);
      const pre = noGrad(() => model.forward(ops.slice(idx, 1, 0, 13)));
      const file = path.join(tmpDir(), "state.safetensors");
      writeSafetensors(file, largeStateToTensors(pre.state!));
      const back = largeStateFromTensors(readSafetensors(file).tensors, TINY);
      const a = noGrad(() => model.forward(ops.slice(idx, 1, 13, 21), { state: pre.state! }).logits.f32());
      const b = noGrad(() => model.forward(ops.slice(idx, 1, 13, 21), { state: back }).logits.f32());
      assert.deepEqual(b, a);
      assert.throws(() => largeStateFromTensors(new Map([["0.c", Tensor.zeros([1])]])), (e: Error) => e instanceof RangeError && /"0\.n"/.test(e.message));
    });
  });

  describe("bf16 kernels", () => {
    const ref64 = (x: Float32Array, w: Float32Array, bias: Float32Array | null, rows: number, inF: number, outF: number) => {
      const y = new Float64Array(rows * outF), mag = new Float64Array(rows * outF);
      for (let r = 0; r < rows; ++r)
        for (let o = 0; o < outF; ++o) {
          let s = bias ? bias[o] : 0, m = bias ? Math.abs(bias[o]) : 0;
          for (let i = 0; i < inF; ++i) {
            s += x[r * inF + i] * w[o * inF + i];
            m += Math.abs(x[r * inF + i] * w[o * inF + i]);
          }
          y[r * outF + o] = s;
          mag[r * outF + o] = m;
        }
      return { y, mag };
    };
    const roundBf16 = (a: Float32Array) => bf16ToFloat(new Float32Array(a.length), floatToBf16(new Uint16Array(a.length), a));

    it("bf16Linear at every SIMD level, float32 and rounded activations, with and without AVX512_BF16", () => {
      const g = new Generator(11);
      const shapes = [
        [1, 37, 11],
        [3, 100, 9],
        [5, 64, 4],
        [9, 33, 17],
        [1, 768, 130],
      ];
      try {
        // AMX first when present (it takes roundX over vdpbf16ps), then vdpbf16ps, then neither
        for (const [amx, dot] of [[true, true], [false, true], [false, false]]) {
          native.bf16SetAmxEnabled(amx);
          native.bf16SetDotEnabled(dot);
          forEachSimdLevel((level) => {
            for (const [rows, inF, outF] of shapes) {
              const x = Tensor.randn([rows * inF], { generator: g }).f32();
              const wf = Tensor.randn([outF * inF], { generator: g }).f32();
              const w = floatToBf16(new Uint16Array(wf.length), wf);
              const wexact = bf16ToFloat(new Float32Array(w.length), w);
              const bias = Tensor.randn([outF], { generator: g }).f32();
              for (const roundX of [false, true]) {
                const y = new Float32Array(rows * outF);
                native.bf16Linear(y, x, w, roundX ? null : bias, rows, inF, outF, roundX);
                const { y: want, mag } = ref64(roundX ? roundBf16(x) : x, wexact, roundX ? null : bias, rows, inF, outF);
                for (let j = 0; j < y.length; ++j)
                  assert.ok(Math.abs(y[j] - want[j]) <= 2e-6 * mag[j] + 1e-30, `${level} amx=${amx} dot=${dot} roundX=${roundX} [${rows},${inF},${outF}] #${j}: ${y[j]} vs ${want[j]}`);
              }
            }
          });
        }
      } finally {
        native.bf16SetDotEnabled(true);
        native.bf16SetAmxEnabled(true);
      }
    });

    // The tile kernels of roundX: AMX, and (without AMX) vdpbf16ps on the GEMM's 14 x 32 tiles for many rows. Each runs
    // alone (the other turned off) on shapes that reach it, checked by bf16LinearPath.
    const tileKernels: { path: "amx" | "vdpbf16ps-gemm"; here: boolean; why: string; shapes: number[][]; nanRows: number }[] = [
      {
        path: "amx", here: native.bf16AmxAvailable(), why: "no AMX-BF16 on this CPU, or the OS refused this process the tile state",
        // rows: one / two / three row blocks of 16 with tails; outputs: W read in place (multiples of 32) and padded
        // output blocks; inputs: whole k-steps of 32 and a tail (W's rows copied, zero-padded); 8 row blocks of whole
        // blocks and k-steps; 33 row blocks (16 pairs and a single) with 19 output blocks (the last padded) and padded
        // inputs; with 1 thread tasks of 9 blocks
        shapes: [[16, 64, 32], [32, 96, 64], [40, 96, 70], [17, 33, 33], [48, 300, 100], [1, 32, 16], [128, 64, 96], [520, 300, 600]],
        nanRows: 20,
      },
      {
        path: "vdpbf16ps-gemm", here: native.bf16DotAvailable(), why: "no AVX512_BF16 on this CPU",
        // W read as it is (fewer than 2,048 rows: x's rows and the result transposed 16 x 16, with tails): whole and
        // edge 14 x 32 tiles, odd inputs (the last pair half zero; W's rows copied), more than one KC block of pairs
        // (1,101 inputs), a single input, the fewest rows; W transposed into k-major pairs (2,048 rows and more)
        shapes: [[32, 40, 17], [45, 33, 19], [256, 64, 32], [300, 33, 70], [281, 1101, 45], [520, 300, 600], [256, 1, 17], [1030, 71, 40], [2048, 33, 20], [2050, 64, 17]],
        nanRows: 300,
      },
    ];
    for (const tk of tileKernels) {
      const title = `bf16Linear on ${tk.path === "amx" ? "AMX tiles" : "vdpbf16ps GEMM tiles"}: whole and partial tiles of rows, outputs and inputs, bias, NaN and infinities kept`;
      (tk.here ? it : it.skip)(tk.here ? title : `${title} (skipped: ${tk.why})`, () => {
        const g = new Generator(14);
        const threads = getNumThreads();
        native.bf16SetAmxEnabled(tk.path === "amx");
        try {
          for (const [rows, inF, outF] of tk.shapes) {
            assert.equal(native.bf16LinearPath(rows, true), tk.path, `[${rows},${inF},${outF}]`);
            const x = Tensor.randn([rows * inF], { generator: g }).f32();
            const w = floatToBf16(new Uint16Array(outF * inF), Tensor.randn([outF * inF], { generator: g }).f32());
            const wexact = bf16ToFloat(new Float32Array(w.length), w);
            const bias = Tensor.randn([outF], { generator: g }).f32();
            for (const b of [bias, null]) {
              const { y: want, mag } = ref64(roundBf16(x), wexact, b, rows, inF, outF);
              for (const n of rows > 100 ? [threads, 1] : [threads]) {
                setNumThreads(n);
                const y = new Float32Array(rows * outF).fill(NaN);
                native.bf16Linear(y, x, w, b, rows, inF, outF, true);
                for (let j = 0; j < y.length; ++j)
                  assert.ok(Math.abs(y[j] - want[j]) <= 2e-6 * mag[j] + 1e-30, `[${rows},${inF},${outF}] bias ${!!b} ${n} threads #${j} (row ${Math.floor(j / outF)}, output ${j % outF}): ${y[j]} vs ${want[j]}`);
              }
              setNumThreads(threads);
            }
          }
          // a NaN in x reaches only its row; an infinite weight only its output (the zero padding never multiplies it)
          const rows = tk.nanRows, inF = 40, outF = 36;
          assert.equal(native.bf16LinearPath(rows, true), tk.path);
          const x = Tensor.randn([rows * inF], { generator: g }).f32();
          x[3 * inF + 5] = NaN;
          const wf = Tensor.randn([outF * inF], { generator: g }).f32();
          wf[7 * inF] = Infinity;  // read, past row 6's end, by a W used in place without its k-step padding
          const w = floatToBf16(new Uint16Array(wf.length), wf);
          const y = new Float32Array(rows * outF);
          native.bf16Linear(y, x, w, null, rows, inF, outF, true);
          for (let r = 0; r < rows; ++r)
            for (let o = 0; o < outF; ++o) {
              const v = y[r * outF + o];
              if (r === 3) assert.ok(Number.isNaN(v), `row 3, output ${o}: ${v}`);
              else if (o === 7) assert.ok(!Number.isFinite(v), `row ${r}, output 7: ${v}`);
              else assert.ok(Number.isFinite(v), `row ${r}, output ${o}: ${v}`);
            }
        } finally {
          setNumThreads(threads);
          native.bf16SetAmxEnabled(true);
        }
      });
    }

    it("the same results with 1 thread and with all", () => {
      const g = new Generator(12);
      const rows = 2, inF = 300, outF = 257;
      const x = Tensor.randn([rows * inF], { generator: g }).f32();
      const w = floatToBf16(new Uint16Array(outF * inF), Tensor.randn([outF * inF], { generator: g }).f32());
      const n = getNumThreads();
      const run = (roundX: boolean) => {
        const y = new Float32Array(rows * outF);
        native.bf16Linear(y, x, w, null, rows, inF, outF, roundX);
        return y;
      };
      const all = [run(false), run(true)];
      setNumThreads(1);
      try {
        assert.deepEqual(run(false), all[0]);
        assert.deepEqual(run(true), all[1]);
      } finally {
        setNumThreads(n);
      }
    });

    it("conversions match lib/tensor's (round to nearest even, NaN, infinities) and bf16Sum the float64 sum", () => {
      const x = Float32Array.from([0, -0, 1, 1.00390625, 1.01171875, -2.5, 3.4e38, Infinity, -Infinity, NaN, 1e-40, 65504, Math.PI]);
      const mine = new Uint16Array(x.length);
      native.bf16FromF32(mine, x);
      assert.deepEqual(mine, floatToBf16(new Uint16Array(x.length), x));
      const back = new Float32Array(x.length);
      native.bf16ToF32(back, mine);
      assert.deepEqual(back, bf16ToFloat(new Float32Array(x.length), mine));
      const big = floatToBf16(new Uint16Array(200_003), Tensor.randn([200_003], { generator: new Generator(13) }).f32());
      const widened = bf16ToFloat(new Float32Array(big.length), big);
      let s = 0, m = 0;
      for (const v of widened) {
        s += v;
        m += Math.abs(v);
      }
      forEachSimdLevel((level) => assert.ok(Math.abs(native.bf16Sum(big) - s) <= 1e-6 * m, `${level}: bf16Sum`));
    });

    it("bad arguments raise errors naming them", () => {
      const y = new Float32Array(6), x = new Float32Array(8), w = new Uint16Array(12);
      assert.throws(() => native.bf16Linear(y, x, new Uint16Array(11), null, 2, 4, 3, false), (e: Error) => e instanceof RangeError && /\bw\b/.test(e.message));
      assert.throws(() => native.bf16Linear(y, x, new Float32Array(12) as never, null, 2, 4, 3, false), (e: Error) => e instanceof TypeError && /\bw\b/.test(e.message));
      assert.throws(() => native.bf16Linear(y, new Float32Array(7), w, null, 2, 4, 3, false), (e: Error) => e instanceof RangeError && /\bx\b/.test(e.message));
      assert.throws(() => native.bf16Linear(y, x, w, new Float32Array(2), 2, 4, 3, false), (e: Error) => e instanceof RangeError && /bias/.test(e.message));
      assert.throws(() => native.bf16Linear(y, x, w, null, -1, 4, 3, false), (e: Error) => e instanceof RangeError && /rows/.test(e.message));
      const buf = new Float32Array(20);
      assert.throws(() => native.bf16Linear(buf.subarray(0, 6), buf.subarray(4, 12), w, null, 2, 4, 3, false), (e: Error) => e instanceof RangeError && /overlap/.test(e.message));
      assert.throws(() => native.bf16FromF32(new Uint16Array(3), new Float32Array(4)), (e: Error) => e instanceof RangeError && /out/.test(e.message));
      assert.throws(() => native.bf16ToF32(new Float32Array(4), new Float32Array(4) as never), (e: Error) => e instanceof TypeError && /\bx\b/.test(e.message));
    });
  });

  describe("bf16 decoder", () => {
    it("randomLargeStateDict: every parameter, its shape, dtype and range; loads into the model and the decoder", () => {
      const sd = randomLargeStateDict({ ...TINY, use_bias: true }, 3);
      const shapes = largeParameterShapes({ ...TINY, use_bias: true });
      assert.deepEqual([...sd.keys()], [...shapes.keys()]);
      for (const [k, t] of sd) {
        assert.deepEqual(t.shape, shapes.get(k), k);
        assert.equal(t.dtype, "bfloat16");
        const v = t.toFlatArray();
        const bound = k === "embedding.weight" ? 1 : /norm/.test(k) ? 1 : 1 / Math.sqrt(k.endsWith(".bias") ? shapes.get(k.replace(/bias$/, "weight"))![1] : t.shape[1]);
        assert.ok(v.every((x) => Math.abs(x) <= bound * 1.01), k);
        if (/norm.*weight$/.test(k)) assert.ok(v.every((x) => x === 1), k);
      }
      const model = new xLSTMLarge({ ...TINY, use_bias: true, mode: "inference" }, { skipInit: true });
      model.loadStateDict(sd);
      const idx = ids(1, 5, TINY.vocab_size, 1);
      const want = noGrad(() => model.forward(idx, { returnLastState: false }).logits.f32());
      // the float32 decoder from the same (bf16-valued) weights: float32 agreement
      assertClose(xLSTMLargeDecoder.fromStateDict({ ...TINY, use_bias: true }, sd, { dtype: "float32" }).forward(idx).logits.f32(), want, "decoder", 1e-4, 1e-5);
    });

    const cfg: xLSTMLargeConfig = { embedding_dim: 128, num_heads: 2, num_blocks: 3, vocab_size: 200, chunk_size: 16, mode: "inference" };

    it("agrees with the float32 model within the documented bounds (lib/nn/large.ts header)", () => {
      for (const seed of [1, 2]) {
        const gen = new Generator(seed);
        const model = new xLSTMLarge(cfg, { generator: gen });
        const idx = ids(2, 40, cfg.vocab_size, seed + 10);
        const ref = noGrad(() => model.forward(idx).logits.f32());
        const scale = maxAbs(ref);
        // the same bf16-rounded weights in float32: arithmetic only
        const rounded = new xLSTMLarge(cfg, { skipInit: true });
        rounded.loadStateDict(new Map([...model.stateDict()].map(([k, t]) => [k, new Tensor(roundTrip(t.f32()), t.shape)])));
        const refRounded = noGrad(() => rounded.forward(idx).logits.f32());
        const exact = xLSTMLargeDecoder.fromModel(model, { dtype: "bfloat16", roundActivations: false });
        const a = exact.forward(idx).logits.f32();
        assert.ok(maxDiff(a, refRounded) <= 5e-4 * scale, `vs rounded weights: ${maxDiff(a, refRounded) / scale}`);
        assert.ok(maxDiff(a, ref) <= 2e-2 * scale, `vs float32 weights: ${maxDiff(a, ref) / scale}`);
        const dot = xLSTMLargeDecoder.fromModel(model, { dtype: "bfloat16", roundActivations: true }).forward(idx).logits.f32();
        assert.ok(maxDiff(dot, ref) <= 2e-2 * scale, `rounded activations vs float32 weights: ${maxDiff(dot, ref) / scale}`);
        // float32 decoder: float32 agreement
        const f32 = xLSTMLargeDecoder.fromModel(model, { dtype: "float32" }).forward(idx).logits.f32();
        assert.ok(maxDiff(f32, ref) <= 1e-5 * scale, `float32 decoder: ${maxDiff(f32, ref) / scale}`);
        // decode steps equal the forward's positions (float32 activations in both)
        const pre = exact.forward(ops.slice(idx, 1, 0, 37));
        let st = pre.state!;
        const tail: Tensor[] = [];
        for (let t = 37; t < 40; ++t) {
          const r = exact.step(ops.slice(idx, 1, t, t + 1), st);
          tail.push(r.logits);
          st = r.state;
        }
        assertClose(ops.cat(tail, 1).f32(), ops.slice(new Tensor(a, [2, 40, cfg.vocab_size]), 1, 37, 40).f32(), "bf16 steps vs forward", 1e-4, 1e-4 * scale);
        // in place: the same numbers, written into the given state's tensors
        const own = largeStateFromTensors(new Map([...largeStateToTensors(pre.state!)].map(([k, t]) => [k, t.clone()])));
        const c0 = own["0"].c;
        for (let t = 37; t < 40; ++t) {
          const r = exact.forward(ops.slice(idx, 1, t, t + 1), { state: own, inPlace: true });
          assert.equal(r.state, own);
          assert.deepEqual(r.logits.f32(), tail[t - 37].f32());
        }
        assert.equal(own["0"].c, c0);
        assert.deepEqual(own["1"].c.f32(), st["1"].c.f32());
        assert.throws(() => exact.forward(ops.slice(idx, 1, 0, 1), { inPlace: true }), (e: Error) => e instanceof RangeError && /inPlace/.test(e.message));
      }
    });

    it("forwardAsync: the same logits and state as forward, bit for bit, with the event loop free meanwhile", async function () {
      this.timeout(60000);
      // big enough that one forward takes tens of milliseconds: ticks of a 2 ms interval must keep coming
      const big: xLSTMLargeConfig = { embedding_dim: 512, num_heads: 4, num_blocks: 4, vocab_size: 512, chunk_size: 64, mode: "inference" };
      const dec = xLSTMLargeDecoder.fromModel(new xLSTMLarge(big, { generator: new Generator(7) }), { dtype: "float32" });
      const idx = ids(2, 256, big.vocab_size, 8);
      const sync = dec.forward(idx);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 2);
      const t0 = performance.now();
      const pending = dec.forwardAsync(idx);
      const ticksAtCall = ticks;
      const got = await pending;
      const ms = performance.now() - t0;
      clearInterval(timer);
      assert.equal(ticksAtCall, 0);
      assert.ok(ms < 20 || ticks >= Math.floor(ms / 8), `${ticks} ticks of a 2 ms interval in ${ms.toFixed(0)} ms`);
      assert.deepEqual(got.logits.f32(), sync.logits.f32());
      for (const [k, t] of largeStateToTensors(got.state!)) assert.deepEqual(t.f32(), largeStateToTensors(sync.state!).get(k)!.f32(), k);
      // steps from the state, in place, and "last" logits: the same as the sync calls
      const own = largeStateFromTensors(new Map([...largeStateToTensors(sync.state!)].map(([k, t]) => [k, t.clone()])));
      const ref = largeStateFromTensors(new Map([...largeStateToTensors(sync.state!)].map(([k, t]) => [k, t.clone()])));
      for (const tok of [3, 99]) {
        const step = new Tensor(Int32Array.of(tok, tok + 1), [2, 1]);
        const a = await dec.forwardAsync(step, { state: own, inPlace: true, logits: "last" });
        const b = dec.forward(step, { state: ref, inPlace: true, logits: "last" });
        assert.equal(a.state, own);
        assert.deepEqual(a.logits.f32(), b.logits.f32());
      }
      assert.deepEqual(own["3"].c.f32(), ref["3"].c.f32());
      // errors arrive as rejections naming the call
      await assert.rejects(dec.forwardAsync(ids(1, 3, 600, 1)), (e: Error) => e instanceof RangeError && /forwardAsync/.test(e.message));
      await assert.rejects(dec.forwardAsync(idx, { inPlace: true }), (e: Error) => e instanceof RangeError && /inPlace/.test(e.message));
    });

    it("a long prompt in pieces (maxPieceRows): the logits and state of one pass, all or last, from a state, float32 and rounded activations", () => {
      // chunk 16; B 2, S 150: 150 = 9 whole chunks and a tail of 6 (halved chunks, then recurrent steps), so the last
      // piece runs the tail's schedule. Pieces of 16 rows = 8 tokens = one chunk per row (at least a chunk), 64 rows =
      // 32 tokens, 300 rows = 144 tokens: 1 to 19 pieces
      const model = new xLSTMLarge(cfg, { generator: new Generator(21) });
      const idx = ids(2, 150, cfg.vocab_size, 22);
      for (const roundActivations of [false, true]) {
        const dec = xLSTMLargeDecoder.fromModel(model, { dtype: "bfloat16", roundActivations });
        const start = dec.forward(ops.slice(idx, 1, 0, 7)).state!;  // a non-zero state to start from
        for (const logits of ["all", "last"] as const) {
          const whole = dec.forward(idx, { state: start, logits });
          const scale = maxAbs(whole.logits.f32());
          for (const maxPieceRows of [16, 64, 300]) {
            const got = dec.forward(idx, { state: start, logits, maxPieceRows });
            const what = `roundActivations ${roundActivations}, logits ${logits}, maxPieceRows ${maxPieceRows}`;
            assert.deepEqual(got.logits.shape, whole.logits.shape, what);
            // float32 activations: float32 sums in another order; rounded ones: a float32 difference can move an
            // activation's bf16 rounding by one step (2^-8), so within bf16 rounding
            const tol = roundActivations ? 1e-2 : 1e-5;
            assert.ok(maxDiff(got.logits.f32(), whole.logits.f32()) <= tol * scale, `${what}: logits ${maxDiff(got.logits.f32(), whole.logits.f32()) / scale}`);
            for (const [k, t] of largeStateToTensors(got.state!)) {
              const w = largeStateToTensors(whole.state!).get(k)!.f32();
              assert.ok(maxDiff(t.f32(), w) <= tol * (maxAbs(w) + 1e-30), `${what}: state ${k} ${maxDiff(t.f32(), w) / maxAbs(w)}`);
            }
          }
        }
        // one piece when the prompt fits: bit for bit the default
        assert.deepEqual(dec.forward(idx, { maxPieceRows: 300 * 2 }).logits.f32(), dec.forward(idx).logits.f32());
      }
      const dec = xLSTMLargeDecoder.fromModel(model);
      for (const bad of [0, -3, 2.5, Number.NaN, "64"])
        assert.throws(() => dec.forward(idx, { maxPieceRows: bad as never }), (e: Error) => e instanceof RangeError && /xLSTMLargeDecoder\.forward: options\.maxPieceRows must be a positive integer/.test(e.message), String(bad));
    });

    it("the native forward refuses bad handles, sizes, tokens, partial states, overlapping outputs and detached weights", () => {
      const tiny: xLSTMLargeConfig = { embedding_dim: 16, num_heads: 2, num_blocks: 1, vocab_size: 11, chunk_size: 16, mode: "inference" };
      const c = resolveLargeConfig(tiny);
      const E = c.embedding_dim, NH = c.num_heads, DK = c.qk_head_dim, DV = c.v_head_dim, up = c.ffn_up_proj_dim, V = c.vocab_size;
      const width = 2 * c.qk_dim + 2 * c.v_dim + 2 * NH;
      const g = new Generator(3);
      const rnd = (n: number, s = 0.1) => Float32Array.from({ length: n }, () => g.normal() * s);
      const block = () => ({
        normM: new Float32Array(E).fill(1), normMBias: null, wIn: rnd(width * E), bIn: null, mhW: new Float32Array(c.v_dim).fill(1), mhB: null,
        wOut: rnd(E * c.v_dim), bOut: null, normF: new Float32Array(E).fill(1), normFBias: null, wUp: rnd(2 * up * E), bUp: null, wDown: rnd(E * up), bDown: null,
      });
      const config = { vocabSize: V, embeddingDim: E, numHeads: NH, qkHeadDim: DK, vHeadDim: DV, ffnUpDim: up, chunkSize: 16, normEps: 1e-6, eps: 1e-6, gateSoftCap: 15, outputSoftCap: 30 };
      const weights = { embedding: rnd(V * E), head: rnd(V * E), outNorm: new Float32Array(E).fill(1), outNormBias: null, blocks: [block()] };
      const h = native.largeDecoderCreate(config, weights);
      const states = () => [new Float32Array(NH * DK * DV), new Float32Array(NH * DK), new Float32Array(NH)];
      const logits = new Float32Array(V), toks = Int32Array.of(1, 2, 3);
      const run = (over: { h?: unknown; logits?: Float32Array; tokens?: Int32Array; S?: number; stateIn?: unknown[]; stateOut?: unknown[] }) =>
        native.largeDecoderForward((over.h ?? h) as object, over.logits ?? logits, over.tokens ?? toks, 1, over.S ?? 3, true, 0, (over.stateIn ?? [null, null, null]) as Float32Array[], (over.stateOut ?? states()) as Float32Array[]);
      run({});
      assert.ok(logits.every(Number.isFinite) && logits.some((x) => x !== 0));
      const err = (fn: () => unknown, kind: ErrorConstructor, re: RegExp) => assert.throws(fn, (e: Error) => e instanceof kind && re.test(e.message), re.source);
      err(() => run({ h: {} }), TypeError, /^largeDecoderForward: decoder must be a handle returned by largeDecoderCreate/);
      err(() => run({ logits: new Float32Array(V + 1) }), RangeError, /logits has 12 elements, expected B\*V/);
      err(() => run({ tokens: Int32Array.of(1, 11, 2) }), RangeError, /tokens\[1\] = 11 is out of range \[0, 11\)/);
      err(() => run({ stateIn: [new Float32Array(NH * DK * DV), null, null] }), TypeError, /block 0 has 1 of its c, n, m/);
      const shared = states();
      err(() => run({ stateOut: [shared[0], shared[0].subarray(0, NH * DK), shared[2]] }), RangeError, /must not overlap/);
      err(() => run({ stateOut: [logits, ...states().slice(1)] }), RangeError, /elements, expected B\*NH\*DK\*DV|must not overlap/);
      err(() => native.largeDecoderCreate({ ...config, gateSoftCap: -1 }, weights), RangeError, /config\.gateSoftCap must be a positive number or null/);
      err(() => native.largeDecoderCreate(config, { ...weights, head: new Float32Array(3) }), RangeError, /weights\.head has 3 elements, expected vocabSize\*embeddingDim = 176/);
      err(() => native.largeDecoderCreate(config, { ...weights, blocks: [{ ...block(), wIn: new Int32Array(width * E) as unknown as Float32Array }] }), TypeError, /weights\.blocks\[0\]\.wIn must be a Float32Array or Uint16Array/);
      // in place (stateOut = stateIn) is allowed and equals a fresh output
      const fresh = states(), inplace = states();
      run({ S: 3, stateOut: fresh });
      run({ S: 3, stateOut: inplace });
      const again = states();
      run({ S: 3, stateIn: fresh, stateOut: again });
      run({ S: 3, stateIn: inplace, stateOut: inplace });
      assert.deepEqual(inplace, again);
      // a weight detached after creation: a TypeError naming it, never a read of freed memory
      structuredClone(weights.head.buffer, { transfer: [weights.head.buffer] });
      err(() => run({}), TypeError, /weights\.head was detached or resized after largeDecoderCreate read it/);
    });

    it("generates through lib/generate's API (greedy equals generate(); sampling is seeded)", async () => {
      const { generate } = await import("../lib/generate");
      const model = new xLSTMLarge(cfg, { generator: new Generator(4) });
      const dec = xLSTMLargeDecoder.fromModel(model);
      const prompt = [3, 14, 15, 92, 65];
      const greedy: number[] = [];
      for await (const t of generate(dec as never, prompt, { maxTokens: 6, temperature: 0 })) greedy.push(t.id);
      const mine = dec.generate(new Tensor(Int32Array.from(prompt), [1, 5]), { maxLength: 6 });
      assert.deepEqual(greedy, [...(mine.tokens.data as BigInt64Array)].map(Number));
      const sample = async (seed: number) => {
        const out: number[] = [];
        for await (const t of generate(dec as never, prompt, { maxTokens: 6, temperature: 1, topK: 20, seed })) out.push(t.id);
        return out;
      };
      const s1 = await sample(5);
      assert.deepEqual(await sample(5), s1);
      assert.ok(s1.every((id) => Number.isInteger(id) && id >= 0 && id < cfg.vocab_size));
    });
  });

  it("registers the L1 decode benchmark (a default CPU workload: it takes well under 30 s)", async () => {
    const { workloads } = await import("../lib/bench");
    await import("../lib/bench/all");
    const l1 = workloads().find((w) => w.id === "L1");
    assert.ok(l1 && l1.device === "cpu" && /bf16/.test(l1.description));
    const { L1_CONFIG } = await import("../lib/bench/large-decode");
    const n = largeParameterCount(L1_CONFIG).total;
    assert.ok(n > 100e6 && n < 150e6, `${n} parameters`);
  });

  describe("sharded checkpoints", () => {
    const cfg: xLSTMLargeConfig = { ...TINY, use_bias: true };

    it("a random model saved in shards loads back identically (float32 model, bf16 decoder, every layout)", () => {
      const model = new xLSTMLarge(cfg, { generator: new Generator(21) });
      const dir = tmpDir();
      const { shards, indexFile } = writeShardedCheckpoint(dir, model.stateDict(), { maxShardBytes: 20_000, metadata: { format: "pt" } });
      assert.ok(shards.length >= 3, `${shards.length} shards`);
      fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
      const index = JSON.parse(fs.readFileSync(indexFile, "utf8"));
      assert.equal(index.metadata.format, "pt");
      assert.equal(Object.keys(index.weight_map).length, model.stateDict().size);
      const back = loadLargeCheckpoint(dir);
      assert.equal(back.config.mode, "inference");
      for (const [k, v] of model.stateDict()) assert.deepEqual(back.stateDict().get(k)!.f32(), v.f32(), k);
      // into a fused model, and from bf16 shards into the bf16 decoder
      const fused = loadLargeCheckpoint(dir, { config: { ...cfg, weight_mode: "fused" } });
      const idx = ids(1, 9, cfg.vocab_size, 22);
      assert.ok(maxDiff(noGrad(() => fused.forward(idx).logits.f32()), noGrad(() => back.forward(idx).logits.f32())) <= 1e-5);
      const bdir = tmpDir();
      const bf = new Map([...convertLargeWeights(model.stateDict(), "fused", cfg)].map(([k, t]) => [k, t.to("bfloat16")]));
      writeShardedCheckpoint(bdir, bf, { maxShardBytes: 10_000 });
      const fromCkpt = xLSTMLargeDecoder.fromCheckpoint(bdir, { config: cfg });
      // the same bf16 values in memory (norms and biases included) give the same logits
      const fromMemory = xLSTMLargeDecoder.fromStateDict(cfg, bf);
      assert.deepEqual(fromCkpt.forward(idx).logits.f32(), fromMemory.forward(idx).logits.f32());
      // index-less layouts: model.safetensors, model_0.safetensors + model_1.safetensors
      const one = tmpDir();
      writeSafetensors(path.join(one, "model.safetensors"), model.stateDict());
      assert.deepEqual(loadLargeCheckpoint(one, { config: cfg }).stateDict().get("lm_head.weight")!.f32(), model.lm_head.f32());
      const two = tmpDir();
      const entries = [...model.stateDict()];
      writeSafetensors(path.join(two, "model_0.safetensors"), new Map(entries.slice(0, 10)));
      writeSafetensors(path.join(two, "model_1.safetensors"), new Map(entries.slice(10)));
      const ck = openShardedCheckpoint(two);
      assert.deepEqual(ck.shards, ["model_0.safetensors", "model_1.safetensors"]);
      ck.close();
      assert.deepEqual(loadLargeCheckpoint(two, { config: cfg }).stateDict().get("lm_head.weight")!.f32(), model.lm_head.f32());
    });

    it("a missing shard, a missing key or a wrong dtype gives an error naming it", () => {
      const model = new xLSTMLarge(cfg, { generator: new Generator(23) });
      const dir = tmpDir();
      const { shards, indexFile } = writeShardedCheckpoint(dir, model.stateDict(), { maxShardBytes: 20_000 });
      fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
      // missing key: drop one entry from the index
      const index = JSON.parse(fs.readFileSync(indexFile, "utf8"));
      const key = "backbone.blocks.1.ffn.proj_down.weight";
      delete index.weight_map[key];
      fs.writeFileSync(indexFile, JSON.stringify(index));
      assert.throws(() => loadLargeCheckpoint(dir), (e: Error) => e instanceof RangeError && e.message.includes(key));
      const ck = openShardedCheckpoint(dir);
      assert.throws(() => ck.get(key), (e: Error) => e instanceof RangeError && e.message.includes(key));
      ck.close();
      // wrong dtype: a parameter stored as int64
      index.weight_map[key] = "odd.safetensors";
      fs.writeFileSync(indexFile, JSON.stringify(index));
      writeSafetensors(path.join(dir, "odd.safetensors"), { [key]: new Tensor(new BigInt64Array(32 * 64), [32, 64]) });
      assert.throws(() => loadLargeCheckpoint(dir), (e: Error) => e instanceof TypeError && e.message.includes(key) && /I64/.test(e.message) && /odd\.safetensors/.test(e.message));
      assert.throws(() => xLSTMLargeDecoder.fromCheckpoint(dir), (e: Error) => e instanceof TypeError && e.message.includes(key));
      // missing shard
      fs.unlinkSync(path.join(dir, shards[1]));
      assert.throws(() => openShardedCheckpoint(dir), (e: Error) => e.message.includes(shards[1]) && /missing/.test(e.message));
      assert.throws(() => loadLargeCheckpoint(dir), (e: Error) => e.message.includes(shards[1]));
      // an index mapping a key to a shard that does not hold it
      const d2 = tmpDir();
      const r = writeShardedCheckpoint(d2, { a: Tensor.zeros([2]), b: Tensor.zeros([3]) }, { maxShardBytes: 8 });
      const i2 = JSON.parse(fs.readFileSync(r.indexFile, "utf8"));
      i2.weight_map.c = r.shards[0];
      fs.writeFileSync(r.indexFile, JSON.stringify(i2));
      const c2 = openShardedCheckpoint(d2);
      assert.throws(() => c2.get("c"), (e: Error) => e instanceof RangeError && /"c"/.test(e.message) && e.message.includes(r.shards[0]));
      assert.deepEqual(c2.get("b", "bfloat16").dtype, "bfloat16");
      c2.close();
      // an index pointing outside the directory is refused
      i2.weight_map.c = "../elsewhere.safetensors";
      fs.writeFileSync(r.indexFile, JSON.stringify(i2));
      assert.throws(() => openShardedCheckpoint(d2), /outside/);
    });
  });
});

function roundTrip(a: Float32Array): Float32Array {
  return bf16ToFloat(new Float32Array(a.length), floatToBf16(new Uint16Array(a.length), a));
}
