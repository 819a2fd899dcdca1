#!/usr/bin/env bash
# The GPU session's checklist, run on the device machine (the `device` tool: run with carry [".gpu"] after
# scripts/gpu-pack.sh here; one call, well under the 10-minute limit on its 16 cores):
#   1. Node and node_modules from .gpu/, the addon built with CUDA for this GPU's architecture only (sm_90 on the
#      H100/H200 unless CUDA_ARCH says otherwise) to keep the build short;
#   2. the CUDA tests: kernel parity (test/20, test/21), device memory and CUDA tensors (22, 23), every fixture on
#      the GPU (48, "on cuda"), bf16 weights and xLSTM Large on the GPU (36, 59), training and generation on the GPU
#      (64), then the whole suite;
#   3. xlstm check-fixtures --device cuda, and xlstm bench --device cuda (G1 both launches, G2, G3, L1-cuda) next to the CPU's W1/W2;
# Logs land in $OUT (they come back with the reply): build.log, cuda-tests.log, all-tests.log, fixtures.log,
# bench-gpu.jsonl, bench-cpu.jsonl, nvidia-smi.txt. STEPS=build,cuda,all,fixtures,bench picks steps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/xlstm-gpu-out}
mkdir -p "$OUT"
STEPS=${STEPS:-build,cuda,all,fixtures,bench}
has() { [[ ",$STEPS," == *",$1,"* ]]; }
if ! command -v node >/dev/null 2>&1; then
  mkdir -p /tmp/xlstm-node/bin
  xz -dc .gpu/node.xz > /tmp/xlstm-node/bin/node && chmod +x /tmp/xlstm-node/bin/node
  export PATH=/tmp/xlstm-node/bin:$PATH
fi
[ -d node_modules ] || tar -xJf .gpu/node_modules.tar.xz
if [ -f .gpu/fixtures.tar ]; then
  mkdir -p /tmp/xlstm-fixtures && tar -C /tmp/xlstm-fixtures -xf .gpu/fixtures.tar
  export XLSTM_FIXTURES=/tmp/xlstm-fixtures/fixtures
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
if has build; then
  arch=${CUDA_ARCH:-90}
  (node_modules/.bin/cmake-js rebuild --CDCMAKE_CUDA_ARCHITECTURES="$arch" && node_modules/.bin/tsc -p tsconfig.build.json && node scripts/write-esm-entry.js) > "$OUT/build.log" 2>&1 || { echo "build failed"; tail -40 "$OUT/build.log"; exit 1; }
fi
node -e 'const b=require("./build/Release/xlstm.node").backends().cuda; console.log(JSON.stringify(b)); if(!b.available) process.exit(1)' | tee "$OUT/backends.json" || { echo "no usable GPU"; exit 1; }
status=0
if has cuda; then
  node_modules/.bin/mocha test/20.*.test.ts test/21.*.test.ts test/22.*.test.ts test/23.*.test.ts test/36.bf16-weights.test.ts test/48.fixtures.test.ts test/59.large-generate.test.ts test/64.train.test.ts > "$OUT/cuda-tests.log" 2>&1 || status=1
  tail -1 "$OUT/cuda-tests.log"
fi
if has all; then
  node_modules/.bin/mocha 'test/**/*.test.ts' > "$OUT/all-tests.log" 2>&1 || status=1
  tail -1 "$OUT/all-tests.log"
fi
if has fixtures; then
  node bin/xlstm.js check-fixtures "$XLSTM_FIXTURES" --device cuda > "$OUT/fixtures.log" 2>&1 || status=1
  tail -1 "$OUT/fixtures.log"
fi
if has bench; then
  node bin/xlstm.js bench --device cuda --reps 5 > "$OUT/bench-gpu.jsonl" 2> "$OUT/bench-gpu.err" || status=1
  node bin/xlstm.js bench --workload W1,W2 --reps 5 > "$OUT/bench-cpu.jsonl" 2>&1 || status=1
  cat "$OUT/bench-gpu.jsonl"
fi
exit $status
