// Layer 4: every golden fixture in the manifest runs through the public API (lib/fixtures, the same runner as
// `xlstm check-fixtures`). sLSTM fixtures run twice (parameters in their stored and in the cuda layout), parallel
// mLSTM cell fixtures also through the "auto" form.
// A fixture with no handler in this version is reported as pending with the reason.
import { strict as assert } from "assert";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backends } from "../lib";
import { openSafetensors } from "../lib/io/safetensors";
import { formatResult, hasFixtureHandler, runFixture, RunOptions } from "../lib/fixtures";
import { describeFixtures } from "./support/fixtures";

describeFixtures("48 golden fixtures", (manifest, dir) => {
  for (const f of manifest.fixtures) {
    if (!hasFixtureHandler(f)) {
      it.skip(`${f.name} [not runnable in this version: config_class ${f.config_class}]`, () => undefined);
      continue;
    }
    // variants: sLSTM parameters in both layouts; parallel mLSTM cells also through ops.mlstm's "auto" form
    const variants: { title: string; options: RunOptions }[] = [{ title: "", options: {} }];
    if (f.tensors.some((t) => t.name.startsWith("aux:cuda_layout."))) variants.push({ title: " (cuda sLSTM layout)", options: { slstmLayout: "cuda" } });
    const fn = (f.config as { function?: string | string[] } | null)?.function;
    if ((Array.isArray(fn) ? fn[0] : fn) === "parallel_stabilized_simple")
      variants.push({ title: " (auto form)", options: { mlstmForm: "auto" } }, { title: " (auto form, chunk 8)", options: { mlstmForm: "auto", mlstmChunkSize: 8 } });
    for (const { title, options } of variants) {
      it(`${f.name}${title}`, () => {
        const r = runFixture(f, dir, options);
        assert.ok(r.ok, formatResult(r) + "\n" + r.checks.filter((c) => !(c.ratio <= 1)).map((c) => `  ${c.tensor}: ratio ${c.ratio} at ${c.index}`).join("\n"));
        assert.ok(r.checks.length > 0);
      });
    }
    // the same fixture on the GPU (modules and inputs moved, results read back)
    const cudaOk = backends().cuda.available;
    (cudaOk ? it : it.skip)(`${f.name} on cuda${cudaOk ? "" : ` [skipped: ${backends().cuda.reason}]`}`, () => {
      const r = runFixture(f, dir, { device: "cuda" });
      assert.ok(r.ok, formatResult(r) + "\n" + r.checks.filter((c) => !(c.ratio <= 1)).map((c) => `  ${c.tensor}: ratio ${c.ratio} at ${c.index}`).join("\n"));
    });
  }

  it("fails a fixture when one stored value is perturbed (the checker can fail)", () => {
    const f = manifest.fixtures.find((e) => hasFixtureHandler(e));
    assert.ok(f, "some fixture is runnable");
    const out = f!.tensors.find((t) => t.role === "output" && t.name !== "output:loss")!;
    // copy the file, change one float of `out` in place, and give the copy its own sha256
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-fx-"));
    const file = path.join(tmp, f!.file);
    fs.copyFileSync(path.join(dir, f!.file), file);
    const info = openSafetensors(file);
    const at = info.info(out.name).byteOffset;
    info.close();
    const fd = fs.openSync(file, "r+");
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, at);
    b.writeFloatLE(b.readFloatLE(0) + 0.5, 0);
    fs.writeSync(fd, b, 0, 4, at);
    fs.closeSync(fd);
    const sha256 = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    const r = runFixture({ ...f!, sha256 }, tmp);
    const c = r.checks.find((x) => x.tensor === out.name)!;
    assert.ok(!r.ok && c.ratio > 1 && c.index === 0, `perturbed ${out.name}: ${formatResult(r)}`);
    assert.ok(runFixture(f!, dir).ok, "the unperturbed fixture passes");
    const badHash = runFixture({ ...f!, sha256: "0".repeat(64) }, dir);
    assert.ok(!badHash.ok && /sha256/.test(badHash.error ?? ""));
    const unknown = runFixture({ ...f!, config_class: "NoSuchConfig", reference_api: "none" }, dir);
    assert.ok(!unknown.ok && /no handler/.test(unknown.error ?? ""));
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
