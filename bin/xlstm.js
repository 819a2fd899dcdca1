#!/usr/bin/env node
// The `xlstm` command (see lib/cli/main.ts). On machines with few cores, `train` and `bench` run in a child node
// whose GC marks on the main thread (lib/cli/relaunch.ts: concurrent marking otherwise takes cores from training).
const { coreCount, relaunch, wantsRelaunch, watchParent } = require("../dist/cli/relaunch.js");

const args = process.argv.slice(2);
const run = wantsRelaunch(args, process.env, process.execArgv, coreCount())
  ? relaunch(__filename, args)
  : (watchParent(), require("../dist/cli/main.js").main(args));
run
  .then((code) => {
    process.exitCode = code;
  })
  .catch((e) => {
    console.error(`xlstm: ${e && e.message ? e.message : e}`);
    process.exitCode = 1;
  });
