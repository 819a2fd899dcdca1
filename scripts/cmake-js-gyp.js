#!/usr/bin/env node
// prebuildify calls a node-gyp executable (`rebuild --target=... --arch=... --release`); this stands in for it
// and builds with cmake-js instead, into build/Release where prebuildify picks the .node file up.
// Usage (package.json "prebuild"): prebuildify --napi --strip --node-gyp scripts/cmake-js-gyp.js
const { spawnSync } = require("child_process");
const path = require("path");

const args = process.argv.slice(2);
const debug = args.includes("--debug");
const arch = (args.find((a) => a.startsWith("--arch=")) || "").slice("--arch=".length);
const cmakeJs = path.join(path.dirname(require.resolve("cmake-js/package.json")), "bin", "cmake-js");
const cmd = ["rebuild", ...(debug ? ["--debug"] : []), ...(arch ? ["--arch", arch] : [])];
const r = spawnSync(process.execPath, [cmakeJs, ...cmd], { stdio: "inherit", cwd: process.cwd() });
process.exit(r.status === null ? 1 : r.status);
