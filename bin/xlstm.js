#!/usr/bin/env node
// The `xlstm` command (see lib/cli/main.ts).
require("../dist/cli/main.js")
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((e) => {
    console.error(`xlstm: ${e && e.message ? e.message : e}`);
    process.exitCode = 1;
  });
