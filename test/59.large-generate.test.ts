// Layer 5/7: xLSTM Large checkpoints in the Hugging Face layout (config.json with extra fields, sharded
// model-0000x-of-0000y.safetensors + model.safetensors.index.json, tokenizer.json) through loadModel, the generate
// API and `xlstm generate`. The expected tokens are computed independently in the test: the float32 xLSTMLarge's
// own forward over the growing sequence, argmax (greedy) or sampleLogits with the same seeded stream (sampled), on
// the same bf16-representable weights the checkpoint stores.
import { strict as assert } from "assert";
import { backends, cuda } from "../lib";
const cudaStats = () => cuda.memoryStats();
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { noGrad, Tensor } from "../lib";
import { loadModel } from "../lib/checkpoint";
import { HFTokenizer } from "../lib/data/hf-tokenizer";
import { generate, loadGenerator, openGenerator, sampleLogits } from "../lib/generate";
import { writeShardedCheckpoint } from "../lib/io/sharded";
import { convertLargeWeights, xLSTMLarge, xLSTMLargeConfig, xLSTMLargeDecoder } from "../lib/nn/large";
import { Generator } from "../lib/rng";
import { bf16ToFloat, floatToBf16 } from "../lib/tensor";
import { byteLevelBPE } from "./support/hf-tokenizers";

const root = path.resolve(__dirname, "..");
const cli = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [path.join(root, "bin", "xlstm.js"), ...args], { encoding: "utf8", cwd, timeout: 60000 });

const V = 262; // the byte-level BPE of test/support/hf-tokenizers
const CFG: xLSTMLargeConfig = { embedding_dim: 32, num_heads: 2, num_blocks: 2, vocab_size: V, chunk_size: 16, mode: "inference" };
const PROMPT = "hello world, the time machine is here"; // 30 tokens: the prefill runs a chunkwise chunk of 16 and 14 steps
const N = 8;

/** The model's own logits for the last position of `seq` (a fresh forward over the whole sequence). */
function lastLogits(model: xLSTMLarge, seq: number[]): Float32Array {
  const L = noGrad(() => model.forward(new Tensor(Int32Array.from(seq), [1, seq.length])).logits).f32();
  return L.slice(L.length - V);
}

describe("59 xLSTM Large: Hugging Face layout checkpoints generate through the generate API and the CLI", function () {
  this.timeout(60000);
  let dir = "";
  let model: xLSTMLarge;
  let tok: HFTokenizer;
  let prompt: number[];
  let greedy: number[];
  let minMargin = Infinity;
  const ck = () => path.join(dir, "xlstm-tiny");

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-large-gen-"));
    tok = new HFTokenizer(byteLevelBPE());
    prompt = Array.from(tok.encode(PROMPT));
    assert.equal(prompt.length, 30);
    // a random model whose weights are bf16 values, so the float32 model and the bf16 checkpoint hold the same numbers
    model = new xLSTMLarge(CFG, { generator: new Generator(2) });
    const sd = new Map<string, Tensor>();
    for (const [k, p] of model.stateDict()) {
      const b = floatToBf16(new Uint16Array(p.numel), p.f32());
      p.f32().set(bf16ToFloat(new Float32Array(p.numel), b));
      sd.set(k, new Tensor(b, p.shape));
    }
    const { shards } = writeShardedCheckpoint(ck(), sd, { maxShardBytes: 40_000 });
    assert.ok(shards.length >= 3, `${shards.length} shards`);
    assert.match(shards[0], /^model-00001-of-0000\d\.safetensors$/);
    const { mode: _mode, ...fields } = CFG;
    fs.writeFileSync(path.join(ck(), "config.json"), JSON.stringify({ ...fields, architectures: ["xLSTMForCausalLM"], model_type: "xlstm", torch_dtype: "bfloat16", transformers_version: "4.48.0" }, null, 2));
    fs.writeFileSync(path.join(ck(), "tokenizer.json"), JSON.stringify(byteLevelBPE()));
    // expected greedy tokens: argmax of the model's own forward on the growing sequence (lowest id on ties)
    const seq = [...prompt];
    for (let i = 0; i < N; ++i) {
      const row = lastLogits(model, seq);
      let best = 0;
      for (let j = 1; j < V; ++j) if (row[j] > row[best]) best = j;
      let second = -Infinity;
      for (let j = 0; j < V; ++j) if (j !== best) second = Math.max(second, row[j]);
      minMargin = Math.min(minMargin, row[best] - second);
      seq.push(best);
    }
    greedy = seq.slice(prompt.length);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("loadModel reads the layout: decoder, config (extra fields ignored), tokenizer.json, index as the model file", () => {
    const m = loadModel(ck());
    assert.equal(m.modelType, "xlstm-large");
    assert.ok(m.model instanceof xLSTMLargeDecoder);
    assert.equal((m.model as unknown as xLSTMLargeDecoder).dtype, "bfloat16", "bf16 weights by default");
    assert.equal(m.config.embedding_dim, 32);
    assert.equal(m.config.architectures, undefined);
    assert.equal(m.tokenizer?.type, "hf");
    assert.equal(m.checkpoint.modelFile, path.join(ck(), "model.safetensors.index.json"));
    assert.equal((loadModel(ck(), { dtype: "float32" }).model as unknown as xLSTMLargeDecoder).dtype, "float32");
  });

  it("greedy tokens equal the model's own forward, argmax each step (API, bf16 and float32 weights, both weight modes)", async () => {
    // precondition of comparing bf16 against float32: the decoder's logits stay well inside the argmax margins
    const dec = loadModel(ck()).model as unknown as xLSTMLargeDecoder;
    const seq = [...prompt, ...greedy];
    let worst = 0;
    for (let i = 0; i < N; ++i) {
      const want = lastLogits(model, seq.slice(0, prompt.length + i));
      const got = dec.forward(new Tensor(Int32Array.from(seq.slice(0, prompt.length + i)), [1, prompt.length + i]), { logits: "last" }).logits.f32();
      for (let j = 0; j < V; ++j) worst = Math.max(worst, Math.abs(got[j] - want[j]));
    }
    assert.ok(2 * worst < minMargin, `bf16 decoder differs by ${worst}, the smallest argmax margin is ${minMargin}`);

    for (const dtype of ["bfloat16", "float32"] as const) {
      const g = loadGenerator(ck(), { dtype });
      const ids: number[] = [];
      let text = "";
      for await (const t of g.generate(PROMPT, { temperature: 0, maxTokens: N })) {
        ids.push(t.id);
        text += t.text;
      }
      assert.deepEqual(ids, greedy, dtype);
      const d = tok.streamDecoder();
      assert.equal(text, greedy.map((id) => d.push(id)).join(""), "the streamed text is the tokenizer's stream decode");
    }
    // the same model stored in "fused" weights (one shard file, no index) generates the same tokens
    const fusedDir = path.join(dir, "fused");
    const f32 = new Map([...model.stateDict()].map(([k, v]) => [k, v.detach()]));
    writeShardedCheckpoint(fusedDir, convertLargeWeights(f32, "fused", CFG), { maxShardBytes: 1 << 30 });
    fs.writeFileSync(path.join(fusedDir, "config.json"), JSON.stringify({ ...CFG, weight_mode: "fused" }));
    const fused = loadModel(fusedDir, { tokenizer: tok, dtype: "float32" });
    const ids: number[] = [];
    for await (const t of generate(fused.model, prompt, { temperature: 0, maxTokens: N })) ids.push(t.id);
    assert.deepEqual(ids, greedy);
  });

  (backends().cuda.available ? it : it.skip)(`loadModel with device "cuda": the module on the GPU with bf16 matrix weights (float32 with dtype float32) generates the same greedy tokens${backends().cuda.available ? "" : ` [skipped: ${backends().cuda.reason}]`}`, async () => {
    const weightBytes = (m: xLSTMLarge) => m.parameters().filter((p) => p.ndim === 2).reduce((a, p) => a + p.numel, 0);
    const before = cudaStats().allocatedBytes;
    const g = loadGenerator(ck(), { device: "cuda" });
    const m = g.model as unknown as xLSTMLarge;
    assert.ok(m instanceof xLSTMLarge);
    assert.ok(m.parameters().every((p) => p.device === "cuda"));
    assert.equal(m.weightDtype, "bfloat16", "bf16 checkpoints keep bf16 weights on the GPU by default");
    assert.ok(m.parameters().every((p) => p.dtype === (p.ndim === 2 ? "bfloat16" : "float32")));
    const bf16Bytes = cudaStats().allocatedBytes - before;
    const ids: number[] = [];
    for await (const t of g.generate(PROMPT, { temperature: 0, maxTokens: N })) ids.push(t.id);
    assert.deepEqual(ids, greedy);

    // dtype float32: the same values in float32 storage, the same logits up to float32 summation order
    const before32 = cudaStats().allocatedBytes;
    const f = loadModel(ck(), { device: "cuda", dtype: "float32" }).model as unknown as xLSTMLarge;
    const f32Bytes = cudaStats().allocatedBytes - before32;
    assert.equal(f.weightDtype, "float32");
    // device memory: the matrix weights take 2 bytes per element instead of 4 (allocator rounding: 512 B a tensor)
    const slack = 512 * m.parameters().length;
    assert.ok(Math.abs(f32Bytes - bf16Bytes - 2 * weightBytes(m)) <= slack, `float32 ${f32Bytes} B vs bf16 ${bf16Bytes} B on the device, matrix weights ${weightBytes(m)} elements`);
    const idx = new Tensor(Int32Array.from([...prompt, ...greedy]), [1, prompt.length + N]);
    const a = noGrad(() => m.forward(idx.cuda()).logits.cpu().f32()), b = noGrad(() => f.forward(idx.cuda()).logits.cpu().f32());
    let scale = 0;
    for (const v of b) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < a.length; ++j) assert.ok(Math.abs(a[j] - b[j]) <= 1e-5 * scale, `logit ${j}: bf16-stored ${a[j]} vs float32 ${b[j]}`);
  });

  it("loadModel refuses an unknown device, and cuda where none is usable", function () {
    assert.throws(() => loadModel(ck(), { device: "tpu" as never }), /loadModel: device must be "cpu" or "cuda"/);
    if (!backends().cuda.available) assert.throws(() => loadModel(ck(), { device: "cuda" }), /loadModel: device "cuda": CUDA is not available/);
  });

  it("sampled generation: the same seeded stream as sampleLogits on the model's own forward; batches and seeds", async () => {
    const opts = { temperature: 0.8, topK: 40, topP: 0.95 };
    const seq = [...prompt];
    const gen = new Generator(11);
    for (let i = 0; i < N; ++i) seq.push(sampleLogits(lastLogits(model, seq), opts, gen));
    const want = seq.slice(prompt.length);
    const g = loadGenerator(ck(), { dtype: "float32" });
    const got: number[] = [];
    for await (const t of g.generate(prompt, { ...opts, seed: 11, maxTokens: N })) got.push(t.id);
    assert.deepEqual(got, want);
    // generateBatch: row 0 (its prompt partly fed through steps) equals generate() with the seed
    const batch = await g.generateBatch([prompt, prompt.slice(0, 20)], { ...opts, seed: 11, maxTokens: N });
    assert.deepEqual(batch.ids[0], want);
    assert.equal(batch.ids[1].length, N);
    // bf16 weights: seeded, so the same seed gives the same tokens
    const b = loadGenerator(ck());
    const run = async (seed: number) => {
      const out: number[] = [];
      for await (const t of b.generate(prompt, { ...opts, seed, maxTokens: N })) out.push(t.id);
      return out;
    };
    assert.deepEqual(await run(11), await run(11));
  });

  it("openGenerator: loads and generates in a worker thread (the event loop free): the same tokens, batches, abort, early exit, errors, close", async () => {
    // how often this thread's event loop turns while tokens arrive: in a worker the loop idles (many turns per token);
    // generating here, each token's work would take the loop (about one turn per token)
    const turnsDuring = async <T>(f: () => Promise<T>): Promise<{ r: T; turns: number }> => {
      let turns = 0, on = true;
      const spin = () => {
        turns++;
        if (on) setImmediate(spin);
      };
      setImmediate(spin);
      try {
        return { r: await f(), turns };
      } finally {
        on = false;
      }
    };
    const collect = async (it: AsyncIterable<{ id: number; text: string }>, stopAfter = Infinity) => {
      const ids: number[] = [];
      let text = "";
      for await (const t of it) {
        ids.push(t.id);
        text += t.text;
        if (ids.length >= stopAfter) break;
      }
      return { ids, text };
    };
    const local = loadGenerator(ck());
    const sampledWant = (await collect(local.generate(PROMPT, { maxTokens: N, temperature: 0.9, seed: 7 }))).ids;
    const batchWant = await local.generateBatch([PROMPT, "the time"], { maxTokens: 4, temperature: 0.7, seed: 3 });
    const g = await openGenerator(ck());
    try {
      assert.equal(g.modelType, "xlstm-large");
      assert.equal(g.vocabSize, V);
      assert.equal(g.hasTokenizer, true);
      const { r: greedyRun, turns } = await turnsDuring(() => collect(g.generate(PROMPT, { temperature: 0, maxTokens: N })));
      assert.deepEqual(greedyRun.ids, greedy);
      const d = tok.streamDecoder();
      assert.equal(greedyRun.text, greedy.map((id) => d.push(id)).join(""));
      assert.ok(turns >= 10 * N, `the event loop turned ${turns} times while ${N} tokens were generated`);
      assert.deepEqual((await collect(g.generate(PROMPT, { maxTokens: N, temperature: 0.9, seed: 7 }))).ids, sampledWant);
      assert.deepEqual((await collect(g.generate(prompt, { maxTokens: N, temperature: 0 }))).ids, greedy, "ids as the prompt");
      assert.deepEqual(await g.generateBatch([PROMPT, "the time"], { maxTokens: 4, temperature: 0.7, seed: 3 }), batchWant);
      // leaving the loop early and aborting stop the request; the worker serves the next one
      assert.deepEqual((await collect(g.generate(PROMPT, { temperature: 0, maxTokens: 500 }), 2)).ids, greedy.slice(0, 2));
      const ac = new AbortController();
      const aborted: number[] = [];
      for await (const t of g.generate(PROMPT, { temperature: 0, maxTokens: 500, signal: ac.signal })) {
        aborted.push(t.id);
        if (aborted.length === 3) ac.abort();
      }
      assert.ok(aborted.length >= 3 && aborted.length < 500, `${aborted.length} tokens after the abort at 3`);
      assert.deepEqual(aborted.slice(0, N), greedy.slice(0, Math.min(N, aborted.length)));
      assert.deepEqual((await collect(g.generate(PROMPT, { temperature: 0, maxTokens: N }))).ids, greedy, "served after an abort");
      // errors arrive as the worker's classes with its messages; the worker keeps serving
      await assert.rejects(collect(g.generate(PROMPT, { temperature: -1 })), (e: Error) => e instanceof RangeError && /temperature must be a number >= 0/.test(e.message));
      await assert.rejects(collect(g.generate(PROMPT, { tokenizer: tok } as never)), (e: Error) => e instanceof TypeError && /options\.tokenizer is not accepted here/.test(e.message));
      await assert.rejects(g.generateBatch([], {}), (e: Error) => e instanceof RangeError && /prompts must be a non-empty array/.test(e.message));
      assert.deepEqual((await collect(g.generate(PROMPT, { temperature: 0, maxTokens: 2 }))).ids, greedy.slice(0, 2));
    } finally {
      await g.close();
    }
    await assert.rejects(collect(g.generate(PROMPT)), /the generator thread is closed/);
    await g.close(); // idempotent
    await assert.rejects(openGenerator(path.join(dir, "nothing-here")), (e: Error) => e.message.includes("nothing-here"));
    await assert.rejects(openGenerator(ck(), { tokenizer: tok as never }), (e: Error) => e instanceof TypeError && /a Tokenizer object cannot cross/.test(e.message));
  });

  it("xlstm generate on the directory: greedy text equals the expected tokens' text; sampled is seeded", () => {
    const d = tok.streamDecoder();
    const expected = greedy.map((id) => d.push(id)).join("");
    const r = cli(dir, "generate", "--checkpoint", "xlstm-tiny", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", String(N), "--no-echo");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected + "\n");
    const r32 = cli(dir, "generate", "--checkpoint", "xlstm-tiny", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", String(N), "--dtype", "float32");
    assert.equal(r32.status, 0, r32.stderr);
    assert.equal(r32.stdout, PROMPT + expected + "\n");
    const s = (seed: string) => cli(dir, "generate", "--checkpoint", "xlstm-tiny", "--prompt", PROMPT, "--max-tokens", "12", "--seed", seed, "--top-k", "40");
    const s1 = s("3");
    assert.equal(s1.status, 0, s1.stderr);
    assert.equal(s("3").stdout, s1.stdout);
  });

  it("errors are one line naming the file: missing shard, missing config, no tokenizer, convert", () => {
    const copy = (name: string) => {
      const to = path.join(dir, name);
      fs.cpSync(ck(), to, { recursive: true });
      return to;
    };
    const oneLine = (r: ReturnType<typeof cli>, code: number, re: RegExp) => {
      assert.equal(r.status, code, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, re);
    };
    const noShard = copy("no-shard");
    fs.rmSync(path.join(noShard, fs.readdirSync(noShard).find((n) => n.startsWith("model-00002-of-"))!));
    oneLine(cli(dir, "generate", "--checkpoint", "no-shard", "--prompt", "hi"), 1, /shard model-00002-of-0000\d\.safetensors is missing/);
    const noConfig = copy("no-config");
    fs.rmSync(path.join(noConfig, "config.json"));
    oneLine(cli(dir, "generate", "--checkpoint", "no-config", "--prompt", "hi"), 1, /no-config\/model\.safetensors\.index\.json has no model config/);
    const noTok = copy("no-tok");
    fs.rmSync(path.join(noTok, "tokenizer.json"));
    oneLine(cli(dir, "generate", "--checkpoint", "no-tok", "--prompt", "hi"), 1, /has no tokenizer; pass --tokenizer/);
    assert.equal(cli(dir, "generate", "--checkpoint", "no-tok", "--prompt", "hi", "--tokenizer", path.join(ck(), "tokenizer.json"), "--max-tokens", "3").status, 0);
    const badCfg = copy("bad-config");
    fs.writeFileSync(path.join(badCfg, "config.json"), JSON.stringify({ ...CFG, num_heads: 3 }));
    oneLine(cli(dir, "generate", "--checkpoint", "bad-config", "--prompt", "hi"), 1, /bad-config.*num_heads/);
    oneLine(cli(dir, "convert", "xlstm-tiny", "out"), 1, /is an xLSTM Large checkpoint, which convert does not handle/);
  });

  it("a bf16 checkpoint's weights stay mapped file pages in the decoder (RSS: no heap copy of single-tensor weights)", function () {
    if (process.platform !== "linux") this.skip();
    this.timeout(120000);
    // ~22 MB of bf16 weights, most of them in single-tensor packed weights (embedding, head, per-block projections)
    const big: xLSTMLargeConfig = { embedding_dim: 512, num_heads: 4, num_blocks: 2, vocab_size: 8192, chunk_size: 16, mode: "inference" };
    const m = new xLSTMLarge(big, { generator: new Generator(5) });
    const sd = new Map<string, Tensor>();
    for (const [k, p] of m.stateDict()) sd.set(k, new Tensor(floatToBf16(new Uint16Array(p.numel), p.f32()), p.shape));
    const bigDir = path.join(dir, "xlstm-big");
    writeShardedCheckpoint(bigDir, sd, { maxShardBytes: 8_000_000 });
    fs.writeFileSync(path.join(bigDir, "config.json"), JSON.stringify(big));
    const r = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", path.join(__dirname, "support", "large-rss-child.ts"), bigDir], { encoding: "utf8", cwd: root, timeout: 100000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { finite: boolean; weightBytes: number; anon: number; file: number };
    assert.ok(out.finite);
    const MB = (b: number) => (b / 2 ** 20).toFixed(1);
    // Single-tensor weights (embedding, head, out_proj, proj_down: ~60 % here) are shared file pages; the packed
    // concatenations (q/k/v/o/gates, gate+up) are copies. A decoder that copied every weight would grow anonymous
    // memory by at least the checkpoint's size.
    const total = [...sd.values()].reduce((a, t) => a + t.numel * 2, 0);
    assert.ok(out.file >= 0.4 * total, `file pages grew by ${MB(out.file)} MB for a ${MB(total)} MB checkpoint`);
    assert.ok(out.anon < 0.6 * total, `anonymous memory grew by ${MB(out.anon)} MB for a ${MB(total)} MB checkpoint`);
  });
});
