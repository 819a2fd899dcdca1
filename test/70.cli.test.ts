// Layer 7: the `xlstm` command as users run it (bin/xlstm.js over the compiled dist/): info, bench's JSON lines,
// check-fixtures' per-fixture lines and exit codes, and errors for bad arguments.
import { strict as assert } from "assert";
import { backends } from "../lib";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fixturesAvailable } from "./support/fixtures";

const root = path.resolve(__dirname, "..");
const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(root, "bin", "xlstm.js"), ...args], { encoding: "utf8", cwd: root, timeout: 120000 });

describe("70 cli", function () {
  this.timeout(180000);

  it("info prints the backends as JSON", () => {
    const r = cli("info");
    assert.equal(r.status, 0, r.stderr);
    const b = JSON.parse(r.stdout);
    assert.equal(b.cpu.available, true);
    assert.equal(typeof b.cuda.available, "boolean");
  });

  it("bench prints one JSON line per result in the workloads format", () => {
    const r = cli("bench", "--workload", "W6", "--reps", "1");
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 1);
    const row = lines[0];
    assert.equal(row.workload, "W6");
    assert.equal(row.metric, "tokens_per_s");
    assert.equal(row.device, "cpu");
    assert.ok(row.value > 0 && Number.isFinite(row.value));
  });

  (backends().cuda.compiled ? it : it.skip)(`bench runs the CPU workloads' GPU forms (W6-cuda on the host-emulated device: the wiring, not the speed)${backends().cuda.compiled ? "" : " [skipped: built without CUDA]"}`, () => {
    const r = spawnSync(process.execPath, [path.join(root, "bin", "xlstm.js"), "bench", "--device", "cuda", "--workload", "W6-cuda", "--reps", "1"], {
      encoding: "utf8",
      cwd: root,
      timeout: 120000,
      env: { ...process.env, XLSTM_CUDA_EMULATE: "1" },
    });
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((x) => [x.workload, x.name, x.metric, x.device]), [["W6", "lstm-d2l", "tokens_per_s", "cuda"]]);
    assert.ok(rows[0].value > 0 && Number.isFinite(rows[0].value));
    assert.match(rows[0].gpu, /host emulation/);
  });

  // the GPU workloads' rows, opt-ins and settings, run at tiny shapes on the emulated device before a GPU's minutes are
  // spent on them (each row's wiring: its setters, plans, sessions and graphs; not its speed)
  (backends().cuda.compiled ? it : it.skip)(`bench's GPU workloads run every row at tiny shapes on the host-emulated device (XLSTM_BENCH_SHAPES=tiny)${backends().cuda.compiled ? "" : " [skipped: built without CUDA]"}`, () => {
    const r = spawnSync(process.execPath, [path.join(root, "bin", "xlstm.js"), "bench", "--device", "cuda", "--workload", "G1,G2,G2-forms,G3,G3-W5,L1-cuda", "--reps", "1"], {
      encoding: "utf8",
      cwd: root,
      timeout: 240000,
      env: { ...process.env, XLSTM_CUDA_EMULATE: "1", XLSTM_BENCH_SHAPES: "tiny" },
    });
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { workload: string; name: string; value: number; graphs?: string });
    for (const row of rows) assert.ok(Number.isFinite(row.value), `${row.workload} ${row.name}: ${row.value}`);
    const names = new Set(rows.map((x) => `${x.workload} ${x.name}`));
    const want = [
      "G1 slstm-forward-backward", "G1 lstm-forward-backward-autocast-bf16-wide-gemm", "G1 slstm-forward-autocast-bf16-split-blocks48",
      "G1 lstm-forward-backward-autocast-bf16-gather", "G1 slstm-forward-backward-autocast-bf16-split-blocks48-gather", "G1 lstm-forward-autotune",
      "G1 slstm-forward-backward-autocast-bf16-autotune", "G2 mlstm-chunkwise-forward-backward-composed-scan-states",
      "G2 mlstm-chunkwise-forward-backward-autocast-bf16-chunk128-wide-gemm", "G2 mlstm-chunkwise-forward-backward-autocast-bf16-chunk256-fused-intra",
      "G2 mlstm-chunkwise-forward-autocast-bf16-fused-intra", "G2-forms mlstm-composed-B1-NH2-S128-DK32-DV32", "G3 lm-train-no-split-k",
      "G3 lm-train-grouped-gemm", "G3 lm-train-autocast-bf16-kernels", "G3 lm-train-autocast-bf16-wide-gemm", "G3 generate-step-session",
      "G3 prefill-256-session", "G3 generate-step-session-graphs", "L1 large-decode-125m-session", "L1 large-decode-125m-session-graphs",
    ];
    assert.deepEqual(want.filter((n) => !names.has(n)), [], `rows missing; got ${[...names].join(", ")}`);
    // the graphed rows really ran from graphs (the status string the session reports)
    for (const row of rows.filter((x) => x.name.endsWith("-session-graphs"))) assert.match(String(row.graphs), /^on: \d+ graphs$/, `${row.workload} ${row.name}`);
  });

  it("bench rejects unknown workloads and options, naming them", () => {
    const r = cli("bench", "--workload", "W99");
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown workload W99; available: .*gemm.*W3.*W6/);
    assert.match(cli("bench", "--reps", "0").stderr, /--reps must be a positive integer/);
    assert.match(cli("frobnicate").stderr, /unknown command "frobnicate"/);
    // the GPU workloads are listed, and refused with the reason where no GPU is usable
    assert.match(r.stderr, /G1.*G2.*G3/);
    if (!backends().cuda.available) {
      const g = cli("bench", "--device", "cuda");
      assert.equal(g.status, 1);
      assert.match(g.stderr, /--device cuda: CUDA is not available/);
    }
  });

  const fx = fixturesAvailable();
  (fx.ok ? it : it.skip)(`check-fixtures prints a line per fixture and fails when one fails${fx.ok ? "" : ` [skipped: ${fx.ok ? "" : fx.reason}]`}`, () => {
    if (!fx.ok) return;
    const good = cli("check-fixtures", fx.dir, "--only", "^(slstm_cell|torch_lstm)$");
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^PASS slstm_cell: worst 0\.\d+ \(/m);
    assert.match(good.stdout, /^PASS torch_lstm: worst/m);
    assert.match(good.stdout, /^2 passed, 0 failed$/m);
    // a manifest whose fixture file is corrupt: the fixture fails and the exit code says so
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-cf-"));
    const manifest = JSON.parse(fs.readFileSync(path.join(fx.dir, "manifest.json"), "utf8"));
    const entry = manifest.fixtures.find((f: { name: string }) => f.name === "slstm_cell");
    manifest.fixtures = [entry];
    fs.writeFileSync(path.join(tmp, "manifest.json"), JSON.stringify(manifest));
    const bytes = fs.readFileSync(path.join(fx.dir, entry.file));
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(path.join(tmp, entry.file), bytes);
    const bad = cli("check-fixtures", tmp);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /^FAIL slstm_cell: .*sha256/m);
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.match(cli("check-fixtures").stderr, /the fixture directory is required/);
    assert.match(cli("check-fixtures", fx.dir, "--only", "^nothing$").stderr, /no fixture .* matches/);
    assert.match(cli("check-fixtures", fx.dir, "--device", "tpu").stderr, /--device/);
    if (!backends().cuda.available) {
      const r = cli("check-fixtures", fx.dir, "--device", "cuda");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /--device cuda: CUDA is not available/);
    }
  });
});
