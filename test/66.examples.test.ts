// Layer 7: the reproduction scripts in examples/ run end to end with tiny flags (seconds): xlstm-timemachine
// (three models on d2l's time machine, perplexity plot) and parity (sLSTM vs mLSTM on the parity task, accuracy
// plot). Each must exit 0, print its results table with plausible numbers, and write its plot (SVG and PNG) and
// results.json; small runs must already learn (perplexity well under the vocabulary's 28, the sLSTM fitting short
// parity sequences); bad flags end in one line on stderr and exit code 2.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const root = path.resolve(__dirname, "..");
const run = (script: string, ...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", path.join(root, "examples", script), ...args], { cwd: root, encoding: "utf8", timeout: 60000, env: { ...process.env, XLSTM_NUM_THREADS: "1" } });

/** The table after the line `title`: header cells and rows (cells split on runs of 2+ spaces). */
function table(stdout: string, title: RegExp): { header: string[]; rows: string[][] } {
  const lines = stdout.split("\n");
  const at = lines.findIndex((l) => title.test(l));
  assert.ok(at >= 0, `no results table in:\n${stdout}`);
  const split = (l: string) => l.trim().split(/\s{2,}/);
  assert.match(lines[at + 2], /^-+(\s+-+)+$/, "a dashed rule under the header");
  const rows: string[][] = [];
  for (let i = at + 3; i < lines.length && lines[i].trim() && !/^(\(|plot: )/.test(lines[i]); ++i) rows.push(split(lines[i]));
  return { header: split(lines[at + 1]), rows };
}

function assertPlots(base: string, polylines: number): void {
  const svg = fs.readFileSync(`${base}.svg`, "utf8");
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>$/);
  assert.equal(svg.match(/<polyline /g)?.length, polylines, "one line per series");
  const png = fs.readFileSync(`${base}.png`);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.readUInt32BE(16), 720, "PNG width");
}

describe("66 examples: reproduction scripts", function () {
  this.timeout(60000);
  let dir = "";
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-examples-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("xlstm-timemachine trains three models, prints the table and writes the perplexity plot", () => {
    const out = path.join(dir, "tm");
    const r = run("xlstm-timemachine.ts", "--steps", "30", "--eval-every", "10", "--embedding", "16", "--blocks", "2", "--batch", "8", "--seq-len", "16", "--lr", "0.01", "--max-tokens", "20000", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^time machine \(d2l preprocessing\): 20,000 of 1\d\d,\d{3} tokens, vocabulary 28;/m);
    const t = table(r.stdout, /^results$/);
    assert.deepEqual(t.header, ["model", "parameters", "tokens seen", "train ppl", "val ppl", "best val ppl", "tokens/s", "seconds"]);
    assert.deepEqual(t.rows.map((row) => row[0]), ["xLSTM[1:1]", "mLSTM-only", "sLSTM-only"]);
    for (const row of t.rows) {
      assert.equal(row[2], "3,840", "30 steps of 8 x 16 tokens");
      const [train, val, best] = [3, 4, 5].map((j) => Number(row[j]));
      assert.ok(val > 1 && val < 20, `${row[0]}: validation perplexity ${val} (uniform over 28 tokens would be 28)`);
      assert.ok(train > 1 && train < 25 && best <= val, row.join(" | "));
      assert.ok(Number(row[6].replace(/,/g, "")) > 0);
    }
    assertPlots(path.join(out, "perplexity"), 6);
    const svg = fs.readFileSync(path.join(out, "perplexity.svg"), "utf8");
    for (const label of ["xLSTM[1:1] validation", "mLSTM-only training", "sLSTM-only validation"]) assert.ok(svg.includes(`>${label}</text>`), `legend entry ${label}`);
    const res = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8"));
    for (const m of res.results) {
      assert.deepEqual(m.curve.map((c: { step: number; tokens: number }) => [c.step, c.tokens]), [[10, 1280], [20, 2560], [30, 3840]]);
      assert.ok(m.curve[2].valPpl < m.curve[0].valPpl, `${m.label}: validation perplexity falls`);
    }
  });

  it("parity trains sLSTM and mLSTM models, reports accuracy by length and writes the accuracy plot", () => {
    const out = path.join(dir, "parity");
    const r = run("parity.ts", "--steps", "300", "--eval", "64", "--train-len", "6", "--test-len", "14", "--embedding", "8", "--models", "slstm,mlstm", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    const t = table(r.stdout, /^results \(accuracy/);
    assert.deepEqual(t.header, ["model", "parameters", "lengths 3-6", "lengths 7-12", "lengths 13-14", "final loss", "tokens/s", "seconds"]);
    assert.deepEqual(t.rows.map((row) => row[0]), ["sLSTM-only", "mLSTM-only"]);
    for (const row of t.rows) for (const j of [2, 3, 4]) assert.match(row[j], /^\d{1,3}\.\d%$/);
    assert.ok(parseFloat(t.rows[0][2]) >= 80, `the sLSTM model fits lengths 3-6: ${t.rows[0].join(" | ")}`);
    assertPlots(path.join(out, "accuracy"), 2);
    const res = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8"));
    assert.equal(res.results[0].accuracy.length, 14, "an accuracy per length 1..14");
    assert.equal(res.results[0].accuracy[0], 1, "the parity of one token is the token (learned by the sLSTM model)");
  });

  it("bad flags give one line on stderr and exit code 2", () => {
    for (const [script, args, re] of [
      ["parity.ts", ["--steps", "x"], /^parity: --steps must be a non-negative integer, got "x"$/],
      ["parity.ts", ["--test-len", "5"], /^parity: --test-len \(5\) must be longer than --train-len \(20\)$/],
      ["xlstm-timemachine.ts", ["--models", "gru"], /^xlstm-timemachine: unknown model "gru" in --models/],
      ["xlstm-timemachine.ts", ["--bogus", "1"], /^xlstm-timemachine: unknown argument "--bogus"/],
    ] as const) {
      const r = run(script, ...args);
      assert.equal(r.status, 2, `${script} ${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], re);
    }
  });
});
