// Layer 6: checkpoints, the training loop and generation. Checkpoint round trip (weights in both sLSTM layouts,
// optimizer, RNG, data position, carried state); corrupt checkpoints give one-line errors; resuming repeats the
// uninterrupted run's losses exactly (in-process and in the worker thread, random and sequential sampling); the
// event loop stays free while the worker trains; generation against a greedy loop over full forward passes.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backends, CorruptFileError, cuda, Generator, getFloat32MatmulPrecision, nn, optim, Tensor } from "../lib";
import { native } from "../lib/native";
import { CharTokenizer } from "../lib/data";
import { loadModel, readModelFile, readTrainingState, resolveCheckpoint, saveCheckpoint, TRAINING_FILE } from "../lib/checkpoint";
import { generate, generateBatch, sampleLogits } from "../lib/generate";
import { LSTMLanguageModel, train, Trainer, TrainOptions } from "../lib/train";
import { noGrad } from "../lib/autograd";

const TEXT = fs.readFileSync(path.join(__dirname, "..", "data", "timemachine.txt"), "utf8").slice(0, 20000);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-train-"));

const MIXED: Record<string, unknown> = {
  embedding_dim: 16, num_blocks: 2, slstm_at: [1], dropout: 0.1,
  mlstm_block: { mlstm: { conv1d_kernel_size: 4, qkv_proj_blocksize: 4, num_heads: 2 } },
  slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
};
const tiny = (over: TrainOptions = {}): TrainOptions => ({ text: TEXT, steps: 8, batchSize: 4, seqLen: 16, model: MIXED, evalEvery: 4, evalBatches: 1, checkpointEvery: 0, warmupSteps: 2, ...over });

describe("64 checkpoints, training and generation", function () {
  this.timeout(60000);
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const newDir = () => {
    const d = tmp();
    dirs.push(d);
    return d;
  };

  it("device: \"cuda\" is refused with the reason when no GPU is usable", async function () {
    if (backends().cuda.available) this.skip();
    await assert.rejects(train({ ...tiny(), worker: false, device: "cuda" }), /device "cuda": CUDA is not available/);
    await assert.rejects(train({ ...tiny(), worker: false, device: "tpu" as never }), /device/);
  });

  it("autocast \"bfloat16\" on the CPU: the steps' GEMMs take bf16 operands on AMX or AVX512_BF16 (else nothing changes), within bf16 of float32; the setting is back afterwards", async () => {
    // 256 rows and widths >= 32: the model's products qualify for the bf16 path (128+ rows)
    const base = tiny({ steps: 12, evalEvery: 0, batchSize: 8, seqLen: 32, model: { ...MIXED, embedding_dim: 32 } });
    const f32 = await train({ ...base, worker: false });
    const b16 = await train({ ...base, worker: false, autocast: "bfloat16" });
    assert.equal(getFloat32MatmulPrecision(), "highest");
    assert.ok(Math.abs(b16.losses[0] - f32.losses[0]) < 0.02 * f32.losses[0], `first loss ${b16.losses[0]} vs ${f32.losses[0]}`);
    assert.ok(b16.losses[11] < b16.losses[0], "it learns");
    if (native.bf16AmxAvailable() || native.bf16DotAvailable()) assert.ok(b16.losses.some((l, i) => l !== f32.losses[i]), "AMX or AVX512_BF16 present, yet the losses are float32's");
    else assert.deepEqual(b16.losses, f32.losses);
    await assert.rejects(train({ ...tiny(), worker: false, autocast: "float16" as never }), /train: autocast must be "none" or "bfloat16"/);
  });

  (backends().cuda.available ? it : it.skip)(`a small xLSTM and an LSTM train on the GPU with the CPU run's losses; runs resume on the GPU (a CPU run's too); bf16 autocast learns${backends().cuda.available ? "" : ` [skipped: ${backends().cuda.reason}]`}`, async () => {
    for (const over of [{}, { modelType: "lstm" as const, model: { hidden_size: 32, num_layers: 1 }, optimizer: "sgd" as const, lr: 1, sampling: "sequential" as const }]) {
      const base = tiny({ steps: 60, evalEvery: 0, ...over });
      const cpu = await train({ ...base, worker: false });
      const dir = newDir();
      const gpu = await train({ ...base, worker: false, device: "cuda", outDir: dir });
      // same data, initialisation and dropout masks; float32 sums in other orders drift slowly over the steps
      for (let i = 0; i < 10; ++i) assert.ok(Math.abs(gpu.losses[i] - cpu.losses[i]) < 1e-3 * Math.max(1, cpu.losses[i]), `step ${i + 1}: ${gpu.losses[i]} vs ${cpu.losses[i]}`);
      const tail = (l: number[]) => l.slice(-10).reduce((a, b) => a + b, 0) / 10;
      assert.ok(Math.abs(tail(gpu.losses) - tail(cpu.losses)) < 0.05 * tail(cpu.losses));
      const resumed = await train({ text: TEXT, outDir: dir, resume: true, steps: 65, worker: false });
      assert.equal(resumed.step, 65);
      assert.ok(Number.isFinite(resumed.loss));
    }
    // a CPU run resumed on the GPU (model, optimizer state and data position move with it) follows the CPU run
    const cpuDir = newDir();
    const whole = await train({ ...tiny({ steps: 16, evalEvery: 0 }), worker: false });
    const ac = new AbortController();
    await train({ ...tiny({ steps: 16, evalEvery: 0 }), worker: false, outDir: cpuDir, signal: ac.signal, onProgress: (e) => e.step === 10 && ac.abort() });
    const moved = await train({ text: TEXT, outDir: cpuDir, resume: true, device: "cuda", worker: false });
    for (let i = 0; i < 6; ++i) assert.ok(Math.abs(moved.losses[i] - whole.losses[10 + i]) < 1e-3 * whole.losses[10 + i], `step ${11 + i}: ${moved.losses[i]} vs ${whole.losses[10 + i]}`);
    // bf16 autocast: the same run stays close to float32 (bf16 products, float32 everything else)
    const base = tiny({ steps: 30, evalEvery: 0 });
    const f32 = await train({ ...base, worker: false, device: "cuda" });
    const b16 = await train({ ...base, worker: false, device: "cuda", autocast: "bfloat16" });
    assert.ok(Math.abs(b16.losses[0] - f32.losses[0]) < 0.02 * f32.losses[0], `first loss ${b16.losses[0]} vs ${f32.losses[0]}`);
    assert.ok(b16.losses[29] < b16.losses[0], "it learns");
  });

  (backends().cuda.available ? it : it.skip)(`a small xLSTM trains 300 steps on the GPU: its losses follow the CPU run's and device memory stays flat${backends().cuda.available ? "" : ` [skipped: ${backends().cuda.reason}]`}`, async function () {
    this.timeout(180000);  // about 15 s on the host-emulated device
    const base = tiny({ steps: 300, evalEvery: 0 });
    const cpu = await train({ ...base, worker: false });
    const inUse: number[] = [];
    const gpu = await train({ ...base, worker: false, device: "cuda", onProgress: (e) => void (e.step >= 10 && inUse.push(cuda.memoryStats().allocatedBytes)) });
    assert.equal(gpu.losses.length, 300);
    for (let i = 0; i < 10; ++i) assert.ok(Math.abs(gpu.losses[i] - cpu.losses[i]) < 1e-3 * cpu.losses[i], `step ${i + 1}: ${gpu.losses[i]} vs ${cpu.losses[i]}`);
    const mean = (l: number[]) => l.reduce((a, b) => a + b, 0) / l.length;
    const [gpuTail, cpuTail] = [mean(gpu.losses.slice(-50)), mean(cpu.losses.slice(-50))];
    assert.ok(Math.abs(gpuTail - cpuTail) < 0.05 * cpuTail, `mean of the last 50 losses: ${gpuTail} on the GPU, ${cpuTail} on the CPU`);
    assert.ok(gpuTail < 0.8 * mean(gpu.losses.slice(0, 10)), "it learns");
    // device memory in tensors between steps: no growth (one leaked activation per step would add > 1 MB here)
    assert.ok(inUse.length >= 100, `progress events: ${inUse.length}`);
    const spread = Math.max(...inUse) - Math.min(...inUse);
    assert.ok(spread <= 256 * 1024, `device bytes in use between steps ranged over ${spread} bytes (${Math.min(...inUse)} .. ${Math.max(...inUse)})`);
  });

  it("checkpoint round trip: weights (either sLSTM layout), optimizer, RNG, data position, carried state", () => {
    const dir = newDir();
    const gen = new Generator(4);
    const cfg = { ...MIXED, vocab_size: 9 } as nn.xLSTMLMModelConfig;
    const model = new nn.xLSTMLMModel(cfg, { generator: gen });
    const opt = new optim.AdamW(optim.xlstmParamGroups(model, 0.1), { lr: 0.01 });
    for (const p of opt.params) p.grad = Tensor.randn(p.shape as number[], { generator: gen });
    opt.step();
    gen.normal(); // leave a Box-Muller spare in the generator
    const carry = { block_0: { c: Tensor.randn([2, 3], { generator: gen }), n: null }, block_1: { slstm_state: Tensor.randn([4, 2, 16], { generator: gen }) } };
    const tok = CharTokenizer.fromText("abcdefghi");
    const names = opt.params.map((p) => [...model.namedParameters()].find(([, t]) => t === p)![0]);
    const training = {
      step: 17, position: { epoch: 2, index: 5 }, scheduler: { last_step: 17 }, optimizer: { type: "adamw" as const, state: opt.stateDict(), param_names: names },
      rng: { model: gen.getState() }, options: { lr: 0.01, model: cfg }, data: { tokens: 1234, checksum: "abcd0123" }, carry, elapsed_sec: 1.5,
    };
    for (const layout of ["cuda", "vanilla"] as const) {
      const ck = path.join(dir, layout);
      saveCheckpoint(ck, { model: model as never, modelType: "xlstm", tokenizer: tok, training, slstmLayout: layout });
      const file = readModelFile(path.join(ck, "model.safetensors"));
      assert.deepEqual([...file.stateDict.keys()].sort(), [...model.stateDict().keys()].sort(), "the reference's keys");
      const kernel = file.stateDict.get("xlstm_block_stack.blocks.1.xlstm.slstm_cell._recurrent_kernel_")!;
      assert.deepEqual(kernel.shape, layout === "cuda" ? [2, 8, 32] : [2, 32, 8], `${layout} kernel layout`);
      assert.deepEqual(file.config, cfg);
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(ck, "config.json"), "utf8")), cfg);
      const loaded = loadModel(ck);
      for (const [k, t] of model.stateDict()) assert.deepEqual(loaded.model.stateDict().get(k)!.f32(), t.f32(), `weight ${k} (${layout})`);
      assert.deepEqual(loaded.tokenizer!.toJSON(), tok.toJSON());
      const st = readTrainingState(ck);
      assert.deepEqual([st.step, st.position, st.scheduler, st.data, st.elapsed_sec, st.options], [17, { epoch: 2, index: 5 }, { last_step: 17 }, training.data, 1.5, training.options]);
      const opt2 = new optim.AdamW(optim.xlstmParamGroups(loaded.model, 0.1), { lr: 0.01 });
      opt2.loadStateDict(st.optimizer.state);
      assert.deepEqual(st.optimizer.param_names, names);
      opt.params.forEach((p, i) => {
        const a = opt.state.get(p)!, b = opt2.state.get(opt2.params[i])!;
        assert.equal(b.step, a.step);
        assert.deepEqual(b.exp_avg, a.exp_avg, `exp_avg ${i}`);
        assert.deepEqual(b.exp_avg_sq, a.exp_avg_sq, `exp_avg_sq ${i}`);
      });
      assert.deepEqual(st.rng.model, gen.getState());
      const c = st.carry as typeof carry;
      assert.deepEqual(c.block_0.c.f32(), carry.block_0.c.f32());
      assert.equal(c.block_0.n, null);
      assert.deepEqual(c.block_1.slstm_state.shape, [4, 2, 16]);
    }
  });

  it("corrupt or missing checkpoints give one-line errors naming the file", () => {
    const dir = newDir();
    const model = new LSTMLanguageModel({ vocab_size: 5, hidden_size: 4 }, { generator: new Generator(1) });
    saveCheckpoint(path.join(dir, "ck"), { model, modelType: "lstm", tokenizer: { type: "byte" } });
    const oneLine = (fn: () => unknown, re: RegExp, cls: Function = Error) =>
      assert.throws(fn, (e: Error) => e instanceof cls && re.test(e.message) && !e.message.includes("\n"), `expected one line matching ${re}`);
    oneLine(() => readTrainingState(path.join(dir, "ck")), /not a training checkpoint \(no training\.safetensors\)/);
    const file = path.join(dir, "ck", "model.safetensors");
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(path.join(dir, "truncated.safetensors"), bytes.subarray(0, bytes.length - 10));
    oneLine(() => loadModel(path.join(dir, "truncated.safetensors")), /truncated\.safetensors/, CorruptFileError);
    fs.writeFileSync(path.join(dir, "garbage.safetensors"), "not a safetensors file at all");
    oneLine(() => loadModel(path.join(dir, "garbage.safetensors")), /garbage\.safetensors/, CorruptFileError);
    oneLine(() => loadModel(path.join(dir, "nothing-here")), /no checkpoint at .*nothing-here: no such file or directory/);
    fs.mkdirSync(path.join(dir, "run", "checkpoints"), { recursive: true });
    fs.writeFileSync(path.join(dir, "run", "checkpoints", "latest"), "step-00000007\n");
    oneLine(() => resolveCheckpoint(path.join(dir, "run")), /names checkpoint "step-00000007", which does not exist/);
    // a model file whose config metadata is not JSON, and a training file without its metadata
    const { tensors } = (require("../lib/io") as typeof import("../lib/io")).readSafetensors(file);
    (require("../lib/io") as typeof import("../lib/io")).writeSafetensors(path.join(dir, "badmeta.safetensors"), tensors, { config: "{oops" });
    oneLine(() => loadModel(path.join(dir, "badmeta.safetensors")), /metadata "config" is not valid JSON/, CorruptFileError);
    (require("../lib/io") as typeof import("../lib/io")).writeSafetensors(path.join(dir, "ck", TRAINING_FILE), new Map(), {});
    oneLine(() => readTrainingState(path.join(dir, "ck")), /has no "xlstm\.training" metadata/, CorruptFileError);
    // wrong shapes for the config: names the key
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ vocab_size: 5, hidden_size: 6 }));
    fs.copyFileSync(path.join(dir, "truncated.safetensors"), path.join(dir, "x.safetensors"));
    const noMeta = path.join(dir, "plain", "model.safetensors");
    fs.mkdirSync(path.dirname(noMeta));
    (require("../lib/io") as typeof import("../lib/io")).writeSafetensors(noMeta, tensors);
    fs.writeFileSync(path.join(dir, "plain", "config.json"), JSON.stringify({ vocab_size: 5, hidden_size: 6 }));
    oneLine(() => loadModel(noMeta), /rnn\.weight_ih_l0 has shape \[16, 5\], expected \[24, 5\]/);
  });

  it("resuming repeats the uninterrupted run's losses exactly (in-process; random batches, dropout, AdamW with warm-up)", async () => {
    const a = await train({ ...tiny(), outDir: newDir(), worker: false });
    assert.equal(a.losses.length, 8);
    const dirB = newDir();
    const ac = new AbortController();
    const b1 = await train({ ...tiny(), outDir: dirB, worker: false, signal: ac.signal, onProgress: (e) => e.step === 3 && ac.abort() });
    assert.equal(b1.stopped, true);
    assert.equal(b1.step, 3);
    assert.ok(fs.existsSync(path.join(dirB, "checkpoints", "step-00000003", "training.safetensors")), "a final checkpoint at the stop");
    const b2 = await train({ text: TEXT, outDir: dirB, resume: true, worker: false });
    assert.equal(b2.step, 8);
    assert.deepEqual([...b1.losses, ...b2.losses], a.losses, "losses of the resumed run");
    assert.equal(b2.valLoss, a.valLoss);
    const metrics = fs.readFileSync(path.join(dirB, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(metrics.map((m) => m.loss), a.losses);
    assert.ok(a.losses[7] < a.losses[0], "the loss goes down");
  });

  it("resuming in the worker thread: sequential batches with the LSTM's state carried across batches, SGD", async () => {
    const opts = tiny({ modelType: "lstm", model: { hidden_size: 16 }, optimizer: "sgd", lr: 1, sampling: "sequential", steps: 40, maxTokens: 2000, evalEvery: 0 });
    const a = await train({ ...opts, outDir: newDir() });
    const dirB = newDir();
    const t = new Trainer({ ...opts, outDir: dirB });
    t.on("progress", (e) => e.step === 4 && t.stop()); // arrives asynchronously: the worker stops a step or two later
    const b1 = await t.run();
    assert.equal(b1.stopped, true);
    assert.ok(b1.step >= 4 && b1.step < 40, `stopped at ${b1.step}`);
    const st = readTrainingState(path.join(dirB, "checkpoints", `step-${String(b1.step).padStart(8, "0")}`));
    assert.ok(st.carry && (st.carry as { h: Tensor }).h.shape[1] === 4, "the carried LSTM state is in the checkpoint");
    const b2 = await train({ text: TEXT, outDir: dirB, resume: true });
    assert.deepEqual([...b1.losses, ...b2.losses], a.losses);
  });

  it("keeps the event loop free while the worker trains, and reports progress events", async () => {
    let ticks = 0, maxGap = 0, last = performance.now(), running = true;
    const spin = () => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
      if (running) setImmediate(spin);
    };
    const events: string[] = [];
    const started = performance.now();
    setImmediate(spin);
    const r = await train({ ...tiny({ steps: 60, seqLen: 32, evalEvery: 0 }), onEvent: (e) => events.push(e.type) });
    running = false;
    const ms = performance.now() - started;
    assert.equal(r.step, 60);
    assert.equal(events[0], "start");
    assert.equal(events.filter((e) => e === "progress").length, 60);
    assert.ok(ticks > ms / 20, `${ticks} event-loop turns in ${ms.toFixed(0)} ms`);
    assert.ok(maxGap < 250, `longest event-loop stall ${maxGap.toFixed(1)} ms`);
  });

  it("skips updates whose loss or gradients are NaN/Inf, reports them, and never writes them into a checkpoint", async () => {
    // an absurd learning rate without clipping blows the weights up within a few steps; later losses overflow
    const out = newDir();
    const events: { step: number; skipped: number }[] = [];
    const r = await train({ ...tiny({ steps: 12 }), optimizer: "sgd", lr: 1e30, clipGradNorm: 0, evalEvery: 0, outDir: out, worker: false, onEvent: (e) => void (e.type === "nonfinite" && events.push(e)) });
    assert.ok(r.skippedSteps > 0 && events.length === r.skippedSteps, `skipped ${r.skippedSteps}, events ${events.length}`);
    assert.ok(r.losses.some((l) => !Number.isFinite(l)), "some loss was not finite");
    const { model } = loadModel(r.checkpoint!);
    for (const [k, p] of model.namedParameters()) assert.ok(p.f32().every((v) => !Number.isNaN(v)), `${k} holds NaN in the checkpoint`);
  });

  it("rejects bad options and unreadable data with one-line errors", async () => {
    await assert.rejects(train({ batchSize: 0 }), (e: Error) => e instanceof RangeError && /train: batchSize must be an integer >= 1, got 0/.test(e.message));
    await assert.rejects(train({ stepz: 3 } as never), /train: unknown option "stepz"/);
    await assert.rejects(train({ steps: 1, epochs: 1 }), /give steps or epochs, not both/);
    await assert.rejects(train({ data: "/nonexistent/file.txt", steps: 1 }), (e: Error) => /cannot read \/nonexistent\/file\.txt: no such file/.test(e.message) && !e.message.includes("\n"));
    await assert.rejects(train({ text: "tiny", steps: 1, worker: false }), /too few for one batch/);
    await assert.rejects(train({ resume: true, text: TEXT, outDir: newDir(), worker: false }), /no checkpoint in/);
  });

  it("generate: greedy equals argmax over full forward passes; sampling is seeded and respects top-k/top-p; batches", async () => {
    const model = new nn.xLSTMLMModel({ ...MIXED, dropout: 0, vocab_size: 13 } as nn.xLSTMLMModelConfig, { generator: new Generator(8) });
    const prompt = [3, 1, 4, 1, 5];
    const got: number[] = [];
    for await (const t of generate(model as never, prompt, { maxTokens: 6, temperature: 0 })) got.push(t.id);
    // independent: re-run the whole sequence through forward() each time and take the argmax of the last position
    const seq = [...prompt];
    for (let i = 0; i < 6; ++i) {
      const { logits } = noGrad(() => model.forward(new Tensor(Int32Array.from(seq), [1, seq.length])));
      const last = logits.f32().slice((seq.length - 1) * 13, seq.length * 13);
      seq.push(last.indexOf(Math.max(...last)));
    }
    assert.deepEqual(got, seq.slice(prompt.length));
    // the Tensor path gives the same tokens as the fused native session (the default for xLSTM models)
    const tensorPath: number[] = [];
    for await (const t of generate(model as never, prompt, { maxTokens: 6, temperature: 0, fused: false })) tensorPath.push(t.id);
    assert.deepEqual(tensorPath, got);
    const sample = async (o: object) => {
      const ids: number[] = [];
      for await (const t of generate(model as never, prompt, { maxTokens: 12, ...o })) ids.push(t.id);
      return ids;
    };
    assert.deepEqual(await sample({ seed: 5, temperature: 1.5 }), await sample({ seed: 5, temperature: 1.5 }), "same seed, same text");
    assert.notDeepEqual(await sample({ seed: 5, temperature: 1.5 }), await sample({ seed: 6, temperature: 1.5 }));
    assert.deepEqual(await sample({ seed: 1, topK: 1 }), (await sample({ temperature: 0 })), "top-k 1 is greedy");
    const logits = Float32Array.from([0, 3, 1, 2.9, -1]);
    const g = new Generator(0);
    const drawsK = new Set(Array.from({ length: 300 }, () => sampleLogits(logits, { topK: 2 }, g)));
    assert.deepEqual([...drawsK].sort(), [1, 3]);
    // probabilities (e^3, e^2.9, e^1, e^0, e^-1) / 42.35 = 0.474, 0.429, 0.064, ...: the smallest set reaching p
    const probs = Array.from(logits, (l) => Math.exp(l));
    const total = probs.reduce((a, b) => a + b, 0);
    assert.ok(probs[1] / total > 0.4 && (probs[1] + probs[3]) / total > 0.8 && (probs[1] + probs[3]) / total < 0.95);
    assert.deepEqual(new Set(Array.from({ length: 200 }, () => sampleLogits(logits, { topP: 0.4 }, g))), new Set([1]));
    assert.deepEqual([...new Set(Array.from({ length: 300 }, () => sampleLogits(logits, { topP: 0.8 }, g)))].sort(), [1, 3]);
    assert.deepEqual([...new Set(Array.from({ length: 600 }, () => sampleLogits(logits, { topP: 0.95 }, g)))].sort(), [1, 2, 3]);
    assert.throws(() => sampleLogits(logits, { topP: 0 }, g), /topP must be in \(0, 1\]/);
    // batch: rows of different prompt lengths give what each prompt gives alone (greedy)
    const prompts = [[3, 1, 4, 1, 5], [2, 7], [9, 9, 9]];
    const batch = await generateBatch(model as never, prompts, { maxTokens: 5, temperature: 0 });
    for (let b = 0; b < prompts.length; ++b) {
      const alone: number[] = [];
      for await (const t of generate(model as never, prompts[b], { maxTokens: 5, temperature: 0 })) alone.push(t.id);
      assert.deepEqual(batch.ids[b], alone, `row ${b}`);
    }
    // the batch ran the fused session of 3 rows: the Tensor path gives the same tokens, greedy and sampled
    assert.deepEqual((await generateBatch(model as never, prompts, { maxTokens: 5, temperature: 0, fused: false })).ids, batch.ids);
    const sampled = (fused: boolean) => generateBatch(model as never, prompts, { maxTokens: 6, temperature: 0.9, topK: 5, seed: 4, fused });
    assert.deepEqual((await sampled(true)).ids, (await sampled(false)).ids);
    const tok = CharTokenizer.fromText("abcdefghijklm");
    let text = "";
    for await (const t of generate(model as never, "abc", { tokenizer: tok, maxTokens: 4, temperature: 0 })) text += t.text;
    assert.equal(text, tok.decode(got.slice(0, 0).concat(await (async () => { const r: number[] = []; for await (const t of generate(model as never, tok.encode("abc"), { maxTokens: 4, temperature: 0 })) r.push(t.id); return r; })())));
    await assert.rejects(async () => { for await (const _ of generate(model as never, "abc")) void _; }, /a string prompt needs options\.tokenizer/);
    await assert.rejects(async () => { for await (const _ of generate(model as never, [], {})) void _; }, /the prompt is empty/);
  });
});
