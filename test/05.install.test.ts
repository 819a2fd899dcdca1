// Layer 0: the two ways `npm install xlstm` gets a binary. (1) A package that ships prebuilds/<platform>-<arch>/
// installs with no compiler and loads the prebuild; (2) one without prebuilds compiles from source (slow: it
// runs the whole CMake build, so it only runs with XLSTM_TEST_SLOW=1; `.ci/run`'s own `npm install` of the
// clone exercises that path on every CI run).
import { strict as assert } from "assert";
import { execFileSync, ExecFileSyncOptions } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const root = path.resolve(__dirname, "..");
const slow = !!process.env.XLSTM_TEST_SLOW;
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));

function npmCli(): string {
  const candidates = [process.env.npm_execpath, path.join(path.dirname(process.execPath), "..", "lib", "node_modules", "npm", "bin", "npm-cli.js")];
  for (const c of candidates) if (c && fs.existsSync(c) && /npm-cli\.js$/.test(c)) return c;
  throw new Error("npm-cli.js not found");
}

/** A directory holding only `node` (and the shell), so no compiler or cmake can be found on PATH. */
function bareBin(dir: string): string {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(bin, "node"));
  for (const tool of ["sh", "env"]) {
    const p = ["/bin", "/usr/bin"].map((d) => path.join(d, tool)).find((x) => fs.existsSync(x));
    if (p) fs.symlinkSync(p, path.join(bin, tool));
  }
  return bin;
}

/** Copy the package's published files into `stage` (what `npm pack` would take), optionally with a prebuild. */
function stagePackage(stage: string, withPrebuild: boolean): void {
  fs.mkdirSync(stage, { recursive: true });
  for (const f of [...pkg.files, "package.json", "README.md"]) {
    const src = path.join(root, f.replace(/\/$/, ""));
    if (f === "prebuilds/" || !fs.existsSync(src)) continue;
    fs.cpSync(src, path.join(stage, f.replace(/\/$/, "")), { recursive: true });
  }
  if (withPrebuild) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const built = (require("node-gyp-build") as { path(dir: string): string }).path(root);
    const dir = path.join(stage, "prebuilds", `${process.platform}-${process.arch}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(built, path.join(dir, "xlstm.node"));
  }
}

function packAndInstall(withPrebuild: boolean, hideCompiler: boolean): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-install-"));
  const stage = path.join(tmp, "stage");
  stagePackage(stage, withPrebuild);
  const npm = npmCli();
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };
  for (const k of Object.keys(env)) if (k.startsWith("npm_lifecycle") || k === "npm_package_json") delete env[k];
  const opts: ExecFileSyncOptions = { env, stdio: "pipe", timeout: 15 * 60 * 1000 };
  execFileSync(process.execPath, [npm, "pack", "--ignore-scripts", "--pack-destination", tmp], { ...opts, cwd: stage });
  const tgz = fs.readdirSync(tmp).find((f) => f.endsWith(".tgz"));
  assert.ok(tgz, "npm pack wrote a tarball");
  const app = path.join(tmp, "app");
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
  const installEnv = { ...env };
  if (hideCompiler) installEnv.PATH = bareBin(tmp);
  execFileSync(process.execPath, [npm, "install", "--prefer-offline", path.join(tmp, tgz!)], { ...opts, cwd: app, env: installEnv });
  return app;
}

function loadsIn(app: string): void {
  const cjs = execFileSync(process.execPath, ["-e", "const x = require('xlstm'); const b = x.backends(); console.log(b.cpu.available, x.Tensor.from([1, 2]).reshape(2, 1).shape.join('x'))"], { cwd: app }).toString().trim();
  assert.equal(cjs, "true 2x1");
  const esm = execFileSync(process.execPath, ["--input-type=module", "-e", "import { Tensor } from 'xlstm'; console.log(typeof Tensor)"], { cwd: app }).toString().trim();
  assert.equal(esm, "function");
}

describe("05 install", function () {
  this.timeout(20 * 60 * 1000);

  it("installs from a tarball with a prebuild and no compiler on PATH, and loads the prebuild", () => {
    const app = packAndInstall(true, true);
    const installed = path.join(app, "node_modules", "xlstm");
    assert.ok(fs.existsSync(path.join(installed, "prebuilds", `${process.platform}-${process.arch}`, "xlstm.node")));
    assert.ok(!fs.existsSync(path.join(installed, "build")), "nothing was compiled");
    loadsIn(app);
    fs.rmSync(path.dirname(app), { recursive: true, force: true });
  });

  (slow ? it : it.skip)(`compiles from source when no prebuild matches${slow ? "" : " [slow: set XLSTM_TEST_SLOW=1]"}`, () => {
    const app = packAndInstall(false, false);
    const installed = path.join(app, "node_modules", "xlstm");
    assert.ok(fs.existsSync(path.join(installed, "build", "Release", "xlstm.node")), "the addon was compiled");
    loadsIn(app);
    fs.rmSync(path.dirname(app), { recursive: true, force: true });
  });
});
