// The CLI's relaunch (lib/cli/relaunch.ts): on machines with few cores `xlstm train` and `xlstm bench` run in a child
// node with --single-threaded-gc. Checked: the decision, that the bench rows say which GC ran them, that exit codes
// and one-line errors are the same either way, that a SIGINT to the xlstm process (or, as a terminal's Ctrl-C does, to
// it and its child at once) stops training cleanly once (a final checkpoint and the "stopped" summary, not the "quit
// at once" of a second Ctrl-C), and that the child does not outlive a killed parent.
import { strict as assert } from "assert";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { coreCount, GC_FLAG, wantsRelaunch } from "../lib/cli/relaunch";

const root = path.resolve(__dirname, "..");
const bin = path.join(root, "bin", "xlstm.js");
const small = coreCount() <= 4;
const itSmall = small ? it : (t: string, fn: () => unknown) => it.skip(`${t} [skipped: ${coreCount()} cores: no relaunch here]`, fn);

/** pids of the processes whose command line contains `needle` */
function pidsWith(needle: string): number[] {
  const out = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.includes(needle) && !l.includes("ps -eo")).map((l) => Number(l.trim().split(/\s+/)[0]));
}

describe("71 cli: train and bench relaunched with the single-threaded GC on small machines", function () {
  this.timeout(120000);
  let dir = "";
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-relaunch-"));
    fs.writeFileSync(path.join(dir, "text.txt"), fs.readFileSync(path.join(root, "data", "timemachine.txt"), "utf8").slice(0, 20000));
    fs.writeFileSync(path.join(dir, "tiny.json"), JSON.stringify({
      data: "text.txt", steps: 100000, batchSize: 2, seqLen: 16, evalEvery: 0, checkpointEvery: 0, model: { embedding_dim: 16, num_blocks: 1, slstm_at: [0] },
    }));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("decides: train and bench on <= 4 cores, unless turned off, already relaunched or already flagged", () => {
    assert.equal(wantsRelaunch(["train"], {}, [], 2), true);
    assert.equal(wantsRelaunch(["bench", "--workload", "W2"], {}, [], 4), true);
    assert.equal(wantsRelaunch(["train"], {}, [], 8), false);
    for (const cmd of ["generate", "convert", "info", "check-fixtures", "--help"]) assert.equal(wantsRelaunch([cmd], {}, [], 2), false, cmd);
    assert.equal(wantsRelaunch([], {}, [], 2), false);
    assert.equal(wantsRelaunch(["train", "--help"], {}, [], 2), false);
    assert.equal(wantsRelaunch(["train"], { XLSTM_RELAUNCH: "0" }, [], 2), false);
    assert.equal(wantsRelaunch(["train"], { XLSTM_RELAUNCHED: "1" }, [], 2), false);
    assert.equal(wantsRelaunch(["train"], {}, [GC_FLAG], 2), false);
    assert.equal(wantsRelaunch(["train"], {}, ["--no-concurrent-marking"], 2), false);
    assert.equal(wantsRelaunch(["train"], {}, [], 2, "win32"), false);
    assert.equal(wantsRelaunch(["train"], {}, [], 2, "linux"), true);
  });

  it("bench rows say which GC ran them", () => {
    const row = (env: NodeJS.ProcessEnv) => {
      const r = spawnSync(process.execPath, [bin, "bench", "--workload", "W3", "--reps", "1"], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split("\n").pop()!);
    };
    assert.equal(row({}).v8_gc, small ? "single-threaded, non-incremental" : "concurrent");
    assert.equal(row({ XLSTM_RELAUNCH: "0" }).v8_gc, "concurrent");
  });

  it("exit codes and one-line errors are the same with and without the relaunch", () => {
    for (const args of [["train", "--bogus"], ["train", "--data", "missing.txt", "--out", "x1"], ["bench", "--workload", "W99"]]) {
      const a = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd: dir });
      const b = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd: dir, env: { ...process.env, XLSTM_RELAUNCH: "0" } });
      assert.notEqual(a.status, 0, args.join(" "));
      assert.equal(a.status, b.status, args.join(" "));
      assert.equal(a.stderr, b.stderr, args.join(" "));
    }
  });

  for (const [relaunch, both] of [[true, false], [true, true], [false, false]] as const)
    (both ? itSmall : it)(`SIGINT to the xlstm process${both ? " and its child at once (a terminal's Ctrl-C)" : ""} stops training once, with a final checkpoint and exit 130${relaunch ? "" : " (XLSTM_RELAUNCH=0)"}`, async () => {
      const out = path.join(dir, `run-int-${relaunch}-${both}`);
      const p = spawn(process.execPath, [bin, "train", "--config", "tiny.json", "--out", out], { cwd: dir, env: { ...process.env, ...(relaunch ? {} : { XLSTM_RELAUNCH: "0" }) } });
      let err = "", sent = false;
      p.stderr.setEncoding("utf8");
      p.stderr.on("data", (d: string) => {
        err += d;
        if (!sent && /^step \d+\//m.test(err)) {
          sent = true;
          if (both) for (const pid of pidsWith(out)) process.kill(pid, "SIGINT");
          else p.kill("SIGINT");
        }
      });
      const code = await new Promise<number | null>((res) => p.on("exit", (c) => res(c)));
      assert.equal(code, 130, err);  // a stopped run (lib/cli/main.ts), not killed by a second signal
      assert.match(err, /^stopped: step \d+\//m);
      assert.equal(err.match(/stopping after this step and writing a checkpoint/g)?.length, 1, err);
      assert.ok(fs.readdirSync(path.join(out, "checkpoints")).length >= 1, "a checkpoint at the stop");
    });

  itSmall("the relaunched child ends when the xlstm process is killed", async () => {
    const out = path.join(dir, "run-kill-parent");
    const p = spawn(process.execPath, [bin, "train", "--config", "tiny.json", "--out", out], { cwd: dir });
    let err = "";
    p.stderr.setEncoding("utf8");
    await new Promise<void>((res) => p.stderr.on("data", (d: string) => { err += d; if (/^step \d+\//m.test(err)) res(); }));
    const child = pidsWith(out).filter((pid) => pid !== p.pid);
    assert.equal(child.length, 1, `the child training process: ${child}`);
    p.kill("SIGKILL");
    const t0 = Date.now();
    while (pidsWith(out).length > 0 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pidsWith(out), [], "no training process left");
  });
});
