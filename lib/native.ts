// Loads the native addon: the only file that touches the binding (node-gyp-build picks a matching prebuild in
// prebuilds/<platform>-<arch>/ or the locally compiled build/Release/xlstm.node).
import * as path from "path";
import type { Binding } from "../binding";
import { NoBinaryFoundError } from "./errors";

const packageRoot = path.resolve(__dirname, "..");

function load(): Binding {
  const override = process.env.XLSTM_BINARY;
  const attempts: string[] = [];
  if (override) {
    try {
      return require(path.resolve(override)) as Binding;
    } catch (e) {
      attempts.push(`XLSTM_BINARY=${override}: ${(e as Error).message}`);
    }
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require("node-gyp-build") as (dir: string) => unknown;
    return nodeGypBuild(packageRoot) as Binding;
  } catch (e) {
    attempts.push(`node-gyp-build(${packageRoot}): ${(e as Error).message}`);
  }
  throw new NoBinaryFoundError(
    [
      `Could not load the xlstm native addon for ${process.platform}-${process.arch}, Node ${process.version}.`,
      ...attempts.map((a) => `  - ${a}`),
      "Possible solutions:",
      "  - Reinstall so the addon compiles from source: `npm rebuild xlstm` (needs cmake >= 3.18 and a C++17 compiler).",
      "  - In a clone of the repository, run `npm install` (it compiles with cmake-js).",
      "  - Point XLSTM_BINARY at a built xlstm.node.",
    ].join("\n"),
  );
}

/** The native module, typed by binding.d.ts. */
export const native: Binding = load();
