// Writes dist/index.mjs, the ESM entry: Node detects the named exports of the CommonJS build statically, so
// `import { Tensor } from "xlstm"` and `require("xlstm").Tensor` give the same objects.
const fs = require("fs");
const path = require("path");
const out = path.join(__dirname, "..", "dist", "index.mjs");
fs.writeFileSync(out, 'export * from "./index.js";\nexport { default } from "./index.js";\n');
