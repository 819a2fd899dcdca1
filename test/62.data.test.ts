// Layer 6: tokenizers and datasets. Character and byte tokenizers (round trips, streaming decode of split UTF-8,
// saved form), d2l's sequential and random batch iterators checked on an identity corpus (token i == position i, so
// every window's position is readable from its values), determinism by seed, positions, splits and errors.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BatchSampler, ByteTokenizer, CharTokenizer, evaluationBatches, readTextFile, tokenizerFromJSON, trainValSplit } from "../lib/data";

const identity = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe("62 data", () => {
  it("CharTokenizer: vocabulary in code-point order, round trip, unknown characters, saved form", () => {
    const text = "the time machine 🕰 — Ünïcode";
    const tok = CharTokenizer.fromText(text);
    const chars = [...new Set([...text])].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    assert.deepEqual(tok.vocab, chars);
    assert.equal(tok.vocabSize, chars.length);
    const ids = tok.encode(text);
    assert.equal(ids.length, [...text].length, "one token per code point (the clock emoji is one token)");
    assert.equal(tok.decode(ids), text);
    assert.throws(() => tok.encode("thé"), (e: Error) => e instanceof RangeError && /characters not in the vocabulary: "é"/.test(e.message));
    const withUnk = CharTokenizer.fromText("abc", { unk: "<unk>" });
    assert.deepEqual(withUnk.vocab, ["<unk>", "a", "b", "c"]);
    assert.deepEqual(Array.from(withUnk.encode("axb")), [1, 0, 2]);
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    assert.deepEqual(Array.from(back.encode(text)), Array.from(ids));
    const dec = tok.streamDecoder();
    assert.equal(Array.from(ids, (i) => dec.push(i)).join(""), text);
    assert.throws(() => tok.decode([999]), /id 999 is outside the vocabulary/);
    assert.throws(() => new CharTokenizer(["a", "a"]), /duplicated/);
    assert.throws(() => new CharTokenizer(["ab"]), /not a single character/);
  });

  it("ByteTokenizer: UTF-8 bytes, and a streaming decoder that waits for split multi-byte characters", () => {
    const tok = new ByteTokenizer();
    const text = "naïve 🕰!";
    const ids = tok.encode(text);
    assert.deepEqual(Array.from(ids), Array.from(Buffer.from(text, "utf8")));
    assert.equal(tok.decode(ids), text);
    const dec = tok.streamDecoder();
    const pieces = Array.from(ids, (i) => dec.push(i));
    assert.equal(pieces.join("") + dec.flush(), text);
    const clock = Buffer.from("🕰", "utf8");
    const at = ids.indexOf(clock[0]);
    assert.deepEqual(pieces.slice(at, at + 4), ["", "", "", "🕰"], "the 4 bytes of the emoji come out once complete");
    assert.deepEqual(tokenizerFromJSON({ type: "byte" }).vocabSize, 256);
    assert.throws(() => tok.decode([256]), /id 256 is outside \[0, 256\)/);
    assert.throws(() => tokenizerFromJSON({ type: "bpe" }), (e: Error) => e instanceof RangeError && /unknown tokenizer type "bpe"/.test(e.message));
  });

  it("sequential batches follow d2l's seq_data_iter_sequential: one random offset, rows of the rest, consecutive windows", () => {
    const N = 1000, B = 4, S = 7;
    const s = new BatchSampler(identity(N), { batchSize: B, seqLen: S, mode: "sequential", seed: 3 });
    for (const epoch of [0, 1, 2]) {
      const batches = [...s.epoch(epoch)];
      const offset = batches[0].x[0];
      assert.ok(offset >= 0 && offset <= S, `offset ${offset} in [0, ${S}]`);
      const perRow = Math.floor((N - offset - 1) / B);
      assert.equal(batches.length, Math.floor(perRow / S), "number of batches");
      batches.forEach((bt, i) => {
        for (let b = 0; b < B; ++b)
          for (let t = 0; t < S; ++t) {
            const pos = offset + b * perRow + i * S + t;
            assert.equal(bt.x[b * S + t], pos, `x epoch ${epoch} batch ${i} row ${b} t ${t}`);
            assert.equal(bt.y[b * S + t], pos + 1, `y epoch ${epoch} batch ${i} row ${b} t ${t}`);
          }
      });
    }
    const offsets = [0, 1, 2, 3, 4, 5].map((e) => s.batch(e, 0).x[0]);
    assert.ok(new Set(offsets).size > 1, "the offset changes between epochs");
  });

  it("random batches follow d2l's seq_data_iter_random: disjoint windows from an offset, shuffled, deterministic by seed", () => {
    const N = 500, B = 3, S = 6;
    const s = new BatchSampler(identity(N), { batchSize: B, seqLen: S, mode: "random", seed: 9 });
    const batches = [...s.epoch(0)];
    const starts = batches.flatMap((bt) => Array.from({ length: B }, (_, b) => bt.x[b * S]));
    const offset = Math.min(...starts) % S;
    assert.ok(offset >= 0 && offset < S);
    const numSub = Math.floor((N - offset - 1) / S);
    assert.equal(batches.length, Math.floor(numSub / B));
    assert.equal(new Set(starts).size, starts.length, "no window twice in an epoch");
    for (const st of starts) assert.equal((st - offset) % S, 0, `window start ${st} on the grid offset + k*S`);
    for (const bt of batches)
      for (let b = 0; b < B; ++b)
        for (let t = 0; t < S; ++t) {
          assert.equal(bt.x[b * S + t], bt.x[b * S] + t, "a window is contiguous");
          assert.equal(bt.y[b * S + t], bt.x[b * S + t] + 1, "targets are the next tokens");
        }
    const sorted = [...starts].sort((a, b) => a - b);
    assert.notDeepEqual(starts, sorted, "windows are shuffled");
    const again = new BatchSampler(identity(N), { batchSize: B, seqLen: S, mode: "random", seed: 9 });
    assert.deepEqual(again.batch(0, 2).x, batches[2].x, "same seed, same batches");
    const other = new BatchSampler(identity(N), { batchSize: B, seqLen: S, mode: "random", seed: 10 });
    assert.notDeepEqual([...other.epoch(0)].map((b) => Array.from(b.x)), batches.map((b) => Array.from(b.x)), "another seed, other batches");
  });

  it("next() walks epochs in order and seek() restores a saved position", () => {
    const s = new BatchSampler(identity(200), { batchSize: 2, seqLen: 10, mode: "random", seed: 1 });
    const n0 = s.numBatches(0);
    const seen = Array.from({ length: n0 + 2 }, () => s.next());
    assert.deepEqual(seen.map((b) => [b.epoch, b.index]).slice(n0 - 1), [[0, n0 - 1], [1, 0], [1, 1]]);
    const pos = { ...s.position };
    const expected = s.next();
    const t = new BatchSampler(identity(200), { batchSize: 2, seqLen: 10, mode: "random", seed: 1 });
    t.seek(pos);
    assert.deepEqual(t.next().x, expected.x);
    assert.throws(() => t.seek({ epoch: 0, index: 999 }), (e: Error) => e instanceof RangeError && /index 999 is outside epoch 0/.test(e.message));
  });

  it("splits, evaluation batches and errors", () => {
    const { train, val } = trainValSplit(identity(100), 0.1);
    assert.deepEqual([train.length, val.length, val[0]], [90, 10, 90]);
    assert.throws(() => trainValSplit(identity(10), 1), /valFraction must be in \[0, 1\)/);
    const ev = evaluationBatches(identity(100), 2, 10);
    assert.equal(ev.length, 4, "9 windows of 10 (the last needs token 100) -> 4 batches of 2");
    assert.deepEqual([ev[1].x[0], ev[1].x[10], ev[1].y[19]], [20, 30, 40]);
    assert.equal(evaluationBatches(identity(100), 2, 10, 1).length, 1);
    assert.throws(() => new BatchSampler(identity(49), { batchSize: 4, seqLen: 10 }), (e: Error) => e instanceof RangeError && /49 tokens are too few for one batch of 4 x 10 \(need 50\)/.test(e.message));
    assert.throws(() => new BatchSampler(identity(500), { batchSize: 0, seqLen: 10 }), /batchSize must be a positive integer/);
    assert.throws(() => new BatchSampler(identity(500), { batchSize: 2, seqLen: 10, mode: "shuffled" as never }), /mode must be "sequential" or "random"/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-data-"));
    try {
      assert.throws(() => readTextFile(path.join(dir, "missing.txt")), /cannot read .*missing\.txt: no such file$/);
      fs.writeFileSync(path.join(dir, "empty.txt"), "");
      assert.throws(() => readTextFile(path.join(dir, "empty.txt")), /empty\.txt is empty/);
      assert.throws(() => readTextFile(dir), /it is a directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
