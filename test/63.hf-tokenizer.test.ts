// Layer 6 (data): Hugging Face tokenizer.json tokenizers (lib/data/hf-tokenizer.ts) on small hand-made files whose
// encodings follow from their merge rules (test/support/hf-tokenizers.ts): encode against hand-derived ids, round
// trips, streaming decode equal to the full decode (multi-byte characters over byte-level and byte-fallback
// tokens), saving with checkpoints (metadata and a directory's tokenizer.json), `xlstm train --tokenizer FILE.json`
// then `xlstm generate`, and one-line errors naming the file for bad files.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HFTokenizer } from "../lib/data/hf-tokenizer";
import { tokenizerFromJSON } from "../lib/data/tokenizer";
import { loadModel, saveCheckpoint, readModelFile } from "../lib/checkpoint";
import { loadGenerator } from "../lib/generate";
import { CorruptFileError } from "../lib/errors";
import { Generator } from "../lib/rng";
import { nn } from "../lib";
import { byteFallbackBPE, byteLevelBPE, bytesToUnicode, wordLevel } from "./support/hf-tokenizers";

const root = path.resolve(__dirname, "..");
const cli = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [path.join(root, "bin", "xlstm.js"), ...args], { encoding: "utf8", cwd, timeout: 60000 });

/** Push every id, then flush: the pieces and their concatenation. */
function stream(tok: HFTokenizer, ids: ArrayLike<number>): string[] {
  const d = tok.streamDecoder();
  const parts = Array.from(ids, (id) => d.push(id));
  parts.push(d.flush());
  return parts;
}

const TEXTS = ["hello world", "ab ab", "é", "a€b 😀 ünïcödé", "the time machine.", " leading and trailing  ", "a\nb\tc", "日本語のテキスト", ""];

describe("63 Hugging Face tokenizer.json", function () {
  this.timeout(60000);
  let dir = "";
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-hf-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("byte-level BPE: ids follow the merge ranks (hand-derived)", () => {
    const tok = new HFTokenizer(byteLevelBPE());
    assert.equal(tok.type, "hf");
    assert.equal(tok.vocabSize, 262);
    // "hello" -> h e l l o: rank 0 merges h+e, rank 1 l+l, rank 2 he+ll -> [hell, o]; " world" is its own piece
    // Ġ w o r l d: rank 3 Ġ+w, rank 4 Ġw+o -> [Ġwo, r, l, d]; unmerged bytes keep their byte value as id
    assert.deepEqual(Array.from(tok.encode("hello world")), [258, 111, 260, 114, 108, 100]);
    // l+l (rank 1) is the only mergeable pair of "ell"; "hhe" merges the second h with e
    assert.deepEqual(Array.from(tok.encode("ell")), [101, 257]);
    assert.deepEqual(Array.from(tok.encode("hhe")), [104, 256]);
    // multi-byte characters become their UTF-8 bytes: é = C3 A9, € = E2 82 AC
    assert.deepEqual(Array.from(tok.encode("é€")), [0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    // the special token is matched before pre-tokenization
    assert.deepEqual(Array.from(tok.encode("a<|endoftext|>b")), [97, 261, 98]);
    assert.equal(tok.idToToken(259), "Ġw");
    assert.equal(tok.tokenToId(bytesToUnicode()[0x20] + "w"), 259);
  });

  it("byte-fallback BPE (Llama layout): metaspace merges, bytes for unknown characters, optional BOS", () => {
    const tok = new HFTokenizer(byteFallbackBPE());
    assert.equal(tok.vocabSize, 265);
    // "ab ab" -> "▁ab▁ab": ▁+a (rank 0) twice, then ▁a+b (rank 2) twice
    assert.deepEqual(Array.from(tok.encode("ab ab")), [264, 264]);
    // "ba" -> "▁ba": nothing merges with ▁ (b is next), b+a has no rule
    assert.deepEqual(Array.from(tok.encode("ba")), [259, 261, 260]);
    // é is not in the vocabulary: its bytes C3 A9 as <0xC3> <0xA9> (id 3 + byte)
    assert.deepEqual(Array.from(tok.encode("é")), [259, 3 + 0xc3, 3 + 0xa9]);
    const withBos = new HFTokenizer(byteFallbackBPE(), { addSpecialTokens: true });
    assert.deepEqual(Array.from(withBos.encode("ab")), [1, 264]);
    assert.equal(withBos.decode([1, 264]), "<s> ab");
    assert.equal(new HFTokenizer(byteFallbackBPE(), { skipSpecialTokens: true }).decode([1, 264, 2]), "ab");
  });

  it("WordLevel: whitespace/punctuation pieces, unknown words map to [UNK]", () => {
    const tok = new HFTokenizer(wordLevel());
    assert.equal(tok.vocabSize, 5);
    assert.deepEqual(Array.from(tok.encode("the time machine.")), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(tok.encode("the cat")), [1, 0]);
    // no decoder: tokens joined by spaces (as the Rust library does)
    assert.equal(tok.decode([1, 2, 3, 4]), "the time machine .");
    assert.equal(stream(tok, [1, 2, 3, 4]).join(""), "the time machine .");
  });

  it("round trips text -> ids -> text, and streaming decode equals the full decode", () => {
    for (const make of [byteLevelBPE, byteFallbackBPE]) {
      const tok = new HFTokenizer(make());
      for (const text of TEXTS) {
        const ids = tok.encode(text);
        assert.equal(tok.decode(ids), text, `${make.name}: ${JSON.stringify(text)}`);
        assert.equal(stream(tok, ids).join(""), text, `${make.name} streaming: ${JSON.stringify(text)}`);
      }
    }
  });

  it("the streaming decoder holds incomplete characters back and emits them complete", () => {
    const bl = new HFTokenizer(byteLevelBPE());
    // 😀 = F0 9F 98 80: nothing until the fourth byte
    assert.deepEqual(stream(bl, bl.encode("a😀b")), ["a", "", "", "", "😀", "b", ""]);
    const bf = new HFTokenizer(byteFallbackBPE());
    // "▁" alone decodes to "" (the leading space is stripped), then <0xC3> is incomplete, <0xA9> completes é;
    // the second word's "▁" becomes its leading space once the word follows
    assert.deepEqual(stream(bf, bf.encode("é ab")), ["", "", "é", " ab", ""]);
    // a stream cut inside a character: flush returns what decode() gives (U+FFFD), the stream restarts empty
    const d = bl.streamDecoder();
    assert.equal(d.push(0xe2), "");
    assert.equal(d.flush(), bl.decode([0xe2]));
    assert.equal(d.push(104), "h");
    // ids beyond the tokenizer (a padded model vocabulary) decode to nothing, as in the Rust library
    assert.equal(d.push(300), "");
    assert.equal(d.push(105), "i");
    assert.equal(bl.decode([104, 300, 105]), "hi");
    assert.throws(() => d.push(-1), (e: Error) => e instanceof RangeError && /id -1 is not an integer in \[0, 2\^31\)/.test(e.message));
    assert.throws(() => bl.decode([1.5]), RangeError);
  });

  it("saved form: tokenizerFromJSON rebuilds it (object or path), options kept", () => {
    const tok = new HFTokenizer(byteFallbackBPE(), { addSpecialTokens: true });
    const j = JSON.parse(JSON.stringify(tok.toJSON()));
    assert.equal(j.type, "hf");
    const back = tokenizerFromJSON(j);
    assert.equal(back.type, "hf");
    assert.deepEqual(Array.from(back.encode("ab ab")), [1, 264, 264]);
    const file = path.join(dir, "bf.json");
    fs.writeFileSync(file, JSON.stringify(byteFallbackBPE()));
    const fromPath = tokenizerFromJSON({ type: "hf", file });
    assert.deepEqual(Array.from(fromPath.encode("ab ab")), [264, 264]);
    assert.deepEqual(Array.from(HFTokenizer.fromFile(file).encode("é")), [259, 198, 172]);
  });

  it("bad tokenizer files: one-line errors naming the file", () => {
    const write = (name: string, content: string) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, content);
      return f;
    };
    const cases: [string, RegExp, Function][] = [
      [path.join(dir, "missing.json"), /cannot read tokenizer .*missing\.json: no such file/, Error],
      [dir, /cannot read tokenizer .*: it is a directory/, Error],
      [write("notjson.json", "{ nope"), /notjson\.json: is not valid JSON .*expected a Hugging Face tokenizer\.json/, CorruptFileError],
      [write("array.json", "[1, 2]"), /array\.json: not a supported Hugging Face tokenizer\.json: expected a JSON object, got an array/, CorruptFileError],
      [write("nomodel.json", JSON.stringify({ version: "1.0" })), /nomodel\.json: .*no "model" object/, CorruptFileError],
      [write("foo.json", JSON.stringify({ ...byteLevelBPE(), model: { type: "FooModel", vocab: {} } })), /foo\.json: .*model type "FooModel" is not supported \(supported: BPE, WordPiece, Unigram, WordLevel\)/, CorruptFileError],
      [write("decoder.json", JSON.stringify({ ...byteLevelBPE(), decoder: { type: "Telepathy" } })), /decoder\.json: not a supported Hugging Face tokenizer\.json: Unknown Decoder type: Telepathy/, CorruptFileError],
      [write("empty.json", JSON.stringify({ ...wordLevel(), added_tokens: [], model: { type: "WordLevel", vocab: {}, unk_token: null } })), /empty\.json: .*the vocabulary is empty/, CorruptFileError],
    ];
    if (process.platform !== "win32") {
      const fifo = path.join(dir, "fifo.json");
      if (spawnSync("mkfifo", [fifo]).status === 0) cases.push([fifo, /cannot read tokenizer .*fifo\.json: not a regular file/, Error]);
    }
    for (const [file, re, cls] of cases) {
      assert.throws(
        () => HFTokenizer.fromFile(file),
        (e: Error) => {
          assert.ok(e instanceof cls, `${file}: ${e.constructor.name}: ${e.message}`);
          assert.match(e.message, re);
          assert.ok(e.message.includes(file), `names the file: ${e.message}`);
          assert.ok(!e.message.includes("\n"), "one line");
          return true;
        },
      );
    }
  });

  it("a checkpoint saved with an HF tokenizer loads back and generates; a directory's tokenizer.json is used when it has none", async () => {
    const tok = new HFTokenizer(byteLevelBPE());
    const model = new nn.xLSTMLMModel(
      { vocab_size: tok.vocabSize, embedding_dim: 16, num_blocks: 1, context_length: 32, mlstm_block: { mlstm: { num_heads: 2, qkv_proj_blocksize: 4, conv1d_kernel_size: 4 } } } as nn.xLSTMLMModelConfig,
      { generator: new Generator(3) },
    );
    const ck = path.join(dir, "ck");
    saveCheckpoint(ck, { model: model as never, modelType: "xlstm", tokenizer: tok });
    assert.equal(readModelFile(path.join(ck, "model.safetensors")).tokenizer?.type, "hf", "stored in the model file's metadata");
    const g = loadGenerator(ck);
    assert.equal(g.tokenizer!.type, "hf");
    assert.deepEqual(Array.from(g.tokenizer!.encode("hello world")), [258, 111, 260, 114, 108, 100]);
    const out: { id: number; text: string }[] = [];
    for await (const t of g.generate("hello", { maxTokens: 12, temperature: 0.9, seed: 5 })) out.push(t);
    assert.equal(out.length, 12);
    assert.equal(out.map((t) => t.text).join(""), tok.decode(out.map((t) => t.id)).replace(/\uFFFD+$/, ""), "streamed text is the decode of the ids (up to an incomplete last character)");

    // no tokenizer in the checkpoint: a tokenizer.json beside the model is picked up
    const bare = path.join(dir, "bare");
    saveCheckpoint(bare, { model: model as never, modelType: "xlstm", tokenizer: null });
    assert.equal(loadModel(bare).tokenizer, null);
    fs.writeFileSync(path.join(bare, "tokenizer.json"), JSON.stringify(byteLevelBPE()));
    const auto = loadModel(bare);
    assert.equal(auto.tokenizer?.type, "hf");
    assert.deepEqual(Array.from(auto.tokenizer!.encode("hello")), [258, 111]);
    // a tokenizer.json with more tokens than the model's vocabulary is refused, naming both sizes
    fs.writeFileSync(path.join(bare, "tokenizer.json"), JSON.stringify({ ...byteLevelBPE(), added_tokens: [{ id: 400, content: "<x>", special: true }] }));
    assert.throws(() => loadModel(bare), /the tokenizer has 401 tokens but the model's vocab_size is 262/);
    fs.writeFileSync(path.join(bare, "tokenizer.json"), "{ broken");
    assert.throws(() => loadModel(bare), (e: Error) => e instanceof CorruptFileError && e.message.includes(path.join(bare, "tokenizer.json")) && /is not valid JSON/.test(e.message));
  });

  it("xlstm train --tokenizer FILE.json, then generate with it; bad tokenizer flags are one-line errors", () => {
    fs.writeFileSync(path.join(dir, "tok.json"), JSON.stringify(byteLevelBPE()));
    fs.writeFileSync(path.join(dir, "text.txt"), fs.readFileSync(path.join(root, "data", "timemachine.txt"), "utf8").slice(0, 6000));
    fs.writeFileSync(
      path.join(dir, "tiny.json"),
      JSON.stringify({ data: "text.txt", steps: 3, batchSize: 2, seqLen: 16, evalEvery: 0, checkpointEvery: 3, model: { embedding_dim: 16, num_blocks: 1, slstm_at: [0], slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } } } }),
    );
    const t = cli(dir, "train", "--config", "tiny.json", "--tokenizer", "tok.json", "--out", "run", "--quiet");
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stderr, /^done: step 3\/3/m);
    const mf = readModelFile(path.join(dir, "run", "checkpoints", "step-00000003", "model.safetensors"));
    assert.equal(mf.tokenizer?.type, "hf");
    assert.equal((mf.config as { vocab_size: number }).vocab_size, 262, "vocab_size from the tokenizer");
    const tok = HFTokenizer.fromFile(path.join(dir, "tok.json"));
    const g = cli(dir, "generate", "--checkpoint", "run", "--prompt", "hello world", "--max-tokens", "10", "--seed", "2");
    assert.equal(g.status, 0, g.stderr);
    assert.ok(g.stdout.startsWith("hello world"), g.stdout);
    // generate --tokenizer FILE.json overrides; the same seed gives the same output
    const g2 = cli(dir, "generate", "--checkpoint", "run", "--prompt", "hello world", "--max-tokens", "10", "--seed", "2", "--tokenizer", "tok.json");
    assert.equal(g2.stdout, g.stdout);
    assert.ok(tok.encode(g.stdout.trimEnd()).length >= 2);

    const oneLine = (r: ReturnType<typeof cli>, code: number, re: RegExp) => {
      assert.equal(r.status, code, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, re);
    };
    oneLine(cli(dir, "train", "--tokenizer", "words", "--out", "x1"), 2, /^xlstm train: option --tokenizer must be char, byte or a tokenizer\.json file, got "words"/);
    oneLine(cli(dir, "train", "--tokenizer", "nope.json", "--out", "x2"), 1, /^xlstm train: cannot read tokenizer nope\.json: no such file/);
    fs.writeFileSync(path.join(dir, "broken.json"), "{ broken");
    oneLine(cli(dir, "train", "--tokenizer", "broken.json", "--out", "x3"), 1, /^xlstm train: broken\.json: is not valid JSON/);
    oneLine(cli(dir, "generate", "--checkpoint", "run", "--prompt", "x", "--tokenizer", "broken.json"), 1, /^xlstm generate: broken\.json: is not valid JSON/);
    oneLine(cli(dir, "generate", "--checkpoint", "run", "--prompt", "x", "--tokenizer", "words"), 2, /^xlstm generate: option --tokenizer must be byte, char:FILE or a tokenizer\.json file, got "words"/);
  });
});
