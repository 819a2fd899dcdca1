// Layer 8: a training process killed with SIGKILL at random moments while it writes checkpoints (one after every
// step) always leaves a loadable, self-consistent latest checkpoint, and the run resumes from it.
import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadModel, readTrainingState, resolveCheckpoint } from "../lib/checkpoint";
import { Generator } from "../lib";

const child = path.join(__dirname, "support", "train-child.ts");

/** Starts the child, waits for `after` checkpoints plus `delayMs`, then SIGKILLs it; resolves with the last step seen. */
function runAndKill(outDir: string, after: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", child, outDir], { stdio: ["ignore", "pipe", "pipe"] });
    let seen = 0, last = -1, err = "", killed = false;
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (d: string) => {
      for (const line of d.split("\n")) {
        const m = /^checkpoint (\d+)$/.exec(line);
        if (!m) continue;
        last = Number(m[1]);
        if (++seen === after && !killed) {
          killed = true;
          setTimeout(() => p.kill("SIGKILL"), delayMs);
        }
      }
    });
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code, signal) => (signal === "SIGKILL" ? resolve(last) : reject(new Error(`child exited with ${code}: ${err}`))));
  });
}

describe("86 interrupted checkpoint writes", function () {
  this.timeout(180000);
  it("SIGKILL at random moments never leaves a broken latest checkpoint, and the run resumes", async () => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-kill-"));
    const gen = new Generator(86);
    let prevStep = -1;
    for (let round = 0; round < 6; ++round) {
      const lastSeen = await runAndKill(outDir, 1 + gen.int(3), gen.int(40));
      const resolved = resolveCheckpoint(outDir);
      const { model } = loadModel(outDir);
      for (const [k, p] of model.namedParameters()) assert.ok(p.f32().every(Number.isFinite), `round ${round}: ${k} is not finite`);
      const st = readTrainingState(resolved.dir!);
      // the latest checkpoint is the last announced one or a newer one completed just before the kill
      assert.ok(st.step >= lastSeen && st.step > prevStep, `round ${round}: latest step ${st.step}, last announced ${lastSeen}, previous ${prevStep}`);
      assert.equal(path.basename(resolved.dir!), `step-${String(st.step).padStart(8, "0")}`);
      prevStep = st.step; // the next round resumes from here
    }
    fs.rmSync(outDir, { recursive: true, force: true });
  });
});
