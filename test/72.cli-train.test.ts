// Layer 7: `xlstm train`, `generate` and `convert` as users run them (bin/xlstm.js over dist/): a tiny run end to
// end (train with a config file and flags, resume, generate, convert to the reference's layout and back, generate
// again), help texts, and one-line errors with exit code 2 (usage) or 1 (files, devices).
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backends } from "../lib";
import { readSafetensors } from "../lib/io";

const root = path.resolve(__dirname, "..");
const cli = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [path.join(root, "bin", "xlstm.js"), ...args], { encoding: "utf8", cwd, timeout: 120000 });

/** A failed command: exit code, and stderr is one line "xlstm <cmd>: ..." with no stack trace. */
function assertOneLineError(r: ReturnType<typeof cli>, code: number, re: RegExp): void {
  assert.equal(r.status, code, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^xlstm( [a-z-]+)?: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

describe("72 cli: train, generate, convert", function () {
  this.timeout(120000);
  let dir = "";
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-cli-"));
    fs.writeFileSync(path.join(dir, "text.txt"), fs.readFileSync(path.join(root, "data", "timemachine.txt"), "utf8").slice(0, 30000));
    fs.writeFileSync(
      path.join(dir, "tiny.json"),
      JSON.stringify({
        data: "text.txt", steps: 6, batchSize: 4, seqLen: 16, evalEvery: 3, evalBatches: 1, checkpointEvery: 3,
        model: { embedding_dim: 16, num_blocks: 2, slstm_at: [1], mlstm_block: { mlstm: { num_heads: 2, qkv_proj_blocksize: 4, conv1d_kernel_size: 4 } }, slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } } },
      }),
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("trains, resumes, generates, converts to the reference layout and back", () => {
    const t = cli(dir, "train", "--config", "tiny.json", "--out", "run", "--steps", "4", "--seed", "1");
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stderr, /^model: xLSTM E=16 blocks=2 \(sLSTM at \[1\], mLSTM elsewhere\)/m);
    assert.match(t.stderr, /^step 4\/4 loss \d+\.\d+ ppl \d+\.\d+ lr \S+ [\d,]+ tok\/s eta/m, "plain progress lines without a terminal");
    assert.match(t.stderr, /^done: step 4\/4, loss \d\.\d+ -> \d\.\d+ \(validation/m);
    assert.match(t.stderr, /[⠀-⣿]/, "a braille chart at the end");
    const run = path.join(dir, "run");
    const rows = () => fs.readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows().map((r) => r.step), [1, 2, 3, 4]);
    assert.ok(rows().every((r) => typeof r.loss === "number" && typeof r.tokens_per_s === "number" && typeof r.lr === "number"));
    assert.ok(rows()[2].val_loss > 0, "validation at step 3");
    assert.match(fs.readFileSync(path.join(run, "loss.svg"), "utf8"), /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<polyline[\s\S]*<\/svg>$/);
    assert.deepEqual([...fs.readFileSync(path.join(run, "loss.png")).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(fs.readFileSync(path.join(run, "checkpoints", "latest"), "utf8").trim(), "step-00000004");

    // the same run again is refused; --resume continues it to 6 steps
    assertOneLineError(cli(dir, "train", "--config", "tiny.json", "--out", "run"), 1, /run already holds a training run; pass --resume/);
    const r = cli(dir, "train", "--resume", "--out", "run", "--steps", "6");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming from .*step-00000004 at step 4/);
    assert.deepEqual(rows().map((x) => x.step), [1, 2, 3, 4, 5, 6]);

    // generate streams the prompt and the continuation; the same seed gives the same text
    const g1 = cli(dir, "generate", "--checkpoint", "run", "--prompt", "The Time", "--max-tokens", "30", "--seed", "7", "--top-k", "10", "--temperature", "0.9");
    assert.equal(g1.status, 0, g1.stderr);
    assert.ok(g1.stdout.startsWith("The Time") && [...g1.stdout.trimEnd()].length === 8 + 30, JSON.stringify(g1.stdout));
    assert.equal(cli(dir, "generate", "--checkpoint", "run", "--prompt", "The Time", "--max-tokens", "30", "--seed", "7", "--top-k", "10", "--temperature", "0.9").stdout, g1.stdout);
    const greedy = cli(dir, "generate", "--checkpoint", "run", "--prompt", "The Time", "--max-tokens", "20", "--temperature", "0", "--no-echo");
    assert.equal(greedy.status, 0, greedy.stderr);

    // to the reference's single-file layout (vanilla sLSTM kernels), then back to a checkpoint directory
    const c1 = cli(dir, "convert", "run", "ref.safetensors", "--slstm-layout", "vanilla");
    assert.equal(c1.status, 0, c1.stderr);
    const ref = readSafetensors(path.join(dir, "ref.safetensors"));
    assert.deepEqual(ref.tensors.get("xlstm_block_stack.blocks.1.xlstm.slstm_cell._recurrent_kernel_")!.shape, [2, 32, 8], "vanilla layout [NH, 4DH, DH]");
    assert.equal(JSON.parse(ref.metadata.config).embedding_dim, 16);
    // a reference file without our metadata: the config comes from --config, the tokenizer from the original run
    const bare = new Map(ref.tensors);
    (require("../lib/io") as typeof import("../lib/io")).writeSafetensors(path.join(dir, "bare.safetensors"), bare, { format: "pt" });
    fs.writeFileSync(path.join(dir, "model-config.json"), ref.metadata.config);
    assertOneLineError(cli(dir, "convert", "bare.safetensors", "back"), 1, /has no model config .* pass one with --config/);
    const c2 = cli(dir, "convert", "bare.safetensors", "back", "--config", "model-config.json", "--tokenizer", "char:text.txt");
    assert.equal(c2.status, 0, c2.stderr);
    const back = readSafetensors(path.join(dir, "back", "model.safetensors"));
    assert.deepEqual(back.tensors.get("xlstm_block_stack.blocks.1.xlstm.slstm_cell._recurrent_kernel_")!.shape, [2, 8, 32], "cuda layout [NH, DH, 4DH]");
    const g2 = cli(dir, "generate", "--checkpoint", "back", "--prompt", "The Time", "--max-tokens", "20", "--temperature", "0", "--no-echo");
    assert.equal(g2.status, 0, g2.stderr);
    assert.equal(g2.stdout, greedy.stdout, "the converted model generates the same text");
  });

  it("help for the program and each command", () => {
    const h = cli(dir, "--help");
    assert.equal(h.status, 0);
    for (const c of ["train", "generate", "convert", "info", "bench", "check-fixtures"]) assert.match(h.stdout, new RegExp(`^  ${c} `, "m"));
    const th = cli(dir, "train", "--help");
    for (const f of ["--config", "--resume", "--steps", "--device", "--lr", "--out"]) assert.match(th.stdout, new RegExp(`^  ${f}\\b`, "m"));
    assert.match(cli(dir, "help", "generate").stdout, /--top-p P/);
    assert.match(cli(dir, "convert", "-h").stdout, /--slstm-layout/);
  });

  it("bad flags and files: one line on stderr, exit 2 for usage and 1 for runtime errors", () => {
    assertOneLineError(cli(dir, "train", "--bogus"), 2, /unknown option --bogus/);
    assertOneLineError(cli(dir, "train", "--steps", "many"), 2, /option --steps must be an integer, got "many"/);
    assertOneLineError(cli(dir, "train", "--optimizer", "adam"), 2, /option --optimizer must be adamw or sgd, got "adam"/);
    assertOneLineError(cli(dir, "train", "--batch-size", "0", "--out", "x0"), 1, /batchSize must be an integer >= 1, got 0/);
    assertOneLineError(cli(dir, "train", "--data", "missing.txt", "--out", "x1"), 1, /cannot read .*missing\.txt: no such file/);
    // without a usable GPU, --device cuda is a one-line error (with one it trains: test/64 covers training on the GPU)
    if (!backends().cuda.available) assertOneLineError(cli(dir, "train", "--device", "cuda"), 1, /--device cuda: /);
    fs.writeFileSync(path.join(dir, "bad.json"), "{ not json");
    assertOneLineError(cli(dir, "train", "--config", "bad.json"), 1, /config file bad\.json is not valid JSON/);
    assertOneLineError(cli(dir, "generate", "--prompt", "x"), 2, /--checkpoint is required/);
    assertOneLineError(cli(dir, "generate", "--checkpoint", "nowhere", "--prompt", "x"), 1, /no checkpoint at nowhere/);
    assertOneLineError(cli(dir, "generate", "--checkpoint", "back", "--prompt", "x", "--top-p", "1.5"), 2, /--top-p must be in \(0, 1\]/);
    fs.writeFileSync(path.join(dir, "corrupt.safetensors"), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    assertOneLineError(cli(dir, "generate", "--checkpoint", "corrupt.safetensors", "--prompt", "x"), 1, /corrupt\.safetensors/);
    assertOneLineError(cli(dir, "convert", "only-one"), 2, /convert needs <input> and <output>, got 1 argument/);
    assertOneLineError(cli(dir, "convert", "corrupt.safetensors", "out.safetensors"), 1, /corrupt\.safetensors/);
    assertOneLineError(cli(dir, "frobnicate"), 2, /unknown command "frobnicate"/);
  });
});
